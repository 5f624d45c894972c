/* tokvox-speed: the C measurements behind bench/speed (see bench/README.md).
 *
 *   tokvox-speed [--model M] [--threads N] [--kernels auto|scalar|avx2|avx512]
 *                [--reps R] [--stream-seconds S] [--no-breakdown] AUDIO
 *
 * On AUDIO (any file libsndfile reads, resampled to the model rate) it
 * times, after loading the model once and reading the file into memory:
 *   encode     pcm -> codes, one encoder push of the whole file + flush
 *   decode     codes -> pcm, one decoder push of all frames + flush
 *   transcode  both, as `tokvox transcode` does without the file I/O
 *   stream     hop-sized encoder pushes, each frame decoded at once: the
 *              live path, timed per 20 ms frame (p50, p99, max), and the
 *              allocations made while it runs (must be 0)
 *   breakdown  every layer of the model alone at its real shapes, for
 *              the engine's blocks (offline) and 1 frame (streaming), with
 *              half weights as the plugin uses them, in ms per second
 *              of audio: where the time goes.  Layers alone run with their
 *              weights in cache; the whole model does not fit, which is the
 *              difference between the sum and the measured total
 * Offline figures are the best of --reps runs.  The model's multiply-adds
 * per second of audio come from its config.  Prints one JSON object.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "dsp.h"
#include "kernels.h"
#include "model_internal.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

/* ---- counting allocations ------------------------------------------------
 * malloc and friends defined here take the place of libc's for the whole
 * process (libtokvox and the plugins included) and count calls while
 * `counting` is set.  Not under sanitizers, which bring their own. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !__has_feature(address_sanitizer) && \
    !__has_feature(memory_sanitizer) && !__has_feature(thread_sanitizer)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
static atomic_long allocs;
static atomic_int counting;

static void count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count();
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
#else
#define COUNT_ALLOCS 0
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "tokvox-speed: %s\n", what);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- the model's shapes and multiply-adds ----------------------------------- */

typedef struct shapes {
    int dim, ffn, kernel, enc_blocks, dec_blocks, latent, bins, groups, stages, cb_size;
    int hop, rate, num_codebooks;
    double enc_macs, dec_macs, vq_macs; /* per frame */
} shapes;

static int config_int(const cJSON *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!cJSON_IsNumber(v))
        die("model config lacks an integer the benchmark needs (stftcodec + rvq/grvq only)");
    return v->valueint;
}

static shapes model_shapes(const tokvox_model *m)
{
    cJSON *c = cJSON_Parse(tokvox_model_config_json(m));
    if (!c)
        die("model config is not JSON");
    shapes s;
    s.dim = config_int(c, "dim");
    s.ffn = config_int(c, "ffn_dim");
    s.kernel = config_int(c, "kernel");
    s.enc_blocks = config_int(c, "enc_blocks");
    s.dec_blocks = config_int(c, "dec_blocks");
    s.latent = config_int(c, "latent_dim");
    s.bins = config_int(c, "n_fft") / 2 + 1;
    s.stages = config_int(c, "stages");
    s.cb_size = config_int(c, "codebook_size");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(c, "groups");
    s.groups = cJSON_IsNumber(g) ? g->valueint : 1;
    cJSON_Delete(c);
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    s.hop = info.hop;
    s.rate = info.sample_rate;
    s.num_codebooks = info.num_codebooks;
    double d = s.dim, f = s.ffn, block = d * s.kernel + 2.0 * d * f;
    s.enc_macs = s.bins * d * 3.0 + s.enc_blocks * block + d * s.latent;
    s.dec_macs = s.latent * d * 3.0 + s.dec_blocks * block + d * 2.0 * s.bins;
    s.vq_macs = (double)s.num_codebooks * s.cb_size * (s.latent / s.groups);
    return s;
}

/* ---- offline paths -------------------------------------------------------------- */

static double time_encode(tokvox_encoder *e, const float *pcm, size_t n, uint16_t *codes,
                          size_t cap, size_t *frames)
{
    size_t got = 0, tail = 0;
    int k = tokvox_encoder_num_codebooks(e);
    tokvox_encoder_reset(e);
    double t0 = now();
    if (tokvox_encoder_push(e, pcm, n, codes, cap, &got) ||
        tokvox_encoder_flush(e, codes + got * (size_t)k, cap - got, &tail))
        die("encode failed");
    double t = now() - t0;
    *frames = got + tail;
    return t;
}

static double time_decode(tokvox_decoder *d, const uint16_t *codes, size_t frames, float *out)
{
    size_t got = 0, tail = 0;
    tokvox_decoder_reset(d);
    double t0 = now();
    if (tokvox_decoder_push(d, codes, frames, out, &got) ||
        tokvox_decoder_flush(d, out + got, &tail))
        die("decode failed");
    return now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[i ? i - 1 : 0];
}

static void add_times(cJSON *o, const double *t, int reps, double audio, double macs_per_second)
{
    double best = t[0];
    cJSON *runs = cJSON_AddArrayToObject(o, "runs_s");
    for (int i = 0; i < reps; i++) {
        best = t[i] < best ? t[i] : best;
        cJSON_AddItemToArray(runs, cJSON_CreateNumber(t[i]));
    }
    cJSON_AddNumberToObject(o, "best_s", best);
    cJSON_AddNumberToObject(o, "realtime_factor", audio / best);
    cJSON_AddNumberToObject(o, "gflops", 2.0 * macs_per_second * audio / best * 1e-9);
}

/* ---- the streaming path ------------------------------------------------------------ */

static cJSON *stream(const tokvox_model *m, const shapes *s, const float *pcm, size_t n,
                     double max_seconds)
{
    size_t hop = (size_t)s->hop, k = (size_t)s->num_codebooks;
    size_t frames = n / hop, limit = (size_t)(max_seconds * s->rate / (double)hop);
    frames = frames < limit ? frames : limit;
    tokvox_encoder *e = tokvox_encoder_create(m, 0, NULL);
    tokvox_decoder *d = tokvox_decoder_create(m, (int)k, 0, NULL);
    double *total = xmalloc(sizeof(double) * frames), *enc = xmalloc(sizeof(double) * frames);
    double *dec = xmalloc(sizeof(double) * frames);
    uint16_t codes[64];
    float *out = xmalloc(sizeof(float) * hop);
    if (!e || !d || k > 64)
        die("cannot create the streaming sessions");
    /* warm up: one second, then start from a fresh stream */
    for (size_t f = 0, warm = (size_t)s->rate / hop; f < warm && f < frames; f++) {
        size_t got = 0, samples = 0;
        tokvox_encoder_push(e, pcm + f * hop, hop, codes, 1, &got);
        tokvox_decoder_push(d, codes, got, out, &samples);
    }
    tokvox_encoder_reset(e);
    tokvox_decoder_reset(d);
#if COUNT_ALLOCS
    atomic_store(&allocs, 0);
    atomic_store(&counting, 1);
#endif
    for (size_t f = 0; f < frames; f++) {
        size_t got = 0, samples = 0;
        double t0 = now();
        int err = tokvox_encoder_push(e, pcm + f * hop, hop, codes, 1, &got);
        double t1 = now();
        if (!err)
            err = tokvox_decoder_push(d, codes, got, out, &samples);
        double t2 = now();
        if (err || got != 1)
            die("streaming push failed");
        enc[f] = t1 - t0;
        dec[f] = t2 - t1;
        total[f] = t2 - t0;
    }
#if COUNT_ALLOCS
    atomic_store(&counting, 0);
#endif
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "frames", (double)frames);
    cJSON_AddNumberToObject(o, "frame_ms", 1000.0 * (double)hop / s->rate);
    double sum = 0.0;
    for (size_t f = 0; f < frames; f++)
        sum += total[f];
    cJSON_AddNumberToObject(o, "realtime_factor", (double)frames * hop / s->rate / sum);
    double *series[3] = {total, enc, dec};
    const char *names[3] = {"frame", "encoder", "decoder"};
    for (int i = 0; i < 3; i++) {
        qsort(series[i], frames, sizeof(double), cmp_double);
        cJSON *p = cJSON_AddObjectToObject(o, names[i]);
        cJSON_AddNumberToObject(p, "p50_ms", 1e3 * percentile(series[i], frames, 50));
        cJSON_AddNumberToObject(p, "p99_ms", 1e3 * percentile(series[i], frames, 99));
        cJSON_AddNumberToObject(p, "max_ms", 1e3 * series[i][frames - 1]);
    }
#if COUNT_ALLOCS
    cJSON_AddNumberToObject(o, "allocations", (double)atomic_load(&allocs));
#else
    cJSON_AddNullToObject(o, "allocations");
#endif
    tokvox_encoder_destroy(e);
    tokvox_decoder_destroy(d);
    free(total);
    free(enc);
    free(dec);
    free(out);
    return o;
}

/* ---- the per-layer breakdown ---------------------------------------------------------
 * Each layer runs alone through the kernel table at the model's shapes on
 * random data; its time per call times its calls per second of audio. */

typedef struct bench_buffers {
    float *x, *y, *w, *b, *g, *latent, *taps;
    uint16_t *half; /* the weights as halves, as the plugin keeps them */
    uint32_t *index;
    tk_stft *stft;
    const float *window;
} bench_buffers;

typedef struct layer {
    const char *name;
    int per_block;      /* calls per block of frames (each call covers the block) */
    double macs;        /* multiply-adds per call */
    int op;
    size_t a, b, c;     /* shape: meaning per op */
} layer;

enum { OP_CONV, OP_DWCONV, OP_NORM, OP_LINEAR, OP_GELU, OP_RESIDUAL, OP_NEAREST, OP_VQ_SUM,
       OP_ANALYSIS, OP_SYNTHESIS };

/* The plugin's layer-scale residual h += gamma * y (as in stftcodec.c). */
static void residual(float *h, const float *gamma, const float *y, size_t frames, size_t d)
{
    for (size_t t = 0; t < frames; t++)
        for (size_t c = 0; c < d; c++)
            h[t * d + c] += gamma[c] * y[t * d + c];
}

/* The linears read half weights, as stftcodec.c does. */
static void linear(bench_buffers *bb, const float *x, size_t frames, size_t in, size_t out,
                   float *y)
{
    tk_kernels()->linear_f16(x, frames, in, bb->half, bb->b, out, y);
}

static void run_layer(const layer *l, bench_buffers *bb, size_t frames)
{
    const tokvox_kernels *k = tk_kernels();
    switch (l->op) {
    case OP_CONV: /* as stftcodec.c: the taps interleaved, 16 frames at a time, then a linear */
        for (size_t t0 = 0; t0 < frames; t0 += 16) {
            size_t n = frames - t0 < 16 ? frames - t0 : 16, row = l->a * l->c;
            for (size_t t = 0; t < n; t++)
                for (size_t tap = 0; tap < l->c; tap++)
                    for (size_t i = 0; i < l->a; i++)
                        bb->taps[t * row + i * l->c + tap] = bb->x[(t0 + t + tap) * l->a + i];
            k->linear_f16(bb->taps, n, row, bb->half, bb->b, l->b, bb->y + t0 * l->b);
        }
        break;
    case OP_DWCONV:
        k->conv1d_causal(bb->x, frames, l->a, bb->w, bb->b, l->a, l->c, l->a, bb->y);
        break;
    case OP_NORM: k->layer_norm(bb->y, frames, l->a, bb->g, bb->b, 1e-6f); break;
    case OP_LINEAR: linear(bb, bb->x, frames, l->a, l->b, bb->y); break;
    case OP_GELU: k->gelu(bb->y, frames * l->a); break;
    case OP_RESIDUAL: residual(bb->y, bb->g, bb->x, frames, l->a); break;
    case OP_NEAREST: k->nearest(bb->x, frames, bb->w, bb->b, l->b, l->a, bb->index); break;
    case OP_VQ_SUM:
        for (size_t t = 0; t < frames; t++)
            for (size_t cb = 0; cb < l->b; cb++) {
                const float *cw = bb->w + (size_t)bb->index[t] % l->c * l->a;
                float *dst = bb->latent + t * l->a;
                for (size_t i = 0; i < l->a; i++)
                    dst[i] += cw[i];
            }
        break;
    case OP_ANALYSIS:
        for (size_t t = 0; t < frames; t++)
            tk_stft_log_magnitude(bb->stft, bb->x + t * 8, 1e-5f, bb->y + t * l->a);
        break;
    case OP_SYNTHESIS:
        for (size_t t = 0; t < frames; t++) {
            tk_stft_from_mag_phase(bb->stft, bb->x + t * 8, bb->x + t * 8 + l->a, bb->y);
            for (size_t i = 0; i < l->b; i++) /* the engine's overlap-add */
                bb->latent[i] += bb->y[i];
        }
        break;
    default: break;
    }
}

/* Seconds per call: the best of 5 trials of enough calls to fill ~10 ms. */
static double time_layer(const layer *l, bench_buffers *bb, size_t frames)
{
    int calls = 1;
    for (;;) {
        double t0 = now();
        for (int i = 0; i < calls; i++)
            run_layer(l, bb, frames);
        if (now() - t0 > 0.01 || calls > (1 << 20))
            break;
        calls *= 2;
    }
    double best = INFINITY;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        for (int i = 0; i < calls; i++)
            run_layer(l, bb, frames);
        double t = (now() - t0) / calls;
        best = t < best ? t : best;
    }
    return best;
}

static float *random_floats(size_t n, unsigned *seed, float scale)
{
    float *p = xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = scale * ((float)(*seed >> 8) / 16777216.0f - 0.5f);
    }
    return p;
}

static cJSON *breakdown(const shapes *s, size_t frames)
{
    size_t d = (size_t)s->dim, f = (size_t)s->ffn, bins = (size_t)s->bins;
    size_t lat = (size_t)s->latent, gd = lat / (size_t)s->groups, n_fft = 2 * (bins - 1);
    size_t eb = (size_t)s->enc_blocks, db = (size_t)s->dec_blocks, blocks = eb + db;
    const layer layers[] = {
        {"stft analysis (FFTW)", 1, 0, OP_ANALYSIS, bins, 0, 0},
        {"enc in_conv", 1, 3.0 * bins * d, OP_CONV, bins, d, 3},
        {"dwconv", (int)blocks, (double)d * s->kernel, OP_DWCONV, d, 0, (size_t)s->kernel},
        {"layer norm", (int)(blocks + 2), 0, OP_NORM, d, 0, 0},
        {"pw1 linear", (int)blocks, (double)d * f, OP_LINEAR, d, f, 0},
        {"gelu", (int)blocks, 0, OP_GELU, f, 0, 0},
        {"pw2 linear", (int)blocks, (double)f * d, OP_LINEAR, f, d, 0},
        {"layer-scale residual", (int)blocks, 0, OP_RESIDUAL, d, 0, 0},
        {"enc proj", 1, (double)d * lat, OP_LINEAR, d, lat, 0},
        {"vq nearest", s->num_codebooks, (double)s->cb_size * gd, OP_NEAREST, gd,
         (size_t)s->cb_size, 0},
        {"vq decode (sum)", 1, 0, OP_VQ_SUM, gd, (size_t)s->num_codebooks, (size_t)s->cb_size},
        {"dec in_conv", 1, 3.0 * lat * d, OP_CONV, lat, d, 3},
        {"dec proj", 1, (double)d * 2 * bins, OP_LINEAR, d, 2 * bins, 0},
        {"stft synthesis (FFTW)", 1, 0, OP_SYNTHESIS, bins, n_fft, 0},
    };
    size_t big = d > f ? d : f;
    big = big > 3 * bins ? big : 3 * bins;
    big = big > 2 * bins ? big : 2 * bins;
    size_t wmax = (size_t)s->cb_size * gd;
    wmax = wmax > 3 * bins * d ? wmax : 3 * bins * d;
    wmax = wmax > d * f ? wmax : d * f;
    wmax = wmax > d * 2 * bins ? wmax : d * 2 * bins;
    unsigned seed = 12345;
    int err;
    bench_buffers bb;
    bb.x = random_floats((frames + 8) * big + n_fft, &seed, 2.0f);
    bb.y = random_floats((frames + 8) * big + n_fft, &seed, 2.0f);
    bb.w = random_floats(wmax, &seed, 0.1f);
    bb.b = random_floats(big > (size_t)s->cb_size ? big : (size_t)s->cb_size, &seed, 0.1f);
    bb.g = random_floats(big, &seed, 1.0f);
    bb.taps = random_floats(16 * 3 * bins + 16 * 3 * lat, &seed, 1.0f);
    bb.half = xmalloc(sizeof(uint16_t) * wmax);
    for (size_t i = 0; i < wmax; i++) /* halves in +-[0.5, 1) */
        bb.half[i] = (uint16_t)((i * 2654435761u >> 7 & 0x83ffu) | 14u << 10);
    bb.latent = random_floats(frames * lat + n_fft, &seed, 1.0f);
    bb.index = xmalloc(sizeof(uint32_t) * frames);
    memset(bb.index, 0, sizeof(uint32_t) * frames);
    bb.stft = tk_stft_create((int)n_fft, &err);
    if (!bb.stft)
        die("cannot create the STFT");
    double blocks_per_second = (double)s->rate / s->hop / (double)frames;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        double t = time_layer(l, &bb, frames);
        double ms = 1e3 * t * l->per_block * blocks_per_second;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "layer", l->name);
        cJSON_AddNumberToObject(o, "calls_per_block", l->per_block);
        cJSON_AddNumberToObject(o, "us_per_call", 1e6 * t);
        cJSON_AddNumberToObject(o, "ms_per_audio_second", ms);
        cJSON_AddNumberToObject(o, "gmacs_per_audio_second",
                                l->macs * (double)frames * l->per_block * blocks_per_second * 1e-9);
        if (l->macs > 0)
            cJSON_AddNumberToObject(o, "gflops", 2.0 * l->macs * (double)frames / t * 1e-9);
        cJSON_AddItemToArray(arr, o);
    }
    tk_stft_destroy(bb.stft);
    free(bb.x);
    free(bb.y);
    free(bb.w);
    free(bb.b);
    free(bb.g);
    free(bb.latent);
    free(bb.taps);
    free(bb.half);
    free(bb.index);
    return arr;
}

/* ---- main ------------------------------------------------------------------------------ */

static const char usage[] =
    "usage: tokvox-speed [--model M] [--threads N] [--kernels auto|scalar|avx2|avx512]\n"
    "                    [--reps R] [--stream-seconds S] [--no-breakdown] AUDIO\n";

int main(int argc, char **argv)
{
    const char *model_path = NULL, *audio = NULL, *kernels = "auto";
    int threads = 1, reps = 3, do_breakdown = 1;
    double stream_seconds = 1e9;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--model") && more)
            model_path = argv[++i];
        else if (!strcmp(a, "--threads") && more)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--kernels") && more)
            kernels = argv[++i];
        else if (!strcmp(a, "--reps") && more)
            reps = atoi(argv[++i]);
        else if (!strcmp(a, "--stream-seconds") && more)
            stream_seconds = atof(argv[++i]);
        else if (!strcmp(a, "--no-breakdown"))
            do_breakdown = 0;
        else if (a[0] == '-' || audio) {
            fputs(usage, stderr);
            return 2;
        } else
            audio = a;
    }
    if (!audio || threads < 1 || threads > TK_MAX_THREADS || reps < 1 || reps > 100) {
        fputs(usage, stderr);
        return 2;
    }
    if (tk_impl_select(kernels))
        die("those kernels are not available on this CPU");
    tk_set_threads(threads);

    int err;
    char detail[1024] = "";
    double t0 = now();
    tokvox_model *m = tokvox_model_load(model_path, &err, detail, sizeof detail);
    double load = now() - t0;
    if (!m)
        die(detail);
    shapes s = model_shapes(m);
    float *pcm = NULL;
    size_t n = 0;
    tokvox_audio_source src;
    if (tokvox_audio_read(audio, s.rate, &pcm, &n, &src, detail, sizeof detail))
        die(detail);
    double seconds = (double)n / s.rate;
    double fps = (double)s.rate / s.hop;

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "audio", audio);
    cJSON_AddNumberToObject(o, "audio_seconds", seconds);
    cJSON_AddStringToObject(o, "kernels", tk_impl_active()->name);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "model_load_s", load);
    cJSON *macs = cJSON_AddObjectToObject(o, "macs_per_audio_second");
    cJSON_AddNumberToObject(macs, "encoder", s.enc_macs * fps);
    cJSON_AddNumberToObject(macs, "quantizer", s.vq_macs * fps);
    cJSON_AddNumberToObject(macs, "decoder", s.dec_macs * fps);
    cJSON_AddNumberToObject(macs, "total", (s.enc_macs + s.vq_macs + s.dec_macs) * fps);

    tokvox_encoder *e = tokvox_encoder_create(m, 0, NULL);
    tokvox_decoder *d = tokvox_decoder_create(m, s.num_codebooks, 0, NULL);
    size_t cap = tokvox_frames_for_samples(m, n), frames = 0;
    uint16_t *codes = xmalloc(sizeof(uint16_t) * cap * (size_t)s.num_codebooks);
    float *out = xmalloc(sizeof(float) * (cap + 2) * (size_t)s.hop);
    double *te = xmalloc(sizeof(double) * (size_t)reps), *td = xmalloc(sizeof(double) * (size_t)reps);
    double *tt = xmalloc(sizeof(double) * (size_t)reps);
    if (!e || !d)
        die("cannot create the sessions");
    time_encode(e, pcm, n, codes, cap, &frames); /* warm up */
    for (int r = 0; r < reps; r++) {
        te[r] = time_encode(e, pcm, n, codes, cap, &frames);
        td[r] = time_decode(d, codes, frames, out);
        double t = now();
        time_encode(e, pcm, n, codes, cap, &frames);
        time_decode(d, codes, frames, out);
        tt[r] = now() - t;
    }
    add_times(cJSON_AddObjectToObject(o, "encode"), te, reps, seconds,
              (s.enc_macs + s.vq_macs) * fps);
    add_times(cJSON_AddObjectToObject(o, "decode"), td, reps, seconds, s.dec_macs * fps);
    add_times(cJSON_AddObjectToObject(o, "transcode"), tt, reps, seconds,
              (s.enc_macs + s.vq_macs + s.dec_macs) * fps);
    /* a hash of the codes, so runs with other threads or kernels can be compared */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < frames * (size_t)s.num_codebooks; i++)
        h = (h ^ codes[i]) * 1099511628211ull;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    cJSON_AddStringToObject(o, "codes_fnv1a", hex);
    tokvox_encoder_destroy(e);
    tokvox_decoder_destroy(d);
    free(codes);
    free(out);
    free(te);
    free(td);
    free(tt);

    cJSON_AddItemToObject(o, "stream", stream(m, &s, pcm, n, stream_seconds));
    if (do_breakdown) {
        cJSON *b = cJSON_AddObjectToObject(o, "breakdown");
        cJSON_AddNumberToObject(b, "offline_frames_per_block", TK_MAX_BLOCK);
        cJSON_AddItemToObject(b, "offline", breakdown(&s, TK_MAX_BLOCK));
        cJSON_AddItemToObject(b, "streaming", breakdown(&s, 1));
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cJSON_AddNumberToObject(o, "peak_rss_kb", (double)ru.ru_maxrss);
    char *text = cJSON_Print(o);
    puts(text);
    free(text);
    cJSON_Delete(o);
    free(pcm);
    tokvox_model_destroy(m);
    return 0;
}
