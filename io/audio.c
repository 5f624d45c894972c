/* tokvox io: reading, resampling and writing audio (libsndfile + libsoxr). */
#define _GNU_SOURCE /* tee(2): a look at a pipe's first bytes without taking them */
#include "audio_internal.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* libsndfile keeps the error of a failed open in globals: opens (and reading
 * that error) happen under this lock. */
static pthread_mutex_t sf_open_lock = PTHREAD_MUTEX_INITIALIZER;

#define READ_CHUNK_FRAMES 4096
#define WRITE_CHUNK 4096
/* Most bytes taken from a pipe on stdin. */
#define MAX_STDIN_BYTES ((size_t)1 << 33)

/* ---- memory files for libsndfile's virtual I/O ------------------------------- */

typedef struct memfile {
    unsigned char *data;
    sf_count_t size; /* bytes in the file */
    sf_count_t cap;  /* bytes allocated (writable files) */
    sf_count_t pos;
    int writable;
} memfile;

static sf_count_t mem_get_filelen(void *user) { return ((memfile *)user)->size; }

static sf_count_t mem_seek(sf_count_t offset, int whence, void *user)
{
    memfile *m = user;
    sf_count_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = m->pos; break;
    case SEEK_END: base = m->size; break;
    default: return -1;
    }
    if (offset > 0 ? base > INT64_MAX - offset : base + offset < 0)
        return -1;
    m->pos = base + offset;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *user)
{
    memfile *m = user;
    if (count <= 0 || m->pos >= m->size)
        return 0;
    sf_count_t avail = m->size - m->pos;
    if (count > avail)
        count = avail;
    memcpy(ptr, m->data + m->pos, (size_t)count);
    m->pos += count;
    return count;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *user)
{
    memfile *m = user;
    if (!m->writable || count <= 0)
        return 0;
    if (m->pos > (sf_count_t)(SIZE_MAX / 2) - count)
        return 0;
    sf_count_t end = m->pos + count;
    if (end > m->cap) {
        sf_count_t cap = m->cap ? m->cap : 65536;
        while (cap < end)
            cap = cap > (sf_count_t)(SIZE_MAX / 4) ? end : cap * 2;
        unsigned char *grown = realloc(m->data, (size_t)cap);
        if (!grown)
            return 0;
        m->data = grown;
        m->cap = cap;
    }
    if (m->pos > m->size) /* a seek past the end leaves a hole of zeros */
        memset(m->data + m->size, 0, (size_t)(m->pos - m->size));
    memcpy(m->data + m->pos, ptr, (size_t)count);
    m->pos = end;
    if (end > m->size)
        m->size = end;
    return count;
}

static sf_count_t mem_tell(void *user) { return ((memfile *)user)->pos; }

static SF_VIRTUAL_IO mem_vio = {mem_get_filelen, mem_seek, mem_read, mem_write, mem_tell};

/* ---- opening ----------------------------------------------------------------------- */

/* Opens fd (vio == NULL) or a memory file.  Returns TOKVOX_OK, TOKVOX_ERR_IO
 * (why = strerror) or TOKVOX_ERR_AUDIO (why = libsndfile's message, read
 * while the lock is held).
 *
 * libsndfile gets its own duplicate of fd, which it always closes: since
 * 1.0.30 sf_open_fd closes the descriptor on failure even when told not to
 * (libsndfile issues #948, #949), so handing it ours would let another
 * thread's newly opened file be closed by our second close(). */
static int open_locked(int fd, memfile *vio, int mode, SF_INFO *info, SNDFILE **out, char *why,
                       size_t why_size)
{
    *out = NULL;
    int mine = -1;
    if (!vio) {
        mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (mine < 0) {
            tokvox_io_strerror(errno, why, why_size);
            return TOKVOX_ERR_IO;
        }
    }
    pthread_mutex_lock(&sf_open_lock);
    SNDFILE *sf = vio ? sf_open_virtual(&mem_vio, mode, info, vio)
                      : sf_open_fd(mine, mode, info, SF_TRUE);
    if (!sf)
        snprintf(why, why_size, "%s", sf_strerror(NULL));
    pthread_mutex_unlock(&sf_open_lock);
    *out = sf;
    return sf ? TOKVOX_OK : TOKVOX_ERR_AUDIO;
}

/* ---- resampling -------------------------------------------------------------------- */

static int rate_ok(int rate) { return rate >= TOKVOX_AUDIO_MIN_RATE && rate <= TOKVOX_AUDIO_MAX_RATE; }

int tokvox_raw_encoding_parse(const char *name, tokvox_raw_encoding *encoding)
{
    static const struct {
        const char *name;
        tokvox_raw_encoding encoding;
    } names[] = {{"s16le", TOKVOX_RAW_S16LE}, {"s24le", TOKVOX_RAW_S24LE},
                 {"s32le", TOKVOX_RAW_S32LE}, {"f32le", TOKVOX_RAW_F32LE},
                 {"u8", TOKVOX_RAW_U8}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name && strcasecmp(name, names[i].name) == 0) {
            *encoding = names[i].encoding;
            return 0;
        }
    return -1;
}

/* libsndfile's headerless format for a raw encoding. */
static int raw_sf_format(tokvox_raw_encoding e)
{
    static const int sub[] = {SF_FORMAT_PCM_16, SF_FORMAT_PCM_24, SF_FORMAT_PCM_32,
                              SF_FORMAT_FLOAT, SF_FORMAT_PCM_U8};
    int i = (int)e >= 0 && (size_t)e < sizeof sub / sizeof sub[0] ? (int)e : 0;
    return SF_FORMAT_RAW | sub[i] | SF_ENDIAN_LITTLE;
}


/* libsoxr as every resampling here runs it: mono float, high quality, one
 * thread.  With the same settings, the streaming reader's soxr_process in
 * blocks gives the very samples of soxr_oneshot on the whole (tested). */
typedef struct soxr_settings {
    soxr_io_spec_t io;
    soxr_quality_spec_t quality;
    soxr_runtime_spec_t runtime;
} soxr_settings;

static soxr_settings resampling(void)
{
    return (soxr_settings){soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I),
                           soxr_quality_spec(SOXR_HQ, 0), soxr_runtime_spec(1)};
}

static soxr_t new_resampler(int in_rate, int out_rate, soxr_error_t *error)
{
    soxr_settings s = resampling();
    return soxr_create((double)in_rate, (double)out_rate, 1, error, &s.io, &s.quality, &s.runtime);
}

/* The resampler's input is finite; this makes sure of its output. */
static void zero_nonfinite(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            x[i] = 0.0f;
}

static int resample_impl(const float *in, size_t n, int in_rate, int out_rate, float **out,
                         size_t *n_out, const char **why)
{
    *out = NULL;
    *n_out = 0;
    *why = NULL;
    if (in_rate == out_rate || n == 0) {
        float *copy = malloc(n ? n * sizeof *copy : 1);
        if (!copy)
            return TOKVOX_ERR_NO_MEMORY;
        if (n)
            memcpy(copy, in, n * sizeof *copy);
        *out = copy;
        *n_out = n;
        return TOKVOX_OK;
    }
    double exact = (double)n * (double)out_rate / (double)in_rate;
    if (!(exact < (double)(SIZE_MAX / sizeof(float)) - 64.0)) {
        *why = "output too long";
        return TOKVOX_ERR_NO_MEMORY;
    }
    /* soxr_oneshot gives round(n * ratio) samples; leave it some room. */
    size_t room = (size_t)ceil(exact) + 2;
    float *buf = malloc(room * sizeof *buf);
    if (!buf)
        return TOKVOX_ERR_NO_MEMORY;
    soxr_settings s = resampling();
    size_t done = 0;
    soxr_error_t err = soxr_oneshot((double)in_rate, (double)out_rate, 1, in, n, NULL, buf, room,
                                    &done, &s.io, &s.quality, &s.runtime);
    if (err) {
        free(buf);
        *why = err;
        return TOKVOX_ERR_AUDIO;
    }
    /* Never turn some audio into none. */
    if (done == 0) {
        buf[0] = 0.0f;
        done = 1;
    }
    zero_nonfinite(buf, done);
    float *shrunk = realloc(buf, done * sizeof *buf);
    *out = shrunk ? shrunk : buf;
    *n_out = done;
    return TOKVOX_OK;
}

int tokvox_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                    size_t *n_out)
{
    if (!out || !n_out)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *n_out = 0;
    if ((n && !in) || !rate_ok(in_rate) || !rate_ok(out_rate))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    const char *why = NULL;
    return resample_impl(in, n, in_rate, out_rate, out, n_out, &why);
}

/* ---- reading ----------------------------------------------------------------------- */

/* soxr's output per call: bounded whatever the ratio (up to 384x up), so a
 * reader's memory does not depend on the rates. */
#define RESAMPLED_BLOCK 8192
/* Room for a PATH_MAX path and the reason. */
#define FAILURE_SIZE 4608

/* A file being read: libsndfile gives blocks of interleaved frames, which
 * are cleaned and downmixed into mono and, when the rates differ, go
 * through a streaming soxr.  read hands out `ready`, which points into mono
 * or resampled. */
struct tokvox_audio_reader {
    char *name;                  /* in messages: the path, "stdin" or a memory name */
    memfile mem;                 /* stdin from a pipe, or tokvox_audio_read_memory's bytes */
    int owns_mem;                /* mem.data was read from a pipe: ours to free */
    int raw;                     /* headerless PCM: info was set by the caller */
    SNDFILE *sf;
    SF_INFO info;
    int target_rate;             /* of the samples handed out */
    size_t max_frames;           /* more frames are an error; 0: no limit */
    soxr_t resampler;            /* NULL when the file is at target_rate */
    float *frames;               /* READ_CHUNK_FRAMES frames from libsndfile */
    float *mono;                 /* the same cleaned and downmixed */
    size_t mono_pos, mono_n;     /* mono[mono_pos, mono_n) not taken yet */
    float *resampled;            /* RESAMPLED_BLOCK samples out of soxr */
    const float *ready;          /* what read hands out next */
    size_t ready_n;
    uint64_t produced;           /* samples handed out so far */
    int file_ended, flushed, ended;
    tokvox_audio_source source;  /* counts so far */
    int error;                   /* the first failure, repeated by every later read */
    char failure[FAILURE_SIZE];  /* its message */
};

/* Records r's failure (the first one sticks) and returns its code. */
static int reader_fail(tokvox_audio_reader *r, int error, const char *fmt, ...)
    TOKVOX_IO_PRINTF(3, 4);
static int reader_fail(tokvox_audio_reader *r, int error, const char *fmt, ...)
{
    if (r->error)
        return r->error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof r->failure, fmt, ap);
    va_end(ap);
    r->error = error;
    return error;
}

/* Copies r's failure into the caller's detail; returns its code. */
static int reader_report(const tokvox_audio_reader *r, char *detail, size_t detail_size)
{
    tokvox_io_detail(detail, detail_size, "%s", r->failure);
    return r->error;
}

/* One sample of a file as the codec takes it.  Float files (WAV, AIFF, CAF)
 * can hold NaN/Inf, which would poison every frame the resampler or the STFT
 * touches: they read as silence.  Their overs (|x| > 1) are clamped, as
 * every integer format is by construction, so the model only sees the range
 * it was trained on; both are counted for the caller's warning. */
static float clean_sample(float v, int64_t *nonfinite, int64_t *clipped)
{
    if (!isfinite(v)) {
        ++*nonfinite;
        return 0.0f;
    }
    if (v > 1.0f || v < -1.0f) {
        ++*clipped;
        return v > 0.0f ? 1.0f : -1.0f;
    }
    return v;
}

/* n frames of ch interleaved channels to mono: the mean of the cleaned
 * channels, summed in double. */
static void downmix(const float *frames, size_t n, int ch, float *mono,
                    tokvox_audio_source *source)
{
    for (size_t i = 0; i < n; i++) {
        const float *frame = frames + i * (size_t)ch;
        double sum = 0.0;
        for (int c = 0; c < ch; c++)
            sum += clean_sample(frame[c], &source->nonfinite, &source->clipped);
        mono[i] = ch == 1 ? (float)sum : (float)(sum / ch);
    }
}

/* The file's next block into mono.  The header's frame count may be absent,
 * wrong or hostile: read until libsndfile has no more, then file_ended. */
static int read_block(tokvox_audio_reader *r)
{
    sf_count_t got = sf_readf_float(r->sf, r->frames, READ_CHUNK_FRAMES);
    if (got <= 0) {
        if (sf_error(r->sf) != SF_ERR_NO_ERROR)
            return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: read error after %" PRId64 " samples (%s)",
                               r->name, r->source.frames, sf_strerror(r->sf));
        r->file_ended = 1;
        return TOKVOX_OK;
    }
    if (got > READ_CHUNK_FRAMES)
        got = READ_CHUNK_FRAMES; /* defensive: never past our block */
    size_t g = (size_t)got, so_far = (size_t)r->source.frames;
    if (r->max_frames && g > r->max_frames - so_far)
        return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: longer than %zu samples", r->name,
                           r->max_frames);
    downmix(r->frames, g, r->info.channels, r->mono, &r->source);
    r->source.frames += (int64_t)g;
    r->mono_pos = 0;
    r->mono_n = g;
    return TOKVOX_OK;
}

/* One soxr call on n samples of in (NULL: flush its tail); its output
 * becomes ready.  *used: the samples of in it took. */
static int run_resampler(tokvox_audio_reader *r, const float *in, size_t n, size_t *used)
{
    size_t made = 0;
    *used = 0;
    soxr_error_t e = soxr_process(r->resampler, in, n, used, r->resampled, RESAMPLED_BLOCK, &made);
    if (!e && in && *used == 0 && made == 0)
        e = "no progress"; /* defensive: soxr always takes input or gives output */
    if (e)
        return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: cannot resample %d Hz to %d Hz (%s)", r->name,
                           r->info.samplerate, r->target_rate, e);
    zero_nonfinite(r->resampled, made);
    if (!in && made == 0)
        r->flushed = 1;
    r->ready = r->resampled;
    r->ready_n = made;
    return TOKVOX_OK;
}

/* Makes the rest of mono ready, as it is or resampled. */
static int take_mono(tokvox_audio_reader *r)
{
    const float *in = r->mono + r->mono_pos;
    size_t n = r->mono_n - r->mono_pos;
    if (!r->resampler) {
        r->ready = in;
        r->ready_n = n;
        r->mono_pos = r->mono_n;
        return TOKVOX_OK;
    }
    size_t used = 0;
    int rc = run_resampler(r, in, n, &used);
    r->mono_pos += used;
    return rc;
}

/* The stream is over.  Resampling never turns some audio into none (a
 * single frame at 48 kHz read at 8 kHz): that reads as one silent sample. */
static void end_stream(tokvox_audio_reader *r)
{
    static const float silence[1] = {0.0f};
    r->ended = 1;
    if (r->produced == 0) {
        r->ready = silence;
        r->ready_n = 1;
    }
}

/* Makes samples ready unless the stream has ended; the stages run in order
 * of what is pending: mono, then the file, then soxr's tail.  A stage that
 * fails records it in r->error, which ends the loop. */
static int refill(tokvox_audio_reader *r)
{
    while (r->ready_n == 0 && !r->ended && !r->error) {
        if (r->mono_pos < r->mono_n)
            take_mono(r);
        else if (!r->file_ended)
            read_block(r);
        else if (r->resampler && !r->flushed) {
            size_t unused;
            run_resampler(r, NULL, 0, &unused);
        } else
            end_stream(r);
    }
    return r->error;
}

int tokvox_audio_reader_read(tokvox_audio_reader *r, float *out, size_t max, size_t *got,
                             char *detail, size_t detail_size)
{
    if (got)
        *got = 0;
    if (!r || !got || (max && !out)) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_reader_read: missing argument");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    while (*got < max) {
        if (refill(r) != TOKVOX_OK)
            return reader_report(r, detail, detail_size);
        if (r->ready_n == 0)
            break;
        size_t take = r->ready_n < max - *got ? r->ready_n : max - *got;
        memcpy(out + *got, r->ready, take * sizeof *out);
        r->ready += take;
        r->ready_n -= take;
        r->produced += take;
        *got += take;
    }
    return TOKVOX_OK;
}

void tokvox_audio_reader_source(const tokvox_audio_reader *r, tokvox_audio_source *source)
{
    if (r && source)
        *source = r->source;
}

void tokvox_audio_reader_close(tokvox_audio_reader *r)
{
    if (!r)
        return;
    if (r->sf)
        sf_close(r->sf);
    if (r->resampler)
        soxr_delete(r->resampler);
    free(r->frames);
    free(r->mono);
    free(r->resampled);
    if (r->owns_mem)
        free(r->mem.data);
    free(r->name);
    free(r);
}

/* ---- opening a reader -------------------------------------------------------------- */

static tokvox_audio_reader *reader_new(const char *name, size_t max_frames)
{
    tokvox_audio_reader *r = calloc(1, sizeof *r);
    char *copy = strdup(name);
    if (!r || !copy) {
        free(r);
        free(copy);
        return NULL;
    }
    r->name = copy;
    r->max_frames = max_frames;
    return r;
}

/* libsndfile on fd, or on r->mem when fd < 0. */
static int open_sndfile(tokvox_audio_reader *r, int fd)
{
    char why[256];
    int rc = open_locked(fd, fd < 0 ? &r->mem : NULL, SFM_READ, &r->info, &r->sf, why, sizeof why);
    if (rc == TOKVOX_ERR_IO)
        return reader_fail(r, rc, "%s: %s", r->name, why);
    if (rc != TOKVOX_OK)
        return reader_fail(r, rc, "%s: not a readable audio file (%s)", r->name, why);
    return TOKVOX_OK;
}

/* The system's reason, as "NAME: No such file or directory". */
static int fail_errno(tokvox_audio_reader *r, int err)
{
    char eb[128];
    return reader_fail(r, TOKVOX_ERR_IO, "%s: %s", r->name, tokvox_io_strerror(err, eb, sizeof eb));
}

/* Reads all of a non-seekable fd (a pipe) into r->mem. */
static int slurp(tokvox_audio_reader *r, int fd)
{
    size_t cap = 0, len = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_STDIN_BYTES) {
                free(buf);
                return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: more than %zu bytes of input",
                                   r->name, MAX_STDIN_BYTES);
            }
            size_t want = cap ? cap * 2 : 65536;
            unsigned char *grown = realloc(buf, want);
            if (!grown) {
                free(buf);
                return reader_fail(r, TOKVOX_ERR_NO_MEMORY, "%s: out of memory", r->name);
            }
            buf = grown;
            cap = want;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int err = errno;
            free(buf);
            return fail_errno(r, err);
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    r->mem = (memfile){buf, (sf_count_t)len, (sf_count_t)cap, 0, 0};
    r->owns_mem = 1;
    return TOKVOX_OK;
}

/* Whether a pipe starts like WAV or AIFF, which libsndfile reads from a
 * pipe as the bytes arrive.  tee(2) copies the pipe's first bytes without
 * taking them, so whatever the answer, the reader still gets them all.  A
 * writer that has not sent 12 bytes within about a second gets the
 * whole-stream path (correct, only not incremental). */
static int pipe_streams(int fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return 0;
    unsigned char head[12];
    ssize_t n = 0;
    for (int tries = 0; tries < 1000; tries++) {
        n = tee(fd, p[1], sizeof head, 0); /* waits for the first byte */
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (size_t)n == sizeof head || read(p[0], head, (size_t)n) != n)
            break;
        n = 0; /* too few bytes so far: drop the copy, look again */
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    int full = n == (ssize_t)sizeof head && read(p[0], head, sizeof head) == n;
    close(p[0]);
    close(p[1]);
    if (!full)
        return 0;
    int wav = (!memcmp(head, "RIFF", 4) || !memcmp(head, "RF64", 4)) && !memcmp(head + 8, "WAVE", 4);
    int aiff = !memcmp(head, "FORM", 4) && (!memcmp(head + 8, "AIFF", 4) || !memcmp(head + 8, "AIFC", 4));
    return wav || aiff;
}

/* Opens libsndfile on fd: files and block devices directly; pipes of WAV,
 * AIFF or raw PCM directly too (libsndfile reads them front to back);
 * other pipes and terminals through memory, since they cannot seek, which
 * the other formats need. */
static int open_fd(tokvox_audio_reader *r, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail_errno(r, errno);
    if (S_ISDIR(st.st_mode))
        return fail_errno(r, EISDIR);
    if (S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) >= st.st_size)
        return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: empty file, no audio samples", r->name);
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || r->raw ||
        (S_ISFIFO(st.st_mode) && pipe_streams(fd)))
        return open_sndfile(r, fd);
    int rc = slurp(r, fd);
    return rc != TOKVOX_OK ? rc : open_sndfile(r, -1);
}

/* Opens path, or stdin for "-" (which stays open: it is not ours). */
static int open_path(tokvox_audio_reader *r, const char *path)
{
    if (strcmp(path, "-") == 0)
        return open_fd(r, 0);
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail_errno(r, errno);
    int rc = open_fd(r, fd);
    close(fd); /* libsndfile has a duplicate of its own */
    return rc;
}

/* Checks the open file against what the codec takes, sets up the blocks and
 * the resampler, and reads the first block: a stream with no audio fails
 * here, before anyone reads it. */
static int reader_start(tokvox_audio_reader *r, int target_rate)
{
    if (target_rate != 0 && !rate_ok(target_rate))
        return reader_fail(r, TOKVOX_ERR_INVALID_ARGUMENT,
                           "%s: cannot resample to %d Hz (use %d..%d)", r->name, target_rate,
                           TOKVOX_AUDIO_MIN_RATE, TOKVOX_AUDIO_MAX_RATE);
    const int rate = r->info.samplerate, ch = r->info.channels;
    if (!rate_ok(rate))
        return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: sample rate %d Hz is not supported", r->name,
                           rate);
    if (ch < 1 || ch > TOKVOX_AUDIO_MAX_CHANNELS)
        return reader_fail(r, TOKVOX_ERR_AUDIO, "%s: %d channels are not supported (at most %d)",
                           r->name, ch, TOKVOX_AUDIO_MAX_CHANNELS);
    r->source.rate = rate;
    r->source.channels = ch;
    /* libsndfile's count is a guess on a pipe (and from a raw or lying file) */
    if (r->info.seekable && !r->raw && r->info.frames > 0 && r->info.frames < INT64_MAX / 2)
        r->source.declared = r->info.frames;
    r->target_rate = target_rate ? target_rate : rate;
    r->frames = malloc((size_t)READ_CHUNK_FRAMES * (size_t)ch * sizeof *r->frames);
    r->mono = malloc((size_t)READ_CHUNK_FRAMES * sizeof *r->mono);
    if (!r->frames || !r->mono)
        return reader_fail(r, TOKVOX_ERR_NO_MEMORY, "%s: out of memory", r->name);
    if (r->target_rate != rate) {
        soxr_error_t e = NULL;
        r->resampled = malloc(RESAMPLED_BLOCK * sizeof *r->resampled);
        r->resampler = r->resampled ? new_resampler(rate, r->target_rate, &e) : NULL;
        if (!r->resampler)
            return reader_fail(r, r->resampled ? TOKVOX_ERR_AUDIO : TOKVOX_ERR_NO_MEMORY,
                               "%s: cannot resample %d Hz to %d Hz (%s)", r->name, rate,
                               r->target_rate, e ? e : "out of memory");
    }
    if (read_block(r) == TOKVOX_OK && r->file_ended)
        reader_fail(r, TOKVOX_ERR_AUDIO, "%s: no audio samples", r->name);
    return r->error;
}

/* Hands back r started, or on failure frees it and reports why. */
static tokvox_audio_reader *started(tokvox_audio_reader *r, int target_rate, int *error,
                                    char *detail, size_t detail_size)
{
    int rc = r->error ? r->error : reader_start(r, target_rate);
    if (error)
        *error = rc;
    if (rc == TOKVOX_OK)
        return r;
    reader_report(r, detail, detail_size);
    tokvox_audio_reader_close(r);
    return NULL;
}

/* The reader of path ("-": stdin) at most max_frames long (0: any); raw PCM
 * when raw is not NULL. */
static tokvox_audio_reader *reader_open(const char *path, const tokvox_raw_format *raw,
                                        int target_rate, size_t max_frames, int *error,
                                        char *detail, size_t detail_size)
{
    if (error)
        *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (!path || !*path) {
        tokvox_io_detail(detail, detail_size, path ? "empty input path" : "missing input path");
        return NULL;
    }
    tokvox_audio_reader *r = reader_new(strcmp(path, "-") == 0 ? "stdin" : path, max_frames);
    if (!r) {
        if (error)
            *error = TOKVOX_ERR_NO_MEMORY;
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        return NULL;
    }
    if (raw) {
        r->raw = 1;
        r->info.samplerate = raw->rate;
        r->info.channels = raw->channels;
        r->info.format = raw_sf_format(raw->encoding);
        if (!rate_ok(raw->rate) || raw->channels < 1 ||
            raw->channels > TOKVOX_AUDIO_MAX_CHANNELS || !sf_format_check(&r->info))
            reader_fail(r, TOKVOX_ERR_INVALID_ARGUMENT,
                        "%s: raw PCM of %d Hz, %d channels is not supported", r->name, raw->rate,
                        raw->channels);
    }
    if (!r->error)
        open_path(r, path);
    return started(r, target_rate, error, detail, detail_size);
}

int tokvox_audio_is_audio(const char *path)
{
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return 0;
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = NULL;
    char why[256];
    int rc = open_locked(fd, NULL, SFM_READ, &info, &sf, why, sizeof why);
    close(fd);
    if (sf)
        sf_close(sf);
    return rc == TOKVOX_OK;
}

tokvox_audio_reader *tokvox_audio_reader_open(const char *path, int target_rate, int *error,
                                              char *detail, size_t detail_size)
{
    return reader_open(path, NULL, target_rate, 0, error, detail, detail_size);
}

tokvox_audio_reader *tokvox_audio_reader_open_raw(const char *path, const tokvox_raw_format *raw,
                                                  int target_rate, int *error, char *detail,
                                                  size_t detail_size)
{
    if (!raw) {
        if (error)
            *error = TOKVOX_ERR_INVALID_ARGUMENT;
        tokvox_io_detail(detail, detail_size, "tokvox_audio_reader_open_raw: missing format");
        return NULL;
    }
    return reader_open(path, raw, target_rate, 0, error, detail, detail_size);
}

/* ---- reading whole files ----------------------------------------------------------- */

/* Doubles *buf (at least 64 Ki samples). */
static int grow_samples(float **buf, size_t *cap)
{
    size_t want = *cap ? *cap * 2 : 65536;
    if (want > SIZE_MAX / 2 / sizeof **buf)
        return TOKVOX_ERR_NO_MEMORY;
    float *grown = realloc(*buf, want * sizeof **buf);
    if (!grown)
        return TOKVOX_ERR_NO_MEMORY;
    *buf = grown;
    *cap = want;
    return TOKVOX_OK;
}

/* The rest of r into one malloc'ed buffer of exactly its length. */
static int read_whole(tokvox_audio_reader *r, float **samples, size_t *n,
                      tokvox_audio_source *source, char *detail, size_t detail_size)
{
    float *buf = NULL;
    size_t cap = 0, len = 0, got = 0;
    int rc = TOKVOX_OK;
    do {
        if (len == cap && grow_samples(&buf, &cap) != TOKVOX_OK) {
            reader_fail(r, TOKVOX_ERR_NO_MEMORY, "%s: out of memory", r->name);
            rc = reader_report(r, detail, detail_size);
            break;
        }
        rc = tokvox_audio_reader_read(r, buf + len, cap - len, &got, detail, detail_size);
        len += got;
    } while (rc == TOKVOX_OK && got > 0);
    if (rc != TOKVOX_OK) {
        free(buf);
        return rc;
    }
    float *shrunk = realloc(buf, len * sizeof *buf); /* len >= 1 */
    *samples = shrunk ? shrunk : buf;
    *n = len;
    tokvox_audio_reader_source(r, source);
    return TOKVOX_OK;
}

int tokvox_audio_read_memory(const void *data, size_t size, const char *name, int target_rate,
                             size_t max_samples, float **samples, size_t *n,
                             tokvox_audio_source *source, char *detail, size_t detail_size)
{
    if (!samples || !n || (size && !data) || size > (size_t)INT64_MAX)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *samples = NULL;
    *n = 0;
    if (max_samples == 0 || max_samples > TOKVOX_AUDIO_MAX_SAMPLES)
        max_samples = TOKVOX_AUDIO_MAX_SAMPLES;
    tokvox_audio_reader *r = reader_new(name ? name : "memory", max_samples);
    if (!r)
        return TOKVOX_ERR_NO_MEMORY;
    r->mem = (memfile){(unsigned char *)(uintptr_t)data, (sf_count_t)size, (sf_count_t)size, 0, 0};
    open_sndfile(r, -1);
    int rc;
    r = started(r, target_rate, &rc, detail, detail_size);
    if (!r)
        return rc;
    rc = read_whole(r, samples, n, source, detail, detail_size);
    tokvox_audio_reader_close(r);
    return rc;
}

int tokvox_audio_read(const char *path, int target_rate, float **samples, size_t *n,
                      tokvox_audio_source *source, char *detail, size_t detail_size)
{
    if (!samples || !n || !path) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_read: missing argument");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    *samples = NULL;
    *n = 0;
    int rc;
    tokvox_audio_reader *r =
        reader_open(path, NULL, target_rate, TOKVOX_AUDIO_MAX_SAMPLES, &rc, detail, detail_size);
    if (!r)
        return rc;
    rc = read_whole(r, samples, n, source, detail, detail_size);
    tokvox_audio_reader_close(r);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------- */

/* The libsndfile format for path's extension ("-": WAV). */
static int format_for(const char *path, int *format, char *detail, size_t detail_size)
{
    if (strcmp(path, "-") == 0) {
        *format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
        return TOKVOX_OK;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *ext = strrchr(base, '.');
    if (!ext) {
        tokvox_io_detail(detail, detail_size,
                         "%s: no file extension to choose a format (use .wav, .flac or .ogg)", path);
        return TOKVOX_ERR_UNSUPPORTED;
    }
    if (strcasecmp(ext, ".wav") == 0)
        *format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    else if (strcasecmp(ext, ".flac") == 0)
        *format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    else if (strcasecmp(ext, ".ogg") == 0)
        *format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    else {
        tokvox_io_detail(detail, detail_size,
                         "%s: cannot write \"%s\" files (use .wav, .flac or .ogg)", path, ext);
        return TOKVOX_ERR_UNSUPPORTED;
    }
    return TOKVOX_OK;
}

static float clip_sample(float v)
{
    if (!isfinite(v))
        return 0.0f;
    return v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
}

/* Writes x[0..n) to sf: 16-bit formats get round(x * 32768) clipped to the
 * int16 range (the inverse of libsndfile's read scaling, so a round trip is
 * exact to half a step), Vorbis gets the clipped floats.  A failure is
 * TOKVOX_ERR_IO when the system refused the bytes (full disk, too large),
 * TOKVOX_ERR_AUDIO when the encoder did (Vorbis at 384 kHz); why says which. */
static int write_samples(SNDFILE *sf, int format, const float *x, size_t n, char *why,
                         size_t why_size)
{
    const int pcm16 = (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16;
    short s16[WRITE_CHUNK];
    float f32[WRITE_CHUNK];
    for (size_t done = 0; done < n;) {
        size_t count = n - done < WRITE_CHUNK ? n - done : WRITE_CHUNK;
        sf_count_t wrote;
        if (pcm16) {
            for (size_t i = 0; i < count; i++) {
                long q = lrintf(clip_sample(x[done + i]) * 32768.0f);
                s16[i] = (short)(q > 32767 ? 32767 : q < -32768 ? -32768 : q);
            }
            errno = 0;
            wrote = sf_writef_short(sf, s16, (sf_count_t)count);
        } else {
            for (size_t i = 0; i < count; i++)
                f32[i] = clip_sample(x[done + i]);
            errno = 0;
            wrote = sf_writef_float(sf, f32, (sf_count_t)count);
        }
        if (wrote != (sf_count_t)count) {
            int err = errno;
            if (err == ENOSPC || err == EFBIG || err == EIO || err == EDQUOT || err == EPIPE) {
                tokvox_io_strerror(err, why, why_size);
                return TOKVOX_ERR_IO;
            }
            snprintf(why, why_size, "%s", sf_strerror(sf));
            return sf_error(sf) == SF_ERR_SYSTEM ? TOKVOX_ERR_IO : TOKVOX_ERR_AUDIO;
        }
        done += count;
    }
    return TOKVOX_OK;
}

/* ---- the streaming writer ------------------------------------------------------ */

/* soxr output per call when resampling on the way out. */
#define WRITER_BLOCK 8192

typedef enum writer_mode {
    WRITE_TEMP,     /* libsndfile into a temporary, renamed at commit */
    WRITE_IN_PLACE, /* libsndfile on a seekable stdout or a device */
    WRITE_STREAM,   /* our own WAV header with unknown sizes, then 16-bit samples */
} writer_mode;

struct tokvox_audio_writer {
    char *path;          /* the destination ("-": stdout) */
    const char *name;    /* in messages: the path or "stdout" */
    writer_mode mode;
    SNDFILE *sf;         /* WRITE_TEMP, WRITE_IN_PLACE */
    SF_INFO info;
    int fd;              /* what is written: the temporary, stdout or the device */
    int own_fd;          /* fd was opened here: close it at the end */
    char *tmp;           /* WRITE_TEMP: the temporary's path */
    soxr_t resampler;    /* NULL when rate == out_rate */
    float *scratch;      /* WRITER_BLOCK samples: cleaned input, resampled output */
    float *resampled;
    uint64_t written;    /* frames at out_rate so far */
    uint64_t limit;      /* frames not to go beyond (commit's count), UINT64_MAX: none */
    int error;
    char failure[FAILURE_SIZE];
};

static int writer_fail(tokvox_audio_writer *w, int error, const char *fmt, ...)
    TOKVOX_IO_PRINTF(3, 4);
static int writer_fail(tokvox_audio_writer *w, int error, const char *fmt, ...)
{
    if (w->error)
        return w->error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->failure, sizeof w->failure, fmt, ap);
    va_end(ap);
    w->error = error;
    return error;
}

static int writer_report(const tokvox_audio_writer *w, char *detail, size_t detail_size)
{
    tokvox_io_detail(detail, detail_size, "%s", w->failure);
    return w->error;
}

/* write(2) all of p, through EINTR and short writes. */
static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t got = write(fd, b, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EIO;
        b += got;
        n -= (size_t)got;
    }
    return 0;
}

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* libsndfile cannot write WAV to a pipe (it seeks back to fill in the
 * sizes), so a stream gets the 44-byte header of a 16-bit mono WAV whose
 * RIFF and data sizes say "unknown" (0xFFFFFFFF), as sox and ffmpeg write
 * it; libsndfile, sox and ffmpeg read it to the end of the stream. */
static int write_stream_header(tokvox_audio_writer *w)
{
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    le32(h + 4, 0xFFFFFFFFu);
    memcpy(h + 8, "WAVEfmt ", 8);
    le32(h + 16, 16);
    le32(h + 20, 1 | 1u << 16);                  /* PCM, 1 channel */
    le32(h + 24, (uint32_t)w->info.samplerate);
    le32(h + 28, (uint32_t)w->info.samplerate * 2); /* bytes per second */
    le32(h + 32, 2 | 16u << 16);                 /* block align 2, 16 bits */
    memcpy(h + 36, "data", 4);
    le32(h + 40, 0xFFFFFFFFu);
    int err = write_all(w->fd, h, sizeof h);
    if (err) {
        char eb[128];
        return writer_fail(w, TOKVOX_ERR_IO, "%s: %s", w->name, tokvox_io_strerror(err, eb, sizeof eb));
    }
    return TOKVOX_OK;
}

/* Samples at out_rate to the destination, up to the limit. */
static int emit(tokvox_audio_writer *w, const float *x, size_t n)
{
    if (w->error)
        return w->error;
    if (w->limit != UINT64_MAX)
        n = w->written >= w->limit ? 0 : (uint64_t)n > w->limit - w->written ? (size_t)(w->limit - w->written) : n;
    if (n == 0)
        return TOKVOX_OK;
    char why[256];
    if (w->mode != WRITE_STREAM) {
        int rc = write_samples(w->sf, w->info.format, x, n, why, sizeof why);
        if (rc == TOKVOX_ERR_IO)
            return writer_fail(w, rc, "%s: %s", w->name, why);
        if (rc != TOKVOX_OK)
            return writer_fail(w, rc, "%s: cannot write audio (%s)", w->name, why);
    } else {
        unsigned char bytes[2 * WRITE_CHUNK];
        for (size_t done = 0; done < n;) {
            size_t count = n - done < WRITE_CHUNK ? n - done : WRITE_CHUNK;
            for (size_t i = 0; i < count; i++) {
                long q = lrintf(clip_sample(x[done + i]) * 32768.0f);
                int16_t v = (int16_t)(q > 32767 ? 32767 : q < -32768 ? -32768 : q);
                bytes[2 * i] = (unsigned char)((uint16_t)v & 0xff);
                bytes[2 * i + 1] = (unsigned char)((uint16_t)v >> 8);
            }
            int err = write_all(w->fd, bytes, 2 * count);
            if (err)
                return writer_fail(w, TOKVOX_ERR_IO, "%s: %s", w->name,
                                   tokvox_io_strerror(err, why, sizeof why));
            done += count;
        }
    }
    w->written += n;
    return TOKVOX_OK;
}

/* n samples (NULL: the resampler's tail) through soxr to emit. */
static int resample_out(tokvox_audio_writer *w, const float *x, size_t n)
{
    do {
        size_t used = 0, made = 0;
        soxr_error_t e = soxr_process(w->resampler, x, n, &used, w->resampled, WRITER_BLOCK, &made);
        if (e)
            return writer_fail(w, TOKVOX_ERR_AUDIO, "%s: cannot resample (%s)", w->name, e);
        zero_nonfinite(w->resampled, made);
        if (emit(w, w->resampled, made))
            return w->error;
        if (x) {
            x += used;
            n -= used;
            if (used == 0 && made == 0)
                return writer_fail(w, TOKVOX_ERR_AUDIO, "%s: the resampler made no progress",
                                   w->name);
        } else if (made == 0) {
            break; /* the tail is out */
        }
    } while (!x || n > 0);
    return TOKVOX_OK;
}

int tokvox_audio_writer_write(tokvox_audio_writer *w, const float *x, size_t n, char *detail,
                              size_t detail_size)
{
    if (!w || (n && !x)) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_writer_write: missing argument");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    while (!w->error && n > 0) {
        size_t count = n < WRITER_BLOCK ? n : WRITER_BLOCK;
        if (w->resampler) {
            /* a NaN would smear over the filter */
            for (size_t i = 0; i < count; i++)
                w->scratch[i] = isfinite(x[i]) ? x[i] : 0.0f;
            resample_out(w, w->scratch, count);
        } else {
            emit(w, x, count);
        }
        x += count;
        n -= count;
    }
    return w->error ? writer_report(w, detail, detail_size) : TOKVOX_OK;
}

uint64_t tokvox_audio_writer_frames(const tokvox_audio_writer *w) { return w ? w->written : 0; }

static void writer_free(tokvox_audio_writer *w)
{
    if (w->resampler)
        soxr_delete(w->resampler);
    free(w->scratch);
    free(w->resampled);
    free(w->tmp);
    free(w->path);
    free(w);
}

void tokvox_audio_writer_abort(tokvox_audio_writer *w)
{
    if (!w)
        return;
    if (w->sf)
        sf_close(w->sf);
    if (w->own_fd && w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    writer_free(w);
}

/* sf_close, reporting what it could not write. */
static int close_sndfile(tokvox_audio_writer *w)
{
    if (!w->sf)
        return w->error;
    int closed = sf_close(w->sf);
    w->sf = NULL;
    if (closed != 0)
        writer_fail(w, TOKVOX_ERR_IO, "%s: %s", w->name, sf_error_number(closed));
    return w->error;
}

int tokvox_audio_writer_commit(tokvox_audio_writer *w, uint64_t frames, char *detail,
                               size_t detail_size)
{
    if (!w) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_writer_commit: missing argument");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (frames > 0)
        w->limit = frames;
    if (w->resampler)
        resample_out(w, NULL, 0);
    static const float silence[256];
    while (!w->error && w->written < frames) {
        uint64_t left = frames - w->written;
        emit(w, silence, left < 256 ? (size_t)left : 256);
    }
    close_sndfile(w);
    int rc = w->error;
    if (rc != TOKVOX_OK) {
        writer_report(w, detail, detail_size);
        tokvox_audio_writer_abort(w);
        return rc;
    }
    if (w->mode == WRITE_TEMP) /* closes fd; on failure removes the temporary */
        rc = tokvox_io_temp_install(w->fd, w->tmp, w->path, detail, detail_size);
    else if (w->own_fd && close(w->fd) != 0)
        rc = tokvox_io_fail(detail, detail_size, w->name, errno);
    writer_free(w);
    return rc;
}

/* Where the bytes go, and how: sets fd, own_fd, tmp and mode. */
static int writer_destination(tokvox_audio_writer *w, int raw)
{
    struct stat st;
    if (strcmp(w->path, "-") == 0) {
        w->fd = STDOUT_FILENO;
        fflush(stdout); /* what printf buffered goes first */
        if (fstat(w->fd, &st) != 0)
            return writer_fail(w, TOKVOX_ERR_IO, "stdout: %s", strerror(errno));
    } else if (tokvox_io_is_special(w->path)) {
        /* a device or FIFO is written in place: renaming over it would
         * replace the node itself */
        do
            w->fd = open(w->path, O_WRONLY | O_CLOEXEC);
        while (w->fd < 0 && errno == EINTR);
        if (w->fd < 0 || fstat(w->fd, &st) != 0) {
            char eb[128];
            return writer_fail(w, TOKVOX_ERR_IO, "%s: %s", w->name,
                               tokvox_io_strerror(errno, eb, sizeof eb));
        }
        w->own_fd = 1;
    } else {
        char detail[FAILURE_SIZE];
        int rc = tokvox_io_temp_create(w->path, &w->tmp, &w->fd, detail, sizeof detail);
        if (rc != TOKVOX_OK)
            return writer_fail(w, rc, "%s", detail);
        w->mode = WRITE_TEMP;
        w->own_fd = 1;
        return TOKVOX_OK;
    }
    /* A pipe or socket cannot seek back to finish a WAV header. */
    int seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode);
    w->mode = seekable || raw || (w->info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_WAV
                  ? WRITE_IN_PLACE
                  : WRITE_STREAM;
    return TOKVOX_OK;
}

static int writer_start(tokvox_audio_writer *w, int rate, int out_rate, const tokvox_raw_format *raw)
{
    if (!rate_ok(rate) || !rate_ok(out_rate))
        return writer_fail(w, TOKVOX_ERR_INVALID_ARGUMENT, "%s: sample rate %d Hz is not supported",
                           w->name, rate_ok(rate) ? out_rate : rate);
    w->info.samplerate = out_rate;
    w->info.channels = 1;
    if (raw)
        w->info.format = raw_sf_format(raw->encoding);
    else {
        char detail[FAILURE_SIZE];
        int rc = format_for(w->path, &w->info.format, detail, sizeof detail);
        if (rc != TOKVOX_OK)
            return writer_fail(w, rc, "%s", detail);
    }
    if (!sf_format_check(&w->info))
        return writer_fail(w, TOKVOX_ERR_UNSUPPORTED, "%s: cannot write this format at %d Hz",
                           w->name, out_rate);
    w->scratch = malloc(WRITER_BLOCK * sizeof *w->scratch);
    w->resampled = malloc(WRITER_BLOCK * sizeof *w->resampled);
    if (!w->scratch || !w->resampled)
        return writer_fail(w, TOKVOX_ERR_NO_MEMORY, "%s: out of memory", w->name);
    if (rate != out_rate) {
        soxr_error_t e = NULL;
        w->resampler = new_resampler(rate, out_rate, &e);
        if (!w->resampler)
            return writer_fail(w, TOKVOX_ERR_AUDIO, "%s: cannot resample %d Hz to %d Hz (%s)",
                               w->name, rate, out_rate, e ? e : "out of memory");
    }
    /* Resampler first, file system last: nothing is created for a bad call. */
    if (writer_destination(w, raw != NULL))
        return w->error;
    if (w->mode == WRITE_STREAM)
        return write_stream_header(w);
    char why[256];
    int rc = open_locked(w->fd, NULL, SFM_WRITE, &w->info, &w->sf, why, sizeof why);
    if (rc == TOKVOX_ERR_IO)
        return writer_fail(w, rc, "%s: %s", w->name, why);
    if (rc != TOKVOX_OK)
        return writer_fail(w, rc, "%s: cannot write audio (%s)", w->name, why);
    sf_command(w->sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
    return TOKVOX_OK;
}

tokvox_audio_writer *tokvox_audio_writer_open(const char *path, int rate, int out_rate,
                                              const tokvox_raw_format *raw, int *error,
                                              char *detail, size_t detail_size)
{
    int dummy;
    error = error ? error : &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (!path || !*path) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_writer_open: missing argument");
        return NULL;
    }
    tokvox_audio_writer *w = calloc(1, sizeof *w);
    char *copy = strdup(path);
    if (!w || !copy) {
        free(w);
        free(copy);
        *error = TOKVOX_ERR_NO_MEMORY;
        tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
        return NULL;
    }
    w->path = copy;
    w->name = strcmp(path, "-") == 0 ? "stdout" : w->path;
    w->fd = -1;
    w->limit = UINT64_MAX;
    *error = writer_start(w, rate, out_rate ? out_rate : rate, raw);
    if (*error == TOKVOX_OK)
        return w;
    writer_report(w, detail, detail_size);
    tokvox_audio_writer_abort(w);
    return NULL;
}

int tokvox_audio_write(const char *path, const float *samples, size_t n, int rate, int out_rate,
                       char *detail, size_t detail_size)
{
    if (!path || !*path || (n && !samples)) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_write: missing argument");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    int rc;
    tokvox_audio_writer *w = tokvox_audio_writer_open(path, rate, out_rate, NULL, &rc, detail,
                                                      detail_size);
    if (!w)
        return rc;
    rc = tokvox_audio_writer_write(w, samples, n, detail, detail_size);
    if (rc != TOKVOX_OK) {
        tokvox_audio_writer_abort(w);
        return rc;
    }
    return tokvox_audio_writer_commit(w, 0, detail, detail_size);
}
