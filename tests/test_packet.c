/* Live stream packets (io/packet.c): round trips at every width, the exact
 * bytes of a known packet (the format in docs/live.md), and every way a
 * datagram can be wrong: short, long, foreign, another version, fields out of
 * range, non-zero padding.  Random datagrams must never parse into a packet
 * the writer could not have produced. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/packet.h"
#include "tokvox/tokvox.h"

static tokvox_packet frame(int codebooks, int bits)
{
    tokvox_packet p = {0};
    p.type = TOKVOX_PACKET_FRAME;
    p.num_codebooks = codebooks;
    p.codebook_bits = bits;
    p.seq = 0xfedcba98u;
    p.timestamp = 0x0123456789abcdefull;
    p.model_id = 0xfddc57439851343aull;
    for (int i = 0; i < codebooks; i++)
        p.codes[i] = (uint16_t)((i * 2654435761u) & ((1u << bits) - 1));
    return p;
}

START_TEST(round_trip_every_width)
{
    uint8_t buf[TOKVOX_PACKET_MAX_SIZE];
    for (int bits = 1; bits <= TOKVOX_PACKET_MAX_BITS; bits++)
        for (int cb = 1; cb <= TOKVOX_PACKET_MAX_CODEBOOKS; cb += 7) {
            tokvox_packet p = frame(cb, bits), q;
            size_t len = 0;
            ck_assert_int_eq(tokvox_packet_write(&p, buf, sizeof buf, &len), TOKVOX_OK);
            ck_assert_uint_eq(len, tokvox_packet_size(cb, bits));
            ck_assert_uint_eq(len, 28 + (size_t)(cb * bits + 7) / 8);
            ck_assert_int_eq(tokvox_packet_parse(buf, len, &q), TOKVOX_OK);
            ck_assert_int_eq(q.version, TOKVOX_PACKET_VERSION);
            ck_assert_int_eq(q.type, p.type);
            ck_assert_int_eq(q.num_codebooks, cb);
            ck_assert_int_eq(q.codebook_bits, bits);
            ck_assert_uint_eq(q.seq, p.seq);
            ck_assert(q.timestamp == p.timestamp && q.model_id == p.model_id);
            ck_assert_int_eq(memcmp(q.codes, p.codes, sizeof(uint16_t) * (size_t)cb), 0);
        }
}
END_TEST

START_TEST(known_bytes)
{
    tokvox_packet p = {0};
    p.type = TOKVOX_PACKET_FRAME;
    p.num_codebooks = 2;
    p.codebook_bits = 10;
    p.seq = 7;
    p.timestamp = 2240;
    p.model_id = 0x1122334455667788ull;
    p.codes[0] = 0x3ff;
    p.codes[1] = 0x001;
    const uint8_t expect[31] = {'T', 'V', 'X', 'P', 1, 1, 2, 10, 7, 0, 0, 0,
                                0xc0, 0x08, 0, 0, 0, 0, 0, 0,
                                0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                0xff, 0x07, 0x00}; /* 0x3ff then 0x001 << 10, LSB first */
    uint8_t buf[64];
    size_t len = 0;
    ck_assert_int_eq(tokvox_packet_write(&p, buf, sizeof buf, &len), TOKVOX_OK);
    ck_assert_uint_eq(len, sizeof expect);
    ck_assert_int_eq(memcmp(buf, expect, len), 0);

    tokvox_packet end = {0};
    end.type = TOKVOX_PACKET_END;
    end.codebook_bits = 10;
    end.timestamp = 108961;
    ck_assert_int_eq(tokvox_packet_write(&end, buf, sizeof buf, &len), TOKVOX_OK);
    ck_assert_uint_eq(len, TOKVOX_PACKET_HEADER_SIZE);
    tokvox_packet q;
    ck_assert_int_eq(tokvox_packet_parse(buf, len, &q), TOKVOX_OK);
    ck_assert_int_eq(q.type, TOKVOX_PACKET_END);
    ck_assert(q.timestamp == 108961);
}
END_TEST

START_TEST(writer_refuses_bad_fields)
{
    uint8_t buf[TOKVOX_PACKET_MAX_SIZE];
    size_t len;
    tokvox_packet p = frame(8, 10);
    ck_assert_int_eq(tokvox_packet_write(NULL, buf, sizeof buf, &len), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_packet_write(&p, NULL, sizeof buf, &len), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_packet_write(&p, buf, 37, &len), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_packet_write(&p, buf, 38, &len), TOKVOX_OK);
    p.codes[3] = 1024; /* wider than 10 bits */
    ck_assert_int_eq(tokvox_packet_write(&p, buf, sizeof buf, &len), TOKVOX_ERR_INVALID_ARGUMENT);
    const int bad[][3] = {{TOKVOX_PACKET_FRAME, 0, 10}, {TOKVOX_PACKET_FRAME, 65, 10},
                          {TOKVOX_PACKET_FRAME, 8, 0},  {TOKVOX_PACKET_FRAME, 8, 17},
                          {TOKVOX_PACKET_END, 1, 10},   {0, 8, 10}, {3, 8, 10}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tokvox_packet q = frame(8, 10);
        q.type = bad[i][0];
        q.num_codebooks = bad[i][1];
        q.codebook_bits = bad[i][2];
        ck_assert_int_eq(tokvox_packet_write(&q, buf, sizeof buf, &len),
                         TOKVOX_ERR_INVALID_ARGUMENT);
    }
}
END_TEST

START_TEST(parser_refuses_bad_datagrams)
{
    uint8_t good[TOKVOX_PACKET_MAX_SIZE], buf[TOKVOX_PACKET_MAX_SIZE + 1];
    size_t len;
    tokvox_packet p = frame(8, 10), q;
    ck_assert_int_eq(tokvox_packet_write(&p, good, sizeof good, &len), TOKVOX_OK);
    ck_assert_int_eq(tokvox_packet_parse(NULL, 0, &q), TOKVOX_ERR_TRUNCATED);
    ck_assert_int_eq(tokvox_packet_parse(good, len, NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    /* every truncation */
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(tokvox_packet_parse(good, n, &q), TOKVOX_ERR_TRUNCATED);
    /* a byte too many */
    memcpy(buf, good, len);
    buf[len] = 0;
    ck_assert_int_eq(tokvox_packet_parse(buf, len + 1, &q), TOKVOX_ERR_FORMAT);
    /* wrong magic, even when short */
    memcpy(buf, good, len);
    buf[3] = 'Q';
    ck_assert_int_eq(tokvox_packet_parse(buf, len, &q), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(tokvox_packet_parse((const uint8_t *)"RTP", 3, &q), TOKVOX_ERR_FORMAT);
    /* another version: named, not parsed */
    memcpy(buf, good, len);
    buf[4] = 2;
    q.version = 0;
    ck_assert_int_eq(tokvox_packet_parse(buf, len, &q), TOKVOX_ERR_VERSION);
    ck_assert_int_eq(q.version, 2);
    /* fields out of range: type, codebooks, bits */
    const struct { int at; uint8_t value; } fields[] = {{5, 0}, {5, 3}, {6, 0}, {6, 65},
                                                        {7, 0}, {7, 17}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        memcpy(buf, good, len);
        buf[fields[i].at] = fields[i].value;
        int err = tokvox_packet_parse(buf, len, &q);
        ck_assert_msg(err == TOKVOX_ERR_FORMAT, "byte %d = %d gave %d", fields[i].at,
                      fields[i].value, err);
    }
    /* padding bits: 80 bits of codes fill 10 bytes exactly; with 7 codes
     * (70 bits) the last 2 bits of the 9th byte must be zero */
    tokvox_packet seven = frame(7, 10);
    ck_assert_int_eq(tokvox_packet_write(&seven, buf, sizeof buf, &len), TOKVOX_OK);
    buf[len - 1] |= 0x80;
    ck_assert_int_eq(tokvox_packet_parse(buf, len, &q), TOKVOX_ERR_FORMAT);
}
END_TEST

START_TEST(random_datagrams_parse_only_into_valid_packets)
{
    unsigned seed = tu_seed();
    srand(seed);
    uint8_t buf[TOKVOX_PACKET_MAX_SIZE + 8], again[TOKVOX_PACKET_MAX_SIZE];
    tokvox_packet good = frame(8, 10);
    size_t good_len;
    ck_assert_int_eq(tokvox_packet_write(&good, buf, sizeof buf, &good_len), TOKVOX_OK);
    for (int round = 0; round < 200000; round++) {
        size_t len;
        if (round % 2) { /* pure noise */
            len = (size_t)rand() % sizeof buf;
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rand();
        } else {         /* a good packet with a few bytes flipped */
            tokvox_packet_write(&good, buf, sizeof buf, &len);
            for (int k = rand() % 3 + 1; k > 0; k--)
                buf[(size_t)rand() % len] ^= (uint8_t)(1u << (rand() % 8));
        }
        tokvox_packet q;
        if (tokvox_packet_parse(buf, len, &q) != TOKVOX_OK)
            continue;
        /* whatever parses must re-serialise to the same bytes */
        size_t len2;
        ck_assert_int_eq(tokvox_packet_write(&q, again, sizeof again, &len2), TOKVOX_OK);
        ck_assert_uint_eq(len2, len);
        ck_assert_msg(memcmp(again, buf, len) == 0, "seed %u round %d", seed, round);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("packet");
    TCase *tc = tcase_create("packet");
    tcase_add_test(tc, round_trip_every_width);
    tcase_add_test(tc, known_bytes);
    tcase_add_test(tc, writer_refuses_bad_fields);
    tcase_add_test(tc, parser_refuses_bad_datagrams);
    tcase_add_test(tc, random_datagrams_parse_only_into_valid_packets);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
