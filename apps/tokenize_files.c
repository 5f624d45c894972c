/* The files of tokvox tokenize besides the tokens themselves: the input list
 * (files, folders and manifests turned into one sorted, de-duplicated list of
 * utterances with their output paths), the manifests of earlier runs (read
 * through io/manifest.c, as detokenize and tokstats read them) and the
 * --shard-out packs.
 *
 * Paths are made absolute and folded lexically ("." and ".." removed as the
 * user wrote them, symlinks not resolved), so the same tree gives the same
 * list, the same order and the same --shard slices on every machine, wherever
 * it is mounted: the sort key is the path relative to the common root. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "tokenize.h"
#include "tokvox/io.h"
#include "tokvox/tokens.h"

/* Extensions of the formats libsndfile reads that hold audio. */
static const char *const audio_exts[] = {
    "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd",
    "w64", "rf64", "caf", "sph", "nist", "voc", "wve", "avr", "htk", "sd2", "mat", "pvf",
};

enum { MAX_DEPTH = 64 };

char *app_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        fputs("tokvox: out of memory\n", stderr);
        exit(1);
    }
    return memcpy(d, s, n);
}

char *app_join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) {
        fputs("tokvox: out of memory\n", stderr);
        exit(1);
    }
    int slash = dir[0] && dir[strlen(dir) - 1] != '/';
    snprintf(p, n, "%s%s%s", dir, slash ? "/" : "", name);
    return p;
}

char *app_abs_path(const char *path)
{
    char *cwd = path[0] == '/' ? NULL : getcwd(NULL, 0);
    char *joined = app_join_path(cwd ? cwd : "", path);
    free(cwd);
    char *out = app_strdup(joined);
    size_t o = 0;
    for (const char *p = joined; *p;) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else if (n && !(n == 1 && p[0] == '.')) {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(joined);
    return out;
}

/* The folder part of path ("." when it has none), malloc'ed. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return app_strdup(".");
    if (slash == path)
        return app_strdup("/");
    char *d = app_strdup(path);
    d[slash - path] = '\0';
    return d;
}

static const char *extension(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot = strrchr(base ? base + 1 : path, '.');
    return dot && dot[1] ? dot + 1 : "";
}

static int is_audio_name(const char *name)
{
    const char *ext = extension(name);
    for (size_t i = 0; i < sizeof audio_exts / sizeof audio_exts[0]; i++)
        if (!strcasecmp(ext, audio_exts[i]))
            return 1;
    return 0;
}

/* ---- the list ------------------------------------------------------------------ */

static void *grow(void *array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return array;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(array, n * size);
    if (!p) {
        fputs("tokvox: out of memory\n", stderr);
        exit(1);
    }
    *cap = n;
    return p;
}

static void add_error(tk_list *l, const char *path, const char *fmt, const char *arg)
{
    l->errors = grow(l->errors, &l->cap_errors, l->n_errors + 1, sizeof *l->errors);
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, arg);
    l->errors[l->n_errors].path = app_strdup(path);
    l->errors[l->n_errors++].message = app_strdup(msg);
}

/* Widens the common root so it contains the folder dir (absolute). */
static void add_anchor(tk_list *l, const char *dir)
{
    if (!l->root) {
        l->root = app_strdup(dir);
        return;
    }
    for (;;) {
        size_t n = strlen(l->root);
        if (!strcmp(l->root, "/") || (!strncmp(dir, l->root, n) && (!dir[n] || dir[n] == '/')))
            return;
        char *up = folder_of(l->root);
        free(l->root);
        l->root = up;
    }
}

static void add_file(tk_list *l, char *input, int anchor)
{
    l->items = grow(l->items, &l->cap_items, l->n_items + 1, sizeof *l->items);
    tk_item *it = &l->items[l->n_items++];
    memset(it, 0, sizeof *it);
    it->input = input; /* taken over */
    it->abs = app_abs_path(input);
    if (anchor) {
        char *dir = folder_of(it->abs);
        add_anchor(l, dir);
        free(dir);
    }
}

static void walk(tk_list *l, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        add_error(l, dir, "cannot open folder: %s", strerror(errno));
        return;
    }
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') /* hidden files, our own temporaries, . and .. */
            continue;
        char *child = app_join_path(dir, de->d_name);
        struct stat st;
        if (lstat(child, &st) != 0) {
            add_error(l, child, "%s", strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (depth < MAX_DEPTH) /* symlinked folders are not followed: no loops */
                walk(l, child, depth + 1);
        } else if (is_audio_name(de->d_name) && stat(child, &st) == 0 && S_ISREG(st.st_mode)) {
            add_file(l, child, 0);
            child = NULL;
        }
        free(child);
    }
    closedir(d);
}

/* One manifest line -> the path it names, or NULL (error added). */
static char *manifest_path(tk_list *l, char *line, int jsonl, const char *where)
{
    if (!jsonl) {
        char *tab = strchr(line, '\t');
        if (tab)
            *tab = '\0'; /* the first column of a .tsv */
        return app_strdup(line);
    }
    cJSON *o = cJSON_Parse(line);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
    char *path = cJSON_IsString(p) && p->valuestring[0] ? app_strdup(p->valuestring) : NULL;
    if (!path)
        add_error(l, where, "%s", o ? "no \"path\" string" : "not a JSON object");
    cJSON_Delete(o);
    return path;
}

/* A .tsv's first line may be a header ("path", "file", ...): skipped when no
 * such file exists. */
static int is_header(const char *field, const char *dir, size_t lineno)
{
    static const char *const names[] = {"path", "file", "filename", "audio", "wav"};
    if (lineno != 1)
        return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(field, names[i]))
            continue;
        char *p = app_join_path(dir, field);
        int exists = access(p, F_OK) == 0;
        free(p);
        return !exists;
    }
    return 0;
}

static int read_manifest(tk_list *l, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return app_fail("tokenize", "%s: cannot open (%s)", path, strerror(errno));
    int jsonl = !strcasecmp(extension(path), "jsonl");
    char *dir = folder_of(path), *abs = app_abs_path(path), *absdir = folder_of(abs);
    add_anchor(l, absdir);
    char *line = NULL;
    size_t cap = 0, lineno = 0, listed = 0, errors_before = l->n_errors;
    for (ssize_t len; (len = getline(&line, &cap, f)) >= 0;) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len || line[0] == '#')
            continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%zu", path, lineno);
        char *p = manifest_path(l, line, jsonl, where);
        if (p && *p && !is_header(p, dir, lineno)) {
            add_file(l, p[0] == '/' ? app_strdup(p) : app_join_path(dir, p), 1);
            listed++;
        }
        free(p);
    }
    /* an empty list is most likely the wrong file: say so, not just "no files" */
    if (!listed && errors_before == l->n_errors)
        add_error(l, path, "%s", "lists no files");
    free(line);
    fclose(f);
    free(dir);
    free(abs);
    free(absdir);
    return 0;
}

static int add_argument(tk_list *l, const char *arg)
{
    struct stat st;
    if (stat(arg, &st) != 0)
        return app_fail("tokenize", "%s: %s", arg, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char *abs = app_abs_path(arg);
        add_anchor(l, abs);
        free(abs);
        walk(l, arg, 0);
        return 0;
    }
    const char *ext = extension(arg);
    if (!strcasecmp(ext, "jsonl") || !strcasecmp(ext, "tsv") || !strcasecmp(ext, "txt"))
        return read_manifest(l, arg);
    add_file(l, app_strdup(arg), 1);
    return 0;
}

/* ---- ordering ---------------------------------------------------------------- */

static int by_rel(const void *a, const void *b)
{
    return strcmp(((const tk_item *)a)->rel, ((const tk_item *)b)->rel);
}

static int by_output(const void *a, const void *b)
{
    const tk_item *x = *(tk_item *const *)a, *y = *(tk_item *const *)b;
    int c = strcmp(x->output, y->output);
    return c ? c : strcmp(x->rel, y->rel);
}

static char *output_name(const char *rel)
{
    const char *ext = extension(rel);
    size_t stem = *ext ? (size_t)(ext - 1 - rel) : strlen(rel);
    char *out = malloc(stem + 5);
    if (!out) {
        fputs("tokvox: out of memory\n", stderr);
        exit(1);
    }
    memcpy(out, rel, stem);
    memcpy(out + stem, ".npy", 5);
    return out;
}

static void free_item(tk_item *it)
{
    free(it->input);
    free(it->abs);
    free(it->output);
    free(it->error);
}

/* Sorts by relative path, drops repeats, and marks files that would write
 * the same output (a.wav and a.flac): the later one is an error. */
static void order(tk_list *l)
{
    size_t skip = strcmp(l->root, "/") ? strlen(l->root) + 1 : 1;
    for (size_t i = 0; i < l->n_items; i++) {
        l->items[i].rel = l->items[i].abs + skip;
        l->items[i].output = output_name(l->items[i].rel);
    }
    if (l->n_items)
        qsort(l->items, l->n_items, sizeof *l->items, by_rel);
    size_t kept = 0;
    for (size_t i = 0; i < l->n_items; i++) {
        if (kept && !strcmp(l->items[kept - 1].rel, l->items[i].rel))
            free_item(&l->items[i]);
        else
            l->items[kept++] = l->items[i];
    }
    l->n_items = kept;
    tk_item **byout = malloc(sizeof *byout * (kept ? kept : 1));
    if (!byout)
        exit(1);
    for (size_t i = 0; i < kept; i++)
        byout[i] = &l->items[i];
    qsort(byout, kept, sizeof *byout, by_output);
    for (size_t i = 1; i < kept; i++) {
        if (strcmp(byout[i]->output, byout[i - 1]->output))
            continue;
        char msg[8400];
        snprintf(msg, sizeof msg, "same output %s as %s", byout[i]->output, byout[i - 1]->input);
        byout[i]->error = app_strdup(msg);
        byout[i] = byout[i - 1]; /* the first of a run keeps the name */
    }
    free(byout);
}

int tk_list_build(tk_list *l, char **args, int n_args)
{
    memset(l, 0, sizeof *l);
    for (int i = 0; i < n_args; i++)
        if (add_argument(l, args[i]))
            return 1;
    if (!l->root)
        l->root = app_strdup("/");
    order(l);
    return 0;
}

void tk_list_free(tk_list *l)
{
    for (size_t i = 0; i < l->n_items; i++)
        free_item(&l->items[i]);
    for (size_t i = 0; i < l->n_errors; i++) {
        free(l->errors[i].path);
        free(l->errors[i].message);
    }
    free(l->items);
    free(l->errors);
    free(l->root);
    memset(l, 0, sizeof *l);
}

/* ---- manifests of earlier runs ------------------------------------------------- */

int tk_is_output_file(const char *name, const char *prefix, const char *ext)
{
    size_t p = strlen(prefix), n = strlen(name), e = strlen(ext);
    if (n < p + e || strncmp(name, prefix, p) || strcmp(name + n - e, ext))
        return 0;
    return n == p + e || (name[p] == '.' && n > p + e + 1);
}

/* Names in dir matching prefix*ext, sorted (so later shards override
 * earlier ones the same way everywhere). */
char **tk_list_output_files(const char *dir, const char *prefix, const char *ext, size_t *n)
{
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!tk_is_output_file(de->d_name, prefix, ext))
            continue;
        names = grow(names, &cap, *n + 1, sizeof *names);
        names[(*n)++] = app_join_path(dir, de->d_name);
    }
    if (d)
        closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    return names;
}

void tk_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void tk_read_manifest(tokvox_manifest *m, const char *path)
{
    char detail[1024] = "";
    if (tokvox_manifest_read(m, path, detail, sizeof detail) == TOKVOX_ERR_NO_MEMORY) {
        fprintf(stderr, "tokvox: %s\n", detail);
        exit(1); /* as every allocation of the commands */
    }
}

size_t tk_load_manifests(const char *dir, tokvox_manifest *m)
{
    size_t n = 0;
    char **files = tk_list_output_files(dir, "manifest", ".jsonl", &n);
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < n; i++)
        tk_read_manifest(m, files[i]);
    tk_free_names(files, n);
    tokvox_manifest_sort(m);
    return n;
}

/* ---- --shard-out packs -------------------------------------------------------------- */

/* Rows of every utterance's array, all of one dtype and width. */
static int pack_rows(const char *outdir, const tk_entry *e, size_t n, int dtype, uint64_t *rows,
                     tokvox_npy_info *first, char *detail, size_t ds)
{
    for (size_t i = 0; i < n; i++) {
        char *path = app_join_path(outdir, e[i].output);
        tokvox_npy_info h;
        int err = tokvox_npy_read_header(path, &h, detail, ds);
        if (!err && (h.dtype != dtype || (i && (h.ndim != first->ndim ||
                                                h.shape[1] != first->shape[1])))) {
            snprintf(detail, ds, "%s: dtype or width differs from the other utterances", path);
            err = TOKVOX_ERR_FORMAT;
        }
        free(path);
        if (err)
            return err;
        if (i == 0)
            *first = h;
        rows[i] = h.shape[0];
    }
    return TOKVOX_OK;
}

/* Copies each utterance's values after the header already written. */
static int pack_copy(const char *outdir, const tk_entry *e, size_t n, int dtype,
                     const uint64_t *rows, FILE *fp, char *detail, size_t ds)
{
    int err = TOKVOX_OK;
    for (size_t i = 0; i < n && !err; i++) {
        char *path = app_join_path(outdir, e[i].output);
        tokvox_npy_info h;
        int32_t *values = NULL;
        err = tokvox_npy_read(path, &h, &values, detail, ds);
        if (!err && h.shape[0] != rows[i]) {
            snprintf(detail, ds, "%s: changed while packing", path);
            err = TOKVOX_ERR_STATE;
        }
        if (!err)
            err = tokvox_npy_write_values(fp, dtype, values, (size_t)h.count, detail, ds);
        free(values);
        free(path);
    }
    return err;
}

static int pack_index(const char *path, const tk_entry *e, size_t n, const uint64_t *rows,
                      char *detail, size_t ds)
{
    int err;
    tokvox_atomic_file *f = tokvox_atomic_open(path, &err, detail, ds);
    if (!f)
        return err;
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "utterance", e[i].output);
        cJSON_AddStringToObject(line, "input", e[i].input);
        cJSON_AddNumberToObject(line, "offset", (double)offset);
        cJSON_AddNumberToObject(line, "frames", (double)rows[i]);
        char *text = cJSON_PrintUnformatted(line);
        fprintf(tokvox_atomic_stream(f), "%s\n", text ? text : "{}");
        free(text);
        cJSON_Delete(line);
        offset += rows[i];
    }
    return tokvox_atomic_commit(f, detail, ds);
}

static int pack_one(const char *outdir, const char *npy, const char *index, const tk_entry *e,
                    size_t n, int dtype, char *detail, size_t ds)
{
    uint64_t *rows = malloc(sizeof *rows * n);
    tokvox_npy_info first = {0};
    int err = rows ? pack_rows(outdir, e, n, dtype, rows, &first, detail, ds)
                   : TOKVOX_ERR_NO_MEMORY;
    tokvox_atomic_file *f = err ? NULL : tokvox_atomic_open(npy, &err, detail, ds);
    if (f) {
        uint64_t shape[2] = {0, first.shape[1]};
        for (size_t i = 0; i < n; i++)
            shape[0] += rows[i];
        char header[TOKVOX_NPY_WRITE_HEADER_MAX];
        size_t len = tokvox_npy_format_header(header, sizeof header, dtype, first.ndim, shape);
        FILE *fp = tokvox_atomic_stream(f);
        err = fwrite(header, 1, len, fp) == len ? TOKVOX_OK : TOKVOX_ERR_IO;
        if (!err)
            err = pack_copy(outdir, e, n, dtype, rows, fp, detail, ds);
        if (err)
            tokvox_atomic_abort(f);
        else
            err = tokvox_atomic_commit(f, detail, ds);
    }
    if (!err)
        err = pack_index(index, e, n, rows, detail, ds);
    free(rows);
    return err;
}

static void pack_names(const char *outdir, const char *suffix, size_t g, char **npy,
                       char **index)
{
    char name[96];
    snprintf(name, sizeof name, "shard-%05zu%s.npy", g, suffix);
    *npy = app_join_path(outdir, name);
    snprintf(name, sizeof name, "shard-%05zu%s.index.jsonl", g, suffix);
    *index = app_join_path(outdir, name);
}

int tk_pack(const char *outdir, const char *suffix, const tk_entry *entries, size_t n,
            size_t per_pack, int dtype)
{
    char detail[1024] = "";
    size_t g = 0;
    int err = TOKVOX_OK;
    for (; g * per_pack < n && !err; g++) {
        char *npy, *index;
        pack_names(outdir, suffix, g, &npy, &index);
        size_t count = n - g * per_pack < per_pack ? n - g * per_pack : per_pack;
        err = pack_one(outdir, npy, index, entries + g * per_pack, count, dtype, detail,
                       sizeof detail);
        free(npy);
        free(index);
    }
    if (err)
        return app_fail("tokenize", "--shard-out: %s", detail[0] ? detail : tokvox_strerror(err));
    for (;; g++) { /* packs of an earlier, larger run would mislead */
        char *npy, *index;
        pack_names(outdir, suffix, g, &npy, &index);
        int gone = unlink(npy) != 0;
        unlink(index);
        free(npy);
        free(index);
        if (gone)
            break;
    }
    return 0;
}
