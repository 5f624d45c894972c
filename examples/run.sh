#!/usr/bin/env bash
# Builds the examples against an *installed* libtokvox, through pkg-config
# only, and runs them: what an embedder's build does.  Used by
# `./bootstrap.sh test` (CI).
#
#   examples/run.sh BUILD_DIR      # installs BUILD_DIR into a staging folder first
#
# The staging install (meson install --destdir) keeps the system untouched;
# PKG_CONFIG_SYSROOT_DIR points pkg-config into it, and the run-time paths
# (library, plugins, default model) are pointed there the documented ways
# (LD_LIBRARY_PATH, TOKVOX_PLUGIN_PATH, TOKVOX_MODEL).
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=$(mktemp -d /tmp/tokvox-examples-XXXXXX)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
meson install -C "$build" --destdir "$stage" --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
    'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
pc=$(dirname "$(find "$stage" -name tokvox.pc | head -1)")
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$stage
libdir=$stage$(pkg-config --variable=libdir tokvox | sed "s|^$stage||")
export LD_LIBRARY_PATH=$libdir
export TOKVOX_PLUGIN_PATH=$stage$(pkg-config --variable=plugindir tokvox | sed "s|^$stage||")
model=$stage$(pkg-config --variable=modeldir tokvox | sed "s|^$stage||")/tokvox-16k.safetensors
export TOKVOX_MODEL=$model
[ -f "$model" ] || { echo "examples: no installed model at $model" >&2; exit 1; }
# nothing from the source tree: only what pkg-config says
flags="$(pkg-config --cflags tokvox sndfile) -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O2"
libs="$(pkg-config --libs tokvox sndfile)"
for ex in file_to_packets udp_call tokens_from_memory; do
    cc $flags "$here/$ex.c" -o "$work/$ex" $libs
done
echo "examples: built against $(pkg-config --modversion tokvox) in $stage$prefix"
sample=$root/samples/speech_en.wav
other=$root/samples/speech_child.wav
n=$(soxi -s "$sample")
"$work/file_to_packets" "$sample" "$work/packets.wav" 2
[ "$(soxi -s "$work/packets.wav")" = "$n" ] || { echo "file_to_packets: length" >&2; exit 1; }
"$work/udp_call" "$sample" "$other" "$work/heard_by_bob.wav" "$work/heard_by_alice.wav" 0.2 \
    | tee "$work/call.txt"
grep -q "alice heard" "$work/call.txt" && grep -q "recovered by FEC" "$work/call.txt"
[ "$(soxi -s "$work/heard_by_bob.wav")" -ge $((n - 320)) ] || { echo "udp_call: length" >&2; exit 1; }
"$work/tokens_from_memory" "$model" "$sample" >"$work/tokens.txt"
frames=$(wc -l <"$work/tokens.txt")
[ "$frames" -eq $(( (n + 319) / 320 + 1 )) ] || { echo "tokens: $frames frames" >&2; exit 1; }
echo "examples: all three ran"
