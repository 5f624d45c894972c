/* tokvox stream: the network half of the codec.  A sender turns PCM into
 * datagrams (sequence numbers, packetisation, forward error correction); a
 * receiver owns the decoder and turns datagrams, pushed as they arrive, into
 * PCM pulled at the playback clock (reordering jitter buffer with adaptive
 * depth, loss concealment with a fade, new-stream detection, FEC recovery).
 * The datagram format is in docs/stream.md; the transport (UDP, a radio
 * link, a game's channel) is the caller's.
 *
 *   tokvox_sender *tx = tokvox_sender_create(model, &sender_config, &err);
 *   tokvox_sender_push(tx, pcm, n, send_datagram, sock);     (any n)
 *   ...
 *   tokvox_receiver *rx = tokvox_receiver_create(model, &receiver_config, &err);
 *   tokvox_receiver_push(rx, datagram, len, arrival_seconds); (as they come)
 *   tokvox_receiver_pull(rx, now_seconds, pcm, hop, &n);     (every hop of playback)
 *
 * Times are seconds on any clock the caller keeps monotonic (the receiver
 * only compares them).  Each function states how it may be called:
 * [thread-safe] from any thread at any time; [one thread per handle] one
 * thread at a time per sender or receiver (different ones run in parallel;
 * the model may be shared).  Creators return a handle the caller owns and
 * destroys (destroy(NULL) does nothing); configs, keys and datagrams
 * passed in are read during the call only (keys are copied).
 *
 * The configs and stats structs start with their size, so later fields can
 * be added (the rule is in tokvox/errors.h): fill a config with its _init
 * macro, which passes the caller's sizeof, and set .size of a stats struct
 * to its sizeof; the library writes and reads no more than those cover.
 */
#ifndef TOKVOX_STREAM_H
#define TOKVOX_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "tokvox.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TOKVOX_STREAM_VERSION 2
#define TOKVOX_STREAM_HEADER_SIZE 24
/* Sealed streams (docs/stream.md): a pre-shared key of this many bytes;
 * each sealed datagram adds a salt and an authentication tag. */
#define TOKVOX_STREAM_KEY_BYTES 32
#define TOKVOX_STREAM_SEAL_OVERHEAD (8 + 16)
/* Previous packets one datagram may carry again at a lower bitrate. */
#define TOKVOX_STREAM_MAX_FEC 3
/* The largest datagram of a valid stream (4 packets of 4 frames x 32 codes
 * of 16 bits, and the header): size receive buffers with it. */
#define TOKVOX_STREAM_MAX_DATAGRAM \
    (TOKVOX_STREAM_HEADER_SIZE + TOKVOX_STREAM_SEAL_OVERHEAD + (1 + TOKVOX_STREAM_MAX_FEC) * \
     (1 + TOKVOX_PACKET_MAX_FRAMES * TOKVOX_PACKET_CODEBOOKS_MAX * 2))

/* ---- sender ---------------------------------------------------------------- */

typedef struct tokvox_sender tokvox_sender;

typedef struct tokvox_sender_config {
    size_t size;            /* the caller's sizeof(tokvox_sender_config), set by _init */
    int num_codebooks;      /* bitrate: codes per frame, 0 = all */
    int frames_per_packet;  /* 1..TOKVOX_PACKET_MAX_FRAMES (default 1: 20 ms) */
    int fec_depth;          /* previous packets each datagram repeats, 0..3 (default 0) */
    int fec_codebooks;      /* codes per frame of those copies (default 2) */
    uint32_t stream_id;     /* 0 (default): a random one; nonzero: this one (tests) */
    const uint8_t *key;     /* NULL (default): plain; else TOKVOX_STREAM_KEY_BYTES bytes
                               that seal every datagram (copied at create) */
} tokvox_sender_config;

/* Where datagrams go: called from inside push and finish, on their thread,
 * once per datagram, with bytes valid only during the call. */
typedef void (*tokvox_datagram_sink)(void *ctx, const uint8_t *data, size_t len);

/* Defaults into c, no more than size bytes of it (nothing for a size below
 * the struct's first version).  Call it through the macro, which passes
 * the caller's sizeof.  [thread-safe] */
TOKVOX_API void tokvox_sender_config_init_sized(tokvox_sender_config *c, size_t size);
#define tokvox_sender_config_init(c) tokvox_sender_config_init_sized((c), sizeof *(c))
/* NULL with *error on a bad config (TOKVOX_ERR_INVALID_ARGUMENT) or no
 * memory.  The model must outlive the sender.  [thread-safe] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_sender *tokvox_sender_create(const tokvox_model *model,
                                               const tokvox_sender_config *config, int *error);
/* [one thread per handle] */
TOKVOX_API void tokvox_sender_destroy(tokvox_sender *s);
/* n samples at the model rate, any n; every datagram completed goes to sink.
 * [one thread per handle] */
TOKVOX_API int tokvox_sender_push(tokvox_sender *s, const float *pcm, size_t n,
                                  tokvox_datagram_sink sink, void *ctx);
/* End of stream: the encoder's last frames, then the end datagram (which
 * the caller may send again: a receiver takes it once).  Further pushes
 * give TOKVOX_ERR_STATE.  [one thread per handle] */
TOKVOX_API int tokvox_sender_finish(tokvox_sender *s, tokvox_datagram_sink sink, void *ctx);
/* The bitrate from the next frame on (0 = all); the receiver follows.
 * [one thread per handle] */
TOKVOX_API int tokvox_sender_set_codebooks(tokvox_sender *s, int num_codebooks);
/* The stream's id (random unless configured).  [one thread per handle] */
TOKVOX_API uint32_t tokvox_sender_stream_id(const tokvox_sender *s);
/* Frames coded so far (the flush included after finish).
 * [one thread per handle] */
TOKVOX_API uint64_t tokvox_sender_frames(const tokvox_sender *s);

/* A fresh random key (libsodium's generator) into key[TOKVOX_STREAM_KEY_BYTES].
 * TOKVOX_OK, or TOKVOX_ERR_UNSUPPORTED if the generator cannot start.
 * [thread-safe] */
TOKVOX_API int tokvox_stream_make_key(uint8_t *key);

/* ---- receiver -------------------------------------------------------------- */

typedef struct tokvox_receiver tokvox_receiver;

typedef struct tokvox_receiver_config {
    size_t size;            /* the caller's sizeof(tokvox_receiver_config), set by _init */
    int jitter_ms;          /* hold before a stream's first frame plays (default 60) */
    int adaptive;           /* 1 (default): the depth follows the measured jitter */
    int max_jitter_ms;      /* the most the adaptive depth holds (default 500) */
    int fade;               /* 1 (default): fade out a long burst of concealed frames */
    const uint8_t *key;     /* NULL (default): plain datagrams; else only datagrams
                               sealed with this key are taken (copied at create) */
} tokvox_receiver_config;

/* Counters since create.  Every frame pulled is one of decoded, recovered
 * (from a FEC copy) or concealed. */
typedef struct tokvox_receiver_stats {
    size_t size;              /* the caller sets sizeof(tokvox_receiver_stats) */
    uint64_t datagrams;       /* accepted */
    uint64_t refused;         /* every refused datagram (unauthenticated, replayed incl.) */
    uint64_t duplicates;      /* a frame received twice */
    uint64_t late;            /* a frame that came after its turn */
    uint64_t stale;           /* datagrams of a stream already replaced */
    uint64_t frames;          /* frames pulled (played) */
    uint64_t decoded;         /* ... from their own packet */
    uint64_t recovered;       /* ... from a FEC copy at a lower bitrate */
    uint64_t concealed;       /* ... with nothing received */
    uint64_t skipped;         /* frames dropped to shrink the buffer */
    uint64_t stretched;       /* frames inserted to grow it */
    uint64_t streams;         /* streams started (1 + restarts) */
    int depth;                /* target frames buffered now */
    int buffered;             /* frames from the playout point to the newest */
    int num_codebooks;        /* of the last frame decoded */
    int ended;                /* the end datagram came and every frame was pulled */
    uint64_t stream_samples;  /* the stream's length, from its end datagram (0 before) */
    uint32_t stream_id;
    uint64_t unauthenticated; /* with a key: unsealed, or failing authentication */
    uint64_t replayed;        /* with a key: authenticated but seen before, or a
                                 stream that would displace a live one */
} tokvox_receiver_stats;

/* Defaults into c, as tokvox_sender_config_init.  [thread-safe] */
TOKVOX_API void tokvox_receiver_config_init_sized(tokvox_receiver_config *c, size_t size);
#define tokvox_receiver_config_init(c) tokvox_receiver_config_init_sized((c), sizeof *(c))
/* NULL with *error on a bad config (TOKVOX_ERR_INVALID_ARGUMENT) or no
 * memory.  The receiver owns its decoder; the model must outlive it.
 * [thread-safe] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_receiver *tokvox_receiver_create(const tokvox_model *model,
                                                   const tokvox_receiver_config *config,
                                                   int *error);
/* [one thread per handle] */
TOKVOX_API void tokvox_receiver_destroy(tokvox_receiver *r);
/* One datagram and when it arrived.  TOKVOX_OK when it belongs to the
 * stream (even if it turns out a duplicate or too late, which are counted);
 * otherwise it is refused, counted, and changes nothing:
 * TOKVOX_ERR_FORMAT / TOKVOX_ERR_TRUNCATED (not a valid datagram),
 * TOKVOX_ERR_VERSION, TOKVOX_ERR_MODEL_MISMATCH, TOKVOX_ERR_CODE_RANGE;
 * with a key, TOKVOX_ERR_AUTH (unsealed, forged, or sealed with another
 * key: checked before anything else is read) and TOKVOX_ERR_REPLAY.
 * A datagram with a new stream id starts a new stream (a sender that
 * restarted); the previous stream's late datagrams are then ignored.  With
 * a key, a new stream displaces the current one only once that has ended
 * or sent nothing for 2 s, so a recording of an earlier call cannot
 * interrupt a live one.  [one thread per handle] */
TOKVOX_API int tokvox_receiver_push(tokvox_receiver *r, const uint8_t *data, size_t len,
                                    double arrival_s);
/* Whether a frame is due at now_s: the stream has started and its hold has
 * passed, and it has not ended.  A caller without a device clock (a file,
 * a test) can pull whenever this says so.  [one thread per handle] */
TOKVOX_API int tokvox_receiver_ready(const tokvox_receiver *r, double now_s);
/* One frame of playback, hop samples, into pcm (max_samples >= hop):
 * decoded, recovered or concealed.  *samples_out = 0 when no frame is due
 * (not started, the hold, or the stream ended).  A stream starts with the
 * decoder's delay as zeros: n_fft - hop/K samples, the first hop for the
 * shipped model (tokvox_model_info.latency_samples - hop; docs/packets.md).
 * When that delay is more than a hop (K > 1 synthesis sub-frames), one hop
 * more follows the stream's last frame: the decoder's flush, which holds
 * the input's last samples (not counted as a frame); `ended` comes after it.
 * [one thread per handle] */
TOKVOX_API int tokvox_receiver_pull(tokvox_receiver *r, double now_s, float *pcm,
                                    size_t max_samples, size_t *samples_out);
/* Copies the counters into the caller's struct as far as st->size (set by
 * the caller) covers, and sets st->size to what it wrote; nothing for a
 * size below the struct's first version.  [one thread per handle] */
TOKVOX_API void tokvox_receiver_get_stats(const tokvox_receiver *r, tokvox_receiver_stats *st);

#ifdef __cplusplus
}
#endif
#endif
