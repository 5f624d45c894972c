/* tokvox live over UDP: one packet per code frame (io/packet.c, format in
 * docs/live.md).
 *
 * The sender can simulate a bad network so the receiver's jitter buffer and
 * concealment can be tested on one machine: each packet is dropped with
 * probability --simulate-loss, or held back by a delay drawn uniformly from
 * 0..--simulate-jitter ms, which also reorders packets.  Delays are measured
 * on the stream's own clock (samples encoded), so a paced run behaves like a
 * network and a --fast run gives the same packet order for the same --seed.
 * The end-of-stream packet is never dropped and is sent three times: losing
 * it would only cost the receiver its idle timeout. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "live.h"

/* ---- sender ---------------------------------------------------------------- */

typedef struct delayed {
    uint64_t due;                     /* stream position to send at */
    size_t len;
    uint8_t data[TOKVOX_PACKET_MAX_SIZE];
} delayed;

struct live_sender {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    tokvox_packet packet;             /* type, layout and model id filled once */
    uint64_t hop;
    double loss;
    uint64_t max_delay;               /* samples */
    uint64_t rng;
    delayed *queue;
    size_t n_queue, cap_queue;
    live_sender_counters count;
};

/* splitmix64: small, seedable, and the same on every platform. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *state) { return (double)(next_random(state) >> 11) * 0x1p-53; }

/* Splits HOST:PORT or [HOST]:PORT and resolves it to a datagram address. */
static int resolve(const char *target, struct sockaddr_storage *addr, socklen_t *len,
                   char *err, size_t err_size)
{
    char host[256];
    const char *colon = strrchr(target, ':');
    size_t n = colon ? (size_t)(colon - target) : 0;
    if (!colon || n == 0 || n >= sizeof host || !colon[1]) {
        snprintf(err, err_size, "--send wants HOST:PORT, not '%s'", target);
        return -1;
    }
    memcpy(host, target, n);
    host[n] = '\0';
    if (host[0] == '[' && host[n - 1] == ']') { /* [::1]:5000 */
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "cannot resolve '%s': %s", target, gai_strerror(rc));
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

live_sender *live_sender_open(const live_sender_config *c, char *err, size_t err_size)
{
    live_sender *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    s->fd = -1;
    if (resolve(c->target, &s->addr, &s->addr_len, err, err_size) != 0) {
        live_sender_close(s);
        return NULL;
    }
    s->fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        snprintf(err, err_size, "cannot open a UDP socket: %s", strerror(errno));
        live_sender_close(s);
        return NULL;
    }
    s->packet.type = TOKVOX_PACKET_FRAME;
    s->packet.num_codebooks = c->num_codebooks;
    s->packet.codebook_bits = c->info->codebook_bits;
    s->packet.model_id = c->info->model_id;
    s->hop = (uint64_t)c->info->hop;
    s->loss = c->loss;
    s->max_delay = (uint64_t)c->jitter_ms * (uint64_t)c->info->sample_rate / 1000;
    s->rng = c->seed;
    /* a packet waits at most max_delay, so this many can be waiting at once */
    s->cap_queue = (size_t)(s->max_delay / s->hop) + 2;
    s->queue = malloc(sizeof(delayed) * s->cap_queue);
    if (!s->queue) {
        snprintf(err, err_size, "out of memory");
        live_sender_close(s);
        return NULL;
    }
    return s;
}

static void send_bytes(live_sender *s, const uint8_t *data, size_t len)
{
    /* unconnected, so a receiver that is not there yet does not turn into
     * errors on later sends */
    ssize_t n = sendto(s->fd, data, len, 0, (const struct sockaddr *)&s->addr, s->addr_len);
    if (n == (ssize_t)len) {
        s->count.sent++;
        s->count.bytes += len;
    } else {
        s->count.send_errors++;
    }
}

/* Sends the waiting packets due by position, earliest due first. */
static void send_due(live_sender *s, uint64_t position)
{
    for (;;) {
        size_t best = s->n_queue;
        for (size_t i = 0; i < s->n_queue; i++)
            if (s->queue[i].due <= position && (best == s->n_queue || s->queue[i].due < s->queue[best].due))
                best = i;
        if (best == s->n_queue)
            return;
        send_bytes(s, s->queue[best].data, s->queue[best].len);
        s->queue[best] = s->queue[--s->n_queue];
    }
}

void live_sender_frame(live_sender *s, const uint16_t *codes, uint64_t position)
{
    tokvox_packet *p = &s->packet;
    p->seq = (uint32_t)s->count.frames;
    p->timestamp = s->count.frames * s->hop;
    s->count.frames++;
    memcpy(p->codes, codes, sizeof(uint16_t) * (size_t)p->num_codebooks);
    double drop = uniform(&s->rng), delay = uniform(&s->rng);
    if (drop < s->loss) {
        s->count.dropped++;
    } else {
        if (s->n_queue == s->cap_queue) /* cannot happen: delays are bounded */
            send_due(s, UINT64_MAX);
        delayed *d = &s->queue[s->n_queue++];
        d->due = position + (uint64_t)(delay * (double)s->max_delay);
        tokvox_packet_write(p, d->data, sizeof d->data, &d->len);
    }
    send_due(s, position);
}

void live_sender_finish(live_sender *s, uint64_t total_samples)
{
    send_due(s, UINT64_MAX);
    tokvox_packet end = s->packet;
    end.type = TOKVOX_PACKET_END;
    end.num_codebooks = 0;
    end.seq = (uint32_t)s->count.frames;
    end.timestamp = total_samples;
    uint8_t buf[TOKVOX_PACKET_MAX_SIZE];
    size_t len;
    if (tokvox_packet_write(&end, buf, sizeof buf, &len) != TOKVOX_OK)
        return;
    for (int i = 0; i < 3; i++)
        send_bytes(s, buf, len);
}

void live_sender_counters_get(const live_sender *s, live_sender_counters *c) { *c = s->count; }

void live_sender_close(live_sender *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->queue);
    free(s);
}

/* ---- receiver ---------------------------------------------------------------- */

typedef enum refusal {
    REFUSE_FORMAT,   /* not a tokvox packet, or a broken one */
    REFUSE_VERSION,  /* another packet version */
    REFUSE_MODEL,    /* coded by another model */
    REFUSE_LAYOUT,   /* codebooks or code width not the stream's */
    REFUSE_KINDS
} refusal;

/* A refusal of a kind is reported at once, then at most this often. */
#define REFUSAL_REPORT_S 5.0

struct live_receiver {
    int fd;
    tokvox_model_info info;
    int stream_codebooks;
    struct {
        double last;           /* when reported, 0 = never */
        uint64_t unreported;
    } kind[REFUSE_KINDS];
    uint64_t refused;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Dual-stack where the system has IPv6, plain IPv4 where it does not. */
static int bind_any(int port)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        struct sockaddr_in6 a = {0};
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_any;
        a.sin6_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        close(fd);
    }
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

live_receiver *live_receiver_open(int port, const tokvox_model_info *info, char *err,
                                  size_t err_size)
{
    live_receiver *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    r->fd = bind_any(port);
    if (r->fd < 0) {
        snprintf(err, err_size, "cannot listen on UDP port %d: %s", port, strerror(errno));
        free(r);
        return NULL;
    }
    /* room for a second of packets while the coding thread is busy */
    int size = 1 << 18;
    setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    r->info = *info;
    return r;
}

static void format_peer(const struct sockaddr_storage *a, socklen_t len, char *out, size_t size)
{
    char host[128] = "?", serv[32] = "?";
    getnameinfo((const struct sockaddr *)a, len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, size, "%s:%s", host, serv);
}

/* Where a datagram came from; formatted only when a message names it. */
typedef struct peer {
    struct sockaddr_storage addr;
    socklen_t len;
} peer;

static void refuse(live_receiver *r, refusal why, const peer *from, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One line for the first refusal of a kind, then one every few seconds that
 * says how many were refused since: a flood of bad packets must not become a
 * flood of messages. */
static void refuse(live_receiver *r, refusal why, const peer *from, const char *fmt, ...)
{
    r->refused++;
    r->kind[why].unreported++;
    double now = now_s();
    if (r->kind[why].last != 0.0 && now - r->kind[why].last < REFUSAL_REPORT_S)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char who[160];
    format_peer(&from->addr, from->len, who, sizeof who);
    if (r->kind[why].unreported > 1)
        fprintf(stderr, "tokvox live: refusing packets from %s: %s (%llu such packets)\n", who,
                msg, (unsigned long long)r->kind[why].unreported);
    else
        fprintf(stderr, "tokvox live: refusing packets from %s: %s\n", who, msg);
    r->kind[why].last = now;
    r->kind[why].unreported = 0;
}

/* The checks a well-formed packet must still pass to be this stream's. */
static int accept_packet(live_receiver *r, const tokvox_packet *p, const peer *from)
{
    if (p->model_id != r->info.model_id) {
        refuse(r, REFUSE_MODEL, from, "model id %016llx, ours is %016llx",
               (unsigned long long)p->model_id, (unsigned long long)r->info.model_id);
        return 0;
    }
    if (p->codebook_bits != r->info.codebook_bits ||
        p->num_codebooks > r->info.num_codebooks ||
        (p->type == TOKVOX_PACKET_FRAME && r->stream_codebooks &&
         p->num_codebooks != r->stream_codebooks)) {
        refuse(r, REFUSE_LAYOUT, from, "%d codes of %d bits per frame, the stream has %d of %d",
               p->num_codebooks, p->codebook_bits,
               r->stream_codebooks ? r->stream_codebooks : r->info.num_codebooks,
               r->info.codebook_bits);
        return 0;
    }
    for (int i = 0; i < p->num_codebooks; i++)
        if (p->codes[i] >= r->info.codebook_size) {
            refuse(r, REFUSE_FORMAT, from, "code %u out of range", p->codes[i]);
            return 0;
        }
    if (p->type == TOKVOX_PACKET_FRAME)
        r->stream_codebooks = p->num_codebooks;
    return 1;
}

static int parse_datagram(live_receiver *r, const uint8_t *buf, size_t len, int truncated,
                          const peer *from, tokvox_packet *p)
{
    int err = truncated ? TOKVOX_ERR_FORMAT : tokvox_packet_parse(buf, len, p);
    if (err == TOKVOX_ERR_VERSION) {
        refuse(r, REFUSE_VERSION, from, "packet version %d, this receiver reads %d", p->version,
               TOKVOX_PACKET_VERSION);
        return 0;
    }
    if (err) {
        refuse(r, REFUSE_FORMAT, from, "%zu bytes that are not a tokvox packet (%s)", len,
               tokvox_strerror(err));
        return 0;
    }
    return accept_packet(r, p, from);
}

int live_receiver_next(live_receiver *r, double timeout_s, tokvox_packet *p)
{
    struct pollfd pfd = {r->fd, POLLIN, 0};
    int ms = timeout_s > 0 ? (int)(timeout_s * 1000.0 + 0.5) : 0;
    int ready = poll(&pfd, 1, ms);
    if (ready < 0)
        return errno == EINTR ? 0 : -1;
    if (ready == 0)
        return 0;
    uint8_t buf[TOKVOX_PACKET_MAX_SIZE + 1];
    peer from = {.len = sizeof from.addr};
    ssize_t n = recvfrom(r->fd, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT,
                         (struct sockaddr *)&from.addr, &from.len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    /* MSG_TRUNC returns the real length: anything longer than the buffer is
     * longer than any packet */
    int truncated = (size_t)n > sizeof buf;
    return parse_datagram(r, buf, truncated ? sizeof buf : (size_t)n, truncated, &from, p);
}

int live_receiver_stream_codebooks(const live_receiver *r) { return r->stream_codebooks; }

void live_receiver_new_stream(live_receiver *r) { r->stream_codebooks = 0; }

uint64_t live_receiver_refused(const live_receiver *r) { return r->refused; }

void live_receiver_close(live_receiver *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}
