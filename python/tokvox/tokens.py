"""Token files and layouts, in pure numpy (no libtokvox needed).

The same arrays, byte for byte, as ``tokvox tokenize --layout L`` writes and
``tokvox detokenize`` reads (io/tokens.c, docs/tokenize.md).  With
``codes[t, k]`` the code of codebook k at frame t (F frames, K codebooks of
C entries):

=============  ==============  ==============================================
layout         shape           element
=============  ==============  ==============================================
``codebooks``  ``[F, K]``      ``a[t, k] = codes[t, k]``
``flat``       ``[F*K]``       ``a[t*K + k] = codes[t, k] + k*C``
``delay``      ``[F+K-1, K]``  ``a[t + k, k] = codes[t, k]``, pads are ``C``
=============  ==============  ==============================================

The dtype is int16 when every id the layout can write fits, else int32 (it
depends on K and C, never on the data).  Inverses check every element and
raise ``ValueError`` naming the first bad one.
"""
import glob
import json
import os

import numpy as np

LAYOUTS = ("codebooks", "flat", "delay")
DEFAULT_CODEBOOK_SIZE = 1024

__all__ = ["LAYOUTS", "layout_dtype", "apply_layout", "invert_layout", "to_flat", "from_flat",
           "to_delay", "from_delay", "load_tokens", "save_tokens", "read_manifest"]


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError("layout %r: want one of %s" % (layout, ", ".join(LAYOUTS)))


def layout_dtype(layout, codebooks, codebook_size=DEFAULT_CODEBOOK_SIZE):
    """The dtype tokenize writes for a layout of ``codebooks`` codebooks of
    ``codebook_size`` entries: int16 when its largest id fits, else int32."""
    _check_layout(layout)
    top = {"flat": codebooks * codebook_size - 1, "delay": codebook_size,
           "codebooks": codebook_size - 1}[layout]
    return np.dtype(np.int16) if top <= 32767 else np.dtype(np.int32)


def _codes_dtype(codebook_size):
    return np.dtype(np.int16) if codebook_size <= 32768 else np.dtype(np.int32)


def _as_codes(codes, codebook_size):
    """codes as a checked int64 [frames, K] array."""
    a = np.asarray(codes)
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError("codes: want a 2-D [frames, codebooks] array, got shape %s" % (a.shape,))
    if a.dtype.kind not in "iu":
        raise TypeError("codes: want an integer array, got %s" % a.dtype)
    a = a.astype(np.int64)
    bad = np.argwhere((a < 0) | (a >= codebook_size))
    if len(bad):
        t, k = bad[0]
        raise ValueError("codes: element [%d, %d] = %d, want 0..%d"
                         % (t, k, a[t, k], codebook_size - 1))
    return a


def apply_layout(codes, layout="codebooks", codebook_size=DEFAULT_CODEBOOK_SIZE):
    """codes[frames, K] -> the layout's array (see the module's table), in the
    dtype tokenize writes.  Codes must be in 0..codebook_size-1."""
    _check_layout(layout)
    a = _as_codes(codes, codebook_size)
    frames, k = a.shape
    dtype = layout_dtype(layout, k, codebook_size)
    if layout == "codebooks":
        return a.astype(dtype)
    if layout == "flat":
        return (a + np.arange(k, dtype=np.int64) * codebook_size).reshape(-1).astype(dtype)
    out = np.full((frames + k - 1, k), codebook_size, dtype=dtype)
    for j in range(k):
        out[j:j + frames, j] = a[:, j]
    return out


def _as_values(values, what):
    a = np.asarray(values)
    if a.dtype.kind not in "iu":
        raise TypeError("%s: want an integer array, got %s" % (what, a.dtype))
    return a.astype(np.int64)


def _first_bad(mask):
    return tuple(int(i) for i in np.argwhere(mask)[0])


def invert_layout(values, layout="codebooks", codebooks=None,
                  codebook_size=DEFAULT_CODEBOOK_SIZE, name="tokens"):
    """The inverse of apply_layout: the layout's array -> codes[frames, K]
    (int16).  ``codebooks`` is required for ``flat`` and checked against the
    width of a 2-D array.  Every element is checked (range, pad positions);
    ``ValueError`` names ``name`` and the first bad element."""
    _check_layout(layout)
    a = _as_values(values, name)
    cs = codebook_size
    if layout == "flat":
        k = codebooks
        if a.ndim != 1 or not k or k < 1 or a.shape[0] % k:
            raise ValueError("%s: a flat layout wants a 1-D array whose length is a multiple "
                             "of the %s codebooks" % (name, k))
        a = a.reshape(-1, k)
        lo = np.arange(k, dtype=np.int64) * cs
        bad = (a < lo) | (a >= lo + cs)
        if bad.any():
            t, j = _first_bad(bad)
            raise ValueError("%s: element %d (codebook %d) = %d, want %d..%d"
                             % (name, t * k + j, j, a[t, j], lo[j], lo[j] + cs - 1))
        return (a - lo).astype(_codes_dtype(cs))
    if a.ndim != 2 or a.shape[1] < 1 or (codebooks and codebooks != a.shape[1]) or \
            (layout == "delay" and a.shape[0] < a.shape[1] - 1):
        raise ValueError("%s: shape %s does not fit the %s layout" % (name, a.shape, layout))
    k = a.shape[1]
    if layout == "codebooks":
        bad = (a < 0) | (a >= cs)
        if bad.any():
            t, j = _first_bad(bad)
            raise ValueError("%s: element [%d, %d] = %d, want 0..%d" % (name, t, j, a[t, j], cs - 1))
        return a.astype(_codes_dtype(cs))
    frames = a.shape[0] - (k - 1)
    rows = np.arange(a.shape[0])[:, None]
    cols = np.arange(k)[None, :]
    pad = (rows < cols) | (rows - cols >= frames)
    bad = pad & (a != cs)
    if bad.any():
        r, j = _first_bad(bad)
        raise ValueError("%s: element [%d, %d] (a delay-pattern pad) = %d, want %d"
                         % (name, r, j, a[r, j], cs))
    bad = ~pad & ((a < 0) | (a >= cs))
    if bad.any():
        r, j = _first_bad(bad)
        raise ValueError("%s: element [%d, %d] = %d, want 0..%d" % (name, r, j, a[r, j], cs - 1))
    out = np.empty((frames, k), dtype=_codes_dtype(cs))
    for j in range(k):
        out[:, j] = a[j:j + frames, j]
    return out


def to_flat(codes, codebook_size=DEFAULT_CODEBOOK_SIZE):
    """codes[F, K] -> flat [F*K] ids, codebook k offset by k*codebook_size."""
    return apply_layout(codes, "flat", codebook_size)


def from_flat(values, codebooks, codebook_size=DEFAULT_CODEBOOK_SIZE):
    """flat [F*K] ids -> codes[F, K]."""
    return invert_layout(values, "flat", codebooks, codebook_size)


def to_delay(codes, codebook_size=DEFAULT_CODEBOOK_SIZE):
    """codes[F, K] -> MusicGen's delay pattern [F+K-1, K], pads = codebook_size."""
    return apply_layout(codes, "delay", codebook_size)


def from_delay(values, codebook_size=DEFAULT_CODEBOOK_SIZE):
    """delay pattern [F+K-1, K] -> codes[F, K] (pads checked)."""
    return invert_layout(values, "delay", None, codebook_size)


def save_tokens(path, codes, layout="codebooks", codebook_size=DEFAULT_CODEBOOK_SIZE):
    """Writes codes[F, K] in a layout as tokenize would: the same bytes."""
    np.save(path, apply_layout(codes, layout, codebook_size), allow_pickle=False)


def read_manifest(outdir):
    """Every entry of the ``manifest*.jsonl`` files tokenize wrote in outdir
    (sharded runs write one per shard), as dicts; for an output listed twice
    the line read last counts, as in the C reader.  Damaged lines are
    skipped."""
    entries = {}
    for path in sorted(glob.glob(os.path.join(outdir, "manifest*.jsonl"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if isinstance(e, dict) and isinstance(e.get("output"), str):
                    entries[e["output"]] = e
    return [entries[k] for k in sorted(entries)]


def _manifest_entry(path):
    """The manifest entry of a token file, from the nearest folder above it
    holding a manifest*.jsonl; None when there is none."""
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    while True:
        if glob.glob(os.path.join(d, "manifest*.jsonl")):
            rel = os.path.relpath(path, d)
            for e in read_manifest(d):
                if e["output"] == rel:
                    return e
            return None
        up = os.path.dirname(d)
        if up == d:
            return None
        d = up


def load_tokens(path, layout=None, codebooks=None, codebook_size=None):
    """Reads a token .npy (tokenize's, or any int16/int32/int64 array) and
    returns codes[frames, K] (int16).

    Layout, codebook count and codebook size come from the arguments, then
    from the manifest entry of the file (the nearest folder above it holding
    a ``manifest*.jsonl``), then the defaults (``codebooks`` layout, 1024
    entries).  Raises ``ValueError`` naming the file for an array that does
    not fit the layout or holds an out-of-range code."""
    entry = _manifest_entry(path) if layout is None or codebook_size is None or \
        codebooks is None else None
    given_k = codebooks
    if entry:
        layout = layout or entry.get("layout")
        codebooks = codebooks or entry.get("codebooks")
        codebook_size = codebook_size or entry.get("codebook_size")
    layout = layout or "codebooks"
    codebook_size = codebook_size or DEFAULT_CODEBOOK_SIZE
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError("%s: not a readable .npy file (%s)" % (path, e)) from None
    if a.dtype.kind not in "iu" or a.dtype.itemsize > 8:
        raise ValueError("%s: dtype %s is not an integer token array" % (path, a.dtype))
    if layout != "flat":
        codebooks = given_k   # a 2-D array says how many; a given count must agree
    return invert_layout(a, layout, codebooks, codebook_size, name=path)
