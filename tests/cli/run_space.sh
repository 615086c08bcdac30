#!/bin/sh
# run_space.sh BATON CASE — one `baton space` test case of tests/cli/space (CTest runs each).
#
#   CASE.bt                  the script, run in memory (from inside tests/cli/space, so that
#                            error messages name it as CASE.bt)
#   CASE.1.bt, CASE.2.bt     instead: two runs on one --dir; the second must recover what the
#                            first left, and a third and a fourth run without a script print
#                            the same, the fourth leaving data.mdb byte for byte as it was
#   CASE.out                 the expected stdout (of the last run); CASE.1.out of the first run
#   CASE.status              the expected exit status (default 0)
#   CASE.err                 the expected stderr (default: not checked)
#   CASE.no_roundtrip        (two-run cases) skip feeding the output back; the file says why
#
# A run that succeeds is also fed its own output as a script: a fresh space must print it back
# unchanged (the output rebuilds the space).
set -u
baton=$1
case=$2
cd "$(dirname "$0")/space" || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-space-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL ($case): $*" >&2
    exit 1
}
# check NAME EXPECTED_FILE ACTUAL_FILE
check() {
    if ! cmp -s "$2" "$3"; then
        echo "--- expected $1" >&2
        cat "$2" >&2
        echo "--- got" >&2
        cat "$3" >&2
        fail "$1 differs"
    fi
}
# run EXPECTED_STATUS STDOUT_FILE ARGS...: runs baton space and checks its status.
run() {
    want=$1
    out=$2
    shift 2
    "$baton" space "$@" >"$out" 2>"$tmp/stderr"
    status=$?
    if [ "$status" -ne "$want" ]; then
        cat "$tmp/stderr" >&2
        fail "baton space $* exited $status, expected $want"
    fi
}
roundtrip() {
    run 0 "$tmp/again" --workers 2 - <"$1"
    check "output of the output fed back as a script" "$1" "$tmp/again"
}

if [ -f "$case.1.bt" ]; then
    dir="$tmp/dir"
    run 0 "$tmp/out1" --workers 2 --dir "$dir" "$case.1.bt"
    [ -f "$case.1.out" ] && check "stdout of the first run" "$case.1.out" "$tmp/out1"
    run 0 "$tmp/out2" --workers 2 --dir "$dir" --durability sync "$case.2.bt"
    check "stdout of the second run" "$case.out" "$tmp/out2"
    run 0 "$tmp/out3" --workers 2 --dir "$dir"
    check "stdout of a run without a script" "$case.out" "$tmp/out3"
    # Reading a directory changes nothing: again the same output, and the log byte for byte.
    cp "$dir/data.mdb" "$tmp/data.before"
    run 0 "$tmp/out4" --workers 2 --dir "$dir"
    check "stdout of a second run without a script" "$case.out" "$tmp/out4"
    cmp -s "$tmp/data.before" "$dir/data.mdb" || fail "a run without a script changed the log"
    [ -f "$case.no_roundtrip" ] || roundtrip "$tmp/out2"
    exit 0
fi

want=0
[ -f "$case.status" ] && want=$(cat "$case.status")
run "$want" "$tmp/out" --workers 2 "$case.bt"
[ -f "$case.out" ] && check "stdout" "$case.out" "$tmp/out"
[ -f "$case.err" ] && check "stderr" "$case.err" "$tmp/stderr"
if [ "$want" -ne 0 ] && [ -s "$tmp/out" ]; then
    fail "a failed run printed on stdout"
fi
[ "$want" -eq 0 ] && roundtrip "$tmp/out"
exit 0
