/* The receiver's jitter buffer (apps/live_jitter.c): reordering, losses,
 * late and duplicate packets, a receiver that joins at the start or in the
 * middle of a stream, sequence numbers wrapping past 2^32, and a sender
 * that restarts. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "live.h"
#include "testutil.h"

enum { HOP = 320, CB = 4 };

static void codes_for(uint32_t seq, uint16_t *c)
{
    for (int i = 0; i < CB; i++)
        c[i] = (uint16_t)((seq * 7u + (uint32_t)i) & 1023u);
}

static live_jitter_put_result put(live_jitter *j, uint32_t seq, uint64_t frame)
{
    uint16_t c[CB];
    codes_for(seq, c);
    return live_jitter_put(j, seq, frame * HOP, HOP, c, (double)seq);
}

/* Pops one frame; returns its sequence number's codes check, -1 if missing. */
static int pop_is(live_jitter *j, uint32_t seq)
{
    uint16_t c[CB], expect[CB];
    double arrival = -1;
    if (!live_jitter_pop(j, c, &arrival))
        return -1;
    codes_for(seq, expect);
    for (int i = 0; i < CB; i++)
        if (c[i] != expect[i])
            return 0;
    return arrival == (double)seq;
}

START_TEST(reorders_within_the_buffer)
{
    live_jitter *j = live_jitter_create(3, CB);
    const uint32_t order[] = {0, 2, 1, 4, 3, 5, 7, 6};
    for (size_t i = 0; i < 8; i++)
        ck_assert_int_eq(put(j, order[i], order[i]), LIVE_JITTER_STORED);
    ck_assert_int_eq(live_jitter_span(j), 8);
    for (uint32_t s = 0; s < 8; s++)
        ck_assert_int_eq(pop_is(j, s), 1);
    ck_assert_int_eq(live_jitter_span(j), 0);
    ck_assert_int_eq(pop_is(j, 8), -1); /* nothing there: conceal */
    live_jitter_destroy(j);
}
END_TEST

START_TEST(losses_late_and_duplicates)
{
    live_jitter *j = live_jitter_create(2, CB);
    ck_assert_int_eq(put(j, 0, 0), LIVE_JITTER_STORED);
    ck_assert_int_eq(put(j, 0, 0), LIVE_JITTER_DUPLICATE);
    ck_assert_int_eq(put(j, 2, 2), LIVE_JITTER_STORED);
    ck_assert_int_eq(pop_is(j, 0), 1);
    ck_assert_int_eq(pop_is(j, 1), -1);          /* 1 is lost */
    ck_assert_int_eq(put(j, 1, 1), LIVE_JITTER_LATE);
    ck_assert_int_eq(pop_is(j, 2), 1);
    ck_assert_uint_eq(live_jitter_next(j), 3);
    live_jitter_destroy(j);
}
END_TEST

START_TEST(joins_at_the_start_or_in_the_middle)
{
    /* frames 0 and 1 lost at the start: playout begins at frame 0 anyway */
    live_jitter *j = live_jitter_create(3, CB);
    ck_assert_int_eq(put(j, 2, 2), LIVE_JITTER_STORED);
    ck_assert_uint_eq(live_jitter_next(j), 0);
    ck_assert(live_jitter_origin(j) == 0);
    ck_assert_int_eq(pop_is(j, 0), -1);
    ck_assert_int_eq(pop_is(j, 1), -1);
    ck_assert_int_eq(pop_is(j, 2), 1);
    live_jitter_destroy(j);
    /* joining a stream that has been running: start where we are */
    j = live_jitter_create(3, CB);
    ck_assert_int_eq(put(j, 5000, 5000), LIVE_JITTER_STORED);
    ck_assert_uint_eq(live_jitter_next(j), 5000);
    ck_assert(live_jitter_origin(j) == 5000u * HOP);
    ck_assert_int_eq(pop_is(j, 5000), 1);
    live_jitter_destroy(j);
}
END_TEST

START_TEST(sequence_numbers_wrap)
{
    live_jitter *j = live_jitter_create(3, CB);
    uint32_t first = UINT32_MAX - 5;
    uint64_t frame = 1000000;
    for (uint32_t k = 0; k < 12; k++) {
        uint32_t seq = first + k; /* wraps to 0 after 5 */
        if (k == 7)
            continue; /* lost */
        ck_assert_int_eq(put(j, seq, frame + k), LIVE_JITTER_STORED);
    }
    for (uint32_t k = 0; k < 12; k++)
        ck_assert_int_eq(pop_is(j, first + k), k == 7 ? -1 : 1);
    ck_assert(live_jitter_next(j) == (uint64_t)first + 12);
    live_jitter_destroy(j);
}
END_TEST

START_TEST(a_restart_is_far)
{
    live_jitter *j = live_jitter_create(3, CB);
    for (uint32_t s = 0; s < 500; s++) {
        ck_assert_int_eq(put(j, s, s), LIVE_JITTER_STORED);
        ck_assert_int_eq(pop_is(j, s), 1);
    }
    ck_assert_int_eq(put(j, 0, 0), LIVE_JITTER_FAR);        /* sender restarted */
    ck_assert_int_eq(put(j, 500 + 100000, 0), LIVE_JITTER_FAR);
    live_jitter_reset(j);
    ck_assert(!live_jitter_started(j));
    ck_assert_int_eq(put(j, 0, 0), LIVE_JITTER_STORED);
    ck_assert_int_eq(pop_is(j, 0), 1);
    live_jitter_destroy(j);
}
END_TEST

START_TEST(random_order_and_loss)
{
    unsigned seed = tu_seed();
    srand(seed);
    enum { N = 5000, DEPTH = 4 };
    live_jitter *j = live_jitter_create(DEPTH, CB);
    /* each packet is delayed by up to DEPTH frames and 10 % are lost; a
     * frame is played once DEPTH newer ones could have arrived */
    int *arrive_at = malloc(sizeof(int) * N);
    for (int s = 0; s < N; s++)
        arrive_at[s] = rand() % 10 == 0 ? -1 : s + rand() % (DEPTH + 1);
    int played = 0, heard = 0, lost = 0;
    for (int now = 0; now < N + 2 * DEPTH; now++) {
        for (int s = now - DEPTH; s <= now; s++)
            if (s >= 0 && s < N && arrive_at[s] == now)
                ck_assert_int_eq(put(j, (uint32_t)s, (uint64_t)s), LIVE_JITTER_STORED);
        while (live_jitter_started(j) && played <= now - DEPTH && played < N) {
            int r = pop_is(j, (uint32_t)played);
            ck_assert_msg(r != 0, "seed %u: wrong codes for frame %d", seed, played);
            heard += r == 1;
            lost += r == -1;
            ck_assert_msg((r == -1) == (arrive_at[played] < 0), "seed %u frame %d", seed, played);
            played++;
        }
    }
    ck_assert_int_eq(heard + lost, N);
    free(arrive_at);
    live_jitter_destroy(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("live_jitter");
    TCase *tc = tcase_create("jitter");
    tcase_add_test(tc, reorders_within_the_buffer);
    tcase_add_test(tc, losses_late_and_duplicates);
    tcase_add_test(tc, joins_at_the_start_or_in_the_middle);
    tcase_add_test(tc, sequence_numbers_wrap);
    tcase_add_test(tc, a_restart_is_far);
    tcase_add_test(tc, random_order_and_loss);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
