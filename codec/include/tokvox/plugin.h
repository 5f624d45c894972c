/* tokvox plugin ABI: the only header a plugin needs.
 *
 * A plugin is a shared object exporting one symbol,
 *     const tokvox_plugin_descriptor *tokvox_plugin_entry(void);
 * returning a pointer to a const descriptor that lives as long as the object.
 * The host refuses a descriptor whose abi_major differs from its own or whose
 * abi_minor is newer, and names the file and both versions.
 *
 * Discovery: a plugin named NAME is the file tokvox_NAME.so in, in order,
 * each folder of TOKVOX_PLUGIN_PATH (colon-separated), the build's plugin
 * folder (uninstalled builds only) and the installed LIBDIR/tokvox/plugins.
 * The current directory is never searched unless named in TOKVOX_PLUGIN_PATH.
 * Plugin names are [a-z0-9_]+, so a model file cannot name a path.
 *
 * Plugins never see files, devices or the command line: the host hands them
 * config values and f32 weights through tokvox_weights, and the compute
 * kernels through tokvox_kernels, so every plugin uses the host's (SIMD
 * dispatched) kernels.
 *
 * Threading: create/destroy [one thread]; a created plugin instance is
 * immutable and its encode/decode functions are [thread-safe] given
 * distinct state objects.
 *
 * Changelog: 1.0 first version.
 *            1.1 tokvox_kernels.linear_f16: linear with half-precision
 *                weights, half the memory traffic (a 1.1 plugin loads only
 *                into a 1.1 or newer host, so the field exists; it is NULL
 *                when the host's kernels would not gain from halves).
 */
#ifndef TOKVOX_PLUGIN_H
#define TOKVOX_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOKVOX_PLUGIN_ABI_MAJOR 1
#define TOKVOX_PLUGIN_ABI_MINOR 1
#define TOKVOX_PLUGIN_ENTRY_SYMBOL "tokvox_plugin_entry"

typedef enum tokvox_plugin_kind {
    TOKVOX_PLUGIN_QUANTIZER = 1,
    TOKVOX_PLUGIN_MODEL = 2,
} tokvox_plugin_kind;

/* Access to the model file, valid only during create. */
typedef struct tokvox_weights {
    void *ctx;
    /* The named tensor as f32, checked against the expected shape (ndim
     * dimensions).  NULL (and a recorded message) when missing or mismatched.
     * The data lives as long as the model. */
    const float *(*tensor)(void *ctx, const char *name, int ndim, const int64_t *shape);
    /* Integer config value; returns 0 and sets *out, or -1 if absent/not an integer. */
    int (*config_int)(void *ctx, const char *key, int64_t *out);
    /* Record why create failed (copied by the host). */
    void (*fail)(void *ctx, const char *message);
} tokvox_weights;

/* Compute kernels, row-major, time-major activations ([frames][channels]).
 * Weights use PyTorch's layouts so exported tensors are used as they are. */
typedef struct tokvox_kernels {
    /* y[t][o] = b[o] + sum_i x[t][i] * w[o][i]   (w: [out][in], b may be NULL) */
    void (*linear)(const float *x, size_t frames, size_t in, const float *w, const float *b,
                   size_t out, float *y);
    /* Causal conv1d over frames.  x holds (kernel-1) history frames followed by
     * `frames` new frames, each of `in` channels; w: [out][in/groups][kernel]. */
    void (*conv1d_causal)(const float *x, size_t frames, size_t in, const float *w,
                          const float *b, size_t out, size_t kernel, size_t groups, float *y);
    /* In-place layer norm over channels of each frame. */
    void (*layer_norm)(float *x, size_t frames, size_t channels, const float *gamma,
                       const float *beta, float eps);
    /* In-place exact (erf) GELU. */
    void (*gelu)(float *x, size_t n);
    /* For each of n rows of x ([n][dim]) the index of the nearest of the k
     * codewords ([k][dim]) by squared distance; norms[j] = |codeword j|^2. */
    void (*nearest)(const float *x, size_t n, const float *codewords, const float *norms,
                    size_t k, size_t dim, uint32_t *index);
    /* ---- 1.1 ---- */
    /* linear with w given as IEEE binary16 bit patterns ([out][in]).  Each
     * weight is widened exactly, so y is bit for bit what linear gives with
     * the widened weights: a model whose weights are halves anyway can keep
     * a half copy and halve the memory traffic of small (streaming) calls,
     * which are limited by reading the weights, not by arithmetic.  NULL
     * when halves would not pay on this host (no hardware conversion):
     * check it once at create and keep to linear then. */
    void (*linear_f16)(const float *x, size_t frames, size_t in, const uint16_t *w,
                       const float *b, size_t out, float *y);
} tokvox_kernels;

/* ---- quantizers ------------------------------------------------------ */
typedef struct tokvox_quantizer_layout {
    int dim;            /* latent channels */
    int groups;         /* latent split into this many groups */
    int stages;         /* residual stages per group */
    int codebook_size;
} tokvox_quantizer_layout;

/* Codebook k (the k-th code of a frame) is stage k / groups of group
 * k % groups, so any prefix of whole stages is a lower bitrate. */
typedef struct tokvox_quantizer_api {
    int (*create)(const tokvox_weights *weights, const tokvox_kernels *kernels, void **out);
    void (*destroy)(void *quantizer);
    void (*layout)(const void *quantizer, tokvox_quantizer_layout *out);
    /* latent [frames][dim] -> codes [frames][num_codebooks] (the first
     * num_codebooks of the full set).  scratch holds 2*dim floats. */
    int (*encode)(const void *quantizer, const float *latent, size_t frames, int num_codebooks,
                  uint16_t *codes, float *scratch);
    /* codes [frames][stride] -> latent [frames][dim], summing the first
     * num_codebooks codewords of each frame. */
    int (*decode)(const void *quantizer, const uint16_t *codes, size_t frames, int stride,
                  int num_codebooks, float *latent);
} tokvox_quantizer_api;

/* ---- models ---------------------------------------------------------- */
typedef struct tokvox_model_layout {
    int feature_dim;    /* encoder input channels per frame */
    int latent_dim;     /* quantizer channels */
    int head_dim;       /* decoder output channels per frame */
    int max_frames;     /* largest block encode/decode accept at once */
} tokvox_model_layout;

/* A model maps features to latents (encoder) and latents to vocoder head
 * outputs (decoder), frame by frame, keeping its causal history in a state
 * object so blocks of any size give the same result. */
typedef struct tokvox_model_api {
    int (*create)(const tokvox_weights *weights, const tokvox_kernels *kernels, void **out);
    void (*destroy)(void *model);
    void (*layout)(const void *model, tokvox_model_layout *out);
    /* Streaming state: which = 0 encoder, 1 decoder.  NULL on failure. */
    void *(*state_create)(const void *model, int which);
    void (*state_reset)(const void *model, void *state);
    void (*state_destroy)(void *state);
    /* features [frames][feature_dim] -> latent [frames][latent_dim] */
    int (*encode)(const void *model, void *state, const float *features, size_t frames,
                  float *latent);
    /* latent [frames][latent_dim] -> head [frames][head_dim] */
    int (*decode)(const void *model, void *state, const float *latent, size_t frames,
                  float *head);
} tokvox_model_api;

/* ---- the descriptor -------------------------------------------------- */
typedef struct tokvox_plugin_descriptor {
    uint16_t abi_major;         /* TOKVOX_PLUGIN_ABI_MAJOR: first, never moves */
    uint16_t abi_minor;
    uint32_t size;              /* sizeof(tokvox_plugin_descriptor) */
    int kind;                   /* tokvox_plugin_kind */
    const char *name;           /* matches the file name tokvox_NAME.so */
    const char *version;
    const char *description;
    const tokvox_quantizer_api *quantizer;  /* kind == QUANTIZER */
    const tokvox_model_api *model;          /* kind == MODEL */
} tokvox_plugin_descriptor;

typedef const tokvox_plugin_descriptor *(*tokvox_plugin_entry_fn)(void);

#if defined(__GNUC__)
#define TOKVOX_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TOKVOX_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
}
#endif
#endif
