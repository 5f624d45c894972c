/* AVX-512F kernels: kernels_avx2.c with 16-lane vectors and the 32 vector
 * registers used for larger tiles (up to 4 frames x 6 outputs).  Every
 * function carries the target attribute, so the file is compiled with the
 * default flags; kernels.c calls it only on CPUs with AVX-512F, AVX2 and FMA.
 *
 * A dot product is 16 partial sums, folded to 8 (low half + high half) and
 * then reduced in the AVX2 variant's fixed order; as there, the value of an
 * output does not depend on the tile, the number of frames or the threads.
 */
#include "kernels.h"

#if defined(TK_HAVE_X86_VARIANTS) && defined(TK_WITH_AVX512)

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
/* the r and c loops of a tile must unroll so the tile lives in registers */
#define UNROLL _Pragma("GCC unroll 16")

INLINE AVX512 __mmask16 tail_mask(size_t r) { return (__mmask16)((1u << r) - 1u); }

INLINE AVX512 __m256 fold(__m512 a)
{
    return _mm256_add_ps(_mm512_castps512_ps256(a),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

/* The sums of four vectors, each folded to 8 lanes and then reduced as
 * ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)). */
INLINE AVX512 __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

INLINE AVX512 float reduce1(__m512 a)
{
    __m512 z = _mm512_setzero_ps();
    return _mm_cvtss_f32(reduce4(a, z, z, z));
}

/* ---- gemm (f32 or, HALF = 1, IEEE half weights widened on load) ------------ */

#define MAX_R 4
#define MAX_C 12

INLINE AVX512 __m512 load_w(const int HALF, const void *w, size_t at)
{
    if (HALF)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + at)));
    return _mm512_loadu_ps((const float *)w + at);
}

INLINE AVX512 __m512 load_w_tail(const int HALF, const void *w, size_t at, size_t rest,
                                 __mmask16 tail)
{
    if (HALF) {
        uint16_t tmp[16] = {0};
        memcpy(tmp, (const uint16_t *)w + at, sizeof(uint16_t) * rest);
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)tmp));
    }
    return _mm512_maskz_loadu_ps(tail, (const float *)w + at);
}

INLINE AVX512 void dot_tile(const int R, const int C, const int HALF, const float *x,
                            size_t ldx, const void *w, size_t w0, size_t in, __mmask16 tail,
                            __m512 acc[MAX_R][MAX_C])
{
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= in; i += 16) {
        __m512 wv[MAX_C];
        UNROLL
        for (int c = 0; c < C; c++)
            wv[c] = load_w(HALF, w, (w0 + (size_t)c) * in + i);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)r * ldx + i);
            UNROLL
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (i < in) {
        __m512 wv[MAX_C];
        UNROLL
        for (int c = 0; c < C; c++)
            wv[c] = load_w_tail(HALF, w, (w0 + (size_t)c) * in + i, in - i, tail);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + (size_t)r * ldx + i);
            UNROLL
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
}

INLINE AVX512 void gemm_tile(const int R, const int C, const int HALF, const float *x,
                             size_t in, const void *w, size_t o, const float *b, float *y,
                             size_t ldy, __mmask16 tail)
{
    __m512 acc[MAX_R][MAX_C];
    dot_tile(R, C, HALF, x, in, w, o, in, tail, acc);
    __m512 z = _mm512_setzero_ps();
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

INLINE AVX512 void gemm_rows(const int R, const int C, const int HALF, const float *x,
                             size_t in, const void *w, const float *b, size_t o0, size_t o1,
                             float *y, size_t ldy, __mmask16 tail)
{
    size_t o = o0;
    for (; o + (size_t)C <= o1; o += (size_t)C)
        TILE(R, C);
    size_t left = o1 - o; /* fewer than C: narrower tiles, same values */
    if (left >= 8 && C > 8) {
        TILE(R, 8);
        o += 8;
        left -= 8;
    }
    if (left >= 4 && C > 4) {
        TILE(R, 4);
        o += 4;
        left -= 4;
    }
    switch (left) {
    case 3: TILE(R, 3); break;
    case 2: TILE(R, 2); break;
    case 1: TILE(R, 1); break;
    default: break;
    }
}

#ifndef BLOCK_COLS
#define BLOCK_COLS 48
#endif

INLINE AVX512 void gemm_any(const int HALF, const float *x, size_t frames, size_t in,
                            const void *w, const float *b, size_t out, float *y, size_t ldy)
{
    __mmask16 tail = tail_mask(in % 16);
    for (size_t o0 = 0; o0 < out; o0 += BLOCK_COLS) {
        size_t o1 = out - o0 < BLOCK_COLS ? out : o0 + BLOCK_COLS;
        size_t t = 0;
        for (; t + 4 <= frames; t += 4)
            gemm_rows(4, 6, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail);
        switch (frames - t) {
        case 3: gemm_rows(3, 8, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail); break;
        case 2: gemm_rows(2, 12, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail); break;
        case 1: gemm_rows(1, 12, HALF, x + t * in, in, w, b, o0, o1, y + t * ldy, ldy, tail); break;
        default: break;
        }
    }
}

static AVX512 void gemm_avx512(const float *x, size_t frames, size_t in, const float *w,
                               const float *b, size_t out, float *y, size_t ldy)
{
    gemm_any(0, x, frames, in, w, b, out, y, ldy);
}

static AVX512 void gemm_f16_avx512(const float *x, size_t frames, size_t in, const uint16_t *w,
                                   const float *b, size_t out, float *y, size_t ldy)
{
    gemm_any(1, x, frames, in, w, b, out, y, ldy);
}

/* ---- depthwise causal conv --------------------------------------------------- */

static AVX512 void dwconv_avx512(const float *x, size_t frames, size_t channels,
                                 const float *w, const float *b, size_t kernel, float *y)
{
    float wt[TK_STACK_FLOATS / 2]; /* [kernel][chunk] taps, transposed */
    size_t chunk = (TK_STACK_FLOATS / 2 / kernel) & ~(size_t)15;
    if (chunk < 16) {
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
            for (size_t c = 0; c < cn; c += 16) {
                __mmask16 m = cn - c >= 16 ? (__mmask16)0xffff : tail_mask(cn - c);
                __m512 acc = b ? _mm512_maskz_loadu_ps(m, b + c0 + c) : _mm512_setzero_ps();
                for (size_t k = 0; k < kernel; k++)
                    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wt + k * cn + c),
                                          _mm512_maskz_loadu_ps(m, src + k * channels + c), acc);
                _mm512_mask_storeu_ps(dst + c, m, acc);
            }
        }
    }
}

/* ---- layer norm (the mean as hi + lo, see kernels_avx2.c) -------------------------- */

static AVX512 void layer_norm_avx512(float *x, size_t frames, size_t channels,
                                     const float *gamma, const float *beta, float eps)
{
    size_t full = channels & ~(size_t)15, rest = channels - full;
    __mmask16 tail = tail_mask(rest);
    float inv_n = 1.0f / (float)channels;
    for (size_t t = 0; t < frames; t++) {
        float *row = x + t * channels;
        __m512 s = _mm512_setzero_ps();
        for (size_t c = 0; c < full; c += 16)
            s = _mm512_add_ps(s, _mm512_loadu_ps(row + c));
        if (rest)
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail, row + full));
        __m512 hi = _mm512_set1_ps(reduce1(s) * inv_n);
        __m512 sd = _mm512_setzero_ps(), sd2 = _mm512_setzero_ps();
        for (size_t c = 0; c < full; c += 16) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(row + c), hi);
            sd = _mm512_add_ps(sd, d);
            sd2 = _mm512_fmadd_ps(d, d, sd2);
        }
        if (rest) {
            __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, row + full), hi);
            sd = _mm512_add_ps(sd, d);
            sd2 = _mm512_fmadd_ps(d, d, sd2);
        }
        float lo = reduce1(sd) * inv_n, var = reduce1(sd2) * inv_n - lo * lo;
        __m512 lov = _mm512_set1_ps(lo);
        __m512 scale = _mm512_set1_ps(1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps));
        for (size_t c = 0; c < full; c += 16) {
            __m512 d = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(row + c), hi), lov);
            _mm512_storeu_ps(row + c, _mm512_fmadd_ps(_mm512_mul_ps(d, scale),
                                                      _mm512_loadu_ps(gamma + c),
                                                      _mm512_loadu_ps(beta + c)));
        }
        if (rest) {
            __m512 d = _mm512_sub_ps(
                _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + full), hi), lov);
            _mm512_mask_storeu_ps(row + full, tail,
                                  _mm512_fmadd_ps(_mm512_mul_ps(d, scale),
                                                  _mm512_maskz_loadu_ps(tail, gamma + full),
                                                  _mm512_maskz_loadu_ps(tail, beta + full)));
        }
    }
}

/* ---- GELU (the erf of kernels_avx2.c) ------------------------------------------------ */

INLINE AVX512 __m512 erf16(__m512 x)
{
    const __m512 lim = _mm512_set1_ps(4.0f);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), lim);
    __m512 x2 = _mm512_mul_ps(xc, xc);
    __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(xc, p);
    __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.42647390514189e-02f));
    __m512 r = _mm512_div_ps(p, q);
    /* |x| >= 3.92: exactly +-1 (the sign of the clamped x, never NaN) */
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(xc), _mm512_set1_epi32(INT32_MIN));
    __m512 saturated = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)), sign));
    __m512 ax = _mm512_castsi512_ps(
        _mm512_andnot_si512(_mm512_set1_epi32(INT32_MIN), _mm512_castps_si512(xc)));
    __mmask16 far = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(3.92f), _CMP_GE_OQ);
    return _mm512_mask_blend_ps(far, r, saturated);
}

INLINE AVX512 __m512 gelu16(__m512 x)
{
    __m512 e = erf16(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
    __m512 half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    return _mm512_fmadd_ps(half_x, e, half_x);
}

static AVX512 void gelu_avx512(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 tail = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, tail, gelu16(_mm512_maskz_loadu_ps(tail, x + i)));
    }
}

/* ---- nearest codeword (as kernels_avx2.c: gemm scores, vector argmin) ----------------- */

#define NEAREST_ROWS 16
#define NEAREST_COLS 256

static AVX512 void nearest_avx512(const float *x, size_t n, const float *codewords,
                                  const float *norms, size_t k, size_t dim, uint32_t *index)
{
    float scores[NEAREST_ROWS * NEAREST_COLS];
    const __m512 two = _mm512_set1_ps(2.0f), sixteen = _mm512_set1_ps(16.0f);
    const __m512 lanes = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (size_t r0 = 0; r0 < n; r0 += NEAREST_ROWS) {
        size_t rn = n - r0 < NEAREST_ROWS ? n - r0 : NEAREST_ROWS;
        __m512 best[NEAREST_ROWS], best_j[NEAREST_ROWS]; /* per lane; indices as floats */
        for (size_t r = 0; r < rn; r++) {
            best[r] = _mm512_set1_ps(FLT_MAX);
            best_j[r] = _mm512_setzero_ps();
        }
        for (size_t j0 = 0; j0 < k; j0 += NEAREST_COLS) {
            size_t jn = k - j0 < NEAREST_COLS ? k - j0 : NEAREST_COLS;
            gemm_avx512(x + r0 * dim, rn, dim, codewords + j0 * dim, NULL, jn, scores,
                        NEAREST_COLS);
            for (size_t r = 0; r < rn; r++) {
                const float *s = scores + r * NEAREST_COLS;
                __m512 jv = _mm512_add_ps(_mm512_set1_ps((float)j0), lanes);
                __m512 bv = best[r], bj = best_j[r];
                for (size_t j = 0; j < jn; j += 16) {
                    __mmask16 m = jn - j >= 16 ? (__mmask16)0xffff : tail_mask(jn - j);
                    __m512 d = _mm512_fnmadd_ps(two, _mm512_maskz_loadu_ps(m, s + j),
                                                _mm512_maskz_loadu_ps(m, norms + j0 + j));
                    __mmask16 lt = _mm512_mask_cmp_ps_mask(m, d, bv, _CMP_LT_OQ);
                    bv = _mm512_mask_blend_ps(lt, bv, d);
                    bj = _mm512_mask_blend_ps(lt, bj, jv);
                    jv = _mm512_add_ps(jv, sixteen);
                }
                best[r] = bv;
                best_j[r] = bj;
            }
        }
        for (size_t r = 0; r < rn; r++) {
            float v[16], j[16];
            _mm512_storeu_ps(v, best[r]);
            _mm512_storeu_ps(j, best_j[r]);
            float bv = FLT_MAX;
            uint32_t bj = 0;
            for (int l = 0; l < 16; l++) /* smallest distance, then smallest index */
                if (v[l] < bv || (v[l] == bv && (uint32_t)j[l] < bj)) {
                    bv = v[l];
                    bj = (uint32_t)j[l];
                }
            index[r0 + r] = bj;
        }
    }
}

const tk_impl tk_impl_avx512 = {
    .name = "avx512",
    .gemm = gemm_avx512,
    .gemm_f16 = gemm_f16_avx512,
    .dwconv = dwconv_avx512,
    .conv = NULL,
    .layer_norm = layer_norm_avx512,
    .gelu = gelu_avx512,
    .nearest = nearest_avx512,
};

#endif
