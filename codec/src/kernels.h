/* Compute kernels (private to libtokvox): the plain scalar reference.
 * Every faster path added later is tested against these.  Layouts are those
 * of tokvox_kernels in tokvox/plugin.h. */
#ifndef TOKVOX_KERNELS_H
#define TOKVOX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tokvox/plugin.h"

void tk_linear(const float *x, size_t frames, size_t in, const float *w, const float *b,
               size_t out, float *y);
void tk_conv1d_causal(const float *x, size_t frames, size_t in, const float *w, const float *b,
                      size_t out, size_t kernel, size_t groups, float *y);
void tk_layer_norm(float *x, size_t frames, size_t channels, const float *gamma,
                   const float *beta, float eps);
void tk_gelu(float *x, size_t n);
void tk_nearest(const float *x, size_t n, const float *codewords, const float *norms, size_t k,
                size_t dim, uint32_t *index);

/* The table handed to plugins. */
const tokvox_kernels *tk_kernels(void);

#endif
