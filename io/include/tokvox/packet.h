/* tokvox packet: one code frame of a live stream in one UDP datagram.
 * Specified in docs/live.md; in short, little-endian:
 *
 *   offset  size  field
 *        0     4  magic "TVXP"
 *        4     1  version (TOKVOX_PACKET_VERSION)
 *        5     1  type: 1 = frame, 2 = end of stream
 *        6     1  codes in this packet (frame: 1..64; end of stream: 0)
 *        7     1  bits per code (1..16)
 *        8     4  sequence number: frames of the stream before this one
 *       12     8  timestamp, in samples at the model rate: the frame's first
 *                 sample; for end of stream, the stream's length
 *       20     8  model id (tokvox_model_info.model_id)
 *       28     -  codes, packed LSB first as in .tvx, zero bits up to a byte
 *
 * The parser trusts nothing: the datagram's length must be exactly what the
 * header announces, every field must be in range, and padding bits must be
 * zero.  Whether the model id is the receiver's is the receiver's check.
 * [thread-safe]: no state.
 */
#ifndef TOKVOX_PACKET_H
#define TOKVOX_PACKET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOKVOX_PACKET_VERSION 1
#define TOKVOX_PACKET_HEADER_SIZE 28
#define TOKVOX_PACKET_MAX_CODEBOOKS 64
#define TOKVOX_PACKET_MAX_BITS 16
/* The largest datagram a valid packet can be. */
#define TOKVOX_PACKET_MAX_SIZE (TOKVOX_PACKET_HEADER_SIZE + \
                                TOKVOX_PACKET_MAX_CODEBOOKS * TOKVOX_PACKET_MAX_BITS / 8)

typedef enum tokvox_packet_type {
    TOKVOX_PACKET_FRAME = 1,
    TOKVOX_PACKET_END = 2,
} tokvox_packet_type;

typedef struct tokvox_packet {
    int version;           /* as read; TOKVOX_PACKET_VERSION when writing */
    int type;              /* tokvox_packet_type */
    int num_codebooks;     /* codes in codes[] (0 for TOKVOX_PACKET_END) */
    int codebook_bits;
    uint32_t seq;
    uint64_t timestamp;
    uint64_t model_id;
    uint16_t codes[TOKVOX_PACKET_MAX_CODEBOOKS];
} tokvox_packet;

/* Bytes a packet with this many codes of this width takes. */
size_t tokvox_packet_size(int num_codebooks, int codebook_bits);

/* Serialise p into buf (capacity cap); *len gets its size.
 * TOKVOX_ERR_INVALID_ARGUMENT for a field out of range or a code wider than
 * codebook_bits, or a buffer too small. */
int tokvox_packet_write(const tokvox_packet *p, uint8_t *buf, size_t cap, size_t *len);

/* Parse one datagram.  TOKVOX_OK, or TOKVOX_ERR_TRUNCATED (shorter than its
 * header says), TOKVOX_ERR_FORMAT (not a tokvox packet, or a field out of
 * range, or bytes past the end), TOKVOX_ERR_VERSION (another version: only
 * p->version is then set).  p is fully written only on TOKVOX_OK. */
int tokvox_packet_parse(const uint8_t *buf, size_t len, tokvox_packet *p);

#ifdef __cplusplus
}
#endif
#endif
