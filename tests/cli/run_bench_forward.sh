#!/bin/sh
# run_bench_forward.sh BATON HAS_BENCH — `baton bench` only starts baton-bench (cli/bench.c):
#
#   unbuilt   (HAS_BENCH OFF: a build without -DBATON_BUILD_BENCH=ON) `baton bench pool --quick`
#             exits 2, prints nothing on stdout and says on stderr how to build baton-bench
#   missing   BATON_BENCH naming no program: exit 2 and the same instructions
#   forward   BATON_BENCH naming a script: it replaces the command (the same process id) and
#             gets exactly the arguments after `bench`, blanks, empty and glob characters
#             included; its stdout and exit status are the command's
#   help      `baton help bench` gives the same instructions on stdout, exit 0
set -u
baton=$1
has_bench=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-bench-forward.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
# says_how FILE: FILE holds the instructions to build baton-bench.
says_how() {
    grep -q -- "-DBATON_BUILD_BENCH=ON" "$1" && grep -q "make bench" "$1" ||
        fail "$1 does not say how to build baton-bench: $(cat "$1")"
}

if [ "$has_bench" = OFF ]; then
    (unset BATON_BENCH; exec "$baton" bench pool --quick) >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "unbuilt: exit status $rc, want 2"
    [ -s "$tmp/out" ] && fail "unbuilt: stdout is not empty: $(cat "$tmp/out")"
    grep -q "this build has no baton-bench" "$tmp/err" || fail "unbuilt: $(cat "$tmp/err")"
    says_how "$tmp/err"
fi

BATON_BENCH="$tmp/no-such-program" "$baton" bench pool --quick >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "missing: exit status $rc, want 2"
grep -q "cannot run $tmp/no-such-program" "$tmp/err" || fail "missing: $(cat "$tmp/err")"
says_how "$tmp/err"

cat >"$tmp/fake-bench" <<'SCRIPT'
#!/bin/sh
# Records its process id, $0 and each argument on a line of its own, in brackets.
{
    echo "pid=$$"
    echo "0=[$0]"
    echo "argc=$#"
    for a in "$@"; do
        printf '[%s]\n' "$a"
    done
} >"$FAKE_BENCH_OUT"
echo "fake stdout"
exit 7
SCRIPT
chmod +x "$tmp/fake-bench"
FAKE_BENCH_OUT="$tmp/args" BATON_BENCH="$tmp/fake-bench" \
    "$baton" bench pool --quick --runs=3 "two words" "" '*' --case 'durable_*' >"$tmp/out" &
pid=$!
wait "$pid"
rc=$?
[ "$rc" -eq 7 ] || fail "forward: exit status $rc, want the program's 7"
[ "$(cat "$tmp/out")" = "fake stdout" ] || fail "forward: stdout is '$(cat "$tmp/out")'"
cat >"$tmp/want" <<WANT
pid=$pid
0=[$tmp/fake-bench]
argc=8
[pool]
[--quick]
[--runs=3]
[two words]
[]
[*]
[--case]
[durable_*]
WANT
cmp -s "$tmp/want" "$tmp/args" || fail "forward: the program got
$(cat "$tmp/args")
want
$(cat "$tmp/want")"

"$baton" help bench >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "help: exit status $rc"
says_how "$tmp/out"
echo "ok"
