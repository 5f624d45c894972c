/* fsq: residual finite scalar quantization (Mentzer et al. 2023, "Finite
 * Scalar Quantization: VQ-VAE Made Simple"), written from
 * plugins/template/template_quantizer.c; its PyTorch twin is train/fsq.py,
 * which has the formulas.
 *
 * No codebook to collapse: codebook k (stage k / groups of group k % groups)
 * projects its group's residual to d = len(levels) values, bounds each with
 * tanh to levels[i] steps and rounds it; the code is the mixed-radix number
 * of the d digits (codebook_size = prod(levels)), and the rounded values,
 * projected back, are taken off the residual, so any prefix of whole stages
 * decodes to a coarser latent.
 *
 * Config: latent_dim, groups (default 1), stages, levels ("8,5,5,5").
 * Tensors per codebook K: quantizer.codebooks.K.project_in.{weight [d][gd],
 * bias [d]}, quantizer.codebooks.K.project_out.{weight [gd][d], bias [gd]},
 * gd = latent_dim / groups. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"

#define NAME "fsq"
#define MAX_LEVELS 16
#define MAX_CODEBOOKS 64
#define MAX_GROUP_DIM 512
#define CHUNK 16 /* frames projected together (one linear call each way) */

typedef struct stage {
    const float *in_w, *in_b, *out_w, *out_b;
} stage;

/* The instance: immutable after create. */
typedef struct fsq {
    tokvox_quantizer_layout layout;
    const tokvox_kernels *k;
    int d, group_dim;
    int levels[MAX_LEVELS], width[MAX_LEVELS], basis[MAX_LEVELS];
    float half[MAX_LEVELS], offset[MAX_LEVELS], shift[MAX_LEVELS];
    stage stages[MAX_CODEBOOKS];
} fsq;

static void fsq_destroy(void *p) { free(p); }

/* "8,5,5,5" into q->levels and the constants of the bound. */
static int parse_levels(fsq *q, const char *text)
{
    long product = 1;
    q->d = 0;
    for (const char *s = text; s && *s && q->d < MAX_LEVELS;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 2 || v > 65536 || (*end && *end != ','))
            return -1;
        product *= v;
        if (product > 65536)
            return -1;
        q->levels[q->d++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (q->d == 0 || !text || strchr(text, '\0')[-1] == ',')
        return -1;
    for (int i = 0, basis = 1; i < q->d; basis *= q->levels[i], i++) {
        int l = q->levels[i];
        double half = (l - 1) * (1 + 1e-3) / 2, offset = l % 2 ? 0.0 : 0.5;
        q->half[i] = (float)half;
        q->offset[i] = (float)offset;
        q->shift[i] = (float)atanh(offset / half);
        q->width[i] = l / 2;
        q->basis[i] = basis;
    }
    q->layout.codebook_size = (int)product;
    return 0;
}

static int read_config(const tokvox_weights *w, fsq *q)
{
    int64_t dim, groups = 1, stages;
    if (w->config_int(w->ctx, "latent_dim", &dim) || w->config_int(w->ctx, "stages", &stages)) {
        w->fail(w->ctx, NAME ": config needs latent_dim, stages and levels");
        return -1;
    }
    w->config_int(w->ctx, "groups", &groups); /* optional: one group */
    if (parse_levels(q, w->config_string(w->ctx, "levels"))) {
        w->fail(w->ctx, NAME ": config needs levels, e.g. \"8,5,5,5\" (each >= 2, "
                        "product <= 65536, at most 16)");
        return -1;
    }
    if (dim < 1 || groups < 1 || dim % groups || dim / groups > MAX_GROUP_DIM || stages < 1 ||
        groups * stages > MAX_CODEBOOKS) {
        w->fail(w->ctx, NAME ": latent_dim, groups or stages out of range");
        return -1;
    }
    q->layout = (tokvox_quantizer_layout){sizeof q->layout, (int)dim, (int)groups, (int)stages,
                                          q->layout.codebook_size};
    q->group_dim = (int)(dim / groups);
    return 0;
}

static const float *get(const tokvox_weights *w, int k, const char *name, int64_t a, int64_t b,
                        int ndim)
{
    char full[96];
    snprintf(full, sizeof full, "quantizer.codebooks.%d.%s", k, name);
    int64_t shape[2] = {a, b};
    return w->tensor_f32(w->ctx, full, ndim, shape);
}

/* [load-thread] */
static int fsq_create(const tokvox_host *host, const tokvox_weights *w, void **out)
{
    const tokvox_kernels *k = host->get_extension(host, TOKVOX_EXT_KERNELS);
    if (!k) {
        w->fail(w->ctx, NAME ": the host offers no kernels");
        return TOKVOX_ERR_UNSUPPORTED;
    }
    fsq *q = calloc(1, sizeof *q);
    if (!q)
        return TOKVOX_ERR_NO_MEMORY;
    q->k = k;
    if (read_config(w, q)) {
        free(q);
        return TOKVOX_ERR_WEIGHTS;
    }
    int64_t d = q->d, gd = q->group_dim;
    for (int i = 0; i < q->layout.groups * q->layout.stages; i++) {
        stage *s = &q->stages[i];
        s->in_w = get(w, i, "project_in.weight", d, gd, 2);
        s->in_b = get(w, i, "project_in.bias", d, 0, 1);
        s->out_w = get(w, i, "project_out.weight", gd, d, 2);
        s->out_b = get(w, i, "project_out.bias", gd, 0, 1);
        if (!s->in_w || !s->in_b || !s->out_w || !s->out_b) {
            free(q);
            return TOKVOX_ERR_WEIGHTS;
        }
    }
    *out = q;
    return TOKVOX_OK;
}

static const tokvox_quantizer_layout *fsq_layout(const void *p)
{
    return &((const fsq *)p)->layout;
}

/* The code of one frame's projected values h[d]; v[d] gets the normalised
 * rounded values (what project_out takes). */
static uint16_t round_code(const fsq *q, const float *h, float *v)
{
    int code = 0;
    for (int i = 0; i < q->d; i++) {
        float bounded = tanhf(h[i] + q->shift[i]) * q->half[i] - q->offset[i];
        float r = nearbyintf(bounded);
        code += ((int)r + q->width[i]) * q->basis[i];
        v[i] = r / (float)q->width[i];
    }
    return (uint16_t)code;
}

/* The normalised values of a code (its digits). */
static void code_values(const fsq *q, uint16_t code, float *v)
{
    for (int i = 0; i < q->d; i++) {
        int digit = code / q->basis[i] % q->levels[i];
        v[i] = (float)(digit - q->width[i]) / (float)q->width[i];
    }
}

/* [any-thread] [no-alloc]: scratch on the stack. */
static int fsq_encode(const void *p, const float *latent, size_t frames, int num_codebooks,
                      uint16_t *codes)
{
    const fsq *q = p;
    int groups = q->layout.groups;
    if (num_codebooks < 1 || num_codebooks > groups * q->layout.stages)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t gd = (size_t)q->group_dim, dim = (size_t)q->layout.dim, d = (size_t)q->d;
    size_t ncb = (size_t)num_codebooks;
    float residual[CHUNK * MAX_GROUP_DIM], back[CHUNK * MAX_GROUP_DIM];
    float h[CHUNK * MAX_LEVELS], v[CHUNK * MAX_LEVELS];
    for (size_t t0 = 0; t0 < frames; t0 += CHUNK) {
        size_t n = frames - t0 < CHUNK ? frames - t0 : CHUNK;
        for (int g = 0; g < groups && g < num_codebooks; g++) {
            for (size_t r = 0; r < n; r++)
                memcpy(residual + r * gd, latent + (t0 + r) * dim + (size_t)g * gd,
                       sizeof(float) * gd);
            for (int k = g; k < num_codebooks; k += groups) {
                const stage *s = &q->stages[k];
                q->k->linear(residual, n, gd, s->in_w, s->in_b, d, h);
                for (size_t r = 0; r < n; r++)
                    codes[(t0 + r) * ncb + (size_t)k] = round_code(q, h + r * d, v + r * d);
                q->k->linear(v, n, d, s->out_w, s->out_b, gd, back);
                for (size_t i = 0; i < n * gd; i++)
                    residual[i] -= back[i];
            }
        }
    }
    return TOKVOX_OK;
}

/* [any-thread] [no-alloc] */
static int fsq_decode(const void *p, const uint16_t *codes, size_t frames, int stride,
                      int num_codebooks, float *latent)
{
    const fsq *q = p;
    int groups = q->layout.groups;
    if (num_codebooks < 1 || num_codebooks > groups * q->layout.stages || stride < num_codebooks)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t gd = (size_t)q->group_dim, dim = (size_t)q->layout.dim;
    float v[MAX_LEVELS], back[MAX_GROUP_DIM];
    for (size_t t = 0; t < frames; t++) {
        float *y = latent + t * dim;
        memset(y, 0, sizeof(float) * dim);
        for (int k = 0; k < num_codebooks; k++) {
            uint16_t c = codes[t * (size_t)stride + (size_t)k];
            if (c >= q->layout.codebook_size)
                return TOKVOX_ERR_FORMAT;
            code_values(q, c, v);
            const stage *s = &q->stages[k];
            q->k->linear(v, 1, (size_t)q->d, s->out_w, s->out_b, gd, back);
            float *dst = y + (size_t)(k % groups) * gd;
            for (size_t i = 0; i < gd; i++)
                dst[i] += back[i];
        }
    }
    return TOKVOX_OK;
}

static const tokvox_quantizer_api api = {
    .size = sizeof(tokvox_quantizer_api),
    .create = fsq_create,
    .destroy = fsq_destroy,
    .layout = fsq_layout,
    .encode = fsq_encode,
    .decode = fsq_decode,
};

static const tokvox_plugin_descriptor descriptor = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = NAME,
    .version = "1.0.0",
    .description = "residual finite scalar quantizer (FSQ): no codebook to collapse",
    .api = &api,
};

static const tokvox_plugin_descriptor *const plugins[] = {&descriptor};
TOKVOX_PLUGIN_ENTRY(plugins);
