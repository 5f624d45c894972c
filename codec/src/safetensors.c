/* Safetensors reader: see safetensors.h for the contract.
 *
 * The header JSON is copied (NUL-terminated) and parsed with cJSON, every
 * entry is validated, then names and metadata are copied into one string
 * arena owned by the st_file and the cJSON tree is freed.  Tensor data stays
 * in the caller's bytes (or our read-only mapping for st_open).
 */
#include "safetensors.h"
#include "kernels.h"

#include "tokvox/tokvox.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
/* Largest integer a double holds exactly together with all smaller ones
 * (2^53 - 1): anything bigger may have been rounded by the JSON parser. */
#define ST_MAX_EXACT 9007199254740991.0

typedef struct st_meta {
    const char *key;
    const char *value;
} st_meta;

struct st_file {
    const unsigned char *bytes; /* the whole image */
    size_t size;
    void *map; /* our mapping (st_open), NULL for st_open_memory */
    size_t map_size;
    st_tensor *tensors; /* header order */
    size_t count;
    const st_tensor **by_name; /* sorted by name */
    st_meta *meta;             /* sorted by key */
    size_t meta_count;
    char *strings; /* arena for names, keys and values */
};

/* ---- error reporting ---------------------------------------------------- */

typedef struct st_ctx {
    const char *name; /* file name for messages */
    int *error;
    char *detail;
    size_t detail_size;
} st_ctx;

#if defined(__GNUC__)
#define ST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ST_PRINTF(a, b)
#endif

static void set_error(const st_ctx *c, int code, const char *tensor, const char *fmt, ...)
    ST_PRINTF(4, 5);

static void set_error(const st_ctx *c, int code, const char *tensor, const char *fmt, ...)
{
    if (c->error)
        *c->error = code;
    if (!c->detail || c->detail_size == 0)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tensor)
        snprintf(c->detail, c->detail_size, "%s: tensor '%.200s': %s", c->name, tensor, msg);
    else
        snprintf(c->detail, c->detail_size, "%s: %s", c->name, msg);
}

/* ---- small helpers ------------------------------------------------------ */

static const struct {
    const char *name;
    st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8},
    {"I64", ST_I64, 8}, {"I32", ST_I32, 4}, {"I16", ST_I16, 2},  {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};

/* A JSON number that is an exact non-negative integer (<= 2^53 - 1). */
static int as_count(const cJSON *n, uint64_t *out)
{
    if (!cJSON_IsNumber(n))
        return 0;
    double v = n->valuedouble;
    if (!(v >= 0.0) || v > ST_MAX_EXACT) /* also rejects NaN */
        return 0;
    uint64_t u = (uint64_t)v;
    if ((double)u != v) /* fractional */
        return 0;
    *out = u;
    return 1;
}

static int is_json_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a;
    const st_tensor *y = *(const st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

typedef struct st_range {
    uint64_t begin, end;
    size_t index;
} st_range;

static int cmp_range(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* ---- one tensor entry ------------------------------------------------------ */

/* Validates entry (named key) and fills t (name left to the caller) and
 * *begin / *end.  Returns 0 or reports and returns -1. */
static int parse_entry(const st_ctx *c, const cJSON *entry, uint64_t data_size, st_tensor *t,
                       uint64_t *begin_out, uint64_t *end_out)
{
    const char *key = entry->string;
    if (!cJSON_IsObject(entry)) {
        set_error(c, TOKVOX_ERR_FORMAT, key, "entry is not an object");
        return -1;
    }
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *f = entry->child; f; f = f->next) {
        const cJSON **slot = NULL;
        if (!f->string)
            continue;
        if (strcmp(f->string, "dtype") == 0)
            slot = &dtype;
        else if (strcmp(f->string, "shape") == 0)
            slot = &shape;
        else if (strcmp(f->string, "data_offsets") == 0)
            slot = &offsets;
        else
            continue; /* unknown fields are ignored */
        if (*slot) {
            set_error(c, TOKVOX_ERR_FORMAT, key, "field \"%s\" appears twice", f->string);
            return -1;
        }
        *slot = f;
    }

    /* dtype */
    if (!dtype || !cJSON_IsString(dtype) || !dtype->valuestring) {
        set_error(c, TOKVOX_ERR_FORMAT, key, "missing or non-string \"dtype\"");
        return -1;
    }
    size_t esize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (strcmp(dtype->valuestring, dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dtype;
            esize = dtypes[i].size;
            break;
        }
    }
    if (esize == 0) {
        set_error(c, TOKVOX_ERR_FORMAT, key, "unknown dtype \"%.32s\"", dtype->valuestring);
        return -1;
    }

    /* shape */
    if (!shape || !cJSON_IsArray(shape)) {
        set_error(c, TOKVOX_ERR_FORMAT, key, "missing or non-array \"shape\"");
        return -1;
    }
    int ndim = 0;
    int has_zero = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (ndim >= ST_MAX_DIMS) {
            set_error(c, TOKVOX_ERR_FORMAT, key, "shape has more than %d dimensions",
                      ST_MAX_DIMS);
            return -1;
        }
        uint64_t v;
        if (!as_count(d, &v)) {
            if (cJSON_IsNumber(d))
                set_error(c, TOKVOX_ERR_FORMAT, key,
                          "shape[%d] = %g is not a non-negative integer below 2^53", ndim,
                          d->valuedouble);
            else
                set_error(c, TOKVOX_ERR_FORMAT, key, "shape[%d] is not a number", ndim);
            return -1;
        }
        t->shape[ndim++] = (int64_t)v;
        if (v == 0)
            has_zero = 1;
    }
    t->ndim = ndim;
    int64_t numel = 1;
    if (has_zero) {
        numel = 0;
    } else {
        for (int i = 0; i < ndim; i++) {
            if (numel > INT64_MAX / t->shape[i]) {
                set_error(c, TOKVOX_ERR_FORMAT, key,
                          "element count of the shape overflows 64 bits");
                return -1;
            }
            numel *= t->shape[i];
        }
    }
    t->numel = numel;

    /* data_offsets */
    if (!offsets || !cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2) {
        set_error(c, TOKVOX_ERR_FORMAT, key, "\"data_offsets\" is not an array of two integers");
        return -1;
    }
    uint64_t begin, end;
    if (!as_count(offsets->child, &begin) || !as_count(offsets->child->next, &end)) {
        set_error(c, TOKVOX_ERR_FORMAT, key,
                  "\"data_offsets\" are not non-negative integers below 2^53");
        return -1;
    }
    if (begin > end) {
        set_error(c, TOKVOX_ERR_FORMAT, key, "data_offsets [%llu, %llu) end before they begin",
                  (unsigned long long)begin, (unsigned long long)end);
        return -1;
    }
    uint64_t nbytes = end - begin;
    if (nbytes % esize != 0 || nbytes / esize != (uint64_t)numel) {
        char need[64];
        if ((uint64_t)numel > UINT64_MAX / esize)
            snprintf(need, sizeof need, "more than 2^64 bytes");
        else
            snprintf(need, sizeof need, "%llu bytes",
                     (unsigned long long)((uint64_t)numel * esize));
        set_error(c, TOKVOX_ERR_FORMAT, key,
                  "data_offsets [%llu, %llu) hold %llu bytes but %lld elements of %s need %s",
                  (unsigned long long)begin, (unsigned long long)end,
                  (unsigned long long)nbytes, (long long)numel, dtype->valuestring, need);
        return -1;
    }
    if (end > data_size) {
        set_error(c, TOKVOX_ERR_TRUNCATED, key,
                  "data_offsets [%llu, %llu) run past the end of the data (size %llu)",
                  (unsigned long long)begin, (unsigned long long)end,
                  (unsigned long long)data_size);
        return -1;
    }
    t->nbytes = (size_t)nbytes;
    *begin_out = begin;
    *end_out = end;
    return 0;
}

/* ---- st_open_memory --------------------------------------------------------- */

st_file *st_open_memory(const void *bytes, size_t size, const char *name, int *error,
                        char *detail, size_t detail_size)
{
    st_ctx c = {name ? name : "<memory>", error, detail, detail_size};
    const unsigned char *p = bytes;
    char *text = NULL;
    cJSON *root = NULL;
    st_file *f = NULL;
    st_range *ranges = NULL;

    if (error)
        *error = TOKVOX_OK;
    if (detail && detail_size)
        detail[0] = '\0';
    if (!bytes && size) {
        set_error(&c, TOKVOX_ERR_INVALID_ARGUMENT, NULL, "no bytes");
        return NULL;
    }
    if (size < 8) {
        if (size == 0)
            set_error(&c, TOKVOX_ERR_TRUNCATED, NULL,
                      "file is empty, expected an 8-byte header length");
        else
            set_error(&c, TOKVOX_ERR_TRUNCATED, NULL,
                      "file is %zu bytes, too short for the 8-byte header length", size);
        return NULL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > ST_MAX_HEADER) {
        set_error(&c, TOKVOX_ERR_FORMAT, NULL,
                  "header length %llu is over the %llu-byte limit (not a safetensors file?)",
                  (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        return NULL;
    }
    if (hlen > size - 8) {
        set_error(&c, TOKVOX_ERR_TRUNCATED, NULL,
                  "header length %llu runs past the end of the file (%zu bytes)",
                  (unsigned long long)hlen, size);
        return NULL;
    }
    size_t n = (size_t)hlen;
    uint64_t data_size = (uint64_t)(size - 8 - n);
    const unsigned char *data = p + 8 + n;

    /* Parse a NUL-terminated copy so that cJSON never reads past the header. */
    text = malloc(n + 1);
    if (!text) {
        set_error(&c, TOKVOX_ERR_NO_MEMORY, NULL, "out of memory for a %zu-byte header", n);
        goto fail;
    }
    memcpy(text, p + 8, n);
    text[n] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        set_error(&c, TOKVOX_ERR_FORMAT, NULL, "header is not valid JSON (near byte %zu of %zu)",
                  at, n);
        goto fail;
    }
    for (const char *q = end ? end : text + n; q < text + n; q++) {
        if (!is_json_space((unsigned char)*q)) {
            set_error(&c, TOKVOX_ERR_FORMAT, NULL,
                      "header has trailing bytes after the JSON (at byte %zu of %zu)",
                      (size_t)(q - text), n);
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        set_error(&c, TOKVOX_ERR_FORMAT, NULL, "header is not a JSON object");
        goto fail;
    }

    /* Count entries and string bytes; validate __metadata__. */
    size_t count = 0, meta_count = 0, string_bytes = 0;
    const cJSON *meta_obj = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) {
            set_error(&c, TOKVOX_ERR_FORMAT, NULL, "header entry without a name");
            goto fail;
        }
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta_obj) {
                set_error(&c, TOKVOX_ERR_FORMAT, NULL, "\"__metadata__\" appears twice");
                goto fail;
            }
            meta_obj = e;
            if (!cJSON_IsObject(e)) {
                set_error(&c, TOKVOX_ERR_FORMAT, NULL, "\"__metadata__\" is not an object");
                goto fail;
            }
            for (const cJSON *m = e->child; m; m = m->next) {
                if (!m->string || !cJSON_IsString(m) || !m->valuestring) {
                    set_error(&c, TOKVOX_ERR_FORMAT, NULL,
                              "\"__metadata__\" value for '%.200s' is not a string",
                              m->string ? m->string : "");
                    goto fail;
                }
                meta_count++;
                string_bytes += strlen(m->string) + 1 + strlen(m->valuestring) + 1;
            }
            continue;
        }
        count++;
        string_bytes += strlen(e->string) + 1;
    }

    f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->bytes = p;
    f->size = size;
    if (count) {
        f->tensors = calloc(count, sizeof *f->tensors);
        f->by_name = calloc(count, sizeof *f->by_name);
        ranges = calloc(count, sizeof *ranges);
        if (!f->tensors || !f->by_name || !ranges)
            goto oom;
    }
    if (meta_count) {
        f->meta = calloc(meta_count, sizeof *f->meta);
        if (!f->meta)
            goto oom;
    }
    f->strings = malloc(string_bytes ? string_bytes : 1);
    if (!f->strings)
        goto oom;

    char *s = f->strings;
    size_t ti = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e == meta_obj)
            continue;
        st_tensor *t = &f->tensors[ti];
        if (parse_entry(&c, e, data_size, t, &ranges[ti].begin, &ranges[ti].end) != 0)
            goto fail;
        size_t len = strlen(e->string) + 1;
        memcpy(s, e->string, len);
        t->name = s;
        s += len;
        t->data = data + ranges[ti].begin;
        ranges[ti].index = ti;
        f->by_name[ti] = t;
        ti++;
    }
    f->count = count;
    if (meta_obj) {
        size_t mi = 0;
        for (const cJSON *m = meta_obj->child; m; m = m->next, mi++) {
            size_t klen = strlen(m->string) + 1, vlen = strlen(m->valuestring) + 1;
            memcpy(s, m->string, klen);
            f->meta[mi].key = s;
            s += klen;
            memcpy(s, m->valuestring, vlen);
            f->meta[mi].value = s;
            s += vlen;
        }
        f->meta_count = meta_count;
    }
    cJSON_Delete(root);
    root = NULL;
    free(text);
    text = NULL;

    /* Unique names. */
    if (count > 1) {
        qsort(f->by_name, count, sizeof *f->by_name, cmp_tensor_name);
        for (size_t i = 1; i < count; i++) {
            if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
                set_error(&c, TOKVOX_ERR_FORMAT, f->by_name[i]->name,
                          "name appears more than once in the header");
                goto fail;
            }
        }
    }
    if (meta_count > 1) {
        qsort(f->meta, meta_count, sizeof *f->meta, cmp_meta_key);
        for (size_t i = 1; i < meta_count; i++) {
            if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0) {
                set_error(&c, TOKVOX_ERR_FORMAT, NULL,
                          "\"__metadata__\" key '%.200s' appears more than once",
                          f->meta[i].key);
                goto fail;
            }
        }
    }

    /* No overlaps (touching is fine; empty tensors hold no bytes). */
    if (count > 1) {
        qsort(ranges, count, sizeof *ranges, cmp_range);
        const st_range *prev = NULL;
        for (size_t i = 0; i < count; i++) {
            const st_range *r = &ranges[i];
            if (r->begin == r->end)
                continue;
            if (prev && r->begin < prev->end) {
                set_error(&c, TOKVOX_ERR_FORMAT, f->tensors[r->index].name,
                          "data_offsets [%llu, %llu) overlap those of tensor '%.200s' "
                          "[%llu, %llu)",
                          (unsigned long long)r->begin, (unsigned long long)r->end,
                          f->tensors[prev->index].name, (unsigned long long)prev->begin,
                          (unsigned long long)prev->end);
                goto fail;
            }
            prev = r; /* sorted by begin, so prev->end is the furthest end so far
                         among non-overlapping ranges */
        }
    }
    free(ranges);
    return f;

oom:
    set_error(&c, TOKVOX_ERR_NO_MEMORY, NULL, "out of memory reading the header");
fail:
    free(ranges);
    cJSON_Delete(root);
    free(text);
    st_close(f);
    return NULL;
}

/* ---- st_open ---------------------------------------------------------------- */

st_file *st_open(const char *path, int *error, char *detail, size_t detail_size)
{
    st_ctx c = {path ? path : "(null)", error, detail, detail_size};
    if (error)
        *error = TOKVOX_OK;
    if (detail && detail_size)
        detail[0] = '\0';
    if (!path) {
        set_error(&c, TOKVOX_ERR_INVALID_ARGUMENT, NULL, "no path given");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        set_error(&c, TOKVOX_ERR_IO, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(&c, TOKVOX_ERR_IO, NULL, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        set_error(&c, TOKVOX_ERR_IO, NULL, "cannot read: %s", strerror(EISDIR));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        set_error(&c, TOKVOX_ERR_IO, NULL, "cannot read: not a regular file");
        close(fd);
        return NULL;
    }
    if (st.st_size < 8 || (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        if (st.st_size < 8)
            return st_open_memory("", (size_t)st.st_size, path, error, detail, detail_size);
        set_error(&c, TOKVOX_ERR_IO, NULL, "file is too large to map");
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) {
        set_error(&c, TOKVOX_ERR_IO, NULL, "cannot map: %s", strerror(map_errno));
        return NULL;
    }
    st_file *f = st_open_memory(map, size, path, error, detail, detail_size);
    if (!f) {
        munmap(map, size);
        return NULL;
    }
    f->map = map;
    f->map_size = size;
    return f;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_size);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f->strings);
    free(f);
}

/* ---- access ----------------------------------------------------------------- */

size_t st_count(const st_file *f) { return f ? f->count : 0; }

const st_tensor *st_at(const st_file *f, size_t i)
{
    return f && i < f->count ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    if (!f || !name || f->count == 0)
        return NULL;
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(name, f->by_name[mid]->name);
        if (r == 0)
            return f->by_name[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key)
{
    if (!f || !key || f->meta_count == 0)
        return NULL;
    size_t lo = 0, hi = f->meta_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(key, f->meta[mid].key);
        if (r == 0)
            return f->meta[mid].value;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const void *st_bytes(const st_file *f, size_t *size)
{
    if (!f) {
        if (size)
            *size = 0;
        return NULL;
    }
    if (size)
        *size = f->size;
    return f->bytes;
}

/* ---- conversion ----------------------------------------------------------- */

static float bits_to_float(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int st_to_f32(const st_tensor *t, float *dst)
{
    if (!t || (t->numel > 0 && (!dst || !t->data)))
        return -1;
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n)
            memcpy(dst, p, n * sizeof(float));
#else
        for (size_t i = 0; i < n; i++, p += 4)
            dst[i] = bits_to_float((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                   (uint32_t)p[3] << 24);
#endif
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++, p += 2)
            dst[i] = tk_half_to_float((uint16_t)(p[0] | p[1] << 8));
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++, p += 2)
            dst[i] = bits_to_float(((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16);
        return 0;
    default:
        return -1;
    }
}
