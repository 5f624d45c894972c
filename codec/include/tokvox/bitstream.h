/* tokvox bitstream (.tvx): packed code frames with a self-describing header.
 * The format is specified in docs/bitstream.md; in short (little-endian):
 *
 *   header  52 bytes: the magic 54 56 58 1A ("TVX" then Ctrl-Z), format
 *           version, header size, sample rate, hop, codebooks, bits per
 *           code, groups and stages, model id, sample count (version 1; 0
 *           in version 2), source rate, frames per block, checksum (XXH32)
 *   blocks  frame count, codes bit-packed LSB first, checksum (XXH32;
 *           version 2 seeds it with the block's index)
 *   trailer (version 2 only) a zero frame count, the sample count and the
 *           frame total, checksum
 *
 * Version 2 (written by default) is streamable: written strictly front to
 * back with nothing known in advance, so `encode - -` can feed a pipe.
 * Version 1 files are still read.
 *
 * The reader never trusts a size from the file: every count is bounded and
 * checked against what is actually there; truncation, bad magic, unknown
 * versions, a model mismatch and checksum failures are reported as distinct
 * errors with a message.  A cut-off stream gives every frame of its intact
 * blocks, then TOKVOX_ERR_TRUNCATED.
 *
 * Threads and ownership, stated on each function: [thread-safe] from any
 * thread at any time; [one thread per handle] one thread at a time per
 * writer or reader (different ones run in parallel).  Creators return a
 * handle the caller owns and destroys; destroy(NULL) does nothing.  The
 * FILE stays the caller's: a writer or reader only reads or writes it
 * (never seeks, never closes), and it must stay open until the handle is
 * destroyed.
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

/* The version writers produce by default; readers take 1 and 2. */
#define TOKVOX_TVX_VERSION 2
#define TOKVOX_TVX_VERSION_1 1
#define TOKVOX_TVX_MAX_CODEBOOKS 64
#define TOKVOX_TVX_MAX_FRAMES_PER_BLOCK 4096

/* A stream's header.  Like tokvox_model_info it starts with its size (the
 * rule is in tokvox/errors.h): the caller sets .size before
 * tokvox_tvx_header_init, the library reads and writes only what .size
 * covers; the reader's header has the library's size.
 *
 *   tokvox_tvx_header h = {.size = sizeof h};
 *   tokvox_tvx_header_init(&h, &info, 0, 0, source_rate);
 */
typedef struct tokvox_tvx_header {
    size_t size;               /* sizeof(tokvox_tvx_header), set by the caller */
    uint16_t version;          /* format version: 1, or 2 (TOKVOX_TVX_VERSION, the default) */
    uint32_t sample_rate;      /* model rate, Hz */
    uint32_t hop;              /* samples per frame */
    uint16_t num_codebooks;    /* codes per frame in this stream (1..64) */
    uint16_t codebook_bits;    /* bits per code (1..16) */
    uint16_t groups;           /* quantizer layout, informational */
    uint16_t stages;
    uint64_t model_id;         /* tokvox_model_info.model_id of the encoder */
    uint64_t sample_count;     /* samples at sample_rate the stream decodes to; in version 2
                                  known only at the end (reader: after the clean end) */
    uint32_t source_rate;      /* rate of the encoded file, for decoding back */
    uint32_t frames_per_block; /* 1..TOKVOX_TVX_MAX_FRAMES_PER_BLOCK */
} tokvox_tvx_header;

typedef struct tokvox_tvx_writer tokvox_tvx_writer;
typedef struct tokvox_tvx_reader tokvox_tvx_reader;

/* Fill a header for a model's stream: layout and id from info, version
 * TOKVOX_TVX_VERSION (2).  sample_count may be 0 (unknown yet) for version 2.
 * TOKVOX_ERR_INVALID_ARGUMENT (nothing written) for NULL or a .size of h or
 * info smaller than their first version.  [thread-safe] */
TOKVOX_API int tokvox_tvx_header_init(tokvox_tvx_header *h, const tokvox_model_info *info,
                                      int num_codebooks, uint64_t sample_count,
                                      uint32_t source_rate);

/* Frames a stream of sample_count samples carries: ceil(sample_count/hop) + 1
 * (0 for NULL or a .size below the first version).  [thread-safe] */
TOKVOX_API uint64_t tokvox_tvx_expected_frames(const tokvox_tvx_header *h);

/* Writes the header to out at once (a pipe will do).  h is read during the
 * call only (what its .size covers).  NULL with *error:
 * TOKVOX_ERR_INVALID_ARGUMENT for a header the reader would refuse,
 * TOKVOX_ERR_NO_MEMORY, TOKVOX_ERR_IO.  [thread-safe] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_tvx_writer *
tokvox_tvx_writer_create(FILE *out, const tokvox_tvx_header *h, int *error);
/* codes: frames * num_codebooks values, each < 2^codebook_bits (else
 * TOKVOX_ERR_CODE_RANGE and nothing taken), read during the call; more
 * frames than a version-1 header promises: TOKVOX_ERR_INVALID_ARGUMENT.
 * Full blocks are written as they fill; a failed write is sticky.
 * [one thread per handle] */
TOKVOX_API int tokvox_tvx_write_frames(tokvox_tvx_writer *w, const uint16_t *codes,
                                       size_t frames);
/* Version 2: writes the frames pending in a short block now and flushes
 * out, so a listener on a pipe gets them without waiting for a full block
 * (a short block costs 6 bytes).  Version 1 (blocks must be full): only
 * flushes.  [one thread per handle] */
TOKVOX_API int tokvox_tvx_writer_flush(tokvox_tvx_writer *w);
/* Version 2: the sample count the trailer will state (default: the
 * header's sample_count), for a writer that learns it at the end.
 * [one thread per handle] */
TOKVOX_API void tokvox_tvx_writer_set_sample_count(tokvox_tvx_writer *w, uint64_t sample_count);
/* Writes the last partial block (and in version 2 the trailer) and
 * flushes; call once at the end, before destroy.  TOKVOX_ERR_STATE when the
 * frames written are not ceil(sample_count/hop) + 1 (nothing more is
 * written then).  [one thread per handle] */
TOKVOX_API int tokvox_tvx_writer_finish(tokvox_tvx_writer *w);
/* Frees the writer; writes nothing (an unfinished stream stays cut off) and
 * leaves out open.  [one thread per handle] */
TOKVOX_API void tokvox_tvx_writer_destroy(tokvox_tvx_writer *w);

/* Reads and checks the header.  name (copied; NULL: "<stream>") is used in
 * messages, e.g. the path.  NULL with *error and a message in detail (may
 * be NULL) when the header is refused.  [thread-safe] */
TOKVOX_API TOKVOX_WARN_UNUSED_RESULT tokvox_tvx_reader *
tokvox_tvx_reader_open(FILE *in, const char *name, int *error, char *detail, size_t detail_size);
/* The stream's header, owned by the reader (valid until destroy; its .size
 * is the library's).  [one thread per handle] */
TOKVOX_API const tokvox_tvx_header *tokvox_tvx_reader_header(const tokvox_tvx_reader *r);
/* Up to max_frames frames into codes ([frames][num_codebooks]).  *frames_out
 * is 0 at the clean end of the stream (version 2: the trailer was read and
 * checked, and the header's sample_count now holds its count); a stream
 * that ends before its last frame (version 1) or its trailer (version 2)
 * gives TOKVOX_ERR_TRUNCATED after every frame of its intact blocks, extra
 * bytes after the end TOKVOX_ERR_FORMAT.  [one thread per handle] */
TOKVOX_API int tokvox_tvx_read_frames(tokvox_tvx_reader *r, uint16_t *codes, size_t max_frames,
                                      size_t *frames_out);
/* Frames returned so far (after a TOKVOX_ERR_TRUNCATED: the intact ones).
 * [one thread per handle] */
TOKVOX_API uint64_t tokvox_tvx_reader_frames(const tokvox_tvx_reader *r);
/* The message for the reader's last error ("" if none), owned by the
 * reader: valid until its next call.  [one thread per handle] */
TOKVOX_API const char *tokvox_tvx_reader_detail(const tokvox_tvx_reader *r);
/* Frees the reader; leaves in open.  [one thread per handle] */
TOKVOX_API void tokvox_tvx_reader_destroy(tokvox_tvx_reader *r);

/* Refuse a stream coded by another model (or layout) than info:
 * TOKVOX_ERR_MODEL_MISMATCH with both described in detail (may be NULL).
 * [thread-safe] */
TOKVOX_API int tokvox_tvx_check_model(const tokvox_tvx_header *h, const tokvox_model_info *info,
                                      char *detail, size_t detail_size);

#ifdef __cplusplus
}
#endif
#endif
