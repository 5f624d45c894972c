/* gemm-peak: what one core of this machine can do, for bench/speed.
 *
 *   gemm-peak [--size N] [--threads N]
 *
 * Prints one JSON object with
 *   sgemm_gflops     the best of 5 single-precision N x N x N GEMMs through
 *                    OpenBLAS on one thread (default N = 2048): the practical
 *                    single-core peak the codec's speed is compared with;
 *   fma_loop_*       a loop of independent FMAs on registers (AVX2, and
 *                    AVX-512 where present): the arithmetic peak at the clock
 *                    the core really runs, which /proc/cpuinfo's MHz need not be;
 *   fma_loop_avx2_threads_gflops  the AVX2 loop on --threads threads at once
 *                    (default 2), all cores together: how much a second thread
 *                    can add on this machine at all.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double sgemm_gflops(int n)
{
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn);
    float *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) {
        fprintf(stderr, "gemm-peak: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 17) * 0.01f;
        b[i] = (float)(i % 13) * 0.02f;
    }
    double best = 1e30;
    for (int r = 0; r < 6; r++) { /* the first run warms up */
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double t = now() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

#if defined(__x86_64__)
#define FMA_ITERS 20000000L

__attribute__((target("avx2,fma"))) static double fma_avx2(void)
{
    __m256 acc[12], m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    double t0 = now();
    for (long it = 0; it < FMA_ITERS; it++) {
        _Pragma("GCC unroll 12")
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, c);
    }
    double t = now() - t0;
    float sink[8];
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(sink, s);
    if (sink[0] == 12345.0f)
        puts("");
    return 12.0 * 8 * 2 * FMA_ITERS / t * 1e-9;
}

static void *fma_thread(void *arg)
{
    *(double *)arg = fma_avx2();
    return NULL;
}

/* Wall-clock GFLOP/s of the AVX2 loop on n threads at once. */
static double fma_avx2_threads(int n)
{
    pthread_t t[64];
    double each[64];
    int started = 0;
    double t0 = now();
    for (; started < n - 1; started++)
        if (pthread_create(&t[started], NULL, fma_thread, &each[started]))
            break;
    fma_avx2();
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    double wall = now() - t0;
    return (started + 1) * 12.0 * 8 * 2 * FMA_ITERS / wall * 1e-9;
}

__attribute__((target("avx512f"))) static double fma_avx512(void)
{
    __m512 acc[12], m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_set1_ps((float)i);
    double t0 = now();
    for (long it = 0; it < FMA_ITERS; it++) {
        _Pragma("GCC unroll 12")
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, c);
    }
    double t = now() - t0;
    float sink[16];
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, acc[i]);
    _mm512_storeu_ps(sink, s);
    if (sink[0] == 12345.0f)
        puts("");
    return 12.0 * 16 * 2 * FMA_ITERS / t * 1e-9;
}
#endif

int main(int argc, char **argv)
{
    int n = 2048, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: gemm-peak [--size N] [--threads N]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "gemm-peak: --threads wants 1..64\n");
        return 2;
    }
    if (n < 16 || n > 16384) {
        fprintf(stderr, "gemm-peak: --size wants 16..16384\n");
        return 2;
    }
    openblas_set_num_threads(1);
    printf("{\n  \"sgemm_size\": %d,\n  \"sgemm_gflops\": %.2f", n, sgemm_gflops(n));
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        printf(",\n  \"fma_loop_avx2_gflops\": %.2f", fma_avx2());
        printf(",\n  \"threads\": %d,\n  \"fma_loop_avx2_threads_gflops\": %.2f", threads,
               fma_avx2_threads(threads));
    }
    if (__builtin_cpu_supports("avx512f"))
        printf(",\n  \"fma_loop_avx512_gflops\": %.2f", fma_avx512());
#endif
    printf("\n}\n");
    return 0;
}
