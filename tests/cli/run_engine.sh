#!/bin/sh
# run_engine.sh BATON CASE — one `baton run` test case (CTest runs each):
#   record_verify  a run records a replay file and checkpoints (every 10 steps, keep 2): exactly
#                  2 checkpoint files and the scenario are left in the directory; a second run
#                  on 7 partitions verifies all 40 steps against the file (--json); both print
#                  the final fingerprint, the file's last
#   resume         --resume DIR after the newest checkpoint was deleted: restarts at step 30
#                  from the scenario kept in DIR and verifies steps 30..39
#   identity       a seed-2 scenario refuses the checkpoint directory of a seed-1 run (fresh and
#                  --resume), naming it and both scenarios, and leaves it as it was
#   errors         an unknown key, an unknown mode and verify without a file: exit status 2,
#                  the message naming the line and the value; a replay file of another run:
#                  exit status 1, a divergence at step 0
set -u
baton=$1
case=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-run-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL ($case): $*" >&2
    [ -f "$tmp/stderr" ] && cat "$tmp/stderr" >&2
    exit 1
}
# scenario FILE MODE PARTITIONS [SEED] [STEPS]: a 20,000-agent motion run (40 steps).
scenario() {
    cat >"$1" <<SCENARIO
; written by run_engine.sh
[workload]
rule = motion
agents = 20000
steps = ${5:-40}
seed = ${4:-7}

[plan]
partitions = $3

[checkpoint]
policy = every
every = 10
keep = 2
dir = $tmp/ckpt

[replay]
mode = $2
file = $tmp/replay.bin

[run]
workers = 2
SCENARIO
}
# expect STATUS ARGS...: runs baton run; stdout in $tmp/out, stderr in $tmp/stderr.
expect() {
    want=$1
    shift
    "$baton" run "$@" >"$tmp/out" 2>"$tmp/stderr"
    status=$?
    [ "$status" -eq "$want" ] || fail "baton run $* exited $status, not $want"
}
contains() {
    grep -q -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"
}
# last_fingerprint FILE: the last entry's fingerprint of a replay file, as 0x + 16 hex digits
# (the entries end 8 bytes before the file's end: step, then fingerprint, little-endian).
last_fingerprint() {
    size=$(wc -c <"$1")
    echo "0x$(od -An -tx8 -j $((size - 16)) -N 8 "$1" | tr -d ' \n')"
}

case $case in
record_verify)
    scenario "$tmp/rec.ini" record 3
    expect 0 "$tmp/rec.ini"
    contains "$tmp/out" "40 fingerprints recorded"
    contains "$tmp/out" "checkpoints: 4 created"
    [ -s "$tmp/replay.bin" ] || fail "no replay file"
    n=$(ls "$tmp/ckpt" | grep -c '\.bck$')
    [ "$n" -eq 2 ] || fail "$n checkpoint files kept, not 2: $(ls "$tmp/ckpt")"
    cmp -s "$tmp/rec.ini" "$tmp/ckpt/scenario.ini" || fail "the scenario was not kept"
    final=$(last_fingerprint "$tmp/replay.bin")
    contains "$tmp/out" "fingerprint: $final"
    rm -rf "$tmp/ckpt"
    scenario "$tmp/ver.ini" verify 7
    expect 0 "$tmp/ver.ini" --json
    contains "$tmp/out" '"fingerprints_verified": 40'
    contains "$tmp/out" '"steps_completed": 40'
    # The final state's fingerprint: the recording's last, on 7 partitions as on 3.
    contains "$tmp/out" "\"fingerprint\": \"$final\""
    ;;
resume)
    scenario "$tmp/rec.ini" record 1
    expect 0 "$tmp/rec.ini"
    rm -rf "$tmp/ckpt"
    scenario "$tmp/ver.ini" verify 2
    expect 0 "$tmp/ver.ini"
    newest=$(ls "$tmp/ckpt" | grep '\.bck$' | sort | tail -1)
    rm -f "$tmp/ckpt/$newest"
    expect 0 --resume "$tmp/ckpt"
    contains "$tmp/stderr" "resumed from $tmp/ckpt at step 30"
    contains "$tmp/out" "10 verified"
    contains "$tmp/out" "step 40:"
    ;;
errors)
    printf '[workload]\nagentz = 5\n' >"$tmp/bad.ini"
    expect 2 "$tmp/bad.ini"
    contains "$tmp/stderr" "line 2: \[workload\] agentz = 5: unknown key"
    printf '[replay]\nmode = sometimes\n' >"$tmp/bad.ini"
    expect 2 "$tmp/bad.ini"
    contains "$tmp/stderr" "mode = sometimes: expected off, record or verify"
    printf '[replay]\nmode = verify\n' >"$tmp/bad.ini"
    expect 2 "$tmp/bad.ini"
    contains "$tmp/stderr" "needs a file"
    expect 2 "$tmp/missing.ini"
    contains "$tmp/stderr" "cannot open the scenario"
    scenario "$tmp/rec.ini" record 1 7
    expect 0 "$tmp/rec.ini"
    rm -rf "$tmp/ckpt"
    scenario "$tmp/ver.ini" verify 1 8
    expect 1 "$tmp/ver.ini"
    contains "$tmp/stderr" "divergence at step 0"
    ;;
identity)
    # A seed-1 run leaves its checkpoints (steps 30 and 40) and scenario in DIR; a seed-2,
    # 15-step scenario with the same DIR must neither resume them nor write next to them.
    scenario "$tmp/s1.ini" off 1 1 40
    expect 0 "$tmp/s1.ini"
    scenario "$tmp/s2.ini" off 1 2 15
    expect 1 "$tmp/s2.ini"
    contains "$tmp/stderr" "$tmp/ckpt"
    contains "$tmp/stderr" '"rule=motion agents=20000 seed=1"'
    contains "$tmp/stderr" '"rule=motion agents=20000 seed=2"'
    cmp -s "$tmp/s1.ini" "$tmp/ckpt/scenario.ini" || fail "the kept scenario was replaced"
    n=$(ls "$tmp/ckpt" | grep -c '\.bck$')
    [ "$n" -eq 2 ] || fail "$n checkpoint files, not the first run's 2: $(ls "$tmp/ckpt")"
    expect 1 "$tmp/s2.ini" --resume "$tmp/ckpt"
    contains "$tmp/stderr" '"rule=motion agents=20000 seed=1"'
    contains "$tmp/stderr" '"rule=motion agents=20000 seed=2"'
    # The run's own scenario still resumes (at its last step: nothing left to run).
    expect 0 --resume "$tmp/ckpt"
    contains "$tmp/stderr" "resumed from $tmp/ckpt at step 40"
    ;;
*)
    fail "unknown case"
    ;;
esac
exit 0
