/* tokvox live over UDP: the sockets.  The datagrams are tokvox/stream.h's
 * (docs/stream.md); this file sends and receives them.
 *
 * The sender can simulate a bad network so the receiver's jitter buffer and
 * concealment can be tested on one machine: each datagram is dropped with
 * probability --simulate-loss, or held back by a delay drawn uniformly from
 * 0..--simulate-jitter ms, which also reorders them.  Delays are measured
 * on the stream's own clock (samples encoded), so a paced run behaves like a
 * network and a --fast run gives the same order for the same --seed.  The
 * end datagram is never dropped and is sent three times: losing it would
 * only cost the receiver its idle timeout. */
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
    uint8_t data[TOKVOX_STREAM_MAX_DATAGRAM];
} delayed;

struct live_sender {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t position;                /* the stream clock, in samples */
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
    s->loss = c->loss;
    s->max_delay = (uint64_t)c->jitter_ms * (uint64_t)c->sample_rate / 1000;
    s->rng = c->seed;
    /* a datagram waits at most max_delay and there is at most one per
     * 2.5 ms of stream (a 40-sample hop at 16 kHz), so this many can wait */
    s->cap_queue = (size_t)(s->max_delay / 40) + 4;
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

void live_sender_position(live_sender *s, uint64_t position) { s->position = position; }

void live_sender_datagram(void *ctx, const uint8_t *data, size_t len)
{
    live_sender *s = ctx;
    double drop = uniform(&s->rng), delay = uniform(&s->rng);
    if (len > sizeof s->queue[0].data)
        return; /* cannot happen: the stream layer's bound */
    if (drop < s->loss) {
        s->count.dropped++;
    } else {
        if (s->n_queue == s->cap_queue) /* cannot happen: delays are bounded */
            send_due(s, UINT64_MAX);
        delayed *d = &s->queue[s->n_queue++];
        d->due = s->position + (uint64_t)(delay * (double)s->max_delay);
        memcpy(d->data, data, len);
        d->len = len;
    }
    send_due(s, s->position);
}

void live_sender_end(void *ctx, const uint8_t *data, size_t len)
{
    live_sender *s = ctx;
    send_due(s, UINT64_MAX);
    for (int i = 0; i < 3; i++)
        send_bytes(s, data, len);
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
    REFUSE_FORMAT,   /* not a tokvox datagram, or a broken one */
    REFUSE_VERSION,  /* another datagram version */
    REFUSE_MODEL,    /* coded by another model */
    REFUSE_CODES,    /* codes out of the model's range */
    REFUSE_AUTH,     /* not sealed with our key */
    REFUSE_REPLAY,   /* sealed with it, but heard before */
    REFUSE_PEER,     /* from another address than the call's sender */
    REFUSE_KINDS
} refusal;

/* A refusal of a kind is reported at once, then at most this often. */
#define REFUSAL_REPORT_S 5.0

/* Where a datagram came from; formatted only when a message names it. */
typedef struct peer {
    struct sockaddr_storage addr;
    socklen_t len;
} peer;

struct live_receiver {
    int fd;
    peer last;               /* the sender of the last datagram */
    peer pinned;             /* the call's sender, once pinned */
    int have_pin;
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

/* Splits HOST:PORT or [HOST]:PORT; a bare PORT gets default_host. */
static int split_address(const char *text, const char *default_host, char *host, size_t size,
                         const char **port)
{
    const char *colon = strrchr(text, ':');
    if (!colon) {
        snprintf(host, size, "%s", default_host);
        *port = text;
        return 0;
    }
    size_t n = (size_t)(colon - text);
    if (n == 0 || n >= size || !colon[1])
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    if (host[0] == '[' && n >= 2 && host[n - 1] == ']') { /* [::1]:5000 */
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    *port = colon + 1;
    return 0;
}

/* Binds the address; "::" is made dual-stack where the system allows. */
static int bind_address(const char *host, const char *port, char *err, size_t err_size)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "cannot listen on %s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && res->ai_family == AF_INET6) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(err, err_size, "cannot listen on %s port %s: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

live_receiver *live_receiver_open(const char *address, char *err, size_t err_size)
{
    char host[256];
    const char *port = NULL;
    char *end = NULL;
    long number = 0;
    if (split_address(address, LIVE_LISTEN_DEFAULT_HOST, host, sizeof host, &port) == 0)
        number = strtol(port, &end, 10);
    if (number < 1 || number > 65535 || !end || *end) {
        snprintf(err, err_size, "--listen wants PORT or ADDRESS:PORT, not '%s'", address);
        return NULL;
    }
    live_receiver *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    r->fd = bind_address(host, port, err, err_size);
    if (r->fd < 0) {
        free(r);
        return NULL;
    }
    /* room for a second of packets while the coding thread is busy */
    int size = 1 << 18;
    setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return r;
}

static void format_peer(const struct sockaddr_storage *a, socklen_t len, char *out, size_t size)
{
    char host[128] = "?", serv[32] = "?";
    getnameinfo((const struct sockaddr *)a, len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, size, "%s:%s", host, serv);
}

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

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void live_receiver_refuse(live_receiver *r, int err, const uint8_t *buf, size_t len,
                          uint64_t model_id)
{
    const peer *from = &r->last;
    if (err == TOKVOX_ERR_VERSION && len > 4)
        refuse(r, REFUSE_VERSION, from, "datagram version %u, this receiver reads %d", buf[4],
               TOKVOX_STREAM_VERSION);
    else if (err == TOKVOX_ERR_MODEL_MISMATCH && len >= 24)
        refuse(r, REFUSE_MODEL, from, "model id %016llx, ours is %016llx",
               (unsigned long long)le64(buf + 16), (unsigned long long)model_id);
    else if (err == TOKVOX_ERR_CODE_RANGE)
        refuse(r, REFUSE_CODES, from, "codes out of the model's range");
    else if (err == TOKVOX_ERR_AUTH)
        refuse(r, REFUSE_AUTH, from, "not sealed with this call's key");
    else if (err == TOKVOX_ERR_REPLAY)
        refuse(r, REFUSE_REPLAY, from, "replayed (sealed with the key, but heard before)");
    else
        refuse(r, REFUSE_FORMAT, from, "%zu bytes that are not a tokvox datagram (%s)", len,
               tokvox_strerror(err));
}

int live_receiver_next(live_receiver *r, double timeout_s, uint8_t *buf, size_t cap,
                       size_t *len)
{
    struct pollfd pfd = {r->fd, POLLIN, 0};
    int ms = timeout_s > 0 ? (int)(timeout_s * 1000.0 + 0.5) : 0;
    int ready = poll(&pfd, 1, ms);
    if (ready < 0)
        return errno == EINTR ? 0 : -1;
    if (ready == 0)
        return 0;
    r->last.len = sizeof r->last.addr;
    ssize_t n = recvfrom(r->fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT,
                         (struct sockaddr *)&r->last.addr, &r->last.len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    /* MSG_TRUNC returns the real length: longer than cap is longer than any
     * valid datagram */
    *len = (size_t)n > cap ? cap + 1 : (size_t)n;
    return 1;
}

static int same_peer(const peer *a, const peer *b)
{
    return a->len == b->len && memcmp(&a->addr, &b->addr, a->len) == 0;
}

int live_receiver_check_peer(live_receiver *r)
{
    if (!r->have_pin || same_peer(&r->last, &r->pinned))
        return 1;
    char who[160];
    format_peer(&r->pinned.addr, r->pinned.len, who, sizeof who);
    refuse(r, REFUSE_PEER, &r->last, "the call's sender is %s", who);
    return 0;
}

void live_receiver_pin(live_receiver *r, int pin)
{
    r->have_pin = pin;
    if (pin)
        r->pinned = r->last;
}

int live_receiver_pinned(const live_receiver *r) { return r->have_pin; }

uint64_t live_receiver_refused(const live_receiver *r) { return r->refused; }

void live_receiver_close(live_receiver *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}
