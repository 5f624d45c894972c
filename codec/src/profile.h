/* The timing hook behind tokvox_profile_* (private to libtokvox).
 *
 * The compute kernels' entry points (kernels.c) and the engine's FFTs
 * (dsp.c) bracket their work with tk_profile_begin / tk_profile_end.  Off
 * (the default), begin is one relaxed atomic load and end a comparison;
 * on, every call reads the monotonic clock twice and adds its time to the
 * accumulator of its kernel and shape, under a lock.  Benchmarks only.
 */
#ifndef TOKVOX_PROFILE_H
#define TOKVOX_PROFILE_H

#include <stdatomic.h>
#include <stddef.h>

typedef enum tk_profile_kind {
    TK_PROFILE_LINEAR,        /* shape: in, out */
    TK_PROFILE_LINEAR_F16,    /* shape: in, out */
    TK_PROFILE_CONV1D,        /* shape: in, out, kernel, groups */
    TK_PROFILE_LAYER_NORM,    /* shape: channels */
    TK_PROFILE_GELU,          /* shape: none (elements count as frames) */
    TK_PROFILE_NEAREST,       /* shape: dim, k codewords */
    TK_PROFILE_FFT_FORWARD,   /* shape: n_fft (window and r2c) */
    TK_PROFILE_FFT_INVERSE,   /* shape: n_fft (c2r and window) */
    TK_PROFILE_KINDS
} tk_profile_kind;

extern atomic_int tk_profile_enabled;

double tk_profile_clock(void);
void tk_profile_add(tk_profile_kind kind, size_t a, size_t b, size_t c, size_t d,
                    size_t frames, double macs, double seconds);

/* 0 when profiling is off, else the clock (always > 0). */
static inline double tk_profile_begin(void)
{
    return atomic_load_explicit(&tk_profile_enabled, memory_order_relaxed) ? tk_profile_clock()
                                                                            : 0.0;
}

static inline void tk_profile_end(double t0, tk_profile_kind kind, size_t a, size_t b, size_t c,
                                  size_t d, size_t frames, double macs)
{
    if (t0 > 0.0)
        tk_profile_add(kind, a, b, c, d, frames, macs, tk_profile_clock() - t0);
}

#endif
