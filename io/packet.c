/* Live stream packets: pack and parse (format in tokvox/packet.h and
 * docs/live.md).  Byte order and bit order are explicit, never the host's. */
#include "tokvox/packet.h"

#include <string.h>

#include "tokvox/tokvox.h"

static const uint8_t packet_magic[4] = {'T', 'V', 'X', 'P'};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

size_t tokvox_packet_size(int num_codebooks, int codebook_bits)
{
    return TOKVOX_PACKET_HEADER_SIZE + tokvox_bits_size((size_t)num_codebooks, codebook_bits);
}

/* The field ranges both directions enforce. */
static int fields_valid(int type, int num_codebooks, int codebook_bits)
{
    if (codebook_bits < 1 || codebook_bits > TOKVOX_PACKET_MAX_BITS)
        return 0;
    if (type == TOKVOX_PACKET_FRAME)
        return num_codebooks >= 1 && num_codebooks <= TOKVOX_PACKET_MAX_CODEBOOKS;
    return type == TOKVOX_PACKET_END && num_codebooks == 0;
}

int tokvox_packet_write(const tokvox_packet *p, uint8_t *buf, size_t cap, size_t *len)
{
    if (!p || !buf || !len || !fields_valid(p->type, p->num_codebooks, p->codebook_bits))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t size = tokvox_packet_size(p->num_codebooks, p->codebook_bits);
    if (cap < size)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    uint8_t *payload = buf + TOKVOX_PACKET_HEADER_SIZE;
    /* the library's bit packer (.tvx's): it checks every code fits first */
    if (tokvox_bits_pack(p->codes, (size_t)p->num_codebooks, p->codebook_bits, payload,
                         cap - TOKVOX_PACKET_HEADER_SIZE) != TOKVOX_OK)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    memcpy(buf, packet_magic, 4);
    buf[4] = TOKVOX_PACKET_VERSION;
    buf[5] = (uint8_t)p->type;
    buf[6] = (uint8_t)p->num_codebooks;
    buf[7] = (uint8_t)p->codebook_bits;
    put_u32(buf + 8, p->seq);
    put_u64(buf + 12, p->timestamp);
    put_u64(buf + 20, p->model_id);
    *len = size;
    return TOKVOX_OK;
}

/* Magic and version: what must hold before any other byte means anything. */
static int check_prefix(const uint8_t *buf, size_t len, tokvox_packet *p)
{
    if (len == 0)
        return TOKVOX_ERR_TRUNCATED;
    size_t n = len < 4 ? len : 4;
    if (memcmp(buf, packet_magic, n) != 0)
        return TOKVOX_ERR_FORMAT;
    if (len < 5)
        return TOKVOX_ERR_TRUNCATED;
    p->version = buf[4];
    return buf[4] == TOKVOX_PACKET_VERSION ? TOKVOX_OK : TOKVOX_ERR_VERSION;
}

int tokvox_packet_parse(const uint8_t *buf, size_t len, tokvox_packet *p)
{
    if (!p || (!buf && len))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    tokvox_packet q = {0};
    int err = check_prefix(buf, len, &q);
    if (err) {
        p->version = q.version;
        return err;
    }
    if (len < TOKVOX_PACKET_HEADER_SIZE)
        return TOKVOX_ERR_TRUNCATED;
    q.type = buf[5];
    q.num_codebooks = buf[6];
    q.codebook_bits = buf[7];
    if (!fields_valid(q.type, q.num_codebooks, q.codebook_bits))
        return TOKVOX_ERR_FORMAT;
    size_t size = tokvox_packet_size(q.num_codebooks, q.codebook_bits);
    if (len < size)
        return TOKVOX_ERR_TRUNCATED;
    if (len > size)
        return TOKVOX_ERR_FORMAT;
    q.seq = get_u32(buf + 8);
    q.timestamp = get_u64(buf + 12);
    q.model_id = get_u64(buf + 20);
    /* nonzero padding bits are the one failure left: the length is exact */
    if (tokvox_bits_unpack(buf + TOKVOX_PACKET_HEADER_SIZE, len - TOKVOX_PACKET_HEADER_SIZE,
                           q.codebook_bits, q.codes, (size_t)q.num_codebooks) != TOKVOX_OK)
        return TOKVOX_ERR_FORMAT;
    *p = q;
    return TOKVOX_OK;
}
