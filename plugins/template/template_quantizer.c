/* template_vq: the smallest real quantizer plugin, to copy (docs/plugins.md).
 *
 * One codebook (groups = stages = 1): each latent frame becomes the index of
 * its nearest codeword, and decodes to that codeword.  It shows every part a
 * quantizer needs: reading config, binding a tensor (and refusing a wrong
 * one), getting the host's kernels, the layout, encode and decode with their
 * argument checks, and the entry.  Rename it (file, struct, plugin name),
 * then change what encode and decode compute.
 *
 * Config: latent_dim, codebook_size.  Tensor: quantizer.codebook.embed
 * [codebook_size][latent_dim] (any float dtype: tensor_f32 converts). */
#include <stdlib.h>
#include <string.h>

#include "tokvox/plugin.h"

#define NAME "template_vq"

/* The instance: immutable after create, shared by every session. */
typedef struct template_vq {
    tokvox_quantizer_layout layout;
    const tokvox_kernels *k;
    const float *codebook; /* [size][dim], owned by the host's model */
    float *norms;          /* [size] squared codeword norms, owned */
} template_vq;

static void tq_destroy(void *p)
{
    template_vq *q = p;
    if (q)
        free(q->norms);
    free(q);
}

/* [load-thread] Everything that can fail happens here, with a message. */
static int tq_create(const tokvox_host *host, const tokvox_weights *w, void **out)
{
    const tokvox_kernels *k = host->get_extension(host, TOKVOX_EXT_KERNELS);
    if (!k) {
        w->fail(w->ctx, NAME ": the host offers no kernels");
        return TOKVOX_ERR_UNSUPPORTED;
    }
    int64_t dim, size;
    if (w->config_int(w->ctx, "latent_dim", &dim) ||
        w->config_int(w->ctx, "codebook_size", &size)) {
        w->fail(w->ctx, NAME ": config needs latent_dim and codebook_size");
        return TOKVOX_ERR_WEIGHTS;
    }
    if (dim < 1 || dim > 4096 || size < 2 || size > 65536) {
        w->fail(w->ctx, NAME ": latent_dim or codebook_size out of range");
        return TOKVOX_ERR_WEIGHTS;
    }
    template_vq *q = calloc(1, sizeof *q);
    if (!q)
        return TOKVOX_ERR_NO_MEMORY;
    q->layout = (tokvox_quantizer_layout){sizeof q->layout, (int)dim, 1, 1, (int)size};
    q->k = k;
    /* the host checks the shape and says which tensor is wrong */
    int64_t shape[2] = {size, dim};
    q->codebook = w->tensor_f32(w->ctx, "quantizer.codebook.embed", 2, shape);
    q->norms = malloc(sizeof(float) * (size_t)size);
    if (!q->codebook || !q->norms) {
        int err = q->codebook ? TOKVOX_ERR_NO_MEMORY : TOKVOX_ERR_WEIGHTS;
        tq_destroy(q);
        return err;
    }
    for (size_t j = 0; j < (size_t)size; j++) {
        const float *c = q->codebook + j * (size_t)dim;
        float s = 0.0f;
        for (size_t i = 0; i < (size_t)dim; i++)
            s += c[i] * c[i];
        q->norms[j] = s;
    }
    *out = q;
    return TOKVOX_OK;
}

static const tokvox_quantizer_layout *tq_layout(const void *p)
{
    return &((const template_vq *)p)->layout;
}

/* [any-thread] [no-alloc]: reads the instance only; scratch on the stack. */
static int tq_encode(const void *p, const float *latent, size_t frames, int num_codebooks,
                     uint16_t *codes)
{
    const template_vq *q = p;
    if (num_codebooks != 1)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    uint32_t index[64];
    size_t dim = (size_t)q->layout.dim;
    for (size_t t0 = 0; t0 < frames; t0 += 64) {
        size_t n = frames - t0 < 64 ? frames - t0 : 64;
        q->k->nearest(latent + t0 * dim, n, q->codebook, q->norms,
                      (size_t)q->layout.codebook_size, dim, index);
        for (size_t t = 0; t < n; t++)
            codes[t0 + t] = (uint16_t)index[t];
    }
    return TOKVOX_OK;
}

/* [any-thread] [no-alloc] */
static int tq_decode(const void *p, const uint16_t *codes, size_t frames, int stride,
                     int num_codebooks, float *latent)
{
    const template_vq *q = p;
    if (num_codebooks != 1 || stride < 1)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t dim = (size_t)q->layout.dim;
    for (size_t t = 0; t < frames; t++) {
        uint16_t c = codes[t * (size_t)stride];
        if (c >= q->layout.codebook_size)
            return TOKVOX_ERR_FORMAT;
        memcpy(latent + t * dim, q->codebook + c * dim, sizeof(float) * dim);
    }
    return TOKVOX_OK;
}

static const tokvox_quantizer_api api = {
    .size = sizeof(tokvox_quantizer_api),
    .create = tq_create,
    .destroy = tq_destroy,
    .layout = tq_layout,
    .encode = tq_encode,
    .decode = tq_decode,
};

static const tokvox_plugin_descriptor descriptor = {
    .size = sizeof(tokvox_plugin_descriptor),
    .kind = TOKVOX_PLUGIN_QUANTIZER,
    .name = NAME,
    .version = "1.0.0",
    .description = "template: one-codebook vector quantizer",
    .api = &api,
};

/* The factory: this object's plugins (one here; add more to the array). */
static const tokvox_plugin_descriptor *const plugins[] = {&descriptor};
TOKVOX_PLUGIN_ENTRY(plugins);
