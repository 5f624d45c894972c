/* tokvox tokenize: a corpus of audio files -> one .npy of speech tokens per
 * utterance, plus manifest.jsonl, stats.json and errors.jsonl (docs/tokenize.md).
 *
 * The input list (files found in folders and manifests) is made absolute,
 * sorted by its path relative to the common root and de-duplicated before
 * anything else, so slicing it with --shard and numbering it are the same on
 * every machine that sees the same tree.  Workers take files in that order
 * from a shared counter; each has its own encoder session over the one
 * shared model, and everything it writes goes through a temporary and a
 * rename, so an interrupted run leaves only complete files behind. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "tokenize.h"
#include "tokvox/io.h"
#include "tokvox/tokens.h"

typedef struct tokenize_options {
    const char *model, *outdir;
    int jobs, codebooks, layout, quiet;
    int json;                     /* --json[=FILE]: the run's summary */
    const char *json_file;        /* NULL: stdout */
    int shard_index, shard_count; /* --shard I/N; 0/1 = everything */
    int shard_out;                /* --shard-out N: utterances per pack, 0 = none */
} tokenize_options;

enum item_state { TODO, DONE, SKIPPED, FAILED };

typedef struct result {
    int state;
    double duration;   /* seconds */
    int source_rate;
    size_t samples;    /* at the model's rate */
    size_t frames;     /* code frames */
    char *error;       /* FAILED: why (malloc'ed) */
    char *line;        /* DONE/SKIPPED: the manifest line (cJSON_free) */
} result;

typedef struct job {
    const tokenize_options *o;
    const tokvox_model *model;
    tokvox_model_info info;
    char model_id[17];
    int k, dtype;
    tk_item *items; /* this slice, in order */
    size_t n;
    result *results;
    tokvox_manifest previous; /* earlier manifests' entries, sorted by output */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t next, running, finished, skipped, failed;
    double encoded_seconds, start;
} job;

/* Set by SIGINT/SIGTERM; workers stop taking files when it is non-zero. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- options ----------------------------------------------------------------- */

static const char tokenize_usage[] =
    "usage: tokvox tokenize INPUT... -o OUTDIR [options]\n"
    "Turn a corpus of audio into speech tokens: one .npy per utterance (int16 when\n"
    "the ids fit, else int32) mirroring the input tree under OUTDIR, plus\n"
    "manifest.jsonl, stats.json and errors.jsonl.  INPUT is an audio file, a folder\n"
    "(searched recursively for wav flac ogg opus mp3 aiff au w64 caf ... files) or a\n"
    "manifest: .jsonl with a \"path\" field, or .tsv/.txt with a path per line\n"
    "(relative paths are relative to the manifest).  Re-running skips complete\n"
    "outputs; Ctrl-C stops after the current files and exits 130.\n"
    "  -o, --output OUTDIR   where the tokens go (created if needed)\n"
    "  -j, --jobs N          worker threads (default: number of cores)\n"
    "  -n, --codebooks N     codebooks per frame (default: all)\n"
    "  -l, --layout L        codebooks ([frames, K], default), flat (1-D, codebook k's\n"
    "                        ids offset by k*codebook_size) or delay (MusicGen delay\n"
    "                        pattern, [frames+K-1, K], pad id = codebook_size)\n"
    "  -m, --model M         model file or shipped name (default tokvox-16k,\n"
    "                        55 ms; tokvox-16k-ld: 40 ms)\n"
    "      --shard I/N       only the I-th (0-based) of N slices of the sorted input list\n"
    "      --shard-out N     also pack N utterances per shard-NNNNN.npy + .index.jsonl\n"
    "  -q, --quiet           no progress and no summary on stderr\n"
    "      --json[=FILE]     the run's summary (stats.json's fields) as one JSON object\n"
    "                        on stdout (or in FILE)\n"
    "Exit status: 0 done, 3 done but some files are listed in errors.jsonl,\n"
    "1 could not start, 130 interrupted.\n";

static const struct option tokenize_options_table[] = {
    {"output", required_argument, NULL, 'o'}, {"jobs", required_argument, NULL, 'j'},
    {"codebooks", required_argument, NULL, 'n'}, {"layout", required_argument, NULL, 'l'},
    {"model", required_argument, NULL, 'm'},  {"shard", required_argument, NULL, 'S'},
    {"shard-out", required_argument, NULL, 'P'}, {"quiet", no_argument, NULL, 'q'},
    {"json", optional_argument, NULL, 'J'},
    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
};

static int parse_shard(const char *text, tokenize_options *o)
{
    int used = 0;
    if (sscanf(text, "%d/%d%n", &o->shard_index, &o->shard_count, &used) != 2 ||
        text[used] || o->shard_count < 1 || o->shard_index < 0 ||
        o->shard_index >= o->shard_count)
        return app_fail("tokenize", "--shard wants I/N with 0 <= I < N, not '%s'", text);
    return 0;
}

/* 0 to go on, 1 on a usage error, 2 after --help. */
static int parse_tokenize(int argc, char **argv, tokenize_options *o)
{
    memset(o, 0, sizeof *o);
    o->shard_count = 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->jobs = cores > 0 ? (int)(cores < 256 ? cores : 256) : 1;
    optind = 1;
    opterr = 0; /* getopt's own two-line complaint replaced by app_option_error */
    for (int c; (c = getopt_long(argc, argv, ":o:j:n:l:m:qh", tokenize_options_table, NULL)) >= 0;) {
        switch (c) {
        case 'o': o->outdir = optarg; break;
        case 'm': o->model = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'J':
            o->json = 1;
            o->json_file = optarg;
            break;
        case 'j':
            if ((o->jobs = app_parse_int(optarg, 1, 256)) < 0)
                return app_fail("tokenize", "--jobs wants a number from 1 to 256, not '%s'",
                                optarg);
            break;
        case 'n':
            if ((o->codebooks = app_parse_int(optarg, 1, 64)) < 0)
                return app_fail("tokenize", "--codebooks wants a number from 1 to 64, not '%s'",
                                optarg);
            break;
        case 'l':
            if ((o->layout = tokvox_layout_parse(optarg)) < 0)
                return app_fail("tokenize", "--layout wants codebooks, flat or delay, not '%s'",
                                optarg);
            break;
        case 'S':
            if (parse_shard(optarg, o))
                return 1;
            break;
        case 'P':
            if ((o->shard_out = app_parse_int(optarg, 1, 100000000)) < 0)
                return app_fail("tokenize", "--shard-out wants a number of utterances, not '%s'",
                                optarg);
            break;
        case 'h': fputs(tokenize_usage, stdout); return 2;
        default: return app_option_error("tokenize", c, argv);
        }
    }
    if (!o->outdir)
        return app_fail("tokenize", "wants -o OUTDIR (see 'tokvox tokenize --help')");
    if (optind >= argc)
        return app_fail("tokenize", "wants at least one input (see 'tokvox tokenize --help')");
    for (int i = optind; o->json && i < argc; i++)
        if (app_check_json("tokenize", o->json_file, argv[i], NULL))
            return 1;
    return 0;
}

/* ---- one file ---------------------------------------------------------------- */

/* Samples read, coded and written per step: memory per worker does not
 * grow with the file (an hour of audio takes what a second takes). */
enum { STEP_FRAMES = 64 };

/* The manifest line of an item, as one line of JSON. */
static char *manifest_line(const job *jb, const tk_item *it, const result *r)
{
    int ndim;
    uint64_t shape[2];
    tokvox_layout_shape(jb->o->layout, r->frames, jb->k, &ndim, shape);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "input", it->input);
    cJSON_AddStringToObject(e, "output", it->output);
    cJSON_AddNumberToObject(e, "duration", r->duration);
    cJSON_AddNumberToObject(e, "sample_rate", r->source_rate);
    cJSON_AddNumberToObject(e, "samples", (double)r->samples);
    cJSON_AddNumberToObject(e, "frames", (double)r->frames);
    cJSON_AddNumberToObject(e, "codebooks", jb->k);
    cJSON_AddNumberToObject(e, "codebook_size", jb->info.codebook_size);
    cJSON_AddStringToObject(e, "layout", tokvox_layout_name(jb->o->layout));
    cJSON *s = cJSON_AddArrayToObject(e, "shape");
    for (int d = 0; d < ndim; d++)
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)shape[d]));
    cJSON_AddStringToObject(e, "dtype", jb->dtype == TOKVOX_NPY_INT16 ? "<i2" : "<i4");
    cJSON_AddStringToObject(e, "model", jb->info.name);
    cJSON_AddStringToObject(e, "model_id", jb->model_id);
    char *line = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    if (!line) {
        fputs("tokvox: out of memory\n", stderr);
        exit(1);
    }
    return line;
}

/* The code frames an existing output holds if it is complete and shaped the
 * way this run would write it, else 0 (-> encode it again).  The header
 * reader checks the declared shape against the file's size, so a file cut
 * short by a crash is never taken for complete. */
static size_t complete_frames(const job *jb, const char *path)
{
    tokvox_npy_info h;
    char detail[256];
    if (access(path, F_OK) != 0 || tokvox_npy_read_header(path, &h, detail, sizeof detail) ||
        h.dtype != jb->dtype)
        return 0;
    uint64_t k = (uint64_t)jb->k;
    switch (jb->o->layout) {
    case TOKVOX_LAYOUT_FLAT: return h.ndim == 1 && h.count % k == 0 ? (size_t)(h.count / k) : 0;
    case TOKVOX_LAYOUT_DELAY:
        return h.ndim == 2 && h.shape[1] == k && h.shape[0] >= k ? (size_t)(h.shape[0] - k + 1)
                                                                : 0;
    default: return h.ndim == 2 && h.shape[1] == k ? (size_t)h.shape[0] : 0;
    }
}

/* An earlier entry describes the output this run would write: the same
 * model, layout and codebooks, and the frames the file holds. */
static int same_settings(const job *jb, const tokvox_manifest_entry *e, size_t frames)
{
    return !strcmp(e->meta.model_id, jb->model_id) && e->meta.layout == jb->o->layout &&
           e->meta.codebooks == jb->k && e->frames == (int64_t)frames;
}

/* The length and rates an earlier entry recorded, when it has them all
 * (they are all a rebuilt entry needs besides this run's settings). */
static int take_recorded(const tokvox_manifest_entry *e, result *r)
{
    const tokvox_token_meta *m = &e->meta;
    if (m->samples < 0 || !m->sample_rate || !(m->duration > 0))
        return 0;
    r->samples = (size_t)m->samples;
    r->source_rate = m->sample_rate;
    r->duration = m->duration;
    return 1;
}

/* Opens the audio of an item at the model's rate, or NULL with detail set. */
static tokvox_audio_reader *open_audio(const job *jb, const tk_item *it, char *detail, size_t ds)
{
    return tokvox_audio_reader_open(it->input, jb->info.sample_rate, NULL, detail, ds);
}

/* The item's length and rates into r, once its reader has reached the end
 * (n samples at the model rate). */
static int take_length(const tk_item *it, const tokvox_audio_reader *a, size_t n, result *r,
                       char *detail, size_t ds)
{
    tokvox_audio_source src;
    tokvox_audio_reader_source(a, &src);
    if (n == 0) {
        snprintf(detail, ds, "%s: no audio samples", it->input);
        return TOKVOX_ERR_AUDIO;
    }
    r->samples = n;
    r->source_rate = src.rate;
    r->duration = (double)src.frames / src.rate;
    return TOKVOX_OK;
}

/* Reads the audio through, without encoding it, for the length and rates
 * of an entry a crash lost: 1 when that length gives the frames the output
 * holds. */
static int measure_audio(const job *jb, const tk_item *it, result *r)
{
    char detail[1024];
    tokvox_audio_reader *a = open_audio(jb, it, detail, sizeof detail);
    float *pcm = malloc(sizeof *pcm * STEP_FRAMES * (size_t)jb->info.hop);
    size_t n = 0, got = 0;
    int err = !a || !pcm;
    while (!err && !(err = tokvox_audio_reader_read(a, pcm, STEP_FRAMES * (size_t)jb->info.hop,
                                                    &got, detail, sizeof detail)) && got)
        n += got;
    int ok = !err && !take_length(it, a, n, r, detail, sizeof detail) &&
             tokvox_frames_for_samples(jb->model, r->samples) == r->frames;
    tokvox_audio_reader_close(a);
    free(pcm);
    return ok;
}

/* An output that is already complete: skipped, with its manifest entry
 * rebuilt from an earlier manifest's, or from the audio's length when a
 * crash lost that manifest. */
static int try_skip(job *jb, const tk_item *it, const char *path, result *r)
{
    size_t frames = complete_frames(jb, path);
    if (!frames)
        return 0;
    const tokvox_manifest_entry *prev = tokvox_manifest_find(&jb->previous, it->output);
    if (prev && !same_settings(jb, prev, frames))
        return 0; /* another model, layout or codebook count: redo */
    r->frames = frames;
    int recorded = prev && take_recorded(prev, r);
    if (!recorded && !measure_audio(jb, it, r))
        return 0; /* unreadable, or not the audio of these tokens: redo */
    r->line = manifest_line(jb, it, r);
    r->state = SKIPPED;
    return 1;
}

/* mkdir -p for the folder of path (a race with another worker is fine). */
static int make_parents(const char *path, char *detail, size_t ds)
{
    char *dir = app_strdup(path);
    int rc = 0;
    for (char *p = dir + 1; *p && !rc; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            char eb[128]; /* strerror is not thread-safe; the XSI strerror_r is */
            if (strerror_r(errno, eb, sizeof eb))
                snprintf(eb, sizeof eb, "error %d", errno);
            snprintf(detail, ds, "%s: cannot make folder (%s)", dir, eb);
            rc = -1;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

/* A worker's buffers for one step. */
typedef struct step_buffers {
    float *pcm;      /* STEP_FRAMES hops */
    uint16_t *codes; /* STEP_FRAMES + 2 frames: a step's, or the flush's */
    size_t cap;      /* frames codes holds */
} step_buffers;

static void step_buffers_free(step_buffers *b)
{
    free(b->pcm);
    free(b->codes);
    memset(b, 0, sizeof *b);
}

static int step_buffers_init(step_buffers *b, const job *jb)
{
    b->cap = STEP_FRAMES + 2;
    b->pcm = malloc(sizeof *b->pcm * STEP_FRAMES * (size_t)jb->info.hop);
    b->codes = malloc(sizeof *b->codes * b->cap * (size_t)jb->k);
    if (b->pcm && b->codes)
        return TOKVOX_OK;
    step_buffers_free(b);
    return TOKVOX_ERR_NO_MEMORY;
}

/* A failure of the token writer of path: "path: why" into detail. */
static int token_failure(int err, const char *path, const char *why, char *detail, size_t ds)
{
    snprintf(detail, ds, "%s: %s", path, why);
    return err;
}

/* The audio a step at a time through the encoder into the token writer of
 * path; r gets the length.  detail says why on failure. */
static int encode_steps(job *jb, tokvox_encoder *enc, const tk_item *it, tokvox_audio_reader *a,
                        tokvox_token_writer *tw, const char *path, step_buffers *b, result *r,
                        char *detail, size_t ds)
{
    char why[512] = "";
    size_t chunk = STEP_FRAMES * (size_t)jb->info.hop, n = 0, got = 0, frames = 0;
    tokvox_encoder_reset(enc);
    int err;
    for (int last = 0; !last;) {
        if ((err = tokvox_audio_reader_read(a, b->pcm, chunk, &got, detail, ds)))
            return err;
        n += got;
        last = got == 0;
        err = last ? tokvox_encoder_flush(enc, b->codes, b->cap, &frames)
                   : tokvox_encoder_push(enc, b->pcm, got, b->codes, b->cap, &frames);
        if (err) {
            snprintf(detail, ds, "%s: %s", it->input, tokvox_strerror(err));
            return err;
        }
        if ((err = tokvox_token_writer_write(tw, b->codes, frames, why, sizeof why)))
            return token_failure(err, path, why, detail, ds);
    }
    return take_length(it, a, n, r, detail, ds);
}

/* Opens the item's audio and a temporary beside its output, then streams;
 * the output appears (renamed) only when complete. */
static int encode_to(job *jb, tokvox_encoder *enc, const tk_item *it, const char *path,
                     step_buffers *b, result *r, char *detail, size_t ds)
{
    int err = TOKVOX_ERR_IO;
    tokvox_audio_reader *a = open_audio(jb, it, detail, ds);
    if (!a || make_parents(path, detail, ds)) {
        tokvox_audio_reader_close(a);
        return err;
    }
    char why[512] = "";
    tokvox_atomic_file *f = tokvox_atomic_open(path, &err, detail, ds);
    tokvox_token_writer *tw =
        f ? tokvox_token_writer_open(tokvox_atomic_stream(f), jb->o->layout, jb->k,
                                     jb->info.codebook_size, jb->dtype, &err, why, sizeof why)
          : NULL;
    if (f && !tw)
        token_failure(err, path, why, detail, ds);
    uint64_t frames = 0;
    if (tw && !(err = encode_steps(jb, enc, it, a, tw, path, b, r, detail, ds))) {
        if ((err = tokvox_token_writer_finish(tw, &frames, why, sizeof why)))
            token_failure(err, path, why, detail, ds);
        tw = NULL;
        r->frames = (size_t)frames;
        if (!err && frames != tokvox_frames_for_samples(jb->model, r->samples)) {
            snprintf(detail, ds, "%s: %s", it->input, tokvox_strerror(TOKVOX_ERR_STATE));
            err = TOKVOX_ERR_STATE;
        }
    }
    tokvox_token_writer_destroy(tw);
    if (f && err)
        tokvox_atomic_abort(f);
    else if (f)
        err = tokvox_atomic_commit(f, detail, ds);
    if (!err) {
        tokvox_audio_source src;
        tokvox_audio_reader_source(a, &src);
        app_warn_cleaned("tokenize", it->input, &src);
    }
    tokvox_audio_reader_close(a);
    return err;
}

static void encode_item(job *jb, tokvox_encoder *enc, step_buffers *b, const tk_item *it,
                        const char *path, result *r)
{
    char detail[1024] = "";
    int err = encode_to(jb, enc, it, path, b, r, detail, sizeof detail);
    if (err) {
        r->state = FAILED;
        r->error = app_strdup(detail[0] ? detail : tokvox_strerror(err));
        return;
    }
    r->state = DONE;
    r->line = manifest_line(jb, it, r);
}

static void process_item(job *jb, tokvox_encoder *enc, step_buffers *b, size_t idx)
{
    const tk_item *it = &jb->items[idx];
    result *r = &jb->results[idx];
    if (it->error) {
        r->state = FAILED;
        r->error = app_strdup(it->error);
        return;
    }
    char *path = app_join_path(jb->o->outdir, it->output);
    if (!try_skip(jb, it, path, r))
        encode_item(jb, enc, b, it, path, r);
    free(path);
}

/* ---- workers and progress ------------------------------------------------------ */

typedef struct worker {
    job *jb;
    tokvox_encoder *enc;
    step_buffers buffers;
    pthread_t thread;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    job *jb = w->jb;
    for (;;) {
        pthread_mutex_lock(&jb->lock);
        size_t idx = stop_signal ? jb->n : jb->next;
        if (idx < jb->n)
            jb->next++;
        pthread_mutex_unlock(&jb->lock);
        if (idx >= jb->n)
            break;
        process_item(jb, w->enc, &w->buffers, idx);
        const result *r = &jb->results[idx];
        pthread_mutex_lock(&jb->lock);
        jb->finished++;
        jb->skipped += r->state == SKIPPED;
        jb->failed += r->state == FAILED;
        if (r->state == DONE)
            jb->encoded_seconds += r->duration;
        pthread_mutex_unlock(&jb->lock);
    }
    pthread_mutex_lock(&jb->lock);
    jb->running--;
    pthread_cond_signal(&jb->cond);
    pthread_mutex_unlock(&jb->lock);
    return NULL;
}

static void format_eta(double s, char *buf, size_t size)
{
    if (s < 0 || s > 1e8)
        snprintf(buf, size, "--");
    else if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* Called with the lock held. */
static void print_progress(const job *jb, int tty)
{
    double elapsed = now_seconds() - jb->start;
    size_t worked = jb->finished - jb->skipped;
    double per_file = worked ? elapsed / (double)worked : -1.0;
    char eta[32];
    format_eta(per_file * (double)(jb->n - jb->finished), eta, sizeof eta);
    fprintf(stderr, "%stokenize: %zu/%zu files, %.1f min of audio, %.1fx real time, %zu error%s, "
            "ETA %s%s", tty ? "\r" : "", jb->finished, jb->n, jb->encoded_seconds / 60.0,
            elapsed > 0 ? jb->encoded_seconds / elapsed : 0.0, jb->failed,
            jb->failed == 1 ? "" : "s", eta, tty ? "\033[K" : "\n");
}

/* Waits for the workers, printing progress: a line redrawn with a carriage
 * return on a terminal, a plain line every 10 s otherwise. */
static void wait_workers(job *jb)
{
    int tty = !jb->o->quiet && isatty(STDERR_FILENO);
    double period = tty ? 0.5 : 10.0, last = now_seconds();
    int told_stop = 0;
    pthread_mutex_lock(&jb->lock);
    while (jb->running) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&jb->cond, &jb->lock, &until);
        if (stop_signal && !told_stop && !jb->o->quiet) {
            fprintf(stderr, "%stokenize: stopping after the files in progress (again to kill)\n",
                    tty ? "\n" : "");
            told_stop = 1;
        }
        if (!jb->o->quiet && now_seconds() - last >= period) {
            print_progress(jb, tty);
            last = now_seconds();
        }
    }
    pthread_mutex_unlock(&jb->lock);
    if (tty)
        fputc('\n', stderr);
}

static int run_workers(job *jb)
{
    int n = jb->o->jobs < (int)jb->n ? jb->o->jobs : (int)jb->n;
    if (n < 1)
        return 0;
    worker *w = calloc((size_t)n, sizeof *w);
    int started = 0, err = 0;
    for (; w && started < n; started++) {
        w[started].jb = jb;
        w[started].enc = tokvox_encoder_create(jb->model, jb->k, &err);
        if (w[started].enc && (err = step_buffers_init(&w[started].buffers, jb))) {
            tokvox_encoder_destroy(w[started].enc);
            w[started].enc = NULL;
        }
        if (!w[started].enc)
            break;
        pthread_mutex_lock(&jb->lock);
        jb->running++;
        pthread_mutex_unlock(&jb->lock);
        if (pthread_create(&w[started].thread, NULL, worker_main, &w[started])) {
            tokvox_encoder_destroy(w[started].enc);
            step_buffers_free(&w[started].buffers);
            pthread_mutex_lock(&jb->lock);
            jb->running--;
            pthread_mutex_unlock(&jb->lock);
            err = TOKVOX_ERR_NO_MEMORY;
            break;
        }
    }
    if (started)
        wait_workers(jb);
    for (int i = 0; i < started; i++) {
        pthread_join(w[i].thread, NULL);
        tokvox_encoder_destroy(w[i].enc);
        step_buffers_free(&w[i].buffers);
    }
    free(w);
    if (!started)
        return app_fail("tokenize", "cannot start a worker: %s", tokvox_strerror(err));
    return 0;
}

/* ---- manifest, errors, stats ----------------------------------------------------- */

/* OUTDIR/base.ext, or OUTDIR/base.I-of-N.ext for a --shard run, so slices
 * writing into one folder never replace each other's files. */
static char *slice_path(const tokenize_options *o, const char *base, const char *ext)
{
    char name[128];
    if (o->shard_count > 1)
        snprintf(name, sizeof name, "%s.%d-of-%d%s", base, o->shard_index, o->shard_count, ext);
    else
        snprintf(name, sizeof name, "%s%s", base, ext);
    return app_join_path(o->outdir, name);
}

/* An output file written through a temporary, or NULL after printing why
 * not. */
static tokvox_atomic_file *open_output(const char *path)
{
    char detail[1024] = "";
    int err;
    tokvox_atomic_file *f = tokvox_atomic_open(path, &err, detail, sizeof detail);
    if (!f)
        app_fail("tokenize", "%s", detail);
    return f;
}

static int commit_output(tokvox_atomic_file *f)
{
    char detail[1024] = "";
    if (tokvox_atomic_commit(f, detail, sizeof detail))
        return app_fail("tokenize", "%s", detail);
    return 0;
}

/* Writes one JSON document per line (or one pretty one), atomically. */
static int write_json_file(const char *path, cJSON *const *docs, size_t n, int pretty)
{
    tokvox_atomic_file *f = open_output(path);
    if (!f)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char *text = pretty ? cJSON_Print(docs[i]) : cJSON_PrintUnformatted(docs[i]);
        if (text)
            fprintf(tokvox_atomic_stream(f), "%s\n", text);
        free(text);
    }
    return commit_output(f);
}

static int write_manifest_file(const char *path, const tk_entry *entries, size_t n)
{
    tokvox_atomic_file *f = open_output(path);
    if (!f)
        return 1;
    for (size_t i = 0; i < n; i++)
        fprintf(tokvox_atomic_stream(f), "%s\n", entries[i].json);
    return commit_output(f);
}

static int by_output(const void *a, const void *b)
{
    return strcmp(((const tk_entry *)a)->output, ((const tk_entry *)b)->output);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The outputs this run has the last word on (redone, skipped or failed
 * now), sorted; malloc'ed. */
static const char **touched_outputs(const job *jb, size_t *n)
{
    const char **touched = malloc(sizeof *touched * (jb->n + 1));
    if (!touched)
        exit(1);
    *n = 0;
    for (size_t i = 0; i < jb->n; i++)
        if (jb->results[i].state != TODO)
            touched[(*n)++] = jb->items[i].output;
    qsort(touched, *n, sizeof *touched, by_string);
    return touched;
}

/* This run's entries plus those of the same manifest file from earlier runs
 * that this run did not touch, sorted by output.  The entries point into
 * results and into *old (which the caller frees). */
static tk_entry *merged_entries(const job *jb, const char *path, tokvox_manifest *old, size_t *n)
{
    *old = (tokvox_manifest){.keep_lines = 1};
    tk_read_manifest(old, path);
    tokvox_manifest_sort(old);
    size_t n_touched = 0;
    const char **touched = touched_outputs(jb, &n_touched);
    tk_entry *out = malloc(sizeof *out * (jb->n + old->n + 1));
    if (!out)
        exit(1);
    *n = 0;
    for (size_t i = 0; i < jb->n; i++) {
        const result *r = &jb->results[i];
        if (r->line)
            out[(*n)++] = (tk_entry){jb->items[i].output, jb->items[i].input, r->line, r->duration};
    }
    for (size_t i = 0; i < old->n; i++) {
        const tokvox_manifest_entry *e = &old->entries[i];
        if (i + 1 < old->n && !strcmp(e->output, old->entries[i + 1].output))
            continue; /* a repeat: the line read last counts, as for resume */
        if (bsearch(&e->output, touched, n_touched, sizeof *touched, by_string))
            continue; /* this run's word counts */
        out[(*n)++] = (tk_entry){e->output, e->input ? e->input : "", e->line, e->meta.duration};
    }
    free(touched);
    qsort(out, *n, sizeof *out, by_output);
    return out;
}

static int write_manifest(const job *jb, tk_entry **entries, size_t *n, tokvox_manifest *old)
{
    char *path = slice_path(jb->o, "manifest", ".jsonl");
    *entries = merged_entries(jb, path, old, n);
    int rc = write_manifest_file(path, *entries, *n);
    free(path);
    return rc;
}

static cJSON *error_line(const char *path, const char *message)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "path", path);
    cJSON_AddStringToObject(e, "error", message);
    return e;
}

/* This run's failures; problems that are not one file (a manifest line, a
 * folder) are reported by slice 0 only, so a sharded job lists them once. */
static int write_errors(const job *jb, const tk_list *list, size_t *count)
{
    size_t extra = jb->o->shard_index == 0 ? list->n_errors : 0, n = 0;
    cJSON **lines = malloc(sizeof *lines * (jb->n + extra + 1));
    if (!lines)
        exit(1);
    for (size_t i = 0; i < extra; i++)
        lines[n++] = error_line(list->errors[i].path, list->errors[i].message);
    for (size_t i = 0; i < jb->n; i++)
        if (jb->results[i].state == FAILED)
            lines[n++] = error_line(jb->items[i].input, jb->results[i].error);
    char *path = slice_path(jb->o, "errors", ".jsonl");
    int rc = write_json_file(path, lines, n, 0);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(lines[i]);
    free(lines);
    free(path);
    *count = n;
    return rc;
}

/* stats.json's object; tokenize --json prints it too. */
static cJSON *stats_json(const job *jb, size_t errors, double wall, double total_seconds)
{
    const tokenize_options *o = jb->o;
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "files", (double)jb->n);
    cJSON_AddNumberToObject(s, "encoded", (double)(jb->finished - jb->skipped - jb->failed));
    cJSON_AddNumberToObject(s, "skipped", (double)jb->skipped);
    cJSON_AddNumberToObject(s, "errors", (double)errors);
    cJSON_AddNumberToObject(s, "audio_seconds", total_seconds);
    cJSON_AddNumberToObject(s, "encoded_seconds", jb->encoded_seconds);
    cJSON_AddNumberToObject(s, "wall_seconds", wall);
    cJSON_AddNumberToObject(s, "x_real_time", wall > 0 ? jb->encoded_seconds / wall : 0.0);
    cJSON_AddNumberToObject(s, "jobs", o->jobs);
    cJSON_AddBoolToObject(s, "interrupted", stop_signal != 0);
    char shard[32];
    snprintf(shard, sizeof shard, "%d/%d", o->shard_index, o->shard_count);
    cJSON_AddStringToObject(s, "shard", shard);
    cJSON_AddStringToObject(s, "layout", tokvox_layout_name(o->layout));
    cJSON_AddNumberToObject(s, "codebooks", jb->k);
    cJSON_AddNumberToObject(s, "codebook_size", jb->info.codebook_size);
    cJSON_AddStringToObject(s, "dtype", jb->dtype == TOKVOX_NPY_INT16 ? "<i2" : "<i4");
    cJSON_AddStringToObject(s, "model", jb->info.name);
    cJSON_AddStringToObject(s, "model_id", jb->model_id);
    cJSON_AddNumberToObject(s, "frame_rate", (double)jb->info.sample_rate / jb->info.hop);
    return s;
}

static int write_stats(const job *jb, cJSON *s)
{
    char *path = slice_path(jb->o, "stats", ".json");
    int rc = write_json_file(path, &s, 1, 1);
    free(path);
    return rc;
}

/* --json: what the codec commands' summaries start with, then stats.json's
 * fields. */
static int print_summary_json(const job *jb, const cJSON *stats)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "tokenize");
    cJSON_AddStringToObject(j, "output", jb->o->outdir);
    for (const cJSON *it = stats->child; it; it = it->next)
        cJSON_AddItemToObject(j, it->string, cJSON_Duplicate(it, 1));
    return app_write_json("tokenize", j, jb->o->json_file);
}

/* ---- the command ------------------------------------------------------------------ */

static int make_folder(const char *dir)
{
    char detail[1024];
    char *probe = app_join_path(dir, "x");
    int rc = make_parents(probe, detail, sizeof detail);
    free(probe);
    struct stat st;
    if (rc || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rc ? app_fail("tokenize", "%s", detail) /* detail names the folder */
                  : app_fail("tokenize", "%s: not a folder", dir);
    return 0;
}

/* The items of slice I of N: file i goes to slice i % N. */
static void take_slice(job *jb, const tk_list *list)
{
    const tokenize_options *o = jb->o;
    jb->items = malloc(sizeof *jb->items * (list->n_items + 1));
    jb->results = calloc(list->n_items + 1, sizeof *jb->results);
    if (!jb->items || !jb->results)
        exit(1);
    for (size_t i = (size_t)o->shard_index; i < list->n_items; i += (size_t)o->shard_count)
        jb->items[jb->n++] = list->items[i];
}

static int setup_job(job *jb, const tokenize_options *o, const tokvox_model *m)
{
    memset(jb, 0, sizeof *jb);
    jb->o = o;
    jb->model = m;
    jb->info.size = sizeof jb->info;
    tokvox_model_get_info(m, &jb->info);
    snprintf(jb->model_id, sizeof jb->model_id, "%016llx", (unsigned long long)jb->info.model_id);
    jb->k = o->codebooks ? o->codebooks : jb->info.num_codebooks;
    if (jb->k > jb->info.num_codebooks)
        return app_fail("tokenize", "--codebooks %d: the model has %d codebooks", jb->k,
                        jb->info.num_codebooks);
    jb->dtype = tokvox_layout_dtype(o->layout, jb->k, jb->info.codebook_size);
    pthread_mutex_init(&jb->lock, NULL);
    pthread_cond_init(&jb->cond, NULL);
    return 0;
}

static void free_job(job *jb)
{
    for (size_t i = 0; i < jb->n; i++) {
        free(jb->results[i].error);
        cJSON_free(jb->results[i].line);
    }
    free(jb->items); /* shallow copies of the list's */
    free(jb->results);
    tokvox_manifest_free(&jb->previous);
    pthread_mutex_destroy(&jb->lock);
    pthread_cond_destroy(&jb->cond);
}

/* Manifest, errors, stats and packs; *stats gets stats.json's object. */
static int write_outputs(job *jb, const tk_list *list, double wall, size_t *errors,
                         cJSON **stats)
{
    tk_entry *entries = NULL;
    tokvox_manifest old;
    size_t n = 0;
    int rc = write_manifest(jb, &entries, &n, &old);
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += entries[i].duration;
    *errors = 0;
    if (!rc)
        rc = write_errors(jb, list, errors);
    *stats = stats_json(jb, *errors, wall, total);
    if (!rc)
        rc = write_stats(jb, *stats);
    if (!rc && jb->o->shard_out && !stop_signal) {
        char suffix[48] = "";
        if (jb->o->shard_count > 1)
            snprintf(suffix, sizeof suffix, ".%d-of-%d", jb->o->shard_index, jb->o->shard_count);
        rc = tk_pack(jb->o->outdir, suffix, entries, n, (size_t)jb->o->shard_out, jb->dtype);
    }
    free(entries);
    tokvox_manifest_free(&old);
    return rc;
}

static void summary(const job *jb, size_t errors, double wall)
{
    size_t encoded = jb->finished - jb->skipped - jb->failed;
    fprintf(stderr, "tokenize: %zu files: %zu encoded, %zu already done, %zu error%s%s; "
            "%.1f min of audio in %.1f s = %.1fx real time%s\n", jb->n, encoded, jb->skipped,
            errors, errors == 1 ? "" : "s", errors ? " (see errors.jsonl)" : "",
            jb->encoded_seconds / 60.0, wall, wall > 0 ? jb->encoded_seconds / wall : 0.0,
            stop_signal ? "; interrupted" : "");
}

/* SIGINT/SIGTERM set stop_signal once; SA_RESETHAND makes a second one
 * kill at once, for a user who does not want to wait. */
static void catch_signals(struct sigaction old[2])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_options o;
    int rc = parse_tokenize(argc, argv, &o);
    if (rc)
        return rc == 2 ? 0 : rc;
    tk_list list;
    if (tk_list_build(&list, argv + optind, argc - optind)) {
        tk_list_free(&list);
        return 1;
    }
    if (!list.n_items) {
        /* a damaged or empty manifest is the usual cause: name it */
        rc = list.n_errors ? app_fail("tokenize", "%s: %s (no audio files in the inputs)",
                                      list.errors[0].path, list.errors[0].message)
                           : app_fail("tokenize", "no audio files in the inputs (extensions: see --help)");
        tk_list_free(&list);
        return rc;
    }
    if (make_folder(o.outdir)) {
        tk_list_free(&list);
        return 1;
    }
    tokvox_model *m = app_load_model("tokenize", o.model);
    job jb;
    if (!m || setup_job(&jb, &o, m)) {
        tk_list_free(&list);
        tokvox_model_destroy(m);
        return 1;
    }
    take_slice(&jb, &list);
    tk_load_manifests(o.outdir, &jb.previous);
    struct sigaction old[2];
    catch_signals(old);
    jb.start = now_seconds();
    rc = run_workers(&jb);
    double wall = now_seconds() - jb.start;
    size_t errors = 0;
    cJSON *stats = NULL;
    if (!rc)
        rc = write_outputs(&jb, &list, wall, &errors, &stats);
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
    if (!rc && !o.quiet)
        summary(&jb, errors, wall);
    if (!rc && o.json)
        rc = print_summary_json(&jb, stats);
    cJSON_Delete(stats);
    free_job(&jb);
    tk_list_free(&list);
    tokvox_model_destroy(m);
    if (stop_signal)
        return 130;
    return rc ? rc : errors ? 3 : 0;
}
