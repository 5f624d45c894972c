# Helpers shared by the end-to-end test scripts, sourced, POSIX sh: counters
# and checks of one command's exit status and stderr.  The caller sets WORK
# (a scratch folder) and passed=0 failed=0.

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# expect_ok DESCRIPTION COMMAND...: exit 0
expect_ok() {
    desc=$1; shift
    if "$@" >"$WORK/out.log" 2>"$WORK/err.log"; then ok; else bad "$desc (exit $?): $(cat "$WORK/err.log")"; fi
}
# expect_fail DESCRIPTION PATTERN COMMAND...: non-zero exit, one stderr line matching PATTERN
expect_fail() {
    desc=$1; pattern=$2; shift 2
    if "$@" >"$WORK/out.log" 2>"$WORK/err.log"; then bad "$desc: succeeded"; return; fi
    if ! grep -q -- "$pattern" "$WORK/err.log"; then bad "$desc: stderr lacks '$pattern': $(cat "$WORK/err.log")"; return; fi
    [ "$(wc -l <"$WORK/err.log")" -eq 1 ] && ok || bad "$desc: $(wc -l <"$WORK/err.log") lines on stderr"
}
# same_tokens A B: the same .npy files under both folders, byte for byte
same_tokens() {
    (cd "$1" && find . -name '*.npy' ! -name 'shard-*' | sort) >"$WORK/a.list"
    (cd "$2" && find . -name '*.npy' ! -name 'shard-*' | sort) >"$WORK/b.list"
    if ! cmp -s "$WORK/a.list" "$WORK/b.list"; then echo "different files"; return 1; fi
    while read -r f; do cmp -s "$1/$f" "$2/$f" || { echo "$f differs"; return 1; }; done <"$WORK/a.list"
}
