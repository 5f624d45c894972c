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
 * buffer where a function takes one.  All state lives in the handles but
 * one process-wide setting, the thread count of tokvox_set_threads (like a
 * BLAS library's), which never changes results.
 *
 * Every function says how it may be called: [thread-safe] from any thread
 * at any time; [one thread per handle] by one thread at a time per handle
 * (different handles, even of one model, may be used in parallel).  Creators
 * return a handle the caller owns and must destroy; strings and structs a
 * function returns a pointer to are owned by the handle they came from.
 *
 * Framing (the same for files, tokens and live streams): the model codes one
 * frame per `hop` samples.  Frame t is produced once samples [0, (t+1)*hop)
 * have been pushed.  The decoder synthesises each frame as K sub-frames
 * (K = 1 for the shipped model; a model may declare more, docs/plugins.md
 * "Framing") at the synthesis hop sh = hop/K, and an output sample is final
 * once every window over it has been added: decoding frame t completes
 * output samples up to (t+1)*hop - D, where D = n_fft - sh is the decoder's
 * latency (tokvox_decoder_latency), so a frame releases up to a hop of
 * samples, none for a stream's first frame, and exactly hop once D samples
 * have come out.  The algorithmic latency is hop + D samples: a hop for the
 * encoder (a sample waits for its hop; tokvox_encoder_latency) and D for the
 * decoder; 880 samples = 55 ms for the shipped model (hop 320, n_fft 640,
 * K = 4: D = 560), 640 = 40 ms for the same framing with K = 1 (D = hop)
 * (tokvox_model_info.latency_samples).  Output sample i is input sample i:
 * the decoded stream lines up with the input, sample for sample.  Flushing
 * the encoder pads the stream with zeros and emits one extra frame;
 * flushing the decoder then writes the D samples still owed, which
 * complete every input sample.
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
/* On creators and loaders: dropping the handle they return is a leak. */
#if defined(__GNUC__)
#define TOKVOX_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#else
#define TOKVOX_WARN_UNUSED_RESULT
#endif

/* Error codes (tokvox_error, TOKVOX_OK, TOKVOX_ERR_*): tokvox/errors.h. */

/* A static English message for every code, "unknown error" otherwise. [thread-safe] */
TOKVOX_API const char *tokvox_strerror(int error);

/* The version of these headers, for #if: a program can check at compile
 * time what it builds against, and compare with tokvox_version_number() at
 * run time what it runs with (tests/test_errors.c keeps them equal to
 * meson.build's project version). */
#define TOKVOX_VERSION_MAJOR 0
#define TOKVOX_VERSION_MINOR 1
#define TOKVOX_VERSION_PATCH 0
#define TOKVOX_VERSION_NUMBER \
    (TOKVOX_VERSION_MAJOR * 10000 + TOKVOX_VERSION_MINOR * 100 + TOKVOX_VERSION_PATCH)

/* Library version, e.g. "0.1.0" (static), and as a number
 * major*10000+minor*100+patch.  [thread-safe] */
TOKVOX_API const char *tokvox_version(void);
TOKVOX_API int tokvox_version_number(void);

typedef struct tokvox_model tokvox_model;
typedef struct tokvox_encoder tokvox_encoder;
typedef struct tokvox_decoder tokvox_decoder;

/* What a model is and does.  Filled by tokvox_model_get_info().  Like
 * every struct the caller allocates, it starts with its size: the caller
 * sets .size to the sizeof it was compiled with, the library reads and
 * writes only the fields that size covers and sets .size to what it
 * filled.  Fields are only ever appended, so a program and a library of
 * different versions agree on the common part; a field added later is
 * there when TOKVOX_HAS(&info, tokvox_model_info, field).
 *
 *   tokvox_model_info info = {.size = sizeof info};
 *   tokvox_model_get_info(model, &info);
 */
#define TOKVOX_MAX_COMPATIBLE_IDS 8 /* tokvox_model_info.compatible_ids */

typedef struct tokvox_model_info {
    size_t size;            /* sizeof(tokvox_model_info), set by the caller */
    int sample_rate;        /* Hz */
    int hop;                /* samples per frame */
    int n_fft;              /* STFT window length */
    int num_codebooks;      /* codes per frame at full bitrate */
    int codebook_size;      /* entries per codebook */
    int codebook_bits;      /* bits per code in the bitstream */
    int groups;             /* quantizer groups (1 for plain RVQ) */
    int stages;             /* residual stages per group */
    int latency_samples;    /* algorithmic latency: hop + n_fft - hop/K */
    int64_t num_params;     /* weights, codebooks included */
    uint64_t model_id;      /* 64-bit hash of the model file */
    char architecture[32];  /* model plugin name, e.g. "stftcodec" */
    char quantizer[32];     /* quantizer plugin name, e.g. "grvq" */
    char name[64];          /* the model's own name from its metadata */
    /* Since 0.1.1 (TOKVOX_HAS): the ids of other model files whose codes
     * this one decodes as they were meant (the same encoder and codebooks
     * under a retrained decoder or another post-filter), from the config's
     * "decodes_model_ids": bitstreams, packets and token files naming any
     * of them are accepted (tokvox_model_info_decodes). */
    int num_compatible_ids;
    uint64_t compatible_ids[TOKVOX_MAX_COMPATIBLE_IDS];
} tokvox_model_info;

/* 1 when codes written with the model file of id model_id are this model's
 * to decode: its own id, or one of its compatible_ids (as far as info->size
 * holds them); else 0.  [thread-safe]: reads info only. */
TOKVOX_API int tokvox_model_info_decodes(const tokvox_model_info *info, uint64_t model_id);
/* A model id from its text form, 16 lowercase hex digits as `tokvox info`,
 * token manifests and a config's "decodes_model_ids" write it: 0 and *id
 * set, or -1 for anything else (*id untouched).  [thread-safe] */
TOKVOX_API int tokvox_model_id_parse(const char *text, uint64_t *id);

/* Load a model file (safetensors with the config in its metadata).
 * path == NULL loads the default model (TOKVOX_MODEL, then the build's and the
 * installed models folder); a bare name that is not a file in the current
 * directory names a shipped model, NAME.safetensors in that same folder
 * ("tokvox-16k", "tokvox-16k-ld").  On failure returns NULL, sets *error,
 * and writes a message naming the file and the problem into detail (may be
 * NULL).
 * The model owns its mapping and plugins until tokvox_model_destroy.
 * [thread-safe] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_model *
tokvox_model_load(const char *path, int *error, char *detail, size_t detail_size);
/* The same from the bytes of a model file in memory (linked into the
 * program, read from an archive, fetched): no file system, no mapping.  name
 * (NULL: "<memory>") stands for the file in messages and is what
 * tokvox_model_path returns.  The bytes are used in place: they stay the
 * caller's and must stay valid and unchanged until tokvox_model_destroy.
 * Plugins are still loaded from the plugin search path.  [thread-safe] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_model *
tokvox_model_load_memory(const void *data, size_t size, const char *name, int *error,
                         char *detail, size_t detail_size);
/* After every session made from it is destroyed.  [one thread, once] */
TOKVOX_API void tokvox_model_destroy(tokvox_model *model);
/* Copies the model's description into the caller's struct, as far as
 * info->size covers it.  TOKVOX_ERR_INVALID_ARGUMENT (nothing written) for
 * NULL or a size smaller than the struct's first version (this one).
 * [thread-safe] */
TOKVOX_API int tokvox_model_get_info(const tokvox_model *model, tokvox_model_info *info);
/* The config JSON from the model file's metadata; owned by the model.
 * [thread-safe] */
TOKVOX_API const char *tokvox_model_config_json(const tokvox_model *model);
/* Path (or name) the model was loaded from; owned by the model.  [thread-safe] */
TOKVOX_API const char *tokvox_model_path(const tokvox_model *model);

/* Encoder session.  num_codebooks: 0 for all, otherwise 1..info.num_codebooks;
 * the frames it writes have exactly that many codes.  The model must outlive
 * it.  [thread-safe]; everything else on an encoder: [one thread per handle] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_encoder *
tokvox_encoder_create(const tokvox_model *model, int num_codebooks, int *error);
TOKVOX_API void tokvox_encoder_destroy(tokvox_encoder *enc);
/* Codes per frame this session writes (now). */
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
 * without re-encoding.  The model must outlive it.  [thread-safe];
 * everything else on a decoder: [one thread per handle] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_decoder *
tokvox_decoder_create(const tokvox_model *model, int stream_codebooks, int use_codebooks,
                      int *error);
TOKVOX_API void tokvox_decoder_destroy(tokvox_decoder *dec);
/* Push n_frames code frames; writes up to hop samples per frame into pcm,
 * which must hold n_frames * hop floats: none for a stream's first frame,
 * then hop per frame once the decoder's latency has come out (K = 1: hop
 * from the second frame; K > 1: hop - hop/K for the second, see Framing
 * above).  *samples_out says how many. */
TOKVOX_API int tokvox_decoder_push(tokvox_decoder *dec, const uint16_t *codes, size_t n_frames,
                                   float *pcm, size_t *samples_out);
/* End of stream: writes the samples still owed (the unfinished overlap),
 * at most tokvox_decoder_latency(dec), which pcm must hold (a hop for the
 * shipped model; more than a hop when K > 1); nothing if no frame was
 * pushed.  With the encoder's flush frame, push and flush together write
 * frames * hop samples, the input's length rounded up plus a hop. */
TOKVOX_API int tokvox_decoder_flush(tokvox_decoder *dec, float *pcm, size_t *samples_out);
TOKVOX_API void tokvox_decoder_reset(tokvox_decoder *dec);

/* Plugins found in the search folders (see tokvox/plugin.h), each opened
 * and checked.  visit is called once per candidate file, in search order,
 * and once for a folder that exists but cannot be listed (path = the folder,
 * error = TOKVOX_ERR_IO).  The library fills the struct: .size is its
 * sizeof, so a field added later is there when TOKVOX_HAS says so. */
typedef struct tokvox_plugin_info {
    size_t size;              /* sizeof(tokvox_plugin_info) as the library was built */
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
/* The strings in info are valid during the call only.  [thread-safe] */
TOKVOX_API void tokvox_plugins_scan(tokvox_plugin_visitor visit, void *ctx);
/* The folders searched, in order, as one colon-separated string written
 * into buf.  [thread-safe] */
TOKVOX_API void tokvox_plugin_search_path(char *buf, size_t size);

/* Number of frames a stream of n samples encodes to (flush included).
 * [thread-safe] */
TOKVOX_API size_t tokvox_frames_for_samples(const tokvox_model *model, size_t n);

/* Latency of a live stream, in samples at the model rate: the encoder's share
 * (a sample waits for its hop to complete: hop) and the decoder's (the window
 * overhang still owed when a frame is decoded: n_fft - hop/K).  Together
 * they make tokvox_model_info.latency_samples.  The decoder's share is also
 * the most tokvox_decoder_flush writes, and the zeros a packet or receiver
 * stream starts with.  TOKVOX_ERR_INVALID_ARGUMENT for NULL.
 * [thread-safe] */
TOKVOX_API int tokvox_encoder_latency(const tokvox_encoder *enc);
TOKVOX_API int tokvox_decoder_latency(const tokvox_decoder *dec);

/* Packet-loss concealment: decodes one frame without codes, in the place of a
 * lost one, by running the latent of the last frame, scaled by 0.7 per
 * consecutive concealed frame, through the decoder, so audio continues and
 * fades instead of dropping to silence with a click.  Writes what a push of
 * one frame would (up to hop samples into pcm, none for a stream's first frame);
 * the next tokvox_decoder_push continues from it.  [one thread per handle] */
TOKVOX_API int tokvox_decoder_conceal(tokvox_decoder *dec, float *pcm, size_t *samples_out);

/* Bitrate changes on the fly.  The number of codes per frame applies to
 * the frames completed by later calls; the session's history (causal state,
 * overlap) is kept, so a stream can change bitrate on any frame without a
 * glitch: the codes of the first k codebooks do not depend on how many
 * follow them.  num_codebooks as for tokvox_encoder_create (0 = all).
 * TOKVOX_ERR_INVALID_ARGUMENT for a count out of range.
 * [one thread per handle] */
TOKVOX_API int tokvox_encoder_set_codebooks(tokvox_encoder *enc, int num_codebooks);
/* The layout of the frames pushed next, as for tokvox_decoder_create:
 * stream_codebooks codes per frame, of which the first use_codebooks are
 * decoded (0 = all).  State kept.  [one thread per handle] */
TOKVOX_API int tokvox_decoder_set_codebooks(tokvox_decoder *dec, int stream_codebooks,
                                            int use_codebooks);
/* The decode-time spectral post-filter a model's config names (`postfilter`,
 * docs/model-format.md: it deepens the valleys between formants): on
 * (enabled = 1, what every decoder starts with) or off (0: the network's
 * raw output, as in training; the codes and the timing are the same either
 * way).  Applies to what later calls synthesise; a model without one
 * decodes the same either way.  TOKVOX_ERR_INVALID_ARGUMENT for a NULL dec.
 * [one thread per handle] */
TOKVOX_API int tokvox_decoder_set_postfilter(tokvox_decoder *dec, int enabled);

/* ---- The bit packer ------------------------------------------------------
 * The one packing of codes into bytes, used by .tvx blocks and packets and
 * exported for tools that read them: n codes of `bits` bits each (1..16),
 * least significant bit first, bit i of the string is bit i % 8 of byte
 * i / 8; the bits after the last code are zero (docs/bitstream.md).
 * [thread-safe]: no state. */

/* Bytes n codes of this width take: ceil(n * bits / 8); 0 for a width out of
 * range (or an n whose bits overflow size_t). */
TOKVOX_API size_t tokvox_bits_size(size_t n_codes, int bits);
/* Writes tokvox_bits_size(n_codes, bits) bytes to out.  TOKVOX_ERR_CODE_RANGE
 * (and nothing written) if a code does not fit in bits;
 * TOKVOX_ERR_INVALID_ARGUMENT if out_size is too small. */
TOKVOX_API int tokvox_bits_pack(const uint16_t *codes, size_t n_codes, int bits, uint8_t *out,
                                size_t out_size);
/* Reads n_codes codes from exactly in_size = tokvox_bits_size(n_codes, bits)
 * bytes: TOKVOX_ERR_TRUNCATED for fewer, TOKVOX_ERR_FORMAT for more or for
 * padding bits that are not zero. */
TOKVOX_API int tokvox_bits_unpack(const uint8_t *in, size_t in_size, int bits, uint16_t *codes,
                                  size_t n_codes);

/* ---- Packets: PCM to bytes and back (docs/packets.md) --------------------
 * A packet is one to TOKVOX_PACKET_MAX_FRAMES consecutive frames of one
 * stream, all with the same number of codebooks:
 *
 *   byte 0   TOC: bits 0-4 = codebooks - 1 (1..32), bits 5-6 = frames - 1
 *            (1..4), bit 7 = 0 (reserved: a set bit is a packet of a later
 *            version, refused with TOKVOX_ERR_VERSION)
 *   byte 1.. frames x codebooks codes, frame-major, by the bit packer at the
 *            model's codebook_bits
 *
 * so a packet is 1 + ceil(frames * codebooks * codebook_bits / 8) bytes
 * (tokvox_packet_bytes): the shipped model makes 11 bytes per 20 ms at
 * 4 kbps, 4 at 1 kbps.  The bitrate may change on any packet: the decoder
 * takes the count from each packet and keeps its state.  Packets carry no
 * sequence number or clock: that is tokvox/stream.h's job. */
#define TOKVOX_PACKET_MAX_FRAMES 4
#define TOKVOX_PACKET_CODEBOOKS_MAX 32

/* Bytes a packet of `frames` frames with num_codebooks codes each takes
 * (0 = all of the model's); 0 if the layout cannot be a packet. [thread-safe] */
TOKVOX_API size_t tokvox_packet_bytes(const tokvox_model *model, int frames, int num_codebooks);
/* Checks a packet's TOC and length against the model: TOKVOX_OK with its
 * frame and codebook counts (either pointer may be NULL), or
 * TOKVOX_ERR_TRUNCATED / TOKVOX_ERR_FORMAT (the length does not match the
 * TOC, or more codebooks than the model has) / TOKVOX_ERR_VERSION.  [thread-safe] */
TOKVOX_API int tokvox_packet_layout(const tokvox_model *model, const uint8_t *data, size_t len,
                                    int *frames, int *num_codebooks);
/* Code frames to a packet and back, without coding audio (tokens, FEC).
 * pack: codes holds frames * num_codebooks codes; *len gets the size.
 * unpack: writes frames * num_codebooks codes (max_codes must hold them) and
 * the counts; codes beyond the codebook size give TOKVOX_ERR_CODE_RANGE.
 * [thread-safe] */
TOKVOX_API int tokvox_packet_pack(const tokvox_model *model, const uint16_t *codes, int frames,
                                  int num_codebooks, uint8_t *out, size_t out_size, size_t *len);
TOKVOX_API int tokvox_packet_unpack(const tokvox_model *model, const uint8_t *data, size_t len,
                                    uint16_t *codes, size_t max_codes, int *frames,
                                    int *num_codebooks);

/* Encodes n samples, a whole number of frames (n = k * hop, k = 1..4), into
 * one packet at the encoder's current codebook count.  The encoder must be at
 * a frame boundary (no partial hop pushed with tokvox_encoder_push):
 * otherwise TOKVOX_ERR_STATE.  *len gets the packet's size; out_size must
 * hold tokvox_packet_bytes(model, k, tokvox_encoder_num_codebooks(enc)).
 * [one thread per handle] */
TOKVOX_API int tokvox_encoder_encode_packet(tokvox_encoder *enc, const float *pcm, size_t n,
                                            uint8_t *out, size_t out_size, size_t *len);
/* Decodes one packet into frames * hop samples (max_samples must hold them).
 * Unlike tokvox_decoder_push, every frame gives hop samples: a stream starts
 * with tokvox_decoder_latency(dec) zeros (the decoder's delay: a hop for the
 * shipped model, all of its first frame; drop them to line the stream up
 * with the encoder's input).  The packet's
 * codebook count becomes the decoder's stream layout (decoding at most the
 * use_codebooks it was created with, when not 0).  data == NULL means a lost
 * packet: max_samples / hop frames are concealed (tokvox_decoder_conceal).
 * A damaged packet leaves the decoder untouched.  [one thread per handle] */
TOKVOX_API int tokvox_decoder_decode_packet(tokvox_decoder *dec, const uint8_t *data, size_t len,
                                            float *pcm, size_t max_samples,
                                            size_t *samples_out);

/* Threads one large kernel call may use (coding a whole file or a block of
 * frames), process-wide like a BLAS library's setting: the first kernel call
 * reads TOKVOX_THREADS (default 1); this overrides it.  n is clamped to
 * 1..64; returns the count now in effect.  Codes and audio are identical for
 * every count, and a streaming session's single frames stay on the calling
 * thread whatever it is.  [thread-safe; applies to calls that start later] */
TOKVOX_API int tokvox_set_threads(int n);
TOKVOX_API int tokvox_get_threads(void);

/* ---- Profiling (benchmarks) ----------------------------------------------
 * Where the time goes, measured in the real run: while profiling is on,
 * every call of a compute kernel (the table plugins use, tokvox/plugin.h)
 * and of the engine's FFTs is timed, and the times are summed per kernel
 * and shape over the whole process (all sessions, all threads).  Off by
 * default, when it costs a relaxed atomic load per call; on, two clock
 * reads and a lock per call: for benchmarks (bench/speed), not for
 * production.  [thread-safe] */

/* One kernel at one shape.  Set .size before tokvox_profile_get. */
typedef struct tokvox_profile_entry {
    size_t size;           /* sizeof(tokvox_profile_entry), set by the caller */
    char kernel[24];       /* "linear_f16", "conv1d_causal", "fft_forward", ... */
    char shape[64];        /* its sizes by the kernel's parameter names, "in=384 out=1152" */
    uint64_t calls;
    uint64_t frames;       /* rows over all calls (for gelu: elements) */
    double macs;           /* multiply-adds done (0 for kernels that do few) */
    double seconds;        /* wall time inside the kernel */
} tokvox_profile_entry;

/* on != 0: clears the sums and starts timing; 0: stops, keeping the sums
 * for tokvox_profile_get.  Calls running when it changes may count or not. */
TOKVOX_API void tokvox_profile_enable(int on);
/* Kernel-and-shape entries recorded since the last enable; *dropped_calls
 * (may be NULL) counts calls of shapes beyond the table's room (256). */
TOKVOX_API size_t tokvox_profile_count(uint64_t *dropped_calls);
/* Entry index (0 .. count-1), in order of first call; the struct filled
 * as far as entry->size covers.  TOKVOX_ERR_INVALID_ARGUMENT past the
 * end or for a size below the first version. */
TOKVOX_API int tokvox_profile_get(size_t index, tokvox_profile_entry *entry);
/* The kernel variant in use, a static string: "scalar", "avx2" or
 * "avx512" (the best this CPU runs, or TOKVOX_KERNELS=NAME when set at the
 * first kernel call and available). */
TOKVOX_API const char *tokvox_kernels_name(void);

#ifdef __cplusplus
}
#endif
#endif
