/* libFuzzer target for the .npy token reader (io/tokens.c): the input is a
 * whole file image, parsed and, when it parses, inverted under every layout
 * and written back.  Besides the sanitizers' checks it asserts the reader's
 * promises: a failure always says why (naming the file) and returns no
 * values; a success accounts for every byte of the input; anything read
 * writes back and reads again to the same values; an inverted layout applies
 * back to the same array.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -Iio/include -Icodec/include -Iio \
 *     tests/fuzz/fuzz_npy.c io/tokens.c io/atomic.c -o fuzz_npy
 *   ./fuzz_npy tests/fuzz/corpus/npy
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Each layout's inverse either fails with a message or gives codes that
 * apply back to exactly the values. */
static void invert_all(const tokvox_npy_info *info, const int32_t *values)
{
    for (int layout = 0; layout < 3; layout++) {
        int k = layout == TOKVOX_LAYOUT_FLAT ? 1 + (int)(info->count % 8) : 0;
        uint16_t *codes = NULL;
        size_t frames = 0;
        char detail[256] = "";
        int err = tokvox_layout_invert(layout, info, values, k, CODEBOOK_SIZE, &codes, &frames,
                                       "fuzz", detail, sizeof detail);
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
    invert_all(&info, values);
    free(values);
    return 0;
}
