/* A two-way voice call over UDP on loopback, sealed with a pre-shared key,
 * with forward error correction, through a network that loses 20 % of the
 * datagrams in bursts: tokvox/stream.h does the network half.
 *
 *   cc udp_call.c $(pkg-config --cflags --libs tokvox sndfile) -o udp_call
 *   ./udp_call alice.wav bob.wav heard_by_bob.wav heard_by_alice.wav [LOSS]
 *
 * Each end has a tokvox_sender (PCM in, sealed datagrams out) and a
 * tokvox_receiver (datagrams in, PCM out at its playback clock).  A 20 ms
 * tick stands in for the sound card's clock, and runs as fast as the CPU
 * does: the call is simulated, the sockets and the bytes are real.  Inputs
 * are mono 16 kHz WAVs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tokvox/stream.h>
#include <tokvox/tokvox.h>

typedef struct end {
    const char *name;
    int fd;                         /* bound to 127.0.0.1, connected to the peer */
    SNDFILE *mic, *speaker;         /* files stand in for the devices */
    tokvox_sender *tx;
    tokvox_receiver *rx;
    int bad;                        /* the lossy channel is in a burst */
    unsigned rng;
    double loss;
    size_t skip;                    /* the decoder's delay still to drop */
    int mic_done;
} end;

/* Gilbert-Elliott: bursts of 3 datagrams on average, `loss` of them lost. */
static int channel_loses(end *e)
{
    double u = (double)rand_r(&e->rng) / RAND_MAX;
    double leave = 1.0 / 3, enter = e->loss * leave / (1.0 - e->loss);
    e->bad = e->bad ? u >= leave : u < enter;
    return e->bad;
}

static void send_datagram(void *ctx, const uint8_t *data, size_t len)
{
    end *e = ctx;
    if (!channel_loses(e))
        send(e->fd, data, len, 0);
}

static int open_socket(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t len = sizeof *addr;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0)
        return -1;
    return fd;
}

/* One tick of one end: a hop from the microphone into the sender, every
 * datagram that came into the receiver, a hop out to the speaker. */
static int tick(end *e, const tokvox_model_info *info, double now)
{
    size_t hop = (size_t)info->hop, n = 0;
    float pcm[4096];
    if (!e->mic_done) {
        sf_count_t got = sf_readf_float(e->mic, pcm, (sf_count_t)hop);
        if (got > 0 && tokvox_sender_push(e->tx, pcm, (size_t)got, send_datagram, e) != 0)
            return -1;
        if (got < (sf_count_t)hop) { /* the end: the last frames and the end datagram */
            e->mic_done = 1;
            if (tokvox_sender_finish(e->tx, send_datagram, e) != 0)
                return -1;
        }
    }
    uint8_t buf[TOKVOX_STREAM_MAX_DATAGRAM];
    ssize_t len;
    while ((len = recv(e->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        tokvox_receiver_push(e->rx, buf, (size_t)len, now); /* refusals are counted */
    if (tokvox_receiver_pull(e->rx, now, pcm, hop, &n) != 0)
        return -1;
    size_t drop = e->skip < n ? e->skip : n;
    e->skip -= drop;
    sf_writef_float(e->speaker, pcm + drop, (sf_count_t)(n - drop));
    return 0;
}

static int setup(end *e, const tokvox_model *model, const uint8_t *key, const char *mic,
                 const char *speaker, int rate)
{
    SF_INFO in = {0}, out = {.samplerate = rate, .channels = 1,
                             .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    e->mic = sf_open(mic, SFM_READ, &in);
    e->speaker = sf_open(speaker, SFM_WRITE, &out);
    if (!e->mic || !e->speaker || in.channels != 1 || in.samplerate != rate) {
        fprintf(stderr, "udp_call: %s or %s: mono %d Hz WAV wanted\n", mic, speaker, rate);
        return -1;
    }
    tokvox_sender_config sc;
    tokvox_sender_config_init(&sc);
    sc.num_codebooks = 4;           /* 2 kbps */
    sc.fec_depth = 2;               /* each datagram repeats the two before ... */
    sc.fec_codebooks = 2;           /* ... at 1 kbps */
    sc.key = key;
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    rc.key = key;
    int err;
    e->tx = tokvox_sender_create(model, &sc, &err);
    e->rx = tokvox_receiver_create(model, &rc, &err);
    if (!e->tx || !e->rx) {
        fprintf(stderr, "udp_call: %s\n", tokvox_strerror(err));
        return -1;
    }
    return 0;
}

static void report(const end *e)
{
    tokvox_receiver_stats st = {.size = sizeof st};
    tokvox_receiver_get_stats(e->rx, &st);
    printf("%s heard %llu frames: %llu decoded, %llu recovered by FEC, %llu concealed; "
           "refused %llu (unauthenticated %llu, replayed %llu)\n", e->name,
           (unsigned long long)st.frames, (unsigned long long)st.decoded,
           (unsigned long long)st.recovered, (unsigned long long)st.concealed,
           (unsigned long long)st.refused, (unsigned long long)st.unauthenticated,
           (unsigned long long)st.replayed);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: udp_call alice.wav bob.wav heard_by_bob.wav heard_by_alice.wav "
                        "[LOSS]\n");
        return 2;
    }
    char detail[512];
    int err;
    tokvox_model *model = tokvox_model_load(NULL, &err, detail, sizeof detail);
    if (!model) {
        fprintf(stderr, "udp_call: %s\n", detail);
        return 1;
    }
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(model, &info);
    uint8_t key[TOKVOX_STREAM_KEY_BYTES]; /* both ends know it: pre-shared */
    if (tokvox_stream_make_key(key) != TOKVOX_OK)
        return 1;
    size_t delay = (size_t)(info.latency_samples - info.hop); /* the decoder's share */
    end a = {.name = "alice", .rng = 1, .skip = delay}, b = {.name = "bob", .rng = 2, .skip = delay};
    a.loss = b.loss = argc > 5 ? atof(argv[5]) : 0.2;
    struct sockaddr_in addr_a, addr_b;
    a.fd = open_socket(&addr_a);
    b.fd = open_socket(&addr_b);
    if (a.fd < 0 || b.fd < 0 || connect(a.fd, (struct sockaddr *)&addr_b, sizeof addr_b) != 0 ||
        connect(b.fd, (struct sockaddr *)&addr_a, sizeof addr_a) != 0) {
        perror("udp_call: sockets");
        return 1;
    }
    /* a's microphone is alice's file, and what a's receiver hears is bob's */
    if (setup(&a, model, key, argv[1], argv[4], info.sample_rate) != 0 ||
        setup(&b, model, key, argv[2], argv[3], info.sample_rate) != 0)
        return 1;
    double frame_s = (double)info.hop / info.sample_rate;
    for (long t = 0; t < 100000; t++) {
        double now = (double)t * frame_s;
        if (tick(&a, &info, now) != 0 || tick(&b, &info, now) != 0) {
            fprintf(stderr, "udp_call: coding failed\n");
            return 1;
        }
        tokvox_receiver_stats sa = {.size = sizeof sa}, sb = {.size = sizeof sb};
        tokvox_receiver_get_stats(a.rx, &sa);
        tokvox_receiver_get_stats(b.rx, &sb);
        if (sa.ended && sb.ended)
            break;
        usleep(200); /* loopback delivery is quick, not instant */
    }
    report(&a);
    report(&b);
    sf_close(a.mic);
    sf_close(a.speaker);
    sf_close(b.mic);
    sf_close(b.speaker);
    tokvox_sender_destroy(a.tx);
    tokvox_sender_destroy(b.tx);
    tokvox_receiver_destroy(a.rx);
    tokvox_receiver_destroy(b.rx);
    close(a.fd);
    close(b.fd);
    tokvox_model_destroy(model);
    return 0;
}
