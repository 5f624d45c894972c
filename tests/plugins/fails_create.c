/* A well-formed quantizer whose create always fails with a message. */
#include <stddef.h>

#include "tokvox/plugin.h"
#include "tokvox/tokvox.h"

static int create(const tokvox_weights *w, const tokvox_kernels *k, void **out)
{
    (void)k;
    (void)out;
    w->fail(w->ctx, "fails_create: refusing on purpose");
    return TOKVOX_ERR_WEIGHTS;
}
static void destroy(void *q) { (void)q; }
static void layout(const void *q, tokvox_quantizer_layout *l) { (void)q; (void)l; }
static int encode(const void *q, const float *x, size_t n, int k, uint16_t *c, float *s)
{
    (void)q; (void)x; (void)n; (void)k; (void)c; (void)s;
    return TOKVOX_ERR_STATE;
}
static int decode(const void *q, const uint16_t *c, size_t n, int st, int k, float *x)
{
    (void)q; (void)c; (void)n; (void)st; (void)k; (void)x;
    return TOKVOX_ERR_STATE;
}

static const tokvox_quantizer_api api = {create, destroy, layout, encode, decode};
static const tokvox_plugin_descriptor descriptor = {
    .abi_major = TOKVOX_PLUGIN_ABI_MAJOR,
    .abi_minor = TOKVOX_PLUGIN_ABI_MINOR,
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = "fails_create",
    .version = "0.0.1",
    .description = "test plugin whose create fails",
    .quantizer = &api,
};

TOKVOX_PLUGIN_EXPORT const tokvox_plugin_descriptor *tokvox_plugin_entry(void);
const tokvox_plugin_descriptor *tokvox_plugin_entry(void) { return &descriptor; }
