/* The library's bit packer and packets (tokvox.h): the packer against a
 * bit-by-bit reading of the specification at every width, its refusals;
 * packet sizes and layout checks; encode_packet/decode_packet against the
 * push API they are built on; and a bitrate that changes on every packet,
 * decoded by one decoder, against a reference run that decodes the same
 * prefixes of a full-rate stream: identical samples, so no state is lost. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

/* docs/bitstream.md, literally: bit i of the string is bit i % 8 of byte
 * i / 8; code k's bit b is bit k * bits + b. */
static void reference_pack(const uint16_t *codes, size_t n, int bits, uint8_t *out)
{
    memset(out, 0, (n * (size_t)bits + 7) / 8);
    for (size_t k = 0; k < n; k++)
        for (int b = 0; b < bits; b++) {
            size_t i = k * (size_t)bits + (size_t)b;
            out[i / 8] |= (uint8_t)(((codes[k] >> b) & 1u) << (i % 8));
        }
}

START_TEST(bits_match_the_specification)
{
    srand(tu_seed());
    uint16_t codes[70], back[70];
    uint8_t ours[160], ref[160];
    for (int bits = 1; bits <= 16; bits++)
        for (size_t n = 0; n <= 70; n++) {
            for (size_t i = 0; i < n; i++)
                codes[i] = (uint16_t)((unsigned)rand() & ((1u << bits) - 1u));
            size_t size = tokvox_bits_size(n, bits);
            ck_assert_uint_eq(size, (n * (size_t)bits + 7) / 8);
            memset(ours, 0xa5, sizeof ours);
            ck_assert_int_eq(tokvox_bits_pack(codes, n, bits, ours, size), TOKVOX_OK);
            ck_assert_uint_eq(ours[size], 0xa5); /* nothing past the end */
            reference_pack(codes, n, bits, ref);
            ck_assert_int_eq(memcmp(ours, ref, size), 0);
            ck_assert_int_eq(tokvox_bits_unpack(ours, size, bits, back, n), TOKVOX_OK);
            ck_assert_int_eq(memcmp(codes, back, n * sizeof codes[0]), 0);
        }
}
END_TEST

START_TEST(bits_known_bytes)
{
    const uint16_t codes[2] = {0x3ff, 0x001};
    uint8_t out[3];
    ck_assert_int_eq(tokvox_bits_pack(codes, 2, 10, out, sizeof out), TOKVOX_OK);
    ck_assert_uint_eq(out[0], 0xff);
    ck_assert_uint_eq(out[1], 0x07);
    ck_assert_uint_eq(out[2], 0x00);
}
END_TEST

START_TEST(bits_refusals)
{
    uint16_t codes[3] = {1, 1024, 3}, back[3];
    uint8_t out[8];
    memset(out, 0x5a, sizeof out);
    ck_assert_int_eq(tokvox_bits_pack(codes, 3, 10, out, sizeof out), TOKVOX_ERR_CODE_RANGE);
    ck_assert_uint_eq(out[0], 0x5a); /* a refused call writes nothing */
    codes[1] = 2;
    ck_assert_int_eq(tokvox_bits_pack(codes, 3, 10, out, 3), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_bits_pack(codes, 3, 0, out, 8), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_bits_pack(codes, 3, 17, out, 8), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(tokvox_bits_size(3, 17), 0);
    ck_assert_int_eq(tokvox_bits_pack(codes, 3, 10, out, 4), TOKVOX_OK);
    ck_assert_int_eq(tokvox_bits_unpack(out, 3, 10, back, 3), TOKVOX_ERR_TRUNCATED);
    ck_assert_int_eq(tokvox_bits_unpack(out, 5, 10, back, 3), TOKVOX_ERR_FORMAT);
    out[3] |= 0x40; /* a padding bit: 30 bits of codes, 2 of padding */
    ck_assert_int_eq(tokvox_bits_unpack(out, 4, 10, back, 3), TOKVOX_ERR_FORMAT);
    out[3] &= (uint8_t)~0x40;
    ck_assert_int_eq(tokvox_bits_unpack(out, 4, 10, back, 3), TOKVOX_OK);
    ck_assert_int_eq(back[0] + back[1] + back[2], 6);
}
END_TEST

/* ---- packets with the shipped model ------------------------------------ */

static tokvox_model *model;
static tokvox_model_info info = {.size = sizeof info};
static float *speech;
static size_t speech_n;

static void setup(void)
{
    char detail[1024] = "";
    model = tokvox_model_load(tu_model_path(), NULL, detail, sizeof detail);
    ck_assert_msg(model, "%s", detail);
    tokvox_model_get_info(model, &info);
    char path[4096];
    const char *root = getenv("TOKVOX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/samples/speech_en.wav", root ? root : ".");
    tu_require_file(path);
    ck_assert_int_eq(tokvox_audio_read(path, info.sample_rate, &speech, &speech_n, NULL, detail,
                                       sizeof detail), 0);
    /* 3 s: enough for every schedule below, quick under valgrind */
    if (speech_n > (size_t)info.sample_rate * 3)
        speech_n = (size_t)info.sample_rate * 3;
}

static void teardown(void)
{
    free(speech);
    tokvox_model_destroy(model);
}

START_TEST(packet_sizes)
{
    /* the shipped model: 10-bit codes, 8 codebooks */
    ck_assert_int_eq(info.codebook_bits, 10);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 1, 0), 11);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 1, 8), 11);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 1, 2), 4);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 4, 2), 11);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 4, 8), 41);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 5, 8), 0);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 0, 8), 0);
    ck_assert_uint_eq(tokvox_packet_bytes(model, 1, 9), 0);
    ck_assert_uint_eq(tokvox_packet_bytes(NULL, 1, 8), 0);
}
END_TEST

START_TEST(packet_layout_checks)
{
    uint16_t codes[4 * 8], back[4 * 8];
    for (int i = 0; i < 32; i++)
        codes[i] = (uint16_t)((i * 37) % info.codebook_size);
    uint8_t pkt[64];
    size_t len = 0;
    for (int f = 1; f <= 4; f++)
        for (int cb = 1; cb <= info.num_codebooks; cb++) {
            ck_assert_int_eq(tokvox_packet_pack(model, codes, f, cb, pkt, sizeof pkt, &len),
                             TOKVOX_OK);
            ck_assert_uint_eq(len, tokvox_packet_bytes(model, f, cb));
            ck_assert_uint_eq(pkt[0], (unsigned)((f - 1) << 5 | (cb - 1)));
            int ff = 0, cc = 0;
            memset(back, 0, sizeof back);
            ck_assert_int_eq(tokvox_packet_unpack(model, pkt, len, back, 32, &ff, &cc), TOKVOX_OK);
            ck_assert_int_eq(ff, f);
            ck_assert_int_eq(cc, cb);
            ck_assert_int_eq(memcmp(back, codes, sizeof(uint16_t) * (size_t)(f * cb)), 0);
            for (size_t cut = 0; cut < len; cut++)
                ck_assert_int_eq(tokvox_packet_layout(model, pkt, cut, NULL, NULL),
                                 TOKVOX_ERR_TRUNCATED);
            ck_assert_int_eq(tokvox_packet_layout(model, pkt, len + 1, NULL, NULL),
                             TOKVOX_ERR_FORMAT);
        }
    ck_assert_int_eq(tokvox_packet_pack(model, codes, 1, 2, pkt, sizeof pkt, &len), TOKVOX_OK);
    pkt[0] |= 0x80;
    ck_assert_int_eq(tokvox_packet_layout(model, pkt, len, NULL, NULL), TOKVOX_ERR_VERSION);
    pkt[0] = 8; /* 9 codebooks: more than the model has */
    ck_assert_int_eq(tokvox_packet_layout(model, pkt, 1 + tokvox_bits_size(9, 10), NULL, NULL),
                     TOKVOX_ERR_FORMAT);
    /* a 10-bit code beyond the 1024 entries cannot happen; one of 2^10 - 1 can
     * only be out of range for a smaller codebook, so check the packer's
     * refusal of a code wider than its bits instead */
    codes[0] = (uint16_t)info.codebook_size;
    ck_assert_int_eq(tokvox_packet_pack(model, codes, 1, 2, pkt, sizeof pkt, &len),
                     TOKVOX_ERR_CODE_RANGE);
    ck_assert_uint_eq(len, 0);
}
END_TEST

/* The push API's codes and audio for the first `frames` frames of speech:
 * the reference every packet path is checked against. */
static void reference_codes(size_t frames, uint16_t *codes)
{
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    size_t got = 0;
    ck_assert_int_eq(tokvox_encoder_push(e, speech, frames * (size_t)info.hop, codes, frames,
                                         &got), TOKVOX_OK);
    ck_assert_uint_eq(got, frames);
    tokvox_encoder_destroy(e);
}

START_TEST(packets_equal_push)
{
    size_t hop = (size_t)info.hop, frames = speech_n / hop / 12 * 12;
    int cb = info.num_codebooks;
    uint16_t *ref = malloc(sizeof(uint16_t) * frames * (size_t)cb);
    reference_codes(frames, ref);
    tokvox_decoder *rd = tokvox_decoder_create(model, cb, 0, NULL);
    float *ref_pcm = calloc(frames * hop, sizeof(float)), *pcm = calloc(frames * hop, sizeof(float));
    size_t n = 0, lat = (size_t)tokvox_decoder_latency(rd);
    ck_assert_int_eq(tokvox_decoder_push(rd, ref, frames, ref_pcm + lat, &n), TOKVOX_OK);
    ck_assert_uint_eq(n, frames * hop - lat); /* the packet path starts with D zeros */
    tokvox_decoder_destroy(rd);
    for (int per = 1; per <= 4; per++) {
        tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
        tokvox_decoder *d = tokvox_decoder_create(model, cb, 0, NULL);
        uint16_t codes[4 * 8];
        for (size_t t = 0; t < frames; t += (size_t)per) {
            uint8_t pkt[64];
            size_t len = 0, out = 0;
            ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech + t * hop, (size_t)per * hop,
                                                          pkt, sizeof pkt, &len), TOKVOX_OK);
            ck_assert_uint_eq(len, tokvox_packet_bytes(model, per, cb));
            ck_assert_int_eq(tokvox_packet_unpack(model, pkt, len, codes, 32, NULL, NULL),
                             TOKVOX_OK);
            ck_assert_int_eq(memcmp(codes, ref + t * (size_t)cb,
                                    sizeof(uint16_t) * (size_t)(per * cb)), 0);
            ck_assert_int_eq(tokvox_decoder_decode_packet(d, pkt, len, pcm + t * hop,
                                                          (size_t)per * hop, &out), TOKVOX_OK);
            ck_assert_uint_eq(out, (size_t)per * hop);
        }
        ck_assert_int_eq(memcmp(pcm, ref_pcm, sizeof(float) * frames * hop), 0);
        tokvox_encoder_destroy(e);
        tokvox_decoder_destroy(d);
    }
    free(ref);
    free(ref_pcm);
    free(pcm);
}
END_TEST

START_TEST(packet_calls_refuse)
{
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    tokvox_decoder *d = tokvox_decoder_create(model, 8, 0, NULL);
    size_t hop = (size_t)info.hop, len = 0, out = 0;
    uint8_t pkt[64];
    float pcm[4 * 320 + 1];
    ck_assert_uint_le(hop, 320);
    ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech, hop + 1, pkt, sizeof pkt, &len),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech, 5 * hop, pkt, sizeof pkt, &len),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech, hop, pkt, 10, &len),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    uint16_t codes[8];
    size_t frames = 0;
    ck_assert_int_eq(tokvox_encoder_push(e, speech, 7, codes, 1, &frames), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech, hop, pkt, sizeof pkt, &len),
                     TOKVOX_ERR_STATE); /* not at a frame boundary */
    tokvox_encoder_reset(e);
    ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech, hop, pkt, sizeof pkt, &len),
                     TOKVOX_OK);
    ck_assert_int_eq(tokvox_decoder_decode_packet(d, pkt, len, pcm, hop - 1, &out),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_decode_packet(d, pkt, len - 1, pcm, hop, &out),
                     TOKVOX_ERR_TRUNCATED);
    ck_assert_int_eq(tokvox_decoder_decode_packet(d, pkt, len, pcm, hop, &out), TOKVOX_OK);
    /* a lost packet: max_samples / hop frames concealed */
    ck_assert_int_eq(tokvox_decoder_decode_packet(d, NULL, 0, pcm, 3 * hop + 1, &out), TOKVOX_OK);
    ck_assert_uint_eq(out, 3 * hop);
    ck_assert_int_eq(tokvox_decoder_decode_packet(d, NULL, 0, pcm, hop - 1, &out),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_encoder_destroy(e);
    tokvox_decoder_destroy(d);
}
END_TEST

/* A codebook count per packet: every change the model allows, up and down,
 * including to 1 and to all. */
static int schedule(size_t packet) {
    static const int counts[] = {8, 2, 4, 8, 1, 6, 3, 8, 8, 2, 2, 5, 7, 1, 4};
    return counts[packet % (sizeof counts / sizeof counts[0])];
}

START_TEST(bitrate_changes_mid_stream)
{
    size_t hop = (size_t)info.hop, per = 2, packets = speech_n / hop / per;
    size_t frames = packets * per;
    int full = info.num_codebooks;
    uint16_t *ref = malloc(sizeof(uint16_t) * frames * (size_t)full);
    reference_codes(frames, ref);
    /* reference run: the full-rate stream, decoded by one decoder told each
     * frame's prefix with set_codebooks, frames pushed through the push API */
    float *ref_pcm = calloc(frames * hop, sizeof(float)), *pcm = calloc(frames * hop, sizeof(float));
    tokvox_decoder *rd = tokvox_decoder_create(model, full, 0, NULL);
    size_t at = (size_t)tokvox_decoder_latency(rd); /* the packet path's leading zeros */
    for (size_t t = 0; t < frames; t++) {
        size_t n = 0;
        ck_assert_int_eq(tokvox_decoder_set_codebooks(rd, full, schedule(t / per)), TOKVOX_OK);
        ck_assert_int_eq(tokvox_decoder_push(rd, ref + t * (size_t)full, 1, ref_pcm + at, &n),
                         TOKVOX_OK);
        at += n;
    }
    tokvox_decoder_destroy(rd);
    /* the packet path: one encoder and one decoder whose bitrate changes on
     * every packet */
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    tokvox_decoder *d = tokvox_decoder_create(model, full, 0, NULL);
    size_t bytes = 0;
    for (size_t p = 0; p < packets; p++) {
        int cb = schedule(p);
        uint8_t pkt[64];
        uint16_t codes[4 * 8];
        size_t len = 0, out = 0;
        ck_assert_int_eq(tokvox_encoder_set_codebooks(e, cb), TOKVOX_OK);
        ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech + p * per * hop, per * hop, pkt,
                                                      sizeof pkt, &len), TOKVOX_OK);
        ck_assert_uint_eq(len, tokvox_packet_bytes(model, (int)per, cb));
        bytes += len;
        /* the codes are the first cb of the full-rate codes: truncatable */
        ck_assert_int_eq(tokvox_packet_unpack(model, pkt, len, codes, 32, NULL, NULL), TOKVOX_OK);
        for (size_t f = 0; f < per; f++)
            ck_assert_int_eq(memcmp(codes + f * (size_t)cb, ref + (p * per + f) * (size_t)full,
                                    sizeof(uint16_t) * (size_t)cb), 0);
        ck_assert_int_eq(tokvox_decoder_decode_packet(d, pkt, len, pcm + p * per * hop, per * hop,
                                                      &out), TOKVOX_OK);
    }
    ck_assert_int_eq(memcmp(pcm, ref_pcm, sizeof(float) * frames * hop), 0);
    /* The comparison sees lost state: a decoder started afresh at each
     * change (what a fixed-layout decoder had to do) differs from it. */
    memset(pcm, 0, sizeof(float) * frames * hop);
    for (size_t p = 0; p < packets; p++) {
        size_t n = 0;
        if (p && schedule(p) != schedule(p - 1))
            tokvox_decoder_reset(d);
        ck_assert_int_eq(tokvox_decoder_set_codebooks(d, full, schedule(p)), TOKVOX_OK);
        ck_assert_int_eq(tokvox_decoder_push(d, ref + p * per * (size_t)full, per,
                                             pcm + p * per * hop, &n), TOKVOX_OK);
    }
    ck_assert_float_gt(tu_max_abs_diff(pcm + 4 * per * hop, ref_pcm + 4 * per * hop,
                                       (frames - 4 * per) * hop), 1e-3f);
    tokvox_encoder_destroy(e);
    tokvox_decoder_destroy(d);
    ck_assert_uint_gt(bytes, 0);
    free(ref);
    free(ref_pcm);
    free(pcm);
}
END_TEST

START_TEST(set_codebooks_refuses)
{
    tokvox_encoder *e = tokvox_encoder_create(model, 2, NULL);
    tokvox_decoder *d = tokvox_decoder_create(model, 8, 0, NULL);
    ck_assert_int_eq(tokvox_encoder_set_codebooks(e, info.num_codebooks + 1),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_encoder_set_codebooks(e, -1), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_encoder_num_codebooks(e), 2);
    ck_assert_int_eq(tokvox_encoder_set_codebooks(e, 0), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_num_codebooks(e), info.num_codebooks);
    ck_assert_int_eq(tokvox_encoder_set_codebooks(NULL, 1), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_set_codebooks(d, 4, 5), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_set_codebooks(d, 0, 0), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_set_codebooks(d, 9, 0), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_decoder_set_codebooks(d, 4, 2), TOKVOX_OK);
    /* an out-of-range code is a code error, not a malformed file */
    uint16_t codes[4] = {0, (uint16_t)info.codebook_size, 0, 0};
    float pcm[4096];
    size_t n = 0;
    ck_assert_int_eq(tokvox_decoder_push(d, codes, 1, pcm, &n), TOKVOX_ERR_CODE_RANGE);
    tokvox_encoder_destroy(e);
    tokvox_decoder_destroy(d);
}
END_TEST

/* The decoder's use_codebooks cap holds over packets that carry more. */
START_TEST(use_cap_holds_over_packets)
{
    size_t hop = (size_t)info.hop, frames = 20;
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    tokvox_decoder *capped = tokvox_decoder_create(model, 8, 2, NULL);
    tokvox_encoder *e2 = tokvox_encoder_create(model, 2, NULL);
    tokvox_decoder *two = tokvox_decoder_create(model, 2, 0, NULL);
    float a[320], b[320];
    ck_assert_uint_le(hop, 320);
    for (size_t t = 0; t < frames; t++) {
        uint8_t p1[64], p2[64];
        size_t l1 = 0, l2 = 0, n1 = 0, n2 = 0;
        ck_assert_int_eq(tokvox_encoder_encode_packet(e, speech + t * hop, hop, p1, 64, &l1), 0);
        ck_assert_int_eq(tokvox_encoder_encode_packet(e2, speech + t * hop, hop, p2, 64, &l2), 0);
        ck_assert_int_eq(tokvox_decoder_decode_packet(capped, p1, l1, a, hop, &n1), 0);
        ck_assert_int_eq(tokvox_decoder_decode_packet(two, p2, l2, b, hop, &n2), 0);
        ck_assert_int_eq(memcmp(a, b, sizeof(float) * hop), 0);
    }
    tokvox_encoder_destroy(e);
    tokvox_encoder_destroy(e2);
    tokvox_decoder_destroy(capped);
    tokvox_decoder_destroy(two);
}
END_TEST

static Suite *packets_suite(void)
{
    Suite *s = suite_create("packets");
    TCase *bits = tcase_create("bits");
    tcase_add_test(bits, bits_match_the_specification);
    tcase_add_test(bits, bits_known_bytes);
    tcase_add_test(bits, bits_refusals);
    suite_add_tcase(s, bits);
    TCase *pk = tcase_create("packets");
    tcase_add_checked_fixture(pk, setup, teardown);
    tcase_add_test(pk, packet_sizes);
    tcase_add_test(pk, packet_layout_checks);
    tcase_add_test(pk, packets_equal_push);
    tcase_add_test(pk, packet_calls_refuse);
    tcase_add_test(pk, bitrate_changes_mid_stream);
    tcase_add_test(pk, set_codebooks_refuses);
    tcase_add_test(pk, use_cap_holds_over_packets);
    tcase_set_timeout(pk, 300);
    suite_add_tcase(s, pk);
    return s;
}

int main(void) { return tu_run(packets_suite()); }
