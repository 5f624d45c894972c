/* libFuzzer target for the safetensors reader.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -Icodec/include -Icodec/src \
 *       tests/fuzz/fuzz_safetensors.c codec/src/safetensors.c -lcjson -o fuzz_st
 *   ./fuzz_st tests/fuzz/corpus/safetensors -max_total_time=60
 *
 * Validates the bytes, then reads back every tensor the reader accepted:
 * lookup by name, data in bounds, conversion to f32 (tensors over 1M elements
 * are skipped to keep runs fast).
 */
#include "safetensors.h"
#include "tokvox/tokvox.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUZZ_ELEMENTS (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so that an over-read past size is caught by ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);

    int err = 1;
    char detail[256];
    detail[0] = '\0';
    st_file *f = st_open_memory(copy, size, "fuzz", &err, detail, sizeof detail);
    if (!f) {
        if (err >= 0 || strncmp(detail, "fuzz", 4) != 0)
            abort(); /* a failure must set an error and a message naming the file */
        free(copy);
        return 0;
    }
    if (err != TOKVOX_OK)
        abort();

    size_t n = 0;
    const uint8_t *bytes = st_bytes(f, &n);
    if (bytes != copy || n != size)
        abort();
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (!t || st_find(f, t->name) != t)
            abort();
        const uint8_t *d = t->data;
        if (d < bytes || t->nbytes > size || d + t->nbytes > bytes + size)
            abort();
        if (t->numel < 0 || t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            abort();
        if (t->numel > MAX_FUZZ_ELEMENTS)
            continue;
        float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (!out)
            continue;
        int r = st_to_f32(t, out);
        int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        if (r != (is_float ? 0 : -1))
            abort();
        /* Touch every element so that MSan/valgrind would see uninitialised output. */
        volatile float sink = 0.0f;
        if (r == 0)
            for (int64_t k = 0; k < t->numel; k++)
                sink += out[k];
        (void)sink;
        free(out);
    }
    (void)st_metadata(f, "format");
    st_close(f);
    free(copy);
    return 0;
}
