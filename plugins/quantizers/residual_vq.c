/* Residual vector quantizers: RVQ and group-residual VQ (HiFi-Codec).
 *
 * One object, two plugins: grvq splits the latent into `groups` equal
 * slices, each with its own residual stack; rvq is the one-group case (its
 * config must say groups == 1 or leave it out).  Codebook k
 * is stage k / groups of group k % groups, tensor quantizer.codebooks.K.embed
 * of shape [codebook_size][dim / groups].
 *
 * encode: per stage, the nearest codeword to the running residual, which is
 * then reduced by it; decode: the sum of the chosen codewords.  Encoding
 * fewer codebooks gives exactly the prefix of the full code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"

#define MAX_DIM 4096

typedef struct vq {
    tokvox_quantizer_layout layout;
    int group_dim, num_codebooks;
    const tokvox_kernels *kernels;
    const float **codebooks;  /* [num_codebooks] -> [size][group_dim], owned by the model */
    float *norms;             /* [num_codebooks][size] squared codeword norms */
} vq;

static void vq_destroy(void *p)
{
    vq *q = p;
    if (!q)
        return;
    free(q->codebooks);
    free(q->norms);
    free(q);
}

static int read_layout(const tokvox_weights *w, int grouped, tokvox_quantizer_layout *l)
{
    int64_t dim, groups = 1, stages, size;
    if (w->config_int(w->ctx, "latent_dim", &dim) || w->config_int(w->ctx, "stages", &stages) ||
        w->config_int(w->ctx, "codebook_size", &size)) {
        w->fail(w->ctx, grouped ? "grvq: config needs latent_dim, stages and codebook_size"
                                : "rvq: config needs latent_dim, stages and codebook_size");
        return -1;
    }
    if (grouped && w->config_int(w->ctx, "groups", &groups)) {
        w->fail(w->ctx, "grvq: config needs groups");
        return -1;
    }
    if (!grouped && w->config_int(w->ctx, "groups", &groups) == 0 && groups != 1) {
        w->fail(w->ctx, "rvq: plain RVQ needs groups == 1 (use the grvq plugin)");
        return -1;
    }
    if (dim < 1 || dim > MAX_DIM || groups < 1 || dim % groups || stages < 1 ||
        groups * stages > 64 || size < 2 || size > 65536) {
        w->fail(w->ctx, grouped ? "grvq: quantizer layout out of range"
                                : "rvq: quantizer layout out of range");
        return -1;
    }
    *l = (tokvox_quantizer_layout){sizeof *l, (int)dim, (int)groups, (int)stages, (int)size};
    return 0;
}

static float squared_norm(const float *v, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += v[i] * v[i];
    return s;
}

static int vq_create(const tokvox_host *host, const tokvox_weights *w, int grouped, void **out)
{
    const tokvox_kernels *kernels = host->get_extension(host, TOKVOX_EXT_KERNELS);
    if (!kernels || !TOKVOX_HAS(kernels, tokvox_kernels, nearest)) {
        w->fail(w->ctx, "vq: the host offers no nearest kernel");
        return TOKVOX_ERR_UNSUPPORTED;
    }
    vq *q = calloc(1, sizeof *q);
    if (!q)
        return TOKVOX_ERR_NO_MEMORY;
    if (read_layout(w, grouped, &q->layout)) {
        vq_destroy(q);
        return TOKVOX_ERR_WEIGHTS;
    }
    q->kernels = kernels;
    q->group_dim = q->layout.dim / q->layout.groups;
    q->num_codebooks = q->layout.groups * q->layout.stages;
    size_t size = (size_t)q->layout.codebook_size;
    q->codebooks = calloc((size_t)q->num_codebooks, sizeof *q->codebooks);
    q->norms = malloc(sizeof(float) * size * (size_t)q->num_codebooks);
    if (!q->codebooks || !q->norms) {
        vq_destroy(q);
        return TOKVOX_ERR_NO_MEMORY;
    }
    for (int k = 0; k < q->num_codebooks; k++) {
        char name[64];
        snprintf(name, sizeof name, "quantizer.codebooks.%d.embed", k);
        int64_t shape[2] = {(int64_t)size, q->group_dim};
        q->codebooks[k] = w->tensor_f32(w->ctx, name, 2, shape);
        if (!q->codebooks[k]) {
            vq_destroy(q);
            return TOKVOX_ERR_WEIGHTS;
        }
        for (size_t j = 0; j < size; j++)
            q->norms[(size_t)k * size + j] =
                squared_norm(q->codebooks[k] + j * (size_t)q->group_dim, q->group_dim);
    }
    *out = q;
    return 0;
}

static int rvq_create(const tokvox_host *host, const tokvox_weights *w, void **out)
{
    return vq_create(host, w, 0, out);
}

static int grvq_create(const tokvox_host *host, const tokvox_weights *w, void **out)
{
    return vq_create(host, w, 1, out);
}

static const tokvox_quantizer_layout *vq_layout(const void *p)
{
    return &((const vq *)p)->layout;
}

/* Frames are encoded in chunks, all frames of a chunk together per stage, so
 * the host's nearest kernel sees a matrix of residuals (one product with the
 * codebook) instead of one vector at a time.  The residuals live on the
 * stack: the quantizer is shared between sessions and keeps no buffers. */
#define CHUNK_FLOATS 8192
#define CHUNK_FRAMES 256
_Static_assert(CHUNK_FLOATS >= MAX_DIM, "a chunk holds at least one frame");

static int vq_encode(const void *p, const float *latent, size_t frames, int num_codebooks,
                     uint16_t *codes)
{
    const vq *q = p;
    if (num_codebooks < 1 || num_codebooks > q->num_codebooks)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t size = (size_t)q->layout.codebook_size, gd = (size_t)q->group_dim;
    size_t dim = (size_t)q->layout.dim, ncb = (size_t)num_codebooks;
    size_t chunk = CHUNK_FLOATS / gd < CHUNK_FRAMES ? CHUNK_FLOATS / gd : CHUNK_FRAMES;
    float residual[CHUNK_FLOATS];
    uint32_t best[CHUNK_FRAMES];
    int groups = q->layout.groups;
    for (size_t t0 = 0; t0 < frames; t0 += chunk) {
        size_t n = frames - t0 < chunk ? frames - t0 : chunk;
        for (int g = 0; g < groups && g < num_codebooks; g++) {
            for (size_t r = 0; r < n; r++)
                memcpy(residual + r * gd, latent + (t0 + r) * dim + (size_t)g * gd,
                       sizeof(float) * gd);
            for (int k = g; k < num_codebooks; k += groups) {
                const float *book = q->codebooks[k];
                q->kernels->nearest(residual, n, book, q->norms + (size_t)k * size, size, gd,
                                    best);
                for (size_t r = 0; r < n; r++) {
                    codes[(t0 + r) * ncb + (size_t)k] = (uint16_t)best[r];
                    const float *cw = book + best[r] * gd;
                    float *res = residual + r * gd;
                    for (size_t i = 0; i < gd; i++)
                        res[i] -= cw[i];
                }
            }
        }
    }
    return 0;
}

static int vq_decode(const void *p, const uint16_t *codes, size_t frames, int stride,
                     int num_codebooks, float *latent)
{
    const vq *q = p;
    if (num_codebooks < 1 || num_codebooks > q->num_codebooks || stride < num_codebooks)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t gd = (size_t)q->group_dim, dim = (size_t)q->layout.dim;
    for (size_t t = 0; t < frames; t++) {
        float *y = latent + t * dim;
        memset(y, 0, sizeof(float) * dim);
        for (int k = 0; k < num_codebooks; k++) {
            uint16_t c = codes[t * (size_t)stride + (size_t)k];
            if (c >= q->layout.codebook_size)
                return TOKVOX_ERR_FORMAT;
            const float *cw = q->codebooks[k] + (size_t)c * gd;
            float *dst = y + (size_t)(k % q->layout.groups) * gd;
            for (size_t i = 0; i < gd; i++)
                dst[i] += cw[i];
        }
    }
    return 0;
}

static const tokvox_quantizer_api rvq_api = {
    .size = sizeof(tokvox_quantizer_api),
    .create = rvq_create,
    .destroy = vq_destroy,
    .layout = vq_layout,
    .encode = vq_encode,
    .decode = vq_decode,
};

static const tokvox_quantizer_api grvq_api = {
    .size = sizeof(tokvox_quantizer_api),
    .create = grvq_create,
    .destroy = vq_destroy,
    .layout = vq_layout,
    .encode = vq_encode,
    .decode = vq_decode,
};

static const tokvox_plugin_descriptor rvq = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = "rvq",
    .version = "2.0.0",
    .description = "residual vector quantizer (RVQ)",
    .api = &rvq_api,
};

static const tokvox_plugin_descriptor grvq = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = "grvq",
    .version = "2.0.0",
    .description = "group-residual vector quantizer (HiFi-Codec GRVQ)",
    .api = &grvq_api,
};

static const tokvox_plugin_descriptor *const plugins[] = {&grvq, &rvq};
TOKVOX_PLUGIN_ENTRY(plugins);
