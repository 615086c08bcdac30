#!/bin/sh
# run_mpi.sh BATON MPIEXEC — `baton run` under MPI (registered when the build has MPI):
#   1. a single-process run on 3 partitions records a replay of 30 steps;
#   2. `mpirun --oversubscribe -np 3` runs the same scenario on 6 partitions (two per rank, not
#      aligned to fingerprint chunks) verifying every step against that recording: the ranks'
#      fingerprints equal the single process's, and every rank checkpoints into DIR/rank-R;
#   3. the newest checkpoint of every rank is deleted, and `mpirun ... baton run --resume DIR`
#      goes on from step 20, verifying steps 20..29;
#   4. the newest checkpoint of one rank only is deleted: the ranks would resume different
#      steps, which must fail (exit status 1) with a message saying so;
#   5. a scenario without [plan] (the engine's default plan: one partition per rank) verifies
#      the same recording under `mpirun -np 2` and `-np 3`;
#   6. a scenario of another seed refuses the checkpoint directory of step 5's run, on every
#      rank, naming both scenarios.
set -u
baton=$1
mpiexec=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-mpi-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/err" ] && cat "$tmp/err" >&2
    exit 1
}
root=""
[ "$(id -u)" -eq 0 ] && root="--allow-run-as-root" # containers and CI run as root
# One machine: launch the ranks locally, without the ssh that Open MPI otherwise insists on
# finding even for local ranks (CI machines have none), and without the single-copy transport
# that containers' ptrace rules refuse.
export OMPI_MCA_plm=isolated
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi() {
    # shellcheck disable=SC2086 # $root is empty or one word
    "$mpiexec" --oversubscribe $root -np "${np:-3}" "$baton" run "$@" >"$tmp/out" 2>"$tmp/err"
}
# scenario FILE MODE PARTITIONS (empty: no [plan] section)
scenario() {
    plan=""
    [ -n "$3" ] && plan="[plan]
partitions = $3"
    cat >"$1" <<SCENARIO
[workload]
agents = 50000
steps = 30
seed = 11
$plan
[checkpoint]
policy = every
every = 10
keep = 2
dir = $tmp/ckpt
[replay]
mode = $2
file = $tmp/replay.bin
[run]
workers = 1
SCENARIO
}

scenario "$tmp/rec.ini" record 3
"$baton" run "$tmp/rec.ini" >"$tmp/out" 2>"$tmp/err" || fail "the recording run failed"
rm -rf "$tmp/ckpt"
scenario "$tmp/ver.ini" verify 6
mpi "$tmp/ver.ini" || fail "mpirun -np 3: the verifying run failed"
grep -q "30 verified" "$tmp/out" || fail "not 30 steps verified: $(cat "$tmp/out")"
grep -q "partitions: 180 partition steps over 1500000 rows" "$tmp/out" ||
    fail "the ranks' metrics were not summed: $(cat "$tmp/out")"
for r in 0 1 2; do
    n=$(ls "$tmp/ckpt/rank-$r" | grep -c '\.bck$')
    [ "$n" -eq 2 ] || fail "rank $r kept $n checkpoints, not 2"
done
rm -f "$tmp"/ckpt/rank-*/ckpt-00000000000000000030-auto.bck
mpi --resume "$tmp/ckpt" || fail "mpirun -np 3 --resume failed"
grep -q "resumed from $tmp/ckpt at step 20" "$tmp/err" || fail "did not resume at step 20"
grep -q "10 verified" "$tmp/out" || fail "not 10 steps verified after resuming"
rm -f "$tmp"/ckpt/rank-1/ckpt-00000000000000000030-auto.bck
mpi --resume "$tmp/ckpt" && fail "resuming ranks at different steps succeeded"
grep -q "different steps (20 to 30)" "$tmp/err" || fail "no message about the ranks' steps"
for np in 2 3; do
    rm -rf "$tmp/ckpt"
    scenario "$tmp/default.ini" verify ""
    mpi "$tmp/default.ini" || fail "mpirun -np $np: the default plan's run failed"
    grep -q "30 verified" "$tmp/out" || fail "-np $np: not 30 steps verified: $(cat "$tmp/out")"
    grep -q "partitions: $((30 * np)) partition steps over 1500000 rows" "$tmp/out" ||
        fail "-np $np: not one partition per rank: $(cat "$tmp/out")"
    # The final fingerprint, computed across the ranks: the recording's last.
    size=$(wc -c <"$tmp/replay.bin")
    want="0x$(od -An -tx8 -j $((size - 16)) -N 8 "$tmp/replay.bin" | tr -d ' \n')"
    grep -q "fingerprint: $want" "$tmp/out" || fail "-np $np: not the final fingerprint $want"
done
sed 's/^seed = 11/seed = 12/' "$tmp/default.ini" >"$tmp/seed12.ini"
mpi "$tmp/seed12.ini" && fail "a seed-12 run used the seed-11 run's checkpoint directory"
grep -q '"rule=motion agents=50000 seed=11"' "$tmp/err" &&
    grep -q '"rule=motion agents=50000 seed=12"' "$tmp/err" ||
    fail "no message naming both scenarios: $(cat "$tmp/err")"
exit 0
