# Helpers shared by the end-to-end scripts of tokvox live (tests/test_live.sh,
# tests/test_soak.sh), sourced, POSIX sh.  live_setup creates $WORK and the
# counters; the caller sets TOKVOX, and LIMIT: a prefix every run of the
# command gets ("timeout -k 5 90"), or empty when the script keeps time
# itself and needs the command's own process id from $!.

. "$ROOT/tests/common.sh"   # the caller sets ROOT

# live_setup NAME: a scratch folder removed at exit, with every background
# process in $PIDS ended first
live_setup() {
    WORK=$(mktemp -d "/tmp/tokvox-$1-XXXXXX")
    PIDS=""
    passed=0
    failed=0
    trap live_cleanup EXIT
    trap 'exit 1' INT TERM
}
live_cleanup() {
    # CONT: a process stopped by a test takes the TERM only once it runs
    for p in $PIDS; do kill "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    # TOKVOX_KEEP_WORK=1 keeps the files of a failed run for a look
    if [ "${TOKVOX_KEEP_WORK:-0}" = 1 ] && [ "$failed" -gt 0 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# field JSON KEY: a number from a one-line JSON object (the last line: the
# summary of a --stats file)
field() { sed -n "s/.*\"$2\":\(-\{0,1\}[0-9.]*\).*/\1/p" "$1" | tail -1; }
# check DESCRIPTION A OP B: a numeric comparison of two awk expressions
check() {
    if [ -n "$2" ] && [ -n "$4" ] && awk "BEGIN { exit !(($2) $3 ($4)) }"; then ok
    else bad "$1: '$2' $3 '$4' does not hold"; fi
}
samples() { soxi -s "$1"; }

# start_listener NAME PORT ARGS...: a receiver recording to $WORK/NAME.wav
# with --stats $WORK/NAME.jsonl, in the background; returns once it is bound
# and sets NAME_pid
start_listener() {
    name=$1; port=$2; shift 2
    $LIMIT "$TOKVOX" live --listen "$port" --record "$WORK/$name.wav" --idle-timeout 10 \
        --stats "$WORK/$name.jsonl" "$@" 2>"$WORK/$name.err" &
    PIDS="$PIDS $!"
    eval "${name}_pid=$!"
    for _ in $(seq 100); do
        grep -q "listening" "$WORK/$name.err" 2>/dev/null && return
        sleep 0.1
    done
    bad "$name: the receiver did not start: $(cat "$WORK/$name.err")"
}
