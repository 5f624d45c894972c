/* The stream layer (tokvox/stream.h, format in docs/stream.md): datagrams
 * of packets with a sequence number and forward error correction, a sender
 * that makes them from PCM and a receiver that makes PCM from them.
 *
 * Datagram, little-endian:
 *   0  4  magic "TVXP"          8  4  stream id (random per stream)
 *   4  1  version (2)          12  4  seq: audio, the first frame's number;
 *   5  1  type: 1 audio, 2 end            end, the frames in the stream
 *   6  1  FEC packets that follow 16  8  model id
 *   7  1  flags: 1 = sealed     24  -  audio: the packet (tokvox.h's format),
 *                                     then the FEC packets, each holding the
 *                                     frames just before the one before it;
 *                                     end: u64 stream length in samples
 * A sealed datagram has, after the header, an 8-byte salt (random per
 * stream) and the payload encrypted with ChaCha20-Poly1305 (IETF, from
 * libsodium) followed by its 16-byte tag; header and salt are authenticated
 * as associated data, and the nonce is the salt then the sequence number:
 * unique for every datagram of a stream, as sequence numbers only grow
 * (the end datagram's is one no audio datagram has).
 */
#include "tokvox/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <sodium.h>

#include "model_internal.h"

enum { TYPE_AUDIO = 1, TYPE_END = 2, END_PAYLOAD = 8, FLAG_SEALED = 1, SALT_BYTES = 8 };
#define TAG_BYTES crypto_aead_chacha20poly1305_ietf_ABYTES
#define MAX_PAYLOAD (TOKVOX_STREAM_MAX_DATAGRAM - TOKVOX_STREAM_HEADER_SIZE)
/* Sequence numbers a sealed stream remembers behind its newest, for
 * replays; a datagram older than that is refused as one. */
#define REPLAY_WINDOW 256
/* A sealed stream that sent nothing for this long may be displaced. */
#define DISPLACE_AFTER_S 2.0
#define MAX_CODES (TOKVOX_PACKET_MAX_FRAMES * TOKVOX_PACKET_CODEBOOKS_MAX)

static const uint8_t stream_magic[4] = {'T', 'V', 'X', 'P'};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* Code frames of one packet: what a datagram carries once per packet. */
typedef struct frames_block {
    int frames, codebooks;
    uint16_t codes[MAX_CODES];
} frames_block;

typedef struct datagram {
    int type, fec;
    uint32_t stream_id, seq;
    uint64_t model_id, samples;     /* samples: end datagrams */
    frames_block primary;
    frames_block copies[TOKVOX_STREAM_MAX_FEC];
} datagram;

static void put_header(uint8_t *out, int type, int fec, int flags, uint32_t id, uint32_t seq,
                       uint64_t model)
{
    memcpy(out, stream_magic, 4);
    out[4] = TOKVOX_STREAM_VERSION;
    out[5] = (uint8_t)type;
    out[6] = (uint8_t)fec;
    out[7] = (uint8_t)flags;
    put_u32(out + 8, id);
    put_u32(out + 12, seq);
    put_u64(out + 16, model);
}

/* One packet of a datagram's payload: its TOC says its length. */
static int take_packet(const tokvox_model *m, const uint8_t **p, size_t *left, frames_block *b)
{
    int frames = 0, cb = 0;
    size_t size = 0;
    int err = *left ? tk_packet_toc(m, (*p)[0], &frames, &cb, &size) : TOKVOX_ERR_TRUNCATED;
    if (err)
        return err;
    if (size > *left)
        return TOKVOX_ERR_TRUNCATED;
    err = tokvox_packet_unpack(m, *p, size, b->codes, MAX_CODES, &b->frames, &b->codebooks);
    *p += size;
    *left -= size;
    return err;
}

/* The header, up to the model check: what can be read before a sealed
 * datagram is authenticated (the magic and version say whether the rest
 * means anything; the stream id and sequence number make the nonce). */
static int parse_header(const uint8_t *data, size_t len, datagram *d, int *flags)
{
    if (!data || len < 4 || memcmp(data, stream_magic, 4) != 0)
        return len < 4 && data && memcmp(data, stream_magic, len) == 0 ? TOKVOX_ERR_TRUNCATED
                                                                       : TOKVOX_ERR_FORMAT;
    if (len < 5)
        return TOKVOX_ERR_TRUNCATED;
    if (data[4] != TOKVOX_STREAM_VERSION)
        return TOKVOX_ERR_VERSION;
    if (len < TOKVOX_STREAM_HEADER_SIZE)
        return TOKVOX_ERR_TRUNCATED;
    d->type = data[5];
    d->fec = data[6];
    *flags = data[7];
    d->stream_id = get_u32(data + 8);
    d->seq = get_u32(data + 12);
    d->model_id = get_u64(data + 16);
    if ((*flags & ~FLAG_SEALED) || (d->type != TYPE_AUDIO && d->type != TYPE_END) ||
        d->fec > TOKVOX_STREAM_MAX_FEC || (d->type == TYPE_END && d->fec) || d->stream_id == 0)
        return TOKVOX_ERR_FORMAT;
    return TOKVOX_OK;
}

/* What follows the header (decrypted, for a sealed datagram). */
static int parse_payload(const tokvox_model *m, const uint8_t *p, size_t left, datagram *d)
{
    if (!tokvox_model_info_decodes(&m->info, d->model_id))
        return TOKVOX_ERR_MODEL_MISMATCH;
    if (d->type == TYPE_END) {
        if (left != END_PAYLOAD)
            return left < END_PAYLOAD ? TOKVOX_ERR_TRUNCATED : TOKVOX_ERR_FORMAT;
        d->samples = get_u64(p);
        return TOKVOX_OK;
    }
    int err = take_packet(m, &p, &left, &d->primary);
    for (int k = 0; !err && k < d->fec; k++)
        err = take_packet(m, &p, &left, &d->copies[k]);
    if (!err && left)
        err = TOKVOX_ERR_FORMAT; /* bytes past the last packet */
    return err;
}

static void make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES],
                       const uint8_t *salt, uint32_t seq)
{
    memcpy(nonce, salt, SALT_BYTES);
    put_u32(nonce + SALT_BYTES, seq);
}

/* libsodium must be initialised once before use; it makes that call safe
 * from any thread and idempotent. */
static int crypto_ready(void) { return sodium_init() >= 0; }

int tokvox_stream_make_key(uint8_t *key)
{
    if (!key)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (!crypto_ready())
        return TOKVOX_ERR_UNSUPPORTED;
    crypto_aead_chacha20poly1305_ietf_keygen(key);
    return TOKVOX_OK;
}

/* ---- sender ---------------------------------------------------------------- */

struct tokvox_sender {
    const tokvox_model *m;
    tokvox_encoder *enc;
    tokvox_sender_config c;
    size_t hop;
    uint32_t stream_id;
    uint64_t frames;            /* coded */
    uint64_t packed;            /* frames put in datagrams */
    uint64_t samples;           /* pushed */
    frames_block pending;       /* the packet being filled */
    frames_block history[TOKVOX_STREAM_MAX_FEC]; /* the last packets sent, newest first */
    int history_n;
    int finished;
    int sealed;
    uint8_t key[TOKVOX_STREAM_KEY_BYTES];
    uint8_t salt[SALT_BYTES];   /* random per stream: the nonces' prefix */
    uint8_t payload[MAX_PAYLOAD]; /* what follows the header, in the clear */
    uint8_t out[TOKVOX_STREAM_MAX_DATAGRAM];
};

/* ---- the callers' structs ---------------------------------------------------
 * Configs and stats follow the size rule (tokvox/errors.h): the library
 * writes no more of the caller's struct than its size, and reads only what
 * that covers (defaults for the rest).  Sizes below a struct's first
 * version (these, frozen: later fields are appended) are refused. */
#define SENDER_CONFIG_SIZE_1 (offsetof(tokvox_sender_config, key) + sizeof(const uint8_t *))
#define RECEIVER_CONFIG_SIZE_1 (offsetof(tokvox_receiver_config, key) + sizeof(const uint8_t *))
#define RECEIVER_STATS_SIZE_1 (offsetof(tokvox_receiver_stats, replayed) + sizeof(uint64_t))

static size_t smaller(size_t a, size_t b) { return a < b ? a : b; }

static void sender_defaults(tokvox_sender_config *c)
{
    memset(c, 0, sizeof *c);
    c->size = sizeof *c;
    c->frames_per_packet = 1;
    c->fec_codebooks = 2;
}

void tokvox_sender_config_init_sized(tokvox_sender_config *c, size_t size)
{
    if (!c || size < SENDER_CONFIG_SIZE_1)
        return;
    tokvox_sender_config full;
    sender_defaults(&full);
    full.size = smaller(size, sizeof full);
    memcpy(c, &full, full.size);
}

/* The caller's config as one of this version; 0 if it cannot be one. */
static int sender_config_read(const tokvox_sender_config *c, tokvox_sender_config *out)
{
    if (!c || c->size < SENDER_CONFIG_SIZE_1)
        return 0;
    sender_defaults(out);
    memcpy(out, c, smaller(c->size, sizeof *out));
    out->size = sizeof *out;
    return 1;
}

/* A stream id nobody else picks: the kernel's random bytes, or a mix of
 * the clock and an address where there are none. */
static uint32_t random_stream_id(const void *salt)
{
    uint32_t id = 0;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)(uintptr_t)salt;
        x = (x ^ (x >> 31)) * 0x9e3779b97f4a7c15ull;
        id = (uint32_t)(x >> 32);
    }
    return id ? id : 1;
}

static int sender_config_valid(const tokvox_model *m, const tokvox_sender_config *c)
{
    return c->num_codebooks >= 0 &&
           c->num_codebooks <= m->info.num_codebooks &&
           c->num_codebooks <= TOKVOX_PACKET_CODEBOOKS_MAX &&
           (c->num_codebooks || m->info.num_codebooks <= TOKVOX_PACKET_CODEBOOKS_MAX) &&
           c->frames_per_packet >= 1 && c->frames_per_packet <= TOKVOX_PACKET_MAX_FRAMES &&
           c->fec_depth >= 0 && c->fec_depth <= TOKVOX_STREAM_MAX_FEC &&
           (c->fec_depth == 0 || (c->fec_codebooks >= 1 &&
                                  c->fec_codebooks <= m->info.num_codebooks));
}

tokvox_sender *tokvox_sender_create(const tokvox_model *m, const tokvox_sender_config *config,
                                    int *error)
{
    int dummy;
    error = error ? error : &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    tokvox_sender_config whole;
    const tokvox_sender_config *c = &whole;
    if (!m || !sender_config_read(config, &whole) || !sender_config_valid(m, c))
        return NULL;
    tokvox_sender *s = calloc(1, sizeof *s);
    if (!s) {
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    s->m = m;
    s->c = *c;
    s->c.size = sizeof s->c;
    s->hop = (size_t)m->info.hop;
    s->enc = tokvox_encoder_create(m, c->num_codebooks, error);
    if (!s->enc) {
        free(s);
        return NULL;
    }
    s->stream_id = c->stream_id ? c->stream_id : random_stream_id(s);
    if (c->key) {
        if (!crypto_ready()) {
            tokvox_sender_destroy(s);
            *error = TOKVOX_ERR_UNSUPPORTED;
            return NULL;
        }
        s->sealed = 1;
        memcpy(s->key, c->key, sizeof s->key);
        randombytes_buf(s->salt, sizeof s->salt);
    }
    s->c.key = NULL; /* the copy in s->key is what is used */
    *error = TOKVOX_OK;
    return s;
}

void tokvox_sender_destroy(tokvox_sender *s)
{
    if (!s)
        return;
    tokvox_encoder_destroy(s->enc);
    sodium_memzero(s->key, sizeof s->key);
    free(s);
}

uint32_t tokvox_sender_stream_id(const tokvox_sender *s) { return s ? s->stream_id : 0; }
uint64_t tokvox_sender_frames(const tokvox_sender *s) { return s ? s->frames : 0; }

int tokvox_sender_set_codebooks(tokvox_sender *s, int num_codebooks)
{
    if (!s || num_codebooks > TOKVOX_PACKET_CODEBOOKS_MAX)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    return tokvox_encoder_set_codebooks(s->enc, num_codebooks);
}

/* The first `codebooks` codes of each frame of b, packed. */
static int pack_prefix(const tokvox_model *m, const frames_block *b, int codebooks, uint8_t *out,
                       size_t cap, size_t *len)
{
    uint16_t codes[MAX_CODES];
    for (int f = 0; f < b->frames; f++)
        memcpy(codes + f * codebooks, b->codes + f * b->codebooks,
               sizeof(uint16_t) * (size_t)codebooks);
    return tokvox_packet_pack(m, codes, b->frames, codebooks, out, cap, len);
}

/* Header and payload as one datagram, sealed when there is a key. */
static void send_datagram(tokvox_sender *s, int type, int fec, uint32_t seq, size_t len,
                          tokvox_datagram_sink sink, void *ctx)
{
    uint8_t *out = s->out;
    put_header(out, type, fec, s->sealed ? FLAG_SEALED : 0, s->stream_id, seq,
               s->m->info.model_id);
    size_t at = TOKVOX_STREAM_HEADER_SIZE;
    if (!s->sealed) {
        memcpy(out + at, s->payload, len);
        at += len;
    } else {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
        unsigned long long sealed_len = 0;
        memcpy(out + at, s->salt, SALT_BYTES);
        at += SALT_BYTES;
        make_nonce(nonce, s->salt, seq);
        crypto_aead_chacha20poly1305_ietf_encrypt(out + at, &sealed_len, s->payload, len, out,
                                                  at, NULL, nonce, s->key);
        at += (size_t)sealed_len;
    }
    if (sink)
        sink(ctx, out, at);
}

/* The pending packet, and copies of the last fec_depth ones, as one
 * datagram. */
static int emit(tokvox_sender *s, tokvox_datagram_sink sink, void *ctx)
{
    frames_block *b = &s->pending;
    if (b->frames == 0)
        return TOKVOX_OK;
    /* sealed: the nonce holds 32 bits of sequence number, which must not
     * wrap (994 days of 20 ms frames): a longer call takes a new stream */
    if (s->sealed && s->packed + (uint64_t)b->frames >= UINT32_MAX)
        return TOKVOX_ERR_STATE;
    int fec = s->history_n < s->c.fec_depth ? s->history_n : s->c.fec_depth;
    size_t at = 0, len = 0;
    int err = pack_prefix(s->m, b, b->codebooks, s->payload, sizeof s->payload, &len);
    for (int k = 0; !err && k < fec; k++) {
        const frames_block *h = &s->history[k];
        int cb = s->c.fec_codebooks < h->codebooks ? s->c.fec_codebooks : h->codebooks;
        at += len;
        err = pack_prefix(s->m, h, cb, s->payload + at, sizeof s->payload - at, &len);
    }
    if (err)
        return err;
    send_datagram(s, TYPE_AUDIO, fec, (uint32_t)s->packed, at + len, sink, ctx);
    memmove(s->history + 1, s->history, sizeof s->history[0] * (TOKVOX_STREAM_MAX_FEC - 1));
    s->history[0] = *b;
    if (s->history_n < TOKVOX_STREAM_MAX_FEC)
        s->history_n++;
    s->packed += (uint64_t)b->frames;
    b->frames = 0;
    return TOKVOX_OK;
}

/* A packet holds frames of one bitrate: a change closes the pending one. */
static int add_frames(tokvox_sender *s, const uint16_t *codes, size_t n,
                      tokvox_datagram_sink sink, void *ctx)
{
    int cb = tokvox_encoder_num_codebooks(s->enc);
    frames_block *b = &s->pending;
    for (size_t f = 0; f < n; f++) {
        int err = b->frames && b->codebooks != cb ? emit(s, sink, ctx) : TOKVOX_OK;
        if (err)
            return err;
        b->codebooks = cb;
        memcpy(b->codes + b->frames * cb, codes + f * (size_t)cb, sizeof(uint16_t) * (size_t)cb);
        b->frames++;
        s->frames++;
        if (b->frames == s->c.frames_per_packet && (err = emit(s, sink, ctx)) != TOKVOX_OK)
            return err;
    }
    return TOKVOX_OK;
}

int tokvox_sender_push(tokvox_sender *s, const float *pcm, size_t n, tokvox_datagram_sink sink,
                       void *ctx)
{
    if (!s || (n && !pcm))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (s->finished)
        return TOKVOX_ERR_STATE;
    uint16_t codes[4 * TOKVOX_PACKET_CODEBOOKS_MAX];
    while (n > 0) {
        size_t take = n < 3 * s->hop ? n : 3 * s->hop, frames = 0; /* <= 4 frames */
        int err = tokvox_encoder_push(s->enc, pcm, take, codes, 4, &frames);
        if (!err)
            err = add_frames(s, codes, frames, sink, ctx);
        if (err)
            return err;
        s->samples += take;
        pcm += take;
        n -= take;
    }
    return TOKVOX_OK;
}

int tokvox_sender_finish(tokvox_sender *s, tokvox_datagram_sink sink, void *ctx)
{
    if (!s)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (s->finished)
        return TOKVOX_ERR_STATE;
    s->finished = 1;
    uint16_t codes[4 * TOKVOX_PACKET_CODEBOOKS_MAX];
    size_t frames = 0;
    int err = tokvox_encoder_flush(s->enc, codes, 4, &frames);
    if (!err)
        err = add_frames(s, codes, frames, sink, ctx);
    if (!err)
        err = emit(s, sink, ctx);
    if (err)
        return err;
    put_u64(s->payload, s->samples);
    send_datagram(s, TYPE_END, 0, (uint32_t)s->packed, END_PAYLOAD, sink, ctx);
    return TOKVOX_OK;
}

/* ---- receiver: the jitter buffer ------------------------------------------- */

/* Frames are kept by frame number in a ring of slots and taken out in order
 * at the playout point.  Sequence numbers are 32 bits on the wire and
 * unwrapped into 64-bit frame numbers relative to the playout point. */
typedef struct slot {
    uint64_t frame;
    double arrival;
    uint8_t state;              /* SLOT_EMPTY, SLOT_COPY (FEC), SLOT_OWN */
    uint8_t codebooks;
    uint16_t codes[TOKVOX_PACKET_CODEBOOKS_MAX];
} slot;

enum { SLOT_EMPTY = 0, SLOT_COPY = 1, SLOT_OWN = 2 };

/* The jitter estimate: transit times of the last JITTER_WINDOW frames.  The
 * depth is the spread between their minimum and their JITTER_QUANTILE, in
 * frames, plus one, and never less than the configured hold.  The buffer
 * grows at once (a frame that is missing while the buffer is short of its
 * depth is waited for: concealed without moving on) and shrinks slowly (a
 * frame skipped when the buffer stayed deeper than depth + 2 for
 * ADAPT_EVERY frames: a sender's bursts and a loaded receiver's stalls
 * must not make it churn). */
#define JITTER_WINDOW 128
#define JITTER_QUANTILE 0.95
#define ADAPT_EVERY 50

struct tokvox_receiver {
    const tokvox_model *m;
    tokvox_receiver_config c;
    tokvox_decoder *dec;
    size_t hop;
    double frame_s;
    slot *slots;
    uint64_t mask;
    /* the stream */
    int have_stream, have_old;
    uint32_t stream_id, old_stream_id;
    int started;                /* the playout point is set */
    uint64_t next, newest;      /* frame to play next; one past the newest stored */
    double hold_until;          /* first frame plays no earlier */
    int end_known;
    uint64_t end_frame, end_samples;
    /* depth */
    int depth, min_depth, max_depth;
    double transit[JITTER_WINDOW];
    int transit_n, transit_at;
    int window_min_span, window_frames;
    /* concealment fade */
    int burst;
    float gain;
    tokvox_receiver_stats st;
    datagram parsed;            /* the datagram being pushed */
    /* sealed streams */
    int sealed;
    uint8_t key[TOKVOX_STREAM_KEY_BYTES];
    uint8_t plain[MAX_PAYLOAD]; /* a sealed datagram's payload, decrypted */
    double last_auth;           /* arrival of the stream's last datagram */
    int window_any;             /* a sequence number has been seen */
    uint32_t window_top;        /* the newest one */
    uint64_t window[REPLAY_WINDOW / 64]; /* bit k: window_top - k was seen */
    float scratch[2][4096];     /* two frames when skipping one */
    /* The decoder's flush, played as one hop more after a stream's last
     * frame when the encoder's flush frame does not complete the input:
     * a model with K > 1 synthesis sub-frames, whose decoder owes
     * n_fft - hop/K > hop (NULL for K = 1: nothing owed). */
    float *tail;
    int tail_due;               /* this stream's tail is still to play */
};

static void receiver_defaults(tokvox_receiver_config *c)
{
    memset(c, 0, sizeof *c);
    c->size = sizeof *c;
    c->jitter_ms = 60;
    c->adaptive = 1;
    c->max_jitter_ms = 500;
    c->fade = 1;
}

void tokvox_receiver_config_init_sized(tokvox_receiver_config *c, size_t size)
{
    if (!c || size < RECEIVER_CONFIG_SIZE_1)
        return;
    tokvox_receiver_config full;
    receiver_defaults(&full);
    full.size = smaller(size, sizeof full);
    memcpy(c, &full, full.size);
}

static int receiver_config_read(const tokvox_receiver_config *c, tokvox_receiver_config *out)
{
    if (!c || c->size < RECEIVER_CONFIG_SIZE_1)
        return 0;
    receiver_defaults(out);
    memcpy(out, c, smaller(c->size, sizeof *out));
    out->size = sizeof *out;
    return 1;
}

static int frames_for_ms(const tokvox_receiver *r, int ms)
{
    return (int)ceil(ms / 1000.0 / r->frame_s - 1e-9);
}

tokvox_receiver *tokvox_receiver_create(const tokvox_model *m,
                                        const tokvox_receiver_config *config, int *error)
{
    int dummy;
    error = error ? error : &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    tokvox_receiver_config whole;
    const tokvox_receiver_config *c = &whole;
    if (!m || !receiver_config_read(config, &whole) || c->jitter_ms < 0 || c->jitter_ms > 10000 ||
        c->max_jitter_ms < c->jitter_ms || c->max_jitter_ms > 10000 || m->info.hop > 4096 ||
        m->info.num_codebooks > TOKVOX_PACKET_CODEBOOKS_MAX)
        return NULL;
    tokvox_receiver *r = calloc(1, sizeof *r);
    *error = TOKVOX_ERR_NO_MEMORY;
    if (!r)
        return NULL;
    r->m = m;
    r->c = *c;
    r->hop = (size_t)m->info.hop;
    r->frame_s = (double)m->info.hop / m->info.sample_rate;
    r->min_depth = frames_for_ms(r, c->jitter_ms);
    r->min_depth = r->min_depth < 1 ? 1 : r->min_depth;
    r->max_depth = frames_for_ms(r, c->max_jitter_ms) + 1;
    /* the deepest buffer, reordering past it, and a margin */
    uint64_t slots = 64;
    while (slots < 4 * (uint64_t)r->max_depth + 16)
        slots <<= 1;
    r->mask = slots - 1;
    r->slots = calloc(slots, sizeof *r->slots);
    r->dec = tokvox_decoder_create(m, m->info.num_codebooks, 0, error);
    size_t owed = r->dec ? (size_t)tokvox_decoder_latency(r->dec) : 0;
    if (owed > r->hop)
        r->tail = malloc(sizeof(float) * owed);
    if (!r->slots || !r->dec || (owed > r->hop && !r->tail)) {
        *error = r->dec ? TOKVOX_ERR_NO_MEMORY : *error;
        tokvox_receiver_destroy(r);
        return NULL;
    }
    r->gain = 1.0f;
    r->st.size = sizeof r->st;
    if (c->key) {
        if (!crypto_ready()) {
            tokvox_receiver_destroy(r);
            *error = TOKVOX_ERR_UNSUPPORTED;
            return NULL;
        }
        r->sealed = 1;
        memcpy(r->key, c->key, sizeof r->key);
    }
    r->c.key = NULL;
    *error = TOKVOX_OK;
    return r;
}

void tokvox_receiver_destroy(tokvox_receiver *r)
{
    if (!r)
        return;
    tokvox_decoder_destroy(r->dec);
    free(r->slots);
    free(r->tail);
    sodium_memzero(r->key, sizeof r->key);
    free(r);
}

/* A new stream: nothing of the old one is kept but its id, so its late
 * datagrams are recognised and ignored. */
static void start_stream(tokvox_receiver *r, uint32_t id)
{
    if (r->have_stream) {
        r->old_stream_id = r->stream_id;
        r->have_old = 1;
    }
    r->have_stream = 1;
    r->stream_id = id;
    r->started = 0;
    r->end_known = 0;
    r->end_frame = r->end_samples = 0;
    r->next = r->newest = 0;
    memset(r->slots, 0, sizeof(slot) * (r->mask + 1));
    tokvox_decoder_reset(r->dec);
    r->tail_due = r->tail != NULL;
    r->depth = r->min_depth;
    r->transit_n = r->transit_at = 0;
    r->window_frames = 0;
    r->window_min_span = INT32_MAX;
    r->burst = 0;
    r->gain = 1.0f;
    r->window_any = 0;
    memset(r->window, 0, sizeof r->window);
    r->st.streams++;
    r->st.stream_id = id;
    r->st.stream_samples = 0;
    r->st.ended = 0;
}

/* The first datagram fixes the playout point.  A receiver there from the
 * start (the frame number says the stream is young) begins at frame 0, so
 * frames lost before this one are concealed and the output keeps its
 * length; one that joins later begins here. */
static void start_playout(tokvox_receiver *r, uint32_t seq, double arrival)
{
    uint64_t first = seq <= (uint32_t)r->depth + 8 ? 0 : seq;
    r->next = r->newest = first;
    r->hold_until = arrival + r->c.jitter_ms / 1000.0;
    r->started = 1;
}

static void note_transit(tokvox_receiver *r, uint64_t frame, double arrival)
{
    r->transit[r->transit_at] = arrival - (double)frame * r->frame_s;
    r->transit_at = (r->transit_at + 1) % JITTER_WINDOW;
    if (r->transit_n < JITTER_WINDOW)
        r->transit_n++;
}

/* Stores frames [first, first + b->frames) of b with the given state; a
 * copy never replaces what is there. */
static void store(tokvox_receiver *r, uint64_t first, const frames_block *b, int state,
                  double arrival)
{
    uint64_t slots = r->mask + 1;
    for (int f = 0; f < b->frames; f++) {
        uint64_t frame = first + (uint64_t)f;
        if (frame < r->next) {
            if (state == SLOT_OWN)
                r->st.late++;
            continue;
        }
        if (frame - r->next >= slots)
            continue; /* beyond the ring: a resync below catches it */
        slot *s = &r->slots[frame & r->mask];
        int held = s->state != SLOT_EMPTY && s->frame == frame;
        if (held && (s->state == SLOT_OWN || state == SLOT_COPY)) {
            if (state == SLOT_OWN)
                r->st.duplicates++;
            continue;
        }
        s->frame = frame;
        s->arrival = arrival;
        s->state = (uint8_t)state;
        s->codebooks = (uint8_t)b->codebooks;
        memcpy(s->codes, b->codes + f * b->codebooks, sizeof(uint16_t) * (size_t)b->codebooks);
        if (state == SLOT_OWN)
            note_transit(r, frame, arrival);
        if (frame + 1 > r->newest)
            r->newest = frame + 1;
    }
}

/* The frame number nearest the playout point with these low 32 bits. */
static uint64_t unwrap(const tokvox_receiver *r, uint32_t seq)
{
    int64_t delta = (int32_t)(seq - (uint32_t)r->next);
    return delta < 0 && (uint64_t)-delta > r->next ? 0 : r->next + (uint64_t)delta;
}

static void take_audio(tokvox_receiver *r, const datagram *d, double arrival)
{
    if (!r->started)
        start_playout(r, d->seq, arrival);
    uint64_t first = unwrap(r, d->seq);
    /* A frame more than the ring ahead: the receiver fell that far behind
     * (it was not pulled); jump so the buffer holds the usual depth. */
    if (first >= r->next + r->mask + 1) {
        uint64_t to = first + 1 > (uint64_t)r->depth ? first + 1 - (uint64_t)r->depth : 0;
        r->st.skipped += to - r->next;
        memset(r->slots, 0, sizeof(slot) * (r->mask + 1));
        r->next = r->newest = to;
    }
    store(r, first, &d->primary, SLOT_OWN, arrival);
    for (int k = 0; k < d->fec; k++) {
        uint64_t n = (uint64_t)d->copies[k].frames;
        first = first >= n ? first - n : 0;
        store(r, first, &d->copies[k], SLOT_COPY, arrival);
    }
}

static int stream_over(const tokvox_receiver *r);

/* A sealed datagram's payload, authenticated and decrypted into r->plain. */
static int open_sealed(tokvox_receiver *r, const uint8_t *data, size_t len, int flags,
                       const datagram *d, const uint8_t **payload, size_t *payload_len)
{
    size_t at = TOKVOX_STREAM_HEADER_SIZE + SALT_BYTES;
    if (!(flags & FLAG_SEALED) || len < at + TAG_BYTES || len - at - TAG_BYTES > MAX_PAYLOAD)
        return TOKVOX_ERR_AUTH;
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    make_nonce(nonce, data + TOKVOX_STREAM_HEADER_SIZE, d->seq);
    unsigned long long n = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(r->plain, &n, NULL, data + at, len - at, data,
                                                  at, nonce, r->key) != 0)
        return TOKVOX_ERR_AUTH;
    *payload = r->plain;
    *payload_len = (size_t)n;
    return TOKVOX_OK;
}

/* The replay window of a sealed stream: a sequence number newer than any
 * seen moves it on; an older one must be inside it and not seen yet.  Only
 * authenticated datagrams get here, so an attacker cannot move it. */
static int replayed(tokvox_receiver *r, uint32_t seq)
{
    const int words = REPLAY_WINDOW / 64;
    if (!r->window_any) {
        r->window_any = 1;
        r->window_top = seq;
        r->window[0] = 1;
        return 0;
    }
    int32_t ahead = (int32_t)(seq - r->window_top);
    if (ahead > 0) {
        for (int32_t k = 0; k < ahead && k < REPLAY_WINDOW; k++) { /* shift by one bit */
            for (int w = words - 1; w > 0; w--)
                r->window[w] = r->window[w] << 1 | r->window[w - 1] >> 63;
            r->window[0] <<= 1;
        }
        r->window_top = seq;
        r->window[0] |= 1;
        return 0;
    }
    uint32_t age = (uint32_t)-ahead;
    if (age >= REPLAY_WINDOW || (r->window[age / 64] >> (age % 64) & 1))
        return 1;
    r->window[age / 64] |= (uint64_t)1 << (age % 64);
    return 0;
}

static int refuse(tokvox_receiver *r, int err)
{
    r->st.refused++;
    if (err == TOKVOX_ERR_AUTH)
        r->st.unauthenticated++;
    if (err == TOKVOX_ERR_REPLAY)
        r->st.replayed++;
    return err;
}

/* Header, authentication, payload: everything that can refuse a datagram,
 * before anything in the receiver changes. */
static int check_datagram(tokvox_receiver *r, const uint8_t *data, size_t len, datagram *d)
{
    int flags = 0;
    int err = parse_header(data, len, d, &flags);
    if (err)
        return err;
    const uint8_t *payload = data + TOKVOX_STREAM_HEADER_SIZE;
    size_t payload_len = len - TOKVOX_STREAM_HEADER_SIZE;
    if (r->sealed)
        err = open_sealed(r, data, len, flags, d, &payload, &payload_len);
    else if (flags & FLAG_SEALED)
        err = TOKVOX_ERR_AUTH; /* sealed, and no key to open it */
    return err ? err : parse_payload(r->m, payload, payload_len, d);
}

int tokvox_receiver_push(tokvox_receiver *r, const uint8_t *data, size_t len, double arrival_s)
{
    if (!r || (!data && len))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    datagram *d = &r->parsed;
    int err = check_datagram(r, data, len, d);
    if (err)
        return refuse(r, err);
    if (r->have_old && d->stream_id == r->old_stream_id) {
        r->st.stale++;
        return TOKVOX_OK;
    }
    int other = !r->have_stream || d->stream_id != r->stream_id;
    /* a sealed stream is displaced only once it has ended or gone quiet:
     * a recording of an earlier call under the same key is authentic */
    if (other && r->sealed && r->have_stream && !stream_over(r) &&
        arrival_s - r->last_auth < DISPLACE_AFTER_S)
        return refuse(r, TOKVOX_ERR_REPLAY);
    if (r->sealed && !other && d->type == TYPE_AUDIO && replayed(r, d->seq))
        return refuse(r, TOKVOX_ERR_REPLAY);
    if (other) {
        start_stream(r, d->stream_id);
        if (r->sealed && d->type == TYPE_AUDIO)
            replayed(r, d->seq); /* opens the window */
    }
    r->last_auth = arrival_s;
    r->st.datagrams++;
    if (d->type == TYPE_END) {
        r->end_known = 1;
        r->end_frame = d->seq;
        r->end_samples = d->samples;
        r->st.stream_samples = d->samples;
        if (!r->started)
            start_playout(r, d->seq, arrival_s);
        return TOKVOX_OK;
    }
    take_audio(r, d, arrival_s);
    return TOKVOX_OK;
}

/* ---- receiver: playout ----------------------------------------------------- */

static int stream_over(const tokvox_receiver *r)
{
    return r->end_known && r->next >= unwrap(r, (uint32_t)r->end_frame);
}

/* Over, and the decoder's tail (if any) played. */
static int stream_played(const tokvox_receiver *r)
{
    return stream_over(r) && !r->tail_due;
}

int tokvox_receiver_ready(const tokvox_receiver *r, double now_s)
{
    return r && r->started && now_s >= r->hold_until && !stream_played(r);
}

/* After the last frame, for a decoder that owes more than a hop: the first
 * hop of its flush, which completes the input's last samples as
 * tokvox_decoder_flush does offline. */
static int play_tail(tokvox_receiver *r, float *pcm, size_t *samples_out)
{
    size_t n = 0;
    int err = tokvox_decoder_flush(r->dec, r->tail, &n);
    r->tail_due = 0;
    if (err || n == 0)
        return err;
    n = n < r->hop ? n : r->hop;
    memcpy(pcm, r->tail, sizeof(float) * n);
    memset(pcm + n, 0, sizeof(float) * (r->hop - n));
    *samples_out = r->hop;
    return TOKVOX_OK;
}

/* The depth the measured jitter asks for: the spread of transit times
 * (their JITTER_QUANTILE above their minimum), in frames, plus one. */
static int measured_depth(const tokvox_receiver *r)
{
    double v[JITTER_WINDOW];
    int n = r->transit_n;
    memcpy(v, r->transit, sizeof(double) * (size_t)n);
    for (int i = 1; i < n; i++) /* insertion sort: 128 values, twice a second */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    double spread = v[(int)(JITTER_QUANTILE * (n - 1))] - v[0];
    int depth = (int)ceil(spread / r->frame_s - 1e-9) + 1;
    return depth < r->min_depth ? r->min_depth : depth > r->max_depth ? r->max_depth : depth;
}

/* Before each frame: +1 = play one frame without moving on (stretch), -1 =
 * play two frames in one hop (skip), 0 = play the next.  The depth follows
 * the measured jitter every few frames; the buffer's fill is the frames
 * from the playout point to the newest received (span), and its reserve
 * over a window is the lowest span seen. */
static int adapt(tokvox_receiver *r, int span, int have_next)
{
    if (!r->c.adaptive)
        return 0;
    if (r->transit_n >= 8 && r->window_frames % 5 == 0)
        r->depth = measured_depth(r);
    if (span < r->window_min_span)
        r->window_min_span = span;
    if (++r->window_frames >= ADAPT_EVERY) {
        int reserve = r->window_min_span;
        r->window_frames = 0;
        r->window_min_span = INT32_MAX;
        if (reserve > r->depth + 2 && !r->end_known)
            return -1;
    }
    /* a frame not there while the buffer is short: more likely late than
     * lost, and waiting for it is what a deeper buffer would have done */
    if (!have_next && span < r->depth && !r->end_known)
        return +1;
    return 0;
}

/* Long bursts fade out (the decoder's rendering of a fading latent settles
 * on a faint hum, not silence); the first frames of a burst keep full
 * level, and the level ramps back within the first frame heard again. */
static void fade(tokvox_receiver *r, float *pcm, int concealed)
{
    r->burst = concealed ? r->burst + 1 : 0;
    if (!r->c.fade)
        return;
    float target = !concealed || r->burst <= 2 ? 1.0f : r->gain * 0.5f;
    if (target == 1.0f && r->gain == 1.0f)
        return;
    for (size_t i = 0; i < r->hop; i++)
        pcm[i] *= r->gain + (target - r->gain) * (float)(i + 1) / (float)r->hop;
    r->gain = target;
}

/* Frame r->next through the decoder: its own codes, a copy's, or none. */
static int play_next(tokvox_receiver *r, float *pcm)
{
    slot *s = &r->slots[r->next & r->mask];
    int have = s->state != SLOT_EMPTY && s->frame == r->next;
    int err;
    if (have) {
        err = tk_decode_frames(r->dec, s->codes, 1, s->codebooks, pcm);
        if (s->state == SLOT_OWN)
            r->st.decoded++;
        else
            r->st.recovered++;
        r->st.num_codebooks = s->codebooks;
        s->state = SLOT_EMPTY;
    } else {
        err = tk_conceal_frames(r->dec, 1, pcm);
        r->st.concealed++;
    }
    r->next++;
    if (r->newest < r->next)
        r->newest = r->next;
    r->st.frames++;
    if (!err)
        fade(r, pcm, !have);
    return err;
}

/* Skip: the next two frames both go through the decoder (its state stays
 * continuous) and are cross-faded into one hop. */
static int play_skipping(tokvox_receiver *r, float *pcm)
{
    float *a = r->scratch[0], *b = r->scratch[1];
    int err = play_next(r, a);
    if (!err)
        err = play_next(r, b);
    if (err)
        return err;
    r->st.frames--; /* two frames, one hop played */
    r->st.skipped++;
    for (size_t i = 0; i < r->hop; i++) {
        float w = (float)(i + 1) / (float)r->hop;
        pcm[i] = a[i] * (1.0f - w) + b[i] * w;
    }
    return TOKVOX_OK;
}

int tokvox_receiver_pull(tokvox_receiver *r, double now_s, float *pcm, size_t max_samples,
                         size_t *samples_out)
{
    if (samples_out)
        *samples_out = 0;
    if (!r || !pcm || !samples_out || max_samples < r->hop)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (!tokvox_receiver_ready(r, now_s)) {
        r->st.ended = r->have_stream && stream_played(r);
        return TOKVOX_OK;
    }
    if (stream_over(r)) { /* only the tail is left */
        int err = play_tail(r, pcm, samples_out);
        r->st.ended = stream_played(r);
        return err;
    }
    int span = (int)(r->newest - r->next);
    const slot *s = &r->slots[r->next & r->mask];
    int action = adapt(r, span, s->state != SLOT_EMPTY && s->frame == r->next);
    int err;
    if (action < 0 && span >= 2)
        err = play_skipping(r, pcm);
    else if (action > 0) { /* one frame more: conceal without moving on */
        err = tk_conceal_frames(r->dec, 1, pcm);
        r->st.stretched++;
        r->st.frames++;
    } else
        err = play_next(r, pcm);
    if (err)
        return err;
    *samples_out = r->hop;
    r->st.ended = stream_played(r);
    return TOKVOX_OK;
}

void tokvox_receiver_get_stats(const tokvox_receiver *r, tokvox_receiver_stats *st)
{
    if (!r || !st || st->size < RECEIVER_STATS_SIZE_1)
        return;
    tokvox_receiver_stats full = r->st;
    full.size = smaller(st->size, sizeof full);
    full.depth = r->depth;
    full.buffered = r->started ? (int)(r->newest - r->next) : 0;
    memcpy(st, &full, full.size);
}
