/* The bit packer: the one place codes become bytes and bytes become codes,
 * for .tvx blocks (bitstream.c), packets (packet.c) and whatever reads them
 * from outside (bench/, bindings), through tokvox_bits_pack/unpack.
 *
 * Layout (docs/bitstream.md, "Bit packing"): the payload is a bit string;
 * bit i is bit (i % 8) of byte i / 8, codes follow each other with their
 * least significant bit first, and the bits after the last code up to a
 * byte boundary are zero, so equal codes always give equal bytes. */
#include "tokvox/tokvox.h"

#include <string.h>

#define BITS_MAX 16

size_t tokvox_bits_size(size_t n_codes, int bits)
{
    if (bits < 1 || bits > BITS_MAX || n_codes > (SIZE_MAX - 7) / BITS_MAX)
        return 0;
    return (n_codes * (size_t)bits + 7) / 8;
}

int tokvox_bits_pack(const uint16_t *codes, size_t n_codes, int bits, uint8_t *out,
                     size_t out_size)
{
    size_t size = tokvox_bits_size(n_codes, bits);
    if ((!codes && n_codes) || (!out && size) || (n_codes && size == 0) || out_size < size)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    /* Checked first, so a refused call writes nothing. */
    for (size_t i = 0; i < n_codes; i++)
        if (codes[i] >> bits)
            return TOKVOX_ERR_CODE_RANGE;
    memset(out, 0, size);
    /* A 32-bit accumulator: at most 7 pending bits plus one 16-bit code. */
    uint32_t acc = 0;
    unsigned have = 0;
    size_t at = 0;
    for (size_t i = 0; i < n_codes; i++) {
        acc |= (uint32_t)codes[i] << have;
        for (have += (unsigned)bits; have >= 8; have -= 8, acc >>= 8)
            out[at++] = (uint8_t)acc;
    }
    if (have)
        out[at] = (uint8_t)acc;
    return TOKVOX_OK;
}

int tokvox_bits_unpack(const uint8_t *in, size_t in_size, int bits, uint16_t *codes,
                       size_t n_codes)
{
    size_t size = tokvox_bits_size(n_codes, bits);
    if ((!in && in_size) || (!codes && n_codes) || (n_codes && size == 0))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (in_size < size)
        return TOKVOX_ERR_TRUNCATED;
    if (in_size > size)
        return TOKVOX_ERR_FORMAT;
    uint32_t acc = 0, mask = (1u << bits) - 1u;
    unsigned have = 0;
    size_t at = 0;
    for (size_t i = 0; i < n_codes; i++) {
        for (; have < (unsigned)bits; have += 8)
            acc |= (uint32_t)in[at++] << have;
        codes[i] = (uint16_t)(acc & mask);
        acc >>= bits;
        have -= (unsigned)bits;
    }
    /* What is left of the last byte is padding: it must be zero. */
    return acc == 0 ? TOKVOX_OK : TOKVOX_ERR_FORMAT;
}
