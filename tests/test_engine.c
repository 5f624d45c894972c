/* Encoder and decoder sessions: sane and insane arguments, framing rules,
 * bitrate scalability.  (Numerical agreement with PyTorch is test_parity.) */
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
    tokvox_model_get_info(model, &info);
}

static void teardown(void) { tokvox_model_destroy(model); }

static float *tone(size_t n)
{
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        x[i] = 0.3f * sinf(0.05f * (float)i) + 0.05f * sinf(0.71f * (float)i);
    return x;
}

START_TEST(bad_arguments_are_refused)
{
    int err = 0;
    ck_assert_ptr_null(tokvox_encoder_create(NULL, 0, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tokvox_encoder_create(model, -1, &err));
    ck_assert_ptr_null(tokvox_encoder_create(model, info.num_codebooks + 1, &err));
    ck_assert_ptr_null(tokvox_decoder_create(model, 0, 0, &err));
    ck_assert_ptr_null(tokvox_decoder_create(model, 4, 5, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_encoder_destroy(NULL);
    tokvox_decoder_destroy(NULL);
    tokvox_encoder_reset(NULL);
    tokvox_decoder_reset(NULL);

    tokvox_encoder *e = tokvox_encoder_create(model, 0, &err);
    ck_assert_int_eq(err, TOKVOX_OK);
    size_t frames = 99;
    uint16_t codes[64 * 8];
    float x[1000] = {0};
    ck_assert_int_eq(tokvox_encoder_push(NULL, x, 10, codes, 1, &frames),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_encoder_push(e, NULL, 10, codes, 1, &frames),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    /* 1000 samples make 3 frames: room for 2 is refused before anything happens */
    ck_assert_int_eq(tokvox_encoder_push(e, x, 1000, codes, 2, &frames),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_encoder_push(e, x, 1000, codes, 3, &frames), TOKVOX_OK);
    ck_assert_uint_eq(frames, 3);
    ck_assert_int_eq(tokvox_encoder_push(e, x, 0, codes, 0, &frames), TOKVOX_OK);
    ck_assert_uint_eq(frames, 0);
    ck_assert_int_eq(tokvox_encoder_flush(e, codes, 2, &frames), TOKVOX_OK);
    ck_assert_uint_eq(frames, 2); /* 40 pending samples padded + the closing frame */
    ck_assert_int_eq(tokvox_encoder_push(e, x, 10, codes, 1, &frames), TOKVOX_ERR_STATE);
    ck_assert_int_eq(tokvox_encoder_flush(e, codes, 2, &frames), TOKVOX_ERR_STATE);
    tokvox_encoder_reset(e);
    ck_assert_int_eq(tokvox_encoder_push(e, x, 10, codes, 1, &frames), TOKVOX_OK);
    tokvox_encoder_destroy(e);
}
END_TEST

START_TEST(frame_count_rule)
{
    size_t lengths[] = {0, 1, 319, 320, 321, 640, 16000, 16001};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        size_t n = lengths[i], got = 0, tail = 0;
        size_t expect = (n + (size_t)info.hop - 1) / (size_t)info.hop + 1;
        ck_assert_uint_eq(tokvox_frames_for_samples(model, n), expect);
        float *x = tone(n);
        uint16_t *codes = malloc(sizeof(uint16_t) * expect * (size_t)info.num_codebooks);
        tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
        ck_assert_int_eq(tokvox_encoder_push(e, x, n, codes, expect, &got), TOKVOX_OK);
        ck_assert_int_eq(tokvox_encoder_flush(e, codes + got * (size_t)info.num_codebooks,
                                              expect - got, &tail), TOKVOX_OK);
        ck_assert_uint_eq(got + tail, expect);
        /* the decoder releases a hop per frame less its latency D (a hop for
         * K = 1, n_fft - hop/K for K sub-frames), the flush the D owed: the
         * two cover n */
        tokvox_decoder *d = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
        size_t full = expect * (size_t)info.hop, lat = (size_t)tokvox_decoder_latency(d);
        float *y = malloc(sizeof(float) * (full + lat));
        size_t out = 0, owed = 0;
        ck_assert_int_eq(tokvox_decoder_push(d, codes, expect, y, &out), TOKVOX_OK);
        ck_assert_uint_eq(out, full > lat ? full - lat : 0);
        ck_assert_int_eq(tokvox_decoder_flush(d, y + out, &owed), TOKVOX_OK);
        ck_assert_uint_eq(out + owed, full);
        out += owed;
        ck_assert_uint_ge(out, n);
        for (size_t j = 0; j < out; j++)
            ck_assert(isfinite(y[j]));
        tokvox_decoder_destroy(d);
        tokvox_encoder_destroy(e);
        free(y);
        free(codes);
        free(x);
    }
}
END_TEST

START_TEST(fewer_codebooks_are_a_prefix)
{
    size_t n = 8000, frames_all, frames_some;
    float *x = tone(n);
    size_t cap = tokvox_frames_for_samples(model, n);
    uint16_t *all = malloc(sizeof(uint16_t) * cap * (size_t)info.num_codebooks);
    uint16_t *some = malloc(sizeof(uint16_t) * cap * 2);
    for (int pass = 0; pass < 2; pass++) {
        int k = pass ? 2 : 0;
        uint16_t *dst = pass ? some : all;
        size_t got = 0, tail = 0;
        tokvox_encoder *e = tokvox_encoder_create(model, k, NULL);
        ck_assert_int_eq(tokvox_encoder_num_codebooks(e), pass ? 2 : info.num_codebooks);
        tokvox_encoder_push(e, x, n, dst, cap, &got);
        tokvox_encoder_flush(e, dst + got * (size_t)tokvox_encoder_num_codebooks(e), cap - got,
                             &tail);
        *(pass ? &frames_some : &frames_all) = got + tail;
        tokvox_encoder_destroy(e);
    }
    ck_assert_uint_eq(frames_all, frames_some);
    for (size_t t = 0; t < frames_all; t++)
        for (size_t c = 0; c < 2; c++)
            ck_assert_uint_eq(some[t * 2 + c], all[t * (size_t)info.num_codebooks + c]);
    free(all);
    free(some);
    free(x);
}
END_TEST

START_TEST(decoder_refuses_out_of_range_codes)
{
    tokvox_decoder *d = tokvox_decoder_create(model, 2, 0, NULL);
    uint16_t codes[4] = {1, 2, (uint16_t)info.codebook_size, 3};
    float pcm[4 * 320];
    size_t out = 0;
    ck_assert_int_eq(tokvox_decoder_push(d, codes, 2, pcm, &out), TOKVOX_ERR_CODE_RANGE);
    ck_assert_int_eq(tokvox_decoder_push(d, NULL, 1, pcm, &out), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_push(d, codes, 0, NULL, &out), TOKVOX_OK);
    ck_assert_int_eq(tokvox_decoder_flush(d, pcm, &out), TOKVOX_OK);
    ck_assert_uint_eq(out, 0); /* nothing decoded yet, nothing to flush */
    tokvox_decoder_destroy(d);
}
END_TEST

START_TEST(reset_restarts_the_stream)
{
    size_t n = 5000;
    float *x = tone(n);
    size_t cap = tokvox_frames_for_samples(model, n), k = (size_t)info.num_codebooks;
    uint16_t *a = malloc(sizeof(uint16_t) * cap * k), *b = malloc(sizeof(uint16_t) * cap * k);
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    size_t got, tail;
    tokvox_encoder_push(e, x, n, a, cap, &got);
    tokvox_encoder_flush(e, a + got * k, cap - got, &tail);
    tokvox_encoder_reset(e);
    tokvox_encoder_push(e, x, n, b, cap, &got);
    tokvox_encoder_flush(e, b + got * k, cap - got, &tail);
    ck_assert_int_eq(memcmp(a, b, sizeof(uint16_t) * cap * k), 0);
    tokvox_encoder_destroy(e);
    free(a);
    free(b);
    free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("sessions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, frame_count_rule);
    tcase_add_test(tc, fewer_codebooks_are_a_prefix);
    tcase_add_test(tc, decoder_refuses_out_of_range_codes);
    tcase_add_test(tc, reset_restarts_the_stream);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
