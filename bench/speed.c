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
 *   breakdown  where the time goes, in ms per second of audio: one more
 *              transcode (offline) and stream pass, with the library's
 *              timing hook on (tokvox_profile_*), which times every kernel
 *              call and FFT at its real shapes and data; each kernel shape
 *              is named after the model layer it serves.  The plugins'
 *              code between kernels is the gap to the measured total.
 *              Only the public API is used (tokvox/tokvox.h, and io/ to
 *              read the file).
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

static cJSON *breakdown(const shapes *s, double audio);

/* The streaming pass; with profile != NULL, once more with the timing hook
 * on, its breakdown into *profile. */
static cJSON *stream(const tokvox_model *m, const shapes *s, const float *pcm, size_t n,
                     double max_seconds, cJSON **profile)
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
    if (profile) {
        tokvox_encoder_reset(e);
        tokvox_decoder_reset(d);
        tokvox_profile_enable(1);
        for (size_t f = 0; f < frames; f++) {
            size_t got = 0, samples = 0;
            if (tokvox_encoder_push(e, pcm + f * hop, hop, codes, 1, &got) ||
                tokvox_decoder_push(d, codes, got, out, &samples))
                die("streaming push failed");
        }
        tokvox_profile_enable(0);
        *profile = breakdown(s, (double)frames * hop / s->rate);
    }
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
 * From the library's timing hook (tokvox_profile_*): every kernel call and
 * FFT of a real run, summed per kernel and shape, each named after the
 * model's layer it serves (stftcodec's shapes; others keep the kernel's
 * name).  What the hook does not see (the plugins' code between kernels,
 * the quantizer's residual updates, the engine's overlap-add) is the gap
 * between the sum and the measured total. */

/* The model's layer for a kernel at a shape, or NULL. */
static const char *layer_name(const shapes *s, const tokvox_profile_entry *e)
{
    size_t in = 0, out = 0, kernel = 0, groups = 0;
    size_t d = (size_t)s->dim, f = (size_t)s->ffn, lat = (size_t)s->latent;
    size_t bins = (size_t)s->bins;
    if (!strcmp(e->kernel, "fft_forward"))
        return "stft analysis (FFTW)";
    if (!strcmp(e->kernel, "fft_inverse"))
        return "stft synthesis (FFTW)";
    if (!strcmp(e->kernel, "layer_norm"))
        return "layer norm";
    if (!strcmp(e->kernel, "gelu"))
        return "gelu";
    if (!strcmp(e->kernel, "nearest"))
        return "vq nearest";
    if (!strcmp(e->kernel, "conv1d_causal") &&
        sscanf(e->shape, "in=%zu out=%zu kernel=%zu groups=%zu", &in, &out, &kernel, &groups) == 4)
        return groups == d && in == d ? "dwconv"
               : in == bins && out == d ? "enc in_conv"
               : in == lat && out == d  ? "dec in_conv"
                                        : NULL;
    if (sscanf(e->shape, "in=%zu out=%zu", &in, &out) == 2) /* linear, linear_f16 */
        return in == d && out == f              ? "pw1 linear"
               : in == f && out == d            ? "pw2 linear"
               : in == d && out == lat          ? "enc proj"
               : in == d && out == 2 * bins     ? "dec proj"
               : in % bins == 0 && out == d     ? "enc in_conv" /* taps interleaved */
               : in % lat == 0 && out == d      ? "dec in_conv"
                                                : NULL;
    return NULL;
}

static const char *const layer_order[] = {
    "stft analysis (FFTW)", "enc in_conv", "dwconv", "layer norm", "pw1 linear", "gelu",
    "pw2 linear", "enc proj", "vq nearest", "dec in_conv", "dec proj", "stft synthesis (FFTW)",
};

/* The profile of what ran since tokvox_profile_enable(1), per layer, for
 * `audio` seconds of audio. */
static cJSON *breakdown(const shapes *s, double audio)
{
    size_t n = tokvox_profile_count(NULL), order = sizeof layer_order / sizeof layer_order[0];
    cJSON *rows = cJSON_CreateArray();
    /* the known layers in pipeline order, then every unnamed kernel shape */
    for (size_t pass = 0; pass <= order; pass++) {
        for (size_t i = 0; i < n; i++) {
            tokvox_profile_entry e = {.size = sizeof e};
            if (tokvox_profile_get(i, &e))
                die("profile entry vanished");
            const char *name = layer_name(s, &e);
            if (pass < order ? !name || strcmp(name, layer_order[pass]) : name != NULL)
                continue;
            char label[128];
            snprintf(label, sizeof label, "%s %s", e.kernel, e.shape);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "layer", name ? name : label);
            cJSON_AddStringToObject(o, "kernel", e.kernel);
            cJSON_AddStringToObject(o, "shape", e.shape);
            cJSON_AddNumberToObject(o, "calls", (double)e.calls);
            cJSON_AddNumberToObject(o, "us_per_call", 1e6 * e.seconds / (double)e.calls);
            cJSON_AddNumberToObject(o, "ms_per_audio_second", 1e3 * e.seconds / audio);
            cJSON_AddNumberToObject(o, "gmacs_per_audio_second", e.macs / audio * 1e-9);
            if (e.macs > 0)
                cJSON_AddNumberToObject(o, "gflops", 2.0 * e.macs / e.seconds * 1e-9);
            cJSON_AddItemToArray(rows, o);
        }
    }
    return rows;
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
    if (!audio || threads < 1 || reps < 1 || reps > 100) {
        fputs(usage, stderr);
        return 2;
    }
    /* The library reads TOKVOX_KERNELS at its first kernel call. */
    if (strcmp(kernels, "auto") != 0) {
        setenv("TOKVOX_KERNELS", kernels, 1);
        if (strcmp(tokvox_kernels_name(), kernels) != 0)
            die("those kernels are not available on this CPU");
    }
    if (tokvox_set_threads(threads) != threads)
        die("--threads: more than the library allows");

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
    cJSON_AddStringToObject(o, "kernels", tokvox_kernels_name());
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
    cJSON *offline = NULL, *streaming = NULL;
    if (do_breakdown) {
        tokvox_profile_enable(1);
        time_encode(e, pcm, n, codes, cap, &frames);
        time_decode(d, codes, frames, out);
        tokvox_profile_enable(0);
        offline = breakdown(&s, seconds);
    }
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

    cJSON_AddItemToObject(o, "stream", stream(m, &s, pcm, n, stream_seconds,
                                              do_breakdown ? &streaming : NULL));
    if (do_breakdown) {
        cJSON *b = cJSON_AddObjectToObject(o, "breakdown");
        cJSON_AddItemToObject(b, "offline", offline);
        cJSON_AddItemToObject(b, "streaming", streaming);
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
