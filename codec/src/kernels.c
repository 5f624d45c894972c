/* Scalar reference kernels.  Straightforward loops in the order a blocked
 * GEMM can later replace: the innermost loop always runs over a contiguous
 * input row. */
#include "kernels.h"

#include <float.h>
#include <math.h>

static float dot(const float *a, const float *b, size_t n)
{
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

void tk_linear(const float *x, size_t frames, size_t in, const float *w, const float *b,
               size_t out, float *y)
{
    for (size_t t = 0; t < frames; t++) {
        const float *row = x + t * in;
        float *dst = y + t * out;
        for (size_t o = 0; o < out; o++)
            dst[o] = (b ? b[o] : 0.0f) + dot(row, w + o * in, in);
    }
}

void tk_conv1d_causal(const float *x, size_t frames, size_t in, const float *w, const float *b,
                      size_t out, size_t kernel, size_t groups, float *y)
{
    size_t in_per_group = in / groups, out_per_group = out / groups;
    for (size_t t = 0; t < frames; t++) {
        float *dst = y + t * out;
        for (size_t o = 0; o < out; o++) {
            size_t first_in = (o / out_per_group) * in_per_group;
            const float *wo = w + o * in_per_group * kernel;
            float sum = b ? b[o] : 0.0f;
            for (size_t k = 0; k < kernel; k++) {
                const float *src = x + (t + k) * in + first_in;
                for (size_t i = 0; i < in_per_group; i++)
                    sum += wo[i * kernel + k] * src[i];
            }
            dst[o] = sum;
        }
    }
}

void tk_layer_norm(float *x, size_t frames, size_t channels, const float *gamma,
                   const float *beta, float eps)
{
    for (size_t t = 0; t < frames; t++) {
        float *row = x + t * channels;
        double mean = 0.0, var = 0.0;
        for (size_t c = 0; c < channels; c++)
            mean += row[c];
        mean /= (double)channels;
        for (size_t c = 0; c < channels; c++)
            var += (row[c] - mean) * (row[c] - mean);
        var /= (double)channels;
        float scale = (float)(1.0 / sqrt(var + eps));
        for (size_t c = 0; c < channels; c++)
            row[c] = (float)(row[c] - mean) * scale * gamma[c] + beta[c];
    }
}

void tk_gelu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void tk_nearest(const float *x, size_t n, const float *codewords, const float *norms, size_t k,
                size_t dim, uint32_t *index)
{
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * dim;
        float best = FLT_MAX;
        uint32_t best_j = 0;
        for (size_t j = 0; j < k; j++) {
            /* |x|^2 is the same for every j, so it is left out */
            float d = norms[j] - 2.0f * dot(row, codewords + j * dim, dim);
            if (d < best) {
                best = d;
                best_j = (uint32_t)j;
            }
        }
        index[r] = best_j;
    }
}

static const tokvox_kernels scalar_kernels = {
    .linear = tk_linear,
    .conv1d_causal = tk_conv1d_causal,
    .layer_norm = tk_layer_norm,
    .gelu = tk_gelu,
    .nearest = tk_nearest,
};

const tokvox_kernels *tk_kernels(void) { return &scalar_kernels; }
