/* libFuzzer target for the .npy token reader (io/tokens.c): the input is a
 * whole file image, parsed and, when it parses, inverted under every layout
 * and written back.  Besides the sanitizers' checks it asserts the reader's
 * promises: a failure always says why (naming the file) and returns no
 * values; a success accounts for every byte of the input; anything read
 * writes back and reads again to the same values; an inverted layout applies
 * back to the same array; the streaming token reader, run on the same bytes
 * as a file, agrees with the whole-array inverse frame for frame, failing
 * exactly where it fails.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -Iio/include -Icodec/include -Iio \
 *     tests/fuzz/fuzz_npy.c io/tokens.c io/atomic.c -o fuzz_npy
 *   ./fuzz_npy tests/fuzz/corpus/npy
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokvox/tokens.h"
#include "tokvox/tokvox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { CODEBOOK_SIZE = 1024 };

/* Writes values back in the smallest dtype that holds them and re-reads. */
static void rewrite(const tokvox_npy_info *info, const int32_t *values)
{
    int dtype = TOKVOX_NPY_INT16;
    for (uint64_t i = 0; i < info->count; i++)
        if (values[i] < INT16_MIN || values[i] > INT16_MAX)
            dtype = TOKVOX_NPY_INT32;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    int err = tokvox_npy_write(f, dtype, info->ndim, info->shape, values, NULL, 0);
    fclose(f);
    if (err)
        abort(); /* what we read, we can write */
    tokvox_npy_info again;
    int32_t *back = NULL;
    if (tokvox_npy_parse(buf, len, "rewrite", &again, &back, NULL, 0) ||
        again.count != info->count || again.ndim != info->ndim ||
        (info->count && memcmp(back, values, (size_t)info->count * sizeof *values)))
        abort(); /* the round trip changed something */
    free(back);
    free(buf);
}

/* The reader on the file at path gives what the whole-array inverse gave
 * (codes, frames), or fails as it did (codes NULL and failed set). */
static void read_as_stream(const char *path, int layout, int k, const uint16_t *codes,
                           size_t frames, int failed)
{
    char detail[256] = "";
    int err = 0;
    tokvox_token_reader *r = tokvox_token_reader_open(path, layout, k, CODEBOOK_SIZE, &err,
                                                      detail, sizeof detail);
    if (!r) {
        if (!failed || !strstr(detail, path))
            abort(); /* refused what the inverse took, or said nothing */
        return;
    }
    size_t kk = (size_t)tokvox_token_reader_codebooks(r), at = 0, got = 1;
    uint16_t block[7 * 64];
    while (!err && got) {
        err = tokvox_token_reader_read(r, block, 7, &got, detail, sizeof detail);
        if (got && (failed || at + got > frames || memcmp(block, codes + at * kk, got * kk * 2)))
            abort(); /* a frame the inverse did not give */
        at += got;
    }
    if (failed != (err != 0) || (!failed && at != frames) || (err && !strstr(detail, path)))
        abort(); /* failed elsewhere, or silently */
    tokvox_token_reader_close(r);
}

/* Each layout's inverse either fails with a message or gives codes that
 * apply back to exactly the values; the reader agrees on the file (path,
 * NULL to skip). */
static void invert_all(const tokvox_npy_info *info, const int32_t *values, const char *path)
{
    for (int layout = 0; layout < 3; layout++) {
        int k = layout == TOKVOX_LAYOUT_FLAT ? 1 + (int)(info->count % 8) : 0;
        uint16_t *codes = NULL;
        size_t frames = 0;
        char detail[256] = "";
        int err = tokvox_layout_invert(layout, info, values, k, CODEBOOK_SIZE, &codes, &frames,
                                       "fuzz", detail, sizeof detail);
        if (path && (info->ndim != 2 || info->shape[1] <= 64))
            read_as_stream(path, layout, k, codes, frames, err != 0);
        if (err) {
            if (codes || !strstr(detail, "fuzz"))
                abort();
            continue;
        }
        if (info->ndim == 2)
            k = (int)info->shape[1];
        int32_t *again = NULL;
        size_t count = 0;
        if (tokvox_layout_apply(layout, codes, frames, k, CODEBOOK_SIZE, &again, &count) ||
            count != info->count || (count && memcmp(again, values, count * sizeof *again)))
            abort(); /* inverse and forward disagree */
        free(again);
        free(codes);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tokvox_npy_info info;
    int32_t *values = (int32_t *)&info;
    char detail[256] = "";
    int err = tokvox_npy_parse(data, size, "fuzz", &info, &values, detail, sizeof detail);
    if (err) {
        if (values || !strstr(detail, "fuzz"))
            abort(); /* a failure returns nothing and says why */
        return 0;
    }
    if (info.data_offset + info.count * (uint64_t)info.dtype != size)
        abort(); /* a success explains every byte */
    rewrite(&info, values);
    char path[] = "/tmp/fuzz-npy-XXXXXX";
    int fd = mkstemp(path);
    int stored = fd >= 0 && write(fd, data, size) == (ssize_t)size;
    if (fd >= 0)
        close(fd);
    invert_all(&info, values, stored ? path : NULL);
    if (fd >= 0)
        unlink(path);
    free(values);
    return 0;
}
