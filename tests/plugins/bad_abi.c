/* A plugin built for a future ABI major: the host must refuse it by name. */
#include "tokvox/plugin.h"

static const tokvox_plugin_descriptor descriptor = {
    .abi_major = TOKVOX_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = "bad_abi",
    .version = "9.9.9",
    .description = "test plugin with a wrong ABI major",
};

TOKVOX_PLUGIN_EXPORT const tokvox_plugin_descriptor *tokvox_plugin_entry(void);
const tokvox_plugin_descriptor *tokvox_plugin_entry(void) { return &descriptor; }
