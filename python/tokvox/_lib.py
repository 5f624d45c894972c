"""ctypes declarations of libtokvox's public API (tokvox/tokvox.h) and of the
package's helper library (_native.c).

The helper, ``_tokvox_native.so``, sits next to this file (in the build tree
and when installed) and links libtokvox.so, so one ``CDLL`` reaches both: a
symbol looked up through a library's handle is searched in its dependencies
too.  ctypes releases the GIL for the duration of every foreign call made
through a ``CDLL``, which is what lets encode_batch run in parallel.
"""
import ctypes
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_NATIVE = os.path.join(_HERE, "_tokvox_native.so")

c_int = ctypes.c_int
c_size = ctypes.c_size_t
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
p_float = ctypes.POINTER(ctypes.c_float)
p_uint16 = ctypes.POINTER(ctypes.c_uint16)
DETAIL_SIZE = 1024


class ModelInfo(ctypes.Structure):
    """tokvox_model_info, field for field.  Its leading size is set to this
    declaration's sizeof at construction: the library fills only the fields
    it covers (and says how many bytes it filled in .size)."""
    _fields_ = [
        ("size", c_size),
        ("sample_rate", c_int),
        ("hop", c_int),
        ("n_fft", c_int),
        ("num_codebooks", c_int),
        ("codebook_size", c_int),
        ("codebook_bits", c_int),
        ("groups", c_int),
        ("stages", c_int),
        ("latency_samples", c_int),
        ("num_params", c_int64),
        ("model_id", c_uint64),
        ("architecture", ctypes.c_char * 32),
        ("quantizer", ctypes.c_char * 32),
        ("name", ctypes.c_char * 64),
        ("num_compatible_ids", c_int),
        ("compatible_ids", c_uint64 * 8),  # TOKVOX_MAX_COMPATIBLE_IDS
    ]

    def __init__(self):
        super().__init__()
        self.size = ctypes.sizeof(self)


def _declare(lib, name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


def _load():
    try:
        lib = ctypes.CDLL(_NATIVE)
    except OSError as e:
        raise ImportError("tokvox: cannot load %s (%s); build the package with meson "
                          "(ninja -C BUILD) and import it from BUILD/python or the "
                          "installed prefix" % (_NATIVE, e)) from None
    pi = ctypes.POINTER(c_int)
    ps = ctypes.POINTER(c_size)
    p64 = ctypes.POINTER(c_int64)
    # libtokvox (tokvox/tokvox.h)
    _declare(lib, "tokvox_strerror", c_char_p, c_int)
    _declare(lib, "tokvox_version", c_char_p)
    _declare(lib, "tokvox_model_load", c_void_p, c_char_p, pi, c_char_p, c_size)
    _declare(lib, "tokvox_model_destroy", None, c_void_p)
    _declare(lib, "tokvox_model_get_info", c_int, c_void_p, ctypes.POINTER(ModelInfo))
    _declare(lib, "tokvox_model_config_json", c_char_p, c_void_p)
    _declare(lib, "tokvox_model_path", c_char_p, c_void_p)
    _declare(lib, "tokvox_encoder_create", c_void_p, c_void_p, c_int, pi)
    _declare(lib, "tokvox_encoder_destroy", None, c_void_p)
    _declare(lib, "tokvox_encoder_num_codebooks", c_int, c_void_p)
    _declare(lib, "tokvox_encoder_push", c_int, c_void_p, p_float, c_size, p_uint16, c_size, ps)
    _declare(lib, "tokvox_encoder_flush", c_int, c_void_p, p_uint16, c_size, ps)
    _declare(lib, "tokvox_encoder_reset", None, c_void_p)
    _declare(lib, "tokvox_decoder_create", c_void_p, c_void_p, c_int, c_int, pi)
    _declare(lib, "tokvox_decoder_destroy", None, c_void_p)
    _declare(lib, "tokvox_decoder_push", c_int, c_void_p, p_uint16, c_size, p_float, ps)
    _declare(lib, "tokvox_decoder_flush", c_int, c_void_p, p_float, ps)
    _declare(lib, "tokvox_decoder_reset", None, c_void_p)
    _declare(lib, "tokvox_decoder_set_postfilter", c_int, c_void_p, c_int)
    _declare(lib, "tokvox_decoder_conceal", c_int, c_void_p, p_float, ps)
    _declare(lib, "tokvox_frames_for_samples", c_size, c_void_p, c_size)
    _declare(lib, "tokvox_set_threads", c_int, c_int)
    _declare(lib, "tokvox_get_threads", c_int)
    # the helper (_native.c)
    _declare(lib, "tvpy_free", None, c_void_p)
    _declare(lib, "tvpy_clean", c_int, p_float, c_size, p64, p64)
    _declare(lib, "tvpy_resample", c_int, p_float, c_size, c_int, c_int,
             ctypes.POINTER(p_float), ps, c_char_p, c_size)
    _declare(lib, "tvpy_encode", c_int, c_void_p, p_float, c_size, c_int, c_int,
             ctypes.POINTER(p_uint16), ps, c_char_p, c_size)
    _declare(lib, "tvpy_read_audio", c_int, c_char_p, c_int, ctypes.POINTER(p_float), ps, pi,
             p64, p64, c_char_p, c_size)
    _declare(lib, "tvpy_read_tvx", c_int, c_char_p, ctypes.POINTER(p_uint16), ps, pi,
             ctypes.POINTER(c_uint64), pi, ctypes.POINTER(c_uint64), c_char_p, c_size)
    _declare(lib, "tvpy_model_info_size", c_size)
    if lib.tvpy_model_info_size() != ctypes.sizeof(ModelInfo):
        raise ImportError("tokvox: tokvox_model_info is %d bytes in C, %d in _lib.py: the "
                          "Python declaration is out of date with tokvox/tokvox.h"
                          % (lib.tvpy_model_info_size(), ctypes.sizeof(ModelInfo)))
    return lib


lib = _load()
