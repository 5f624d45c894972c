/* Check suite for the safetensors reader (codec/src/safetensors.c). */
#include "safetensors.h"
#include "testutil.h"
#include "tokvox/tokvox.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file builder ----------------------------------------------------------- */

static const char *test_dir(void)
{
    static const char *dir;
    if (!dir)
        dir = tu_temp_dir();
    return dir;
}

/* Writes bytes to test_dir()/fname; returns the path (ring of buffers). */
static const char *write_raw(const char *fname, const void *bytes, size_t n)
{
    static char paths[4][4096];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", test_dir(), fname);
    FILE *fp = fopen(path, "wb");
    ck_assert_msg(fp != NULL, "cannot create %s", path);
    if (n)
        ck_assert_uint_eq(fwrite(bytes, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
    return path;
}

/* 8-byte little-endian length, then header, then data.  Caller frees. */
static unsigned char *build(const char *header, const void *data, size_t dlen, size_t *size)
{
    size_t hlen = strlen(header);
    *size = 8 + hlen + dlen;
    unsigned char *buf = malloc(*size ? *size : 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (dlen)
        memcpy(buf + 8 + hlen, data, dlen);
    return buf;
}

static const char *write_st(const char *fname, const char *header, const void *data, size_t dlen)
{
    size_t size;
    unsigned char *buf = build(header, data, dlen, &size);
    const char *path = write_raw(fname, buf, size);
    free(buf);
    return path;
}

/* Opening path must fail with code (or alt, when non-zero), and the detail must
 * name fname and, when given, the tensor. */
static void expect_open_fail(const char *path, const char *fname, int code, int alt,
                             const char *tensor)
{
    int err = 12345;
    char detail[1024] = "";
    st_file *f = st_open(path, &err, detail, sizeof detail);
    ck_assert_msg(f == NULL, "%s: opened but should fail", fname);
    ck_assert_msg(err == code || (alt && err == alt), "%s: error %d, expected %d; detail: %s",
                  fname, err, code, detail);
    ck_assert_msg(strstr(detail, fname) != NULL, "detail does not name %s: %s", fname, detail);
    if (tensor) {
        char quoted[256];
        snprintf(quoted, sizeof quoted, "'%s'", tensor);
        ck_assert_msg(strstr(detail, quoted) != NULL, "detail does not name tensor %s: %s",
                      tensor, detail);
    }
}

static void expect_fail(const char *fname, const char *header, const void *data, size_t dlen,
                        int code, const char *tensor)
{
    const char *path = write_st(fname, header, data, dlen);
    expect_open_fail(path, fname, code, 0, tensor);
}

static const unsigned char zeros[256];

/* ---- valid files ------------------------------------------------------------ */

static uint32_t f32_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

START_TEST(test_valid_file)
{
    /* Data: i8 scalar at 0, F32 [2,3] at 1 (unaligned), F16 [8] at 25,
     * BF16 [3] at 41, an empty F32 [0,4] at 47. */
    unsigned char data[47];
    memset(data, 0, sizeof data);
    data[0] = 0x7f;
    const float w[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-30f};
    memcpy(data + 1, w, sizeof w);
    const uint16_t halves[8] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0xFC00, 0x8000, 0x03FF};
    for (int i = 0; i < 8; i++) {
        data[25 + 2 * i] = (unsigned char)(halves[i] & 0xff);
        data[25 + 2 * i + 1] = (unsigned char)(halves[i] >> 8);
    }
    const uint16_t bf[3] = {0x3F80, 0xC000, 0x4049};
    for (int i = 0; i < 3; i++) {
        data[41 + 2 * i] = (unsigned char)(bf[i] & 0xff);
        data[41 + 2 * i + 1] = (unsigned char)(bf[i] >> 8);
    }
    const char *header =
        "{\"__metadata__\": {\"format\": \"pt\", \"config\": \"{\\\"hop\\\": 240}\","
        " \"empty\": \"\"},"
        " \"scalar\": {\"dtype\": \"I8\", \"shape\": [], \"data_offsets\": [0, 1]},"
        " \"enc.w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [1, 25]},"
        " \"half\": {\"dtype\": \"F16\", \"shape\": [8], \"data_offsets\": [25, 41]},"
        " \"bf\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [41, 47]},"
        " \"none\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [47, 47]}}"
        "    "; /* trailing padding, as writers do */
    const char *path = write_st("valid.safetensors", header, data, sizeof data);

    int err = 99;
    char detail[512] = "";
    st_file *f = st_open(path, &err, detail, sizeof detail);
    ck_assert_msg(f != NULL, "open failed: %s", detail);
    ck_assert_int_eq(err, TOKVOX_OK);
    ck_assert_uint_eq(st_count(f), 5);

    /* Header order is kept by st_at. */
    const char *order[] = {"scalar", "enc.w", "half", "bf", "none"};
    for (size_t i = 0; i < 5; i++) {
        const st_tensor *t = st_at(f, i);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, order[i]);
        ck_assert_ptr_eq(st_find(f, order[i]), t);
    }
    ck_assert_ptr_null(st_at(f, 5));
    ck_assert_ptr_null(st_find(f, "missing"));
    ck_assert_ptr_null(st_find(f, "__metadata__"));

    const st_tensor *t = st_find(f, "enc.w");
    ck_assert_int_eq(t->dtype, ST_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert_int_eq(t->numel, 6);
    ck_assert_uint_eq(t->nbytes, 24);
    float out[8];
    ck_assert_int_eq(st_to_f32(t, out), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(f32_bits(out[i]), f32_bits(w[i]));

    t = st_find(f, "half");
    ck_assert_int_eq(t->dtype, ST_F16);
    ck_assert_int_eq(t->numel, 8);
    ck_assert_int_eq(st_to_f32(t, out), 0);
    ck_assert(out[0] == 1.0f);
    ck_assert(out[1] == -2.5f);
    ck_assert(out[2] == 65504.0f);
    ck_assert(out[3] == ldexpf(1.0f, -24)); /* smallest subnormal */
    ck_assert(isinf(out[4]) && out[4] > 0);
    ck_assert(isinf(out[5]) && out[5] < 0);
    ck_assert(out[6] == 0.0f && signbit(out[6]));
    ck_assert(out[7] == ldexpf(1023.0f, -24)); /* largest subnormal */

    t = st_find(f, "bf");
    ck_assert_int_eq(t->dtype, ST_BF16);
    ck_assert_int_eq(st_to_f32(t, out), 0);
    ck_assert(out[0] == 1.0f);
    ck_assert(out[1] == -2.0f);
    ck_assert(out[2] == 3.140625f);

    t = st_find(f, "scalar");
    ck_assert_int_eq(t->dtype, ST_I8);
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(t->numel, 1);
    ck_assert_uint_eq(t->nbytes, 1);
    ck_assert_int_eq(((const unsigned char *)t->data)[0], 0x7f);
    ck_assert_int_eq(st_to_f32(t, out), -1);

    t = st_find(f, "none");
    ck_assert_int_eq(t->numel, 0);
    ck_assert_uint_eq(t->nbytes, 0);
    ck_assert_int_eq(st_to_f32(t, out), 0);

    ck_assert_str_eq(st_metadata(f, "format"), "pt");
    ck_assert_str_eq(st_metadata(f, "config"), "{\"hop\": 240}");
    ck_assert_str_eq(st_metadata(f, "empty"), "");
    ck_assert_ptr_null(st_metadata(f, "nope"));

    size_t size = 0;
    const unsigned char *bytes = st_bytes(f, &size);
    ck_assert_uint_eq(size, 8 + strlen(header) + sizeof data);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | bytes[i];
    ck_assert_uint_eq(hlen, strlen(header));
    ck_assert_int_eq(memcmp(bytes + 8, header, strlen(header)), 0);
    ck_assert_ptr_eq(st_find(f, "scalar")->data, bytes + 8 + strlen(header));
    st_close(f);
}
END_TEST

START_TEST(test_empty_header_and_memory)
{
    /* "{}" is a valid file with no tensors; st_open_memory works on a buffer. */
    size_t size;
    unsigned char *buf = build("{}", NULL, 0, &size);
    int err = 99;
    char detail[256];
    st_file *f = st_open_memory(buf, size, NULL, &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(err, TOKVOX_OK);
    ck_assert_uint_eq(st_count(f), 0);
    ck_assert_ptr_null(st_find(f, "x"));
    ck_assert_ptr_null(st_metadata(f, "x"));
    size_t n = 0;
    ck_assert_ptr_eq(st_bytes(f, &n), buf);
    ck_assert_uint_eq(n, size);
    st_close(f);
    st_close(NULL);
    free(buf);

    /* Names and metadata are copies: the header bytes may change afterwards
     * without affecting them (the data region may not). */
    const char *h = "{\"__metadata__\":{\"k\":\"v\"},\"t\":{\"dtype\":\"U8\",\"shape\":[1],"
                    "\"data_offsets\":[0,1]}}";
    buf = build(h, "\x05", 1, &size);
    f = st_open_memory(buf, size, "mem", &err, detail, sizeof detail);
    ck_assert_msg(f != NULL, "%s", detail);
    memset(buf + 8, 'x', strlen(h));
    ck_assert_ptr_nonnull(st_find(f, "t"));
    ck_assert_str_eq(st_metadata(f, "k"), "v");
    ck_assert_int_eq(*(const unsigned char *)st_find(f, "t")->data, 5);
    st_close(f);
    free(buf);
}
END_TEST

/* Every half value against an ldexp reference; every bf16 against a shift. */
START_TEST(test_f16_bf16_exhaustive)
{
    unsigned char data[65536 * 2];
    for (unsigned i = 0; i < 65536; i++) {
        data[2 * i] = (unsigned char)(i & 0xff);
        data[2 * i + 1] = (unsigned char)(i >> 8);
    }
    const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]},"
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[256,256],"
                     "\"data_offsets\":[131072,262144]}}";
    unsigned char *both = malloc(sizeof data * 2);
    ck_assert_ptr_nonnull(both);
    memcpy(both, data, sizeof data);
    memcpy(both + sizeof data, data, sizeof data);
    size_t size;
    unsigned char *buf = build(h, both, sizeof data * 2, &size);
    free(both);
    int err;
    char detail[256];
    st_file *f = st_open_memory(buf, size, "exhaustive", &err, detail, sizeof detail);
    ck_assert_msg(f != NULL, "%s", detail);
    float *out = malloc(65536 * sizeof(float));
    ck_assert_ptr_nonnull(out);

    ck_assert_int_eq(st_to_f32(st_find(f, "h"), out), 0);
    for (unsigned i = 0; i < 65536; i++) {
        unsigned e = (i >> 10) & 31, m = i & 1023;
        float ref;
        if (e == 0)
            ref = ldexpf((float)m, -24);
        else if (e == 31)
            ref = m ? NAN : INFINITY;
        else
            ref = ldexpf((float)(1024 + m), (int)e - 25);
        if (i & 0x8000)
            ref = -ref;
        if (isnan(ref))
            ck_assert_msg(isnan(out[i]), "half 0x%04x -> %g, expected NaN", i, (double)out[i]);
        else
            ck_assert_msg(f32_bits(out[i]) == f32_bits(ref), "half 0x%04x -> %g, expected %g",
                          i, (double)out[i], (double)ref);
    }

    ck_assert_int_eq(st_to_f32(st_find(f, "b"), out), 0);
    for (unsigned i = 0; i < 65536; i++)
        ck_assert_uint_eq(f32_bits(out[i]), (uint32_t)i << 16);
    free(out);
    st_close(f);
    free(buf);
}
END_TEST

START_TEST(test_touching_and_gaps_ok)
{
    /* Touching tensors, a gap, an empty tensor at a boundary, trailing data. */
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                    "\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"c\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[16,19]}}";
    const char *path = write_st("touching.safetensors", h, zeros, 32);
    int err;
    char detail[512];
    st_file *f = st_open(path, &err, detail, sizeof detail);
    ck_assert_msg(f != NULL, "%s", detail);
    ck_assert_uint_eq(st_count(f), 4);
    ck_assert_int_eq(st_find(f, "c")->dtype, ST_BOOL);
    st_close(f);
}
END_TEST

/* ---- broken files ----------------------------------------------------------- */

START_TEST(test_empty_file)
{
    const char *path = write_raw("empty.safetensors", "", 0);
    expect_open_fail(path, "empty.safetensors", TOKVOX_ERR_TRUNCATED, 0, NULL);
}
END_TEST

START_TEST(test_seven_bytes)
{
    const char *path = write_raw("seven.safetensors", "\x02\0\0\0\0\0\0", 7);
    expect_open_fail(path, "seven.safetensors", TOKVOX_ERR_TRUNCATED, 0, NULL);
}
END_TEST

START_TEST(test_header_longer_than_file)
{
    unsigned char buf[8 + 20];
    memset(buf, ' ', sizeof buf);
    memset(buf, 0, 8);
    buf[0] = 200; /* claims 200 header bytes, has 20 */
    memcpy(buf + 8, "{}", 2);
    const char *path = write_raw("longhdr.safetensors", buf, sizeof buf);
    expect_open_fail(path, "longhdr.safetensors", TOKVOX_ERR_TRUNCATED, 0, NULL);
}
END_TEST

START_TEST(test_header_length_huge)
{
    unsigned char buf[8 + 2] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'}; /* 2^63 */
    const char *path = write_raw("huge.safetensors", buf, sizeof buf);
    expect_open_fail(path, "huge.safetensors", TOKVOX_ERR_FORMAT, TOKVOX_ERR_TRUNCATED, NULL);
    /* Exactly at the 100 MiB bound plus one, in memory: FORMAT, not a read. */
    unsigned char buf2[10] = {0x01, 0x00, 0x40, 0x06, 0, 0, 0, 0, '{', '}'};
    int err;
    char detail[256];
    ck_assert_ptr_null(st_open_memory(buf2, sizeof buf2, "big", &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_FORMAT);
}
END_TEST

START_TEST(test_invalid_json)
{
    expect_fail("badjson.safetensors", "{\"a\": {\"dtype\": \"F32\", ", zeros, 4,
                TOKVOX_ERR_FORMAT, NULL);
    expect_fail("garbage.safetensors", "{} x", zeros, 0, TOKVOX_ERR_FORMAT, NULL);
    expect_fail("nohdr.safetensors", "", zeros, 4, TOKVOX_ERR_FORMAT, NULL);
}
END_TEST

START_TEST(test_top_level_array)
{
    expect_fail("array.safetensors", "[1, 2, 3]", zeros, 0, TOKVOX_ERR_FORMAT, NULL);
}
END_TEST

START_TEST(test_unknown_dtype)
{
    expect_fail("dtype.safetensors",
                "{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}",
                zeros, 4, TOKVOX_ERR_FORMAT, "w");
    expect_fail("nodtype.safetensors", "{\"w\": {\"shape\": [4], \"data_offsets\": [0, 4]}}",
                zeros, 4, TOKVOX_ERR_FORMAT, "w");
    expect_fail("numdtype.safetensors",
                "{\"w\": {\"dtype\": 3, \"shape\": [4], \"data_offsets\": [0, 4]}}", zeros, 4,
                TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_negative_shape)
{
    expect_fail("negshape.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [-4], \"data_offsets\": [0, 4]}}", zeros,
                4, TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_fractional_shape)
{
    expect_fail("fracshape.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [2.5, 2], \"data_offsets\": [0, 5]}}",
                zeros, 5, TOKVOX_ERR_FORMAT, "w");
    expect_fail("hugedim.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [1e30], \"data_offsets\": [0, 5]}}", zeros,
                5, TOKVOX_ERR_FORMAT, "w");
    expect_fail("strshape.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [\"4\"], \"data_offsets\": [0, 4]}}",
                zeros, 4, TOKVOX_ERR_FORMAT, "w");
    expect_fail("manydims.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                "\"data_offsets\": [0, 1]}}",
                zeros, 1, TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_shape_overflow)
{
    /* 2^40 * 2^40 = 2^80 elements. */
    expect_fail("overflow.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [1099511627776, 1099511627776], "
                "\"data_offsets\": [0, 0]}}",
                zeros, 0, TOKVOX_ERR_FORMAT, "w");
    /* numel fits int64 but numel * 8 bytes does not fit 64 bits. */
    expect_fail("overflow8.safetensors",
                "{\"w\": {\"dtype\": \"F64\", \"shape\": [4294967296, 1073741824], "
                "\"data_offsets\": [0, 0]}}",
                zeros, 0, TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_size_mismatch)
{
    expect_fail("mismatch.safetensors",
                "{\"ok\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                " \"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [4, 20]}}",
                zeros, 20, TOKVOX_ERR_FORMAT, "w");
    expect_fail("offsets3.safetensors",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", zeros,
                8, TOKVOX_ERR_FORMAT, "w");
    expect_fail("fracoff.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0.5, 1.5]}}", zeros,
                8, TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_offsets_past_end)
{
    const char *path = write_st(
        "pastend.safetensors",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", zeros, 12);
    expect_open_fail(path, "pastend.safetensors", TOKVOX_ERR_TRUNCATED, TOKVOX_ERR_FORMAT, "w");
    int err;
    char detail[512];
    ck_assert_ptr_null(st_open(path, &err, detail, sizeof detail));
    ck_assert_msg(strstr(detail, "[0, 16)") && strstr(detail, "size 12"), "%s", detail);
}
END_TEST

START_TEST(test_begin_after_end)
{
    expect_fail("backwards.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 4]}}", zeros, 8,
                TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_overlap)
{
    expect_fail("overlap.safetensors",
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                zeros, 12, TOKVOX_ERR_FORMAT, "b");
    /* One inside another, listed first. */
    expect_fail("inside.safetensors",
                "{\"in\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [3, 5]},"
                " \"out\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]}}",
                zeros, 8, TOKVOX_ERR_FORMAT, "in");
    /* Same range twice. */
    expect_fail("same.safetensors",
                "{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]},"
                " \"b\": {\"dtype\": \"I8\", \"shape\": [8], \"data_offsets\": [0, 8]}}",
                zeros, 8, TOKVOX_ERR_FORMAT, NULL);
}
END_TEST

START_TEST(test_duplicate_names)
{
    expect_fail("dup.safetensors",
                "{\"w\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
                " \"x\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]},"
                " \"w\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [8, 12]}}",
                zeros, 12, TOKVOX_ERR_FORMAT, "w");
    expect_fail("dupmeta.safetensors",
                "{\"__metadata__\": {}, \"__metadata__\": {}}", zeros, 0, TOKVOX_ERR_FORMAT,
                NULL);
    expect_fail("dupkey.safetensors", "{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", zeros,
                0, TOKVOX_ERR_FORMAT, NULL);
}
END_TEST

START_TEST(test_metadata_not_string)
{
    expect_fail("metaint.safetensors", "{\"__metadata__\": {\"hop\": 240}}", zeros, 0,
                TOKVOX_ERR_FORMAT, NULL);
    expect_fail("metaarr.safetensors", "{\"__metadata__\": [\"a\"]}", zeros, 0,
                TOKVOX_ERR_FORMAT, NULL);
    expect_fail("entrystr.safetensors", "{\"w\": \"F32\"}", zeros, 0, TOKVOX_ERR_FORMAT, "w");
}
END_TEST

START_TEST(test_missing_file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/does-not-exist.safetensors", test_dir());
    int err;
    char detail[512] = "";
    ck_assert_ptr_null(st_open(path, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
    ck_assert_msg(strstr(detail, path) != NULL, "%s", detail);
    ck_assert_msg(strstr(detail, "No such file") != NULL, "%s", detail);
    /* detail may be NULL. */
    ck_assert_ptr_null(st_open(path, &err, NULL, 0));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
}
END_TEST

START_TEST(test_directory)
{
    const char *dir = test_dir();
    int err;
    char detail[512] = "";
    ck_assert_ptr_null(st_open(dir, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
    ck_assert_msg(strstr(detail, dir) != NULL, "%s", detail);
    ck_assert_msg(strstr(detail, "directory") != NULL, "%s", detail);
}
END_TEST

START_TEST(test_small_detail_buffer)
{
    const char *path = write_st("small.safetensors", "[]", zeros, 0);
    int err;
    char detail[8];
    memset(detail, 'z', sizeof detail);
    ck_assert_ptr_null(st_open(path, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_FORMAT);
    ck_assert_uint_lt(strlen(detail), sizeof detail);
}
END_TEST

/* A file written by PyTorch (tests/data/kernels.safetensors), when present. */
START_TEST(test_pytorch_file)
{
    const char *path = tu_data_path("kernels.safetensors");
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "SKIP test_pytorch_file: %s is missing\n", path);
        return;
    }
    int err;
    char detail[512];
    st_file *f = st_open(path, &err, detail, sizeof detail);
    ck_assert_msg(f != NULL, "%s", detail);
    size_t size = 0;
    const unsigned char *bytes = st_bytes(f, &size);
    ck_assert_uint_gt(st_count(f), 0);
    size_t floats = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        ck_assert_ptr_eq(st_find(f, t->name), t);
        const unsigned char *d = t->data;
        ck_assert(d >= bytes && d + t->nbytes <= bytes + size);
        int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        ck_assert_ptr_nonnull(out);
        /* Float tensors convert; others (e.g. BatchNorm's I64 num_batches_tracked)
         * are refused as the contract says. */
        ck_assert_msg(st_to_f32(t, out) == (is_float ? 0 : -1), "tensor %s: st_to_f32", t->name);
        floats += is_float;
        free(out);
    }
    ck_assert_msg(floats > 0, "%s holds no float tensors", path);
    st_close(f);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("valid");
    tcase_add_test(tc, test_valid_file);
    tcase_add_test(tc, test_empty_header_and_memory);
    tcase_add_test(tc, test_f16_bf16_exhaustive);
    tcase_add_test(tc, test_touching_and_gaps_ok);
    tcase_add_test(tc, test_pytorch_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("broken");
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_seven_bytes);
    tcase_add_test(tc, test_header_longer_than_file);
    tcase_add_test(tc, test_header_length_huge);
    tcase_add_test(tc, test_invalid_json);
    tcase_add_test(tc, test_top_level_array);
    tcase_add_test(tc, test_unknown_dtype);
    tcase_add_test(tc, test_negative_shape);
    tcase_add_test(tc, test_fractional_shape);
    tcase_add_test(tc, test_shape_overflow);
    tcase_add_test(tc, test_size_mismatch);
    tcase_add_test(tc, test_offsets_past_end);
    tcase_add_test(tc, test_begin_after_end);
    tcase_add_test(tc, test_overlap);
    tcase_add_test(tc, test_duplicate_names);
    tcase_add_test(tc, test_metadata_not_string);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_directory);
    tcase_add_test(tc, test_small_detail_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(safetensors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
