/* A well-formed quantizer whose create always fails with a message. */
#include <stddef.h>

#include "stub_quantizer.h"

static int create(const tokvox_host *h, const tokvox_weights *w, void **out)
{
    (void)h;
    (void)out;
    w->fail(w->ctx, "fails_create: refusing on purpose");
    return TOKVOX_ERR_WEIGHTS;
}

static const tokvox_quantizer_api api = {sizeof api,  create,      stub_destroy,
                                         stub_layout, stub_encode, stub_decode};
static const tokvox_plugin_descriptor descriptor = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = "fails_create",
    .version = "0.0.1",
    .description = "test plugin whose create fails",
    .api = &api,
};
static const tokvox_plugin_descriptor *const plugins[] = {&descriptor};
TOKVOX_PLUGIN_ENTRY(plugins);
