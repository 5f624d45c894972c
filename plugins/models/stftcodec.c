/* stftcodec: the ConvNeXt-1D encoder and decoder of the tokvox STFT codec
 * (train/model.py).  Both are the same causal backbone:
 *
 *   in_conv (causal, kernel 3) -> N x ConvNeXt block -> LayerNorm -> proj
 *   ConvNeXt block: x + gamma * pw2(GELU(pw1(LN(dwconv(x)))))
 *
 * with the encoder mapping log-magnitude frames to the latent and the decoder
 * the latent to the Vocos head (log magnitude, phase).  Every convolution is
 * causal, so a state object carrying the last kernel-1 input frames of each
 * convolution makes blocks of any size give the same result as one pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"
#include "tokvox/tokvox.h"

#define MAX_FRAMES 64
#define MAX_BLOCKS 64
#define IN_KERNEL 3

typedef struct block_weights {
    const float *dw_w, *dw_b, *norm_w, *norm_b, *pw1_w, *pw1_b, *pw2_w, *pw2_b, *gamma;
} block_weights;

typedef struct backbone {
    int in_dim, out_dim, blocks;
    const float *in_w, *in_b, *norm_w, *norm_b, *proj_w, *proj_b;
    block_weights block[MAX_BLOCKS];
} backbone;

typedef struct stftcodec {
    int dim, ffn_dim, kernel, bins, latent_dim;
    const tokvox_kernels *k;
    backbone enc, dec;
} stftcodec;

/* Causal history and scratch of one backbone, sized for MAX_FRAMES. */
typedef struct bb_state {
    const backbone *bb;
    float *in_buf;      /* [(IN_KERNEL-1) + MAX_FRAMES][in_dim]: history then input */
    float *conv_buf;    /* [blocks][(kernel-1) + MAX_FRAMES][dim] */
    float *h;           /* [MAX_FRAMES][dim] residual stream */
    float *y;           /* [MAX_FRAMES][dim] */
    float *u;           /* [MAX_FRAMES][ffn_dim] */
} bb_state;

/* ---- binding ---------------------------------------------------------- */

static const float *get(const tokvox_weights *w, const char *prefix, const char *name, int ndim,
                        int64_t a, int64_t b, int64_t c)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    int64_t shape[3] = {a, b, c};
    return w->tensor(w->ctx, full, ndim, shape);
}

static int bind_block(const tokvox_weights *w, const stftcodec *m, const char *prefix, int i,
                      block_weights *b)
{
    char p[96];
    snprintf(p, sizeof p, "%s.blocks.%d", prefix, i);
    int64_t d = m->dim, f = m->ffn_dim;
    b->dw_w = get(w, p, "dwconv.weight", 3, d, 1, m->kernel);
    b->dw_b = get(w, p, "dwconv.bias", 1, d, 0, 0);
    b->norm_w = get(w, p, "norm.weight", 1, d, 0, 0);
    b->norm_b = get(w, p, "norm.bias", 1, d, 0, 0);
    b->pw1_w = get(w, p, "pw1.weight", 2, f, d, 0);
    b->pw1_b = get(w, p, "pw1.bias", 1, f, 0, 0);
    b->pw2_w = get(w, p, "pw2.weight", 2, d, f, 0);
    b->pw2_b = get(w, p, "pw2.bias", 1, d, 0, 0);
    b->gamma = get(w, p, "gamma", 1, d, 0, 0);
    return b->dw_w && b->dw_b && b->norm_w && b->norm_b && b->pw1_w && b->pw1_b && b->pw2_w &&
                   b->pw2_b && b->gamma
               ? 0
               : -1;
}

static int bind_backbone(const tokvox_weights *w, const stftcodec *m, const char *prefix,
                         int in_dim, int out_dim, int blocks, backbone *bb)
{
    int64_t d = m->dim;
    bb->in_dim = in_dim;
    bb->out_dim = out_dim;
    bb->blocks = blocks;
    bb->in_w = get(w, prefix, "in_conv.weight", 3, d, in_dim, IN_KERNEL);
    bb->in_b = get(w, prefix, "in_conv.bias", 1, d, 0, 0);
    bb->norm_w = get(w, prefix, "norm.weight", 1, d, 0, 0);
    bb->norm_b = get(w, prefix, "norm.bias", 1, d, 0, 0);
    bb->proj_w = get(w, prefix, "proj.weight", 2, out_dim, d, 0);
    bb->proj_b = get(w, prefix, "proj.bias", 1, out_dim, 0, 0);
    if (!bb->in_w || !bb->in_b || !bb->norm_w || !bb->norm_b || !bb->proj_w || !bb->proj_b)
        return -1;
    for (int i = 0; i < blocks; i++)
        if (bind_block(w, m, prefix, i, &bb->block[i]))
            return -1;
    return 0;
}

static int read_config(const tokvox_weights *w, stftcodec *m, int64_t *enc_blocks,
                       int64_t *dec_blocks)
{
    int64_t dim, ffn, kernel, n_fft, latent;
    if (w->config_int(w->ctx, "dim", &dim) || w->config_int(w->ctx, "ffn_dim", &ffn) ||
        w->config_int(w->ctx, "kernel", &kernel) || w->config_int(w->ctx, "n_fft", &n_fft) ||
        w->config_int(w->ctx, "latent_dim", &latent) ||
        w->config_int(w->ctx, "enc_blocks", enc_blocks) ||
        w->config_int(w->ctx, "dec_blocks", dec_blocks)) {
        w->fail(w->ctx, "stftcodec: config needs dim, ffn_dim, kernel, n_fft, latent_dim, "
                        "enc_blocks and dec_blocks");
        return -1;
    }
    if (dim < 1 || dim > 8192 || ffn < 1 || ffn > 32768 || kernel < 1 || kernel > 63 ||
        n_fft < 2 || n_fft > 65536 || latent < 1 || latent > 8192 || *enc_blocks < 0 ||
        *enc_blocks > MAX_BLOCKS || *dec_blocks < 0 || *dec_blocks > MAX_BLOCKS) {
        w->fail(w->ctx, "stftcodec: config value out of range");
        return -1;
    }
    m->dim = (int)dim;
    m->ffn_dim = (int)ffn;
    m->kernel = (int)kernel;
    m->bins = (int)(n_fft / 2 + 1);
    m->latent_dim = (int)latent;
    return 0;
}

static void codec_destroy(void *p) { free(p); }

static int codec_create(const tokvox_weights *w, const tokvox_kernels *kernels, void **out)
{
    stftcodec *m = calloc(1, sizeof *m);
    if (!m)
        return TOKVOX_ERR_NO_MEMORY;
    int64_t enc_blocks, dec_blocks;
    m->k = kernels;
    if (read_config(w, m, &enc_blocks, &dec_blocks) ||
        bind_backbone(w, m, "encoder", m->bins, m->latent_dim, (int)enc_blocks, &m->enc) ||
        bind_backbone(w, m, "decoder", m->latent_dim, 2 * m->bins, (int)dec_blocks, &m->dec)) {
        free(m);
        return TOKVOX_ERR_WEIGHTS;
    }
    *out = m;
    return TOKVOX_OK;
}

static void codec_layout(const void *p, tokvox_model_layout *out)
{
    const stftcodec *m = p;
    *out = (tokvox_model_layout){m->bins, m->latent_dim, 2 * m->bins, MAX_FRAMES};
}

/* ---- state ------------------------------------------------------------ */

typedef struct codec_state {
    const stftcodec *m;
    bb_state bb;
} codec_state;

static size_t conv_stride(const stftcodec *m)
{
    return (size_t)(m->kernel - 1 + MAX_FRAMES) * (size_t)m->dim;
}

static void state_reset(const void *model, void *p)
{
    codec_state *s = p;
    const stftcodec *m = model;
    const backbone *bb = s->bb.bb;
    memset(s->bb.in_buf, 0, sizeof(float) * (IN_KERNEL - 1) * (size_t)bb->in_dim);
    for (int i = 0; i < bb->blocks; i++)
        memset(s->bb.conv_buf + (size_t)i * conv_stride(m), 0,
               sizeof(float) * (size_t)(m->kernel - 1) * (size_t)m->dim);
}

static void state_destroy(void *p)
{
    codec_state *s = p;
    if (!s)
        return;
    free(s->bb.in_buf);
    free(s->bb.conv_buf);
    free(s->bb.h);
    free(s->bb.y);
    free(s->bb.u);
    free(s);
}

static void *state_create(const void *model, int which)
{
    const stftcodec *m = model;
    codec_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->m = m;
    s->bb.bb = which == 0 ? &m->enc : &m->dec;
    const backbone *bb = s->bb.bb;
    size_t frames = MAX_FRAMES, blocks = (size_t)(bb->blocks ? bb->blocks : 1);
    s->bb.in_buf = calloc((IN_KERNEL - 1 + frames) * (size_t)bb->in_dim, sizeof(float));
    s->bb.conv_buf = calloc(blocks * conv_stride(m), sizeof(float));
    s->bb.h = malloc(sizeof(float) * frames * (size_t)m->dim);
    s->bb.y = malloc(sizeof(float) * frames * (size_t)m->dim);
    s->bb.u = malloc(sizeof(float) * frames * (size_t)m->ffn_dim);
    if (!s->bb.in_buf || !s->bb.conv_buf || !s->bb.h || !s->bb.y || !s->bb.u) {
        state_destroy(s);
        return NULL;
    }
    return s;
}

/* ---- compute ---------------------------------------------------------- */

/* buf holds `history` frames then `frames` new ones; keep the last `history`
 * frames at the front for the next call. */
static void slide_history(float *buf, size_t history, size_t frames, size_t channels)
{
    memmove(buf, buf + frames * channels, sizeof(float) * history * channels);
}

static void convnext_block(const stftcodec *m, const block_weights *b, float *conv_buf,
                           bb_state *s, size_t frames)
{
    const tokvox_kernels *k = m->k;
    size_t d = (size_t)m->dim, f = (size_t)m->ffn_dim, hist = (size_t)m->kernel - 1;
    memcpy(conv_buf + hist * d, s->h, sizeof(float) * frames * d);
    k->conv1d_causal(conv_buf, frames, d, b->dw_w, b->dw_b, d, (size_t)m->kernel, d, s->y);
    slide_history(conv_buf, hist, frames, d);
    k->layer_norm(s->y, frames, d, b->norm_w, b->norm_b, 1e-6f);
    k->linear(s->y, frames, d, b->pw1_w, b->pw1_b, f, s->u);
    k->gelu(s->u, frames * f);
    k->linear(s->u, frames, f, b->pw2_w, b->pw2_b, d, s->y);
    for (size_t t = 0; t < frames; t++)
        for (size_t c = 0; c < d; c++)
            s->h[t * d + c] += b->gamma[c] * s->y[t * d + c];
}

static void run_backbone(const stftcodec *m, bb_state *s, const float *in, size_t frames,
                         float *out)
{
    const backbone *bb = s->bb;
    const tokvox_kernels *k = m->k;
    size_t in_dim = (size_t)bb->in_dim, d = (size_t)m->dim, hist = IN_KERNEL - 1;
    memcpy(s->in_buf + hist * in_dim, in, sizeof(float) * frames * in_dim);
    k->conv1d_causal(s->in_buf, frames, in_dim, bb->in_w, bb->in_b, d, IN_KERNEL, 1, s->h);
    slide_history(s->in_buf, hist, frames, in_dim);
    for (int i = 0; i < bb->blocks; i++)
        convnext_block(m, &bb->block[i], s->conv_buf + (size_t)i * conv_stride(m), s, frames);
    memcpy(s->y, s->h, sizeof(float) * frames * d);
    k->layer_norm(s->y, frames, d, bb->norm_w, bb->norm_b, 1e-6f);
    k->linear(s->y, frames, d, bb->proj_w, bb->proj_b, (size_t)bb->out_dim, out);
}

static int run(const void *model, void *state, const float *in, size_t frames, float *out)
{
    const stftcodec *m = model;
    codec_state *s = state;
    while (frames > 0) {
        size_t n = frames < MAX_FRAMES ? frames : MAX_FRAMES;
        run_backbone(m, &s->bb, in, n, out);
        in += n * (size_t)s->bb.bb->in_dim;
        out += n * (size_t)s->bb.bb->out_dim;
        frames -= n;
    }
    return TOKVOX_OK;
}

static const tokvox_model_api api = {
    .create = codec_create,
    .destroy = codec_destroy,
    .layout = codec_layout,
    .state_create = state_create,
    .state_reset = state_reset,
    .state_destroy = state_destroy,
    .encode = run,
    .decode = run,
};

static const tokvox_plugin_descriptor descriptor = {
    .abi_major = TOKVOX_PLUGIN_ABI_MAJOR,
    .abi_minor = TOKVOX_PLUGIN_ABI_MINOR,
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_MODEL,
    .name = "stftcodec",
    .version = "1.0.0",
    .description = "causal ConvNeXt STFT codec with a Vocos magnitude/phase head",
    .model = &api,
};

TOKVOX_PLUGIN_EXPORT const tokvox_plugin_descriptor *tokvox_plugin_entry(void);
const tokvox_plugin_descriptor *tokvox_plugin_entry(void) { return &descriptor; }
