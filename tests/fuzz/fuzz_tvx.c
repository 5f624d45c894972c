/* libFuzzer target for the .tvx reader (codec/src/bitstream.c): the input
 * is a whole stream, opened with fmemopen and read to the end or the first
 * error.  Besides the sanitizers' checks it asserts the reader's promises:
 * codes fit codebook_bits, no frames come with an error, and a clean end
 * means exactly tokvox_tvx_expected_frames frames (for version 2 from the
 * sample count its trailer gave the header).  The seeds cover both versions,
 * short v2 blocks, a v2 stream without its trailer and one cut inside it.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -Icodec/include \
 *     tests/fuzz/fuzz_tvx.c codec/src/bitstream.c codec/src/errors.c \
 *     -lxxhash -o fuzz_tvx
 *   ./fuzz_tvx tests/fuzz/corpus/tvx
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/bitstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Odd sizes so requests straddle blocks in every way. */
enum { MAX_REQUEST = 61 };

static void check_codes(const uint16_t *codes, size_t n, unsigned bits)
{
    for (size_t i = 0; i < n; i++)
        if (codes[i] >> bits)
            abort(); /* a code >= 2^codebook_bits escaped the reader */
}

/* Reads to the end; returns the frames delivered. */
static uint64_t drain(tokvox_tvx_reader *r, size_t request)
{
    const tokvox_tvx_header *h = tokvox_tvx_reader_header(r);
    uint16_t *codes = malloc((size_t)MAX_REQUEST * h->num_codebooks * sizeof *codes);
    if (!codes)
        return 0;
    uint64_t total = 0;
    for (;;) {
        size_t got = 12345;
        int err = tokvox_tvx_read_frames(r, codes, request, &got);
        if (got > request || (err && got != 0))
            abort();
        if (err) {
            if (tokvox_tvx_reader_detail(r)[0] == '\0')
                abort(); /* every error carries a message */
            break;
        }
        if (got == 0) {
            if (total != tokvox_tvx_expected_frames(h))
                abort(); /* a clean end with the wrong frame count */
            break;
        }
        check_codes(codes, got * h->num_codebooks, h->codebook_bits);
        total += got;
    }
    free(codes);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen needs at least one byte */
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return 0;
    int err = 0;
    char detail[256];
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, "fuzz", &err, detail, sizeof detail);
    if (!r && (err == 0 || detail[0] == '\0'))
        abort(); /* a failed open must say why */
    if (r) {
        drain(r, 1 + size % MAX_REQUEST);
        tokvox_tvx_reader_destroy(r);
    }
    fclose(f);
    return 0;
}
