#!/bin/sh
# The bad-input matrix of the tokvox command: every kind of input it reads
# (audio .wav/.flac/.ogg/.aiff, .tvx, .npy tokens, .safetensors models,
# manifest.jsonl) empty, random, cut at every header boundary and lying about
# its sizes; absurd rates, channel counts and sample values; plugins that are
# not shared objects or sit in folders nobody may read; outputs that cannot
# be written (missing or read-only folder, read-only file system, full disk).
#
# A bad case must fail cleanly: exit status 1..127 (no signal), no sanitizer
# report, one line on stderr naming the file (or folder) and the problem, no
# output left behind and an existing output left as it was (each case
# alternates between the two), no temporaries.  Odd but valid input (NaN,
# overs, 1 sample, 6 channels, extreme legal rates) must give a correct
# result.  test_cli.sh has the happy paths; this is only the matrix.
# Usage (meson test runs it): tests/test_badinput.sh path/to/tokvox
# (BADINPUT_VERBOSE=1 prints every case with the message it got).
set -u
TOKVOX=$1
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
SAMPLE=$ROOT/samples/speech_en.wav
MODEL=$ROOT/models/tokvox-16k.safetensors
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/tokvox-badinput-XXXXXX)
trap 'chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
IN=$WORK/in    # crafted inputs
O=$WORK/out    # where outputs go
mkdir -p "$IN" "$O"
passed=0
failed=0
xfailed=0
n_case=0

for tool in "$PYTHON" sox soxi; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
[ -f "$SAMPLE" ] && [ -f "$MODEL" ] || { echo "SKIP: samples or model missing"; exit 77; }

# Cases that fail today because of bugs in files this test does not own;
# they are reported as XFAIL (and as XPASS once fixed: then drop them here).
KNOWN_BAD=""
known_bad() { case " $KNOWN_BAD " in *" $1 "*) return 0 ;; esac; return 1; }

ok() { passed=$((passed + 1)); }
bad() {
    if known_bad "$case_name"; then
        xfailed=$((xfailed + 1)); echo "XFAIL (known bug): $*"
    else
        failed=$((failed + 1)); echo "FAIL: $*"
    fi
}

# ---- running one case -----------------------------------------------------

# An older output of the kind the command writes (an output of another kind
# is refused before any input is read, test_cli.sh checks that), or text
# where the command writes neither audio nor a bitstream.
echo "an older output, to be left alone" >"$WORK/keep"
sox "$SAMPLE" "$WORK/keep.wav" trim 0 0.1
"$TOKVOX" encode "$WORK/keep.wav" "$WORK/keep.tvx" --quiet || { echo "FAIL: cannot encode"; exit 1; }
kept_for() {
    case $1 in
    *.tvx) echo "$WORK/keep.tvx" ;;
    *.wav | *.flac | *.ogg | *.aiff) echo "$WORK/keep.wav" ;;
    *) echo "$WORK/keep" ;;
    esac
}
same_as_kept() { cmp -s "$1" "$(kept_for "$1")"; }

# Every other case finds its output already there: it must stay as it was.
# "-": an output this script cannot look at (a device, another namespace).
prepare_output() {
    n_case=$((n_case + 1))
    preexisting=no
    [ "$1" != - ] || return 0
    rm -rf "$1"
    case $1 in */tokens) return 0 ;; esac # a folder: checked for tokens only
    if [ $((n_case % 2)) -eq 0 ] && [ -d "$(dirname "$1")" ] && [ -w "$(dirname "$1")" ]; then
        cp "$(kept_for "$1")" "$1" 2>/dev/null
    fi
    preexisting=$([ -f "$1" ] && echo yes || echo no)
}

# "" when the output is as it was before the run, else what is wrong.
output_problem() {
    out=$1
    [ "$out" != - ] || return 0
    dir=$(dirname "$out")
    if ls -a "$dir" 2>/dev/null | grep -q '\.tmp-'; then echo "temporary left in $dir"; return; fi
    if [ -d "$out" ]; then
        # tokenize's folder: its run records may be there, but no tokens
        if find "$out" -name '*.npy' -o -name '*.tmp-*' | grep -q .; then echo "tokens or temporaries in $out"; fi
    elif [ "$preexisting" = yes ]; then
        same_as_kept "$out" || echo "existing $out was changed"
    elif [ -e "$out" ] || [ -L "$out" ]; then
        echo "output $out was left behind"
    fi
}

# run COMMAND...: runs it, sets status; the logs are $WORK/out.log, err.log
run() {
    "$@" >"$WORK/out.log" 2>"$WORK/err.log"
    status=$?
}

# "" when the run crashed in no way, else how it did.
crash_problem() {
    if [ "$status" -ge 128 ]; then echo "killed by signal $((status - 128))"; return; fi
    if grep -Eq 'Sanitizer|runtime error:|double free|corrupted' "$WORK/err.log"; then
        echo "sanitizer/libc report: $(grep -Em1 'Sanitizer|runtime error:|double free|corrupted' "$WORK/err.log")"
    fi
}

# judge_failure WHERE PROBLEM: the run just made failed cleanly.  WHERE is
# the path the message must name, PROBLEM an extended regex (any case) it
# must match.  Uses case_name and out.
judge_failure() {
    why=$(crash_problem)
    [ -z "$why" ] || { bad "$case_name: $why"; return; }
    [ "$status" -ne 0 ] || { bad "$case_name: succeeded"; return; }
    msg=$(cat "$WORK/err.log")
    [ "$(wc -l <"$WORK/err.log")" -eq 1 ] || { bad "$case_name: not one line on stderr: $msg"; return; }
    printf '%s' "$msg" | grep -qF -- "$1" || { bad "$case_name: message does not name $1: $msg"; return; }
    printf '%s' "$msg" | grep -qEi -- "$2" || { bad "$case_name: message lacks /$2/: $msg"; return; }
    why=$(output_problem "$out")
    [ -z "$why" ] || { bad "$case_name: $why"; return; }
    known_bad "$case_name" && echo "XPASS: $case_name works now: drop it from KNOWN_BAD"
    [ -z "${BADINPUT_VERBOSE:-}" ] || echo "ok: $case_name: $msg"
    ok
}

# expect_fail NAME OUT WHERE PROBLEM COMMAND...: a clean failure.
expect_fail() {
    case_name=$1 out=$2 where=$3 problem=$4; shift 4
    prepare_output "$out"
    run "$@"
    judge_failure "$where" "$problem"
}

# expect_ok NAME OUT COMMAND...: exit 0, no crash, OUT written.
expect_ok() {
    case_name=$1 out=$2; shift 2
    prepare_output "$out"
    run "$@"
    why=$(crash_problem)
    [ -z "$why" ] || { bad "$case_name: $why"; return 1; }
    [ "$status" -eq 0 ] || { bad "$case_name: exit $status: $(cat "$WORK/err.log")"; return 1; }
    [ -s "$out" ] && ! same_as_kept "$out" || { bad "$case_name: no output"; return 1; }
    ok
}

# expect_either NAME OUT.tvx WHERE PROBLEM COMMAND...: inputs whose fate is
# libsndfile's (damaged data after a valid header): a clean failure, or a
# success whose output decodes.
expect_either() {
    case_name=$1 out=$2 where=$3 problem=$4; shift 4
    prepare_output "$out"
    run "$@"
    if [ "$status" -ne 0 ] || [ -n "$(crash_problem)" ]; then
        judge_failure "$where" "$problem"
    elif "$TOKVOX" decode "$out" "$WORK/check.wav" 2>"$WORK/err.log"; then
        ok
    else
        bad "$case_name: its output does not decode: $(cat "$WORK/err.log")"
    fi
}

# expect_cut NAME OUT WHERE COMMAND...: a version-2 stream cut off: exit 3,
# one line naming the file and saying so, OUT holds the intact part.
expect_cut() {
    case_name=$1 out=$2 where=$3; shift 3
    prepare_output "$out"
    run "$@"
    why=$(crash_problem)
    [ -z "$why" ] || { bad "$case_name: $why"; return; }
    [ "$status" -eq 3 ] || { bad "$case_name: exit $status, not 3: $(cat "$WORK/err.log")"; return; }
    msg=$(cat "$WORK/err.log")
    [ "$(wc -l <"$WORK/err.log")" -eq 1 ] || { bad "$case_name: not one line on stderr: $msg"; return; }
    printf '%s' "$msg" | grep -qF -- "$where" && printf '%s' "$msg" | grep -qE 'cut off|truncated' ||
        { bad "$case_name: message: $msg"; return; }
    [ -s "$out" ] && ! same_as_kept "$out" || { bad "$case_name: no output"; return; }
    ok
}

# ---- crafting the inputs --------------------------------------------------

# libvorbis and libogg, behind libsndfile's Ogg reader and writer, leak
# when an open or a write fails (cf. libsndfile #922, xiph/vorbis #125; the
# fuzz target suppresses the same): not ours.  Our leaks are still reported.
printf 'leak:libvorbis.so\nleak:libogg.so\n' >"$WORK/lsan.supp"
export LSAN_OPTIONS="suppressions=$WORK/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# Real files to cut from: a .tvx of the model, FLAC and Ogg from sox.  The
# outputs are written from 2.5 s of speech: short, yet over the quota below.
SHORT=$WORK/short.wav
sox "$SAMPLE" "$SHORT" trim 0 2.5
"$TOKVOX" encode "$SHORT" "$WORK/real.tvx" --quiet || { echo "FAIL: cannot encode the sample"; exit 1; }
sox -n -r 16000 -c 1 -b 16 "$WORK/real.flac" synth 1 sine 440
sox -n -r 16000 -c 1 "$WORK/real.ogg" synth 1 sine 440

# Writes the crafted files into $IN and the table of what each must do into
# $WORK/matrix: "fail|either<TAB>file<TAB>problem regex".  Python's stdlib
# only (meson itself needs python3).
"$PYTHON" - "$IN" "$MODEL" "$WORK" >"$WORK/matrix" <<'PY' || { echo "FAIL: crafting the inputs"; exit 1; }
import json, math, os, random, struct, sys

out, model, work = sys.argv[1:4]
rng = random.Random(20240611)
M32 = 0xFFFFFFFF


def case(name, data, problem, expect="fail"):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    if problem or expect == "cut":
        print("%s\t%s\t%s" % (expect, name, problem))


def junk(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


# ---- every kind: empty and random bytes ------------------------------------------
AUDIO_BAD = "not a readable audio file|no audio samples|empty file|read error"
for ext in ("wav", "flac", "ogg", "aiff"):
    case("empty." + ext, b"", "empty file")
    case("random." + ext, junk(5000), "not a readable audio file")
case("empty.tvx", b"", "truncated header")
case("random.tvx", junk(5000), "bad magic")
case("empty.npy", b"", "ends inside the magic")
case("random.npy", junk(5000), "not a .npy file")
case("empty.safetensors", b"", "empty")
case("random.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00" + junk(5000), "json|header")
case("random-length.safetensors", junk(5000), "header length")
case("manifest-empty.jsonl", b"", "manifest-empty.jsonl.*(empty|no audio)")
case("manifest-random.jsonl", junk(5000), "manifest-random.jsonl.*(json|line)")
case("manifest-cutjson.jsonl", b'{"path": "speech', "manifest-cutjson.jsonl.*(json|line)")


# ---- WAV ---------------------------------------------------------------------------
def wav(rate=16000, channels=1, bits=16, tag=1, frames=800, data=None, size=None):
    block = channels * bits // 8
    if data is None:
        data = junk(frames * block)
    size = len(data) if size is None else size
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & M32, block & 0xFFFF, bits)
    return (b"RIFF" + struct.pack("<I", (36 + size) & M32) + b"WAVE" + b"fmt " +
            struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + data)


good = wav()
# RIFF, size, WAVE, "fmt ", its size, its body, "data", its size: every boundary
for cut in (4, 8, 12, 16, 20, 24, 36, 40, 44):
    case("wav-cut%d.wav" % cut, good[:cut], AUDIO_BAD)
case("wav-hugedata.wav", wav(frames=0, size=0xFFFFFFF0), "no audio samples")
case("wav-hugeriff.wav", b"RIFF\xf0\xff\xff\xff" + good[8:44], "no audio samples")
case("wav-hugedata-some.wav", wav(size=0xFFFFFFF0), "", "either")  # checked below
for rate in (0, 1, 4, 999, 2**31 - 1, 10_000_000, 2**32 - 1):
    case("wav-rate%d.wav" % rate, wav(rate=rate), "sample rate|not a readable audio file")
case("wav-channels0.wav", wav(channels=0, data=junk(64)), "channel|not a readable")
case("wav-channels65.wav", wav(channels=65, frames=4), "65 channels")
case("wav-channels65535.wav", wav(channels=65535, data=junk(64)), "channel|not a readable")
case("wav-bits0.wav", wav(bits=0, data=junk(64)), "not a readable audio file")
case("wav-bits13.wav", wav(bits=13, data=junk(64)), AUDIO_BAD, "either")
case("wav-tag7777.wav", wav(tag=0x7777), "not a readable audio file")
case("wav-floatodd.wav", wav(tag=3, bits=32, data=junk(7)), AUDIO_BAD, "either")


# ---- AIFF (big-endian, 80-bit float rate) -------------------------------------------
def ext80(rate):
    if rate <= 0:
        return b"\0" * 10
    e = int(math.floor(math.log2(rate)))
    return struct.pack(">HQ", 16383 + e, int(rate * 2 ** (63 - e)))


def aiff(rate=16000, channels=1, frames=800, bits=16, data=None):
    if data is None:
        data = junk(frames * channels * bits // 8)
    comm = struct.pack(">hIh", channels, frames, bits) + ext80(rate)
    ssnd = struct.pack(">II", 0, 0) + data
    body = b"AIFF" + b"COMM" + struct.pack(">I", 18) + comm + b"SSND" + struct.pack(">I", len(ssnd)) + ssnd
    return b"FORM" + struct.pack(">I", len(body)) + body


good = aiff()
# FORM, size, AIFF, COMM, size, channels, frames, bits, rate, SSND, size, offset, block size
for cut in (4, 8, 12, 16, 20, 22, 26, 28, 38, 42, 46, 50, 54):
    case("aiff-cut%d.aiff" % cut, good[:cut], AUDIO_BAD)
case("aiff-rate0.aiff", aiff(rate=0), "sample rate|not a readable audio file")
case("aiff-rate4.aiff", aiff(rate=4), "sample rate|not a readable audio file")
case("aiff-rate1e12.aiff", aiff(rate=10**12), "sample rate|not a readable audio file")
case("aiff-hugeframes.aiff", aiff(frames=0xFFFFFFFF, data=junk(1600)), AUDIO_BAD, "either")

# ---- FLAC and Ogg: the stream headers, then inside the data -----------------------------
flac = open(os.path.join(work, "real.flac"), "rb").read()
# "fLaC", block header, STREAMINFO (rate/channels at 18, sample count at 21)
for cut in (2, 4, 8, 18, 26, 42):
    case("flac-cut%d.flac" % cut, flac[:cut], AUDIO_BAD)
for cut in (len(flac) // 2, len(flac) - 1):
    case("flac-cut%d.flac" % cut, flac[:cut], AUDIO_BAD, "either")
b = bytearray(flac)
b[18:21] = b"\0\0\0"  # sample rate 0 (20 bits) in STREAMINFO
case("flac-rate0.flac", bytes(b), "sample rate|not a readable audio file")
ogg = open(os.path.join(work, "real.ogg"), "rb").read()
second = ogg.find(b"OggS", 4)
# page header (27 bytes), the Vorbis id header page, the comment page
for cut in (4, 14, 27, 28, second, second + 27):
    case("ogg-cut%d.ogg" % cut, ogg[:cut], AUDIO_BAD)
for cut in (len(ogg) // 2, len(ogg) - 1):
    case("ogg-cut%d.ogg" % cut, ogg[:cut], AUDIO_BAD, "either")


# ---- .tvx (docs/bitstream.md) ----------------------------------------------------------
P1, P2, P3, P4, P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393


def rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def xxh32(data, seed=0):  # seed 0 for headers and v1 blocks, the index for v2 blocks
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + P1 + P2) & M32, (seed + P2) & M32, seed, (seed - P1) & M32]
        while i + 16 <= n:
            for j in range(4):
                lane = struct.unpack_from("<I", data, i + 4 * j)[0]
                v[j] = (rotl((v[j] + lane * P2) & M32, 13) * P1) & M32
            i += 16
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M32
    else:
        h = (seed + P5) & M32
    h = (h + n) & M32
    while i + 4 <= n:
        h = (rotl((h + struct.unpack_from("<I", data, i)[0] * P3) & M32, 17) * P4) & M32
        i += 4
    while i < n:
        h = (rotl((h + data[i] * P5) & M32, 11) * P1) & M32
        i += 1
    h = ((h ^ (h >> 15)) * P2) & M32
    h = ((h ^ (h >> 13)) * P3) & M32
    return h ^ (h >> 16)


tvx2 = open(os.path.join(work, "real.tvx"), "rb").read()  # what encode writes: version 2
assert struct.unpack_from("<H", tvx2, 4)[0] == 2, "encode does not write version 2"
assert struct.unpack_from("<I", tvx2, 48)[0] == xxh32(tvx2[:48]), "xxh32 is wrong"
# its blocks (offset, frames) and trailer, to cut, damage, and rewrite as version 1
blocks, at = [], 52
nc_bits = struct.unpack_from("<H", tvx2, 16)[0] * struct.unpack_from("<H", tvx2, 18)[0]
while struct.unpack_from("<H", tvx2, at)[0]:
    count = struct.unpack_from("<H", tvx2, at)[0]
    size = 2 + (count * nc_bits + 7) // 8 + 4
    assert struct.unpack_from("<I", tvx2, at + size - 4)[0] == xxh32(tvx2[at:at + size - 4], len(blocks))
    blocks.append((at, size))
    at += size
trailer = at
assert len(tvx2) == trailer + 22 and xxh32(tvx2[at:at + 18], len(blocks)) == struct.unpack_from("<I", tvx2, at + 18)[0]
samples = struct.unpack_from("<Q", tvx2, trailer + 2)[0]

# the same stream in version 1: the count in the header, blocks seeded 0, no trailer
v1 = bytearray(tvx2[:trailer])
struct.pack_into("<H", v1, 4, 1)
struct.pack_into("<Q", v1, 32, samples)
struct.pack_into("<I", v1, 48, xxh32(bytes(v1[:48])))
for at, size in blocks:
    struct.pack_into("<I", v1, at + size - 4, xxh32(bytes(v1[at:at + size - 4])))
tvx = bytes(v1)
case("tvx-v1-valid.tvx", tvx, "")  # version 1 still decodes: checked after the matrix


def tvx_with(offset, fmt, value, checksum=True):
    b = bytearray(tvx)
    struct.pack_into(fmt, b, offset, value)
    if checksum:
        struct.pack_into("<I", b, 48, xxh32(bytes(b[:48])))
    return bytes(b)


# inside the magic, then after every header field, then inside block 0
for cut in (2, 4, 6, 8, 12, 16, 18, 20, 22, 24, 32, 40, 44, 48, 50):
    case("tvx-cut%d.tvx" % cut, tvx[:cut], "truncated header")
for cut in (52, 53, 54, 60, 52 + 2 + 63, 52 + 2 + 63 + 3, len(tvx) - 1):
    case("tvx-cut%d.tvx" % cut, tvx[:cut], "truncated (stream|block)")
# a header that promises more than there is: refused when the data ends
case("tvx-samples2e40.tvx", tvx_with(32, "<Q", 2**40), "block [0-9]+ .* claims [0-9]+ frames, expected 50")
case("tvx-samples2e48.tvx", tvx_with(32, "<Q", 2**48), "block [0-9]+ .* claims [0-9]+ frames, expected 50")
case("tvx-samples2e64.tvx", tvx_with(32, "<Q", 2**64 - 1), "sample_count .* out of range")
case("tvx-perblock4g.tvx", tvx_with(44, "<I", M32), "frames_per_block .* out of range")
case("tvx-perblock4096.tvx", tvx_with(44, "<I", 4096), "claims 50 frames, expected [0-9]+")
case("tvx-blockcount.tvx", tvx_with(52, "<H", 0xFFFF, checksum=False), "claims 65535 frames")
case("tvx-codebooks64.tvx", tvx_with(16, "<H", 64), "do not fit|out of range")
case("tvx-codebooks0.tvx", tvx_with(16, "<H", 0), "num_codebooks .* out of range")
case("tvx-rate0.tvx", tvx_with(8, "<I", 0), "sample_rate .* out of range")
case("tvx-rate4g.tvx", tvx_with(8, "<I", M32), "sample_rate .* out of range")
case("tvx-sourcerate0.tvx", tvx_with(40, "<I", 0), "source_rate .* out of range")
case("tvx-hop0.tvx", tvx_with(12, "<I", 0), "hop .* out of range")
case("tvx-version2.tvx", tvx_with(4, "<H", 2), "sample_count .* must be 0 in version 2")
case("tvx-headersize.tvx", tvx_with(6, "<H", 0xFFFF), "header size 65535")
case("tvx-checksum.tvx", tvx_with(24, "<Q", 0x1234, checksum=False), "header checksum")
case("tvx-othermodel.tvx", tvx_with(24, "<Q", 0x1234), "does not match model")
case("tvx-trailing.tvx", tvx + b"\0", "unexpected bytes after the last frame")
case("tvx-version3.tvx", tvx_with(4, "<H", 3), "version 3")

# version 2: cut after its header, the intact blocks decode (exit 3)
for cut in (2, 20, 48, 51):
    case("tvx2-cut%d.tvx" % cut, tvx2[:cut], "truncated header")
for cut in (52, 53, blocks[0][0] + blocks[0][1], blocks[1][0] + 7, trailer, trailer + 10, len(tvx2) - 1):
    case("tvx2-cut%d.tvx" % cut, tvx2[:cut], "", expect="cut")


def tvx2_with(offset, fmt, value, seed=None):
    b = bytearray(tvx2)
    struct.pack_into(fmt, b, offset, value)
    if offset < 48:
        struct.pack_into("<I", b, 48, xxh32(bytes(b[:48])))
    if seed is not None:  # reseal the trailer
        struct.pack_into("<I", b, trailer + 18, xxh32(bytes(b[trailer:trailer + 18]), seed))
    return bytes(b)


nblocks = len(blocks)
case("tvx2-headercount.tvx", tvx2_with(32, "<Q", samples), "must be 0 in version 2")
case("tvx2-trailer-samples.tvx", tvx2_with(trailer + 2, "<Q", samples + 10**6, nblocks), "trailer .* states")
case("tvx2-trailer-frames.tvx", tvx2_with(trailer + 10, "<Q", 1, nblocks), "trailer .* states")
case("tvx2-trailer-2e64.tvx", tvx2_with(trailer + 2, "<Q", 2**64 - 1, nblocks), "trailer .* states")
case("tvx2-trailer-checksum.tvx", tvx2_with(trailer + 2, "<Q", samples + 1), "trailer .* checksum")
case("tvx2-blockcount.tvx", tvx2_with(52, "<H", 0xFFFF), "claims 65535 frames, at most")
a0, s0 = blocks[0]
a1, s1 = blocks[1]
assert s0 == s1
case("tvx2-swapped.tvx", tvx2[:a0] + tvx2[a1:a1 + s1] + tvx2[a0:a0 + s0] + tvx2[a1 + s1:], "block 0 .* checksum")
case("tvx2-dropped.tvx", tvx2[:a0] + tvx2[a1:], "block 0 .* checksum")
case("tvx2-trailing.tvx", tvx2 + b"\0", "unexpected bytes after")


# ---- .npy tokens (int16 [frames, 8], as tokenize writes) -------------------------------
def npy(shape, data, descr="<i2"):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    head = (d + " " * (64 - (10 + len(d) + 1) % 64) + "\n").encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + data


codes = b"".join(struct.pack("<h", rng.randrange(1024)) for _ in range(50 * 8))
good = npy("(50, 8)", codes)
hl = struct.unpack_from("<H", good, 8)[0]
# inside the magic, the version, the header length, the dict, the data
for cut in (3, 6, 7, 8, 9, 10, 10 + hl // 2, 10 + hl - 1):
    case("npy-cut%d.npy" % cut, good[:cut], "ends inside")
for cut in (10 + hl, 10 + hl + 101, len(good) - 1):
    case("npy-cut%d.npy" % cut, good[:cut], "needs [0-9]+ bytes of data")
case("npy-huge.npy", npy("(1099511627776, 8)", codes), "needs [0-9]+ bytes of data")
case("npy-huge1d.npy", npy("(1099511627776,)", codes), "needs [0-9]+ bytes of data")
case("npy-overflow.npy", npy("(4611686018427387904, 8)", codes), "absurd|overflow")
case("npy-negative.npy", npy("(-50, 8)", codes), "shape")
case("npy-headerlen.npy", good[:8] + b"\xff\xff" + good[10:], "ends inside the header")
case("npy-v2headerlen.npy", good[:6] + b"\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + good[10:],
     "header length")
case("npy-float.npy", npy("(50, 8)", codes * 2, descr="<f4"), "dtype")
case("npy-3d.npy", npy("(50, 4, 2)", codes), "dimensions")
case("npy-ninecodebooks.npy", npy("(50, 9)", codes + codes[:100]), "9 codebooks")
case("npy-zeroframes.npy", npy("(0, 8)", b""), "no frames")

# ---- .safetensors models ---------------------------------------------------------------
st = open(model, "rb").read()
hl = struct.unpack_from("<Q", st)[0]
header = json.loads(st[8:8 + hl])
names = [k for k in header if k != "__metadata__"]


def model_with(edit):
    h = json.loads(json.dumps(header))
    edit(h)
    text = json.dumps(h).encode()
    return struct.pack("<Q", len(text)) + text + st[8 + hl:]


def move(name, begin):
    def edit(h):
        b, e = h[name]["data_offsets"]
        h[name]["data_offsets"] = [begin, begin + e - b]
    return edit


def set_config(key, value):
    def edit(h):
        c = json.loads(h["__metadata__"]["config"])
        c[key] = value
        h["__metadata__"]["config"] = json.dumps(c)
    return edit


# inside the 8-byte length, the JSON, the data
for cut in (4, 8, 8 + hl // 2, 8 + hl - 1):
    case("st-cut%d.safetensors" % cut, st[:cut], "too short|runs past the end of the file")
for cut in (8 + hl, 8 + hl + 1000, len(st) - 1):
    case("st-cut%d.safetensors" % cut, st[:cut], "run past the end of the data")
case("st-length2e40.safetensors", struct.pack("<Q", 2**40) + st[8:], "over the [0-9]+-byte limit")
case("st-lengthfile.safetensors", struct.pack("<Q", len(st)) + st[8:], "runs past the end of the file")
case("st-outside.safetensors", model_with(move(names[0], len(st))), "run past the end of the data")
case("st-far.safetensors", model_with(move(names[-1], 2**62)), "data_offsets")


def huge_shape(h):
    h[names[1]]["shape"] = [2**31, 2**31, 2**31]


case("st-hugeshape.safetensors", model_with(huge_shape), "overflow")
case("st-rate0.safetensors", model_with(set_config("sample_rate", 0)), "sample_rate|rate")
case("st-hop0.safetensors", model_with(set_config("hop", 0)), "hop")
# for the plugin cases below: a quantizer that only the test plugin folder has
with open(os.path.join(work, "fails_create.safetensors"), "wb") as f:
    f.write(model_with(set_config("quantizer", "fails_create")))

# ---- odd but valid audio: the codec must give a correct result --------------------------
def floats(xs):
    return b"".join(struct.pack("<f", x) for x in xs)


nan, inf = float("nan"), float("inf")
wave = [0.5 * math.sin(i / 5) for i in range(4000)]
dirty = list(wave)
for i, v in ((100, nan), (200, inf), (300, -inf), (400, 1.5), (500, -4.0), (600, 3e38)):
    dirty[i] = v
clean = [0.0 if not math.isfinite(v) else max(-1.0, min(1.0, v)) for v in dirty]
case("nan.wav", wav(tag=3, bits=32, data=floats(dirty)), "")
case("nan-clean.wav", wav(tag=3, bits=32, data=floats(clean)), "")
case("one.wav", wav(frames=1), "")
case("one44k.wav", wav(rate=44100, frames=1), "")
case("one.aiff", aiff(frames=1), "")
case("six.wav", wav(rate=48000, channels=6, tag=3, bits=32,
                    data=floats([0.3 * math.sin(i / (3 + i % 6)) for i in range(6 * 4800)])), "")
case("rate1000.wav", wav(rate=1000, frames=1000), "")
case("rate384k.wav", wav(rate=384000, frames=38400), "")
PY

# ---- the matrix: every crafted input through the command that reads it ----------

# output_for IN: where the command reading IN writes
output_for() {
    case $1 in
    *.wav | *.flac | *.ogg | *.aiff) echo "$O/out.tvx" ;;
    *.jsonl) echo "$O/tokens" ;;
    *) echo "$O/out.wav" ;;
    esac
}
# read_input IN OUT: the command that reads IN
read_input() {
    case $1 in
    *.wav | *.flac | *.ogg | *.aiff) "$TOKVOX" encode "$1" "$2" --quiet ;;
    *.tvx) "$TOKVOX" decode "$1" "$2" ;;
    *.npy) "$TOKVOX" detokenize "$1" "$2" ;;
    *.safetensors) "$TOKVOX" transcode "$SHORT" "$2" --quiet --model "$1" ;;
    *.jsonl) "$TOKVOX" tokenize "$1" -o "$2" --quiet ;;
    esac
}

tab=$(printf '\t')
while IFS=$tab read -r expect file problem; do
    in=$IN/$file
    out=$(output_for "$in")
    case $expect in
    fail) expect_fail "$file" "$out" "$in" "$problem" read_input "$in" "$out" ;;
    cut) expect_cut "$file" "$out" "$in" read_input "$in" "$out" ;;
    either) expect_either "$file" "$out" "$in" "${problem:-.}" read_input "$in" "$out" ;;
    esac
done <"$WORK/matrix"

# Version 1 still decodes, to the very samples of the same stream in version 2.
case_name="version 1 decodes"
if "$TOKVOX" decode "$IN/tvx-v1-valid.tvx" "$WORK/v1.wav" 2>"$WORK/err.log" &&
   "$TOKVOX" decode "$WORK/real.tvx" "$WORK/v2.wav" 2>>"$WORK/err.log" &&
   cmp -s "$WORK/v1.wav" "$WORK/v2.wav"; then ok; else bad "$case_name: $(cat "$WORK/err.log")"; fi

# A model is also read by info: the same damage, the same refusal.
for c in "st-cut8.safetensors:past the end of the file" "st-outside.safetensors:past the end of the data" \
         "st-length2e40.safetensors:over the [0-9]+-byte limit" "random.safetensors:not valid JSON"; do
    file=${c%%:*}
    expect_fail "info $file" - "$IN/$file" "${c#*:}" "$TOKVOX" info "$IN/$file"
done

# ---- odd but valid input: a correct result --------------------------------------

frames_of() { soxi -s "$1" 2>/dev/null; }
rate_of() { soxi -r "$1" 2>/dev/null; }

# NaN/Inf are silenced and overs clamped, with a warning that counts them:
# the codes are those of the cleaned signal.
case_name=nan.wav
if expect_ok nan.wav "$O/nan.tvx" "$TOKVOX" encode "$IN/nan.wav" "$O/nan.tvx" --quiet; then
    grep -q "warning: $IN/nan.wav: 3 NaN/Inf samples" "$WORK/err.log" &&
        grep -q "warning: $IN/nan.wav: 3 samples beyond full scale" "$WORK/err.log" && ok ||
        bad "nan.wav: no warning counting the bad samples: $(cat "$WORK/err.log")"
    "$TOKVOX" encode "$IN/nan-clean.wav" "$O/clean.tvx" --quiet 2>/dev/null
    cmp -s "$O/nan.tvx" "$O/clean.tvx" && ok || bad "nan.wav: codes differ from the cleaned signal's"
fi
expect_ok "transcode nan.wav" "$O/nan.wav" "$TOKVOX" transcode "$IN/nan.wav" "$O/nan.wav" --quiet &&
    { [ "$(frames_of "$O/nan.wav")" = 4000 ] && ok || bad "nan.wav: transcode changed the length"; }

# 1 sample: 2 frames, and 1 sample back, at its own rate.
for f in one.wav one44k.wav one.aiff; do
    expect_ok "transcode $f" "$O/one.wav" "$TOKVOX" transcode "$IN/$f" "$O/one.wav" --quiet &&
        { [ "$(frames_of "$O/one.wav")" = 1 ] && [ "$(rate_of "$O/one.wav")" = "$(rate_of "$IN/$f")" ] &&
              ok || bad "$f: not 1 sample at its rate back"; }
done
expect_ok "encode one.wav" "$O/one.tvx" "$TOKVOX" encode "$IN/one.wav" "$O/one.tvx" --quiet
expect_ok "decode one.tvx" "$O/one.wav" "$TOKVOX" decode "$O/one.tvx" "$O/one.wav"
# 6 channels at 48 kHz: mono at 48 kHz, the same length; the extreme legal rates.
for f in six.wav rate1000.wav rate384k.wav; do
    expect_ok "transcode $f" "$O/$f" "$TOKVOX" transcode "$IN/$f" "$O/$f" --quiet &&
        { [ "$(frames_of "$O/$f")" = "$(frames_of "$IN/$f")" ] && [ "$(soxi -c "$O/$f")" = 1 ] &&
              [ "$(rate_of "$O/$f")" = "$(rate_of "$IN/$f")" ] && ok || bad "$f: wrong length, rate or channels"; }
done
# A data chunk that claims 4 GB: what is there is read, nothing more trusted.
expect_ok "wav-hugedata-some.wav" "$O/some.wav" "$TOKVOX" transcode "$IN/wav-hugedata-some.wav" "$O/some.wav" --quiet &&
    { [ "$(frames_of "$O/some.wav")" = 800 ] && ok || bad "wav-hugedata-some.wav: not the 800 samples there"; }

# ---- plugins ----------------------------------------------------------------------

# A file named like a plugin that is not a shared object: the model that
# needs it cannot load, and says which file is wrong.
mkdir -p "$WORK/plugins"
for p in grvq stftcodec; do
    echo "not a shared object" >"$WORK/plugins/tokvox_$p.so"
    export TOKVOX_PLUGIN_PATH="$WORK/plugins"
    expect_fail "plugin $p not ELF" "$O/out.wav" "$WORK/plugins/tokvox_$p.so" "cannot load" \
        "$TOKVOX" transcode "$SHORT" "$O/out.wav" --quiet
    unset TOKVOX_PLUGIN_PATH
    rm "$WORK/plugins/tokvox_$p.so"
done

# ---- outputs that cannot be written ---------------------------------------------------

"$TOKVOX" tokenize "$SHORT" -o "$WORK/tok" --quiet >/dev/null 2>&1
NPY=$WORK/tok/short.npy
[ -s "$NPY" ] || { echo "FAIL: tokenize made no tokens"; exit 1; }

# Every command that writes a file, as "command:output extension".
WRITERS="encode:tvx decode:wav decode:flac transcode:ogg detokenize:wav"
input_of() {
    case $1 in
    decode) echo "$WORK/real.tvx" ;;
    detokenize) echo "$NPY" ;;
    *) echo "$SHORT" ;;
    esac
}
# writers_fail DIR WHERE PROBLEM CHECK [WRAPPER...]: every writer with its
# output in DIR fails cleanly; CHECK "-" when the outputs cannot be checked
# from here (devices, a file system in another mount namespace).
writers_fail() {
    dir=$1 where=$2 problem=$3 check=$4; shift 4
    for w in $WRITERS; do
        cmd=${w%%:*} out=$dir/out.${w##*:}
        [ "$check" = - ] && checked=- || checked=$out
        expect_fail "$cmd to $out" "$checked" "$where" "$problem" "$@" "$TOKVOX" "$cmd" "$(input_of "$cmd")" "$out"
    done
}

writers_fail "$O/missing/deeper" "$O/missing/deeper" "No such file or directory" check
writers_fail /proc/self /proc/self "No such file or directory|Permission denied|Read-only" -
expect_fail "tokenize into a file" "-" "$IN/one.wav" "not a folder" "$TOKVOX" tokenize "$SHORT" -o "$IN/one.wav"

# A full disk: /dev/full behind each output name and as stdout, and a file
# size limit for the temporary-then-rename path (SIGXFSZ ignored, so a
# write fails with EFBIG, as on a full quota).
mkdir -p "$O/full"
for ext in tvx wav flac ogg; do ln -s /dev/full "$O/full/out.$ext"; done
writers_fail "$O/full" "$O/full/out." "No space left on device" -
to_full() { "$@" >/dev/full; }
expect_fail "encode to a full stdout" - stdout "No space left on device" to_full "$TOKVOX" encode "$SHORT" - --quiet
expect_fail "decode to a full stdout" - stdout "No space left on device" to_full "$TOKVOX" decode "$WORK/real.tvx" -
small_quota() { sh -c 'trap "" XFSZ; ulimit -f 1; exec "$@"' sh "$@"; }
writers_fail "$O" "$O/out." "File too large" check small_quota
case_name="tokenize over quota"
prepare_output "$O/tokens"
run small_quota "$TOKVOX" tokenize "$SHORT" -o "$O/tokens" --quiet
why=$(crash_problem)$(output_problem "$O/tokens")
if [ -n "$why" ] || [ "$status" -eq 0 ]; then bad "$case_name: exit $status $why"
elif grep -q 'short.npy: .*File too large' "$O/tokens/errors.jsonl"; then ok
else bad "$case_name: errors.jsonl lacks the write error: $(cat "$O/tokens/errors.jsonl")"; fi

# A read-only file system: a read-only tmpfs in a private mount namespace
# (root only; it vanishes with the namespace), holding an older out.wav.
ro_mount() {
    unshare -m sh -c 'mount -t tmpfs -o size=64k none "$1" && cp "$2" "$1/out.wav" &&
        mount -o remount,ro "$1" && shift 2 && exec "$@"' sh "$WORK/rofs" "$WORK/keep.wav" "$@"
}
mkdir -p "$WORK/rofs"
if ro_mount true 2>/dev/null; then
    writers_fail "$WORK/rofs" "$WORK/rofs" "Read-only file system" - ro_mount
else
    echo "note: cannot mount a read-only file system (unshare -m): those cases skipped"
fi

# A read-only folder: root writes anywhere, so drop to nobody when root.
if [ "$(id -u)" -ne 0 ]; then
    as_user() { "$@"; }
elif setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
else
    as_user() { return 77; }
fi
if ! as_user true; then
    echo "note: cannot drop root privileges (setpriv): read-only folder cases skipped"
else
    chmod 755 "$WORK" "$WORK/tok"
    chmod 644 "$NPY" "$WORK/real.tvx" "$SHORT"
    mkdir -p "$WORK/ro"
    chmod 555 "$WORK/ro"
    writers_fail "$WORK/ro" "$WORK/ro" "Permission denied" check as_user
    expect_fail "tokenize into a read-only folder" "$WORK/ro/tokens" "$WORK/ro/tokens" "Permission denied" \
        as_user "$TOKVOX" tokenize "$SHORT" -o "$WORK/ro/tokens" --quiet
    # A plugin folder nobody may read: a plugin only it holds cannot be
    # loaded, and the message says why rather than only "not found".
    mkdir -p "$WORK/noread"
    cp "${TOKVOX_TEST_PLUGIN_DIR:-$(dirname "$TOKVOX")/../tests/plugins}/tokvox_fails_create.so" "$WORK/noread/"
    chmod 644 "$WORK/fails_create.safetensors"
    chmod 000 "$WORK/noread"
    export TOKVOX_PLUGIN_PATH="$WORK/noread"
    expect_fail "plugin folder not readable" "$O/out.wav" "$WORK/noread" "Permission denied" \
        as_user "$TOKVOX" transcode "$SHORT" "$O/out.wav" --quiet --model "$WORK/fails_create.safetensors"
    case_name="plugins lists an unreadable folder"
    run as_user "$TOKVOX" plugins
    grep -q "$WORK/noread: cannot list the plugin folder (Permission denied)" "$WORK/out.log" && ok ||
        bad "$case_name: $(cat "$WORK/out.log" "$WORK/err.log")"
    unset TOKVOX_PLUGIN_PATH
    chmod 755 "$WORK/noread"
fi

echo "badinput: $passed cases passed, $failed failed, $xfailed known bugs (XFAIL)"
[ "$failed" -eq 0 ]
