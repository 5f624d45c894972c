/* The receiver's jitter buffer: frames are stored by sequence number in a
 * ring of slots and taken out in order at the playout point; a frame that
 * is not there when its turn comes is concealed, one that comes after its
 * turn is late and dropped.
 *
 * Sequence numbers are 32 bits on the wire and unwrapped here into 64-bit
 * frame numbers relative to the playout point, so a stream may run past
 * 2^32 frames (994 days at 50 frames/s). */
#include <stdlib.h>
#include <string.h>

#include "live.h"

struct live_jitter {
    int depth, codebooks;
    uint64_t mask;           /* slots - 1 */
    int started;
    uint64_t next;           /* frame number to play next */
    uint64_t newest;         /* one past the highest frame number stored */
    uint64_t origin;         /* sample index of the first frame played */
    uint64_t *frame_no;      /* per slot: the frame it holds */
    unsigned char *valid;
    double *arrival;
    uint16_t *codes;         /* [slots][codebooks] */
};

live_jitter *live_jitter_create(int depth, int codebooks)
{
    if (depth < 0 || depth > 1000 || codebooks < 1)
        return NULL;
    live_jitter *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    /* room for the held-back frames, reordering past them and a margin */
    uint64_t slots = 64;
    while (slots < 4 * (uint64_t)depth + 16)
        slots <<= 1;
    j->depth = depth;
    j->codebooks = codebooks;
    j->mask = slots - 1;
    j->frame_no = calloc(slots, sizeof *j->frame_no);
    j->valid = calloc(slots, 1);
    j->arrival = calloc(slots, sizeof *j->arrival);
    j->codes = calloc(slots * (size_t)codebooks, sizeof *j->codes);
    if (!j->frame_no || !j->valid || !j->arrival || !j->codes) {
        live_jitter_destroy(j);
        return NULL;
    }
    return j;
}

void live_jitter_destroy(live_jitter *j)
{
    if (!j)
        return;
    free(j->frame_no);
    free(j->valid);
    free(j->arrival);
    free(j->codes);
    free(j);
}

void live_jitter_reset(live_jitter *j)
{
    memset(j->valid, 0, j->mask + 1);
    j->started = 0;
    j->next = j->newest = j->origin = 0;
}

/* The first packet fixes the playout point.  A receiver that is there from
 * the start (the timestamp says the stream is young) begins at the stream's
 * first frame, so frames lost before this one are concealed and the output
 * keeps its length; one that joins later begins here. */
static void start(live_jitter *j, uint32_t seq, uint64_t timestamp, int hop)
{
    uint64_t behind = timestamp / (uint64_t)hop;
    if (behind > (uint64_t)j->depth + 8 || behind > seq)
        behind = 0;
    j->next = j->newest = (uint64_t)seq - behind;
    j->origin = timestamp - behind * (uint64_t)hop;
    j->started = 1;
}

live_jitter_put_result live_jitter_put(live_jitter *j, uint32_t seq, uint64_t timestamp,
                                       int hop, const uint16_t *codes, double arrival)
{
    if (!j->started)
        start(j, seq, timestamp, hop);
    /* the frame number nearest the playout point with these low 32 bits */
    int64_t delta = (int32_t)(seq - (uint32_t)j->next);
    uint64_t slots = j->mask + 1;
    if (delta < 0)
        return (uint64_t)-delta > slots ? LIVE_JITTER_FAR : LIVE_JITTER_LATE;
    if ((uint64_t)delta >= slots)
        return LIVE_JITTER_FAR;
    uint64_t f = j->next + (uint64_t)delta, at = f & j->mask;
    if (j->valid[at] && j->frame_no[at] == f)
        return LIVE_JITTER_DUPLICATE;
    j->valid[at] = 1;
    j->frame_no[at] = f;
    j->arrival[at] = arrival;
    memcpy(j->codes + at * (uint64_t)j->codebooks, codes, sizeof(uint16_t) * (size_t)j->codebooks);
    if (f + 1 > j->newest)
        j->newest = f + 1;
    return LIVE_JITTER_STORED;
}

int live_jitter_started(const live_jitter *j) { return j->started; }

int live_jitter_pop(live_jitter *j, uint16_t *codes, double *arrival)
{
    uint64_t at = j->next & j->mask;
    int have = j->valid[at] && j->frame_no[at] == j->next;
    if (have) {
        memcpy(codes, j->codes + at * (uint64_t)j->codebooks,
               sizeof(uint16_t) * (size_t)j->codebooks);
        *arrival = j->arrival[at];
        j->valid[at] = 0;
    }
    j->next++;
    if (j->newest < j->next)
        j->newest = j->next;
    return have;
}

int live_jitter_span(const live_jitter *j) { return (int)(j->newest - j->next); }

uint64_t live_jitter_next(const live_jitter *j) { return j->next; }

uint64_t live_jitter_origin(const live_jitter *j) { return j->origin; }
