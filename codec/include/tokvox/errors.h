/* tokvox error codes and the struct-size rule, shared by the library API
 * (tokvox.h, bitstream.h, stream.h) and the plugin ABI (plugin.h): both
 * include this header, so a plugin needs only plugin.h and returns the
 * same codes the library reports.
 *
 * Values are never reused; retired ones stay as comments.  Every code has a
 * message in tokvox_strerror() (tokvox.h; plugins do not link the library,
 * so they report details through tokvox_weights.fail or the host's log). */
#ifndef TOKVOX_ERRORS_H
#define TOKVOX_ERRORS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every struct that crosses the library or plugin boundary starts with its
 * size (as its side was compiled), and fields are only ever appended.
 * Whether struct *p is large enough to hold member m: the rule for reading
 * a field a later version added, e.g.
 * TOKVOX_HAS(kernels, tokvox_kernels, linear_f16). */
#define TOKVOX_HAS(p, type, m) \
    ((p)->size >= offsetof(type, m) + sizeof(((const type *)0)->m))

typedef enum tokvox_error {
    TOKVOX_OK = 0,
    TOKVOX_ERR_INVALID_ARGUMENT = -1, /* a NULL handle, a bad count, ... */
    TOKVOX_ERR_NO_MEMORY = -2,
    TOKVOX_ERR_IO = -3,               /* open, read, write, rename failed */
    TOKVOX_ERR_FORMAT = -4,           /* the bytes are not what they claim (file, packet) */
    TOKVOX_ERR_TRUNCATED = -5,        /* the file, packet or datagram ends early */
    TOKVOX_ERR_CHECKSUM = -6,         /* a block failed its checksum */
    TOKVOX_ERR_VERSION = -7,          /* a format version we do not know */
    TOKVOX_ERR_MODEL_MISMATCH = -8,   /* codes from another model */
    TOKVOX_ERR_PLUGIN_NOT_FOUND = -9,
    TOKVOX_ERR_PLUGIN_ABI = -10,      /* plugin built for another ABI */
    TOKVOX_ERR_PLUGIN_INVALID = -11,  /* not a plugin, or a broken one */
    TOKVOX_ERR_WEIGHTS = -12,         /* a tensor missing or of the wrong shape */
    TOKVOX_ERR_UNSUPPORTED = -13,     /* valid, but not something we handle */
    TOKVOX_ERR_AUDIO = -14,           /* unreadable or unusable audio */
    TOKVOX_ERR_STATE = -15,           /* call not allowed in this state */
    TOKVOX_ERR_CODE_RANGE = -16,      /* a code >= the codebook size (or 2^bits) */
    TOKVOX_ERR_AUTH = -17,            /* a sealed datagram that fails authentication, or
                                         an unsealed one where a key is required */
    TOKVOX_ERR_REPLAY = -18,          /* an authenticated datagram seen before */
} tokvox_error;

#ifdef __cplusplus
}
#endif
#endif
