/* The kernel table the host hands to plugins (the fastest set this CPU runs;
 * TOKVOX_KERNELS=scalar|avx2|avx512 forces one, and test_simd checks each
 * against its scalar twin) against PyTorch: tests/data/kernels.safetensors
 * (written by train/make_test_vectors.py) holds inputs, weights and what
 * torch computed.  Every kernel must agree to 1e-5 (max abs), nearest-codeword
 * indices exactly; a ConvNeXt block composed from the kernels the way
 * plugins/models/stftcodec.c composes them must reproduce train/model.py's
 * ConvNeXtBlock, also when fed in chunks carrying the causal history. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "safetensors.h"
#include "testutil.h"

#define TOL 1e-5f

static st_file *vectors;
static const tokvox_kernels *K;
static void *allocs[64];
static size_t n_allocs;

static void setup(void)
{
    int err;
    char detail[1024] = "";
    tu_require_file(tu_data_path("kernels.safetensors"));
    vectors = st_open(tu_data_path("kernels.safetensors"), &err, detail, sizeof detail);
    ck_assert_msg(vectors, "vectors: %s", detail);
    K = tk_kernels();
    n_allocs = 0;
}

static void teardown(void)
{
    for (size_t i = 0; i < n_allocs; i++)
        free(allocs[i]);
    n_allocs = 0;
    st_close(vectors);
    vectors = NULL;
}

/* Memory freed at teardown. */
static void *track(void *p)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_lt(n_allocs, sizeof allocs / sizeof allocs[0]);
    allocs[n_allocs++] = p;
    return p;
}

static float *zeros(size_t n) { return track(calloc(n ? n : 1, sizeof(float))); }

/* Tensor `name` as f32, checked to have `numel` elements. */
static float *vec(const char *name, size_t numel)
{
    const st_tensor *t = st_find(vectors, name);
    ck_assert_msg(t, "kernel vectors lack %s", name);
    ck_assert_msg((size_t)t->numel == numel, "%s has %lld elements, expected %zu", name,
                  (long long)t->numel, numel);
    float *out = track(malloc(sizeof(float) * numel));
    ck_assert_int_eq(st_to_f32(t, out), 0);
    return out;
}

static void expect_close(const char *what, const float *got, const float *want, size_t n,
                         float tol)
{
    float err = tu_max_abs_diff(got, want, n);
    fprintf(stderr, "%-28s max abs error %.3g over %zu values\n", what, err, n);
    ck_assert_msg(err <= tol, "%s differs from PyTorch by %g (tolerance %g)", what, err, tol);
}

/* Causal conv over frames split into chunks, history carried between calls
 * exactly as the model plugin does (history then new frames in one buffer). */
static void conv_chunked(const float *x, size_t frames, size_t in, const float *w, const float *b,
                         size_t out, size_t kernel, size_t groups, const size_t *chunks,
                         size_t n_chunks, float *y)
{
    size_t hist = kernel - 1, done = 0;
    float *buf = zeros((hist + frames) * in);
    for (size_t c = 0; c < n_chunks; c++) {
        size_t n = chunks[c];
        memcpy(buf + hist * in, x + done * in, sizeof(float) * n * in);
        K->conv1d_causal(buf, n, in, w, b, out, kernel, groups, y + done * out);
        memmove(buf, buf + n * in, sizeof(float) * hist * in);
        done += n;
    }
    ck_assert_uint_eq(done, frames);
}

START_TEST(table_is_the_scalar_kernels)
{
    ck_assert_ptr_nonnull(K);
    ck_assert(K->linear == tk_linear);
    ck_assert(K->conv1d_causal == tk_conv1d_causal);
    ck_assert(K->layer_norm == tk_layer_norm);
    ck_assert(K->gelu == tk_gelu);
    ck_assert(K->nearest == tk_nearest);
}
END_TEST

START_TEST(linear_matches_pytorch)
{
    const size_t T = 5, I = 37, O = 19;
    const float *x = vec("linear.x", T * I), *w = vec("linear.w", O * I), *b = vec("linear.b", O);
    float *y = zeros(T * O);
    K->linear(x, T, I, w, b, O, y);
    expect_close("linear (bias)", y, vec("linear.y_bias", T * O), T * O, TOL);
    K->linear(x, T, I, w, NULL, O, y);
    expect_close("linear (no bias)", y, vec("linear.y_nobias", T * O), T * O, TOL);
}
END_TEST

START_TEST(conv_standard_matches_pytorch)
{
    const size_t T = 9, I = 6, O = 5, KS = 3;
    const float *x = vec("conv.x", T * I), *w = vec("conv.w", O * I * KS), *b = vec("conv.b", O);
    float *padded = zeros((KS - 1 + T) * I), *y = zeros(T * O);
    memcpy(padded + (KS - 1) * I, x, sizeof(float) * T * I);
    K->conv1d_causal(padded, T, I, w, b, O, KS, 1, y);
    expect_close("conv1d causal", y, vec("conv.y", T * O), T * O, TOL);
}
END_TEST

START_TEST(conv_depthwise_matches_pytorch)
{
    const size_t T = 9, C = 8, KS = 7;
    const float *x = vec("dwconv.x", T * C), *w = vec("dwconv.w", C * KS);
    const float *b = vec("dwconv.b", C);
    float *padded = zeros((KS - 1 + T) * C), *y = zeros(T * C);
    memcpy(padded + (KS - 1) * C, x, sizeof(float) * T * C);
    K->conv1d_causal(padded, T, C, w, b, C, KS, C, y);
    expect_close("conv1d depthwise", y, vec("dwconv.y", T * C), T * C, TOL);
}
END_TEST

/* Frames 4 + 5 (and other splits, including chunks shorter than the history)
 * with history carried give PyTorch's single pass. */
START_TEST(conv_streaming_matches_one_pass)
{
    const size_t T = 9;
    const size_t splits[][9] = {{4, 5}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 7}, {9}};
    const size_t counts[] = {2, 9, 2, 1};
    const float *x = vec("conv.x", T * 6), *w = vec("conv.w", 5 * 6 * 3), *b = vec("conv.b", 5);
    const float *ref = vec("conv.y", T * 5);
    const float *dx = vec("dwconv.x", T * 8), *dw = vec("dwconv.w", 8 * 7);
    const float *db = vec("dwconv.b", 8), *dref = vec("dwconv.y", T * 8);
    float *y = zeros(T * 8);
    for (size_t s = 0; s < sizeof counts / sizeof counts[0]; s++) {
        char what[64];
        snprintf(what, sizeof what, "conv1d split %zu+..(%zu)", splits[s][0], counts[s]);
        conv_chunked(x, T, 6, w, b, 5, 3, 1, splits[s], counts[s], y);
        expect_close(what, y, ref, T * 5, TOL);
        snprintf(what, sizeof what, "depthwise split %zu+..(%zu)", splits[s][0], counts[s]);
        conv_chunked(dx, T, 8, dw, db, 8, 7, 8, splits[s], counts[s], y);
        expect_close(what, y, dref, T * 8, TOL);
    }
}
END_TEST

START_TEST(layer_norm_matches_pytorch)
{
    const size_t T = 7, C = 33;
    float *x = vec("layer_norm.x", T * C);
    const float *g = vec("layer_norm.gamma", C), *b = vec("layer_norm.beta", C);
    const char *eps_text = st_metadata(vectors, "eps");
    ck_assert_ptr_nonnull(eps_text);
    float eps = strtof(eps_text, NULL);
    ck_assert_float_eq(eps, 1e-6f);
    K->layer_norm(x, T, C, g, b, eps);
    expect_close("layer norm", x, vec("layer_norm.y", T * C), T * C, TOL);
}
END_TEST

START_TEST(gelu_matches_pytorch)
{
    const st_tensor *t = st_find(vectors, "gelu.x");
    ck_assert_ptr_nonnull(t);
    size_t n = (size_t)t->numel;
    float *x = vec("gelu.x", n);
    float lo = x[0], hi = x[0];
    for (size_t i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    ck_assert(lo <= -6.0f && hi >= 6.0f);
    K->gelu(x, n);
    expect_close("gelu", x, vec("gelu.y", n), n, TOL);
}
END_TEST

/* Block weights as stftcodec.c binds them. */
typedef struct block {
    size_t d, f, k;
    const float *dw_w, *dw_b, *norm_w, *norm_b, *pw1_w, *pw1_b, *pw2_w, *pw2_b, *gamma;
} block;

static size_t meta_size(const char *key)
{
    const char *v = st_metadata(vectors, key);
    ck_assert_msg(v, "kernel vectors lack metadata %s", key);
    return (size_t)strtoul(v, NULL, 10);
}

static block load_block(void)
{
    block bl;
    bl.d = meta_size("block.dim");
    bl.f = meta_size("block.ffn_dim");
    bl.k = meta_size("block.kernel");
    size_t d = bl.d, f = bl.f;
    bl.dw_w = vec("block.dwconv.weight", d * bl.k);
    bl.dw_b = vec("block.dwconv.bias", d);
    bl.norm_w = vec("block.norm.weight", d);
    bl.norm_b = vec("block.norm.bias", d);
    bl.pw1_w = vec("block.pw1.weight", f * d);
    bl.pw1_b = vec("block.pw1.bias", f);
    bl.pw2_w = vec("block.pw2.weight", d * f);
    bl.pw2_b = vec("block.pw2.bias", d);
    bl.gamma = vec("block.gamma", d);
    return bl;
}

/* stftcodec.c's convnext_block: h (frames x d) is updated in place; conv_buf
 * holds k-1 history frames and room for `frames` more. */
static void run_block(const block *b, float *conv_buf, float *h, size_t frames, float *y,
                      float *u)
{
    size_t d = b->d, f = b->f, hist = b->k - 1;
    memcpy(conv_buf + hist * d, h, sizeof(float) * frames * d);
    K->conv1d_causal(conv_buf, frames, d, b->dw_w, b->dw_b, d, b->k, d, y);
    memmove(conv_buf, conv_buf + frames * d, sizeof(float) * hist * d);
    K->layer_norm(y, frames, d, b->norm_w, b->norm_b, 1e-6f);
    K->linear(y, frames, d, b->pw1_w, b->pw1_b, f, u);
    K->gelu(u, frames * f);
    K->linear(u, frames, f, b->pw2_w, b->pw2_b, d, y);
    for (size_t t = 0; t < frames; t++)
        for (size_t c = 0; c < d; c++)
            h[t * d + c] += b->gamma[c] * y[t * d + c];
}

START_TEST(convnext_block_matches_pytorch)
{
    const size_t T = 10;
    block b = load_block();
    ck_assert_uint_eq(b.d, 16);
    ck_assert_uint_eq(b.f, 48);
    ck_assert_uint_eq(b.k, 7);
    const float *x = vec("block.x", T * b.d), *ref = vec("block.y", T * b.d);
    float *h = zeros(T * b.d), *y = zeros(T * b.d), *u = zeros(T * b.f);
    float *conv_buf = zeros((b.k - 1 + T) * b.d);

    memcpy(h, x, sizeof(float) * T * b.d);
    run_block(&b, conv_buf, h, T, y, u);
    expect_close("convnext block", h, ref, T * b.d, TOL);

    /* streaming: 4 + 1 + 5 frames with the history carried */
    const size_t chunks[] = {4, 1, 5};
    memset(conv_buf, 0, sizeof(float) * (b.k - 1) * b.d);
    memcpy(h, x, sizeof(float) * T * b.d);
    size_t done = 0;
    for (size_t c = 0; c < 3; c++) {
        run_block(&b, conv_buf, h + done * b.d, chunks[c], y, u);
        done += chunks[c];
    }
    expect_close("convnext block split 4+1+5", h, ref, T * b.d, TOL);
}
END_TEST

START_TEST(nearest_matches_pytorch)
{
    const size_t N = 50, KC = 64, D = 8;
    const float *x = vec("nearest.x", N * D), *cw = vec("nearest.codewords", KC * D);
    const st_tensor *t = st_find(vectors, "nearest.codes");
    ck_assert(t && t->dtype == ST_I32 && (size_t)t->numel == N);
    float *norms = zeros(KC);
    for (size_t j = 0; j < KC; j++)
        for (size_t i = 0; i < D; i++)
            norms[j] += cw[j * D + i] * cw[j * D + i];
    uint32_t index[50];
    K->nearest(x, N, cw, norms, KC, D, index);
    size_t same = 0;
    for (size_t r = 0; r < N; r++) {
        int32_t want;
        memcpy(&want, (const char *)t->data + r * sizeof want, sizeof want);
        ck_assert_msg(index[r] == (uint32_t)want, "row %zu: nearest %u, PyTorch %d", r,
                      index[r], want);
        same++;
    }
    fprintf(stderr, "nearest: %zu of %zu indices identical\n", same, N);
    /* a codeword itself is its own nearest */
    K->nearest(cw, KC, cw, norms, KC, D, track(malloc(sizeof(uint32_t) * KC)));
    const uint32_t *self = allocs[n_allocs - 1];
    for (size_t j = 0; j < KC; j++)
        ck_assert_uint_eq(self[j], j);
}
END_TEST

/* ---- insane inputs ---------------------------------------------------- */

static int all_equal(const float *a, float v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &v, sizeof v) != 0)
            return 0;
    return 1;
}

/* Zero frames (or n = 0) writes nothing and reads nothing it must not. */
START_TEST(zero_frames_do_nothing)
{
    const float sentinel = -12345.0f;
    float x[64], w[64], b[8], y[64], g[8], be[8];
    for (size_t i = 0; i < 64; i++) {
        x[i] = sentinel;
        w[i] = 0.5f;
        y[i] = sentinel;
    }
    for (size_t i = 0; i < 8; i++)
        b[i] = g[i] = be[i] = 1.0f;
    K->linear(x, 0, 8, w, b, 8, y);
    ck_assert(all_equal(y, sentinel, 64));
    K->conv1d_causal(x, 0, 4, w, b, 4, 3, 1, y);
    ck_assert(all_equal(y, sentinel, 64));
    K->conv1d_causal(x, 0, 4, w, b, 4, 3, 4, y);
    ck_assert(all_equal(y, sentinel, 64));
    K->layer_norm(x, 0, 8, g, be, 1e-6f);
    ck_assert(all_equal(x, sentinel, 64));
    K->gelu(x, 0);
    ck_assert(all_equal(x, sentinel, 64));
    uint32_t index[4] = {7, 7, 7, 7};
    K->nearest(x, 0, w, b, 8, 8, index);
    ck_assert(index[0] == 7 && index[1] == 7 && index[2] == 7 && index[3] == 7);
}
END_TEST

/* A NaN poisons exactly what depends on it and nothing crashes. */
START_TEST(nan_propagates)
{
    enum { T = 3, I = 4, O = 2 };
    float x[T * I], w[O * I], b[O] = {0.1f, -0.2f}, y[T * O];
    for (size_t i = 0; i < T * I; i++)
        x[i] = 0.25f * (float)i - 1.0f;
    for (size_t i = 0; i < O * I; i++)
        w[i] = 0.1f * (float)(i + 1);
    x[1 * I + 2] = NAN;  /* frame 1 */

    K->linear(x, T, I, w, b, O, y);
    for (size_t o = 0; o < O; o++) {
        ck_assert(isfinite(y[0 * O + o]));
        ck_assert(isnan(y[1 * O + o]));
        ck_assert(isfinite(y[2 * O + o]));
    }

    /* conv with kernel 2 on [history x0 x1 x2]: the NaN frame is read by
     * outputs 1 and 2 only (frame indices in the padded buffer shift by one) */
    float padded[(T + 1) * I], cw[O * I * 2], cy[T * O];
    memset(padded, 0, sizeof padded);
    memcpy(padded + I, x, sizeof x);
    for (size_t i = 0; i < O * I * 2; i++)
        cw[i] = 0.05f * (float)i;
    K->conv1d_causal(padded, T, I, cw, b, O, 2, 1, cy);
    for (size_t o = 0; o < O; o++) {
        ck_assert(isfinite(cy[0 * O + o]));
        ck_assert(isnan(cy[1 * O + o]));
        ck_assert(isnan(cy[2 * O + o]));
    }

    float ln[T * I], ones[I] = {1, 1, 1, 1}, zero[I] = {0};
    memcpy(ln, x, sizeof ln);
    K->layer_norm(ln, T, I, ones, zero, 1e-6f);
    for (size_t c = 0; c < I; c++) {
        ck_assert(isfinite(ln[0 * I + c]));
        ck_assert(isnan(ln[1 * I + c]));
        ck_assert(isfinite(ln[2 * I + c]));
    }

    float gx[4] = {NAN, 1.0f, -30.0f, 30.0f};
    K->gelu(gx, 4);
    ck_assert(isnan(gx[0]));
    ck_assert_float_eq_tol(gx[1], 0.8413447f, 1e-6f);
    ck_assert_float_eq_tol(gx[2], 0.0f, 1e-30f);
    ck_assert_float_eq(gx[3], 30.0f);

    /* a NaN row still gets a valid index (which one is unspecified) */
    float codewords[3 * I], norms[3];
    for (size_t i = 0; i < 3 * I; i++)
        codewords[i] = (float)i;
    for (size_t j = 0; j < 3; j++) {
        norms[j] = 0.0f;
        for (size_t i = 0; i < I; i++)
            norms[j] += codewords[j * I + i] * codewords[j * I + i];
    }
    uint32_t index[T];
    K->nearest(x, T, codewords, norms, 3, I, index);
    for (size_t r = 0; r < T; r++)
        ck_assert_uint_lt(index[r], 3);
}
END_TEST

/* A constant frame has zero variance: layer norm gives beta, not NaN. */
START_TEST(layer_norm_constant_frame)
{
    float x[8], g[8], b[8];
    for (size_t i = 0; i < 8; i++) {
        x[i] = 3.5f;
        g[i] = 2.0f;
        b[i] = 0.1f * (float)i;
    }
    K->layer_norm(x, 1, 8, g, b, 1e-6f);
    for (size_t i = 0; i < 8; i++)
        ck_assert_float_eq_tol(x[i], b[i], 1e-6f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("pytorch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, table_is_the_scalar_kernels);
    tcase_add_test(tc, linear_matches_pytorch);
    tcase_add_test(tc, conv_standard_matches_pytorch);
    tcase_add_test(tc, conv_depthwise_matches_pytorch);
    tcase_add_test(tc, conv_streaming_matches_one_pass);
    tcase_add_test(tc, layer_norm_matches_pytorch);
    tcase_add_test(tc, gelu_matches_pytorch);
    tcase_add_test(tc, convnext_block_matches_pytorch);
    tcase_add_test(tc, nearest_matches_pytorch);
    suite_add_tcase(s, tc);
    TCase *insane = tcase_create("insane");
    tcase_add_checked_fixture(insane, setup, teardown);
    tcase_add_test(insane, zero_frames_do_nothing);
    tcase_add_test(insane, nan_propagates);
    tcase_add_test(insane, layer_norm_constant_frame);
    suite_add_tcase(s, insane);
    return tu_run(s);
}
