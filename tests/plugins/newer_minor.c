/* Same major, newer minor than the host: refused (it may rely on more). */
#include "tokvox/plugin.h"

static const tokvox_plugin_descriptor descriptor = {
    .abi_major = TOKVOX_PLUGIN_ABI_MAJOR,
    .abi_minor = TOKVOX_PLUGIN_ABI_MINOR + 1,
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = "newer_minor",
    .version = "1.1.0",
    .description = "test plugin with a newer ABI minor",
};

TOKVOX_PLUGIN_EXPORT const tokvox_plugin_descriptor *tokvox_plugin_entry(void);
const tokvox_plugin_descriptor *tokvox_plugin_entry(void) { return &descriptor; }
