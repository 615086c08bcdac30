#!/bin/sh
# run_bench_space.sh BATON_BENCH — what baton-bench promises about --contender and the space
# suite's cases, from its usage text and docs/benchmarks.md, on --quick sizes and one run (no
# figure is compared: only names, counts, exit statuses and the "correct" of each record).
#   --contender NAME   the JSON holds NAME's records alone, one per worker count asked for
#   --contender nobody a name no case has: exit status 2 and a message that names it
#   join3_hot          baton, global_mutex and channel_mutex each at every worker count, all
#                      correct (each worker's fired count, the sum of the data, an empty space)
#   idle_cpu, wait_cpu baton only, at the largest of --workers, correct, unit cores
set -u
bench=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-bench-space.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "run_bench_space: $*" >&2
    exit 1
}

# count FILE PATTERN: the number of lines of FILE that match PATTERN (one JSON record a line).
count() {
    grep -c -- "$2" "$1"
}

"$bench" --help >"$tmp/help" || fail "--help: exit status $?"
grep -q -- "--contender NAME" "$tmp/help" || fail "--help does not name --contender"

"$bench" space --quick --runs 1 --workers 1,2 --case join3_hot --contender global_mutex --json \
    >"$tmp/one" 2>"$tmp/err" || fail "--contender global_mutex: exit status $? ($(cat "$tmp/err"))"
[ "$(count "$tmp/one" '"case": ')" -eq 2 ] || fail "--contender global_mutex: $(cat "$tmp/one")"
[ "$(count "$tmp/one" '"contender": "global_mutex"')" -eq 2 ] ||
    fail "--contender global_mutex: other contenders ran: $(cat "$tmp/one")"
[ "$(count "$tmp/one" '"workers": 1,')" -eq 1 ] && [ "$(count "$tmp/one" '"workers": 2,')" -eq 1 ] ||
    fail "--contender global_mutex: not one record per worker count: $(cat "$tmp/one")"

"$bench" space --quick --runs 1 --case join3_hot --contender nobody >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "--contender nobody: exit status $rc, want 2"
grep -q "contender 'nobody'" "$tmp/err" || fail "--contender nobody: $(cat "$tmp/err")"

"$bench" space --quick --runs 1 --workers 1,2 --case join3_hot --json >"$tmp/hot" 2>"$tmp/err" ||
    fail "join3_hot: exit status $? ($(cat "$tmp/err"))"
for c in baton global_mutex channel_mutex; do
    for w in 1 2; do
        [ "$(grep "\"contender\": \"$c\"" "$tmp/hot" | count - "\"workers\": $w,")" -eq 1 ] ||
            fail "join3_hot: no record of $c at $w workers: $(cat "$tmp/hot")"
    done
done
[ "$(count "$tmp/hot" '"case": "join3_hot"')" -eq 6 ] || fail "join3_hot: $(cat "$tmp/hot")"
[ "$(count "$tmp/hot" '"correct": true')" -eq 6 ] || fail "join3_hot: a wrong result: $(cat "$tmp/hot")"

for case in idle_cpu wait_cpu; do
    "$bench" space --quick --runs 1 --workers 1,3 --case $case --json >"$tmp/$case" 2>"$tmp/err" ||
        fail "$case: exit status $? ($(cat "$tmp/err"))"
    [ "$(count "$tmp/$case" '"case": ')" -eq 1 ] || fail "$case: $(cat "$tmp/$case")"
    grep -q "\"case\": \"$case\", \"contender\": \"baton\", \"metric\": \"cpu_fraction\", \"unit\": \"cores\"" \
        "$tmp/$case" || fail "$case: $(cat "$tmp/$case")"
    grep -q '"correct": true, "workers": 3,' "$tmp/$case" || fail "$case: $(cat "$tmp/$case")"
done
exit 0
