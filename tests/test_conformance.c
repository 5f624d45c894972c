/* The plugin conformance suite: what every plugin must do, checked from
 * synthetic weights, one meson test per plugin the build makes
 * (conformance_NAME; the list is conformance_plugins in plugins/meson.build
 * and whatever the template and other folders add to it).
 *
 *   test_conformance NAME KIND [KEY=VALUE ...]
 *
 * KIND is quantizer or model; KEY=VALUE are the config the plugin is created
 * with (integers, or strings).  Every tensor the plugin asks for is made up
 * on the spot in the shape it asks for: deterministic random halves (the
 * stored dtype, f16, for tensor(); the same values widened by the host's
 * converter for tensor_f32()), so a plugin is tested without a trained
 * model and without the harness knowing its tensor names.
 *
 * Checked, for both kinds: creation; refusal (an error and a message, no
 * crash, no leak under ASan) when any one tensor it asks for is refused as
 * the host refuses a wrong shape; no allocation in the per-frame path
 * (malloc counted by interposition in this binary; not under sanitizers,
 * whose allocator it would fight); the [any-thread] / [session-thread]
 * tags, by running one instance on several threads at once and comparing
 * with one thread (a data race shows as a difference here and as a report
 * under TSan).  Quantizers: fewer codebooks give exactly the prefix; codes
 * out of range and counts out of range refused; one-frame and many-frame
 * blocks give identical codes and latents.  Models: one-frame, many-frame
 * and mixed blocks identical to the bit; reset equals a fresh state;
 * framing (when declared) consistent with the layout. */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "plugin_host.h"
#include "testutil.h"

/* ---- allocation counter ------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef COUNT_ALLOCATIONS
#define COUNT_ALLOCATIONS 1
#endif

static _Thread_local int counting;     /* count this thread's allocations */
static _Thread_local long allocations;

#if COUNT_ALLOCATIONS
/* glibc's own entry points: defining malloc here interposes it for the
 * whole process, plugins and libtokvox included. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void *malloc(size_t n)
{
    allocations += counting;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size)
{
    allocations += counting;
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n)
{
    allocations += counting;
    return __libc_realloc(p, n);
}
#endif

static void count_start(void)
{
    allocations = 0;
    counting = 1;
}

static void count_stop(const char *what)
{
    counting = 0;
    ck_assert_msg(allocations == 0, "%s allocated %ld times in the per-frame path", what,
                  allocations);
}

/* ---- synthetic weights -------------------------------------------------- */

#define MAX_CONFIG 32
#define MAX_OWNED 4096

static const char *plugin_name;
static int plugin_kind;
static int n_config;
static char *config_keys[MAX_CONFIG], *config_values[MAX_CONFIG];

typedef struct synth {
    long requests;     /* tensor requests so far */
    long refuse_at;    /* refuse this request (as a wrong shape), -1 none */
    void *owned[MAX_OWNED];
    size_t n_owned;
    int fail_calls;
    char message[512];
} synth;

static void s_fail(void *ctx, const char *message)
{
    synth *s = ctx;
    s->fail_calls++;
    if (!s->message[0])
        snprintf(s->message, sizeof s->message, "%s", message);
}

static void *own(synth *s, void *p)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_lt(s->n_owned, MAX_OWNED);
    s->owned[s->n_owned++] = p;
    return p;
}

static uint64_t hash_name(const char *name)
{
    uint64_t h = 1469598103934665603u;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211u;
    return h;
}

/* A random normal-range half: sign, exponent 2^-6 .. 2^-1, any mantissa. */
static uint16_t random_half(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    uint32_t r = (uint32_t)(*state >> 33);
    return (uint16_t)((r & 0x8000u) | (uint32_t)(9 + (r >> 10) % 6) << 10 | (r & 0x3ffu));
}

static int64_t numel_of(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        ck_assert_msg(shape[i] >= 0 && shape[i] < (1 << 24), "%s asks for a dimension of %lld",
                      plugin_name, (long long)shape[i]);
        n *= shape[i];
    }
    ck_assert_msg(n < (1 << 26), "%s asks for a tensor of %lld values", plugin_name,
                  (long long)n);
    return n;
}

/* The halves of a tensor: the same for the same name and shape. */
static uint16_t *halves_of(synth *s, const char *name, int64_t n)
{
    uint16_t *h = own(s, malloc(sizeof(uint16_t) * (size_t)(n ? n : 1)));
    uint64_t state = hash_name(name);
    for (int64_t i = 0; i < n; i++)
        h[i] = random_half(&state);
    return h;
}

/* 0 when request number s->requests may be served, else refused as the
 * host refuses a wrong shape. */
static int refused(synth *s, const char *name, int ndim)
{
    long k = s->requests++;
    if (k != s->refuse_at && ndim >= 1 && ndim <= TOKVOX_MAX_DIMS)
        return 0;
    char msg[320];
    snprintf(msg, sizeof msg, "tensor '%s' has shape [1], expected another", name);
    s_fail(s, msg);
    return 1;
}

static const tokvox_tensor *s_tensor(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    synth *s = ctx;
    if (refused(s, name, ndim))
        return NULL;
    tokvox_tensor *t = own(s, calloc(1, sizeof *t));
    t->size = sizeof *t;
    t->dtype = TOKVOX_DTYPE_F16;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->numel = numel_of(ndim, shape);
    t->data = halves_of(s, name, t->numel);
    return t;
}

static const float *s_tensor_f32(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    synth *s = ctx;
    if (refused(s, name, ndim))
        return NULL;
    int64_t n = numel_of(ndim, shape);
    const uint16_t *h = halves_of(s, name, n);
    float *f = own(s, malloc(sizeof(float) * (size_t)(n ? n : 1)));
    for (int64_t i = 0; i < n; i++)
        f[i] = tk_half_to_float(h[i]);
    return f;
}

static const char *config_value(const char *key)
{
    for (int i = 0; i < n_config; i++)
        if (strcmp(config_keys[i], key) == 0)
            return config_values[i];
    return NULL;
}

static int s_config_int(void *ctx, const char *key, int64_t *out)
{
    (void)ctx;
    const char *v = config_value(key);
    char *end;
    if (!v)
        return -1;
    long long n = strtoll(v, &end, 10);
    if (*end || end == v)
        return -1;
    *out = n;
    return 0;
}

static const char *s_config_string(void *ctx, const char *key)
{
    (void)ctx;
    return config_value(key);
}

static void synth_free(synth *s)
{
    for (size_t i = 0; i < s->n_owned; i++)
        free(s->owned[i]);
    s->n_owned = 0;
}

/* ---- the plugin under test --------------------------------------------- */

typedef struct subject {
    tk_plugin plugin;
    synth weights;
    void *instance;
} subject;

/* Load the plugin and create it; refuse_at as in synth.  Returns create's
 * result (the instance in s->instance). */
static int try_create(subject *s, long refuse_at)
{
    memset(s, 0, sizeof *s);
    char detail[2048] = "";
    int err = tk_plugin_load(plugin_name, plugin_kind, &s->plugin, detail, sizeof detail);
    ck_assert_msg(err == TOKVOX_OK, "loading %s: %s", plugin_name, detail);
    s->weights.refuse_at = refuse_at;
    tokvox_weights w = {sizeof w,     &s->weights,     s_tensor, s_tensor_f32,
                        s_config_int, s_config_string, s_fail};
    if (plugin_kind == TOKVOX_PLUGIN_QUANTIZER)
        return s->plugin.api.quantizer.create(&s->plugin.host, &w, &s->instance);
    return s->plugin.api.model.create(&s->plugin.host, &w, &s->instance);
}

static void create(subject *s)
{
    int err = try_create(s, -1);
    ck_assert_msg(err == TOKVOX_OK, "%s create failed (%d): %s", plugin_name, err,
                  s->weights.message);
    ck_assert_ptr_nonnull(s->instance);
}

static void release(subject *s)
{
    if (s->instance && plugin_kind == TOKVOX_PLUGIN_QUANTIZER)
        s->plugin.api.quantizer.destroy(s->instance);
    else if (s->instance)
        s->plugin.api.model.destroy(s->instance);
    synth_free(&s->weights);
    tk_plugin_close(&s->plugin);
}

/* ---- both kinds ---------------------------------------------------------- */

/* Refusing each tensor in turn: create fails with a message, cleanly. */
START_TEST(refuses_each_wrong_tensor)
{
    subject s;
    create(&s);
    long n = s.weights.requests;
    release(&s);
    ck_assert_msg(n > 0 || plugin_kind == TOKVOX_PLUGIN_QUANTIZER,
                  "%s asked for no tensors at all", plugin_name);
    for (long k = 0; k < n; k++) {
        int err = try_create(&s, k);
        ck_assert_msg(err != TOKVOX_OK, "%s accepted a refused tensor (request %ld)",
                      plugin_name, k);
        ck_assert_msg(err < 0, "%s: create returned %d, not a tokvox_error", plugin_name, err);
        ck_assert_msg(s.weights.message[0], "%s failed without a message", plugin_name);
        s.instance = NULL; /* nothing to destroy: create failed */
        release(&s);
    }
    fprintf(stderr, "%s: refusing any one of its %ld tensors fails create cleanly\n",
            plugin_name, n);
}
END_TEST

START_TEST(missing_config_is_refused)
{
    /* with no config at all, create fails with a message (or, for a
     * plugin that needs none, succeeds) and never crashes */
    int saved = n_config;
    n_config = 0;
    subject s;
    int err = try_create(&s, -1);
    n_config = saved;
    if (err != TOKVOX_OK) {
        ck_assert_msg(s.weights.message[0], "%s failed without a message", plugin_name);
        s.instance = NULL;
    }
    release(&s);
}
END_TEST

/* ---- quantizers ---------------------------------------------------------- */

typedef struct qsubject {
    subject s;
    const tokvox_quantizer_api *api;
    tokvox_quantizer_layout layout;
    size_t dim, k;
} qsubject;

static void qcreate(qsubject *q)
{
    create(&q->s);
    q->api = &q->s.plugin.api.quantizer;
    const tokvox_quantizer_layout *l = q->api->layout(q->s.instance);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(tk_copy_sized(&q->layout, sizeof q->layout, l, 0, sizeof q->layout), 0);
    ck_assert(q->layout.dim >= 1 && q->layout.groups >= 1 && q->layout.stages >= 1);
    ck_assert(q->layout.codebook_size >= 2 && q->layout.codebook_size <= 65536);
    ck_assert_int_le(q->layout.groups * q->layout.stages, 64);
    q->dim = (size_t)q->layout.dim;
    q->k = (size_t)(q->layout.groups * q->layout.stages);
}

static float *random_frames(size_t frames, size_t dim, float scale)
{
    float *x = malloc(sizeof(float) * frames * dim);
    for (size_t i = 0; i < frames * dim; i++)
        x[i] = scale * ((float)rand() / (float)RAND_MAX * 2.0f - 1.0f);
    return x;
}

START_TEST(quantizer_prefix_property)
{
    qsubject q;
    qcreate(&q);
    srand(tu_seed());
    const size_t frames = 64;
    float *x = random_frames(frames, q.dim, 1.0f);
    uint16_t *full = malloc(sizeof(uint16_t) * frames * q.k);
    uint16_t *part = malloc(sizeof(uint16_t) * frames * q.k);
    ck_assert_int_eq(q.api->encode(q.s.instance, x, frames, (int)q.k, full), TOKVOX_OK);
    for (size_t i = 0; i < frames * q.k; i++)
        ck_assert_int_lt(full[i], q.layout.codebook_size);
    for (size_t n = 1; n < q.k; n++) {
        ck_assert_int_eq(q.api->encode(q.s.instance, x, frames, (int)n, part), TOKVOX_OK);
        for (size_t t = 0; t < frames; t++)
            ck_assert_msg(!memcmp(part + t * n, full + t * q.k, n * sizeof(uint16_t)),
                          "%s: %zu codebooks, frame %zu is not the prefix", plugin_name, n, t);
    }
    free(part);
    free(full);
    free(x);
    release(&q.s);
}
END_TEST

START_TEST(quantizer_refuses_bad_codes_and_counts)
{
    qsubject q;
    qcreate(&q);
    const size_t frames = 4;
    uint16_t *codes = calloc(frames * q.k, sizeof(uint16_t));
    float *y = malloc(sizeof(float) * frames * q.dim);
    ck_assert_int_eq(q.api->decode(q.s.instance, codes, frames, (int)q.k, (int)q.k, y),
                     TOKVOX_OK);
    const uint16_t bad[] = {(uint16_t)q.layout.codebook_size, 65535};
    for (size_t b = 0; b < 2; b++) {
        if (q.layout.codebook_size == 65536)
            break; /* every uint16 is a code */
        codes[frames * q.k - 1] = bad[b];
        ck_assert_int_eq(q.api->decode(q.s.instance, codes, frames, (int)q.k, (int)q.k, y),
                         TOKVOX_ERR_FORMAT);
        if (q.k > 1) /* not read when only a prefix is decoded */
            ck_assert_int_eq(
                q.api->decode(q.s.instance, codes, frames, (int)q.k, (int)q.k - 1, y),
                TOKVOX_OK);
        codes[frames * q.k - 1] = 0;
    }
    ck_assert_int_eq(q.api->decode(q.s.instance, codes, frames, (int)q.k, 0, y),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->decode(q.s.instance, codes, frames, (int)q.k + 1, (int)q.k + 1, y),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    if (q.k > 1)
        ck_assert_int_eq(q.api->decode(q.s.instance, codes, frames, 1, 2, y),
                         TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->encode(q.s.instance, y, 1, 0, codes), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->encode(q.s.instance, y, 1, (int)q.k + 1, codes),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(q.api->encode(q.s.instance, y, 0, (int)q.k, codes), TOKVOX_OK);
    ck_assert_int_eq(q.api->decode(q.s.instance, codes, 0, (int)q.k, (int)q.k, y), TOKVOX_OK);
    free(y);
    free(codes);
    release(&q.s);
}
END_TEST

/* One frame at a time, and in uneven blocks, gives the codes and latents
 * of one call over everything, with no allocation. */
START_TEST(quantizer_blocks_identical_no_alloc)
{
    qsubject q;
    qcreate(&q);
    srand(tu_seed());
    const size_t frames = 300; /* more than one internal chunk of most plugins */
    float *x = random_frames(frames, q.dim, 1.0f);
    float *y_all = malloc(sizeof(float) * frames * q.dim);
    float *y_one = malloc(sizeof(float) * frames * q.dim);
    uint16_t *all = malloc(sizeof(uint16_t) * frames * q.k);
    uint16_t *one = malloc(sizeof(uint16_t) * frames * q.k);
    ck_assert_int_eq(q.api->encode(q.s.instance, x, frames, (int)q.k, all), TOKVOX_OK);
    ck_assert_int_eq(q.api->decode(q.s.instance, all, frames, (int)q.k, (int)q.k, y_all),
                     TOKVOX_OK);
    count_start();
    int err = 0;
    for (size_t t = 0, n = 1; t < frames && !err; t += n, n = n % 7 + 1) {
        size_t m = frames - t < n ? frames - t : n;
        err = q.api->encode(q.s.instance, x + t * q.dim, m, (int)q.k, one + t * q.k);
        if (!err)
            err = q.api->decode(q.s.instance, one + t * q.k, m, (int)q.k, (int)q.k,
                                y_one + t * q.dim);
    }
    count_stop("encode/decode");
    ck_assert_int_eq(err, TOKVOX_OK);
    ck_assert_msg(!memcmp(all, one, sizeof(uint16_t) * frames * q.k),
                  "%s: codes depend on the block size", plugin_name);
    ck_assert_msg(!memcmp(y_all, y_one, sizeof(float) * frames * q.dim),
                  "%s: decoded latents depend on the block size", plugin_name);
    free(one);
    free(all);
    free(y_one);
    free(y_all);
    free(x);
    release(&q.s);
}
END_TEST

/* [any-thread]: one instance, several threads at once. */
typedef struct qjob {
    const qsubject *q;
    const float *x;
    size_t frames;
    uint16_t *codes;
    float *y;
    int err;
} qjob;

static void *quantizer_job(void *arg)
{
    qjob *j = arg;
    for (int round = 0; round < 4 && !j->err; round++) {
        j->err = j->q->api->encode(j->q->s.instance, j->x, j->frames, (int)j->q->k, j->codes);
        if (!j->err)
            j->err = j->q->api->decode(j->q->s.instance, j->codes, j->frames, (int)j->q->k,
                                       (int)j->q->k, j->y);
    }
    return NULL;
}

#define THREADS 4

START_TEST(quantizer_any_thread)
{
    qsubject q;
    qcreate(&q);
    srand(tu_seed());
    const size_t frames = 64;
    float *x = random_frames(frames, q.dim, 1.0f);
    uint16_t *ref = malloc(sizeof(uint16_t) * frames * q.k);
    ck_assert_int_eq(q.api->encode(q.s.instance, x, frames, (int)q.k, ref), TOKVOX_OK);
    qjob jobs[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (qjob){&q, x, frames, malloc(sizeof(uint16_t) * frames * q.k),
                         malloc(sizeof(float) * frames * q.dim), 0};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, quantizer_job, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(jobs[i].err, TOKVOX_OK);
        ck_assert_msg(!memcmp(jobs[i].codes, ref, sizeof(uint16_t) * frames * q.k),
                      "%s: codes differ when run on %d threads at once", plugin_name, THREADS);
        free(jobs[i].codes);
        free(jobs[i].y);
    }
    free(ref);
    free(x);
    release(&q.s);
}
END_TEST

/* ---- models --------------------------------------------------------------- */

typedef struct msubject {
    subject s;
    const tokvox_model_api *api;
    tokvox_model_layout layout;
    size_t in, latent, head;
} msubject;

static void mcreate(msubject *m)
{
    create(&m->s);
    m->api = &m->s.plugin.api.model;
    const tokvox_model_layout *l = m->api->layout(m->s.instance);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(tk_copy_sized(&m->layout, sizeof m->layout, l, 0, sizeof m->layout), 0);
    ck_assert(m->layout.feature_dim >= 1 && m->layout.latent_dim >= 1 &&
              m->layout.head_dim >= 1 && m->layout.max_frames >= 1);
    m->in = (size_t)m->layout.feature_dim;
    m->latent = (size_t)m->layout.latent_dim;
    m->head = (size_t)m->layout.head_dim;
    const tokvox_model_framing *f = m->api->framing ? m->api->framing(m->s.instance) : NULL;
    if (f) { /* what the engine derives from the framing must fit the layout */
        ck_assert_uint_ge(f->size, sizeof(tokvox_model_framing));
        ck_assert(f->hop >= 1 && f->n_fft >= 2 && f->sample_rate >= 1000);
        if (f->features == TOKVOX_FEATURES_LOG_MAGNITUDE)
            ck_assert_int_eq(m->layout.feature_dim, f->n_fft / 2 + 1);
        int sub_frames = f->sub_frames ? f->sub_frames : 1;
        ck_assert(sub_frames >= 1 && f->hop % sub_frames == 0);
        if (f->synthesis == TOKVOX_SYNTHESIS_MAG_PHASE)
            ck_assert_int_eq(m->layout.head_dim, 2 * (f->n_fft / 2 + 1) * sub_frames);
    }
}

/* Run `frames` frames through a fresh-or-given state in blocks of the
 * sizes cycling through sizes[] (0-terminated); encode or decode. */
static int run_blocks(const msubject *m, void *state, int decode, const float *in, size_t frames,
                      const size_t *sizes, float *out)
{
    size_t din = decode ? m->latent : m->in, dout = decode ? m->head : m->latent;
    size_t max = (size_t)m->layout.max_frames;
    int err = 0;
    for (size_t t = 0, i = 0; t < frames && !err; i = sizes[i + 1] ? i + 1 : 0) {
        size_t n = sizes[i] < max ? sizes[i] : max;
        n = frames - t < n ? frames - t : n;
        err = decode ? m->api->decode(m->s.instance, state, in + t * din, n, out + t * dout)
                     : m->api->encode(m->s.instance, state, in + t * din, n, out + t * dout);
        t += n;
    }
    return err;
}

static void *new_state(const msubject *m, int decode)
{
    void *s = decode ? m->api->decoder_state_create(m->s.instance)
                     : m->api->encoder_state_create(m->s.instance);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(model_blocks_identical_reset_fresh_no_alloc)
{
    msubject m;
    mcreate(&m);
    srand(tu_seed());
    const size_t frames = 150;
    for (int decode = 0; decode <= 1; decode++) {
        size_t din = decode ? m.latent : m.in, dout = decode ? m.head : m.latent;
        float *x = random_frames(frames, din, decode ? 1.0f : 4.0f);
        float *other = random_frames(frames, din, decode ? 1.0f : 4.0f);
        float *whole = malloc(sizeof(float) * frames * dout);
        float *got = malloc(sizeof(float) * frames * dout);
        const size_t all[] = {frames, 0}, ones[] = {1, 0}, mixed[] = {3, 1, 17, 2, 64, 5, 0};
        void *s = new_state(&m, decode);
        ck_assert_int_eq(run_blocks(&m, s, decode, x, frames, all, whole), TOKVOX_OK);
        m.api->state_destroy(m.s.instance, s);
        const size_t *schedules[] = {ones, mixed};
        for (int k = 0; k < 2; k++) {
            s = new_state(&m, decode);
            count_start();
            int err = run_blocks(&m, s, decode, x, frames, schedules[k], got);
            count_stop(decode ? "decode" : "encode");
            ck_assert_int_eq(err, TOKVOX_OK);
            ck_assert_msg(!memcmp(whole, got, sizeof(float) * frames * dout),
                          "%s %s: blocks of other sizes give other results (schedule %d)",
                          plugin_name, decode ? "decode" : "encode", k);
            m.api->state_destroy(m.s.instance, s);
        }
        /* other input, reset, then x again: as from a fresh state */
        s = new_state(&m, decode);
        ck_assert_int_eq(run_blocks(&m, s, decode, other, frames, mixed, got), TOKVOX_OK);
        count_start();
        m.api->state_reset(m.s.instance, s);
        count_stop("state_reset");
        ck_assert_int_eq(run_blocks(&m, s, decode, x, frames, mixed, got), TOKVOX_OK);
        ck_assert_msg(!memcmp(whole, got, sizeof(float) * frames * dout),
                      "%s %s: a reset state differs from a fresh one", plugin_name,
                      decode ? "decode" : "encode");
        m.api->state_destroy(m.s.instance, s);
        m.api->state_destroy(m.s.instance, NULL);
        free(got);
        free(whole);
        free(other);
        free(x);
    }
    release(&m.s);
}
END_TEST

/* [any-thread] creation of states and [session-thread] coding: one model,
 * a state per thread, all at once, each as on one thread. */
typedef struct mjob {
    const msubject *m;
    const float *x;
    size_t frames;
    float *out;
    int err;
} mjob;

static void *model_job(void *arg)
{
    mjob *j = arg;
    const size_t blocks[] = {1, 4, 0};
    void *s = j->m->api->encoder_state_create(j->m->s.instance);
    j->err = s ? run_blocks(j->m, s, 0, j->x, j->frames, blocks, j->out) : TOKVOX_ERR_NO_MEMORY;
    j->m->api->state_destroy(j->m->s.instance, s);
    return NULL;
}

START_TEST(model_states_on_threads)
{
    msubject m;
    mcreate(&m);
    srand(tu_seed());
    const size_t frames = 40;
    float *x = random_frames(frames, m.in, 4.0f);
    float *ref = malloc(sizeof(float) * frames * m.latent);
    mjob ref_job = {&m, x, frames, ref, 0};
    model_job(&ref_job);
    ck_assert_int_eq(ref_job.err, TOKVOX_OK);
    mjob jobs[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (mjob){&m, x, frames, malloc(sizeof(float) * frames * m.latent), 0};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, model_job, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(jobs[i].err, TOKVOX_OK);
        ck_assert_msg(!memcmp(jobs[i].out, ref, sizeof(float) * frames * m.latent),
                      "%s: states on %d threads at once give other results", plugin_name,
                      THREADS);
        free(jobs[i].out);
    }
    free(ref);
    free(x);
    release(&m.s);
}
END_TEST

/* ---- main ------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "quantizer") && strcmp(argv[2], "model"))) {
        fprintf(stderr, "usage: test_conformance NAME quantizer|model [KEY=VALUE ...]\n");
        return 2;
    }
    plugin_name = argv[1];
    plugin_kind = strcmp(argv[2], "model") ? TOKVOX_PLUGIN_QUANTIZER : TOKVOX_PLUGIN_MODEL;
    for (int i = 3; i < argc && n_config < MAX_CONFIG; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "test_conformance: '%s' is not KEY=VALUE\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        config_keys[n_config] = argv[i];
        config_values[n_config++] = eq + 1;
    }
    if (!COUNT_ALLOCATIONS)
        fprintf(stderr, "conformance %s: allocation counting off under a sanitizer\n",
                plugin_name);
    Suite *s = suite_create("conformance");
    TCase *tc = tcase_create(plugin_name);
    tcase_add_test(tc, refuses_each_wrong_tensor);
    tcase_add_test(tc, missing_config_is_refused);
    if (plugin_kind == TOKVOX_PLUGIN_QUANTIZER) {
        tcase_add_test(tc, quantizer_prefix_property);
        tcase_add_test(tc, quantizer_refuses_bad_codes_and_counts);
        tcase_add_test(tc, quantizer_blocks_identical_no_alloc);
        tcase_add_test(tc, quantizer_any_thread);
    } else {
        tcase_add_test(tc, model_blocks_identical_reset_fresh_no_alloc);
        tcase_add_test(tc, model_states_on_threads);
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
