#!/bin/sh
# End-to-end checks of tokvox tokenize / detokenize / tokstats on a small
# corpus built from samples/: mirrored outputs, bad files in errors.jsonl,
# tokens independent of -j, of --shard and of streaming vs offline encoding,
# resume, atomic outputs on Ctrl-C, layouts, --shard-out, manifest lines that
# once crashed tokstats, the strict .npy reader, and (when /usr/bin/python3
# has numpy) numpy.load on every output.
# Usage (meson test runs it): tests/test_tokenize.sh path/to/tokvox path/to/test_tokens
set -u
TOKVOX=$1
HELPER=$2
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
SAMPLE=$ROOT/samples/speech_en.wav
WORK=$(mktemp -d /tmp/tokvox-tokenize-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

. "$ROOT/tests/common.sh"   # ok, bad, expect_fail, same_tokens
# a sanitizer's report: in an ASan build a heap overflow can exit 1, which
# an expected failure would hide
SANITIZER='Sanitizer|runtime error:'
# run EXPECTED_STATUS DESCRIPTION COMMAND...
run() {
    want=$1; desc=$2; shift 2
    "$@" >"$WORK/out.log" 2>"$WORK/err.log"
    got=$?
    if grep -Eq "$SANITIZER" "$WORK/err.log"; then
        bad "$desc: $(grep -Em1 "$SANITIZER" "$WORK/err.log")"
    elif [ "$got" -eq "$want" ]; then ok; else bad "$desc: exit $got, want $want: $(head -3 "$WORK/err.log")"; fi
}
json_num() { sed -n "s/.*\"$2\":[[:space:]]*\([0-9.]*\).*/\1/p" "$1" | head -1; }
no_temporaries() { ! find "$1" -name '*.tmp-*' | grep -q .; }

[ -f "$SAMPLE" ] || { echo "SKIP: $SAMPLE is missing"; exit 77; }

# --- the corpus: nested folders, other formats and rates, bad files ----------
IN=$WORK/in
mkdir -p "$IN/a/b" "$IN/c" "$IN/bad"
cp "$SAMPLE" "$IN/a/speech_en.wav"
sox "$ROOT/samples/speech_child.wav" "$IN/a/b/child.flac"
sox "$SAMPLE" -r 44100 -c 2 "$IN/c/st44.wav" trim 0 2
sox -n -r 8000 "$IN/c/tone.ogg" synth 1.5 sine 300
: >"$IN/bad/empty.wav"
head -c 4000 /dev/urandom >"$IN/bad/random.wav"
cp "$SAMPLE" "$IN/.hidden.wav"          # hidden: not an input
echo "not audio" >"$IN/c/readme.md"      # no audio extension: not an input

# --- help and usage errors ----------------------------------------------------
for cmd in tokenize detokenize tokstats; do run 0 "$cmd --help" "$TOKVOX" $cmd --help; done
expect_fail "no -o" "OUTDIR" "$TOKVOX" tokenize "$IN"
expect_fail "missing input" "nope" "$TOKVOX" tokenize "$WORK/nope" -o "$WORK/x"
expect_fail "bad layout" "layout" "$TOKVOX" tokenize "$IN" -o "$WORK/x" --layout zigzag
expect_fail "bad shard" "shard" "$TOKVOX" tokenize "$IN" -o "$WORK/x" --shard 3/3
expect_fail "too many codebooks" "codebooks" "$TOKVOX" tokenize "$IN" -o "$WORK/x" --codebooks 9

# --- a run: mirrored tree, manifest, stats, errors -----------------------------
run 3 "tokenize with bad files (exit 3)" "$TOKVOX" tokenize "$IN" -o "$WORK/j2" -j 2
for f in a/speech_en.npy a/b/child.npy c/st44.npy c/tone.npy; do
    [ -s "$WORK/j2/$f" ] || bad "missing output $f"
done
[ "$(find "$WORK/j2" -name '*.npy' | wc -l)" -eq 4 ] || bad "not 4 outputs: $(find "$WORK/j2" -name '*.npy')"
[ "$(wc -l <"$WORK/j2/manifest.jsonl")" -eq 4 ] || bad "manifest has not 4 lines"
[ "$(wc -l <"$WORK/j2/errors.jsonl")" -eq 2 ] || bad "errors.jsonl has not 2 lines"
grep -q '"path":"[^"]*bad/empty.wav","error":"[^"]*empty.wav' "$WORK/j2/errors.jsonl" || bad "empty.wav not in errors.jsonl"
grep -q 'bad/random.wav' "$WORK/j2/errors.jsonl" || bad "random.wav not in errors.jsonl"
grep -q '"output":"c/st44.npy".*"sample_rate":44100.*"frames":101,"codebooks":8' "$WORK/j2/manifest.jsonl" ||
    bad "manifest entry of st44 wrong: $(grep st44 "$WORK/j2/manifest.jsonl")"
grep -q '"model_id":"[0-9a-f]\{16\}"' "$WORK/j2/manifest.jsonl" || bad "manifest lacks the model hash"
[ "$(json_num "$WORK/j2/stats.json" errors)" = 2 ] || bad "stats.json errors != 2"
[ "$(json_num "$WORK/j2/stats.json" encoded)" = 4 ] || bad "stats.json encoded != 4"
grep -q '"x_real_time"' "$WORK/j2/stats.json" || bad "stats.json lacks x_real_time"
grep -q "errors.jsonl" "$WORK/err.log" || bad "summary does not point at errors.jsonl"
no_temporaries "$WORK/j2" || bad "temporaries left"

# --- deterministic: -j, sharding, streaming --------------------------------------
run 3 "tokenize -j 1" "$TOKVOX" tokenize "$IN" -o "$WORK/j1" -j 1 --quiet
[ ! -s "$WORK/err.log" ] || bad "--quiet printed: $(cat "$WORK/err.log")"
msg=$(same_tokens "$WORK/j1" "$WORK/j2") && ok || bad "-j 1 and -j 2 differ: $msg"
for i in 0 1 2; do
    "$TOKVOX" tokenize "$IN" -o "$WORK/sh" --shard $i/3 -q 2>>"$WORK/shard.log"
done
msg=$(same_tokens "$WORK/sh" "$WORK/j2") && ok || bad "union of 3 shards differs from one run: $msg"
[ "$(cat "$WORK"/sh/manifest.*-of-3.jsonl | wc -l)" -eq 4 ] || bad "shard manifests do not list 4 files"
[ "$(cat "$WORK"/sh/errors.*-of-3.jsonl | wc -l)" -eq 2 ] || bad "shard errors do not list 2 files"
[ ! -e "$WORK/sh/manifest.jsonl" ] || bad "a --shard run wrote manifest.jsonl"
for f in a/speech_en c/st44; do
    if "$HELPER" stream-encode "$IN/$f.wav" "$WORK/stream.npy" 12345 2>"$WORK/err.log" &&
       cmp -s "$WORK/stream.npy" "$WORK/j2/$f.npy"; then ok; else bad "streaming tokens of $f differ: $(cat "$WORK/err.log")"; fi
done
# the .tvx route gives the same codes: decoding both gives the same samples
run 0 "encode" "$TOKVOX" encode "$IN/a/speech_en.wav" "$WORK/en.tvx" -q
run 0 "decode" "$TOKVOX" decode "$WORK/en.tvx" "$WORK/en_tvx.wav"
run 0 "detokenize" "$TOKVOX" detokenize "$WORK/j2/a/speech_en.npy" "$WORK/en_npy.wav"
cmp -s "$WORK/en_tvx.wav" "$WORK/en_npy.wav" && ok || bad "detokenize differs from encode+decode"
run 0 "detokenize 44.1k" "$TOKVOX" detokenize "$WORK/j2/c/st44.npy" "$WORK/st44.wav"
[ "$(soxi -r "$WORK/st44.wav")" = 44100 ] && [ "$(soxi -s "$WORK/st44.wav")" = 88200 ] && ok ||
    bad "detokenize did not restore rate and length from the manifest"

# --- resume --------------------------------------------------------------------
touch -d '2001-01-01' "$WORK/j2/a/speech_en.npy"
cp "$WORK/j2/manifest.jsonl" "$WORK/manifest.before"
run 3 "re-run" "$TOKVOX" tokenize "$IN" -o "$WORK/j2" -q
cmp -s "$WORK/manifest.before" "$WORK/j2/manifest.jsonl" && ok || bad "re-run changed the manifest's entries"
[ "$(json_num "$WORK/j2/stats.json" skipped)" = 4 ] && [ "$(json_num "$WORK/j2/stats.json" encoded)" = 0 ] && ok ||
    bad "re-run did not skip 4: $(cat "$WORK/j2/stats.json")"
[ "$(stat -c %Y "$WORK/j2/a/speech_en.npy")" -lt 1000000000 ] || bad "re-run rewrote a complete output"
rm "$WORK/j2/c/tone.npy"
head -c 200 "$WORK/j1/a/b/child.npy" >"$WORK/j2/a/b/child.npy"   # cut short by a crash
rm "$WORK/j2/manifest.jsonl"                                    # and the manifest lost
run 3 "resume" "$TOKVOX" tokenize "$IN" -o "$WORK/j2" -q
[ "$(json_num "$WORK/j2/stats.json" skipped)" = 2 ] && [ "$(json_num "$WORK/j2/stats.json" encoded)" = 2 ] && ok ||
    bad "resume did not redo exactly 2: $(cat "$WORK/j2/stats.json")"
[ "$(wc -l <"$WORK/j2/manifest.jsonl")" -eq 4 ] || bad "resumed manifest has not 4 lines"
msg=$(same_tokens "$WORK/j1" "$WORK/j2") && ok || bad "resumed outputs differ: $msg"
# a manifest input, relative to its folder, merges into the same manifest
printf '{"path": "a/speech_en.wav"}\n{"nopath": 1}\n' >"$IN/list.jsonl"
run 3 "manifest input" "$TOKVOX" tokenize "$IN/list.jsonl" -o "$WORK/j2" -q
[ "$(json_num "$WORK/j2/stats.json" skipped)" = 1 ] || bad "manifest input did not skip its file"
[ "$(wc -l <"$WORK/j2/manifest.jsonl")" -eq 4 ] || bad "manifest lost the entries of earlier runs"
grep -q 'list.jsonl:2' "$WORK/j2/errors.jsonl" || bad "bad manifest line not in errors.jsonl"
printf 'path\tspeaker\na/b/child.flac\tx\n' >"$IN/list.tsv"
run 0 "tsv input" "$TOKVOX" tokenize "$IN/list.tsv" -o "$WORK/tsv" -q
[ -s "$WORK/tsv/a/b/child.npy" ] || bad "tsv manifest output not mirrored"

# --- Ctrl-C: stop after the current files, nothing partial -----------------------
mkdir -p "$WORK/many"
for i in $(seq 10 49); do cp "$SAMPLE" "$WORK/many/s$i.wav"; done
"$TOKVOX" tokenize "$WORK/many" -o "$WORK/int" -j 1 -q &
pid=$!
# interrupt as soon as the first file is out, so the run is surely mid-way
for i in $(seq 200); do
    find "$WORK/int" -name '*.npy' 2>/dev/null | grep -q . && break
    sleep 0.05
done
kill -INT $pid
wait $pid
status=$?
n_npy=$(find "$WORK/int" -name '*.npy' | wc -l)
if [ "$status" -eq 130 ]; then
    ok
    [ "$n_npy" -lt 40 ] || bad "SIGINT did not stop the run"
    grep -q '"interrupted":[[:space:]]*true' "$WORK/int/stats.json" || bad "stats.json not marked interrupted"
elif [ "$status" -eq 0 ] && [ "$n_npy" -eq 40 ]; then
    echo "note: the run finished before SIGINT; interrupt checks are partial"
else
    bad "SIGINT: exit $status"
fi
no_temporaries "$WORK/int" || bad "SIGINT left temporaries"
[ "$(wc -l <"$WORK/int/manifest.jsonl")" -eq "$n_npy" ] || bad "manifest after SIGINT does not list the $n_npy outputs"
run 0 "outputs after SIGINT are complete" "$TOKVOX" tokstats "$WORK/int"

# --- layouts ---------------------------------------------------------------------------
run 0 "detokenize codebooks" "$TOKVOX" detokenize "$WORK/j1/a/b/child.npy" "$WORK/cb.wav"
for layout in flat delay; do
    run 0 "tokenize $layout" "$TOKVOX" tokenize "$IN/a" -o "$WORK/$layout" --layout $layout -q
    run 0 "detokenize $layout (layout from the manifest)" "$TOKVOX" detokenize "$WORK/$layout/b/child.npy" "$WORK/$layout.wav"
    cmp -s "$WORK/cb.wav" "$WORK/$layout.wav" && ok || bad "$layout layout does not decode to the same audio"
    cp "$WORK/$layout/b/child.npy" "$WORK/lone-$layout.npy"
    expect_fail "$layout read as codebooks" "lone-$layout.npy" "$TOKVOX" detokenize "$WORK/lone-$layout.npy" "$WORK/x.wav"
    run 0 "detokenize --layout $layout" "$TOKVOX" detokenize "$WORK/lone-$layout.npy" "$WORK/lone.wav" --layout $layout
done
# --- --json summaries, as encode/decode/info/tokstats give them ---------------------
run 0 "tokenize --json" "$TOKVOX" tokenize "$IN/a" -o "$WORK/js" --json -q
python3 - "$WORK/out.log" "$WORK/js/stats.json" "$WORK/js" >"$WORK/py.log" 2>&1 <<'PY' && ok || bad "tokenize --json: $(tail -3 "$WORK/py.log")"
import json, sys
j = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
assert j["command"] == "tokenize" and j["output"] == sys.argv[3], j
assert (j["files"], j["encoded"], j["skipped"], j["errors"]) == (2, 2, 0, 0), j
assert all(j[k] == v for k, v in s.items()), "differs from stats.json: %s / %s" % (j, s)
PY
run 3 "tokenize --json=FILE with errors" "$TOKVOX" tokenize "$IN/bad" "$IN/c" -o "$WORK/jsb" --json="$WORK/jsb.json" -q
[ ! -s "$WORK/out.log" ] && [ "$(json_num "$WORK/jsb.json" errors)" = 2 ] && [ "$(json_num "$WORK/jsb.json" encoded)" = 2 ] && ok ||
    bad "tokenize --json=FILE: $(cat "$WORK/jsb.json" "$WORK/out.log")"
expect_fail "tokenize --json=FILE over an input" "names the input" "$TOKVOX" tokenize "$IN/a/speech_en.wav" -o "$WORK/x" --json="$IN/a/speech_en.wav"
run 0 "detokenize --json" "$TOKVOX" detokenize "$WORK/delay/b/child.npy" "$WORK/dj.wav" --json
python3 - "$WORK/out.log" "$WORK/delay/manifest.jsonl" "$WORK/dj.wav" >"$WORK/py.log" 2>&1 <<'PY' && ok || bad "detokenize --json: $(tail -3 "$WORK/py.log")"
import json, sys, wave
j = json.load(open(sys.argv[1]))
m = [json.loads(l) for l in open(sys.argv[2]) if '"b/child.npy"' in l][0]
w = wave.open(sys.argv[3])
assert j["command"] == "detokenize" and j["layout"] == "delay" and j["codebooks"] == 8, j
assert j["frames"] == m["frames"] and j["samples"] == m["samples"], (j, m)
assert j["output_rate"] == w.getframerate() == m["sample_rate"] and j["bitrate_kbps"] == 4, j
PY
run 0 "detokenize --json=FILE -" "$TOKVOX" detokenize "$WORK/j1/a/b/child.npy" - --json="$WORK/dj.json" --codebooks 2
[ "$(json_num "$WORK/dj.json" codebooks)" = 2 ] && [ "$(json_num "$WORK/dj.json" bitrate_kbps)" = 1 ] && ok ||
    bad "detokenize --json=FILE: $(cat "$WORK/dj.json")"
expect_fail "detokenize --json and stdout" "give --json=FILE" "$TOKVOX" detokenize "$WORK/j1/a/b/child.npy" - --json

run 0 "tokstats" "$TOKVOX" tokstats "$WORK/j1"
[ "$(grep -c '^ *[0-7] ' "$WORK/out.log")" -eq 8 ] || bad "tokstats does not list 8 codebooks: $(cat "$WORK/out.log")"
run 0 "tokstats --json" "$TOKVOX" tokstats "$WORK/delay" --json
grep -q '"perplexity"' "$WORK/out.log" || bad "tokstats --json lacks perplexity"
# a file whose codes go bad part-way (an out-of-range code in its third
# block of rows): named, and none of its codes counted, though tokstats reads
# a block at a time and the first blocks read well: the table is the other
# file's alone
mkdir -p "$WORK/badin/b"
sox "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$SAMPLE" "$WORK/badin/long.wav" # > 2048 frames
cp "$IN/a/b/child.flac" "$WORK/badin/b/"
run 0 "tokenize for tokstats on a bad code" "$TOKVOX" tokenize "$WORK/badin" -o "$WORK/badstats" -q
run 0 "tokenize the other file alone" "$TOKVOX" tokenize "$WORK/badin/b" -o "$WORK/childstats" -q
run 0 "tokstats of the other file" "$TOKVOX" tokstats "$WORK/childstats"
tail -n +2 "$WORK/out.log" >"$WORK/child.table"
# int16 codes, 8 per row after a 128-byte header: row 2100's first code
printf '\377\177' | dd of="$WORK/badstats/long.npy" bs=1 seek=$((128 + 2100 * 16)) conv=notrunc 2>/dev/null
run 1 "tokstats: a code out of range part-way" "$TOKVOX" tokstats "$WORK/badstats"
grep -q 'long\.npy' "$WORK/err.log" && grep -q ': 1 files' "$WORK/out.log" &&
    tail -n +2 "$WORK/out.log" | cmp -s - "$WORK/child.table" && ok ||
    bad "tokstats counted codes of a bad file: $(cat "$WORK/err.log" "$WORK/out.log" "$WORK/child.table")"

run 0 "fewer codebooks" "$TOKVOX" tokenize "$IN/a" -o "$WORK/k4" --codebooks 4 -q
grep -q '"shape":\[342,4\]' "$WORK/k4/manifest.jsonl" || bad "--codebooks 4 shape wrong"
run 0 "shard-out" "$TOKVOX" tokenize "$IN/a" "$IN/c" -o "$WORK/packs" --shard-out 3 -q
[ -s "$WORK/packs/shard-00000.npy" ] && [ -s "$WORK/packs/shard-00001.npy" ] && [ ! -e "$WORK/packs/shard-00002.npy" ] && ok ||
    bad "--shard-out 3 of 4 files did not make 2 packs: $(ls "$WORK/packs")"
[ "$(cat "$WORK"/packs/shard-*.index.jsonl | wc -l)" -eq 4 ] || bad "pack indexes do not list 4 utterances"
grep -q '"utterance":"a/speech_en.npy","input":"[^"]*","offset":[0-9]*,"frames":342' "$WORK"/packs/shard-0000*.index.jsonl ||
    bad "pack index lacks speech_en"

# --- manifest lines that crashed tokstats ---------------------------------------------
# tests/fuzz/regressions/manifest/tokstats-*.jsonl: the fuzz replay reads them
# with the parser alone, but the crashes were in the commands, so here they
# are added to a real run's manifest ("a.npy" -> a real output) and the
# commands run on it.  A crash exits >= 128, or 1 with a sanitizer report.
REGRESSIONS=$ROOT/tests/fuzz/regressions/manifest
# add_regression NAME OUTDIR: the lines of NAME, appended to OUTDIR's manifest
add_regression() {
    sed 's/"a\.npy"/"speech_en.npy"/' "$REGRESSIONS/$1.jsonl" >>"$2/manifest.jsonl"
}
# flat_npy FILE K: one frame of K codebooks of 1024 codes in the flat layout,
# int32 as numpy writes it: codebook j's id is j*1024 (its code 0)
flat_npy() {
    dict="{'descr': '<i4', 'fortran_order': False, 'shape': ($2,), }"
    # spaces and a newline pad the header to a multiple of 64 bytes
    pad=$(( (64 - (10 + ${#dict} + 1) % 64) % 64 ))
    {
        printf '\223NUMPY\001\000'"$(printf '\\%03o' $((${#dict} + pad + 1)))"'\000%s' "$dict"
        printf "%${pad}s\n" ''
        j=0
        while [ $j -lt "$2" ]; do # little-endian j*1024
            printf "\\000$(printf '\\%03o\\%03o' $((j * 4 % 256)) $((j / 64)))\\000"
            j=$((j + 1))
        done
    } >"$1"
}
run 0 "tokenize for the tokstats regressions" "$TOKVOX" tokenize "$IN/a" -o "$WORK/keycase" -q
cp -R "$WORK/keycase" "$WORK/flat100"
# an "OUTPUT" key before "output": tokstats once took the number for the
# output name (a case-blind lookup) and passed NULL to strcmp
add_regression tokstats-output-key-case-segv "$WORK/keycase"
run 0 "tokstats: OUTPUT key before output" "$TOKVOX" tokstats "$WORK/keycase"
grep -q ': 2 files' "$WORK/out.log" || bad "tokstats did not count each output once: $(head -1 "$WORK/out.log")"
run 0 "detokenize: OUTPUT key before output" "$TOKVOX" detokenize "$WORK/keycase/speech_en.npy" "$WORK/keycase.wav"
# resume takes the line read last: it has no model hash, so that file is redone
run 0 "tokenize: OUTPUT key before output" "$TOKVOX" tokenize "$IN/a" -o "$WORK/keycase" -q
[ "$(json_num "$WORK/keycase/stats.json" encoded)" = 1 ] && [ "$(json_num "$WORK/keycase/stats.json" skipped)" = 1 ] && ok ||
    bad "resume over the OUTPUT lines did not redo exactly 1: $(cat "$WORK/keycase/stats.json")"
[ "$(wc -l <"$WORK/keycase/manifest.jsonl")" -eq 2 ] && ! grep -q OUTPUT "$WORK/keycase/manifest.jsonl" && ok ||
    bad "rewritten manifest kept the damaged lines: $(cat "$WORK/keycase/manifest.jsonl")"
# a flat entry of 100 codebooks (more than any run writes): tokstats once
# counted its codes into a table sized for the 8 codebooks of the others
add_regression tokstats-flat-100-codebooks-heap-overflow "$WORK/flat100"
flat_npy "$WORK/flat100/b.npy" 100
run 1 "tokstats: flat entry of 100 codebooks" "$TOKVOX" tokstats "$WORK/flat100"
grep -q 'b\.npy' "$WORK/err.log" && grep -q ': 2 files' "$WORK/out.log" && ok ||
    bad "tokstats did not leave out b.npy alone: $(cat "$WORK/err.log" "$WORK/out.log")"
expect_fail "detokenize: flat entry of 100 codebooks" "b\.npy" "$TOKVOX" detokenize "$WORK/flat100/b.npy" "$WORK/x.wav"

# --- tokens of another model ---------------------------------------------------------
# the ld model's tokens decode with the default (its config lists the ld
# model's id: the same encoder and codebooks); the default's are refused by ld
run 0 "tokenize with ld" "$TOKVOX" tokenize "$IN/a/b" -o "$WORK/ldtok" --model tokvox-16k-ld -q
run 0 "detokenize ld tokens with the default" "$TOKVOX" detokenize "$WORK/ldtok/child.npy" "$WORK/ldtok.wav"
expect_fail "detokenize default tokens with ld" "tokens of model" \
    "$TOKVOX" detokenize "$WORK/childstats/child.npy" "$WORK/x.wav" --model tokvox-16k-ld

# --- the strict reader -------------------------------------------------------------------
head -c 4000 /dev/urandom >"$WORK/random.npy"
expect_fail "random .npy" "random.npy" "$TOKVOX" detokenize "$WORK/random.npy" "$WORK/x.wav"
head -c 300 "$WORK/j1/a/speech_en.npy" >"$WORK/cut.npy"
expect_fail "truncated .npy" "cut.npy" "$TOKVOX" detokenize "$WORK/cut.npy" "$WORK/x.wav"
cp "$WORK/j1/a/speech_en.npy" "$WORK/range.npy"
printf '\377\177' | dd of="$WORK/range.npy" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_fail "code out of range" "range.npy: element" "$TOKVOX" detokenize "$WORK/range.npy" "$WORK/x.wav"
[ ! -e "$WORK/x.wav" ] || bad "a failed detokenize left an output"

# --- numpy, when there is one ---------------------------------------------------------------
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    if /usr/bin/python3 - "$WORK" >"$WORK/py.log" 2>&1 <<'PY'
import json, os, sys
import numpy as np
work = sys.argv[1]
for line in open(os.path.join(work, "j1", "manifest.jsonl")):
    e = json.loads(line)
    path = os.path.join(work, "j1", e["output"])
    a = np.load(path)
    assert a.dtype == np.int16 and a.shape == (e["frames"], 8), (path, a.dtype, a.shape)
    assert 0 <= a.min() and a.max() < 1024
    f = np.load(os.path.join(work, "flat", e["output"].replace("a/", "", 1))) if e["output"].startswith("a/") else None
    if f is not None:
        assert f.ndim == 1 and f.dtype == np.int16
        assert (f.reshape(-1, 8) - np.arange(8) * 1024 == a).all(), "flat != codebooks"
        d = np.load(os.path.join(work, "delay", e["output"].replace("a/", "", 1)))
        assert d.shape == (a.shape[0] + 7, 8)
        for k in range(8):
            assert (d[k:k + a.shape[0], k] == a[:, k]).all() and (d[:k, k] == 1024).all()
    np.save(os.path.join(work, "resaved.npy"), a)
    assert open(os.path.join(work, "resaved.npy"), "rb").read() == open(path, "rb").read(), "not numpy's bytes"
a = np.load(os.path.join(work, "j1", "a", "speech_en.npy"))
np.save(os.path.join(work, "np64.npy"), a.astype(np.int64))
np.save(os.path.join(work, "np32flat.npy"), (a.astype(np.int32) + np.arange(8) * 1024).reshape(-1))
np.save(os.path.join(work, "npbig.npy"), a.astype(">i2"))
np.save(os.path.join(work, "npfortran.npy"), np.asfortranarray(a))
packs = [np.load(os.path.join(work, "packs", f)) for f in sorted(os.listdir(os.path.join(work, "packs"))) if f.startswith("shard-") and f.endswith(".npy")]
joined = np.concatenate(packs)
for f in sorted(os.listdir(os.path.join(work, "packs"))):
    if f.endswith(".index.jsonl"):
        p = np.load(os.path.join(work, "packs", f.replace(".index.jsonl", ".npy")))
        for line in open(os.path.join(work, "packs", f)):
            i = json.loads(line)
            u = np.load(os.path.join(work, "packs", i["utterance"]))
            assert (p[i["offset"]:i["offset"] + i["frames"]] == u).all(), i
PY
    then ok; else bad "numpy checks: $(tail -5 "$WORK/py.log")"; fi
    run 0 "detokenize numpy int64" "$TOKVOX" detokenize "$WORK/np64.npy" "$WORK/np64.wav"
    run 0 "detokenize numpy int32 flat" "$TOKVOX" detokenize "$WORK/np32flat.npy" "$WORK/np32.wav" --layout flat
    cmp -s "$WORK/np64.wav" "$WORK/np32.wav" && ok || bad "numpy int64 and flat int32 decode differently"
    expect_fail "big-endian" "npbig.npy" "$TOKVOX" detokenize "$WORK/npbig.npy" "$WORK/x.wav"
    expect_fail "fortran order" "npfortran.npy" "$TOKVOX" detokenize "$WORK/npfortran.npy" "$WORK/x.wav"
else
    echo "note: /usr/bin/python3 has no numpy; numpy.load checks skipped"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
