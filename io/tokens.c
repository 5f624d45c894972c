/* tokvox io: .npy token files and token layouts (tokvox/tokens.h). */
#include "audio_internal.h"
#include "tokvox/tokens.h"
#include "tokvox/tokvox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    MAGIC_LEN = 6,
    ALIGN = 64,              /* numpy aligns the data to 64 bytes */
    GROWTH_DIGITS = 21,      /* numpy's spare room after the dict, see format_header */
    MAX_STRING = 32,         /* longest descr we look at */
    MAX_CODEBOOKS = 4096,    /* far above any model; stops absurd widths early */
};
static const char npy_magic[MAGIC_LEN] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header parser ---------------------------------------------------------
 * A recursive-descent reader of exactly the dict numpy writes: string keys,
 * a string, a bool and a tuple of integers as values.  It never evaluates
 * anything, never reads past end, and rejects what it does not know. */

typedef struct cursor {
    const char *p, *end;
    const char *name;
    char *detail;
    size_t detail_size;
} cursor;

static int fail(cursor *c, int err, const char *what)
{
    tokvox_io_detail(c->detail, c->detail_size, "%s: .npy header: %s", c->name, what);
    return err;
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int accept_char(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes, at most MAX_STRING characters. */
static int parse_string(cursor *c, char *out)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return fail(c, TOKVOX_ERR_FORMAT, "expected a quoted string");
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n == MAX_STRING || (unsigned char)*c->p < 0x20 ||
            (unsigned char)*c->p > 0x7e)
            return fail(c, TOKVOX_ERR_FORMAT, "unsupported string");
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return fail(c, TOKVOX_ERR_FORMAT, "unterminated string");
    c->p++;
    out[n] = '\0';
    return TOKVOX_OK;
}

static int parse_descr(cursor *c, int *dtype)
{
    char s[MAX_STRING + 1];
    int err = parse_string(c, s);
    if (err)
        return err;
    if (!strcmp(s, "<i2"))
        *dtype = TOKVOX_NPY_INT16;
    else if (!strcmp(s, "<i4"))
        *dtype = TOKVOX_NPY_INT32;
    else if (!strcmp(s, "<i8"))
        *dtype = TOKVOX_NPY_INT64;
    else {
        char msg[128];
        snprintf(msg, sizeof msg, "dtype '%s' is not a token type (want '<i2', '<i4' or '<i8')",
                 s);
        return fail(c, TOKVOX_ERR_UNSUPPORTED, msg);
    }
    return TOKVOX_OK;
}

static int parse_bool(cursor *c, int *value)
{
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && !memcmp(c->p, "True", 4)) {
        c->p += 4;
        *value = 1;
    } else if (left >= 5 && !memcmp(c->p, "False", 5)) {
        c->p += 5;
        *value = 0;
    } else {
        return fail(c, TOKVOX_ERR_FORMAT, "fortran_order is neither True nor False");
    }
    return TOKVOX_OK;
}

/* A non-negative decimal below 2^62: larger is never a real array. */
static int parse_dim(cursor *c, uint64_t *v)
{
    skip_space(c);
    uint64_t x = 0;
    int digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (++digits > 19 || (x = x * 10 + (uint64_t)(*c->p - '0')) >= ((uint64_t)1 << 62))
            return fail(c, TOKVOX_ERR_FORMAT, "absurd dimension in shape");
        c->p++;
    }
    if (!digits)
        return fail(c, TOKVOX_ERR_FORMAT, "shape is not a tuple of non-negative integers");
    *v = x;
    return TOKVOX_OK;
}

/* "()", "(n,)", "(n, m)" or "(n, m,)"; more than two dimensions is refused. */
static int parse_shape(cursor *c, int *ndim, uint64_t shape[2])
{
    if (!accept_char(c, '('))
        return fail(c, TOKVOX_ERR_FORMAT, "shape is not a tuple");
    *ndim = 0;
    while (!accept_char(c, ')')) {
        if (*ndim == 2)
            return fail(c, TOKVOX_ERR_UNSUPPORTED, "more than 2 dimensions");
        int err = parse_dim(c, &shape[*ndim]);
        if (err)
            return err;
        ++*ndim;
        if (accept_char(c, ','))
            continue;
        if (!accept_char(c, ')'))
            return fail(c, TOKVOX_ERR_FORMAT, "malformed shape tuple");
        if (*ndim == 1)
            return fail(c, TOKVOX_ERR_FORMAT, "shape (n) is not a tuple; numpy writes (n,)");
        break;
    }
    return TOKVOX_OK;
}

typedef struct dict_values {
    int dtype, fortran, ndim;
    uint64_t shape[2];
    unsigned seen; /* bit per key */
} dict_values;

static int parse_entry(cursor *c, dict_values *v)
{
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    char key[MAX_STRING + 1];
    int err = parse_string(c, key);
    if (err)
        return err;
    unsigned which = 0;
    while (which < 3 && strcmp(key, keys[which]))
        which++;
    if (which == 3)
        return fail(c, TOKVOX_ERR_FORMAT, "unknown key in the header dict");
    if (v->seen & (1u << which))
        return fail(c, TOKVOX_ERR_FORMAT, "duplicate key in the header dict");
    v->seen |= 1u << which;
    if (!accept_char(c, ':'))
        return fail(c, TOKVOX_ERR_FORMAT, "expected ':' after a key");
    if (which == 0)
        return parse_descr(c, &v->dtype);
    if (which == 1)
        return parse_bool(c, &v->fortran);
    return parse_shape(c, &v->ndim, v->shape);
}

static int parse_dict(cursor *c, dict_values *v)
{
    memset(v, 0, sizeof *v);
    if (!accept_char(c, '{'))
        return fail(c, TOKVOX_ERR_FORMAT, "header is not a dict");
    while (!accept_char(c, '}')) {
        int err = parse_entry(c, v);
        if (err)
            return err;
        if (!accept_char(c, ',') && !(skip_space(c), c->p < c->end && *c->p == '}'))
            return fail(c, TOKVOX_ERR_FORMAT, "expected ',' or '}' in the header dict");
    }
    skip_space(c); /* the padding and the final newline */
    if (c->p != c->end)
        return fail(c, TOKVOX_ERR_FORMAT, "bytes after the header dict");
    if (v->seen != 7)
        return fail(c, TOKVOX_ERR_FORMAT, "header lacks descr, fortran_order or shape");
    if (v->fortran)
        return fail(c, TOKVOX_ERR_UNSUPPORTED, "Fortran order (want C order)");
    if (v->ndim == 0)
        return fail(c, TOKVOX_ERR_UNSUPPORTED, "a 0-D array (want 1-D or 2-D)");
    return TOKVOX_OK;
}

/* Magic, version and header length; *dict and *dict_len bound the dict. */
static int parse_preamble(cursor *c, const unsigned char *b, size_t len, size_t *dict_at,
                          size_t *dict_len)
{
    if (len < MAGIC_LEN + 2 || memcmp(b, npy_magic, MAGIC_LEN))
        return len < MAGIC_LEN + 2 && !memcmp(b, npy_magic, len < MAGIC_LEN ? len : MAGIC_LEN)
                   ? fail(c, TOKVOX_ERR_TRUNCATED, "file ends inside the magic")
                   : fail(c, TOKVOX_ERR_FORMAT, "not a .npy file (no \\x93NUMPY magic)");
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "format version %d.%d (we read 1.0, 2.0, 3.0)", major, minor);
        return fail(c, TOKVOX_ERR_VERSION, msg);
    }
    size_t len_bytes = major == 1 ? 2 : 4;
    if (len < MAGIC_LEN + 2 + len_bytes)
        return fail(c, TOKVOX_ERR_TRUNCATED, "file ends inside the header length");
    uint64_t hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
    if (len_bytes == 4)
        hlen |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    if (hlen > TOKVOX_NPY_MAX_HEADER)
        return fail(c, TOKVOX_ERR_FORMAT, "header length is absurd");
    *dict_at = MAGIC_LEN + 2 + len_bytes;
    *dict_len = (size_t)hlen;
    if (len - *dict_at < *dict_len)
        return fail(c, TOKVOX_ERR_TRUNCATED, "file ends inside the header");
    return TOKVOX_OK;
}

/* The shape must account for exactly the bytes after the header. */
static int check_size(cursor *c, tokvox_npy_info *info, uint64_t file_size)
{
    uint64_t d1 = info->ndim == 2 ? info->shape[1] : 1;
    uint64_t count = info->shape[0];
    if (d1 && count > UINT64_MAX / d1)
        return fail(c, TOKVOX_ERR_FORMAT, "shape overflows");
    count *= d1;
    if (count > (UINT64_MAX / 8) || count * (uint64_t)info->dtype > SIZE_MAX / 2)
        return fail(c, TOKVOX_ERR_FORMAT, "shape is absurdly large");
    uint64_t need = count * (uint64_t)info->dtype;
    uint64_t have = file_size - info->data_offset;
    char msg[160];
    if (have != need) {
        snprintf(msg, sizeof msg,
                 "shape needs %" PRIu64 " bytes of data, the file has %" PRIu64, need, have);
        return fail(c, have < need ? TOKVOX_ERR_TRUNCATED : TOKVOX_ERR_FORMAT, msg);
    }
    info->count = count;
    return TOKVOX_OK;
}

int tokvox_npy_parse_header(const void *buf, size_t len, uint64_t file_size, const char *name,
                            tokvox_npy_info *info, char *detail, size_t detail_size)
{
    cursor c = {NULL, NULL, name ? name : "npy", detail, detail_size};
    if (!buf || !info || len > file_size)
        return fail(&c, TOKVOX_ERR_INVALID_ARGUMENT, "bad arguments");
    memset(info, 0, sizeof *info);
    size_t at = 0, dict_len = 0;
    int err = parse_preamble(&c, buf, len, &at, &dict_len);
    if (err)
        return err;
    c.p = (const char *)buf + at;
    c.end = c.p + dict_len;
    dict_values v;
    if ((err = parse_dict(&c, &v)))
        return err;
    info->dtype = v.dtype;
    info->ndim = v.ndim;
    info->shape[0] = v.shape[0];
    info->shape[1] = v.ndim == 2 ? v.shape[1] : 1;
    info->data_offset = at + dict_len;
    return check_size(&c, info, file_size);
}

/* ---- whole arrays ---------------------------------------------------------- */

static int64_t load_le(const unsigned char *p, int size)
{
    uint64_t u = 0;
    for (int i = size - 1; i >= 0; i--)
        u = u << 8 | p[i];
    if (size < 8 && (u >> (size * 8 - 1)) & 1)
        u |= ~(uint64_t)0 << (size * 8); /* sign-extend */
    return (int64_t)u;
}

int tokvox_npy_parse(const void *data, size_t size, const char *name, tokvox_npy_info *info,
                     int32_t **values, char *detail, size_t detail_size)
{
    *values = NULL;
    int err = tokvox_npy_parse_header(data, size, size, name, info, detail, detail_size);
    if (err || info->count == 0)
        return err;
    int32_t *out = malloc(sizeof *out * (size_t)info->count);
    if (!out) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory for %" PRIu64 " elements",
                         name, info->count);
        return TOKVOX_ERR_NO_MEMORY;
    }
    const unsigned char *p = (const unsigned char *)data + info->data_offset;
    for (size_t i = 0; i < (size_t)info->count; i++, p += info->dtype) {
        int64_t v = load_le(p, info->dtype);
        if (v < INT32_MIN || v > INT32_MAX) {
            tokvox_io_detail(detail, detail_size,
                             "%s: element %zu = %" PRId64 " is out of range for a token", name,
                             i, v);
            free(out);
            return TOKVOX_ERR_FORMAT;
        }
        out[i] = (int32_t)v;
    }
    *values = out;
    return TOKVOX_OK;
}

/* Opens path as a regular file; *size from fstat. */
static int open_regular(const char *path, uint64_t *size, char *detail, size_t detail_size)
{
    char eb[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        tokvox_io_detail(detail, detail_size, "%s: %s", path,
                         tokvox_io_strerror(errno, eb, sizeof eb));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        tokvox_io_detail(detail, detail_size, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

/* Reads exactly n bytes; TOKVOX_ERR_TRUNCATED if the file shrank. */
static int read_exact(int fd, void *buf, size_t n, const char *path, char *detail,
                      size_t detail_size)
{
    char eb[128];
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            tokvox_io_detail(detail, detail_size, "%s: %s", path,
                             r ? tokvox_io_strerror(errno, eb, sizeof eb) : "file ends early");
            return r ? TOKVOX_ERR_IO : TOKVOX_ERR_TRUNCATED;
        }
        got += (size_t)r;
    }
    return TOKVOX_OK;
}

/* Reads and checks the header of the open file fd of size bytes. */
static int read_header_fd(int fd, uint64_t size, const char *path, tokvox_npy_info *info,
                          char *detail, size_t detail_size)
{
    size_t want = 12 + TOKVOX_NPY_MAX_HEADER;
    if (size < want)
        want = (size_t)size;
    unsigned char *buf = malloc(want ? want : 1);
    if (!buf) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        return TOKVOX_ERR_NO_MEMORY;
    }
    int err = read_exact(fd, buf, want, path, detail, detail_size);
    if (!err)
        err = tokvox_npy_parse_header(buf, want, size, path, info, detail, detail_size);
    free(buf);
    return err;
}

int tokvox_npy_read(const char *path, tokvox_npy_info *info, int32_t **values, char *detail,
                    size_t detail_size)
{
    uint64_t size = 0;
    *values = NULL;
    int fd = open_regular(path, &size, detail, detail_size);
    if (fd < 0)
        return TOKVOX_ERR_IO;
    /* the header first, so a lying header never costs a big allocation */
    int err = read_header_fd(fd, size, path, info, detail, detail_size);
    void *buf = err ? NULL : malloc(size ? (size_t)size : 1);
    if (!err && !buf) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        err = TOKVOX_ERR_NO_MEMORY;
    }
    if (!err && lseek(fd, 0, SEEK_SET) != 0) {
        tokvox_io_detail(detail, detail_size, "%s: cannot seek", path);
        err = TOKVOX_ERR_IO;
    }
    if (!err)
        err = read_exact(fd, buf, (size_t)size, path, detail, detail_size);
    close(fd);
    if (!err)
        err = tokvox_npy_parse(buf, (size_t)size, path, info, values, detail, detail_size);
    free(buf);
    return err;
}

int tokvox_npy_read_header(const char *path, tokvox_npy_info *info, char *detail,
                           size_t detail_size)
{
    uint64_t size = 0;
    int fd = open_regular(path, &size, detail, detail_size);
    if (fd < 0)
        return TOKVOX_ERR_IO;
    int err = read_header_fd(fd, size, path, info, detail, detail_size);
    close(fd);
    return err;
}

/* ---- writer ------------------------------------------------------------------ */

static const char *descr_of(int dtype)
{
    switch (dtype) {
    case TOKVOX_NPY_INT16: return "<i2";
    case TOKVOX_NPY_INT32: return "<i4";
    case TOKVOX_NPY_INT64: return "<i8";
    default: return NULL;
    }
}

size_t tokvox_npy_format_header(char *buf, size_t size, int dtype, int ndim,
                                const uint64_t shape[2])
{
    const char *descr = descr_of(dtype);
    if (!buf || !descr || (ndim != 1 && ndim != 2))
        return 0;
    char dict[160], dims[64];
    if (ndim == 1)
        snprintf(dims, sizeof dims, "(%" PRIu64 ",)", shape[0]);
    else
        snprintf(dims, sizeof dims, "(%" PRIu64 ", %" PRIu64 ")", shape[0], shape[1]);
    /* numpy.save leaves room for the first dimension to grow to 21 digits
     * (so a file can be appended to in place); doing the same makes our
     * files byte-identical to numpy's. */
    char first[32];
    int first_len = snprintf(first, sizeof first, "%" PRIu64, shape[0]);
    int dict_len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, "
                            "'shape': %s, }%*s", descr, dims, GROWTH_DIGITS - first_len, "");
    size_t hlen = (size_t)dict_len + 1; /* with the final newline */
    size_t pad = ALIGN - (MAGIC_LEN + 2 + 2 + hlen) % ALIGN;
    size_t total = MAGIC_LEN + 2 + 2 + hlen + pad;
    if (total > size)
        return 0;
    memcpy(buf, npy_magic, MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)((hlen + pad) & 0xff);
    buf[9] = (char)((hlen + pad) >> 8);
    memcpy(buf + 10, dict, (size_t)dict_len);
    memset(buf + 10 + dict_len, ' ', pad);
    buf[total - 1] = '\n';
    return total;
}

static int fits(int dtype, const int32_t *values, size_t count)
{
    if (dtype != TOKVOX_NPY_INT16)
        return 1;
    for (size_t i = 0; i < count; i++)
        if (values[i] < INT16_MIN || values[i] > INT16_MAX)
            return 0;
    return 1;
}

int tokvox_npy_write_values(FILE *fp, int dtype, const int32_t *values, size_t count,
                            char *detail, size_t detail_size)
{
    if (!fp || !descr_of(dtype) || (count && !values) || !fits(dtype, values, count)) {
        tokvox_io_detail(detail, detail_size, "npy write: bad arguments or values too wide");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    unsigned char chunk[4096 * 8];
    int ok = 1;
    for (size_t i = 0; ok && i < count;) {
        size_t n = 0;
        for (; i < count && n + (size_t)dtype <= sizeof chunk; i++) {
            uint64_t u = (uint64_t)(int64_t)values[i];
            for (int b = 0; b < dtype; b++)
                chunk[n++] = (unsigned char)(u >> (8 * b));
        }
        ok = fwrite(chunk, 1, n, fp) == n;
    }
    if (!ok) {
        char eb[128];
        tokvox_io_detail(detail, detail_size, "npy write: %s",
                         tokvox_io_strerror(errno ? errno : EIO, eb, sizeof eb));
        return TOKVOX_ERR_IO;
    }
    return TOKVOX_OK;
}

int tokvox_npy_write(FILE *fp, int dtype, int ndim, const uint64_t shape[2],
                     const int32_t *values, char *detail, size_t detail_size)
{
    char header[TOKVOX_NPY_WRITE_HEADER_MAX];
    size_t hlen = fp ? tokvox_npy_format_header(header, sizeof header, dtype, ndim, shape) : 0;
    size_t count = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    if (!hlen || (count && !values) || !fits(dtype, values, count)) {
        tokvox_io_detail(detail, detail_size, "npy write: bad arguments or values too wide");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (fwrite(header, 1, hlen, fp) != hlen) {
        char eb[128];
        tokvox_io_detail(detail, detail_size, "npy write: %s",
                         tokvox_io_strerror(errno ? errno : EIO, eb, sizeof eb));
        return TOKVOX_ERR_IO;
    }
    return tokvox_npy_write_values(fp, dtype, values, count, detail, detail_size);
}

/* ---- layouts ------------------------------------------------------------------ */

static const char *const layout_names[] = {"codebooks", "flat", "delay"};

const char *tokvox_layout_name(int layout)
{
    return layout >= 0 && layout < 3 ? layout_names[layout] : NULL;
}

int tokvox_layout_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, layout_names[i]))
            return i;
    return -1;
}

void tokvox_layout_shape(int layout, uint64_t frames, int k, int *ndim, uint64_t shape[2])
{
    *ndim = layout == TOKVOX_LAYOUT_FLAT ? 1 : 2;
    shape[0] = layout == TOKVOX_LAYOUT_FLAT    ? frames * (uint64_t)k
               : layout == TOKVOX_LAYOUT_DELAY ? frames + (uint64_t)k - 1
                                               : frames;
    shape[1] = layout == TOKVOX_LAYOUT_FLAT ? 1 : (uint64_t)k;
}

int tokvox_layout_dtype(int layout, int k, int codebook_size)
{
    int64_t max = layout == TOKVOX_LAYOUT_FLAT    ? (int64_t)k * codebook_size - 1
                  : layout == TOKVOX_LAYOUT_DELAY ? codebook_size /* the pad id */
                                                  : codebook_size - 1;
    return max <= INT16_MAX ? TOKVOX_NPY_INT16 : TOKVOX_NPY_INT32;
}

/* Rows [r0, r1) of a layout's array (k values each, for the flat layout
 * too) into out, from the code frames [first, end) of the stream held at
 * codes[0..]: every frame a row needs (frame r, or frames r-k+1..r for the
 * delay layout) is either there or outside [0, end), a delay pad.  Whole
 * arrays and the streaming writer both build their rows here. */
static void layout_rows(int layout, const uint16_t *codes, size_t first, size_t end, size_t r0,
                        size_t r1, size_t kk, int codebook_size, int32_t *out)
{
    for (size_t r = r0; r < r1; r++) {
        for (size_t j = 0; j < kk; j++) {
            int32_t v;
            if (layout == TOKVOX_LAYOUT_DELAY)
                v = r >= j && r - j < end ? codes[(r - j - first) * kk + j] : codebook_size;
            else
                v = codes[(r - first) * kk + j] +
                    (layout == TOKVOX_LAYOUT_FLAT ? (int32_t)j * codebook_size : 0);
            *out++ = v;
        }
    }
}

static int layout_args_ok(int layout, int k, int codebook_size)
{
    return tokvox_layout_name(layout) && k >= 1 && k <= MAX_CODEBOOKS && codebook_size >= 1 &&
           codebook_size <= 65536;
}

static int codes_in_range(const uint16_t *codes, size_t count, int codebook_size)
{
    for (size_t i = 0; i < count; i++)
        if (codes[i] >= codebook_size)
            return 0;
    return 1;
}

int tokvox_layout_apply(int layout, const uint16_t *codes, size_t frames, int k,
                        int codebook_size, int32_t **values, size_t *count)
{
    *values = NULL;
    *count = 0;
    if (!layout_args_ok(layout, k, codebook_size) || (frames && !codes) ||
        frames > SIZE_MAX / 8 / MAX_CODEBOOKS)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t kk = (size_t)k;
    if (!codes_in_range(codes, frames * kk, codebook_size))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t rows = layout == TOKVOX_LAYOUT_DELAY ? frames + kk - 1 : frames;
    size_t n = rows * kk;
    int32_t *out = malloc(sizeof *out * (n ? n : 1));
    if (!out)
        return TOKVOX_ERR_NO_MEMORY;
    layout_rows(layout, codes, 0, frames, 0, rows, kk, codebook_size, out);
    *values = out;
    *count = n;
    return TOKVOX_OK;
}

/* ---- the streaming token writer ----------------------------------------------- */

struct tokvox_token_writer {
    FILE *fp;
    long start;          /* where the header begins in fp */
    size_t header_len;
    int layout, dtype, codebook_size;
    size_t kk;
    uint64_t frames;     /* code frames written */
    uint16_t *window;    /* the last kk - 1 frames (delay layout), then a block's */
    size_t window_cap;   /* frames window holds room for */
    int32_t *values;     /* one block's rows */
    size_t values_cap;   /* rows */
};

/* The header for `frames` code frames at fp's start; its length never
 * depends on the frame count (format_header leaves numpy's room for 21
 * digits), so finish rewrites it in place. */
static size_t token_header(const tokvox_token_writer *w, uint64_t frames, char *buf, size_t size)
{
    int ndim;
    uint64_t shape[2];
    tokvox_layout_shape(w->layout, frames, (int)w->kk, &ndim, shape);
    return tokvox_npy_format_header(buf, size, w->dtype, ndim, shape);
}

static int token_io_error(char *detail, size_t detail_size, const char *what)
{
    char eb[128];
    tokvox_io_detail(detail, detail_size, "npy write: %s: %s", what,
                     tokvox_io_strerror(errno ? errno : EIO, eb, sizeof eb));
    return TOKVOX_ERR_IO;
}

tokvox_token_writer *tokvox_token_writer_open(FILE *fp, int layout, int k, int codebook_size,
                                              int dtype, int *error, char *detail,
                                              size_t detail_size)
{
    int dummy;
    if (!error)
        error = &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (!fp || !layout_args_ok(layout, k, codebook_size) || !descr_of(dtype) ||
        tokvox_layout_dtype(layout, k, codebook_size) > dtype) {
        tokvox_io_detail(detail, detail_size, "npy write: bad layout, codebooks or dtype");
        return NULL;
    }
    tokvox_token_writer *w = calloc(1, sizeof *w);
    if (!w) {
        *error = TOKVOX_ERR_NO_MEMORY;
        tokvox_io_detail(detail, detail_size, "npy write: out of memory");
        return NULL;
    }
    *w = (tokvox_token_writer){.fp = fp, .layout = layout, .dtype = dtype,
                               .codebook_size = codebook_size, .kk = (size_t)k};
    char header[TOKVOX_NPY_WRITE_HEADER_MAX];
    errno = 0;
    w->header_len = token_header(w, 0, header, sizeof header);
    /* the header is rewritten at the end: fp must seek (a pipe cannot) */
    if ((w->start = ftell(fp)) < 0 || fseek(fp, w->start, SEEK_SET) != 0) {
        *error = token_io_error(detail, detail_size, "the output cannot seek (a pipe?)");
    } else if (fwrite(header, 1, w->header_len, fp) != w->header_len) {
        *error = token_io_error(detail, detail_size, "header");
    } else {
        *error = TOKVOX_OK;
        return w;
    }
    free(w);
    return NULL;
}

/* Room for `frames` frames in window and `rows` rows in values. */
static int token_room(tokvox_token_writer *w, size_t frames, size_t rows)
{
    if (frames > w->window_cap) {
        uint16_t *p = realloc(w->window, sizeof *p * frames * w->kk);
        if (!p)
            return TOKVOX_ERR_NO_MEMORY;
        w->window = p;
        w->window_cap = frames;
    }
    if (rows > w->values_cap) {
        int32_t *p = realloc(w->values, sizeof *p * rows * w->kk);
        if (!p)
            return TOKVOX_ERR_NO_MEMORY;
        w->values = p;
        w->values_cap = rows;
    }
    return TOKVOX_OK;
}

/* Rows [r0, r1) from window, which holds frames [first, first + held);
 * frames at or after `end` are delay pads. */
static int token_put_rows(tokvox_token_writer *w, uint64_t first, uint64_t end, uint64_t r0,
                          uint64_t r1, char *detail, size_t detail_size)
{
    size_t rows = (size_t)(r1 - r0);
    layout_rows(w->layout, w->window, (size_t)first, (size_t)end, (size_t)r0, (size_t)r1, w->kk,
                w->codebook_size, w->values);
    return tokvox_npy_write_values(w->fp, w->dtype, w->values, rows * w->kk, detail,
                                   detail_size);
}

int tokvox_token_writer_write(tokvox_token_writer *w, const uint16_t *codes, size_t frames,
                              char *detail, size_t detail_size)
{
    if (!w || (frames && !codes) || frames > SIZE_MAX / 8 / MAX_CODEBOOKS ||
        !codes_in_range(codes, frames * w->kk, w->codebook_size)) {
        tokvox_io_detail(detail, detail_size, "npy write: bad codes");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (!frames)
        return TOKVOX_OK;
    /* the delay layout's rows reach back kk - 1 frames: the window keeps
     * them before this block's */
    size_t back = w->layout == TOKVOX_LAYOUT_DELAY ? w->kk - 1 : 0;
    size_t held = w->frames < back ? (size_t)w->frames : back;
    if (token_room(w, held + frames, frames)) {
        tokvox_io_detail(detail, detail_size, "npy write: out of memory");
        return TOKVOX_ERR_NO_MEMORY;
    }
    memcpy(w->window + held * w->kk, codes, sizeof *codes * frames * w->kk);
    uint64_t first = w->frames - held, end = w->frames + frames;
    int err = token_put_rows(w, first, end, w->frames, end, detail, detail_size);
    if (err)
        return err;
    w->frames = end;
    size_t keep = (size_t)(end - first) < back ? (size_t)(end - first) : back;
    memmove(w->window, w->window + (held + frames - keep) * w->kk, sizeof *codes * keep * w->kk);
    return TOKVOX_OK;
}

int tokvox_token_writer_finish(tokvox_token_writer *w, uint64_t *frames, char *detail,
                               size_t detail_size)
{
    if (!w)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    int err = TOKVOX_OK;
    if (w->layout == TOKVOX_LAYOUT_DELAY && w->kk > 1) {
        /* the last kk - 1 rows: the held frames' later codebooks, then pads */
        size_t back = w->kk - 1;
        size_t held = w->frames < back ? (size_t)w->frames : back;
        if (token_room(w, held ? held : 1, back))
            err = TOKVOX_ERR_NO_MEMORY;
        else
            err = token_put_rows(w, w->frames - held, w->frames, w->frames, w->frames + back,
                                 detail, detail_size);
        if (err == TOKVOX_ERR_NO_MEMORY)
            tokvox_io_detail(detail, detail_size, "npy write: out of memory");
    }
    char header[TOKVOX_NPY_WRITE_HEADER_MAX];
    errno = 0;
    if (!err && token_header(w, w->frames, header, sizeof header) != w->header_len) {
        tokvox_io_detail(detail, detail_size, "npy write: %llu frames do not fit the header",
                         (unsigned long long)w->frames);
        err = TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (!err && (fflush(w->fp) != 0 || fseek(w->fp, w->start, SEEK_SET) != 0 ||
                 fwrite(header, 1, w->header_len, w->fp) != w->header_len ||
                 fseek(w->fp, 0, SEEK_END) != 0 || fflush(w->fp) != 0))
        err = token_io_error(detail, detail_size, "header");
    if (frames)
        *frames = w->frames;
    tokvox_token_writer_destroy(w);
    return err;
}

void tokvox_token_writer_destroy(tokvox_token_writer *w)
{
    if (!w)
        return;
    free(w->window);
    free(w->values);
    free(w);
}

typedef struct invert_ctx {
    const char *name;
    char *detail;
    size_t detail_size;
} invert_ctx;

static int invert_fail(const invert_ctx *x, const char *fmt, unsigned long long a,
                       unsigned long long b, long long v, long long lo, long long hi)
{
    char what[96];
    snprintf(what, sizeof what, fmt, a, b);
    tokvox_io_detail(x->detail, x->detail_size, "%s: %s = %lld, want %lld..%lld", x->name, what,
                     v, lo, hi);
    return TOKVOX_ERR_FORMAT;
}

/* Checks the array's shape for the layout; sets *frames and *k. */
static int invert_shape(int layout, const tokvox_npy_info *info, int *k, size_t *frames,
                        const invert_ctx *x)
{
    const char *lname = tokvox_layout_name(layout);
    if (layout == TOKVOX_LAYOUT_FLAT) {
        if (info->ndim != 1 || *k < 1 || *k > MAX_CODEBOOKS || info->count % (uint64_t)*k) {
            tokvox_io_detail(x->detail, x->detail_size,
                             "%s: a flat layout wants a 1-D array whose length is a multiple "
                             "of the %d codebooks", x->name, *k);
            return TOKVOX_ERR_FORMAT;
        }
        *frames = (size_t)(info->count / (uint64_t)*k);
        return TOKVOX_OK;
    }
    uint64_t width = info->shape[1];
    if (info->ndim != 2 || width < 1 || width > MAX_CODEBOOKS || (*k && (uint64_t)*k != width) ||
        (layout == TOKVOX_LAYOUT_DELAY && info->shape[0] < width - 1)) {
        tokvox_io_detail(x->detail, x->detail_size,
                         "%s: shape does not fit the %s layout (want 2-D [%s, %s])", x->name,
                         lname, layout == TOKVOX_LAYOUT_DELAY ? "frames+K-1" : "frames",
                         *k ? "K as given" : "K");
        return TOKVOX_ERR_FORMAT;
    }
    *k = (int)width;
    *frames = (size_t)info->shape[0] - (layout == TOKVOX_LAYOUT_DELAY ? (size_t)width - 1 : 0);
    return TOKVOX_OK;
}

/* Rows [r0, r1) of an array of `frames` code frames (values[0] is row r0's
 * first element).  Element [r][j] belongs to code frame t = r - shift(j)
 * and goes to codes[(t - t0) * k + j]: t0 is the first frame the caller's
 * buffer holds (0 for a whole array, the first unreturned frame for a
 * reader).  Every value is checked, pads included. */
static int invert_rows(int layout, const int32_t *values, size_t r0, size_t r1, size_t frames,
                       int k, int cs, uint16_t *codes, size_t t0, const invert_ctx *x)
{
    size_t kk = (size_t)k;
    for (size_t r = r0; r < r1; r++) {
        for (size_t j = 0; j < kk; j++) {
            int64_t v = values[(r - r0) * kk + j];
            int pad = layout == TOKVOX_LAYOUT_DELAY && (r < j || r - j >= frames);
            int64_t lo = layout == TOKVOX_LAYOUT_FLAT ? (int64_t)j * cs : 0;
            if (pad && v != cs)
                return invert_fail(x, "element [%llu, %llu] (a delay-pattern pad)", r, j, v,
                                   cs, cs);
            if (pad)
                continue;
            if (v < lo || v >= lo + cs)
                return layout == TOKVOX_LAYOUT_FLAT
                           ? invert_fail(x, "element %llu (codebook %llu)", r * kk + j, j, v,
                                         lo, lo + cs - 1)
                           : invert_fail(x, "element [%llu, %llu]", r, j, v, 0, cs - 1);
            size_t t = layout == TOKVOX_LAYOUT_DELAY ? r - j : r;
            codes[(t - t0) * kk + j] = (uint16_t)(v - lo);
        }
    }
    return TOKVOX_OK;
}

/* Rows of the array: a delay array has K-1 more than it has frames. */
static size_t rows_of(int layout, size_t frames, int k)
{
    return layout == TOKVOX_LAYOUT_DELAY ? frames + (size_t)k - 1 : frames;
}

int tokvox_layout_invert(int layout, const tokvox_npy_info *info, const int32_t *values, int k,
                         int codebook_size, uint16_t **codes, size_t *frames, const char *name,
                         char *detail, size_t detail_size)
{
    invert_ctx x = {name ? name : "npy", detail, detail_size};
    *codes = NULL;
    *frames = 0;
    if (!tokvox_layout_name(layout) || !info || codebook_size < 1 || codebook_size > 65536 ||
        (info->count && !values)) {
        tokvox_io_detail(detail, detail_size, "%s: bad layout arguments", x.name);
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    size_t n = 0;
    int err = invert_shape(layout, info, &k, &n, &x);
    if (err)
        return err;
    /* no frames: nothing to allocate, but a delay array's pads are checked */
    uint16_t *out = n ? malloc(sizeof *out * n * (size_t)k) : NULL;
    if (n && !out) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", x.name);
        return TOKVOX_ERR_NO_MEMORY;
    }
    if ((err = invert_rows(layout, values, 0, rows_of(layout, n, k), n, k, codebook_size, out, 0,
                           &x))) {
        free(out);
        return err;
    }
    *codes = out;
    *frames = n;
    return TOKVOX_OK;
}

/* ---- reader ------------------------------------------------------------------ */

enum { READER_BLOCK_ROWS = 1024 }; /* rows per read: 8 codebooks -> 32 KiB of int32 */

struct tokvox_token_reader {
    int fd;
    char *name;             /* the path, for messages */
    tokvox_npy_info info;
    int layout, k, cs;
    size_t frames, rows;    /* code frames in the file; array rows (frames + K-1 for delay) */
    size_t row;             /* the next row to read */
    size_t done;            /* frames returned so far: window[0] is frame `done` */
    unsigned char *raw;     /* READER_BLOCK_ROWS rows of file bytes */
    int32_t *values;        /* the same rows as int32 */
    uint16_t *window;       /* codes of frames [done, reader_filled): K-1 + a block at most */
};

static void reader_free(tokvox_token_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->name);
    free(r->raw);
    free(r->values);
    free(r->window);
    free(r);
}

tokvox_token_reader *tokvox_token_reader_open(const char *path, int layout, int k,
                                              int codebook_size, int *error, char *detail,
                                              size_t detail_size)
{
    int err = TOKVOX_OK;
    tokvox_token_reader *r = calloc(1, sizeof *r);
    if (r)
        r->fd = -1;
    if (!r || !(r->name = strdup(path ? path : ""))) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path ? path : "npy");
        reader_free(r);
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    invert_ctx x = {r->name, detail, detail_size};
    uint64_t size = 0;
    if (!path || !tokvox_layout_name(layout) || codebook_size < 1 || codebook_size > 65536) {
        tokvox_io_detail(detail, detail_size, "%s: bad token reader arguments", r->name);
        err = TOKVOX_ERR_INVALID_ARGUMENT;
    } else if ((r->fd = open_regular(path, &size, detail, detail_size)) < 0) {
        err = TOKVOX_ERR_IO;
    } else if (!(err = read_header_fd(r->fd, size, path, &r->info, detail, detail_size)) &&
               !(err = invert_shape(layout, &r->info, &k, &r->frames, &x))) {
        r->layout = layout, r->k = k, r->cs = codebook_size;
        r->rows = rows_of(layout, r->frames, k);
        size_t kk = (size_t)k, room = READER_BLOCK_ROWS + kk;
        r->raw = malloc(READER_BLOCK_ROWS * kk * (size_t)r->info.dtype);
        r->values = malloc(READER_BLOCK_ROWS * kk * sizeof *r->values);
        r->window = malloc(room * kk * sizeof *r->window);
        if (!r->raw || !r->values || !r->window) {
            tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
            err = TOKVOX_ERR_NO_MEMORY;
        } else if (lseek(r->fd, (off_t)r->info.data_offset, SEEK_SET) < 0) {
            tokvox_io_detail(detail, detail_size, "%s: cannot seek", path);
            err = TOKVOX_ERR_IO;
        }
    }
    *error = err;
    if (err) {
        reader_free(r);
        return NULL;
    }
    return r;
}

size_t tokvox_token_reader_frames(const tokvox_token_reader *r)
{
    return r->frames;
}

int tokvox_token_reader_codebooks(const tokvox_token_reader *r)
{
    return r->k;
}

/* The next block of rows into the window, converted and checked. */
static int reader_fill(tokvox_token_reader *r, char *detail, size_t detail_size)
{
    size_t kk = (size_t)r->k;
    size_t m = r->rows - r->row < READER_BLOCK_ROWS ? r->rows - r->row : READER_BLOCK_ROWS;
    int err = read_exact(r->fd, r->raw, m * kk * (size_t)r->info.dtype, r->name, detail,
                         detail_size);
    if (err)
        return err;
    for (size_t i = 0; i < m * kk; i++) {
        int64_t v = load_le(r->raw + i * (size_t)r->info.dtype, r->info.dtype);
        if (v < INT32_MIN || v > INT32_MAX) {
            tokvox_io_detail(detail, detail_size,
                             "%s: element %zu = %" PRId64 " is out of range for a token",
                             r->name, r->row * kk + i, v);
            return TOKVOX_ERR_FORMAT;
        }
        r->values[i] = (int32_t)v;
    }
    invert_ctx x = {r->name, detail, detail_size};
    if ((err = invert_rows(r->layout, r->values, r->row, r->row + m, r->frames, r->k, r->cs,
                           r->window, r->done, &x)))
        return err;
    r->row += m;
    return TOKVOX_OK;
}

/* Frames in the window that the rows read so far touch: up to the last row
 * read, capped at the array's frames (past which a delay array holds only
 * pads). */
static size_t reader_filled(const tokvox_token_reader *r)
{
    return (r->row < r->frames ? r->row : r->frames) - r->done;
}

/* Frames in the window that no later row can touch. */
static size_t reader_complete(const tokvox_token_reader *r)
{
    size_t lag = r->layout == TOKVOX_LAYOUT_DELAY ? (size_t)r->k - 1 : 0;
    if (r->row == r->rows)
        return r->frames - r->done;
    return r->row > lag + r->done ? r->row - lag - r->done : 0;
}

int tokvox_token_reader_read(tokvox_token_reader *r, uint16_t *codes, size_t max_frames,
                             size_t *got, char *detail, size_t detail_size)
{
    size_t kk = (size_t)r->k;
    *got = 0;
    while (*got < max_frames) {
        size_t ready = reader_complete(r);
        if (ready) {
            size_t n = ready < max_frames - *got ? ready : max_frames - *got;
            memcpy(codes + *got * kk, r->window, n * kk * sizeof *codes);
            memmove(r->window, r->window + n * kk,
                    (reader_filled(r) - n) * kk * sizeof *codes);
            r->done += n, *got += n;
            continue;
        }
        if (r->row == r->rows)
            break;
        int err = reader_fill(r, detail, detail_size);
        if (err)
            return err;
    }
    return TOKVOX_OK;
}

void tokvox_token_reader_close(tokvox_token_reader *r)
{
    reader_free(r);
}
