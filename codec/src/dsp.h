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

#endif
