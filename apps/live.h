/* tokvox live: the pieces of the live command, private to apps/.
 *
 *   cmd_live.c     options, the three modes (local, --send, --listen), the
 *                  coding thread's loops
 *   live_audio.c   where audio comes from and goes to: PortAudio devices
 *                  (callbacks that only copy between rings) or a paced file
 *                  and a recording; streaming resampling with libsoxr
 *   live_net.c     UDP: the sender's socket (with simulated loss and jitter)
 *                  and the receiver's (with rate-limited refusal messages);
 *                  the datagrams, jitter buffer and concealment are
 *                  tokvox/stream.h's
 *   live_stats.c   processing-time percentiles, status line, JSON lines
 *
 * Threads: the coding thread (the command's main thread) calls everything
 * here; the audio side adds a device callback or a file pacing thread, which
 * only touch the rings and atomic counters inside live_audio.c (and the
 * pacer its input file's reader, which nothing else uses while it runs).
 */
#ifndef TOKVOX_LIVE_H
#define TOKVOX_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tokvox/io.h"
#include "tokvox/stream.h"
#include "tokvox/tokvox.h"

/* ---- audio side ----------------------------------------------------------- */

typedef struct live_audio live_audio;

typedef struct live_audio_config {
    int model_rate;
    int capture, playback;       /* which directions the mode uses */
    const char *input_device;    /* NULL: default device */
    const char *output_device;
    const char *input_file;      /* replaces the capture device */
    const char *record;          /* replaces the playback device */
    int device_rate;             /* 0: the model rate if the device takes it */
    int fast;                    /* do not pace the input file */
    int buffer_ms;               /* playback cushion before it starts */
} live_audio_config;

/* Counters since the start; exact, read by the coding thread. */
typedef struct live_audio_counters {
    uint64_t underruns;          /* playback callbacks that ran dry */
    uint64_t overruns;           /* capture blocks that did not fit, or
                                    playback that did not fit */
    double in_flight_s;          /* captured minus played, in seconds, with
                                    the devices' own latency: the end-to-end
                                    latency when one process does both */
    double playback_queued_s;    /* decoded audio not yet played */
    double captured_s;           /* audio captured so far */
    double input_latency_s;      /* the input device's own latency */
} live_audio_counters;

/* Opens devices or files; writes a one-line reason into err on failure. */
live_audio *live_audio_open(const live_audio_config *c, char *err, size_t err_size);
/* Starts the callbacks or the pacing thread. */
int live_audio_start(live_audio *a, char *err, size_t err_size);
/* Up to n captured samples at the model rate; never waits. */
size_t live_audio_capture(live_audio *a, float *pcm, size_t n);
/* The capture source is a file that has been read to its end and drained. */
int live_audio_capture_done(live_audio *a);
/* Hands n samples at the model rate to the playback side.  Waits for room
 * only when nothing else sets the pace (--fast); otherwise what does not fit
 * counts as an overrun. */
void live_audio_play(live_audio *a, const float *pcm, size_t n);
/* 0 once a device stream has stopped on an error (a device unplugged, a
 * broken backend) or the input file could not be read on (reported on
 * stderr by the reading thread): waiting for it would wait for ever. */
int live_audio_running(const live_audio *a);
/* Seconds the calling thread may sleep before more capture can be there. */
double live_audio_capture_wait(const live_audio *a, size_t wanted);
void live_audio_counters_get(live_audio *a, live_audio_counters *c);
/* Plays out what is queued and stops the devices (or the pacing thread). */
void live_audio_finish(live_audio *a);
/* What the input file's reader cleaned so far (NaN/Inf zeroed, overs
 * clamped); all zero without a file.  After live_audio_finish only: the
 * pacing thread reads the file until then. */
void live_audio_input_source(const live_audio *a, tokvox_audio_source *src);
/* Writes the recording (atomically) if there is one. */
int live_audio_write_record(live_audio *a, char *err, size_t err_size);
void live_audio_close(live_audio *a);
/* Prints the devices PortAudio sees; returns 0 or 1 (with a message). */
int live_audio_list_devices(FILE *out, char *err, size_t err_size);

/* ---- network ---------------------------------------------------------------- */

typedef struct live_sender live_sender;

typedef struct live_sender_config {
    const char *target;          /* HOST:PORT, [IPv6]:PORT */
    int sample_rate;             /* the model's: delays are measured in its samples */
    double loss;                 /* simulated loss probability, 0..1 */
    int jitter_ms;               /* simulated delay, uniform in 0..jitter_ms */
    uint64_t seed;
} live_sender_config;

typedef struct live_sender_counters {
    uint64_t sent, dropped, send_errors, bytes;
} live_sender_counters;

live_sender *live_sender_open(const live_sender_config *c, char *err, size_t err_size);
/* The stream clock (samples encoded so far) that simulated delays are
 * measured in; set before handing datagrams over. */
void live_sender_position(live_sender *s, uint64_t position);
/* A tokvox_datagram_sink (ctx = the live_sender): one datagram of the
 * stream, dropped or delayed by the simulation; sends every one now due. */
void live_sender_datagram(void *ctx, const uint8_t *data, size_t len);
/* The end datagram: never dropped, sent three times (losing it would only
 * cost the receiver its idle timeout) after what is still delayed. */
void live_sender_end(void *ctx, const uint8_t *data, size_t len);
void live_sender_counters_get(const live_sender *s, live_sender_counters *c);
void live_sender_close(live_sender *s);

typedef struct live_receiver live_receiver;

/* --listen with a bare PORT binds this: the machine itself only.  Taking
 * calls from the network is asked for by naming the address (0.0.0.0:PORT,
 * [::]:PORT for IPv6 and IPv4), best with --key-file. */
#define LIVE_LISTEN_DEFAULT_HOST "127.0.0.1"

/* Binds UDP on PORT, ADDRESS:PORT or [IPv6]:PORT ("::" is dual-stack). */
live_receiver *live_receiver_open(const char *address, char *err, size_t err_size);
/* Waits up to timeout_s for a datagram: 1 with its bytes in buf (*len), 0
 * on timeout, -1 on a socket error.  A datagram longer than cap is cut to
 * cap bytes and flagged by *len = cap + 1 (no valid one is that long). */
int live_receiver_next(live_receiver *r, double timeout_s, uint8_t *buf, size_t cap,
                       size_t *len);
/* The stream layer refused the last datagram (err from
 * tokvox_receiver_push): counted, and reported on stderr with the sender's
 * address once per kind, then at most every few seconds with a count. */
void live_receiver_refuse(live_receiver *r, int err, const uint8_t *buf, size_t len,
                          uint64_t model_id);
/* Pinning the call's sender: 1 if the last datagram may be pushed (nothing
 * pinned, or it came from the pinned address and port); otherwise it is
 * counted and reported as refused.  pin(1) pins the last datagram's sender,
 * pin(0) forgets it. */
int live_receiver_check_peer(live_receiver *r);
void live_receiver_pin(live_receiver *r, int pin);
int live_receiver_pinned(const live_receiver *r);
uint64_t live_receiver_refused(const live_receiver *r);
void live_receiver_close(live_receiver *r);

/* ---- statistics ------------------------------------------------------------ */

typedef struct live_stats live_stats;

/* The figures of one report, filled by the mode. */
typedef struct live_report {
    const char *mode;            /* "local", "send", "listen" */
    double t;                    /* seconds of stream so far */
    double kbps;                 /* payload bitrate */
    double latency_ms;           /* end-to-end (local) or this side's share */
    uint64_t underruns, overruns;
    uint64_t frames;             /* frames coded so far */
    uint64_t concealed, lost, late, refused;   /* receiver */
    uint64_t received;           /* receiver: frame packets taken (in time or late) */
    uint64_t recovered;          /* receiver: frames decoded from a FEC copy */
    uint64_t stretched, skipped; /* receiver: hops added / frames dropped by the
                                    adaptive jitter buffer */
    uint64_t unauthenticated, replayed; /* receiver, sealed calls: refused as such */
    int depth;                   /* receiver: the adaptive jitter buffer's target, frames
                                    (the most over the report's second) */
    int buffered;                /* receiver: most frames in the jitter buffer
                                    over the report's second (summary: the run) */
    uint64_t sent, dropped;                    /* sender */
    uint64_t stream_frames;      /* sender: frames put in packets, flush included */
} live_report;

/* json: NULL or a stream for JSON lines; status: print a status line on
 * stderr.  One report per second of stream. */
live_stats *live_stats_create(FILE *json, int status, int frames_per_second);
void live_stats_destroy(live_stats *s);
/* One frame's processing time; returns 1 when a report is due. */
int live_stats_frame(live_stats *s, double seconds);
void live_stats_report(live_stats *s, const live_report *r);
/* The last line: whole-run percentiles, CPU use and peak memory. */
void live_stats_summary(live_stats *s, const live_report *r, double wall_s);

/* Monotonic clock in seconds, and a sleep that ignores s <= 0 (live_stats.c). */
double live_now_s(void);
void live_sleep_s(double s);

#endif
