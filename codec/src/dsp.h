/* STFT analysis and synthesis with FFTW (private to libtokvox).
 *
 * One tk_stft per session: the FFTW plans and buffers are made once at
 * create time (the planner is not thread-safe, so plan creation is
 * serialised behind a lock) and executed with no allocation afterwards.
 * The window is the periodic sqrt-Hann, used for analysis and synthesis:
 * its square overlap-adds to exactly 1 at 50 % overlap, so
 * synthesis(analysis(x)) overlap-added at hop = n_fft/2 gives back x.
 * [one thread per handle]
 */
#ifndef TOKVOX_DSP_H
#define TOKVOX_DSP_H

#include <stddef.h>

typedef struct tk_stft tk_stft;

tk_stft *tk_stft_create(int n_fft, int *error);
void tk_stft_destroy(tk_stft *s);
int tk_stft_bins(const tk_stft *s);
const float *tk_stft_window(const tk_stft *s);

/* frame: n_fft samples (unwindowed) -> spectrum re/im, bins values each. */
void tk_stft_forward(tk_stft *s, const float *frame, float *re, float *im);
/* spectrum -> n_fft samples, inverse-transformed (1/n_fft scaled as numpy's
 * irfft) and multiplied by the synthesis window.  The imaginary parts of
 * the DC and Nyquist bins are ignored, as irfft does. */
void tk_stft_inverse(tk_stft *s, const float *re, const float *im, float *frame);

/* Front-end features: log(|X| + floor) of a frame, bins values. */
void tk_stft_log_magnitude(tk_stft *s, const float *frame, float floor, float *features);
/* Vocos head: log magnitude and phase (bins each) -> windowed time frame.
 * The magnitude is capped at 100 as in training. */
void tk_stft_from_mag_phase(tk_stft *s, const float *log_mag, const float *phase, float *frame);

/* Decode-time spectral post-filter (train/model.py, Codec.postfilter): a
 * synthesis spectrum's log magnitude gains strength * (envelope - tilt),
 * the moving averages of the log magnitude over envelope_bins and tilt_bins
 * bins (centred windows of odd width, shortened at the edges).  It deepens
 * the valleys between formants that training on a mel loss fills in. */
typedef struct tk_postfilter {
    float strength;      /* 0: off */
    int envelope_bins, tilt_bins;
} tk_postfilter;

/* log_mag (bins values) -> out (bins values, may not alias log_mag); sums:
 * bins + 1 doubles of scratch.  Allocates nothing. */
void tk_postfilter_apply(const tk_postfilter *pf, const float *log_mag, int bins, double *sums,
                         float *out);

#endif
