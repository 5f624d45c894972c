/* tokvox_profile_*: sums of the time spent per kernel and shape (profile.h). */
#include "profile.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tokvox/tokvox.h"

/* Distinct (kind, shape) pairs kept: a model has a few dozen; calls with a
 * shape beyond the table are counted in `dropped` (never silently lost). */
#define PROFILE_SLOTS 256

typedef struct slot {
    tk_profile_kind kind;
    size_t a, b, c, d;
    uint64_t calls, frames;
    double macs, seconds;
} slot;

atomic_int tk_profile_enabled;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot slots[PROFILE_SLOTS];
static size_t used;
static uint64_t dropped;

static const char *const kind_names[TK_PROFILE_KINDS] = {
    [TK_PROFILE_LINEAR] = "linear",
    [TK_PROFILE_LINEAR_F16] = "linear_f16",
    [TK_PROFILE_CONV1D] = "conv1d_causal",
    [TK_PROFILE_LAYER_NORM] = "layer_norm",
    [TK_PROFILE_GELU] = "gelu",
    [TK_PROFILE_NEAREST] = "nearest",
    [TK_PROFILE_FFT_FORWARD] = "fft_forward",
    [TK_PROFILE_FFT_INVERSE] = "fft_inverse",
};

double tk_profile_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1.0 + (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; /* > 0 even at boot */
}

void tk_profile_add(tk_profile_kind kind, size_t a, size_t b, size_t c, size_t d, size_t frames,
                    double macs, double seconds)
{
    pthread_mutex_lock(&lock);
    size_t i = 0;
    while (i < used && !(slots[i].kind == kind && slots[i].a == a && slots[i].b == b &&
                         slots[i].c == c && slots[i].d == d))
        i++;
    if (i == used && used < PROFILE_SLOTS)
        slots[used++] = (slot){.kind = kind, .a = a, .b = b, .c = c, .d = d};
    if (i < used) {
        slots[i].calls++;
        slots[i].frames += frames;
        slots[i].macs += macs;
        slots[i].seconds += seconds;
    } else {
        dropped++;
    }
    pthread_mutex_unlock(&lock);
}

void tokvox_profile_enable(int on)
{
    pthread_mutex_lock(&lock);
    if (on) {
        used = 0;
        dropped = 0;
    }
    atomic_store(&tk_profile_enabled, on != 0);
    pthread_mutex_unlock(&lock);
}

/* The shape as the kernel's own parameter names. */
static void describe(const slot *s, char *out, size_t size)
{
    switch (s->kind) {
    case TK_PROFILE_LINEAR:
    case TK_PROFILE_LINEAR_F16:
        snprintf(out, size, "in=%zu out=%zu", s->a, s->b);
        break;
    case TK_PROFILE_CONV1D:
        snprintf(out, size, "in=%zu out=%zu kernel=%zu groups=%zu", s->a, s->b, s->c, s->d);
        break;
    case TK_PROFILE_LAYER_NORM: snprintf(out, size, "channels=%zu", s->a); break;
    case TK_PROFILE_NEAREST: snprintf(out, size, "dim=%zu k=%zu", s->a, s->b); break;
    case TK_PROFILE_FFT_FORWARD:
    case TK_PROFILE_FFT_INVERSE: snprintf(out, size, "n_fft=%zu", s->a); break;
    default: snprintf(out, size, "%s", ""); break;
    }
}

/* tokvox_profile_entry's size in its first version: frozen, later fields
 * go after `seconds`. */
#define ENTRY_SIZE_1 (offsetof(tokvox_profile_entry, seconds) + sizeof(double))

int tokvox_profile_get(size_t index, tokvox_profile_entry *entry)
{
    if (!entry || entry->size < ENTRY_SIZE_1)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    int err = index < used ? TOKVOX_OK : TOKVOX_ERR_INVALID_ARGUMENT;
    if (!err) {
        const slot *s = &slots[index];
        tokvox_profile_entry e = {.size = entry->size < sizeof e ? entry->size : sizeof e};
        snprintf(e.kernel, sizeof e.kernel, "%s", kind_names[s->kind]);
        describe(s, e.shape, sizeof e.shape);
        e.calls = s->calls;
        e.frames = s->frames;
        e.macs = s->macs;
        e.seconds = s->seconds;
        memcpy(entry, &e, e.size);
    }
    pthread_mutex_unlock(&lock);
    return err;
}

size_t tokvox_profile_count(uint64_t *dropped_calls)
{
    pthread_mutex_lock(&lock);
    size_t n = used;
    if (dropped_calls)
        *dropped_calls = dropped;
    pthread_mutex_unlock(&lock);
    return n;
}
