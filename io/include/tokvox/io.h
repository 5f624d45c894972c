/* tokvox io: audio files and resampling for the tokvox apps.
 *
 * Reads every format libsndfile reads (files or "-" for stdin), downmixes to
 * mono and resamples with libsoxr to the rate asked for.  Writes WAV (16-bit),
 * FLAC (16-bit) or Ogg/Vorbis chosen by the extension, optionally resampled,
 * to a temporary file in the destination folder that is renamed over the
 * destination only when complete, so a failure never leaves a half-written or
 * clobbered file.  "-" writes a WAV stream to stdout.
 *
 * Errors are tokvox_error codes (tokvox/tokvox.h); a message naming the file
 * and the problem goes into the caller's detail buffer.
 * [thread-safe]: libsndfile opens are serialised internally.
 */
#ifndef TOKVOX_IO_H
#define TOKVOX_IO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What was read, before downmix and resampling. */
typedef struct tokvox_audio_source {
    int rate;          /* the file's sample rate */
    int channels;      /* the file's channel count */
    int64_t frames;    /* frames in the file, at its rate */
    int64_t nonfinite; /* samples (of any channel) that were NaN/Inf, read as 0 */
    int64_t clipped;   /* samples (of any channel) beyond [-1, 1], clamped */
    int64_t declared;  /* frames a seekable file's header declares, 0 = unknown (a pipe):
                          only a hint (for progress), frames is what was read */
} tokvox_audio_source;

/* Upper bound on what we accept, whatever a header claims. */
#define TOKVOX_AUDIO_MAX_RATE 384000
#define TOKVOX_AUDIO_MIN_RATE 1000
#define TOKVOX_AUDIO_MAX_CHANNELS 64

/* Raw PCM (no header), as sox, arecord and opusenc read and write it:
 * interleaved little-endian samples. */
typedef enum tokvox_raw_encoding {
    TOKVOX_RAW_S16LE = 0, /* the default */
    TOKVOX_RAW_S24LE,
    TOKVOX_RAW_S32LE,
    TOKVOX_RAW_F32LE,
    TOKVOX_RAW_U8,
} tokvox_raw_encoding;

typedef struct tokvox_raw_format {
    int rate;     /* Hz (reading; a writer takes its out_rate) */
    int channels; /* reading: interleaved channels; a writer writes mono */
    tokvox_raw_encoding encoding;
} tokvox_raw_format;

/* "s16le", "s24le", "s32le", "f32le", "u8" -> *encoding; -1 if none. */
int tokvox_raw_encoding_parse(const char *name, tokvox_raw_encoding *encoding);

/* Read path (or "-" for stdin) as mono float at target_rate (0 = keep the
 * file's rate).  *samples is malloc'ed, owned by the caller (free()).
 * Float files can hold what no audio is: NaN/Inf samples are replaced by 0
 * and samples beyond [-1, 1] are clamped, per channel before the downmix;
 * source counts both, so callers can warn.  Values are not otherwise
 * altered.  source may be NULL. */
int tokvox_audio_read(const char *path, int target_rate, float **samples, size_t *n,
                      tokvox_audio_source *source, char *detail, size_t detail_size);

/* The same samples as tokvox_audio_read, a chunk at a time, in memory that
 * does not grow with the file (tokvox_audio_read is built on it).  From a
 * pipe, WAV (also with the "unknown" size fields streaming writers put in
 * it), AIFF and raw PCM are read as they arrive; other formats (FLAC needs
 * to seek) are read whole first.
 *
 *   int err;
 *   tokvox_audio_reader *r = tokvox_audio_reader_open(path, 16000, &err, msg, sizeof msg);
 *   while (r && tokvox_audio_reader_read(r, buf, 320, &got, msg, sizeof msg) == 0 && got)
 *       use(buf, got);
 *   tokvox_audio_reader_close(r);
 */
typedef struct tokvox_audio_reader tokvox_audio_reader;

/* Opens path ("-" for stdin) to read as mono float at target_rate (0 = the
 * file's rate).  NULL on failure, with *error (may be NULL) set and detail
 * naming the file: everything tokvox_audio_read refuses up front (a missing
 * or unreadable file, an unsupported rate or channel count, no audio at
 * all) is refused here, before any sample is read. */
tokvox_audio_reader *tokvox_audio_reader_open(const char *path, int target_rate, int *error,
                                              char *detail, size_t detail_size);

/* The same for raw PCM in `raw` (rate, channels, encoding all set). */
tokvox_audio_reader *tokvox_audio_reader_open_raw(const char *path, const tokvox_raw_format *raw,
                                                  int target_rate, int *error, char *detail,
                                                  size_t detail_size);

/* 1 when libsndfile opens path as audio (even one with no samples). */
int tokvox_audio_is_audio(const char *path);

/* Up to max samples into out; *got is max except at the end of the stream,
 * and 0 from the end on.  A failure mid-file (a read error) returns its
 * error with detail naming the file, *got still counting what this call
 * delivered before it; every later call fails the same way. */
int tokvox_audio_reader_read(tokvox_audio_reader *r, float *out, size_t max, size_t *got,
                             char *detail, size_t detail_size);

/* The file's rate and channels, and the frames, non-finite and clipped
 * samples taken from the file so far (up to 4096 frames ahead of what read
 * handed out): tokvox_audio_read's totals once read has returned the end. */
void tokvox_audio_reader_source(const tokvox_audio_reader *r, tokvox_audio_source *source);

/* Closes the file and frees the reader; NULL is ignored. */
void tokvox_audio_reader_close(tokvox_audio_reader *r);

/* Resample mono float from in_rate to out_rate (libsoxr, high quality).
 * *out is malloc'ed, owned by the caller.  Equal rates copy. */
int tokvox_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                    size_t *n_out);

/* Write mono float samples at rate to path, resampled to out_rate (0 = rate).
 * Format from the extension: .wav, .flac, .ogg; "-" = WAV on stdout.
 * Samples are clipped to [-1, 1].  tokvox_audio_writer_* on a whole buffer. */
int tokvox_audio_write(const char *path, const float *samples, size_t n, int rate, int out_rate,
                       char *detail, size_t detail_size);

/* A streaming audio writer: mono float samples at `rate` in, written as
 * they come, resampled (libsoxr, streaming) to out_rate (0 = rate), in the
 * format of the extension (.wav, .flac, .ogg; 16-bit), or raw PCM when raw
 * is given (its encoding; rate and channels are ignored: out_rate, mono).
 * Memory does not grow with the length.
 *
 *  - a file: a temporary beside it, renamed over it by commit (a failure
 *    never leaves a partial file or clobbers an old one);
 *  - "-" (stdout) or a FIFO: the bytes go out as they are written; WAV then
 *    has "unknown" (0xFFFFFFFF) size fields, as sox and ffmpeg write to
 *    pipes; stdout redirected to a regular file gets a proper WAV;
 *  - a device (/dev/null): written in place.
 * [one thread per writer] */
typedef struct tokvox_audio_writer tokvox_audio_writer;

tokvox_audio_writer *tokvox_audio_writer_open(const char *path, int rate, int out_rate,
                                              const tokvox_raw_format *raw, int *error,
                                              char *detail, size_t detail_size);
/* Writes n samples (NaN/Inf as 0, clipped to [-1, 1]).  A failure is
 * sticky: every later call repeats it. */
int tokvox_audio_writer_write(tokvox_audio_writer *w, const float *x, size_t n, char *detail,
                              size_t detail_size);
/* Frames written so far at out_rate. */
uint64_t tokvox_audio_writer_frames(const tokvox_audio_writer *w);
/* Flushes the resampler and finishes the file: exactly `frames` frames at
 * out_rate when frames > 0 (the tail trimmed or padded with silence), and
 * frees w whatever happens.  A failure removes the temporary. */
int tokvox_audio_writer_commit(tokvox_audio_writer *w, uint64_t frames, char *detail,
                               size_t detail_size);
/* Drops what was written to a file (the destination stays as it was) and
 * frees w; NULL is ignored. */
void tokvox_audio_writer_abort(tokvox_audio_writer *w);

/* A temporary-file-then-rename writer for any file the apps write.
 * tokvox_atomic_open creates a temporary beside path (or uses stdout for
 * "-"); commit flushes, fsyncs and renames; abort removes the temporary. */
typedef struct tokvox_atomic_file tokvox_atomic_file;
tokvox_atomic_file *tokvox_atomic_open(const char *path, int *error, char *detail,
                                       size_t detail_size);
/* The stdio stream to write to; owned by the atomic file. */
void *tokvox_atomic_stream(tokvox_atomic_file *f);
const char *tokvox_atomic_temp_path(const tokvox_atomic_file *f);
int tokvox_atomic_commit(tokvox_atomic_file *f, char *detail, size_t detail_size);
void tokvox_atomic_abort(tokvox_atomic_file *f);

#ifdef __cplusplus
}
#endif
#endif
