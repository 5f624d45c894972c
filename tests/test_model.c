/* Model files: the shipped model loads and describes itself; damaged or
 * hostile variants of it are refused with a message naming the file and
 * what is wrong.  Variants are made from the real file by editing its JSON
 * header and keeping its data region. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/tokvox.h"

static unsigned char *original;
static size_t original_size;
static char detail[2048];


static void read_original(void)
{
    FILE *f = fopen(tu_ld_model_path(), "rb");
    ck_assert_msg(f, "cannot open %s", tu_ld_model_path());
    fseek(f, 0, SEEK_END);
    original_size = (size_t)ftell(f);
    rewind(f);
    original = malloc(original_size);
    ck_assert_uint_eq(fread(original, 1, original_size, f), original_size);
    fclose(f);
}

static uint64_t header_length(void)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | original[i];
    return n;
}

typedef void (*mutator)(cJSON *header, cJSON *config);

/* Write the model with its header (and config) changed by edit; returns the path. */
static const char *variant(mutator edit)
{
    uint64_t n = header_length();
    cJSON *header = cJSON_ParseWithLength((const char *)original + 8, n);
    cJSON *meta = cJSON_GetObjectItem(header, "__metadata__");
    cJSON *config = cJSON_Parse(cJSON_GetObjectItem(meta, "config")->valuestring);
    edit(header, config);
    char *config_text = cJSON_PrintUnformatted(config);
    if (cJSON_GetObjectItem(meta, "config")) /* unless the edit removed it */
        cJSON_ReplaceItemInObject(meta, "config", cJSON_CreateString(config_text));
    char *text = cJSON_PrintUnformatted(header);
    size_t len = strlen(text);
    static char path[4200];
    snprintf(path, sizeof path, "%s/variant.safetensors", tu_temp_dir());
    FILE *f = fopen(path, "wb");
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(text, 1, len, f);
    fwrite(original + 8 + n, 1, original_size - 8 - n, f);
    fclose(f);
    free(text);
    free(config_text);
    cJSON_Delete(config);
    cJSON_Delete(header);
    return path;
}

static int load_error(const char *path)
{
    int err = 0;
    detail[0] = '\0';
    tokvox_model *m = tokvox_model_load(path, &err, detail, sizeof detail);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(detail, path), "message does not name the file: %s", detail);
    return err;
}

START_TEST(shipped_model_loads)
{
    int err;
    tokvox_model *m = tokvox_model_load(tu_model_path(), &err, detail, sizeof detail);
    ck_assert_msg(m, "%s", detail);
    tokvox_model_info i = {.size = sizeof i};
    ck_assert_int_eq(tokvox_model_get_info(m, &i), TOKVOX_OK);
    ck_assert_int_eq(i.sample_rate, 16000);
    ck_assert_int_eq(i.hop, 320);
    ck_assert_int_eq(i.num_codebooks, i.groups * i.stages);
    ck_assert_int_eq(1 << i.codebook_bits, i.codebook_size);
    /* the bound for the default model (55 ms today) */
    ck_assert_int_le(i.latency_samples, i.sample_rate * 60 / 1000);
    ck_assert_int_gt(i.latency_samples, i.hop); /* a hop to encode, more to decode */
    ck_assert_int_gt(i.num_params, 100000);
    ck_assert_ptr_nonnull(strstr(tokvox_model_config_json(m), "\"model\""));
    tokvox_model_destroy(m);
    tokvox_model_destroy(NULL);
}
END_TEST

/* The size rule (tokvox/errors.h): the library writes only what the
 * caller's .size covers, and says in .size what it wrote. */
START_TEST(model_info_follows_the_callers_size)
{
    int err;
    tokvox_model *m = tokvox_model_load(tu_model_path(), &err, detail, sizeof detail);
    ck_assert_msg(m, "%s", detail);
    tokvox_model_info ref = {.size = sizeof ref};
    ck_assert_int_eq(tokvox_model_get_info(m, &ref), TOKVOX_OK);
    ck_assert_uint_eq(ref.size, sizeof ref);
    ck_assert_int_eq(tokvox_model_get_info(m, NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_model_get_info(NULL, &ref), TOKVOX_ERR_INVALID_ARGUMENT);

    /* A program built against a later header, with a field appended: this
     * library fills its own fields, leaves the new one alone and says so. */
    struct {
        tokvox_model_info info;
        unsigned char later[24];
    } newer;
    memset(&newer, 0xA5, sizeof newer);
    newer.info.size = sizeof newer;
    ck_assert_int_eq(tokvox_model_get_info(m, &newer.info), TOKVOX_OK);
    ck_assert_uint_eq(newer.info.size, sizeof(tokvox_model_info));
    ck_assert_int_eq(memcmp(&newer.info, &ref, sizeof ref), 0);
    for (size_t i = 0; i < sizeof newer.later; i++)
        ck_assert_uint_eq(newer.later[i], 0xA5);
    ck_assert(TOKVOX_HAS(&newer.info, tokvox_model_info, name));

    /* A program built against the 0.1.0 header (the struct ended at name):
     * its fields filled, none after them; it learns nothing of compatible
     * ids, so only the model's own id is its to decode. */
    size_t v1 = offsetof(tokvox_model_info, name) + sizeof ref.name;
    memset(&newer, 0xA5, sizeof newer);
    newer.info.size = v1;
    ck_assert_int_eq(tokvox_model_get_info(m, &newer.info), TOKVOX_OK);
    ck_assert_uint_eq(newer.info.size, v1);
    ck_assert_int_eq(memcmp((char *)&newer.info + sizeof(size_t), (char *)&ref + sizeof(size_t),
                            v1 - sizeof(size_t)),
                     0);
    ck_assert_uint_eq(((unsigned char *)&newer)[v1], 0xA5);
    ck_assert(!TOKVOX_HAS(&newer.info, tokvox_model_info, compatible_ids));
    ck_assert(tokvox_model_info_decodes(&newer.info, ref.model_id));
    for (int k = 0; k < ref.num_compatible_ids; k++) {
        ck_assert(tokvox_model_info_decodes(&ref, ref.compatible_ids[k]));
        ck_assert(!tokvox_model_info_decodes(&newer.info, ref.compatible_ids[k]));
    }
    ck_assert(!tokvox_model_info_decodes(&ref, ref.model_id ^ 1));
    ck_assert(!tokvox_model_info_decodes(NULL, ref.model_id));

    /* A size that cannot be this struct (0: the caller forgot it, or less
     * than the first version): refused, nothing written. */
    const size_t bad[] = {0, sizeof(size_t), offsetof(tokvox_model_info, name), v1 - 1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memset(&newer, 0xA5, sizeof newer);
        newer.info.size = bad[k];
        ck_assert_int_eq(tokvox_model_get_info(m, &newer.info), TOKVOX_ERR_INVALID_ARGUMENT);
        ck_assert_uint_eq(newer.info.size, bad[k]);
        const unsigned char *bytes = (const unsigned char *)&newer;
        for (size_t i = sizeof(size_t); i < sizeof newer; i++)
            ck_assert_uint_eq(bytes[i], 0xA5);
    }
    tokvox_model_destroy(m);
}
END_TEST

START_TEST(default_model_is_the_shipped_one)
{
    unsetenv("TOKVOX_MODEL");
    int err;
    tokvox_model *m = tokvox_model_load(NULL, &err, detail, sizeof detail);
    ck_assert_msg(m, "%s", detail);
    ck_assert_ptr_nonnull(strstr(tokvox_model_path(m), "models/tokvox-16k.safetensors"));
    tokvox_model_destroy(m);
    setenv("TOKVOX_MODEL", "/nonexistent/model.safetensors", 1);
    int err2 = 0;
    ck_assert_ptr_null(tokvox_model_load(NULL, &err2, detail, sizeof detail));
    ck_assert_int_eq(err2, TOKVOX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(detail, "/nonexistent/model.safetensors"));
}
END_TEST

static void drop_config(cJSON *h, cJSON *c)
{
    (void)c;
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(h, "__metadata__"), "config");
    cJSON_AddStringToObject(cJSON_GetObjectItem(h, "__metadata__"), "other", "x");
}
static void plugin_path_escape(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "quantizer", cJSON_CreateString("../../tmp/evil"));
}
static void absolute_plugin(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "model", cJSON_CreateString("/tmp/tokvox_evil.so"));
}
static void missing_plugin(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "quantizer", cJSON_CreateString("nosuchvq"));
}
static void rename_tensor(cJSON *h, cJSON *c)
{
    (void)c;
    cJSON *t = cJSON_DetachItemFromObject(h, "decoder.blocks.0.pw1.weight");
    cJSON_AddItemToObject(h, "decoder.blocks.0.pw1.weightx", t);
}
static void wrong_dim(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "dim", cJSON_CreateNumber(128));
}
static void outside_file(cJSON *h, cJSON *c)
{
    (void)c;
    cJSON *offsets = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "encoder.norm.bias"),
                                         "data_offsets");
    cJSON_ReplaceItemInArray(offsets, 0, cJSON_CreateNumber(1e12));
    cJSON_ReplaceItemInArray(offsets, 1, cJSON_CreateNumber(1e12 + 512));
}
static void bad_rate(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "sample_rate", cJSON_CreateNumber(0));
}
static void failing_plugin(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "quantizer", cJSON_CreateString("fails_create"));
}
static void rvq_for_grvq(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "quantizer", cJSON_CreateString("rvq"));
}

static void hann_window(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "window", cJSON_CreateString("hann"));
}
static void subframes_(cJSON *c, int k)
{
    cJSON_DeleteItemFromObject(c, "subframes");
    cJSON_AddNumberToObject(c, "subframes", k);
}
static void two_subframes(cJSON *h, cJSON *c)
{
    (void)h;
    subframes_(c, 2);
}
static void three_subframes(cJSON *h, cJSON *c)
{
    (void)h;
    subframes_(c, 3);
}
static void older_minor_model(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_ReplaceItemInObject(c, "model", cJSON_CreateString("older_minor"));
}
static void older_minor_two_subframes(cJSON *h, cJSON *c)
{
    older_minor_model(h, c);
    subframes_(c, 2);
}

static void negative_postfilter(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_DeleteItemFromObject(c, "postfilter");
    cJSON_AddNumberToObject(c, "postfilter", -0.5);
}
static void text_postfilter(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_DeleteItemFromObject(c, "postfilter");
    cJSON_AddStringToObject(c, "postfilter", "0.25");
}
static void even_postfilter_width(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_DeleteItemFromObject(c, "postfilter");
    cJSON_AddNumberToObject(c, "postfilter", 0.25);
    cJSON_DeleteItemFromObject(c, "postfilter_tilt_bins");
    cJSON_AddNumberToObject(c, "postfilter_tilt_bins", 60);
}

static void bad_compatible_id(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString("2733FBCC761372B3"));
    cJSON_AddItemToObject(c, "decodes_model_ids", ids);
}

START_TEST(damaged_models_are_refused)
{
    read_original();
    ck_assert_int_eq(load_error(variant(drop_config)), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(load_error(variant(plugin_path_escape)), TOKVOX_ERR_PLUGIN_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(detail, "not allowed"));
    ck_assert_int_eq(load_error(variant(absolute_plugin)), TOKVOX_ERR_PLUGIN_NOT_FOUND);
    ck_assert_int_eq(load_error(variant(missing_plugin)), TOKVOX_ERR_PLUGIN_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(detail, "nosuchvq"));
    ck_assert_int_eq(load_error(variant(rename_tensor)), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(detail, "decoder.blocks.0.pw1.weight"));
    ck_assert_int_eq(load_error(variant(wrong_dim)), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(detail, "shape"));
    int err = load_error(variant(outside_file));
    ck_assert(err == TOKVOX_ERR_TRUNCATED || err == TOKVOX_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(detail, "encoder.norm.bias"));
    ck_assert_int_eq(load_error(variant(bad_rate)), TOKVOX_ERR_FORMAT);
    /* a framing the engine cannot run is refused by name, not run wrongly */
    ck_assert_int_eq(load_error(variant(hann_window)), TOKVOX_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(detail, "sqrt_hann"));
    /* K sub-frames need a head of K spectra: the shipped decoder has one */
    ck_assert_int_eq(load_error(variant(two_subframes)), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(detail, "decoder.proj.weight"));
    ck_assert_int_eq(load_error(variant(three_subframes)), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(detail, "subframes"));
    ck_assert_int_eq(load_error(variant(rvq_for_grvq)), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(detail, "groups"));
    /* the decode-time post-filter's settings are checked, not trusted */
    ck_assert_int_eq(load_error(variant(negative_postfilter)), TOKVOX_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(detail, "'postfilter'"));
    ck_assert_int_eq(load_error(variant(text_postfilter)), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(load_error(variant(even_postfilter_width)), TOKVOX_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(detail, "postfilter_tilt_bins"));
    ck_assert_int_eq(load_error(variant(bad_compatible_id)), TOKVOX_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(detail, "2733FBCC761372B3"));
    setenv("TOKVOX_PLUGIN_PATH", getenv("TOKVOX_TEST_PLUGIN_DIR"), 1);
    ck_assert_int_eq(load_error(variant(failing_plugin)), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(detail, "refusing on purpose"));
    free(original);
}
END_TEST

/* A model plugin built against ABI 2.0 (no framing callback) in a whole
 * model: the host takes the framing from the config, sub-frames included,
 * and codes audio. */
static void run_older_minor(void (*edit)(cJSON *, cJSON *), int sub_frames)
{
    int err;
    tokvox_model *m = tokvox_model_load(variant(edit), &err, detail, sizeof detail);
    ck_assert_msg(m, "%s", detail);
    tokvox_model_info i = {.size = sizeof i};
    tokvox_model_get_info(m, &i);
    ck_assert_str_eq(i.architecture, "older_minor");
    ck_assert_int_eq(i.hop, 320);
    ck_assert_int_eq(i.n_fft, 640);
    ck_assert_int_eq(i.latency_samples, 320 + 640 - 320 / sub_frames);
    enum { N = 16000 };
    static float pcm[N], out[N + 2 * 320];
    for (size_t t = 0; t < N; t++)
        pcm[t] = 0.3f * sinf(0.05f * (float)t);
    static uint16_t codes[64 * 64];
    size_t frames = 0, more = 0, samples = 0, got = 0;
    tokvox_encoder *e = tokvox_encoder_create(m, 0, &err);
    ck_assert_int_eq(tokvox_encoder_push(e, pcm, N, codes, 64, &frames), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_flush(e, codes + frames * (size_t)i.num_codebooks, 64 - frames,
                                          &more),
                     TOKVOX_OK);
    frames += more;
    ck_assert_uint_eq(frames, tokvox_frames_for_samples(m, N));
    tokvox_decoder *d = tokvox_decoder_create(m, i.num_codebooks, 0, &err);
    ck_assert_int_eq(tokvox_decoder_latency(d), i.latency_samples - i.hop);
    ck_assert_int_eq(tokvox_decoder_push(d, codes, frames, out, &samples), TOKVOX_OK);
    ck_assert_int_eq(tokvox_decoder_flush(d, out + samples, &got), TOKVOX_OK);
    ck_assert_uint_eq(got, (size_t)tokvox_decoder_latency(d));
    ck_assert_uint_eq(samples + got, frames * (size_t)i.hop);
    ck_assert_uint_ge(samples + got, N);
    for (size_t t = 0; t < samples + got; t++)
        ck_assert(isfinite(out[t]));
    tokvox_decoder_destroy(d);
    tokvox_encoder_destroy(e);
    tokvox_model_destroy(m);
}

START_TEST(previous_minor_model_plugin_runs)
{
    read_original();
    setenv("TOKVOX_PLUGIN_PATH", getenv("TOKVOX_TEST_PLUGIN_DIR"), 1);
    run_older_minor(older_minor_model, 1);
    run_older_minor(older_minor_two_subframes, 2);
    unsetenv("TOKVOX_PLUGIN_PATH");
    free(original);
}
END_TEST

START_TEST(truncated_model_is_refused)
{
    read_original();
    const char *dir = tu_temp_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    size_t cuts[] = {0, 4, 8, 8 + (size_t)header_length() / 2, original_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(path, "wb");
        fwrite(original, 1, cuts[i], f);
        fclose(f);
        int err = load_error(path);
        ck_assert_msg(err == TOKVOX_ERR_TRUNCATED || err == TOKVOX_ERR_FORMAT,
                      "cut at %zu: %s", cuts[i], tokvox_strerror(err));
    }
    free(original);
}
END_TEST

/* The post-filter a config names is the engine's: added to the ld model's
 * config it changes the decoded audio, and switched off per decoder it
 * gives back the plain model's audio bit for bit. */
static void with_postfilter(cJSON *h, cJSON *c)
{
    (void)h;
    cJSON_AddNumberToObject(c, "postfilter", 0.15);
}

START_TEST(postfilter_is_the_configs_and_can_be_switched_off)
{
    read_original();
    int err;
    tokvox_model *plain = tokvox_model_load(tu_ld_model_path(), &err, detail, sizeof detail);
    ck_assert_msg(plain, "%s", detail);
    tokvox_model *filtered = tokvox_model_load(variant(with_postfilter), &err, detail,
                                               sizeof detail);
    ck_assert_msg(filtered, "%s", detail);
    ck_assert_int_eq(tokvox_decoder_set_postfilter(NULL, 0), TOKVOX_ERR_INVALID_ARGUMENT);

    enum { N = 16000 };
    float *x = malloc(sizeof(float) * N);
    for (size_t t = 0; t < N; t++) /* a vowel-like buzz: harmonics under two formants */
        x[t] = 0.2f * sinf(0.0785f * (float)t) * (1.0f + sinf(0.5f * (float)t)) +
               0.05f * sinf(1.3f * (float)t);
    tokvox_encoder *e = tokvox_encoder_create(plain, 0, NULL);
    uint16_t codes[60 * 8];
    size_t frames = 0, tail = 0;
    ck_assert_int_eq(tokvox_encoder_push(e, x, N, codes, 58, &frames), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_flush(e, codes + frames * 8, 2, &tail), TOKVOX_OK);
    frames += tail;
    tokvox_encoder_destroy(e);

    size_t na, nb, nc, nd;
    float *a = tu_decode_all(plain, codes, frames, 0, &na);
    float *b = tu_decode_all(filtered, codes, frames, 0, &nb);
    float *c = tu_decode_all(filtered, codes, frames, 1, &nc);
    float *d = tu_decode_all(plain, codes, frames, 1, &nd); /* nothing to switch on */
    ck_assert(na == nb && na == nc && na == nd);
    ck_assert_int_eq(memcmp(a, b, sizeof(float) * na), 0);
    ck_assert_int_eq(memcmp(a, d, sizeof(float) * na), 0);
    ck_assert_float_gt(tu_max_abs_diff(a, c, na), 1e-3f);
    free(a), free(b), free(c), free(d), free(x);
    tokvox_model_destroy(filtered);
    tokvox_model_destroy(plain);
    free(original);
}
END_TEST

/* One model, many threads: each with its own session gets the same codes. */
typedef struct job {
    const tokvox_model *m;
    const float *pcm;
    size_t n;
    uint16_t codes[400 * 64];
    size_t frames;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    tokvox_encoder *e = tokvox_encoder_create(j->m, 0, NULL);
    size_t got = 0, tail = 0;
    tokvox_encoder_push(e, j->pcm, j->n, j->codes, 400, &got);
    tokvox_encoder_flush(e, j->codes + got * (size_t)tokvox_encoder_num_codebooks(e), 2, &tail);
    j->frames = got + tail;
    tokvox_encoder_destroy(e);
    return NULL;
}

/* A model from memory is the model from its file: same id, same layout,
 * same codes; damage in memory is reported with the given name. */
START_TEST(model_loads_from_memory)
{
    read_original();
    int err;
    tokvox_model *file = tokvox_model_load(tu_ld_model_path(), &err, detail, sizeof detail);
    tokvox_model *mem = tokvox_model_load_memory(original, original_size, "embedded.safetensors",
                                                 &err, detail, sizeof detail);
    ck_assert_msg(file && mem, "%s", detail);
    tokvox_model_info a = {.size = sizeof a}, b = {.size = sizeof b};
    tokvox_model_get_info(file, &a);
    tokvox_model_get_info(mem, &b);
    ck_assert(a.model_id == b.model_id);
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    ck_assert_str_eq(tokvox_model_path(mem), "embedded.safetensors");
    float pcm[3200];
    for (int i = 0; i < 3200; i++)
        pcm[i] = 0.3f * sinf(0.05f * (float)i) * sinf(0.0007f * (float)i);
    uint16_t ca[11 * 8], cb[11 * 8];
    size_t na = 0, nb = 0;
    tokvox_encoder *ea = tokvox_encoder_create(file, 0, NULL), *eb = tokvox_encoder_create(mem, 0, NULL);
    ck_assert_int_eq(tokvox_encoder_push(ea, pcm, 3200, ca, 11, &na), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_push(eb, pcm, 3200, cb, 11, &nb), TOKVOX_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(ca, cb, sizeof(uint16_t) * na * (size_t)a.num_codebooks), 0);
    tokvox_encoder_destroy(ea);
    tokvox_encoder_destroy(eb);
    tokvox_model_destroy(file);
    tokvox_model_destroy(mem);
    /* cut short: refused, named by the name given */
    ck_assert_ptr_null(tokvox_model_load_memory(original, original_size / 2, "embedded.safetensors",
                                                &err, detail, sizeof detail));
    ck_assert_int_ne(err, TOKVOX_OK);
    ck_assert_ptr_nonnull(strstr(detail, "embedded.safetensors"));
    ck_assert_ptr_null(tokvox_model_load_memory(NULL, 10, NULL, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tokvox_model_load_memory(original, 0, NULL, &err, detail, sizeof detail));
    ck_assert_ptr_nonnull(strstr(detail, "<memory>"));
    free(original);
    original = NULL;
}
END_TEST

START_TEST(model_is_shareable_between_threads)
{
    tokvox_model *m = tokvox_model_load(tu_model_path(), NULL, NULL, 0);
    ck_assert_ptr_nonnull(m);
    size_t n = 16000 * 2;
    float *pcm = malloc(sizeof(float) * n);
    srand(tu_seed());
    for (size_t i = 0; i < n; i++)
        pcm[i] = 0.3f * ((float)rand() / RAND_MAX - 0.5f);
    static job jobs[3];
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (job){.m = m, .pcm = pcm, .n = n};
        pthread_create(&threads[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);
    ck_assert_uint_eq(jobs[0].frames, tokvox_frames_for_samples(m, n));
    for (int i = 1; i < 3; i++) {
        ck_assert_uint_eq(jobs[i].frames, jobs[0].frames);
        ck_assert_int_eq(memcmp(jobs[i].codes, jobs[0].codes, sizeof jobs[0].codes), 0);
    }
    free(pcm);
    tokvox_model_destroy(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shipped_model_loads);
    tcase_add_test(tc, model_info_follows_the_callers_size);
    tcase_add_test(tc, default_model_is_the_shipped_one);
    tcase_add_test(tc, damaged_models_are_refused);
    tcase_add_test(tc, truncated_model_is_refused);
    tcase_add_test(tc, previous_minor_model_plugin_runs);
    tcase_add_test(tc, model_is_shareable_between_threads);
    tcase_add_test(tc, model_loads_from_memory);
    tcase_add_test(tc, postfilter_is_the_configs_and_can_be_switched_off);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
