/* tokvox plugin ABI 2: the only header a plugin needs (docs/plugins.md walks
 * through writing one; plugins/template/ is a working starting point).
 *
 * ---- Entry and factory ---------------------------------------------------
 * A plugin object is a shared library tokvox_BUNDLE.so exporting one const
 * data symbol, tokvox_entry (TOKVOX_PLUGIN_ENTRY_SYMBOL), of type
 * tokvox_plugin_entry: its ABI version first, then its size, then init and
 * deinit, then a factory handing out any number of plugin descriptors by
 * index.  One object may hold many plugins (rvq and grvq live in one).
 *
 * ---- Versions and sizes --------------------------------------------------
 * The host refuses another ABI major and names the file and both versions.
 * Any minor loads: every struct that crosses the boundary starts with its
 * size (as its author compiled it), fields are only ever appended, and each
 * side reads only what the other's size covers.  So a plugin built against
 * an older minor loads on a newer host (the host treats the fields it lacks
 * as absent), and recompiling an unchanged plugin against a newer header
 * does not make it unloadable on an older host.  A plugin that needs a
 * newer host feature checks for it (TOKVOX_HAS, get_extension) and refuses
 * in create with a message.
 *
 * ---- Discovery -----------------------------------------------------------
 * Folders, in order: each of TOKVOX_PLUGIN_PATH (colon-separated), the
 * build's plugin folder (uninstalled builds only), tokvox/plugins beside the
 * installed libtokvox itself (found with dladdr, so a moved prefix works),
 * LIBDIR/tokvox/plugins as configured.
 * The current directory is never searched unless named there.  A plugin
 * NAME is looked up folder by folder: in tokvox_NAME.so, then in every
 * other tokvox_*.so of the folder (by file name); the first descriptor
 * called NAME wins.  Objects that do not load are skipped, except that a
 * tokvox_NAME.so that does not load, in a folder where no other object
 * holds NAME, ends the search with its error.  Names are [a-z0-9_]{1,31},
 * so a model file cannot name a path.
 *
 * ---- Thread tags (on every callback below) -------------------------------
 * [load-thread]    called by the thread loading or destroying a model
 *                  (tokvox_model_load/destroy), never concurrently with any
 *                  other callback on the same instance.  May allocate.
 * [any-thread]     may run on several threads at once for the same
 *                  instance; must not modify it (instances are immutable
 *                  after create).
 * [session-thread] one thread at a time per state object (the thread
 *                  driving that encoder or decoder session); distinct
 *                  states run concurrently.
 * [no-alloc]       the per-frame path of live streams: must not allocate,
 *                  block or log (the conformance suite counts mallocs).
 * Host callbacks carry their tags too.
 *
 * ---- Lifetimes -----------------------------------------------------------
 * The entry, descriptors and API tables are static data of the object.  The
 * host struct lives from init until deinit.  Everything a tokvox_weights
 * hands out (tensors, converted copies) lives as long as the model, i.e.
 * until after the instance's destroy.  A plugin never sees files, devices
 * or the command line.
 *
 * ---- Changelog -----------------------------------------------------------
 * 1.0  first version: one descriptor per object from a function
 *      tokvox_plugin_entry(void).
 * 1.1  tokvox_kernels.linear_f16.
 * 2.0  entry struct with host, init/deinit and a factory; a size first in
 *      every struct; tokvox_weights.tensor hands out the stored dtype (f16,
 *      bf16, f32) and tensor_f32 converts in the host; kernels through
 *      get_extension(TOKVOX_EXT_KERNELS); explicit encoder and decoder
 *      state functions; the quantizer's scratch argument is gone; error
 *      codes in tokvox/errors.h, included here.  1.x objects are refused
 *      with a message saying so (their entry is a function of another
 *      shape; rebuilding against this header is the fix).
 * 2.1  tokvox_model_api.framing: the model declares its sample rate,
 *      frame hop, window, front-end features and synthesis, and the host
 *      checks it can run them.  (2.0 and 2.1 were introduced together; a
 *      2.0 object, without framing, is the oldest minor the tests load.)
 * 2.2  tokvox_model_framing.sub_frames: K synthesis frames per code frame
 *      at hop/K (absent or 0 reads as 1, the framing of 2.1).
 */
#ifndef TOKVOX_PLUGIN_H
#define TOKVOX_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "tokvox/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TOKVOX_PLUGIN_ABI_MAJOR 2
#define TOKVOX_PLUGIN_ABI_MINOR 2
#define TOKVOX_PLUGIN_ENTRY_SYMBOL "tokvox_entry"

/* TOKVOX_HAS(p, type, m), the rule for reading a field added by a later
 * minor, e.g. TOKVOX_HAS(kernels, tokvox_kernels, linear_f16): tokvox/errors.h. */

#if defined(__GNUC__)
#define TOKVOX_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TOKVOX_PLUGIN_EXPORT
#endif

/* ---- the host ----------------------------------------------------------- */

typedef enum tokvox_log_level {
    TOKVOX_LOG_DEBUG = 0,
    TOKVOX_LOG_INFO = 1,
    TOKVOX_LOG_WARNING = 2,
    TOKVOX_LOG_ERROR = 3,
} tokvox_log_level;

/* Extension ids for tokvox_host.get_extension. */
#define TOKVOX_EXT_KERNELS "tokvox.kernels"  /* const tokvox_kernels * */

/* What the host offers a plugin.  One per loaded object. */
typedef struct tokvox_host {
    uint32_t size;              /* sizeof(tokvox_host) as the host was built */
    uint16_t abi_major, abi_minor;
    const char *name;           /* "libtokvox" */
    const char *version;        /* the library version, e.g. "0.1.0" */
    /* [load-thread] One line for the user (the host prefixes the plugin's
     * name); DEBUG and INFO are shown only when TOKVOX_PLUGIN_LOG=debug.
     * Not for the per-frame path. */
    void (*log)(const struct tokvox_host *host, int level, const char *message);
    /* [any-thread] The extension table with this id, or NULL when this host
     * has none.  The table starts with its size and lives as long as the
     * host. */
    const void *(*get_extension)(const struct tokvox_host *host, const char *id);
    void *host_data;            /* the host's; plugins leave it alone */
} tokvox_host;

/* ---- weights -------------------------------------------------------------- */

typedef enum tokvox_dtype {
    TOKVOX_DTYPE_F32 = 1,
    TOKVOX_DTYPE_F16 = 2,       /* IEEE binary16 bit patterns (uint16_t) */
    TOKVOX_DTYPE_BF16 = 3,      /* bfloat16 bit patterns (uint16_t) */
} tokvox_dtype;

#define TOKVOX_MAX_DIMS 8

/* A tensor as the model file stores it. */
typedef struct tokvox_tensor {
    uint32_t size;              /* sizeof(tokvox_tensor) as the host was built */
    int dtype;                  /* tokvox_dtype */
    int ndim;
    int64_t shape[TOKVOX_MAX_DIMS];
    int64_t numel;
    const void *data;           /* host byte order, aligned to the element size */
} tokvox_tensor;

/* Access to the model file, valid only during create [load-thread]. */
typedef struct tokvox_weights {
    uint32_t size;              /* sizeof(tokvox_weights) as the host was built */
    void *ctx;
    /* The named tensor as stored, checked against the expected shape (ndim
     * dimensions).  NULL (and a recorded message naming the tensor) when it
     * is missing, of another shape or not a float type.  The plugin decides
     * what to do with the dtype: use halves as they are (linear_f16), or
     * ask for tensor_f32. */
    const tokvox_tensor *(*tensor)(void *ctx, const char *name, int ndim, const int64_t *shape);
    /* The same tensor as f32, converted by the host (the project's one
     * half-float converter), in place from the file when stored as f32. */
    const float *(*tensor_f32)(void *ctx, const char *name, int ndim, const int64_t *shape);
    /* Integer config value: 0 and *out set, or -1 if absent or not an integer. */
    int (*config_int)(void *ctx, const char *key, int64_t *out);
    /* String config value (lives as long as the model), NULL if absent or
     * not a string. */
    const char *(*config_string)(void *ctx, const char *key);
    /* Record why create failed (the first message is kept, copied). */
    void (*fail)(void *ctx, const char *message);
} tokvox_weights;

/* ---- kernels (get_extension(TOKVOX_EXT_KERNELS)) ---------------------------
 * Row-major, time-major activations ([frames][channels]); weights in
 * PyTorch's layouts so exported tensors are used as they are.  Every kernel
 * is [any-thread] [no-alloc], and gives the same bits for any
 * thread count (tokvox_set_threads). */
typedef struct tokvox_kernels {
    uint32_t size;              /* sizeof(tokvox_kernels) as the host was built */
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
    /* linear with w as IEEE binary16 bit patterns ([out][in]), each widened
     * exactly: y is bit for bit what linear gives with the widened weights,
     * at half the memory traffic (what limits a stream).  NULL when halves
     * would not pay on this host (no hardware conversion): ask for
     * tensor_f32 then. */
    void (*linear_f16)(const float *x, size_t frames, size_t in, const uint16_t *w,
                       const float *b, size_t out, float *y);
} tokvox_kernels;

/* ---- quantizers ------------------------------------------------------------ */

typedef struct tokvox_quantizer_layout {
    uint32_t size;              /* sizeof(tokvox_quantizer_layout) as the plugin was built */
    int dim;                    /* latent channels */
    int groups;                 /* latent split into this many groups */
    int stages;                 /* residual stages per group */
    int codebook_size;          /* codes are 0 .. codebook_size-1 */
} tokvox_quantizer_layout;

/* Codebook k (the k-th code of a frame) is stage k / groups of group
 * k % groups, so any prefix of whole stages is a lower bitrate, and
 * encoding fewer codebooks must give exactly the prefix of the full code.
 * A created quantizer is immutable. */
typedef struct tokvox_quantizer_api {
    uint32_t size;              /* sizeof(tokvox_quantizer_api) as the plugin was built */
    /* [load-thread] Bind the weights; *out the instance.  On failure a
     * tokvox_error and a message through weights->fail. */
    int (*create)(const tokvox_host *host, const tokvox_weights *weights, void **out);
    /* [load-thread] NULL does nothing. */
    void (*destroy)(void *quantizer);
    /* [any-thread] The layout, owned by the instance. */
    const tokvox_quantizer_layout *(*layout)(const void *quantizer);
    /* [any-thread] [no-alloc] latent [frames][dim] -> codes [frames][num_codebooks],
     * the first num_codebooks of the full set (1..groups*stages, else
     * TOKVOX_ERR_INVALID_ARGUMENT).  0 frames writes nothing. */
    int (*encode)(const void *quantizer, const float *latent, size_t frames, int num_codebooks,
                  uint16_t *codes);
    /* [any-thread] [no-alloc] codes [frames][stride] -> latent [frames][dim], from the
     * first num_codebooks codes of each frame.  A code >= codebook_size
     * among them is TOKVOX_ERR_FORMAT; counts out of range (num_codebooks
     * < 1, > stride or > the full set) TOKVOX_ERR_INVALID_ARGUMENT. */
    int (*decode)(const void *quantizer, const uint16_t *codes, size_t frames, int stride,
                  int num_codebooks, float *latent);
} tokvox_quantizer_api;

/* ---- models ---------------------------------------------------------------- */

typedef struct tokvox_model_layout {
    uint32_t size;              /* sizeof(tokvox_model_layout) as the plugin was built */
    int feature_dim;            /* encoder input channels per frame */
    int latent_dim;             /* quantizer channels */
    int head_dim;               /* decoder output channels per frame */
    int max_frames;             /* largest block encode/decode accept at once */
} tokvox_model_layout;

/* What the engine's signal processing around the model is (2.1).  The
 * host refuses a model whose framing it cannot run, naming what it lacks. */
typedef enum tokvox_window { TOKVOX_WINDOW_SQRT_HANN = 1 } tokvox_window;
typedef enum tokvox_features {
    TOKVOX_FEATURES_LOG_MAGNITUDE = 1,  /* log(max(|STFT|, log_floor)), n_fft/2+1 bins */
} tokvox_features;
typedef enum tokvox_synthesis {
    /* head = sub_frames spectra in time order, each log|X| then phase,
     * n_fft/2+1 values each; inverse STFT and overlap-add at hop/sub_frames */
    TOKVOX_SYNTHESIS_MAG_PHASE = 1,
} tokvox_synthesis;

typedef struct tokvox_model_framing {
    uint32_t size;              /* sizeof(tokvox_model_framing) as the plugin was built */
    int sample_rate;            /* Hz */
    int hop;                    /* samples per code frame */
    int n_fft;                  /* analysis and synthesis window length */
    int window;                 /* tokvox_window */
    int features;               /* tokvox_features: what encode takes */
    int synthesis;              /* tokvox_synthesis: what decode gives */
    /* ---- 2.2 ---- */
    /* Synthesis frames per code frame, K >= 1 (0 or absent: 1): the head
     * holds K spectra, in time order, synthesised at the synthesis hop
     * hop/K, each windowed frame scaled by 2*(hop/K)/n_fft so the squared
     * window still overlap-adds to 1 (exactly 1 for K = 1).  hop must be a
     * multiple of K.  The model's latency becomes hop + n_fft - hop/K. */
    int sub_frames;
} tokvox_model_framing;

/* A model maps feature frames to latents (encoder) and latents to head
 * frames (decoder), keeping its causal history in a state object, so
 * blocks of any size 1..max_frames give the same result.  A created model
 * is immutable; all that changes is in the states. */
typedef struct tokvox_model_api {
    uint32_t size;              /* sizeof(tokvox_model_api) as the plugin was built */
    /* [load-thread] as tokvox_quantizer_api.create */
    int (*create)(const tokvox_host *host, const tokvox_weights *weights, void **out);
    /* [load-thread] NULL does nothing; every state is destroyed before. */
    void (*destroy)(void *model);
    /* [any-thread] The layout, owned by the instance. */
    const tokvox_model_layout *(*layout)(const void *model);
    /* [any-thread] A fresh encoder / decoder state (zero history), owned
     * by the caller; NULL when out of memory.  All per-frame memory is
     * allocated here. */
    void *(*encoder_state_create)(const void *model);
    void *(*decoder_state_create)(const void *model);
    /* [session-thread] [no-alloc] Back to what the state's create gave. */
    void (*state_reset)(const void *model, void *state);
    /* [session-thread] NULL does nothing. */
    void (*state_destroy)(const void *model, void *state);
    /* [session-thread] [no-alloc] features [frames][feature_dim] -> latent
     * [frames][latent_dim], with an encoder state; frames <= max_frames. */
    int (*encode)(const void *model, void *state, const float *features, size_t frames,
                  float *latent);
    /* [session-thread] [no-alloc] latent [frames][latent_dim] -> head [frames][head_dim],
     * with a decoder state; frames <= max_frames. */
    int (*decode)(const void *model, void *state, const float *latent, size_t frames,
                  float *head);
    /* ---- 2.1 ---- */
    /* [any-thread] The framing, owned by the instance.  Absent (a 2.0
     * plugin) or NULL: the host reads it from the model file's config
     * (sample_rate, hop, n_fft, window) with log-magnitude features and
     * magnitude/phase synthesis. */
    const tokvox_model_framing *(*framing)(const void *model);
} tokvox_model_api;

/* ---- descriptors and the entry ------------------------------------------- */

typedef enum tokvox_plugin_kind {
    TOKVOX_PLUGIN_QUANTIZER = 1,        /* api: const tokvox_quantizer_api * */
    TOKVOX_PLUGIN_MODEL = 2,            /* api: const tokvox_model_api * */
} tokvox_plugin_kind;

typedef struct tokvox_plugin_descriptor {
    uint32_t size;              /* sizeof(tokvox_plugin_descriptor) as the plugin was built */
    int kind;                   /* tokvox_plugin_kind */
    const char *name;           /* [a-z0-9_]{1,31}, what model files name */
    const char *version;        /* the plugin's own version, e.g. "1.0.0" */
    const char *description;    /* one line */
    const void *api;            /* the kind's function table, starting with its size */
} tokvox_plugin_descriptor;

typedef struct tokvox_plugin_entry {
    uint16_t abi_major;         /* TOKVOX_PLUGIN_ABI_MAJOR: first, never moves */
    uint16_t abi_minor;         /* TOKVOX_PLUGIN_ABI_MINOR as the plugin was built */
    uint32_t size;              /* sizeof(tokvox_plugin_entry) as the plugin was built */
    /* [load-thread] Once per load of the object, before the factory, with
     * the host that stays valid until deinit.  TOKVOX_OK, or an error to
     * refuse loading (say why through host->log).  NULL: nothing to do. */
    int (*init)(const tokvox_host *host);
    /* [load-thread] Once per successful init, before unloading.  May be NULL. */
    void (*deinit)(void);
    /* [load-thread] The factory: how many plugins this object holds, and
     * each one's descriptor (static data), NULL past the end. */
    uint32_t (*plugin_count)(void);
    const tokvox_plugin_descriptor *(*plugin_get)(uint32_t index);
} tokvox_plugin_entry;

/* Define the entry of an object holding the n descriptors of array `list`
 * (no init/deinit): TOKVOX_PLUGIN_ENTRY(my_plugins) at file scope. */
#define TOKVOX_PLUGIN_ENTRY(list)                                                         \
    static uint32_t tokvox_plugin_count_(void)                                            \
    {                                                                                     \
        return (uint32_t)(sizeof(list) / sizeof((list)[0]));                              \
    }                                                                                     \
    static const tokvox_plugin_descriptor *tokvox_plugin_get_(uint32_t i)                 \
    {                                                                                     \
        return i < tokvox_plugin_count_() ? (list)[i] : NULL;                             \
    }                                                                                     \
    TOKVOX_PLUGIN_EXPORT extern const tokvox_plugin_entry tokvox_entry;                   \
    const tokvox_plugin_entry tokvox_entry = {                                            \
        TOKVOX_PLUGIN_ABI_MAJOR, TOKVOX_PLUGIN_ABI_MINOR, sizeof(tokvox_plugin_entry), NULL, \
        NULL, tokvox_plugin_count_, tokvox_plugin_get_}

#ifdef __cplusplus
}
#endif
#endif
