/* Private to tokvox tokenize / detokenize / tokstats (apps/cmd_tokenize.c,
 * apps/cmd_tokens.c, apps/tokenize_files.c). */
#ifndef TOKVOX_APP_TOKENIZE_H
#define TOKVOX_APP_TOKENIZE_H

#include <stddef.h>

#include "manifest.h"

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

/* Appends the entries of the manifest at path to m.  Damaged lines and a
 * file that cannot be read are passed over: a torn last line after a crash
 * must not hide the rest, and a first run has no manifest.  Exits when out
 * of memory. */
void tk_read_manifest(tokvox_manifest *m, const char *path);
/* Every entry of the manifests in folder dir: manifest.jsonl and the
 * manifest.*.jsonl of --shard runs, read in name order and sorted by output,
 * so tokvox_manifest_find gives the entry read last (tk_read_manifest on
 * each).  Returns the number of manifest files. */
size_t tk_load_manifests(const char *dir, tokvox_manifest *m);
/* 1 when name is manifest.jsonl or manifest.*.jsonl (prefix "manifest"),
 * stats.json or stats.*.json (prefix "stats"), and so on. */
int tk_is_output_file(const char *name, const char *prefix, const char *ext);
/* Paths (dir joined) of the files in dir that tk_is_output_file accepts,
 * sorted; malloc'ed array of malloc'ed strings. */
char **tk_list_output_files(const char *dir, const char *prefix, const char *ext, size_t *n);
void tk_free_names(char **names, size_t n); /* frees what tk_list_output_files returns */

/* One line of the manifest a run writes. */
typedef struct tk_entry {
    const char *output, *input; /* input: "" when an earlier entry did not record it */
    const char *json;           /* the line, without its newline */
    double duration;            /* seconds; 0: not recorded */
} tk_entry;

/* --shard-out: packs entries (a manifest's, sorted), per_pack at a time, into
 * OUTDIR/shard-NNNNN{suffix}.npy ([total rows, K], or 1-D for the flat
 * layout) with shard-NNNNN{suffix}.index.jsonl (utterance, input, offset,
 * frames: rows of the pack array).  Packs left from an earlier run with more
 * of them are removed.  Prints an error and returns 1 on failure. */
int tk_pack(const char *outdir, const char *suffix, const tk_entry *entries, size_t n,
            size_t per_pack, int dtype);

#endif
