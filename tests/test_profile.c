/* The timing hook behind bench/speed's breakdown (tokvox_profile_*): off by
 * default, counts every kernel call and FFT of a real run by kernel and
 * shape while on, with call and multiply-add counts that follow from the
 * shapes, and changes no result. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/tokvox.h"

static tokvox_model *model;
static tokvox_model_info info = {.size = sizeof info};

static void setup(void)
{
    char detail[1024] = "";
    model = tokvox_model_load(tu_model_path(), NULL, detail, sizeof detail);
    ck_assert_msg(model, "%s", detail);
    ck_assert_int_eq(tokvox_model_get_info(model, &info), TOKVOX_OK);
}

static void teardown(void) { tokvox_model_destroy(model); }

enum { SECONDS = 1 };

/* Encodes and decodes SECONDS of a tone frame by frame, as a live stream
 * does; the codes go to codes (frames * num_codebooks), the frame counts
 * to *enc_frames / *dec_frames. */
static void run_stream(uint16_t *codes, size_t *enc_frames, size_t *dec_frames)
{
    size_t hop = (size_t)info.hop, k = (size_t)info.num_codebooks;
    size_t n = (size_t)info.sample_rate * SECONDS;
    float *x = malloc(sizeof(float) * n), *pcm = malloc(sizeof(float) * hop);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.3f * sinf(0.05f * (float)i) + 0.05f * sinf(0.71f * (float)i);
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    tokvox_decoder *d = tokvox_decoder_create(model, (int)k, 0, NULL);
    ck_assert(e && d);
    *enc_frames = *dec_frames = 0;
    for (size_t at = 0; at + hop <= n; at += hop) {
        size_t got = 0, samples = 0;
        ck_assert_int_eq(tokvox_encoder_push(e, x + at, hop, codes + *enc_frames * k, 1, &got),
                         TOKVOX_OK);
        ck_assert_int_eq(tokvox_decoder_push(d, codes + *enc_frames * k, got, pcm, &samples),
                         TOKVOX_OK);
        *enc_frames += got;
        *dec_frames += got;
    }
    tokvox_encoder_destroy(e);
    tokvox_decoder_destroy(d);
    free(x);
    free(pcm);
}

/* The entry of kernel `kernel` whose shape starts with `shape`, or -1. */
static int find(const char *kernel, const char *shape, tokvox_profile_entry *out)
{
    size_t n = tokvox_profile_count(NULL);
    for (size_t i = 0; i < n; i++) {
        tokvox_profile_entry e = {.size = sizeof e};
        ck_assert_int_eq(tokvox_profile_get(i, &e), TOKVOX_OK);
        if (!strcmp(e.kernel, kernel) && !strncmp(e.shape, shape, strlen(shape))) {
            *out = e;
            return (int)i;
        }
    }
    return -1;
}

START_TEST(profile_counts_the_real_run)
{
    size_t k = (size_t)info.num_codebooks, cap = 60 * k;
    uint16_t *plain = calloc(cap, sizeof *plain), *profiled = calloc(cap, sizeof *profiled);
    size_t enc_frames, dec_frames, enc2, dec2;

    /* Off by default and after enable(0): nothing is recorded. */
    run_stream(plain, &enc_frames, &dec_frames);
    ck_assert_uint_eq(tokvox_profile_count(NULL), 0);
    ck_assert_uint_eq(enc_frames, 50 * SECONDS);

    tokvox_profile_enable(1);
    run_stream(profiled, &enc2, &dec2);
    tokvox_profile_enable(0);
    /* Timing changes no result. */
    ck_assert_uint_eq(enc2, enc_frames);
    ck_assert_int_eq(memcmp(plain, profiled, sizeof *plain * enc_frames * k), 0);

    uint64_t dropped = 99;
    size_t n = tokvox_profile_count(&dropped);
    ck_assert_uint_ge(n, 6);
    ck_assert_uint_eq(dropped, 0);
    /* One analysis FFT per frame encoded, K syntheses per frame decoded
     * (the stream's first frame outputs nothing but is still synthesised). */
    char fft[32];
    snprintf(fft, sizeof fft, "n_fft=%d", info.n_fft);
    tokvox_profile_entry e;
    ck_assert_int_ge(find("fft_forward", fft, &e), 0);
    ck_assert_uint_eq(e.calls, enc_frames);
    /* K synthesis sub-frames a frame: the decoder's latency n_fft - hop/K says K */
    tokvox_decoder *probe = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    size_t sub = (size_t)info.hop / (size_t)(info.n_fft - tokvox_decoder_latency(probe));
    tokvox_decoder_destroy(probe);
    ck_assert_int_ge(find("fft_inverse", fft, &e), 0);
    ck_assert_uint_eq(e.calls, dec_frames * sub);
    /* Every entry is consistent with its shape: multiply-adds from the
     * kernel's sizes and frames, time spent, at least one call. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(tokvox_profile_get(i, &(tokvox_profile_entry){.size = sizeof e}),
                         TOKVOX_OK);
        e = (tokvox_profile_entry){.size = sizeof e};
        ck_assert_int_eq(tokvox_profile_get(i, &e), TOKVOX_OK);
        ck_assert_uint_eq(e.size, sizeof e);
        ck_assert_uint_ge(e.calls, 1);
        ck_assert_msg(e.seconds > 0.0, "%s %s: no time", e.kernel, e.shape);
        size_t in, out, kern, groups, dim, cw;
        if (sscanf(e.shape, "in=%zu out=%zu kernel=%zu groups=%zu", &in, &out, &kern, &groups) ==
            4)
            ck_assert_double_eq(e.macs, (double)e.frames * out * (double)(in / groups) * kern);
        else if (sscanf(e.shape, "in=%zu out=%zu", &in, &out) == 2)
            ck_assert_double_eq(e.macs, (double)e.frames * in * out);
        else if (sscanf(e.shape, "dim=%zu k=%zu", &dim, &cw) == 2)
            ck_assert_double_eq(e.macs, (double)e.frames * dim * cw);
        /* streaming: one frame per call of every frame-wise kernel */
        if (strcmp(e.kernel, "gelu") && strcmp(e.kernel, "nearest"))
            ck_assert_uint_eq(e.frames, e.calls);
    }
    /* The model's matrix products were seen (linear or linear_f16). */
    int linears = 0;
    for (size_t i = 0; i < n; i++) {
        e = (tokvox_profile_entry){.size = sizeof e};
        tokvox_profile_get(i, &e);
        linears += !strncmp(e.kernel, "linear", 6);
    }
    ck_assert_int_ge(linears, 3);

    /* Stopped: more work records nothing; enable(1) starts from zero. */
    run_stream(profiled, &enc2, &dec2);
    ck_assert_uint_eq(tokvox_profile_count(NULL), n);
    tokvox_profile_enable(1);
    ck_assert_uint_eq(tokvox_profile_count(NULL), 0);
    tokvox_profile_enable(0);
    free(plain);
    free(profiled);
}
END_TEST

START_TEST(profile_bad_arguments)
{
    tokvox_profile_enable(0);
    tokvox_profile_entry e = {.size = sizeof e};
    ck_assert_int_eq(tokvox_profile_get(0, &e), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_profile_get(0, NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_profile_enable(1);
    size_t enc, dec;
    uint16_t *codes = calloc(60 * (size_t)info.num_codebooks, sizeof *codes);
    run_stream(codes, &enc, &dec);
    tokvox_profile_enable(0);
    ck_assert_uint_gt(tokvox_profile_count(NULL), 0);
    ck_assert_int_eq(tokvox_profile_get(tokvox_profile_count(NULL), &e),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    e.size = 0; /* forgotten: refused, nothing written */
    ck_assert_int_eq(tokvox_profile_get(0, &e), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(e.size, 0);
    const char *name = tokvox_kernels_name();
    ck_assert(!strcmp(name, "scalar") || !strcmp(name, "avx2") || !strcmp(name, "avx512"));
    free(codes);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("hook");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, profile_counts_the_real_run);
    tcase_add_test(tc, profile_bad_arguments);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
