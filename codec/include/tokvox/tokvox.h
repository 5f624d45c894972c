/* tokvox: a neural speech codec and speech-token toolkit.
 *
 * The public API of libtokvox.  Three opaque handles:
 *   tokvox_model    a loaded model file: immutable once loaded, shareable
 *                   between threads [thread-safe];
 *   tokvox_encoder  PCM in, code frames out  [one thread per handle];
 *   tokvox_decoder  code frames in, PCM out  [one thread per handle].
 *
 * Every create has a destroy; destroy(NULL) does nothing.  Functions return
 * TOKVOX_OK (0) or a negative tokvox_error; tokvox_strerror() names each.  A
 * human-readable detail (file, tensor, offset) is written into the caller's
 * buffer where a function takes one.  There is no global mutable state.
 *
 * Framing (the same for files, tokens and live streams): the model codes one
 * frame per `hop` samples.  Frame t is produced once samples [0, (t+1)*hop)
 * have been pushed.  Decoding frame t releases output samples
 * [(t-1)*hop, t*hop), so the algorithmic latency is 2*hop samples plus the
 * window overhang (reported by tokvox_model_info.latency_samples).  Flushing
 * the encoder pads the stream with zeros and emits one extra frame, so the
 * decoder can complete every input sample.
 */
#ifndef TOKVOX_TOKVOX_H
#define TOKVOX_TOKVOX_H

#include <stddef.h>
#include <stdint.h>

#include "tokvox/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TOKVOX_BUILDING) && defined(__GNUC__)
#define TOKVOX_API __attribute__((visibility("default")))
#else
#define TOKVOX_API
#endif

/* Error codes (tokvox_error, TOKVOX_OK, TOKVOX_ERR_*): tokvox/errors.h. */

/* A static English message for every code, "unknown error" otherwise. [thread-safe] */
TOKVOX_API const char *tokvox_strerror(int error);

/* Library version, e.g. "0.1.0", and as a number major*10000+minor*100+patch. */
TOKVOX_API const char *tokvox_version(void);
TOKVOX_API int tokvox_version_number(void);

typedef struct tokvox_model tokvox_model;
typedef struct tokvox_encoder tokvox_encoder;
typedef struct tokvox_decoder tokvox_decoder;

/* What a model is and does.  Filled by tokvox_model_get_info(). */
typedef struct tokvox_model_info {
    int sample_rate;        /* Hz */
    int hop;                /* samples per frame */
    int n_fft;              /* STFT window length */
    int num_codebooks;      /* codes per frame at full bitrate */
    int codebook_size;      /* entries per codebook */
    int codebook_bits;      /* bits per code in the bitstream */
    int groups;             /* quantizer groups (1 for plain RVQ) */
    int stages;             /* residual stages per group */
    int latency_samples;    /* algorithmic latency */
    int64_t num_params;     /* weights, codebooks included */
    uint64_t model_id;      /* 64-bit hash of the model file */
    char architecture[32];  /* model plugin name, e.g. "stftcodec" */
    char quantizer[32];     /* quantizer plugin name, e.g. "grvq" */
    char name[64];          /* the model's own name from its metadata */
} tokvox_model_info;

/* Load a model file (safetensors with the config in its metadata).
 * path == NULL loads the default model (TOKVOX_MODEL, then the build's and the
 * installed models folder).  On failure returns NULL, sets *error, and writes a
 * message naming the file and the problem into detail (may be NULL).
 * The model owns its mapping and plugins until tokvox_model_destroy. */
TOKVOX_API tokvox_model *tokvox_model_load(const char *path, int *error,
                                           char *detail, size_t detail_size);
TOKVOX_API void tokvox_model_destroy(tokvox_model *model);
TOKVOX_API void tokvox_model_get_info(const tokvox_model *model, tokvox_model_info *info);
/* The config JSON from the model file's metadata; owned by the model. */
TOKVOX_API const char *tokvox_model_config_json(const tokvox_model *model);
/* Path the model was loaded from; owned by the model. */
TOKVOX_API const char *tokvox_model_path(const tokvox_model *model);

/* Encoder session.  num_codebooks: 0 for all, otherwise 1..info.num_codebooks;
 * the frames it writes have exactly that many codes. */
TOKVOX_API tokvox_encoder *tokvox_encoder_create(const tokvox_model *model, int num_codebooks,
                                                 int *error);
TOKVOX_API void tokvox_encoder_destroy(tokvox_encoder *enc);
/* Codes per frame this session writes. */
TOKVOX_API int tokvox_encoder_num_codebooks(const tokvox_encoder *enc);
/* Push n mono samples at the model rate, any n, in [-1, 1] (NaN/Inf count as
 * 0, values beyond are clamped).  Complete frames are written
 * to codes (frame-major, num_codebooks per frame), at most max_frames of them;
 * *frames_out says how many.  A caller that pushes at most k*hop samples gets
 * at most k frames, so max_frames = n / hop + 1 always suffices. */
TOKVOX_API int tokvox_encoder_push(tokvox_encoder *enc, const float *pcm, size_t n,
                                   uint16_t *codes, size_t max_frames, size_t *frames_out);
/* End of stream: pads with zeros and writes the last frames (at most 2). */
TOKVOX_API int tokvox_encoder_flush(tokvox_encoder *enc, uint16_t *codes, size_t max_frames,
                                    size_t *frames_out);
/* Back to the start of a stream: history cleared. */
TOKVOX_API void tokvox_encoder_reset(tokvox_encoder *enc);

/* Decoder session.  Frames pushed carry stream_codebooks codes each; the
 * first use_codebooks of them are decoded (0 = all), which lowers the bitrate
 * without re-encoding. */
TOKVOX_API tokvox_decoder *tokvox_decoder_create(const tokvox_model *model, int stream_codebooks,
                                                 int use_codebooks, int *error);
TOKVOX_API void tokvox_decoder_destroy(tokvox_decoder *dec);
/* Push n_frames code frames; writes hop samples per frame (none for a
 * stream's first frame) into pcm, which must hold n_frames * hop floats. */
TOKVOX_API int tokvox_decoder_push(tokvox_decoder *dec, const uint16_t *codes, size_t n_frames,
                                   float *pcm, size_t *samples_out);
/* End of stream: writes the last hop samples (the unfinished overlap). */
TOKVOX_API int tokvox_decoder_flush(tokvox_decoder *dec, float *pcm, size_t *samples_out);
TOKVOX_API void tokvox_decoder_reset(tokvox_decoder *dec);

/* Plugins found in the search folders (see tokvox/plugin.h), each opened
 * and checked.  visit is called once per candidate file, in search order,
 * and once for a folder that exists but cannot be listed (path = the folder,
 * error = TOKVOX_ERR_IO). */
typedef struct tokvox_plugin_info {
    const char *path;
    const char *name;         /* NULL when the file could not be loaded */
    const char *version;
    const char *description;
    int kind;                 /* tokvox_plugin_kind */
    int abi_major, abi_minor;
    int error;                /* TOKVOX_OK or why it is unusable */
    const char *detail;       /* message when error != TOKVOX_OK */
} tokvox_plugin_info;
typedef void (*tokvox_plugin_visitor)(void *ctx, const tokvox_plugin_info *info);
TOKVOX_API void tokvox_plugins_scan(tokvox_plugin_visitor visit, void *ctx);
/* The folders searched, in order, as one colon-separated string written
 * into buf. */
TOKVOX_API void tokvox_plugin_search_path(char *buf, size_t size);

/* Number of frames a stream of n samples encodes to (flush included). */
TOKVOX_API size_t tokvox_frames_for_samples(const tokvox_model *model, size_t n);

/* Latency of a live stream, in samples at the model rate: the encoder's share
 * (a sample waits for its hop to complete) and the decoder's (the window
 * overhang still owed when a frame is decoded).  Together they make
 * tokvox_model_info.latency_samples.  TOKVOX_ERR_INVALID_ARGUMENT for NULL.
 * [thread-safe] */
TOKVOX_API int tokvox_encoder_latency(const tokvox_encoder *enc);
TOKVOX_API int tokvox_decoder_latency(const tokvox_decoder *dec);

/* Packet-loss concealment: decodes one frame without codes, in the place of a
 * lost one, by running the latent of the last frame, scaled by 0.7 per
 * consecutive concealed frame, through the decoder, so audio continues and
 * fades instead of dropping to silence with a click.  Writes what a push of
 * one frame would (hop samples into pcm, none for a stream's first frame);
 * the next tokvox_decoder_push continues from it.  [one thread per handle] */
TOKVOX_API int tokvox_decoder_conceal(tokvox_decoder *dec, float *pcm, size_t *samples_out);

/* Threads one large kernel call may use (coding a whole file or a block of
 * frames), process-wide like a BLAS library's setting: the first kernel call
 * reads TOKVOX_THREADS (default 1); this overrides it.  n is clamped to
 * 1..64; returns the count now in effect.  Codes and audio are identical for
 * every count, and a streaming session's single frames stay on the calling
 * thread whatever it is.  [thread-safe; applies to calls that start later] */
TOKVOX_API int tokvox_set_threads(int n);
TOKVOX_API int tokvox_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
