/* Private to the apps (and the fuzz target): what tokvox tokenize records beside the token files, as
 * tokvox detokenize and tokvox tokstats read it back (docs/tokenize.md).
 *
 *   manifest.jsonl      one JSON object per line per token file, e.g.
 *                         {"input":"/data/a.wav","output":"a.npy","duration":3.612,
 *                          "sample_rate":16000,"samples":57792,"frames":182,
 *                          "codebooks":8,"codebook_size":1024,"layout":"codebooks",
 *                          "shape":[182,8],"dtype":"<i2","model":"tokvox-16k",
 *                          "model_id":"b72c206b91caf302"}
 *                       (--shard runs write manifest.I-of-N.jsonl)
 *   stats.json          one object for the run: counters, and the run's
 *                       "layout", "codebooks", "codebook_size" and "model_id"
 *
 * Both are untrusted input (a copied, edited or damaged folder).  A field that
 * is missing, of another type, or outside the range any run writes is "not
 * recorded", so callers fall back to their defaults as for an older manifest;
 * every value a reader returns is in the documented range.  A manifest line
 * that is not a JSON object, or has no "output" string, is skipped and
 * counted: one damaged line (a torn last line after a crash) does not hide
 * the others.
 *
 * All functions are [thread-safe]: no global state.
 */
#ifndef TOKVOX_MANIFEST_H
#define TOKVOX_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Ranges a recorded value must be in (as the .tvx and packet formats). */
#define TOKVOX_MANIFEST_MAX_CODEBOOKS 64
#define TOKVOX_MANIFEST_MAX_CODEBOOK_SIZE 65536
/* The longest model_id kept; longer ones are cut, which never makes them
 * equal to a real one (16 hex digits). */
#define TOKVOX_MANIFEST_MODEL_ID_MAX 32

/* What tokenize recorded about a token file or a run. */
typedef struct tokvox_token_meta {
    int layout;          /* tokvox_layout; -1: not recorded */
    int codebooks;       /* 1..TOKVOX_MANIFEST_MAX_CODEBOOKS; 0: not recorded */
    int codebook_size;   /* 1..TOKVOX_MANIFEST_MAX_CODEBOOK_SIZE; 0: not recorded */
    int64_t samples;     /* at the model's rate, 0..2^53; -1: not recorded */
    int sample_rate;     /* of the source, TOKVOX_AUDIO_MIN_RATE..MAX_RATE; 0: not recorded */
    double duration;     /* seconds, finite, >= 0; 0: not recorded */
    char model_id[TOKVOX_MANIFEST_MODEL_ID_MAX + 1]; /* "": not recorded */
} tokvox_token_meta;

/* Everything "not recorded". */
void tokvox_token_meta_init(tokvox_token_meta *meta);
/* Takes into meta every field that by records (an entry refines its run). */
void tokvox_token_meta_refine(tokvox_token_meta *meta, const tokvox_token_meta *by);

typedef struct tokvox_manifest_entry {
    char *output;             /* the token file, relative to the manifest's folder; never "" */
    char *input;              /* the audio file as tokenize was given it; NULL: not recorded */
    int64_t frames;           /* code frames, 0..2^53; -1: not recorded */
    tokvox_token_meta meta;
    size_t order;             /* reading order: 0 for the first entry parsed into the manifest */
    char *line;               /* with keep_lines: the whole entry, for writing it back; else NULL */
} tokvox_manifest_entry;

/* Zero-initialise before the first parse or read. */
typedef struct tokvox_manifest {
    tokvox_manifest_entry *entries; /* in reading order until tokvox_manifest_sort */
    size_t n, cap;
    size_t skipped_lines;           /* not a JSON object, or no "output" string */
    /* Set before parsing to keep each entry's line (tokenize rewrites the
     * entries it does not redo).  The line is the parsed object printed
     * again as one line of JSON, as tokenize prints its own entries, not the
     * bytes read: what followed the object is dropped and control bytes in
     * strings are escaped, so a rewritten manifest is always JSONL.  A line
     * tokenize wrote comes back byte for byte; in one it did not, a number
     * with more than 15 significant digits may lose the last ones. */
    int keep_lines;
} tokvox_manifest;

/* Appends the entries of len bytes of JSONL text (need not end in a newline
 * or a NUL).  name is used in messages.  TOKVOX_OK, or TOKVOX_ERR_NO_MEMORY
 * (the entries so far stay).  When a line is skipped and detail is still
 * empty, detail gets "NAME:LINE: why" for a caller that wants to warn. */
int tokvox_manifest_parse(tokvox_manifest *m, const void *text, size_t len, const char *name,
                          char *detail, size_t detail_size);

/* tokvox_manifest_parse on the file at path, line by line.  TOKVOX_ERR_IO
 * naming path when it cannot be read. */
int tokvox_manifest_read(tokvox_manifest *m, const char *path, char *detail,
                         size_t detail_size);

/* Sorts the entries by output; entries with the same output keep their
 * reading order. */
void tokvox_manifest_sort(tokvox_manifest *m);

/* In a sorted manifest, the entry for output (of several, the one read
 * last: a later manifest file or line overrides), or NULL. */
const tokvox_manifest_entry *tokvox_manifest_find(const tokvox_manifest *m, const char *output);

void tokvox_manifest_free(tokvox_manifest *m);

/* A run's settings from len bytes of a stats.json.  Other tools write
 * stats.json too: only an object with "layout" and "model_id" strings is
 * tokenize's; anything else is TOKVOX_ERR_FORMAT with a message naming name.
 * On success meta holds what the run recorded. */
int tokvox_token_stats_parse(const void *text, size_t len, const char *name,
                             tokvox_token_meta *meta, char *detail, size_t detail_size);

/* tokvox_token_stats_parse on the file at path: TOKVOX_ERR_IO when it cannot
 * be read, TOKVOX_ERR_FORMAT when it is too big to be a stats.json. */
int tokvox_token_stats_read(const char *path, tokvox_token_meta *meta, char *detail,
                            size_t detail_size);

#ifdef __cplusplus
}
#endif
#endif
