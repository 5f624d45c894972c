#include "dsp.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "profile.h"
#include "tokvox/tokvox.h"

/* FFTW's planner keeps global state; plans must be made one at a time. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

struct tk_stft {
    int n_fft, bins;
    float *window;
    float *time;            /* n_fft real samples */
    fftwf_complex *freq;    /* bins complex values */
    fftwf_plan forward, inverse;
};

tk_stft *tk_stft_create(int n_fft, int *error)
{
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (n_fft < 2 || n_fft > (1 << 16) || n_fft % 2)
        return NULL;
    *error = TOKVOX_ERR_NO_MEMORY;
    tk_stft *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n_fft = n_fft;
    s->bins = n_fft / 2 + 1;
    s->window = malloc(sizeof(float) * (size_t)n_fft);
    s->time = fftwf_malloc(sizeof(float) * (size_t)n_fft);
    s->freq = fftwf_malloc(sizeof(fftwf_complex) * (size_t)s->bins);
    if (!s->window || !s->time || !s->freq) {
        tk_stft_destroy(s);
        return NULL;
    }
    for (int i = 0; i < n_fft; i++)
        s->window[i] = (float)sin(M_PI * i / n_fft);
    pthread_mutex_lock(&planner_lock);
    s->forward = fftwf_plan_dft_r2c_1d(n_fft, s->time, s->freq, FFTW_ESTIMATE);
    s->inverse = fftwf_plan_dft_c2r_1d(n_fft, s->freq, s->time, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    if (!s->forward || !s->inverse) {
        tk_stft_destroy(s);
        return NULL;
    }
    *error = TOKVOX_OK;
    return s;
}

void tk_stft_destroy(tk_stft *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&planner_lock);
    if (s->forward)
        fftwf_destroy_plan(s->forward);
    if (s->inverse)
        fftwf_destroy_plan(s->inverse);
    pthread_mutex_unlock(&planner_lock);
    fftwf_free(s->time);
    fftwf_free(s->freq);
    free(s->window);
    free(s);
}

int tk_stft_bins(const tk_stft *s) { return s->bins; }

const float *tk_stft_window(const tk_stft *s) { return s->window; }

static void analyse(tk_stft *s, const float *frame)
{
    double t0 = tk_profile_begin();
    for (int i = 0; i < s->n_fft; i++)
        s->time[i] = frame[i] * s->window[i];
    fftwf_execute(s->forward);
    tk_profile_end(t0, TK_PROFILE_FFT_FORWARD, (size_t)s->n_fft, 0, 0, 0, 1, 0.0);
}

void tk_stft_forward(tk_stft *s, const float *frame, float *re, float *im)
{
    analyse(s, frame);
    for (int k = 0; k < s->bins; k++) {
        re[k] = s->freq[k][0];
        im[k] = s->freq[k][1];
    }
}

void tk_stft_log_magnitude(tk_stft *s, const float *frame, float floor, float *features)
{
    analyse(s, frame);
    for (int k = 0; k < s->bins; k++)
        features[k] = logf(hypotf(s->freq[k][0], s->freq[k][1]) + floor);
}

static void synthesise(tk_stft *s, float *frame)
{
    /* c2r ignores these imaginary parts anyway; zero them so it is explicit */
    s->freq[0][1] = 0.0f;
    s->freq[s->bins - 1][1] = 0.0f;
    double t0 = tk_profile_begin();
    fftwf_execute(s->inverse);
    float scale = 1.0f / (float)s->n_fft;
    for (int i = 0; i < s->n_fft; i++)
        frame[i] = s->time[i] * scale * s->window[i];
    tk_profile_end(t0, TK_PROFILE_FFT_INVERSE, (size_t)s->n_fft, 0, 0, 0, 1, 0.0);
}

void tk_stft_inverse(tk_stft *s, const float *re, const float *im, float *frame)
{
    for (int k = 0; k < s->bins; k++) {
        s->freq[k][0] = re[k];
        s->freq[k][1] = im[k];
    }
    synthesise(s, frame);
}

void tk_stft_from_mag_phase(tk_stft *s, const float *log_mag, const float *phase, float *frame)
{
    for (int k = 0; k < s->bins; k++) {
        float mag = fminf(expf(log_mag[k]), 100.0f);
        s->freq[k][0] = mag * cosf(phase[k]);
        s->freq[k][1] = mag * sinf(phase[k]);
    }
    synthesise(s, frame);
}

/* The mean of x[k - width/2 .. k + width/2] clipped to [0, bins), from the
 * prefix sums (sums[i] = x[0] + ... + x[i - 1]). */
static float window_mean(const double *sums, int bins, int k, int width)
{
    int lo = k - width / 2, hi = k + width / 2 + 1;
    lo = lo < 0 ? 0 : lo;
    hi = hi > bins ? bins : hi;
    return (float)((sums[hi] - sums[lo]) / (double)(hi - lo));
}

void tk_postfilter_apply(const tk_postfilter *pf, const float *log_mag, int bins, double *sums,
                         float *out)
{
    sums[0] = 0.0;
    for (int k = 0; k < bins; k++)
        sums[k + 1] = sums[k] + (double)log_mag[k];
    for (int k = 0; k < bins; k++) {
        float envelope = window_mean(sums, bins, k, pf->envelope_bins);
        float tilt = window_mean(sums, bins, k, pf->tilt_bins);
        out[k] = log_mag[k] + pf->strength * (envelope - tilt);
    }
}
