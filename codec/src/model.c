/* Model files: map the safetensors file, read the config from its metadata,
 * load the plugins it names and let them bind their tensors. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
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
/* The model folder relative to the library's own folder (meson.build). */
#ifndef TOKVOX_REL_MODEL_DIR
#define TOKVOX_REL_MODEL_DIR ""
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

static int keep(tokvox_model *m, void *data)
{
    void **grown = realloc(m->owned, (m->n_owned + 1) * sizeof *grown);
    if (!grown)
        return -1;
    m->owned = grown;
    m->owned[m->n_owned++] = data;
    return 0;
}

/* The tensor called name if it has the shape the plugin expects; else NULL
 * and a message naming it. */
static const st_tensor *find_checked(bind_ctx *b, const char *name, int ndim,
                                     const int64_t *shape)
{
    const st_tensor *t = name ? st_find(b->model->file, name) : NULL;
    char msg[256];
    if (!t) {
        snprintf(msg, sizeof msg, "tensor '%s' is missing", name ? name : "(null)");
        bind_fail(b, msg);
        return NULL;
    }
    int same = t->ndim == ndim && shape;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", have[96] = "";
        for (int i = 0; shape && i < ndim && i < TOKVOX_MAX_DIMS; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "",
                     (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        snprintf(msg, sizeof msg, "tensor '%s' has shape [%s], expected [%s]", name, have, want);
        bind_fail(b, msg);
        return NULL;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
        snprintf(msg, sizeof msg, "tensor '%s' is not f32, f16 or bf16", name);
        bind_fail(b, msg);
        return NULL;
    }
    return t;
}

static int little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* tokvox_weights.tensor: the stored bytes, in place when aligned (the
 * shipped model's are), else an aligned copy; never converted. */
static const tokvox_tensor *bind_tensor(void *ctx, const char *name, int ndim,
                                        const int64_t *shape)
{
    bind_ctx *b = ctx;
    const st_tensor *t = find_checked(b, name, ndim, shape);
    if (!t)
        return NULL;
    char msg[256];
    if (!little_endian()) {
        snprintf(msg, sizeof msg, "tensor '%s': stored bytes are little-endian, ask tensor_f32",
                 name);
        bind_fail(b, msg);
        return NULL;
    }
    size_t elem = t->dtype == ST_F32 ? 4 : 2;
    tokvox_tensor *out = calloc(1, sizeof *out);
    if (!out || keep(b->model, out) != 0) {
        free(out);
        bind_fail(b, "out of memory");
        return NULL;
    }
    const void *data = t->data;
    if ((uintptr_t)data % elem) {
        void *copy = malloc(t->nbytes ? t->nbytes : 1);
        if (!copy || keep(b->model, copy) != 0) {
            free(copy);
            bind_fail(b, "out of memory");
            return NULL;
        }
        memcpy(copy, data, t->nbytes);
        data = copy;
    }
    out->size = sizeof *out;
    out->dtype = t->dtype == ST_F32   ? TOKVOX_DTYPE_F32
                 : t->dtype == ST_F16 ? TOKVOX_DTYPE_F16
                                      : TOKVOX_DTYPE_BF16;
    out->ndim = t->ndim;
    for (int i = 0; i < t->ndim && i < TOKVOX_MAX_DIMS; i++)
        out->shape[i] = t->shape[i];
    out->numel = t->numel;
    out->data = data;
    return out;
}

/* tokvox_weights.tensor_f32: in place when stored as aligned f32, else a
 * converted copy (st_to_f32: the one half-float converter). */
static const float *bind_tensor_f32(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    bind_ctx *b = ctx;
    const st_tensor *t = find_checked(b, name, ndim, shape);
    if (!t)
        return NULL;
    if (t->dtype == ST_F32 && little_endian() && ((uintptr_t)t->data % sizeof(float)) == 0)
        return t->data;
    float *copy = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!copy || st_to_f32(t, copy) != 0 || keep(b->model, copy) != 0) {
        free(copy);
        char msg[256];
        snprintf(msg, sizeof msg, "tensor '%s': out of memory", name);
        bind_fail(b, msg);
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

/* tokvox_weights.config_string.  The config lives until the plugins are
 * created; the strings a plugin keeps must outlive it, so they are copied. */
static const char *bind_config_string(void *ctx, const char *key)
{
    bind_ctx *b = ctx;
    const char *v = config_string(b->config, key);
    char *copy = v ? strdup(v) : NULL;
    if (copy && keep(b->model, copy) != 0) {
        free(copy);
        return NULL;
    }
    return copy;
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

/* The framing from the config, for a model plugin that does not declare
 * its own (ABI 2.0): sample_rate, hop, n_fft and the window by name. */
static int config_framing(tokvox_model *m, const cJSON *config, tokvox_model_framing *f,
                          char *detail, size_t size)
{
    memset(f, 0, sizeof *f);
    f->size = sizeof *f;
    if (config_int(config, "sample_rate", 1000, 384000, &f->sample_rate) ||
        config_int(config, "hop", 1, 1 << 15, &f->hop) ||
        config_int(config, "n_fft", 2, 1 << 16, &f->n_fft)) {
        say(detail, size, "%s: config needs integer sample_rate, hop and n_fft in range", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    const char *window = config_string(config, "window");
    f->window = window && strcmp(window, "sqrt_hann") == 0 ? TOKVOX_WINDOW_SQRT_HANN : 0;
    f->features = TOKVOX_FEATURES_LOG_MAGNITUDE;
    f->synthesis = TOKVOX_SYNTHESIS_MAG_PHASE;
    f->sub_frames = 1;
    if (cJSON_GetObjectItemCaseSensitive(config, "subframes") &&
        config_int(config, "subframes", 1, 1 << 15, &f->sub_frames)) {
        say(detail, size, "%s: config 'subframes' must be a positive integer", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    return TOKVOX_OK;
}

/* The decode-time post-filter (train/model.py, DEFAULT_CONFIG): off unless
 * the config gives a strength; the two widths default as in training. */
static int read_postfilter(tokvox_model *m, const cJSON *config, char *detail, size_t size)
{
    tk_postfilter *pf = &m->postfilter;
    *pf = (tk_postfilter){.strength = 0.0f, .envelope_bins = 15, .tilt_bins = 61};
    const cJSON *strength = cJSON_GetObjectItemCaseSensitive(config, "postfilter");
    if (!strength)
        return TOKVOX_OK;
    if (!cJSON_IsNumber(strength) || !(strength->valuedouble >= 0.0) ||
        strength->valuedouble > 4.0) {
        say(detail, size, "%s: config 'postfilter' must be a number from 0 to 4", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    pf->strength = (float)strength->valuedouble;
    const char *keys[] = {"postfilter_envelope_bins", "postfilter_tilt_bins"};
    int *widths[] = {&pf->envelope_bins, &pf->tilt_bins};
    for (int i = 0; i < 2; i++) {
        if (cJSON_GetObjectItemCaseSensitive(config, keys[i]) &&
            (config_int(config, keys[i], 1, 1 << 16, widths[i]) || *widths[i] % 2 == 0)) {
            say(detail, size, "%s: config '%s' must be an odd positive integer", m->path,
                keys[i]);
            return TOKVOX_ERR_FORMAT;
        }
    }
    return TOKVOX_OK;
}

/* "decodes_model_ids": the 16-hex-digit ids of other model files whose
 * codes this one decodes (tokvox_model_info.compatible_ids). */
static int read_compatible_ids(tokvox_model *m, const cJSON *config, char *detail, size_t size)
{
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(config, "decodes_model_ids");
    m->info.num_compatible_ids = 0;
    if (!ids)
        return TOKVOX_OK;
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) > TOKVOX_MAX_COMPATIBLE_IDS) {
        say(detail, size, "%s: config 'decodes_model_ids' must be a list of at most %d ids",
            m->path, TOKVOX_MAX_COMPATIBLE_IDS);
        return TOKVOX_ERR_FORMAT;
    }
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        const char *hex = cJSON_GetStringValue(id);
        uint64_t v;
        if (tokvox_model_id_parse(hex, &v)) {
            say(detail, size, "%s: config 'decodes_model_ids': %s is not 16 lowercase hex digits",
                m->path, hex ? hex : "an entry");
            return TOKVOX_ERR_FORMAT;
        }
        m->info.compatible_ids[m->info.num_compatible_ids++] = v;
    }
    return TOKVOX_OK;
}

/* The engine's own part: the model's framing (declared by the plugin, or
 * from the config), checked against what the engine runs, and the
 * front-end's log floor. */
static int read_framing(tokvox_model *m, const cJSON *config, char *detail, size_t size)
{
    tokvox_model_framing f;
    const tokvox_model_framing *declared =
        m->model_api->framing ? m->model_api->framing(m->model) : NULL;
    if (declared) {
        /* a 2.1 framing ends before sub_frames: the copy reads it as 0 */
        if (tk_copy_sized(&f, sizeof f, declared, 0, offsetof(tokvox_model_framing, sub_frames))) {
            say(detail, size, "%s: model plugin %s declares a malformed framing", m->path,
                m->model_plugin.desc.name);
            return TOKVOX_ERR_PLUGIN_INVALID;
        }
        if (f.sample_rate < 1000 || f.sample_rate > 384000 || f.hop < 1 || f.hop > (1 << 15) ||
            f.n_fft < 2 || f.n_fft > (1 << 16)) {
            say(detail, size, "%s: sample_rate, hop or n_fft out of range", m->path);
            return TOKVOX_ERR_FORMAT;
        }
    } else {
        int err = config_framing(m, config, &f, detail, size);
        if (err)
            return err;
    }
    /* a plugin of 2.1 or older declares no sub-frames: one per code frame */
    if (f.sub_frames == 0)
        f.sub_frames = 1;
    if (f.sub_frames < 0 || f.hop % f.sub_frames) {
        say(detail, size, "%s: %d sub-frames do not divide the hop of %d samples", m->path,
            f.sub_frames, f.hop);
        return TOKVOX_ERR_FORMAT;
    }
    /* What the engine runs today; a model declaring anything else is
     * refused by name rather than run wrongly (docs/plugins.md, "Framing"). */
    if (f.n_fft != 2 * f.hop || f.window != TOKVOX_WINDOW_SQRT_HANN ||
        f.features != TOKVOX_FEATURES_LOG_MAGNITUDE || f.synthesis != TOKVOX_SYNTHESIS_MAG_PHASE) {
        say(detail, size,
            "%s: only n_fft = 2*hop with a sqrt_hann window, log-magnitude features and "
            "magnitude/phase synthesis are supported",
            m->path);
        return TOKVOX_ERR_UNSUPPORTED;
    }
    tokvox_model_info *info = &m->info;
    info->sample_rate = f.sample_rate;
    info->hop = f.hop;
    info->n_fft = f.n_fft;
    m->sub_frames = f.sub_frames;
    const cJSON *floor_item = cJSON_GetObjectItemCaseSensitive(config, "log_floor");
    m->log_floor = cJSON_IsNumber(floor_item) ? (float)floor_item->valuedouble : 1e-5f;
    if (!(m->log_floor > 0.0f)) {
        say(detail, size, "%s: log_floor must be positive", m->path);
        return TOKVOX_ERR_FORMAT;
    }
    /* a sample waits a hop for its frame, then the window overhang of the
     * synthesis: n_fft - hop/K (docs/plugins.md, "Framing") */
    info->latency_samples = info->hop + info->n_fft - info->hop / m->sub_frames;
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
    m->model_api = &m->model_plugin.api.model;
    m->quantizer_api = &m->quantizer_plugin.api.quantizer;
    bind_ctx b = {.model = m, .config = config};
    tokvox_weights w = {sizeof w,        &b,        bind_tensor,       bind_tensor_f32,
                        bind_config_int, bind_config_string, bind_fail};
    err = m->quantizer_api->create(&m->quantizer_plugin.host, &w, &m->quantizer);
    if (!err)
        err = m->model_api->create(&m->model_plugin.host, &w, &m->model);
    if (err) {
        say(detail, size, "%s: %s", m->path, b.message[0] ? b.message : tokvox_strerror(err));
        return err < 0 ? err : TOKVOX_ERR_WEIGHTS;
    }
    return TOKVOX_OK;
}

static int check_layouts(tokvox_model *m, char *detail, size_t size)
{
    const tokvox_model_layout *ml = m->model_api->layout(m->model);
    const tokvox_quantizer_layout *ql = m->quantizer_api->layout(m->quantizer);
    if (!ml || !ql || tk_copy_sized(&m->layout, sizeof m->layout, ml, 0, sizeof m->layout) ||
        tk_copy_sized(&m->qlayout, sizeof m->qlayout, ql, 0, sizeof m->qlayout)) {
        say(detail, size, "%s: a plugin gave no layout, or a malformed one", m->path);
        return TOKVOX_ERR_PLUGIN_INVALID;
    }
    const tokvox_model_layout *l = &m->layout;
    const tokvox_quantizer_layout *q = &m->qlayout;
    int bins = m->info.n_fft / 2 + 1;
    if (l->feature_dim != bins || l->head_dim != 2 * bins * m->sub_frames ||
        l->latent_dim != q->dim ||
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
    snprintf(info->architecture, sizeof info->architecture, "%s", m->model_plugin.desc.name);
    snprintf(info->quantizer, sizeof info->quantizer, "%s", m->quantizer_plugin.desc.name);
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

/* The shipped model file `file` (e.g. "tokvox-16k.safetensors") where the
 * shipped models live: the source tree's models/ when running uninstalled,
 * beside the library when installed (so a moved prefix still works), else
 * the compiled-in folder. */
static const char *shipped_model_path(const char *file, char *buf, size_t size)
{
    if (tk_running_uninstalled()) {
        snprintf(buf, size, "%s/%s", TOKVOX_BUILD_MODEL_DIR, file);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    char dir[PATH_MAX];
    if (tk_beside_library(TOKVOX_REL_MODEL_DIR, dir, sizeof dir) &&
        (size_t)snprintf(buf, size, "%s/%s", dir, file) < size && access(buf, R_OK) == 0)
        return buf;
    snprintf(buf, size, "%s/%s", TOKVOX_MODEL_DIR, file);
    return buf;
}

static const char *default_model_path(char *buf, size_t size)
{
    const char *env = getenv("TOKVOX_MODEL");
    if (env && *env)
        return env;
    return shipped_model_path(DEFAULT_MODEL_FILE, buf, size);
}

/* A bare name that is not a file here ("tokvox-16k-ld") names a shipped
 * model: NAME.safetensors in the shipped models' folder, if it is there. */
static const char *resolve_model_name(const char *path, char *buf, size_t size)
{
    char file[256];
    if (strchr(path, '/') || access(path, F_OK) == 0 || strlen(path) > 200)
        return path;
    snprintf(file, sizeof file, "%s.safetensors", path);
    const char *found = shipped_model_path(file, buf, size);
    return access(found, R_OK) == 0 ? found : path;
}

/* Config, framing, plugins and layouts of an opened file: the part of
 * loading that does not care where the bytes came from.  Takes m; returns
 * it ready, or NULL (destroyed) with *error. */
static tokvox_model *finish_load(tokvox_model *m, int err, int *error, char *detail,
                                 size_t detail_size)
{
    cJSON *config = NULL;
    m->info.size = sizeof m->info; /* the model's own copy is whole (tokvox_model_info_decodes) */
    if (!err)
        err = parse_config(m, &config, detail, detail_size);
    if (!err)
        err = create_plugins(m, config, detail, detail_size);
    if (!err)
        err = read_framing(m, config, detail, detail_size);
    if (!err)
        err = read_postfilter(m, config, detail, detail_size);
    if (!err)
        err = read_compatible_ids(m, config, detail, detail_size);
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

static tokvox_model *model_named(const char *name, int *error)
{
    tokvox_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(name))) {
        free(m);
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    return m;
}

tokvox_model *tokvox_model_load(const char *path, int *error, char *detail, size_t detail_size)
{
    int dummy;
    error = error ? error : &dummy;
    char fallback[PATH_MAX];
    path = path ? resolve_model_name(path, fallback, sizeof fallback)
                : default_model_path(fallback, sizeof fallback);
    tokvox_model *m = model_named(path, error);
    if (!m)
        return NULL;
    int err = TOKVOX_OK;
    m->file = st_open(path, &err, detail, detail_size);
    return finish_load(m, m->file ? TOKVOX_OK : err, error, detail, detail_size);
}

tokvox_model *tokvox_model_load_memory(const void *data, size_t size, const char *name,
                                       int *error, char *detail, size_t detail_size)
{
    int dummy;
    error = error ? error : &dummy;
    if (!data && size) {
        *error = TOKVOX_ERR_INVALID_ARGUMENT;
        return NULL;
    }
    tokvox_model *m = model_named(name ? name : "<memory>", error);
    if (!m)
        return NULL;
    int err = TOKVOX_OK;
    m->file = st_open_memory(data ? data : "", size, m->path, &err, detail, detail_size);
    return finish_load(m, m->file ? TOKVOX_OK : err, error, detail, detail_size);
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
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    st_close(m->file);
    free(m->config_json);
    free(m->path);
    free(m);
}

int tokvox_model_get_info(const tokvox_model *m, tokvox_model_info *info)
{
    if (!m || !info || info->size < TK_MODEL_INFO_SIZE_1)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    tokvox_model_info full = m->info;
    full.size = info->size < sizeof full ? info->size : sizeof full;
    memcpy(info, &full, full.size);
    return TOKVOX_OK;
}

int tokvox_model_id_parse(const char *text, uint64_t *id)
{
    if (!text || !id || strlen(text) != 16 || strspn(text, "0123456789abcdef") != 16)
        return -1;
    *id = strtoull(text, NULL, 16);
    return 0;
}

int tokvox_model_info_decodes(const tokvox_model_info *info, uint64_t model_id)
{
    if (!info || info->size < TK_MODEL_INFO_SIZE_1)
        return 0;
    if (model_id == info->model_id)
        return 1;
    if (!TOKVOX_HAS(info, tokvox_model_info, compatible_ids))
        return 0;
    int n = info->num_compatible_ids < TOKVOX_MAX_COMPATIBLE_IDS ? info->num_compatible_ids
                                                                 : TOKVOX_MAX_COMPATIBLE_IDS;
    for (int i = 0; i < n; i++)
        if (info->compatible_ids[i] == model_id)
            return 1;
    return 0;
}

const char *tokvox_model_config_json(const tokvox_model *m) { return m ? m->config_json : NULL; }

const char *tokvox_model_path(const tokvox_model *m) { return m ? m->path : NULL; }

size_t tokvox_frames_for_samples(const tokvox_model *m, size_t n)
{
    size_t hop = (size_t)m->info.hop;
    return (n + hop - 1) / hop + 1;
}
