/* STFT analysis/synthesis (codec/src/dsp.c) against a naive double-precision
 * DFT, and the perfect-reconstruction property of the periodic sqrt-Hann
 * window at 50 % overlap that the codec's streaming synthesis relies on. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "testutil.h"
#include "tokvox/tokvox.h"

#define REL_TOL 1e-5

static unsigned seed;

static float uniform(void) { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

static tk_stft *make(int n_fft)
{
    int err = 1;
    tk_stft *s = tk_stft_create(n_fft, &err);
    ck_assert_msg(s, "tk_stft_create(%d) failed: %d", n_fft, err);
    ck_assert_int_eq(err, TOKVOX_OK);
    ck_assert_int_eq(tk_stft_bins(s), n_fft / 2 + 1);
    return s;
}

static float *random_signal(size_t n, float amplitude)
{
    float *x = malloc(sizeof(float) * n);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = amplitude * uniform();
    return x;
}

/* |a - b| / |b| over n values, 2-norms, in double */
static double rel_error(const float *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

static double rel_error_f(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static void check_rel(const char *what, int n_fft, double err, double tol)
{
    fprintf(stderr, "n_fft %4d %-34s relative error %.3g\n", n_fft, what, err);
    ck_assert_msg(err < tol, "n_fft %d %s: relative error %g (tolerance %g)", n_fft, what, err,
                  tol);
}

/* ---- forward against a naive DFT ------------------------------------- */

static void check_forward(int n_fft)
{
    tk_stft *s = make(n_fft);
    int bins = n_fft / 2 + 1;
    float *x = random_signal((size_t)n_fft, 1.0f);
    float *re = malloc(sizeof(float) * (size_t)bins), *im = malloc(sizeof(float) * (size_t)bins);
    double *ref_re = malloc(sizeof(double) * (size_t)bins);
    double *ref_im = malloc(sizeof(double) * (size_t)bins);
    tk_stft_forward(s, x, re, im);

    /* the window: periodic sqrt-Hann, computed here independently */
    const float *window = tk_stft_window(s);
    double werr = 0.0;
    for (int i = 0; i < n_fft; i++)
        werr = fmax(werr, fabs(window[i] - sqrt(0.5 - 0.5 * cos(2.0 * M_PI * i / n_fft))));
    ck_assert_msg(werr < 1e-6, "window differs from periodic sqrt-Hann by %g", werr);

    for (int k = 0; k < bins; k++) {
        double sr = 0.0, si = 0.0;
        for (int i = 0; i < n_fft; i++) {
            double w = sin(M_PI * i / n_fft) * x[i];
            double a = -2.0 * M_PI * (double)((long)k * i % n_fft) / n_fft;
            sr += w * cos(a);
            si += w * sin(a);
        }
        ref_re[k] = sr;
        ref_im[k] = si;
    }
    /* complex 2-norm error over all bins */
    double num = 0.0, den = 0.0;
    for (int k = 0; k < bins; k++) {
        double dr = re[k] - ref_re[k], di = im[k] - ref_im[k];
        num += dr * dr + di * di;
        den += ref_re[k] * ref_re[k] + ref_im[k] * ref_im[k];
    }
    check_rel("forward vs naive DFT", n_fft, sqrt(num / den), REL_TOL);
    /* and no single bin is far off relative to the spectrum's scale */
    double worst = 0.0, scale = sqrt(den / bins);
    for (int k = 0; k < bins; k++)
        worst = fmax(worst, hypot(re[k] - ref_re[k], im[k] - ref_im[k]) / scale);
    check_rel("forward worst bin / rms bin", n_fft, worst, 10 * REL_TOL);
    free(ref_re);
    free(ref_im);
    free(re);
    free(im);
    free(x);
    tk_stft_destroy(s);
}

START_TEST(forward_matches_naive_dft_640) { check_forward(640); }
END_TEST

START_TEST(forward_matches_naive_dft_512) { check_forward(512); }
END_TEST

/* ---- inverse ---------------------------------------------------------- */

static void check_roundtrip(int n_fft)
{
    tk_stft *s = make(n_fft);
    int bins = n_fft / 2 + 1;
    float *x = random_signal((size_t)n_fft, 1.0f), *y = malloc(sizeof(float) * (size_t)n_fft);
    float *re = malloc(sizeof(float) * (size_t)bins), *im = malloc(sizeof(float) * (size_t)bins);
    double *want = malloc(sizeof(double) * (size_t)n_fft);
    tk_stft_forward(s, x, re, im);
    tk_stft_inverse(s, re, im, y);
    for (int i = 0; i < n_fft; i++)
        want[i] = x[i] * (0.5 - 0.5 * cos(2.0 * M_PI * i / n_fft));
    check_rel("inverse(forward(x)) vs w^2 x", n_fft, rel_error(y, want, (size_t)n_fft), REL_TOL);
    free(want);
    free(re);
    free(im);
    free(y);
    free(x);
    tk_stft_destroy(s);
}

START_TEST(inverse_of_forward_is_window_squared)
{
    check_roundtrip(640);
    check_roundtrip(512);
    check_roundtrip(64);
}
END_TEST

/* Analysis + synthesis of frames hop = n_fft/2 apart, overlap-added, gives
 * back the signal wherever two frames overlap (all but the first and last
 * hop). */
static void check_overlap_add(int n_fft)
{
    tk_stft *s = make(n_fft);
    size_t n = (size_t)n_fft, hop = n / 2, bins = n / 2 + 1, frames = 12;
    size_t len = (frames + 1) * hop;
    float *x = random_signal(len, 0.8f), *out = calloc(len, sizeof(float));
    float *re = malloc(sizeof(float) * bins), *im = malloc(sizeof(float) * bins);
    float *frame = malloc(sizeof(float) * n);
    for (size_t t = 0; t < frames; t++) {
        tk_stft_forward(s, x + t * hop, re, im);
        tk_stft_inverse(s, re, im, frame);
        for (size_t i = 0; i < n; i++)
            out[t * hop + i] += frame[i];
    }
    /* the region covered by two frames: [hop, frames*hop) */
    check_rel("overlap-add reconstruction", n_fft,
              rel_error_f(out + hop, x + hop, (frames - 1) * hop), REL_TOL);
    /* also sample by sample, for amplitude-0.8 noise */
    float err = tu_max_abs_diff(out + hop, x + hop, (frames - 1) * hop);
    ck_assert_msg(err < 1e-5f, "n_fft %d overlap-add max abs error %g", n_fft, err);
    free(frame);
    free(re);
    free(im);
    free(out);
    free(x);
    tk_stft_destroy(s);
}

START_TEST(overlap_add_reconstructs_640) { check_overlap_add(640); }
END_TEST

START_TEST(overlap_add_reconstructs_512) { check_overlap_add(512); }
END_TEST

START_TEST(overlap_add_reconstructs_64) { check_overlap_add(64); }
END_TEST

/* ---- the model's front-end and head ---------------------------------- */

START_TEST(log_magnitude_matches)
{
    const int n_fft = 640, bins = n_fft / 2 + 1;
    const float log_floor = 1e-5f;
    tk_stft *s = make(n_fft);
    float *x = random_signal((size_t)n_fft, 1.0f);
    float re[321], im[321], feat[321];
    tk_stft_forward(s, x, re, im);
    tk_stft_log_magnitude(s, x, log_floor, feat);
    float worst = 0.0f;
    for (int k = 0; k < bins; k++) {
        double want = log(hypot(re[k], im[k]) + log_floor);
        worst = fmaxf(worst, (float)fabs(feat[k] - want));
    }
    fprintf(stderr, "log magnitude max abs error %.3g\n", worst);
    ck_assert_msg(worst <= 1e-5f, "log magnitude differs by %g", worst);

    /* silence: every bin is log(floor) */
    memset(x, 0, sizeof(float) * (size_t)n_fft);
    tk_stft_log_magnitude(s, x, log_floor, feat);
    for (int k = 0; k < bins; k++)
        ck_assert_float_eq_tol(feat[k], logf(log_floor), 1e-6f);
    free(x);
    tk_stft_destroy(s);
}
END_TEST

START_TEST(from_mag_phase_is_inverse)
{
    const int sizes[] = {640, 512, 64};
    for (size_t c = 0; c < 3; c++) {
        int n_fft = sizes[c], bins = n_fft / 2 + 1;
        tk_stft *s = make(n_fft);
        float *x = random_signal((size_t)n_fft, 0.5f);
        float *re = malloc(sizeof(float) * (size_t)bins), *im = malloc(sizeof(float) * (size_t)bins);
        float *mag = malloc(sizeof(float) * (size_t)bins), *ph = malloc(sizeof(float) * (size_t)bins);
        float *a = malloc(sizeof(float) * (size_t)n_fft), *b = malloc(sizeof(float) * (size_t)n_fft);
        tk_stft_forward(s, x, re, im);
        for (int k = 0; k < bins; k++) {
            double m = hypot(re[k], im[k]);
            ck_assert(m > 0.0 && m < 100.0); /* below the head's magnitude cap */
            mag[k] = (float)log(m);
            ph[k] = (float)atan2(im[k], re[k]);
        }
        tk_stft_inverse(s, re, im, a);
        tk_stft_from_mag_phase(s, mag, ph, b);
        check_rel("from_mag_phase vs inverse", n_fft, rel_error_f(b, a, (size_t)n_fft), REL_TOL);
        free(a);
        free(b);
        free(mag);
        free(ph);
        free(re);
        free(im);
        free(x);
        tk_stft_destroy(s);
    }
}
END_TEST

/* The head caps the magnitude at 100 as training does. */
START_TEST(from_mag_phase_caps_magnitude)
{
    const int n_fft = 64, bins = 33;
    tk_stft *s = make(n_fft);
    float mag[33], ph[33], re[33], im[33], a[64], b[64];
    for (int k = 0; k < bins; k++) {
        mag[k] = k % 3 ? 10.0f : 1.0f; /* e^10 is capped, e^1 is not */
        ph[k] = 0.1f * (float)k;
        float m = fminf(expf(mag[k]), 100.0f);
        re[k] = m * cosf(ph[k]);
        im[k] = m * sinf(ph[k]);
    }
    tk_stft_from_mag_phase(s, mag, ph, a);
    tk_stft_inverse(s, re, im, b);
    check_rel("capped from_mag_phase", n_fft, rel_error_f(a, b, (size_t)n_fft), REL_TOL);
    tk_stft_destroy(s);
}
END_TEST

START_TEST(create_rejects_bad_sizes)
{
    const int bad[] = {0, 1, 3, 641, -2, -640, (1 << 16) + 2, 1 << 17, 1 << 30};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = 0;
        tk_stft *s = tk_stft_create(bad[i], &err);
        ck_assert_msg(!s, "tk_stft_create(%d) accepted", bad[i]);
        ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    }
    /* the smallest and a few sizes around the model's are fine */
    const int good[] = {2, 4, 64, 320, 640};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        tk_stft_destroy(make(good[i]));
    tk_stft_destroy(NULL);
}
END_TEST

int main(void)
{
    seed = tu_seed();
    srand(seed);
    Suite *s = suite_create("dsp");
    TCase *tc = tcase_create("stft");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_matches_naive_dft_640);
    tcase_add_test(tc, forward_matches_naive_dft_512);
    tcase_add_test(tc, inverse_of_forward_is_window_squared);
    tcase_add_test(tc, overlap_add_reconstructs_640);
    tcase_add_test(tc, overlap_add_reconstructs_512);
    tcase_add_test(tc, overlap_add_reconstructs_64);
    tcase_add_test(tc, log_magnitude_matches);
    tcase_add_test(tc, from_mag_phase_is_inverse);
    tcase_add_test(tc, from_mag_phase_caps_magnitude);
    tcase_add_test(tc, create_rejects_bad_sizes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
