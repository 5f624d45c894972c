#!/bin/sh
# Every ```sh block of README.md runs as written (issue 13), in a scratch
# folder holding what the README says it holds (in.wav, corpus/a.wav), with
# the tokvox under test first on PATH.  Lines that run ./bootstrap.sh or a
# benchmark in bench/ are left out: they install packages, run whole suites
# or time things (CI runs the suites anyway; benchmarks stay out of CI).
# Usage (meson test runs it): tests/test_readme.sh path/to/tokvox
set -u
TOKVOX=$1
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
WORK=$(mktemp -d /tmp/tokvox-readme-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
command -v sox >/dev/null || { echo "SKIP: sox is missing"; exit 77; }
mkdir -p "$WORK/bin" "$WORK/run/corpus"
ln -s "$(cd "$(dirname "$TOKVOX")" && pwd)/$(basename "$TOKVOX")" "$WORK/bin/tokvox"
sox "$ROOT/samples/speech_en.wav" "$WORK/run/in.wav" trim 0 2
cp "$ROOT/samples/speech_child.wav" "$WORK/run/corpus/a.wav"

# The sh blocks, one file each, without the ./bootstrap.sh lines.
awk -v dir="$WORK" '
    /^```sh$/ { n++; on = 1; out = sprintf("%s/block%02d.sh", dir, n); printf "" >out; next }
    /^```/ { on = 0; next }
    on && $0 !~ /bootstrap\.sh/ && $0 !~ /(^|[ \/])bench\// { print >>out }
' "$ROOT/README.md"
passed=0
failed=0
blocks=0
for b in "$WORK"/block*.sh; do
    [ -s "$b" ] || continue   # only bootstrap or benchmark lines
    blocks=$((blocks + 1))
    if (cd "$WORK/run" && PATH="$WORK/bin:$PATH" sh -e "$b") >"$WORK/out.log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: README block $(basename "$b") as written:"
        sed 's/^/    /' "$b"
        tail -5 "$WORK/out.log"
    fi
done
[ "$blocks" -gt 0 ] || { echo "FAIL: no runnable sh block found in README.md"; exit 1; }
echo "$passed blocks passed, $failed failed"
[ "$failed" -eq 0 ]
