/* The lock-free SPSC ring (io/ring.c): sizes sane and insane, FIFO order,
 * partial writes when full, wrap-around with odd element sizes, and a
 * two-thread stress test where every element must arrive once, in order. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokvox/ring.h"

START_TEST(sizes_are_checked_and_rounded)
{
    ck_assert_ptr_null(tokvox_ring_create(0, 4));
    ck_assert_ptr_null(tokvox_ring_create(8, 0));
    ck_assert_ptr_null(tokvox_ring_create(8, 4097));
    ck_assert_ptr_null(tokvox_ring_create(((size_t)1 << 30) + 1, 1));
    tokvox_ring_destroy(NULL);
    const size_t asked[] = {1, 2, 3, 5, 64, 100, 1000};
    const size_t got[] = {1, 2, 4, 8, 64, 128, 1024};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        tokvox_ring *r = tokvox_ring_create(asked[i], 4);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(tokvox_ring_capacity(r), got[i]);
        ck_assert_uint_eq(tokvox_ring_read_available(r), 0);
        ck_assert_uint_eq(tokvox_ring_write_available(r), got[i]);
        tokvox_ring_destroy(r);
    }
}
END_TEST

START_TEST(fifo_order_and_full_ring)
{
    tokvox_ring *r = tokvox_ring_create(8, sizeof(float));
    float in[12], out[12];
    for (int i = 0; i < 12; i++)
        in[i] = (float)i;
    ck_assert_uint_eq(tokvox_ring_write(r, in, 5), 5);
    ck_assert_uint_eq(tokvox_ring_write(r, in + 5, 7), 3); /* only 3 places left */
    ck_assert_uint_eq(tokvox_ring_write(r, in, 1), 0);
    ck_assert_uint_eq(tokvox_ring_read_available(r), 8);
    ck_assert_uint_eq(tokvox_ring_write_available(r), 0);
    ck_assert_uint_eq(tokvox_ring_read(r, out, 3), 3);
    ck_assert(out[0] == 0.0f && out[1] == 1.0f && out[2] == 2.0f);
    ck_assert_uint_eq(tokvox_ring_discard(r, 2), 2);
    ck_assert_uint_eq(tokvox_ring_read(r, out, 12), 3);
    ck_assert(out[0] == 5.0f && out[1] == 6.0f && out[2] == 7.0f);
    ck_assert_uint_eq(tokvox_ring_read(r, out, 12), 0);
    ck_assert_uint_eq(tokvox_ring_discard(r, 5), 0);
    ck_assert_uint_eq(tokvox_ring_write(r, in, 0), 0);
    tokvox_ring_destroy(r);
}
END_TEST

/* 13-byte elements (a 32-bit sequence number and 9 tag bytes), so copies
 * never line up with words. */
enum { ODD = 13 };

static void odd_make(uint8_t *e, uint32_t seq)
{
    memcpy(e, &seq, 4);
    memset(e + 4, (int)(seq & 0xff), ODD - 4);
}

START_TEST(wraps_around_with_odd_elements)
{
    tokvox_ring *r = tokvox_ring_create(16, ODD);
    uint8_t buf[16][ODD];
    uint32_t next_in = 0, next_out = 0;
    /* chunk sizes coprime to the capacity, so every split point is hit */
    for (int round = 0; round < 500; round++) {
        size_t n = (size_t)(round % 7) + 1;
        for (size_t i = 0; i < n; i++)
            odd_make(buf[i], next_in + (uint32_t)i);
        next_in += (uint32_t)tokvox_ring_write(r, buf, n);
        size_t got = tokvox_ring_read(r, buf, (size_t)(round % 5) + 1);
        for (size_t i = 0; i < got; i++, next_out++) {
            uint8_t expect[ODD];
            odd_make(expect, next_out);
            ck_assert_int_eq(memcmp(buf[i], expect, ODD), 0);
        }
        ck_assert_uint_eq(tokvox_ring_read_available(r), next_in - next_out);
    }
    tokvox_ring_destroy(r);
}
END_TEST

/* ---- two threads -------------------------------------------------------- */

enum { STRESS_ELEMENTS = 2000000, STRESS_MAX_CHUNK = 37 };

typedef struct stress {
    tokvox_ring *ring;
    unsigned seed;
    uint64_t errors;
} stress;

static unsigned next_random(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void *producer(void *arg)
{
    stress *st = arg;
    unsigned s = st->seed;
    uint64_t chunk[STRESS_MAX_CHUNK];
    for (uint64_t next = 0; next < STRESS_ELEMENTS;) {
        size_t n = next_random(&s) % STRESS_MAX_CHUNK + 1;
        if (n > STRESS_ELEMENTS - next)
            n = (size_t)(STRESS_ELEMENTS - next);
        for (size_t i = 0; i < n; i++)
            chunk[i] = next + i;
        size_t put = tokvox_ring_write(st->ring, chunk, n);
        next += put;
        if (put == 0)
            sched_yield(); /* the machine may have one free core: let the reader run */
    }
    return NULL;
}

static void *consumer(void *arg)
{
    stress *st = arg;
    unsigned s = st->seed ^ 0x9e3779b9u;
    uint64_t chunk[STRESS_MAX_CHUNK];
    for (uint64_t expect = 0; expect < STRESS_ELEMENTS;) {
        size_t want = next_random(&s) % STRESS_MAX_CHUNK + 1;
        if (want > STRESS_ELEMENTS - expect)
            want = (size_t)(STRESS_ELEMENTS - expect);
        size_t got = tokvox_ring_read(st->ring, chunk, want);
        for (size_t i = 0; i < got; i++, expect++)
            st->errors += chunk[i] != expect;
        if (got == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(two_threads_lose_nothing)
{
    stress st = {tokvox_ring_create(64, sizeof(uint64_t)), tu_seed(), 0};
    ck_assert_ptr_nonnull(st.ring);
    pthread_t p, c;
    ck_assert_int_eq(pthread_create(&c, NULL, consumer, &st), 0);
    ck_assert_int_eq(pthread_create(&p, NULL, producer, &st), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    ck_assert_msg(st.errors == 0, "%llu elements out of order or corrupted",
                  (unsigned long long)st.errors);
    ck_assert_uint_eq(tokvox_ring_read_available(st.ring), 0);
    tokvox_ring_destroy(st.ring);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("ring");
    tcase_add_test(tc, sizes_are_checked_and_rounded);
    tcase_add_test(tc, fifo_order_and_full_ring);
    tcase_add_test(tc, wraps_around_with_odd_elements);
    tcase_add_test(tc, two_threads_lose_nothing);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ring_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
