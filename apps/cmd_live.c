/* tokvox live: microphone -> codec -> speaker in real time, in one process
 * or across the network (docs/live.md).
 *
 * The command's main thread is the coding thread: it takes captured audio a
 * hop at a time, encodes, and decodes or sends; or it receives packets,
 * reorders them and decodes or conceals one frame per playout tick.  The
 * audio side (live_audio.c) owns the device callback or the input-file
 * pacer, which only copy through lock-free rings. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    const char *listen;               /* PORT or ADDRESS:PORT, NULL = not listening */
    const char *key_file, *make_key;  /* --key-file, --make-key */
    uint8_t key[TOKVOX_STREAM_KEY_BYTES];
    int have_key;
    int list_devices, fast, quiet;
    int device_rate, buffer_ms, jitter_ms;
    double duration, idle_timeout, loss;
    int sim_jitter_ms;
    int fec, fec_codebooks;           /* sender: FEC depth and codebooks, 0 = none / default */
    int fixed_jitter;                 /* receiver: --jitter-ms is the depth, no adapting */
    uint64_t seed;
} live_options;

enum {
    OPT_LIST = 256, OPT_IN_DEV, OPT_OUT_DEV, OPT_IN_FILE, OPT_RECORD, OPT_FAST, OPT_DEV_RATE,
    OPT_BUFFER, OPT_SEND, OPT_LISTEN, OPT_JITTER, OPT_IDLE, OPT_LOSS, OPT_SIM_JITTER, OPT_SEED,
    OPT_DURATION, OPT_STATS, OPT_FEC, OPT_FEC_CB, OPT_FIXED_JITTER, OPT_KEY_FILE, OPT_MAKE_KEY,
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
    {"fec", required_argument, NULL, OPT_FEC},
    {"fec-codebooks", required_argument, NULL, OPT_FEC_CB},
    {"fixed-jitter", no_argument, NULL, OPT_FIXED_JITTER},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"make-key", required_argument, NULL, OPT_MAKE_KEY},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: tokvox live [--send HOST:PORT | --listen [ADDRESS:]PORT] [--key-file F] [OPTIONS]\n"
    "       tokvox live --make-key F\n"
    "Microphone -> codec -> speaker in real time (docs/live.md):\n"
    "  (default)              capture -> encode -> decode -> play, in this process\n"
    "  --send HOST:PORT       capture -> encode -> UDP packets\n"
    "  --listen [ADDR:]PORT   UDP packets -> jitter buffer -> decode -> play; a bare PORT\n"
    "                         listens on 127.0.0.1 only: name 0.0.0.0 or [::] for the network\n"
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
    "  -m, --model M          model file or shipped name (default tokvox-16k,\n"
    "                         55 ms; tokvox-16k-ld: 40 ms)\n"
    "  -n, --codebooks N      codebooks per frame (default: all); fewer = lower bitrate\n"
    "  -b, --bitrate KBPS     codebooks chosen by bitrate in kbps (shipped model: 0.5 to 4 kbps\n"
    "                         in steps of 0.5 kbps)\n"
    "Network:\n"
    "  --key-file F           seal (sender) or require sealed (receiver) datagrams with the\n"
    "                         key in F; the receiver then plays only the first sender\n"
    "  --make-key F           write a new random key to F (mode 600) and exit\n"
    "  --fec N                sender: each datagram repeats the N previous ones (0-3) at a\n"
    "                         lower bitrate, which a receiver decodes when they are lost\n"
    "  --fec-codebooks N      sender: codebooks of those copies (default 2 = 1 kbps)\n"
    "  --jitter-ms MS         receiver: hold frames back at least this long (default 60);\n"
    "                         the hold grows with the jitter measured\n"
    "  --fixed-jitter         receiver: keep the hold at --jitter-ms (no adapting)\n"
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
    case OPT_LISTEN: o->listen = arg; break;
    case OPT_KEY_FILE: o->key_file = arg; break;
    case OPT_MAKE_KEY: o->make_key = arg; break;
    case OPT_JITTER: bad = (o->jitter_ms = app_parse_int(arg, 0, 2000)) < 0; break;
    case OPT_IDLE: bad = parse_double(arg, 0, 1e6, &o->idle_timeout); break;
    case OPT_LOSS: bad = parse_double(arg, 0, 1, &o->loss); break;
    case OPT_SIM_JITTER: bad = (o->sim_jitter_ms = app_parse_int(arg, 0, 2000)) < 0; break;
    case OPT_SEED: o->seed = strtoull(arg, NULL, 10); break;
    case OPT_DURATION: bad = parse_double(arg, 0, 1e7, &o->duration); break;
    case OPT_STATS: o->stats = arg; break;
    case OPT_FEC: bad = (o->fec = app_parse_int(arg, 0, TOKVOX_STREAM_MAX_FEC)) < 0; break;
    case OPT_FEC_CB: bad = (o->fec_codebooks = app_parse_int(arg, 1, 64)) < 0; break;
    case OPT_FIXED_JITTER: o->fixed_jitter = 1; break;
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
    if (o->send && o->listen)
        return app_fail(CMD, "--send and --listen are two ends: run two tokvox live");
    if (o->listen && (o->input_file || o->input_device))
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
    opterr = 0; /* getopt's own two-line complaint replaced by app_option_error */
    for (int c; (c = getopt_long(argc, argv, ":m:n:b:qh", long_options, NULL)) != -1;) {
        if (c == '?' || c == ':')
            return app_option_error(CMD, c, argv);
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
        s->report.buffered = s->report.depth = 0; /* maxima per report */
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
    tokvox_encoder *enc;              /* local mode */
    tokvox_decoder *dec;
    tokvox_sender *tx;                /* send mode: the stream layer ... */
    live_sender *sender;              /* ... and the socket */
    uint8_t end[TOKVOX_STREAM_MAX_DATAGRAM]; /* the last datagram of finish */
    size_t end_len;
    uint16_t codes[4 * TOKVOX_PACKET_CODEBOOKS_MAX];
    float pcm[4 * LIVE_MAX_HOP];
} codec_pair;

/* tokvox_sender_finish hands over the last audio datagrams and then the end
 * datagram: each is held until the next comes, so the last one held is the
 * end datagram, which the socket repeats. */
static void hold_last(void *ctx, const uint8_t *data, size_t len)
{
    codec_pair *c = ctx;
    if (c->end_len)
        live_sender_datagram(c->sender, c->end, c->end_len);
    memcpy(c->end, data, len);
    c->end_len = len;
}

/* Encodes n samples (NULL: flush) and decodes or sends the frames made. */
static int code_samples(session *s, codec_pair *c, const float *in, size_t n,
                        uint64_t position, size_t *decoded)
{
    (void)s;
    *decoded = 0;
    if (c->tx) {
        live_sender_position(c->sender, position);
        if (in)
            return tokvox_sender_push(c->tx, in, n, live_sender_datagram, c->sender);
        int err = tokvox_sender_finish(c->tx, hold_last, c);
        if (!err && c->end_len)
            live_sender_end(c->sender, c->end, c->end_len);
        return err;
    }
    size_t frames = 0;
    int err = in ? tokvox_encoder_push(c->enc, in, n, c->codes, 3, &frames)
                 : tokvox_encoder_flush(c->enc, c->codes, 3, &frames);
    if (!err)
        err = tokvox_decoder_push(c->dec, c->codes, frames, c->pcm, decoded);
    return err;
}

/* Capture to packet: what was captured but is not yet coded, the input
 * device's latency and the encoder's share of the model's. */
static double sender_latency(session *s, const codec_pair *c, const live_audio_counters *a,
                             uint64_t consumed)
{
    double rate = s->info.sample_rate;
    double pending = a->captured_s - (double)consumed / rate;
    (void)c;
    return pending + a->input_latency_s + s->info.hop / rate;
}

static void update_sender_report(session *s, const codec_pair *c)
{
    live_sender_counters n;
    live_sender_counters_get(c->sender, &n);
    s->report.sent = n.sent;
    s->report.dropped = n.dropped;
    s->report.stream_frames = tokvox_sender_frames(c->tx);
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
    if (!err && c->sender)
        update_sender_report(s, c);
    return err;
}

/* The stream layer's sender at the session's bitrate and FEC. */
static tokvox_sender *open_stream(session *s, int *err)
{
    tokvox_sender_config sc;
    tokvox_sender_config_init(&sc);
    sc.num_codebooks = s->codebooks;
    sc.fec_depth = s->o->fec;
    sc.key = s->o->have_key ? s->o->key : NULL;
    if (s->o->fec_codebooks)
        sc.fec_codebooks = s->o->fec_codebooks;
    return tokvox_sender_create(s->m, &sc, err);
}

static int run_capture(session *s, live_sender *sender)
{
    codec_pair *c = calloc(1, sizeof *c);
    int err = c ? TOKVOX_OK : TOKVOX_ERR_NO_MEMORY;
    if (c && sender) {
        c->sender = sender;
        c->tx = open_stream(s, &err);
    } else if (c) {
        c->enc = tokvox_encoder_create(s->m, s->codebooks, &err);
        if (c->enc)
            c->dec = tokvox_decoder_create(s->m, s->codebooks, 0, &err);
    }
    uint64_t consumed = 0, played = 0;
    if (c && (c->tx || c->dec)) {
        err = run_capture_loop(s, c, &consumed, &played);
        if (!err)
            err = flush_codec(s, c, consumed, &played);
    }
    if (c) {
        tokvox_encoder_destroy(c->enc);
        tokvox_decoder_destroy(c->dec);
        tokvox_sender_destroy(c->tx);
    }
    free(c);
    if (s->device_failed) /* the file reader has already said why */
        return s->o->input_file ? 1 : app_fail(CMD, "the audio device stopped delivering audio");
    return err ? app_fail(CMD, "coding failed: %s", tokvox_strerror(err)) : 0;
}

/* ---- listen ------------------------------------------------------------------ */

/* The receiver: datagrams from the socket go into the stream layer's
 * receiver (tokvox/stream.h), which reorders, decodes, recovers, conceals
 * and adapts its depth; this side only decides when a frame is due and
 * where its samples go. */
typedef struct listener {
    live_receiver *rx;                /* the socket */
    tokvox_receiver *r;               /* the stream */
    double next_tick, last_packet;
    double pin_seen;                  /* the pinned sender's last datagram */
    int idle;                         /* no datagram for --idle-timeout */
    uint64_t streams;                 /* streams seen, for the restart message */
    uint64_t stream_start;            /* samples recorded when this stream began */
    size_t skip;                      /* samples still to drop: the decoder's delay */
    uint64_t played;
    uint8_t buf[TOKVOX_STREAM_MAX_DATAGRAM];
    float pcm[LIVE_MAX_HOP];
} listener;

static void receiver_stats(const listener *l, tokvox_receiver_stats *st)
{
    *st = (tokvox_receiver_stats){.size = sizeof *st};
    tokvox_receiver_get_stats(l->r, st);
}

/* The report's receiver figures, from the stream layer's counters: frames
 * are the stream's frames taken out (a stretched hop is not one, a skipped
 * frame is), received = taken from their own packet in time or late. */
static void update_listen_report(session *s, const listener *l)
{
    tokvox_receiver_stats st;
    receiver_stats(l, &st);
    s->report.concealed = st.concealed;
    s->report.late = st.late;
    s->report.received = st.decoded + st.late;
    uint64_t taken = st.decoded + st.recovered + st.concealed;
    s->report.lost = taken > s->report.received ? taken - s->report.received : 0;
    s->report.recovered = st.recovered;
    s->report.stretched = st.stretched;
    s->report.skipped = st.skipped;
    s->report.unauthenticated = st.unauthenticated;
    s->report.replayed = st.replayed;
    s->report.refused = st.refused;
    if (st.num_codebooks && st.num_codebooks != s->codebooks) {
        s->codebooks = st.num_codebooks;
        s->report.kbps = s->codebooks * app_kbps_per_codebook(&s->info);
    }
}

/* A new stream (the first, or a sender that restarted): its first `delay`
 * samples are the decoder's delay, not audio. */
static void note_stream(listener *l, size_t delay)
{
    tokvox_receiver_stats st;
    receiver_stats(l, &st);
    if (st.streams == l->streams)
        return;
    if (l->streams)
        fprintf(stderr, "tokvox live: the sender restarted its stream; starting over\n");
    l->streams = st.streams;
    l->stream_start = l->played;
    l->skip = delay;
}

/* Samples the output may have: the stream's length once the end datagram
 * has told it, and --duration. */
static uint64_t listen_limit(const session *s, const listener *l)
{
    tokvox_receiver_stats st;
    receiver_stats(l, &st);
    uint64_t limit = st.stream_samples ? l->stream_start + st.stream_samples : UINT64_MAX;
    return s->max_samples && s->max_samples < limit ? s->max_samples : limit;
}

/* Takes the next datagram, waiting up to wait seconds, and then every one
 * already queued: after this thread was held up (a busy CPU, a page fault,
 * SIGSTOP) the frames that came meanwhile must be in the buffer before
 * their overdue ticks, or they are concealed and their packets come late.
 * The draining stops at LISTEN_DRAIN_SPAN frames buffered; listen_loop
 * drains again before each overdue tick.  With --fast the datagrams are
 * the clock: one at a time keeps runs repeatable. */
#define LISTEN_DRAIN_SPAN 32
#define LISTEN_DRAIN_MAX 64
/* The stream layer lets a new sealed stream displace a quiet one after 2 s. */
#define LISTEN_PIN_QUIET_S 2.0

static int receive(session *s, listener *l, double wait)
{
    for (int i = 0; i < LISTEN_DRAIN_MAX; i++) {
        size_t len = 0;
        int got = live_receiver_next(l->rx, i ? 0 : wait, l->buf, sizeof l->buf, &len);
        if (got < 0)
            return app_fail(CMD, "receiving failed: %s", strerror(errno));
        if (got == 0)
            return 0;
        l->last_packet = live_now_s();
        /* sealed calls: once a sender is heard, only it, until it has been
         * quiet as long as the stream layer takes to let a new stream in */
        if (live_receiver_pinned(l->rx) && l->last_packet - l->pin_seen > LISTEN_PIN_QUIET_S)
            live_receiver_pin(l->rx, 0);
        if (!live_receiver_check_peer(l->rx))
            continue;
        int err = len > sizeof l->buf ? TOKVOX_ERR_FORMAT
                                      : tokvox_receiver_push(l->r, l->buf, len, l->last_packet);
        if (err)
            live_receiver_refuse(l->rx, err, l->buf, len > sizeof l->buf ? sizeof l->buf : len,
                                 s->info.model_id);
        if (!err && s->o->have_key) {
            if (!live_receiver_pinned(l->rx))
                live_receiver_pin(l->rx, 1);
            l->pin_seen = l->last_packet;
        }
        /* the decoder's share of the latency: a hop for the shipped model */
        note_stream(l, (size_t)(s->info.latency_samples - s->info.hop));
        tokvox_receiver_stats st;
        receiver_stats(l, &st);
        if (s->o->fast || st.buffered >= LISTEN_DRAIN_SPAN)
            return 0;
    }
    return 0;
}

/* Whether the next frame is due: by the frames buffered when nothing keeps
 * time (--fast), by the device's queue when playing, by the clock when
 * recording in real time; and only when the stream layer has one. */
static int tick_due(session *s, listener *l)
{
    double now = live_now_s();
    tokvox_receiver_stats st;
    receiver_stats(l, &st);
    if (s->o->fast) { /* the hold is counted in frames: no clock */
        if (!tokvox_receiver_ready(l->r, INFINITY))
            return 0;
        return st.stream_samples || stop_requested || l->idle || st.buffered > st.depth;
    }
    if (!tokvox_receiver_ready(l->r, now))
        return 0;
    if (st.stream_samples || stop_requested || l->idle)
        return 1; /* the end: play out */
    if (s->o->record)
        return now >= l->next_tick;
    live_audio_counters a;
    audio_counters(s, &a);
    return a.playback_queued_s < (s->o->buffer_ms / 1000.0) + 2 * frame_seconds(s);
}

/* The jitter buffer's fill after a frame was played. */
static void note_buffered(session *s, int span, int depth)
{
    if (depth > s->report.depth)
        s->report.depth = depth;
    if (span > s->report.buffered)
        s->report.buffered = span;
    if (span > s->buffered_max)
        s->buffered_max = span;
}

static int play_frame(session *s, listener *l)
{
    double t0 = live_now_s();
    size_t n = 0;
    int err = tokvox_receiver_pull(l->r, s->o->fast ? INFINITY : t0, l->pcm, LIVE_MAX_HOP, &n);
    if (err)
        return app_fail(CMD, "decoding failed: %s", tokvox_strerror(err));
    if (n == 0)
        return 0;
    double t1 = live_now_s();
    tokvox_receiver_stats st;
    receiver_stats(l, &st);
    size_t drop = l->skip < n ? l->skip : n;
    l->skip -= drop;
    play_trimmed(s, l->pcm + drop, n - drop, &l->played, listen_limit(s, l));
    note_buffered(s, st.buffered, st.depth);
    if (l->next_tick == 0)
        l->next_tick = t0;
    l->next_tick += frame_seconds(s);
    live_audio_counters a;
    audio_counters(s, &a);
    double latency = (double)st.buffered * frame_seconds(s) +
                     (double)(s->info.latency_samples - s->info.hop) / s->info.sample_rate +
                     a.playback_queued_s;
    update_listen_report(s, l);
    s->report.refused = live_receiver_refused(l->rx);
    /* frames = the stream's frames taken out: frame_done counts this one */
    s->report.frames = st.decoded + st.recovered + st.concealed - 1;
    frame_done(s, t1 - t0, latency);
    return 0;
}

static int listen_finished(session *s, listener *l)
{
    tokvox_receiver_stats st;
    receiver_stats(l, &st);
    if (st.ended)
        return 1;
    if (s->max_samples && l->played >= s->max_samples)
        return 1;
    if (stop_requested && !st.stream_samples)
        return 1;
    int idle = s->o->idle_timeout > 0 && live_now_s() - l->last_packet > s->o->idle_timeout;
    if (idle && !l->idle) /* no end datagram: play out what is held, then stop */
        l->idle = 1;
    return l->idle && (st.buffered == 0 || !tokvox_receiver_ready(l->r, INFINITY));
}

static int listen_loop(session *s, listener *l)
{
    while (!listen_finished(s, l)) {
        if (!live_audio_running(s->audio))
            return app_fail(CMD, "the audio device stopped playing");
        double wait = l->next_tick ? l->next_tick - live_now_s() : 0.05;
        wait = s->o->fast || !s->o->record ? 0.002 : wait;
        if (receive(s, l, wait < 0 ? 0 : wait > 0.05 ? 0.05 : wait) != 0)
            return 1;
        while (tick_due(s, l)) {
            if (play_frame(s, l) != 0)
                return 1;
            if (!s->o->fast && receive(s, l, 0) != 0)
                return 1;
            if (listen_finished(s, l))
                break;
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
    l->last_packet = live_now_s();
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    rc.jitter_ms = s->o->jitter_ms;
    rc.key = s->o->have_key ? s->o->key : NULL;
    rc.max_jitter_ms = rc.jitter_ms > rc.max_jitter_ms ? rc.jitter_ms : rc.max_jitter_ms;
    /* without a clock (--fast) there is no jitter to measure */
    rc.adaptive = !s->o->fast && !s->o->fixed_jitter;
    int code = 0;
    l->r = tokvox_receiver_create(s->m, &rc, &code);
    l->rx = l->r ? live_receiver_open(s->o->listen, err, sizeof err) : NULL;
    if (!l->r)
        snprintf(err, sizeof err, "cannot start decoding: %s", tokvox_strerror(code));
    if (l->rx && !s->o->quiet)
        fprintf(stderr, "tokvox live: listening on UDP %s%s\n", s->o->listen,
                s->o->have_key ? " (sealed with the key)" : "");
    int rc2 = l->rx ? listen_loop(s, l) : app_fail(CMD, "%s", err);
    if (!rc2) { /* the recording keeps the stream's length: skips are made up */
        uint64_t limit = listen_limit(s, l);
        static const float silence[256];
        while (limit != UINT64_MAX && l->played < limit && l->played > 0) {
            uint64_t want = limit - l->played;
            play_trimmed(s, silence, want < 256 ? (size_t)want : 256, &l->played, limit);
        }
    }
    if (l->rx) {
        update_listen_report(s, l);
        s->report.refused = live_receiver_refused(l->rx);
        tokvox_receiver_stats st;
        receiver_stats(l, &st);
        if (!rc2 && st.datagrams == 0) /* an empty recording is not a success */
            rc2 = app_fail(CMD, "nothing was received on UDP %s%s", s->o->listen,
                           s->report.refused ? " (only refused datagrams)" : "");
    }
    live_receiver_close(l->rx);
    tokvox_receiver_destroy(l->r);
    free(l);
    return rc2;
}

/* ---- setting up and tearing down ------------------------------------------- */

static int open_audio(session *s)
{
    const live_options *o = s->o;
    live_audio_config c = {0};
    c.model_rate = s->info.sample_rate;
    c.capture = !o->listen;
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
    s->info.size = sizeof s->info;
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
    s->report.mode = o->send ? "send" : o->listen ? "listen" : "local";
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
    if (s->o->listen)
        return run_listen(s);
    if (!s->o->send)
        return run_capture(s, NULL);
    char err[512] = "";
    live_sender_config c = {s->o->send, s->info.sample_rate, s->o->loss, s->o->sim_jitter_ms,
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

/* ---- keys ---------------------------------------------------------------------- */

/* A key file is the key in hex, 64 digits, and a newline. */
static int make_key(const char *path)
{
    uint8_t key[TOKVOX_STREAM_KEY_BYTES];
    char hex[2 * sizeof key + 2];
    if (tokvox_stream_make_key(key) != TOKVOX_OK)
        return app_fail(CMD, "cannot make a key: no random number generator");
    for (size_t i = 0; i < sizeof key; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    strcat(hex, "\n");
    /* never over an existing file: a key lost is a call nobody can join */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ssize_t n = fd >= 0 ? write(fd, hex, strlen(hex)) : -1;
    int failed = n != (ssize_t)strlen(hex) || (fd >= 0 && close(fd) != 0);
    memset(key, 0, sizeof key);
    memset(hex, 0, sizeof hex);
    if (failed) {
        int e = errno;
        if (fd >= 0)
            unlink(path);
        return app_fail(CMD, "%s: cannot write the key (%s)", path,
                        e == EEXIST ? "the file exists; not overwritten" : strerror(e));
    }
    return 0;
}

static int hex_digit(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int read_key(live_options *o)
{
    FILE *f = fopen(o->key_file, "r");
    if (!f)
        return app_fail(CMD, "%s: cannot read the key (%s)", o->key_file, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "tokvox live: warning: %s: the key is readable by others "
                        "(chmod 600 %s)\n", o->key_file, o->key_file);
    char text[2 * TOKVOX_STREAM_KEY_BYTES + 4] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    int ok = n == 2 * TOKVOX_STREAM_KEY_BYTES;
    for (size_t i = 0; ok && i < TOKVOX_STREAM_KEY_BYTES; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        o->key[i] = (uint8_t)(hi << 4 | lo);
    }
    memset(text, 0, sizeof text);
    if (!ok)
        return app_fail(CMD, "%s: not a key (64 hex digits; make one with --make-key)",
                        o->key_file);
    o->have_key = 1;
    return 0;
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
    if (o.make_key)
        return make_key(o.make_key);
    if (o.key_file && read_key(&o) != 0)
        return 1;
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
    memset(o.key, 0, sizeof o.key);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return rc;
}
