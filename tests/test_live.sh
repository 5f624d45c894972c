#!/bin/sh
# tokvox live end to end (docs/live.md):
#  1. local mode on samples/speech_en.wav: with --input-file/--record (no
#     audio device at all) the output matches `tokvox transcode` of the same
#     file (SNR > 40 dB after aligning; it is in fact the same stream); and
#     through PortAudio on an ALSA file PCM (tests/live/asoundrc.in) with the
#     device at 48 kHz, SNR > 20 dB against transcode of that input;
#  2. --send/--listen on 127.0.0.1: loss-free, the received audio equals
#     local mode (SNR > 40 dB); with 10 % simulated loss and 40 ms simulated
#     jitter the receiver keeps going, the audio is complete in length (within
#     one frame), 5-20 % of frames are concealed, and it stays close to the
#     loss-free run: log-spectral distance to it < 3 dB, and its distance to
#     the original at most 1 dB worse than the loss-free run's;
#  3. random bytes, other magic, version, model, truncated and overlong
#     datagrams at a receiver: it refuses them with one message per kind
#     (rate-limited) and still receives a whole stream.
# Usage (meson test runs it): tests/test_live.sh path/to/tokvox path/to/live_compare
set -u
TOKVOX=$1
COMPARE=$2
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
# every run of the command gets a time limit: a hang fails the check, not the suite
LIMIT="timeout -k 5 90"
SAMPLE=$ROOT/samples/speech_en.wav
LIVE=$ROOT/tests/live
. "$LIVE/common.sh"
live_setup live
# compare REF TEST OUT: align and score, JSON into OUT
compare() { "$COMPARE" "$1" "$2" >"$3" || bad "live_compare $1 $2"; }

[ -f "$SAMPLE" ] || { echo "SKIP: $SAMPLE is missing"; exit 77; }
for tool in sox soxi python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
MODEL_ID=$("$TOKVOX" info --json | sed -n 's/.*"model_id":[^"]*"\([0-9a-f]*\)".*/\1/p')
PORT=$((20000 + $$ % 20000))

# --- the command line ------------------------------------------------------
expect_ok "live --help" $LIMIT "$TOKVOX" live --help
expect_fail "send and listen" "two ends" $LIMIT "$TOKVOX" live --send 127.0.0.1:9 --listen 9
expect_fail "bad codebooks" "codebooks" $LIMIT "$TOKVOX" live --codebooks 0
expect_fail "bitrate off the grid" "offers 0.5 to 4 kbps" $LIMIT "$TOKVOX" live --bitrate 0.7 --fast \
    --input-file "$SAMPLE" --record "$WORK/x.wav"
expect_fail "bad loss" "simulate-loss" $LIMIT "$TOKVOX" live --send 127.0.0.1:9 --simulate-loss 1.5
expect_fail "bad target" "HOST:PORT" $LIMIT "$TOKVOX" live --send nowhere --input-file "$SAMPLE"
expect_fail "missing input file" "nope.wav" $LIMIT "$TOKVOX" live --input-file "$WORK/nope.wav" --record "$WORK/x.wav"
[ ! -e "$WORK/x.wav" ] && ok || bad "a failed run left its recording"
# a float file with a NaN and overs: played, with the reader's warning
sox -n -r 16000 -b 32 -e floating-point "$WORK/nan.wav" synth 0.5 sine 440 vol 0.5
python3 -c "
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-4:] = struct.pack('<f', float('nan')); b[-8:-4] = struct.pack('<f', 3.0)
open(sys.argv[1], 'wb').write(b)" "$WORK/nan.wav"
expect_ok "NaN input file" $LIMIT "$TOKVOX" live --input-file "$WORK/nan.wav" --record "$WORK/nan_out.wav" --fast
grep -q "nan.wav: 1 NaN/Inf sample read as 0" "$WORK/err.log" &&
    grep -q "nan.wav: 1 sample beyond full scale" "$WORK/err.log" && ok ||
    bad "no warning about the NaN and the over: $(cat "$WORK/err.log")"

# --- 1. local mode, no audio device ---------------------------------------
"$TOKVOX" transcode "$SAMPLE" "$WORK/ref.wav" --quiet
expect_ok "local --fast" $LIMIT "$TOKVOX" live --input-file "$SAMPLE" --record "$WORK/local.wav" --fast \
    --stats "$WORK/local.jsonl"
compare "$WORK/ref.wav" "$WORK/local.wav" "$WORK/c.json"
check "local vs transcode SNR" "$(field "$WORK/c.json" snr_db)" ">" 40
check "local vs transcode lag" "$(field "$WORK/c.json" lag)" "==" 0
[ "$(samples "$WORK/local.wav")" = "$(samples "$SAMPLE")" ] && ok || bad "local mode changed the length"
lines=$(grep -c '"mode":"local"' "$WORK/local.jsonl")
[ "$lines" -eq 7 ] && ok || bad "6.8 s gave $lines stats lines, not 6 + a summary"
grep -q '"summary":true.*"cpu_percent"' "$WORK/local.jsonl" && ok || bad "no summary line"

"$TOKVOX" transcode "$SAMPLE" "$WORK/ref4.wav" --codebooks 4 --quiet
# --bitrate 2 is 4 codebooks (0.5 kbps each)
expect_ok "local 2 kbps" $LIMIT "$TOKVOX" live --input-file "$SAMPLE" --record "$WORK/local4.wav" \
    --fast --bitrate 2 --stats "$WORK/local4.jsonl"
compare "$WORK/ref4.wav" "$WORK/local4.wav" "$WORK/c4.json"
check "2 kbps local vs transcode SNR" "$(field "$WORK/c4.json" snr_db)" ">" 40
check "2 kbps reported" "$(field "$WORK/local4.jsonl" kbps)" "==" 2

# paced like a microphone: a second of audio takes a second
start=$(date +%s.%N)
expect_ok "local paced" $LIMIT "$TOKVOX" live --input-file "$SAMPLE" --record "$WORK/paced.wav" --duration 1
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
check "paced run time" "$took" ">=" 0.95
[ "$(samples "$WORK/paced.wav")" = 16000 ] && ok || bad "--duration 1 recorded $(samples "$WORK/paced.wav") samples"

# Ctrl-C ends a session cleanly: flushed, recording written, exit status 0
$LIMIT "$TOKVOX" live --input-file "$SAMPLE" --record "$WORK/int.wav" --stats "$WORK/int.jsonl" \
    2>"$WORK/int.err" & p=$!
# after the first second of audio (its stats line), not after a fixed wait:
# on a loaded machine starting up can take longer than any wait we pick
for _ in $(seq 300); do [ -s "$WORK/int.jsonl" ] && break; sleep 0.05; done
sleep 0.5
kill -INT $p
wait $p && ok || bad "Ctrl-C: exit status $?: $(cat "$WORK/int.err")"
check "Ctrl-C: recorded samples" "$(samples "$WORK/int.wav" 2>/dev/null || echo 0)" ">=" 8000
check "Ctrl-C: recorded samples" "$(samples "$WORK/int.wav" 2>/dev/null || echo 0)" "<" 40000

# --- 1b. through PortAudio on the ALSA file PCM ----------------------------
mkdir -p "$WORK/home"
sed "s|@WORK@|$WORK|g" "$LIVE/asoundrc.in" >"$WORK/home/.asoundrc"
# alsa_run RATE NAME: the 3 s clip through tokvox_mic -> live -> tokvox_speaker
# with both devices at RATE; leaves NAME.wav (what was played) and NAME.jsonl
alsa_run() {
    rate=$1; name=$2
    sox -G "$WORK/clip.wav" -r "$rate" -e float -b 32 "$WORK/${name}_in.wav"
    # past the end of its infile the file plugin hands out stale buffer
    # contents, not silence: pad with more silence than the run will read
    sox "$WORK/${name}_in.wav" -t raw "$WORK/mic_in.raw" pad 0 1
    "$TOKVOX" transcode "$WORK/${name}_in.wav" "$WORK/${name}_ref.wav" --rate 16000 --quiet
    rm -f "$WORK"/*.fifo "$WORK"/*.fifo.ready
    mkfifo "$WORK/mic_tap.fifo" "$WORK/speaker.fifo"
    python3 "$LIVE/pace.py" $((rate * 4)) "$WORK/mic_tap.fifo" /dev/null & p1=$!
    python3 "$LIVE/pace.py" $((rate * 4)) "$WORK/speaker.fifo" "$WORK/$name.raw" & p2=$!
    PIDS="$PIDS $p1 $p2"
    for _ in $(seq 100); do
        [ -e "$WORK/mic_tap.fifo.ready" ] && [ -e "$WORK/speaker.fifo.ready" ] && break
        sleep 0.1
    done
    # a generous cushion: the check is about the audio path, not the latency
    expect_ok "local through ALSA at $rate Hz" env HOME="$WORK/home" $LIMIT "$TOKVOX" live \
        --input-device tokvox_mic --output-device tokvox_speaker --device-rate "$rate" \
        --buffer-ms 200 --duration 3.6 --stats "$WORK/$name.jsonl"
    sleep 0.3 # the pacer empties its FIFO
    kill $p1 $p2 2>/dev/null
    sox -t raw -e float -b 32 -r "$rate" -c 1 "$WORK/$name.raw" "$WORK/$name.wav"
    compare "$WORK/${name}_ref.wav" "$WORK/$name.wav" "$WORK/$name.json"
    check "ALSA at $rate Hz: latency found by alignment (samples)" \
        "$(field "$WORK/$name.json" lag)" ">=" 640
    check "ALSA at $rate Hz: underruns" "$(field "$WORK/$name.jsonl" underruns)" "==" 0
    echo "through ALSA at $rate Hz: $(cat "$WORK/$name.json"); reported latency" \
        "$(field "$WORK/$name.jsonl" latency_ms) ms"
}
if ! HOME=$WORK/home $LIMIT "$TOKVOX" live --list-devices 2>/dev/null | grep -q tokvox_mic; then
    echo "SKIP: PortAudio does not see the test ALSA devices (built without PortAudio?)"
else
    sox "$SAMPLE" "$WORK/clip.wav" trim 0 3
    # at the model's rate the device path adds nothing: the same samples
    alsa_run 16000 alsa16
    check "ALSA at 16 kHz vs transcode SNR" "$(field "$WORK/alsa16.json" snr_db)" ">" 20
    # at 48 kHz the audio is resampled both ways as a stream; the round trip
    # 16 -> 48 -> 16 kHz is not bit-exact, so the bound is on what is heard:
    # log-spectral distance to transcode < 1 dB (the codec itself is ~8 dB
    # from the original)
    alsa_run 48000 alsa48
    check "ALSA at 48 kHz vs transcode LSD" "$(field "$WORK/alsa48.json" lsd_db)" "<" 1
fi

# --- 2. sender and receiver on 127.0.0.1 -----------------------------------
sox "$SAMPLE" "$WORK/s3.wav" trim 0 3
expect_ok "local 3 s" $LIMIT "$TOKVOX" live --input-file "$WORK/s3.wav" --record "$WORK/s3_local.wav" --fast
# a fixed hold: the loss-free run must give exactly the local audio, which
# an adaptive buffer that sheds a frame after a burst from a loaded sender
# would not (tests/test_stream.c tests the adapting)
start_listener rx0 $PORT --jitter-ms 200 --fixed-jitter
start_listener rx1 $((PORT + 1)) --jitter-ms 200 --fixed-jitter
$LIMIT "$TOKVOX" live --send 127.0.0.1:$PORT --input-file "$WORK/s3.wav" 2>"$WORK/tx0.err" & tx0=$!
$LIMIT "$TOKVOX" live --send 127.0.0.1:$((PORT + 1)) --input-file "$WORK/s3.wav" --simulate-loss 0.1 \
    --simulate-jitter 40 --seed 7 --stats "$WORK/tx1.jsonl" 2>"$WORK/tx1.err"
wait $tx0 && ok || bad "loss-free sender: $(cat "$WORK/tx0.err")"
wait $rx0_pid && ok || bad "loss-free receiver: $(cat "$WORK/rx0.err")"
wait $rx1_pid && ok || bad "lossy receiver: $(cat "$WORK/rx1.err")"
n=$(samples "$WORK/s3.wav")
[ "$(samples "$WORK/rx0.wav")" = "$n" ] && ok || bad "loss-free: $(samples "$WORK/rx0.wav") samples of $n"
check "lossy length within a frame" "$(samples "$WORK/rx1.wav")" ">=" $((n - 320))
check "lossy length within a frame" "$(samples "$WORK/rx1.wav")" "<=" $((n + 320))
compare "$WORK/s3_local.wav" "$WORK/rx0.wav" "$WORK/n0.json"
check "loss-free network vs local SNR" "$(field "$WORK/n0.json" snr_db)" ">" 40
frames=$(field "$WORK/rx1.jsonl" frames)
concealed=$(field "$WORK/rx1.jsonl" concealed)
check "concealed share of frames" "$concealed / $frames" ">=" 0.05
check "concealed share of frames" "$concealed / $frames" "<=" 0.20
check "sender dropped" "$(field "$WORK/tx1.jsonl" dropped)" ">" 0
compare "$WORK/rx0.wav" "$WORK/rx1.wav" "$WORK/n01.json"
check "10 % loss vs loss-free, log-spectral distance (dB)" "$(field "$WORK/n01.json" lsd_db)" "<" 3
compare "$WORK/s3.wav" "$WORK/rx0.wav" "$WORK/o0.json"
compare "$WORK/s3.wav" "$WORK/rx1.wav" "$WORK/o1.json"
check "10 % loss, distance to the original (dB)" "$(field "$WORK/o1.json" lsd_db)" "<=" \
    "$(field "$WORK/o0.json" lsd_db) + 1"
echo "10 % loss: $concealed of $frames frames concealed; vs loss-free $(cat "$WORK/n01.json")"

# --- 3. foreign and broken packets -------------------------------------------
start_listener rx2 $((PORT + 2)) --jitter-ms 200 --fixed-jitter
python3 "$LIVE/junk.py" $((PORT + 2)) "$MODEL_ID" 3
python3 "$LIVE/junk.py" $((PORT + 2)) "$MODEL_ID" 20 & junk=$!
$LIMIT "$TOKVOX" live --send 127.0.0.1:$((PORT + 2)) --input-file "$WORK/s3.wav" 2>"$WORK/tx2.err"
wait $junk
wait $rx2_pid && ok || bad "receiver under junk: $(cat "$WORK/rx2.err")"
[ "$(samples "$WORK/rx2.wav")" = "$n" ] && ok || bad "under junk: $(samples "$WORK/rx2.wav") samples of $n"
compare "$WORK/s3_local.wav" "$WORK/rx2.wav" "$WORK/n2.json"
check "under junk vs local SNR" "$(field "$WORK/n2.json" snr_db)" ">" 40
for what in "not a tokvox datagram" "datagram version 3" "model id"; do
    c=$(grep -c "refusing.*$what" "$WORK/rx2.err")
    [ "$c" -ge 1 ] && [ "$c" -le 2 ] && ok || bad "'$what' reported $c times (want once, rate-limited)"
done
check "refused packets counted" "$(field "$WORK/rx2.jsonl" refused)" ">" 100
lines=$(grep -c refusing "$WORK/rx2.err")
check "refusal messages (rate-limited)" "$lines" "<=" 10

# --- 4. sealed calls: a key, and an attacker in the path --------------------
expect_ok "make a key" $LIMIT "$TOKVOX" live --make-key "$WORK/call.key"
[ "$(stat -c %a "$WORK/call.key")" = 600 ] && ok || bad "key file mode $(stat -c %a "$WORK/call.key")"
expect_fail "make-key keeps a file" "not overwritten" $LIMIT "$TOKVOX" live --make-key "$WORK/call.key"
"$TOKVOX" live --make-key "$WORK/other.key" 2>/dev/null
echo "not a key" >"$WORK/bad.key"
chmod 600 "$WORK/bad.key"
expect_fail "bad key file" "64 hex digits" $LIMIT "$TOKVOX" live --listen 9 --key-file "$WORK/bad.key"
expect_fail "listen address" "ADDRESS:PORT" $LIMIT "$TOKVOX" live --listen 127.0.0.1:x \
    --record "$WORK/never.wav"
# the receiver listens on 127.0.0.1; the sender sends through the attacker's
# relay; a foreign sender with another key calls the receiver directly
start_listener rx3 $((PORT + 3)) --jitter-ms 200 --fixed-jitter --key-file "$WORK/call.key"
python3 "$LIVE/attack.py" $((PORT + 4)) $((PORT + 3)) "$MODEL_ID" "$WORK/attack.ready" \
    >"$WORK/attack.json" & attack=$!
for _ in $(seq 100); do [ -e "$WORK/attack.ready" ] && break; sleep 0.1; done
$LIMIT "$TOKVOX" live --send 127.0.0.1:$((PORT + 3)) --input-file "$WORK/s3.wav" \
    --key-file "$WORK/other.key" -q 2>"$WORK/tx4.err" & foreign=$!
sleep 0.5
$LIMIT "$TOKVOX" live --send 127.0.0.1:$((PORT + 4)) --input-file "$WORK/s3.wav" \
    --key-file "$WORK/call.key" -q 2>"$WORK/tx3.err"
wait $foreign
wait $rx3_pid && ok || bad "sealed receiver: $(cat "$WORK/rx3.err")"
wait $attack
[ "$(samples "$WORK/rx3.wav")" = "$n" ] && ok || bad "sealed: $(samples "$WORK/rx3.wav") samples of $n"
compare "$WORK/s3_local.wav" "$WORK/rx3.wav" "$WORK/n3.json"
check "sealed call under attack vs local SNR (no injected frame played)" \
    "$(field "$WORK/n3.json" snr_db)" ">" 40
# 150 datagrams, each replayed once, forged twice and followed by an
# unsealed one (those the receiver still hears before it ends)
check "attacker's replays refused" "$(field "$WORK/rx3.jsonl" replayed)" ">" 100
check "attacker's forgeries refused" "$(field "$WORK/rx3.jsonl" unauthenticated)" ">" 300
for what in "not sealed with this call's key" "replayed" "the call's sender is"; do
    c=$(grep -c "refusing.*$what" "$WORK/rx3.err")
    [ "$c" -ge 1 ] && [ "$c" -le 3 ] && ok || bad "'$what' reported $c times (want once, rate-limited)"
done
echo "sealed call under attack: $(cat "$WORK/attack.json"); receiver $(tail -1 "$WORK/rx3.jsonl" | \
    sed 's/.*\("refused":[0-9]*\).*\("unauthenticated":[0-9]*\).*\("replayed":[0-9]*\).*/\1 \2 \3/')"
# a receiver that gets nothing it can trust says so and fails
start_listener rx5 $((PORT + 5)) --key-file "$WORK/call.key" --idle-timeout 1
python3 "$LIVE/junk.py" $((PORT + 5)) "$MODEL_ID" 2
wait $rx5_pid && bad "a keyed receiver of junk only exited 0" || ok
grep -q "nothing was received" "$WORK/rx5.err" && ok || bad "no 'nothing was received': $(cat "$WORK/rx5.err")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
