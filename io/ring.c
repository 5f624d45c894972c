/* Lock-free SPSC ring (see tokvox/ring.h).
 *
 * head counts elements ever written, tail elements ever read; both only grow
 * and wrap around SIZE_MAX together, so head - tail is the fill level even
 * across the wrap.  Each index has one writer: the producer stores head with
 * release after copying the elements in, the consumer loads it with acquire
 * before copying them out (and the same the other way round for tail), which
 * is all the ordering an SPSC ring needs. */
#include "tokvox/ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The callback side must never fall back to a hidden lock. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2, "atomic size_t must be lock-free");
_Static_assert(sizeof(size_t) == sizeof(long), "size_t is long on supported targets");

#define RING_MAX_CAPACITY ((size_t)1 << 30)
#define RING_MAX_ELEM 4096

struct tokvox_ring {
    /* on separate cache lines, so the two threads do not false-share */
    alignas(64) atomic_size_t head;
    alignas(64) atomic_size_t tail;
    alignas(64) size_t mask;      /* capacity - 1 */
    size_t elem;                  /* bytes per element */
    unsigned char *data;          /* capacity * elem bytes */
};

tokvox_ring *tokvox_ring_create(size_t capacity, size_t elem_size)
{
    if (capacity < 1 || capacity > RING_MAX_CAPACITY || elem_size < 1 ||
        elem_size > RING_MAX_ELEM)
        return NULL;
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    tokvox_ring *r = aligned_alloc(64, sizeof *r);
    if (!r)
        return NULL;
    r->data = malloc(cap * elem_size);
    if (!r->data) {
        free(r);
        return NULL;
    }
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->mask = cap - 1;
    r->elem = elem_size;
    return r;
}

void tokvox_ring_destroy(tokvox_ring *r)
{
    if (!r)
        return;
    free(r->data);
    free(r);
}

size_t tokvox_ring_capacity(const tokvox_ring *r) { return r->mask + 1; }

/* Copy n elements between the ring slot at index and buf, in up to two
 * pieces around the end of the storage. */
static void copy_out(const tokvox_ring *r, size_t index, void *buf, size_t n)
{
    size_t at = index & r->mask, first = r->mask + 1 - at;
    first = first < n ? first : n;
    memcpy(buf, r->data + at * r->elem, first * r->elem);
    memcpy((unsigned char *)buf + first * r->elem, r->data, (n - first) * r->elem);
}

static void copy_in(tokvox_ring *r, size_t index, const void *buf, size_t n)
{
    size_t at = index & r->mask, first = r->mask + 1 - at;
    first = first < n ? first : n;
    memcpy(r->data + at * r->elem, buf, first * r->elem);
    memcpy(r->data, (const unsigned char *)buf + first * r->elem, (n - first) * r->elem);
}

size_t tokvox_ring_write(tokvox_ring *r, const void *src, size_t n)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t space = r->mask + 1 - (head - tail);
    n = n < space ? n : space;
    if (n == 0)
        return 0;
    copy_in(r, head, src, n);
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

/* Elements the consumer may take now. */
static size_t readable(const tokvox_ring *r, size_t *tail)
{
    *tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    return head - *tail;
}

size_t tokvox_ring_read(tokvox_ring *r, void *dst, size_t n)
{
    size_t tail, ready = readable(r, &tail);
    n = n < ready ? n : ready;
    if (n == 0)
        return 0;
    copy_out(r, tail, dst, n);
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return n;
}

size_t tokvox_ring_discard(tokvox_ring *r, size_t n)
{
    size_t tail, ready = readable(r, &tail);
    n = n < ready ? n : ready;
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return n;
}

size_t tokvox_ring_read_available(const tokvox_ring *r)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    return head - tail;
}

size_t tokvox_ring_write_available(const tokvox_ring *r)
{
    return r->mask + 1 - tokvox_ring_read_available(r);
}
