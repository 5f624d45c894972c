/* Compute kernels (private to libtokvox).  Layouts are those of
 * tokvox_kernels in tokvox/plugin.h.
 *
 * Three layers:
 *   tk_*_scalar   the plain scalar reference.  Every faster path is tested
 *                 against these (tests/test_simd.c), with a tolerance: the
 *                 fast paths sum in another order.
 *   tk_impl       one implementation per instruction set (scalar, avx2,
 *                 avx512), each in its own file so the SIMD ones are compiled
 *                 with target attributes while the library still runs on any
 *                 x86-64.  tk_impl_get(name) returns NULL for a variant that
 *                 is not built or that this CPU cannot run.
 *   tk_*          the entry points in the table handed to plugins
 *                 (tk_kernels()).  They call the variant chosen once, at
 *                 first use, from the CPU's features (avx512f; avx2 + fma +
 *                 f16c) or TOKVOX_KERNELS=scalar|avx2|avx512, and spread
 *                 large calls over the thread pool: linear and linear_f16
 *                 over output columns, nearest over rows, GELU over elements.
 *                 TOKVOX_THREADS (default 1) or tk_set_threads() set the
 *                 threads one call may use.
 *
 * Determinism: every variant computes each output value in a fixed order
 * that depends neither on how many frames a call holds nor on where the
 * value falls in a tile nor on the thread count, and linear_f16 gives the
 * bits linear gives on the widened weights.  So a block of 256 frames, the
 * same frames one at a time, half or f32 weights and any thread count give
 * bit-identical results for a given variant; only different variants
 * differ (within the tolerance).
 *
 * All entry points are [thread-safe] and allocate nothing: scratch lives on
 * the stack, in bounded chunks.  Two sessions calling at once share the
 * pool: whoever finds it busy runs its call alone (same results).
 */
#ifndef TOKVOX_KERNELS_H
#define TOKVOX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tokvox/plugin.h"

/* ---- the scalar reference --------------------------------------------- */
void tk_linear_scalar(const float *x, size_t frames, size_t in, const float *w, const float *b,
                      size_t out, float *y);
void tk_conv1d_causal_scalar(const float *x, size_t frames, size_t in, const float *w,
                             const float *b, size_t out, size_t kernel, size_t groups, float *y);
void tk_layer_norm_scalar(float *x, size_t frames, size_t channels, const float *gamma,
                          const float *beta, float eps);
void tk_gelu_scalar(float *x, size_t n);
void tk_nearest_scalar(const float *x, size_t n, const float *codewords, const float *norms,
                       size_t k, size_t dim, uint32_t *index);
/* linear with IEEE half weights, widened exactly: the same bits as
 * tk_linear_scalar on the widened weights. */
void tk_linear_f16_scalar(const float *x, size_t frames, size_t in, const uint16_t *w,
                          const float *b, size_t out, float *y);
/* The exact value of an IEEE binary16 bit pattern. */
float tk_half_to_float(uint16_t h);

/* ---- one implementation per instruction set ---------------------------- */
typedef struct tk_impl {
    const char *name;
    /* y[t*ldy + o] = (b ? b[o] : 0) + sum_i x[t*in + i] * w[o*in + i] for
     * t < frames, o < out: linear with an output row stride, so a caller can
     * hand a range of output columns to each thread. */
    void (*gemm)(const float *x, size_t frames, size_t in, const float *w, const float *b,
                 size_t out, float *y, size_t ldy);
    /* gemm with IEEE half weights, widened exactly as they are loaded: the
     * same bits as gemm on the widened weights (half the memory traffic). */
    void (*gemm_f16)(const float *x, size_t frames, size_t in, const uint16_t *w,
                     const float *b, size_t out, float *y, size_t ldy);
    /* Depthwise causal conv (groups == in == out), layouts as conv1d_causal. */
    void (*dwconv)(const float *x, size_t frames, size_t channels, const float *w,
                   const float *b, size_t kernel, float *y);
    /* Standard (groups == 1) causal conv; NULL = interleave the input and use
     * gemm (see tk_conv1d_causal). */
    void (*conv)(const float *x, size_t frames, size_t in, const float *w, const float *b,
                 size_t out, size_t kernel, float *y);
    void (*layer_norm)(float *x, size_t frames, size_t channels, const float *gamma,
                       const float *beta, float eps);
    void (*gelu)(float *x, size_t n);
    void (*nearest)(const float *x, size_t n, const float *codewords, const float *norms,
                    size_t k, size_t dim, uint32_t *index);
} tk_impl;

extern const tk_impl tk_impl_scalar;
#if defined(__x86_64__) || defined(__i386__)
#define TK_HAVE_X86_VARIANTS 1
extern const tk_impl tk_impl_avx2;
extern const tk_impl tk_impl_avx512;
#endif

/* The variant called `name` ("scalar", "avx2", "avx512") if built and
 * supported by this CPU, else NULL.  "auto" = the best one. */
const tk_impl *tk_impl_get(const char *name);
/* The variant the entry points use.  Chosen once; tk_impl_select() changes
 * it (tests and benchmarks only, not while kernels run): 0 or -1 if that
 * variant is unavailable. */
const tk_impl *tk_impl_active(void);
int tk_impl_select(const char *name);

/* ---- threads ------------------------------------------------------------ */
/* Threads a single kernel call may use (1..TK_MAX_THREADS).  The first call
 * of any kernel reads TOKVOX_THREADS; tk_set_threads overrides it
 * [thread-safe; takes effect for calls that start afterwards]. */
#define TK_MAX_THREADS 64
void tk_set_threads(int n);
int tk_get_threads(void);

/* ---- the entry points (the table handed to plugins) --------------------- */
void tk_linear(const float *x, size_t frames, size_t in, const float *w, const float *b,
               size_t out, float *y);
void tk_linear_f16(const float *x, size_t frames, size_t in, const uint16_t *w, const float *b,
                   size_t out, float *y);
void tk_conv1d_causal(const float *x, size_t frames, size_t in, const float *w, const float *b,
                      size_t out, size_t kernel, size_t groups, float *y);
void tk_layer_norm(float *x, size_t frames, size_t channels, const float *gamma,
                   const float *beta, float eps);
void tk_gelu(float *x, size_t n);
void tk_nearest(const float *x, size_t n, const float *codewords, const float *norms, size_t k,
                size_t dim, uint32_t *index);

/* The table for plugins: the entry points above; linear_f16 is NULL when the
 * scalar variant is active (widening halves in software costs more than it
 * saves), so a plugin created then keeps to f32 weights. */
const tokvox_kernels *tk_kernels(void);

/* Scratch the entry points keep on the stack, in floats. */
#define TK_STACK_FLOATS 8192

#endif
