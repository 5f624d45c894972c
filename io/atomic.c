/* tokvox io: write-to-temporary-then-rename files (tokvox_atomic_*) and the
 * temporary-file helpers audio.c shares. */
#include "audio_internal.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tokvox_atomic_file {
    FILE *fp;
    char *path;     /* destination */
    char *tmp_path; /* NULL for stdout */
};

/* ---- shared helpers -------------------------------------------------------- */

void tokvox_io_detail(char *detail, size_t detail_size, const char *fmt, ...)
{
    if (!detail || !detail_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, detail_size, fmt, ap);
    va_end(ap);
}

const char *tokvox_io_strerror(int err, char *buf, size_t size)
{
    if (!buf || !size)
        return "";
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
    const char *s = strerror_r(err, buf, size); /* GNU flavour */
    if (s != buf)
        snprintf(buf, size, "%s", s);
#else
    if (strerror_r(err, buf, size) != 0)
        snprintf(buf, size, "error %d", err);
#endif
    return buf;
}

int tokvox_io_fail(char *detail, size_t detail_size, const char *path, int err)
{
    char eb[128];
    tokvox_io_detail(detail, detail_size, "%s: %s", path, tokvox_io_strerror(err, eb, sizeof eb));
    return TOKVOX_ERR_IO;
}

static char *dup_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

/* The process umask, read without changing it (umask(2) is not thread-safe
 * to query); 022 when /proc is not there. */
static mode_t current_umask(void)
{
    mode_t mask = 022;
    FILE *fp = fopen("/proc/self/status", "re");
    if (!fp)
        return mask;
    char line[256];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "Umask:", 6) == 0) {
            char *end = NULL;
            unsigned long v = strtoul(line + 6, &end, 8);
            if (end != line + 6)
                mask = (mode_t)(v & 0777);
            break;
        }
    }
    fclose(fp);
    return mask;
}

/* Splits path into folder (malloc'ed; "." when none) and base name. */
static char *folder_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return dup_string(".");
    }
    *base = slash + 1;
    size_t len = (size_t)(slash - path);
    if (len == 0)
        len = 1; /* "/name": the folder is "/" */
    char *dir = malloc(len + 1);
    if (!dir)
        return NULL;
    memcpy(dir, path, len);
    dir[len] = '\0';
    return dir;
}

int tokvox_io_temp_create(const char *path, char **tmp_path, int *fd, char *detail,
                          size_t detail_size)
{
    *tmp_path = NULL;
    *fd = -1;
    if (!path || !*path) {
        tokvox_io_detail(detail, detail_size, "empty output path");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    const char *base = NULL;
    char *dir = folder_of(path, &base);
    if (!dir) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        return TOKVOX_ERR_NO_MEMORY;
    }
    if (!*base) {
        tokvox_io_detail(detail, detail_size, "%s: is a folder, not a file name", path);
        free(dir);
        return TOKVOX_ERR_IO;
    }
    /* Keep the temporary's name under NAME_MAX whatever the base name. */
    int base_len = (int)strnlen(base, 200);
    size_t size = strlen(dir) + (size_t)base_len + 32;
    char *tmpl = malloc(size);
    if (!tmpl) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        free(dir);
        return TOKVOX_ERR_NO_MEMORY;
    }
    if (base == path)
        snprintf(tmpl, size, ".%.*s.tmp-XXXXXX", base_len, base);
    else
        snprintf(tmpl, size, "%.*s.%.*s.tmp-XXXXXX", (int)(base - path), path, base_len, base);

    int f = mkstemp(tmpl);
    if (f < 0) {
        char eb[128];
        int err = errno;
        tokvox_io_detail(detail, detail_size, "%s: %s", dir, tokvox_io_strerror(err, eb, sizeof eb));
        free(tmpl);
        free(dir);
        return TOKVOX_ERR_IO;
    }
    free(dir);
    (void)fcntl(f, F_SETFD, FD_CLOEXEC);

    /* mkstemp makes the file 0600: give it the mode the destination would
     * have (an existing file's, otherwise what creat() would give). */
    struct stat st;
    mode_t mode;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 0777;
    else
        mode = 0666 & ~current_umask();
    (void)fchmod(f, mode);

    *tmp_path = tmpl;
    *fd = f;
    return TOKVOX_OK;
}

static void sync_folder(const char *path)
{
    const char *base = NULL;
    char *dir = folder_of(path, &base);
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse */
        close(fd);
    }
    free(dir);
}

int tokvox_io_temp_install(int fd, const char *tmp_path, const char *path, char *detail,
                           size_t detail_size)
{
    char eb[128];
    if (fd >= 0) {
        /* EINVAL/ENOTSUP: the file system cannot sync; the data is written. */
        if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
            int err = errno;
            tokvox_io_detail(detail, detail_size, "%s: %s", path,
                             tokvox_io_strerror(err, eb, sizeof eb));
            close(fd);
            unlink(tmp_path);
            return TOKVOX_ERR_IO;
        }
        if (close(fd) != 0 && errno != EINTR) {
            int err = errno;
            tokvox_io_detail(detail, detail_size, "%s: %s", path,
                             tokvox_io_strerror(err, eb, sizeof eb));
            unlink(tmp_path);
            return TOKVOX_ERR_IO;
        }
    }
    if (rename(tmp_path, path) != 0) {
        int err = errno;
        tokvox_io_detail(detail, detail_size, "%s: %s", path, tokvox_io_strerror(err, eb, sizeof eb));
        unlink(tmp_path);
        return TOKVOX_ERR_IO;
    }
    sync_folder(path);
    return TOKVOX_OK;
}

int tokvox_io_is_special(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* ---- tokvox_atomic_* --------------------------------------------------------- */

static void atomic_free(tokvox_atomic_file *f)
{
    free(f->path);
    free(f->tmp_path);
    free(f);
}

tokvox_atomic_file *tokvox_atomic_open(const char *path, int *error, char *detail,
                                       size_t detail_size)
{
    int dummy;
    if (!error)
        error = &dummy;
    if (!path || !*path) {
        tokvox_io_detail(detail, detail_size, "empty output path");
        *error = TOKVOX_ERR_INVALID_ARGUMENT;
        return NULL;
    }
    tokvox_atomic_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_string(path))) {
        free(f);
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        f->fp = stdout;
        *error = TOKVOX_OK;
        return f;
    }
    if (tokvox_io_is_special(path)) {
        /* a device or FIFO is written in place: renaming over it would
         * replace the node itself */
        f->fp = fopen(path, "wb");
        if (f->fp) {
            *error = TOKVOX_OK;
            return f;
        }
        *error = tokvox_io_fail(detail, detail_size, path, errno);
        atomic_free(f);
        return NULL;
    }
    int fd = -1;
    int rc = tokvox_io_temp_create(path, &f->tmp_path, &fd, detail, detail_size);
    if (rc != TOKVOX_OK) {
        atomic_free(f);
        *error = rc;
        return NULL;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        char eb[128];
        int err = errno;
        tokvox_io_detail(detail, detail_size, "%s: %s", path, tokvox_io_strerror(err, eb, sizeof eb));
        close(fd);
        unlink(f->tmp_path);
        atomic_free(f);
        *error = err == ENOMEM ? TOKVOX_ERR_NO_MEMORY : TOKVOX_ERR_IO;
        return NULL;
    }
    *error = TOKVOX_OK;
    return f;
}

void *tokvox_atomic_stream(tokvox_atomic_file *f) { return f ? f->fp : NULL; }

const char *tokvox_atomic_temp_path(const tokvox_atomic_file *f)
{
    return f ? f->tmp_path : NULL;
}

/* Both commit and abort release f.  A failed commit removes the temporary
 * and leaves the destination as it was. */
int tokvox_atomic_commit(tokvox_atomic_file *f, char *detail, size_t detail_size)
{
    char eb[128];
    if (!f) {
        tokvox_io_detail(detail, detail_size, "no file to commit");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (!f->tmp_path) { /* stdout, a device or a FIFO: written in place */
        int rc = TOKVOX_OK;
        errno = 0;
        if (fflush(f->fp) != 0 || ferror(f->fp)) {
            int err = errno ? errno : EIO;
            tokvox_io_detail(detail, detail_size, "%s: %s",
                             f->fp == stdout ? "stdout" : f->path,
                             tokvox_io_strerror(err, eb, sizeof eb));
            rc = TOKVOX_ERR_IO;
        }
        if (f->fp != stdout)
            fclose(f->fp);
        atomic_free(f);
        return rc;
    }

    errno = 0;
    int failed = fflush(f->fp) != 0;
    int err = errno;
    if (!failed && ferror(f->fp)) {
        failed = 1; /* an earlier write failed; its errno is gone */
        err = EIO;
    }
    if (!failed && fsync(fileno(f->fp)) != 0 && errno != EINVAL && errno != ENOTSUP) {
        failed = 1;
        err = errno;
    }
    if (fclose(f->fp) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    f->fp = NULL;
    if (failed) {
        tokvox_io_detail(detail, detail_size, "%s: %s", f->path,
                         tokvox_io_strerror(err ? err : EIO, eb, sizeof eb));
        unlink(f->tmp_path);
        atomic_free(f);
        return TOKVOX_ERR_IO;
    }
    int rc = tokvox_io_temp_install(-1, f->tmp_path, f->path, detail, detail_size);
    atomic_free(f);
    return rc;
}

void tokvox_atomic_abort(tokvox_atomic_file *f)
{
    if (!f)
        return;
    if (f->tmp_path) {
        if (f->fp)
            fclose(f->fp);
        unlink(f->tmp_path);
    } else if (f->fp == stdout) {
        fflush(f->fp); /* what was written is gone already */
    } else if (f->fp) {
        fclose(f->fp);
    }
    atomic_free(f);
}
