/* tokvox encode / decode / transcode: each streams through the engine a
 * block at a time, so memory does not grow with the input and a pipe gets
 * output while its input still arrives. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "tokvox/bitstream.h"
#include "tokvox/io.h"

typedef struct codec_options {
    const char *model;
    int codebooks;   /* 0 = all */
    double kbps;     /* --bitrate, 0 = not given; becomes codebooks once the model is known */
    int rate;        /* output rate, 0 = default */
    int quiet;
    int force;       /* --force: replace an existing output of another kind */
    int raw;         /* --raw: headerless PCM in (encode, transcode) or out (decode, transcode) */
    tokvox_raw_format raw_format;
    int json;        /* --json[=FILE]: a summary object */
    const char *json_file; /* NULL: stdout */
    int no_postfilter; /* --no-postfilter: the decoder's raw output (decode, transcode) */
    const char *in, *out;
} codec_options;

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"codebooks", required_argument, NULL, 'n'},
    {"bitrate", required_argument, NULL, 'b'},
    {"rate", required_argument, NULL, 'r'},
    {"quiet", no_argument, NULL, 'q'},
    {"force", no_argument, NULL, 'f'},
    {"threads", required_argument, NULL, 't'},
    {"raw", no_argument, NULL, 'R'},
    {"json", optional_argument, NULL, 'J'},
    {"raw-rate", required_argument, NULL, 'A'},
    {"raw-chan", required_argument, NULL, 'C'},
    {"raw-format", required_argument, NULL, 'F'},
    {"no-postfilter", no_argument, NULL, 'P'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns 0 to go on, 1 on a usage error, 2 after --help, 3 after a refused output
 * (APP_EXIT_REFUSED is the command's exit status then). */
static int parse(const char *cmd, const char *usage, int argc, char **argv, codec_options *o,
                 app_output_kind kind)
{
    memset(o, 0, sizeof *o);
    o->raw_format = (tokvox_raw_format){16000, 1, TOKVOX_RAW_S16LE};
    int raw_detail = 0; /* a --raw-* option was given */
    optind = 1;
    opterr = 0; /* getopt's own two-line complaint replaced by one line below */
    for (int c; (c = getopt_long(argc, argv, ":m:n:b:r:qft:h", long_options, NULL)) != -1;) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'n':
            if ((o->codebooks = app_parse_int(optarg, 1, 64)) < 0)
                return app_fail(cmd, "--codebooks wants a number from 1 to 64, not '%s'", optarg);
            break;
        case 'b':
            if (app_parse_kbps(optarg, &o->kbps))
                return app_fail(cmd, "--bitrate wants kbps (e.g. 1 or 2.5), not '%s'", optarg);
            break;
        case 'r':
            if ((o->rate = app_parse_int(optarg, 1000, 384000)) < 0)
                return app_fail(cmd, "--rate wants a rate in Hz (1000-384000), not '%s'", optarg);
            break;
        case 'q': o->quiet = 1; break;
        case 'f': o->force = 1; break;
        case 't':
            if (app_parse_threads(cmd, optarg))
                return 1;
            break;
        case 'R': o->raw = 1; break;
        case 'J':
            o->json = 1;
            o->json_file = optarg;
            break;
        case 'A':
            raw_detail = 1;
            if ((o->raw_format.rate = app_parse_int(optarg, 1000, 384000)) < 0)
                return app_fail(cmd, "--raw-rate wants a rate in Hz (1000-384000), not '%s'", optarg);
            break;
        case 'C':
            raw_detail = 1;
            if ((o->raw_format.channels = app_parse_int(optarg, 1, 64)) < 0)
                return app_fail(cmd, "--raw-chan wants a channel count (1-64), not '%s'", optarg);
            break;
        case 'F':
            raw_detail = 1;
            if (tokvox_raw_encoding_parse(optarg, &o->raw_format.encoding))
                return app_fail(cmd, "--raw-format wants s16le, s24le, s32le, f32le or u8, not '%s'",
                                optarg);
            break;
        case 'P': o->no_postfilter = 1; break;
        case 'h': fputs(usage, stdout); return 2;
        default: return app_option_error(cmd, c, argv);
        }
    }
    /* Nothing accepted and ignored: each command takes only what it uses. */
    if (o->no_postfilter && kind == APP_OUTPUT_TVX)
        return app_fail(cmd, "--no-postfilter: encode writes codes, which decode the same "
                             "either way (decode --no-postfilter)");
    if (o->rate && kind == APP_OUTPUT_TVX)
        return app_fail(cmd, "--rate: a bitstream is always at the model's rate (decode --rate "
                             "picks the output's)");
    if (raw_detail && !o->raw)
        return app_fail(cmd, "--raw-rate, --raw-chan and --raw-format describe --raw input; "
                             "give --raw too");
    if (raw_detail && kind == APP_OUTPUT_AUDIO && strcmp(cmd, "decode") == 0 &&
        (o->raw_format.rate != 16000 || o->raw_format.channels != 1))
        return app_fail(cmd, "--raw-rate and --raw-chan describe raw input; decode writes mono "
                             "at --rate");
    if (o->codebooks && o->kbps > 0)
        return app_fail(cmd, "give --codebooks or --bitrate, not both");
    if (argc - optind != 2)
        return app_fail(cmd, "wants an input and an output, got %d argument%s (see 'tokvox %s --help')",
                        argc - optind, argc - optind == 1 ? "" : "s", cmd);
    o->in = argv[optind];
    o->out = argv[optind + 1];
    if (o->json && app_check_json(cmd, o->json_file, o->in, o->out))
        return 1;
    const char *inputs[] = {o->in};
    return app_check_output(cmd, o->out, inputs, 1, kind, o->force) ? 3 : 0;
}

/* parse's result as the command's exit status. */
static int parse_status(int rc)
{
    return rc == 2 ? 0 : rc == 3 ? APP_EXIT_REFUSED : rc;
}

static double bitrate_kbps(const tokvox_model_info *info, int codebooks)
{
    return codebooks * app_kbps_per_codebook(info);
}

/* --bitrate becomes a codebook count once the model (or file) is known. */
static int resolve_bitrate(const char *cmd, const tokvox_model_info *info, int limit,
                           const char *source, codec_options *o)
{
    if (o->kbps <= 0)
        return 0;
    return app_codebooks_for_kbps(cmd, info, o->kbps, limit, source, &o->codebooks);
}

static int check_codebooks(const char *cmd, const tokvox_model_info *info, int codebooks)
{
    if (codebooks > info->num_codebooks)
        return app_fail(cmd, "--codebooks %d: the model has %d codebooks", codebooks,
                        info->num_codebooks);
    return 0;
}

/* Samples coded per step: whole blocks of the engine's frames, read,
 * coded and written before the next are read. */
enum { CHUNK_FRAMES = 64, EXIT_CUT_OFF = 3 };

/* A live pipe on both ends (arecord | tokvox encode - - | nc): the input
 * arrives in real time, so a step of CHUNK_FRAMES would hold frames back
 * for 1.3 s.  Steps and .tvx blocks of LIVE_BLOCK_BITS of codes instead
 * (10 frames = 200 ms at 4 kbps), at most CHUNK_FRAMES' worth; the 6 bytes
 * each block costs stay under 10 %. */
enum { LIVE_BLOCK_BITS = 800, LIVE_MIN_FRAMES = 10, LIVE_MAX_FRAMES = 50 };

/* 1 when path ("-": stdin or stdout, as fd says) is a pipe, socket or
 * device rather than a regular file: it is read or written as it goes. */
static int is_live(const char *path, int fd)
{
    struct stat st;
    int ok = strcmp(path, "-") ? stat(path, &st) == 0 : fstat(fd, &st) == 0;
    return ok && !S_ISREG(st.st_mode);
}

/* Frames per step (and per .tvx block on a live output). */
static size_t step_frames(const codec_options *o, int codebooks, int codebook_bits)
{
    if (!is_live(o->in, STDIN_FILENO) || !is_live(o->out, STDOUT_FILENO))
        return CHUNK_FRAMES;
    int bits = codebooks * codebook_bits;
    int frames = (LIVE_BLOCK_BITS + bits - 1) / bits;
    return frames < LIVE_MIN_FRAMES ? LIVE_MIN_FRAMES
           : frames > LIVE_MAX_FRAMES ? LIVE_MAX_FRAMES : (size_t)frames;
}

/* Seconds of audio in a seekable input file, 0 when unknown (a pipe). */
static double input_seconds(const tokvox_audio_source *src)
{
    return src->declared > 0 ? (double)src->declared / src->rate : 0.0;
}

/* The summary object every codec command starts from. */
static cJSON *summary(const char *cmd, const codec_options *o, double seconds)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", cmd);
    cJSON_AddStringToObject(j, "input", o->in);
    cJSON_AddStringToObject(j, "output", o->out);
    cJSON_AddNumberToObject(j, "duration_s", seconds);
    return j;
}

static void add_source(cJSON *j, const tokvox_audio_source *s)
{
    cJSON_AddNumberToObject(j, "source_rate", s->rate);
    cJSON_AddNumberToObject(j, "source_channels", s->channels);
    cJSON_AddNumberToObject(j, "nonfinite_samples", (double)s->nonfinite);
    cJSON_AddNumberToObject(j, "clipped_samples", (double)s->clipped);
}

/* " (2 channels mixed to mono)" or "", for the human summaries. */
static const char *mixdown_note(const tokvox_audio_source *s, char *buf, size_t size)
{
    if (s->channels <= 1)
        return "";
    snprintf(buf, size, " (%d channels mixed to mono)", s->channels);
    return buf;
}

/* ---- streaming pieces ------------------------------------------------------------ */

static const char *shown(const char *path, const char *dash)
{
    return strcmp(path, "-") ? path : dash;
}

static tokvox_audio_reader *open_input(const char *cmd, const codec_options *o, int rate)
{
    char detail[1024] = "";
    tokvox_audio_reader *r =
        o->raw ? tokvox_audio_reader_open_raw(o->in, &o->raw_format, rate, NULL, detail, sizeof detail)
               : tokvox_audio_reader_open(o->in, rate, NULL, detail, sizeof detail);
    if (!r)
        app_fail(cmd, "%s", detail);
    return r;
}

/* What encode and transcode start from: the model (*m), its info, the
 * codebook count asked for (or all) and the open input (*r).  Returns the
 * exit status so far (0: all open); *m is NULL only when the model did not
 * load, *r is NULL whenever the status is not 0.  The caller closes both. */
static int open_coder_inputs(const char *cmd, codec_options *o, tokvox_model **m,
                             tokvox_model_info *info, int *codebooks, tokvox_audio_reader **r)
{
    *r = NULL;
    *info = (tokvox_model_info){.size = sizeof *info};
    if (!(*m = app_load_model(cmd, o->model)))
        return 1;
    tokvox_model_get_info(*m, info);
    int rc = resolve_bitrate(cmd, info, info->num_codebooks, "the model", o);
    *codebooks = o->codebooks ? o->codebooks : info->num_codebooks;
    if (!rc)
        rc = check_codebooks(cmd, info, *codebooks);
    if (!rc && !(*r = open_input(cmd, o, info->sample_rate)))
        rc = 1;
    return rc;
}

/* Encoder output: the frames of one step, then written. */
typedef struct frame_buffer {
    uint16_t *codes;
    size_t cap;   /* frames */
    size_t frames;
} frame_buffer;

static int frame_buffer_init(frame_buffer *b, size_t frames, int codebooks)
{
    b->codes = malloc(frames * (size_t)codebooks * sizeof *b->codes);
    b->cap = frames;
    b->frames = 0;
    return b->codes ? 0 : -1;
}

static const char encode_usage[] =
    "usage: tokvox encode IN OUT.tvx [--model M] [--codebooks N | --bitrate KBPS] [--raw ...]\n"
    "Encode audio (any format libsndfile reads, any rate; '-' = stdin) into a tokvox\n"
    "bitstream ('-' = stdout), streaming: memory does not grow with the input, and on a\n"
    "pipe the bitstream (.tvx version 2) goes out while the input still arrives (from a\n"
    "live pipe to a pipe in blocks of about 100 bytes, 200 ms at 4 kbps).\n"
    "  -m, --model M      model file or shipped name (default tokvox-16k,\n"
    "                     55 ms; tokvox-16k-ld: 40 ms)\n"
    "  -n, --codebooks N  codebooks per frame (default: all; fewer = lower bitrate)\n"
    "  -b, --bitrate KBPS bitrate in kbps (shipped model: 0.5 to 4 kbps in steps of\n"
    "                     0.5 kbps)\n"
    "      --raw          IN is headerless PCM: --raw-rate HZ (16000), --raw-chan N (1),\n"
    "                     --raw-format s16le|s24le|s32le|f32le|u8 (s16le)\n"
    "  -q, --quiet        no progress and no summary on stderr\n"
    "      --json[=FILE]  a summary as one JSON object on stdout (or in FILE)\n"
    "  -f, --force        replace an existing OUT that is not a .tvx bitstream\n"
    "  -t, --threads N    threads per large kernel call (default: TOKVOX_THREADS or 1)\n"
    "Exit status: 0 done, 1 error, 2 usage or a refused OUT (an input, or not a .tvx).\n";

/* Encoder frames into the bitstream; flushes a pipe so a listener gets them. */
static int put_frames(tokvox_tvx_writer *w, const frame_buffer *b, FILE *out)
{
    int err = b->frames ? tokvox_tvx_write_frames(w, b->codes, b->frames) : TOKVOX_OK;
    if (!err && b->frames && fflush(out) != 0)
        err = TOKVOX_ERR_IO;
    return err;
}

/* The half encode and transcode share: IN a chunk at a time through the
 * encoder, with progress on a terminal. */
typedef struct encoding {
    const char *cmd;
    tokvox_audio_reader *r;
    tokvox_encoder *enc;
    float *pcm;
    size_t chunk;       /* samples read per step (step_frames hops) */
    frame_buffer codes; /* the frames of the last step */
    uint64_t n;         /* samples read so far */
    int rate;
    app_progress p;
} encoding;

static void encoding_end(encoding *e)
{
    app_progress_end(&e->p);
    free(e->pcm);
    free(e->codes.codes);
    tokvox_encoder_destroy(e->enc);
}

static int encoding_start(encoding *e, const char *cmd, const codec_options *o,
                          const tokvox_model *m, int codebooks, tokvox_audio_reader *r)
{
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    memset(e, 0, sizeof *e);
    e->cmd = cmd;
    e->r = r;
    e->rate = info.sample_rate;
    size_t frames = step_frames(o, codebooks, info.codebook_bits);
    e->chunk = frames * info.hop;
    int err;
    if (!(e->enc = tokvox_encoder_create(m, codebooks, &err)))
        return app_fail(cmd, "%s", tokvox_strerror(err));
    e->pcm = malloc(e->chunk * sizeof *e->pcm);
    if (!e->pcm || frame_buffer_init(&e->codes, frames + 2, codebooks)) {
        encoding_end(e);
        return app_fail(cmd, "out of memory");
    }
    tokvox_audio_source src;
    tokvox_audio_reader_source(r, &src);
    app_progress_start(&e->p, o->quiet, input_seconds(&src));
    return 0;
}

/* The next chunk's frames into e->codes; *last is set at the end of IN,
 * where the frames are the encoder's flush. */
static int encoding_step(encoding *e, const codec_options *o, int *last)
{
    char detail[1024] = "";
    size_t got = 0;
    if (tokvox_audio_reader_read(e->r, e->pcm, e->chunk, &got, detail, sizeof detail))
        return app_fail(e->cmd, "%s", detail);
    e->n += got;
    *last = got == 0;
    int err = got ? tokvox_encoder_push(e->enc, e->pcm, got, e->codes.codes, e->codes.cap,
                                        &e->codes.frames)
                  : tokvox_encoder_flush(e->enc, e->codes.codes, e->codes.cap, &e->codes.frames);
    if (err)
        return app_fail(e->cmd, "%s: %s", o->in, tokvox_strerror(err));
    app_progress_update(&e->p, e->cmd, (double)e->n / e->rate);
    return 0;
}

/* The encode loop: IN -> encoder -> .tvx writer. */
static int encode_stream(const codec_options *o, const tokvox_model *m, int codebooks,
                         tokvox_audio_reader *r, tokvox_tvx_writer *w, FILE *out, uint64_t *n_out)
{
    encoding e;
    int rc = encoding_start(&e, "encode", o, m, codebooks, r);
    if (rc)
        return rc;
    for (int last = 0; !rc && !last;) {
        rc = encoding_step(&e, o, &last);
        errno = 0;
        int err = rc ? TOKVOX_OK : put_frames(w, &e.codes, out);
        if (err)
            rc = app_fail("encode", "%s: %s", shown(o->out, "stdout"),
                          err == TOKVOX_ERR_IO && errno ? strerror(errno) : tokvox_strerror(err));
    }
    *n_out = e.n;
    encoding_end(&e);
    return rc;
}

int cmd_encode(int argc, char **argv)
{
    codec_options o;
    int rc = parse("encode", encode_usage, argc, argv, &o, APP_OUTPUT_TVX);
    if (rc)
        return parse_status(rc);
    tokvox_model *m;
    tokvox_model_info info;
    int codebooks;
    tokvox_audio_reader *r;
    rc = open_coder_inputs("encode", &o, &m, &info, &codebooks, &r);
    if (!m)
        return rc;
    char detail[1024] = "";
    int err = 0;
    tokvox_atomic_file *f = rc ? NULL : tokvox_atomic_open(o.out, &err, detail, sizeof detail);
    if (!rc && !f)
        rc = app_fail("encode", "%s", detail);
    tokvox_audio_source src = {0};
    tokvox_audio_reader_source(r, &src);
    tokvox_tvx_writer *w = NULL;
    if (!rc) {
        tokvox_tvx_header h = {.size = sizeof h};
        tokvox_tvx_header_init(&h, &info, codebooks, 0, (uint32_t)src.rate);
        size_t step = step_frames(&o, codebooks, info.codebook_bits);
        if (step < CHUNK_FRAMES)
            h.frames_per_block = (uint32_t)step; /* live: a block per step */
        errno = 0;
        w = tokvox_tvx_writer_create(tokvox_atomic_stream(f), &h, &err);
        /* a listener on a pipe learns at once that a stream has begun */
        if (w && fflush(tokvox_atomic_stream(f)) != 0) {
            err = TOKVOX_ERR_IO;
            tokvox_tvx_writer_destroy(w);
            w = NULL;
        }
        if (!w)
            rc = app_fail("encode", "%s: %s", shown(o.out, "stdout"),
                          err == TOKVOX_ERR_IO && errno ? strerror(errno) : tokvox_strerror(err));
    }
    uint64_t n = 0;
    if (!rc)
        rc = encode_stream(&o, m, codebooks, r, w, tokvox_atomic_stream(f), &n);
    if (!rc) {
        tokvox_tvx_writer_set_sample_count(w, n);
        errno = 0;
        if ((err = tokvox_tvx_writer_finish(w)))
            rc = app_fail("encode", "%s: %s", shown(o.out, "stdout"),
                          err == TOKVOX_ERR_IO && errno ? strerror(errno) : tokvox_strerror(err));
    }
    tokvox_tvx_writer_destroy(w);
    if (f && rc)
        tokvox_atomic_abort(f);
    else if (f && tokvox_atomic_commit(f, detail, sizeof detail))
        rc = app_fail("encode", "%s", detail);
    if (!rc) {
        tokvox_audio_reader_source(r, &src);
        app_warn_cleaned("encode", o.in, &src);
        unsigned long long frames = tokvox_frames_for_samples(m, (size_t)n);
        char note[64];
        if (!o.quiet)
            fprintf(stderr, "%s: %.2f s%s, %llu frames x %d codebooks, %.2f kbps\n", o.in,
                    (double)n / info.sample_rate, mixdown_note(&src, note, sizeof note), frames,
                    codebooks, bitrate_kbps(&info, codebooks));
        if (o.json) {
            cJSON *j = summary("encode", &o, (double)n / info.sample_rate);
            cJSON_AddNumberToObject(j, "samples", (double)n);
            cJSON_AddNumberToObject(j, "frames", (double)frames);
            cJSON_AddNumberToObject(j, "codebooks", codebooks);
            cJSON_AddNumberToObject(j, "bitrate_kbps", bitrate_kbps(&info, codebooks));
            cJSON_AddNumberToObject(j, "tvx_version", TOKVOX_TVX_VERSION);
            add_source(j, &src);
            rc = app_write_json("encode", j, o.json_file);
        }
    }
    tokvox_audio_reader_close(r);
    tokvox_model_destroy(m);
    return rc;
}

/* ---- decode --------------------------------------------------------------------- */

/* Decoded audio on its way out: the last `hold` samples wait, because a
 * version-2 stream tells its exact length (the trailer) only at the end and
 * the decoder gives up to 2 hops more than the signal had. */
typedef struct held_output {
    tokvox_audio_writer *w;
    float *buf;      /* hold + room samples */
    size_t hold, n;  /* n: samples in buf */
    uint64_t out;    /* samples handed to the writer */
} held_output;

static int held_push(held_output *h, const float *x, size_t n, char *detail, size_t size)
{
    memcpy(h->buf + h->n, x, n * sizeof *x);
    h->n += n;
    if (h->n <= h->hold)
        return 0;
    size_t go = h->n - h->hold;
    int rc = tokvox_audio_writer_write(h->w, h->buf, go, detail, size);
    memmove(h->buf, h->buf + go, h->hold * sizeof *h->buf);
    h->n = h->hold;
    h->out += go;
    return rc;
}

/* The end: what is held, up to `total` samples in all (UINT64_MAX: all). */
static int held_finish(held_output *h, uint64_t total, char *detail, size_t size)
{
    uint64_t left = total > h->out ? total - h->out : 0;
    size_t go = left < h->n ? (size_t)left : h->n;
    int rc = tokvox_audio_writer_write(h->w, h->buf, go, detail, size);
    h->out += go;
    /* a stream shorter than its count (never from our writer): silence */
    static const float zeros[512];
    while (!rc && total != UINT64_MAX && h->out < total) {
        uint64_t pad = total - h->out;
        size_t k = pad < 512 ? (size_t)pad : 512;
        rc = tokvox_audio_writer_write(h->w, zeros, k, detail, size);
        h->out += k;
    }
    return rc;
}

static const char decode_usage[] =
    "usage: tokvox decode IN.tvx OUT [--model M] [--codebooks N | --bitrate KBPS] [--rate R]\n"
    "Decode a tokvox bitstream (.tvx version 1 or 2; '-' = stdin) to audio (.wav, .flac,\n"
    ".ogg; '-' = WAV on stdout, with 'unknown' sizes on a pipe), streaming, by default at\n"
    "the rate of the file that was encoded.\n"
    "  -m, --model M      model file or shipped name (default tokvox-16k); must be the encoder's\n"
    "  -n, --codebooks N  decode only the first N codebooks of each frame\n"
    "  -b, --bitrate KBPS bitrate in kbps, at most the file's\n"
    "  -r, --rate R       output sample rate in Hz\n"
    "      --raw          write headerless mono PCM (--raw-format, default s16le)\n"
    "      --no-postfilter the network's raw output, without the model's decode-time\n"
    "                     post-filter\n"
    "  -q, --quiet        no progress and no summary on stderr\n"
    "      --json[=FILE]  a summary as one JSON object on stdout (or in FILE)\n"
    "  -f, --force        replace an existing OUT that is not an audio file\n"
    "  -t, --threads N    threads per large kernel call (default: TOKVOX_THREADS or 1)\n"
    "Exit status: 0 done, 1 error, 2 usage or a refused OUT, 3 a version-2 stream cut\n"
    "off: OUT holds the audio of every intact block.\n";

/* Opens IN and checks it against the model and the options. */
static tokvox_tvx_reader *open_tvx(codec_options *o, const tokvox_model *m, FILE **in)
{
    *in = strcmp(o->in, "-") == 0 ? stdin : fopen(o->in, "rb");
    if (!*in) {
        app_fail("decode", "%s: %s", o->in, strerror(errno));
        return NULL;
    }
    char detail[1024] = "";
    int err;
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(*in, shown(o->in, "stdin"), &err, detail, sizeof detail);
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    int rc = 0;
    if (!r)
        rc = app_fail("decode", "%s", detail);
    else if (tokvox_tvx_check_model(tokvox_tvx_reader_header(r), &info, detail, sizeof detail))
        rc = app_fail("decode", "%s: %s", o->in, detail);
    const tokvox_tvx_header *h = tokvox_tvx_reader_header(r);
    if (!rc && o->kbps > 0)
        rc = resolve_bitrate("decode", &info, h->num_codebooks, o->in, o);
    if (!rc && o->codebooks > h->num_codebooks)
        rc = app_fail("decode", "--codebooks %d: %s has only %u codebooks per frame", o->codebooks,
                      o->in, h->num_codebooks);
    if (rc) {
        tokvox_tvx_reader_destroy(r);
        if (*in != stdin)
            fclose(*in);
        *in = NULL;
        return NULL;
    }
    return r;
}

/* The decode loop.  Returns 0, 1 or EXIT_CUT_OFF (after its message). */
static int decode_stream(const codec_options *o, const tokvox_model *m, tokvox_tvx_reader *r,
                         held_output *held)
{
    const tokvox_tvx_header *h = tokvox_tvx_reader_header(r);
    int err, k = h->num_codebooks;
    tokvox_decoder *dec = tokvox_decoder_create(m, k, o->codebooks, &err);
    if (!dec)
        return app_fail("decode", "%s", tokvox_strerror(err));
    tokvox_decoder_set_postfilter(dec, !o->no_postfilter);
    uint16_t *codes = malloc((size_t)CHUNK_FRAMES * (size_t)k * sizeof *codes);
    /* a push writes up to a hop per frame; the flush the decoder's latency */
    size_t pcm_size = (size_t)CHUNK_FRAMES * h->hop + (size_t)tokvox_decoder_latency(dec);
    float *pcm = malloc(pcm_size * sizeof *pcm);
    int rc = !codes || !pcm ? app_fail("decode", "out of memory") : 0;
    app_progress p;
    app_progress_start(&p, o->quiet, h->version == 1 ? (double)h->sample_count / h->sample_rate : 0);
    char detail[1024] = "";
    int ended = 0, cut = 0;
    /* from a live pipe each block is decoded as it arrives: gathering
     * CHUNK_FRAMES would hold the audio back 1.3 s */
    int live = is_live(o->in, STDIN_FILENO);
    while (!rc && !ended) {
        size_t frames = 0, got = 0, samples = 0;
        while (frames < CHUNK_FRAMES) { /* blocks of the engine's size */
            err = tokvox_tvx_read_frames(r, codes + frames * k, CHUNK_FRAMES - frames, &got);
            if (err == TOKVOX_ERR_TRUNCATED && h->version == 2)
                cut = 1;
            else if (err)
                rc = app_fail("decode", "%s", tokvox_tvx_reader_detail(r));
            if (err || got == 0) {
                ended = 1;
                break;
            }
            frames += got;
            if (live)
                break;
        }
        if (!rc && frames && (err = tokvox_decoder_push(dec, codes, frames, pcm, &samples)))
            rc = app_fail("decode", "%s: %s", o->in, tokvox_strerror(err));
        if (!rc && samples && held_push(held, pcm, samples, detail, sizeof detail))
            rc = app_fail("decode", "%s", detail);
        app_progress_update(&p, "decode", (double)tokvox_tvx_reader_frames(r) * h->hop / h->sample_rate);
    }
    app_progress_end(&p);
    size_t samples = 0;
    if (!rc && (err = tokvox_decoder_flush(dec, pcm, &samples)))
        rc = app_fail("decode", "%s: %s", o->in, tokvox_strerror(err));
    if (!rc && held_push(held, pcm, samples, detail, sizeof detail))
        rc = app_fail("decode", "%s", detail);
    if (!rc && held_finish(held, cut ? UINT64_MAX : h->sample_count, detail, sizeof detail))
        rc = app_fail("decode", "%s", detail);
    if (!rc && cut)
        rc = EXIT_CUT_OFF;
    free(codes);
    free(pcm);
    tokvox_decoder_destroy(dec);
    return rc;
}

int cmd_decode(int argc, char **argv)
{
    codec_options o;
    int rc = parse("decode", decode_usage, argc, argv, &o, APP_OUTPUT_AUDIO);
    if (rc)
        return parse_status(rc);
    tokvox_model *m = app_load_model("decode", o.model);
    if (!m)
        return 1;
    FILE *in = NULL;
    tokvox_tvx_reader *r = open_tvx(&o, m, &in);
    rc = !r;
    const tokvox_tvx_header *h = tokvox_tvx_reader_header(r);
    char detail[1024] = "";
    held_output held = {0};
    if (!rc) {
        int rate = o.rate ? o.rate : (int)h->source_rate;
        held.w = tokvox_audio_writer_open(o.out, (int)h->sample_rate, rate, o.raw ? &o.raw_format : NULL,
                                          NULL, detail, sizeof detail);
        held.hold = 2 * (size_t)h->hop;
        held.buf = malloc((held.hold + ((size_t)CHUNK_FRAMES + 1) * h->hop) * sizeof *held.buf);
        if (!held.w)
            rc = app_fail("decode", "%s", detail);
        else if (!held.buf)
            rc = app_fail("decode", "out of memory");
    }
    if (!rc)
        rc = decode_stream(&o, m, r, &held);
    if (held.w && (rc == 0 || rc == EXIT_CUT_OFF)) {
        if (tokvox_audio_writer_commit(held.w, 0, detail, sizeof detail))
            rc = app_fail("decode", "%s", detail);
    } else {
        tokvox_audio_writer_abort(held.w);
    }
    if (rc == EXIT_CUT_OFF)
        fprintf(stderr, "tokvox decode: %s; %s has the audio of the %llu intact frames (%.2f s)\n",
                tokvox_tvx_reader_detail(r), shown(o.out, "stdout"),
                (unsigned long long)tokvox_tvx_reader_frames(r),
                (double)held.out / h->sample_rate);
    else if (!rc && !o.quiet)
        fprintf(stderr, "%s: %.2f s, %llu frames x %u codebooks decoded\n", o.in,
                (double)held.out / h->sample_rate,
                (unsigned long long)tokvox_tvx_reader_frames(r),
                (unsigned)(o.codebooks ? o.codebooks : h->num_codebooks));
    if ((rc == 0 || rc == EXIT_CUT_OFF) && o.json) {
        tokvox_model_info info = {.size = sizeof info};
        tokvox_model_get_info(m, &info);
        int used = o.codebooks ? o.codebooks : h->num_codebooks;
        cJSON *j = summary("decode", &o, (double)held.out / h->sample_rate);
        cJSON_AddNumberToObject(j, "samples", (double)held.out);
        cJSON_AddNumberToObject(j, "frames", (double)tokvox_tvx_reader_frames(r));
        cJSON_AddNumberToObject(j, "codebooks", used);
        cJSON_AddNumberToObject(j, "bitrate_kbps", bitrate_kbps(&info, used));
        cJSON_AddNumberToObject(j, "tvx_version", h->version);
        cJSON_AddNumberToObject(j, "output_rate", o.rate ? o.rate : (int)h->source_rate);
        cJSON_AddBoolToObject(j, "cut_off", rc == EXIT_CUT_OFF);
        if (app_write_json("decode", j, o.json_file))
            rc = 1;
    }
    free(held.buf);
    tokvox_tvx_reader_destroy(r);
    if (in && in != stdin)
        fclose(in);
    tokvox_model_destroy(m);
    return rc;
}

/* ---- transcode ------------------------------------------------------------------ */

static const char transcode_usage[] =
    "usage: tokvox transcode IN OUT [--model M] [--codebooks N | --bitrate KBPS] [--rate R]\n"
    "Encode and decode in one pass, streaming, to hear what the codec does; prints the\n"
    "bitrate.  Output is written at the input's rate unless --rate says otherwise.\n"
    "  -m, --model M      model file or shipped name (default tokvox-16k,\n"
    "                     55 ms; tokvox-16k-ld: 40 ms)\n"
    "  -n, --codebooks N  codebooks per frame (default: all)\n"
    "  -b, --bitrate KBPS bitrate in kbps (shipped model: 0.5 to 4 kbps in steps of\n"
    "                     0.5 kbps)\n"
    "  -r, --rate R       output sample rate in Hz\n"
    "      --raw          IN and OUT are headerless PCM: IN as --raw-rate HZ (16000),\n"
    "                     --raw-chan N (1), --raw-format s16le|s24le|s32le|f32le|u8\n"
    "                     (s16le); OUT mono in the same format\n"
    "      --no-postfilter the network's raw output, without the model's decode-time\n"
    "                     post-filter\n"
    "  -q, --quiet        no progress, and do not print the bitrate\n"
    "      --json[=FILE]  a summary as one JSON object on stdout (or in FILE)\n"
    "  -f, --force        replace an existing OUT that is not an audio file\n"
    "  -t, --threads N    threads per large kernel call (default: TOKVOX_THREADS or 1)\n"
    "Exit status: 0 done, 1 error, 2 usage or a refused OUT (an input, or not audio).\n";

typedef struct transcoder {
    tokvox_decoder *dec;
    float *pcm;
    uint64_t decoded; /* samples at the model rate given to the writer */
} transcoder;

/* Codes of one step through the decoder to the writer, up to `limit`
 * samples in all (the input's length, once known). */
static int pass_on(transcoder *t, const frame_buffer *codes, tokvox_audio_writer *w,
                   uint64_t limit, char *detail, size_t size)
{
    size_t samples = 0;
    int err = codes->frames
                  ? tokvox_decoder_push(t->dec, codes->codes, codes->frames, t->pcm, &samples)
                  : TOKVOX_OK;
    if (err) {
        snprintf(detail, size, "%s", tokvox_strerror(err));
        return err;
    }
    if (samples > limit - t->decoded)
        samples = (size_t)(limit - t->decoded);
    t->decoded += samples;
    return tokvox_audio_writer_write(w, t->pcm, samples, detail, size);
}

static int transcode_stream(const codec_options *o, const tokvox_model *m, int codebooks,
                            tokvox_audio_reader *r, tokvox_audio_writer *w, uint64_t *n_out)
{
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    encoding e;
    int err, rc = encoding_start(&e, "transcode", o, m, codebooks, r);
    if (rc)
        return rc;
    transcoder t = {0};
    t.dec = tokvox_decoder_create(m, codebooks, 0, &err);
    tokvox_decoder_set_postfilter(t.dec, !o->no_postfilter); /* NULL: refused, handled below */
    /* a step's frames write up to a hop each; the flush the decoder's latency */
    t.pcm = t.dec ? malloc((((size_t)CHUNK_FRAMES + 3) * info.hop +
                            (size_t)tokvox_decoder_latency(t.dec)) * sizeof *t.pcm)
                  : NULL;
    if (!t.dec || !t.pcm)
        rc = app_fail("transcode", "%s", t.dec ? "out of memory" : tokvox_strerror(err));
    char detail[1024] = "";
    for (int last = 0; !rc && !last;) {
        rc = encoding_step(&e, o, &last);
        /* decoded samples trail the input (by the decoder's latency), so e.n
         * bounds them until the end */
        if (!rc && pass_on(&t, &e.codes, w, e.n, detail, sizeof detail))
            rc = app_fail("transcode", "%s", detail);
    }
    size_t samples = 0;
    if (!rc && (err = tokvox_decoder_flush(t.dec, t.pcm, &samples)))
        rc = app_fail("transcode", "%s: %s", o->in, tokvox_strerror(err));
    if (!rc) {
        if (samples > e.n - t.decoded)
            samples = (size_t)(e.n - t.decoded);
        if (tokvox_audio_writer_write(w, t.pcm, samples, detail, sizeof detail))
            rc = app_fail("transcode", "%s", detail);
    }
    *n_out = e.n;
    encoding_end(&e);
    free(t.pcm);
    tokvox_decoder_destroy(t.dec);
    return rc;
}

int cmd_transcode(int argc, char **argv)
{
    codec_options o;
    int rc = parse("transcode", transcode_usage, argc, argv, &o, APP_OUTPUT_AUDIO);
    if (rc)
        return parse_status(rc);
    tokvox_model *m;
    tokvox_model_info info;
    int codebooks;
    tokvox_audio_reader *r;
    rc = open_coder_inputs("transcode", &o, &m, &info, &codebooks, &r);
    if (!m)
        return rc;
    tokvox_audio_source src = {0};
    tokvox_audio_reader_source(r, &src);
    int out_rate = o.rate ? o.rate : src.rate;
    char detail[1024] = "";
    tokvox_audio_writer *w = NULL;
    if (!rc) {
        w = tokvox_audio_writer_open(o.out, info.sample_rate, out_rate, o.raw ? &o.raw_format : NULL,
                                     NULL, detail, sizeof detail);
        if (!w)
            rc = app_fail("transcode", "%s", detail);
    }
    uint64_t n = 0;
    if (!rc)
        rc = transcode_stream(&o, m, codebooks, r, w, &n);
    tokvox_audio_reader_source(r, &src);
    /* Back at the input's own rate: exactly its frame count (going through
     * the model rate rounds the length twice). */
    uint64_t exact = out_rate == src.rate ? (uint64_t)src.frames : 0;
    if (rc)
        tokvox_audio_writer_abort(w);
    else if (tokvox_audio_writer_commit(w, exact, detail, sizeof detail))
        rc = app_fail("transcode", "%s", detail);
    if (!rc) {
        app_warn_cleaned("transcode", o.in, &src);
        char note[64];
        /* the bitrate line goes to stdout, unless stdout is the audio or the JSON */
        FILE *to = !strcmp(o.out, "-") ? stderr : stdout;
        if (!o.quiet && !(o.json && !o.json_file && to == stdout))
            fprintf(to, "%s -> %s: %.2f s%s, %d codebooks x %d bits x %.0f frames/s = %.2f kbps\n",
                    o.in, o.out, (double)n / info.sample_rate, mixdown_note(&src, note, sizeof note),
                    codebooks, info.codebook_bits, (double)info.sample_rate / info.hop,
                    bitrate_kbps(&info, codebooks));
        if (o.json) {
            cJSON *j = summary("transcode", &o, (double)n / info.sample_rate);
            cJSON_AddNumberToObject(j, "samples", (double)n);
            cJSON_AddNumberToObject(j, "codebooks", codebooks);
            cJSON_AddNumberToObject(j, "bitrate_kbps", bitrate_kbps(&info, codebooks));
            cJSON_AddNumberToObject(j, "output_rate", out_rate);
            add_source(j, &src);
            rc = app_write_json("transcode", j, o.json_file);
        }
    }
    tokvox_audio_reader_close(r);
    tokvox_model_destroy(m);
    return rc;
}
