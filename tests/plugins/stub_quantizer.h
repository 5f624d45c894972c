/* The functions of a quantizer that is never created: what the test-only
 * plugins that exercise loading (not coding) put in their tables. */
#ifndef TOKVOX_TEST_STUB_QUANTIZER_H
#define TOKVOX_TEST_STUB_QUANTIZER_H

#include <stddef.h>

#include "tokvox/plugin.h"

static void stub_destroy(void *q) { (void)q; }
static const tokvox_quantizer_layout *stub_layout(const void *q)
{
    (void)q;
    return NULL;
}
static int stub_encode(const void *q, const float *x, size_t n, int k, uint16_t *c)
{
    (void)q; (void)x; (void)n; (void)k; (void)c;
    return TOKVOX_ERR_STATE;
}
static int stub_decode(const void *q, const uint16_t *c, size_t n, int st, int k, float *x)
{
    (void)q; (void)c; (void)n; (void)st; (void)k; (void)x;
    return TOKVOX_ERR_STATE;
}

#endif
