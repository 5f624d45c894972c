/* tokvox-stream-sim: one clip through tokvox/stream.h over a simulated lossy
 * network, for bench/fec.  The sender codes the clip (with or without FEC),
 * each datagram is lost by a random (Bernoulli) or bursty (Gilbert-Elliott)
 * process seeded for repeatability, the rest arrive in order, and the
 * receiver is pulled at the sender's pace.  Writes what it played at the
 * model's rate, lined up with the input (the decoder's delay dropped, the
 * flush padding cut), and
 * prints one JSON line: datagrams, losses, frames decoded / recovered /
 * concealed, and the bitrate of the codes with and without the FEC copies.
 *
 *   tokvox-stream-sim in.wav out.wav --loss 0.1 [--burst 3] [--fec 1]
 *                     [--fec-codebooks 2] [--codebooks 8] [--seed 1] [--model M]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/io.h"
#include "tokvox/stream.h"
#include "tokvox/tokvox.h"

typedef struct net {
    tokvox_receiver *rx;
    double loss, burst;       /* mean loss; mean burst length (1 = random) */
    int bad;                  /* Gilbert-Elliott: in the losing state */
    uint64_t rng;
    double now;
    uint64_t sent, lost, bytes, header_bytes;
} net;

static double uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* Two states: good loses nothing, bad loses everything; a burst lasts
 * `burst` datagrams on average, and bursts start often enough for the mean
 * loss (p_enter = loss / (burst * (1 - loss))). */
static int lost(net *n)
{
    if (n->burst <= 1)
        return uniform(&n->rng) < n->loss;
    double leave = 1.0 / n->burst, enter = n->loss * leave / (1.0 - n->loss);
    n->bad = n->bad ? uniform(&n->rng) >= leave : uniform(&n->rng) < enter;
    return n->bad;
}

static void deliver(void *ctx, const uint8_t *data, size_t len)
{
    net *n = ctx;
    n->sent++;
    n->bytes += len;
    n->header_bytes += TOKVOX_STREAM_HEADER_SIZE;
    int is_end = len == TOKVOX_STREAM_HEADER_SIZE + 8;
    if (!is_end && lost(n)) {
        n->lost++;
        return;
    }
    if (tokvox_receiver_push(n->rx, data, len, n->now) != TOKVOX_OK)
        fprintf(stderr, "tokvox-stream-sim: a datagram was refused\n");
}

static void usage(void)
{
    fputs("usage: tokvox-stream-sim in.wav out.wav [--loss P] [--burst L] [--fec D] "
          "[--fec-codebooks N] [--codebooks N] [--seed S] [--model M]\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"loss", 1, NULL, 'l'}, {"burst", 1, NULL, 'b'}, {"fec", 1, NULL, 'f'},
        {"fec-codebooks", 1, NULL, 'F'}, {"codebooks", 1, NULL, 'n'}, {"seed", 1, NULL, 's'},
        {"model", 1, NULL, 'm'}, {NULL, 0, NULL, 0},
    };
    net n = {0};
    n.burst = 1;
    n.rng = 1;
    tokvox_sender_config sc;
    tokvox_sender_config_init(&sc);
    sc.stream_id = 1;
    const char *model_path = NULL;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'l': n.loss = atof(optarg); break;
        case 'b': n.burst = atof(optarg); break;
        case 'f': sc.fec_depth = atoi(optarg); break;
        case 'F': sc.fec_codebooks = atoi(optarg); break;
        case 'n': sc.num_codebooks = atoi(optarg); break;
        case 's': n.rng = strtoull(optarg, NULL, 10); break;
        case 'm': model_path = optarg; break;
        default: usage();
        }
    }
    if (argc - optind != 2 || n.loss < 0 || n.loss >= 1 || n.burst < 1)
        usage();
    char detail[1024] = "";
    int err = 0;
    tokvox_model *m = tokvox_model_load(model_path, &err, detail, sizeof detail);
    if (!m) {
        fprintf(stderr, "tokvox-stream-sim: %s\n", detail);
        return 1;
    }
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(m, &info);
    float *in = NULL;
    size_t in_n = 0;
    tokvox_audio_source src;
    if (tokvox_audio_read(argv[optind], info.sample_rate, &in, &in_n, &src, detail,
                          sizeof detail) != 0) {
        fprintf(stderr, "tokvox-stream-sim: %s\n", detail);
        return 1;
    }
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    rc.adaptive = 0; /* an in-order network: loss is all there is to measure */
    tokvox_sender *tx = tokvox_sender_create(m, &sc, &err);
    n.rx = tokvox_receiver_create(m, &rc, &err);
    if (!tx || !n.rx) {
        fprintf(stderr, "tokvox-stream-sim: %s\n", tokvox_strerror(err));
        return 1;
    }
    size_t hop = (size_t)info.hop, frames = in_n / hop + 3;
    float *out = calloc((frames + 8) * hop, sizeof(float));
    size_t out_n = 0;
    /* a hop at a time on the sender's clock; the receiver pulls a frame per
     * hop once its 60 ms hold has passed, so a copy in the next datagrams
     * arrives before the lost frame's turn */
    int finished = 0;
    for (size_t at = 0;; at += hop) {
        n.now = (double)at / info.sample_rate;
        if (at < in_n) {
            size_t take = in_n - at < hop ? in_n - at : hop;
            tokvox_sender_push(tx, in + at, take, deliver, &n);
        } else if (!finished) {
            tokvox_sender_finish(tx, deliver, &n);
            finished = 1;
        }
        size_t got = 0;
        tokvox_receiver_pull(n.rx, n.now, out + out_n, hop, &got);
        out_n += got;
        tokvox_receiver_stats st = {.size = sizeof st};
        tokvox_receiver_get_stats(n.rx, &st);
        if (st.ended || out_n >= (frames + 4) * hop)
            break;
    }
    /* the decoder's delay comes first; the input's length is the rest */
    size_t delay = (size_t)(info.latency_samples - info.hop);
    size_t len = out_n > delay ? out_n - delay : 0;
    len = len < in_n ? len : in_n;
    if (tokvox_audio_write(argv[optind + 1], out + (out_n > delay ? delay : 0), len,
                           info.sample_rate, info.sample_rate, detail, sizeof detail) != 0) {
        fprintf(stderr, "tokvox-stream-sim: %s\n", detail);
        return 1;
    }
    tokvox_receiver_stats st = {.size = sizeof st};
    tokvox_receiver_get_stats(n.rx, &st);
    double seconds = (double)in_n / info.sample_rate;
    printf("{\"datagrams\":%llu,\"lost\":%llu,\"frames\":%llu,\"decoded\":%llu,"
           "\"recovered\":%llu,\"concealed\":%llu,\"kbps_datagrams\":%.3f,"
           "\"kbps_without_headers\":%.3f}\n",
           (unsigned long long)n.sent, (unsigned long long)n.lost,
           (unsigned long long)st.frames, (unsigned long long)st.decoded,
           (unsigned long long)st.recovered, (unsigned long long)st.concealed,
           8e-3 * (double)n.bytes / seconds, 8e-3 * (double)(n.bytes - n.header_bytes) / seconds);
    tokvox_sender_destroy(tx);
    tokvox_receiver_destroy(n.rx);
    tokvox_model_destroy(m);
    free(in);
    free(out);
    return 0;
}
