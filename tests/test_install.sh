#!/bin/sh
# An install that runs (issue 13): `meson install` into a temporary prefix,
# the installed `tokvox transcode` runs with nothing of the build tree or the
# environment to help it, then the whole prefix is moved and it runs again
# (run path $ORIGIN/../lib..., plugins and model found beside the library).
# The pkg-config file, the man page and the docs are checked too.
# Usage (meson test runs it): tests/test_install.sh BUILD_DIR
set -u
BUILD=$1
ROOT=${TOKVOX_SOURCE_ROOT:-$(dirname "$0")/..}
SAMPLE=$ROOT/samples/speech_en.wav
WORK=$(mktemp -d /tmp/tokvox-install-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
. "$ROOT/tests/common.sh"
unset TOKVOX_PLUGIN_PATH TOKVOX_MODEL LD_LIBRARY_PATH

if ! meson install -C "$BUILD" --destdir "$WORK/dest" --no-rebuild >"$WORK/install.log" 2>&1; then
    echo "FAIL: meson install: $(tail -5 "$WORK/install.log")"
    exit 1
fi
prefix=$(meson introspect "$BUILD" --buildoptions | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
libdir=$(meson introspect "$BUILD" --buildoptions | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
top=$WORK/dest$prefix

# check_tree TOP: the installed command there works on its own
check_tree() {
    top=$1 where=$2
    expect_ok "$where: transcode" "$top/bin/tokvox" transcode "$SAMPLE" "$WORK/out.wav" --quiet
    [ "$(soxi -s "$WORK/out.wav")" = "$(soxi -s "$SAMPLE")" ] && ok || bad "$where: wrong length"
    expect_ok "$where: plugins" "$top/bin/tokvox" plugins
    grep -q "$top/$libdir/tokvox/plugins/tokvox_stftcodec.so" "$WORK/out.log" && ok ||
        bad "$where: plugins not found beside the library: $(cat "$WORK/out.log")"
    expect_ok "$where: info" "$top/bin/tokvox" info
    grep -q "$top/share/tokvox/models/tokvox-16k.safetensors" "$WORK/out.log" && ok ||
        bad "$where: model not found beside the library: $(head -1 "$WORK/out.log")"
    # the low-delay variant by its name, found in the same folder
    expect_ok "$where: info tokvox-16k-ld" "$top/bin/tokvox" info tokvox-16k-ld
    grep -q "$top/share/tokvox/models/tokvox-16k-ld.safetensors" "$WORK/out.log" && ok ||
        bad "$where: tokvox-16k-ld not found by name: $(head -1 "$WORK/out.log")"
}
check_tree "$top" installed
mkdir -p "$WORK/elsewhere"
mv "$WORK/dest" "$WORK/elsewhere/moved"
check_tree "$WORK/elsewhere/moved$prefix" moved
top=$WORK/elsewhere/moved$prefix

pc=$top/$libdir/pkgconfig
[ "$(PKG_CONFIG_PATH=$pc pkg-config --variable=plugindir tokvox)" = "$prefix/$libdir/tokvox/plugins" ] && ok ||
    bad "tokvox.pc plugindir: $(PKG_CONFIG_PATH=$pc pkg-config --variable=plugindir tokvox)"
[ "$(PKG_CONFIG_PATH=$pc pkg-config --variable=modeldir tokvox)" = "$prefix/share/tokvox/models" ] && ok ||
    bad "tokvox.pc modeldir: $(PKG_CONFIG_PATH=$pc pkg-config --variable=modeldir tokvox)"
[ -s "$top/share/man/man1/tokvox.1" ] && ok || bad "no man page"
for f in bitstream.md live.md tokenize.md model-format.md LICENSE; do
    [ -s "$top/share/doc/tokvox/$f" ] && ok || bad "docs: $f not installed"
done
# the man page and --help agree on every long option of the codec commands
for cmd in encode decode transcode; do
    for opt in $("$top/bin/tokvox" $cmd --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        [ "$opt" = --help ] && continue
        grep -q -- "$(echo "$opt" | sed 's/-/\\\\-/g')" "$top/share/man/man1/tokvox.1" && ok ||
            bad "man page lacks $cmd $opt"
    done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
