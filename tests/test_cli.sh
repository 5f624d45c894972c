#!/bin/sh
# End-to-end checks of the tokvox command on real files: the happy paths,
# stdin/stdout, resampling, and bad input (clear one-line errors, non-zero
# exit, nothing partial left behind, nothing clobbered).
# Usage (meson test runs it): tests/test_cli.sh path/to/tokvox
set -u
TOKVOX=$1
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
SAMPLE=$ROOT/samples/speech_en.wav
WORK=$(mktemp -d /tmp/tokvox-cli-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

. "$ROOT/tests/common.sh"
frames_of() { soxi -s "$1"; }
rate_of() { soxi -r "$1"; }

# --- help and discovery ------------------------------------------------
expect_ok "help" "$TOKVOX" --help
for cmd in encode decode transcode info plugins; do
    expect_ok "$cmd --help" "$TOKVOX" $cmd --help
done
expect_fail "unknown command" "unknown command" "$TOKVOX" frobnicate
expect_ok "plugins" "$TOKVOX" plugins
grep -q "grvq" "$WORK/out.log" && grep -q "stftcodec" "$WORK/out.log" || bad "plugins lacks grvq/stftcodec"
expect_ok "info" "$TOKVOX" info
grep -q "latency" "$WORK/out.log" || bad "info lacks latency"
expect_ok "info --json" "$TOKVOX" info --json
grep -q '"latency_ms"' "$WORK/out.log" || bad "info --json lacks latency_ms"
default_latency=$(sed -n 's/.*"latency_ms":[[:space:]]*\([0-9.]*\).*/\1/p' "$WORK/out.log")
# a shipped model by name, from any directory: the low-delay variant (K = 1)
(cd "$WORK" && "$TOKVOX" info tokvox-16k-ld --json) > "$WORK/ld.json" 2>&1 &&
    grep -q '"latency_ms":[[:space:]]*40' "$WORK/ld.json" && ok ||
    bad "info tokvox-16k-ld: $(head -c 300 "$WORK/ld.json")"
[ "$default_latency" != "" ] && [ "$default_latency" != "40" ] && ok ||
    bad "the default model should not be the low-delay one (latency_ms $default_latency)"
expect_fail "a name that is no shipped model" "nonesuch" "$TOKVOX" info nonesuch

# --- transcode, encode, decode -----------------------------------------
expect_ok "transcode" "$TOKVOX" transcode "$SAMPLE" "$WORK/t.wav"
grep -q "kbps" "$WORK/out.log" || bad "transcode does not print the bitrate"
[ "$(frames_of "$WORK/t.wav")" = "$(frames_of "$SAMPLE")" ] || bad "transcode changed the length"
expect_ok "encode" "$TOKVOX" encode "$SAMPLE" "$WORK/a.tvx"
expect_ok "decode" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/a.wav"
cmp -s "$WORK/a.wav" "$WORK/t.wav" || bad "encode+decode differs from transcode"
# the decode-time post-filter: on by default, off on request, the same codes
expect_ok "transcode --no-postfilter" "$TOKVOX" transcode "$SAMPLE" "$WORK/tnp.wav" --no-postfilter
cmp -s "$WORK/tnp.wav" "$WORK/t.wav" && bad "--no-postfilter changed nothing"
expect_ok "decode --no-postfilter" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/anp.wav" --no-postfilter
cmp -s "$WORK/anp.wav" "$WORK/tnp.wav" || bad "decode --no-postfilter differs from transcode --no-postfilter"
expect_fail "encode --no-postfilter" "decode the same either way" \
    "$TOKVOX" encode "$SAMPLE" "$WORK/np.tvx" --no-postfilter
expect_ok "transcode ld" "$TOKVOX" transcode "$SAMPLE" "$WORK/tld.wav" --model tokvox-16k-ld
expect_ok "transcode ld --no-postfilter" "$TOKVOX" transcode "$SAMPLE" "$WORK/tldnp.wav" \
    --model tokvox-16k-ld --no-postfilter
cmp -s "$WORK/tld.wav" "$WORK/tldnp.wav" || bad "--no-postfilter changed a model without one"
# a model decodes the streams of the earlier models its config lists (the
# same encoder and codebooks): the default reads the ld model's, not back
expect_ok "encode ld" "$TOKVOX" encode "$SAMPLE" "$WORK/ld.tvx" --model tokvox-16k-ld --quiet
cmp -s "$WORK/ld.tvx" "$WORK/a.tvx" && bad "ld and default streams name the same model"
expect_ok "decode an ld stream with the default" "$TOKVOX" decode "$WORK/ld.tvx" "$WORK/ldd.wav" --quiet
cmp -s "$WORK/ldd.wav" "$WORK/a.wav" || bad "the default decodes an ld stream unlike its own"
expect_fail "decode a default stream with ld" "model id differs" \
    "$TOKVOX" decode "$WORK/a.tvx" "$WORK/x.wav" --model tokvox-16k-ld
expect_ok "info on tvx" "$TOKVOX" info "$WORK/a.tvx" --json
grep -q '"num_codebooks":' "$WORK/out.log" || bad "tvx info lacks num_codebooks"
expect_ok "encode 4 codebooks" "$TOKVOX" encode "$SAMPLE" "$WORK/b.tvx" --codebooks 4 --quiet
[ "$(stat -c %s "$WORK/b.tvx")" -lt "$(stat -c %s "$WORK/a.tvx")" ] || bad "4 codebooks not smaller"
expect_ok "decode fewer codebooks" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/c.wav" --codebooks 2
expect_ok "decode to flac" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/a.flac"
# --bitrate picks the same codebooks as --codebooks: 0.5 kbps each (10 bits x 50 frames/s)
expect_ok "encode --bitrate 2" "$TOKVOX" encode "$SAMPLE" "$WORK/b2.tvx" --bitrate 2k --quiet
cmp -s "$WORK/b2.tvx" "$WORK/b.tvx" || bad "encode --bitrate 2k differs from --codebooks 4"
expect_ok "decode --bitrate 1" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/c1.wav" -b 1
cmp -s "$WORK/c1.wav" "$WORK/c.wav" || bad "decode --bitrate 1 differs from --codebooks 2"
expect_fail "bitrate off the grid" "offers 0.5 to 4 kbps in steps of 0.5" \
    "$TOKVOX" transcode "$SAMPLE" "$WORK/x.wav" --bitrate 1.2
expect_fail "bitrate above the file's" "b.tvx offers 0.5 to 2 kbps" \
    "$TOKVOX" decode "$WORK/b.tvx" "$WORK/x.wav" --bitrate 3
expect_fail "bitrate not a number" "--bitrate wants kbps" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" -b fast
expect_fail "bitrate and codebooks" "not both" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" -b 1 -n 2
# --threads splits the big kernel calls: the same bytes whatever the count
expect_ok "encode --threads 3" "$TOKVOX" encode "$SAMPLE" "$WORK/a3.tvx" --threads 3 --quiet
cmp -s "$WORK/a3.tvx" "$WORK/a.tvx" || bad "encode --threads 3 differs from 1 thread"
expect_ok "decode --threads 2" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/a2.wav" --threads 2
cmp -s "$WORK/a2.wav" "$WORK/a.wav" || bad "decode --threads 2 differs from 1 thread"
expect_fail "--threads 0" "--threads wants a number" "$TOKVOX" transcode "$SAMPLE" "$WORK/x.wav" --threads 0

# stdin and stdout
if "$TOKVOX" encode - - --quiet <"$SAMPLE" >"$WORK/p.tvx" 2>"$WORK/err.log" &&
   cmp -s "$WORK/p.tvx" "$WORK/a.tvx"; then ok; else bad "encode via pipes: $(cat "$WORK/err.log")"; fi
if cat "$WORK/a.tvx" | "$TOKVOX" decode - - >"$WORK/p.wav" 2>"$WORK/err.log" &&
   [ "$(frames_of "$WORK/p.wav")" = "$(frames_of "$SAMPLE")" ]; then ok; else bad "decode via pipes: $(cat "$WORK/err.log")"; fi

# other rates and channel counts come back at their own rate
sox "$SAMPLE" -r 44100 -c 2 "$WORK/st44.wav"
expect_ok "transcode 44.1k stereo" "$TOKVOX" transcode "$WORK/st44.wav" "$WORK/o44.wav" --quiet
[ "$(rate_of "$WORK/o44.wav")" = 44100 ] || bad "44.1k input not returned at 44.1k"
expect_ok "transcode --rate" "$TOKVOX" transcode "$WORK/st44.wav" "$WORK/o16.wav" --rate 16000 --quiet
[ "$(rate_of "$WORK/o16.wav")" = 16000 ] || bad "--rate 16000 ignored"
# sample formats: 8-bit, 24-bit, float, stereo 48 kHz, a 0-sample WAV
for spec in "-b 8 -e unsigned-integer:u8.wav" "-b 24:s24.wav" "-b 32 -e floating-point:f32.wav" \
            "-r 48000 -c 2:st48.wav"; do
    opts=${spec%%:*}; name=${spec##*:}
    sox "$SAMPLE" $opts "$WORK/$name" trim 0 1
    expect_ok "transcode $name" "$TOKVOX" transcode "$WORK/$name" "$WORK/out-$name" --quiet
    [ "$(frames_of "$WORK/out-$name")" = "$(frames_of "$WORK/$name")" ] || bad "$name: length changed"
done
sox -n -r 16000 -c 1 -b 16 "$WORK/zero.wav" trim 0 0
expect_fail "0-sample wav" "zero.wav" "$TOKVOX" transcode "$WORK/zero.wav" "$WORK/x.wav"
sox -n -r 8000 -c 6 "$WORK/six.flac" synth 0.5 sine 300
expect_ok "6-channel 8 kHz flac" "$TOKVOX" transcode "$WORK/six.flac" "$WORK/six.wav" --quiet

# --- bad input -----------------------------------------------------------
expect_fail "missing input" "nope.wav" "$TOKVOX" transcode "$WORK/nope.wav" "$WORK/x.wav"
: >"$WORK/empty.wav"
expect_fail "empty input" "empty.wav" "$TOKVOX" encode "$WORK/empty.wav" "$WORK/x.tvx"
head -c 5000 /dev/urandom >"$WORK/random.wav"
expect_fail "random bytes" "random.wav" "$TOKVOX" encode "$WORK/random.wav" "$WORK/x.tvx"
[ ! -e "$WORK/x.tvx" ] || bad "failed encode left an output"
expect_fail "random tvx" "random.wav" "$TOKVOX" decode "$WORK/random.wav" "$WORK/x.wav"
# a cut-off stream (version 2) decodes what is intact, says so and exits 3
head -c 100 "$WORK/a.tvx" >"$WORK/cut.tvx"
"$TOKVOX" decode "$WORK/cut.tvx" "$WORK/x.wav" 2>"$WORK/err.log"
st=$?
[ $st -eq 3 ] && grep -q "cut.tvx: stream cut off" "$WORK/err.log" && [ -e "$WORK/x.wav" ] && ok ||
    bad "truncated tvx: exit $st: $(cat "$WORK/err.log")"
rm -f "$WORK/x.wav"
cp "$WORK/a.tvx" "$WORK/flip.tvx"
printf '\377' | dd of="$WORK/flip.tvx" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_fail "corrupt tvx" "checksum" "$TOKVOX" decode "$WORK/flip.tvx" "$WORK/x.wav"
echo "keep me" >"$WORK/existing.wav"
expect_fail "failure keeps old output" "random.wav" "$TOKVOX" transcode "$WORK/random.wav" "$WORK/existing.wav" --force
grep -q "keep me" "$WORK/existing.wav" || bad "existing output clobbered"

# --- one error style, --json summaries, info on what is not a model ----------
expect_fail "unknown option" "tokvox transcode: unknown option --bitrte" "$TOKVOX" transcode "$SAMPLE" "$WORK/x.wav" --bitrte 2
expect_fail "missing value" "tokvox encode: option --codebooks wants a value" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" --codebooks
expect_fail "extra argument" "got 3 arguments" "$TOKVOX" transcode "$SAMPLE" "$WORK/x.wav" extra
expect_fail "encode has no --rate" "tokvox encode: --rate" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" --rate 8000
[ ! -e "$WORK/x.tvx" ] && ok || bad "a refused option left an output"
# every subcommand: getopt's complaint comes as one line naming the option
for cmd in encode decode transcode tokenize detokenize live; do
    expect_fail "$cmd unknown option" "tokvox $cmd: unknown option --bogus" "$TOKVOX" $cmd --bogus x y
    expect_fail "$cmd missing value" "tokvox $cmd: option --model wants a value" "$TOKVOX" $cmd x y --model
done
expect_fail "short option in a cluster" "tokvox tokenize: unknown option -z" "$TOKVOX" tokenize -qz x -o y
# progress on a terminal (script(1) gives the command one), none with --quiet
if command -v script >/dev/null; then
    "$TOKVOX" tokenize "$SAMPLE" -o "$WORK/ptok" -q
    for cmd in "transcode $SAMPLE $WORK/p.wav" "detokenize $WORK/ptok/speech_en.npy $WORK/pd.wav" \
               "tokstats $WORK/ptok"; do
        set -- $cmd
        rm -f "$WORK/p.wav" "$WORK/pd.wav"
        script -qc "'$TOKVOX' $cmd" /dev/null >"$WORK/tty.log" 2>&1
        grep -q "tokvox $1: .*real time" "$WORK/tty.log" && ok || bad "$1 shows no progress on a terminal: $(tr '\r' '\n' <"$WORK/tty.log" | tail -2)"
        rm -f "$WORK/p.wav" "$WORK/pd.wav"
        script -qc "'$TOKVOX' $cmd --quiet" /dev/null >"$WORK/tty.log" 2>&1
        ! grep -q "real time" "$WORK/tty.log" && ok || bad "$1 --quiet shows progress"
    done
else
    echo "note: script(1) is missing; progress checks skipped"
fi
expect_ok "encode --json" "$TOKVOX" encode "$SAMPLE" "$WORK/j.tvx" --json --quiet
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["command"]=="encode" and d["frames"]==342 and d["bitrate_kbps"]==4, d' "$WORK/out.log" && ok || bad "encode --json: $(cat "$WORK/out.log")"
expect_ok "decode --json=FILE" "$TOKVOX" decode "$WORK/j.tvx" - --json="$WORK/d.json" --quiet
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["command"]=="decode" and d["samples"]==108961 and not d["cut_off"], d' "$WORK/d.json" && ok || bad "decode --json: $(cat "$WORK/d.json")"
expect_ok "transcode --json" "$TOKVOX" transcode "$SAMPLE" "$WORK/j.wav" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["command"]=="transcode" and d["codebooks"]==8, d' "$WORK/out.log" && ok || bad "transcode --json: $(cat "$WORK/out.log")"
expect_fail "--json and stdout" "give --json=FILE" "$TOKVOX" decode "$WORK/j.tvx" - --json
expect_ok "plugins --json" "$TOKVOX" plugins --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert any(p.get("name")=="grvq" for p in d["plugins"]), d' "$WORK/out.log" && ok || bad "plugins --json"
expect_ok "info on audio" "$TOKVOX" info "$SAMPLE"
grep -q "audio, 16000 Hz, 1 channel, 6.81 s; not a model or a .tvx" "$WORK/out.log" && ok || bad "info on audio: $(cat "$WORK/out.log")"
printf '\223NUMPY\001\000v\000{}' >"$WORK/t.npy"
expect_ok "info on .npy" "$TOKVOX" info "$WORK/t.npy"
grep -q "a .npy array, not a model" "$WORK/out.log" && ok || bad "info on npy: $(cat "$WORK/out.log")"
expect_ok "info on a v2 .tvx" "$TOKVOX" info "$WORK/j.tvx" --json
grep -q '"sample_count":.*108961' "$WORK/out.log" && ok || bad "info reads the v2 trailer: $(cat "$WORK/out.log")"
expect_ok "info bitrates" "$TOKVOX" info
grep -q "bitrates      0.5 to 4 kbps in steps of 0.5 kbps (1 to 8 codebooks)" "$WORK/out.log" && ok || bad "info bitrates line"
# one unit everywhere: kbps in info's text and --json (model and .tvx), the
# same grid in tokvox --help, the codec commands' --help, README and man page
grid="0.5 to 4 kbps in steps of 0.5 kbps"
"$TOKVOX" info --json >"$WORK/m.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bitrates_kbps"]==[0.5*k for k in range(1,9)], d; assert not [k for k in d if k.endswith("_bps")], d' "$WORK/m.json" && ok || bad "info --json bitrates are not kbps: $(grep bitrates "$WORK/m.json")"
"$TOKVOX" info --json "$WORK/j.tvx" >"$WORK/t.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bitrate_kbps"]==4, d' "$WORK/t.json" && ok || bad "info --json on a .tvx: bitrate_kbps"
"$TOKVOX" info "$WORK/j.tvx" | grep -q "^bitrate       4 kbps$" && ok || bad "info on a .tvx does not say '4 kbps'"
for where in "tokvox --help:$("$TOKVOX" --help)" "encode --help:$("$TOKVOX" encode --help | tr -s ' \n' '  ')" \
             "transcode --help:$("$TOKVOX" transcode --help | tr -s ' \n' '  ')" \
             "live --help:$("$TOKVOX" live --help | tr -s ' \n' '  ')" \
             "README.md:$(tr -s ' \n' '  ' <"$ROOT/README.md")" "tokvox.1:$(tr -s ' \n' '  ' <"$ROOT/docs/tokvox.1")"; do
    case "$(echo "$where" | tr -s ' \n' '  ')" in
    *"$grid"*) ok ;;
    *) bad "${where%%:*} does not state bitrates as '$grid'" ;;
    esac
done
expect_ok "stereo is said" "$TOKVOX" encode "$WORK/st44.wav" "$WORK/st.tvx"
grep -q "2 channels mixed to mono" "$WORK/err.log" && ok || bad "stereo mixdown not said: $(cat "$WORK/err.log")"

# --- never write over an input, never replace a file of another kind -------
# expect_refused DESCRIPTION PATTERN COMMAND...: exit 2, one line naming PATTERN
expect_refused() {
    desc=$1; pattern=$2; shift 2
    "$@" >"$WORK/out.log" 2>"$WORK/err.log"
    st=$?
    [ "$st" -eq 2 ] || { bad "$desc: exit $st, not 2: $(cat "$WORK/err.log")"; return; }
    grep -q -- "$pattern" "$WORK/err.log" && [ "$(wc -l <"$WORK/err.log")" -eq 1 ] ||
        bad "$desc: $(cat "$WORK/err.log")"
    ok
}
cp "$SAMPLE" "$WORK/victim.wav"
sum_before=$(cksum <"$WORK/victim.wav")
ln "$WORK/victim.wav" "$WORK/hard.wav"
ln -s victim.wav "$WORK/soft.wav"
expect_refused "transcode onto its input" "is the input" "$TOKVOX" transcode "$WORK/victim.wav" "$WORK/victim.wav"
expect_refused "encode onto its input" "is the input" "$TOKVOX" encode "$WORK/victim.wav" "$WORK/victim.wav" --force
expect_refused "through a hard link" "is the input" "$TOKVOX" transcode "$WORK/victim.wav" "$WORK/hard.wav" --force
expect_refused "through a symbolic link" "is the input" "$TOKVOX" transcode "$WORK/soft.wav" "$WORK/victim.wav"
expect_refused "stdin is the output" "is the input stdin" "$TOKVOX" transcode - "$WORK/victim.wav" <"$WORK/victim.wav"
expect_refused "stdout is the input" "stdout is the input" sh -c '"$0" encode "$1" - >>"$1"' "$TOKVOX" "$WORK/victim.wav"
expect_refused "detokenize onto its input" "is the input" "$TOKVOX" detokenize "$WORK/victim.wav" "$WORK/hard.wav"
[ "$(cksum <"$WORK/victim.wav")" = "$sum_before" ] && ok || bad "an input was changed"
echo "notes" >"$WORK/notes.txt"
expect_refused "encode over a text file" "not a .tvx bitstream; --force" "$TOKVOX" encode "$SAMPLE" "$WORK/notes.txt"
expect_refused "encode over a WAV" "not a .tvx bitstream" "$TOKVOX" encode "$SAMPLE" "$WORK/hard.wav"
expect_refused "decode over a .tvx" "not an audio file" "$TOKVOX" decode "$WORK/a.tvx" "$WORK/b.tvx"
expect_refused "transcode over a text file" "not an audio file" "$TOKVOX" transcode "$SAMPLE" "$WORK/notes.txt"
grep -q notes "$WORK/notes.txt" && ok || bad "a refused output was changed"
expect_ok "encode over a .tvx" "$TOKVOX" encode "$SAMPLE" "$WORK/b.tvx" --quiet
expect_ok "transcode over a WAV" "$TOKVOX" transcode "$SAMPLE" "$WORK/t.wav" --quiet
expect_ok "--force replaces" "$TOKVOX" encode "$SAMPLE" "$WORK/notes.txt" --force --quiet
[ "$(head -c 3 "$WORK/notes.txt")" = TVX ] && ok || bad "--force did not replace"
expect_fail "missing folder" "missing" "$TOKVOX" transcode "$SAMPLE" "$WORK/missing/out.wav" --quiet
expect_fail "disk full" "full" "$TOKVOX" encode "$SAMPLE" /dev/full --quiet
expect_fail "unsupported extension" "xyz" "$TOKVOX" transcode "$SAMPLE" "$WORK/out.xyz" --quiet
expect_fail "too many codebooks" "codebooks" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" --codebooks 64
expect_fail "bad codebooks" "codebooks" "$TOKVOX" encode "$SAMPLE" "$WORK/x.tvx" --codebooks abc
expect_fail "missing model" "no-model" "$TOKVOX" transcode "$SAMPLE" "$WORK/x.wav" --model "$WORK/no-model.safetensors"
expect_fail "model is not a model" "random.wav" "$TOKVOX" info "$WORK/random.wav"
ls -a "$WORK" | grep -q '\.tmp-' && bad "temporary files left behind"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
