/* tokvox detokenize (a token .npy back to audio) and tokstats (codebook
 * usage over a tokenize output folder). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "tokenize.h"
#include "tokvox/io.h"
#include "manifest.h"
#include "tokvox/tokens.h"

enum { MAX_UP = 32 }; /* folders climbed looking for a manifest */

/* Looks in dir for tokenize's manifests and stats; 1 when it has any. */
static int meta_in(const char *dir, const char *abs, tokvox_token_meta *m)
{
    size_t ns = 0;
    char **stats = tk_list_output_files(dir, "stats", ".json", &ns);
    tokvox_token_meta run;
    char detail[1024] = "";
    /* only a tokenize stats.json counts: other tools write stats.json too */
    int ours = ns && !tokvox_token_stats_read(stats[0], &run, detail, sizeof detail);
    if (ours)
        tokvox_token_meta_refine(m, &run); /* the run's settings; an entry refines them */
    tk_free_names(stats, ns);
    tokvox_manifest man;
    size_t nm = tk_load_manifests(dir, &man);
    const tokvox_manifest_entry *e =
        tokvox_manifest_find(&man, abs + strlen(dir) + (strcmp(dir, "/") ? 1 : 0));
    if (e)
        tokvox_token_meta_refine(m, &e->meta);
    tokvox_manifest_free(&man);
    return nm || ours;
}

/* The nearest folder above path holding a manifest or stats decides. */
static void find_meta(const char *path, tokvox_token_meta *m)
{
    tokvox_token_meta_init(m);
    char *abs = app_abs_path(path), *dir = app_strdup(abs);
    for (int up = 0; up < MAX_UP; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash || !strcmp(dir, "/"))
            break;
        slash[slash == dir ? 1 : 0] = '\0';
        if (meta_in(dir, abs, m))
            break;
    }
    free(dir);
    free(abs);
}

/* ---- detokenize ------------------------------------------------------------------ */

/* Whether the model decodes tokens a manifest says model `hex` wrote. */
static int decodes_id(const tokvox_model_info *info, const char *hex)
{
    uint64_t id;
    return !tokvox_model_id_parse(hex, &id) && tokvox_model_info_decodes(info, id);
}

typedef struct detok_options {
    const char *model, *in, *out;
    int layout, codebooks, rate, force;
    int json;              /* --json[=FILE]: a summary object */
    const char *json_file; /* NULL: stdout */
    int quiet;             /* no progress */
    int no_postfilter;     /* --no-postfilter: the decoder's raw output */
} detok_options;

static const char detokenize_usage[] =
    "usage: tokvox detokenize TOKENS.npy OUT [--layout L] [--model M] [--codebooks N]\n"
    "Decode a token array (written by tokvox tokenize or by numpy: int16/int32/int64,\n"
    "1-D or 2-D) to audio (.wav, .flac, .ogg; '-' = WAV on stdout).  Layout, codebook\n"
    "count, length and source rate come from the manifest.jsonl / stats.json that\n"
    "tokenize wrote in a folder above the file, when there is one.\n"
    "  -l, --layout L      codebooks (default), flat or delay\n"
    "  -m, --model M       model file or shipped name (default tokvox-16k); must be the encoder's\n"
    "  -n, --codebooks N   decode only the first N codebooks; for a flat array without\n"
    "                      a manifest, the number of codebooks it interleaves\n"
    "  -r, --rate R        output sample rate (default: the source's, else the model's)\n"
    "      --no-postfilter the network's raw output, without the model's decode-time\n"
    "                      post-filter\n"
    "  -q, --quiet         no progress on stderr\n"
    "      --json[=FILE]   a summary as one JSON object on stdout (or in FILE)\n"
    "  -f, --force         replace an existing OUT that is not an audio file\n";

static const struct option detok_table[] = {
    {"layout", required_argument, NULL, 'l'}, {"model", required_argument, NULL, 'm'},
    {"codebooks", required_argument, NULL, 'n'}, {"rate", required_argument, NULL, 'r'},
    {"force", no_argument, NULL, 'f'}, {"json", optional_argument, NULL, 'J'},
    {"quiet", no_argument, NULL, 'q'}, {"no-postfilter", no_argument, NULL, 'P'},
    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
};

static int parse_detok(int argc, char **argv, detok_options *o)
{
    memset(o, 0, sizeof *o);
    o->layout = -1;
    optind = 1;
    opterr = 0; /* getopt's own two-line complaint replaced by app_option_error */
    for (int c; (c = getopt_long(argc, argv, ":l:m:n:r:fqh", detok_table, NULL)) != -1;) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'l':
            if ((o->layout = tokvox_layout_parse(optarg)) < 0)
                return app_fail("detokenize", "--layout wants codebooks, flat or delay, not '%s'",
                                optarg);
            break;
        case 'n':
            if ((o->codebooks = app_parse_int(optarg, 1, 64)) < 0)
                return app_fail("detokenize", "--codebooks wants a number from 1 to 64, not '%s'",
                                optarg);
            break;
        case 'r':
            if ((o->rate = app_parse_int(optarg, 1000, 384000)) < 0)
                return app_fail("detokenize", "--rate wants a rate in Hz (1000-384000), not '%s'",
                                optarg);
            break;
        case 'f': o->force = 1; break;
        case 'J':
            o->json = 1;
            o->json_file = optarg;
            break;
        case 'h': fputs(detokenize_usage, stdout); return 2;
        case 'q': o->quiet = 1; break;
        case 'P': o->no_postfilter = 1; break;
        default: return app_option_error("detokenize", c, argv);
        }
    }
    if (argc - optind != 2)
        return app_fail("detokenize", "wants TOKENS.npy and an output (see --help)");
    o->in = argv[optind];
    o->out = argv[optind + 1];
    if (o->json && app_check_json("detokenize", o->json_file, o->in, o->out))
        return 1;
    const char *inputs[] = {o->in};
    return app_check_output("detokenize", o->out, inputs, 1, APP_OUTPUT_AUDIO, o->force) ? 3 : 0;
}

/* The layout of the array: --layout, else the manifest's, else codebooks. */
static int layout_of(const detok_options *o, const tokvox_token_meta *meta)
{
    return o->layout >= 0 ? o->layout : meta->layout >= 0 ? meta->layout : 0;
}

/* Opens the token file for the layout, checked against the model. */
static tokvox_token_reader *open_tokens(const detok_options *o, const tokvox_model_info *info,
                                        const tokvox_token_meta *meta)
{
    char detail[1024] = "";
    int layout = layout_of(o, meta), k = 0, err;
    if (layout == TOKVOX_LAYOUT_FLAT)
        k = meta->codebooks ? meta->codebooks : o->codebooks ? o->codebooks : info->num_codebooks;
    tokvox_token_reader *r = tokvox_token_reader_open(o->in, layout, k, info->codebook_size, &err,
                                                      detail, sizeof detail);
    if (!r) {
        app_fail("detokenize", "%s", detail);
        return NULL;
    }
    k = tokvox_token_reader_codebooks(r);
    if (k > info->num_codebooks)
        app_fail("detokenize", "%s: %d codebooks, the model has %d", o->in, k,
                 info->num_codebooks);
    else if (tokvox_token_reader_frames(r) == 0)
        app_fail("detokenize", "%s: no frames to decode", o->in);
    else if (o->codebooks > k)
        app_fail("detokenize", "--codebooks %d: %s has %d codebooks", o->codebooks, o->in, k);
    else
        return r;
    tokvox_token_reader_close(r);
    return NULL;
}

/* Decodes the token file a block at a time into w, exactly n_samples samples
 * at the model rate (silence pads a stream cut short), so neither the codes
 * nor the audio are ever whole in memory.  On failure detail says why. */
static int decode_tokens(const tokvox_model *m, tokvox_token_reader *r, const detok_options *o,
                         size_t n_samples, tokvox_audio_writer *w, app_progress *p,
                         char *detail, size_t detail_size)
{
    enum { BLOCK = 64 };
    int err = TOKVOX_OK, k = tokvox_token_reader_codebooks(r);
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    tokvox_decoder *dec = tokvox_decoder_create(m, k, o->codebooks, &err);
    tokvox_decoder_set_postfilter(dec, !o->no_postfilter); /* NULL: refused, handled below */
    /* a push writes up to a hop per frame; the flush the decoder's latency */
    float *pcm = dec ? malloc(sizeof(float) * (BLOCK * (size_t)info.hop +
                                               (size_t)tokvox_decoder_latency(dec)))
                     : NULL;
    uint16_t *codes = malloc(sizeof *codes * BLOCK * (size_t)k);
    if (dec && (!pcm || !codes))
        err = TOKVOX_ERR_NO_MEMORY;
    if (err)
        snprintf(detail, detail_size, "%s: %s", o->in, tokvox_strerror(err));
    size_t out = 0;
    /* blocks of frames, then the flush (n == 0): with K > 1 synthesis
     * sub-frames the flush holds the stream's last input samples */
    for (size_t n = 1; !err && n;) {
        size_t got = 0;
        if ((err = tokvox_token_reader_read(r, codes, BLOCK, &n, detail, detail_size)))
            break;
        err = n ? tokvox_decoder_push(dec, codes, n, pcm, &got)
                : tokvox_decoder_flush(dec, pcm, &got);
        if (err) {
            snprintf(detail, detail_size, "%s: %s", o->in, tokvox_strerror(err));
            break;
        }
        if (got > n_samples - out)
            got = n_samples - out; /* the flush frame's extra samples */
        if (tokvox_audio_writer_write(w, pcm, got, detail, detail_size))
            err = TOKVOX_ERR_IO;
        out += got;
        if (p)
            app_progress_update(p, "detokenize", (double)out / info.sample_rate);
    }
    /* a complete stream covers every sample; pad only if it was cut short */
    for (size_t step; !err && out < n_samples; out += step) {
        step = n_samples - out < (size_t)info.hop ? n_samples - out : (size_t)info.hop;
        memset(pcm, 0, step * sizeof *pcm);
        if (tokvox_audio_writer_write(w, pcm, step, detail, detail_size))
            err = TOKVOX_ERR_IO;
    }
    free(codes);
    free(pcm);
    tokvox_decoder_destroy(dec);
    return err;
}

int cmd_detokenize(int argc, char **argv)
{
    detok_options o;
    int rc = parse_detok(argc, argv, &o);
    if (rc) /* 2: --help, 3: a refused output */
        return rc == 2 ? 0 : rc == 3 ? APP_EXIT_REFUSED : rc;
    tokvox_model *m = app_load_model("detokenize", o.model);
    if (!m)
        return 1;
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    char id[17];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)info.model_id);
    tokvox_token_meta meta;
    find_meta(o.in, &meta);
    tokvox_token_reader *r = NULL;
    if (meta.model_id[0] && !decodes_id(&info, meta.model_id))
        rc = app_fail("detokenize", "%s: tokens of model %s, not of %s (%s); use --model", o.in,
                      meta.model_id, tokvox_model_path(m), id);
    if (!rc && !(r = open_tokens(&o, &info, &meta)))
        rc = 1;
    size_t frames = r ? tokvox_token_reader_frames(r) : 0;
    int k = r ? tokvox_token_reader_codebooks(r) : 0;
    /* the recorded length, if it is this array's; else every frame but the flush frame */
    size_t n = meta.samples > 0 && tokvox_frames_for_samples(m, (size_t)meta.samples) == frames
                   ? (size_t)meta.samples
                   : frames ? (frames - 1) * (size_t)info.hop : 0;
    char detail[1024] = "";
    int rate = o.rate ? o.rate : meta.sample_rate ? meta.sample_rate : info.sample_rate;
    tokvox_audio_writer *w = NULL;
    if (!rc && !(w = tokvox_audio_writer_open(o.out, info.sample_rate, rate, NULL, NULL, detail,
                                              sizeof detail)))
        rc = app_fail("detokenize", "%s", detail);
    /* block by block from the file into the writer */
    app_progress p;
    app_progress_start(&p, o.quiet, (double)n / info.sample_rate);
    if (!rc && decode_tokens(m, r, &o, n, w, &p, detail, sizeof detail))
        rc = app_fail("detokenize", "%s", detail);
    app_progress_end(&p);
    if (rc)
        tokvox_audio_writer_abort(w);
    else if (tokvox_audio_writer_commit(w, 0, detail, sizeof detail))
        rc = app_fail("detokenize", "%s", detail);
    if (!rc && o.json) { /* the fields of decode's summary, and the layout */
        int used = o.codebooks ? o.codebooks : k;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "command", "detokenize");
        cJSON_AddStringToObject(j, "input", o.in);
        cJSON_AddStringToObject(j, "output", o.out);
        cJSON_AddNumberToObject(j, "duration_s", (double)n / info.sample_rate);
        cJSON_AddNumberToObject(j, "samples", (double)n);
        cJSON_AddNumberToObject(j, "frames", (double)frames);
        cJSON_AddNumberToObject(j, "codebooks", used);
        cJSON_AddNumberToObject(j, "bitrate_kbps", used * app_kbps_per_codebook(&info));
        cJSON_AddStringToObject(j, "layout", tokvox_layout_name(layout_of(&o, &meta)));
        cJSON_AddNumberToObject(j, "output_rate", rate);
        rc = app_write_json("detokenize", j, o.json_file);
    }
    tokvox_token_reader_close(r);
    tokvox_model_destroy(m);
    return rc;
}

/* ---- tokstats ---------------------------------------------------------------------- */

typedef struct usage {
    int k, cs;
    uint64_t *counts; /* [k][cs] */
    uint64_t frames;
    size_t files, unreadable;
    double seconds;
} usage;

/* Counts a reader's codes into counts[k][cs] a block at a time (a token file
 * may hold hours); stops at the first bad block. */
static int count_codes(tokvox_token_reader *r, const char *path, int cs, uint64_t *counts,
                       size_t *frames, char *detail, size_t detail_size)
{
    enum { BLOCK = 1024 }; /* frames per read */
    size_t k = (size_t)tokvox_token_reader_codebooks(r), n = 0;
    uint16_t *codes = malloc(BLOCK * k * sizeof *codes);
    int err = codes ? TOKVOX_OK : TOKVOX_ERR_NO_MEMORY;
    if (err)
        snprintf(detail, detail_size, "%s: out of memory", path);
    while (!err && !(err = tokvox_token_reader_read(r, codes, BLOCK, &n, detail, detail_size)) &&
           n) {
        for (size_t t = 0; t < n; t++)
            for (size_t j = 0; j < k; j++)
                counts[j * (size_t)cs + codes[t * k + j]]++;
        *frames += n;
    }
    free(codes);
    return err;
}

/* Adds one file's codes; a bad file is reported and counted, not fatal, and
 * none of its codes count, even where it goes bad after its first blocks. */
static void count_file(usage *u, const char *outdir, const tokvox_manifest_entry *e)
{
    char *path = app_join_path(outdir, e->output);
    char detail[1024] = "";
    int k = e->meta.codebooks ? e->meta.codebooks : u->k, err = TOKVOX_OK;
    tokvox_token_reader *r = tokvox_token_reader_open(
        path, e->meta.layout < 0 ? 0 : e->meta.layout, k, u->cs, &err, detail, sizeof detail);
    k = r ? tokvox_token_reader_codebooks(r) : k;
    /* counts has rows for u->k codebooks only, whatever the array or its entry say */
    if (!err && k > u->k) {
        snprintf(detail, sizeof detail, "%s: more codebooks than the manifest says", path);
        err = TOKVOX_ERR_FORMAT;
    }
    size_t cells = (size_t)k * (size_t)u->cs, frames = 0;
    uint64_t *mine = err ? NULL : calloc(cells, sizeof *mine);
    if (!err && !mine) {
        snprintf(detail, sizeof detail, "%s: out of memory", path);
        err = TOKVOX_ERR_NO_MEMORY;
    }
    if (!err)
        err = count_codes(r, path, u->cs, mine, &frames, detail, sizeof detail);
    if (err) {
        fprintf(stderr, "tokvox tokstats: %s\n", detail);
        u->unreadable++;
    } else {
        for (size_t i = 0; i < cells; i++)
            u->counts[i] += mine[i];
        u->frames += frames;
        u->files++;
        u->seconds += e->meta.duration;
    }
    tokvox_token_reader_close(r);
    free(mine);
    free(path);
}

typedef struct codebook_stats {
    int used;
    double unused_share, entropy, perplexity;
} codebook_stats;

static codebook_stats stats_of(const uint64_t *counts, int cs)
{
    codebook_stats s = {0, 0.0, 0.0, 1.0};
    uint64_t total = 0;
    for (int c = 0; c < cs; c++) {
        total += counts[c];
        s.used += counts[c] != 0;
    }
    for (int c = 0; c < cs && total; c++) {
        if (!counts[c])
            continue;
        double p = (double)counts[c] / (double)total;
        s.entropy -= p * log2(p);
    }
    s.unused_share = 1.0 - (double)s.used / cs;
    s.perplexity = exp2(s.entropy);
    return s;
}

static void print_table(const usage *u, const char *outdir)
{
    printf("%s: %zu files, %llu frames (%.1f min), %d codebooks of %d codes\n", outdir, u->files,
           (unsigned long long)u->frames, u->seconds / 60.0, u->k, u->cs);
    printf("codebook   used  unused %%  entropy (bits)  perplexity\n");
    double h = 0, unused = 0;
    for (int j = 0; j < u->k; j++) {
        codebook_stats s = stats_of(u->counts + (size_t)j * (size_t)u->cs, u->cs);
        printf("%8d %6d %9.1f %15.3f %11.1f\n", j, s.used, 100 * s.unused_share, s.entropy,
               s.perplexity);
        h += s.entropy / u->k;
        unused += s.unused_share / u->k;
    }
    printf("%8s %6s %9.1f %15.3f %11.1f\n", "mean", "", 100 * unused, h, exp2(h));
}

static void print_stats_json(const usage *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", "tokstats");
    cJSON_AddNumberToObject(o, "files", (double)u->files);
    cJSON_AddNumberToObject(o, "unreadable", (double)u->unreadable);
    cJSON_AddNumberToObject(o, "frames", (double)u->frames);
    cJSON_AddNumberToObject(o, "audio_seconds", u->seconds);
    cJSON_AddNumberToObject(o, "codebooks", u->k);
    cJSON_AddNumberToObject(o, "codebook_size", u->cs);
    cJSON *arr = cJSON_AddArrayToObject(o, "per_codebook");
    for (int j = 0; j < u->k; j++) {
        codebook_stats s = stats_of(u->counts + (size_t)j * (size_t)u->cs, u->cs);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "codebook", j);
        cJSON_AddNumberToObject(c, "used", s.used);
        cJSON_AddNumberToObject(c, "unused_share", s.unused_share);
        cJSON_AddNumberToObject(c, "entropy_bits", s.entropy);
        cJSON_AddNumberToObject(c, "perplexity", s.perplexity);
        cJSON_AddItemToArray(arr, c);
    }
    char *text = cJSON_Print(o);
    if (text)
        puts(text);
    free(text);
    cJSON_Delete(o);
}

static const char tokstats_usage[] =
    "usage: tokvox tokstats OUTDIR [--json] [--quiet]\n"
    "Codebook usage over the files a tokvox tokenize run wrote into OUTDIR (as its\n"
    "manifest*.jsonl list them): per codebook, the codes used, the share unused,\n"
    "the entropy in bits and the perplexity (2^entropy).  On a terminal it shows\n"
    "progress (seconds of audio counted of the manifest's); --quiet: none.\n";

int cmd_tokstats(int argc, char **argv)
{
    int json = 0, quiet = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(tokstats_usage, stdout), 0;
        else if ((argv[i][0] == '-' && argv[i][1]) || dir)
            return app_fail("tokstats", "unexpected '%s' (see 'tokvox tokstats --help')", argv[i]);
        else
            dir = argv[i];
    }
    if (!dir)
        return app_fail("tokstats", "wants the OUTDIR of a tokenize run");
    tokvox_manifest man;
    if (!tk_load_manifests(dir, &man) || !man.n) {
        tokvox_manifest_free(&man);
        return app_fail("tokstats", "%s: no manifest.jsonl entries (not a tokenize output?)", dir);
    }
    usage u = {0, 0, NULL, 0, 0, 0, 0.0};
    for (size_t i = 0; i < man.n; i++) { /* the reader keeps both in range */
        u.k = man.entries[i].meta.codebooks > u.k ? man.entries[i].meta.codebooks : u.k;
        u.cs = man.entries[i].meta.codebook_size > u.cs ? man.entries[i].meta.codebook_size : u.cs;
    }
    if (!u.k || !u.cs || !(u.counts = calloc((size_t)u.k * (size_t)u.cs, sizeof *u.counts))) {
        tokvox_manifest_free(&man);
        return app_fail("tokstats", "%s: manifest entries lack codebooks/codebook_size", dir);
    }
    /* sorted: a repeat (two manifests) is adjacent; the one read last counts,
     * as for detokenize */
    double total = 0.0;
    for (size_t i = 0; i < man.n; i++)
        if (i + 1 == man.n || strcmp(man.entries[i].output, man.entries[i + 1].output))
            total += man.entries[i].meta.duration;
    app_progress p;
    app_progress_start(&p, quiet, total);
    for (size_t i = 0; i < man.n; i++)
        if (i + 1 == man.n || strcmp(man.entries[i].output, man.entries[i + 1].output)) {
            count_file(&u, dir, &man.entries[i]);
            app_progress_update(&p, "tokstats", u.seconds);
        }
    app_progress_end(&p);
    if (json)
        print_stats_json(&u);
    else
        print_table(&u, dir);
    free(u.counts);
    tokvox_manifest_free(&man);
    return u.unreadable ? 1 : 0;
}
