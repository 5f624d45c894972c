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
 *
 * Speed: every linear runs over a whole block of frames (a matrix product in
 * the host's kernels), and in_conv is one too, over its input with the
 * kernel taps interleaved.  The model file stores halves, so the plugin keeps
 * a half copy of each big weight and hands it to linear_f16: the results are
 * the same bits as with the f32 weights, at half the memory traffic, which
 * is what limits a stream (one frame reads every weight once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"
#include "tokvox/tokvox.h"

#define MAX_FRAMES 256
#define MAX_BLOCKS 64
#define IN_KERNEL 3
/* in_conv interleaves its input this many frames at a time. */
#define IN_CHUNK 16

/* A linear's weights: f32 from the host, and the same values as halves
 * (NULL when some value is not exactly a half, or linear_f16 is missing). */
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
    const tokvox_kernels *k;
    backbone enc, dec;
    uint16_t *halves;  /* owned: every lin_weights.half points in here */
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
    b->pw1.w = get(w, p, "pw1.weight", 2, f, d, 0);
    b->pw1_b = get(w, p, "pw1.bias", 1, f, 0, 0);
    b->pw2.w = get(w, p, "pw2.weight", 2, d, f, 0);
    b->pw2_b = get(w, p, "pw2.bias", 1, d, 0, 0);
    b->gamma = get(w, p, "gamma", 1, d, 0, 0);
    return b->dw_w && b->dw_b && b->norm_w && b->norm_b && b->pw1.w && b->pw1_b && b->pw2.w &&
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
    bb->in.w = get(w, prefix, "in_conv.weight", 3, d, in_dim, IN_KERNEL);
    bb->in_b = get(w, prefix, "in_conv.bias", 1, d, 0, 0);
    bb->norm_w = get(w, prefix, "norm.weight", 1, d, 0, 0);
    bb->norm_b = get(w, prefix, "norm.bias", 1, d, 0, 0);
    bb->proj.w = get(w, prefix, "proj.weight", 2, out_dim, d, 0);
    bb->proj_b = get(w, prefix, "proj.bias", 1, out_dim, 0, 0);
    if (!bb->in.w || !bb->in_b || !bb->norm_w || !bb->norm_b || !bb->proj.w || !bb->proj_b)
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

/* ---- half copies -------------------------------------------------------- */

/* f as an IEEE half, if it is exactly one (1), else 0. */
static int to_half(float f, uint16_t *out)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t sign = (u >> 16) & 0x8000u, mant = u & 0x7fffffu;
    int exp = (int)((u >> 23) & 0xffu);
    if (exp == 0xff) { /* inf is a half, NaN is left to the f32 path */
        *out = (uint16_t)(sign | 0x7c00u);
        return mant == 0;
    }
    if (exp == 0) { /* zero; f32 subnormals are below every half */
        *out = (uint16_t)sign;
        return mant == 0;
    }
    int e = exp - 127 + 15;
    if (e >= 31)
        return 0;
    if (e >= 1) {
        *out = (uint16_t)(sign | (uint32_t)e << 10 | mant >> 13);
        return (mant & 0x1fffu) == 0;
    }
    uint32_t full = 0x800000u | mant; /* a half subnormal: full * 2^(exp - 126) units of 2^-24 */
    int shift = 126 - exp;
    if (shift > 23)
        return 0;
    *out = (uint16_t)(sign | full >> shift);
    return (full & ((1u << shift) - 1u)) == 0;
}

/* Normal halves (nearly all weights) convert without branches, a run of 64
 * at a time (a loop the compiler vectorises); a run holding anything else
 * (zeros, subnormals, no half at all) is done again the long way. */
#define HALF_RUN 64

static int normal_half(uint32_t u) { return ((u >> 23 & 0xffu) - 113u < 30u) & !(u & 0x1fffu); }

static int halve_run(const uint32_t *u, uint16_t *dst)
{
    int others = 0;
    for (int i = 0; i < HALF_RUN; i++) {
        dst[i] = (uint16_t)((u[i] >> 16 & 0x8000u) | ((u[i] >> 23 & 0xffu) - 112u) << 10 |
                            (u[i] >> 13 & 0x3ffu));
        others |= !normal_half(u[i]);
    }
    return others;
}

/* The half copy of n weights at dst, or NULL if one of them is not a half. */
static const uint16_t *halve(const float *w, size_t n, uint16_t *dst)
{
    uint32_t u[HALF_RUN];
    for (size_t i0 = 0; i0 < n; i0 += HALF_RUN) {
        size_t len = n - i0 < HALF_RUN ? n - i0 : HALF_RUN;
        memcpy(u, w + i0, sizeof(float) * len);
        for (size_t i = len; i < HALF_RUN; i++)
            u[i] = 0x3f800000u; /* 1.0f, a normal half: the filler is never "other" */
        uint16_t run[HALF_RUN];
        int others = halve_run(u, run);
        memcpy(dst + i0, run, sizeof(uint16_t) * len);
        for (size_t i = 0; others && i < len; i++)
            if (!to_half(w[i0 + i], &dst[i0 + i]))
                return NULL;
    }
    return dst;
}

static size_t backbone_halves(const stftcodec *m, const backbone *bb)
{
    size_t d = (size_t)m->dim;
    return d * (size_t)bb->in_dim * IN_KERNEL + d * (size_t)bb->out_dim +
           (size_t)bb->blocks * 2 * d * (size_t)m->ffn_dim;
}

static uint16_t *halve_backbone(const stftcodec *m, backbone *bb, uint16_t *dst)
{
    size_t d = (size_t)m->dim, f = (size_t)m->ffn_dim;
    size_t in = d * (size_t)bb->in_dim * IN_KERNEL, proj = d * (size_t)bb->out_dim;
    bb->in.half = halve(bb->in.w, in, dst);
    dst += in;
    bb->proj.half = halve(bb->proj.w, proj, dst);
    dst += proj;
    for (int i = 0; i < bb->blocks; i++) {
        bb->block[i].pw1.half = halve(bb->block[i].pw1.w, d * f, dst);
        dst += d * f;
        bb->block[i].pw2.half = halve(bb->block[i].pw2.w, d * f, dst);
        dst += d * f;
    }
    return dst;
}

static void codec_destroy(void *p)
{
    stftcodec *m = p;
    if (m)
        free(m->halves);
    free(m);
}

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
    /* the half copies; without them (no linear_f16, or no memory for them)
     * every call reads the f32 weights, with the same results */
    if (kernels->linear_f16)
        m->halves = malloc(sizeof(uint16_t) *
                           (backbone_halves(m, &m->enc) + backbone_halves(m, &m->dec)));
    if (m->halves)
        halve_backbone(m, &m->dec, halve_backbone(m, &m->enc, m->halves));
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
    free(s->bb.taps);
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
    s->bb.taps = malloc(sizeof(float) * IN_CHUNK * IN_KERNEL * (size_t)bb->in_dim);
    s->bb.conv_buf = calloc(blocks * conv_stride(m), sizeof(float));
    s->bb.h = malloc(sizeof(float) * frames * (size_t)m->dim);
    s->bb.y = malloc(sizeof(float) * frames * (size_t)m->dim);
    s->bb.u = malloc(sizeof(float) * frames * (size_t)m->ffn_dim);
    if (!s->bb.in_buf || !s->bb.taps || !s->bb.conv_buf || !s->bb.h || !s->bb.y || !s->bb.u) {
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
