/* A main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line and on
 * every file in the folders named (not recursive), then prints how many ran.
 * The meson tests fuzz_replay_NAME run it over tests/fuzz/corpus/NAME and
 * tests/fuzz/regressions/NAME in every build, sanitized or not; AFL++ can
 * use it as a file-argument driver (tests/fuzz/README.md).
 *
 * Each input gets a buffer of exactly its size, as libFuzzer gives, so an
 * over-read is caught by ASan.  A harness that finds a broken promise calls
 * abort(), and a sanitizer report ends the process with an error: either way
 * the exit status is non-zero, and the last "input:" line names the file. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes of the file at path in a buffer of exactly their size (one byte
 * for an empty file, so data is never NULL); NULL with a message if not. */
static uint8_t *read_input(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    *size = (size_t)st.st_size;
    uint8_t *data = malloc(*size ? *size : 1);
    int ok = data && fread(data, 1, *size, f) == *size;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "replay: %s: %s\n", path, data ? "cannot read" : "out of memory");
        free(data);
        return NULL;
    }
    return data;
}

static int run_file(const char *path)
{
    size_t size = 0;
    uint8_t *data = read_input(path, &size);
    if (!data)
        return 1;
    printf("input: %s (%zu bytes)\n", path, size);
    fflush(stdout); /* named before it runs, in case it crashes */
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *enough_memory(void *p)
{
    if (!p) {
        fputs("replay: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* Paths of the regular files in dir, sorted so runs repeat; NULL (with a
 * message) if dir cannot be read. */
static char **list_folder(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    size_t cap = 16;
    char **paths = enough_memory(malloc(cap * sizeof *paths));
    *n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (de->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* ., .., hidden files (a .gitkeep), subfolders */
        if (*n == cap)
            paths = enough_memory(realloc(paths, (cap *= 2) * sizeof *paths));
        paths[(*n)++] = enough_memory(strdup(path));
    }
    closedir(d);
    qsort(paths, *n, sizeof *paths, by_name);
    return paths;
}

/* Runs every file of the file or folder at path; adds them to *ran. */
static int run_path(const char *path, size_t *ran)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        int failed = run_file(path);
        *ran += !failed;
        return failed;
    }
    size_t n = 0;
    char **paths = list_folder(path, &n);
    int failed = !paths;
    for (size_t i = 0; i < n; i++) {
        failed = failed || run_file(paths[i]);
        *ran += !failed;
        free(paths[i]);
    }
    free(paths);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
        return 2;
    }
    size_t ran = 0;
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &ran))
            return 1;
    printf("replay: %zu inputs ran, none crashed\n", ran);
    return 0;
}
