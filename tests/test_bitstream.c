/* Check suite for the .tvx bitstream (codec/src/bitstream.c,
 * docs/bitstream.md): round trips, and that every kind of damage is an error
 * of the documented kind, never a crash and never wrong codes.
 *
 * TOKVOX_TVX_CORPUS_DIR=dir makes it write the fuzz seed corpus into dir
 * (3 valid streams, 2 damaged ones) instead of running the suite. */
#include "testutil.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <xxhash.h>

#include "tokvox/bitstream.h"

/* Version-1 layout constants, restated from docs/bitstream.md on purpose:
 * the tests pin the documented format, not the implementation's enums. */
enum { HDR = 52, HDR_CHECKSUM = 48, BLOCK_COUNT = 2, BLOCK_CHECKSUM = 4 };

/* ASan reserves terabytes of shadow memory, so RLIMIT_DATA cannot be used
 * to catch oversized allocations under it. */
#if defined(__SANITIZE_ADDRESS__)
#define TVX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TVX_ASAN 1
#endif
#endif

static unsigned g_seed;

typedef struct bytes {
    uint8_t *data;
    size_t size;
} bytes;

/* Result of reading a whole stream. */
typedef struct outcome {
    int error;       /* first error, TOKVOX_OK when the stream read cleanly */
    int at_open;     /* the error came from reader_open */
    size_t frames;   /* frames returned before the error or the end */
    uint16_t *codes; /* frames * num_codebooks codes, malloc'ed */
    tokvox_tvx_header h;
    char detail[512];
} outcome;

/* ---- helpers ------------------------------------------------------------ */

static uint32_t rng_next(uint32_t *s)
{
    /* xorshift32: reproducible from the printed seed, no libc state. */
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static tokvox_model_info fake_info(int codebooks, int bits)
{
    tokvox_model_info info = {.size = sizeof info};
    info.sample_rate = 24000;
    info.hop = 240;
    info.n_fft = 960;
    info.num_codebooks = codebooks;
    info.codebook_size = 1 << bits;
    info.codebook_bits = bits;
    info.groups = 2;
    info.stages = (codebooks + 1) / 2;
    info.model_id = UINT64_C(0x0123456789abcdef);
    return info;
}

/* A version-1 header for `frames` frames: sample_count = (frames - 1) * hop.
 * (Most damage tests pin version 1; the version-2 tests use make_header_v2.) */
static tokvox_tvx_header make_header(int codebooks, int bits, uint32_t fpb, uint64_t frames)
{
    tokvox_model_info info = fake_info(codebooks, bits);
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, codebooks, (frames - 1) * (uint64_t)info.hop, 44100);
    h.version = TOKVOX_TVX_VERSION_1;
    h.frames_per_block = fpb;
    return h;
}

static tokvox_tvx_header make_header_v2(int codebooks, int bits, uint32_t fpb, uint64_t frames)
{
    tokvox_tvx_header h = make_header(codebooks, bits, fpb, frames);
    h.version = 2;
    return h;
}

static uint16_t *random_codes(size_t n, unsigned bits, uint32_t *s)
{
    uint16_t *codes = malloc((n ? n : 1) * sizeof *codes);
    ck_assert_ptr_nonnull(codes);
    for (size_t i = 0; i < n; i++)
        codes[i] = (uint16_t)(rng_next(s) & ((1u << bits) - 1u));
    /* Extremes too: all-zero and all-ones codes must survive packing. */
    if (n > 1) {
        codes[0] = 0;
        codes[n - 1] = (uint16_t)((1u << bits) - 1u);
    }
    return codes;
}

static bytes file_contents(FILE *f)
{
    bytes b = {NULL, 0};
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    b.size = (size_t)size;
    b.data = malloc(b.size + 1);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_uint_eq(fread(b.data, 1, b.size, f), b.size);
    return b;
}

/* Writes the stream through a tmpfile(), in chunks of random size. */
static bytes write_stream(const tokvox_tvx_header *h, const uint16_t *codes, size_t frames,
                          uint32_t *s)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    int err = -100;
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, h, &err);
    ck_assert_msg(w != NULL, "writer_create: %d", err);
    for (size_t done = 0; done < frames;) {
        size_t n = 1 + rng_next(s) % 13;
        n = n < frames - done ? n : frames - done;
        ck_assert_int_eq(tokvox_tvx_write_frames(w, codes + done * h->num_codebooks, n), TOKVOX_OK);
        done += n;
    }
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_OK);
    tokvox_tvx_writer_destroy(w);
    bytes b = file_contents(f);
    fclose(f);
    return b;
}

/* fmemopen for bytes, tmpfile() for the empty stream (fmemopen(size 0) is
 * not portable). */
static FILE *open_bytes(const uint8_t *p, size_t n)
{
    FILE *f;
    if (n > 0) {
        f = fmemopen((void *)p, n, "rb");
    } else {
        f = tmpfile();
    }
    ck_assert_ptr_nonnull(f);
    return f;
}

/* Reads everything with random request sizes; stops at the first error. */
static outcome read_stream_from(FILE *f, uint32_t *s)
{
    outcome o;
    memset(&o, 0, sizeof o);
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, "test.tvx", &o.error, o.detail,
                                                  sizeof o.detail);
    if (!r) {
        ck_assert_int_ne(o.error, TOKVOX_OK);
        o.at_open = 1;
        return o;
    }
    o.h = *tokvox_tvx_reader_header(r);
    size_t cap = 64, nc = o.h.num_codebooks;
    o.codes = malloc(cap * nc * sizeof *o.codes);
    for (;;) {
        size_t want = 1 + rng_next(s) % 70, got = 0;
        if (o.frames + want > cap) {
            cap = 2 * (o.frames + want);
            o.codes = realloc(o.codes, cap * nc * sizeof *o.codes);
        }
        ck_assert_ptr_nonnull(o.codes);
        o.error = tokvox_tvx_read_frames(r, o.codes + o.frames * nc, want, &got);
        ck_assert_uint_le(got, want);
        if (o.error) {
            ck_assert_uint_eq(got, 0);
            snprintf(o.detail, sizeof o.detail, "%s", tokvox_tvx_reader_detail(r));
            break;
        }
        if (got == 0)
            break;
        o.frames += got;
    }
    tokvox_tvx_reader_destroy(r);
    return o;
}

static outcome read_stream(const uint8_t *p, size_t n, uint32_t *s)
{
    FILE *f = open_bytes(p, n);
    outcome o = read_stream_from(f, s);
    fclose(f);
    return o;
}

static void reseal_header(uint8_t *p)
{
    uint32_t c = XXH32(p, HDR_CHECKSUM, 0);
    for (int i = 0; i < 4; i++)
        p[HDR_CHECKSUM + i] = (uint8_t)(c >> (8 * i));
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* block: its count field; payload: bytes between count and checksum. */
static void reseal_block(uint8_t *block, size_t payload)
{
    size_t covered = BLOCK_COUNT + payload;
    put_le(block + covered, XXH32(block, covered, 0), 4);
}

/* The small stream of the damage tests: 10 frames of 3 10-bit codes in
 * blocks of 4, 4, 2 (the last one with 4 padding bits): 108 bytes. */
enum { SMALL_FRAMES = 10, SMALL_NC = 3, SMALL_BITS = 10, SMALL_FPB = 4 };
static const size_t small_block_start[3] = {52, 73, 94};
static const size_t small_block_payload[3] = {15, 15, 8};

static bytes small_stream(uint16_t **codes_out)
{
    uint32_t s = 12345;
    tokvox_tvx_header h = make_header(SMALL_NC, SMALL_BITS, SMALL_FPB, SMALL_FRAMES);
    uint16_t *codes = random_codes(SMALL_FRAMES * SMALL_NC, SMALL_BITS, &s);
    bytes b = write_stream(&h, codes, SMALL_FRAMES, &s);
    ck_assert_uint_eq(b.size, 108);
    if (codes_out)
        *codes_out = codes;
    else
        free(codes);
    return b;
}

static int is_block_count_byte(size_t i)
{
    for (int k = 0; k < 3; k++)
        if (i == small_block_start[k] || i == small_block_start[k] + 1)
            return 1;
    return 0;
}

/* ---- round trips ------------------------------------------------------ */

/* Field by field: the struct has padding, so memcmp would be meaningless. */
static void assert_same_header(const tokvox_tvx_header *a, const tokvox_tvx_header *b)
{
    ck_assert_uint_eq(a->version, b->version);
    ck_assert_uint_eq(a->sample_rate, b->sample_rate);
    ck_assert_uint_eq(a->hop, b->hop);
    ck_assert_uint_eq(a->num_codebooks, b->num_codebooks);
    ck_assert_uint_eq(a->codebook_bits, b->codebook_bits);
    ck_assert_uint_eq(a->groups, b->groups);
    ck_assert_uint_eq(a->stages, b->stages);
    ck_assert_uint_eq(a->model_id, b->model_id);
    ck_assert_uint_eq(a->sample_count, b->sample_count);
    ck_assert_uint_eq(a->source_rate, b->source_rate);
    ck_assert_uint_eq(a->frames_per_block, b->frames_per_block);
}

static void roundtrip_one(int nc, int bits, uint32_t fpb, uint64_t frames, uint32_t *s)
{
    tokvox_tvx_header h = make_header(nc, bits, fpb, frames);
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), frames);
    uint16_t *codes = random_codes(frames * (size_t)nc, (unsigned)bits, s);
    bytes b = write_stream(&h, codes, frames, s);
    outcome o = read_stream(b.data, b.size, s);
    ck_assert_msg(o.error == TOKVOX_OK, "nc %d bits %d frames %d: %s", nc, bits, (int)frames,
                  o.detail);
    ck_assert_uint_eq(o.frames, frames);
    assert_same_header(&o.h, &h);
    ck_assert_int_eq(memcmp(o.codes, codes, frames * (size_t)nc * sizeof *codes), 0);
    free(o.codes);
    free(codes);
    free(b.data);
}

START_TEST(test_roundtrip_layouts)
{
    static const int bits[] = {1, 7, 10, 16};
    static const int books[] = {1, 3, 8};
    uint32_t s = g_seed ^ 0x1111u;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        for (size_t j = 0; j < sizeof books / sizeof books[0]; j++) {
            /* 1 frame, exactly one block, one block + 1 frame; default and
             * odd block sizes. */
            static const uint32_t fpbs[] = {50, 7};
            for (int k = 0; k < 2; k++) {
                roundtrip_one(books[j], bits[i], fpbs[k], 1, &s);
                roundtrip_one(books[j], bits[i], fpbs[k], fpbs[k], &s);
                roundtrip_one(books[j], bits[i], fpbs[k], fpbs[k] + 1, &s);
            }
        }
}
END_TEST

START_TEST(test_roundtrip_max_layout)
{
    /* Largest block the format allows: 4096 frames x 64 codes x 16 bits. */
    uint32_t s = g_seed ^ 0x2222u;
    tokvox_model_info info = fake_info(64, 16);
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, 64, 4097 * 240, 24000);
    h.version = TOKVOX_TVX_VERSION_1;
    h.frames_per_block = TOKVOX_TVX_MAX_FRAMES_PER_BLOCK;
    uint64_t frames = tokvox_tvx_expected_frames(&h);
    ck_assert_uint_eq(frames, 4098);
    uint16_t *codes = random_codes(frames * 64, 16, &s);
    bytes b = write_stream(&h, codes, frames, &s);
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_msg(o.error == TOKVOX_OK, "%s", o.detail);
    ck_assert_uint_eq(o.frames, frames);
    ck_assert_int_eq(memcmp(o.codes, codes, frames * 64 * sizeof *codes), 0);
    free(o.codes);
    free(codes);
    free(b.data);
}
END_TEST

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

START_TEST(test_exact_bytes)
{
    /* The example of docs/bitstream.md: codes 0x3ff, 0x001 of 10 bits are
     * the payload ff 07 00.  Pins every header offset as documented. */
    uint32_t s = 1;
    tokvox_model_info info = fake_info(1, 10);
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, 1, 240, 44100);
    h.version = TOKVOX_TVX_VERSION_1;
    const uint16_t codes[2] = {0x3ff, 0x001};
    bytes b = write_stream(&h, codes, 2, &s);
    ck_assert_uint_eq(b.size, HDR + BLOCK_COUNT + 3 + BLOCK_CHECKSUM);
    ck_assert_int_eq(memcmp(b.data, "TVX\x1a", 4), 0);
    ck_assert_uint_eq(le(b.data + 4, 2), 1);
    ck_assert_uint_eq(le(b.data + 6, 2), HDR);
    ck_assert_uint_eq(le(b.data + 8, 4), 24000);
    ck_assert_uint_eq(le(b.data + 12, 4), 240);
    ck_assert_uint_eq(le(b.data + 16, 2), 1);
    ck_assert_uint_eq(le(b.data + 18, 2), 10);
    ck_assert_uint_eq(le(b.data + 20, 2), 2);
    ck_assert_uint_eq(le(b.data + 22, 2), 1);
    ck_assert_uint_eq(le(b.data + 24, 8), UINT64_C(0x0123456789abcdef));
    ck_assert_uint_eq(le(b.data + 32, 8), 240);
    ck_assert_uint_eq(le(b.data + 40, 4), 44100);
    ck_assert_uint_eq(le(b.data + 44, 4), 50);
    ck_assert_uint_eq(le(b.data + 48, 4), XXH32(b.data, 48, 0));
    const uint8_t block[] = {0x02, 0x00, 0xff, 0x07, 0x00};
    ck_assert_int_eq(memcmp(b.data + HDR, block, sizeof block), 0);
    ck_assert_uint_eq(le(b.data + HDR + sizeof block, 4), XXH32(block, sizeof block, 0));
    free(b.data);
}
END_TEST

START_TEST(test_header_init)
{
    tokvox_model_info info = fake_info(8, 10);
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, 0, 1000, 16000);
    ck_assert_uint_eq(h.version, TOKVOX_TVX_VERSION);
    ck_assert_uint_eq(h.num_codebooks, 8); /* 0 = all of the model's */
    ck_assert_uint_eq(h.codebook_bits, 10);
    ck_assert_uint_eq(h.sample_rate, 24000);
    ck_assert_uint_eq(h.hop, 240);
    ck_assert_uint_eq(h.groups, 2);
    ck_assert_uint_eq(h.stages, 4);
    ck_assert_uint_eq(h.model_id, UINT64_C(0x0123456789abcdef));
    ck_assert_uint_eq(h.sample_count, 1000);
    ck_assert_uint_eq(h.source_rate, 16000);
    ck_assert_uint_eq(h.frames_per_block, 50);
    tokvox_tvx_header_init(&h, &info, 3, 0, 16000);
    ck_assert_uint_eq(h.num_codebooks, 3);
}
END_TEST

/* The size rule (tokvox/errors.h) for the header: the library reads and
 * writes only what the caller's .size covers. */
START_TEST(test_header_follows_the_callers_size)
{
    tokvox_model_info info = fake_info(8, 10);
    tokvox_tvx_header ref = {.size = sizeof ref};
    ck_assert_int_eq(tokvox_tvx_header_init(&ref, &info, 3, 960, 16000), TOKVOX_OK);
    ck_assert_uint_eq(ref.size, sizeof ref);

    /* A caller built against a later header, with a field appended. */
    struct {
        tokvox_tvx_header h;
        unsigned char later[16];
    } newer;
    memset(&newer, 0x5A, sizeof newer);
    newer.h.size = sizeof newer;
    ck_assert_int_eq(tokvox_tvx_header_init(&newer.h, &info, 3, 960, 16000), TOKVOX_OK);
    ck_assert_uint_eq(newer.h.size, sizeof(tokvox_tvx_header));
    for (size_t i = 0; i < sizeof newer.later; i++)
        ck_assert_uint_eq(newer.later[i], 0x5A);
    ck_assert_uint_eq(newer.h.num_codebooks, 3);
    ck_assert_uint_eq(newer.h.model_id, info.model_id);
    /* ... and writes with it as with the header of this version: the bytes
     * beyond what this library knows are not read. */
    newer.h.size = sizeof newer;
    ref.version = newer.h.version = TOKVOX_TVX_VERSION_1;
    uint32_t s1 = 7, s2 = 7;
    uint16_t *codes = random_codes(5 * 3, 10, &s1);
    s1 = 7;
    bytes a = write_stream(&ref, codes, 5, &s1), b = write_stream(&newer.h, codes, 5, &s2);
    ck_assert_uint_eq(a.size, b.size);
    ck_assert_int_eq(memcmp(a.data, b.data, a.size), 0);
    free(a.data);
    free(b.data);
    free(codes);

    /* The reader's header carries this library's size. */
    bytes sm = small_stream(NULL);
    FILE *f = open_bytes(sm.data, sm.size);
    int err;
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, "small", &err, NULL, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(tokvox_tvx_reader_header(r)->size, sizeof(tokvox_tvx_header));
    tokvox_tvx_reader_destroy(r);
    fclose(f);
    free(sm.data);

    /* A size that cannot be the struct (forgotten: 0, or below the first
     * version) is refused everywhere, and nothing is written. */
    const size_t bad[] = {0, offsetof(tokvox_tvx_header, frames_per_block),
                          offsetof(tokvox_tvx_header, frames_per_block) + 3};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tokvox_tvx_header h;
        memset(&h, 0x5A, sizeof h);
        h.size = bad[k];
        ck_assert_int_eq(tokvox_tvx_header_init(&h, &info, 3, 960, 16000),
                         TOKVOX_ERR_INVALID_ARGUMENT);
        ck_assert_uint_eq(h.size, bad[k]);
        ck_assert_uint_eq(h.version, 0x5A5A);
        tokvox_tvx_header good = ref;
        good.size = bad[k];
        err = 0;
        FILE *out = tmpfile();
        ck_assert_ptr_nonnull(out);
        ck_assert_ptr_null(tokvox_tvx_writer_create(out, &good, &err));
        ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ftell(out), 0);
        fclose(out);
        ck_assert_uint_eq(tokvox_tvx_expected_frames(&good), 0);
        ck_assert_int_eq(tokvox_tvx_check_model(&good, &info, NULL, 0),
                         TOKVOX_ERR_INVALID_ARGUMENT);
        tokvox_model_info small = info;
        small.size = bad[k];
        ck_assert_int_eq(tokvox_tvx_header_init(&ref, &small, 3, 960, 16000),
                         TOKVOX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(tokvox_tvx_check_model(&ref, &small, NULL, 0),
                         TOKVOX_ERR_INVALID_ARGUMENT);
    }
}
END_TEST

START_TEST(test_expected_frames)
{
    tokvox_tvx_header h = make_header(1, 8, 50, 1);
    h.hop = 240;
    h.sample_count = 0;
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), 1);
    h.sample_count = 1;
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), 2);
    h.sample_count = 240;
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), 2);
    h.sample_count = 241;
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), 3);
    h.hop = 1;
    h.sample_count = UINT64_MAX; /* no wrap to 0 */
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), UINT64_MAX);
    h.hop = 0;
    ck_assert_uint_eq(tokvox_tvx_expected_frames(&h), 0);
    ck_assert_uint_eq(tokvox_tvx_expected_frames(NULL), 0);
}
END_TEST

START_TEST(test_pipe_reader)
{
    /* A pipe cannot seek: the reader must get by with fread. */
    uint16_t *codes;
    uint32_t s = g_seed ^ 0x3333u;
    bytes b = small_stream(&codes);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq((int)write(fds[1], b.data, b.size), (int)b.size);
    close(fds[1]);
    FILE *f = fdopen(fds[0], "rb");
    ck_assert_ptr_nonnull(f);
    outcome o = read_stream_from(f, &s);
    fclose(f);
    ck_assert_msg(o.error == TOKVOX_OK, "%s", o.detail);
    ck_assert_uint_eq(o.frames, SMALL_FRAMES);
    ck_assert_int_eq(memcmp(o.codes, codes, sizeof *codes * SMALL_FRAMES * SMALL_NC), 0);
    free(o.codes);
    free(codes);
    free(b.data);
}
END_TEST

/* ---- damage ------------------------------------------------------------ */

START_TEST(test_truncation_every_length)
{
    uint32_t s = g_seed ^ 0x4444u;
    bytes b = small_stream(NULL);
    for (size_t len = 0; len < b.size; len++) {
        outcome o = read_stream(b.data, len, &s);
        ck_assert_msg(o.error == TOKVOX_ERR_TRUNCATED, "length %zu: error %d (%s)", len, o.error,
                      o.detail);
        /* A cut header fails at open; a cut block at the read. */
        ck_assert_int_eq(o.at_open, len < HDR);
        ck_assert_msg(strstr(o.detail, "test.tvx: ") == o.detail, "%s", o.detail);
        free(o.codes);
    }
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_OK);
    free(o.codes);
    free(b.data);
}
END_TEST

static int expected_flip_error(size_t i)
{
    if (i < 4 || i == 6 || i == 7)
        return TOKVOX_ERR_FORMAT; /* magic, header_size */
    if (i == 4 || i == 5)
        return TOKVOX_ERR_VERSION;
    if (i < HDR)
        return TOKVOX_ERR_CHECKSUM; /* fields and the header checksum */
    /* A block's frame count is fully determined: a change is refused before
     * its checksum is computed. */
    return is_block_count_byte(i) ? TOKVOX_ERR_FORMAT : TOKVOX_ERR_CHECKSUM;
}

START_TEST(test_flip_every_byte)
{
    static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
    uint32_t s = g_seed ^ 0x5555u;
    bytes b = small_stream(NULL);
    for (size_t i = 0; i < b.size; i++)
        for (size_t m = 0; m < sizeof masks; m++) {
            b.data[i] ^= masks[m];
            outcome o = read_stream(b.data, b.size, &s);
            b.data[i] ^= masks[m];
            ck_assert_msg(o.error == expected_flip_error(i),
                          "byte %zu ^ %02x: error %d, expected %d (%s)", i, masks[m], o.error,
                          expected_flip_error(i), o.detail);
            ck_assert_int_eq(o.at_open, i < HDR);
            free(o.codes);
        }
    free(b.data);
}
END_TEST

START_TEST(test_bad_magic)
{
    uint32_t s = g_seed;
    static const uint8_t riff[] = "RIFF\x24\x08\x00\x00WAVEfmt ";
    outcome o = read_stream(riff, sizeof riff - 1, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    ck_assert_str_eq(o.detail, "test.tvx: not a tokvox bitstream (bad magic)");
    /* Short and wrong is "not ours", short and right is "truncated". */
    o = read_stream((const uint8_t *)"ab", 2, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    o = read_stream((const uint8_t *)"TVX", 3, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_TRUNCATED);
    o = read_stream(NULL, 0, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_TRUNCATED);
}
END_TEST

START_TEST(test_version_3)
{
    uint32_t s = g_seed;
    bytes b = small_stream(NULL);
    b.data[4] = 3;
    /* Version is checked before the checksum, resealed or not. */
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_VERSION);
    reseal_header(b.data);
    o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_VERSION);
    ck_assert_msg(strstr(o.detail, "version 3") != NULL, "%s", o.detail);
    b.data[4] = 0;
    reseal_header(b.data);
    o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_VERSION);
    free(b.data);
}
END_TEST

/* Patches one header field (offset, width) to value and reseals it. */
static int header_with(size_t offset, int width, uint64_t value)
{
    uint32_t s = g_seed;
    bytes b = small_stream(NULL);
    put_le(b.data + offset, value, width);
    reseal_header(b.data);
    outcome o = read_stream(b.data, b.size, &s);
    free(o.codes);
    free(b.data);
    return o.error;
}

START_TEST(test_header_ranges)
{
    ck_assert_int_eq(header_with(6, 2, 56), TOKVOX_ERR_FORMAT);       /* header_size */
    ck_assert_int_eq(header_with(8, 4, 999), TOKVOX_ERR_FORMAT);      /* sample_rate */
    ck_assert_int_eq(header_with(8, 4, 384001), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(header_with(12, 4, 0), TOKVOX_ERR_FORMAT);       /* hop */
    ck_assert_int_eq(header_with(12, 4, 65537), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(header_with(16, 2, 0), TOKVOX_ERR_FORMAT);       /* num_codebooks */
    ck_assert_int_eq(header_with(16, 2, 65), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(header_with(18, 2, 0), TOKVOX_ERR_FORMAT);       /* codebook_bits */
    ck_assert_int_eq(header_with(18, 2, 17), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(header_with(20, 2, 0), TOKVOX_ERR_FORMAT);       /* groups */
    ck_assert_int_eq(header_with(22, 2, 0), TOKVOX_ERR_FORMAT);       /* stages */
    ck_assert_int_eq(header_with(20, 2, 1), TOKVOX_ERR_FORMAT);       /* 3 > 1 x 2 */
    ck_assert_int_eq(header_with(32, 8, (UINT64_C(1) << 48) + 1), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(header_with(32, 8, UINT64_MAX), TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(header_with(40, 4, 0), TOKVOX_ERR_FORMAT);       /* source_rate */
    ck_assert_int_eq(header_with(44, 4, 0), TOKVOX_ERR_FORMAT);       /* frames_per_block */
    ck_assert_int_eq(header_with(44, 4, 4097), TOKVOX_ERR_FORMAT);
    /* Values in range that do not change the block layout read cleanly. */
    ck_assert_int_eq(header_with(8, 4, 1000), TOKVOX_OK);             /* lowest rate */
    ck_assert_int_eq(header_with(40, 4, 384000), TOKVOX_OK);          /* highest rate */
    ck_assert_int_eq(header_with(24, 8, 42), TOKVOX_OK);              /* model_id */
}
END_TEST

START_TEST(test_trailing_garbage)
{
    uint32_t s = g_seed;
    bytes b = small_stream(NULL);
    uint8_t *longer = malloc(2 * b.size);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, b.data, b.size);
    longer[b.size] = 0;
    outcome o = read_stream(longer, b.size + 1, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    ck_assert_msg(strstr(o.detail, "after the last frame") != NULL, "%s", o.detail);
    free(o.codes);
    /* A whole valid-looking extra block is trailing garbage as well. */
    memcpy(longer + b.size, b.data + small_block_start[2], b.size - small_block_start[2]);
    o = read_stream(longer, b.size + (b.size - small_block_start[2]), &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    free(o.codes);
    /* Two streams concatenated. */
    memcpy(longer + b.size, b.data, b.size);
    o = read_stream(longer, 2 * b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    free(o.codes);
    free(longer);
    free(b.data);
}
END_TEST

START_TEST(test_block_count_too_big)
{
    /* Last block claims 3 frames (2 remain), payload and checksum matching. */
    uint32_t s = g_seed;
    tokvox_tvx_header h = make_header(SMALL_NC, SMALL_BITS, SMALL_FPB, 3);
    uint16_t codes[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    bytes b = write_stream(&h, codes, 3, &s);
    /* 52 header + (2 + 15 + 4): rewrite it to a header for 2 frames. */
    put_le(b.data + 32, 1 * 240, 8);
    reseal_header(b.data);
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    ck_assert_msg(strstr(o.detail, "block 0 at byte offset 52") != NULL, "%s", o.detail);
    free(o.codes);
    free(b.data);
}
END_TEST

START_TEST(test_nonzero_padding)
{
    uint32_t s = g_seed;
    bytes b = small_stream(NULL);
    size_t last = small_block_start[2];
    b.data[last + BLOCK_COUNT + small_block_payload[2] - 1] |= 0x80; /* a padding bit */
    reseal_block(b.data + last, small_block_payload[2]);
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    ck_assert_msg(strstr(o.detail, "padding") != NULL, "%s", o.detail);
    free(o.codes);
    free(b.data);
}
END_TEST

START_TEST(test_block_checksum_message)
{
    uint32_t s = g_seed;
    bytes b = small_stream(NULL);
    b.data[small_block_start[1] + 5] ^= 0x04;
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_CHECKSUM);
    ck_assert_int_eq(o.at_open, 0);
    ck_assert_uint_eq(o.frames, SMALL_FPB); /* block 0 was fine */
    ck_assert_msg(strstr(o.detail, "test.tvx: block 1 at byte offset 73") == o.detail, "%s",
                  o.detail);
    free(o.codes);
    free(b.data);
}
END_TEST

START_TEST(test_huge_sample_count)
{
    /* The largest legal header and no data: the reader must not size
     * anything from sample_count.  Outside ASan the data limit turns any
     * such allocation into a failure the test would see. */
#ifndef TVX_ASAN
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_DATA, &old), 0);
    lim = old;
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > ((rlim_t)256 << 20))
        lim.rlim_cur = (rlim_t)256 << 20;
    ck_assert_int_eq(setrlimit(RLIMIT_DATA, &lim), 0);
#endif
    uint32_t s = g_seed;
    tokvox_model_info info = fake_info(64, 16);
    info.hop = 1;
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, 64, UINT64_C(1) << 48, 24000);
    h.version = TOKVOX_TVX_VERSION_1;
    h.frames_per_block = TOKVOX_TVX_MAX_FRAMES_PER_BLOCK;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    int err = -100;
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, &err);
    ck_assert_ptr_nonnull(w);
    tokvox_tvx_writer_destroy(w); /* header only */
    bytes b = file_contents(f);
    fclose(f);
    ck_assert_uint_eq(b.size, HDR);
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_TRUNCATED);
    ck_assert_int_eq(o.at_open, 0);
    ck_assert_uint_eq(o.h.sample_count, UINT64_C(1) << 48);
    free(o.codes);
    free(b.data);
#ifndef TVX_ASAN
    setrlimit(RLIMIT_DATA, &old);
#endif
}
END_TEST

/* ---- version 2 ---------------------------------------------------------- */

enum { TRAILER = 22 };

static void roundtrip_v2(int nc, int bits, uint32_t fpb, uint64_t frames, uint32_t *s)
{
    tokvox_tvx_header h = make_header_v2(nc, bits, fpb, frames);
    uint16_t *codes = random_codes(frames * (size_t)nc, (unsigned)bits, s);
    bytes b = write_stream(&h, codes, frames, s);
    ck_assert_uint_eq(le(b.data + 4, 2), 2);
    ck_assert_uint_eq(le(b.data + 32, 8), 0); /* the count is in the trailer */
    outcome o = read_stream(b.data, b.size, s);
    ck_assert_msg(o.error == TOKVOX_OK, "nc %d bits %d frames %d: %s", nc, bits, (int)frames,
                  o.detail);
    ck_assert_uint_eq(o.frames, frames);
    ck_assert_int_eq(memcmp(o.codes, codes, frames * (size_t)nc * sizeof *codes), 0);
    free(o.codes);
    free(codes);
    free(b.data);
}

START_TEST(test_v2_roundtrip_layouts)
{
    static const int bits[] = {1, 10, 16};
    static const int books[] = {1, 3, 8};
    static const uint32_t fpbs[] = {50, 7};
    uint32_t s = g_seed ^ 0x7777u;
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) {
                roundtrip_v2(books[j], bits[i], fpbs[k], 1, &s);
                roundtrip_v2(books[j], bits[i], fpbs[k], fpbs[k], &s);
                roundtrip_v2(books[j], bits[i], fpbs[k], 3 * fpbs[k] + 1, &s);
            }
}
END_TEST

/* Reads a whole stream and returns the header as the reader has it at the end. */
static tokvox_tvx_header header_at_end(const bytes *b, outcome *o)
{
    uint32_t s = 9;
    FILE *f = open_bytes(b->data, b->size);
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, "test.tvx", NULL, NULL, 0);
    ck_assert_ptr_nonnull(r);
    uint16_t codes[64 * 8];
    size_t got = 1;
    memset(o, 0, sizeof *o);
    while (!(o->error = tokvox_tvx_read_frames(r, codes, 1 + rng_next(&s) % 8, &got)) && got)
        o->frames += got;
    ck_assert_uint_eq(tokvox_tvx_reader_frames(r), o->frames);
    tokvox_tvx_header h = *tokvox_tvx_reader_header(r);
    tokvox_tvx_reader_destroy(r);
    fclose(f);
    return h;
}

START_TEST(test_v2_exact_trailer)
{
    /* 2 frames of 1 code (10 bits), 240 samples, written with the count
     * learnt only at the end: header, one block, the 22-byte trailer. */
    tokvox_model_info info = fake_info(1, 10);
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, 1, 0, 44100);
    ck_assert_uint_eq(h.version, 2);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, NULL);
    ck_assert_ptr_nonnull(w);
    const uint16_t codes[2] = {0x3ff, 0x001};
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 2), TOKVOX_OK);
    tokvox_tvx_writer_set_sample_count(w, 240);
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_OK);
    tokvox_tvx_writer_destroy(w);
    bytes b = file_contents(f);
    fclose(f);
    ck_assert_uint_eq(b.size, HDR + 2 + 3 + 4 + TRAILER);
    const uint8_t block[] = {0x02, 0x00, 0xff, 0x07, 0x00};
    ck_assert_int_eq(memcmp(b.data + HDR, block, sizeof block), 0);
    ck_assert_uint_eq(le(b.data + HDR + 5, 4), XXH32(block, sizeof block, 0)); /* block 0: seed 0 */
    const uint8_t *t = b.data + HDR + 9;
    ck_assert_uint_eq(le(t, 2), 0);
    ck_assert_uint_eq(le(t + 2, 8), 240);
    ck_assert_uint_eq(le(t + 10, 8), 2);
    ck_assert_uint_eq(le(t + 18, 4), XXH32(t, 18, 1)); /* seed: the block count */
    outcome o;
    tokvox_tvx_header end = header_at_end(&b, &o);
    ck_assert_int_eq(o.error, TOKVOX_OK);
    ck_assert_uint_eq(o.frames, 2);
    ck_assert_uint_eq(end.sample_count, 240);
    free(b.data);
}
END_TEST

/* 10 frames of 3 10-bit codes in blocks of 4, flushed short after frame 5:
 * blocks of 4, 1, 4, 1 frames, then the trailer. */
static bytes small_v2(uint16_t **codes_out, size_t block_end[4])
{
    uint32_t s = 4321;
    tokvox_tvx_header h = make_header_v2(3, 10, 4, 10);
    uint16_t *codes = random_codes(10 * 3, 10, &s);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, NULL);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 5), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_writer_flush(w), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_writer_flush(w), TOKVOX_OK); /* nothing pending: no block */
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes + 15, 5), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_OK);
    tokvox_tvx_writer_destroy(w);
    bytes b = file_contents(f);
    fclose(f);
    static const size_t frames[4] = {4, 1, 4, 1};
    size_t at = HDR;
    for (int i = 0; i < 4; i++) {
        at += 2 + (frames[i] * 30 + 7) / 8 + 4;
        block_end[i] = at;
    }
    ck_assert_uint_eq(b.size, at + TRAILER);
    *codes_out = codes;
    return b;
}

START_TEST(test_v2_cut_at_every_length)
{
    /* A cut stream gives exactly the frames of its complete blocks, then
     * TOKVOX_ERR_TRUNCATED; never a clean end, never a wrong code. */
    static const size_t frames_before[5] = {0, 4, 5, 9, 10};
    uint16_t *codes;
    size_t block_end[4];
    uint32_t s = g_seed ^ 0x8888u;
    bytes b = small_v2(&codes, block_end);
    for (size_t len = 0; len < b.size; len++) {
        outcome o = read_stream(b.data, len, &s);
        ck_assert_msg(o.error == TOKVOX_ERR_TRUNCATED, "length %zu: error %d (%s)", len, o.error,
                      o.detail);
        ck_assert_int_eq(o.at_open, len < HDR);
        size_t intact = 0;
        for (int i = 0; i < 4; i++)
            if (len >= block_end[i])
                intact = frames_before[i + 1];
        ck_assert_msg(o.frames == intact, "length %zu: %zu frames, %zu intact", len, o.frames,
                      intact);
        if (o.frames)
            ck_assert_int_eq(memcmp(o.codes, codes, o.frames * 3 * sizeof *codes), 0);
        free(o.codes);
    }
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_OK);
    ck_assert_uint_eq(o.frames, 10);
    ck_assert_int_eq(memcmp(o.codes, codes, 30 * sizeof *codes), 0);
    free(o.codes);
    free(codes);
    free(b.data);
}
END_TEST

START_TEST(test_v2_flip_every_byte)
{
    uint16_t *codes;
    size_t block_end[4];
    uint32_t s = g_seed ^ 0x9999u;
    bytes b = small_v2(&codes, block_end);
    for (size_t i = 0; i < b.size; i++) {
        b.data[i] ^= 0x10;
        outcome o = read_stream(b.data, b.size, &s);
        b.data[i] ^= 0x10;
        ck_assert_msg(o.error != TOKVOX_OK, "byte %zu flipped reads cleanly", i);
        ck_assert_msg(o.error != TOKVOX_ERR_TRUNCATED || i >= block_end[0],
                      "byte %zu: truncated", i);
        if (o.frames)
            ck_assert_int_eq(memcmp(o.codes, codes, o.frames * 3 * sizeof *codes), 0);
        free(o.codes);
    }
    free(codes);
    free(b.data);
}
END_TEST

START_TEST(test_v2_swapped_blocks)
{
    /* Blocks 0 and 2 have the same size: swapped, each is intact, but the
     * index in the checksum's seed gives them away. */
    uint16_t *codes;
    size_t block_end[4];
    uint32_t s = g_seed;
    bytes b = small_v2(&codes, block_end);
    size_t size0 = block_end[0] - HDR;
    uint8_t tmp[64];
    memcpy(tmp, b.data + HDR, size0);
    memcpy(b.data + HDR, b.data + block_end[1], size0);
    memcpy(b.data + block_end[1], tmp, size0);
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_CHECKSUM);
    ck_assert_uint_eq(o.frames, 0);
    free(o.codes);
    /* A block dropped (with its trailer resealed or not) fails too. */
    free(codes);
    bytes c = small_v2(&codes, block_end);
    memmove(c.data + HDR, c.data + block_end[0], c.size - block_end[0]);
    o = read_stream(c.data, c.size - size0, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_CHECKSUM);
    free(o.codes);
    free(codes);
    free(b.data);
    free(c.data);
}
END_TEST

START_TEST(test_v2_rules)
{
    uint32_t s = g_seed;
    uint16_t *codes;
    size_t block_end[4];
    bytes b = small_v2(&codes, block_end);
    /* A header sample_count other than 0 is refused (resealed). */
    put_le(b.data + 32, 5, 8);
    reseal_header(b.data);
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    ck_assert_int_eq(o.at_open, 1);
    put_le(b.data + 32, 0, 8);
    reseal_header(b.data);
    /* A trailer whose counts disagree with the blocks, resealed. */
    uint8_t *t = b.data + block_end[3];
    put_le(t + 2, 10 * 240, 8); /* 2400 samples need 11 frames */
    put_le(t + 18, XXH32(t, 18, 4), 4);
    o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    ck_assert_uint_eq(o.frames, 10);
    free(o.codes);
    put_le(t + 2, 9 * 240, 8);
    put_le(t + 18, XXH32(t, 18, 4), 4);
    o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_OK);
    free(o.codes);
    /* A block claiming more than frames_per_block. */
    put_le(b.data + HDR, 5, 2);
    o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    free(o.codes);
    free(b.data);
    /* Bytes after the trailer. */
    free(codes);
    bytes c = small_v2(&codes, block_end);
    uint8_t *longer = malloc(c.size + 1);
    memcpy(longer, c.data, c.size);
    longer[c.size] = 0;
    o = read_stream(longer, c.size + 1, &s);
    ck_assert_int_eq(o.error, TOKVOX_ERR_FORMAT);
    free(o.codes);
    free(longer);
    free(c.data);
    free(codes);
}
END_TEST

START_TEST(test_v2_writer_wrong_count)
{
    /* A stated count that the frames do not match: no trailer, STATE. */
    tokvox_tvx_header h = make_header_v2(1, 8, 4, 3);
    uint16_t zeros[4] = {0};
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, NULL);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(tokvox_tvx_write_frames(w, zeros, 4), TOKVOX_OK); /* no limit in v2 */
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_ERR_STATE);   /* 480 samples: 3 */
    tokvox_tvx_writer_destroy(w);
    bytes b = file_contents(f);
    fclose(f);
    ck_assert_uint_eq(b.size, HDR + 2 + 4 + 4); /* the block, no trailer */
    free(b.data);
}
END_TEST

START_TEST(test_v2_through_a_pipe)
{
    /* The writer never seeks: a pipe is a fine destination. */
    uint32_t s = g_seed ^ 0xaaaau;
    tokvox_tvx_header h = make_header_v2(2, 10, 5, 12);
    uint16_t *codes = random_codes(12 * 2, 10, &s);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    FILE *wf = fdopen(fds[1], "wb");
    ck_assert_ptr_nonnull(wf);
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(wf, &h, NULL);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 12), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_OK);
    tokvox_tvx_writer_destroy(w);
    fclose(wf);
    FILE *rf = fdopen(fds[0], "rb");
    ck_assert_ptr_nonnull(rf);
    outcome o = read_stream_from(rf, &s);
    fclose(rf);
    ck_assert_msg(o.error == TOKVOX_OK, "%s", o.detail);
    ck_assert_uint_eq(o.frames, 12);
    ck_assert_int_eq(memcmp(o.codes, codes, 24 * sizeof *codes), 0);
    free(o.codes);
    free(codes);
}
END_TEST

/* ---- model check -------------------------------------------------------- */

START_TEST(test_check_model)
{
    tokvox_model_info info = fake_info(8, 10);
    tokvox_tvx_header h = {.size = sizeof h};
    tokvox_tvx_header_init(&h, &info, 4, 1000, 24000);
    char detail[512];
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &info, detail, sizeof detail), TOKVOX_OK);

    tokvox_model_info other = info;
    other.model_id = UINT64_C(0xfedcba9876543210);
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &other, detail, sizeof detail),
                     TOKVOX_ERR_MODEL_MISMATCH);
    ck_assert_msg(strstr(detail, "0x0123456789abcdef") && strstr(detail, "0xfedcba9876543210"),
                  "%s", detail);

    other = info;
    other.hop = 480;
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &other, NULL, 0), TOKVOX_ERR_MODEL_MISMATCH);
    other = info;
    other.sample_rate = 16000;
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &other, detail, 8), TOKVOX_ERR_MODEL_MISMATCH);
    ck_assert_uint_eq(strlen(detail), 7); /* cut to the buffer */
    other = info;
    other.codebook_bits = 11;
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &other, detail, sizeof detail),
                     TOKVOX_ERR_MODEL_MISMATCH);
    other = info;
    other.num_codebooks = 3; /* the stream has 4 */
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &other, detail, sizeof detail),
                     TOKVOX_ERR_MODEL_MISMATCH);
    other.num_codebooks = 4;
    ck_assert_int_eq(tokvox_tvx_check_model(&h, &other, detail, sizeof detail), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_check_model(NULL, &info, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
}
END_TEST

/* ---- writer ------------------------------------------------------------- */

START_TEST(test_writer_rejects_codes)
{
    tokvox_tvx_header h = make_header(3, 7, 4, 2);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    int err = -100;
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, &err);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(err, TOKVOX_OK);
    uint16_t bad[6] = {1, 2, 3, 4, 128, 6};
    ck_assert_int_eq(tokvox_tvx_write_frames(w, bad, 2), TOKVOX_ERR_CODE_RANGE);
    /* Nothing of the refused call was taken: the stream is still usable. */
    uint16_t good[6] = {1, 2, 3, 4, 127, 6};
    ck_assert_int_eq(tokvox_tvx_write_frames(w, good, 2), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_OK);
    tokvox_tvx_writer_destroy(w);
    bytes b = file_contents(f);
    fclose(f);
    uint32_t s = g_seed;
    outcome o = read_stream(b.data, b.size, &s);
    ck_assert_int_eq(o.error, TOKVOX_OK);
    ck_assert_uint_eq(o.frames, 2);
    ck_assert_int_eq(memcmp(o.codes, good, sizeof good), 0);
    free(o.codes);
    free(b.data);
}
END_TEST

START_TEST(test_writer_frame_count)
{
    tokvox_tvx_header h = make_header(1, 8, 4, 3);
    uint16_t codes[4] = {0};
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, NULL);
    ck_assert_ptr_nonnull(w);
    /* The header promises 3 frames: a 4th would make an invalid stream. */
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 4), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 2), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 0), TOKVOX_OK);
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_ERR_STATE); /* 2 of 3 */
    ck_assert_int_eq(tokvox_tvx_writer_finish(w), TOKVOX_ERR_STATE);
    ck_assert_int_eq(tokvox_tvx_write_frames(w, codes, 1), TOKVOX_ERR_STATE);
    tokvox_tvx_writer_destroy(w);
    fclose(f);
}
END_TEST

START_TEST(test_writer_bad_header)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    int err = 0;
    tokvox_tvx_header h = make_header(3, 10, 4, 5);
    h.codebook_bits = 17;
    ck_assert_ptr_null(tokvox_tvx_writer_create(f, &h, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    h = make_header(3, 10, 4, 5);
    h.source_rate = 0;
    ck_assert_ptr_null(tokvox_tvx_writer_create(f, &h, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    h = make_header(3, 10, 4, 5);
    h.version = 3;
    ck_assert_ptr_null(tokvox_tvx_writer_create(f, &h, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tokvox_tvx_writer_create(NULL, &h, &err));
    ck_assert_ptr_null(tokvox_tvx_writer_create(f, NULL, &err));
    ck_assert_int_eq(ftell(f), 0); /* nothing written */
    fclose(f);
}
END_TEST

START_TEST(test_dev_full)
{
    FILE *f = fopen("/dev/full", "wb");
    if (!f) {
        fprintf(stderr, "test_dev_full: no /dev/full, skipped\n");
        return;
    }
    uint32_t s = g_seed;
    tokvox_tvx_header h = make_header(8, 16, 50, 200);
    uint16_t *codes = random_codes(200 * 8, 16, &s);
    int err = TOKVOX_OK;
    tokvox_tvx_writer *w = tokvox_tvx_writer_create(f, &h, &err);
    ck_assert_int_eq(err, TOKVOX_OK); /* the header is still in the buffer */
    ck_assert_ptr_nonnull(w);
    err = tokvox_tvx_write_frames(w, codes, 200);
    int fin = tokvox_tvx_writer_finish(w);
    ck_assert_msg(err == TOKVOX_ERR_IO || (err == TOKVOX_OK && fin == TOKVOX_ERR_IO),
                  "write %d, finish %d", err, fin);
    ck_assert_int_eq(fin, TOKVOX_ERR_IO); /* the error is sticky */
    tokvox_tvx_writer_destroy(w);
    fclose(f);
    free(codes);

    /* Unbuffered, the header write itself fails. */
    f = fopen("/dev/full", "wb");
    ck_assert_ptr_nonnull(f);
    setvbuf(f, NULL, _IONBF, 0);
    ck_assert_ptr_null(tokvox_tvx_writer_create(f, &h, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
    fclose(f);
}
END_TEST

START_TEST(test_null_arguments)
{
    int err = 0;
    char detail[64] = "x";
    ck_assert_ptr_null(tokvox_tvx_reader_open(NULL, "n", &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tokvox_tvx_reader_header(NULL));
    ck_assert_str_eq(tokvox_tvx_reader_detail(NULL), "");
    size_t got = 7;
    uint16_t codes[4];
    ck_assert_int_eq(tokvox_tvx_read_frames(NULL, codes, 1, &got), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(got, 0);
    ck_assert_int_eq(tokvox_tvx_write_frames(NULL, codes, 1), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_tvx_writer_finish(NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_tvx_writer_destroy(NULL);
    tokvox_tvx_reader_destroy(NULL);
    tokvox_tvx_header_init(NULL, NULL, 0, 0, 0);

    /* A valid reader refuses max_frames 0 (0 frames means "the end"). */
    bytes b = small_stream(NULL);
    FILE *f = open_bytes(b.data, b.size);
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, NULL, &err, NULL, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(tokvox_tvx_read_frames(r, codes, 0, &got), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_tvx_read_frames(r, NULL, 1, &got), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_tvx_read_frames(r, codes, 1, NULL), TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_tvx_reader_destroy(r);
    fclose(f);
    free(b.data);
}
END_TEST

START_TEST(test_reader_end_is_sticky)
{
    /* After the clean end, further reads keep returning 0 frames. */
    bytes b = small_stream(NULL);
    FILE *f = open_bytes(b.data, b.size);
    int err;
    char detail[256];
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, "x", &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(detail, "");
    uint16_t codes[SMALL_FRAMES * SMALL_NC];
    size_t total = 0, got;
    do {
        ck_assert_int_eq(tokvox_tvx_read_frames(r, codes, SMALL_FRAMES, &got), TOKVOX_OK);
        ck_assert_uint_le(got, SMALL_FPB); /* one block per call */
        total += got;
    } while (got > 0);
    ck_assert_uint_eq(total, SMALL_FRAMES);
    ck_assert_int_eq(tokvox_tvx_read_frames(r, codes, 1, &got), TOKVOX_OK);
    ck_assert_uint_eq(got, 0);
    tokvox_tvx_reader_destroy(r);
    fclose(f);
    free(b.data);
}
END_TEST

/* ---- seed corpus for tests/fuzz/fuzz_tvx.c ---------------------------- */

static void save(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static bytes corpus_stream(int nc, int bits, uint32_t fpb, uint64_t frames, uint32_t seed)
{
    uint32_t s = seed;
    tokvox_tvx_header h = make_header(nc, bits, fpb, frames);
    uint16_t *codes = random_codes(frames * (size_t)nc, (unsigned)bits, &s);
    bytes b = write_stream(&h, codes, frames, &s);
    free(codes);
    return b;
}

START_TEST(test_write_corpus)
{
    const char *dir = getenv("TOKVOX_TVX_CORPUS_DIR");
    bytes a = corpus_stream(3, 10, 4, 10, 1);  /* three blocks, padded tail */
    bytes b = corpus_stream(1, 1, 50, 1, 2);   /* the smallest stream */
    bytes c = corpus_stream(8, 16, 3, 7, 3);   /* wide codes, odd blocks */
    save(dir, "valid-3x10bit-10frames.tvx", a.data, a.size);
    save(dir, "valid-1x1bit-1frame.tvx", b.data, b.size);
    save(dir, "valid-8x16bit-7frames.tvx", c.data, c.size);
    a.data[60] ^= 0x20; /* a payload bit of block 0 */
    save(dir, "damaged-checksum.tvx", a.data, a.size);
    save(dir, "damaged-truncated.tvx", c.data, c.size - 9); /* cut mid-block */
    uint16_t *codes;
    size_t ends[4];
    bytes d = small_v2(&codes, ends); /* version 2: short blocks, trailer */
    save(dir, "valid-v2-3x10bit-10frames.tvx", d.data, d.size);
    save(dir, "damaged-v2-no-trailer.tvx", d.data, ends[3]);
    save(dir, "damaged-v2-cut-trailer.tvx", d.data, d.size - 5);
    free(d.data);
    free(codes);
    free(a.data);
    free(b.data);
    free(c.data);
}
END_TEST

/* ---- main --------------------------------------------------------------- */

static Suite *bitstream_suite(void)
{
    Suite *suite = suite_create("bitstream");
    TCase *round = tcase_create("roundtrip");
    tcase_add_test(round, test_roundtrip_layouts);
    tcase_add_test(round, test_roundtrip_max_layout);
    tcase_add_test(round, test_exact_bytes);
    tcase_add_test(round, test_header_init);
    tcase_add_test(round, test_header_follows_the_callers_size);
    tcase_add_test(round, test_expected_frames);
    tcase_add_test(round, test_pipe_reader);
    tcase_add_test(round, test_reader_end_is_sticky);
    suite_add_tcase(suite, round);
    TCase *damage = tcase_create("damage");
    tcase_add_test(damage, test_truncation_every_length);
    tcase_add_test(damage, test_flip_every_byte);
    tcase_add_test(damage, test_bad_magic);
    tcase_add_test(damage, test_version_3);
    tcase_add_test(damage, test_header_ranges);
    tcase_add_test(damage, test_trailing_garbage);
    tcase_add_test(damage, test_block_count_too_big);
    tcase_add_test(damage, test_nonzero_padding);
    tcase_add_test(damage, test_block_checksum_message);
    tcase_add_test(damage, test_huge_sample_count);
    suite_add_tcase(suite, damage);
    TCase *api = tcase_create("api");
    tcase_add_test(api, test_check_model);
    tcase_add_test(api, test_writer_rejects_codes);
    tcase_add_test(api, test_writer_frame_count);
    tcase_add_test(api, test_writer_bad_header);
    tcase_add_test(api, test_dev_full);
    TCase *v2 = tcase_create("version 2");
    tcase_add_test(v2, test_v2_roundtrip_layouts);
    tcase_add_test(v2, test_v2_exact_trailer);
    tcase_add_test(v2, test_v2_cut_at_every_length);
    tcase_add_test(v2, test_v2_flip_every_byte);
    tcase_add_test(v2, test_v2_swapped_blocks);
    tcase_add_test(v2, test_v2_rules);
    tcase_add_test(v2, test_v2_writer_wrong_count);
    tcase_add_test(v2, test_v2_through_a_pipe);
    suite_add_tcase(suite, v2);
    tcase_add_test(api, test_null_arguments);
    suite_add_tcase(suite, api);
    return suite;
}

/* The helpers assert with Check, so the generator runs as a one-test suite. */
static Suite *corpus_suite(void)
{
    Suite *suite = suite_create("bitstream corpus");
    TCase *tc = tcase_create("corpus");
    tcase_add_test(tc, test_write_corpus);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    int corpus = getenv("TOKVOX_TVX_CORPUS_DIR") != NULL;
    if (!corpus)
        g_seed = tu_seed();
    SRunner *runner = srunner_create(corpus ? corpus_suite() : bitstream_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failures = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failures != 0;
}
