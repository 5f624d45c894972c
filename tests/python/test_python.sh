#!/bin/sh
# The Python package (python/tokvox) with Debian's python3 and numpy: the
# whole of test_tokvox.py against the build tree, then `meson install` into
# a temporary DESTDIR and the issue's one-liner plus the quick classes
# against the installed copy and the installed command, with no TOKVOX_MODEL
# or TOKVOX_PLUGIN_PATH: the package, library, model and plugins loaded must
# all be the DESTDIR copy's (a moved prefix finds its own).  In a
# sanitized build, only the classes that exercise the C side, from the
# build tree.
# Usage (meson test runs it):
#   test_python.sh TOKVOX BUILD_ROOT PREFIX PYTHON_DIR LIBDIR SANITIZE MESON
set -u
TOKVOX=$1 BUILD=$2 PREFIX=$3 PYDIR=$4 LIBDIR=$5 SANITIZE=$6 MESON=$7
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
export TOKVOX_CLI="$TOKVOX"

if ! $PY -c 'import numpy' 2>/dev/null; then
    echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"
    exit 77
fi
# A sanitized build's libraries need their runtime loaded before python's
# own; python's deliberate leaks at exit are not ours.
case "$SANITIZE" in
*address*)
    LD_PRELOAD=$(gcc -print-file-name=libasan.so)
    case "$SANITIZE" in *undefined*) LD_PRELOAD="$LD_PRELOAD $(gcc -print-file-name=libubsan.so)";; esac
    export LD_PRELOAD
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    # 10x slower there: the C-facing classes only, from the build tree
    # (the install itself is the plain build's business)
    SANITIZED=1
    ;;
esac

WORK=$(mktemp -d /tmp/tokvox-python-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

echo "== build tree: $BUILD/python"
if [ -n "${SANITIZED:-}" ]; then
    PYTHONPATH="$BUILD/python" $PY "$HERE/test_tokvox.py" -v EncodeParity InProcess BadInput || exit 1
    echo "python: build tree passed (sanitized build: install not tested)"
    exit 0
fi
PYTHONPATH="$BUILD/python" $PY "$HERE/test_tokvox.py" -v || exit 1

echo "== installed: meson install --destdir $WORK/dest"
"$MESON" install -C "$BUILD" --no-rebuild --quiet --destdir "$WORK/dest" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; exit 1; }
ROOT=$WORK/dest$PREFIX
# The DESTDIR copy is not where it was configured to live (PREFIX): with no
# TOKVOX_MODEL or TOKVOX_PLUGIN_PATH, it must find its own model and
# plugins beside the library (relocatable lookup), not the build tree's
# and not an installed PREFIX's.
unset TOKVOX_MODEL TOKVOX_PLUGIN_PATH
unset LD_LIBRARY_PATH   # meson test points it at the build tree's libraries
export PYTHONPATH="$ROOT/$PYDIR"
# and the installed command is what the Python side is compared with
TOKVOX_CLI=$ROOT/bin/tokvox
[ -x "$TOKVOX_CLI" ] || { echo "FAIL: no installed command at $TOKVOX_CLI"; exit 1; }
TV_ROOT=$ROOT TV_PYDIR=$PYDIR TV_LIBDIR=$LIBDIR $PY -c '
import os, tokvox
root, lib = os.environ["TV_ROOT"], os.environ["TV_ROOT"] + "/" + os.environ["TV_LIBDIR"]
m = tokvox.Model()
maps = set(l.split()[-1] for l in open("/proc/self/maps") if "/" in l)
plugins = sorted(p for p in maps if os.path.basename(p).startswith("tokvox_"))
want = [("package", tokvox.__file__, root + "/" + os.environ["TV_PYDIR"] + "/tokvox/__init__.py"),
        ("library folder", [os.path.dirname(p) for p in maps if "/libtokvox.so" in p], [lib]),
        ("model", m.path, root + "/share/tokvox/models/tokvox-16k.safetensors"),
        ("plugin folders", sorted(set(os.path.dirname(p) for p in plugins)),
         [lib + "/tokvox/plugins"])]
bad = ["%s: %s, not %s" % w for w in want if w[1] != w[2]]
print("\n".join(bad) or "installed copy: package, library, model and plugins %s" % plugins)
exit(1 if bad else 0)' || { echo "FAIL: not the installed copy"; exit 1; }
$PY -c 'import tokvox, numpy as np; m = tokvox.Model(); c = m.encode(np.zeros(16000, np.float32), 16000); print(c.shape, m.decode(c).shape)' || exit 1
$PY "$HERE/test_tokvox.py" EncodeParity InProcess BadInput || exit 1
echo "python: build tree and installed prefix passed"
