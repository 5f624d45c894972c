/* tokvox/stream.h: the sender's datagrams and the receiver driven by
 * synthetic network traces, deterministically: datagrams of real speech are
 * given arrival times (loss, bursts, reordering, duplicates, jitter spikes),
 * pushed in arrival order, and pulled at a playback clock that may run fast
 * or slow against the sender's.  A clean trace must give exactly the
 * packet decoder's output; the others are checked by the receiver's
 * accounting and by the distance of their audio from the clean run's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/io.h"
#include "tokvox/stream.h"
#include "tokvox/tokvox.h"

static tokvox_model *model;
static tokvox_model_info info = {.size = sizeof info};
static float *speech;
static size_t speech_n;
static double frame_s;

#define MAX_DGRAMS 4096

/* The key senders and receivers of a test use (NULL: plain streams). */
static const uint8_t *sender_key, *receiver_key;

typedef struct capture {
    uint8_t *data[MAX_DGRAMS];
    size_t len[MAX_DGRAMS];
    double sent[MAX_DGRAMS];
    int n;
} capture;

static void setup(void)
{
    char path[4096], detail[1024] = "";
    model = tokvox_model_load(tu_model_path(), NULL, detail, sizeof detail);
    ck_assert_msg(model, "%s", detail);
    tokvox_model_get_info(model, &info);
    const char *root = getenv("TOKVOX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/samples/speech_en.wav", root ? root : ".");
    tu_require_file(path);
    ck_assert_int_eq(tokvox_audio_read(path, info.sample_rate, &speech, &speech_n, NULL, detail,
                                       sizeof detail), 0);
    frame_s = (double)info.hop / info.sample_rate;
}

static void teardown(void)
{
    sender_key = receiver_key = NULL;
    free(speech);
    tokvox_model_destroy(model);
}

static void keep(void *ctx, const uint8_t *data, size_t len)
{
    capture *c = ctx;
    ck_assert_int_lt(c->n, MAX_DGRAMS);
    ck_assert_uint_le(len, TOKVOX_STREAM_MAX_DATAGRAM);
    c->data[c->n] = malloc(len);
    memcpy(c->data[c->n], data, len);
    c->len[c->n] = len;
    c->n++;
}

static void capture_free(capture *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->data[i]);
    free(c);
}

/* The speech, looped to `seconds`, sent a hop at a time; each datagram is
 * stamped with the time its last sample was captured. */
static capture *send_speech(double seconds, int fec_depth, int codebooks, uint32_t id)
{
    tokvox_sender_config c;
    tokvox_sender_config_init(&c);
    c.fec_depth = fec_depth;
    c.num_codebooks = codebooks;
    c.stream_id = id;
    c.key = sender_key;
    tokvox_sender *s = tokvox_sender_create(model, &c, NULL);
    ck_assert_ptr_nonnull(s);
    capture *cap = calloc(1, sizeof *cap);
    size_t hop = (size_t)info.hop, total = (size_t)(seconds * info.sample_rate) / hop * hop;
    for (size_t at = 0; at < total; at += hop) {
        int before = cap->n;
        ck_assert_int_eq(tokvox_sender_push(s, speech + at % (speech_n / hop * hop), hop, keep,
                                            cap), TOKVOX_OK);
        for (int i = before; i < cap->n; i++)
            cap->sent[i] = (double)(at + hop) / info.sample_rate;
    }
    int before = cap->n;
    ck_assert_int_eq(tokvox_sender_finish(s, keep, cap), TOKVOX_OK);
    for (int i = before; i < cap->n; i++)
        cap->sent[i] = (double)total / info.sample_rate + frame_s;
    tokvox_sender_destroy(s);
    return cap;
}

/* ---- the network and the playback clock ---------------------------------- */

typedef struct arrival {
    double t;
    int index;
} arrival;

static int by_time(const void *a, const void *b)
{
    const arrival *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t ? 1 : x->index - y->index;
}

typedef struct trace {
    double *delay;   /* per datagram: seconds in transit, < 0 = lost */
    int *copies;     /* per datagram: extra deliveries (duplicates), 0.. */
    double tick;     /* the playback clock's frame period, frame_s = in step */
    int adaptive;
    int jitter_ms;
} trace;

typedef struct result {
    float *pcm;
    size_t n;
    tokvox_receiver_stats st;
} result;

static trace *trace_new(int n)
{
    trace *t = calloc(1, sizeof *t);
    t->delay = calloc((size_t)n, sizeof *t->delay);
    t->copies = calloc((size_t)n, sizeof *t->copies);
    for (int i = 0; i < n; i++)
        t->delay[i] = 0.005;
    t->tick = frame_s;
    t->adaptive = 1;
    t->jitter_ms = 60;
    return t;
}

static void trace_free(trace *t)
{
    free(t->delay);
    free(t->copies);
    free(t);
}

/* Datagrams in arrival order, pushed up to each tick, a frame pulled per
 * tick while the receiver says one is due. */
static result play(const capture *c, const trace *t)
{
    arrival *ev = malloc(sizeof *ev * (size_t)c->n * 4);
    int n = 0;
    for (int i = 0; i < c->n; i++)
        for (int k = 0; t->delay[i] >= 0 && k <= t->copies[i]; k++)
            ev[n++] = (arrival){c->sent[i] + t->delay[i] + 0.003 * k, i};
    qsort(ev, (size_t)n, sizeof *ev, by_time);
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    rc.adaptive = t->adaptive;
    rc.jitter_ms = t->jitter_ms;
    rc.key = receiver_key;
    tokvox_receiver *r = tokvox_receiver_create(model, &rc, NULL);
    ck_assert_ptr_nonnull(r);
    result res = {0};
    size_t cap = (size_t)(c->n * 2 + 200) * (size_t)info.hop;
    res.pcm = calloc(cap, sizeof(float));
    res.st.size = sizeof res.st;
    int e = 0;
    for (long k = 0; k < 100000; k++) {
        double now = (double)k * t->tick;
        for (; e < n && ev[e].t <= now; e++)
            ck_assert_int_eq(tokvox_receiver_push(r, c->data[ev[e].index], c->len[ev[e].index],
                                                  ev[e].t), TOKVOX_OK);
        size_t got = 0;
        ck_assert_uint_le(res.n + (size_t)info.hop, cap);
        ck_assert_int_eq(tokvox_receiver_pull(r, now, res.pcm + res.n, (size_t)info.hop, &got),
                         TOKVOX_OK);
        res.n += got;
        tokvox_receiver_get_stats(r, &res.st);
        if (res.st.ended && e == n)
            break;
    }
    tokvox_receiver_destroy(r);
    free(ev);
    return res;
}

/* What a decoder makes of every datagram's own packet, in order. */
static float *decode_all(const capture *c, size_t *n_out)
{
    tokvox_decoder *d = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    float *pcm = calloc((size_t)c->n * 4 * (size_t)info.hop, sizeof(float));
    size_t n = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->len[i] == TOKVOX_STREAM_HEADER_SIZE + 8)
            continue; /* the end datagram */
        const uint8_t *p = c->data[i] + TOKVOX_STREAM_HEADER_SIZE;
        size_t len = c->len[i] - TOKVOX_STREAM_HEADER_SIZE, own = 0, got = 0;
        /* the datagram's own packet is the first: its TOC says its length */
        int f = ((p[0] >> 5) & 3) + 1, cb = (p[0] & 31) + 1;
        own = tokvox_packet_bytes(model, f, cb);
        ck_assert_uint_le(own, len);
        ck_assert_int_eq(tokvox_decoder_decode_packet(d, p, own, pcm + n, 4 * (size_t)info.hop,
                                                      &got), TOKVOX_OK);
        n += got;
    }
    tokvox_decoder_destroy(d);
    *n_out = n;
    return pcm;
}

/* What the receiver plays beyond the packets' own audio: for a decoder that
 * owes more than a hop at the end (K > 1 synthesis sub-frames), the first hop
 * of its flush, which completes the input's last samples. */
static size_t receiver_tail(void)
{
    tokvox_decoder *d = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    size_t owed = (size_t)tokvox_decoder_latency(d);
    tokvox_decoder_destroy(d);
    return owed > (size_t)info.hop ? (size_t)info.hop : 0;
}

/* Signal-to-difference ratio of b against a over their common length, dB. */
static double snr_db(const float *a, size_t na, const float *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    double s = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double)a[i] * a[i];
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return 10 * log10((s + 1e-12) / (d + 1e-12));
}

/* A deterministic generator for the traces. */
static uint64_t rng_state;
static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static int audio_datagrams(const capture *c) { return c->n - 1; }

/* ---- tests ------------------------------------------------------------------ */

START_TEST(clean_network_is_the_packet_decoder)
{
    capture *c = send_speech(3.0, 0, 0, 77);
    trace *t = trace_new(c->n);
    result r = play(c, t); /* adaptive: a clean network keeps the hold */
    size_t ref_n = 0;
    float *ref = decode_all(c, &ref_n);
    ck_assert_uint_eq(r.n, ref_n + receiver_tail());
    ck_assert_int_eq(memcmp(r.pcm, ref, sizeof(float) * ref_n), 0);
    ck_assert_uint_eq(r.st.frames, (uint64_t)audio_datagrams(c));
    ck_assert_uint_eq(r.st.decoded, r.st.frames);
    ck_assert_uint_eq(r.st.concealed + r.st.recovered + r.st.late + r.st.refused, 0);
    ck_assert_uint_eq(r.st.streams, 1);
    ck_assert_uint_eq(r.st.stream_id, 77);
    ck_assert_int_eq(r.st.ended, 1);
    ck_assert_uint_eq(r.st.stream_samples, (uint64_t)(3.0 * info.sample_rate) / info.hop * info.hop);
    free(ref);
    free(r.pcm);
    trace_free(t);
    capture_free(c);
}
END_TEST

/* A model whose decoder owes more than a hop at the end (two synthesis
 * sub-frames: n_fft - hop/2 = 1.5 hops): the receiver plays the first hop
 * of the decoder's flush after the last frame, so its stream, less the
 * decoder's delay, is the local encoder and decoder's output, flush
 * included, for every sample pushed. */
START_TEST(subframes_stream_covers_every_sample)
{
    char detail[1024] = "";
    tokvox_model_destroy(model);
    model = tokvox_model_load(tu_data_path("tiny_k2.safetensors"), NULL, detail, sizeof detail);
    ck_assert_msg(model, "%s", detail);
    tokvox_model_get_info(model, &info);
    frame_s = (double)info.hop / info.sample_rate;
    size_t hop = (size_t)info.hop, delay = (size_t)(info.latency_samples - info.hop);
    ck_assert_uint_gt(delay, hop);
    capture *c = send_speech(0.5, 0, 0, 9);
    trace *t = trace_new(c->n);
    result r = play(c, t);
    size_t total = (size_t)(0.5 * info.sample_rate) / hop * hop;
    ck_assert_int_eq(r.st.ended, 1);
    ck_assert_uint_eq(r.st.stream_samples, total);
    ck_assert_uint_eq(r.st.frames, (uint64_t)audio_datagrams(c));
    ck_assert_uint_eq(r.n, (r.st.frames + 1) * hop); /* the frames and the tail */
    for (size_t i = 0; i < delay; i++)
        ck_assert_float_eq(r.pcm[i], 0.0f);
    size_t cap = tokvox_frames_for_samples(model, total), frames = 0, more = 0;
    uint16_t *codes = malloc(sizeof(uint16_t) * cap * (size_t)info.num_codebooks);
    tokvox_encoder *e = tokvox_encoder_create(model, 0, NULL);
    ck_assert_int_eq(tokvox_encoder_push(e, speech, total, codes, cap, &frames), TOKVOX_OK);
    ck_assert_int_eq(tokvox_encoder_flush(e, codes + frames * (size_t)info.num_codebooks,
                                          cap - frames, &more), TOKVOX_OK);
    frames += more;
    ck_assert_uint_eq(frames, r.st.frames);
    float *local = malloc(sizeof(float) * (frames + 2) * hop);
    size_t n = 0, tail = 0;
    tokvox_decoder *d = tokvox_decoder_create(model, info.num_codebooks, 0, NULL);
    ck_assert_int_eq(tokvox_decoder_push(d, codes, frames, local, &n), TOKVOX_OK);
    ck_assert_uint_lt(n, total); /* the flush holds the last samples */
    ck_assert_int_eq(tokvox_decoder_flush(d, local + n, &tail), TOKVOX_OK);
    ck_assert_uint_ge(n + tail, total);
    ck_assert_int_eq(memcmp(r.pcm + delay, local, sizeof(float) * total), 0);
    tokvox_decoder_destroy(d);
    tokvox_encoder_destroy(e);
    free(local);
    free(codes);
    free(r.pcm);
    trace_free(t);
    capture_free(c);
}
END_TEST

START_TEST(reordering_and_duplicates_change_nothing)
{
    capture *c = send_speech(3.0, 0, 0, 5);
    trace *t = trace_new(c->n);
    result clean = play(c, t);
    /* adjacent pairs swapped (the later one 15 ms early), every fifth
     * datagram delivered three times */
    for (int i = 0; i + 1 < audio_datagrams(c); i += 2) {
        t->delay[i] = 0.030;
        t->delay[i + 1] = 0.005;
    }
    for (int i = 0; i < audio_datagrams(c); i += 5)
        t->copies[i] = 2;
    t->adaptive = 0; /* the same playout as the clean run */
    result r = play(c, t);
    ck_assert_uint_eq(r.n, clean.n);
    ck_assert_int_eq(memcmp(r.pcm, clean.pcm, sizeof(float) * r.n), 0);
    ck_assert_uint_eq(r.st.duplicates, 2 * (uint64_t)((audio_datagrams(c) + 4) / 5));
    ck_assert_uint_eq(r.st.concealed + r.st.late, 0);
    free(r.pcm);
    free(clean.pcm);
    trace_free(t);
    capture_free(c);
}
END_TEST

/* Loss patterns: random with probability p, or bursts of `burst` datagrams
 * starting with probability p / burst (the same mean loss). */
static void lose(trace *t, int n, double p, int burst, uint64_t seed)
{
    rng_state = seed;
    for (int i = 0; i < n; i++)
        if (uniform() < p / burst)
            for (int k = 0; k < burst && i < n; k++, i++)
                t->delay[i] = -1;
}

static int lost_count(const trace *t, int n)
{
    int lost = 0;
    for (int i = 0; i < n; i++)
        lost += t->delay[i] < 0;
    return lost;
}

/* Lost frames whose copy comes within `depth` later datagrams. */
static int recoverable(const trace *t, int n, int depth)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (t->delay[i] >= 0)
            continue;
        for (int j = i + 1; j <= i + depth && j < n; j++)
            if (t->delay[j] >= 0) {
                k++;
                break;
            }
    }
    return k;
}

START_TEST(loss_is_concealed_or_recovered)
{
    const double seconds = 6.0;
    capture *plain = send_speech(seconds, 0, 0, 9), *fec1 = send_speech(seconds, 1, 0, 9),
            *fec3 = send_speech(seconds, 3, 0, 9);
    int n = audio_datagrams(plain);
    ck_assert_int_eq(n, audio_datagrams(fec1));
    trace *clean = trace_new(plain->n);
    clean->adaptive = 0;
    result ref = play(plain, clean);
    for (int burst = 1; burst <= 3; burst += 2) {
        trace *t = trace_new(plain->n);
        t->adaptive = 0;
        lose(t, n, 0.2, burst, 1234 + (uint64_t)burst);
        int lost = lost_count(t, n);
        ck_assert_int_gt(lost, n / 12);
        result off = play(plain, t), on1 = play(fec1, t), on3 = play(fec3, t);
        /* every frame accounted for, the length kept */
        ck_assert_uint_eq(off.st.frames, (uint64_t)n);
        ck_assert_uint_eq(off.n, ref.n);
        ck_assert_uint_eq(on1.n, ref.n);
        ck_assert_uint_eq(off.st.concealed, (uint64_t)lost);
        ck_assert_uint_eq(off.st.recovered, 0);
        ck_assert_uint_eq(on1.st.recovered, (uint64_t)recoverable(t, n, 1));
        ck_assert_uint_eq(on1.st.concealed, (uint64_t)(lost - recoverable(t, n, 1)));
        ck_assert_uint_eq(on3.st.recovered, (uint64_t)recoverable(t, n, 3));
        ck_assert_uint_eq(on1.st.decoded, off.st.decoded);
        /* recovered frames at 1 kbps are closer to the clean run than
         * concealed ones */
        double s_off = snr_db(ref.pcm, ref.n, off.pcm, off.n);
        double s_on1 = snr_db(ref.pcm, ref.n, on1.pcm, on1.n);
        double s_on3 = snr_db(ref.pcm, ref.n, on3.pcm, on3.n);
        fprintf(stderr, "loss %d/%d (bursts of %d): SNR to clean %.2f dB, FEC 1: %.2f dB, "
                        "FEC 3: %.2f dB\n", lost, n, burst, s_off, s_on1, s_on3);
        ck_assert(s_on1 > s_off + 0.5);
        if (burst > 1)
            ck_assert(s_on3 > s_on1 + 0.5);
        free(off.pcm);
        free(on1.pcm);
        free(on3.pcm);
        trace_free(t);
    }
    free(ref.pcm);
    trace_free(clean);
    capture_free(plain);
    capture_free(fec1);
    capture_free(fec3);
}
END_TEST

/* A route change: from 2 s on, every datagram takes 150 ms more. */
START_TEST(jitter_spike_adapts_the_depth)
{
    capture *c = send_speech(8.0, 0, 0, 3);
    int n = audio_datagrams(c);
    result runs[2];
    for (int adaptive = 0; adaptive <= 1; adaptive++) {
        trace *t = trace_new(c->n);
        rng_state = 99;
        for (int i = 0; i < c->n; i++)
            t->delay[i] = 0.005 + 0.010 * uniform() + (c->sent[i] > 2.0 ? 0.150 : 0);
        t->adaptive = adaptive;
        runs[adaptive] = play(c, t);
        trace_free(t);
    }
    tokvox_receiver_stats *fixed = &runs[0].st, *adapt = &runs[1].st;
    fprintf(stderr, "spike: fixed depth %llu late, %llu concealed; adaptive %llu late, %llu "
                    "concealed, %llu stretched, %llu skipped, depth %d\n",
            (unsigned long long)fixed->late, (unsigned long long)fixed->concealed,
            (unsigned long long)adapt->late, (unsigned long long)adapt->concealed,
            (unsigned long long)adapt->stretched, (unsigned long long)adapt->skipped, adapt->depth);
    /* a fixed 60 ms hold loses a frame in every tick of the 150 ms step */
    ck_assert_uint_ge(fixed->late, 5);
    ck_assert_uint_gt(adapt->stretched, 0);
    ck_assert_uint_lt(adapt->concealed, fixed->concealed);
    /* hops played: a skip plays two frames in one, a stretch none */
    ck_assert_uint_eq(adapt->decoded + adapt->concealed + adapt->recovered + adapt->stretched -
                          adapt->skipped, adapt->frames);
    ck_assert_uint_eq(adapt->decoded + adapt->late, (uint64_t)n);
    free(runs[0].pcm);
    free(runs[1].pcm);
    capture_free(c);
}
END_TEST

/* The playback clock 1 % fast or slow against the sender's over 20 s
 * (10 frames): the adaptive buffer skips or stretches to stay near its
 * depth; a fixed one runs dry or fills up. */
START_TEST(clock_drift_is_absorbed)
{
    capture *c = send_speech(20.0, 0, 0, 11);
    for (int dir = -1; dir <= 1; dir += 2) {
        result runs[2];
        for (int adaptive = 0; adaptive <= 1; adaptive++) {
            trace *t = trace_new(c->n);
            t->tick = frame_s * (1.0 + 0.01 * dir);
            t->adaptive = adaptive;
            runs[adaptive] = play(c, t);
            trace_free(t);
        }
        tokvox_receiver_stats *fixed = &runs[0].st, *adapt = &runs[1].st;
        fprintf(stderr, "drift %+d %%: fixed %llu concealed, %llu late; adaptive %llu "
                        "concealed, %llu stretched, %llu skipped\n", dir,
                (unsigned long long)fixed->concealed, (unsigned long long)fixed->late,
                (unsigned long long)adapt->concealed, (unsigned long long)adapt->stretched,
                (unsigned long long)adapt->skipped);
        if (dir < 0) { /* playback fast: a fixed buffer runs dry */
            ck_assert_uint_ge(fixed->concealed, 5);
            ck_assert_uint_le(adapt->concealed, 1);
            ck_assert_uint_ge(adapt->stretched, 5);
        } else {       /* playback slow: frames pile up */
            ck_assert_uint_ge(adapt->skipped, 5);
            ck_assert_uint_le(adapt->concealed, 1);
        }
        free(runs[0].pcm);
        free(runs[1].pcm);
    }
    capture_free(c);
}
END_TEST

/* A sender that restarts (a new stream id, frames from 0) mid-call; a
 * datagram of the old stream arriving late is not played. */
START_TEST(restart_starts_a_new_stream)
{
    capture *a = send_speech(2.0, 0, 0, 1000), *b = send_speech(2.0, 0, 0, 2000);
    capture *c = calloc(1, sizeof *c);
    /* a without its end datagram, then b 0.5 s later; one of a's comes late */
    for (int i = 0; i < a->n - 1; i++) {
        c->data[c->n] = a->data[i];
        c->len[c->n] = a->len[i];
        c->sent[c->n++] = a->sent[i];
    }
    int a_last = c->n;
    for (int i = 0; i < b->n; i++) {
        c->data[c->n] = b->data[i];
        c->len[c->n] = b->len[i];
        c->sent[c->n++] = b->sent[i] + 2.5;
    }
    trace *t = trace_new(c->n);
    t->delay[a_last - 5] = 3.0; /* arrives during b */
    t->adaptive = 0;
    result r = play(c, t);
    ck_assert_uint_eq(r.st.streams, 2);
    ck_assert_uint_eq(r.st.stream_id, 2000);
    ck_assert_uint_eq(r.st.stale, 1);
    ck_assert_int_eq(r.st.ended, 1);
    /* b's audio, from its first frame, is what b alone gives */
    trace *tb = trace_new(b->n);
    tb->adaptive = 0;
    result rb = play(b, tb);
    ck_assert_uint_ge(r.n, rb.n);
    ck_assert_int_eq(memcmp(r.pcm + (r.n - rb.n), rb.pcm, sizeof(float) * rb.n), 0);
    free(r.pcm);
    free(rb.pcm);
    trace_free(t);
    trace_free(tb);
    free(c); /* its datagrams belong to a and b */
    capture_free(a);
    capture_free(b);
}
END_TEST

/* A receiver joining a stream late starts where it joined. */
START_TEST(late_joiner_starts_at_its_first_datagram)
{
    capture *c = send_speech(3.0, 0, 0, 42);
    trace *t = trace_new(c->n);
    for (int i = 0; i < 60; i++)
        t->delay[i] = -1;
    t->adaptive = 0;
    result r = play(c, t);
    ck_assert_uint_eq(r.st.frames, (uint64_t)(audio_datagrams(c) - 60));
    ck_assert_uint_eq(r.st.concealed, 0);
    free(r.pcm);
    trace_free(t);
    capture_free(c);
}
END_TEST

START_TEST(bitrate_changes_follow_the_sender)
{
    tokvox_sender_config c;
    tokvox_sender_config_init(&c);
    c.stream_id = 8;
    c.frames_per_packet = 2;
    tokvox_sender *s = tokvox_sender_create(model, &c, NULL);
    capture *cap = calloc(1, sizeof *cap);
    size_t hop = (size_t)info.hop;
    const int counts[] = {8, 2, 4, 1, 6};
    for (size_t f = 0; f < 100; f++) {
        if (f % 7 == 0) /* mid-packet too: the pending packet is closed */
            ck_assert_int_eq(tokvox_sender_set_codebooks(s, counts[f / 7 % 5]), TOKVOX_OK);
        int before = cap->n;
        ck_assert_int_eq(tokvox_sender_push(s, speech + f * hop, hop, keep, cap), TOKVOX_OK);
        for (int i = before; i < cap->n; i++)
            cap->sent[i] = (double)(f + 1) * frame_s;
    }
    int before = cap->n;
    ck_assert_int_eq(tokvox_sender_finish(s, keep, cap), TOKVOX_OK);
    for (int i = before; i < cap->n; i++)
        cap->sent[i] = 101 * frame_s;
    ck_assert_uint_eq(tokvox_sender_frames(s), 101);
    tokvox_sender_destroy(s);
    trace *t = trace_new(cap->n);
    result r = play(cap, t);
    size_t ref_n = 0;
    float *ref = decode_all(cap, &ref_n);
    ck_assert_uint_eq(r.st.frames, 101);
    ck_assert_uint_eq(r.n, ref_n + receiver_tail());
    ck_assert_int_eq(memcmp(r.pcm, ref, sizeof(float) * ref_n), 0);
    free(ref);
    free(r.pcm);
    trace_free(t);
    capture_free(cap);
}
END_TEST

START_TEST(foreign_datagrams_are_refused)
{
    capture *c = send_speech(1.0, 1, 0, 6);
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    tokvox_receiver *r = tokvox_receiver_create(model, &rc, NULL);
    uint8_t buf[TOKVOX_STREAM_MAX_DATAGRAM + 8];
    const uint8_t *d = c->data[3];
    size_t len = c->len[3];
    /* every truncation, a byte too many, another version, another model,
     * a nonzero flag byte, too many FEC packets, random bytes */
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_ne(tokvox_receiver_push(r, d, cut, 0), TOKVOX_OK);
    memcpy(buf, d, len);
    buf[len] = 0;
    ck_assert_int_eq(tokvox_receiver_push(r, buf, len + 1, 0), TOKVOX_ERR_FORMAT);
    buf[4] = 3;
    ck_assert_int_eq(tokvox_receiver_push(r, buf, len, 0), TOKVOX_ERR_VERSION);
    memcpy(buf, d, len);
    buf[20] ^= 1;
    ck_assert_int_eq(tokvox_receiver_push(r, buf, len, 0), TOKVOX_ERR_MODEL_MISMATCH);
    memcpy(buf, d, len);
    buf[7] = 2; /* an unknown flag (1 = sealed: refused without a key) */
    ck_assert_int_eq(tokvox_receiver_push(r, buf, len, 0), TOKVOX_ERR_FORMAT);
    memcpy(buf, d, len);
    buf[6] = 4;
    ck_assert_int_eq(tokvox_receiver_push(r, buf, len, 0), TOKVOX_ERR_FORMAT);
    rng_state = 5;
    for (int k = 0; k < 2000; k++) {
        size_t n = (size_t)(uniform() * 80);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(uniform() * 256);
        if (k % 2)
            memcpy(buf, d, n < 24 ? n : 24); /* a valid header, a random body */
        tokvox_receiver_push(r, buf, n, 0);
    }
    tokvox_receiver_stats st = {.size = sizeof st};
    tokvox_receiver_get_stats(r, &st);
    ck_assert_uint_eq(st.datagrams, 0);
    ck_assert_uint_eq(st.streams, 0);
    ck_assert_int_eq(tokvox_receiver_ready(r, 1e9), 0);
    ck_assert_int_eq(tokvox_receiver_push(r, d, len, 0), TOKVOX_OK);
    tokvox_receiver_get_stats(r, &st);
    ck_assert_uint_eq(st.datagrams, 1);
    tokvox_receiver_destroy(r);
    capture_free(c);
}
END_TEST

START_TEST(configs_are_checked)
{
    tokvox_sender_config c;
    tokvox_sender_config_init(&c);
    int err = 0;
    c.frames_per_packet = 5;
    ck_assert_ptr_null(tokvox_sender_create(model, &c, &err));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_sender_config_init(&c);
    c.fec_depth = 4;
    ck_assert_ptr_null(tokvox_sender_create(model, &c, &err));
    tokvox_sender_config_init(&c);
    c.size = 4;
    ck_assert_ptr_null(tokvox_sender_create(model, &c, &err));
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    rc.max_jitter_ms = 10;
    ck_assert_ptr_null(tokvox_receiver_create(model, &rc, &err));
    tokvox_sender_config_init(&c);
    tokvox_sender *s = tokvox_sender_create(model, &c, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_ne(tokvox_sender_stream_id(s), 0);
    ck_assert_int_eq(tokvox_sender_finish(s, NULL, NULL), TOKVOX_OK);
    ck_assert_int_eq(tokvox_sender_push(s, speech, 10, NULL, NULL), TOKVOX_ERR_STATE);
    tokvox_sender_destroy(s);
}
END_TEST

/* The size rule (tokvox/errors.h) for configs and stats: a program built
 * against a later header (a field appended) keeps its extra bytes and is
 * served; a size below the first version is refused and nothing written. */
START_TEST(configs_and_stats_follow_the_callers_size)
{
    struct {
        tokvox_sender_config c;
        unsigned char later[16];
    } sc;
    memset(&sc, 0x77, sizeof sc);
    tokvox_sender_config_init_sized(&sc.c, sizeof sc);
    ck_assert_uint_eq(sc.c.size, sizeof(tokvox_sender_config));
    ck_assert_int_eq(sc.c.frames_per_packet, 1);
    for (size_t i = 0; i < sizeof sc.later; i++)
        ck_assert_uint_eq(sc.later[i], 0x77);
    sc.c.size = sizeof sc; /* what the later program would say */
    int err = -1;
    tokvox_sender *s = tokvox_sender_create(model, &sc.c, &err);
    ck_assert_msg(s != NULL, "a larger config is refused: %d", err);

    struct {
        tokvox_receiver_config c;
        unsigned char later[16];
    } rc;
    memset(&rc, 0x77, sizeof rc);
    tokvox_receiver_config_init_sized(&rc.c, sizeof rc);
    ck_assert_int_eq(rc.c.jitter_ms, 60);
    ck_assert_uint_eq(rc.later[0], 0x77);
    rc.c.size = sizeof rc;
    tokvox_receiver *r = tokvox_receiver_create(model, &rc.c, &err);
    ck_assert_msg(r != NULL, "a larger config is refused: %d", err);
    struct {
        tokvox_receiver_stats st;
        unsigned char later[16];
    } st;
    memset(&st, 0x77, sizeof st);
    st.st.size = sizeof st;
    tokvox_receiver_get_stats(r, &st.st);
    ck_assert_uint_eq(st.st.size, sizeof(tokvox_receiver_stats));
    ck_assert_uint_eq(st.st.datagrams, 0);
    ck_assert_uint_eq(st.later[15], 0x77);

    /* Too small to be the struct: nothing written, creation refused. */
    /* 0 (forgotten), too small for anything, and each struct's first
     * version without its last field */
    for (size_t k = 0; k < 3; k++) {
        size_t send_bad = k == 0 ? 0 : k == 1 ? 4 : offsetof(tokvox_sender_config, key);
        size_t recv_bad = k == 0 ? 0 : k == 1 ? 4 : offsetof(tokvox_receiver_config, key);
        size_t stats_bad = k == 0 ? 0 : k == 1 ? 4 : offsetof(tokvox_receiver_stats, replayed);
        memset(&sc, 0x77, sizeof sc);
        tokvox_sender_config_init_sized(&sc.c, send_bad);
        ck_assert_uint_eq(((unsigned char *)&sc)[0], 0x77);
        tokvox_sender_config_init(&sc.c);
        sc.c.size = send_bad;
        ck_assert_ptr_null(tokvox_sender_create(model, &sc.c, &err));
        ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
        tokvox_receiver_config_init(&rc.c);
        rc.c.size = recv_bad;
        ck_assert_ptr_null(tokvox_receiver_create(model, &rc.c, &err));
        memset(&st, 0x77, sizeof st);
        st.st.size = stats_bad;
        tokvox_receiver_get_stats(r, &st.st);
        ck_assert_uint_eq(st.st.datagrams, UINT64_C(0x7777777777777777));
    }
    tokvox_sender_destroy(s);
    tokvox_receiver_destroy(r);
}
END_TEST

/* ---- sealed streams ------------------------------------------------------ */

static uint8_t key_a[TOKVOX_STREAM_KEY_BYTES], key_b[TOKVOX_STREAM_KEY_BYTES];

static void make_keys(void)
{
    ck_assert_int_eq(tokvox_stream_make_key(key_a), TOKVOX_OK);
    ck_assert_int_eq(tokvox_stream_make_key(key_b), TOKVOX_OK);
    ck_assert_int_ne(memcmp(key_a, key_b, sizeof key_a), 0);
}

START_TEST(sealed_stream_plays_like_a_plain_one)
{
    make_keys();
    capture *plain = send_speech(2.0, 1, 0, 21);
    sender_key = receiver_key = key_a;
    capture *sealed = send_speech(2.0, 1, 0, 21);
    ck_assert_int_eq(plain->n, sealed->n);
    for (int i = 0; i < plain->n; i++) { /* salt and tag; the payload is not in the clear */
        ck_assert_uint_eq(sealed->len[i], plain->len[i] + TOKVOX_STREAM_SEAL_OVERHEAD);
        ck_assert_uint_eq(sealed->data[i][7], 1);
        ck_assert_int_ne(memcmp(sealed->data[i] + TOKVOX_STREAM_HEADER_SIZE + 8,
                                plain->data[i] + TOKVOX_STREAM_HEADER_SIZE,
                                plain->len[i] - TOKVOX_STREAM_HEADER_SIZE), 0);
    }
    trace *t = trace_new(sealed->n);
    rng_state = 3;
    for (int i = 0; i < sealed->n - 1; i++) /* loss and reordering too */
        t->delay[i] = uniform() < 0.1 ? -1 : 0.005 + 0.03 * uniform();
    t->adaptive = 0;
    result rs = play(sealed, t);
    sender_key = receiver_key = NULL;
    result rp = play(plain, t);
    ck_assert_uint_eq(rs.n, rp.n);
    ck_assert_int_eq(memcmp(rs.pcm, rp.pcm, sizeof(float) * rs.n), 0);
    ck_assert_uint_eq(rs.st.unauthenticated + rs.st.replayed + rs.st.refused, 0);
    ck_assert_uint_gt(rs.st.recovered, 0);
    free(rs.pcm);
    free(rp.pcm);
    trace_free(t);
    capture_free(plain);
    capture_free(sealed);
}
END_TEST

static int push(tokvox_receiver *r, const capture *c, int i, double t)
{
    return tokvox_receiver_push(r, c->data[i], c->len[i], t);
}

/* What an attacker can do without the key: send plain datagrams, forge
 * sealed ones, seal with another key, replay what it heard, and replay a
 * recording of an earlier call under the same key. */
START_TEST(sealed_receiver_refuses_what_it_cannot_trust)
{
    make_keys();
    capture *plain = send_speech(1.0, 0, 0, 31);
    sender_key = key_a;
    capture *call = send_speech(1.0, 0, 0, 32), *earlier = send_speech(1.0, 0, 0, 33);
    sender_key = key_b;
    capture *foreign = send_speech(1.0, 0, 0, 34);
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    rc.key = key_a;
    tokvox_receiver *r = tokvox_receiver_create(model, &rc, NULL);
    ck_assert_ptr_nonnull(r);
    uint8_t forged[TOKVOX_STREAM_MAX_DATAGRAM];
    int n_auth = 0, n_replay = 0;
    double t = 0;
    for (int i = 0; i < call->n - 1; i++, t += frame_s) {
        ck_assert_int_eq(push(r, call, i, t), TOKVOX_OK);
        size_t fl = 0;
        ck_assert_int_eq(push(r, plain, i, t), TOKVOX_ERR_AUTH);
        n_auth++;
        ck_assert_int_eq(push(r, foreign, i, t), TOKVOX_ERR_AUTH);
        n_auth++;
        memcpy(forged, call->data[i], fl = call->len[i]);
        forged[fl - 1 - i % 20] ^= 0x10; /* one bit anywhere in ciphertext or tag */
        ck_assert_int_eq(tokvox_receiver_push(r, forged, fl, t), TOKVOX_ERR_AUTH);
        n_auth++;
        memcpy(forged, call->data[i], fl);
        forged[12] ^= 1; /* another sequence number: another nonce */
        ck_assert_int_eq(tokvox_receiver_push(r, forged, fl, t), TOKVOX_ERR_AUTH);
        n_auth++;
        ck_assert_int_eq(push(r, call, i, t), TOKVOX_ERR_REPLAY);
        n_replay++;
        if (i >= 3) {
            ck_assert_int_eq(push(r, call, i - 3, t), TOKVOX_ERR_REPLAY);
            n_replay++;
        }
        ck_assert_int_eq(push(r, earlier, i, t), TOKVOX_ERR_REPLAY);
        n_replay++;
        size_t got = 0;
        float pcm[4096];
        ck_assert_int_eq(tokvox_receiver_pull(r, t, pcm, 4096, &got), TOKVOX_OK);
    }
    tokvox_receiver_stats st = {.size = sizeof st};
    tokvox_receiver_get_stats(r, &st);
    ck_assert_uint_eq(st.unauthenticated, (uint64_t)n_auth);
    ck_assert_uint_eq(st.replayed, (uint64_t)n_replay);
    ck_assert_uint_eq(st.datagrams, (uint64_t)(call->n - 1));
    ck_assert_uint_eq(st.streams, 1);
    ck_assert_uint_eq(st.stream_id, 32);
    /* the end datagram may come again (senders repeat it) */
    ck_assert_int_eq(push(r, call, call->n - 1, t), TOKVOX_OK);
    ck_assert_int_eq(push(r, call, call->n - 1, t), TOKVOX_OK);
    /* a receiver without the key takes none of it */
    tokvox_receiver_config_init(&rc);
    tokvox_receiver *open = tokvox_receiver_create(model, &rc, NULL);
    ck_assert_int_eq(push(open, call, 0, 0), TOKVOX_ERR_AUTH);
    tokvox_receiver_destroy(open);
    /* once the call has gone quiet, a new one (a restarted sender) is taken */
    ck_assert_int_eq(push(r, earlier, 0, t + 10.0), TOKVOX_OK);
    tokvox_receiver_get_stats(r, &st);
    ck_assert_uint_eq(st.streams, 2);
    tokvox_receiver_destroy(r);
    capture_free(plain);
    capture_free(call);
    capture_free(earlier);
    capture_free(foreign);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, clean_network_is_the_packet_decoder);
    tcase_add_test(tc, subframes_stream_covers_every_sample);
    tcase_add_test(tc, reordering_and_duplicates_change_nothing);
    tcase_add_test(tc, loss_is_concealed_or_recovered);
    tcase_add_test(tc, jitter_spike_adapts_the_depth);
    tcase_add_test(tc, clock_drift_is_absorbed);
    tcase_add_test(tc, restart_starts_a_new_stream);
    tcase_add_test(tc, late_joiner_starts_at_its_first_datagram);
    tcase_add_test(tc, bitrate_changes_follow_the_sender);
    tcase_add_test(tc, foreign_datagrams_are_refused);
    tcase_add_test(tc, configs_are_checked);
    tcase_add_test(tc, configs_and_stats_follow_the_callers_size);
    tcase_add_test(tc, sealed_stream_plays_like_a_plain_one);
    tcase_add_test(tc, sealed_receiver_refuses_what_it_cannot_trust);
    tcase_set_timeout(tc, 600);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(stream_suite()); }
