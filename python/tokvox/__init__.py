"""tokvox: a neural speech codec and speech tokens, in process.

A thin layer over libtokvox (ctypes; numpy arrays in and out).  The same
codes as the ``tokvox`` command: ``Model.encode`` of a file's samples at the
file's rate equals ``tokvox encode`` / ``tokvox tokenize`` of that file, code
for code (the resampler and the cleaning of NaN/overs are the command's own
C code).

    import numpy as np, tokvox
    model = tokvox.Model()                        # the shipped model, like the CLI
    codes = model.encode(audio, 44100)            # 1-D float or int16, any rate
    codes.shape, codes.dtype                      # (frames, 8), int16; 50 frames/s
    low = model.encode(audio, 44100, bitrate=1)   # 2 codebooks = 1 kbps
    wav = model.decode(codes)                     # float32 at model.sample_rate
    many = model.encode_batch(clips, 16000, threads=4)   # C threads, GIL released
    enc = tokvox.Encoder(model); frames = enc.push(chunk); last = enc.flush()
    tokens = tokvox.load_tokens("tokens/spk1/utt7.npy")  # any --layout -> [F, K]

Errors from the library raise ``tokvox.Error`` carrying its message and
code; bad arguments (wrong dtype or shape, out-of-range codes) raise
``TypeError`` / ``ValueError`` before anything reaches C.

Threads: a ``Model`` is immutable and shared freely; an ``Encoder`` or
``Decoder`` is one stream (calls on it are serialised by a lock).  Every
call into C releases the GIL.  ``set_threads(n)`` sets the threads one large
kernel call may use, process-wide (env ``TOKVOX_THREADS``); results are
identical for any count.
"""
import ctypes
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._lib import DETAIL_SIZE, ModelInfo, lib as _c
from .tokens import (LAYOUTS, apply_layout, from_delay, from_flat, invert_layout, layout_dtype,
                     load_tokens, read_manifest, save_tokens, to_delay, to_flat)

__all__ = ["Model", "Encoder", "Decoder", "Error", "read_audio", "read_tvx", "set_threads", "get_threads",
           "version", "LAYOUTS", "apply_layout", "invert_layout", "layout_dtype", "to_flat",
           "from_flat", "to_delay", "from_delay", "load_tokens", "save_tokens", "read_manifest"]

_p_float = ctypes.POINTER(ctypes.c_float)
_p_uint16 = ctypes.POINTER(ctypes.c_uint16)


class Error(Exception):
    """A failure reported by libtokvox.  ``code`` is the tokvox_error value
    (negative), ``message`` the library's one-line detail (file and problem
    where there is one), ``reason`` tokvox_strerror(code)."""

    def __init__(self, code, message=None):
        self.code = code
        self.reason = _c.tokvox_strerror(code).decode()
        self.message = message or self.reason
        super().__init__(self.message)


def _detail():
    return ctypes.create_string_buffer(DETAIL_SIZE)


def _check(err, detail=None, what=None):
    if err:
        msg = detail.value.decode("utf-8", "replace") if detail is not None else ""
        if not msg:
            msg = _c.tokvox_strerror(err).decode()
            if what:
                msg = "%s: %s" % (what, msg)
        raise Error(err, msg)


def version():
    """libtokvox's version string, e.g. '0.1.0'."""
    return _c.tokvox_version().decode()


def set_threads(n):
    """Threads one large kernel call may use (1..64), process-wide; returns
    the count in effect.  Codes and audio are identical for every count."""
    return _c.tokvox_set_threads(int(n))


def get_threads():
    """The kernel thread count in effect (TOKVOX_THREADS or set_threads)."""
    return _c.tokvox_get_threads()


def _float_ptr(a):
    return a.ctypes.data_as(_p_float)


def _to_float32(audio, what="audio"):
    """A 1-D array of samples -> contiguous float32, as libsndfile reads the
    same samples from a file: int16 / 32768, int32 / 2^31, floats as they
    are.  A new array (the caller's is never modified)."""
    if isinstance(audio, (str, bytes, os.PathLike)):
        raise TypeError("%s: want a 1-D array of samples, not a path (use "
                        "Model.encode_file)" % what)
    try:
        a = np.asarray(audio)
    except Exception as e:   # ragged lists and such
        raise TypeError("%s: not an array of samples (%s)" % (what, e)) from None
    if a.ndim != 1:
        raise ValueError("%s: want a 1-D (mono) array, got shape %s" % (what, a.shape))
    if a.dtype == np.int16:
        return a.astype(np.float32) * np.float32(1.0 / 32768)
    if a.dtype == np.int32:
        return a.astype(np.float32) * np.float32(1.0 / 2147483648)
    if a.dtype in (np.float32, np.float64):
        return np.array(a, dtype=np.float32, order="C", copy=True)
    raise TypeError("%s: dtype %s not supported (want float32, float64, int16 or int32)"
                    % (what, a.dtype))


def _clean(x, what="audio", warn=True):
    """NaN/Inf -> 0 and overs clamped to [-1, 1] in place, as the command
    reads float files; warns like it does."""
    nonfinite, clipped = ctypes.c_int64(), ctypes.c_int64()
    _c.tvpy_clean(_float_ptr(x), x.size, ctypes.byref(nonfinite), ctypes.byref(clipped))
    if warn and nonfinite.value:
        warnings.warn("%s: %d NaN/Inf sample%s read as 0" % (
            what, nonfinite.value, "" if nonfinite.value == 1 else "s"), stacklevel=3)
    if warn and clipped.value:
        warnings.warn("%s: %d sample%s beyond full scale clamped to [-1, 1]" % (
            what, clipped.value, "" if clipped.value == 1 else "s"), stacklevel=3)
    return x


def _check_rate(rate, what="sample_rate"):
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise TypeError("%s: want an integer rate in Hz, got %r" % (what, rate))
    if not 1000 <= int(rate) <= 384000:
        raise ValueError("%s: %d Hz is not supported (1000..384000)" % (what, rate))
    return int(rate)


def read_audio(path, sample_rate=None):
    """Reads an audio file (every format libsndfile reads) as the command
    does: mono (channels averaged), NaN/Inf read as 0, overs clamped, and
    resampled to ``sample_rate`` (None: keep the file's).  Returns
    ``(samples float32, rate)``; ``rate`` is that of the samples returned."""
    target = 0 if sample_rate is None else _check_rate(sample_rate)
    buf, n = _p_float(), ctypes.c_size_t()
    src, nonfinite, clipped = ctypes.c_int(), ctypes.c_int64(), ctypes.c_int64()
    detail = _detail()
    err = _c.tvpy_read_audio(os.fsencode(path), target, ctypes.byref(buf), ctypes.byref(n),
                             ctypes.byref(src), ctypes.byref(nonfinite), ctypes.byref(clipped),
                             detail, DETAIL_SIZE)
    _check(err, detail)
    try:
        out = np.ctypeslib.as_array(buf, shape=(n.value,)).copy() if n.value else \
            np.zeros(0, np.float32)
    finally:
        _c.tvpy_free(buf)
    if nonfinite.value:
        warnings.warn("%s: %d NaN/Inf samples read as 0" % (path, nonfinite.value), stacklevel=2)
    if clipped.value:
        warnings.warn("%s: %d samples beyond full scale clamped to [-1, 1]"
                      % (path, clipped.value), stacklevel=2)
    return out, (target or src.value)


def read_tvx(path):
    """Reads a ``.tvx`` bitstream (``tokvox encode``'s output).  Returns
    ``(codes, header)``: int16 codes [frames, K] and a dict with
    ``codebooks``, ``sample_count`` (samples at the model rate the stream
    decodes to), ``source_rate`` and ``model_id``.  A damaged or truncated
    file raises tokvox.Error naming it."""
    codes, frames, k = _p_uint16(), ctypes.c_size_t(), ctypes.c_int()
    samples, src, mid = ctypes.c_uint64(), ctypes.c_int(), ctypes.c_uint64()
    detail = _detail()
    err = _c.tvpy_read_tvx(os.fsencode(path), ctypes.byref(codes), ctypes.byref(frames),
                           ctypes.byref(k), ctypes.byref(samples), ctypes.byref(src),
                           ctypes.byref(mid), detail, DETAIL_SIZE)
    _check(err, detail)
    try:
        out = np.ctypeslib.as_array(codes, shape=(frames.value, k.value)).astype(np.int16)
    finally:
        _c.tvpy_free(codes)
    return out, {"codebooks": k.value, "sample_count": samples.value, "source_rate": src.value,
                 "model_id": "%016x" % mid.value}


class Model:
    """A loaded model file (immutable; share it between threads).

    ``Model()`` loads the default model as the command does (``TOKVOX_MODEL``,
    then the build's and the installed ``models/`` folder);
    ``Model(path)`` a given ``.safetensors`` file, or a shipped model by
    name (``Model("tokvox-16k-ld")``: the 40 ms low-delay variant of the
    default, the same codes).  Raises ``tokvox.Error``
    with a message naming the file and the problem.  Freed when the last
    reference (including every Encoder/Decoder made from it) goes."""

    def __init__(self, path=None):
        err = ctypes.c_int()
        detail = _detail()
        p = None if path is None else os.fsencode(path)
        h = _c.tokvox_model_load(p, ctypes.byref(err), detail, DETAIL_SIZE)
        if not h:
            _check(err.value or -1, detail)
        self._h = h
        self._info = ModelInfo()
        _check(_c.tokvox_model_get_info(h, ctypes.byref(self._info)), None, "model info")

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h and _c is not None:
            _c.tokvox_model_destroy(h)

    def __repr__(self):
        return "<tokvox.Model %s: %d Hz, %d codebooks, %s>" % (
            self.name, self.sample_rate, self.num_codebooks, self.path)

    # ---- what the model is -------------------------------------------------
    @property
    def path(self):
        """The file the model was loaded from."""
        return _c.tokvox_model_path(self._h).decode("utf-8", "surrogateescape")

    @property
    def name(self):
        return self._info.name.decode()

    @property
    def model_id(self):
        """The 64-bit hash of the model file, as 16 hex digits (as in manifests)."""
        return "%016x" % self._info.model_id

    @property
    def sample_rate(self):
        """The model's rate in Hz; decode returns audio at this rate."""
        return self._info.sample_rate

    @property
    def hop(self):
        """Samples per frame."""
        return self._info.hop

    @property
    def frame_rate(self):
        """Code frames per second (sample_rate / hop)."""
        return self._info.sample_rate / self._info.hop

    @property
    def num_codebooks(self):
        """Codes per frame at the full bitrate."""
        return self._info.num_codebooks

    @property
    def codebook_size(self):
        """Entries per codebook: codes are 0..codebook_size-1."""
        return self._info.codebook_size

    @property
    def kbps_per_codebook(self):
        return self._info.codebook_bits * self.frame_rate / 1000.0

    @property
    def bitrates(self):
        """{codebooks: kbps} for every codebook count the model can code."""
        return {k: k * self.kbps_per_codebook for k in range(1, self.num_codebooks + 1)}

    @property
    def latency_samples(self):
        """Algorithmic latency of a live stream, in samples at sample_rate."""
        return self._info.latency_samples

    @property
    def latency(self):
        """Algorithmic latency of a live stream, in seconds."""
        return self._info.latency_samples / self._info.sample_rate

    def info(self):
        """Everything about the model, as ``tokvox info --json`` prints it."""
        import json
        i = self._info
        rate = i.sample_rate / i.hop
        out = {"type": "model", "path": self.path, "name": self.name, "model_id": self.model_id,
               "architecture": i.architecture.decode(), "quantizer": i.quantizer.decode(),
               "sample_rate": i.sample_rate, "hop": i.hop, "n_fft": i.n_fft, "frame_rate": rate,
               "groups": i.groups, "stages": i.stages, "num_codebooks": i.num_codebooks,
               "codebook_size": i.codebook_size, "codebook_bits": i.codebook_bits,
               "bitrates_kbps": [k * (i.codebook_bits * i.sample_rate / i.hop / 1000.0)
                                 for k in range(1, i.num_codebooks + 1)],
               "latency_samples": i.latency_samples,
               "latency_ms": 1000.0 * i.latency_samples / i.sample_rate,
               "parameters": i.num_params}
        try:
            out["config"] = json.loads(_c.tokvox_model_config_json(self._h).decode())
        except (ValueError, AttributeError):
            pass
        return out

    def frames_for_samples(self, n):
        """Frames a stream of n samples (at sample_rate) encodes to, flush included."""
        return _c.tokvox_frames_for_samples(self._h, int(n))

    def codebooks_for(self, codebooks=None, bitrate=None):
        """The codebook count for ``codebooks`` or ``bitrate`` (kbps), checked
        as the command checks --codebooks / --bitrate; all of them when both
        are None."""
        if codebooks is not None and bitrate is not None:
            raise ValueError("give codebooks or bitrate, not both")
        if bitrate is not None:
            try:
                kbps = float(bitrate)
            except (TypeError, ValueError):
                raise TypeError("bitrate: want kbps as a number, got %r" % (bitrate,)) from None
            step = self.kbps_per_codebook
            n = round(kbps / step) if np.isfinite(kbps) else 0
            if not np.isfinite(kbps) or abs(kbps / step - n) > 1e-6 or not \
                    1 <= n <= self.num_codebooks:
                raise ValueError("bitrate %g: the model offers %g to %g kbps in steps of %g kbps"
                                 % (kbps, step, self.num_codebooks * step, step))
            return int(n)
        if codebooks is None:
            return self.num_codebooks
        if isinstance(codebooks, bool) or not isinstance(codebooks, (int, np.integer)):
            raise TypeError("codebooks: want an integer, got %r" % (codebooks,))
        if not 1 <= codebooks <= self.num_codebooks:
            raise ValueError("codebooks %d: the model has %d codebooks"
                             % (codebooks, self.num_codebooks))
        return int(codebooks)

    # ---- whole signals -------------------------------------------------------
    def _encode_prepared(self, x, rate, k):
        """x: cleaned contiguous float32 at rate -> codes (one C call, GIL released)."""
        codes, frames = _p_uint16(), ctypes.c_size_t()
        detail = _detail()
        err = _c.tvpy_encode(self._h, _float_ptr(x), x.size, rate, k, ctypes.byref(codes),
                             ctypes.byref(frames), detail, DETAIL_SIZE)
        _check(err, detail)
        try:
            out = np.ctypeslib.as_array(codes, shape=(frames.value, k)).astype(np.int16)
        finally:
            _c.tvpy_free(codes)
        return out

    def encode(self, audio, sample_rate, codebooks=None, bitrate=None):
        """Encodes a 1-D array of mono samples (float32/float64 in [-1, 1], or
        int16/int32 PCM) at ``sample_rate`` Hz (any rate from 1000 to 384000:
        resampled with libsoxr exactly as the command does).

        Returns int16 codes ``[frames, codebooks]``, frames =
        ceil(n / hop) + 1 at the model's rate (the last from the flush).
        NaN/Inf count as 0 and overs are clamped, with a warning, as for a
        float file.  ``codebooks`` (1..num_codebooks) or ``bitrate`` (kbps)
        picks the bitrate; all codebooks by default."""
        k = self.codebooks_for(codebooks, bitrate)
        rate = _check_rate(sample_rate)
        x = _clean(_to_float32(audio))
        return self._encode_prepared(x, rate, k)

    def encode_file(self, path, codebooks=None, bitrate=None):
        """Encodes an audio file: the codes of ``tokvox encode`` of that file."""
        k = self.codebooks_for(codebooks, bitrate)
        x, rate = read_audio(path, self.sample_rate)
        return self._encode_prepared(x, rate, k)

    def encode_batch(self, audios, sample_rate, codebooks=None, bitrate=None, threads=None):
        """Encodes a list of 1-D arrays; returns their codes in order,
        identical to calling encode on each.  ``sample_rate`` is one rate for
        all, or one per array.  ``threads`` Python threads (default: the
        CPU count) each run whole encodings in C with the GIL released, one
        encoder session per array over this shared model."""
        audios = list(audios)
        rates = list(sample_rate) if isinstance(sample_rate, (list, tuple, np.ndarray)) \
            else [sample_rate] * len(audios)
        if len(rates) != len(audios):
            raise ValueError("sample_rate: %d rates for %d arrays" % (len(rates), len(audios)))
        k = self.codebooks_for(codebooks, bitrate)
        jobs = [(_clean(_to_float32(a, "audio[%d]" % i), "audio[%d]" % i),
                 _check_rate(r, "sample_rate[%d]" % i)) for i, (a, r) in enumerate(zip(audios,
                                                                                        rates))]
        n = threads if threads is not None else (os.cpu_count() or 1)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError("threads: want a positive integer, got %r" % (threads,))
        if n == 1 or len(jobs) < 2:
            return [self._encode_prepared(x, r, k) for x, r in jobs]
        with ThreadPoolExecutor(max_workers=min(int(n), len(jobs))) as pool:
            return list(pool.map(lambda job: self._encode_prepared(job[0], job[1], k), jobs))

    def decode(self, codes, codebooks=None, length=None, sample_rate=None, postfilter=True):
        """Decodes int codes ``[frames, K]`` (K <= num_codebooks, codes
        0..codebook_size-1) to float32 mono audio.  ``codebooks`` decodes
        only the first N of the K (a lower bitrate without re-encoding).
        ``length``: samples to return at the model rate (default
        (frames - 1) * hop: every frame but the encoder's flush frame, as
        ``tokvox detokenize`` does without a manifest; pass the input's
        length for exactly that many).  ``sample_rate``: resample the
        result (libsoxr, as the command writes other rates).
        ``postfilter=False``: the network's raw output, without the
        decode-time post-filter the model's config names."""
        c = _check_codes(codes, self.codebook_size, self.num_codebooks)
        frames, k = c.shape
        use = 0 if codebooks is None else _check_use(codebooks, k)
        n = max(frames - 1, 0) * self.hop if length is None else int(length)
        if n < 0 or (length is not None and n > frames * self.hop):
            raise ValueError("length %d: %d frames decode to at most %d samples"
                             % (n, frames, frames * self.hop))
        if frames == 0:
            out = np.zeros(0, np.float32)
        else:
            dec = Decoder(self, codebooks=use or None, stream_codebooks=k,
                          postfilter=postfilter)
            out = np.concatenate([dec.push(c), dec.flush()])[:n]
            dec.close()
        if sample_rate is not None and _check_rate(sample_rate) != self.sample_rate and n:
            out = _resample(out, self.sample_rate, int(sample_rate))
        return out


def _resample(x, rate, out_rate):
    x = np.ascontiguousarray(x, dtype=np.float32)
    buf, n = _p_float(), ctypes.c_size_t()
    detail = _detail()
    _check(_c.tvpy_resample(_float_ptr(x), x.size, rate, out_rate, ctypes.byref(buf),
                            ctypes.byref(n), detail, DETAIL_SIZE), detail)
    try:
        return np.ctypeslib.as_array(buf, shape=(n.value,)).copy()
    finally:
        _c.tvpy_free(buf)


def _check_codes(codes, codebook_size, max_k):
    """Any integer [frames, K] array -> contiguous uint16, every code checked."""
    try:
        a = np.asarray(codes)
    except Exception as e:
        raise TypeError("codes: not an array (%s)" % e) from None
    if a.dtype.kind not in "iu":
        raise TypeError("codes: want an integer array, got %s" % a.dtype)
    if a.ndim != 2 or not 1 <= a.shape[1] <= max_k:
        raise ValueError("codes: want a 2-D [frames, K] array with 1 <= K <= %d, got shape %s"
                         % (max_k, a.shape))
    if a.size:
        lo, hi = a.min(), a.max()
        if lo < 0 or hi >= codebook_size:
            bad = np.argwhere((a < 0) | (a >= codebook_size))[0]
            raise ValueError("codes: element [%d, %d] = %d, want 0..%d"
                             % (bad[0], bad[1], a[bad[0], bad[1]], codebook_size - 1))
    return np.ascontiguousarray(a, dtype=np.uint16)


def _check_use(codebooks, k):
    if isinstance(codebooks, bool) or not isinstance(codebooks, (int, np.integer)):
        raise TypeError("codebooks: want an integer, got %r" % (codebooks,))
    if not 1 <= codebooks <= k:
        raise ValueError("codebooks %d: the codes have %d codebooks" % (codebooks, k))
    return int(codebooks)


class _Session:
    """Shared by Encoder and Decoder: the handle, its lock, close()."""
    _destroy = None

    def close(self):
        """Frees the C session now (also done when the object is collected)."""
        with self._lock:
            h, self._h = self._h, None
            if h and _c is not None:
                getattr(_c, self._destroy)(h)

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._h


class Encoder(_Session):
    """A streaming encoder (tokvox_encoder): push mono samples at the model's
    rate in chunks of any size, get the code frames completed so far.
    Pushing a signal in any chunking gives exactly ``Model.encode``'s codes.
    One stream; calls are serialised."""
    _destroy = "tokvox_encoder_destroy"

    def __init__(self, model, codebooks=None, bitrate=None):
        if not isinstance(model, Model):
            raise TypeError("model: want a tokvox.Model")
        self._lock = threading.Lock()
        self._h = None
        k = model.codebooks_for(codebooks, bitrate)
        err = ctypes.c_int()
        h = _c.tokvox_encoder_create(model._h, k, ctypes.byref(err))
        if not h:
            _check(err.value or -1, what="encoder")
        self.model, self._h, self.num_codebooks = model, h, k

    def push(self, pcm):
        """pcm: 1-D float or int16 samples at model.sample_rate.  Returns int16
        codes [frames, num_codebooks] for the frames completed (often 0 rows)."""
        x = _clean(_to_float32(pcm, "pcm"), "pcm", warn=False)
        cap = x.size // self.model.hop + 1
        out = np.empty((cap, self.num_codebooks), np.uint16)
        got = ctypes.c_size_t()
        with self._lock:
            err = _c.tokvox_encoder_push(self._handle(), _float_ptr(x), x.size,
                                         out.ctypes.data_as(_p_uint16), cap, ctypes.byref(got))
        _check(err, what="encoder push")
        return out[:got.value].astype(np.int16)

    def flush(self):
        """End of stream: pads with zeros, returns the last frames (1 or 2).
        Push again only after reset()."""
        out = np.empty((2, self.num_codebooks), np.uint16)
        got = ctypes.c_size_t()
        with self._lock:
            err = _c.tokvox_encoder_flush(self._handle(), out.ctypes.data_as(_p_uint16), 2,
                                          ctypes.byref(got))
        _check(err, what="encoder flush")
        return out[:got.value].astype(np.int16)

    def reset(self):
        """Back to the start of a stream."""
        with self._lock:
            _c.tokvox_encoder_reset(self._handle())


class Decoder(_Session):
    """A streaming decoder (tokvox_decoder): push code frames, get PCM at the
    model's rate, up to hop samples per frame (none for a stream's first
    frame; see tokvox_decoder_push); flush() returns the samples still owed
    (a hop for the shipped model).  ``stream_codebooks``: codes per
    frame pushed (default: ``codebooks``, else all); ``codebooks``: how many
    of them to decode; ``postfilter=False``: without the model's decode-time
    post-filter (tokvox_decoder_set_postfilter)."""
    _destroy = "tokvox_decoder_destroy"

    def __init__(self, model, codebooks=None, stream_codebooks=None, postfilter=True):
        if not isinstance(model, Model):
            raise TypeError("model: want a tokvox.Model")
        self._lock = threading.Lock()
        self._h = None
        stream = model.codebooks_for(stream_codebooks if stream_codebooks is not None
                                     else codebooks)
        use = 0 if codebooks is None else _check_use(codebooks, stream)
        err = ctypes.c_int()
        h = _c.tokvox_decoder_create(model._h, stream, use, ctypes.byref(err))
        if not h:
            _check(err.value or -1, what="decoder")
        _c.tokvox_decoder_set_postfilter(h, 1 if postfilter else 0)
        self.model, self._h = model, h
        self.stream_codebooks, self.num_codebooks = stream, use or stream

    def push(self, codes):
        """codes: integer [frames, stream_codebooks].  Returns float32 PCM."""
        c = _check_codes(codes, self.model.codebook_size, self.stream_codebooks)
        if c.shape[1] != self.stream_codebooks:
            raise ValueError("codes: %d codebooks per frame, this decoder takes %d"
                             % (c.shape[1], self.stream_codebooks))
        out = np.empty(c.shape[0] * self.model.hop, np.float32)
        got = ctypes.c_size_t()
        with self._lock:
            err = _c.tokvox_decoder_push(self._handle(), c.ctypes.data_as(_p_uint16), c.shape[0],
                                         _float_ptr(out), ctypes.byref(got))
        _check(err, what="decoder push")
        return out[:got.value]

    def flush(self):
        """End of stream: the samples still owed (the unfinished overlap), at
        most the decoder's latency: latency_samples - hop."""
        out = np.empty(self.model.latency_samples - self.model.hop, np.float32)
        got = ctypes.c_size_t()
        with self._lock:
            err = _c.tokvox_decoder_flush(self._handle(), _float_ptr(out), ctypes.byref(got))
        _check(err, what="decoder flush")
        return out[:got.value]

    def conceal(self):
        """In place of a lost frame: what a push of one frame would return,
        from the last frame's latent, fading (see tokvox_decoder_conceal)."""
        out = np.empty(self.model.hop, np.float32)
        got = ctypes.c_size_t()
        with self._lock:
            err = _c.tokvox_decoder_conceal(self._handle(), _float_ptr(out), ctypes.byref(got))
        _check(err, what="decoder conceal")
        return out[:got.value]

    def reset(self):
        """Back to the start of a stream."""
        with self._lock:
            _c.tokvox_decoder_reset(self._handle())
