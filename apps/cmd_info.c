/* tokvox info / plugins. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "tokvox/bitstream.h"
#include "tokvox/plugin.h"

static cJSON *model_json(const tokvox_model *m)
{
    tokvox_model_info i = {.size = sizeof i};
    tokvox_model_get_info(m, &i);
    char id[17];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)i.model_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "model");
    cJSON_AddStringToObject(o, "path", tokvox_model_path(m));
    cJSON_AddStringToObject(o, "name", i.name);
    cJSON_AddStringToObject(o, "model_id", id);
    cJSON_AddStringToObject(o, "architecture", i.architecture);
    cJSON_AddStringToObject(o, "quantizer", i.quantizer);
    cJSON_AddNumberToObject(o, "sample_rate", i.sample_rate);
    cJSON_AddNumberToObject(o, "hop", i.hop);
    cJSON_AddNumberToObject(o, "n_fft", i.n_fft);
    cJSON_AddNumberToObject(o, "frame_rate", (double)i.sample_rate / i.hop);
    cJSON_AddNumberToObject(o, "groups", i.groups);
    cJSON_AddNumberToObject(o, "stages", i.stages);
    cJSON_AddNumberToObject(o, "num_codebooks", i.num_codebooks);
    cJSON_AddNumberToObject(o, "codebook_size", i.codebook_size);
    cJSON_AddNumberToObject(o, "codebook_bits", i.codebook_bits);
    /* kbps, as everywhere (README, --help, the text of info, --bitrate) */
    cJSON *rates = cJSON_AddArrayToObject(o, "bitrates_kbps");
    for (int k = 1; k <= i.num_codebooks; k++)
        cJSON_AddItemToArray(rates, cJSON_CreateNumber(k * app_kbps_per_codebook(&i)));
    cJSON_AddNumberToObject(o, "latency_samples", i.latency_samples);
    cJSON_AddNumberToObject(o, "latency_ms", 1000.0 * i.latency_samples / i.sample_rate);
    cJSON_AddNumberToObject(o, "parameters", (double)i.num_params);
    cJSON *config = cJSON_Parse(tokvox_model_config_json(m));
    if (config)
        cJSON_AddItemToObject(o, "config", config);
    return o;
}

static void print_model(const tokvox_model *m)
{
    tokvox_model_info i = {.size = sizeof i};
    tokvox_model_get_info(m, &i);
    printf("model         %s (%s)\n", i.name, tokvox_model_path(m));
    printf("model id      %016llx", (unsigned long long)i.model_id);
    for (int k = 0; k < i.num_compatible_ids; k++) /* config "decodes_model_ids" */
        printf("%s%016llx", k ? ", " : "; also decodes the codes of ",
               (unsigned long long)i.compatible_ids[k]);
    printf("\n");
    printf("architecture  %s, quantizer %s (%d group%s x %d stages x %d entries)\n",
           i.architecture, i.quantizer, i.groups, i.groups > 1 ? "s" : "", i.stages,
           i.codebook_size);
    printf("sample rate   %d Hz, hop %d, n_fft %d, %.1f frames/s\n", i.sample_rate, i.hop,
           i.n_fft, (double)i.sample_rate / i.hop);
    printf("codebooks     %d of %d bits\n", i.num_codebooks, i.codebook_bits);
    /* the one way bitrates are stated: kbps, a step per codebook */
    double step = app_kbps_per_codebook(&i);
    printf("bitrates      %g to %g kbps in steps of %g kbps (1 to %d codebooks)", step,
           step * i.num_codebooks, step, i.num_codebooks);
    /* the encoder waits a hop, the decoder owes its synthesis window's
     * overhang (n_fft - hop/K with K synthesis sub-frames per frame) */
    int overhang = i.latency_samples - i.hop;
    printf("\nlatency       %d samples = %.1f ms (algorithmic: a hop of %d + a synthesis "
           "overhang of %d",
           i.latency_samples, 1000.0 * i.latency_samples / i.sample_rate, i.hop, overhang);
    if (i.n_fft > overhang && i.hop % (i.n_fft - overhang) == 0 && i.n_fft - overhang < i.hop)
        printf(", %d sub-frames per frame", i.hop / (i.n_fft - overhang));
    printf(")\n");
    printf("parameters    %lld\n", (long long)i.num_params);
}

static cJSON *tvx_json(const tokvox_tvx_header *h)
{
    char id[17];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)h->model_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "bitstream");
    cJSON_AddNumberToObject(o, "version", h->version);
    cJSON_AddNumberToObject(o, "sample_rate", h->sample_rate);
    cJSON_AddNumberToObject(o, "hop", h->hop);
    cJSON_AddNumberToObject(o, "frame_rate", (double)h->sample_rate / h->hop);
    cJSON_AddNumberToObject(o, "num_codebooks", h->num_codebooks);
    cJSON_AddNumberToObject(o, "codebook_bits", h->codebook_bits);
    cJSON_AddNumberToObject(o, "groups", h->groups);
    cJSON_AddNumberToObject(o, "stages", h->stages);
    cJSON_AddStringToObject(o, "model_id", id);
    cJSON_AddNumberToObject(o, "sample_count", (double)h->sample_count);
    cJSON_AddNumberToObject(o, "duration_s", (double)h->sample_count / h->sample_rate);
    cJSON_AddNumberToObject(o, "source_rate", h->source_rate);
    cJSON_AddNumberToObject(o, "frames", (double)tokvox_tvx_expected_frames(h));
    cJSON_AddNumberToObject(o, "frames_per_block", h->frames_per_block);
    cJSON_AddNumberToObject(o, "bitrate_kbps",
                            h->num_codebooks * (h->codebook_bits * (double)h->sample_rate / h->hop /
                                                1000.0));
    return o;
}

static void print_json(cJSON *o)
{
    char *text = cJSON_Print(o);
    if (text)
        puts(text);
    free(text);
    cJSON_Delete(o);
}

/* Version 2 states its length in the trailer: read the blocks (checking
 * them on the way) to get there. */
static int read_to_trailer(tokvox_tvx_reader *r)
{
    uint16_t codes[64 * TOKVOX_TVX_MAX_CODEBOOKS];
    size_t got = 0;
    int err;
    while (!(err = tokvox_tvx_read_frames(r, codes, 64, &got)) && got)
        ;
    return err;
}

static int info_tvx(const char *path, FILE *in, int json)
{
    int err;
    char detail[1024] = "";
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(in, path, &err, detail, sizeof detail);
    if (!r)
        return app_fail("info", "%s", detail);
    if (tokvox_tvx_reader_header(r)->version == 2 && (err = read_to_trailer(r))) {
        app_fail("info", "%s", tokvox_tvx_reader_detail(r));
        tokvox_tvx_reader_destroy(r);
        return err == TOKVOX_ERR_TRUNCATED ? 3 : 1;
    }
    cJSON *o = tvx_json(tokvox_tvx_reader_header(r));
    tokvox_tvx_reader_destroy(r);
    if (json) {
        print_json(o);
        return 0;
    }
    printf("bitstream     %s (format version %d)\n", path,
           cJSON_GetObjectItem(o, "version")->valueint);
    for (cJSON *it = o->child; it; it = it->next)
        if (!strcmp(it->string, "bitrate_kbps"))
            printf("%-13s %g kbps\n", "bitrate", it->valuedouble);
        else if (cJSON_IsNumber(it) && strcmp(it->string, "version"))
            printf("%-13s %.10g\n", it->string, it->valuedouble);
    printf("%-13s %s\n", "model_id", cJSON_GetObjectItem(o, "model_id")->valuestring);
    cJSON_Delete(o);
    return 0;
}

static const char info_usage[] =
    "usage: tokvox info [FILE] [--json]\n"
    "Describe a model file (architecture, rates, codebooks, bitrates, latency,\n"
    "parameters) or a .tvx bitstream (its header and length).  Without FILE: the\n"
    "default model.  An audio file or a .npy array is named as such.\n"
    "Exit status: 0, 1 error, 3 a .tvx stream cut off.\n";

/* Not a model and not a bitstream: say what the file is instead of failing
 * on it as a model. 0 when it was one of these, -1 otherwise. */
static int info_other(const char *path, const unsigned char *magic, size_t got, int json)
{
    if (got >= 4 && !memcmp(magic, "\x93NUM", 4)) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "type", "npy");
            cJSON_AddStringToObject(o, "path", path);
            print_json(o);
        } else
            printf("%s: a .npy array, not a model or a .tvx bitstream (tokvox detokenize "
                   "decodes token arrays)\n", path);
        return 0;
    }
    char detail[256];
    tokvox_audio_reader *r = tokvox_audio_is_audio(path)
                                 ? tokvox_audio_reader_open(path, 0, NULL, detail, sizeof detail)
                                 : NULL;
    if (!r)
        return tokvox_audio_is_audio(path) ? (printf("%s: an audio file with no samples, not a "
                                                     "model or a .tvx bitstream\n", path), 0)
                                           : -1;
    tokvox_audio_source s;
    tokvox_audio_reader_source(r, &s);
    tokvox_audio_reader_close(r);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "audio");
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "sample_rate", s.rate);
        cJSON_AddNumberToObject(o, "channels", s.channels);
        cJSON_AddNumberToObject(o, "duration_s", (double)s.declared / s.rate);
        print_json(o);
    } else
        printf("%s: audio, %d Hz, %d channel%s, %.2f s; not a model or a .tvx bitstream "
               "(tokvox encode or transcode it)\n", path, s.rate, s.channels,
               s.channels == 1 ? "" : "s", (double)s.declared / s.rate);
    return 0;
}

int cmd_info(int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(info_usage, stdout), 0;
        else if (argv[i][0] == '-' && argv[i][1])
            return app_fail("info", "unknown option %s (see 'tokvox info --help')", argv[i]);
        else if (path)
            return app_fail("info", "wants one file (see 'tokvox info --help')");
        else
            path = argv[i];
    }
    /* no such file: the model loader, which also knows shipped models by
     * name ("tokvox-16k-ld"), has the last word */
    FILE *in = !path ? NULL : strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (path && !in && errno != ENOENT)
        return app_fail("info", "%s: cannot open (%s)", path, strerror(errno));
    if (in) {
        unsigned char magic[4] = {0};
        size_t got = fread(magic, 1, 4, in);
        int is_tvx = got == 4 && !memcmp(magic, "TVX\x1a", 4);
        if (in != stdin)
            fclose(in);
        if (!is_tvx && in != stdin && info_other(path, magic, got, json) == 0)
            return 0;
        if (is_tvx || in == stdin) {
            if (in == stdin)
                return app_fail("info", "reading a bitstream from stdin is not supported");
            FILE *again = fopen(path, "rb");
            int rc = again ? info_tvx(path, again, json) : app_fail("info", "%s: cannot reopen", path);
            if (again)
                fclose(again);
            return rc;
        }
    }
    tokvox_model *m = app_load_model("info", path);
    if (!m)
        return 1;
    if (json)
        print_json(model_json(m));
    else
        print_model(m);
    tokvox_model_destroy(m);
    return 0;
}

static const char *kind_name(int kind)
{
    return kind == TOKVOX_PLUGIN_QUANTIZER ? "quantizer" : kind == TOKVOX_PLUGIN_MODEL ? "model" : "?";
}

static void json_plugin(void *ctx, const tokvox_plugin_info *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", p->path);
    if (p->error) {
        cJSON_AddBoolToObject(o, "usable", 0);
        cJSON_AddStringToObject(o, "problem", p->detail);
    } else {
        cJSON_AddBoolToObject(o, "usable", 1);
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "kind", kind_name(p->kind));
        cJSON_AddStringToObject(o, "version", p->version);
        cJSON_AddNumberToObject(o, "abi_major", p->abi_major);
        cJSON_AddNumberToObject(o, "abi_minor", p->abi_minor);
        cJSON_AddStringToObject(o, "description", p->description);
    }
    cJSON_AddItemToArray(ctx, o);
}

static void list_plugin(void *ctx, const tokvox_plugin_info *p)
{
    int *broken = ctx;
    if (p->error) {
        printf("  [unusable] %s\n      %s\n", p->path, p->detail);
        ++*broken;
        return;
    }
    printf("  %-13s %-9s %-7s ABI %d.%d  %s\n      %s\n", p->name, kind_name(p->kind),
           p->version, p->abi_major, p->abi_minor, p->description, p->path);
}

int cmd_plugins(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: tokvox plugins [--json]\nList the plugins found in the search folders "
             "(TOKVOX_PLUGIN_PATH, the build's, the one beside the library, the installed one).");
        return 0;
    }
    int json = argc == 2 && !strcmp(argv[1], "--json");
    if (argc > 1 && !json)
        return app_fail("plugins", "takes only --json, not '%s'", argv[1]);
    char search[4096];
    tokvox_plugin_search_path(search, sizeof search);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "search_path", search);
        tokvox_plugins_scan(json_plugin, cJSON_AddArrayToObject(o, "plugins"));
        print_json(o);
        return 0;
    }
    printf("search path: %s\n", search);
    int broken = 0;
    tokvox_plugins_scan(list_plugin, &broken);
    return 0;
}
