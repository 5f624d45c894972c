/* libFuzzer target for the live packet parser (io/packet.c): the input is
 * one datagram.  Besides the sanitizers' checks it asserts the parser's
 * promises: a packet that parses has fields in range, codes that fit their
 * width, and serialises back to exactly the bytes it came from.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -Iio/include -Icodec/include \
 *     tests/fuzz/fuzz_packet.c io/packet.c -o fuzz_packet
 *   ./fuzz_packet tests/fuzz/corpus/packet
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/packet.h"
#include "tokvox/tokvox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tokvox_packet p;
    int err = tokvox_packet_parse(data, size, &p);
    if (err != TOKVOX_OK) {
        if (err != TOKVOX_ERR_TRUNCATED && err != TOKVOX_ERR_FORMAT && err != TOKVOX_ERR_VERSION)
            abort(); /* an error the header does not promise */
        return 0;
    }
    if (p.version != TOKVOX_PACKET_VERSION || p.codebook_bits < 1 ||
        p.codebook_bits > TOKVOX_PACKET_MAX_BITS || p.num_codebooks > TOKVOX_PACKET_MAX_CODEBOOKS)
        abort();
    for (int i = 0; i < p.num_codebooks; i++)
        if (p.codes[i] >> p.codebook_bits)
            abort();
    uint8_t again[TOKVOX_PACKET_MAX_SIZE];
    size_t len = 0;
    if (tokvox_packet_write(&p, again, sizeof again, &len) != TOKVOX_OK || len != size ||
        memcmp(again, data, size) != 0)
        abort(); /* parse and write disagree about the format */
    return 0;
}
