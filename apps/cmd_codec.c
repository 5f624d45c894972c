/* tokvox encode / decode / transcode. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns 0 to go on, 1 on a usage error, 2 after --help, 3 after a refused output
 * (APP_EXIT_REFUSED is the command's exit status then). */
static int parse(const char *cmd, const char *usage, int argc, char **argv, codec_options *o,
                 app_output_kind kind)
{
    memset(o, 0, sizeof *o);
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "m:n:b:r:qft:h", long_options, NULL)) != -1;) {
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
        case 'h': fputs(usage, stdout); return 2;
        default: return app_fail(cmd, "see 'tokvox %s --help'", cmd);
        }
    }
    if (o->codebooks && o->kbps > 0)
        return app_fail(cmd, "give --codebooks or --bitrate, not both");
    if (argc - optind != 2)
        return app_fail(cmd, "wants an input and an output (see 'tokvox %s --help')", cmd);
    o->in = argv[optind];
    o->out = argv[optind + 1];
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

static int write_tvx(const char *cmd, const codec_options *o, const tokvox_model_info *info,
                     const uint16_t *codes, size_t frames, int codebooks, size_t samples,
                     int source_rate)
{
    char detail[1024] = "";
    int err;
    tokvox_atomic_file *f = tokvox_atomic_open(o->out, &err, detail, sizeof detail);
    if (!f)
        return app_fail(cmd, "%s", detail);
    tokvox_tvx_header h;
    tokvox_tvx_header_init(&h, info, codebooks, samples, (uint32_t)source_rate);
    errno = 0;
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(tokvox_atomic_stream(f), &h, &err);
    if (w)
        err = tokvox_tvx_write_frames(w, codes, frames);
    if (w && !err)
        err = tokvox_tvx_writer_finish(w);
    /* The writer only says "I/O error"; the failed write's errno says why
     * (a full disk, a file too large), so keep it before cleaning up. */
    int sys = err == TOKVOX_ERR_IO ? errno : 0;
    tokvox_tvx_writer_destroy(w);
    if (err) {
        tokvox_atomic_abort(f);
        return app_fail(cmd, "%s: %s", strcmp(o->out, "-") ? o->out : "stdout",
                        sys ? strerror(sys) : tokvox_strerror(err));
    }
    if (tokvox_atomic_commit(f, detail, sizeof detail))
        return app_fail(cmd, "%s", detail);
    return 0;
}

/* A coded input: what encode and transcode both start from. */
typedef struct coded_input {
    float *pcm;
    size_t n;
    tokvox_audio_source source;
    uint16_t *codes;
    size_t frames;
} coded_input;

static void coded_input_free(coded_input *c)
{
    free(c->pcm);
    free(c->codes);
}

/* Read o->in at the model rate and encode it with `codebooks` codebooks. */
static int read_and_encode(const char *cmd, const codec_options *o, const tokvox_model *m,
                           int codebooks, coded_input *c)
{
    tokvox_model_info info;
    tokvox_model_get_info(m, &info);
    memset(c, 0, sizeof *c);
    char detail[1024] = "";
    int rc = check_codebooks(cmd, &info, codebooks);
    if (!rc && tokvox_audio_read(o->in, info.sample_rate, &c->pcm, &c->n, &c->source, detail,
                                 sizeof detail))
        rc = app_fail(cmd, "%s", detail);
    if (!rc)
        app_warn_cleaned(cmd, o->in, &c->source);
    int err;
    if (!rc && (err = app_encode_all(m, c->pcm, c->n, codebooks, &c->codes, &c->frames)))
        rc = app_fail(cmd, "%s: %s", o->in, tokvox_strerror(err));
    return rc;
}

static const char encode_usage[] =
    "usage: tokvox encode IN OUT.tvx [--model M] [--codebooks N | --bitrate KBPS]\n"
    "Encode an audio file (any format libsndfile reads, any rate; '-' = stdin)\n"
    "into a tokvox bitstream ('-' = stdout).\n"
    "  -m, --model M      model file (default: the shipped model)\n"
    "  -n, --codebooks N  codebooks per frame (default: all; fewer = lower bitrate)\n"
    "  -b, --bitrate KBPS codebooks chosen by bitrate (shipped model: 0.5 to 4 in steps of 0.5)\n"
    "  -q, --quiet        no summary on stderr\n"
    "  -f, --force        replace an existing OUT that is not a .tvx bitstream\n"
    "  -t, --threads N    threads per large kernel call (default: TOKVOX_THREADS or 1)\n";

int cmd_encode(int argc, char **argv)
{
    codec_options o;
    int rc = parse("encode", encode_usage, argc, argv, &o, APP_OUTPUT_TVX);
    if (rc)
        return parse_status(rc);
    tokvox_model *m = app_load_model("encode", o.model);
    if (!m)
        return 1;
    tokvox_model_info info;
    tokvox_model_get_info(m, &info);
    coded_input c = {0};
    rc = resolve_bitrate("encode", &info, info.num_codebooks, "the model", &o);
    int codebooks = o.codebooks ? o.codebooks : info.num_codebooks;
    if (!rc)
        rc = read_and_encode("encode", &o, m, codebooks, &c);
    if (!rc)
        rc = write_tvx("encode", &o, &info, c.codes, c.frames, codebooks, c.n, c.source.rate);
    if (!rc && !o.quiet)
        fprintf(stderr, "%s: %.2f s, %zu frames x %d codebooks, %.2f kbps\n", o.in,
                (double)c.n / info.sample_rate, c.frames, codebooks,
                bitrate_kbps(&info, codebooks));
    coded_input_free(&c);
    tokvox_model_destroy(m);
    return rc;
}

/* Doubles *codes (frames of k codes) from *cap frames; 0 or app_fail's 1. */
static int grow_codes(const char *cmd, const char *path, uint16_t **codes, size_t *cap, int k)
{
    size_t want = *cap ? *cap * 2 : 4096;
    uint16_t *grown = want < SIZE_MAX / sizeof(uint16_t) / (size_t)k
                          ? realloc(*codes, want * (size_t)k * sizeof(uint16_t))
                          : NULL;
    if (!grown)
        return app_fail(cmd, "%s: out of memory after %zu frames", path, *cap);
    *codes = grown;
    *cap = want;
    return 0;
}

/* Read a whole .tvx stream, checked against the model. */
static int read_tvx(const char *cmd, const char *path, const tokvox_model *m,
                    tokvox_tvx_header *h, uint16_t **codes, size_t *frames)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in)
        return app_fail(cmd, "%s: cannot open (%s)", path, strerror(errno));
    char detail[1024] = "";
    int err, rc = 0;
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(in, path, &err, detail, sizeof detail);
    tokvox_model_info info;
    tokvox_model_get_info(m, &info);
    *codes = NULL;
    *frames = 0;
    if (!r)
        rc = app_fail(cmd, "%s", detail);
    else if (tokvox_tvx_check_model(tokvox_tvx_reader_header(r), &info, detail, sizeof detail))
        rc = app_fail(cmd, "%s: %s", path, detail);
    if (!rc) {
        *h = *tokvox_tvx_reader_header(r);
        /* sample_count is only a claim (up to 2^48 samples): the buffer grows
         * with the frames actually read, so a lying header gets "truncated",
         * not a huge allocation. */
        uint64_t expected = tokvox_tvx_expected_frames(h);
        size_t cap = 0;
        while (!rc && *frames < expected) {
            if (*frames == cap && (rc = grow_codes(cmd, path, codes, &cap, h->num_codebooks)))
                break;
            size_t got = 0;
            uint64_t left = expected - *frames;
            size_t room = cap - *frames;
            err = tokvox_tvx_read_frames(r, *codes + *frames * h->num_codebooks,
                                         left < room ? (size_t)left : room, &got);
            if (err || got == 0)
                rc = app_fail(cmd, "%s", err ? tokvox_tvx_reader_detail(r) : "stream ends early");
            *frames += got;
        }
        size_t extra = 0;
        uint16_t probe[TOKVOX_TVX_MAX_CODEBOOKS];
        if (!rc && (tokvox_tvx_read_frames(r, probe, 1, &extra) || extra))
            rc = app_fail(cmd, "%s: data after the last frame", path);
    }
    tokvox_tvx_reader_destroy(r);
    if (in != stdin)
        fclose(in);
    if (rc) {
        free(*codes);
        *codes = NULL;
    }
    return rc;
}

static const char decode_usage[] =
    "usage: tokvox decode IN.tvx OUT [--model M] [--codebooks N | --bitrate KBPS] [--rate R]\n"
    "Decode a tokvox bitstream ('-' = stdin) to audio (.wav, .flac, .ogg; '-' = WAV on\n"
    "stdout), by default at the rate of the file that was encoded.\n"
    "  -m, --model M      model file (default: the shipped model); must be the encoder's\n"
    "  -n, --codebooks N  decode only the first N codebooks of each frame\n"
    "  -b, --bitrate KBPS codebooks chosen by bitrate, at most the file's\n"
    "  -r, --rate R       output sample rate in Hz\n"
    "  -f, --force        replace an existing OUT that is not an audio file\n"
    "  -t, --threads N    threads per large kernel call (default: TOKVOX_THREADS or 1)\n";

int cmd_decode(int argc, char **argv)
{
    codec_options o;
    int rc = parse("decode", decode_usage, argc, argv, &o, APP_OUTPUT_AUDIO);
    if (rc)
        return parse_status(rc);
    tokvox_model *m = app_load_model("decode", o.model);
    if (!m)
        return 1;
    tokvox_tvx_header h;
    uint16_t *codes = NULL;
    float *pcm = NULL;
    size_t frames = 0;
    rc = read_tvx("decode", o.in, m, &h, &codes, &frames);
    if (!rc && o.kbps > 0) {
        tokvox_model_info info;
        tokvox_model_get_info(m, &info);
        rc = resolve_bitrate("decode", &info, h.num_codebooks, o.in, &o);
    }
    if (!rc && o.codebooks > h.num_codebooks)
        rc = app_fail("decode", "--codebooks %d: %s has only %u codebooks per frame", o.codebooks,
                      o.in, h.num_codebooks);
    int err;
    if (!rc && (err = app_decode_all(m, codes, frames, h.num_codebooks, o.codebooks,
                                     (size_t)h.sample_count, &pcm)))
        rc = app_fail("decode", "%s: %s", o.in, tokvox_strerror(err));
    char detail[1024] = "";
    int rate = o.rate ? o.rate : (int)h.source_rate;
    if (!rc && tokvox_audio_write(o.out, pcm, (size_t)h.sample_count, (int)h.sample_rate, rate,
                                  detail, sizeof detail))
        rc = app_fail("decode", "%s", detail);
    free(codes);
    free(pcm);
    tokvox_model_destroy(m);
    return rc;
}

static const char transcode_usage[] =
    "usage: tokvox transcode IN OUT [--model M] [--codebooks N | --bitrate KBPS] [--rate R]\n"
    "Encode and decode in one pass, to hear what the codec does; prints the bitrate.\n"
    "Output is written at the input's rate unless --rate says otherwise.\n"
    "  -m, --model M      model file (default: the shipped model)\n"
    "  -n, --codebooks N  codebooks per frame (default: all)\n"
    "  -b, --bitrate KBPS codebooks chosen by bitrate (shipped model: 0.5 to 4 in steps of 0.5)\n"
    "  -r, --rate R       output sample rate in Hz\n"
    "  -q, --quiet        do not print the bitrate\n"
    "  -f, --force        replace an existing OUT that is not an audio file\n"
    "  -t, --threads N    threads per large kernel call (default: TOKVOX_THREADS or 1)\n";

/* Resamples *pcm (n at the model rate) to the input's rate with exactly the
 * input's frame count: going through the model rate rounds the length twice,
 * which gave 3 samples back for a 1-sample 44.1 kHz file (and could be one
 * off for any length). */
static int back_to_source_rate(const codec_options *o, const tokvox_model_info *info,
                               const tokvox_audio_source *src, float **pcm, size_t *n)
{
    float *back = NULL;
    size_t n_back = 0, want = (size_t)src->frames;
    if (tokvox_resample(*pcm, *n, info->sample_rate, src->rate, &back, &n_back))
        return app_fail("transcode", "%s: cannot resample %d Hz to %d Hz", o->out,
                        info->sample_rate, src->rate);
    if (n_back < want) {
        float *grown = realloc(back, want * sizeof *back);
        if (!grown) {
            free(back);
            return app_fail("transcode", "%s: out of memory", o->out);
        }
        back = grown;
        for (size_t i = n_back; i < want; i++)
            back[i] = 0.0f;
    }
    free(*pcm);
    *pcm = back;
    *n = want;
    return 0;
}

int cmd_transcode(int argc, char **argv)
{
    codec_options o;
    int rc = parse("transcode", transcode_usage, argc, argv, &o, APP_OUTPUT_AUDIO);
    if (rc)
        return parse_status(rc);
    tokvox_model *m = app_load_model("transcode", o.model);
    if (!m)
        return 1;
    tokvox_model_info info;
    tokvox_model_get_info(m, &info);
    coded_input c = {0};
    float *out = NULL;
    char detail[1024] = "";
    int err;
    rc = resolve_bitrate("transcode", &info, info.num_codebooks, "the model", &o);
    int codebooks = o.codebooks ? o.codebooks : info.num_codebooks;
    if (!rc)
        rc = read_and_encode("transcode", &o, m, codebooks, &c);
    if (!rc && (err = app_decode_all(m, c.codes, c.frames, codebooks, 0, c.n, &out)))
        rc = app_fail("transcode", "%s: %s", o.in, tokvox_strerror(err));
    size_t n_out = c.n;
    int rate = info.sample_rate, out_rate = o.rate ? o.rate : c.source.rate;
    if (!rc && out_rate != rate && out_rate == c.source.rate) {
        rc = back_to_source_rate(&o, &info, &c.source, &out, &n_out);
        rate = out_rate;
    }
    if (!rc && tokvox_audio_write(o.out, out, n_out, rate, out_rate, detail, sizeof detail))
        rc = app_fail("transcode", "%s", detail);
    if (!rc && !o.quiet)
        printf("%s -> %s: %.2f s, %d codebooks x %d bits x %.0f frames/s = %.2f kbps\n", o.in,
               o.out, (double)c.n / info.sample_rate, codebooks, info.codebook_bits,
               (double)info.sample_rate / info.hop, bitrate_kbps(&info, codebooks));
    coded_input_free(&c);
    free(out);
    tokvox_model_destroy(m);
    return rc;
}
