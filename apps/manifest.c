/* tokenize's manifest.jsonl and stats.json, read back (manifest.h).  The
 * JSON syntax is cJSON's; this file decides which values are believed: only
 * those in the range a run writes.  Part of the apps (only tokenize,
 * detokenize and tokstats read these files), built into the fuzz target
 * too. */
#include "manifest.h"
#include "audio_internal.h" /* io's message helpers (tokvox_io_internal_dep) */
#include "tokvox/io.h"
#include "tokvox/tokens.h"
#include "tokvox/tokvox.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* A stats.json is a few hundred bytes; far more is not one of ours. */
#define MAX_STATS_BYTES ((size_t)1 << 20)
/* Doubles hold every whole number up to here exactly. */
#define MAX_EXACT_WHOLE ((int64_t)1 << 53)

/* ---- fields ------------------------------------------------------------------- */

/* The number at key when it is a whole number in [lo, hi], else fallback. */
static int64_t whole_number(const cJSON *o, const char *key, int64_t lo, int64_t hi,
                            int64_t fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return fallback;
    double d = v->valuedouble;
    /* range first: converting a double outside int64_t (1e300, inf) is undefined */
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return fallback;
    return (int64_t)d;
}

static const char *string_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void tokvox_token_meta_init(tokvox_token_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    meta->layout = -1;
    meta->samples = -1;
}

/* The fields of one manifest line or stats.json that are in range. */
static void meta_from(const cJSON *o, tokvox_token_meta *m)
{
    tokvox_token_meta_init(m);
    const char *layout = string_at(o, "layout"), *id = string_at(o, "model_id");
    if (layout)
        m->layout = tokvox_layout_parse(layout);
    if (id)
        snprintf(m->model_id, sizeof m->model_id, "%s", id);
    m->codebooks = (int)whole_number(o, "codebooks", 1, TOKVOX_MANIFEST_MAX_CODEBOOKS, 0);
    m->codebook_size =
        (int)whole_number(o, "codebook_size", 1, TOKVOX_MANIFEST_MAX_CODEBOOK_SIZE, 0);
    m->samples = whole_number(o, "samples", 0, MAX_EXACT_WHOLE, -1);
    m->sample_rate = (int)whole_number(o, "sample_rate", TOKVOX_AUDIO_MIN_RATE,
                                       TOKVOX_AUDIO_MAX_RATE, 0);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "duration");
    if (cJSON_IsNumber(d) && d->valuedouble >= 0 && isfinite(d->valuedouble))
        m->duration = d->valuedouble;
}

void tokvox_token_meta_refine(tokvox_token_meta *meta, const tokvox_token_meta *by)
{
    if (by->layout >= 0)
        meta->layout = by->layout;
    if (by->codebooks)
        meta->codebooks = by->codebooks;
    if (by->codebook_size)
        meta->codebook_size = by->codebook_size;
    if (by->samples >= 0)
        meta->samples = by->samples;
    if (by->sample_rate)
        meta->sample_rate = by->sample_rate;
    if (by->duration > 0)
        meta->duration = by->duration;
    if (by->model_id[0])
        memcpy(meta->model_id, by->model_id, sizeof meta->model_id);
}

/* ---- manifests ---------------------------------------------------------------- */

static void free_entry(tokvox_manifest_entry *e)
{
    free(e->output);
    free(e->input);
    cJSON_free(e->line);
}

static char *copy_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The entry of a line parsed into o (an object with an "output" string). */
static int entry_from(const tokvox_manifest *m, const cJSON *o, tokvox_manifest_entry *e)
{
    const char *input = string_at(o, "input");
    *e = (tokvox_manifest_entry){.order = m->n};
    meta_from(o, &e->meta);
    e->frames = whole_number(o, "frames", 0, MAX_EXACT_WHOLE, -1);
    e->output = copy_or_null(string_at(o, "output"));
    e->input = copy_or_null(input);
    e->line = m->keep_lines ? cJSON_PrintUnformatted(o) : NULL;
    if (e->output && (e->input || !input) && (e->line || !m->keep_lines))
        return TOKVOX_OK;
    free_entry(e);
    return TOKVOX_ERR_NO_MEMORY;
}

static int add_entry(tokvox_manifest *m, const cJSON *o)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        tokvox_manifest_entry *grown = realloc(m->entries, cap * sizeof *grown);
        if (!grown)
            return TOKVOX_ERR_NO_MEMORY;
        m->entries = grown;
        m->cap = cap;
    }
    int err = entry_from(m, o, &m->entries[m->n]);
    m->n += !err;
    return err;
}

static void skip_line(tokvox_manifest *m, const char *name, size_t lineno, const char *why,
                      char *detail, size_t detail_size)
{
    m->skipped_lines++;
    if (detail && detail_size && !detail[0])
        tokvox_io_detail(detail, detail_size, "%s:%zu: %s", name, lineno, why);
}

/* One line, without its newline. */
static int parse_line(tokvox_manifest *m, const char *line, size_t len, const char *name,
                      size_t lineno, char *detail, size_t detail_size)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (!len)
        return TOKVOX_OK; /* blank lines are allowed, as in any JSONL */
    cJSON *o = cJSON_ParseWithLength(line, len);
    const char *output = string_at(o, "output");
    int err = TOKVOX_OK;
    if (!cJSON_IsObject(o)) {
        skip_line(m, name, lineno, "not a JSON object", detail, detail_size);
    } else if (!output || !output[0]) {
        skip_line(m, name, lineno, "no \"output\" string", detail, detail_size);
    } else if ((err = add_entry(m, o))) {
        tokvox_io_detail(detail, detail_size, "%s:%zu: out of memory", name, lineno);
    }
    cJSON_Delete(o);
    return err;
}

int tokvox_manifest_parse(tokvox_manifest *m, const void *text, size_t len, const char *name,
                          char *detail, size_t detail_size)
{
    if (!len)
        return TOKVOX_OK; /* text may be NULL, and NULL + 0 is undefined */
    const char *p = text, *end = p + len;
    int err = TOKVOX_OK;
    for (size_t lineno = 1; p < end && !err; lineno++) {
        const char *newline = memchr(p, '\n', (size_t)(end - p));
        const char *stop = newline ? newline : end;
        err = parse_line(m, p, (size_t)(stop - p), name, lineno, detail, detail_size);
        p = stop + (newline != NULL);
    }
    return err;
}

int tokvox_manifest_read(tokvox_manifest *m, const char *path, char *detail,
                         size_t detail_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tokvox_io_fail(detail, detail_size, path, errno);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int err = TOKVOX_OK;
    ssize_t len;
    while (!err && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n')
            len--;
        err = parse_line(m, line, (size_t)len, path, lineno, detail, detail_size);
    }
    if (!err && ferror(f))
        err = tokvox_io_fail(detail, detail_size, path, errno);
    free(line);
    fclose(f);
    return err;
}

static int by_output(const void *a, const void *b)
{
    const tokvox_manifest_entry *x = a, *y = b;
    int c = strcmp(x->output, y->output);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

void tokvox_manifest_sort(tokvox_manifest *m)
{
    if (m->n) /* qsort(NULL, 0) is undefined */
        qsort(m->entries, m->n, sizeof *m->entries, by_output);
}

const tokvox_manifest_entry *tokvox_manifest_find(const tokvox_manifest *m, const char *output)
{
    size_t lo = 0, hi = m->n; /* -> the first entry after output */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->entries[mid].output, output) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && !strcmp(m->entries[lo - 1].output, output) ? &m->entries[lo - 1] : NULL;
}

void tokvox_manifest_free(tokvox_manifest *m)
{
    for (size_t i = 0; i < m->n; i++)
        free_entry(&m->entries[i]);
    free(m->entries);
    memset(m, 0, sizeof *m);
}

/* ---- stats.json ----------------------------------------------------------------- */

int tokvox_token_stats_parse(const void *text, size_t len, const char *name,
                             tokvox_token_meta *meta, char *detail, size_t detail_size)
{
    tokvox_token_meta_init(meta);
    cJSON *o = cJSON_ParseWithLength(text, len);
    int ours = string_at(o, "layout") && string_at(o, "model_id");
    if (ours)
        meta_from(o, meta);
    else
        tokvox_io_detail(detail, detail_size,
                         "%s: not a tokvox tokenize stats.json (no \"layout\" and "
                         "\"model_id\" strings)", name);
    cJSON_Delete(o);
    return ours ? TOKVOX_OK : TOKVOX_ERR_FORMAT;
}

/* The whole file at path when it has at most max bytes (*text malloc'ed). */
static int read_small_file(const char *path, size_t max, char **text, size_t *len,
                           char *detail, size_t detail_size)
{
    char eb[128];
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tokvox_io_fail(detail, detail_size, path, errno);
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int read_errno = errno;
    int err = !buf ? TOKVOX_ERR_NO_MEMORY
              : ferror(f) ? TOKVOX_ERR_IO
              : n > max ? TOKVOX_ERR_FORMAT : TOKVOX_OK;
    fclose(f);
    if (err) {
        free(buf);
        tokvox_io_detail(detail, detail_size, "%s: %s", path,
                         err == TOKVOX_ERR_IO ? tokvox_io_strerror(read_errno, eb, sizeof eb)
                         : err == TOKVOX_ERR_FORMAT ? "too big for a stats.json"
                                                    : "out of memory");
        return err;
    }
    *text = buf;
    *len = n;
    return TOKVOX_OK;
}

int tokvox_token_stats_read(const char *path, tokvox_token_meta *meta, char *detail,
                            size_t detail_size)
{
    char *text;
    size_t len = 0;
    tokvox_token_meta_init(meta);
    int err = read_small_file(path, MAX_STATS_BYTES, &text, &len, detail, detail_size);
    if (!err)
        err = tokvox_token_stats_parse(text, len, path, meta, detail, detail_size);
    free(text);
    return err;
}
