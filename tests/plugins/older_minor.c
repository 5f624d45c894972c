/* A model plugin as built against ABI 2.0, the previous minor: its model
 * API table ends before the 2.1 field (framing), and its entry says 2.0.
 * The current host must load it, read the framing from the model file's
 * config instead, and run it.
 *
 * The "model" is trivial but real: the latent is the first latent_dim log
 * magnitudes, plus the previous frame's (a causal history in the state, so
 * blocks of any size must agree); the head is the latent, zero-padded, once
 * per synthesis sub-frame (the config's `subframes`, which the host reads
 * from the config too, as for any plugin without a framing callback). */
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"

#define MAX_FRAMES 16

typedef struct model {
    tokvox_model_layout layout;
} model;

typedef struct state {
    float *previous;  /* [latent_dim] the previous frame's input */
} state;

static int create(const tokvox_host *h, const tokvox_weights *w, void **out)
{
    (void)h;
    int64_t n_fft, latent, sub_frames = 1;
    if (w->config_int(w->ctx, "n_fft", &n_fft) || w->config_int(w->ctx, "latent_dim", &latent) ||
        n_fft < 2 || n_fft > 65536 || latent < 1 || latent > n_fft / 2 + 1) {
        w->fail(w->ctx, "older_minor: config needs n_fft and latent_dim <= n_fft/2+1");
        return TOKVOX_ERR_WEIGHTS;
    }
    if (w->config_int(w->ctx, "subframes", &sub_frames) == 0 && (sub_frames < 1 || sub_frames > 64)) {
        w->fail(w->ctx, "older_minor: subframes must be 1..64");
        return TOKVOX_ERR_WEIGHTS;
    }
    model *m = calloc(1, sizeof *m);
    if (!m)
        return TOKVOX_ERR_NO_MEMORY;
    int bins = (int)(n_fft / 2 + 1);
    m->layout = (tokvox_model_layout){sizeof m->layout, bins, (int)latent,
                                      2 * bins * (int)sub_frames, MAX_FRAMES};
    *out = m;
    return TOKVOX_OK;
}

static void destroy(void *m) { free(m); }
static const tokvox_model_layout *layout(const void *m) { return &((const model *)m)->layout; }

static void *state_create(const void *p)
{
    const model *m = p;
    state *s = calloc(1, sizeof *s);
    if (s && !(s->previous = calloc((size_t)m->layout.latent_dim, sizeof(float)))) {
        free(s);
        s = NULL;
    }
    return s;
}

static void state_reset(const void *p, void *st)
{
    const model *m = p;
    memset(((state *)st)->previous, 0, sizeof(float) * (size_t)m->layout.latent_dim);
}

static void state_destroy(const void *p, void *st)
{
    (void)p;
    if (st)
        free(((state *)st)->previous);
    free(st);
}

static int encode(const void *p, void *st, const float *x, size_t frames, float *latent)
{
    const model *m = p;
    state *s = st;
    size_t in = (size_t)m->layout.feature_dim, dim = (size_t)m->layout.latent_dim;
    for (size_t t = 0; t < frames; t++)
        for (size_t i = 0; i < dim; i++) {
            latent[t * dim + i] = 0.5f * x[t * in + i] + 0.25f * s->previous[i];
            s->previous[i] = x[t * in + i];
        }
    return TOKVOX_OK;
}

static int decode(const void *p, void *st, const float *latent, size_t frames, float *head)
{
    const model *m = p;
    (void)st;
    size_t dim = (size_t)m->layout.latent_dim, out = (size_t)m->layout.head_dim;
    size_t spectrum = 2 * (size_t)m->layout.feature_dim; /* one sub-frame's */
    for (size_t t = 0; t < frames; t++) {
        memset(head + t * out, 0, sizeof(float) * out);
        for (size_t k = 0; k < out / spectrum; k++)
            for (size_t i = 0; i < dim; i++) /* quiet log magnitudes */
                head[t * out + k * spectrum + i] = latent[t * dim + i] - 8.0f;
    }
    return TOKVOX_OK;
}

/* As a 2.0 build laid it out: everything before framing. */
static const tokvox_model_api api = {
    .size = offsetof(tokvox_model_api, framing),
    .create = create,
    .destroy = destroy,
    .layout = layout,
    .encoder_state_create = state_create,
    .decoder_state_create = state_create,
    .state_reset = state_reset,
    .state_destroy = state_destroy,
    .encode = encode,
    .decode = decode,
};
static const tokvox_plugin_descriptor descriptor = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_MODEL,
    .name = "older_minor",
    .version = "2.0.0",
    .description = "test model plugin built against ABI 2.0",
    .api = &api,
};

static uint32_t count(void) { return 1; }
static const tokvox_plugin_descriptor *get(uint32_t i) { return i == 0 ? &descriptor : NULL; }

TOKVOX_PLUGIN_EXPORT extern const tokvox_plugin_entry tokvox_entry;
const tokvox_plugin_entry tokvox_entry = {2, 0, sizeof(tokvox_plugin_entry), NULL, NULL, count,
                                          get};
