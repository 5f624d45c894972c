#!/bin/sh
# Streaming end to end (issue 13): pipes that get output while their input
# still arrives, memory that does not grow with the input, .tvx version 2 on
# pipes and cut off, raw PCM in and out, WAV with "unknown" sizes.
# No wall-clock assertion: a slow feeder waits until it *sees* output before
# it sends the rest of its input (a time limit only turns a hang into a
# failure).
# Usage (meson test runs it): tests/test_pipes.sh path/to/tokvox
set -u
TOKVOX=$1
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
SAMPLE=$ROOT/samples/speech_en.wav
WORK=$(mktemp -d /tmp/tokvox-pipes-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
. "$ROOT/tests/common.sh"
for tool in sox /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# 34 s of speech (the sample five times), as WAV and as raw s16le mono 16 kHz.
sox "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$WORK/long.wav"
sox "$WORK/long.wav" -t raw -e signed -b 16 -L "$WORK/long.raw"

# feed FIRST FILE WATCH MIN: FIRST bytes of FILE, then wait until WATCH holds
# more than MIN bytes (at most 120 s: then note the timeout), then the rest.
feed() {
    head -c "$1" "$2"
    i=0
    while [ "$(size_of "$3")" -le "$4" ]; do
        i=$((i + 1))
        if [ $i -gt 1200 ]; then : >"$WORK/timeout"; break; fi
        sleep 0.1
    done
    tail -c +$(($1 + 1)) "$2"
}
# slow_pipe NAME FIRST IN MIN OUT COMMAND...: COMMAND reads IN from a slow
# feeder on stdin and writes stdout through cat into OUT; OUT must pass MIN
# bytes before the feeder sends more than FIRST bytes.
slow_pipe() {
    name=$1 first=$2 in=$3 min=$4 out=$5; shift 5
    rm -f "$WORK/timeout" "$out"
    if feed "$first" "$in" "$out" "$min" | "$@" 2>"$WORK/err.log" | cat >"$out"; then
        if [ -e "$WORK/timeout" ]; then bad "$name: no output before the input ended"; else ok; fi
    else
        bad "$name: failed: $(cat "$WORK/err.log")"
    fi
}

# same_codes NAME A.tvx B.tvx: the two streams carry the same frames (their
# blocks may differ: a live pipe gets small ones), seen as the same decode
same_codes() {
    rm -f "$WORK/codes-a.raw" "$WORK/codes-b.raw"
    "$TOKVOX" decode --raw "$2" "$WORK/codes-a.raw" --quiet &&
        "$TOKVOX" decode --raw "$3" "$WORK/codes-b.raw" --quiet &&
        cmp -s "$WORK/codes-a.raw" "$WORK/codes-b.raw" && ok || bad "$1"
}

# --- output starts before the input ends ----------------------------------------
# 12 s of WAV first (44-byte header + 2 bytes a sample), output must pass its header
slow_pipe "encode - -" $((44 + 12 * 32000)) "$WORK/long.wav" 200 "$WORK/slow.tvx" \
    "$TOKVOX" encode - - --quiet
expect_ok "encode file" "$TOKVOX" encode "$WORK/long.wav" "$WORK/long.tvx" --quiet
same_codes "encode from a slow pipe differs from the file's" "$WORK/slow.tvx" "$WORK/long.tvx"
# a live pipe on both ends gets frames well within a step of a file's size
# (64 frames, 1.28 s): 0.6 s of audio must bring the header (52 bytes) and
# more than 100 bytes of blocks
slow_pipe "encode - - frames within 0.6 s" $((44 + 6 * 3200)) "$WORK/long.wav" 152 \
    "$WORK/prompt.tvx" "$TOKVOX" encode - - --quiet
same_codes "encode with small blocks differs from the file's" "$WORK/prompt.tvx" "$WORK/long.tvx"
# the file's blocks stay as they were (50 frames); the live pipe's are smaller
"$TOKVOX" info --json "$WORK/long.tvx" | grep -q '"frames_per_block":[[:space:]]*50' && ok ||
    bad "a .tvx file does not have 50-frame blocks"
"$TOKVOX" info --json "$WORK/prompt.tvx" | grep -q '"frames_per_block":[[:space:]]*10,' && ok ||
    bad "a live pipe's .tvx does not have 10-frame blocks at 4 kbps"
slow_pipe "transcode - -" $((44 + 12 * 32000)) "$WORK/long.wav" 40000 "$WORK/slow.wav" \
    "$TOKVOX" transcode - - --quiet
expect_ok "transcode file" "$TOKVOX" transcode "$WORK/long.wav" "$WORK/long-t.wav" --quiet
sox "$WORK/slow.wav" -t raw "$WORK/slow.s16" 2>/dev/null
sox "$WORK/long-t.wav" -t raw "$WORK/long-t.s16"
cmp -s "$WORK/slow.s16" "$WORK/long-t.s16" && ok || bad "transcode from a slow pipe differs from the file's"
# the first third of the bitstream (v2: header, then whole blocks as they come)
slow_pipe "decode - -" $(($(size_of "$WORK/long.tvx") / 3)) "$WORK/long.tvx" 40000 "$WORK/slow-d.wav" \
    "$TOKVOX" decode - - --quiet
expect_ok "decode file" "$TOKVOX" decode "$WORK/long.tvx" "$WORK/long-d.wav"
sox "$WORK/slow-d.wav" -t raw "$WORK/slow-d.s16" 2>/dev/null
sox "$WORK/long-d.wav" -t raw "$WORK/long-d.s16"
cmp -s "$WORK/slow-d.s16" "$WORK/long-d.s16" && ok || bad "decode from a slow pipe differs from the file's"
# from a live pipe decode writes each block's audio as it comes: a stream of
# 10-frame blocks (the live encode's above) cut after its header (52 bytes)
# and 3 blocks (106 bytes each, 0.6 s) must bring 0.25 s of audio (8000 bytes)
slow_pipe "decode - - a block at a time" $((52 + 3 * 106)) "$WORK/prompt.tvx" $((44 + 8000)) \
    "$WORK/prompt-d.wav" "$TOKVOX" decode - - --quiet
sox "$WORK/prompt-d.wav" -t raw "$WORK/prompt-d.s16" 2>/dev/null
cmp -s "$WORK/prompt-d.s16" "$WORK/long-d.s16" && ok || bad "decode a block at a time differs from the file's"
# raw PCM on a slow pipe, as `arecord -f S16_LE -r 16000 -c 1 | tokvox encode --raw - -`
slow_pipe "encode --raw - -" $((12 * 32000)) "$WORK/long.raw" 200 "$WORK/slow-raw.tvx" \
    "$TOKVOX" encode --raw --raw-rate 16000 --raw-chan 1 --raw-format s16le - - --quiet
same_codes "raw input codes differ from the WAV's" "$WORK/slow-raw.tvx" "$WORK/long.tvx"

# --- .tvx version 2 through pipes, and cut off ----------------------------------
if "$TOKVOX" encode - - --quiet <"$WORK/long.wav" | "$TOKVOX" decode - - --quiet >"$WORK/pipe.wav" 2>"$WORK/err.log"; then
    sox "$WORK/pipe.wav" -t raw "$WORK/pipe.s16"
    cmp -s "$WORK/pipe.s16" "$WORK/long-d.s16" && ok || bad "encode | decode differs from the files"
else bad "encode | decode: $(cat "$WORK/err.log")"; fi
half=$(($(size_of "$WORK/long.tvx") / 2))
head -c $half "$WORK/long.tvx" >"$WORK/cut.tvx"
"$TOKVOX" decode "$WORK/cut.tvx" "$WORK/cut.wav" >"$WORK/out.log" 2>"$WORK/err.log"
st=$?
if [ $st -eq 3 ] && [ "$(wc -l <"$WORK/err.log")" -eq 1 ] && grep -q "cut.tvx: stream cut off" "$WORK/err.log" &&
   grep -q "intact frames" "$WORK/err.log"; then ok; else bad "cut-off stream: exit $st: $(cat "$WORK/err.log")"; fi
# the intact part is the start of the whole decode, sample for sample
cut_n=$(soxi -s "$WORK/cut.wav")
full_n=$(soxi -s "$WORK/long-d.wav")
[ "$cut_n" -gt $((full_n / 3)) ] && [ "$cut_n" -lt "$full_n" ] && ok || bad "cut-off decode has $cut_n of $full_n samples"
sox "$WORK/cut.wav" -t raw "$WORK/cut.s16"
head -c $((2 * cut_n - 2 * 640)) "$WORK/long-d.s16" >"$WORK/a.s16"
head -c $((2 * cut_n - 2 * 640)) "$WORK/cut.s16" >"$WORK/b.s16"
cmp -s "$WORK/a.s16" "$WORK/b.s16" && ok || bad "the intact part differs from the full decode"
head -c $half "$WORK/long.tvx" | "$TOKVOX" decode - - >"$WORK/cutpipe.wav" 2>"$WORK/err.log"
[ $? -eq 3 ] && grep -q "stdin: stream cut off" "$WORK/err.log" && ok || bad "cut-off pipe: $(cat "$WORK/err.log")"

# --- raw out, and WAV with "unknown" sizes in ------------------------------------
expect_ok "transcode --raw" "$TOKVOX" transcode --raw "$WORK/long.raw" "$WORK/t.raw" --quiet
cmp -s "$WORK/t.raw" "$WORK/long-t.s16" && ok || bad "raw transcode differs from the WAV's samples"
expect_ok "decode --raw" "$TOKVOX" decode --raw "$WORK/long.tvx" "$WORK/d.raw" --quiet
cmp -s "$WORK/d.raw" "$WORK/long-d.s16" && ok || bad "raw decode differs from the WAV's samples"
sox "$SAMPLE" -t wav - 2>/dev/null | cat >"$WORK/unknown.wav"   # sox can't seek back: sizes say "unknown"
expect_ok "encode unknown-size WAV" "$TOKVOX" encode "$WORK/unknown.wav" "$WORK/u.tvx" --quiet
expect_ok "encode sample" "$TOKVOX" encode "$SAMPLE" "$WORK/s.tvx" --quiet
cmp -s "$WORK/u.tvx" "$WORK/s.tvx" && ok || bad "WAV with unknown sizes codes differently"
"$TOKVOX" decode "$WORK/s.tvx" - --quiet | cat >"$WORK/ours.wav"   # ours to a pipe: unknown sizes too
expect_ok "read back our pipe WAV" "$TOKVOX" encode "$WORK/ours.wav" "$WORK/o.tvx" --quiet
[ "$(soxi -s "$WORK/ours.wav" 2>/dev/null)" != 0 ] && ok || bad "sox cannot read our pipe WAV"
expect_fail "--raw-rate without --raw" "give --raw too" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" --raw-rate 8000
expect_fail "bad --raw-format" "--raw-format wants" "$TOKVOX" encode --raw --raw-format s13 - "$WORK/x.tvx"

# --- memory does not grow with the input -----------------------------------------
# (not under AddressSanitizer: its quarantine keeps freed memory, so RSS
# grows with the number of allocations whatever the program does)
if ldd "$TOKVOX" 2>/dev/null | grep -q 'libasan'; then
    echo "note: ASan build, memory checks skipped"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi
# peak RSS of CMD reading D seconds of 48 kHz stereo WAV from a pipe (kB)
rss() {
    secs=$1; shift
    sox -n -r 48000 -c 2 -b 16 -t wav - synth "$secs" pinknoise vol 0.3 2>/dev/null |
        /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err.log" || echo "failed: $*: $(cat "$WORK/err.log")" >&2
    cat "$WORK/rss"
}
for cmd in transcode encode; do
    short=$(rss 10 "$TOKVOX" $cmd - - --quiet)
    long=$(rss 300 "$TOKVOX" $cmd - - --quiet)
    echo "$cmd peak RSS: 10 s -> $short kB, 5 min -> $long kB"
    [ $((long - short)) -lt 5000 ] && ok || bad "$cmd: RSS grows with the input ($short kB for 10 s, $long kB for 5 min)"
done
sox -n -r 16000 -c 1 -b 16 -t wav - synth 10 pinknoise vol 0.3 2>/dev/null | "$TOKVOX" encode - "$WORK/10s.tvx" --quiet
sox -n -r 16000 -c 1 -b 16 -t wav - synth 300 pinknoise vol 0.3 2>/dev/null | "$TOKVOX" encode - "$WORK/300s.tvx" --quiet
short=$(/usr/bin/time -f %M "$TOKVOX" decode "$WORK/10s.tvx" - --quiet 2>&1 >/dev/null)
long=$(/usr/bin/time -f %M "$TOKVOX" decode "$WORK/300s.tvx" - --quiet 2>&1 >/dev/null)
echo "decode peak RSS: 10 s -> $short kB, 5 min -> $long kB"
[ $((long - short)) -lt 5000 ] && ok || bad "decode: RSS grows with the input ($short kB, $long kB)"

for secs in 10 300; do
    mkdir -p "$WORK/c$secs"
    sox -n -r 48000 -c 2 -b 16 "$WORK/c$secs/a.wav" synth $secs pinknoise vol 0.3
    /usr/bin/time -f %M -o "$WORK/rss$secs" "$TOKVOX" tokenize "$WORK/c$secs" -o "$WORK/t$secs" --quiet -j 1 ||
        bad "tokenize $secs s"
done
short=$(cat "$WORK/rss10")
long=$(cat "$WORK/rss300")
echo "tokenize peak RSS: 10 s -> $short kB, 5 min -> $long kB"
[ $((long - short)) -lt 5000 ] && ok || bad "tokenize: RSS grows with the input ($short kB, $long kB)"
short=$(/usr/bin/time -f %M "$TOKVOX" detokenize "$WORK/t10/a.npy" - 2>&1 >/dev/null)
long=$(/usr/bin/time -f %M "$TOKVOX" detokenize "$WORK/t300/a.npy" - 2>&1 >/dev/null)
echo "detokenize peak RSS: 10 s -> $short kB, 5 min -> $long kB"
[ $((long - short)) -lt 5000 ] && ok || bad "detokenize: RSS grows with the input ($short kB, $long kB)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
