#!/usr/bin/env bash
# Soak of tokvox live (docs/live.md, "Soak"): a sender and a receiver on
# 127.0.0.1 for SOAK_SECONDS of speech paced in real time, with simulated
# loss and jitter, and the receiver frozen (SIGSTOP) once half-way.  While
# they run, VmRSS, RssAnon and VmHWM of both are read from /proc every
# SOAK_INTERVAL seconds.  At the end:
#  - memory is flat: RssAnon at the end minus at the warm-up point (20 % of
#    the run) at most SOAK_ANON_SLACK_KB for each process, VmRSS likewise at
#    most SOAK_RSS_SLACK_KB (why these bounds: docs/live.md, "Soak");
#  - nothing drifts: the receiver's jitter buffer (the most frames held per
#    second) and its latency are the same in the last 20 % of the run as
#    after warm-up, within a frame; the buffer stays within its hold plus
#    the simulated jitter plus two frames; the freeze is caught up;
#  - every frame is accounted for: frames played = frames the sender made,
#    = received + lost, lost = the simulation's drops, sent = made - dropped
#    + 3 end packets; no overrun or underrun, no restarted stream;
#  - the recording has exactly the input's length.
# A summary line gives RSS at the start and end of both, frames and time.
#
# Usage (meson test 'soak'): tests/test_soak.sh path/to/tokvox
# Environment: SOAK_SECONDS (120), SOAK_INTERVAL (5), SOAK_LOSS (0.1),
# SOAK_JITTER_MS (40), SOAK_HOLD_MS (60: the receiver's --jitter-ms),
# SOAK_STALL_S (1; 0 = no freeze), SOAK_ANON_SLACK_KB (128),
# SOAK_RSS_SLACK_KB (8192), SOAK_OUT (a folder to keep memory.tsv, the
# --stats files and figures.txt in; bench/live --soak reads them).
set -u
TOKVOX=$1
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
SAMPLE=$ROOT/samples/speech_en.wav
SECONDS_RUN=${SOAK_SECONDS:-120}
INTERVAL=${SOAK_INTERVAL:-5}
LOSS=${SOAK_LOSS:-0.1}
JITTER_MS=${SOAK_JITTER_MS:-40}
HOLD_MS=${SOAK_HOLD_MS:-60}
STALL_S=${SOAK_STALL_S:-1}
ANON_SLACK_KB=${SOAK_ANON_SLACK_KB:-128}
RSS_SLACK_KB=${SOAK_RSS_SLACK_KB:-8192}
OUT=${SOAK_OUT:-}
# the watch loop keeps time itself and needs the processes' own ids
LIMIT=""
. "$ROOT/tests/live/common.sh"
live_setup soak

# mem PID: "VmRSS RssAnon VmHWM" in kB, nothing once the process is gone
mem() {
    awk '/^(VmRSS|RssAnon|VmHWM):/ { v[$1] = $2 }
         END { if (length(v) == 3) print v["VmRSS:"], v["RssAnon:"], v["VmHWM:"] }' \
        "/proc/$1/status" 2>/dev/null
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# speech_for SECONDS OUT: the sample looped to exactly SECONDS
speech_for() {
    local length repeats
    length=$(soxi -D "$SAMPLE")
    repeats=$(awk -v s="$1" -v l="$length" 'BEGIN { r = int(s / l); print r }')
    sox "$SAMPLE" "$2" repeat "$repeats" trim 0 "$1"
}

# freeze PID SECONDS: the process stops getting the CPU, as under a heavy
# load or a page-in storm; its packets queue in the socket meanwhile
freeze() {
    kill -STOP "$1" && sleep "$2"
    kill -CONT "$1"
}

# watch START: a memory.tsv row every INTERVAL s while the sender runs
# (t, then VmRSS RssAnon VmHWM of the sender and of the receiver), the
# receiver frozen once at half time; fails and ends both after a deadline
watch() {
    local start=$1 k=1 stalled=0 t tx rx
    local deadline=$((SECONDS_RUN + SECONDS_RUN / 4 + 60))
    echo "t tx_rss tx_anon tx_hwm rx_rss rx_anon rx_hwm" >"$WORK/memory.tsv"
    while kill -0 "$tx_pid" 2>/dev/null; do
        t=$(elapsed "$start")
        tx=$(mem "$tx_pid"); rx=$(mem "$rx_pid")
        [ -n "$tx" ] && [ -n "$rx" ] && echo "$t $tx $rx" >>"$WORK/memory.tsv"
        if [ "$stalled" = 0 ] && awk "BEGIN { exit !($STALL_S > 0 && $t >= $SECONDS_RUN / 2) }"; then
            freeze "$rx_pid" "$STALL_S"
            stalled=1
        fi
        if awk "BEGIN { exit !($t > $deadline) }"; then
            bad "the sender still runs after ${deadline} s"
            kill "$tx_pid" "$rx_pid" 2>/dev/null
            return
        fi
        # the next row on the grid start + k * INTERVAL: no creeping
        sleep "$(awk -v s="$start" -v k=$k -v i="$INTERVAL" -v n="$(now)" \
            'BEGIN { w = s + k * i - n; print (w > 0 ? w : 0) }')"
        k=$((k + 1))
    done
}

# memory figures: at the start (the first row a second or more in: the
# model loaded, the stream flowing), after warm-up (the first row at or
# after 20 % of the run: every buffer and code path touched by then) and at
# the end (the last row)
memory_figures() {
    awk -v warm="$(awk "BEGIN { print 0.2 * $SECONDS_RUN }")" '
        NR > 1 && !s && $1 >= 1 { s = 1; print "t_start", $1; print "tx_rss_start", $2; print "rx_rss_start", $5 }
        NR > 1 && !w && $1 >= warm {
            w = 1
            print "tx_rss_warm", $2; print "tx_anon_warm", $3
            print "rx_rss_warm", $5; print "rx_anon_warm", $6
        }
        NR > 1 { n = split($0, last, " ") }
        END {
            if (n < 7) exit
            print "t_end", last[1]
            print "tx_rss_end", last[2]; print "tx_anon_end", last[3]; print "tx_hwm_end", last[4]
            print "rx_rss_end", last[5]; print "rx_anon_end", last[6]; print "rx_hwm_end", last[7]
        }' "$WORK/memory.tsv"
}
# window STATS KEY FROM TO: mean and max of KEY over the per-second lines
# with FROM <= t < TO (fractions of the run)
# (KEY - SCALE * depth with SCALE given: the part beyond what the adaptive
# jitter buffer aims for, which is what must not drift; its depth follows
# the jitter it measures, and a loaded machine adds jitter of its own)
window() {
    awk -v key="\"$2\":" -v from="$3" -v to="$4" -v n="$SECONDS_RUN" -v scale="${5:-0}" '
        !/"summary"/ {
            t = $0; sub(/.*"t":/, "", t); t += 0
            v = $0; if (!sub(".*" key, "", v)) next; v += 0
            d = $0; if (sub(/.*"depth":/, "", d)) v -= scale * (d + 0)
            if (t >= from * n && t < to * n) { sum += v; c++; if (c == 1 || v > max) max = v }
        }
        END { printf "%.2f %g\n", c ? sum / c : -1, max }' "$1"
}

# the figures, one "name value" per line, for the summary and bench/live
figures() {
    local w1 w2 l1 l2 d2 b1 b2 m1 m2
    memory_figures
    w1=$(window "$WORK/rx.jsonl" buffered 0.2 0.4); w2=$(window "$WORK/rx.jsonl" buffered 0.8 1.01)
    l1=$(window "$WORK/rx.jsonl" latency_ms 0.2 0.4); l2=$(window "$WORK/rx.jsonl" latency_ms 0.8 1.01)
    echo "buffered_warm ${w1% *}"; echo "buffered_end ${w2% *}"; echo "buffered_end_max ${w2#* }"
    d2=$(window "$WORK/rx.jsonl" depth 0.8 1.01); echo "depth_end_max ${d2#* }"
    echo "latency_warm ${l1% *}"; echo "latency_end ${l2% *}"
    b1=$(window "$WORK/rx.jsonl" buffered 0.2 0.4 1); b2=$(window "$WORK/rx.jsonl" buffered 0.8 1.01 1)
    m1=$(window "$WORK/rx.jsonl" latency_ms 0.2 0.4 20); m2=$(window "$WORK/rx.jsonl" latency_ms 0.8 1.01 20)
    echo "beyond_depth_warm ${b1% *}"; echo "beyond_depth_end ${b2% *}"
    echo "latency_beyond_depth_warm ${m1% *}"; echo "latency_beyond_depth_end ${m2% *}"
    for k in stream_frames sent dropped wall_s cpu_percent; do echo "tx_$k $(field "$WORK/tx.jsonl" $k)"; done
    for k in frames received lost concealed late buffered wall_s cpu_percent; do
        echo "rx_$k $(field "$WORK/rx.jsonl" $k)"
    done
    echo "input_samples $(samples "$WORK/in.wav")"
    echo "recorded_samples $(samples "$WORK/rx.wav" 2>/dev/null || echo 0)"
    echo "wall_s $(elapsed "$begin")"
    echo "loss $LOSS"; echo "jitter_ms $JITTER_MS"; echo "hold_ms $HOLD_MS"
    echo "stall_s $STALL_S"; echo "interval_s $INTERVAL"
}
f() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/figures.txt"; }
# growth WHO: RssAnon at the end minus at warm-up, kB, signed
growth() {
    awk -v a="$(f "$1_anon_end")" -v b="$(f "$1_anon_warm")" 'BEGIN { printf "%+d", a - b }'
}

check_memory() {
    local who
    for who in tx rx; do
        check "$who: RssAnon growth after warm-up (kB)" "$(f ${who}_anon_end) - $(f ${who}_anon_warm)" "<=" "$ANON_SLACK_KB"
        check "$who: VmRSS growth after warm-up (kB)" "$(f ${who}_rss_end) - $(f ${who}_rss_warm)" "<=" "$RSS_SLACK_KB"
    done
    check "memory rows up to the end" "$(f t_end)" ">=" "$SECONDS_RUN - 2 * $INTERVAL"
}

check_drift() {
    local frame_ms=20 cap
    # the hold and the simulated jitter plus two frames; or, when the
    # receiver's adaptive buffer measured more jitter than the simulation's
    # (a loaded machine adds its own), what it aims for: its low point at
    # most depth + 2 (it skips a frame above that), its high point that
    # plus the spread it measured, depth - 1: 2 * depth + 1 (= the first
    # bound at the default hold and the simulated jitter)
    cap=$(awk -v d="$(f depth_end_max)" "BEGIN { c = int(($HOLD_MS + $frame_ms - 1) / $frame_ms) + int(($JITTER_MS + $frame_ms - 1) / $frame_ms) + 2; if (2 * d + 1 > c) c = 2 * d + 1; print c }")
    # beyond the depth the receiver aims for (which follows the measured
    # jitter): growth there is a playout that falls behind the sender
    check "jitter buffer beyond its depth, mean frames: end vs warm-up" \
        "$(f beyond_depth_end) - $(f beyond_depth_warm)" "<=" 1
    check "jitter buffer beyond its depth, mean frames: warm-up vs end" \
        "$(f beyond_depth_warm) - $(f beyond_depth_end)" "<=" 1
    check "jitter buffer, most frames at the end" "$(f buffered_end_max)" "<=" "$cap"
    check "receiver latency beyond its depth (ms): end vs warm-up" \
        "$(f latency_beyond_depth_end) - $(f latency_beyond_depth_warm)" "<=" $frame_ms
    check "receiver latency beyond its depth (ms): warm-up vs end" \
        "$(f latency_beyond_depth_warm) - $(f latency_beyond_depth_end)" "<=" $frame_ms
    ! grep -q "restarted" "$WORK/rx.err" && ok || bad "the receiver saw a restart: $(cat "$WORK/rx.err")"
}

check_accounting() {
    check "frames played = frames made" "$(f rx_frames)" "==" "$(f tx_stream_frames)"
    check "frames played = received + lost" "$(f rx_frames)" "==" "$(f rx_received) + $(f rx_lost)"
    check "lost = dropped by the simulation" "$(f rx_lost)" "==" "$(f tx_dropped)"
    check "sent = made - dropped + 3 end packets" "$(f tx_sent)" "==" "$(f tx_stream_frames) - $(f tx_dropped) + 3"
    for who in tx rx; do
        for k in underruns overruns; do check "$who $k" "$(field "$WORK/$who.jsonl" $k)" "==" 0; done
    done
    check "recording length = input length" "$(f recorded_samples)" "==" "$(f input_samples)"
}

summary() {
    printf 'soak: %s s of audio, wall %s s; RSS at %s s -> at %s s: ' "$SECONDS_RUN" "$(f wall_s)" \
        "$(f t_start)" "$(f t_end)"
    printf 'sender %s -> %s kB (anon %s kB after warm-up, peak %s kB); ' "$(f tx_rss_start)" \
        "$(f tx_rss_end)" "$(growth tx)" "$(f tx_hwm_end)"
    printf 'receiver %s -> %s kB (anon %s kB, peak %s kB); ' "$(f rx_rss_start)" \
        "$(f rx_rss_end)" "$(growth rx)" "$(f rx_hwm_end)"
    printf 'frames made %s, dropped %s, received %s, concealed %s (late %s), played %s; ' \
        "$(f tx_stream_frames)" "$(f tx_dropped)" "$(f rx_received)" "$(f rx_concealed)" \
        "$(f rx_late)" "$(f rx_frames)"
    printf 'jitter buffer %s -> %s frames, latency %s -> %s ms\n' "$(f buffered_warm)" \
        "$(f buffered_end)" "$(f latency_warm)" "$(f latency_end)"
}

# keep what bench/live --soak turns into a report
keep() {
    [ -n "$OUT" ] || return 0
    mkdir -p "$OUT"
    cp "$WORK/memory.tsv" "$WORK/tx.jsonl" "$WORK/rx.jsonl" "$WORK/figures.txt" "$OUT/"
    echo "checks_passed $passed" >>"$OUT/figures.txt"
    echo "checks_failed $failed" >>"$OUT/figures.txt"
}

[ -f "$SAMPLE" ] || { echo "SKIP: $SAMPLE is missing"; exit 77; }
for tool in sox soxi awk; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ -r /proc/self/status ] || { echo "SKIP: no /proc"; exit 77; }
PORT=$((40000 + $$ % 20000))

speech_for "$SECONDS_RUN" "$WORK/in.wav"
start_listener rx $PORT --jitter-ms "$HOLD_MS"
begin=$(now)
"$TOKVOX" live --send 127.0.0.1:$PORT --input-file "$WORK/in.wav" --simulate-loss "$LOSS" \
    --simulate-jitter "$JITTER_MS" --seed 7 --stats "$WORK/tx.jsonl" -q 2>"$WORK/tx.err" &
tx_pid=$!
PIDS="$PIDS $tx_pid"
watch "$begin"
wait "$tx_pid" && ok || bad "sender: exit status $?: $(cat "$WORK/tx.err")"
wait "$rx_pid" && ok || bad "receiver: exit status $?: $(cat "$WORK/rx.err")"
figures >"$WORK/figures.txt"
check_memory
check_drift
check_accounting
summary
keep
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
