/* Same major, a newer minor than the host, with larger structs than the
 * host knows (fields the host cannot read): it loads, since the host reads
 * only what it knows and the plugin asks for nothing newer. */
#include <stddef.h>

#include "stub_quantizer.h"

static int create(const tokvox_host *h, const tokvox_weights *w, void **out)
{
    (void)h;
    (void)w;
    *out = NULL;
    return TOKVOX_ERR_UNSUPPORTED;
}

/* a future minor's tables: the current ones with a field appended */
typedef struct future_api {
    tokvox_quantizer_api current;
    int (*future_function)(void);
} future_api;
typedef struct future_descriptor {
    tokvox_plugin_descriptor current;
    const char *future_field;
} future_descriptor;

static const future_api api = {
    {sizeof(future_api), create, stub_destroy, stub_layout, stub_encode, stub_decode}, NULL};
static const future_descriptor descriptor = {
    {sizeof(future_descriptor), TOKVOX_PLUGIN_QUANTIZER, "newer_minor", "2.99.0",
     "test plugin with a newer ABI minor", &api},
    "future"};

static uint32_t count(void) { return 1; }
static const tokvox_plugin_descriptor *get(uint32_t i)
{
    return i == 0 ? &descriptor.current : NULL;
}

TOKVOX_PLUGIN_EXPORT extern const tokvox_plugin_entry tokvox_entry;
const tokvox_plugin_entry tokvox_entry = {TOKVOX_PLUGIN_ABI_MAJOR, TOKVOX_PLUGIN_ABI_MINOR + 1,
                                          sizeof(tokvox_plugin_entry) + 8, NULL, NULL, count,
                                          get};
