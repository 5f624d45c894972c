/* stftcodec: the ConvNeXt-1D encoder and decoder of the tokvox STFT codec
 * (train/model.py).  Both are the same causal backbone:
 *
 *   in_conv (causal, kernel 3) -> N x ConvNeXt block -> LayerNorm -> proj
 *   ConvNeXt block: x + gamma * pw2(GELU(pw1(LN(dwconv(x)))))
 *
 * with the encoder mapping log-magnitude frames to the latent and the decoder
 * the latent to the Vocos head (log magnitude, phase; K of them per frame
 * with the config's `subframes` = K, which the framing declares).  Every convolution is
 * causal, so a state object carrying the last kernel-1 input frames of each
 * convolution makes blocks of any size give the same result as one pass.
 *
 * Speed: every linear runs over a whole block of frames (a matrix product in
 * the host's kernels), and in_conv is one too, over its input with the
 * kernel taps interleaved.  When the model file stores a linear's weights as
 * halves and the host has linear_f16, they are used as stored, straight
 * from the file's mapping: the same bits as with f32 weights, at half the
 * memory traffic (what limits a stream: one frame reads every weight once)
 * and without an f32 copy.  Everything else is asked for as f32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"

#define MAX_FRAMES 256
#define MAX_BLOCKS 64
#define IN_KERNEL 3
/* in_conv interleaves its input this many frames at a time. */
#define IN_CHUNK 16

/* A linear's weights: the stored halves (used with linear_f16), or else f32;
 * exactly one is set. */
typedef struct lin_weights {
    const float *w;
    const uint16_t *half;
} lin_weights;

typedef struct block_weights {
    const float *dw_w, *dw_b, *norm_w, *norm_b, *pw1_b, *pw2_b, *gamma;
    lin_weights pw1, pw2;
} block_weights;

typedef struct backbone {
    int in_dim, out_dim, blocks;
    const float *in_b, *norm_w, *norm_b, *proj_b;
    lin_weights in, proj;  /* in_conv's [dim][in_dim][IN_KERNEL] is a linear over in_dim * 3 */
    block_weights block[MAX_BLOCKS];
} backbone;

typedef struct stftcodec {
    int dim, ffn_dim, kernel, bins, latent_dim;
    int head_dim;       /* 2 * bins per synthesis sub-frame */
    const tokvox_kernels *k;
    backbone enc, dec;
    tokvox_model_layout layout;
    tokvox_model_framing framing;
} stftcodec;

/* Causal history and scratch of one backbone, sized for MAX_FRAMES. */
typedef struct bb_state {
    const backbone *bb;
    float *in_buf;      /* [(IN_KERNEL-1) + MAX_FRAMES][in_dim]: history then input */
    float *taps;        /* [IN_CHUNK][in_dim * IN_KERNEL]: in_buf with the taps interleaved */
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
    return w->tensor_f32(w->ctx, full, ndim, shape);
}

/* A linear's weights: as stored when they are halves the host can use,
 * else as f32.  0, or -1 with the host's message recorded. */
static int get_linear(const tokvox_weights *w, const stftcodec *m, const char *prefix,
                      const char *name, int ndim, int64_t a, int64_t b, int64_t c,
                      lin_weights *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    int64_t shape[3] = {a, b, c};
    *out = (lin_weights){NULL, NULL};
    if (m->k->linear_f16) {
        const tokvox_tensor *t = w->tensor(w->ctx, full, ndim, shape);
        if (!t)
            return -1;
        if (t->dtype == TOKVOX_DTYPE_F16) {
            out->half = t->data;
            return 0;
        }
    }
    out->w = w->tensor_f32(w->ctx, full, ndim, shape);
    return out->w ? 0 : -1;
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
    int pw1 = get_linear(w, m, p, "pw1.weight", 2, f, d, 0, &b->pw1);
    b->pw1_b = get(w, p, "pw1.bias", 1, f, 0, 0);
    int pw2 = get_linear(w, m, p, "pw2.weight", 2, d, f, 0, &b->pw2);
    b->pw2_b = get(w, p, "pw2.bias", 1, d, 0, 0);
    b->gamma = get(w, p, "gamma", 1, d, 0, 0);
    return b->dw_w && b->dw_b && b->norm_w && b->norm_b && !pw1 && b->pw1_b && !pw2 &&
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
    int in = get_linear(w, m, prefix, "in_conv.weight", 3, d, in_dim, IN_KERNEL, &bb->in);
    bb->in_b = get(w, prefix, "in_conv.bias", 1, d, 0, 0);
    bb->norm_w = get(w, prefix, "norm.weight", 1, d, 0, 0);
    bb->norm_b = get(w, prefix, "norm.bias", 1, d, 0, 0);
    int proj = get_linear(w, m, prefix, "proj.weight", 2, out_dim, d, 0, &bb->proj);
    bb->proj_b = get(w, prefix, "proj.bias", 1, out_dim, 0, 0);
    if (in || !bb->in_b || !bb->norm_w || !bb->norm_b || proj || !bb->proj_b)
        return -1;
    for (int i = 0; i < blocks; i++)
        if (bind_block(w, m, prefix, i, &bb->block[i]))
            return -1;
    return 0;
}

static int read_config(const tokvox_weights *w, stftcodec *m, int64_t *enc_blocks,
                       int64_t *dec_blocks)
{
    int64_t dim, ffn, kernel, n_fft, latent, rate, hop;
    if (w->config_int(w->ctx, "dim", &dim) || w->config_int(w->ctx, "ffn_dim", &ffn) ||
        w->config_int(w->ctx, "kernel", &kernel) || w->config_int(w->ctx, "n_fft", &n_fft) ||
        w->config_int(w->ctx, "latent_dim", &latent) ||
        w->config_int(w->ctx, "enc_blocks", enc_blocks) ||
        w->config_int(w->ctx, "dec_blocks", dec_blocks) ||
        w->config_int(w->ctx, "sample_rate", &rate) || w->config_int(w->ctx, "hop", &hop)) {
        w->fail(w->ctx, "stftcodec: config needs dim, ffn_dim, kernel, n_fft, latent_dim, "
                        "enc_blocks, dec_blocks, sample_rate and hop");
        return -1;
    }
    /* train/model.py's synthesis sub-frames: the decoder's head holds K
     * spectra per code frame, synthesised at hop/K (docs/plugins.md,
     * "Framing"); absent means 1, the framing of older models */
    int64_t subframes = 1;
    if (w->config_int(w->ctx, "subframes", &subframes) == 0 &&
        (subframes < 1 || subframes > 64 || hop % subframes)) {
        w->fail(w->ctx, "stftcodec: config 'subframes' must be 1..64 and divide the hop");
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
    m->head_dim = 2 * m->bins * (int)subframes;
    m->latent_dim = (int)latent;
    /* train/model.py's framing: an STFT with the config's window (sqrt-Hann
     * is what it trains with; anything else is declared as unknown, 0, and
     * refused by the host), log magnitudes in, log magnitude and phase out;
     * the host range-checks the numbers */
    const char *window = w->config_string(w->ctx, "window");
    m->framing = (tokvox_model_framing){
        sizeof m->framing,
        rate > 0 && rate < INT32_MAX ? (int)rate : 0,
        hop > 0 && hop < INT32_MAX ? (int)hop : 0,
        (int)n_fft,
        window && strcmp(window, "sqrt_hann") == 0 ? TOKVOX_WINDOW_SQRT_HANN : 0,
        TOKVOX_FEATURES_LOG_MAGNITUDE,
        TOKVOX_SYNTHESIS_MAG_PHASE,
        (int)subframes};
    return 0;
}

static void codec_destroy(void *p)
{
    free(p);
}

static int codec_create(const tokvox_host *host, const tokvox_weights *w, void **out)
{
    const tokvox_kernels *kernels = host->get_extension(host, TOKVOX_EXT_KERNELS);
    if (!kernels) {
        w->fail(w->ctx, "stftcodec: the host offers no kernels");
        return TOKVOX_ERR_UNSUPPORTED;
    }
    stftcodec *m = calloc(1, sizeof *m);
    if (!m)
        return TOKVOX_ERR_NO_MEMORY;
    int64_t enc_blocks, dec_blocks;
    m->k = kernels;
    if (read_config(w, m, &enc_blocks, &dec_blocks) ||
        bind_backbone(w, m, "encoder", m->bins, m->latent_dim, (int)enc_blocks, &m->enc) ||
        bind_backbone(w, m, "decoder", m->latent_dim, m->head_dim, (int)dec_blocks, &m->dec)) {
        free(m);
        return TOKVOX_ERR_WEIGHTS;
    }
    m->layout = (tokvox_model_layout){sizeof m->layout, m->bins, m->latent_dim, m->head_dim,
                                      MAX_FRAMES};
    *out = m;
    return TOKVOX_OK;
}

static const tokvox_model_layout *codec_layout(const void *p)
{
    return &((const stftcodec *)p)->layout;
}

static const tokvox_model_framing *codec_framing(const void *p)
{
    return &((const stftcodec *)p)->framing;
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

static void state_destroy(const void *model, void *p)
{
    (void)model;
    codec_state *s = p;
    if (!s)
        return;
    free(s->bb.in_buf);
    free(s->bb.taps);
    free(s->bb.conv_buf);
    free(s->bb.h);
    free(s->bb.y);
    free(s->bb.u);
    free(s);
}

static void *state_create(const stftcodec *m, const backbone *bb_weights)
{
    codec_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->m = m;
    s->bb.bb = bb_weights;
    const backbone *bb = s->bb.bb;
    size_t frames = MAX_FRAMES, blocks = (size_t)(bb->blocks ? bb->blocks : 1);
    s->bb.in_buf = calloc((IN_KERNEL - 1 + frames) * (size_t)bb->in_dim, sizeof(float));
    s->bb.taps = malloc(sizeof(float) * IN_CHUNK * IN_KERNEL * (size_t)bb->in_dim);
    s->bb.conv_buf = calloc(blocks * conv_stride(m), sizeof(float));
    s->bb.h = malloc(sizeof(float) * frames * (size_t)m->dim);
    s->bb.y = malloc(sizeof(float) * frames * (size_t)m->dim);
    s->bb.u = malloc(sizeof(float) * frames * (size_t)m->ffn_dim);
    if (!s->bb.in_buf || !s->bb.taps || !s->bb.conv_buf || !s->bb.h || !s->bb.y || !s->bb.u) {
        state_destroy(m, s);
        return NULL;
    }
    return s;
}

static void *encoder_state_create(const void *model)
{
    const stftcodec *m = model;
    return state_create(m, &m->enc);
}

static void *decoder_state_create(const void *model)
{
    const stftcodec *m = model;
    return state_create(m, &m->dec);
}

/* ---- compute ---------------------------------------------------------- */

/* buf holds `history` frames then `frames` new ones; keep the last `history`
 * frames at the front for the next call. */
static void slide_history(float *buf, size_t history, size_t frames, size_t channels)
{
    memmove(buf, buf + frames * channels, sizeof(float) * history * channels);
}

/* A linear over frames: the half weights when there are (the same results,
 * half the memory traffic), else the f32 ones. */
static void linear(const stftcodec *m, const float *x, size_t frames, size_t in,
                   const lin_weights *w, const float *b, size_t out, float *y)
{
    if (w->half)
        m->k->linear_f16(x, frames, in, w->half, b, out, y);
    else
        m->k->linear(x, frames, in, w->w, b, out, y);
}

/* in_conv: buf holds IN_KERNEL-1 history frames then `frames` new ones; the
 * taps of each output frame, interleaved as the weights' [in][IN_KERNEL],
 * make one row of a linear. */
static void in_conv(const stftcodec *m, bb_state *s, const float *buf, size_t frames)
{
    const backbone *bb = s->bb;
    size_t in = (size_t)bb->in_dim, row = in * IN_KERNEL, d = (size_t)m->dim;
    for (size_t t0 = 0; t0 < frames; t0 += IN_CHUNK) {
        size_t n = frames - t0 < IN_CHUNK ? frames - t0 : IN_CHUNK;
        for (size_t t = 0; t < n; t++)
            for (size_t k = 0; k < IN_KERNEL; k++) {
                const float *src = buf + (t0 + t + k) * in;
                float *dst = s->taps + t * row + k;
                for (size_t i = 0; i < in; i++)
                    dst[i * IN_KERNEL] = src[i];
            }
        linear(m, s->taps, n, row, &bb->in, bb->in_b, d, s->h + t0 * d);
    }
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
    linear(m, s->y, frames, d, &b->pw1, b->pw1_b, f, s->u);
    k->gelu(s->u, frames * f);
    linear(m, s->u, frames, f, &b->pw2, b->pw2_b, d, s->y);
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
    in_conv(m, s, s->in_buf, frames);
    slide_history(s->in_buf, hist, frames, in_dim);
    for (int i = 0; i < bb->blocks; i++)
        convnext_block(m, &bb->block[i], s->conv_buf + (size_t)i * conv_stride(m), s, frames);
    memcpy(s->y, s->h, sizeof(float) * frames * d);
    k->layer_norm(s->y, frames, d, bb->norm_w, bb->norm_b, 1e-6f);
    linear(m, s->y, frames, d, &bb->proj, bb->proj_b, (size_t)bb->out_dim, out);
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
    .size = sizeof(tokvox_model_api),
    .create = codec_create,
    .destroy = codec_destroy,
    .layout = codec_layout,
    .encoder_state_create = encoder_state_create,
    .decoder_state_create = decoder_state_create,
    .state_reset = state_reset,
    .state_destroy = state_destroy,
    .encode = run,
    .decode = run,
    .framing = codec_framing,
};

static const tokvox_plugin_descriptor stftcodec_plugin = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_MODEL,
    .name = "stftcodec",
    .version = "2.1.0",
    .description = "causal ConvNeXt STFT codec with a Vocos magnitude/phase head",
    .api = &api,
};

static const tokvox_plugin_descriptor *const plugins[] = {&stftcodec_plugin};
TOKVOX_PLUGIN_ENTRY(plugins);
