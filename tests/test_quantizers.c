/* The quantizer plugins against their PyTorch twins: every case in
 * tests/data/quantizers.safetensors (written by train/make_test_vectors.py
 * from the twins registered in train/registry.py; metadata "cases" lists
 * them and CASE.plugin names each one's plugin) is created through a
 * tokvox_weights implemented here.  Codes must equal PyTorch's exactly and
 * decoding each prefix of codebooks must match to 1e-5.  The residual VQs
 * (grvq, rvq) also: adding whole stages does not increase the error, and
 * their refusals of wrong configs.  What every plugin must do besides is
 * the conformance suite's (test_conformance.c). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "plugin_host.h"
#include "safetensors.h"
#include "testutil.h"
#include "tokvox/tokvox.h"

#define TOL 1e-5f
#define FRAMES 20
#define MAX_CB 64

static st_file *vectors;

/* ---- a tokvox_weights over the vector file ----------------------------- */

typedef struct weights_ctx {
    const char *prefix;         /* "grvq" or "rvq": tensors are PREFIX.NAME */
    int64_t latent_dim, groups, stages, codebook_size;
    int has_groups;             /* answer "groups" at all */
    const char *alias_from;     /* serve file tensor alias_to (full name) for this one */
    const char *alias_to;
    int zero_first_codeword;    /* codeword 0 of every codebook set to zero */
    float *owned[MAX_CB];
    size_t n_owned;
    int fail_calls;
    char message[512];
} weights_ctx;

static void w_fail(void *ctx, const char *message)
{
    weights_ctx *c = ctx;
    c->fail_calls++;
    if (!c->message[0])
        snprintf(c->message, sizeof c->message, "%s", message);
}

static void shape_text(char *out, size_t size, int ndim, const int64_t *shape)
{
    out[0] = '\0';
    for (int i = 0; i < ndim; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%lld", i ? "," : "",
                 (long long)shape[i]);
}

static const float *w_tensor_f32(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    weights_ctx *c = ctx;
    char full[256], msg[400];
    if (c->alias_from && strcmp(name, c->alias_from) == 0)
        snprintf(full, sizeof full, "%s", c->alias_to); /* a full name */
    else
        snprintf(full, sizeof full, "%s.%s", c->prefix, name);
    const st_tensor *t = st_find(vectors, full);
    if (!t) {
        snprintf(msg, sizeof msg, "tensor '%s' is missing", name);
        w_fail(ctx, msg);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], have[96];
        shape_text(want, sizeof want, ndim, shape);
        shape_text(have, sizeof have, t->ndim, t->shape);
        snprintf(msg, sizeof msg, "tensor '%s' has shape [%s], expected [%s]", name, have, want);
        w_fail(ctx, msg);
        return NULL;
    }
    float *copy = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!copy || c->n_owned >= MAX_CB || st_to_f32(t, copy) != 0) {
        free(copy);
        w_fail(ctx, "out of memory or bad dtype");
        return NULL;
    }
    if (c->zero_first_codeword && ndim == 2)
        memset(copy, 0, sizeof(float) * (size_t)shape[1]);
    c->owned[c->n_owned++] = copy;
    return copy;
}

/* The stored-dtype view: the vectors are f32, so it is the f32 copy. */
static const tokvox_tensor *w_tensor(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    static tokvox_tensor t; /* one at a time is enough for these tests */
    const float *data = w_tensor_f32(ctx, name, ndim, shape);
    if (!data)
        return NULL;
    t = (tokvox_tensor){.size = sizeof t, .dtype = TOKVOX_DTYPE_F32, .ndim = ndim, .data = data};
    t.numel = 1;
    for (int i = 0; i < ndim; i++)
        t.numel *= (t.shape[i] = shape[i]);
    return &t;
}

/* Another config value of the case, from the metadata (CASE.KEY). */
static const char *case_meta(const weights_ctx *c, const char *key)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", c->prefix, key);
    return st_metadata(vectors, full);
}

static int w_config_int(void *ctx, const char *key, int64_t *out)
{
    const weights_ctx *c = ctx;
    if (strcmp(key, "latent_dim") == 0)
        *out = c->latent_dim;
    else if (strcmp(key, "stages") == 0)
        *out = c->stages;
    else if (strcmp(key, "codebook_size") == 0)
        *out = c->codebook_size;
    else if (strcmp(key, "groups") == 0 && c->has_groups)
        *out = c->groups;
    else if (strcmp(key, "groups") != 0 && case_meta(c, key)) {
        char *end;
        const char *v = case_meta(c, key);
        *out = strtoll(v, &end, 10);
        return *end || end == v ? -1 : 0;
    } else
        return -1;
    return 0;
}

static const char *w_config_string(void *ctx, const char *key)
{
    return case_meta(ctx, key);
}

static int64_t meta_int(const char *prefix, const char *key)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, key);
    const char *v = st_metadata(vectors, full);
    ck_assert_msg(v, "quantizer vectors lack metadata %s", full);
    return strtoll(v, NULL, 10);
}

/* The case's config from the file's metadata, checked against its I32 copy. */
static void ctx_init(weights_ctx *c, const char *prefix)
{
    memset(c, 0, sizeof *c);
    c->prefix = prefix;
    c->latent_dim = meta_int(prefix, "latent_dim");
    c->groups = meta_int(prefix, "groups");
    c->stages = meta_int(prefix, "stages");
    c->codebook_size = meta_int(prefix, "codebook_size");
    c->has_groups = 1;
    char name[64];
    snprintf(name, sizeof name, "%s.config", prefix);
    const st_tensor *t = st_find(vectors, name);
    ck_assert(t && t->dtype == ST_I32 && t->numel == 4);
    int32_t cfg[4];
    memcpy(cfg, t->data, sizeof cfg);
    ck_assert(cfg[0] == c->latent_dim && cfg[1] == c->groups && cfg[2] == c->stages &&
              cfg[3] == c->codebook_size);
}

static void ctx_free(weights_ctx *c)
{
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    c->n_owned = 0;
}

/* ---- a created quantizer ---------------------------------------------- */

typedef struct quantizer {
    tk_plugin plugin;
    const tokvox_quantizer_api *api;
    void *q;
    weights_ctx ctx;
    tokvox_quantizer_layout layout;
    int num_codebooks;
} quantizer;

static int load_plugin(const char *name, tk_plugin *p)
{
    char detail[1024] = "";
    int err = tk_plugin_load(name, TOKVOX_PLUGIN_QUANTIZER, p, detail, sizeof detail);
    ck_assert_msg(err == TOKVOX_OK, "loading plugin %s: %s", name, detail);
    ck_assert_int_eq(p->desc.kind, TOKVOX_PLUGIN_QUANTIZER);
    return err;
}

/* Create plugin `plugin` over the tensors of case `c` (already initialised). */
static int try_create(const char *plugin, quantizer *out)
{
    load_plugin(plugin, &out->plugin);
    out->api = &out->plugin.api.quantizer;
    tokvox_weights w = {sizeof w,     &out->ctx,       w_tensor, w_tensor_f32,
                        w_config_int, w_config_string, w_fail};
    out->q = NULL;
    return out->api->create(&out->plugin.host, &w, &out->q);
}

static void release(quantizer *q)
{
    if (q->q)
        q->api->destroy(q->q);
    q->q = NULL;
    ctx_free(&q->ctx);
    tk_plugin_close(&q->plugin);
}

static void create(const char *plugin, const char *vectors_case, quantizer *out)
{
    memset(out, 0, sizeof *out);
    ctx_init(&out->ctx, vectors_case);
    int err = try_create(plugin, out);
    ck_assert_msg(err == TOKVOX_OK, "%s create failed (%d): %s", plugin, err, out->ctx.message);
    ck_assert_ptr_nonnull(out->q);
    out->layout = *out->api->layout(out->q);
    ck_assert_int_eq(out->layout.dim, (int)out->ctx.latent_dim);
    ck_assert_int_eq(out->layout.groups, (int)out->ctx.groups);
    ck_assert_int_eq(out->layout.stages, (int)out->ctx.stages);
    ck_assert_int_eq(out->layout.codebook_size, (int)out->ctx.codebook_size);
    out->num_codebooks = out->layout.groups * out->layout.stages;
}

static void setup(void)
{
    int err;
    char detail[1024] = "";
    tu_require_file(tu_data_path("quantizers.safetensors"));
    vectors = st_open(tu_data_path("quantizers.safetensors"), &err, detail, sizeof detail);
    ck_assert_msg(vectors, "vectors: %s", detail);
}

static void teardown(void)
{
    st_close(vectors);
    vectors = NULL;
}

static float *tensor_f32(const char *name, size_t numel)
{
    const st_tensor *t = st_find(vectors, name);
    ck_assert_msg(t, "quantizer vectors lack %s", name);
    ck_assert_msg((size_t)t->numel == numel, "%s: %lld elements, expected %zu", name,
                  (long long)t->numel, numel);
    float *out = malloc(sizeof(float) * numel);
    ck_assert_int_eq(st_to_f32(t, out), 0);
    return out;
}

/* PyTorch's codes [FRAMES][K] as uint16. */
static uint16_t *reference_codes(const char *prefix, int k)
{
    char name[64];
    snprintf(name, sizeof name, "%s.codes", prefix);
    const st_tensor *t = st_find(vectors, name);
    ck_assert(t && t->dtype == ST_I32 && t->ndim == 2 && t->shape[0] == FRAMES &&
              t->shape[1] == k);
    uint16_t *codes = malloc(sizeof(uint16_t) * FRAMES * (size_t)k);
    for (size_t i = 0; i < FRAMES * (size_t)k; i++) {
        int32_t v;
        memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
        ck_assert(v >= 0 && v < 65536);
        codes[i] = (uint16_t)v;
    }
    return codes;
}

/* The cases of the vector file and their plugins (main reads them). */
#define MAX_CASES 16
static char case_names[MAX_CASES][32], case_plugins[MAX_CASES][32];
static int n_cases;
static const char *const cases[] = {"grvq", "rvq"}; /* the residual VQs' own tests */

static int read_cases(void)
{
    int err;
    char detail[1024] = "";
    st_file *f = st_open(tu_data_path("quantizers.safetensors"), &err, detail, sizeof detail);
    const char *list = f ? st_metadata(f, "cases") : NULL;
    for (const char *p = list; p && *p && n_cases < MAX_CASES;) {
        size_t len = strcspn(p, ",");
        snprintf(case_names[n_cases], sizeof case_names[0], "%.*s", (int)len, p);
        char key[64];
        snprintf(key, sizeof key, "%s.plugin", case_names[n_cases]);
        const char *plugin = st_metadata(f, key);
        snprintf(case_plugins[n_cases], sizeof case_plugins[0], "%s",
                 plugin ? plugin : case_names[n_cases]);
        n_cases++;
        p += len + (p[len] == ',');
    }
    st_close(f);
    return n_cases;
}

/* ---- against PyTorch ---------------------------------------------------- */

START_TEST(codes_match_pytorch)
{
    quantizer q;
    create(case_plugins[_i], case_names[_i], &q);
    size_t dim = (size_t)q.layout.dim, k = (size_t)q.num_codebooks;
    char name[64];
    snprintf(name, sizeof name, "%s.input", q.ctx.prefix);
    float *x = tensor_f32(name, FRAMES * dim);
    uint16_t *ref = reference_codes(q.ctx.prefix, (int)k);
    uint16_t *codes = malloc(sizeof(uint16_t) * FRAMES * k);
    ck_assert_int_eq(q.api->encode(q.q, x, FRAMES, (int)k, codes), TOKVOX_OK);
    for (size_t t = 0; t < FRAMES; t++)
        for (size_t j = 0; j < k; j++)
            ck_assert_msg(codes[t * k + j] == ref[t * k + j],
                          "%s frame %zu codebook %zu: code %u, PyTorch %u", case_names[_i], t, j,
                          codes[t * k + j], ref[t * k + j]);
    fprintf(stderr, "%s: all %zu codes equal PyTorch's\n", case_names[_i], FRAMES * k);
    free(codes);
    free(ref);
    free(x);
    release(&q);
}
END_TEST

START_TEST(decode_matches_pytorch)
{
    quantizer q;
    create(case_plugins[_i], case_names[_i], &q);
    size_t dim = (size_t)q.layout.dim, k = (size_t)q.num_codebooks;
    uint16_t *ref = reference_codes(q.ctx.prefix, (int)k);
    float *y = malloc(sizeof(float) * FRAMES * dim);
    for (int n = 1; n <= (int)k; n++) {
        char name[64];
        snprintf(name, sizeof name, "%s.decode.%d", q.ctx.prefix, n);
        float *want = tensor_f32(name, FRAMES * dim);
        ck_assert_int_eq(q.api->decode(q.q, ref, FRAMES, (int)k, n, y), TOKVOX_OK);
        float err = tu_max_abs_diff(y, want, FRAMES * dim);
        fprintf(stderr, "%s decode %d codebooks: max abs error %.3g\n", case_names[_i], n, err);
        ck_assert_msg(err <= TOL, "%s decode of %d codebooks differs by %g", case_names[_i], n,
                      err);
        free(want);
    }
    free(y);
    free(ref);
    release(&q);
}
END_TEST

/* ---- properties on random inputs ------------------------------------- */

static float gaussian(void)
{
    double u1 = ((double)rand() + 1.0) / ((double)RAND_MAX + 2.0);
    double u2 = (double)rand() / ((double)RAND_MAX + 1.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static float *random_latent(size_t frames, size_t dim)
{
    float *x = malloc(sizeof(float) * frames * dim);
    for (size_t i = 0; i < frames * dim; i++)
        x[i] = gaussian();
    return x;
}

START_TEST(fewer_codebooks_give_the_prefix)
{
    quantizer q;
    create(cases[_i], cases[_i], &q);
    srand(tu_seed());
    const size_t frames = 200;
    size_t dim = (size_t)q.layout.dim, k = (size_t)q.num_codebooks;
    float *x = random_latent(frames, dim);
    uint16_t *full = malloc(sizeof(uint16_t) * frames * k);
    uint16_t *part = malloc(sizeof(uint16_t) * frames * k);
    ck_assert_int_eq(q.api->encode(q.q, x, frames, (int)k, full), TOKVOX_OK);
    for (size_t n = 1; n < k; n++) {
        ck_assert_int_eq(q.api->encode(q.q, x, frames, (int)n, part), TOKVOX_OK);
        for (size_t t = 0; t < frames; t++)
            ck_assert_msg(memcmp(part + t * n, full + t * k, n * sizeof(uint16_t)) == 0,
                          "%s: %zu codebooks, frame %zu is not the prefix of the full code",
                          cases[_i], n, t);
    }
    free(part);
    free(full);
    free(x);
    release(&q);
}
END_TEST

/* Mean squared error of decoding the first n codebooks, or of 0 for n = 0. */
static double mse(const quantizer *q, const float *x, const uint16_t *codes, size_t frames,
                  int n, float *y)
{
    size_t dim = (size_t)q->layout.dim;
    if (n == 0)
        memset(y, 0, sizeof(float) * frames * dim);
    else
        ck_assert_int_eq(q->api->decode(q->q, codes, frames, q->num_codebooks, n, y),
                         TOKVOX_OK);
    double sum = 0.0;
    for (size_t i = 0; i < frames * dim; i++)
        sum += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    return sum / (double)frames;
}

/* Averaged over random frames, each whole stage added lowers the error (the
 * PyTorch codebooks: about 10 % or more per stage for unit-variance inputs). */
START_TEST(error_does_not_grow_with_stages)
{
    quantizer q;
    create(cases[_i], cases[_i], &q);
    srand(tu_seed());
    const size_t frames = 256;
    size_t dim = (size_t)q.layout.dim, k = (size_t)q.num_codebooks;
    int groups = q.layout.groups;
    float *x = random_latent(frames, dim);
    float *y = malloc(sizeof(float) * frames * dim);
    uint16_t *codes = malloc(sizeof(uint16_t) * frames * k);
    ck_assert_int_eq(q.api->encode(q.q, x, frames, (int)k, codes), TOKVOX_OK);
    double previous = mse(&q, x, codes, frames, 0, y);
    fprintf(stderr, "%s mse: 0 stages %.4f", cases[_i], previous);
    for (int s = 1; s <= q.layout.stages; s++) {
        double e = mse(&q, x, codes, frames, s * groups, y);
        fprintf(stderr, ", %d: %.4f", s, e);
        ck_assert_msg(e <= previous, "%s: error grew from %g to %g at stage %d", cases[_i],
                      previous, e, s);
        previous = e;
    }
    fprintf(stderr, "\n");
    free(codes);
    free(y);
    free(x);
    release(&q);
}
END_TEST

/* With a zero codeword in every codebook the greedy encoder can always
 * "skip" a stage, so the error may not grow for any single frame. */
START_TEST(error_does_not_grow_per_frame_with_zero_codeword)
{
    quantizer q;
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, cases[_i]);
    q.ctx.zero_first_codeword = 1;
    ck_assert_int_eq(try_create(cases[_i], &q), TOKVOX_OK);
    q.layout = *q.api->layout(q.q);
    q.num_codebooks = q.layout.groups * q.layout.stages;
    srand(tu_seed());
    const size_t frames = 300;
    size_t dim = (size_t)q.layout.dim, k = (size_t)q.num_codebooks;
    float *x = random_latent(frames, dim);
    /* small inputs make the zero codeword the nearest now and then */
    for (size_t i = 0; i < frames * dim; i++)
        x[i] *= (float)(i / dim % 3 == 0 ? 0.05 : 1.0);
    float *y = malloc(sizeof(float) * dim);
    uint16_t *codes = malloc(sizeof(uint16_t) * frames * k);
    ck_assert_int_eq(q.api->encode(q.q, x, frames, (int)k, codes), TOKVOX_OK);
    size_t zero_codes = 0;
    for (size_t i = 0; i < frames * k; i++)
        zero_codes += codes[i] == 0;
    for (size_t t = 0; t < frames; t++) {
        const float *xt = x + t * dim;
        double previous = 0.0;
        for (size_t i = 0; i < dim; i++)
            previous += (double)xt[i] * xt[i];
        for (int s = 1; s <= q.layout.stages; s++) {
            double e = mse(&q, xt, codes + t * k, 1, s * q.layout.groups, y);
            ck_assert_msg(e <= previous * (1 + 1e-5) + 1e-9,
                          "%s frame %zu: error grew from %g to %g at stage %d", cases[_i], t,
                          previous, e, s);
            previous = e;
        }
    }
    fprintf(stderr, "%s: %zu of %zu codes chose the zero codeword\n", cases[_i], zero_codes,
            frames * k);
    ck_assert_uint_gt(zero_codes, 0);
    free(codes);
    free(y);
    free(x);
    release(&q);
}
END_TEST

/* ---- refusals ------------------------------------------------------------ */

/* Create expecting failure; returns the error and leaves the message in q->ctx. */
static int create_fails(const char *plugin, quantizer *q)
{
    int err = try_create(plugin, q);
    ck_assert_msg(err != TOKVOX_OK, "%s create accepted a bad model", plugin);
    ck_assert_ptr_null(q->q);
    ck_assert_msg(q->ctx.fail_calls > 0 && q->ctx.message[0], "%s failed without a message",
                  plugin);
    fprintf(stderr, "%s refused (%d): %s\n", plugin, err, q->ctx.message);
    return err;
}

START_TEST(grvq_wrong_shaped_codebook_fails)
{
    quantizer q;
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "grvq");
    /* codebook 3 served from the rvq case: [32,16] where grvq wants [32,8] */
    q.ctx.alias_from = "quantizer.codebooks.3.embed";
    q.ctx.alias_to = "rvq.quantizer.codebooks.3.embed";
    ck_assert_int_eq(create_fails("grvq", &q), TOKVOX_ERR_WEIGHTS);
    ck_assert_msg(strstr(q.ctx.message, "quantizer.codebooks.3.embed"),
                  "message does not name the tensor: %s", q.ctx.message);
    ck_assert_ptr_nonnull(strstr(q.ctx.message, "[32,16]"));
    release(&q);

    /* a missing codebook is named too */
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "grvq");
    q.ctx.alias_from = "quantizer.codebooks.5.embed";
    q.ctx.alias_to = "grvq.quantizer.codebooks.6.embed";
    ck_assert_int_eq(create_fails("grvq", &q), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(q.ctx.message, "quantizer.codebooks.5.embed"));
    release(&q);

    /* a codebook_size the tensors do not have: the first codebook is named */
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "grvq");
    q.ctx.codebook_size = 64;
    ck_assert_int_eq(create_fails("grvq", &q), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(q.ctx.message, "quantizer.codebooks.0.embed"));
    release(&q);
}
END_TEST

START_TEST(grvq_needs_groups)
{
    quantizer q;
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "grvq");
    q.ctx.has_groups = 0;
    ck_assert_int_eq(create_fails("grvq", &q), TOKVOX_ERR_WEIGHTS);
    ck_assert_ptr_nonnull(strstr(q.ctx.message, "groups"));
    release(&q);

    /* latent_dim not divisible by groups */
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "grvq");
    q.ctx.groups = 3;
    ck_assert_int_eq(create_fails("grvq", &q), TOKVOX_ERR_WEIGHTS);
    ck_assert(q.ctx.message[0]);
    release(&q);
}
END_TEST

START_TEST(rvq_refuses_groups)
{
    quantizer q;
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "rvq");
    q.ctx.groups = 2;
    ck_assert_int_eq(create_fails("rvq", &q), TOKVOX_ERR_WEIGHTS);
    ck_assert_msg(strstr(q.ctx.message, "groups"), "message: %s", q.ctx.message);
    release(&q);

    /* without a groups entry at all, rvq means one group */
    memset(&q, 0, sizeof q);
    ctx_init(&q.ctx, "rvq");
    q.ctx.has_groups = 0;
    ck_assert_int_eq(try_create("rvq", &q), TOKVOX_OK);
    q.layout = *q.api->layout(q.q);
    ck_assert_int_eq(q.layout.groups, 1);
    release(&q);
}
END_TEST

START_TEST(decode_refuses_bad_codes)
{
    quantizer q;
    create(case_plugins[_i], case_names[_i], &q);
    size_t dim = (size_t)q.layout.dim, k = (size_t)q.num_codebooks;
    uint16_t *codes = reference_codes(q.ctx.prefix, (int)k);
    float *y = malloc(sizeof(float) * FRAMES * dim);
    ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k, (int)k, y), TOKVOX_OK);
    const uint16_t bad_values[] = {(uint16_t)q.layout.codebook_size, 1000, 65535};
    for (size_t b = 0; b < 3; b++) {
        /* the last code of the last frame */
        uint16_t saved = codes[FRAMES * k - 1];
        codes[FRAMES * k - 1] = bad_values[b];
        ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k, (int)k, y), TOKVOX_ERR_FORMAT);
        /* not read when only a prefix is decoded */
        ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k, (int)k - 1, y), TOKVOX_OK);
        codes[FRAMES * k - 1] = saved;
    }
    codes[0] = (uint16_t)q.layout.codebook_size;
    ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k, 1, y), TOKVOX_ERR_FORMAT);
    codes[0] = (uint16_t)(q.layout.codebook_size - 1);
    ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k, 1, y), TOKVOX_OK);
    /* counts out of range */
    ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k, 0, y), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, (int)k + 1, (int)k + 1, y),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->decode(q.q, codes, FRAMES, 1, 2, y), TOKVOX_ERR_INVALID_ARGUMENT);
    float *x = calloc(dim, sizeof(float));
    ck_assert_int_eq(q.api->encode(q.q, x, 1, 0, codes), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->encode(q.q, x, 1, (int)k + 1, codes),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    /* zero frames is fine and writes nothing */
    ck_assert_int_eq(q.api->encode(q.q, x, 0, (int)k, codes), TOKVOX_OK);
    ck_assert_int_eq(q.api->decode(q.q, codes, 0, (int)k, (int)k, y), TOKVOX_OK);
    free(x);
    free(y);
    free(codes);
    release(&q);
}
END_TEST

int main(void)
{
    tu_require_file(tu_data_path("quantizers.safetensors"));
    if (read_cases() == 0) {
        fprintf(stderr, "quantizers.safetensors lists no cases\n");
        return 1;
    }
    Suite *s = suite_create("quantizers");
    TCase *tc = tcase_create("pytorch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, codes_match_pytorch, 0, n_cases);
    tcase_add_loop_test(tc, decode_matches_pytorch, 0, n_cases);
    suite_add_tcase(s, tc);
    TCase *prop = tcase_create("properties");
    tcase_add_checked_fixture(prop, setup, teardown);
    tcase_add_loop_test(prop, fewer_codebooks_give_the_prefix, 0, 2);
    tcase_add_loop_test(prop, error_does_not_grow_with_stages, 0, 2);
    tcase_add_loop_test(prop, error_does_not_grow_per_frame_with_zero_codeword, 0, 2);
    suite_add_tcase(s, prop);
    TCase *bad = tcase_create("refusals");
    tcase_add_checked_fixture(bad, setup, teardown);
    tcase_add_test(bad, grvq_wrong_shaped_codebook_fails);
    tcase_add_test(bad, grvq_needs_groups);
    tcase_add_test(bad, rvq_refuses_groups);
    tcase_add_loop_test(bad, decode_refuses_bad_codes, 0, n_cases);
    suite_add_tcase(s, bad);
    return tu_run(s);
}
