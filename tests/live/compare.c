/* live_compare: how close two recordings of the same speech are, after
 * lining them up.  Used by tests/test_live.sh and bench/live.
 *
 *   live_compare REFERENCE TEST [--rate R] [--max-lag SECONDS]
 *
 * Both files are read as mono at R Hz (default 16000).  The lag of TEST
 * behind REFERENCE is the peak of their cross-correlation (by FFT) within
 * +-max-lag (default 1 s).  Over the samples the two share after aligning:
 *   snr_db   10 log10(|ref|^2 / |test - ref|^2): a waveform match
 *   lsd_db   log-spectral distance: RMS over bins up to 90 % of Nyquist of
 *            the dB difference of the power spectra (floored 60 dB under the
 *            frame's peak),
 *            averaged over 32 ms frames where the reference is not silent:
 *            a match of what is heard, which concealment and a neural
 *            codec's phase leave meaningful
 * Prints one JSON line: {"lag":..,"snr_db":..,"lsd_db":..,"overlap":..,
 * "len_ref":..,"len_test":..}.  Exit status 1 on unreadable input. */
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/io.h"

static size_t next_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Lag of b behind a maximising sum a[i] * b[i + lag], |lag| <= max_lag. */
static long best_lag(const float *a, size_t na, const float *b, size_t nb, long max_lag)
{
    size_t n = next_pow2(na + nb), bins = n / 2 + 1;
    float *x = fftwf_alloc_real(n), *y = fftwf_alloc_real(n);
    fftwf_complex *fx = fftwf_alloc_complex(bins), *fy = fftwf_alloc_complex(bins);
    fftwf_plan px = fftwf_plan_dft_r2c_1d((int)n, x, fx, FFTW_ESTIMATE);
    fftwf_plan py = fftwf_plan_dft_r2c_1d((int)n, y, fy, FFTW_ESTIMATE);
    fftwf_plan back = fftwf_plan_dft_c2r_1d((int)n, fx, x, FFTW_ESTIMATE);
    memset(x, 0, sizeof(float) * n);
    memset(y, 0, sizeof(float) * n);
    memcpy(x, a, sizeof(float) * na);
    memcpy(y, b, sizeof(float) * nb);
    fftwf_execute(px);
    fftwf_execute(py);
    for (size_t k = 0; k < bins; k++) { /* conj(A) * B: correlation of b against a */
        float re = fx[k][0] * fy[k][0] + fx[k][1] * fy[k][1];
        float im = fx[k][0] * fy[k][1] - fx[k][1] * fy[k][0];
        fx[k][0] = re;
        fx[k][1] = im;
    }
    fftwf_execute(back);
    long best = 0;
    float peak = -INFINITY;
    for (long lag = -max_lag; lag <= max_lag; lag++) {
        float v = x[(size_t)((lag + (long)n) % (long)n)];
        if (v > peak) {
            peak = v;
            best = lag;
        }
    }
    fftwf_destroy_plan(px);
    fftwf_destroy_plan(py);
    fftwf_destroy_plan(back);
    fftwf_free(x);
    fftwf_free(y);
    fftwf_free(fx);
    fftwf_free(fy);
    return best;
}

static double snr_db(const float *a, const float *b, size_t n)
{
    double sig = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        sig += (double)a[i] * a[i];
        err += ((double)b[i] - a[i]) * ((double)b[i] - a[i]);
    }
    return err > 0 ? 10 * log10(sig / err) : 999.0;
}

/* Power spectrum of a Hann-windowed frame, in dB with a -100 dB floor. */
static void power_db(const float *frame, size_t n, float *buf, fftwf_complex *spec,
                     fftwf_plan plan, double *out)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = frame[i] * (float)(0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)n));
    fftwf_execute(plan);
    for (size_t k = 0; k <= n / 2; k++) {
        double p = (double)spec[k][0] * spec[k][0] + (double)spec[k][1] * spec[k][1];
        out[k] = 10 * log10(p + 1e-10);
    }
}

static double lsd_db(const float *a, const float *b, size_t n, int rate)
{
    size_t len = next_pow2((size_t)rate * 32 / 1000), bins = len / 2 + 1;
    /* up to 90 % of Nyquist: above it a resampler's transition band, not
     * the audio, decides the level */
    size_t used = (bins - 1) * 9 / 10 + 1;
    float *buf = fftwf_alloc_real(len);
    fftwf_complex *spec = fftwf_alloc_complex(bins);
    fftwf_plan plan = fftwf_plan_dft_r2c_1d((int)len, buf, spec, FFTW_ESTIMATE);
    double *pa = malloc(sizeof(double) * bins), *pb = malloc(sizeof(double) * bins);
    double total = 0, loudest = -INFINITY;
    size_t frames = 0;
    /* silence threshold: 50 dB below the loudest reference frame */
    for (size_t at = 0; at + len <= n; at += len / 2) {
        power_db(a + at, len, buf, spec, plan, pa);
        double e = 0;
        for (size_t k = 0; k < bins; k++)
            e += pow(10, pa[k] / 10);
        loudest = fmax(loudest, 10 * log10(e + 1e-10));
    }
    for (size_t at = 0; at + len <= n; at += len / 2) {
        power_db(a + at, len, buf, spec, plan, pa);
        double e = 0, d = 0;
        for (size_t k = 0; k < bins; k++)
            e += pow(10, pa[k] / 10);
        if (10 * log10(e + 1e-10) < loudest - 50)
            continue;
        power_db(b + at, len, buf, spec, plan, pb);
        /* bins far below the frame's peak are inaudible and their dB values
         * are noise: floor both spectra 60 dB under the reference's peak */
        double peak = -INFINITY;
        for (size_t k = 0; k < used; k++)
            peak = fmax(peak, pa[k]);
        for (size_t k = 0; k < used; k++) {
            double x = fmax(pa[k], peak - 60), y = fmax(pb[k], peak - 60);
            d += (x - y) * (x - y);
        }
        total += sqrt(d / (double)used);
        frames++;
    }
    fftwf_destroy_plan(plan);
    fftwf_free(buf);
    fftwf_free(spec);
    free(pa);
    free(pb);
    return frames ? total / (double)frames : 0.0;
}

int main(int argc, char **argv)
{
    int rate = 16000;
    double max_lag_s = 1.0;
    const char *paths[2] = {NULL, NULL};
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-lag") && i + 1 < argc)
            max_lag_s = atof(argv[++i]);
        else if (n_paths < 2)
            paths[n_paths++] = argv[i];
    }
    if (n_paths != 2 || rate < 1000) {
        fprintf(stderr, "usage: live_compare REFERENCE TEST [--rate R] [--max-lag SECONDS]\n");
        return 2;
    }
    float *x[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    char detail[1024];
    for (int i = 0; i < 2; i++)
        if (tokvox_audio_read(paths[i], rate, &x[i], &n[i], NULL, detail, sizeof detail)) {
            fprintf(stderr, "live_compare: %s\n", detail);
            return 1;
        }
    long lag = best_lag(x[0], n[0], x[1], n[1], (long)(max_lag_s * rate));
    /* a[i] lines up with b[i + lag] */
    size_t a0 = lag < 0 ? (size_t)-lag : 0, b0 = lag > 0 ? (size_t)lag : 0, overlap = 0;
    if (a0 <= n[0] && b0 <= n[1])
        overlap = n[0] - a0 < n[1] - b0 ? n[0] - a0 : n[1] - b0;
    printf("{\"lag\":%ld,\"snr_db\":%.2f,\"lsd_db\":%.3f,\"overlap\":%zu,\"len_ref\":%zu,"
           "\"len_test\":%zu}\n",
           lag, overlap ? snr_db(x[0] + a0, x[1] + b0, overlap) : 0.0,
           overlap ? lsd_db(x[0] + a0, x[1] + b0, overlap, rate) : 0.0, overlap, n[0], n[1]);
    free(x[0]);
    free(x[1]);
    return 0;
}
