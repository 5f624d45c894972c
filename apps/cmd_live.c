/* tokvox live: microphone -> codec -> speaker in real time, in one process
 * or across the network (docs/live.md).
 *
 * The command's main thread is the coding thread: it takes captured audio a
 * hop at a time, encodes, and decodes or sends; or it receives packets,
 * reorders them and decodes or conceals one frame per playout tick.  The
 * audio side (live_audio.c) owns the device callback or the input-file
 * pacer, which only copy through lock-free rings. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "live.h"

#define CMD "live"
/* Per-frame buffers are fixed arrays of this many samples. */
#define LIVE_MAX_HOP 4096

typedef struct live_options {
    const char *model;
    int codebooks;                    /* 0 = all */
    double kbps;                      /* --bitrate, 0 = not given */
    const char *input_device, *output_device, *input_file, *record;
    const char *send, *stats;
    int listen_port;                  /* 0 = not listening */
    int list_devices, fast, quiet;
    int device_rate, buffer_ms, jitter_ms;
    double duration, idle_timeout, loss;
    int sim_jitter_ms;
    uint64_t seed;
} live_options;

enum {
    OPT_LIST = 256, OPT_IN_DEV, OPT_OUT_DEV, OPT_IN_FILE, OPT_RECORD, OPT_FAST, OPT_DEV_RATE,
    OPT_BUFFER, OPT_SEND, OPT_LISTEN, OPT_JITTER, OPT_IDLE, OPT_LOSS, OPT_SIM_JITTER, OPT_SEED,
    OPT_DURATION, OPT_STATS,
};

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"codebooks", required_argument, NULL, 'n'},
    {"bitrate", required_argument, NULL, 'b'},
    {"list-devices", no_argument, NULL, OPT_LIST},
    {"input-device", required_argument, NULL, OPT_IN_DEV},
    {"output-device", required_argument, NULL, OPT_OUT_DEV},
    {"input-file", required_argument, NULL, OPT_IN_FILE},
    {"record", required_argument, NULL, OPT_RECORD},
    {"fast", no_argument, NULL, OPT_FAST},
    {"device-rate", required_argument, NULL, OPT_DEV_RATE},
    {"buffer-ms", required_argument, NULL, OPT_BUFFER},
    {"send", required_argument, NULL, OPT_SEND},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"jitter-ms", required_argument, NULL, OPT_JITTER},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"simulate-loss", required_argument, NULL, OPT_LOSS},
    {"simulate-jitter", required_argument, NULL, OPT_SIM_JITTER},
    {"seed", required_argument, NULL, OPT_SEED},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"stats", required_argument, NULL, OPT_STATS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: tokvox live [--send HOST:PORT | --listen PORT] [OPTIONS]\n"
    "Microphone -> codec -> speaker in real time (docs/live.md):\n"
    "  (default)              capture -> encode -> decode -> play, in this process\n"
    "  --send HOST:PORT       capture -> encode -> UDP packets\n"
    "  --listen PORT          UDP packets -> jitter buffer -> decode -> play\n"
    "Audio:\n"
    "  --list-devices         list the audio devices and exit\n"
    "  --input-device N|NAME  capture device, by index or name (default: the system's)\n"
    "  --output-device N|NAME playback device\n"
    "  --input-file F         read F instead of capturing, paced in real time\n"
    "  --fast                 do not pace --input-file (tests, benchmarks)\n"
    "  --record F             write what would be played to F (at the end, atomically)\n"
    "  --device-rate R        open devices at R Hz (default: the model's if they can)\n"
    "  --buffer-ms MS         playback cushion beyond one frame (default 20)\n"
    "Codec:\n"
    "  -m, --model M          model file (default: the shipped model)\n"
    "  -n, --codebooks N      codebooks per frame (default: all); fewer = lower bitrate\n"
    "  -b, --bitrate KBPS     codebooks chosen by bitrate (shipped model: 0.5 to 4, steps of 0.5)\n"
    "Network:\n"
    "  --jitter-ms MS         receiver: hold frames back this long to reorder (default 60)\n"
    "  --idle-timeout S       receiver: stop after S s without a packet (default 10, 0 = never)\n"
    "  --simulate-loss P      sender: drop each packet with probability P (0-1)\n"
    "  --simulate-jitter MS   sender: delay each packet by 0-MS ms (reorders them)\n"
    "  --seed N               sender: seed of the simulation (default 1)\n"
    "Run:\n"
    "  --duration S           stop after S seconds of audio\n"
    "  --stats FILE           one JSON line per second of audio and a summary ('-' = stdout)\n"
    "  -q, --quiet            no status line on the terminal\n"
    "Ctrl-C stops cleanly: the stream is flushed and the recording written.\n";

static int parse_double(const char *text, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 on a usage error (reported), 2 after --help. */
static int parse_option(int c, const char *arg, live_options *o)
{
    int bad = 0;
    switch (c) {
    case 'm': o->model = arg; break;
    case 'n': bad = (o->codebooks = app_parse_int(arg, 1, 64)) < 0; break;
    case 'b': bad = app_parse_kbps(arg, &o->kbps); break;
    case OPT_LIST: o->list_devices = 1; break;
    case OPT_IN_DEV: o->input_device = arg; break;
    case OPT_OUT_DEV: o->output_device = arg; break;
    case OPT_IN_FILE: o->input_file = arg; break;
    case OPT_RECORD: o->record = arg; break;
    case OPT_FAST: o->fast = 1; break;
    case OPT_DEV_RATE: bad = (o->device_rate = app_parse_int(arg, 1000, 384000)) < 0; break;
    case OPT_BUFFER: bad = (o->buffer_ms = app_parse_int(arg, 0, 5000)) < 0; break;
    case OPT_SEND: o->send = arg; break;
    case OPT_LISTEN: bad = (o->listen_port = app_parse_int(arg, 1, 65535)) < 0; break;
    case OPT_JITTER: bad = (o->jitter_ms = app_parse_int(arg, 0, 2000)) < 0; break;
    case OPT_IDLE: bad = parse_double(arg, 0, 1e6, &o->idle_timeout); break;
    case OPT_LOSS: bad = parse_double(arg, 0, 1, &o->loss); break;
    case OPT_SIM_JITTER: bad = (o->sim_jitter_ms = app_parse_int(arg, 0, 2000)) < 0; break;
    case OPT_SEED: o->seed = strtoull(arg, NULL, 10); break;
    case OPT_DURATION: bad = parse_double(arg, 0, 1e7, &o->duration); break;
    case OPT_STATS: o->stats = arg; break;
    case 'q': o->quiet = 1; break;
    case 'h': fputs(usage, stdout); return 2;
    default: return app_fail(CMD, "see 'tokvox live --help'");
    }
    if (bad) {
        for (const struct option *lo = long_options; lo->name; lo++)
            if (lo->val == c)
                return app_fail(CMD, "--%s: '%s' is not a valid value", lo->name, arg);
    }
    return 0;
}

/* Options that cannot go together in one mode. */
static int check_mode(const live_options *o)
{
    if (o->codebooks && o->kbps > 0)
        return app_fail(CMD, "give --codebooks or --bitrate, not both");
    if (o->send && o->listen_port)
        return app_fail(CMD, "--send and --listen are two ends: run two tokvox live");
    if (o->listen_port && (o->input_file || o->input_device))
        return app_fail(CMD, "--listen receives its input from the network");
    if (o->send && (o->record || o->output_device))
        return app_fail(CMD, "--send plays nothing: --record and --output-device belong to "
                             "the receiver");
    return 0;
}

static int parse(int argc, char **argv, live_options *o)
{
    memset(o, 0, sizeof *o);
    o->buffer_ms = 20;
    o->jitter_ms = 60;
    o->idle_timeout = 10;
    o->seed = 1;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "m:n:b:qh", long_options, NULL)) != -1;) {
        int rc = parse_option(c, optarg, o);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return app_fail(CMD, "unexpected argument '%s' (see 'tokvox live --help')", argv[optind]);
    return check_mode(o);
}

/* ---- the session ------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t signals_seen;

/* A Ctrl-C asks the loops to finish and flush.  One press may arrive twice
 * (a supervisor such as timeout(1) forwards it to the child and to its
 * process group), so only a third signal ends the process at once. */
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (++signals_seen >= 3)
        _exit(130);
}


typedef struct session {
    const live_options *o;
    tokvox_model *m;
    tokvox_model_info info;
    int codebooks, hop;
    live_audio *audio;
    live_stats *stats;
    FILE *stats_file;
    live_report report;
    uint64_t max_samples;             /* --duration, 0 = no limit */
    double latency_sum;               /* for the mean over a report's frames */
    int latency_n;
    double start;
    int device_failed;                /* a device stream or the input file stopped on an error */
    int buffered_max;                 /* receiver: the run's most buffered frames */
} session;

static double frame_seconds(const session *s) { return (double)s->hop / s->info.sample_rate; }

/* One frame's processing time and latency; a report when one is due. */
static void frame_done(session *s, double seconds, double latency_s)
{
    s->report.frames++;
    s->report.t = (double)s->report.frames * frame_seconds(s);
    s->latency_sum += latency_s;
    s->latency_n++;
    if (live_stats_frame(s->stats, seconds)) {
        s->report.latency_ms = 1e3 * s->latency_sum / s->latency_n;
        s->latency_sum = 0;
        s->latency_n = 0;
        live_stats_report(s->stats, &s->report);
        s->report.buffered = 0; /* a maximum per report */
    }
}

static void audio_counters(session *s, live_audio_counters *c)
{
    *c = (live_audio_counters){0};
    if (s->audio)
        live_audio_counters_get(s->audio, c);
    s->report.underruns = c->underruns;
    s->report.overruns = c->overruns;
}

/* ---- local and send: capture a hop at a time ---------------------------- */

/* Fills in[0..hop) from the capture side.  Returns the samples there are:
 * hop, or fewer at the end of the input, --duration or Ctrl-C. */
static size_t capture_hop(session *s, float *in, uint64_t consumed)
{
    size_t have = 0, want = (size_t)s->hop;
    if (s->max_samples && consumed + want > s->max_samples)
        want = s->max_samples > consumed ? (size_t)(s->max_samples - consumed) : 0;
    while (have < want && !stop_requested) {
        have += live_audio_capture(s->audio, in + have, want - have);
        if (have == want || live_audio_capture_done(s->audio))
            break;
        if (!live_audio_running(s->audio)) {
            s->device_failed = 1;
            break;
        }
        live_sleep_s(live_audio_capture_wait(s->audio, want - have));
    }
    return have;
}

/* The decoded stream lines up with the input sample for sample, so playing
 * at most as many samples as were captured trims the flush padding. */
static void play_trimmed(session *s, const float *pcm, size_t n, uint64_t *played,
                         uint64_t limit)
{
    if (*played + n > limit)
        n = limit > *played ? (size_t)(limit - *played) : 0;
    live_audio_play(s->audio, pcm, n);
    *played += n;
}

typedef struct codec_pair {
    tokvox_encoder *enc;
    tokvox_decoder *dec;              /* local mode only */
    live_sender *sender;              /* send mode only */
    uint16_t codes[4 * TOKVOX_PACKET_MAX_CODEBOOKS];
    float pcm[4 * LIVE_MAX_HOP];
} codec_pair;

/* Encodes n samples (NULL: flush) and decodes or sends the frames made. */
static int code_samples(session *s, codec_pair *c, const float *in, size_t n,
                        uint64_t position, size_t *decoded)
{
    size_t frames = 0;
    int err = in ? tokvox_encoder_push(c->enc, in, n, c->codes, 3, &frames)
                 : tokvox_encoder_flush(c->enc, c->codes, 3, &frames);
    *decoded = 0;
    if (!err && c->dec)
        err = tokvox_decoder_push(c->dec, c->codes, frames, c->pcm, decoded);
    for (size_t f = 0; !err && c->sender && f < frames; f++)
        live_sender_frame(c->sender, c->codes + f * (size_t)s->codebooks, position);
    return err;
}

/* Capture to packet: what was captured but is not yet coded, the input
 * device's latency and the encoder's share of the model's. */
static double sender_latency(session *s, const codec_pair *c, const live_audio_counters *a,
                             uint64_t consumed)
{
    double rate = s->info.sample_rate;
    double pending = a->captured_s - (double)consumed / rate;
    return pending + a->input_latency_s + tokvox_encoder_latency(c->enc) / rate;
}

static void update_sender_report(session *s, const codec_pair *c)
{
    live_sender_counters n;
    live_sender_counters_get(c->sender, &n);
    s->report.sent = n.sent;
    s->report.dropped = n.dropped;
    s->report.stream_frames = n.frames;
}

/* The capture loop of local and send mode. */
static int run_capture_loop(session *s, codec_pair *c, uint64_t *consumed, uint64_t *played)
{
    float in[LIVE_MAX_HOP];
    for (;;) {
        size_t have = capture_hop(s, in, *consumed), n = 0;
        *consumed += have;
        if (have < (size_t)s->hop) { /* the end: code the rest, then flush */
            int err = code_samples(s, c, in, have, *consumed, &n);
            if (!err && c->dec)
                play_trimmed(s, c->pcm, n, played, *consumed);
            return err;
        }
        double t0 = live_now_s();
        int err = code_samples(s, c, in, have, *consumed, &n);
        double t1 = live_now_s();
        if (err)
            return err;
        /* before the frame is handed on: its oldest sample has waited
         * longest, and a device plays every sample with that delay */
        live_audio_counters a;
        audio_counters(s, &a);
        if (c->dec)
            play_trimmed(s, c->pcm, n, played, *consumed);
        if (c->sender)
            update_sender_report(s, c);
        frame_done(s, t1 - t0, c->dec ? a.in_flight_s : sender_latency(s, c, &a, *consumed));
    }
}

/* After the loop: the encoder's last frames, the decoder's overlap. */
static int flush_codec(session *s, codec_pair *c, uint64_t consumed, uint64_t *played)
{
    size_t n = 0;
    int err = code_samples(s, c, NULL, 0, consumed, &n);
    if (!err && c->dec) {
        play_trimmed(s, c->pcm, n, played, consumed);
        err = tokvox_decoder_flush(c->dec, c->pcm, &n);
        if (!err)
            play_trimmed(s, c->pcm, n, played, consumed);
    }
    if (!err && c->sender) {
        live_sender_finish(c->sender, consumed);
        update_sender_report(s, c);
    }
    return err;
}

static int run_capture(session *s, live_sender *sender)
{
    codec_pair *c = calloc(1, sizeof *c);
    int err = c ? TOKVOX_OK : TOKVOX_ERR_NO_MEMORY;
    if (c) {
        c->sender = sender;
        c->enc = tokvox_encoder_create(s->m, s->codebooks, &err);
        if (!sender && c->enc)
            c->dec = tokvox_decoder_create(s->m, s->codebooks, 0, &err);
    }
    uint64_t consumed = 0, played = 0;
    if (c && c->enc && (sender || c->dec)) {
        err = run_capture_loop(s, c, &consumed, &played);
        if (!err)
            err = flush_codec(s, c, consumed, &played);
    }
    if (c) {
        tokvox_encoder_destroy(c->enc);
        tokvox_decoder_destroy(c->dec);
    }
    free(c);
    if (s->device_failed) /* the file reader has already said why */
        return s->o->input_file ? 1 : app_fail(CMD, "the audio device stopped delivering audio");
    return err ? app_fail(CMD, "coding failed: %s", tokvox_strerror(err)) : 0;
}

/* ---- listen ------------------------------------------------------------------ */

typedef struct listener {
    live_receiver *rx;
    live_jitter *jitter;
    tokvox_decoder *dec;
    int depth;
    double first_arrival, next_tick, last_packet;
    int ended;                        /* end of stream: the packet, or idle */
    int length_known;                 /* the end packet told the length */
    uint64_t end_frame, end_samples;
    uint64_t played, limit;           /* samples; limit from the end packet */
    int burst;                        /* frames concealed in a row */
    float gain;                       /* fade of a long burst */
    uint16_t codes[TOKVOX_PACKET_MAX_CODEBOOKS];
    float pcm[LIVE_MAX_HOP];
} listener;

/* A new stream (the first packet, or a sender that restarted). */
static int start_stream(session *s, listener *l, const tokvox_packet *p)
{
    int err;
    live_jitter_destroy(l->jitter);
    tokvox_decoder_destroy(l->dec);
    l->jitter = live_jitter_create(l->depth, p->num_codebooks);
    l->dec = tokvox_decoder_create(s->m, p->num_codebooks, 0, &err);
    if (!l->jitter || !l->dec)
        return app_fail(CMD, "cannot start decoding: %s",
                        l->dec ? "out of memory" : tokvox_strerror(err));
    s->codebooks = p->num_codebooks;
    s->report.kbps = s->codebooks * app_kbps_per_codebook(&s->info);
    l->first_arrival = live_now_s();
    l->next_tick = l->first_arrival + s->o->jitter_ms / 1000.0;
    l->ended = l->length_known = 0;
    l->limit = UINT64_MAX;
    return 0;
}

static int take_packet(session *s, listener *l, const tokvox_packet *p)
{
    l->last_packet = live_now_s();
    if (p->type == TOKVOX_PACKET_END) {
        l->ended = l->length_known = 1;
        l->end_frame = p->seq;
        l->end_samples = p->timestamp;
        return 0;
    }
    if (!l->jitter && start_stream(s, l, p) != 0)
        return 1;
    live_jitter_put_result r = live_jitter_put(l->jitter, p->seq, p->timestamp, s->hop,
                                               p->codes, l->last_packet);
    if (r != LIVE_JITTER_DUPLICATE)
        s->report.received++; /* a restart's first packet is stored below */
    if (r == LIVE_JITTER_LATE)
        s->report.late++;
    if (r == LIVE_JITTER_FAR) {
        fprintf(stderr, "tokvox live: the sender restarted its stream; starting over\n");
        live_receiver_new_stream(l->rx);
        if (start_stream(s, l, p) != 0)
            return 1;
        live_jitter_put(l->jitter, p->seq, p->timestamp, s->hop, p->codes, l->last_packet);
    }
    return 0;
}

/* Whether the next frame is due: by the frames buffered when nothing keeps
 * time (--fast), by the device's queue when playing, by the clock when
 * recording in real time. */
static int tick_due(session *s, listener *l)
{
    if (!l->jitter || !live_jitter_started(l->jitter))
        return 0;
    uint64_t next = live_jitter_next(l->jitter);
    if (l->ended && next >= l->end_frame)
        return 0;
    if (l->ended && (s->o->fast || stop_requested))
        return 1;
    if (s->o->fast)
        return live_jitter_span(l->jitter) > l->depth;
    double now = live_now_s();
    if (now < l->first_arrival + s->o->jitter_ms / 1000.0)
        return 0;
    if (s->o->record)
        return now >= l->next_tick;
    live_audio_counters a;
    audio_counters(s, &a);
    return a.playback_queued_s < (s->o->buffer_ms / 1000.0) + 2 * frame_seconds(s);
}

/* Long bursts fade out (the decoder's rendering of a fading latent settles
 * on a faint hum, not silence); the first frames of a burst keep full
 * level, and the level ramps back within the first frame heard again. */
static void apply_fade(listener *l, size_t n, int concealed)
{
    float target = !concealed || l->burst <= 2 ? 1.0f : l->gain * 0.5f;
    if (target == 1.0f && l->gain == 1.0f)
        return;
    for (size_t i = 0; i < n; i++)
        l->pcm[i] *= l->gain + (target - l->gain) * (float)(i + 1) / (float)n;
    l->gain = target;
}

/* Samples the output may have: the stream's length once the end packet has
 * told it, and --duration. */
static uint64_t listen_limit(const session *s, const listener *l)
{
    return s->max_samples && s->max_samples < l->limit ? s->max_samples : l->limit;
}

/* The jitter buffer's fill after a frame was played: bounded while the
 * receiver keeps the sender's pace, growing when its playout falls behind. */
static void note_buffered(session *s, int span)
{
    if (span > s->report.buffered)
        s->report.buffered = span;
    if (span > s->buffered_max)
        s->buffered_max = span;
}

static int play_frame(session *s, listener *l)
{
    double arrival = 0, t0 = live_now_s();
    size_t n = 0;
    int have = live_jitter_pop(l->jitter, l->codes, &arrival), err;
    if (have) {
        err = tokvox_decoder_push(l->dec, l->codes, 1, l->pcm, &n);
        l->burst = 0;
    } else {
        err = tokvox_decoder_conceal(l->dec, l->pcm, &n);
        l->burst++;
        s->report.concealed++;
    }
    if (err)
        return app_fail(CMD, "decoding failed: %s", tokvox_strerror(err));
    apply_fade(l, n, !have);
    note_buffered(s, live_jitter_span(l->jitter));
    double t1 = live_now_s();
    play_trimmed(s, l->pcm, n, &l->played, listen_limit(s, l));
    l->next_tick += frame_seconds(s);
    live_audio_counters a;
    audio_counters(s, &a);
    double hold = have ? t1 - arrival : s->o->jitter_ms / 1000.0;
    double latency = hold + (double)tokvox_decoder_latency(l->dec) / s->info.sample_rate +
                     a.playback_queued_s;
    s->report.lost = s->report.concealed > s->report.late ? s->report.concealed - s->report.late : 0;
    s->report.refused = live_receiver_refused(l->rx);
    frame_done(s, t1 - t0, latency);
    return 0;
}

/* The end packet says how long the stream is: trim the flush padding. */
static void set_limit(listener *l)
{
    if (l->length_known && l->jitter && l->end_samples >= live_jitter_origin(l->jitter))
        l->limit = l->end_samples - live_jitter_origin(l->jitter);
}

static int listen_finished(session *s, listener *l)
{
    if (stop_requested && !l->ended)
        return 1;
    if (s->max_samples && l->played >= s->max_samples)
        return 1;
    int idle = s->o->idle_timeout > 0 && live_now_s() - l->last_packet > s->o->idle_timeout;
    if (idle && !l->ended && l->jitter) { /* no end packet: play out what is held */
        l->ended = 1;
        l->end_frame = live_jitter_next(l->jitter) + (uint64_t)live_jitter_span(l->jitter);
    }
    if (l->ended)
        return !l->jitter || live_jitter_next(l->jitter) >= l->end_frame;
    return idle;
}

/* Takes the next datagram, waiting up to wait seconds, and then every one
 * already queued: after this thread was held up (a busy CPU, a page fault,
 * SIGSTOP) the frames that came meanwhile must be in the buffer before
 * their overdue ticks, or they are concealed, and their packets then come
 * late or, more than the ring behind the playout point, look like a
 * restarted sender.  The draining stops at LISTEN_DRAIN_SPAN frames
 * buffered, well inside the jitter ring (64 slots or more); listen_loop
 * drains again before each overdue tick.  With --fast the packets are the
 * clock: one at a time keeps runs repeatable. */
#define LISTEN_DRAIN_SPAN 32
#define LISTEN_DRAIN_MAX 64

static int receive(session *s, listener *l, double wait)
{
    for (int i = 0; i < LISTEN_DRAIN_MAX; i++) {
        tokvox_packet p;
        int got = live_receiver_next(l->rx, i ? 0 : wait, &p);
        if (got < 0)
            return app_fail(CMD, "receiving failed: %s", strerror(errno));
        if (got == 0)
            return 0;
        if (take_packet(s, l, &p) != 0)
            return 1;
        if (s->o->fast || (l->jitter && live_jitter_span(l->jitter) >= LISTEN_DRAIN_SPAN))
            return 0;
    }
    return 0;
}

static int listen_loop(session *s, listener *l)
{
    while (!listen_finished(s, l)) {
        if (!live_audio_running(s->audio))
            return app_fail(CMD, "the audio device stopped playing");
        double wait = l->jitter ? l->next_tick - live_now_s() : 0.05;
        wait = s->o->fast || !s->o->record ? 0.002 : wait;
        if (receive(s, l, wait < 0 ? 0 : wait > 0.05 ? 0.05 : wait) != 0)
            return 1;
        set_limit(l);
        while (tick_due(s, l)) {
            if (play_frame(s, l) != 0)
                return 1;
            if (!s->o->fast && receive(s, l, 0) != 0)
                return 1;
        }
    }
    return 0;
}

static int run_listen(session *s)
{
    char err[512] = "";
    listener *l = calloc(1, sizeof *l);
    if (!l)
        return app_fail(CMD, "out of memory");
    l->gain = 1.0f;
    l->limit = UINT64_MAX;
    l->last_packet = live_now_s();
    l->depth = (int)ceil(s->o->jitter_ms / 1000.0 / frame_seconds(s));
    l->rx = live_receiver_open(s->o->listen_port, &s->info, err, sizeof err);
    if (l->rx && !s->o->quiet)
        fprintf(stderr, "tokvox live: listening on UDP port %d\n", s->o->listen_port);
    int rc = l->rx ? listen_loop(s, l) : app_fail(CMD, "%s", err);
    size_t n = 0;
    if (!rc && l->dec && tokvox_decoder_flush(l->dec, l->pcm, &n) == TOKVOX_OK)
        play_trimmed(s, l->pcm, n, &l->played, listen_limit(s, l));
    if (l->rx)
        s->report.refused = live_receiver_refused(l->rx);
    live_receiver_close(l->rx);
    live_jitter_destroy(l->jitter);
    tokvox_decoder_destroy(l->dec);
    free(l);
    return rc;
}

/* ---- setting up and tearing down ------------------------------------------- */

static int open_audio(session *s)
{
    const live_options *o = s->o;
    live_audio_config c = {0};
    c.model_rate = s->info.sample_rate;
    c.capture = !o->listen_port;
    c.playback = !o->send;
    c.input_device = o->input_device;
    c.output_device = o->output_device;
    c.input_file = o->input_file;
    c.record = o->record;
    c.device_rate = o->device_rate;
    c.fast = o->fast;
    c.buffer_ms = o->buffer_ms + (int)(1000 * frame_seconds(s));
    char err[512] = "";
    s->audio = live_audio_open(&c, err, sizeof err);
    if (!s->audio || live_audio_start(s->audio, err, sizeof err) != 0)
        return app_fail(CMD, "%s", err);
    return 0;
}

static int open_session(session *s, const live_options *o)
{
    s->o = o;
    s->m = app_load_model(CMD, o->model);
    if (!s->m)
        return 1;
    tokvox_model_get_info(s->m, &s->info);
    if (o->codebooks > s->info.num_codebooks)
        return app_fail(CMD, "--codebooks %d: the model has %d codebooks", o->codebooks,
                        s->info.num_codebooks);
    s->codebooks = o->codebooks ? o->codebooks : s->info.num_codebooks;
    if (o->kbps > 0 && app_codebooks_for_kbps(CMD, &s->info, o->kbps, s->info.num_codebooks,
                                              "the model", &s->codebooks))
        return 1;
    s->hop = s->info.hop;
    if (s->hop > LIVE_MAX_HOP)
        return app_fail(CMD, "the model's hop of %d samples is more than live mode's %d",
                        s->hop, LIVE_MAX_HOP);
    s->max_samples = (uint64_t)(o->duration * s->info.sample_rate);
    s->report.mode = o->send ? "send" : o->listen_port ? "listen" : "local";
    s->report.kbps = s->codebooks * app_kbps_per_codebook(&s->info);
    if (o->stats) {
        s->stats_file = strcmp(o->stats, "-") ? fopen(o->stats, "w") : stdout;
        if (!s->stats_file)
            return app_fail(CMD, "%s: cannot write (%s)", o->stats, strerror(errno));
    }
    int fps = (int)lround(1.0 / frame_seconds(s));
    s->stats = live_stats_create(s->stats_file, !o->quiet && isatty(2), fps);
    if (!s->stats)
        return app_fail(CMD, "out of memory");
    return open_audio(s);
}

static void close_session(session *s)
{
    live_audio_close(s->audio);
    live_stats_destroy(s->stats);
    if (s->stats_file && s->stats_file != stdout)
        fclose(s->stats_file);
    tokvox_model_destroy(s->m);
}

static int run_mode(session *s)
{
    if (s->o->listen_port)
        return run_listen(s);
    if (!s->o->send)
        return run_capture(s, NULL);
    char err[512] = "";
    live_sender_config c = {s->o->send, &s->info, s->codebooks, s->o->loss, s->o->sim_jitter_ms,
                            s->o->seed};
    live_sender *sender = live_sender_open(&c, err, sizeof err);
    int rc = sender ? run_capture(s, sender) : app_fail(CMD, "%s", err);
    live_sender_close(sender);
    return rc;
}

/* Plays out, writes the recording, prints the summary. */
static int finish_session(session *s, int rc)
{
    char err[512] = "";
    live_audio_finish(s->audio);
    if (s->o->input_file) {
        tokvox_audio_source src;
        live_audio_input_source(s->audio, &src);
        app_warn_cleaned("live", s->o->input_file, &src);
    }
    live_audio_counters a;
    audio_counters(s, &a);
    if (!rc && live_audio_write_record(s->audio, err, sizeof err) != 0)
        rc = app_fail(CMD, "%s", err);
    s->report.buffered = s->buffered_max;
    live_stats_summary(s->stats, &s->report, live_now_s() - s->start);
    return rc;
}

int cmd_live(int argc, char **argv)
{
    live_options o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 2 ? 0 : rc;
    if (o.list_devices) {
        char err[512] = "";
        return live_audio_list_devices(stdout, err, sizeof err) ? app_fail(CMD, "%s", err) : 0;
    }
    session s = {0};
    s.start = live_now_s();
    stop_requested = 0;
    signals_seen = 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = open_session(&s, &o);
    if (!rc)
        rc = finish_session(&s, run_mode(&s));
    close_session(&s);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return rc;
}
