/* Compute kernels: the scalar reference, the scalar variant, the run-time
 * choice of variant and the thread pool behind the entry points.  The SIMD
 * variants live in kernels_avx2.c and kernels_avx512.c. */
#include "kernels.h"
#include "profile.h"
#include "tokvox/tokvox.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef TK_HAVE_X86_VARIANTS
#include <cpuid.h>
#endif

/* ---- the scalar reference ------------------------------------------------
 * Straightforward loops; the innermost loop always runs over a contiguous
 * input row, summing in index order. */

static float dot(const float *a, const float *b, size_t n)
{
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static void gemm_scalar(const float *x, size_t frames, size_t in, const float *w, const float *b,
                        size_t out, float *y, size_t ldy)
{
    for (size_t t = 0; t < frames; t++) {
        const float *row = x + t * in;
        float *dst = y + t * ldy;
        for (size_t o = 0; o < out; o++)
            dst[o] = (b ? b[o] : 0.0f) + dot(row, w + o * in, in);
    }
}

void tk_linear_scalar(const float *x, size_t frames, size_t in, const float *w, const float *b,
                      size_t out, float *y)
{
    gemm_scalar(x, frames, in, w, b, out, y, out);
}

void tk_conv1d_causal_scalar(const float *x, size_t frames, size_t in, const float *w,
                             const float *b, size_t out, size_t kernel, size_t groups, float *y)
{
    size_t in_per_group = in / groups, out_per_group = out / groups;
    for (size_t t = 0; t < frames; t++) {
        float *dst = y + t * out;
        for (size_t o = 0; o < out; o++) {
            size_t first_in = (o / out_per_group) * in_per_group;
            const float *wo = w + o * in_per_group * kernel;
            float sum = b ? b[o] : 0.0f;
            for (size_t k = 0; k < kernel; k++) {
                const float *src = x + (t + k) * in + first_in;
                for (size_t i = 0; i < in_per_group; i++)
                    sum += wo[i * kernel + k] * src[i];
            }
            dst[o] = sum;
        }
    }
}

void tk_layer_norm_scalar(float *x, size_t frames, size_t channels, const float *gamma,
                          const float *beta, float eps)
{
    for (size_t t = 0; t < frames; t++) {
        float *row = x + t * channels;
        double mean = 0.0, var = 0.0;
        for (size_t c = 0; c < channels; c++)
            mean += row[c];
        mean /= (double)channels;
        for (size_t c = 0; c < channels; c++)
            var += (row[c] - mean) * (row[c] - mean);
        var /= (double)channels;
        float scale = (float)(1.0 / sqrt(var + eps));
        for (size_t c = 0; c < channels; c++)
            row[c] = (float)(row[c] - mean) * scale * gamma[c] + beta[c];
    }
}

void tk_gelu_scalar(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void tk_nearest_scalar(const float *x, size_t n, const float *codewords, const float *norms,
                       size_t k, size_t dim, uint32_t *index)
{
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * dim;
        float best = FLT_MAX;
        uint32_t best_j = 0;
        for (size_t j = 0; j < k; j++) {
            /* |x|^2 is the same for every j, so it is left out */
            float d = norms[j] - 2.0f * dot(row, codewords + j * dim, dim);
            if (d < best) {
                best = d;
                best_j = (uint32_t)j;
            }
        }
        index[r] = best_j;
    }
}

float tk_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) /* inf, NaN */
        bits = sign | 0x7f800000u | (mant << 13);
    else if (exp) /* normal */
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    else if (mant) { /* subnormal: normalise */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    } else
        bits = sign;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Each weight row is widened once into a stack buffer and then used for
 * every frame: the sums are gemm_scalar's, term by term. */
static void gemm_f16_scalar(const float *x, size_t frames, size_t in, const uint16_t *w,
                            const float *b, size_t out, float *y, size_t ldy)
{
    float row[TK_STACK_FLOATS];
    for (size_t o = 0; o < out; o++) {
        const uint16_t *wo = w + o * in;
        int widened = in <= TK_STACK_FLOATS;
        for (size_t i = 0; widened && i < in; i++)
            row[i] = tk_half_to_float(wo[i]);
        for (size_t t = 0; t < frames; t++) {
            const float *xt = x + t * in;
            float sum = 0.0f;
            if (widened)
                sum = dot(xt, row, in);
            else
                for (size_t i = 0; i < in; i++)
                    sum += xt[i] * tk_half_to_float(wo[i]);
            y[t * ldy + o] = (b ? b[o] : 0.0f) + sum;
        }
    }
}

void tk_linear_f16_scalar(const float *x, size_t frames, size_t in, const uint16_t *w,
                          const float *b, size_t out, float *y)
{
    gemm_f16_scalar(x, frames, in, w, b, out, y, out);
}

/* ---- the scalar variant: exactly the reference ------------------------------ */

static void dwconv_scalar(const float *x, size_t frames, size_t channels, const float *w,
                          const float *b, size_t kernel, float *y)
{
    tk_conv1d_causal_scalar(x, frames, channels, w, b, channels, kernel, channels, y);
}

static void conv_scalar(const float *x, size_t frames, size_t in, const float *w, const float *b,
                        size_t out, size_t kernel, float *y)
{
    tk_conv1d_causal_scalar(x, frames, in, w, b, out, kernel, 1, y);
}

const tk_impl tk_impl_scalar = {
    .name = "scalar",
    .gemm = gemm_scalar,
    .gemm_f16 = gemm_f16_scalar,
    .dwconv = dwconv_scalar,
    .conv = conv_scalar,
    .layer_norm = tk_layer_norm_scalar,
    .gelu = tk_gelu_scalar,
    .nearest = tk_nearest_scalar,
};

/* ---- choosing a variant ---------------------------------------------------- */

#if defined(TK_HAVE_X86_VARIANTS)
/* AVX2 + FMA + F16C (the half-weight loads); every AVX2 CPU has F16C, but
 * it is checked, with cpuid as compilers disagree on naming it. */
static int cpu_has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 29)))
        return 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

const tk_impl *tk_impl_get(const char *name)
{
    int best = !name || strcmp(name, "auto") == 0;
#if defined(TK_HAVE_X86_VARIANTS) && defined(TK_WITH_AVX512)
    if ((best || strcmp(name, "avx512") == 0) && __builtin_cpu_supports("avx512f") &&
        cpu_has_avx2())
        return &tk_impl_avx512;
#endif
#if defined(TK_HAVE_X86_VARIANTS)
    if ((best || strcmp(name, "avx2") == 0) && cpu_has_avx2())
        return &tk_impl_avx2;
#endif
    if (best || strcmp(name, "scalar") == 0)
        return &tk_impl_scalar;
    return NULL;
}

static _Atomic(const tk_impl *) active;
static atomic_int n_threads;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    const char *want = getenv("TOKVOX_KERNELS");
    const tk_impl *impl = want && *want ? tk_impl_get(want) : NULL;
    atomic_store(&active, impl ? impl : tk_impl_get("auto"));
    const char *threads = getenv("TOKVOX_THREADS");
    int n = threads ? atoi(threads) : 1;
    if (atomic_load(&n_threads) == 0)
        atomic_store(&n_threads, n < 1 ? 1 : n > TK_MAX_THREADS ? TK_MAX_THREADS : n);
}

static const tk_impl *impl(void)
{
    pthread_once(&init_once, init);
    return atomic_load_explicit(&active, memory_order_relaxed);
}

const tk_impl *tk_impl_active(void) { return impl(); }

const char *tokvox_kernels_name(void) { return impl()->name; }

int tk_impl_select(const char *name)
{
    impl();
    const tk_impl *chosen = tk_impl_get(name);
    if (!chosen)
        return -1;
    atomic_store(&active, chosen);
    return 0;
}

void tk_set_threads(int n)
{
    pthread_once(&init_once, init);
    atomic_store(&n_threads, n < 1 ? 1 : n > TK_MAX_THREADS ? TK_MAX_THREADS : n);
}

int tk_get_threads(void)
{
    pthread_once(&init_once, init);
    return atomic_load(&n_threads);
}

int tokvox_set_threads(int n)
{
    tk_set_threads(n);
    return tk_get_threads();
}

int tokvox_get_threads(void) { return tk_get_threads(); }

/* ---- the thread pool ----------------------------------------------------------
 * One job at a time: a job is `parts` contiguous ranges of items, claimed
 * under the lock by the caller and the workers.  A caller that finds the
 * pool busy (another session's kernel) runs its job alone: results do not
 * depend on who computes which range. */

typedef void (*range_fn)(void *ctx, size_t begin, size_t end);

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t thread[TK_MAX_THREADS];
    int workers, stop;
    unsigned long generation;
    range_fn fn;
    void *ctx;
    size_t items, step;   /* part p covers [p*step, min((p+1)*step, items)) */
    int parts, next, finished;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;

/* Run the parts of the current job until none is left; called with the lock. */
static void run_parts(void)
{
    while (pool.next < pool.parts) {
        int p = pool.next++;
        range_fn fn = pool.fn;
        void *ctx = pool.ctx;
        size_t begin = (size_t)p * pool.step, end = begin + pool.step;
        end = end < pool.items ? end : pool.items;
        pthread_mutex_unlock(&pool.lock);
        fn(ctx, begin, end);
        pthread_mutex_lock(&pool.lock);
        if (++pool.finished == pool.parts)
            pthread_cond_broadcast(&pool.done);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    unsigned long seen = pool.generation;
    for (;;) {
        while (pool.generation == seen && !pool.stop)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stop)
            break;
        seen = pool.generation;
        run_parts();
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

__attribute__((destructor)) static void pool_shutdown(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.wake);
    int workers = pool.workers;
    pool.workers = 0;
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < workers; i++)
        pthread_join(pool.thread[i], NULL);
}

/* fn over [0, items) in up to tk_get_threads() ranges whose bounds are
 * multiples of `align`.  Small jobs (below `work`, in multiply-adds) stay on
 * the calling thread. */
#define PARALLEL_MIN_WORK (1u << 20)

static void parallel_for(range_fn fn, void *ctx, size_t items, size_t align, double work)
{
    int threads = tk_get_threads();
    size_t max_parts = (items + align - 1) / align;
    if (threads > 1 && (size_t)threads > max_parts)
        threads = (int)max_parts;
    if (threads <= 1 || work < PARALLEL_MIN_WORK || pthread_mutex_trylock(&pool_busy) != 0) {
        fn(ctx, 0, items);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    while (pool.workers < threads - 1 && !pool.stop &&
           pthread_create(&pool.thread[pool.workers], NULL, worker, NULL) == 0)
        pool.workers++;
    size_t step = (max_parts + (size_t)threads - 1) / (size_t)threads * align;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.items = items;
    pool.step = step;
    pool.parts = (int)((items + step - 1) / step);
    pool.next = 0;
    pool.finished = 0;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    run_parts();
    while (pool.finished < pool.parts)
        pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool_busy);
}

/* ---- the entry points ---------------------------------------------------------- */

typedef struct linear_job {
    const tk_impl *impl;
    const float *x, *w, *b;
    size_t frames, in, out;
    float *y;
} linear_job;

static void linear_columns(void *ctx, size_t begin, size_t end)
{
    const linear_job *j = ctx;
    j->impl->gemm(j->x, j->frames, j->in, j->w + begin * j->in, j->b ? j->b + begin : NULL,
                  end - begin, j->y + begin, j->out);
}

static void linear(const tk_impl *k, const float *x, size_t frames, size_t in, const float *w,
                   const float *b, size_t out, float *y)
{
    linear_job job = {k, x, w, b, frames, in, out, y};
    parallel_for(linear_columns, &job, out, 16, (double)frames * (double)in * (double)out);
}

void tk_linear(const float *x, size_t frames, size_t in, const float *w, const float *b,
               size_t out, float *y)
{
    double t0 = tk_profile_begin();
    if (frames && out)
        linear(impl(), x, frames, in, w, b, out, y);
    tk_profile_end(t0, TK_PROFILE_LINEAR, in, out, 0, 0, frames, (double)frames * in * out);
}

typedef struct linear_f16_job {
    const tk_impl *impl;
    const float *x, *b;
    const uint16_t *w;
    size_t frames, in, out;
    float *y;
} linear_f16_job;

static void linear_f16_columns(void *ctx, size_t begin, size_t end)
{
    const linear_f16_job *j = ctx;
    j->impl->gemm_f16(j->x, j->frames, j->in, j->w + begin * j->in, j->b ? j->b + begin : NULL,
                      end - begin, j->y + begin, j->out);
}

void tk_linear_f16(const float *x, size_t frames, size_t in, const uint16_t *w, const float *b,
                   size_t out, float *y)
{
    double t0 = tk_profile_begin();
    linear_f16_job job = {impl(), x, b, w, frames, in, out, y};
    if (frames && out)
        parallel_for(linear_f16_columns, &job, out, 16, (double)frames * in * (double)out);
    tk_profile_end(t0, TK_PROFILE_LINEAR_F16, in, out, 0, 0, frames, (double)frames * in * out);
}

/* A standard causal conv is a linear over the input with its kernel taps
 * interleaved: w is [out][in][kernel], so row t of the interleaved input is
 * x[t + k][i] at i * kernel + k. */
static void conv_as_linear(const tk_impl *k, const float *x, size_t frames, size_t in,
                           const float *w, const float *b, size_t out, size_t kernel, float *y)
{
    float buf[TK_STACK_FLOATS];
    size_t row = in * kernel, chunk = TK_STACK_FLOATS / row;
    for (size_t t0 = 0; t0 < frames; t0 += chunk) {
        size_t n = frames - t0 < chunk ? frames - t0 : chunk;
        for (size_t t = 0; t < n; t++)
            for (size_t tap = 0; tap < kernel; tap++) {
                const float *src = x + (t0 + t + tap) * in;
                float *dst = buf + t * row + tap;
                for (size_t i = 0; i < in; i++)
                    dst[i * kernel] = src[i];
            }
        linear(k, buf, n, row, w, b, out, y + t0 * out);
    }
}

void tk_conv1d_causal(const float *x, size_t frames, size_t in, const float *w, const float *b,
                      size_t out, size_t kernel, size_t groups, float *y)
{
    const tk_impl *k = impl();
    if (!frames || !out || !groups)
        return;
    double t0 = tk_profile_begin();
    if (groups == in && groups == out && k->dwconv)
        k->dwconv(x, frames, in, w, b, kernel, y);
    else if (groups == 1 && k->conv)
        k->conv(x, frames, in, w, b, out, kernel, y);
    else if (groups == 1 && in * kernel <= TK_STACK_FLOATS)
        conv_as_linear(k, x, frames, in, w, b, out, kernel, y);
    else
        tk_conv1d_causal_scalar(x, frames, in, w, b, out, kernel, groups, y);
    tk_profile_end(t0, TK_PROFILE_CONV1D, in, out, kernel, groups, frames,
                   (double)frames * out * (double)(in / groups) * kernel);
}

void tk_layer_norm(float *x, size_t frames, size_t channels, const float *gamma,
                   const float *beta, float eps)
{
    double t0 = tk_profile_begin();
    impl()->layer_norm(x, frames, channels, gamma, beta, eps);
    tk_profile_end(t0, TK_PROFILE_LAYER_NORM, channels, 0, 0, 0, frames, 0.0);
}

typedef struct gelu_job {
    const tk_impl *impl;
    float *x;
} gelu_job;

static void gelu_range(void *ctx, size_t begin, size_t end)
{
    const gelu_job *j = ctx;
    j->impl->gelu(j->x + begin, end - begin);
}

/* Element-wise, so split anywhere (at multiples of 64 elements); the work
 * estimate counts ~16 operations per element. */
void tk_gelu(float *x, size_t n)
{
    double t0 = tk_profile_begin();
    gelu_job job = {impl(), x};
    if (n)
        parallel_for(gelu_range, &job, n, 64, 16.0 * (double)n);
    tk_profile_end(t0, TK_PROFILE_GELU, 0, 0, 0, 0, n, 0.0);
}

typedef struct nearest_job {
    const tk_impl *impl;
    const float *x, *codewords, *norms;
    size_t k, dim;
    uint32_t *index;
} nearest_job;

static void nearest_rows(void *ctx, size_t begin, size_t end)
{
    const nearest_job *j = ctx;
    j->impl->nearest(j->x + begin * j->dim, end - begin, j->codewords, j->norms, j->k, j->dim,
                     j->index + begin);
}

void tk_nearest(const float *x, size_t n, const float *codewords, const float *norms, size_t k,
                size_t dim, uint32_t *index)
{
    double t0 = tk_profile_begin();
    nearest_job job = {impl(), x, codewords, norms, k, dim, index};
    if (n)
        parallel_for(nearest_rows, &job, n, 4, (double)n * (double)k * (double)dim);
    tk_profile_end(t0, TK_PROFILE_NEAREST, dim, k, 0, 0, n, (double)n * k * dim);
}

static const tokvox_kernels table = {
    .size = sizeof(tokvox_kernels),
    .linear = tk_linear,
    .conv1d_causal = tk_conv1d_causal,
    .layer_norm = tk_layer_norm,
    .gelu = tk_gelu,
    .nearest = tk_nearest,
    .linear_f16 = tk_linear_f16,
};

/* Without SIMD, widening halves costs more than reading floats saves, so
 * plugins are not offered linear_f16 (the ABI lets it be NULL). */
static const tokvox_kernels table_no_f16 = {
    .size = sizeof(tokvox_kernels),
    .linear = tk_linear,
    .conv1d_causal = tk_conv1d_causal,
    .layer_norm = tk_layer_norm,
    .gelu = tk_gelu,
    .nearest = tk_nearest,
    .linear_f16 = NULL,
};

const tokvox_kernels *tk_kernels(void)
{
    return impl() == &tk_impl_scalar ? &table_no_f16 : &table;
}
