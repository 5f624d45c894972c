/* The .tvx bitstream: header, blocks of bit-packed code frames, XXH32
 * checksums, and in version 2 a trailer with the sample count.
 * docs/bitstream.md is the specification; this file follows it byte for
 * byte.
 *
 * Everything is serialised explicitly in little-endian order (no struct
 * dumps), so the format does not depend on the compiler's padding or the
 * host's byte order.  The reader uses fread only, never fseek, so it works on
 * pipes, and it allocates at most one full block (bounded by the validated
 * frames_per_block * num_codebooks * codebook_bits), whatever the file claims.
 */
#include "tokvox/bitstream.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "model_internal.h"

/* "TVX" then 0x1A (Ctrl-Z): the control byte stops DOS `type` from dumping
 * binary, and a text-mode transfer that mangles it is caught at once. */
static const uint8_t tvx_magic[4] = {'T', 'V', 'X', 0x1A};

enum {
    TVX_HEADER_SIZE = 52,     /* version 1 header, checksum included */
    TVX_PREFIX_SIZE = 8,      /* magic, version, header_size: read first */
    TVX_BLOCK_COUNT_SIZE = 2, /* u16 frame_count */
    TVX_CHECKSUM_SIZE = 4,    /* u32 XXH32 */
    TVX_TRAILER_SIZE = 22,    /* version 2: u16 0, u64 sample_count, u64 frames, checksum */
    TVX_DEFAULT_FRAMES_PER_BLOCK = 50,
};

/* Limits that keep every derived size small and every product in range. */
#define TVX_MIN_RATE 1000u
#define TVX_MAX_RATE 384000u
#define TVX_MAX_HOP 65536u
#define TVX_MAX_BITS 16u
/* 2^48 samples is ~23 years at 384 kHz; it keeps expected frames and
 * frames * hop far from 64-bit overflow for every consumer. */
#define TVX_MAX_SAMPLE_COUNT (UINT64_C(1) << 48)
/* The most frames any stream may hold: that many samples at hop 1. */
#define TVX_MAX_FRAMES (TVX_MAX_SAMPLE_COUNT + 1)

/* tokvox_tvx_header's size in its first version (as TK_MODEL_INFO_SIZE_1):
 * frozen, later fields go after frames_per_block. */
#define TVX_HEADER_STRUCT_SIZE_1 \
    (offsetof(tokvox_tvx_header, frames_per_block) + sizeof(uint32_t))

/* A caller's struct, whose .size says how much of it there is: usable when
 * it holds at least the first version. */
static int header_usable(const tokvox_tvx_header *h)
{
    return h && h->size >= TVX_HEADER_STRUCT_SIZE_1;
}

static int info_usable(const tokvox_model_info *info)
{
    return info && info->size >= TK_MODEL_INFO_SIZE_1;
}

/* The caller's header as a whole one of this version: the part its .size
 * covers, the fields it lacks zero (a later version gives them defaults). */
static tokvox_tvx_header header_from_caller(const tokvox_tvx_header *h)
{
    tokvox_tvx_header full;
    memset(&full, 0, sizeof full);
    memcpy(&full, h, h->size < sizeof full ? h->size : sizeof full);
    full.size = sizeof full;
    return full;
}

#define TVX_NAME_MAX 160
#define TVX_DETAIL_MAX 400

struct tokvox_tvx_writer {
    FILE *out;
    tokvox_tvx_header h;  /* as written: sample_count 0 in version 2 */
    uint64_t expected;    /* frames the header promises (version 2: the limit) */
    uint64_t trailer_samples; /* version 2: the trailer's sample count */
    uint64_t written;     /* frames accepted so far */
    uint64_t blocks;      /* blocks written so far */
    uint32_t in_block;   /* frames packed into the pending block */
    size_t frame_bits;   /* num_codebooks * codebook_bits */
    uint16_t *codes;     /* the pending block's codes, packed when it is emitted */
    uint8_t *block;      /* count + payload + checksum of one full block */
    int error;           /* sticky: a failed write poisons the stream */
    int finished;
};

struct tokvox_tvx_reader {
    FILE *in;
    tokvox_tvx_header h;
    uint64_t expected;    /* frames the header promises (version 2: the limit) */
    uint64_t frames_read; /* frames in all blocks read so far */
    uint64_t returned;    /* frames handed to the caller */
    int ended;            /* version 2: the trailer was read and checked */
    uint64_t offset;      /* bytes consumed, for messages */
    uint64_t block_index; /* index of the next block to read */
    size_t frame_bits;
    uint8_t *block;       /* the current block, as read */
    uint16_t *codes;      /* its codes, unpacked */
    uint32_t block_frames;
    uint32_t block_pos;   /* frames of the current block already returned */
    int error;            /* sticky: after a failure the stream is unusable */
    char name[TVX_NAME_MAX];
    char detail[TVX_DETAIL_MAX];
};

/* ---- little-endian helpers --------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* ---- bit packing: tokvox_bits_pack/unpack (bitpack.c) ----------------- */

static size_t payload_bytes(size_t frames, size_t frame_bits) { return (frames * frame_bits + 7) / 8; }

/* ---- header ------------------------------------------------------------- */

/* Out-of-range ints become 0, which validation then refuses, instead of
 * silently wrapping into a plausible value. */
static uint16_t u16_or_zero(int v) { return v > 0 && v <= UINT16_MAX ? (uint16_t)v : 0; }
static uint32_t u32_or_zero(int v) { return v > 0 ? (uint32_t)v : 0; }

int tokvox_tvx_header_init(tokvox_tvx_header *h, const tokvox_model_info *info,
                           int num_codebooks, uint64_t sample_count, uint32_t source_rate)
{
    if (!header_usable(h) || !info_usable(info))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    tokvox_tvx_header full;
    memset(&full, 0, sizeof full);
    full.size = h->size < sizeof full ? h->size : sizeof full;
    full.version = TOKVOX_TVX_VERSION;
    full.frames_per_block = TVX_DEFAULT_FRAMES_PER_BLOCK;
    full.sample_count = sample_count;
    full.source_rate = source_rate;
    /* 0 (or less) means "all of the model's codebooks", as for the encoder. */
    full.num_codebooks = u16_or_zero(num_codebooks > 0 ? num_codebooks : info->num_codebooks);
    full.sample_rate = u32_or_zero(info->sample_rate);
    full.hop = u32_or_zero(info->hop);
    full.codebook_bits = u16_or_zero(info->codebook_bits);
    full.groups = u16_or_zero(info->groups);
    full.stages = u16_or_zero(info->stages);
    full.model_id = info->model_id;
    memcpy(h, &full, full.size);
    return TOKVOX_OK;
}

/* ceil(samples / hop) + 1, written without samples + hop - 1, which could
 * overflow. */
static uint64_t frames_for(uint64_t samples, uint32_t hop)
{
    if (hop == 0)
        return 0;
    uint64_t frames = samples / hop + (samples % hop != 0);
    return frames == UINT64_MAX ? UINT64_MAX : frames + 1;
}

uint64_t tokvox_tvx_expected_frames(const tokvox_tvx_header *h)
{
    return header_usable(h) ? frames_for(h->sample_count, h->hop) : 0;
}

/* The range rules of docs/bitstream.md.  Returns 0 or writes the first
 * violated rule into msg; used by the reader and the writer alike, so the
 * writer cannot produce a stream the reader refuses. */
static int header_problem(const tokvox_tvx_header *h, char *msg, size_t size)
{
    const struct {
        const char *field;
        uint64_t value, lo, hi;
    } rules[] = {
        {"num_codebooks", h->num_codebooks, 1, TOKVOX_TVX_MAX_CODEBOOKS},
        {"codebook_bits", h->codebook_bits, 1, TVX_MAX_BITS},
        {"sample_rate", h->sample_rate, TVX_MIN_RATE, TVX_MAX_RATE},
        {"source_rate", h->source_rate, TVX_MIN_RATE, TVX_MAX_RATE},
        {"hop", h->hop, 1, TVX_MAX_HOP},
        {"frames_per_block", h->frames_per_block, 1, TOKVOX_TVX_MAX_FRAMES_PER_BLOCK},
        {"sample_count", h->sample_count, 0, TVX_MAX_SAMPLE_COUNT},
        {"groups", h->groups, 1, UINT16_MAX},
        {"stages", h->stages, 1, UINT16_MAX},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rules[i].value < rules[i].lo || rules[i].value > rules[i].hi) {
            snprintf(msg, size, "header field %s = %" PRIu64 " is out of range", rules[i].field,
                     rules[i].value);
            return 1;
        }
    if (h->version == 2 && h->sample_count != 0) {
        snprintf(msg, size, "header field sample_count = %" PRIu64 " must be 0 in version 2",
                 h->sample_count);
        return 1;
    }
    /* Codebook k is stage k / groups of group k % groups: it must exist. */
    if ((uint32_t)h->num_codebooks > (uint32_t)h->groups * h->stages) {
        snprintf(msg, size, "%u codebooks do not fit %u groups x %u stages",
                 (unsigned)h->num_codebooks, (unsigned)h->groups, (unsigned)h->stages);
        return 1;
    }
    return 0;
}

/* The same layout in versions 1 and 2; offsets are listed in docs/bitstream.md. */
static void header_encode(const tokvox_tvx_header *h, uint8_t out[TVX_HEADER_SIZE])
{
    memcpy(out, tvx_magic, 4);
    put_u16(out + 4, h->version);
    put_u16(out + 6, TVX_HEADER_SIZE);
    put_u32(out + 8, h->sample_rate);
    put_u32(out + 12, h->hop);
    put_u16(out + 16, h->num_codebooks);
    put_u16(out + 18, h->codebook_bits);
    put_u16(out + 20, h->groups);
    put_u16(out + 22, h->stages);
    put_u64(out + 24, h->model_id);
    put_u64(out + 32, h->sample_count);
    put_u32(out + 40, h->source_rate);
    put_u32(out + 44, h->frames_per_block);
    put_u32(out + 48, XXH32(out, TVX_HEADER_SIZE - TVX_CHECKSUM_SIZE, 0));
}

static void header_decode(const uint8_t in[TVX_HEADER_SIZE], tokvox_tvx_header *h)
{
    h->size = sizeof *h;
    h->version = get_u16(in + 4);
    h->sample_rate = get_u32(in + 8);
    h->hop = get_u32(in + 12);
    h->num_codebooks = get_u16(in + 16);
    h->codebook_bits = get_u16(in + 18);
    h->groups = get_u16(in + 20);
    h->stages = get_u16(in + 22);
    h->model_id = get_u64(in + 24);
    h->sample_count = get_u64(in + 32);
    h->source_rate = get_u32(in + 40);
    h->frames_per_block = get_u32(in + 44);
}

/* Largest block this header allows: count + payload + checksum. */
static size_t block_capacity(const tokvox_tvx_header *h)
{
    size_t frame_bits = (size_t)h->num_codebooks * h->codebook_bits;
    return TVX_BLOCK_COUNT_SIZE + payload_bytes(h->frames_per_block, frame_bits) +
           TVX_CHECKSUM_SIZE;
}

/* ---- writer ------------------------------------------------------------- */

static int write_bytes(tokvox_tvx_writer *w, const uint8_t *p, size_t n)
{
    if (fwrite(p, 1, n, w->out) != n || ferror(w->out))
        w->error = TOKVOX_ERR_IO;
    return w->error;
}

static tokvox_tvx_writer *writer_new(FILE *out, const tokvox_tvx_header *h)
{
    tokvox_tvx_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->block = calloc(1, block_capacity(h));
        w->codes = malloc(sizeof(uint16_t) * h->frames_per_block * h->num_codebooks);
    }
    if (!w || !w->block || !w->codes) {
        tokvox_tvx_writer_destroy(w);
        return NULL;
    }
    w->out = out;
    w->h = *h;
    w->expected = h->version == 2 ? TVX_MAX_FRAMES : tokvox_tvx_expected_frames(h);
    w->frame_bits = (size_t)h->num_codebooks * h->codebook_bits;
    return w;
}

tokvox_tvx_writer *tokvox_tvx_writer_create(FILE *out, const tokvox_tvx_header *h, int *error)
{
    int dummy;
    char msg[128];
    error = error ? error : &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (!out || !header_usable(h) || (h->version != 1 && h->version != 2))
        return NULL;
    /* Version 2 states the sample count in the trailer, not the header. */
    tokvox_tvx_header written = header_from_caller(h);
    if (h->version == 2)
        written.sample_count = 0;
    /* The reader's rules, so the writer cannot produce a refused stream. */
    if (header_problem(&written, msg, sizeof msg))
        return NULL;
    tokvox_tvx_writer *w = writer_new(out, &written);
    if (!w) {
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    w->trailer_samples = h->sample_count;
    uint8_t bytes[TVX_HEADER_SIZE];
    header_encode(&written, bytes);
    *error = write_bytes(w, bytes, sizeof bytes);
    if (*error) {
        tokvox_tvx_writer_destroy(w);
        return NULL;
    }
    return w;
}

/* Checks the whole call first, so a bad code leaves the stream untouched. */
static int codes_in_range(const uint16_t *codes, size_t n, unsigned bits)
{
    uint32_t limit = 1u << bits;
    for (size_t i = 0; i < n; i++)
        if (codes[i] >= limit)
            return 0;
    return 1;
}

/* Version 2 seeds each checksum with the block's index (the trailer's with
 * the block count), so a dropped, repeated or swapped block is caught. */
static uint32_t checksum_seed(uint16_t version, uint64_t block_index)
{
    return version == 2 ? (uint32_t)block_index : 0;
}

/* Frame count, checksum, write; the pending block then starts empty. */
static int emit_block(tokvox_tvx_writer *w)
{
    size_t payload = payload_bytes(w->in_block, w->frame_bits);
    size_t covered = TVX_BLOCK_COUNT_SIZE + payload;
    put_u16(w->block, (uint16_t)w->in_block);
    /* codes_in_range held for every frame, so packing cannot fail */
    tokvox_bits_pack(w->codes, (size_t)w->in_block * w->h.num_codebooks, w->h.codebook_bits,
                     w->block + TVX_BLOCK_COUNT_SIZE, payload);
    put_u32(w->block + covered, XXH32(w->block, covered, checksum_seed(w->h.version, w->blocks)));
    w->blocks++;
    write_bytes(w, w->block, covered + TVX_CHECKSUM_SIZE);
    w->in_block = 0;
    return w->error;
}

static void pack_frame(tokvox_tvx_writer *w, const uint16_t *frame)
{
    size_t n = w->h.num_codebooks;
    memcpy(w->codes + (size_t)w->in_block * n, frame, sizeof(uint16_t) * n);
    w->in_block++;
}

int tokvox_tvx_write_frames(tokvox_tvx_writer *w, const uint16_t *codes, size_t frames)
{
    if (!w || (!codes && frames))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (w->finished)
        return TOKVOX_ERR_STATE;
    if (w->error)
        return w->error;
    /* More frames than the header promises would make a stream the reader
     * refuses; and a code >= 2^bits cannot be represented. */
    size_t per_frame = w->h.num_codebooks;
    if (frames > w->expected - w->written || frames > SIZE_MAX / per_frame)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (!codes_in_range(codes, frames * per_frame, w->h.codebook_bits))
        return TOKVOX_ERR_CODE_RANGE;
    for (size_t f = 0; f < frames; f++) {
        pack_frame(w, codes + f * per_frame);
        w->written++;
        if (w->in_block == w->h.frames_per_block && emit_block(w))
            return w->error;
    }
    return TOKVOX_OK;
}

static int flush_out(tokvox_tvx_writer *w)
{
    if (!w->error && (fflush(w->out) != 0 || ferror(w->out)))
        w->error = TOKVOX_ERR_IO;
    return w->error;
}

int tokvox_tvx_writer_flush(tokvox_tvx_writer *w)
{
    if (!w)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (w->finished)
        return TOKVOX_ERR_STATE;
    if (!w->error && w->h.version == 2 && w->in_block > 0)
        emit_block(w);
    return flush_out(w);
}

void tokvox_tvx_writer_set_sample_count(tokvox_tvx_writer *w, uint64_t sample_count)
{
    if (w)
        w->trailer_samples = sample_count;
}

/* Version 2's end: a zero frame count (never a block's), the sample count
 * and the frame total, checksummed with the block count as seed. */
static int emit_trailer(tokvox_tvx_writer *w)
{
    uint8_t t[TVX_TRAILER_SIZE];
    put_u16(t, 0);
    put_u64(t + 2, w->trailer_samples);
    put_u64(t + 10, w->written);
    put_u32(t + 18, XXH32(t, TVX_TRAILER_SIZE - TVX_CHECKSUM_SIZE,
                          checksum_seed(w->h.version, w->blocks)));
    return write_bytes(w, t, sizeof t);
}

int tokvox_tvx_writer_finish(tokvox_tvx_writer *w)
{
    if (!w)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (w->finished)
        return TOKVOX_ERR_STATE;
    w->finished = 1;
    int v2 = w->h.version == 2;
    uint64_t promised = !v2 ? w->expected
                        : w->trailer_samples <= TVX_MAX_SAMPLE_COUNT
                            ? frames_for(w->trailer_samples, w->h.hop)
                            : 0;
    if (!w->error && w->in_block > 0)
        emit_block(w);
    /* Fewer frames than promised: the reader would say "truncated"; a
     * version-2 trailer would be refused, so none is written. */
    if (!w->error && w->written != promised)
        return flush_out(w) ? w->error : TOKVOX_ERR_STATE;
    if (!w->error && v2)
        emit_trailer(w);
    /* Flush so a full disk is reported here and not lost at fclose. */
    return flush_out(w);
}

void tokvox_tvx_writer_destroy(tokvox_tvx_writer *w)
{
    if (!w)
        return;
    free(w->codes);
    free(w->block);
    free(w);
}

/* ---- reader: errors and raw input ------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int reader_fail(tokvox_tvx_reader *r, int error, const char *fmt, ...)
{
    /* Every message starts with the stream's name, as the CLI prints it. */
    int n = snprintf(r->detail, sizeof r->detail, "%s: ", r->name);
    if (n < 0 || (size_t)n >= sizeof r->detail)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail + n, sizeof r->detail - (size_t)n, fmt, ap);
    va_end(ap);
    r->error = error;
    return error;
}

/* fread until n bytes or the end; returns the count read.  No seeking, so
 * stdin pipes work. */
static size_t read_bytes(tokvox_tvx_reader *r, uint8_t *p, size_t n)
{
    size_t got = fread(p, 1, n, r->in);
    r->offset += got;
    return got;
}

/* A short read is either an I/O error or the end of the stream. */
static int short_read(tokvox_tvx_reader *r, const char *what)
{
    if (ferror(r->in))
        return reader_fail(r, TOKVOX_ERR_IO, "read error at byte offset %" PRIu64, r->offset);
    if (r->h.version == 2) /* no frame count known before the trailer */
        return reader_fail(r, TOKVOX_ERR_TRUNCATED,
                           "stream cut off inside a %s at byte offset %" PRIu64 " after %" PRIu64
                           " intact frames",
                           what, r->offset, r->frames_read);
    return reader_fail(r, TOKVOX_ERR_TRUNCATED,
                       "truncated %s at byte offset %" PRIu64 " (%" PRIu64 " of %" PRIu64
                       " frames read)",
                       what, r->offset, r->frames_read, r->expected);
}

/* ---- reader: header ---------------------------------------------------- */

/* Magic, version and header_size decide whether the rest can be parsed, so
 * they are checked before the checksum: a version-2 file says "version". */
static int check_prefix(tokvox_tvx_reader *r, const uint8_t *p, size_t got)
{
    size_t magic_got = got < 4 ? got : 4;
    if (memcmp(p, tvx_magic, magic_got) != 0)
        return reader_fail(r, TOKVOX_ERR_FORMAT, "not a tokvox bitstream (bad magic)");
    if (got < TVX_PREFIX_SIZE) {
        if (ferror(r->in))
            return reader_fail(r, TOKVOX_ERR_IO, "read error in the header");
        return reader_fail(r, TOKVOX_ERR_TRUNCATED, "truncated header (%zu of %d bytes)", got,
                           TVX_HEADER_SIZE);
    }
    uint16_t version = get_u16(p + 4);
    if (version != 1 && version != 2)
        return reader_fail(r, TOKVOX_ERR_VERSION,
                           "unsupported tvx format version %u (this reader knows versions 1 and 2)",
                           (unsigned)version);
    uint16_t header_size = get_u16(p + 6);
    if (header_size != TVX_HEADER_SIZE)
        return reader_fail(r, TOKVOX_ERR_FORMAT, "header size %u, version %u needs %d",
                           (unsigned)header_size, (unsigned)version, TVX_HEADER_SIZE);
    return TOKVOX_OK;
}

static int read_header(tokvox_tvx_reader *r)
{
    uint8_t bytes[TVX_HEADER_SIZE];
    size_t got = read_bytes(r, bytes, TVX_PREFIX_SIZE);
    if (check_prefix(r, bytes, got))
        return r->error;
    got += read_bytes(r, bytes + TVX_PREFIX_SIZE, TVX_HEADER_SIZE - TVX_PREFIX_SIZE);
    if (got < TVX_HEADER_SIZE) {
        if (ferror(r->in))
            return reader_fail(r, TOKVOX_ERR_IO, "read error in the header");
        return reader_fail(r, TOKVOX_ERR_TRUNCATED, "truncated header (%zu of %d bytes)", got,
                           TVX_HEADER_SIZE);
    }
    uint32_t stored = get_u32(bytes + TVX_HEADER_SIZE - TVX_CHECKSUM_SIZE);
    uint32_t computed = XXH32(bytes, TVX_HEADER_SIZE - TVX_CHECKSUM_SIZE, 0);
    if (stored != computed)
        return reader_fail(r, TOKVOX_ERR_CHECKSUM,
                           "header checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32
                           ")",
                           stored, computed);
    header_decode(bytes, &r->h);
    char msg[128];
    if (header_problem(&r->h, msg, sizeof msg))
        return reader_fail(r, TOKVOX_ERR_FORMAT, "%s", msg);
    return TOKVOX_OK;
}

static void copy_detail(char *detail, size_t detail_size, const char *msg)
{
    if (detail && detail_size > 0)
        snprintf(detail, detail_size, "%s", msg);
}

/* Header, then the one block buffer and its codes, sized by the validated
 * layout (<= 160 KiB and 512 KiB) and never by the file's sample_count. */
static int reader_start(tokvox_tvx_reader *r)
{
    if (read_header(r))
        return r->error;
    r->block = malloc(block_capacity(&r->h));
    r->codes = malloc(sizeof(uint16_t) * r->h.frames_per_block * r->h.num_codebooks);
    if (!r->block || !r->codes)
        return reader_fail(r, TOKVOX_ERR_NO_MEMORY, "out of memory");
    r->expected = r->h.version == 2 ? TVX_MAX_FRAMES : tokvox_tvx_expected_frames(&r->h);
    r->frame_bits = (size_t)r->h.num_codebooks * r->h.codebook_bits;
    return TOKVOX_OK;
}

tokvox_tvx_reader *tokvox_tvx_reader_open(FILE *in, const char *name, int *error, char *detail,
                                          size_t detail_size)
{
    int dummy;
    error = error ? error : &dummy;
    copy_detail(detail, detail_size, "");
    tokvox_tvx_reader *r = in ? calloc(1, sizeof *r) : NULL;
    if (!r) {
        *error = in ? TOKVOX_ERR_NO_MEMORY : TOKVOX_ERR_INVALID_ARGUMENT;
        copy_detail(detail, detail_size, in ? "tvx reader: out of memory" : "tvx reader: no input");
        return NULL;
    }
    r->in = in;
    snprintf(r->name, sizeof r->name, "%s", name ? name : "<stream>");
    *error = reader_start(r);
    copy_detail(detail, detail_size, r->detail);
    if (*error) {
        tokvox_tvx_reader_destroy(r);
        return NULL;
    }
    return r;
}

const tokvox_tvx_header *tokvox_tvx_reader_header(const tokvox_tvx_reader *r)
{
    return r ? &r->h : NULL;
}

const char *tokvox_tvx_reader_detail(const tokvox_tvx_reader *r) { return r ? r->detail : ""; }

uint64_t tokvox_tvx_reader_frames(const tokvox_tvx_reader *r) { return r ? r->returned : 0; }

void tokvox_tvx_reader_destroy(tokvox_tvx_reader *r)
{
    if (!r)
        return;
    free(r->codes);
    free(r->block);
    free(r);
}

/* ---- reader: blocks ---------------------------------------------------- */

/* Blocks are full except the last, so the count is fully determined; any
 * other value is damage (or a writer bug) and is refused before the payload
 * size is trusted. */
static int read_trailer(tokvox_tvx_reader *r, uint64_t start);

/* Version 2: a block holds 1 ..= frames_per_block frames (a writer may
 * flush a short block to keep a pipe moving); a count of 0 starts the
 * trailer. */
static int read_block_count_v2(tokvox_tvx_reader *r, uint64_t start)
{
    uint8_t *p = r->block;
    size_t got = read_bytes(r, p, TVX_BLOCK_COUNT_SIZE);
    if (got < TVX_BLOCK_COUNT_SIZE) {
        if (ferror(r->in))
            return reader_fail(r, TOKVOX_ERR_IO, "read error at byte offset %" PRIu64, r->offset);
        return reader_fail(r, TOKVOX_ERR_TRUNCATED,
                           "stream cut off at byte offset %" PRIu64 " after %" PRIu64
                           " intact frames (no trailer)",
                           r->offset, r->frames_read);
    }
    uint16_t count = get_u16(p);
    if (count == 0)
        return read_trailer(r, start);
    if (count > r->h.frames_per_block || count > TVX_MAX_FRAMES - r->frames_read)
        return reader_fail(r, TOKVOX_ERR_FORMAT,
                           "block %" PRIu64 " at byte offset %" PRIu64
                           " claims %u frames, at most %" PRIu32 " allowed",
                           r->block_index, start, (unsigned)count, r->h.frames_per_block);
    r->block_frames = count;
    return TOKVOX_OK;
}

static int read_block_count(tokvox_tvx_reader *r, uint64_t start)
{
    if (r->h.version == 2)
        return read_block_count_v2(r, start);
    uint8_t *p = r->block;
    size_t got = read_bytes(r, p, TVX_BLOCK_COUNT_SIZE);
    if (got < TVX_BLOCK_COUNT_SIZE)
        return short_read(r, got ? "block header" : "stream (a block is missing)");
    uint64_t remaining = r->expected - r->frames_read;
    uint64_t want = remaining < r->h.frames_per_block ? remaining : r->h.frames_per_block;
    uint16_t count = get_u16(p);
    if (count != want)
        return reader_fail(r, TOKVOX_ERR_FORMAT,
                           "block %" PRIu64 " at byte offset %" PRIu64
                           " claims %u frames, expected %" PRIu64 " (%" PRIu64 " remain)",
                           r->block_index, start, (unsigned)count, want, remaining);
    r->block_frames = count;
    return TOKVOX_OK;
}

static int read_block_body(tokvox_tvx_reader *r, uint64_t start)
{
    size_t covered = TVX_BLOCK_COUNT_SIZE + payload_bytes(r->block_frames, r->frame_bits);
    size_t want = covered - TVX_BLOCK_COUNT_SIZE + TVX_CHECKSUM_SIZE;
    if (read_bytes(r, r->block + TVX_BLOCK_COUNT_SIZE, want) < want)
        return short_read(r, "block");
    uint32_t stored = get_u32(r->block + covered);
    uint32_t computed = XXH32(r->block, covered, checksum_seed(r->h.version, r->block_index));
    if (stored != computed)
        return reader_fail(r, TOKVOX_ERR_CHECKSUM,
                           "block %" PRIu64 " at byte offset %" PRIu64
                           " fails its checksum (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                           r->block_index, start, stored, computed);
    /* Bits after the last code must be zero, so every stream has a single
     * encoding (and two files with equal codes are equal bytes). */
    if (tokvox_bits_unpack(r->block + TVX_BLOCK_COUNT_SIZE, covered - TVX_BLOCK_COUNT_SIZE,
                           r->h.codebook_bits, r->codes,
                           (size_t)r->block_frames * r->h.num_codebooks) != TOKVOX_OK)
        return reader_fail(r, TOKVOX_ERR_FORMAT,
                           "block %" PRIu64 " at byte offset %" PRIu64 " has nonzero padding bits",
                           r->block_index, start);
    return TOKVOX_OK;
}

/* After the last expected frame the stream must end: one more byte means
 * the file is not what its header says (e.g. two streams concatenated). */
static int expect_end(tokvox_tvx_reader *r)
{
    if (fgetc(r->in) != EOF)
        return reader_fail(r, TOKVOX_ERR_FORMAT,
                           "unexpected bytes after the last frame at byte offset %" PRIu64,
                           r->offset);
    if (ferror(r->in))
        return reader_fail(r, TOKVOX_ERR_IO, "read error at byte offset %" PRIu64, r->offset);
    return TOKVOX_OK;
}

/* The version-2 trailer after its zero count: checksum, then the counts
 * against the frames actually read, then the end of the stream. */
static int read_trailer(tokvox_tvx_reader *r, uint64_t start)
{
    uint8_t t[TVX_TRAILER_SIZE];
    memcpy(t, r->block, TVX_BLOCK_COUNT_SIZE);
    size_t want = TVX_TRAILER_SIZE - TVX_BLOCK_COUNT_SIZE;
    if (read_bytes(r, t + TVX_BLOCK_COUNT_SIZE, want) < want)
        return short_read(r, "trailer");
    uint32_t stored = get_u32(t + 18);
    uint32_t computed = XXH32(t, TVX_TRAILER_SIZE - TVX_CHECKSUM_SIZE,
                              checksum_seed(r->h.version, r->block_index));
    if (stored != computed)
        return reader_fail(r, TOKVOX_ERR_CHECKSUM,
                           "trailer at byte offset %" PRIu64
                           " fails its checksum (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                           start, stored, computed);
    uint64_t samples = get_u64(t + 2), frames = get_u64(t + 10);
    if (samples > TVX_MAX_SAMPLE_COUNT || frames != r->frames_read ||
        frames_for(samples, r->h.hop) != frames)
        return reader_fail(r, TOKVOX_ERR_FORMAT,
                           "trailer at byte offset %" PRIu64 " states %" PRIu64
                           " samples in %" PRIu64 " frames, but %" PRIu64 " frames were read",
                           start, samples, frames, r->frames_read);
    r->h.sample_count = samples;
    r->ended = 1;
    r->block_frames = r->block_pos = 0;
    return expect_end(r);
}

static int next_block(tokvox_tvx_reader *r)
{
    uint64_t start = r->offset;
    if (read_block_count(r, start) || r->ended || read_block_body(r, start))
        return r->error;
    r->block_pos = 0;
    r->block_index++;
    r->frames_read += r->block_frames;
    /* Checked eagerly, so a caller that stops after the expected frames
     * still learns about trailing bytes. */
    return r->h.version == 1 && r->frames_read == r->expected ? expect_end(r) : TOKVOX_OK;
}

static void unpack_frames(tokvox_tvx_reader *r, uint16_t *codes, size_t n)
{
    size_t per_frame = r->h.num_codebooks;
    memcpy(codes, r->codes + (size_t)r->block_pos * per_frame, sizeof(uint16_t) * n * per_frame);
    r->block_pos += (uint32_t)n;
}

int tokvox_tvx_read_frames(tokvox_tvx_reader *r, uint16_t *codes, size_t max_frames,
                           size_t *frames_out)
{
    if (frames_out)
        *frames_out = 0;
    if (!r || !codes || !frames_out || max_frames == 0)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (r->error)
        return r->error;
    if (r->block_pos == r->block_frames) {
        if (r->ended || (r->h.version == 1 && r->frames_read == r->expected))
            return TOKVOX_OK; /* clean end, already verified by expect_end */
        if (next_block(r))
            return r->error;
        if (r->ended)
            return TOKVOX_OK;
    }
    /* One block per call: callers loop anyway, and it keeps this simple. */
    size_t left = r->block_frames - r->block_pos;
    size_t n = max_frames < left ? max_frames : left;
    unpack_frames(r, codes, n);
    r->returned += n;
    *frames_out = n;
    return TOKVOX_OK;
}

/* ---- model check -------------------------------------------------------- */

static const char *model_difference(const tokvox_tvx_header *h, const tokvox_model_info *info)
{
    if (!tokvox_model_info_decodes(info, h->model_id))
        return "model id differs";
    if ((int64_t)h->sample_rate != info->sample_rate)
        return "sample rate differs";
    if ((int64_t)h->hop != info->hop)
        return "hop differs";
    if ((int64_t)h->codebook_bits != info->codebook_bits)
        return "codebook bits differ";
    if ((int64_t)h->num_codebooks > info->num_codebooks)
        return "stream has more codebooks than the model";
    return NULL;
}

int tokvox_tvx_check_model(const tokvox_tvx_header *h, const tokvox_model_info *info,
                           char *detail, size_t detail_size)
{
    copy_detail(detail, detail_size, "");
    if (!header_usable(h) || !info_usable(info))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    const char *why = model_difference(h, info);
    if (!why)
        return TOKVOX_OK;
    if (detail && detail_size > 0)
        snprintf(detail, detail_size,
                 "bitstream of model 0x%016" PRIx64 " (%" PRIu32 " Hz, hop %" PRIu32
                 ", %u codebooks x %u bits) does not match model 0x%016" PRIx64
                 " (%d Hz, hop %d, %d codebooks x %d bits): %s",
                 h->model_id, h->sample_rate, h->hop, (unsigned)h->num_codebooks,
                 (unsigned)h->codebook_bits, info->model_id, info->sample_rate, info->hop,
                 info->num_codebooks, info->codebook_bits, why);
    return TOKVOX_ERR_MODEL_MISMATCH;
}
