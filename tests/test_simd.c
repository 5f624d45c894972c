/* Every fast kernel against its scalar twin (codec/src/kernels.h).
 *
 * For each SIMD variant this CPU runs (avx2, avx512; the others are skipped
 * and said so), on random sizes including odd ones and ones around the
 * vector widths and tile sizes: gemm, depthwise conv, the standard conv the
 * entry point builds from gemm, layer norm, GELU and nearest codeword agree
 * with the scalar reference within a tolerance scaled to the sums involved
 * (they sum in another order, so not bit-exactly).  Then the promises the
 * engine relies on, bit-exactly: a frame's result does not depend on how
 * many frames a call holds or which tile computed it, linear with half
 * weights (linear_f16) gives the bits linear gives on the widened weights,
 * and the entry points give the same bits for any thread count.  Random tests print their seed;
 * TOKVOX_TEST_SEED repeats one.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "testutil.h"

static uint64_t rng;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static size_t pick(const size_t *choices, size_t n) { return choices[next_u32() % n]; }

static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_u32() & 0xffffff) / 16777216.0f;
}

static float *randoms(size_t n, float lo, float hi)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = uniform(lo, hi);
    return p;
}

static const char *const variants[] = {"avx2", "avx512"};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* The variant, or NULL (and a note) when this CPU or build lacks it. */
static const tk_impl *variant(size_t i)
{
    const tk_impl *k = tk_impl_get(variants[i]);
    if (!k)
        fprintf(stderr, "%s: not available here, skipped\n", variants[i]);
    return k;
}

static void setup(void)
{
    static unsigned seed;
    static int seeded;
    if (!seeded) {
        seed = tu_seed();
        seeded = 1;
    }
    rng = 0x9e3779b97f4a7c15ull ^ seed;
    ck_assert_int_eq(tk_impl_select("auto"), 0);
    tk_set_threads(1);
}

/* |got - want| <= tol * scale + tiny, for every element; scale[i] bounds
 * the magnitudes summed into element i. */
static void expect_near(const char *what, const float *got, const float *want,
                        const double *scale, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)want[i]);
        double allowed = tol * (scale ? scale[i] : fabs((double)want[i])) + 1e-6;
        ck_assert_msg(err <= allowed, "%s: element %zu is %.9g, reference %.9g (allowed %.3g)",
                      what, i, (double)got[i], (double)want[i], allowed);
    }
}

/* ---- gemm ------------------------------------------------------------------- */

static const size_t frames_choices[] = {1, 2, 3, 4, 5, 7, 8, 13, 64, 65, 130};
static const size_t in_choices[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 128, 256,
                                    321, 384, 768, 963};
static const size_t out_choices[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 24, 25, 47,
                                     48, 49, 97, 128, 257};

static void gemm_case(const tk_impl *k, size_t frames, size_t in, size_t out, int bias,
                      size_t pad)
{
    size_t ldy = out + pad;
    float *x = randoms(frames * in, -2.0f, 2.0f), *w = randoms(out * in, -1.0f, 1.0f);
    float *b = bias ? randoms(out, -1.0f, 1.0f) : NULL;
    float *y = randoms(frames * ldy, 0.0f, 0.0f), *ref = randoms(frames * out, 0.0f, 0.0f);
    const float sentinel = -777.0f;
    for (size_t i = 0; i < frames * ldy; i++)
        y[i] = sentinel;
    double *scale = malloc(sizeof(double) * frames * out);
    for (size_t t = 0; t < frames; t++)
        for (size_t o = 0; o < out; o++) {
            double s = b ? fabs((double)b[o]) : 0.0;
            for (size_t i = 0; i < in; i++)
                s += fabs((double)x[t * in + i] * w[o * in + i]);
            scale[t * out + o] = s;
        }
    tk_impl_scalar.gemm(x, frames, in, w, b, out, ref, out);
    k->gemm(x, frames, in, w, b, out, y, ldy);
    float *packed = malloc(sizeof(float) * frames * out);
    for (size_t t = 0; t < frames; t++) {
        memcpy(packed + t * out, y + t * ldy, sizeof(float) * out);
        for (size_t p = out; p < ldy; p++) /* the gaps of the row stride stay untouched */
            ck_assert_float_eq(y[t * ldy + p], sentinel);
    }
    char what[96];
    snprintf(what, sizeof what, "%s gemm %zux%zux%zu%s", k->name, frames, in, out,
             bias ? "" : " (no bias)");
    expect_near(what, packed, ref, scale, frames * out, 1e-6 * (double)(in + 8));
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
    free(scale);
    free(packed);
}

START_TEST(gemm_matches_scalar)
{
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const tk_impl *k = variant(v);
        if (!k)
            continue;
        for (int trial = 0; trial < 120; trial++)
            gemm_case(k, pick(frames_choices, sizeof frames_choices / sizeof(size_t)),
                      pick(in_choices, sizeof in_choices / sizeof(size_t)),
                      pick(out_choices, sizeof out_choices / sizeof(size_t)), trial % 3 != 0,
                      trial % 4 == 0 ? 5 : 0);
        /* every frame count and output count up to past the largest tile */
        for (size_t frames = 1; frames <= 9; frames++)
            for (size_t out = 1; out <= 26; out++)
                gemm_case(k, frames, 1 + next_u32() % 40, out, 1, 0);
    }
}
END_TEST

/* ---- convolutions ------------------------------------------------------------ */

static void conv_case(const tk_impl *k, size_t frames, size_t in, size_t out, size_t kernel,
                      size_t groups)
{
    float *x = randoms((kernel - 1 + frames) * in, -2.0f, 2.0f);
    float *w = randoms(out * (in / groups) * kernel, -1.0f, 1.0f), *b = randoms(out, -1.0f, 1.0f);
    float *y = randoms(frames * out, 0.0f, 0.0f), *ref = randoms(frames * out, 0.0f, 0.0f);
    double *scale = malloc(sizeof(double) * frames * out);
    for (size_t i = 0; i < frames * out; i++)
        scale[i] = 1.0 + 2.0 * (double)(in / groups) * (double)kernel;
    tk_conv1d_causal_scalar(x, frames, in, w, b, out, kernel, groups, ref);
    ck_assert_int_eq(tk_impl_select(k->name), 0); /* through the entry point */
    tk_conv1d_causal(x, frames, in, w, b, out, kernel, groups, y);
    ck_assert_int_eq(tk_impl_select("auto"), 0);
    char what[96];
    snprintf(what, sizeof what, "%s conv %zu frames %zu->%zu k%zu g%zu", k->name, frames, in,
             out, kernel, groups);
    expect_near(what, y, ref, scale, frames * out, 1e-6 * (double)(in / groups * kernel + 8));
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
    free(scale);
}

START_TEST(convs_match_scalar)
{
    static const size_t channels[] = {1, 3, 8, 13, 16, 17, 64, 256, 257};
    static const size_t kernels[] = {1, 2, 3, 7, 16};
    static const size_t conv_in[] = {1, 5, 8, 33, 128, 321};
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const tk_impl *k = variant(v);
        if (!k)
            continue;
        for (int trial = 0; trial < 60; trial++) {
            size_t c = pick(channels, sizeof channels / sizeof(size_t));
            size_t frames = pick(frames_choices, sizeof frames_choices / sizeof(size_t));
            conv_case(k, frames, c, c, pick(kernels, 5), c); /* depthwise */
            size_t in = pick(conv_in, sizeof conv_in / sizeof(size_t));
            conv_case(k, frames, in, pick(out_choices, sizeof out_choices / sizeof(size_t)),
                      1 + next_u32() % 3, 1); /* standard, as gemm over interleaved taps */
        }
        conv_case(k, 64, 321, 256, 3, 1); /* the encoder's in_conv */
        conv_case(k, 64, 256, 256, 7, 256);
        conv_case(k, 5, 6, 4, 3, 2);      /* other groupings: the scalar path */
    }
}
END_TEST

/* ---- layer norm, GELU ----------------------------------------------------------- */

START_TEST(layer_norm_matches_scalar)
{
    static const size_t channels[] = {1, 2, 7, 8, 9, 15, 16, 17, 33, 255, 256, 257, 768};
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const tk_impl *k = variant(v);
        if (!k)
            continue;
        for (int trial = 0; trial < 80; trial++) {
            size_t c = pick(channels, sizeof channels / sizeof(size_t)), frames = 1 + trial % 9;
            /* a large offset and a small spread, the hard case for float */
            float offset = uniform(-50.0f, 50.0f), spread = uniform(0.01f, 5.0f);
            float *x = randoms(frames * c, -1.0f, 1.0f);
            for (size_t i = 0; i < frames * c; i++)
                x[i] = offset + spread * x[i];
            float *g = randoms(c, 0.5f, 1.5f), *b = randoms(c, -0.5f, 0.5f);
            float *ref = malloc(sizeof(float) * frames * c);
            memcpy(ref, x, sizeof(float) * frames * c);
            tk_layer_norm_scalar(ref, frames, c, g, b, 1e-6f);
            k->layer_norm(x, frames, c, g, b, 1e-6f);
            double *scale = malloc(sizeof(double) * frames * c);
            for (size_t i = 0; i < frames * c; i++) /* ulps of the input around the offset */
                scale[i] = 1.0 + fabs((double)offset) / (double)spread;
            char what[64];
            snprintf(what, sizeof what, "%s layer norm %zux%zu", k->name, frames, c);
            expect_near(what, x, ref, scale, frames * c, 4e-6);
            free(x);
            free(g);
            free(b);
            free(ref);
            free(scale);
        }
    }
}
END_TEST

START_TEST(gelu_matches_scalar)
{
    static const size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 1000, 4099};
    static const float special[] = {0.0f, -0.0f, 1e-7f, -1e-7f, 1e-30f, 3.9f, -3.9f, 5.5f,
                                    -5.5f, 5.6f, -5.6f, 6.0f, -6.0f, 30.0f, -30.0f, 1e30f,
                                    -1e30f, FLT_MIN, -FLT_MIN};
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const tk_impl *k = variant(v);
        if (!k)
            continue;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            float *x = randoms(n + 1, -8.0f, 8.0f), *ref = malloc(sizeof(float) * (n + 1));
            for (size_t i = 0; i < n && i < sizeof special / sizeof special[0]; i++)
                x[i] = special[i];
            x[n] = 12345.0f; /* past the end: untouched */
            float *in = malloc(sizeof(float) * (n + 1));
            memcpy(ref, x, sizeof(float) * (n + 1));
            memcpy(in, x, sizeof(float) * (n + 1));
            tk_gelu_scalar(ref, n);
            k->gelu(x, n);
            ck_assert_float_eq(x[n], 12345.0f);
            for (size_t i = 0; i < n; i++) /* |error of erf| < 5e-7, times |x| / 2 */
                ck_assert_msg(fabsf(x[i] - ref[i]) <=
                                  4e-7f * fabsf(ref[i]) + 3e-7f * fabsf(in[i]) + 1e-7f,
                              "%s gelu(%.9g) = %.9g, reference %.9g", k->name, (double)in[i],
                              (double)x[i], (double)ref[i]);
            free(in);
            free(x);
            free(ref);
        }
        float edge[5] = {NAN, -30.0f, 30.0f, INFINITY, 1.0f};
        k->gelu(edge, 5);
        ck_assert(isnan(edge[0]));
        ck_assert_float_eq_tol(edge[1], 0.0f, 1e-30f);
        ck_assert_float_eq(edge[2], 30.0f);
        ck_assert(isinf(edge[3]) && edge[3] > 0);
        ck_assert_float_eq_tol(edge[4], 0.8413447f, 1e-6f);
    }
}
END_TEST

/* ---- nearest codeword ------------------------------------------------------------ */

static double distance(const float *a, const float *b, size_t dim)
{
    double d = 0.0;
    for (size_t i = 0; i < dim; i++)
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return d;
}

static float *norms_of(const float *cw, size_t k, size_t dim)
{
    float *n = malloc(sizeof(float) * k);
    for (size_t j = 0; j < k; j++) {
        n[j] = 0.0f;
        for (size_t i = 0; i < dim; i++)
            n[j] += cw[j * dim + i] * cw[j * dim + i];
    }
    return n;
}

START_TEST(nearest_matches_scalar)
{
    static const size_t ks[] = {1, 2, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1000, 1024};
    static const size_t dims[] = {1, 3, 8, 16, 17, 64, 65};
    static const size_t rows[] = {1, 2, 3, 4, 5, 15, 16, 17, 33, 64};
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const tk_impl *k = variant(v);
        if (!k)
            continue;
        for (int trial = 0; trial < 60; trial++) {
            size_t kc = pick(ks, sizeof ks / sizeof(size_t)), dim = pick(dims, 7);
            size_t n = pick(rows, sizeof rows / sizeof(size_t));
            float *cw = randoms(kc * dim, -1.0f, 1.0f), *x = randoms(n * dim, -1.2f, 1.2f);
            float *norms = norms_of(cw, kc, dim);
            uint32_t *got = malloc(sizeof(uint32_t) * n), *want = malloc(sizeof(uint32_t) * n);
            tk_nearest_scalar(x, n, cw, norms, kc, dim, want);
            k->nearest(x, n, cw, norms, kc, dim, got);
            for (size_t r = 0; r < n; r++) {
                ck_assert_uint_lt(got[r], kc);
                double dg = distance(x + r * dim, cw + got[r] * dim, dim);
                double dw = distance(x + r * dim, cw + want[r] * dim, dim);
                ck_assert_msg(dg <= dw + 1e-5 * (1.0 + (double)dim),
                              "%s nearest k=%zu dim=%zu row %zu: %u at %.9g, reference %u at "
                              "%.9g", k->name, kc, dim, r, got[r], dg, want[r], dw);
            }
            /* each codeword is its own nearest; exact duplicates give the first */
            if (kc >= 3)
                memcpy(cw + (kc - 1) * dim, cw + (kc / 2) * dim, sizeof(float) * dim);
            free(norms);
            free(want);
            norms = norms_of(cw, kc, dim);
            uint32_t *self = malloc(sizeof(uint32_t) * kc);
            want = malloc(sizeof(uint32_t) * kc);
            k->nearest(cw, kc, cw, norms, kc, dim, self);
            tk_nearest_scalar(cw, kc, cw, norms, kc, dim, want);
            for (size_t j = 0; j < kc && dim >= 8; j++)
                ck_assert_msg(self[j] == want[j], "%s: codeword %zu -> %u, reference %u",
                              k->name, j, self[j], want[j]);
            if (kc >= 3 && dim >= 8)
                ck_assert_uint_eq(self[kc - 1], kc / 2);
            free(cw);
            free(x);
            free(norms);
            free(got);
            free(want);
            free(self);
        }
        /* NaN rows still get a valid index; no rows writes nothing */
        float cw[16] = {0}, norms[2] = {0, 0}, x[8];
        for (size_t i = 0; i < 8; i++)
            x[i] = NAN;
        cw[8] = 1.0f;
        norms[1] = 1.0f;
        uint32_t idx[1] = {99};
        k->nearest(x, 1, cw, norms, 2, 8, idx);
        ck_assert_uint_lt(idx[0], 2);
        idx[0] = 99;
        k->nearest(x, 0, cw, norms, 2, 8, idx);
        ck_assert_uint_eq(idx[0], 99);
    }
}
END_TEST

/* ---- half weights (ABI 1.1 linear_f16) --------------------------------------- */

/* The value of every half bit pattern, from its definition. */
START_TEST(half_to_float_is_exact)
{
    for (uint32_t h = 0; h < 65536; h++) {
        int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
        float got = tk_half_to_float((uint16_t)h);
        if (exp == 31) {
            ck_assert(mant ? isnan(got) : isinf(got));
            ck_assert_int_eq(signbit(got) != 0, sign);
            continue;
        }
        double want = exp ? ldexp(1024.0 + mant, exp - 25) : ldexp((double)mant, -24);
        want = sign ? -want : want;
        ck_assert_msg((double)got == want && (signbit(got) != 0) == sign,
                      "half 0x%04x -> %.9g, want %.9g", h, (double)got, want);
    }
}
END_TEST

static uint16_t random_half(void)
{
    uint32_t r = next_u32();
    uint32_t exp = r % 8 == 0 ? 0 : 1 + (r >> 3) % 29; /* some subnormals, no inf/NaN */
    return (uint16_t)((r >> 16 & 0x8000u) | exp << 10 | (r >> 8 & 0x3ffu));
}

/* gemm_f16 gives the very bits gemm gives on the widened weights, in every
 * variant, so a model may use either for any call. */
START_TEST(half_weights_give_the_same_bits)
{
    const tk_impl *all[N_VARIANTS + 1] = {&tk_impl_scalar};
    size_t nv = 1;
    for (size_t v = 0; v < N_VARIANTS; v++)
        if ((all[nv] = tk_impl_get(variants[v])))
            nv++;
    for (size_t v = 0; v < nv; v++) {
        const tk_impl *k = all[v];
        for (int trial = 0; trial < 60; trial++) {
            size_t frames = pick(frames_choices, sizeof frames_choices / sizeof(size_t));
            size_t in = pick(in_choices, sizeof in_choices / sizeof(size_t));
            size_t out = pick(out_choices, sizeof out_choices / sizeof(size_t));
            float *x = randoms(frames * in, -2, 2), *b = randoms(out, -1, 1);
            uint16_t *wh = malloc(sizeof(uint16_t) * out * in);
            float *w = malloc(sizeof(float) * out * in);
            for (size_t i = 0; i < out * in; i++)
                w[i] = tk_half_to_float(wh[i] = random_half());
            float *y = randoms(frames * out, 0, 0), *yh = randoms(frames * out, 0, 0);
            k->gemm(x, frames, in, w, trial % 2 ? b : NULL, out, y, out);
            k->gemm_f16(x, frames, in, wh, trial % 2 ? b : NULL, out, yh, out);
            ck_assert_msg(!memcmp(y, yh, sizeof(float) * frames * out),
                          "%s gemm_f16 %zux%zux%zu differs from gemm on the same values",
                          k->name, frames, in, out);
            free(x);
            free(b);
            free(wh);
            free(w);
            free(y);
            free(yh);
        }
    }
    /* the entry point, split over threads, and the scalar reference */
    const size_t frames = 9, in = 263, out = 4099;
    float *x = randoms(frames * in, -2, 2), *b = randoms(out, -1, 1);
    uint16_t *wh = malloc(sizeof(uint16_t) * out * in);
    float *w = malloc(sizeof(float) * out * in);
    for (size_t i = 0; i < out * in; i++)
        w[i] = tk_half_to_float(wh[i] = random_half());
    float *y1 = randoms(frames * out, 0, 0), *y3 = randoms(frames * out, 0, 0);
    float *yf = randoms(frames * out, 0, 0), *ys = randoms(frames * out, 0, 0);
    float *yr = randoms(frames * out, 0, 0);
    tk_linear_f16(x, frames, in, wh, b, out, y1);
    tk_set_threads(3);
    tk_linear_f16(x, frames, in, wh, b, out, y3);
    tk_linear(x, frames, in, w, b, out, yf);
    tk_set_threads(1);
    ck_assert(!memcmp(y1, y3, sizeof(float) * frames * out));
    ck_assert(!memcmp(y1, yf, sizeof(float) * frames * out));
    tk_linear_f16_scalar(x, frames, in, wh, b, out, ys);
    tk_linear_scalar(x, frames, in, w, b, out, yr);
    ck_assert(!memcmp(ys, yr, sizeof(float) * frames * out));
    /* offered to plugins with the SIMD variants only */
    ck_assert(tk_kernels()->linear_f16 ==
              (tk_impl_active() == &tk_impl_scalar ? NULL : tk_linear_f16));
    ck_assert_int_eq(tk_impl_select("scalar"), 0);
    ck_assert_ptr_null(tk_kernels()->linear_f16);
    ck_assert_int_eq(tk_impl_select("auto"), 0);
    free(x);
    free(b);
    free(wh);
    free(w);
    free(y1);
    free(y3);
    free(yf);
    free(ys);
    free(yr);
}
END_TEST

/* ---- determinism ------------------------------------------------------------------ */

/* A frame's outputs do not depend on the other frames of the call, nor an
 * output on the tile that computed it: gemm over all frames equals gemm
 * frame by frame and over column ranges, bit for bit. */
START_TEST(gemm_is_tile_independent)
{
    const tk_impl *all[N_VARIANTS + 1] = {&tk_impl_scalar};
    size_t n = 1;
    for (size_t v = 0; v < N_VARIANTS; v++)
        if ((all[n] = tk_impl_get(variants[v])))
            n++;
    for (size_t v = 0; v < n; v++) {
        const tk_impl *k = all[v];
        for (int trial = 0; trial < 20; trial++) {
            size_t frames = 1 + next_u32() % 70, in = 1 + next_u32() % 300,
                   out = 1 + next_u32() % 200;
            float *x = randoms(frames * in, -2, 2), *w = randoms(out * in, -1, 1);
            float *b = randoms(out, -1, 1), *all_y = randoms(frames * out, 0, 0);
            float *part = randoms(frames * out, 0, 0);
            k->gemm(x, frames, in, w, b, out, all_y, out);
            for (size_t t = 0; t < frames; t++)
                k->gemm(x + t * in, 1, in, w, b, out, part + t * out, out);
            ck_assert_msg(!memcmp(all_y, part, sizeof(float) * frames * out),
                          "%s gemm %zux%zux%zu: frame by frame differs", k->name, frames, in,
                          out);
            for (size_t o = 0; o < out;) {
                size_t width = 1 + next_u32() % 29;
                width = width < out - o ? width : out - o;
                k->gemm(x, frames, in, w + o * in, b + o, width, part + o, out);
                o += width;
            }
            ck_assert_msg(!memcmp(all_y, part, sizeof(float) * frames * out),
                          "%s gemm %zux%zux%zu: column ranges differ", k->name, frames, in, out);
            free(x);
            free(w);
            free(b);
            free(all_y);
            free(part);
        }
    }
}
END_TEST

/* The entry points give the same bits for 1, 2, 3 and 7 threads, on calls
 * large enough to be split. */
START_TEST(threads_do_not_change_results)
{
    const size_t frames = 64, in = 256, out = 771, kc = 1024, dim = 64, rows = 61;
    float *x = randoms(frames * (in + 8) * 3, -2, 2), *w = randoms(out * in * 3, -1, 1);
    float *b = randoms(out, -1, 1);
    float *cw = randoms(kc * dim, -1, 1), *norms = norms_of(cw, kc, dim);
    float *y[4], *c[4], *g[4];
    const size_t gn = 100003; /* GELU over an odd count, large enough to be split */
    float *gx = randoms(gn, -8, 8);
    uint32_t *idx[4];
    const int threads[4] = {1, 2, 3, 7};
    for (int i = 0; i < 4; i++) {
        tk_set_threads(threads[i]);
        ck_assert_int_eq(tk_get_threads(), threads[i]);
        y[i] = randoms(frames * out, 0, 0);
        c[i] = randoms(frames * out, 0, 0);
        idx[i] = malloc(sizeof(uint32_t) * rows);
        tk_linear(x, frames, in, w, b, out, y[i]);
        tk_conv1d_causal(x, frames, in, w, b, out, 3, 1, c[i]);
        tk_nearest(x, rows, cw, norms, kc, dim, idx[i]);
        memcpy(g[i] = malloc(sizeof(float) * gn), gx, sizeof(float) * gn);
        tk_gelu(g[i], gn);
    }
    tk_set_threads(1);
    for (int i = 1; i < 4; i++) {
        ck_assert_msg(!memcmp(y[0], y[i], sizeof(float) * frames * out),
                      "linear with %d threads differs from 1 thread", threads[i]);
        ck_assert_msg(!memcmp(c[0], c[i], sizeof(float) * frames * out),
                      "conv with %d threads differs from 1 thread", threads[i]);
        ck_assert_msg(!memcmp(idx[0], idx[i], sizeof(uint32_t) * rows),
                      "nearest with %d threads differs from 1 thread", threads[i]);
        ck_assert_msg(!memcmp(g[0], g[i], sizeof(float) * gn),
                      "gelu with %d threads differs from 1 thread", threads[i]);
    }
    free(gx);
    for (int i = 0; i < 4; i++) {
        free(g[i]);
        free(y[i]);
        free(c[i]);
        free(idx[i]);
    }
    free(x);
    free(w);
    free(b);
    free(cw);
    free(norms);
}
END_TEST

/* The table handed to plugins dispatches to the selected variant. */
START_TEST(selection)
{
    ck_assert_ptr_null(tk_impl_get("no-such-variant"));
    ck_assert_ptr_nonnull(tk_impl_get("auto"));
    ck_assert_ptr_eq(tk_impl_get("scalar"), &tk_impl_scalar);
    ck_assert_int_eq(tk_impl_select("no-such-variant"), -1);
    ck_assert_int_eq(tk_impl_select("scalar"), 0);
    ck_assert_str_eq(tk_impl_active()->name, "scalar");
    const tokvox_kernels *k = tk_kernels();
    ck_assert(k->linear == tk_linear && k->nearest == tk_nearest && k->gelu == tk_gelu);
    float x[3] = {1, 2, 3}, w[6] = {1, 1, 1, 0.5f, -1, 2}, y[2], ref[2];
    k->linear(x, 1, 3, w, NULL, 2, y);
    tk_linear_scalar(x, 1, 3, w, NULL, 2, ref);
    ck_assert(!memcmp(y, ref, sizeof y));
    ck_assert_int_eq(tk_impl_select("auto"), 0);
    fprintf(stderr, "kernels in use: %s\n", tk_impl_active()->name);
    tk_set_threads(0);
    ck_assert_int_eq(tk_get_threads(), 1);
    tk_set_threads(100000);
    ck_assert_int_eq(tk_get_threads(), TK_MAX_THREADS);
    tk_set_threads(1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simd");
    TCase *tc = tcase_create("kernels");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, gemm_matches_scalar);
    tcase_add_test(tc, convs_match_scalar);
    tcase_add_test(tc, layer_norm_matches_scalar);
    tcase_add_test(tc, gelu_matches_scalar);
    tcase_add_test(tc, nearest_matches_scalar);
    tcase_add_test(tc, half_to_float_is_exact);
    tcase_add_test(tc, half_weights_give_the_same_bits);
    tcase_add_test(tc, gemm_is_tile_independent);
    tcase_add_test(tc, threads_do_not_change_results);
    tcase_add_test(tc, selection);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
