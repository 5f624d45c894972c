/* tokvox io: reading, resampling and writing audio (libsndfile + libsoxr). */
#include "audio_internal.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
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
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    size_t done = 0;
    soxr_error_t err = soxr_oneshot((double)in_rate, (double)out_rate, 1, in, n, NULL, buf, room,
                                    &done, &io, &quality, &runtime);
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
    for (size_t i = 0; i < done; i++)
        if (!isfinite(buf[i]))
            buf[i] = 0.0f;
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

int tokvox_audio_read_sndfile(SNDFILE *sf, const SF_INFO *info, const char *name,
                              int target_rate, size_t max_samples, float **samples,
                              size_t *n, tokvox_audio_source *source, char *detail,
                              size_t detail_size)
{
    *samples = NULL;
    *n = 0;
    if (target_rate != 0 && !rate_ok(target_rate)) {
        tokvox_io_detail(detail, detail_size, "%s: cannot resample to %d Hz (use %d..%d)", name,
                         target_rate, TOKVOX_AUDIO_MIN_RATE, TOKVOX_AUDIO_MAX_RATE);
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (!rate_ok(info->samplerate)) {
        tokvox_io_detail(detail, detail_size, "%s: sample rate %d Hz is not supported", name,
                         info->samplerate);
        return TOKVOX_ERR_AUDIO;
    }
    if (info->channels < 1 || info->channels > TOKVOX_AUDIO_MAX_CHANNELS) {
        tokvox_io_detail(detail, detail_size, "%s: %d channels are not supported (at most %d)",
                         name, info->channels, TOKVOX_AUDIO_MAX_CHANNELS);
        return TOKVOX_ERR_AUDIO;
    }
    if (max_samples == 0 || max_samples > TOKVOX_AUDIO_MAX_SAMPLES)
        max_samples = TOKVOX_AUDIO_MAX_SAMPLES;

    const int ch = info->channels;
    float *chunk = malloc((size_t)READ_CHUNK_FRAMES * (size_t)ch * sizeof *chunk);
    if (!chunk) {
        tokvox_io_detail(detail, detail_size, "%s: out of memory", name);
        return TOKVOX_ERR_NO_MEMORY;
    }
    /* The header's frame count may be absent, wrong or hostile: grow. */
    float *buf = NULL;
    size_t cap = 0, len = 0;
    int64_t nonfinite = 0, clipped = 0;
    int rc = TOKVOX_OK;
    for (;;) {
        sf_count_t got = sf_readf_float(sf, chunk, READ_CHUNK_FRAMES);
        if (got <= 0)
            break;
        if (got > READ_CHUNK_FRAMES)
            got = READ_CHUNK_FRAMES; /* defensive: never past our chunk */
        size_t g = (size_t)got;
        if (g > max_samples - len) {
            tokvox_io_detail(detail, detail_size, "%s: longer than %zu samples", name, max_samples);
            rc = TOKVOX_ERR_AUDIO;
            break;
        }
        if (len + g > cap) {
            size_t want = cap ? cap * 2 : 65536;
            if (want < len + g)
                want = len + g;
            if (want > max_samples)
                want = max_samples;
            float *grown = realloc(buf, want * sizeof *grown);
            if (!grown) {
                tokvox_io_detail(detail, detail_size, "%s: out of memory", name);
                rc = TOKVOX_ERR_NO_MEMORY;
                break;
            }
            buf = grown;
            cap = want;
        }
        float *dst = buf + len;
        for (size_t i = 0; i < g; i++) {
            const float *frame = chunk + i * (size_t)ch;
            double sum = 0.0;
            for (int c = 0; c < ch; c++)
                sum += clean_sample(frame[c], &nonfinite, &clipped);
            dst[i] = ch == 1 ? (float)sum : (float)(sum / ch);
        }
        len += g;
    }
    free(chunk);
    if (rc == TOKVOX_OK && sf_error(sf) != SF_ERR_NO_ERROR) {
        tokvox_io_detail(detail, detail_size, "%s: read error after %zu samples (%s)", name, len,
                         sf_strerror(sf));
        rc = TOKVOX_ERR_AUDIO;
    }
    if (rc == TOKVOX_OK && len == 0) {
        tokvox_io_detail(detail, detail_size, "%s: no audio samples", name);
        rc = TOKVOX_ERR_AUDIO;
    }
    if (rc != TOKVOX_OK) {
        free(buf);
        return rc;
    }
    if (len < cap) {
        float *shrunk = realloc(buf, len * sizeof *buf);
        if (shrunk)
            buf = shrunk;
    }
    if (source) {
        source->rate = info->samplerate;
        source->channels = ch;
        source->frames = (int64_t)len;
        source->nonfinite = nonfinite;
        source->clipped = clipped;
    }
    if (target_rate != 0 && target_rate != info->samplerate) {
        float *out = NULL;
        size_t n_out = 0;
        const char *why = NULL;
        rc = resample_impl(buf, len, info->samplerate, target_rate, &out, &n_out, &why);
        free(buf);
        if (rc != TOKVOX_OK) {
            tokvox_io_detail(detail, detail_size, "%s: cannot resample %d Hz to %d Hz (%s)", name,
                             info->samplerate, target_rate, why ? why : "out of memory");
            return rc;
        }
        buf = out;
        len = n_out;
    }
    *samples = buf;
    *n = len;
    return TOKVOX_OK;
}

static int read_memfile(memfile *m, const char *name, int target_rate, size_t max_samples,
                        float **samples, size_t *n, tokvox_audio_source *source, char *detail,
                        size_t detail_size)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    char why[256];
    SNDFILE *sf = NULL;
    if (open_locked(-1, m, SFM_READ, &info, &sf, why, sizeof why) != TOKVOX_OK) {
        tokvox_io_detail(detail, detail_size, "%s: not a readable audio file (%s)", name, why);
        return TOKVOX_ERR_AUDIO;
    }
    int rc = tokvox_audio_read_sndfile(sf, &info, name, target_rate, max_samples, samples, n,
                                       source, detail, detail_size);
    sf_close(sf);
    return rc;
}

int tokvox_audio_read_memory(const void *data, size_t size, const char *name, int target_rate,
                             size_t max_samples, float **samples, size_t *n,
                             tokvox_audio_source *source, char *detail, size_t detail_size)
{
    if (!samples || !n || (size && !data))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *samples = NULL;
    *n = 0;
    if (size > (size_t)INT64_MAX)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    memfile m = {(unsigned char *)(uintptr_t)data, (sf_count_t)size, (sf_count_t)size, 0, 0};
    return read_memfile(&m, name ? name : "memory", target_rate, max_samples, samples, n, source,
                        detail, detail_size);
}

/* Reads all of a non-seekable fd (a pipe) into memory. */
static int slurp(int fd, const char *name, memfile *m, char *detail, size_t detail_size)
{
    size_t cap = 0, len = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_STDIN_BYTES) {
                free(buf);
                tokvox_io_detail(detail, detail_size, "%s: more than %zu bytes of input", name,
                                 MAX_STDIN_BYTES);
                return TOKVOX_ERR_AUDIO;
            }
            size_t want = cap ? cap * 2 : 65536;
            unsigned char *grown = realloc(buf, want);
            if (!grown) {
                free(buf);
                tokvox_io_detail(detail, detail_size, "%s: out of memory", name);
                return TOKVOX_ERR_NO_MEMORY;
            }
            buf = grown;
            cap = want;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            char eb[128];
            int err = errno;
            free(buf);
            tokvox_io_detail(detail, detail_size, "%s: %s", name, tokvox_io_strerror(err, eb, sizeof eb));
            return TOKVOX_ERR_IO;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    m->data = buf;
    m->size = (sf_count_t)len;
    m->cap = (sf_count_t)cap;
    m->pos = 0;
    m->writable = 0;
    return TOKVOX_OK;
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
    if (!*path) {
        tokvox_io_detail(detail, detail_size, "empty input path");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    const int use_stdin = strcmp(path, "-") == 0;
    const char *name = use_stdin ? "stdin" : path;
    char eb[128];
    int fd = 0;
    if (!use_stdin) {
        do
            fd = open(path, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            int err = errno;
            tokvox_io_detail(detail, detail_size, "%s: %s", name, tokvox_io_strerror(err, eb, sizeof eb));
            return TOKVOX_ERR_IO;
        }
    }
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        tokvox_io_detail(detail, detail_size, "%s: %s", name, tokvox_io_strerror(err, eb, sizeof eb));
        rc = TOKVOX_ERR_IO;
    } else if (S_ISDIR(st.st_mode)) {
        tokvox_io_detail(detail, detail_size, "%s: %s", name, tokvox_io_strerror(EISDIR, eb, sizeof eb));
        rc = TOKVOX_ERR_IO;
    } else if (S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) >= st.st_size) {
        tokvox_io_detail(detail, detail_size, "%s: empty file, no audio samples", name);
        rc = TOKVOX_ERR_AUDIO;
    } else if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        SF_INFO info;
        memset(&info, 0, sizeof info);
        char why[256];
        SNDFILE *sf = NULL;
        rc = open_locked(fd, NULL, SFM_READ, &info, &sf, why, sizeof why);
        if (rc == TOKVOX_ERR_IO) {
            tokvox_io_detail(detail, detail_size, "%s: %s", name, why);
        } else if (rc != TOKVOX_OK) {
            tokvox_io_detail(detail, detail_size, "%s: not a readable audio file (%s)", name, why);
        } else {
            rc = tokvox_audio_read_sndfile(sf, &info, name, target_rate, TOKVOX_AUDIO_MAX_SAMPLES,
                                           samples, n, source, detail, detail_size);
            sf_close(sf);
        }
    } else {
        /* Pipes and terminals cannot seek, which most formats need. */
        memfile m;
        rc = slurp(fd, name, &m, detail, detail_size);
        if (rc == TOKVOX_OK) {
            rc = read_memfile(&m, name, target_rate, TOKVOX_AUDIO_MAX_SAMPLES, samples, n, source,
                              detail, detail_size);
            free(m.data);
        }
    }
    if (!use_stdin)
        close(fd);
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

/* Renders the whole file into m (for stdout, which cannot seek back to
 * finish a WAV header). */
static int render_memory(memfile *m, SF_INFO *info, const float *x, size_t n, const char *name,
                         char *detail, size_t detail_size)
{
    memset(m, 0, sizeof *m);
    m->writable = 1;
    char why[256];
    SNDFILE *sf = NULL;
    if (open_locked(-1, m, SFM_WRITE, info, &sf, why, sizeof why) != TOKVOX_OK) {
        tokvox_io_detail(detail, detail_size, "%s: cannot write audio (%s)", name, why);
        free(m->data);
        m->data = NULL;
        return TOKVOX_ERR_AUDIO;
    }
    sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
    int rc = write_samples(sf, info->format, x, n, why, sizeof why);
    if (rc == TOKVOX_ERR_IO)
        tokvox_io_detail(detail, detail_size, "%s: %s", name, why);
    else if (rc != TOKVOX_OK)
        tokvox_io_detail(detail, detail_size, "%s: cannot write audio (%s)", name, why);
    int closed = sf_close(sf);
    if (rc == TOKVOX_OK && closed != 0) {
        tokvox_io_detail(detail, detail_size, "%s: %s", name, sf_error_number(closed));
        rc = TOKVOX_ERR_IO;
    }
    if (rc != TOKVOX_OK) {
        free(m->data);
        m->data = NULL;
    }
    return rc;
}

/* Streams that cannot seek or be renamed over (stdout, a device, a FIFO):
 * render the file in memory, then write its bytes in one go. */
static int write_stream(FILE *out, const char *name, SF_INFO *info, const float *x, size_t n,
                        char *detail, size_t detail_size)
{
    memfile m;
    int rc = render_memory(&m, info, x, n, name, detail, detail_size);
    if (rc != TOKVOX_OK)
        return rc;
    errno = 0;
    size_t wrote = m.size ? fwrite(m.data, 1, (size_t)m.size, out) : 0;
    if (wrote != (size_t)m.size || fflush(out) != 0) {
        char eb[128];
        int err = errno ? errno : EIO;
        tokvox_io_detail(detail, detail_size, "%s: %s", name, tokvox_io_strerror(err, eb, sizeof eb));
        rc = TOKVOX_ERR_IO;
    }
    free(m.data);
    return rc;
}

static int write_special(const char *path, SF_INFO *info, const float *x, size_t n,
                         char *detail, size_t detail_size)
{
    FILE *out = fopen(path, "wb");
    if (!out) {
        char eb[128];
        tokvox_io_detail(detail, detail_size, "%s: %s", path,
                         tokvox_io_strerror(errno, eb, sizeof eb));
        return TOKVOX_ERR_IO;
    }
    int rc = write_stream(out, path, info, x, n, detail, detail_size);
    if (fclose(out) != 0 && rc == TOKVOX_OK) {
        char eb[128];
        tokvox_io_detail(detail, detail_size, "%s: %s", path,
                         tokvox_io_strerror(errno, eb, sizeof eb));
        rc = TOKVOX_ERR_IO;
    }
    return rc;
}

static int write_file(const char *path, SF_INFO *info, const float *x, size_t n, char *detail,
                      size_t detail_size)
{
    char *tmp = NULL;
    int fd = -1;
    int rc = tokvox_io_temp_create(path, &tmp, &fd, detail, detail_size);
    if (rc != TOKVOX_OK)
        return rc;
    char why[256];
    SNDFILE *sf = NULL;
    rc = open_locked(fd, NULL, SFM_WRITE, info, &sf, why, sizeof why);
    if (rc != TOKVOX_OK) {
        if (rc == TOKVOX_ERR_IO)
            tokvox_io_detail(detail, detail_size, "%s: %s", path, why);
        else
            tokvox_io_detail(detail, detail_size, "%s: cannot write audio (%s)", path, why);
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
    rc = write_samples(sf, info->format, x, n, why, sizeof why);
    if (rc == TOKVOX_ERR_IO)
        tokvox_io_detail(detail, detail_size, "%s: %s", path, why);
    else if (rc != TOKVOX_OK)
        tokvox_io_detail(detail, detail_size, "%s: cannot write audio (%s)", path, why);
    int closed = sf_close(sf); /* closes its duplicate; fd stays ours to fsync */
    if (rc == TOKVOX_OK && closed != 0) {
        tokvox_io_detail(detail, detail_size, "%s: %s", path, sf_error_number(closed));
        rc = TOKVOX_ERR_IO;
    }
    if (rc != TOKVOX_OK) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    rc = tokvox_io_temp_install(fd, tmp, path, detail, detail_size);
    free(tmp);
    return rc;
}

int tokvox_audio_write(const char *path, const float *samples, size_t n, int rate, int out_rate,
                       char *detail, size_t detail_size)
{
    if (!path || !*path || (n && !samples)) {
        tokvox_io_detail(detail, detail_size, "tokvox_audio_write: missing argument");
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (!rate_ok(rate) || (out_rate != 0 && !rate_ok(out_rate))) {
        tokvox_io_detail(detail, detail_size, "%s: sample rate %d Hz is not supported", path,
                         rate_ok(rate) ? out_rate : rate);
        return TOKVOX_ERR_INVALID_ARGUMENT;
    }
    if (out_rate == 0)
        out_rate = rate;
    int format = 0;
    int rc = format_for(path, &format, detail, detail_size);
    if (rc != TOKVOX_OK)
        return rc;
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = out_rate;
    info.channels = 1;
    info.format = format;
    if (!sf_format_check(&info)) {
        tokvox_io_detail(detail, detail_size, "%s: cannot write this format at %d Hz", path, out_rate);
        return TOKVOX_ERR_UNSUPPORTED;
    }

    /* Resample before touching the file system. */
    const float *x = samples;
    float *resampled = NULL;
    if (out_rate != rate && n) {
        float *clean = malloc(n * sizeof *clean);
        if (!clean) {
            tokvox_io_detail(detail, detail_size, "%s: out of memory", path);
            return TOKVOX_ERR_NO_MEMORY;
        }
        for (size_t i = 0; i < n; i++) /* a NaN would smear over the filter */
            clean[i] = isfinite(samples[i]) ? samples[i] : 0.0f;
        size_t n_out = 0;
        const char *why = NULL;
        rc = resample_impl(clean, n, rate, out_rate, &resampled, &n_out, &why);
        free(clean);
        if (rc != TOKVOX_OK) {
            tokvox_io_detail(detail, detail_size, "%s: cannot resample %d Hz to %d Hz (%s)", path,
                             rate, out_rate, why ? why : "out of memory");
            return rc;
        }
        x = resampled;
        n = n_out;
    }

    if (strcmp(path, "-") == 0)
        rc = write_stream(stdout, "stdout", &info, x, n, detail, detail_size);
    else if (tokvox_io_is_special(path))
        rc = write_special(path, &info, x, n, detail, detail_size);
    else
        rc = write_file(path, &info, x, n, detail, detail_size);
    free(resampled);
    return rc;
}
