/* The C runtime against PyTorch: tests/data/parity.safetensors holds an input
 * signal and what train/model.py computed from the shipped weights (written
 * by train/export.py).  Codes must agree on >= 99.9 % of entries and the
 * decoded audio to 1e-4; the streaming path must reproduce the offline one,
 * and the decoder's framing (release counts, flush, packets) must add up.
 *
 * TOKVOX_PARITY_MODEL and TOKVOX_PARITY_VECTORS name another model and its
 * vectors (train/export.py --out --vectors): meson test parity_subframes
 * runs the tiny two-sub-frame model of train/make_test_vectors.py, and any
 * exported checkpoint can be checked the same way. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "safetensors.h"
#include "testutil.h"
#include "tokvox/tokvox.h"

static tokvox_model *model;
static st_file *vectors;
static tokvox_model_info info = {.size = sizeof info};

static const char *model_path(void)
{
    static char path[4096];
    const char *env = getenv("TOKVOX_PARITY_MODEL");
    if (env && *env)
        return env;
    const char *root = getenv("TOKVOX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/models/tokvox-16k.safetensors", root ? root : ".");
    return path;
}

static const char *vectors_path(void)
{
    const char *env = getenv("TOKVOX_PARITY_VECTORS");
    return env && *env ? env : tu_data_path("parity.safetensors");
}

static void setup(void)
{
    int err;
    char detail[1024] = "";
    tu_require_file(vectors_path());
    model = tokvox_model_load(model_path(), &err, detail, sizeof detail);
    ck_assert_msg(model, "load: %s", detail);
    tokvox_model_get_info(model, &info);
    vectors = st_open(vectors_path(), &err, detail, sizeof detail);
    ck_assert_msg(vectors, "vectors: %s", detail);
    fprintf(stderr, "%s against %s\n", model_path(), vectors_path());
}

/* The model's synthesis sub-frames per code frame: its config's subframes. */
static int sub_frames(void)
{
    cJSON *config = cJSON_Parse(tokvox_model_config_json(model));
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(config, "subframes");
    int n = cJSON_IsNumber(k) ? k->valueint : 1;
    cJSON_Delete(config);
    return n;
}

static void teardown(void)
{
    tokvox_model_destroy(model);
    st_close(vectors);
}

static float *tensor_f32(const char *name, size_t *n)
{
    const st_tensor *t = st_find(vectors, name);
    ck_assert_msg(t, "parity vectors lack %s", name);
    float *out = malloc(sizeof(float) * (size_t)t->numel);
    ck_assert_int_eq(st_to_f32(t, out), 0);
    *n = (size_t)t->numel;
    return out;
}

static const int32_t *reference_codes(size_t *frames)
{
    const st_tensor *t = st_find(vectors, "codes");
    ck_assert(t && t->dtype == ST_I32 && t->ndim == 2 && t->shape[1] == info.num_codebooks);
    *frames = (size_t)t->shape[0];
    return t->data;
}

static uint16_t *encode_offline(const float *pcm, size_t n, size_t *frames)
{
    tokvox_encoder *enc = tokvox_encoder_create(model, 0, NULL);
    size_t cap = tokvox_frames_for_samples(model, n), got = 0, tail = 0;
    uint16_t *codes = malloc(sizeof(uint16_t) * cap * (size_t)info.num_codebooks);
    ck_assert_int_eq(tokvox_encoder_push(enc, pcm, n, codes, cap, &got), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_flush(enc, codes + got * (size_t)info.num_codebooks,
                                          cap - got, &tail), TOKVOX_OK);
    *frames = got + tail;
    tokvox_encoder_destroy(enc);
    return codes;
}

START_TEST(codes_match_pytorch)
{
    size_t n, frames, ref_frames;
    float *input = tensor_f32("input", &n);
    uint16_t *codes = encode_offline(input, n, &frames);
    const int32_t *ref = reference_codes(&ref_frames);
    ck_assert_uint_eq(frames, ref_frames);
    size_t total = frames * (size_t)info.num_codebooks, same = 0;
    int32_t r;
    for (size_t i = 0; i < total; i++) {
        memcpy(&r, ref + i, sizeof r);
        same += codes[i] == r;
    }
    fprintf(stderr, "codes identical: %zu of %zu\n", same, total);
    ck_assert_msg(same * 1000 >= total * 999, "only %zu of %zu codes match PyTorch", same, total);
    free(codes);
    free(input);
}
END_TEST

/* Decoding PyTorch's own codes isolates the decoder from encoder near-ties. */
static void check_decoder(int codebooks)
{
    size_t ref_frames, n_ref;
    const int32_t *ref = reference_codes(&ref_frames);
    size_t k = (size_t)info.num_codebooks;
    uint16_t *codes = malloc(sizeof(uint16_t) * ref_frames * k);
    for (size_t i = 0; i < ref_frames * k; i++) {
        int32_t r;
        memcpy(&r, ref + i, sizeof r);
        codes[i] = (uint16_t)r;
    }
    char name[32];
    snprintf(name, sizeof name, "output_%dcb", codebooks);
    float *expected = tensor_f32(name, &n_ref);
    tokvox_decoder *dec = tokvox_decoder_create(model, (int)k, codebooks, NULL);
    ck_assert_ptr_nonnull(dec);
    float *pcm = malloc(sizeof(float) * (ref_frames + 2) * (size_t)info.hop);
    size_t got = 0, tail = 0;
    ck_assert_int_eq(tokvox_decoder_push(dec, codes, ref_frames, pcm, &got), TOKVOX_OK);
    ck_assert_int_eq(tokvox_decoder_flush(dec, pcm + got, &tail), TOKVOX_OK);
    got += tail;
    ck_assert_uint_ge(got, n_ref);
    float err = tu_max_abs_diff(pcm, expected, n_ref);
    fprintf(stderr, "%d codebooks: max abs error %.3g over %zu samples\n", codebooks, err, n_ref);
    ck_assert_msg(err <= 1e-4f, "decoded audio differs from PyTorch by %g", err);
    tokvox_decoder_destroy(dec);
    free(pcm);
    free(expected);
    free(codes);
}

START_TEST(decoder_matches_pytorch)
{
    int counts[] = {info.groups, 2 * info.groups, info.num_codebooks};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        check_decoder(counts[i]);
}
END_TEST

/* Feeding the encoder and decoder in random chunks gives the offline result. */
START_TEST(streaming_matches_offline)
{
    size_t n, frames;
    float *input = tensor_f32("input", &n);
    uint16_t *offline = encode_offline(input, n, &frames);
    size_t k = (size_t)info.num_codebooks, hop = (size_t)info.hop;
    unsigned seed = tu_seed();
    srand(seed);
    tokvox_encoder *enc = tokvox_encoder_create(model, 0, NULL);
    tokvox_decoder *dec = tokvox_decoder_create(model, (int)k, 0, NULL);
    uint16_t *codes = malloc(sizeof(uint16_t) * (frames + 2) * k);
    float *stream_pcm = malloc(sizeof(float) * (frames + 2) * hop);
    size_t done = 0, got = 0, pcm_got = 0;
    while (done < n) {
        size_t chunk = 1 + (size_t)rand() % 900;
        chunk = chunk < n - done ? chunk : n - done;
        size_t f = 0, s = 0;
        ck_assert_int_eq(tokvox_encoder_push(enc, input + done, chunk, codes + got * k,
                                             chunk / hop + 1, &f), TOKVOX_OK);
        ck_assert_int_eq(tokvox_decoder_push(dec, codes + got * k, f, stream_pcm + pcm_got, &s),
                         TOKVOX_OK);
        done += chunk;
        got += f;
        pcm_got += s;
    }
    size_t f = 0, s = 0;
    ck_assert_int_eq(tokvox_encoder_flush(enc, codes + got * k, 2, &f), TOKVOX_OK);
    ck_assert_int_eq(tokvox_decoder_push(dec, codes + got * k, f, stream_pcm + pcm_got, &s),
                     TOKVOX_OK);
    got += f;
    pcm_got += s;
    ck_assert_int_eq(tokvox_decoder_flush(dec, stream_pcm + pcm_got, &s), TOKVOX_OK);
    pcm_got += s;
    ck_assert_uint_eq(got, frames);
    ck_assert_int_eq(memcmp(codes, offline, sizeof(uint16_t) * frames * k), 0);
    ck_assert_uint_ge(pcm_got, n);
    float *offline_pcm = malloc(sizeof(float) * (frames + 2) * hop);
    size_t offline_got = 0;
    tokvox_decoder_reset(dec);
    ck_assert_int_eq(tokvox_decoder_push(dec, offline, frames, offline_pcm, &s), TOKVOX_OK);
    offline_got = s;
    ck_assert_int_eq(tokvox_decoder_flush(dec, offline_pcm + offline_got, &s), TOKVOX_OK);
    offline_got += s;
    ck_assert_uint_eq(pcm_got, offline_got);
    ck_assert_float_le(tu_max_abs_diff(stream_pcm, offline_pcm, pcm_got), 1e-6f);
    tokvox_encoder_destroy(enc);
    tokvox_decoder_destroy(dec);
    free(offline_pcm);
    free(stream_pcm);
    free(codes);
    free(offline);
    free(input);
}
END_TEST

/* ---- the decoder's framing --------------------------------------------- */

static uint16_t *reference_codes_u16(size_t *frames)
{
    const int32_t *ref = reference_codes(frames);
    size_t n = *frames * (size_t)info.num_codebooks;
    uint16_t *codes = malloc(sizeof(uint16_t) * n);
    for (size_t i = 0; i < n; i++) {
        int32_t r;
        memcpy(&r, ref + i, sizeof r);
        codes[i] = (uint16_t)r;
    }
    return codes;
}

/* With K synthesis sub-frames per code frame (sh = hop/K apart), frame t
 * completes output up to (t+1)*hop - D, D = n_fft - sh the decoder's
 * latency; the flush writes the D samples owed; a packet stream is D zeros
 * and then the same samples (tokvox.h, docs/plugins.md "Framing"). */
START_TEST(framing_adds_up)
{
    size_t frames, hop = (size_t)info.hop;
    uint16_t *codes = reference_codes_u16(&frames);
    size_t k = (size_t)info.num_codebooks, sh = hop / (size_t)sub_frames();
    size_t delay = (size_t)info.n_fft - sh;
    fprintf(stderr, "%d sub-frames: latency %d samples, decoder %zu\n", sub_frames(),
            info.latency_samples, delay);
    ck_assert_int_eq(info.latency_samples, (int)(hop + delay));
    tokvox_decoder *dec = tokvox_decoder_create(model, (int)k, 0, NULL);
    tokvox_decoder *pkt = tokvox_decoder_create(model, (int)k, 0, NULL);
    tokvox_encoder *enc = tokvox_encoder_create(model, 0, NULL);
    ck_assert_int_eq(tokvox_decoder_latency(dec), (int)delay);
    ck_assert_int_eq(tokvox_encoder_latency(enc) + tokvox_decoder_latency(dec),
                     info.latency_samples);
    ck_assert_uint_gt(frames * hop, delay);
    float *pcm = malloc(sizeof(float) * (frames + 2) * hop);
    float *packets = malloc(sizeof(float) * (frames + 2) * hop);
    size_t total = 0;
    for (size_t t = 0; t < frames; t++) {
        size_t got = 0, pgot = 0, len = 0;
        ck_assert_int_eq(tokvox_decoder_push(dec, codes + t * k, 1, pcm + total, &got),
                         TOKVOX_OK);
        total += got;
        size_t want = (t + 1) * hop > delay ? (t + 1) * hop - delay : 0;
        ck_assert_msg(got <= hop && total == want, "frame %zu: released %zu, in all %zu of %zu",
                      t, got, total, want);
        uint8_t packet[1 + 2 * 64];
        ck_assert_int_eq(tokvox_packet_pack(model, codes + t * k, 1, (int)k, packet,
                                            sizeof packet, &len), TOKVOX_OK);
        ck_assert_int_eq(tokvox_decoder_decode_packet(pkt, packet, len, packets + t * hop, hop,
                                                      &pgot), TOKVOX_OK);
        ck_assert_uint_eq(pgot, hop);
    }
    size_t tail = 0;
    ck_assert_int_eq(tokvox_decoder_flush(dec, pcm + total, &tail), TOKVOX_OK);
    ck_assert_uint_eq(tail, delay);
    ck_assert_uint_eq(total + tail, frames * hop);
    for (size_t i = 0; i < delay; i++)
        ck_assert_float_eq(packets[i], 0.0f);
    ck_assert_int_eq(memcmp(packets + delay, pcm, sizeof(float) * total), 0);
    /* a lost frame gives what a push would: a hop once the delay is out */
    size_t concealed = 0;
    ck_assert_int_eq(tokvox_decoder_conceal(pkt, packets, &concealed), TOKVOX_OK);
    ck_assert_uint_eq(concealed, hop);
    tokvox_encoder_destroy(enc);
    tokvox_decoder_destroy(dec);
    tokvox_decoder_destroy(pkt);
    free(packets);
    free(pcm);
    free(codes);
}
END_TEST

/* ---- fast paths: every kernel variant, any thread count ---------------- */

/* The PyTorch gates hold for each kernel variant this CPU runs (scalar,
 * avx2, avx512), not only for the one chosen at run time. */
START_TEST(every_variant_matches_pytorch)
{
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    size_t n, n_ref, ref_frames;
    float *input = tensor_f32("input", &n);
    char all[32];
    snprintf(all, sizeof all, "output_%dcb", info.num_codebooks);
    float *expected = tensor_f32(all, &n_ref);
    const int32_t *ref = reference_codes(&ref_frames);
    size_t k = (size_t)info.num_codebooks;
    uint16_t *ref_codes = malloc(sizeof(uint16_t) * ref_frames * k);
    for (size_t i = 0; i < ref_frames * k; i++) {
        int32_t r;
        memcpy(&r, ref + i, sizeof r);
        ref_codes[i] = (uint16_t)r;
    }
    for (size_t v = 0; v < sizeof names / sizeof names[0]; v++) {
        if (tk_impl_select(names[v])) {
            fprintf(stderr, "%s kernels: not available here, skipped\n", names[v]);
            continue;
        }
        size_t frames, same = 0, got;
        uint16_t *codes = encode_offline(input, n, &frames);
        ck_assert_uint_eq(frames, ref_frames);
        for (size_t i = 0; i < frames * k; i++)
            same += codes[i] == ref_codes[i];
        float *pcm = tu_decode_all(model, ref_codes, ref_frames, 1, &got);
        ck_assert_uint_ge(got, n_ref);
        float err = tu_max_abs_diff(pcm, expected, n_ref);
        fprintf(stderr, "%s kernels: codes identical %zu of %zu, audio max abs error %.3g\n",
                names[v], same, frames * k, err);
        ck_assert_msg(same * 1000 >= frames * k * 999, "%s: only %zu of %zu codes match",
                      names[v], same, frames * k);
        ck_assert_msg(err <= 1e-4f, "%s: decoded audio differs from PyTorch by %g", names[v],
                      err);
        free(codes);
        free(pcm);
    }
    ck_assert_int_eq(tk_impl_select("auto"), 0);
    free(ref_codes);
    free(expected);
    free(input);
}
END_TEST

/* threads: the codes and the audio are the same bits for any thread count
 * (the kernels split their work over output columns or rows, never over
 * frames, and each value is summed in the same order whoever computes it). */
START_TEST(threads_do_not_change_results)
{
    size_t n, frames, frames_t, pcm_n, pcm_n_t;
    float *input = tensor_f32("input", &n);
    tk_set_threads(1);
    uint16_t *codes = encode_offline(input, n, &frames);
    float *pcm = tu_decode_all(model, codes, frames, 1, &pcm_n);
    const int threads[] = {2, 3, 4};
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        tk_set_threads(threads[i]);
        uint16_t *codes_t = encode_offline(input, n, &frames_t);
        float *pcm_t = tu_decode_all(model, codes_t, frames_t, 1, &pcm_n_t);
        ck_assert_uint_eq(frames_t, frames);
        ck_assert_uint_eq(pcm_n_t, pcm_n);
        ck_assert_msg(!memcmp(codes, codes_t, sizeof(uint16_t) * frames * info.num_codebooks),
                      "codes with %d threads differ from 1 thread", threads[i]);
        ck_assert_msg(!memcmp(pcm, pcm_t, sizeof(float) * pcm_n),
                      "audio with %d threads differs from 1 thread", threads[i]);
        free(codes_t);
        free(pcm_t);
    }
    tk_set_threads(1);
    free(codes);
    free(pcm);
    free(input);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("pytorch");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, codes_match_pytorch);
    tcase_add_test(tc, decoder_matches_pytorch);
    tcase_add_test(tc, streaming_matches_offline);
    tcase_add_test(tc, framing_adds_up);
    tcase_add_test(tc, every_variant_matches_pytorch);
    tcase_add_test(tc, threads_do_not_change_results);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
