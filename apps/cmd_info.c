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
    tokvox_model_info i;
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
    cJSON *rates = cJSON_AddArrayToObject(o, "bitrates_bps");
    for (int k = 1; k <= i.num_codebooks; k++)
        cJSON_AddItemToArray(rates, cJSON_CreateNumber((double)k * i.codebook_bits *
                                                       i.sample_rate / i.hop));
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
    tokvox_model_info i;
    tokvox_model_get_info(m, &i);
    printf("model         %s (%s)\n", i.name, tokvox_model_path(m));
    printf("model id      %016llx\n", (unsigned long long)i.model_id);
    printf("architecture  %s, quantizer %s (%d group%s x %d stages x %d entries)\n",
           i.architecture, i.quantizer, i.groups, i.groups > 1 ? "s" : "", i.stages,
           i.codebook_size);
    printf("sample rate   %d Hz, hop %d, n_fft %d, %.1f frames/s\n", i.sample_rate, i.hop,
           i.n_fft, (double)i.sample_rate / i.hop);
    printf("codebooks     %d of %d bits\n", i.num_codebooks, i.codebook_bits);
    printf("bitrates      ");
    for (int k = i.groups; k <= i.num_codebooks; k += i.groups)
        printf("%s%d cb = %.2f kbps", k > i.groups ? ", " : "", k,
               k * i.codebook_bits * (double)i.sample_rate / i.hop / 1000.0);
    printf("\nlatency       %d samples = %.1f ms (algorithmic)\n", i.latency_samples,
           1000.0 * i.latency_samples / i.sample_rate);
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
    cJSON_AddNumberToObject(o, "bitrate_bps",
                            (double)h->num_codebooks * h->codebook_bits * h->sample_rate / h->hop);
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

static int info_tvx(const char *path, FILE *in, int json)
{
    int err;
    char detail[1024] = "";
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(in, path, &err, detail, sizeof detail);
    if (!r)
        return app_fail("info", "%s", detail);
    cJSON *o = tvx_json(tokvox_tvx_reader_header(r));
    tokvox_tvx_reader_destroy(r);
    if (json) {
        print_json(o);
        return 0;
    }
    printf("bitstream     %s (format version %d)\n", path,
           cJSON_GetObjectItem(o, "version")->valueint);
    for (cJSON *it = o->child; it; it = it->next)
        if (cJSON_IsNumber(it) && strcmp(it->string, "version"))
            printf("%-13s %.10g\n", it->string, it->valuedouble);
    printf("%-13s %s\n", "model_id", cJSON_GetObjectItem(o, "model_id")->valuestring);
    cJSON_Delete(o);
    return 0;
}

static const char info_usage[] =
    "usage: tokvox info [FILE] [--json]\n"
    "Describe a model file (architecture, rates, codebooks, bitrates, latency,\n"
    "parameters) or a .tvx bitstream (its header).  Without FILE: the default model.\n";

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
    if (path) {
        FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
        if (!in)
            return app_fail("info", "%s: cannot open (%s)", path, strerror(errno));
        unsigned char magic[4] = {0};
        size_t got = fread(magic, 1, 4, in);
        int is_tvx = got == 4 && !memcmp(magic, "TVX\x1a", 4);
        if (in != stdin)
            fclose(in);
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
        puts("usage: tokvox plugins\nList the plugins found in the search folders "
             "(TOKVOX_PLUGIN_PATH, the build's and the installed plugin folder).");
        return 0;
    }
    if (argc > 1)
        return app_fail("plugins", "takes no arguments");
    char search[4096];
    tokvox_plugin_search_path(search, sizeof search);
    printf("search path: %s\n", search);
    int broken = 0;
    tokvox_plugins_scan(list_plugin, &broken);
    return 0;
}
