/* tokvox live, audio side: where samples come from and where they go.
 *
 *   source  a PortAudio input device, or --input-file read by a pacing
 *           thread in 10 ms blocks at the real-time rate, like a microphone
 *           (--fast: as fast as the ring takes them); each block is read
 *           from the file (tokvox_audio_reader) when it is due, so an
 *           hour-long file costs no more memory than a short one
 *   sink    a PortAudio output device, or --record: samples kept in an
 *           unlinked temporary file as they are played (not in memory: a
 *           receiver recording for a day would hold 5.5 GB), written
 *           atomically to the destination at the end
 *
 * Between a device and the coding thread there is one lock-free SPSC ring per
 * direction (io/ring.c) at the device's rate.  The PortAudio callback only
 * copies between those rings and the device buffers and bumps atomic
 * counters: no allocation, no lock, no I/O, no resampling.  The coding thread
 * resamples between the device rate and the model rate with libsoxr's
 * streaming API when they differ.
 *
 * Input and output devices are opened as one duplex stream when both are
 * used, so capture and playback run off one clock; two streams are the
 * fallback when PortAudio cannot pair the devices.
 *
 * Playback starts once a cushion of one frame plus --buffer-ms is queued;
 * when the queue runs dry that is an underrun and the cushion is rebuilt.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <soxr.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef TOKVOX_HAVE_PORTAUDIO
#include <portaudio.h>
#endif

#include "live.h"
#include "tokvox/io.h"
#include "tokvox/ring.h"

/* Rings hold a second: far more than the cushion, so only a stalled coding
 * thread or a device running at the wrong speed ever fills one. */
#define RING_SECONDS 1
/* The pacing thread's block, like a device callback's. */
#define PACE_BLOCK_MS 10
/* Resampler scratch per call, in input samples. */
#define RESAMPLE_CHUNK 1024
/* stdio buffer of the recording's temporary file: one write(2) per second
 * of 16 kHz audio. */
#define RECORD_BUFFER (64 * 1024)

struct live_audio {
    live_audio_config c;
    int src_rate, sink_rate;
    tokvox_ring *capture_ring, *playback_ring;   /* device rate */
    soxr_t capture_rs, playback_rs;              /* NULL when rates agree */
    float *scratch;                              /* RESAMPLE_CHUNK device samples */
    float *capture_out;                          /* resampled, not yet taken */
    size_t capture_out_n, capture_out_cap;
    float *resampled;                            /* playback scratch */
    size_t resampled_cap;
    size_t prefill;                              /* playback cushion, sink samples */

    /* --input-file: read at the model rate, a block at a time, by the pacer */
    tokvox_audio_reader *file;
    float *file_block;                           /* PACE_BLOCK_MS of samples */
    size_t file_block_n;
    pthread_t pacer;
    int pacer_started;
    atomic_int file_done, file_failed, stop_pacer;

    /* --record: raw float samples at the model rate */
    FILE *rec;
    size_t rec_n;
    int rec_rate;
    int rec_errno;                               /* the first failed write */

    /* shared with the callback or the pacer: atomics only */
    atomic_uint_fast64_t captured, played, underruns, overruns;
    atomic_int playing, draining;

#ifdef TOKVOX_HAVE_PORTAUDIO
    int pa_up;
    PaStream *streams[2];
    double in_latency, out_latency;
#endif
};


/* ---- the real-time side: runs in the device callback or the pacer --------- */

static void capture_block(live_audio *a, const float *in, size_t n)
{
    size_t put = tokvox_ring_write(a->capture_ring, in, n);
    atomic_fetch_add_explicit(&a->captured, put, memory_order_relaxed);
    if (put < n)
        atomic_fetch_add_explicit(&a->overruns, 1, memory_order_relaxed);
}

/* --fast: all of block into the ring, waiting for room rather than drop. */
static void feed_unpaced(live_audio *a, const float *block, size_t n)
{
    for (size_t done = 0; done < n && !atomic_load(&a->stop_pacer);) {
        size_t put = tokvox_ring_write(a->capture_ring, block + done, n - done);
        atomic_fetch_add(&a->captured, put);
        done += put;
        if (put == 0)
            live_sleep_s(0.001);
    }
}

/* The next block of the input file; 0 at its end or on a read error, which
 * is reported here (the coding thread sees it as a source that stopped). */
static size_t next_file_block(live_audio *a)
{
    char err[512];
    size_t got = 0;
    if (tokvox_audio_reader_read(a->file, a->file_block, a->file_block_n, &got, err,
                                 sizeof err) == 0)
        return got;
    fprintf(stderr, "tokvox live: %s\n", err);
    atomic_store(&a->file_failed, 1);
    return 0;
}

/* The --input-file microphone: 10 ms blocks at their real-time deadlines, or
 * as fast as the ring takes them with --fast.  A block is read just before
 * it is due, so the file is never held in memory: that costs microseconds
 * (10 minutes of 44.1 kHz stereo read and resampled in 0.3 s of CPU), far
 * inside the 10 ms. */
static void *pace_file(void *arg)
{
    live_audio *a = arg;
    uint64_t pos = 0;
    double start = live_now_s();
    size_t n;
    while (!atomic_load(&a->stop_pacer) && (n = next_file_block(a)) > 0) {
        if (a->c.fast) {
            feed_unpaced(a, a->file_block, n);
        } else {
            live_sleep_s(start + (double)(pos + n) / a->src_rate - live_now_s());
            capture_block(a, a->file_block, n); /* a full ring drops, as a device would */
        }
        pos += n;
    }
    if (!atomic_load(&a->file_failed))
        atomic_store(&a->file_done, 1);
    return NULL;
}

/* ---- PortAudio --------------------------------------------------------------- */

#ifdef TOKVOX_HAVE_PORTAUDIO

static void playback_block(live_audio *a, float *out, size_t n)
{
    size_t got = 0;
    if (!atomic_load_explicit(&a->playing, memory_order_relaxed) &&
        (tokvox_ring_read_available(a->playback_ring) >= a->prefill + n ||
         atomic_load_explicit(&a->draining, memory_order_relaxed)))
        atomic_store_explicit(&a->playing, 1, memory_order_relaxed);
    if (atomic_load_explicit(&a->playing, memory_order_relaxed))
        got = tokvox_ring_read(a->playback_ring, out, n);
    memset(out + got, 0, sizeof(float) * (n - got));
    atomic_fetch_add_explicit(&a->played, got, memory_order_relaxed);
    if (got < n && atomic_load_explicit(&a->playing, memory_order_relaxed) &&
        !atomic_load_explicit(&a->draining, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&a->underruns, 1, memory_order_relaxed);
        atomic_store_explicit(&a->playing, 0, memory_order_relaxed); /* rebuild the cushion */
    }
}

static int pa_callback(const void *in, void *out, unsigned long n,
                       const PaStreamCallbackTimeInfo *time, PaStreamCallbackFlags flags,
                       void *user)
{
    live_audio *a = user;
    if (flags & paInputOverflow)
        atomic_fetch_add_explicit(&a->overruns, 1, memory_order_relaxed);
    if (in)
        capture_block(a, in, n);
    if (out)
        playback_block(a, out, n);
    return paContinue;
}

/* PortAudio's probing of every host API (JACK, ALSA plugins) prints to
 * stderr on machines without those; keep that noise out of our output. */
static PaError quiet_initialize(void)
{
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null >= 0)
        dup2(null, 2);
    PaError e = Pa_Initialize();
    if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
    }
    if (null >= 0)
        close(null);
    return e;
}

static int all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int has_channels(int index, int input)
{
    const PaDeviceInfo *d = Pa_GetDeviceInfo(index);
    return d && (input ? d->maxInputChannels : d->maxOutputChannels) > 0;
}

/* --input-device / --output-device: an index, an exact name, or a part of
 * one; NULL is the default device. */
static int find_device(const char *spec, int input, char *err, size_t err_size)
{
    const char *what = input ? "input" : "output";
    if (!spec) {
        int d = input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
        if (d == paNoDevice)
            snprintf(err, err_size, "no default %s device (see --list-devices)", what);
        return d == paNoDevice ? -1 : d;
    }
    int n = Pa_GetDeviceCount();
    if (*spec && all_digits(spec)) {
        int d = atoi(spec);
        if (d < n && has_channels(d, input))
            return d;
        snprintf(err, err_size, "device %s is not an %s device (see --list-devices)", spec, what);
        return -1;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < n; d++) {
            const PaDeviceInfo *info = Pa_GetDeviceInfo(d);
            if (info && has_channels(d, input) &&
                (pass == 0 ? !strcmp(info->name, spec) : strstr(info->name, spec) != NULL))
                return d;
        }
    snprintf(err, err_size, "no %s device named '%s' (see --list-devices)", what, spec);
    return -1;
}

static void stream_params(PaStreamParameters *p, int device, int input)
{
    const PaDeviceInfo *d = Pa_GetDeviceInfo(device);
    memset(p, 0, sizeof *p);
    p->device = device;
    p->channelCount = 1;
    p->sampleFormat = paFloat32;
    p->suggestedLatency = input ? d->defaultLowInputLatency : d->defaultLowOutputLatency;
}

/* The device rate: --device-rate, else the model's if the device takes it
 * (no resampling at all), else the device's own default. */
static int choose_rate(const live_audio *a, const PaStreamParameters *in,
                       const PaStreamParameters *out)
{
    if (a->c.device_rate)
        return a->c.device_rate;
    if (Pa_IsFormatSupported(in, out, a->c.model_rate) == paFormatIsSupported)
        return a->c.model_rate;
    return (int)Pa_GetDeviceInfo((in ? in : out)->device)->defaultSampleRate;
}

static int open_stream(live_audio *a, int slot, const PaStreamParameters *in,
                       const PaStreamParameters *out, int rate, char *err, size_t err_size)
{
    PaError e = Pa_OpenStream(&a->streams[slot], in, out, rate, paFramesPerBufferUnspecified,
                              paNoFlag, pa_callback, a);
    if (e != paNoError) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo((in ? in : out)->device);
        snprintf(err, err_size, "cannot open %s device '%s' at %d Hz: %s",
                 in && out ? "duplex" : in ? "input" : "output", d->name, rate,
                 Pa_GetErrorText(e));
        a->streams[slot] = NULL;
        return -1;
    }
    const PaStreamInfo *si = Pa_GetStreamInfo(a->streams[slot]);
    if (in)
        a->in_latency = si->inputLatency;
    if (out)
        a->out_latency = si->outputLatency;
    return 0;
}

/* One duplex stream when PortAudio can pair the devices, else one each. */
static int open_devices(live_audio *a, int use_in, int use_out, char *err, size_t err_size)
{
    if (quiet_initialize() != paNoError) {
        snprintf(err, err_size, "PortAudio does not start (no audio system?)");
        return -1;
    }
    a->pa_up = 1;
    PaStreamParameters in, out;
    int din = use_in ? find_device(a->c.input_device, 1, err, err_size) : -1;
    int dout = use_out ? find_device(a->c.output_device, 0, err, err_size) : -1;
    if ((use_in && din < 0) || (use_out && dout < 0))
        return -1;
    if (use_in)
        stream_params(&in, din, 1);
    if (use_out)
        stream_params(&out, dout, 0);
    PaStreamParameters *pin = use_in ? &in : NULL, *pout = use_out ? &out : NULL;
    int rate = choose_rate(a, pin, pout);
    a->src_rate = a->sink_rate = rate;
    if (open_stream(a, 0, pin, pout, rate, err, err_size) == 0)
        return 0;
    if (!(use_in && use_out))
        return -1;
    /* separate streams, each at a rate of its own */
    a->src_rate = choose_rate(a, pin, NULL);
    a->sink_rate = choose_rate(a, NULL, pout);
    if (open_stream(a, 0, pin, NULL, a->src_rate, err, err_size) != 0 ||
        open_stream(a, 1, NULL, pout, a->sink_rate, err, err_size) != 0)
        return -1;
    return 0;
}

static int start_devices(live_audio *a, char *err, size_t err_size)
{
    for (int i = 0; i < 2; i++) {
        PaError e = a->streams[i] ? Pa_StartStream(a->streams[i]) : paNoError;
        if (e != paNoError) {
            snprintf(err, err_size, "cannot start the audio device: %s", Pa_GetErrorText(e));
            return -1;
        }
    }
    return 0;
}

static int devices_running(const live_audio *a)
{
    for (int i = 0; i < 2; i++)
        if (a->streams[i] && Pa_IsStreamActive(a->streams[i]) != 1)
            return 0;
    return 1;
}

static void close_devices(live_audio *a)
{
    for (int i = 0; i < 2; i++)
        if (a->streams[i]) {
            Pa_StopStream(a->streams[i]); /* plays what PortAudio still holds */
            Pa_CloseStream(a->streams[i]);
            a->streams[i] = NULL;
        }
    if (a->pa_up)
        Pa_Terminate();
    a->pa_up = 0;
}

int live_audio_list_devices(FILE *out, char *err, size_t err_size)
{
    if (quiet_initialize() != paNoError) {
        snprintf(err, err_size, "PortAudio does not start (no audio system?)");
        return 1;
    }
    int n = Pa_GetDeviceCount(), din = Pa_GetDefaultInputDevice(),
        dout = Pa_GetDefaultOutputDevice();
    fprintf(out, "%5s %4s %4s %8s  %-8s %s\n", "index", "in", "out", "rate", "host api", "name");
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
        fprintf(out, "%5d %4d %4d %8.0f  %-8s %s%s%s\n", i, d->maxInputChannels,
                d->maxOutputChannels, d->defaultSampleRate, h ? h->name : "?", d->name,
                i == din ? "  (default input)" : "", i == dout ? "  (default output)" : "");
    }
    if (n <= 0)
        fprintf(out, "no audio devices\n");
    Pa_Terminate();
    return 0;
}

#else /* no PortAudio: files and the network only */

static int open_devices(live_audio *a, int use_in, int use_out, char *err, size_t err_size)
{
    snprintf(err, err_size, "built without PortAudio: no %s device; use %s",
             use_in ? "input" : "output", use_in ? "--input-file" : "--record");
    return -1;
}

static int start_devices(live_audio *a, char *err, size_t err_size) { return 0; }

static int devices_running(const live_audio *a) { return 1; }

static void close_devices(live_audio *a) {}

int live_audio_list_devices(FILE *out, char *err, size_t err_size)
{
    snprintf(err, err_size, "built without PortAudio: there are no devices to list");
    return 1;
}

#endif

/* ---- the coding thread's side ----------------------------------------------- */

static soxr_t make_resampler(int from, int to, char *err, size_t err_size)
{
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_t s = soxr_create(from, to, 1, &e, &io, &q, NULL);
    if (!s)
        snprintf(err, err_size, "cannot resample %d Hz to %d Hz: %s", from, to, e ? e : "?");
    return s;
}

/* Opens --input-file to be read by the pacer; anything wrong with the file
 * (missing, not audio, empty) is reported here, before the session. */
static int open_input_file(live_audio *a, char *err, size_t err_size)
{
    int e;
    a->file = tokvox_audio_reader_open(a->c.input_file, a->c.model_rate, &e, err, err_size);
    if (!a->file)
        return -1;
    tokvox_audio_source src;
    tokvox_audio_reader_source(a->file, &src);
    a->src_rate = a->c.model_rate; /* read at the model rate: no stream resampling */
    a->rec_rate = src.rate;        /* a recording comes back at the file's rate */
    a->file_block_n = (size_t)a->src_rate * PACE_BLOCK_MS / 1000;
    a->file_block = malloc(sizeof(float) * a->file_block_n);
    if (!a->file_block) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

/* An unlinked temporary file in path's folder, the file system the
 * recording is going to anyway; nothing is left behind whatever happens. */
static FILE *temp_beside(const char *path)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 1; /* "/x.wav": "" + "/..." */
    size_t size = (size_t)dir_len + 32;
    char *name = malloc(size);
    if (!name)
        return NULL;
    snprintf(name, size, "%.*s/.tokvox-record-XXXXXX", dir_len, slash ? path : ".");
    int fd = mkstemp(name), saved = errno;
    FILE *f = NULL;
    if (fd >= 0) {
        unlink(name);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        f = fdopen(fd, "w+b");
        saved = errno;
        if (!f)
            close(fd);
    }
    free(name);
    errno = saved;
    return f;
}

/* Where --record keeps its samples until the end: beside the destination,
 * or in TMPDIR for stdout ("-") and destinations that are devices or FIFOs. */
static int open_record(live_audio *a, char *err, size_t err_size)
{
    const char *path = a->c.record;
    struct stat st;
    int special = !strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode));
    a->rec = special ? tmpfile() : temp_beside(path);
    if (!a->rec) {
        snprintf(err, err_size, "%s: cannot create a temporary file for the recording (%s)",
                 path, strerror(errno));
        return -1;
    }
    setvbuf(a->rec, NULL, _IOFBF, RECORD_BUFFER);
    return 0;
}

/* Rings, resamplers and scratch, once the rates are known. */
static int make_buffers(live_audio *a, char *err, size_t err_size)
{
    int m = a->c.model_rate;
    if (a->c.capture) {
        a->capture_ring = tokvox_ring_create((size_t)a->src_rate * RING_SECONDS, sizeof(float));
        if (a->src_rate != m && !(a->capture_rs = make_resampler(a->src_rate, m, err, err_size)))
            return -1;
        a->capture_out_cap = (size_t)m + (size_t)RESAMPLE_CHUNK * 2 * m / a->src_rate + 64;
        a->capture_out = malloc(sizeof(float) * a->capture_out_cap);
    }
    if (a->c.playback && !a->c.record) {
        a->playback_ring = tokvox_ring_create((size_t)a->sink_rate * RING_SECONDS, sizeof(float));
        if (a->sink_rate != m && !(a->playback_rs = make_resampler(m, a->sink_rate, err, err_size)))
            return -1;
        a->prefill = (size_t)a->sink_rate * (size_t)a->c.buffer_ms / 1000;
    }
    a->scratch = malloc(sizeof(float) * RESAMPLE_CHUNK);
    if ((a->c.capture && (!a->capture_ring || !a->capture_out)) ||
        (a->c.playback && !a->c.record && !a->playback_ring) || !a->scratch) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

live_audio *live_audio_open(const live_audio_config *c, char *err, size_t err_size)
{
    live_audio *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    a->c = *c;
    a->src_rate = a->sink_rate = a->rec_rate = c->model_rate;
    int use_in = c->capture && !c->input_file, use_out = c->playback && !c->record;
    int failed = (c->capture && c->input_file && open_input_file(a, err, err_size) != 0) ||
                 (c->playback && c->record && open_record(a, err, err_size) != 0) ||
                 ((use_in || use_out) && open_devices(a, use_in, use_out, err, err_size) != 0) ||
                 make_buffers(a, err, err_size) != 0;
    if (failed) {
        live_audio_close(a);
        return NULL;
    }
    return a;
}

int live_audio_start(live_audio *a, char *err, size_t err_size)
{
    if (a->file) {
        int e = pthread_create(&a->pacer, NULL, pace_file, a);
        if (e) {
            snprintf(err, err_size, "cannot start the input file thread: %s", strerror(e));
            return -1;
        }
        a->pacer_started = 1;
    }
    return start_devices(a, err, err_size);
}

/* Feeds device samples through the capture resampler into capture_out. */
static void resample_capture(live_audio *a, size_t wanted)
{
    while (a->capture_out_n < wanted) {
        size_t got = tokvox_ring_read(a->capture_ring, a->scratch, RESAMPLE_CHUNK);
        if (got == 0)
            return;
        for (size_t off = 0; off < got;) {
            size_t used = 0, made = 0;
            soxr_process(a->capture_rs, a->scratch + off, got - off, &used,
                         a->capture_out + a->capture_out_n, a->capture_out_cap - a->capture_out_n,
                         &made);
            a->capture_out_n += made;
            off += used;
            if (used == 0 && made == 0)
                break; /* cannot happen with the room capture_out has */
        }
    }
}

size_t live_audio_capture(live_audio *a, float *pcm, size_t n)
{
    if (!a->capture_rs)
        return tokvox_ring_read(a->capture_ring, pcm, n);
    resample_capture(a, n);
    size_t take = n < a->capture_out_n ? n : a->capture_out_n;
    memcpy(pcm, a->capture_out, sizeof(float) * take);
    memmove(a->capture_out, a->capture_out + take, sizeof(float) * (a->capture_out_n - take));
    a->capture_out_n -= take;
    return take;
}

int live_audio_capture_done(live_audio *a)
{
    return a->file && atomic_load(&a->file_done) &&
           tokvox_ring_read_available(a->capture_ring) == 0;
}

int live_audio_running(const live_audio *a)
{
    return devices_running(a) && !atomic_load(&a->file_failed);
}

double live_audio_capture_wait(const live_audio *a, size_t wanted)
{
    size_t have = tokvox_ring_read_available(a->capture_ring);
    double s = have >= wanted ? 0.0 : (double)(wanted - have) / a->src_rate;
    return s < 0.0005 ? 0.0005 : s > 0.005 ? 0.005 : s;
}

static int record(live_audio *a, const float *pcm, size_t n)
{
    if (a->rec_errno)
        return -1; /* reported when the session ends */
    if (n == 0)
        return 0;
    errno = 0;
    if (fwrite(pcm, sizeof(float), n, a->rec) != n) {
        a->rec_errno = errno ? errno : EIO;
        return -1;
    }
    a->rec_n += n;
    atomic_fetch_add(&a->played, n);
    return 0;
}

/* Into the playback ring; with --fast, wait for room rather than drop. */
static void queue_playback(live_audio *a, const float *pcm, size_t n)
{
    if (n == 0)
        return;
    size_t put = tokvox_ring_write(a->playback_ring, pcm, n);
    while (put < n && a->c.fast) {
        live_sleep_s(0.002);
        put += tokvox_ring_write(a->playback_ring, pcm + put, n - put);
    }
    if (put < n)
        atomic_fetch_add(&a->overruns, 1);
}

/* Through the playback resampler (pcm NULL: flush its tail) into the ring. */
static void resample_playback(live_audio *a, const float *pcm, size_t n)
{
    size_t need = (n + RESAMPLE_CHUNK) * (size_t)a->sink_rate / (size_t)a->c.model_rate + 64;
    if (need > a->resampled_cap) {
        float *grown = realloc(a->resampled, sizeof(float) * need);
        if (!grown)
            return;
        a->resampled = grown;
        a->resampled_cap = need;
    }
    size_t used = 0, made = 0;
    soxr_process(a->playback_rs, pcm, n, &used, a->resampled, a->resampled_cap, &made);
    queue_playback(a, a->resampled, made);
}

void live_audio_play(live_audio *a, const float *pcm, size_t n)
{
    if (a->c.record) {
        if (record(a, pcm, n) != 0)
            atomic_fetch_add(&a->overruns, 1);
    } else if (a->playback_rs) {
        resample_playback(a, pcm, n);
    } else {
        queue_playback(a, pcm, n);
    }
}

void live_audio_counters_get(live_audio *a, live_audio_counters *c)
{
    double device = 0.0, queued = 0.0;
    c->input_latency_s = 0.0;
#ifdef TOKVOX_HAVE_PORTAUDIO
    device = a->in_latency + a->out_latency;
    c->input_latency_s = a->in_latency;
#endif
    if (a->playback_ring)
        queued = (double)tokvox_ring_read_available(a->playback_ring) / a->sink_rate;
    c->underruns = atomic_load(&a->underruns);
    c->overruns = atomic_load(&a->overruns);
    double played_rate = a->c.record ? a->c.model_rate : a->sink_rate;
    c->captured_s = (double)atomic_load(&a->captured) / a->src_rate;
    c->in_flight_s = c->captured_s -
                     (double)atomic_load(&a->played) / played_rate + device;
    c->playback_queued_s = queued;
}

void live_audio_finish(live_audio *a)
{
    if (a->pacer_started) {
        atomic_store(&a->stop_pacer, 1);
        pthread_join(a->pacer, NULL);
        a->pacer_started = 0;
    }
    if (a->playback_rs)
        resample_playback(a, NULL, 0);
    if (a->playback_ring) {
        /* play out the queue; a device that stopped pulling cannot hold us */
        atomic_store(&a->draining, 1);
        double deadline = live_now_s() + 2.0 * RING_SECONDS;
        while (tokvox_ring_read_available(a->playback_ring) > 0 && live_now_s() < deadline)
            live_sleep_s(0.005);
    }
    close_devices(a);
}

void live_audio_input_source(const live_audio *a, tokvox_audio_source *src)
{
    *src = (tokvox_audio_source){0};
    if (a && a->file)
        tokvox_audio_reader_source(a->file, src);
}

/* The recording's samples, mapped from its temporary file: file pages the
 * kernel can drop, not a copy on the heap.  NULL (reason in err) on error;
 * nothing recorded maps to a static empty buffer. */
static const float *map_record(live_audio *a, char *err, size_t err_size)
{
    static const float nothing[1] = {0.0f};
    if (fflush(a->rec) != 0 && !a->rec_errno)
        a->rec_errno = errno ? errno : EIO;
    if (a->rec_errno) {
        snprintf(err, err_size, "%s: cannot keep the recording (%s)", a->c.record,
                 strerror(a->rec_errno));
        return NULL;
    }
    if (a->rec_n == 0)
        return nothing;
    void *m = mmap(NULL, sizeof(float) * a->rec_n, PROT_READ, MAP_PRIVATE, fileno(a->rec), 0);
    if (m == MAP_FAILED) {
        snprintf(err, err_size, "%s: cannot read the recording back (%s)", a->c.record,
                 strerror(errno));
        return NULL;
    }
    return m;
}

int live_audio_write_record(live_audio *a, char *err, size_t err_size)
{
    if (!a->c.record)
        return 0;
    const float *pcm = map_record(a, err, err_size);
    if (!pcm)
        return -1;
    int rc = tokvox_audio_write(a->c.record, pcm, a->rec_n, a->c.model_rate, a->rec_rate, err,
                                err_size);
    if (a->rec_n)
        munmap((void *)pcm, sizeof(float) * a->rec_n);
    return rc ? -1 : 0;
}

void live_audio_close(live_audio *a)
{
    if (!a)
        return;
    if (a->pacer_started) {
        atomic_store(&a->stop_pacer, 1);
        pthread_join(a->pacer, NULL);
    }
    close_devices(a);
    tokvox_ring_destroy(a->capture_ring);
    tokvox_ring_destroy(a->playback_ring);
    if (a->capture_rs)
        soxr_delete(a->capture_rs);
    if (a->playback_rs)
        soxr_delete(a->playback_rs);
    free(a->scratch);
    free(a->capture_out);
    free(a->resampled);
    tokvox_audio_reader_close(a->file);
    free(a->file_block);
    if (a->rec)
        fclose(a->rec);
    free(a);
}
