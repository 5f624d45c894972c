/* Safetensors reader (private to libtokvox).
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *   ..., "__metadata__": {"key": "string value", ...}}), then the data
 * region, to which data_offsets are relative.
 *
 * The file is mmap'ed read-only.  Before anything is used, every tensor is
 * checked: known dtype; non-negative shape whose element count times the
 * dtype size equals end - begin without overflow; begin <= end <= data
 * region size; no two tensors overlapping; names unique.  The header length
 * must fit the file and stay under a sane bound (100 MiB).  A failure returns
 * an error and a message naming the file and, where one is at fault, the
 * tensor.  [one thread per handle; a loaded file is read-only and may be
 * shared]
 */
#ifndef TOKVOX_SAFETENSORS_H
#define TOKVOX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum st_dtype {
    ST_F32 = 0,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    const char *name;         /* owned by the st_file */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;         /* into the mapping; may be unaligned */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Map and validate path.  NULL on failure with *error (tokvox_error) and a
 * message in detail. */
st_file *st_open(const char *path, int *error, char *detail, size_t detail_size);
/* Validate an in-memory image (used by st_open and the fuzz target).  The
 * bytes must outlive the st_file; they are not copied. */
st_file *st_open_memory(const void *bytes, size_t size, const char *name, int *error,
                        char *detail, size_t detail_size);
void st_close(st_file *f);

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);
const st_tensor *st_find(const st_file *f, const char *name);  /* NULL if absent */
/* A __metadata__ value, NULL if absent.  Owned by the st_file. */
const char *st_metadata(const st_file *f, const char *key);
/* The whole mapped file (for hashing). */
const void *st_bytes(const st_file *f, size_t *size);

/* Convert n elements of an F32/F16/BF16 tensor to f32 (dst must hold numel
 * floats).  Returns 0, or -1 for other dtypes. */
int st_to_f32(const st_tensor *t, float *dst);

#endif
