/* template_conv: the smallest real model plugin, to copy (docs/plugins.md).
 *
 * Encoder and decoder are one causal convolution each (kernel 2: a frame
 * and the one before it), over the engine's STFT framing: log magnitudes in,
 * log magnitude and phase out.  It shows every part a model needs: config
 * and its framing, binding weights (as f32: a model with big linears can
 * take halves as stored instead, see stftcodec's get_linear), the layout,
 * encoder and decoder states holding the causal history, and reset.
 * Rename it, then replace what run() computes.
 *
 * Config: sample_rate, hop, n_fft (= 2*hop), window, latent_dim.  Tensors:
 * encoder.conv.{weight [latent][bins][2], bias [latent]} and
 * decoder.conv.{weight [2*bins][latent][2], bias [2*bins]}, bins =
 * n_fft/2+1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"

#define NAME "template_conv"
#define KERNEL 2
#define MAX_FRAMES 32 /* the largest block encode/decode take; states size for it */

typedef struct conv {
    int in, out;
    const float *w, *b;
} conv;

/* The instance: immutable after create. */
typedef struct template_conv {
    const tokvox_kernels *k;
    conv enc, dec;
    tokvox_model_layout layout;
    tokvox_model_framing framing;
} template_conv;

/* A state: the causal history of one conv, then room for a block. */
typedef struct state {
    const conv *c;
    float *x; /* [(KERNEL-1) + MAX_FRAMES][c->in] */
} state;

static int bind_conv(const tokvox_weights *w, const char *prefix, int in, int out, conv *c)
{
    char name[64];
    int64_t wshape[3] = {out, in, KERNEL}, bshape[1] = {out};
    c->in = in;
    c->out = out;
    snprintf(name, sizeof name, "%s.conv.weight", prefix);
    c->w = w->tensor_f32(w->ctx, name, 3, wshape);
    snprintf(name, sizeof name, "%s.conv.bias", prefix);
    c->b = w->tensor_f32(w->ctx, name, 1, bshape);
    return c->w && c->b ? 0 : -1;
}

static int read_framing(const tokvox_weights *w, tokvox_model_framing *f, int64_t *latent)
{
    int64_t rate, hop, n_fft;
    if (w->config_int(w->ctx, "sample_rate", &rate) || w->config_int(w->ctx, "hop", &hop) ||
        w->config_int(w->ctx, "n_fft", &n_fft) || w->config_int(w->ctx, "latent_dim", latent)) {
        w->fail(w->ctx, NAME ": config needs sample_rate, hop, n_fft and latent_dim");
        return -1;
    }
    if (rate < 1 || rate > 1000000 || hop < 1 || hop > 65536 || n_fft < 2 || n_fft > 65536 ||
        *latent < 1 || *latent > 4096) {
        w->fail(w->ctx, NAME ": config value out of range");
        return -1;
    }
    const char *window = w->config_string(w->ctx, "window");
    *f = (tokvox_model_framing){sizeof *f,
                                (int)rate,
                                (int)hop,
                                (int)n_fft,
                                window && !strcmp(window, "sqrt_hann") ? TOKVOX_WINDOW_SQRT_HANN
                                                                       : 0,
                                TOKVOX_FEATURES_LOG_MAGNITUDE,
                                TOKVOX_SYNTHESIS_MAG_PHASE,
                                1 /* sub_frames: one synthesis frame per code frame */};
    return 0;
}

static void tc_destroy(void *m) { free(m); }

/* [load-thread] */
static int tc_create(const tokvox_host *host, const tokvox_weights *w, void **out)
{
    const tokvox_kernels *k = host->get_extension(host, TOKVOX_EXT_KERNELS);
    if (!k) {
        w->fail(w->ctx, NAME ": the host offers no kernels");
        return TOKVOX_ERR_UNSUPPORTED;
    }
    template_conv *m = calloc(1, sizeof *m);
    if (!m)
        return TOKVOX_ERR_NO_MEMORY;
    int64_t latent;
    m->k = k;
    if (read_framing(w, &m->framing, &latent)) {
        free(m);
        return TOKVOX_ERR_WEIGHTS;
    }
    int bins = m->framing.n_fft / 2 + 1;
    if (bind_conv(w, "encoder", bins, (int)latent, &m->enc) ||
        bind_conv(w, "decoder", (int)latent, 2 * bins, &m->dec)) {
        free(m);
        return TOKVOX_ERR_WEIGHTS;
    }
    m->layout = (tokvox_model_layout){sizeof m->layout, bins, (int)latent, 2 * bins, MAX_FRAMES};
    *out = m;
    return TOKVOX_OK;
}

static const tokvox_model_layout *tc_layout(const void *m)
{
    return &((const template_conv *)m)->layout;
}

static const tokvox_model_framing *tc_framing(const void *m)
{
    return &((const template_conv *)m)->framing;
}

/* [any-thread] All the memory a session needs, allocated once here. */
static void *state_create(const conv *c)
{
    state *s = calloc(1, sizeof *s);
    if (s && !(s->x = calloc((size_t)(KERNEL - 1 + MAX_FRAMES) * (size_t)c->in, sizeof(float)))) {
        free(s);
        return NULL;
    }
    if (s)
        s->c = c;
    return s;
}

static void *tc_encoder_state(const void *m) { return state_create(&((const template_conv *)m)->enc); }
static void *tc_decoder_state(const void *m) { return state_create(&((const template_conv *)m)->dec); }

/* [session-thread] [no-alloc] */
static void tc_reset(const void *m, void *p)
{
    (void)m;
    state *s = p;
    memset(s->x, 0, sizeof(float) * (KERNEL - 1) * (size_t)s->c->in);
}

static void tc_state_destroy(const void *m, void *p)
{
    (void)m;
    state *s = p;
    if (s)
        free(s->x);
    free(s);
}

/* [session-thread] [no-alloc] The history, then the block, through the
 * conv; the last KERNEL-1 frames become the next call's history. */
static int run(const void *model, void *p, const float *in, size_t frames, float *out)
{
    const template_conv *m = model;
    state *s = p;
    const conv *c = s->c;
    size_t n_in = (size_t)c->in, hist = KERNEL - 1;
    if (frames > MAX_FRAMES)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    memcpy(s->x + hist * n_in, in, sizeof(float) * frames * n_in);
    m->k->conv1d_causal(s->x, frames, n_in, c->w, c->b, (size_t)c->out, KERNEL, 1, out);
    memmove(s->x, s->x + frames * n_in, sizeof(float) * hist * n_in);
    return TOKVOX_OK;
}

static const tokvox_model_api api = {
    .size = sizeof(tokvox_model_api),
    .create = tc_create,
    .destroy = tc_destroy,
    .layout = tc_layout,
    .encoder_state_create = tc_encoder_state,
    .decoder_state_create = tc_decoder_state,
    .state_reset = tc_reset,
    .state_destroy = tc_state_destroy,
    .encode = run,
    .decode = run,
    .framing = tc_framing,
};

static const tokvox_plugin_descriptor descriptor = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_MODEL,
    .name = NAME,
    .version = "1.0.0",
    .description = "template: one causal conv each way over the STFT framing",
    .api = &api,
};

static const tokvox_plugin_descriptor *const plugins[] = {&descriptor};
TOKVOX_PLUGIN_ENTRY(plugins);
