/* AVX2 + FMA (+ F16C) kernels.  Every function carries target("avx2,fma,f16c") so this
 * file is compiled with the default flags and the library still loads on
 * any x86-64; kernels.c calls these only when the CPU has all three.
 *
 * linear (gemm) works on PyTorch's [out][in] weights as they are, without
 * packing, so one frame (streaming) and 64 frames (offline) take the same
 * path: each output is a dot product over `in`, kept as 8 partial sums in a
 * vector (the last partial vector masked), reduced in one fixed order
 * ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)) and then the bias is added.  Register
 * tiles of up to 4 frames x 3 outputs (or 1 x 8 for a single frame) share
 * each loaded vector; which tile computes an output never changes its
 * value, so results do not depend on the number of frames or threads.
 */
#include "kernels.h"

#ifdef TK_HAVE_X86_VARIANTS

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* the r and c loops of a tile must unroll so the tile lives in registers */
#define UNROLL _Pragma("GCC unroll 8")

/* mask_for[8 - r .. 16 - r) selects the first r lanes */
static const int32_t mask_for[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

INLINE AVX2 __m256i tail_mask(size_t r)
{
    return _mm256_loadu_si256((const __m256i *)(mask_for + 8 - r));
}

/* The sums of four vectors, each ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)). */
INLINE AVX2 __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

INLINE AVX2 float reduce1(__m256 a)
{
    __m256 z = _mm256_setzero_ps();
    return _mm_cvtss_f32(reduce4(a, z, z, z));
}

/* ---- gemm ------------------------------------------------------------------
 * One body for f32 weights and for IEEE half weights (HALF = 1: widened with
 * F16C on load, exactly), so both give the same bits for the same values. */

#define MAX_R 4
#define MAX_C 8

/* 8 weights from element `at` of w (floats, or halves when HALF). */
INLINE AVX2 __m256 load_w(const int HALF, const void *w, size_t at)
{
    if (HALF)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + at)));
    return _mm256_loadu_ps((const float *)w + at);
}

/* The last rest (< 8) weights from `at`, zeros after. */
INLINE AVX2 __m256 load_w_tail(const int HALF, const void *w, size_t at, size_t rest,
                               __m256i tail)
{
    if (HALF) {
        uint16_t tmp[8] = {0};
        memcpy(tmp, (const uint16_t *)w + at, sizeof(uint16_t) * rest);
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
    }
    return _mm256_maskload_ps((const float *)w + at, tail);
}

/* acc[r][c] = x row r . w row (w0 + c), as 8 partial sums. */
INLINE AVX2 void dot_tile(const int R, const int C, const int HALF, const float *x, size_t ldx,
                          const void *w, size_t w0, size_t in, __m256i tail,
                          __m256 acc[MAX_R][MAX_C])
{
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 wv[MAX_C];
        UNROLL
        for (int c = 0; c < C; c++)
            wv[c] = load_w(HALF, w, (w0 + (size_t)c) * in + i);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)r * ldx + i);
            UNROLL
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (i < in) {
        __m256 wv[MAX_C];
        UNROLL
        for (int c = 0; c < C; c++)
            wv[c] = load_w_tail(HALF, w, (w0 + (size_t)c) * in + i, in - i, tail);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_maskload_ps(x + (size_t)r * ldx + i, tail);
            UNROLL
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
}

/* y[r][c] for an R x C tile of outputs o, o + 1, ... */
INLINE AVX2 void gemm_tile(const int R, const int C, const int HALF, const float *x, size_t in,
                           const void *w, size_t o, const float *b, float *y, size_t ldy,
                           __m256i tail)
{
    __m256 acc[MAX_R][MAX_C];
    dot_tile(R, C, HALF, x, in, w, o, in, tail, acc);
    __m256 z = _mm256_setzero_ps();
    UNROLL
    for (int r = 0; r < R; r++) {
        UNROLL
        for (int c0 = 0; c0 < C; c0 += 4) {
            __m128 s = reduce4(acc[r][c0], c0 + 1 < C ? acc[r][c0 + 1] : z,
                               c0 + 2 < C ? acc[r][c0 + 2] : z, c0 + 3 < C ? acc[r][c0 + 3] : z);
            float *dst = y + (size_t)r * ldy + o + c0;
            if (c0 + 4 <= C) {
                if (b)
                    s = _mm_add_ps(s, _mm_loadu_ps(b + o + c0));
                _mm_storeu_ps(dst, s);
            } else {
                float tmp[4];
                _mm_storeu_ps(tmp, s);
                UNROLL
                for (int c = 0; c < C - c0; c++)
                    dst[c] = b ? tmp[c] + b[o + c0 + c] : tmp[c];
            }
        }
    }
}

#define TILE(R, C) gemm_tile(R, C, HALF, x, in, w, o, b, y, ldy, tail)

/* All outputs [o0, o1) of R frames, in tiles of C outputs. */
INLINE AVX2 void gemm_rows(const int R, const int C, const int HALF, const float *x, size_t in,
                           const void *w, const float *b, size_t o0, size_t o1, float *y,
                           size_t ldy, __m256i tail)
{
    size_t o = o0;
    for (; o + (size_t)C <= o1; o += (size_t)C)
        TILE(R, C);
    switch (o1 - o) { /* fewer than C left: narrower tiles, same values */
    case 7: TILE(R, 7); break;
    case 6: TILE(R, 6); break;
    case 5: TILE(R, 5); break;
    case 4: TILE(R, 4); break;
    case 3: TILE(R, 3); break;
    case 2: TILE(R, 2); break;
    case 1: TILE(R, 1); break;
    default: break;
    }
}

/* Outputs in blocks of BLOCK_COLS so a block of weights stays in cache while
 * every frame passes over it. */
#ifndef BLOCK_COLS
#define BLOCK_COLS 48
#endif

INLINE AVX2 void gemm_any(const int HALF, const float *x, size_t frames, size_t in,
                          const void *w, const float *b, size_t out, float *y, size_t ldy)
{
    __m256i tail = tail_mask(in % 8);
    for (size_t o0 = 0; o0 < out; o0 += BLOCK_COLS) {
        size_t o1 = out - o0 < BLOCK_COLS ? out : o0 + BLOCK_COLS;
        size_t t = 0;
        for (; t + 4 <= frames; t += 4)
            gemm_rows(4, 3, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail);
        switch (frames - t) {
        case 3: gemm_rows(3, 4, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail); break;
        case 2: gemm_rows(2, 6, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail); break;
        case 1: gemm_rows(1, 8, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail); break;
        default: break;
        }
    }
}

static AVX2 void gemm_avx2(const float *x, size_t frames, size_t in, const float *w,
                           const float *b, size_t out, float *y, size_t ldy)
{
    gemm_any(0, x, frames, in, w, b, out, y, ldy);
}

static AVX2 void gemm_f16_avx2(const float *x, size_t frames, size_t in, const uint16_t *w,
                               const float *b, size_t out, float *y, size_t ldy)
{
    gemm_any(1, x, frames, in, w, b, out, y, ldy);
}

/* ---- depthwise causal conv --------------------------------------------------- */

static AVX2 void dwconv_avx2(const float *x, size_t frames, size_t channels, const float *w,
                             const float *b, size_t kernel, float *y)
{
    float wt[TK_STACK_FLOATS / 2]; /* [kernel][chunk] taps, transposed */
    size_t chunk = (TK_STACK_FLOATS / 2 / kernel) & ~(size_t)7;
    if (chunk < 8) {
        tk_conv1d_causal_scalar(x, frames, channels, w, b, channels, kernel, channels, y);
        return;
    }
    for (size_t c0 = 0; c0 < channels; c0 += chunk) {
        size_t cn = channels - c0 < chunk ? channels - c0 : chunk;
        for (size_t c = 0; c < cn; c++)
            for (size_t k = 0; k < kernel; k++)
                wt[k * cn + c] = w[(c0 + c) * kernel + k];
        for (size_t t = 0; t < frames; t++) {
            const float *src = x + t * channels + c0;
            float *dst = y + t * channels + c0;
            size_t c = 0;
            for (; c + 8 <= cn; c += 8) {
                __m256 acc = b ? _mm256_loadu_ps(b + c0 + c) : _mm256_setzero_ps();
                for (size_t k = 0; k < kernel; k++)
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(wt + k * cn + c),
                                          _mm256_loadu_ps(src + k * channels + c), acc);
                _mm256_storeu_ps(dst + c, acc);
            }
            for (; c < cn; c++) {
                float sum = b ? b[c0 + c] : 0.0f;
                for (size_t k = 0; k < kernel; k++)
                    sum += wt[k * cn + c] * src[k * channels + c];
                dst[c] = sum;
            }
        }
    }
}

/* ---- layer norm ------------------------------------------------------------------ */

/* Mean as a float pair (hi + lo): x - hi is exact for the values near the
 * mean and lo (the mean of x - hi) corrects the rounding of hi, so frames
 * with a large offset and a small spread keep the reference's accuracy. */
static AVX2 void layer_norm_avx2(float *x, size_t frames, size_t channels, const float *gamma,
                                 const float *beta, float eps)
{
    size_t full = channels & ~(size_t)7, rest = channels - full;
    __m256i tail = tail_mask(rest);
    __m256 live = _mm256_castsi256_ps(tail);
    float inv_n = 1.0f / (float)channels;
    for (size_t t = 0; t < frames; t++) {
        float *row = x + t * channels;
        __m256 s = _mm256_setzero_ps();
        for (size_t c = 0; c < full; c += 8)
            s = _mm256_add_ps(s, _mm256_loadu_ps(row + c));
        if (rest)
            s = _mm256_add_ps(s, _mm256_maskload_ps(row + full, tail));
        __m256 hi = _mm256_set1_ps(reduce1(s) * inv_n);
        __m256 sd = _mm256_setzero_ps(), sd2 = _mm256_setzero_ps();
        for (size_t c = 0; c < full; c += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(row + c), hi);
            sd = _mm256_add_ps(sd, d);
            sd2 = _mm256_fmadd_ps(d, d, sd2);
        }
        if (rest) {
            __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(row + full, tail), hi), live);
            sd = _mm256_add_ps(sd, d);
            sd2 = _mm256_fmadd_ps(d, d, sd2);
        }
        float lo = reduce1(sd) * inv_n, var = reduce1(sd2) * inv_n - lo * lo;
        __m256 lov = _mm256_set1_ps(lo);
        __m256 scale = _mm256_set1_ps(1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps));
        for (size_t c = 0; c < full; c += 8) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(row + c), hi), lov);
            _mm256_storeu_ps(row + c, _mm256_fmadd_ps(_mm256_mul_ps(d, scale),
                                                      _mm256_loadu_ps(gamma + c),
                                                      _mm256_loadu_ps(beta + c)));
        }
        if (rest) {
            __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(row + full, tail), hi), lov);
            _mm256_maskstore_ps(row + full, tail,
                                _mm256_fmadd_ps(_mm256_mul_ps(d, scale),
                                                _mm256_maskload_ps(gamma + full, tail),
                                                _mm256_maskload_ps(beta + full, tail)));
        }
    }
}

/* ---- GELU --------------------------------------------------------------------------
 * erf as the odd rational x P(x^2) / Q(x^2) on [-4, 4] (the approximation
 * Eigen and XLA use for float), |error| < 5e-7; |x| >= 3.92 gives exactly
 * +-1, as erff does in float, so GELU is exactly 0 and x far out. */

INLINE AVX2 __m256 erf8(__m256 x)
{
    const __m256 lim = _mm256_set1_ps(4.0f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
    __m256 x2 = _mm256_mul_ps(xc, xc);
    __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(xc, p);
    __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
    __m256 r = _mm256_div_ps(p, q);
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 saturated = _mm256_or_ps(one, _mm256_and_ps(xc, sign));
    __m256 far = _mm256_cmp_ps(_mm256_andnot_ps(sign, xc), _mm256_set1_ps(3.92f), _CMP_GE_OQ);
    return _mm256_blendv_ps(r, saturated, far);
}

INLINE AVX2 __m256 gelu8(__m256 x)
{
    __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
    return _mm256_fmadd_ps(half_x, e, half_x);
}

static AVX2 void gelu_avx2(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i tail = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, tail, gelu8(_mm256_maskload_ps(x + i, tail)));
    }
}

/* ---- nearest codeword ---------------------------------------------------------------
 * Scores of NEAREST_ROWS rows against NEAREST_COLS codewords at a time with
 * gemm (so each dot product is the gemm's), then a vector argmin over
 * d = norm - 2 x.c that keeps, like the reference, the first index of the
 * smallest distance. */

#define NEAREST_ROWS 16
#define NEAREST_COLS 256

static AVX2 void nearest_avx2(const float *x, size_t n, const float *codewords,
                              const float *norms, size_t k, size_t dim, uint32_t *index)
{
    float scores[NEAREST_ROWS * NEAREST_COLS];
    const __m256 two = _mm256_set1_ps(2.0f), eight = _mm256_set1_ps(8.0f);
    for (size_t r0 = 0; r0 < n; r0 += NEAREST_ROWS) {
        size_t rn = n - r0 < NEAREST_ROWS ? n - r0 : NEAREST_ROWS;
        __m256 best[NEAREST_ROWS], best_j[NEAREST_ROWS]; /* per lane; indices as floats */
        float tail_best[NEAREST_ROWS];
        uint32_t tail_j[NEAREST_ROWS];
        for (size_t r = 0; r < rn; r++) {
            best[r] = _mm256_set1_ps(FLT_MAX);
            best_j[r] = _mm256_setzero_ps();
            tail_best[r] = FLT_MAX;
            tail_j[r] = 0;
        }
        for (size_t j0 = 0; j0 < k; j0 += NEAREST_COLS) {
            size_t jn = k - j0 < NEAREST_COLS ? k - j0 : NEAREST_COLS;
            gemm_avx2(x + r0 * dim, rn, dim, codewords + j0 * dim, NULL, jn, scores,
                      NEAREST_COLS);
            size_t full = jn & ~(size_t)7;
            for (size_t r = 0; r < rn; r++) {
                const float *s = scores + r * NEAREST_COLS;
                __m256 jv = _mm256_add_ps(_mm256_set1_ps((float)j0),
                                          _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7));
                __m256 bv = best[r], bj = best_j[r];
                for (size_t j = 0; j < full; j += 8) {
                    __m256 d = _mm256_fnmadd_ps(two, _mm256_loadu_ps(s + j),
                                                _mm256_loadu_ps(norms + j0 + j));
                    __m256 lt = _mm256_cmp_ps(d, bv, _CMP_LT_OQ);
                    bv = _mm256_blendv_ps(bv, d, lt);
                    bj = _mm256_blendv_ps(bj, jv, lt);
                    jv = _mm256_add_ps(jv, eight);
                }
                best[r] = bv;
                best_j[r] = bj;
                for (size_t j = full; j < jn; j++) {
                    float d = norms[j0 + j] - 2.0f * s[j];
                    if (d < tail_best[r]) {
                        tail_best[r] = d;
                        tail_j[r] = (uint32_t)(j0 + j);
                    }
                }
            }
        }
        for (size_t r = 0; r < rn; r++) {
            float v[8], j[8];
            _mm256_storeu_ps(v, best[r]);
            _mm256_storeu_ps(j, best_j[r]);
            float bv = tail_best[r];
            uint32_t bj = tail_j[r];
            for (int l = 0; l < 8; l++) /* smallest distance, then smallest index */
                if (v[l] < bv || (v[l] == bv && (uint32_t)j[l] < bj)) {
                    bv = v[l];
                    bj = (uint32_t)j[l];
                }
            index[r0 + r] = bj;
        }
    }
}

const tk_impl tk_impl_avx2 = {
    .name = "avx2",
    .gemm = gemm_avx2,
    .gemm_f16 = gemm_f16_avx2,
    .dwconv = dwconv_avx2,
    .conv = NULL,
    .layer_norm = layer_norm_avx2,
    .gelu = gelu_avx2,
    .nearest = nearest_avx2,
};

#endif
