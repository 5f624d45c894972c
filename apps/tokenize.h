/* Private to tokvox tokenize / detokenize / tokstats (apps/cmd_tokenize.c,
 * apps/cmd_tokens.c, apps/tokenize_files.c). */
#ifndef TOKVOX_APP_TOKENIZE_H
#define TOKVOX_APP_TOKENIZE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* One utterance to tokenize. */
typedef struct tk_item {
    char *input;      /* the path as given (a folder or manifest argument joined in) */
    char *abs;        /* absolute, folded lexically */
    const char *rel;  /* abs relative to the common root (points into abs) */
    char *output;     /* rel with its extension replaced by .npy */
    char *error;      /* known bad before any reading (same output as another) */
} tk_item;

/* Something wrong that is not one utterance: a manifest line, a folder. */
typedef struct tk_error {
    char *path, *message;
} tk_error;

typedef struct tk_list {
    tk_item *items;   /* sorted by rel, no repeats */
    size_t n_items, cap_items;
    tk_error *errors;
    size_t n_errors, cap_errors;
    char *root;       /* the deepest folder holding every input */
} tk_list;

/* Files, folders (recursive, by audio extension) and manifests (.jsonl with
 * "path", .tsv/.txt with a path per line) -> l.  An argument that does not
 * exist or a manifest that cannot be opened prints an error and returns 1;
 * everything else wrong is collected in l->errors. */
int tk_list_build(tk_list *l, char **args, int n_args);
void tk_list_free(tk_list *l);

/* malloc'ed copies; they exit(1) when out of memory (a CLI has no better
 * option, and it keeps every caller short). */
char *app_strdup(const char *s);
char *app_join_path(const char *dir, const char *name);
/* path made absolute against the working folder and folded lexically. */
char *app_abs_path(const char *path);

/* Every JSON-object line of a .jsonl file, as a cJSON array (bad lines are
 * left out, *bad_lines counts them); NULL when the file cannot be opened. */
cJSON *app_read_jsonl(const char *path, size_t *bad_lines);

/* Manifest entries by their "output" field. */
typedef struct tk_index {
    cJSON *holder;    /* owns the entries */
    cJSON **entries;  /* sorted by output */
    size_t n;
} tk_index;
/* Every entry of the manifests in folder dir: manifest.jsonl and the
 * manifest.*.jsonl of --shard runs.  A folder without any gives an empty
 * index.  Returns the number of manifest files read. */
int tk_index_load(tk_index *x, const char *dir);
/* The entry whose output is output, or NULL. */
cJSON *tk_index_find(const tk_index *x, const char *output);
void tk_index_free(tk_index *x);
/* 1 when name is manifest.jsonl or manifest.*.jsonl (prefix "manifest"),
 * stats.json or stats.*.json (prefix "stats"), and so on. */
int tk_is_output_file(const char *name, const char *prefix, const char *ext);
/* Paths (dir joined) of the files in dir that tk_is_output_file accepts,
 * sorted; malloc'ed array of malloc'ed strings. */
char **tk_list_output_files(const char *dir, const char *prefix, const char *ext, size_t *n);

/* --shard-out: packs entries (a manifest's, sorted), per_pack at a time, into
 * OUTDIR/shard-NNNNN{suffix}.npy ([total rows, K], or 1-D for the flat
 * layout) with shard-NNNNN{suffix}.index.jsonl (utterance, input, offset,
 * frames: rows of the pack array).  Packs left from an earlier run with more
 * of them are removed.  Prints an error and returns 1 on failure. */
int tk_pack(const char *outdir, const char *suffix, cJSON *const *entries, size_t n,
            size_t per_pack, int dtype);

#endif
