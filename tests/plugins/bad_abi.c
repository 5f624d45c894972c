/* A plugin built for a future ABI major: the host must refuse it by name. */
#include "tokvox/plugin.h"

static uint32_t count(void) { return 0; }
static const tokvox_plugin_descriptor *get(uint32_t i) { (void)i; return NULL; }

TOKVOX_PLUGIN_EXPORT extern const tokvox_plugin_entry tokvox_entry;
const tokvox_plugin_entry tokvox_entry = {
    .abi_major = TOKVOX_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(tokvox_plugin_entry),
    .plugin_count = count,
    .plugin_get = get,
};
