/* An ABI 1.1 plugin as the 1.x header defined it (an entry function
 * returning a descriptor with the major and minor first): refused with a
 * message saying ABI 1 plugins are no longer loaded. */
#include <stdint.h>

/* not tokvox/plugin.h: its 2.x names clash with the 1.x entry function */

typedef struct abi1_descriptor {
    uint16_t abi_major, abi_minor;
    uint32_t size;
    int kind;
    const char *name, *version, *description;
    const void *quantizer, *model;
} abi1_descriptor;

static const abi1_descriptor descriptor = {1, 1, sizeof(abi1_descriptor), 1, "abi1", "1.0.0",
                                           "test plugin of ABI 1.1", 0, 0};

__attribute__((visibility("default"))) const abi1_descriptor *tokvox_plugin_entry(void);
const abi1_descriptor *tokvox_plugin_entry(void) { return &descriptor; }
