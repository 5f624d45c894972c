/* Internal to the tokvox io library (io/audio.c, io/atomic.c) and to the
 * fuzz target tests/fuzz/fuzz_audio.c.  Not installed, not a stable API. */
#ifndef TOKVOX_IO_AUDIO_INTERNAL_H
#define TOKVOX_IO_AUDIO_INTERNAL_H

#include "tokvox/io.h"

#include <sndfile.h>
#include <stddef.h>

#if defined(__GNUC__)
#define TOKVOX_IO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TOKVOX_IO_PRINTF(f, a)
#endif

/* Most mono samples a read keeps (before resampling), whatever the input. */
#define TOKVOX_AUDIO_MAX_SAMPLES ((size_t)1 << 31)

/* tokvox_audio_read on bytes [data, data + size), opened with libsndfile's
 * virtual I/O (under the library's open lock) and read by the same reader
 * as files and stdin: every frame whatever the header claims, rate and
 * channels checked, NaN/Inf read as 0 and overs clamped (both counted in
 * source), downmixed to mono, resampled to target_rate (0 = keep).  name
 * is used in messages.  More than max_samples frames (0 or above
 * TOKVOX_AUDIO_MAX_SAMPLES: that) give TOKVOX_ERR_AUDIO. */
int tokvox_audio_read_memory(const void *data, size_t size, const char *name, int target_rate,
                             size_t max_samples, float **samples, size_t *n,
                             tokvox_audio_source *source, char *detail, size_t detail_size);

/* ---- shared by atomic.c and audio.c ------------------------------------------ */

/* snprintf into detail when detail && detail_size. */
void tokvox_io_detail(char *detail, size_t detail_size, const char *fmt, ...)
    TOKVOX_IO_PRINTF(3, 4);

/* strerror(err), thread-safe, written into buf. */
const char *tokvox_io_strerror(int err, char *buf, size_t size);

/* "path: strerror(err)" into detail; returns TOKVOX_ERR_IO, so a failed
 * system call reads `return tokvox_io_fail(detail, size, path, errno);`. */
int tokvox_io_fail(char *detail, size_t detail_size, const char *path, int err);

/* 1 when path exists and is neither a regular file nor a folder (a device,
 * a FIFO): such destinations are written in place, never renamed over. */
int tokvox_io_is_special(const char *path);

/* Creates the temporary "DIR/.NAME.tmp-XXXXXX" beside path (mkstemp), close
 * on exec, with the mode the destination should get (an existing
 * destination's, otherwise 0666 & ~umask).  On success *tmp_path (malloc'ed)
 * and *fd are set.  Errors: TOKVOX_ERR_IO naming the folder,
 * TOKVOX_ERR_NO_MEMORY. */
int tokvox_io_temp_create(const char *path, char **tmp_path, int *fd, char *detail,
                          size_t detail_size);

/* Finishes a temporary: when fd >= 0 fsyncs and closes it; then renames
 * tmp_path over path and fsyncs the folder.  On any failure the temporary is
 * removed, path is untouched and TOKVOX_ERR_IO names path. */
int tokvox_io_temp_install(int fd, const char *tmp_path, const char *path, char *detail,
                           size_t detail_size);

#endif
