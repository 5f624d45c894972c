/* tokvox tokens: speech tokens as NumPy .npy files, and the token layouts
 * speech language models train on.
 *
 * The .npy format (NumPy's own, readable by numpy.load with no tokvox code):
 *   "\x93NUMPY"      6 bytes of magic
 *   major, minor     1 byte each; we write 1.0 and read 1.0, 2.0 and 3.0
 *   header length    little-endian u16 (version 1) or u32 (versions 2, 3)
 *   header           an ASCII Python dict literal, e.g.
 *                      {'descr': '<i2', 'fortran_order': False, 'shape': (F, K), }
 *                    padded with spaces and ended by '\n' so that the data
 *                    starts at a multiple of 64 bytes
 *   data             shape[0] * shape[1] elements, little-endian, C order
 *
 * The reader is strict and trusts nothing in the header: it accepts only the
 * three keys above, only '<i2', '<i4' and '<i8', only C order, only 1-D or
 * 2-D shapes, and only when the declared shape accounts for exactly the bytes
 * that follow the header (so a huge declared shape is an error, never a huge
 * allocation).  Every error writes a message naming the file into detail.
 *
 * Layouts of a code matrix codes[frames][K] (K codebooks of codebook_size
 * entries):
 *   codebooks  [frames, K], as the encoder emits them;
 *   flat       [frames * K], frame-major, codebook k's codes offset by
 *              k * codebook_size so every id names one (codebook, code);
 *   delay      [frames + K - 1, K], MusicGen's delay pattern: codebook k
 *              shifted right by k frames, the holes filled with the pad id
 *              codebook_size.
 * Each layout's inverse checks every value (range, pad positions).
 *
 * All functions are [thread-safe]: no global state.
 */
#ifndef TOKVOX_TOKENS_H
#define TOKVOX_TOKENS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types, by their size in bytes.  All signed little-endian. */
typedef enum tokvox_npy_dtype {
    TOKVOX_NPY_INT16 = 2,
    TOKVOX_NPY_INT32 = 4,
    TOKVOX_NPY_INT64 = 8,
} tokvox_npy_dtype;

/* The longest header (dict + padding) we accept, whatever the file says;
 * numpy itself refuses headers over 10000 bytes by default. */
#define TOKVOX_NPY_MAX_HEADER 65536
/* The largest magic + length + header we ever write. */
#define TOKVOX_NPY_WRITE_HEADER_MAX 256

typedef struct tokvox_npy_info {
    int dtype;           /* tokvox_npy_dtype */
    int ndim;            /* 1 or 2 */
    uint64_t shape[2];   /* shape[1] is 1 for a 1-D array */
    uint64_t count;      /* elements: shape[0] * shape[1] */
    size_t data_offset;  /* bytes before the first element */
} tokvox_npy_info;

/* Parses the header at the start of buf (len bytes of the file, at least the
 * whole header for success) of a file of file_size bytes, and checks that the
 * shape accounts for exactly file_size - data_offset bytes.  name is used in
 * messages.  TOKVOX_ERR_FORMAT, _VERSION, _UNSUPPORTED or _TRUNCATED. */
int tokvox_npy_parse_header(const void *buf, size_t len, uint64_t file_size, const char *name,
                            tokvox_npy_info *info, char *detail, size_t detail_size);

/* Parses a whole .npy image in memory.  *values (malloc'ed, owned by the
 * caller, NULL for an empty array) gets the elements as int32; an int64
 * element outside int32's range is TOKVOX_ERR_FORMAT. */
int tokvox_npy_parse(const void *data, size_t size, const char *name, tokvox_npy_info *info,
                     int32_t **values, char *detail, size_t detail_size);

/* tokvox_npy_parse on the bytes of the file at path. */
int tokvox_npy_read(const char *path, tokvox_npy_info *info, int32_t **values, char *detail,
                    size_t detail_size);

/* Reads and checks only the header of the file at path (against its size):
 * the cheap "is this output complete?" test. */
int tokvox_npy_read_header(const char *path, tokvox_npy_info *info, char *detail,
                           size_t detail_size);

/* Writes a version 1.0 header for dtype and shape (ndim 1 or 2; shape[1]
 * ignored for 1-D) into buf; returns its length (a multiple of 64), or 0 if
 * size is too small.  size >= TOKVOX_NPY_WRITE_HEADER_MAX always suffices. */
size_t tokvox_npy_format_header(char *buf, size_t size, int dtype, int ndim,
                                const uint64_t shape[2]);

/* Writes header and data to fp.  Every value must fit dtype
 * (TOKVOX_ERR_INVALID_ARGUMENT otherwise, before anything is written);
 * TOKVOX_ERR_IO when a write fails.  The caller owns and closes fp. */
int tokvox_npy_write(FILE *fp, int dtype, int ndim, const uint64_t shape[2],
                     const int32_t *values, char *detail, size_t detail_size);

/* Writes count elements as dtype, little-endian (the data part of a file
 * whose header tokvox_npy_format_header wrote): for arrays written in
 * pieces.  Same checks and errors as tokvox_npy_write. */
int tokvox_npy_write_values(FILE *fp, int dtype, const int32_t *values, size_t count,
                            char *detail, size_t detail_size);

/* ---- layouts ------------------------------------------------------------- */

typedef enum tokvox_layout {
    TOKVOX_LAYOUT_CODEBOOKS = 0,
    TOKVOX_LAYOUT_FLAT = 1,
    TOKVOX_LAYOUT_DELAY = 2,
} tokvox_layout;

/* "codebooks", "flat", "delay"; NULL for anything else. */
const char *tokvox_layout_name(int layout);
/* The layout named, or -1. */
int tokvox_layout_parse(const char *name);

/* The array a layout makes of frames x k codes. */
void tokvox_layout_shape(int layout, uint64_t frames, int k, int *ndim, uint64_t shape[2]);
/* The smallest dtype that holds every id the layout can write for k
 * codebooks of codebook_size entries (int16 when it fits, else int32).
 * Chosen from the configuration, not the data, so a corpus is uniform. */
int tokvox_layout_dtype(int layout, int k, int codebook_size);

/* codes[frames][k] -> the layout's values (*values malloc'ed, *count of
 * them).  Codes must be < codebook_size. */
int tokvox_layout_apply(int layout, const uint16_t *codes, size_t frames, int k,
                        int codebook_size, int32_t **values, size_t *count);

/* A token file written a block of code frames at a time, in memory that
 * does not grow with its length (a tokenize worker on an hour of audio):
 * open writes a header with a placeholder shape, write applies the layout
 * to each block as it comes (the delay layout keeps the last K-1 frames),
 * finish writes the delay layout's last rows and rewrites the header in
 * place with the final shape.  The bytes are those of tokvox_npy_write of
 * tokvox_layout_apply on all the frames at once.  The header's length does
 * not depend on the frame count (numpy's room for 21 digits), so fp must
 * seek (a regular file; a pipe is refused by open) but never moves data.
 * A file whose finish did not run declares 0 frames with data after its
 * header: readers refuse it, so it is never taken for complete.
 *
 *   tokvox_token_writer *w = tokvox_token_writer_open(fp, layout, k, cs, dtype, &err, msg, n);
 *   while (more) tokvox_token_writer_write(w, block, block_frames, msg, n);
 *   err = tokvox_token_writer_finish(w, &frames, msg, n);   // frees w
 *
 * dtype must hold every id of the layout (tokvox_layout_dtype or wider).
 * Errors: TOKVOX_ERR_INVALID_ARGUMENT (bad arguments, a code >= cs),
 * TOKVOX_ERR_IO (a write or seek failed), TOKVOX_ERR_NO_MEMORY; detail
 * says which.  fp stays owned by the caller.  [one thread per writer] */
typedef struct tokvox_token_writer tokvox_token_writer;

tokvox_token_writer *tokvox_token_writer_open(FILE *fp, int layout, int k, int codebook_size,
                                              int dtype, int *error, char *detail,
                                              size_t detail_size);
/* codes[frames][k], each < codebook_size. */
int tokvox_token_writer_write(tokvox_token_writer *w, const uint16_t *codes, size_t frames,
                              char *detail, size_t detail_size);
/* Ends the file (frames: the code frames written, may be NULL) and frees w
 * whatever happens. */
int tokvox_token_writer_finish(tokvox_token_writer *w, uint64_t *frames, char *detail,
                               size_t detail_size);
/* Frees w without ending the file (after a failure); NULL is ignored. */
void tokvox_token_writer_destroy(tokvox_token_writer *w);

/* The inverse: values shaped as info says -> codes[frames][k] (*codes
 * malloc'ed; NULL when frames is 0).  k is the codebook count: for 2-D
 * arrays it must equal shape[1] (0 = take shape[1]); flat arrays need it.
 * Every value is checked; a message naming name (the file) and the first bad
 * element goes into detail.  TOKVOX_ERR_FORMAT on any mismatch. */
int tokvox_layout_invert(int layout, const tokvox_npy_info *info, const int32_t *values, int k,
                         int codebook_size, uint16_t **codes, size_t *frames, const char *name,
                         char *detail, size_t detail_size);

/* A token file read a block of code frames at a time, in memory that does
 * not grow with its length (detokenize of an hour of tokens): the inverse of
 * tokvox_token_writer.  open reads and checks the header and the array's
 * shape for the layout (the rules of tokvox_layout_invert: k is the codebook
 * count, 0 = take it from a 2-D array, required for flat); read returns the
 * next frames as codes[*got][K], every value checked as tokvox_layout_invert
 * checks it, pads included; *got < max_frames only at the end.  The delay
 * layout keeps K-1 rows back.  A bad value or a file that ends early is an
 * error at the read that meets it; the *got frames that read returned before
 * it are still valid.
 *
 *   tokvox_token_reader *r = tokvox_token_reader_open(path, layout, 0, cs, &err, msg, n);
 *   while (!(err = tokvox_token_reader_read(r, codes, max, &got, msg, n)) && got) use(codes, got);
 *   tokvox_token_reader_close(r);
 *
 * Errors: those of tokvox_npy_read_header and tokvox_layout_invert,
 * TOKVOX_ERR_IO or _TRUNCATED from the reads; detail names the file and the
 * element.  [one thread per reader] */
typedef struct tokvox_token_reader tokvox_token_reader;

tokvox_token_reader *tokvox_token_reader_open(const char *path, int layout, int k,
                                              int codebook_size, int *error, char *detail,
                                              size_t detail_size);
/* The code frames in the file, and K. */
size_t tokvox_token_reader_frames(const tokvox_token_reader *r);
int tokvox_token_reader_codebooks(const tokvox_token_reader *r);
int tokvox_token_reader_read(tokvox_token_reader *r, uint16_t *codes, size_t max_frames,
                             size_t *got, char *detail, size_t detail_size);
/* Closes the file and frees r; NULL is ignored. */
void tokvox_token_reader_close(tokvox_token_reader *r);

#ifdef __cplusplus
}
#endif
#endif
