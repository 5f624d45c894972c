/* Check suite for .npy token files and token layouts (io/tokens.c,
 * tokvox/tokens.h): round trips, numpy's exact header bytes, every layout's
 * inverse, malformed and lying headers, truncation, out-of-range codes, and
 * that streaming encoding gives the same tokens as offline encoding.
 *
 * Two other modes, for the scripts:
 *   test_tokens stream-encode IN OUT.npy SEED
 *       encodes IN with the default model by pushing random-size chunks
 *       (from SEED) through tokvox_encoder_push and writes the codes as
 *       tokvox tokenize would (codebooks layout): tests/test_tokenize.sh
 *       compares the two files byte for byte.
 *   TOKVOX_NPY_CORPUS_DIR=dir test_tokens
 *       writes the fuzz seed corpus (tests/fuzz/corpus/npy) into dir. */
#include "testutil.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokvox/io.h"
#include "tokvox/tokens.h"
#include "tokvox/tokvox.h"

static unsigned g_seed;

static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u; /* xorshift32: repeatable from the seed */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* ---- byte helpers ------------------------------------------------------------- */

typedef struct bytes {
    char *data;
    size_t size;
} bytes;

/* A whole file image written by tokvox_npy_write. */
static bytes write_image(int dtype, int ndim, uint64_t d0, uint64_t d1, const int32_t *values)
{
    bytes b = {NULL, 0};
    FILE *f = open_memstream(&b.data, &b.size);
    uint64_t shape[2] = {d0, d1};
    ck_assert_int_eq(tokvox_npy_write(f, dtype, ndim, shape, values, NULL, 0), TOKVOX_OK);
    fclose(f);
    return b;
}

/* A file image from a header dict and data bytes, with version and padding. */
static bytes raw_image(int major, const char *dict, size_t align, const void *data, size_t n)
{
    size_t prefix = major == 1 ? 10 : 12, len = strlen(dict) + 1;
    while ((prefix + len) % align)
        len++;
    bytes b = {malloc(prefix + len + n + 1), prefix + len + n};
    memcpy(b.data, "\x93NUMPY", 6);
    b.data[6] = (char)major;
    b.data[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        b.data[8 + i] = (char)((len >> (8 * i)) & 0xff);
    memset(b.data + prefix, ' ', len);
    memcpy(b.data + prefix, dict, strlen(dict));
    b.data[prefix + len - 1] = '\n';
    if (n)
        memcpy(b.data + prefix + len, data, n);
    return b;
}

static int parse(const bytes *b, tokvox_npy_info *info, int32_t **values, char *detail,
                 size_t ds)
{
    return tokvox_npy_parse(b->data, b->size, "mem.npy", info, values, detail, ds);
}

/* ---- format --------------------------------------------------------------------- */

START_TEST(header_is_numpys)
{
    /* numpy.save(np.zeros((3, 4), '<i2')) writes exactly this header. */
    static const char dict[] = "{'descr': '<i2', 'fortran_order': False, 'shape': (3, 4), }";
    char buf[TOKVOX_NPY_WRITE_HEADER_MAX];
    uint64_t shape[2] = {3, 4};
    size_t n = tokvox_npy_format_header(buf, sizeof buf, TOKVOX_NPY_INT16, 2, shape);
    ck_assert_uint_eq(n, 128);
    ck_assert_int_eq(memcmp(buf, "\x93NUMPY\x01\x00", 8), 0);
    ck_assert_uint_eq((unsigned char)buf[8] | (unsigned char)buf[9] << 8, 118);
    ck_assert_int_eq(memcmp(buf + 10, dict, sizeof dict - 1), 0);
    for (size_t i = 10 + sizeof dict - 1; i < n - 1; i++)
        ck_assert_int_eq(buf[i], ' ');
    ck_assert_int_eq(buf[n - 1], '\n');
    shape[0] = 7;
    n = tokvox_npy_format_header(buf, sizeof buf, TOKVOX_NPY_INT32, 1, shape);
    ck_assert_uint_eq(n % 64, 0);
    ck_assert_ptr_nonnull(strstr(buf + 10, "'descr': '<i4'"));
    ck_assert_ptr_nonnull(strstr(buf + 10, "'shape': (7,), }"));
    /* the biggest shape still fits the documented buffer */
    shape[0] = shape[1] = UINT64_MAX;
    ck_assert_uint_gt(tokvox_npy_format_header(buf, sizeof buf, TOKVOX_NPY_INT64, 2, shape), 0);
    ck_assert_uint_eq(tokvox_npy_format_header(buf, 20, TOKVOX_NPY_INT16, 2, shape), 0);
}
END_TEST

START_TEST(round_trips)
{
    uint32_t s = g_seed;
    static const int dtypes[] = {TOKVOX_NPY_INT16, TOKVOX_NPY_INT32, TOKVOX_NPY_INT64};
    for (int round = 0; round < 60; round++) {
        int dtype = dtypes[round % 3], ndim = 1 + round % 2;
        uint64_t d0 = rng_next(&s) % 50, d1 = ndim == 2 ? 1 + rng_next(&s) % 9 : 1;
        size_t n = (size_t)(d0 * d1);
        int32_t *v = malloc(sizeof *v * (n + 1));
        for (size_t i = 0; i < n; i++)
            v[i] = dtype == TOKVOX_NPY_INT16 ? (int16_t)rng_next(&s) : (int32_t)rng_next(&s);
        bytes b = write_image(dtype, ndim, d0, d1, v);
        tokvox_npy_info info;
        int32_t *back = NULL;
        char detail[256] = "";
        ck_assert_int_eq(parse(&b, &info, &back, detail, sizeof detail), TOKVOX_OK);
        ck_assert_int_eq(info.dtype, dtype);
        ck_assert_int_eq(info.ndim, ndim);
        ck_assert_uint_eq(info.shape[0], d0);
        ck_assert_uint_eq(info.shape[1], d1);
        ck_assert_uint_eq(info.data_offset % 64, 0);
        ck_assert_uint_eq(b.size, info.data_offset + n * (size_t)dtype);
        ck_assert(n == 0 || memcmp(v, back, n * sizeof *v) == 0);
        free(v);
        free(back);
        free(b.data);
    }
}
END_TEST

START_TEST(file_round_trip_and_header_only)
{
    const char *dir = tu_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/t.npy", dir);
    int32_t v[6] = {0, 1, 1023, -5, 32767, -32768};
    uint64_t shape[2] = {3, 2};
    FILE *f = fopen(path, "wb");
    ck_assert_int_eq(tokvox_npy_write(f, TOKVOX_NPY_INT16, 2, shape, v, NULL, 0), TOKVOX_OK);
    fclose(f);
    tokvox_npy_info info;
    int32_t *back = NULL;
    char detail[512] = "";
    ck_assert_int_eq(tokvox_npy_read_header(path, &info, detail, sizeof detail), TOKVOX_OK);
    ck_assert_uint_eq(info.count, 6);
    ck_assert_int_eq(tokvox_npy_read(path, &info, &back, detail, sizeof detail), TOKVOX_OK);
    ck_assert_int_eq(memcmp(v, back, sizeof v), 0);
    free(back);
    /* a write that does not fit the dtype is refused before any byte */
    v[0] = 40000;
    f = fopen(path, "wb");
    ck_assert_int_eq(tokvox_npy_write(f, TOKVOX_NPY_INT16, 2, shape, v, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ftell(f), 0);
    fclose(f);
    /* a missing file and a folder name the path */
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    ck_assert_int_eq(tokvox_npy_read(path, &info, &back, detail, sizeof detail), TOKVOX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(detail, "missing.npy"));
    ck_assert_int_ne(tokvox_npy_read(dir, &info, &back, detail, sizeof detail), TOKVOX_OK);
}
END_TEST

START_TEST(numpy_variants_are_read)
{
    int16_t data[6] = {1, 2, 3, 4, 5, 6};
    static const char *const dicts[] = {
        "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }",
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<i2'}", /* any key order */
        "{\"descr\": \"<i2\", \"fortran_order\": False, \"shape\": (2, 3,)}",
        "{ 'descr' : '<i2' ,'fortran_order':False,'shape':(2,3) }",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        for (int major = 1; major <= 3; major++) {
            bytes b = raw_image(major, dicts[i], major == 1 && i == 3 ? 16 : 64, data,
                                sizeof data);
            tokvox_npy_info info;
            int32_t *v = NULL;
            char detail[256] = "";
            ck_assert_msg(parse(&b, &info, &v, detail, sizeof detail) == TOKVOX_OK, "%s: %s",
                          dicts[i], detail);
            ck_assert_uint_eq(info.shape[0], 2);
            ck_assert_uint_eq(info.shape[1], 3);
            ck_assert_int_eq(v[5], 6);
            free(v);
            free(b.data);
        }
    }
}
END_TEST

/* ---- malformed input ------------------------------------------------------------- */

typedef struct bad_case {
    const char *dict;
    int error;
    const char *says; /* in the message */
} bad_case;

START_TEST(malformed_headers_are_refused)
{
    static const bad_case cases[] = {
        {"{'descr': '>i2', 'fortran_order': False, 'shape': (2, 3), }", TOKVOX_ERR_UNSUPPORTED, ">i2"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", TOKVOX_ERR_UNSUPPORTED, "<f4"},
        {"{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", TOKVOX_ERR_UNSUPPORTED, "<u2"},
        {"{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", TOKVOX_ERR_UNSUPPORTED, "|i1"},
        {"{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", TOKVOX_ERR_UNSUPPORTED, "Fortran"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (1, 2, 3), }", TOKVOX_ERR_UNSUPPORTED, "dimensions"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (), }", TOKVOX_ERR_UNSUPPORTED, "0-D"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (6), }", TOKVOX_ERR_FORMAT, "tuple"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (-2, 3), }", TOKVOX_ERR_FORMAT, "shape"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3L), }", TOKVOX_ERR_FORMAT, "shape"},
        {"{'descr': '<i2', 'fortran_order': False}", TOKVOX_ERR_FORMAT, "lacks"},
        {"{'descr': '<i2', 'descr': '<i2', 'fortran_order': False, 'shape': (2, 3)}", TOKVOX_ERR_FORMAT, "duplicate"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", TOKVOX_ERR_FORMAT, "unknown key"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3)", TOKVOX_ERR_FORMAT, "header"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3)} junk", TOKVOX_ERR_FORMAT, "after"},
        {"{'descr': '<i2' 'fortran_order': False, 'shape': (2, 3)}", TOKVOX_ERR_FORMAT, "expected"},
        {"{'descr': '<i\\x32', 'fortran_order': False, 'shape': (2, 3)}", TOKVOX_ERR_FORMAT, "string"},
        {"{'descr': '<i2', 'fortran_order': 0, 'shape': (2, 3)}", TOKVOX_ERR_FORMAT, "fortran_order"},
        {"['descr', '<i2']", TOKVOX_ERR_FORMAT, "dict"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 4), }", TOKVOX_ERR_TRUNCATED, "bytes"},
        {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }", TOKVOX_ERR_FORMAT, "bytes"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", TOKVOX_ERR_TRUNCATED, "bytes"},
    };
    int16_t data[6] = {1, 2, 3, 4, 5, 6};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = raw_image(1, cases[i].dict, 64, data, sizeof data);
        tokvox_npy_info info;
        int32_t *v = (int32_t *)&info; /* must come back NULL */
        char detail[512] = "";
        int err = parse(&b, &info, &v, detail, sizeof detail);
        ck_assert_msg(err == cases[i].error, "%s: got %d (%s)", cases[i].dict, err, detail);
        ck_assert_ptr_null(v);
        ck_assert_msg(strstr(detail, "mem.npy") && strstr(detail, cases[i].says),
                      "%s: message '%s' lacks '%s'", cases[i].dict, detail, cases[i].says);
        free(b.data);
    }
}
END_TEST

START_TEST(bad_preambles_are_refused)
{
    int16_t data[6] = {0};
    bytes good = raw_image(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }",
                           64, data, sizeof data);
    tokvox_npy_info info;
    int32_t *v = NULL;
    char detail[256];
    bytes b = {malloc(good.size), good.size};
    struct {
        size_t at;
        char value;
        int error;
    } flips[] = {{0, 'x', TOKVOX_ERR_FORMAT}, {3, 'x', TOKVOX_ERR_FORMAT},
                 {6, 4, TOKVOX_ERR_VERSION}, {6, 0, TOKVOX_ERR_VERSION},
                 {7, 1, TOKVOX_ERR_VERSION}, {9, 0x7f, TOKVOX_ERR_TRUNCATED}};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(b.data, good.data, good.size);
        b.data[flips[i].at] = flips[i].value;
        ck_assert_int_eq(parse(&b, &info, &v, detail, sizeof detail), flips[i].error);
        ck_assert_ptr_null(v);
    }
    /* a version-2 length far beyond any real header */
    memcpy(b.data, good.data, good.size);
    b.data[6] = 2;
    b.data[11] = 0x40;
    ck_assert_int_eq(parse(&b, &info, &v, detail, sizeof detail), TOKVOX_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(detail, "absurd"));
    free(b.data);
    free(good.data);
}
END_TEST

START_TEST(huge_declared_shapes_are_refused)
{
    /* Each would need far more memory than the file has bytes: refused from
     * the header alone, with nothing allocated for the data. */
    static const char *const dicts[] = {
        "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387903, 4611686018427387903), }",
        "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387903,), }",
        "{'descr': '<i2', 'fortran_order': False, 'shape': (1000000000000, 1000000), }",
        "{'descr': '<i2', 'fortran_order': False, 'shape': (99999999999999999999, 1), }",
        "{'descr': '<i2', 'fortran_order': False, 'shape': (0, 4611686018427387903), }",
    };
    int16_t data[4] = {0};
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        bytes b = raw_image(1, dicts[i], 64, data, sizeof data);
        tokvox_npy_info info;
        int32_t *v = NULL;
        char detail[256] = "";
        ck_assert_msg(parse(&b, &info, &v, detail, sizeof detail) != TOKVOX_OK, "%s", dicts[i]);
        ck_assert_ptr_null(v);
        free(b.data);
    }
}
END_TEST

START_TEST(every_truncation_is_an_error)
{
    int32_t v[12];
    for (int i = 0; i < 12; i++)
        v[i] = i * 97;
    bytes b = write_image(TOKVOX_NPY_INT32, 2, 4, 3, v);
    for (size_t n = 0; n < b.size; n++) {
        tokvox_npy_info info;
        int32_t *back = NULL;
        char detail[256] = "";
        int err = tokvox_npy_parse(b.data, n, "cut.npy", &info, &back, detail, sizeof detail);
        ck_assert_msg(err == TOKVOX_ERR_TRUNCATED || err == TOKVOX_ERR_FORMAT,
                      "%zu bytes: %d (%s)", n, err, detail);
        ck_assert_ptr_null(back);
        ck_assert_ptr_nonnull(strstr(detail, "cut.npy"));
    }
    /* one byte too many is an error too: the shape must explain every byte */
    char *longer = malloc(b.size + 1);
    memcpy(longer, b.data, b.size);
    longer[b.size] = 0;
    tokvox_npy_info info;
    int32_t *back = NULL;
    ck_assert_int_eq(tokvox_npy_parse(longer, b.size + 1, "x", &info, &back, NULL, 0),
                     TOKVOX_ERR_FORMAT);
    free(longer);
    free(b.data);
}
END_TEST

START_TEST(int64_outside_int32_is_refused)
{
    int64_t data[2] = {5, (int64_t)1 << 40};
    bytes b = raw_image(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 64,
                        data, sizeof data);
    tokvox_npy_info info;
    int32_t *v = NULL;
    char detail[256] = "";
    ck_assert_int_eq(parse(&b, &info, &v, detail, sizeof detail), TOKVOX_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(detail, "element 1"));
    data[1] = -7;
    free(b.data);
    b = raw_image(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 64, data,
                  sizeof data);
    ck_assert_int_eq(parse(&b, &info, &v, detail, sizeof detail), TOKVOX_OK);
    ck_assert_int_eq(v[1], -7);
    free(v);
    free(b.data);
}
END_TEST

/* ---- layouts ---------------------------------------------------------------------- */

static tokvox_npy_info info_for(int layout, size_t frames, int k)
{
    tokvox_npy_info info = {0};
    tokvox_layout_shape(layout, frames, k, &info.ndim, info.shape);
    info.count = info.shape[0] * info.shape[1];
    return info;
}

START_TEST(layouts_invert)
{
    uint32_t s = g_seed ^ 0x55u;
    static const int sizes[] = {1, 2, 1024, 4096};
    static const size_t frame_counts[] = {0, 1, 2, 37};
    for (int layout = 0; layout < 3; layout++)
        for (int k = 1; k <= 8; k++)
            for (size_t si = 0; si < 4; si++)
                for (size_t fi = 0; fi < 4; fi++) {
                    int cs = sizes[si];
                    size_t frames = frame_counts[fi], n = frames * (size_t)k;
                    uint16_t *codes = malloc(sizeof *codes * (n + 1)), *back = NULL;
                    for (size_t i = 0; i < n; i++)
                        codes[i] = (uint16_t)(rng_next(&s) % (uint32_t)cs);
                    int32_t *values = NULL;
                    size_t count = 0, got = 99;
                    ck_assert_int_eq(tokvox_layout_apply(layout, codes, frames, k, cs, &values,
                                                         &count), TOKVOX_OK);
                    tokvox_npy_info info = info_for(layout, frames, k);
                    ck_assert_uint_eq(count, info.count);
                    char detail[256] = "";
                    ck_assert_msg(tokvox_layout_invert(layout, &info, values,
                                                       layout == TOKVOX_LAYOUT_FLAT ? k : 0, cs,
                                                       &back, &got, "x", detail,
                                                       sizeof detail) == TOKVOX_OK,
                                  "%s", detail);
                    ck_assert_uint_eq(got, frames);
                    ck_assert(n == 0 || memcmp(codes, back, n * sizeof *codes) == 0);
                    free(codes);
                    free(back);
                    free(values);
                }
}
END_TEST

START_TEST(layout_shapes_and_ids)
{
    uint16_t codes[3 * 2] = {7, 9, 8, 10, 0, 1023};
    int32_t *v = NULL;
    size_t n = 0;
    /* flat: ids unique across codebooks, k*cs offsets */
    ck_assert_int_eq(tokvox_layout_apply(TOKVOX_LAYOUT_FLAT, codes, 3, 2, 1024, &v, &n), 0);
    int32_t flat[6] = {7, 1024 + 9, 8, 1024 + 10, 0, 1024 + 1023};
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(memcmp(v, flat, sizeof flat), 0);
    free(v);
    /* delay: codebook 1 a frame late, pad = codebook_size */
    ck_assert_int_eq(tokvox_layout_apply(TOKVOX_LAYOUT_DELAY, codes, 3, 2, 1024, &v, &n), 0);
    int32_t delay[8] = {7, 1024, 8, 9, 0, 10, 1024, 1023};
    ck_assert_uint_eq(n, 8);
    ck_assert_int_eq(memcmp(v, delay, sizeof delay), 0);
    free(v);
    int ndim;
    uint64_t shape[2];
    tokvox_layout_shape(TOKVOX_LAYOUT_DELAY, 10, 8, &ndim, shape);
    ck_assert(ndim == 2 && shape[0] == 17 && shape[1] == 8);
    tokvox_layout_shape(TOKVOX_LAYOUT_FLAT, 10, 8, &ndim, shape);
    ck_assert(ndim == 1 && shape[0] == 80);
    /* dtype from the configuration: the 1024-entry model always fits int16 */
    for (int layout = 0; layout < 3; layout++)
        ck_assert_int_eq(tokvox_layout_dtype(layout, 8, 1024), TOKVOX_NPY_INT16);
    ck_assert_int_eq(tokvox_layout_dtype(TOKVOX_LAYOUT_FLAT, 16, 4096), TOKVOX_NPY_INT32);
    ck_assert_int_eq(tokvox_layout_dtype(TOKVOX_LAYOUT_DELAY, 1, 32767), TOKVOX_NPY_INT16);
    ck_assert_int_eq(tokvox_layout_dtype(TOKVOX_LAYOUT_DELAY, 1, 32768), TOKVOX_NPY_INT32);
    ck_assert_int_eq(tokvox_layout_parse("delay"), TOKVOX_LAYOUT_DELAY);
    ck_assert_int_eq(tokvox_layout_parse("Delay"), -1);
    ck_assert_str_eq(tokvox_layout_name(TOKVOX_LAYOUT_FLAT), "flat");
    ck_assert_ptr_null(tokvox_layout_name(3));
    codes[0] = 1024; /* a code the codebook does not have */
    ck_assert_int_eq(tokvox_layout_apply(0, codes, 3, 2, 1024, &v, &n),
                     TOKVOX_ERR_INVALID_ARGUMENT);
}
END_TEST

typedef struct invert_case {
    int layout, k, ndim;
    uint64_t d0, d1;
    int32_t values[8];
    const char *says;
} invert_case;

START_TEST(bad_codes_are_named)
{
    static const invert_case cases[] = {
        {TOKVOX_LAYOUT_CODEBOOKS, 0, 2, 2, 2, {1, 2, 3, 1024}, "element [1, 1] = 1024"},
        {TOKVOX_LAYOUT_CODEBOOKS, 0, 2, 2, 2, {1, -1, 3, 4}, "element [0, 1] = -1"},
        {TOKVOX_LAYOUT_CODEBOOKS, 3, 2, 2, 2, {1, 2, 3, 4}, "shape"},
        {TOKVOX_LAYOUT_CODEBOOKS, 0, 1, 4, 1, {1, 2, 3, 4}, "shape"},
        {TOKVOX_LAYOUT_FLAT, 2, 1, 4, 1, {1, 2, 3, 1030}, "element 1 (codebook 1) = 2"},
        {TOKVOX_LAYOUT_FLAT, 3, 1, 4, 1, {1, 1025, 3, 1027}, "multiple"},
        {TOKVOX_LAYOUT_FLAT, 0, 1, 4, 1, {1, 1025, 3, 1027}, "multiple"},
        {TOKVOX_LAYOUT_DELAY, 0, 2, 3, 2, {1, 5, 2, 3, 1024, 4}, "pad"},
        {TOKVOX_LAYOUT_DELAY, 0, 2, 3, 2, {1, 1024, 1024, 3, 1024, 4}, "element [1, 0] = 1024"},
        {TOKVOX_LAYOUT_DELAY, 0, 2, 1, 4, {1024, 1024, 1024, 1024}, "shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const invert_case *c = &cases[i];
        tokvox_npy_info info = {TOKVOX_NPY_INT16, c->ndim, {c->d0, c->d1}, c->d0 * c->d1, 128};
        uint16_t *codes = (uint16_t *)&info;
        size_t frames = 99;
        char detail[256] = "";
        ck_assert_int_eq(tokvox_layout_invert(c->layout, &info, c->values, c->k, 1024, &codes,
                                              &frames, "bad.npy", detail, sizeof detail),
                         TOKVOX_ERR_FORMAT);
        ck_assert_ptr_null(codes);
        ck_assert_msg(strstr(detail, "bad.npy") && strstr(detail, c->says),
                      "case %zu: '%s' lacks '%s'", i, detail, c->says);
    }
}
END_TEST

/* ---- streaming == offline ------------------------------------------------------------- */

static tokvox_model *load_model(void)
{
    char path[4096], detail[1024] = "";
    const char *root = getenv("TOKVOX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/models/tokvox-16k.safetensors", root ? root : ".");
    tu_require_file(path);
    tokvox_model *m = tokvox_model_load(path, NULL, detail, sizeof detail);
    ck_assert_msg(m, "%s", detail);
    return m;
}

/* Encodes pcm pushing chunks of 1 .. 3 hops + 17 samples (seeded), the
 * way a live stream would arrive.  *codes malloc'ed. */
static int encode_chunked(const tokvox_model *m, const float *pcm, size_t n, uint32_t seed,
                          uint16_t **codes, size_t *frames)
{
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    int err;
    tokvox_encoder *enc = tokvox_encoder_create(m, 0, &err);
    if (!enc)
        return err;
    size_t k = (size_t)info.num_codebooks, total = tokvox_frames_for_samples(m, n), got = 0;
    *codes = malloc(sizeof **codes * total * k);
    for (size_t at = 0; at < n && !err;) {
        size_t chunk = 1 + rng_next(&seed) % (3u * (uint32_t)info.hop + 17u), out = 0;
        if (chunk > n - at)
            chunk = n - at;
        err = tokvox_encoder_push(enc, pcm + at, chunk, *codes + got * k, total - got, &out);
        got += out;
        at += chunk;
    }
    size_t tail = 0;
    if (!err)
        err = tokvox_encoder_flush(enc, *codes + got * k, total - got, &tail);
    tokvox_encoder_destroy(enc);
    *frames = got + tail;
    return err;
}

START_TEST(streaming_equals_offline)
{
    tokvox_model *m = load_model();
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    char path[4096], detail[1024] = "";
    const char *root = getenv("TOKVOX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/samples/speech_en.wav", root ? root : ".");
    tu_require_file(path);
    float *pcm = NULL;
    size_t n = 0;
    ck_assert_int_eq(tokvox_audio_read(path, info.sample_rate, &pcm, &n, NULL, detail,
                                       sizeof detail), TOKVOX_OK);
    int err;
    tokvox_encoder *enc = tokvox_encoder_create(m, 0, &err);
    size_t total = tokvox_frames_for_samples(m, n), got = 0, tail = 0;
    size_t k = (size_t)info.num_codebooks;
    uint16_t *offline = malloc(sizeof *offline * total * k);
    ck_assert_int_eq(tokvox_encoder_push(enc, pcm, n, offline, total, &got), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_flush(enc, offline + got * k, total - got, &tail), 0);
    tokvox_encoder_destroy(enc);
    for (uint32_t round = 0; round < 3; round++) {
        uint16_t *streamed = NULL;
        size_t frames = 0;
        ck_assert_int_eq(encode_chunked(m, pcm, n, g_seed + round, &streamed, &frames), 0);
        ck_assert_uint_eq(frames, total);
        ck_assert_msg(memcmp(streamed, offline, total * k * sizeof *offline) == 0,
                      "streamed codes differ (seed %u)", g_seed + round);
        free(streamed);
    }
    free(offline);
    free(pcm);
    tokvox_model_destroy(m);
}
END_TEST

/* The bytes of a seekable FILE, from its start. */
static bytes file_bytes(FILE *f)
{
    bytes b = {NULL, 0};
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    b.size = (size_t)size;
    b.data = malloc(b.size + 1);
    rewind(f);
    ck_assert_uint_eq(fread(b.data, 1, b.size, f), b.size);
    return b;
}

/* The streaming writer's file, blocks of random sizes, is byte for byte
 * what tokvox_npy_write of tokvox_layout_apply on all the frames writes,
 * for every layout, short and long streams, one codebook and many. */
START_TEST(token_writer_equals_whole)
{
    static const size_t lengths[] = {0, 1, 2, 3, 7, 300};
    static const int widths[] = {1, 2, 8};
    uint32_t seed = g_seed;
    for (int layout = 0; layout < 3; layout++) {
        for (size_t wi = 0; wi < 3; wi++) {
            for (size_t li = 0; li < 6; li++) {
                int k = widths[wi], cs = layout == TOKVOX_LAYOUT_FLAT ? 1024 : 40000;
                size_t frames = lengths[li], kk = (size_t)k;
                uint16_t *codes = malloc(sizeof *codes * (frames * kk + 1));
                for (size_t i = 0; i < frames * kk; i++)
                    codes[i] = (uint16_t)(rng_next(&seed) % (uint32_t)cs);
                int dtype = tokvox_layout_dtype(layout, k, cs);
                int32_t *values = NULL;
                size_t count = 0;
                ck_assert_int_eq(tokvox_layout_apply(layout, codes, frames, k, cs, &values, &count),
                                 TOKVOX_OK);
                int ndim;
                uint64_t shape[2];
                tokvox_layout_shape(layout, frames, k, &ndim, shape);
                bytes want = write_image(dtype, ndim, shape[0], shape[1], values);
                FILE *f = tmpfile();
                int err = -1;
                char detail[256] = "";
                tokvox_token_writer *w = tokvox_token_writer_open(f, layout, k, cs, dtype, &err,
                                                                  detail, sizeof detail);
                ck_assert_msg(w != NULL, "%s", detail);
                for (size_t at = 0; at < frames;) {
                    size_t n = 1 + rng_next(&seed) % 9u;
                    n = n > frames - at ? frames - at : n;
                    ck_assert_int_eq(tokvox_token_writer_write(w, codes + at * kk, n, detail,
                                                               sizeof detail), TOKVOX_OK);
                    at += n;
                }
                uint64_t written = 99;
                ck_assert_int_eq(tokvox_token_writer_finish(w, &written, detail, sizeof detail),
                                 TOKVOX_OK);
                ck_assert_uint_eq(written, frames);
                bytes got = file_bytes(f);
                ck_assert_msg(got.size == want.size && !memcmp(got.data, want.data, want.size),
                              "layout %d, %d codebooks, %zu frames: %zu bytes, want %zu (seed %u)",
                              layout, k, frames, got.size, want.size, g_seed);
                fclose(f);
                free(got.data);
                free(want.data);
                free(values);
                free(codes);
            }
        }
    }
}
END_TEST

/* Writes the layout of codes to a temporary .npy (path in buf); returns the
 * dtype's size. */
static int write_token_file(char *path, size_t path_size, int layout, const uint16_t *codes,
                            size_t frames, int k, int cs)
{
    snprintf(path, path_size, "/tmp/tokvox-reader-XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    int32_t *values = NULL;
    size_t count = 0;
    ck_assert_int_eq(tokvox_layout_apply(layout, codes, frames, k, cs, &values, &count), 0);
    int ndim, dtype = tokvox_layout_dtype(layout, k, cs);
    uint64_t shape[2];
    tokvox_layout_shape(layout, frames, k, &ndim, shape);
    char detail[256] = "";
    ck_assert_int_eq(tokvox_npy_write(f, dtype, ndim, shape, values, detail, sizeof detail), 0);
    fclose(f);
    free(values);
    return dtype;
}

/* Reads the whole file with reads of 1..max frames; returns the error of
 * the read that failed (0 at the end) and the frames read so far. */
static int read_in_pieces(tokvox_token_reader *r, uint16_t *out, size_t max, uint32_t *seed,
                          size_t *total, char *detail, size_t detail_size)
{
    size_t k = (size_t)tokvox_token_reader_codebooks(r), got;
    *total = 0;
    for (;;) {
        size_t want = 1 + rng_next(seed) % (uint32_t)max;
        int err = tokvox_token_reader_read(r, out + *total * k, want, &got, detail, detail_size);
        ck_assert_uint_le(got, want);
        *total += got; /* valid even when err says the next frame is not */
        if (err)
            return err;
        if (got < want)
            return 0;
    }
}

/* The reader returns exactly the frames tokvox_layout_invert does, whatever
 * the read sizes and across its internal blocks (1024 rows). */
START_TEST(token_reader_equals_whole)
{
    static const size_t lengths[] = {1, 2, 1023, 1024, 1025, 2500};
    static const int widths[] = {1, 3, 8};
    static const size_t max_reads[] = {1, 7, 64, 5000};
    uint32_t seed = g_seed ^ 0x77u;
    for (int layout = 0; layout < 3; layout++)
        for (size_t wi = 0; wi < 3; wi++)
            for (size_t li = 0; li < 6; li++) {
                int k = widths[wi], cs = 1024;
                size_t frames = lengths[li], kk = (size_t)k;
                uint16_t *codes = malloc(sizeof *codes * frames * kk);
                uint16_t *back = malloc(sizeof *back * (frames + 1) * kk);
                for (size_t i = 0; i < frames * kk; i++)
                    codes[i] = (uint16_t)(rng_next(&seed) % (uint32_t)cs);
                char path[64], detail[256] = "";
                write_token_file(path, sizeof path, layout, codes, frames, k, cs);
                for (size_t mi = 0; mi < 4; mi++) {
                    int err = -1;
                    tokvox_token_reader *r = tokvox_token_reader_open(
                        path, layout, layout == TOKVOX_LAYOUT_FLAT ? k : 0, cs, &err, detail,
                        sizeof detail);
                    ck_assert_msg(r != NULL, "%s", detail);
                    ck_assert_uint_eq(tokvox_token_reader_frames(r), frames);
                    ck_assert_int_eq(tokvox_token_reader_codebooks(r), k);
                    size_t total = 0;
                    ck_assert_msg(read_in_pieces(r, back, max_reads[mi], &seed, &total, detail,
                                                 sizeof detail) == 0, "%s", detail);
                    ck_assert_msg(total == frames && !memcmp(codes, back, frames * kk * 2),
                                  "layout %d, k %d, %zu frames, reads <= %zu: %zu back (seed %u)",
                                  layout, k, frames, max_reads[mi], total, g_seed);
                    tokvox_token_reader_close(r);
                }
                unlink(path);
                free(codes);
                free(back);
            }
}
END_TEST

/* A bad value or a cut file past the first block: the frames before it come
 * back, then the read that meets it fails, naming the element. */
START_TEST(token_reader_fails_where_the_file_does)
{
    enum { FRAMES = 3000, K = 2 };
    uint32_t seed = g_seed ^ 0x99u;
    static uint16_t codes[FRAMES * K], back[(FRAMES + 1) * K];
    for (size_t i = 0; i < FRAMES * K; i++)
        codes[i] = (uint16_t)(rng_next(&seed) % 1000u);
    for (int layout = 0; layout < 3; layout++) {
        char path[64], detail[256] = "";
        int dtype = write_token_file(path, sizeof path, layout, codes, FRAMES, K, 1000);
        tokvox_npy_info info;
        ck_assert_int_eq(tokvox_npy_read_header(path, &info, detail, sizeof detail), 0);
        /* element [2500, 1] (flat: 5001) := 7777, out of every layout's range */
        FILE *f = fopen(path, "r+b");
        int16_t bad = 7777;
        ck_assert_int_eq(dtype, 2);
        fseek(f, (long)(info.data_offset + (2500 * K + 1) * 2), SEEK_SET);
        fwrite(&bad, 2, 1, f);
        fclose(f);
        int err = -1;
        int k = layout == TOKVOX_LAYOUT_FLAT ? K : 0;
        tokvox_token_reader *r = tokvox_token_reader_open(path, layout, k, 1000, &err, detail,
                                                          sizeof detail);
        ck_assert_msg(r != NULL, "%s", detail);
        size_t total = 0;
        ck_assert_int_eq(read_in_pieces(r, back, 100, &seed, &total, detail, sizeof detail),
                         TOKVOX_ERR_FORMAT);
        ck_assert_msg(strstr(detail, path) && strstr(detail, "7777"), "%s", detail);
        ck_assert_uint_ge(total, 2048 - K); /* two whole blocks came back first */
        ck_assert_int_eq(memcmp(codes, back, total * K * 2), 0);
        tokvox_token_reader_close(r);
        /* cut the file mid-array: the header no longer fits the size */
        ck_assert_int_eq(truncate(path, (off_t)(info.data_offset + 1500 * K * 2)), 0);
        ck_assert_ptr_null(tokvox_token_reader_open(path, layout, k, 1000, &err, detail,
                                                    sizeof detail));
        ck_assert_int_ne(err, 0);
        ck_assert_msg(strstr(detail, path) != NULL, "%s", detail);
        unlink(path);
    }
    int err = 0;
    char detail[256] = "";
    ck_assert_ptr_null(tokvox_token_reader_open("/nonexistent/t.npy", 0, 0, 1024, &err, detail,
                                                sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
    tokvox_token_reader_close(NULL);
}
END_TEST

/* What the streaming writer refuses, and what an unfinished file reads as. */
START_TEST(token_writer_refusals)
{
    char detail[256] = "";
    int err = 0, fds[2];
    /* a pipe cannot take the header rewrite: refused up front, naming why */
    ck_assert_int_eq(pipe(fds), 0);
    FILE *p = fdopen(fds[1], "wb");
    ck_assert_ptr_null(tokvox_token_writer_open(p, 0, 8, 1024, TOKVOX_NPY_INT16, &err, detail,
                                                sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(detail, "cannot seek"));
    fclose(p);
    close(fds[0]);
    /* a dtype too narrow for the layout's ids, a code out of range */
    FILE *f = tmpfile();
    ck_assert_ptr_null(tokvox_token_writer_open(f, TOKVOX_LAYOUT_FLAT, 64, 1024,
                                                TOKVOX_NPY_INT16, &err, NULL, 0));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_token_writer *w = tokvox_token_writer_open(f, 0, 2, 1024, TOKVOX_NPY_INT16, &err,
                                                      detail, sizeof detail);
    ck_assert_ptr_nonnull(w);
    uint16_t codes[4] = {1, 2, 3, 1024};
    ck_assert_int_eq(tokvox_token_writer_write(w, codes, 2, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    codes[3] = 4;
    ck_assert_int_eq(tokvox_token_writer_write(w, codes, 2, detail, sizeof detail), TOKVOX_OK);
    /* not finished (a crash): the header's placeholder shape does not
     * account for the data, so the file is never taken for complete */
    tokvox_token_writer_destroy(w);
    fflush(f);
    bytes b = file_bytes(f);
    tokvox_npy_info info;
    int32_t *values = NULL;
    ck_assert_int_ne(parse(&b, &info, &values, detail, sizeof detail), TOKVOX_OK);
    free(b.data);
    fclose(f);
}
END_TEST

/* ---- the other modes ------------------------------------------------------------------- */

static int stream_encode(const char *in, const char *out, unsigned seed)
{
    char detail[1024] = "";
    tokvox_model *m = tokvox_model_load(NULL, NULL, detail, sizeof detail);
    if (!m)
        return fprintf(stderr, "stream-encode: %s\n", detail), 1;
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    float *pcm = NULL;
    size_t n = 0, frames = 0;
    uint16_t *codes = NULL;
    int32_t *values = NULL;
    size_t count = 0;
    int err = tokvox_audio_read(in, info.sample_rate, &pcm, &n, NULL, detail, sizeof detail);
    if (!err)
        err = encode_chunked(m, pcm, n, seed, &codes, &frames);
    if (!err)
        err = tokvox_layout_apply(0, codes, frames, info.num_codebooks, info.codebook_size,
                                  &values, &count);
    FILE *f = err ? NULL : fopen(out, "wb");
    uint64_t shape[2] = {frames, (uint64_t)info.num_codebooks};
    if (f)
        err = tokvox_npy_write(f, tokvox_layout_dtype(0, info.num_codebooks,
                                                      info.codebook_size), 2, shape, values,
                               detail, sizeof detail);
    if (!f || fclose(f))
        err = err ? err : TOKVOX_ERR_IO;
    if (err)
        fprintf(stderr, "stream-encode: %s\n", detail[0] ? detail : tokvox_strerror(err));
    free(pcm);
    free(codes);
    free(values);
    tokvox_model_destroy(m);
    return err != 0;
}

static void save(const char *dir, const char *name, const bytes *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(b->data, 1, b->size, f);
    fclose(f);
    free(b->data);
}

START_TEST(write_corpus)
{
    const char *dir = getenv("TOKVOX_NPY_CORPUS_DIR");
    int32_t v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (i * 389) % 1025;
    bytes b = write_image(TOKVOX_NPY_INT16, 2, 3, 8, v);
    save(dir, "valid-i2-3x8.npy", &b);
    b = write_image(TOKVOX_NPY_INT32, 1, 24, 1, v);
    save(dir, "valid-i4-flat24.npy", &b);
    b = write_image(TOKVOX_NPY_INT64, 2, 4, 2, v);
    save(dir, "valid-i8-4x2.npy", &b);
    int16_t d[6] = {1, 2, 3, 4, 5, 6};
    b = raw_image(2, "{'shape': (2, 3,), 'descr': '<i2', 'fortran_order': False}", 64, d,
                  sizeof d);
    save(dir, "valid-v2-reordered.npy", &b);
    b = raw_image(1, "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }", 64, d,
                  sizeof d);
    save(dir, "bad-bigendian-fortran.npy", &b);
    b = write_image(TOKVOX_NPY_INT16, 2, 3, 8, v);
    b.size -= 5;
    save(dir, "bad-truncated.npy", &b);
}
END_TEST

static Suite *tokens_suite(void)
{
    Suite *suite = suite_create("tokens");
    TCase *format = tcase_create("format");
    tcase_add_test(format, header_is_numpys);
    tcase_add_test(format, round_trips);
    tcase_add_test(format, file_round_trip_and_header_only);
    tcase_add_test(format, numpy_variants_are_read);
    suite_add_tcase(suite, format);
    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, malformed_headers_are_refused);
    tcase_add_test(bad, bad_preambles_are_refused);
    tcase_add_test(bad, huge_declared_shapes_are_refused);
    tcase_add_test(bad, every_truncation_is_an_error);
    tcase_add_test(bad, int64_outside_int32_is_refused);
    suite_add_tcase(suite, bad);
    TCase *layouts = tcase_create("layouts");
    tcase_add_test(layouts, layouts_invert);
    tcase_add_test(layouts, layout_shapes_and_ids);
    tcase_add_test(layouts, bad_codes_are_named);
    tcase_add_test(layouts, token_writer_equals_whole);
    tcase_add_test(layouts, token_writer_refusals);
    tcase_add_test(layouts, token_reader_equals_whole);
    tcase_add_test(layouts, token_reader_fails_where_the_file_does);
    suite_add_tcase(suite, layouts);
    TCase *stream = tcase_create("streaming");
    tcase_add_test(stream, streaming_equals_offline);
    suite_add_tcase(suite, stream);
    return suite;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "stream-encode"))
        return stream_encode(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
    if (argc != 1)
        return fprintf(stderr, "usage: test_tokens [stream-encode IN OUT.npy SEED]\n"), 2;
    Suite *suite;
    if (getenv("TOKVOX_NPY_CORPUS_DIR")) {
        suite = suite_create("tokens corpus");
        TCase *tc = tcase_create("corpus");
        tcase_add_test(tc, write_corpus);
        suite_add_tcase(suite, tc);
    } else {
        g_seed = tu_seed();
        suite = tokens_suite();
    }
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failures = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failures != 0;
}
