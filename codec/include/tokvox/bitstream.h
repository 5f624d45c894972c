/* tokvox bitstream (.tvx): packed code frames with a self-describing header.
 * The format is specified in docs/bitstream.md; in short (little-endian):
 *
 *   header  "TVX\x01"-style magic, format version, sample rate, hop, codebook
 *           layout, bits per code, model id, sample count, source rate,
 *           frames per block, header checksum (XXH32)
 *   blocks  frame count, codes bit-packed LSB first, checksum (XXH32)
 *
 * The reader never trusts a size from the file: every count is bounded and
 * checked against what is actually there; truncation, bad magic, unknown
 * versions, a model mismatch and checksum failures are reported as distinct
 * errors with a message.  [one thread per handle]
 */
#ifndef TOKVOX_BITSTREAM_H
#define TOKVOX_BITSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tokvox.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TOKVOX_TVX_VERSION 1
#define TOKVOX_TVX_MAX_CODEBOOKS 64
#define TOKVOX_TVX_MAX_FRAMES_PER_BLOCK 4096

typedef struct tokvox_tvx_header {
    uint16_t version;          /* format version (TOKVOX_TVX_VERSION when writing) */
    uint32_t sample_rate;      /* model rate, Hz */
    uint32_t hop;              /* samples per frame */
    uint16_t num_codebooks;    /* codes per frame in this stream (1..64) */
    uint16_t codebook_bits;    /* bits per code (1..16) */
    uint16_t groups;           /* quantizer layout, informational */
    uint16_t stages;
    uint64_t model_id;         /* tokvox_model_info.model_id of the encoder */
    uint64_t sample_count;     /* samples at sample_rate the stream decodes to */
    uint32_t source_rate;      /* rate of the encoded file, for decoding back */
    uint32_t frames_per_block; /* 1..TOKVOX_TVX_MAX_FRAMES_PER_BLOCK */
} tokvox_tvx_header;

typedef struct tokvox_tvx_writer tokvox_tvx_writer;
typedef struct tokvox_tvx_reader tokvox_tvx_reader;

/* Fill a header for a model's stream: layout and id from info. */
TOKVOX_API void tokvox_tvx_header_init(tokvox_tvx_header *h, const tokvox_model_info *info,
                                       int num_codebooks, uint64_t sample_count,
                                       uint32_t source_rate);

/* Frames a stream of this header must carry: ceil(sample_count/hop) + 1. */
TOKVOX_API uint64_t tokvox_tvx_expected_frames(const tokvox_tvx_header *h);

/* Writes the header to out at once.  out stays owned by the caller. */
TOKVOX_API tokvox_tvx_writer *tokvox_tvx_writer_create(FILE *out, const tokvox_tvx_header *h,
                                                       int *error);
/* codes: frames * num_codebooks values, each < 2^codebook_bits. */
TOKVOX_API int tokvox_tvx_write_frames(tokvox_tvx_writer *w, const uint16_t *codes,
                                       size_t frames);
/* Writes the last partial block; call once at the end, before destroy. */
TOKVOX_API int tokvox_tvx_writer_finish(tokvox_tvx_writer *w);
TOKVOX_API void tokvox_tvx_writer_destroy(tokvox_tvx_writer *w);

/* Reads and checks the header.  name is used in messages (e.g. the path). */
TOKVOX_API tokvox_tvx_reader *tokvox_tvx_reader_open(FILE *in, const char *name, int *error,
                                                     char *detail, size_t detail_size);
TOKVOX_API const tokvox_tvx_header *tokvox_tvx_reader_header(const tokvox_tvx_reader *r);
/* Up to max_frames frames into codes ([frames][num_codebooks]).  *frames_out
 * is 0 at the clean end of the stream; a stream that ends before
 * tokvox_tvx_expected_frames gives TOKVOX_ERR_TRUNCATED, extra bytes after
 * the last frame TOKVOX_ERR_FORMAT. */
TOKVOX_API int tokvox_tvx_read_frames(tokvox_tvx_reader *r, uint16_t *codes, size_t max_frames,
                                      size_t *frames_out);
/* The message for the reader's last error. */
TOKVOX_API const char *tokvox_tvx_reader_detail(const tokvox_tvx_reader *r);
TOKVOX_API void tokvox_tvx_reader_destroy(tokvox_tvx_reader *r);

/* Refuse a stream coded by another model (or layout) than info. */
TOKVOX_API int tokvox_tvx_check_model(const tokvox_tvx_header *h, const tokvox_model_info *info,
                                      char *detail, size_t detail_size);

#ifdef __cplusplus
}
#endif
#endif
