/* The live additions to the engine: tokvox_encoder_latency and
 * tokvox_decoder_latency add up to the model's latency, and
 * tokvox_decoder_conceal stands in for a lost frame: it keeps the framing of
 * a push, continues the sound without a click or a drop to silence, fades
 * over a burst, and leaves the decoder able to resume exactly. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

static tokvox_model *model;
static tokvox_model_info info = {.size = sizeof info};
static float *speech;
static size_t speech_n;
static uint16_t *codes;   /* the speech, encoded: [frames][num_codebooks] */
static size_t frames;

static void setup(void)
{
    char path[4096], detail[1024] = "";
    const char *root = getenv("TOKVOX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/models/tokvox-16k.safetensors", root ? root : ".");
    model = tokvox_model_load(path, NULL, detail, sizeof detail);
    ck_assert_msg(model, "%s", detail);
    tokvox_model_get_info(model, &info);
    snprintf(path, sizeof path, "%s/samples/speech_en.wav", root ? root : ".");
    tu_require_file(path);
    ck_assert_int_eq(tokvox_audio_read(path, info.sample_rate, &speech, &speech_n, NULL, detail,
                                       sizeof detail), 0);
    tokvox_encoder *enc = tokvox_encoder_create(model, 0, NULL);
    size_t cap = tokvox_frames_for_samples(model, speech_n), got = 0, tail = 0;
    codes = malloc(sizeof(uint16_t) * cap * (size_t)info.num_codebooks);
    ck_assert_int_eq(tokvox_encoder_push(enc, speech, speech_n, codes, cap, &got), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_flush(enc, codes + got * (size_t)info.num_codebooks,
                                          cap - got, &tail), TOKVOX_OK);
    frames = got + tail;
    tokvox_encoder_destroy(enc);
}

static void teardown(void)
{
    free(codes);
    free(speech);
    tokvox_model_destroy(model);
}

static const uint16_t *frame_codes(size_t t) { return codes + t * (size_t)info.num_codebooks; }

static double rms(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s / (double)(n ? n : 1));
}

START_TEST(latencies_add_up)
{
    tokvox_encoder *enc = tokvox_encoder_create(model, 0, NULL);
    tokvox_decoder *dec = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    ck_assert_int_gt(tokvox_encoder_latency(enc), 0);
    ck_assert_int_gt(tokvox_decoder_latency(dec), 0);
    ck_assert_int_eq(tokvox_encoder_latency(enc) + tokvox_decoder_latency(dec),
                     info.latency_samples);
    ck_assert_int_eq(tokvox_encoder_latency(NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_latency(NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_encoder_destroy(enc);
    tokvox_decoder_destroy(dec);
}
END_TEST

START_TEST(conceal_refuses_bad_arguments)
{
    tokvox_decoder *dec = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    float pcm[4096];
    size_t n = 7;
    ck_assert_int_eq(tokvox_decoder_conceal(NULL, pcm, &n), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_conceal(dec, NULL, &n), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_conceal(dec, pcm, NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_decoder_destroy(dec);
}
END_TEST

/* A concealed frame takes a frame's place in the timeline: nothing for a
 * stream's first frame, a hop less the decoder's latency in all after
 * that, and the flush still completes. */
START_TEST(conceal_keeps_the_framing)
{
    tokvox_decoder *dec = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    float pcm[4096];
    size_t n = 99, total = 0, hop = (size_t)info.hop;
    size_t lat = (size_t)tokvox_decoder_latency(dec); /* D: a hop for K = 1 */
    ck_assert_int_eq(tokvox_decoder_conceal(dec, pcm, &n), TOKVOX_OK);
    ck_assert_uint_eq(n, 0); /* the first frame of a stream releases nothing */
    for (size_t t = 1; t < 12; t++) {
        int lost = t % 3 == 0;
        int err = lost ? tokvox_decoder_conceal(dec, pcm, &n)
                       : tokvox_decoder_push(dec, frame_codes(t), 1, pcm, &n);
        ck_assert_int_eq(err, TOKVOX_OK);
        /* frames 0..t release (t+1)·hop - D samples in all, lost or not */
        size_t before = t * hop > lat ? t * hop - lat : 0;
        ck_assert_uint_eq(n, (t + 1) * hop - lat - before);
        for (size_t i = 0; i < n; i++)
            ck_assert(isfinite(pcm[i]));
        total += n;
    }
    ck_assert_int_eq(tokvox_decoder_flush(dec, pcm, &n), TOKVOX_OK);
    ck_assert_uint_eq(total + n, 12 * (size_t)info.hop);
    tokvox_decoder_destroy(dec);
}
END_TEST

/* The loudest frame of the speech after the first second. */
static size_t loud_frame(void)
{
    size_t best = 60, hop = (size_t)info.hop;
    double loudest = 0;
    for (size_t t = 50; t + 20 < frames && (t + 1) * hop <= speech_n; t++) {
        double e = rms(speech + t * hop, hop);
        if (e > loudest) {
            loudest = e;
            best = t;
        }
    }
    return best;
}

START_TEST(conceal_continues_then_fades)
{
    tokvox_decoder *dec = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    size_t hop = (size_t)info.hop, last = loud_frame(), n;
    float *out = malloc(sizeof(float) * (last + 12) * hop);
    size_t at = 0;
    for (size_t t = 0; t <= last; t++, at += n)
        ck_assert_int_eq(tokvox_decoder_push(dec, frame_codes(t), 1, out + at, &n), TOKVOX_OK);
    double heard = rms(out + at - hop, hop);
    double step = 0; /* the largest sample-to-sample step of the last real frame */
    for (size_t i = at - hop + 1; i < at; i++)
        step = fmax(step, fabs((double)out[i] - out[i - 1]));
    double level[10];
    for (int k = 0; k < 10; k++, at += n) {
        ck_assert_int_eq(tokvox_decoder_conceal(dec, out + at, &n), TOKVOX_OK);
        level[k] = rms(out + at, n);
    }
    size_t edge = at - 10 * hop;
    double jump = fabs((double)out[edge] - out[edge - 1]);
    fprintf(stderr, "last frame rms %.4f, concealed %.4f %.4f ... %.4f, edge step %.4f (max %.4f)\n",
            heard, level[0], level[1], level[9], jump, step);
    ck_assert_msg(level[0] > 0.3 * heard, "the first concealed frame drops to %.4f from %.4f",
                  level[0], heard);
    ck_assert_msg(jump <= 2 * step + 1e-4, "a click at the edge: %.4f, steps up to %.4f", jump,
                  step);
    ck_assert_msg(level[9] < 0.7 * level[0], "no fade over a burst: %.4f then %.4f", level[0],
                  level[9]);
    free(out);
    tokvox_decoder_destroy(dec);
}
END_TEST

/* After a loss the decoder's history holds concealed frames; it forgets
 * them within its receptive field and then decodes exactly as if nothing
 * had been lost. */
START_TEST(decoding_resumes_exactly)
{
    tokvox_decoder *a = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    tokvox_decoder *b = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    float pa[4096], pb[4096];
    size_t na, nb, lost_from = 40, lost_to = 43;
    float worst_late = 0;
    for (size_t t = 0; t < 120 && t < frames; t++) {
        ck_assert_int_eq(tokvox_decoder_push(a, frame_codes(t), 1, pa, &na), TOKVOX_OK);
        int lost = t >= lost_from && t < lost_to;
        ck_assert_int_eq(lost ? tokvox_decoder_conceal(b, pb, &nb)
                              : tokvox_decoder_push(b, frame_codes(t), 1, pb, &nb),
                         TOKVOX_OK);
        ck_assert_uint_eq(na, nb);
        if (t > lost_to + 40)
            worst_late = fmaxf(worst_late, tu_max_abs_diff(pa, pb, na));
    }
    ck_assert_msg(worst_late < 1e-5f, "still %g off 40 frames after the loss", worst_late);
    tokvox_decoder_destroy(a);
    tokvox_decoder_destroy(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("live_conceal");
    TCase *tc = tcase_create("conceal");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, latencies_add_up);
    tcase_add_test(tc, conceal_refuses_bad_arguments);
    tcase_add_test(tc, conceal_keeps_the_framing);
    tcase_add_test(tc, conceal_continues_then_fades);
    tcase_add_test(tc, decoding_resumes_exactly);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
