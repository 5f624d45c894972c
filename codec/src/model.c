/* Model files: map the safetensors file, read the config from its metadata,
 * load the plugins it names and let them bind their tensors. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "kernels.h"
#include "model_internal.h"

#ifndef TOKVOX_BUILD_MODEL_DIR
#define TOKVOX_BUILD_MODEL_DIR ""
#endif
#ifndef TOKVOX_MODEL_DIR
#define TOKVOX_MODEL_DIR "/usr/local/share/tokvox/models"
#endif
#define DEFAULT_MODEL_FILE "tokvox-16k.safetensors"
#define CONFIG_KEY "config"

/* What a plugin's create sees through tokvox_weights. */
typedef struct bind_ctx {
    tokvox_model *model;
    const cJSON *config;
    char message[512];
} bind_ctx;

static void say(char *detail, size_t size, const char *fmt, ...)
{
    if (!detail || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, size, fmt, ap);
    va_end(ap);
}

static void bind_fail(void *ctx, const char *message)
{
    bind_ctx *b = ctx;
    if (!b->message[0])
        snprintf(b->message, sizeof b->message, "%s", message);
}

static int keep_converted(tokvox_model *m, float *data)
{
    float **grown = realloc(m->converted, (m->n_converted + 1) * sizeof *grown);
    if (!grown)
        return -1;
    m->converted = grown;
    m->converted[m->n_converted++] = data;
    return 0;
}

static const float *bind_tensor(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    bind_ctx *b = ctx;
    const st_tensor *t = st_find(b->model->file, name);
    char msg[256];
    if (!t) {
        snprintf(msg, sizeof msg, "tensor '%s' is missing", name);
        bind_fail(ctx, msg);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", have[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "",
                     (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        snprintf(msg, sizeof msg, "tensor '%s' has shape [%s], expected [%s]", name, have, want);
        bind_fail(ctx, msg);
        return NULL;
    }
    if (t->dtype == ST_F32 && ((uintptr_t)t->data % sizeof(float)) == 0)
        return t->data; /* used in place from the mapping */
    float *copy = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!copy || st_to_f32(t, copy) != 0 || keep_converted(b->model, copy) != 0) {
        free(copy);
        snprintf(msg, sizeof msg, "tensor '%s': unsupported dtype or out of memory", name);
        bind_fail(ctx, msg);
        return NULL;
    }
    return copy;
}

static int bind_config_int(void *ctx, const char *key, int64_t *out)
{
    const bind_ctx *b = ctx;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b->config, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 1e15)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static const char *config_string(const cJSON *config, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int config_int(const cJSON *config, const char *key, int lo, int hi, int *out)
{
    bind_ctx b = {.config = config};
    int64_t v;
    if (bind_config_int(&b, key, &v) != 0 || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* The engine's own part of the config: rates, framing, front-end, head. */
static int read_framing(tokvox_model *m, const cJSON *config, char *detail, size_t size)
{
    tokvox_model_info *info = &m->info;
    if (config_int(config, "sample_rate", 1000, 384000, &info->sample_rate) ||
        config_int(config, "hop", 1, 1 << 15, &info->hop) ||
        config_int(config, "n_fft", 2, 1 << 16, &info->n_fft)) {
        say(detail, size, "%s: config needs integer sample_rate, hop and n_fft in range", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    const char *window = config_string(config, "window");
    if (info->n_fft != 2 * info->hop || !window || strcmp(window, "sqrt_hann") != 0) {
        say(detail, size, "%s: only n_fft = 2*hop with a sqrt_hann window is supported",
            m->path);
        return TOKVOX_ERR_UNSUPPORTED;
    }
    const cJSON *floor_item = cJSON_GetObjectItemCaseSensitive(config, "log_floor");
    m->log_floor = cJSON_IsNumber(floor_item) ? (float)floor_item->valuedouble : 1e-5f;
    if (!(m->log_floor > 0.0f)) {
        say(detail, size, "%s: log_floor must be positive", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    info->latency_samples = info->n_fft;
    const char *name = config_string(config, "name");
    snprintf(info->name, sizeof info->name, "%s", name ? name : "unnamed");
    return TOKVOX_OK;
}

static int load_plugin(tokvox_model *m, const cJSON *config, const char *key, int kind,
                       tk_plugin *out, char *detail, size_t size)
{
    const char *name = config_string(config, key);
    if (!name) {
        say(detail, size, "%s: config does not name its %s plugin ('%s')", m->path, key, key);
        return TOKVOX_ERR_FORMAT;
    }
    char why[1024];
    int err = tk_plugin_load(name, kind, out, why, sizeof why);
    if (err)
        say(detail, size, "%s: %s", m->path, why);
    return err;
}

static int create_plugins(tokvox_model *m, const cJSON *config, char *detail, size_t size)
{
    int err = load_plugin(m, config, "model", TOKVOX_PLUGIN_MODEL, &m->model_plugin, detail, size);
    if (!err)
        err = load_plugin(m, config, "quantizer", TOKVOX_PLUGIN_QUANTIZER, &m->quantizer_plugin,
                          detail, size);
    if (err)
        return err;
    m->model_api = m->model_plugin.desc->model;
    m->quantizer_api = m->quantizer_plugin.desc->quantizer;
    bind_ctx b = {.model = m, .config = config};
    tokvox_weights w = {&b, bind_tensor, bind_config_int, bind_fail};
    err = m->quantizer_api->create(&w, tk_kernels(), &m->quantizer);
    if (!err)
        err = m->model_api->create(&w, tk_kernels(), &m->model);
    if (err) {
        say(detail, size, "%s: %s", m->path, b.message[0] ? b.message : tokvox_strerror(err));
        return err < 0 ? err : TOKVOX_ERR_WEIGHTS;
    }
    return TOKVOX_OK;
}

static int check_layouts(tokvox_model *m, char *detail, size_t size)
{
    m->model_api->layout(m->model, &m->layout);
    m->quantizer_api->layout(m->quantizer, &m->qlayout);
    const tokvox_model_layout *l = &m->layout;
    const tokvox_quantizer_layout *q = &m->qlayout;
    int bins = m->info.n_fft / 2 + 1;
    if (l->feature_dim != bins || l->head_dim != 2 * bins || l->latent_dim != q->dim ||
        l->max_frames < 1 || q->groups < 1 || q->stages < 1 ||
        q->groups * q->stages > 64 || q->codebook_size < 2 || q->codebook_size > 65536) {
        say(detail, size, "%s: model and quantizer layouts do not fit together", m->path);
        return TOKVOX_ERR_WEIGHTS;
    }
    tokvox_model_info *info = &m->info;
    info->groups = q->groups;
    info->stages = q->stages;
    info->num_codebooks = q->groups * q->stages;
    info->codebook_size = q->codebook_size;
    info->codebook_bits = 1;
    while ((1 << info->codebook_bits) < q->codebook_size)
        info->codebook_bits++;
    snprintf(info->architecture, sizeof info->architecture, "%s", m->model_plugin.desc->name);
    snprintf(info->quantizer, sizeof info->quantizer, "%s", m->quantizer_plugin.desc->name);
    return TOKVOX_OK;
}

static void count_params(tokvox_model *m)
{
    m->info.num_params = 0;
    for (size_t i = 0; i < st_count(m->file); i++) {
        const st_tensor *t = st_at(m->file, i);
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16)
            m->info.num_params += t->numel;
    }
    size_t size;
    const void *bytes = st_bytes(m->file, &size);
    m->info.model_id = XXH3_64bits(bytes, size);
}

static int parse_config(tokvox_model *m, cJSON **config, char *detail, size_t size)
{
    const char *text = st_metadata(m->file, CONFIG_KEY);
    if (!text) {
        say(detail, size, "%s: no '%s' entry in the safetensors metadata (not a tokvox model)",
            m->path, CONFIG_KEY);
        return TOKVOX_ERR_FORMAT;
    }
    *config = cJSON_Parse(text);
    if (!cJSON_IsObject(*config)) {
        say(detail, size, "%s: the metadata config is not a JSON object", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    m->config_json = strdup(text);
    return m->config_json ? TOKVOX_OK : TOKVOX_ERR_NO_MEMORY;
}

static const char *default_model_path(char *buf, size_t size)
{
    const char *env = getenv("TOKVOX_MODEL");
    if (env && *env)
        return env;
    if (tk_running_uninstalled()) {
        snprintf(buf, size, "%s/%s", TOKVOX_BUILD_MODEL_DIR, DEFAULT_MODEL_FILE);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    snprintf(buf, size, "%s/%s", TOKVOX_MODEL_DIR, DEFAULT_MODEL_FILE);
    return buf;
}

tokvox_model *tokvox_model_load(const char *path, int *error, char *detail, size_t detail_size)
{
    int dummy;
    error = error ? error : &dummy;
    char fallback[PATH_MAX];
    if (!path)
        path = default_model_path(fallback, sizeof fallback);
    tokvox_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    cJSON *config = NULL;
    int err = TOKVOX_OK;
    m->file = st_open(path, &err, detail, detail_size);
    if (m->file)
        err = parse_config(m, &config, detail, detail_size);
    if (!err)
        err = read_framing(m, config, detail, detail_size);
    if (!err)
        err = create_plugins(m, config, detail, detail_size);
    if (!err)
        err = check_layouts(m, detail, detail_size);
    cJSON_Delete(config);
    if (err) {
        tokvox_model_destroy(m);
        *error = err;
        return NULL;
    }
    count_params(m);
    *error = TOKVOX_OK;
    return m;
}

void tokvox_model_destroy(tokvox_model *m)
{
    if (!m)
        return;
    if (m->model)
        m->model_api->destroy(m->model);
    if (m->quantizer)
        m->quantizer_api->destroy(m->quantizer);
    tk_plugin_close(&m->model_plugin);
    tk_plugin_close(&m->quantizer_plugin);
    for (size_t i = 0; i < m->n_converted; i++)
        free(m->converted[i]);
    free(m->converted);
    st_close(m->file);
    free(m->config_json);
    free(m->path);
    free(m);
}

void tokvox_model_get_info(const tokvox_model *m, tokvox_model_info *info)
{
    if (m && info)
        *info = m->info;
}

const char *tokvox_model_config_json(const tokvox_model *m) { return m ? m->config_json : NULL; }

const char *tokvox_model_path(const tokvox_model *m) { return m ? m->path : NULL; }

size_t tokvox_frames_for_samples(const tokvox_model *m, size_t n)
{
    size_t hop = (size_t)m->info.hop;
    return (n + hop - 1) / hop + 1;
}
