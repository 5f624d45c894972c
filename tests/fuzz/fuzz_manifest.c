/* libFuzzer target for the readers of tokenize's manifest.jsonl and
 * stats.json (apps/manifest.c), which tokvox detokenize and tokstats trust:
 * the input is one file image, read both as a manifest and as a stats.json.
 * Besides the sanitizers' checks it asserts the readers' promises: every
 * value is in its documented range or "not recorded"; every entry has an
 * output; a skipped line is counted and named with the file; reading the
 * text in two pieces gives what reading it whole gives; a kept line is one
 * line of JSON that a rewrite keeps as it is; after sorting, each
 * output finds the entry read last with it; a stats.json gives settings or
 * says why not, naming the file.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Iapps -Iio/include -Icodec/include -Iio tests/fuzz/fuzz_manifest.c apps/manifest.c \
 *     io/tokens.c io/atomic.c -lcjson -lm -o fuzz_manifest
 *   ./fuzz_manifest tests/fuzz/corpus/manifest
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/io.h"
#include "manifest.h"
#include "tokvox/tokvox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int meta_in_range(const tokvox_token_meta *m)
{
    return m->layout >= -1 && m->layout <= 2 && m->codebooks >= 0 &&
           m->codebooks <= TOKVOX_MANIFEST_MAX_CODEBOOKS && m->codebook_size >= 0 &&
           m->codebook_size <= TOKVOX_MANIFEST_MAX_CODEBOOK_SIZE && m->samples >= -1 &&
           m->samples <= (int64_t)1 << 53 &&
           (m->sample_rate == 0 || (m->sample_rate >= TOKVOX_AUDIO_MIN_RATE &&
                                    m->sample_rate <= TOKVOX_AUDIO_MAX_RATE)) &&
           isfinite(m->duration) && m->duration >= 0 &&
           memchr(m->model_id, '\0', sizeof m->model_id);
}

static int same_meta(const tokvox_token_meta *a, const tokvox_token_meta *b)
{
    return a->layout == b->layout && a->codebooks == b->codebooks &&
           a->codebook_size == b->codebook_size && a->samples == b->samples &&
           a->sample_rate == b->sample_rate && a->duration == b->duration &&
           !strcmp(a->model_id, b->model_id);
}

static int entry_in_range(const tokvox_manifest_entry *e)
{
    return e->output[0] && e->frames >= -1 && e->frames <= (int64_t)1 << 53 &&
           meta_in_range(&e->meta);
}

static int same_entry(const tokvox_manifest_entry *a, const tokvox_manifest_entry *b)
{
    return !strcmp(a->output, b->output) && !a->input == !b->input &&
           (!a->input || !strcmp(a->input, b->input)) && a->frames == b->frames &&
           same_meta(&a->meta, &b->meta);
}

/* A kept line is one line of JSON naming the same files and settings, and
 * rewriting it changes nothing: a manifest that tokenize rewrote on every
 * run stays as it is.  (Numbers are printed again with cJSON's 15 digits,
 * so the first rewrite may move the last digit of one tokvox did not print.) */
static void check_line(const tokvox_manifest_entry *e)
{
    size_t len = strlen(e->line);
    if (memchr(e->line, '\n', len))
        abort(); /* would split into two lines of a rewritten manifest */
    tokvox_manifest again = {.keep_lines = 1};
    if (tokvox_manifest_parse(&again, e->line, len, "line", NULL, 0) || again.n != 1)
        abort();
    const tokvox_manifest_entry *r = &again.entries[0];
    if (strcmp(r->output, e->output) || !r->input != !e->input ||
        (r->input && strcmp(r->input, e->input)) || r->meta.layout != e->meta.layout ||
        strcmp(r->meta.model_id, e->meta.model_id) || strcmp(r->line, e->line))
        abort();
    tokvox_manifest_free(&again);
}

/* Sorted by output, equal outputs in reading order; find gives the last. */
static void check_sorted(const tokvox_manifest *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const tokvox_manifest_entry *e = &m->entries[i];
        int c = i ? strcmp(m->entries[i - 1].output, e->output) : -1;
        if (c > 0 || (c == 0 && m->entries[i - 1].order > e->order))
            abort(); /* out of order */
        int last = i + 1 == m->n || strcmp(e->output, m->entries[i + 1].output);
        if (last && tokvox_manifest_find(m, e->output) != e)
            abort(); /* find misses the entry read last */
    }
    if (tokvox_manifest_find(m, "") || (m->n == 0 && tokvox_manifest_find(m, "a.npy")))
        abort(); /* no entry has an empty output */
}

/* The whole text as one manifest, each entry checked. */
static tokvox_manifest parse_whole(const uint8_t *data, size_t size)
{
    tokvox_manifest m = {0};
    char detail[256] = "";
    if (tokvox_manifest_parse(&m, data, size, "fuzz.jsonl", detail, sizeof detail))
        abort(); /* only running out of memory fails, and fuzz inputs are small */
    if (m.skipped_lines && strncmp(detail, "fuzz.jsonl:", 11))
        abort(); /* a skipped line is named */
    for (size_t i = 0; i < m.n; i++)
        if (!entry_in_range(&m.entries[i]) || m.entries[i].order != i || m.entries[i].line)
            abort(); /* a line is kept only when asked */
    return m;
}

/* Split after the first newline: appending the two parts reads the same,
 * and keeping the lines changes no entry. */
static void check_pieces(const uint8_t *data, size_t size, const tokvox_manifest *whole)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t cut = newline ? (size_t)(newline - data) + 1 : size;
    tokvox_manifest m = {.keep_lines = 1};
    if (tokvox_manifest_parse(&m, data, cut, "a", NULL, 0) ||
        tokvox_manifest_parse(&m, data + cut, size - cut, "b", NULL, 0))
        abort();
    if (m.n != whole->n || m.skipped_lines != whole->skipped_lines)
        abort(); /* line splitting depends on the buffer */
    for (size_t i = 0; i < m.n; i++) {
        if (!same_entry(&m.entries[i], &whole->entries[i]))
            abort();
        check_line(&m.entries[i]);
    }
    tokvox_manifest_free(&m);
}

static void check_stats(const uint8_t *data, size_t size)
{
    tokvox_token_meta meta;
    char detail[256] = "";
    int err = tokvox_token_stats_parse(data, size, "fuzz.json", &meta, detail, sizeof detail);
    if (err && (err != TOKVOX_ERR_FORMAT || !strstr(detail, "fuzz.json")))
        abort(); /* a refusal says why, naming the file */
    if (!meta_in_range(&meta))
        abort();
    tokvox_token_meta run;
    tokvox_token_meta_init(&run);
    tokvox_token_meta_refine(&run, &meta);
    if (!same_meta(&run, &meta))
        abort(); /* refining "nothing recorded" by meta gives meta */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tokvox_manifest m = parse_whole(data, size);
    check_pieces(data, size, &m);
    tokvox_manifest_sort(&m);
    check_sorted(&m);
    tokvox_manifest_free(&m);
    check_stats(data, size);
    return 0;
}
