/* Error messages and the version query. */
#include "tokvox/tokvox.h"

#ifndef TOKVOX_VERSION
#define TOKVOX_VERSION "0.0.0"
#endif

/* Indexed by -error; a code without a message here is a bug the errors test catches. */
static const char *const messages[] = {
    [0] = "success",
    [-TOKVOX_ERR_INVALID_ARGUMENT] = "invalid argument",
    [-TOKVOX_ERR_NO_MEMORY] = "out of memory",
    [-TOKVOX_ERR_IO] = "input/output error",
    [-TOKVOX_ERR_FORMAT] = "malformed data",
    [-TOKVOX_ERR_TRUNCATED] = "data ends early (truncated)",
    [-TOKVOX_ERR_CHECKSUM] = "checksum mismatch",
    [-TOKVOX_ERR_VERSION] = "unsupported format version",
    [-TOKVOX_ERR_MODEL_MISMATCH] = "coded with a different model",
    [-TOKVOX_ERR_PLUGIN_NOT_FOUND] = "plugin not found",
    [-TOKVOX_ERR_PLUGIN_ABI] = "plugin built for an incompatible ABI",
    [-TOKVOX_ERR_PLUGIN_INVALID] = "not a valid tokvox plugin",
    [-TOKVOX_ERR_WEIGHTS] = "model weights missing or malformed",
    [-TOKVOX_ERR_UNSUPPORTED] = "not supported",
    [-TOKVOX_ERR_AUDIO] = "unusable audio",
    [-TOKVOX_ERR_STATE] = "operation not allowed in this state",
    [-TOKVOX_ERR_CODE_RANGE] = "code out of range",
    [-TOKVOX_ERR_AUTH] = "not authenticated",
    [-TOKVOX_ERR_REPLAY] = "replayed",
};

const char *tokvox_strerror(int error)
{
    if (error > 0 || error <= -(int)(sizeof messages / sizeof messages[0]) || !messages[-error])
        return "unknown error";
    return messages[-error];
}

const char *tokvox_version(void) { return TOKVOX_VERSION; }

int tokvox_version_number(void)
{
    int major = 0, minor = 0, patch = 0;
    const char *p = TOKVOX_VERSION;
    int *parts[3] = {&major, &minor, &patch};
    for (int i = 0; i < 3 && *p; i++) {
        while (*p >= '0' && *p <= '9')
            *parts[i] = *parts[i] * 10 + (*p++ - '0');
        if (*p == '.')
            p++;
    }
    return major * 10000 + minor * 100 + patch;
}
