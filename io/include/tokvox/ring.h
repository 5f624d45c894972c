/* tokvox ring: a lock-free single-producer/single-consumer ring buffer.
 *
 * The bridge between an audio device callback and the thread that codes:
 * one thread writes, one thread reads, neither ever waits.  Elements are
 * fixed-size (a float sample, a struct); the capacity is rounded up to a
 * power of two.  Write and read indices are C11 atomics that only grow
 * (release on publish, acquire on observe), so the elements a reader sees
 * are complete, and a full ring makes the writer take fewer elements instead
 * of overwriting unread ones.
 *
 * Threads: create/destroy [one thread, while no one else uses the ring];
 * write [producer thread only, rt-safe: no allocation, lock or system call];
 * read, discard [consumer thread only, rt-safe]; the *_available functions
 * [either side, rt-safe]: exact for the calling side, a lower bound of what
 * the other side will find.
 */
#ifndef TOKVOX_RING_H
#define TOKVOX_RING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tokvox_ring tokvox_ring;

/* A ring of at least capacity elements of elem_size bytes (capacity 1 ..
 * 2^30, elem_size 1 .. 4096).  NULL on a bad size or no memory.  The ring
 * owns its storage until tokvox_ring_destroy(); destroy(NULL) does nothing. */
tokvox_ring *tokvox_ring_create(size_t capacity, size_t elem_size);
void tokvox_ring_destroy(tokvox_ring *r);
/* Elements the ring holds when full (a power of two). */
size_t tokvox_ring_capacity(const tokvox_ring *r);

/* Copy up to n elements from src; returns how many fitted. [producer] */
size_t tokvox_ring_write(tokvox_ring *r, const void *src, size_t n);
/* Copy up to n elements into dst, oldest first; returns how many. [consumer] */
size_t tokvox_ring_read(tokvox_ring *r, void *dst, size_t n);
/* Drop up to n of the oldest elements; returns how many. [consumer] */
size_t tokvox_ring_discard(tokvox_ring *r, size_t n);

/* Elements ready to read, and free places to write. */
size_t tokvox_ring_read_available(const tokvox_ring *r);
size_t tokvox_ring_write_available(const tokvox_ring *r);

#ifdef __cplusplus
}
#endif
#endif
