/* Check suite for the io layer (io/audio.c, io/atomic.c): reading whole
 * files and streaming, writing, atomic files. */
#include "testutil.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define TWO_PI 6.283185307179586

/* ---- helpers -------------------------------------------------------------------- */

static char g_dir[256]; /* a fresh folder per test (each test runs in its own process) */

static void setup(void) { snprintf(g_dir, sizeof g_dir, "%s", tu_temp_dir()); }

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char sub[4096];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void teardown(void) { remove_tree(g_dir); }

/* g_dir/name in a ring of buffers. */
static const char *tmp_path(const char *name)
{
    static char paths[8][4096];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", g_dir, name);
    return p;
}

/* Number of entries in dir whose name contains needle (NULL: all). */
static int count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (!needle || strstr(e->d_name, needle))
            count++;
    }
    closedir(d);
    return count;
}

static void assert_no_temp(void)
{
    ck_assert_msg(count_entries(g_dir, ".tmp-") == 0, "a temporary file was left in %s", g_dir);
}

/* Writes frames (interleaved) with libsndfile. */
static void sf_write_file(const char *path, int format, int rate, int channels, const float *x,
                          sf_count_t frames)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    ck_assert_msg(sf != NULL, "cannot create %s: %s", path, sf_strerror(NULL));
    if (frames)
        ck_assert_int_eq(sf_writef_float(sf, x, frames), frames);
    ck_assert_int_eq(sf_close(sf), 0);
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_msg(fp != NULL, "cannot create %s", path);
    if (n)
        ck_assert_uint_eq(fwrite(bytes, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

/* The whole file; *n its size.  Caller frees. */
static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(fp);
    *n = len;
    return buf;
}

static void assert_file_is(const char *path, const void *bytes, size_t n)
{
    size_t len = 0;
    unsigned char *got = read_bytes(path, &len);
    ck_assert_msg(len == n && memcmp(got, bytes, n) == 0, "%s was changed", path);
    free(got);
}

static float *random_signal(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    srand(seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2.0 * rand() / RAND_MAX - 1.0);
    return x;
}

static float *sine(size_t n, double freq, double rate, double amp)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(amp * sin(TWO_PI * freq * (double)i / rate));
    return x;
}

static double rms(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s / (double)n);
}

static int zero_crossings(const float *x, size_t n)
{
    int count = 0;
    for (size_t i = 1; i < n; i++)
        if ((x[i - 1] < 0) != (x[i] < 0))
            count++;
    return count;
}

/* Reads path at rate, expecting success. */
static float *read_ok(const char *path, int rate, size_t *n, tokvox_audio_source *src)
{
    float *x = NULL;
    char detail[512] = "";
    int rc = tokvox_audio_read(path, rate, &x, n, src, detail, sizeof detail);
    ck_assert_msg(rc == TOKVOX_OK, "reading %s: %d (%s)", path, rc, detail);
    ck_assert_ptr_nonnull(x);
    return x;
}

static void expect_read_fail(const char *path, int code, const char *in_detail)
{
    float *x = (float *)&x; /* must be reset to NULL */
    size_t n = 99;
    char detail[512] = "";
    int rc = tokvox_audio_read(path, 0, &x, &n, NULL, detail, sizeof detail);
    ck_assert_msg(rc == code, "%s: got %d, expected %d (%s)", path, rc, code, detail);
    ck_assert_ptr_null(x);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(detail, path) != NULL, "detail does not name %s: %s", path, detail);
    if (in_detail)
        ck_assert_msg(strstr(detail, in_detail) != NULL, "detail lacks \"%s\": %s", in_detail,
                      detail);
}

static int major_format(const char *path)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    ck_assert_msg(sf != NULL, "%s: %s", path, sf_strerror(NULL));
    sf_close(sf);
    return info.format & SF_FORMAT_TYPEMASK;
}

/* ---- reading -------------------------------------------------------------------- */

START_TEST(test_wav_round_trip)
{
    const size_t n = 16000;
    float *x = random_signal(n, tu_seed());
    x[0] = 1.0f;
    x[1] = -1.0f;
    x[2] = 0.0f;
    x[3] = 0.99998f;
    const char *path = tmp_path("rt.wav");
    char detail[512] = "";
    ck_assert_int_eq(tokvox_audio_write(path, x, n, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    ck_assert_int_eq(major_format(path), SF_FORMAT_WAV);
    for (int pass = 0; pass < 2; pass++) {
        size_t m = 0;
        tokvox_audio_source src = {0};
        float *y = read_ok(path, pass ? 16000 : 0, &m, &src);
        ck_assert_uint_eq(m, n);
        ck_assert_int_eq(src.rate, 16000);
        ck_assert_int_eq(src.channels, 1);
        ck_assert_int_eq(src.frames, (int64_t)n);
        float worst = tu_max_abs_diff(x, y, n);
        ck_assert_msg(worst <= 1.0f / 32768.0f, "round trip error %g", (double)worst);
        free(y);
    }
    assert_no_temp();
    free(x);
}
END_TEST

START_TEST(test_stereo_44k_to_16k)
{
    const size_t n = 44100;
    float *st = malloc(2 * n * sizeof *st);
    ck_assert_ptr_nonnull(st);
    for (size_t i = 0; i < n; i++) {
        double s = sin(TWO_PI * 440.0 * (double)i / 44100.0);
        st[2 * i] = (float)(0.6 * s);
        st[2 * i + 1] = (float)(0.4 * s); /* the mean is 0.5 * s */
    }
    const char *path = tmp_path("stereo.wav");
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, st, (sf_count_t)n);
    size_t m = 0;
    tokvox_audio_source src;
    float *y = read_ok(path, 16000, &m, &src);
    ck_assert_int_eq(src.rate, 44100);
    ck_assert_int_eq(src.channels, 2);
    ck_assert_int_eq(src.frames, (int64_t)n);
    double expect = (double)n * 16000.0 / 44100.0;
    ck_assert_msg(fabs((double)m - expect) <= 1.0, "length %zu, expected %.1f", m, expect);

    const size_t edge = 100;
    const size_t span = m - 2 * edge;
    int zc = zero_crossings(y + edge, span);
    double zc_expect = 2.0 * 440.0 * (double)span / 16000.0;
    ck_assert_msg(fabs(zc - zc_expect) <= 2.0, "%d zero crossings, expected %.1f", zc, zc_expect);
    double r = rms(y + edge, span);
    double r_expect = 0.5 / sqrt(2.0);
    ck_assert_msg(fabs(r - r_expect) <= 0.01 * r_expect, "rms %g, expected %g", r, r_expect);
    free(y);
    free(st);
}
END_TEST

START_TEST(test_six_channels_downmixed)
{
    const size_t n = 8000;
    float *x = malloc(6 * n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) {
        double s = sin(TWO_PI * 300.0 * (double)i / 16000.0);
        for (int c = 0; c < 6; c++)
            x[6 * i + (size_t)c] = (float)((c + 1) * 0.05 * s) * (c == 5 ? -1.0f : 1.0f);
    }
    /* mean over channels: (0.05+0.10+0.15+0.20+0.25-0.30)/6 * s = 0.075 * s */
    const char *path = tmp_path("six.wav");
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 6, x, (sf_count_t)n);
    size_t m = 0;
    tokvox_audio_source src;
    float *y = read_ok(path, 0, &m, &src);
    ck_assert_uint_eq(m, n);
    ck_assert_int_eq(src.channels, 6);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double want = 0.075 * sin(TWO_PI * 300.0 * (double)i / 16000.0);
        worst = fmax(worst, fabs(y[i] - want));
    }
    ck_assert_msg(worst < 1e-6, "downmix error %g", worst);
    free(y);
    free(x);
}
END_TEST

START_TEST(test_flac_and_ogg)
{
    const size_t n = 16000;
    float *x = sine(n, 440.0, 16000.0, 0.5);
    char detail[512] = "";

    const char *flac = tmp_path("a.flac");
    ck_assert_int_eq(tokvox_audio_write(flac, x, n, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    ck_assert_int_eq(major_format(flac), SF_FORMAT_FLAC);
    size_t m = 0;
    float *y = read_ok(flac, 0, &m, NULL);
    ck_assert_uint_eq(m, n);
    ck_assert_float_le(tu_max_abs_diff(x, y, n), 1.0f / 32768.0f);
    free(y);

    const char *ogg = tmp_path("b.OGG"); /* extensions are case-insensitive */
    int rc = tokvox_audio_write(ogg, x, n, 16000, 0, detail, sizeof detail);
    ck_assert_msg(rc == TOKVOX_OK, "ogg write: %d (%s)", rc, detail);
    ck_assert_int_eq(major_format(ogg), SF_FORMAT_OGG);
    tokvox_audio_source src;
    y = read_ok(ogg, 0, &m, &src);
    ck_assert_int_eq(src.rate, 16000);
    ck_assert_msg(m + 16 >= n && m <= n + 16, "ogg length %zu, wrote %zu", m, n);
    size_t span = (m < n ? m : n) - 2000;
    double r = rms(y + 1000, span);
    ck_assert_msg(fabs(r - 0.5 / sqrt(2.0)) < 0.02, "ogg rms %g", r);
    int zc = zero_crossings(y + 1000, span);
    double zc_expect = 2.0 * 440.0 * (double)span / 16000.0;
    ck_assert_msg(fabs(zc - zc_expect) <= 4.0, "ogg: %d zero crossings, expected %.1f", zc, zc_expect);
    free(y);

    /* Written at another rate. */
    const char *half = tmp_path("c.wav");
    ck_assert_int_eq(tokvox_audio_write(half, x, n, 16000, 8000, detail, sizeof detail), TOKVOX_OK);
    y = read_ok(half, 0, &m, &src);
    ck_assert_int_eq(src.rate, 8000);
    ck_assert_msg(m >= n / 2 - 1 && m <= n / 2 + 1, "length %zu at 8 kHz", m);
    free(y);
    assert_no_temp();
    free(x);
}
END_TEST

START_TEST(test_resample_round_trip)
{
    const size_t n = 16000;
    const double freqs[] = {100.0, 440.0, 1234.5, 3000.0, 5500.0, 6800.0};
    float *x = calloc(n, sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++)
        for (size_t i = 0; i < n; i++)
            x[i] += (float)(0.15 * sin(TWO_PI * freqs[k] * (double)i / 16000.0 + (double)k));
    float *up = NULL, *back = NULL;
    size_t n_up = 0, n_back = 0;
    ck_assert_int_eq(tokvox_resample(x, n, 16000, 48000, &up, &n_up), TOKVOX_OK);
    ck_assert_msg(n_up >= 3 * n - 1 && n_up <= 3 * n + 1, "upsampled to %zu", n_up);
    ck_assert_int_eq(tokvox_resample(up, n_up, 48000, 16000, &back, &n_back), TOKVOX_OK);
    ck_assert_msg(n_back >= n - 1 && n_back <= n + 1, "back to %zu", n_back);
    double sig = 0, err = 0;
    for (size_t i = 100; i < n - 100; i++) {
        sig += (double)x[i] * x[i];
        double d = (double)x[i] - back[i];
        err += d * d;
    }
    double snr = 10.0 * log10(sig / err);
    ck_assert_msg(snr > 60.0, "round trip SNR %.1f dB", snr);
    free(up);
    free(back);

    /* Equal rates copy; nothing resamples to nothing. */
    float *copy = NULL;
    size_t n_copy = 0;
    ck_assert_int_eq(tokvox_resample(x, n, 16000, 16000, &copy, &n_copy), TOKVOX_OK);
    ck_assert_uint_eq(n_copy, n);
    ck_assert_ptr_ne(copy, x);
    ck_assert_int_eq(memcmp(copy, x, n * sizeof *x), 0);
    free(copy);
    copy = NULL;
    ck_assert_int_eq(tokvox_resample(NULL, 0, 16000, 24000, &copy, &n_copy), TOKVOX_OK);
    ck_assert_uint_eq(n_copy, 0);
    free(copy);

    /* Bad arguments. */
    ck_assert_int_eq(tokvox_resample(x, n, 0, 16000, &copy, &n_copy), TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_resample(x, n, 16000, 1000000, &copy, &n_copy),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_resample(NULL, 5, 16000, 8000, &copy, &n_copy),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_resample(x, n, 16000, 8000, NULL, &n_copy),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    free(x);
}
END_TEST

START_TEST(test_nan_inf_read_as_zero)
{
    const float mono[] = {0.5f, NAN, INFINITY, -INFINITY, -0.25f, 2.0f, -1.0f};
    const char *path = tmp_path("nan.wav");
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, mono, 7);
    size_t n = 0;
    tokvox_audio_source src = {0};
    float *y = read_ok(path, 0, &n, &src);
    ck_assert_uint_eq(n, 7);
    /* overs clamped, full scale itself kept; nothing else altered */
    const float want[] = {0.5f, 0.0f, 0.0f, 0.0f, -0.25f, 1.0f, -1.0f};
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(y[i] == want[i], "sample %zu: %g, expected %g", i, (double)y[i], (double)want[i]);
    ck_assert_int_eq(src.nonfinite, 3);
    ck_assert_int_eq(src.clipped, 1);
    free(y);

    /* In a stereo file a bad channel counts as 0 in the mean, an over as
     * full scale (clamped before the downmix). */
    const float st[] = {NAN, 0.5f, 0.25f, INFINITY, -0.5f, -0.5f, 3.0f, -0.5f};
    const char *path2 = tmp_path("nan2.wav");
    sf_write_file(path2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, st, 4);
    y = read_ok(path2, 0, &n, &src);
    ck_assert_uint_eq(n, 4);
    ck_assert_float_eq(y[0], 0.25f);
    ck_assert_float_eq(y[1], 0.125f);
    ck_assert_float_eq(y[2], -0.5f);
    ck_assert_float_eq(y[3], 0.25f);
    ck_assert_int_eq(src.nonfinite, 2);
    ck_assert_int_eq(src.clipped, 1);
    free(y);

    /* Resampled output is finite too. */
    y = read_ok(path, 48000, &n, NULL);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(isfinite(y[i]), "sample %zu is not finite", i);
    free(y);
}
END_TEST

START_TEST(test_missing_file)
{
    const char *path = tmp_path("missing.wav");
    expect_read_fail(path, TOKVOX_ERR_IO, "No such file or directory");
    char want[4096];
    float *x = NULL;
    size_t n = 0;
    char detail[4096];
    tokvox_audio_read(path, 0, &x, &n, NULL, detail, sizeof detail);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    ck_assert_str_eq(detail, want);
    /* A folder is not a file. */
    expect_read_fail(g_dir, TOKVOX_ERR_IO, NULL);
}
END_TEST

START_TEST(test_random_bytes)
{
    unsigned char junk[4096];
    srand(tu_seed());
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    memcpy(junk, "JUNK", 4);
    const char *path = tmp_path("junk.wav");
    write_bytes(path, junk, sizeof junk);
    expect_read_fail(path, TOKVOX_ERR_AUDIO, "not a readable audio file (");
}
END_TEST

START_TEST(test_empty_file)
{
    const char *path = tmp_path("empty.wav");
    write_bytes(path, "", 0);
    expect_read_fail(path, TOKVOX_ERR_AUDIO, "empty file");

    /* A valid header with no frames. */
    const char *hdr = tmp_path("header-only.wav");
    sf_write_file(hdr, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, NULL, 0);
    expect_read_fail(hdr, TOKVOX_ERR_AUDIO, "no audio samples");
    char detail[512];
    float *x = NULL;
    size_t n = 0;
    tokvox_audio_read(hdr, 0, &x, &n, NULL, detail, sizeof detail);
    char want[4096];
    snprintf(want, sizeof want, "%s: no audio samples", hdr);
    ck_assert_str_eq(detail, want);
}
END_TEST

START_TEST(test_one_sample)
{
    const float one = 0.25f;
    const char *path = tmp_path("one.wav");
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, &one, 1);
    size_t n = 0;
    float *y = read_ok(path, 0, &n, NULL);
    ck_assert_uint_eq(n, 1);
    ck_assert_float_eq(y[0], 0.25f);
    free(y);
    y = read_ok(path, 16000, &n, NULL);
    ck_assert_uint_eq(n, 1);
    ck_assert_float_eq(y[0], 0.25f);
    free(y);
    /* Resampled down, some audio stays some audio. */
    y = read_ok(path, 8000, &n, NULL);
    ck_assert_uint_ge(n, 1);
    free(y);
}
END_TEST

START_TEST(test_unsupported_rate_and_channels)
{
    float x[65 * 4] = {0};
    const char *slow = tmp_path("slow.wav");
    sf_write_file(slow, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 500, 1, x, 4);
    expect_read_fail(slow, TOKVOX_ERR_AUDIO, "sample rate 500 Hz is not supported");

    const char *wide = tmp_path("wide.wav");
    sf_write_file(wide, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 65, x, 4);
    expect_read_fail(wide, TOKVOX_ERR_AUDIO, "65 channels");

    /* Bad target rate: the caller's mistake. */
    const char *ok = tmp_path("ok.wav");
    sf_write_file(ok, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, 4);
    float *y = NULL;
    size_t n = 0;
    char detail[512];
    ck_assert_int_eq(tokvox_audio_read(ok, 999, &y, &n, NULL, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(y);
    ck_assert_int_eq(tokvox_audio_read(NULL, 0, &y, &n, NULL, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_audio_read(ok, 0, NULL, &n, NULL, NULL, 0),
                     TOKVOX_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_stdin)
{
    const size_t n = 1000;
    float *x = sine(n, 500.0, 16000.0, 0.3);
    const char *path = tmp_path("in.wav");
    char detail[512] = "";
    ck_assert_int_eq(tokvox_audio_write(path, x, n, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    size_t size = 0;
    unsigned char *bytes = read_bytes(path, &size);
    ck_assert_uint_lt(size, 60000); /* fits a pipe's buffer */

    int saved = dup(0);
    ck_assert_int_ge(saved, 0);

    /* A pipe. */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], bytes, size), (ssize_t)size);
    close(fds[1]);
    ck_assert_int_eq(dup2(fds[0], 0), 0);
    close(fds[0]);
    size_t m = 0;
    float *y = read_ok("-", 0, &m, NULL);
    ck_assert_uint_eq(m, n);
    ck_assert_float_le(tu_max_abs_diff(x, y, n), 1.0f / 32768.0f);
    free(y);

    /* A file redirected. */
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 0), 0);
    close(fd);
    y = read_ok("-", 0, &m, NULL);
    ck_assert_uint_eq(m, n);
    free(y);

    /* Garbage on stdin. */
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "garbage!", 8), 8);
    close(fds[1]);
    ck_assert_int_eq(dup2(fds[0], 0), 0);
    close(fds[0]);
    float *z = NULL;
    ck_assert_int_eq(tokvox_audio_read("-", 0, &z, &m, NULL, detail, sizeof detail),
                     TOKVOX_ERR_AUDIO);
    ck_assert_msg(strstr(detail, "stdin") != NULL, "%s", detail);

    dup2(saved, 0);
    close(saved);
    free(bytes);
    free(x);
}
END_TEST

/* Threads read good, broken and missing files at once: each gets its own
 * result and its own message. */
typedef struct reader_job {
    const char *good, *junk, *missing;
    size_t n;
    int failures;
    char last[600]; /* what went wrong last */
} reader_job;

static void reader_check(reader_job *job, int ok, int step, int rc, const char *detail)
{
    if (!ok) {
        job->failures++;
        snprintf(job->last, sizeof job->last, "step %d: rc %d: %s", step, rc, detail);
    }
}

static void *reader_thread(void *arg)
{
    reader_job *job = arg;
    for (int i = 0; i < 100; i++) {
        float *x = NULL;
        size_t n = 0;
        char detail[512] = "";
        int rc = tokvox_audio_read(job->good, 8000, &x, &n, NULL, detail, sizeof detail);
        reader_check(job, rc == TOKVOX_OK && n == job->n, 0, rc, detail);
        free(x);
        x = NULL;
        rc = tokvox_audio_read(job->junk, 0, &x, &n, NULL, detail, sizeof detail);
        reader_check(job, rc == TOKVOX_ERR_AUDIO && strstr(detail, job->junk) &&
                              strstr(detail, "not a readable audio file ("), 1, rc, detail);
        rc = tokvox_audio_read(job->missing, 0, &x, &n, NULL, detail, sizeof detail);
        reader_check(job, rc == TOKVOX_ERR_IO && strstr(detail, job->missing), 2, rc, detail);
    }
    return NULL;
}

START_TEST(test_threads)
{
    const size_t n = 4000;
    float *x = sine(n, 300.0, 16000.0, 0.5);
    const char *good = tmp_path("good.wav");
    char detail[512];
    ck_assert_int_eq(tokvox_audio_write(good, x, n, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    const char *junk = tmp_path("junk.wav");
    write_bytes(junk, "this is not audio at all, not even close to it", 46);
    reader_job jobs[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (reader_job){good, junk, tmp_path(t % 2 ? "nope1.wav" : "nope2.wav"), n / 2, 0, ""};
        ck_assert_int_eq(pthread_create(&threads[t], NULL, reader_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        ck_assert_msg(jobs[t].failures == 0, "thread %d: %d failures, last %s", t, jobs[t].failures,
                      jobs[t].last);
    }
    free(x);
}
END_TEST

static int open_fds(void)
{
    return count_entries("/proc/self/fd", NULL);
}

START_TEST(test_no_descriptor_leaks)
{
    const float x[64] = {0.25f};
    char good[4096], junk[4096], none[4096], nodir[4096];
    snprintf(good, sizeof good, "%s", tmp_path("good.wav"));
    snprintf(junk, sizeof junk, "%s", tmp_path("junk.wav"));
    snprintf(none, sizeof none, "%s", tmp_path("none.wav"));
    snprintf(nodir, sizeof nodir, "%s", tmp_path("x/y.wav"));
    char detail[512];
    ck_assert_int_eq(tokvox_audio_write(good, x, 64, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    write_bytes(junk, "definitely not a sound file", 27);
    const int before = open_fds();
    for (int i = 0; i < 10; i++) {
        float *y = NULL;
        size_t n = 0;
        ck_assert_int_eq(tokvox_audio_read(good, 0, &y, &n, NULL, detail, sizeof detail), TOKVOX_OK);
        free(y);
        ck_assert_int_eq(tokvox_audio_read(junk, 0, &y, &n, NULL, detail, sizeof detail),
                         TOKVOX_ERR_AUDIO);
        ck_assert_int_eq(tokvox_audio_read(none, 0, &y, &n, NULL, detail, sizeof detail),
                         TOKVOX_ERR_IO);
        ck_assert_int_eq(tokvox_audio_write(good, x, 64, 16000, 0, detail, sizeof detail),
                         TOKVOX_OK);
        ck_assert_int_eq(tokvox_audio_write(nodir, x, 64, 16000, 0, detail, sizeof detail),
                         TOKVOX_ERR_IO);
    }
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* ---- the streaming reader ------------------------------------------------------- */

/* All of path through a reader in chunks of `chunk`: every read but the
 * last fills its chunk, and the end stays the end.  Caller frees. */
static float *read_in_chunks(const char *path, int rate, size_t chunk, size_t *n,
                             tokvox_audio_source *src)
{
    char detail[512] = "";
    int err = -1;
    tokvox_audio_reader *r = tokvox_audio_reader_open(path, rate, &err, detail, sizeof detail);
    ck_assert_msg(r != NULL, "opening %s: %d (%s)", path, err, detail);
    ck_assert_int_eq(err, TOKVOX_OK);
    float *chunk_buf = malloc(chunk * sizeof *chunk_buf);
    size_t len = 0, got = 0, cap = chunk;
    float *all = malloc(cap * sizeof *all);
    ck_assert_ptr_nonnull(chunk_buf);
    ck_assert_ptr_nonnull(all);
    do {
        int rc = tokvox_audio_reader_read(r, chunk_buf, chunk, &got, detail, sizeof detail);
        ck_assert_msg(rc == TOKVOX_OK, "reading %s: %d (%s)", path, rc, detail);
        if (len + got > cap) {
            cap = 2 * (len + got);
            all = realloc(all, cap * sizeof *all);
            ck_assert_ptr_nonnull(all);
        }
        memcpy(all + len, chunk_buf, got * sizeof *all);
        len += got;
    } while (got == chunk);
    /* A short read is the end, and the end stays the end. */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(tokvox_audio_reader_read(r, chunk_buf, chunk, &got, NULL, 0), TOKVOX_OK);
        ck_assert_uint_eq(got, 0);
    }
    tokvox_audio_reader_source(r, src);
    tokvox_audio_reader_close(r);
    free(chunk_buf);
    *n = len;
    return all;
}

/* What the reader must give for path at rate: the file read at its own rate
 * (no resampling), then resampled in one go by tokvox_resample (soxr_oneshot),
 * an independent path to compare the streaming resampler with. */
static float *reference_read(const char *path, int rate, size_t *n, tokvox_audio_source *src)
{
    float *x = read_ok(path, 0, n, src);
    if (rate == 0 || rate == src->rate)
        return x;
    float *y = NULL;
    ck_assert_int_eq(tokvox_resample(x, *n, src->rate, rate, &y, n), TOKVOX_OK);
    free(x);
    return y;
}

static void assert_same_source(const tokvox_audio_source *a, const tokvox_audio_source *b)
{
    ck_assert_int_eq(a->rate, b->rate);
    ck_assert_int_eq(a->channels, b->channels);
    ck_assert_int_eq(a->frames, b->frames);
    ck_assert_int_eq(a->nonfinite, b->nonfinite);
    ck_assert_int_eq(a->clipped, b->clipped);
}

/* The reader in chunks of 1, 7, 320 and 100000 gives tokvox_audio_read's
 * samples, and the one-shot reference's, to the bit. */
static void assert_reader_matches(const char *path, int rate)
{
    static const size_t chunks[] = {1, 7, 320, 100000};
    size_t n_read = 0, n_ref = 0;
    tokvox_audio_source src_read, src_ref;
    float *whole = read_ok(path, rate, &n_read, &src_read);
    float *ref = reference_read(path, rate, &n_ref, &src_ref);
    ck_assert_msg(n_read == n_ref && memcmp(whole, ref, n_ref * sizeof *ref) == 0,
                  "%s at %d Hz: tokvox_audio_read (%zu) differs from one-shot (%zu)", path, rate,
                  n_read, n_ref);
    assert_same_source(&src_read, &src_ref);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t n = 0;
        tokvox_audio_source src;
        float *y = read_in_chunks(path, rate, chunks[c], &n, &src);
        ck_assert_msg(n == n_read, "%s at %d Hz in chunks of %zu: %zu samples, expected %zu",
                      path, rate, chunks[c], n, n_read);
        ck_assert_msg(memcmp(y, whole, n * sizeof *y) == 0,
                      "%s at %d Hz in chunks of %zu: samples differ by up to %g", path, rate,
                      chunks[c], (double)tu_max_abs_diff(y, whole, n));
        assert_same_source(&src, &src_read);
        free(y);
    }
    free(whole);
    free(ref);
}

START_TEST(test_reader_matches_read)
{
    const size_t n16 = 16000 * 3 + 17, n44 = 44100 * 2 + 5, n8 = 8000 + 3;
    float *mono = sine(n16, 440.0, 16000.0, 0.5);
    const char *wav16 = tmp_path("mono16k.wav");
    sf_write_file(wav16, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, mono, (sf_count_t)n16);
    assert_reader_matches(wav16, 0);
    assert_reader_matches(wav16, 16000);
    assert_reader_matches(wav16, 48000);

    float *stereo = random_signal(2 * n44, tu_seed());
    const char *wav44 = tmp_path("stereo44k.wav");
    sf_write_file(wav44, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2, stereo, (sf_count_t)n44);
    assert_reader_matches(wav44, 16000);
    assert_reader_matches(wav44, 0);

    const char *u8 = tmp_path("eight-bit.wav");
    sf_write_file(u8, SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 8000, 1, mono, (sf_count_t)n8);
    assert_reader_matches(u8, 16000);

    /* NaN, Inf and overs in a float file, in both channels */
    float *bad = random_signal(2 * n16, tu_seed() + 1);
    for (size_t i = 0; i < 2 * n16; i += 97)
        bad[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : 2.5f;
    const char *fl = tmp_path("float-nan.wav");
    sf_write_file(fl, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, bad, (sf_count_t)n16);
    assert_reader_matches(fl, 0);
    assert_reader_matches(fl, 22050);
    tokvox_audio_source src;
    size_t n = 0;
    free(read_in_chunks(fl, 16000, 320, &n, &src));
    ck_assert_int_gt(src.nonfinite, 0);
    ck_assert_int_gt(src.clipped, 0);

    /* A frame so short that resampling would leave nothing: one silent sample. */
    const char *one = tmp_path("one-frame.wav");
    sf_write_file(one, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1, mono, 1);
    assert_reader_matches(one, 8000);
    free(mono);
    free(stereo);
    free(bad);
}
END_TEST

static void expect_open_fail(const char *path, int rate, int code, const char *in_detail)
{
    char detail[512] = "";
    int err = 0;
    tokvox_audio_reader *r = tokvox_audio_reader_open(path, rate, &err, detail, sizeof detail);
    ck_assert_ptr_null(r);
    ck_assert_msg(err == code, "%s: got %d, expected %d (%s)", path, err, code, detail);
    ck_assert_msg(strstr(detail, path) != NULL, "detail does not name %s: %s", path, detail);
    ck_assert_msg(strstr(detail, in_detail) != NULL, "detail lacks \"%s\": %s", in_detail, detail);
}

START_TEST(test_reader_open_errors)
{
    expect_open_fail(tmp_path("missing.wav"), 16000, TOKVOX_ERR_IO, "No such file or directory");
    expect_open_fail(g_dir, 16000, TOKVOX_ERR_IO, "Is a directory");

    unsigned char junk[2048];
    srand(tu_seed());
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    const char *garbage = tmp_path("garbage.wav");
    write_bytes(garbage, junk, sizeof junk);
    expect_open_fail(garbage, 16000, TOKVOX_ERR_AUDIO, "not a readable audio file (");

    const char *empty = tmp_path("empty.wav");
    write_bytes(empty, "", 0);
    expect_open_fail(empty, 16000, TOKVOX_ERR_AUDIO, "empty file");
    const char *hdr = tmp_path("header-only.wav");
    sf_write_file(hdr, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, NULL, 0);
    expect_open_fail(hdr, 16000, TOKVOX_ERR_AUDIO, "no audio samples");

    const float x[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const char *ok = tmp_path("ok.wav");
    sf_write_file(ok, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, 4);
    expect_open_fail(ok, 999, TOKVOX_ERR_INVALID_ARGUMENT, "cannot resample to 999 Hz");

    /* Misuse: no path, no handle, no destination; error may be NULL. */
    char detail[512];
    int err = 0;
    ck_assert_ptr_null(tokvox_audio_reader_open(NULL, 0, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tokvox_audio_reader_open("", 0, NULL, NULL, 0));
    size_t got = 99;
    float y[4];
    ck_assert_int_eq(tokvox_audio_reader_read(NULL, y, 4, &got, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(got, 0);
    tokvox_audio_reader *r = tokvox_audio_reader_open(ok, 0, NULL, detail, sizeof detail);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(tokvox_audio_reader_read(r, NULL, 4, &got, NULL, 0),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_audio_reader_read(r, y, 4, NULL, NULL, 0), TOKVOX_ERR_INVALID_ARGUMENT);
    tokvox_audio_reader_close(r);
    tokvox_audio_reader_close(NULL);
}
END_TEST

/* A FLAC file cut in half: libsndfile reports lost sync part way.  The
 * reader hands out what came before, then fails naming the file, and keeps
 * failing; tokvox_audio_read fails with the same message. */
START_TEST(test_reader_error_mid_file)
{
    const size_t n = 100000;
    float *x = sine(n, 440.0, 16000.0, 0.5);
    const char *path = tmp_path("cut.flac");
    char detail[512] = "", again[512] = "";
    ck_assert_int_eq(tokvox_audio_write(path, x, n, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);

    tokvox_audio_reader *r = tokvox_audio_reader_open(path, 0, NULL, detail, sizeof detail);
    ck_assert_msg(r != NULL, "%s", detail);
    float chunk[320];
    size_t got = 0, total = 0;
    int rc;
    while ((rc = tokvox_audio_reader_read(r, chunk, 320, &got, detail, sizeof detail)) ==
               TOKVOX_OK && got > 0)
        total += got;
    total += got;
    ck_assert_int_eq(rc, TOKVOX_ERR_AUDIO);
    ck_assert_msg(strstr(detail, path) && strstr(detail, "read error after"), "%s", detail);
    ck_assert_msg(total > 0 && total < n, "%zu samples before the error", total);
    ck_assert_int_eq(tokvox_audio_reader_read(r, chunk, 320, &got, again, sizeof again),
                     TOKVOX_ERR_AUDIO);
    ck_assert_uint_eq(got, 0);
    ck_assert_str_eq(again, detail);
    tokvox_audio_reader_close(r);

    expect_read_fail(path, TOKVOX_ERR_AUDIO, "read error after");
    float *y = NULL;
    size_t m = 0;
    tokvox_audio_read(path, 0, &y, &m, NULL, again, sizeof again);
    ck_assert_str_eq(again, detail);
    free(x);
}
END_TEST

/* "-" reads stdin, from a pipe as from a redirected file. */
START_TEST(test_reader_stdin)
{
    const size_t n = 3000;
    float *st = random_signal(2 * n, tu_seed());
    const char *path = tmp_path("in.wav");
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 22050, 2, st, (sf_count_t)n);
    size_t size = 0, m = 0, want_n = 0;
    unsigned char *bytes = read_bytes(path, &size);
    ck_assert_uint_lt(size, 60000); /* fits a pipe's buffer */
    tokvox_audio_source src, want_src;
    float *want = read_ok(path, 16000, &want_n, &want_src);

    int saved = dup(0), fds[2];
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], bytes, size), (ssize_t)size);
    close(fds[1]);
    ck_assert_int_eq(dup2(fds[0], 0), 0);
    close(fds[0]);
    float *y = read_in_chunks("-", 16000, 7, &m, &src);
    ck_assert_uint_eq(m, want_n);
    ck_assert_int_eq(memcmp(y, want, m * sizeof *y), 0);
    assert_same_source(&src, &want_src);
    free(y);

    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 0), 0);
    close(fd);
    y = read_in_chunks("-", 16000, 320, &m, &src);
    ck_assert_uint_eq(m, want_n);
    ck_assert_int_eq(memcmp(y, want, m * sizeof *y), 0);
    free(y);

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "garbage!", 8), 8);
    close(fds[1]);
    ck_assert_int_eq(dup2(fds[0], 0), 0);
    close(fds[0]);
    char detail[512] = "";
    int err = 0;
    ck_assert_ptr_null(tokvox_audio_reader_open("-", 16000, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_AUDIO);
    ck_assert_msg(strstr(detail, "stdin") != NULL, "%s", detail);

    dup2(saved, 0);
    close(saved);
    free(want);
    free(bytes);
    free(st);
}
END_TEST

/* Opening, reading part of a file and closing leaves no descriptor open. */
START_TEST(test_reader_no_descriptor_leaks)
{
    float *x = sine(20000, 300.0, 16000.0, 0.5);
    const char *good = tmp_path("good.wav");
    sf_write_file(good, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, 20000);
    const char *junk = tmp_path("junk.wav");
    write_bytes(junk, "definitely not a sound file", 27);
    const int before = open_fds();
    for (int i = 0; i < 10; i++) {
        tokvox_audio_reader *r = tokvox_audio_reader_open(good, 48000, NULL, NULL, 0);
        ck_assert_ptr_nonnull(r);
        float y[100];
        size_t got = 0;
        ck_assert_int_eq(tokvox_audio_reader_read(r, y, 100, &got, NULL, 0), TOKVOX_OK);
        ck_assert_uint_eq(got, 100);
        tokvox_audio_reader_close(r); /* before the end */
        ck_assert_ptr_null(tokvox_audio_reader_open(junk, 0, NULL, NULL, 0));
    }
    ck_assert_int_eq(open_fds(), before);
    free(x);
}
END_TEST

/* ---- writing -------------------------------------------------------------------- */

START_TEST(test_write_clips)
{
    const float x[] = {2.0f, -3.0f, NAN, 0.5f, -INFINITY, 1.0f, -1.0f};
    const char *path = tmp_path("clip.wav");
    char detail[512];
    ck_assert_int_eq(tokvox_audio_write(path, x, 7, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    size_t n = 0;
    float *y = read_ok(path, 0, &n, NULL);
    ck_assert_uint_eq(n, 7);
    const float want[] = {32767.0f / 32768.0f, -1.0f, 0.0f, 0.5f, 0.0f, 32767.0f / 32768.0f, -1.0f};
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(y[i] == want[i], "sample %zu: %g, expected %g", i, (double)y[i], (double)want[i]);
    free(y);

    /* A NaN does not spread through the resampler. */
    float *z = sine(1600, 200.0, 16000.0, 0.5);
    z[800] = NAN;
    ck_assert_int_eq(tokvox_audio_write(path, z, 1600, 16000, 24000, detail, sizeof detail),
                     TOKVOX_OK);
    y = read_ok(path, 0, &n, NULL);
    ck_assert_uint_eq(n, 2400);
    ck_assert_msg(rms(y, n) > 0.3, "rms %g", rms(y, n));
    free(y);
    free(z);
}
END_TEST

START_TEST(test_write_stdout)
{
    const size_t n = 3000;
    float *x = sine(n, 700.0, 16000.0, 0.4);
    const char *path = tmp_path("stdout.wav");
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 1), 1);
    close(fd);
    char detail[512] = "";
    int rc = tokvox_audio_write("-", x, n, 16000, 0, detail, sizeof detail);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ck_assert_msg(rc == TOKVOX_OK, "%d %s", rc, detail);
    ck_assert_int_eq(major_format(path), SF_FORMAT_WAV);
    size_t m = 0;
    float *y = read_ok(path, 0, &m, NULL);
    ck_assert_uint_eq(m, n);
    ck_assert_float_le(tu_max_abs_diff(x, y, n), 1.0f / 32768.0f);
    free(y);
    free(x);
}
END_TEST

START_TEST(test_write_missing_folder)
{
    float x[16] = {0};
    const char *path = tmp_path("nowhere/deeper/out.wav");
    char detail[4096] = "";
    ck_assert_int_eq(tokvox_audio_write(path, x, 16, 16000, 0, detail, sizeof detail),
                     TOKVOX_ERR_IO);
    char want[4096];
    snprintf(want, sizeof want, "%s/nowhere/deeper: No such file or directory", g_dir);
    ck_assert_str_eq(detail, want);
    ck_assert_int_eq(count_entries(g_dir, NULL), 0);
}
END_TEST

START_TEST(test_write_unsupported_extension)
{
    const char old[] = "the old file";
    float x[16] = {0};
    char detail[512] = "";
    const char *mp3 = tmp_path("out.mp3");
    write_bytes(mp3, old, sizeof old);
    ck_assert_int_eq(tokvox_audio_write(mp3, x, 16, 16000, 0, detail, sizeof detail),
                     TOKVOX_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(detail, ".mp3") != NULL, "%s", detail);
    assert_file_is(mp3, old, sizeof old);

    const char *bare = tmp_path("noext");
    ck_assert_int_eq(tokvox_audio_write(bare, x, 16, 16000, 0, detail, sizeof detail),
                     TOKVOX_ERR_UNSUPPORTED);
    ck_assert_int_eq(access(bare, F_OK), -1);
    /* A dot in a folder name is not an extension. */
    const char *dotdir = tmp_path("a.wav/noext");
    ck_assert_int_eq(tokvox_audio_write(dotdir, x, 16, 16000, 0, detail, sizeof detail),
                     TOKVOX_ERR_UNSUPPORTED);
    /* Bad rates. */
    const char *wav = tmp_path("x.wav");
    ck_assert_int_eq(tokvox_audio_write(wav, x, 16, 0, 0, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_audio_write(wav, x, 16, 16000, 500, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tokvox_audio_write(wav, NULL, 16, 16000, 0, detail, sizeof detail),
                     TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(count_entries(g_dir, NULL), 1);
}
END_TEST

START_TEST(test_write_failure_keeps_old_file)
{
    const char old[] = "RIFF... an older take that must survive";
    const char *path = tmp_path("take.wav");
    write_bytes(path, old, sizeof old);

    /* The write dies midway: files may not grow past 4 KiB (noise does not
     * compress that far in any of the formats). */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    const rlim_t old_limit = lim.rlim_cur;
    lim.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const size_t n = 48000;
    float *x = random_signal(n, tu_seed());
    const char *names[] = {"take.wav", "take.flac", "take.ogg"};
    for (int k = 0; k < 3; k++) {
        char detail[512] = "";
        const char *p = tmp_path(names[k]);
        int rc = tokvox_audio_write(p, x, n, 16000, 0, detail, sizeof detail);
        ck_assert_msg(rc == TOKVOX_ERR_IO, "%s: %d (%s)", names[k], rc, detail);
        char want[4096];
        snprintf(want, sizeof want, "%s: %s", p, strerror(EFBIG));
        ck_assert_str_eq(detail, want);
        assert_no_temp();
    }
    assert_file_is(path, old, sizeof old);
    ck_assert_int_eq(count_entries(g_dir, NULL), 1);

    lim.rlim_cur = old_limit;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

    /* The encoder gives up after the temporary is created: Vorbis has no
     * mode for 384 kHz. */
    const char *ogg = tmp_path("take.ogg");
    write_bytes(ogg, old, sizeof old);
    char odetail[512] = "";
    ck_assert_int_eq(tokvox_audio_write(ogg, x, 4000, 384000, 0, odetail, sizeof odetail),
                     TOKVOX_ERR_AUDIO);
    ck_assert_msg(strstr(odetail, ogg) != NULL, "%s", odetail);
    assert_file_is(ogg, old, sizeof old);
    assert_no_temp();
    ck_assert_int_eq(unlink(ogg), 0);

    /* And then a good write replaces it, keeping its mode. */
    ck_assert_int_eq(chmod(path, 0640), 0);
    char detail[512] = "";
    ck_assert_int_eq(tokvox_audio_write(path, x, n, 16000, 0, detail, sizeof detail), TOKVOX_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    size_t m = 0;
    float *y = read_ok(path, 0, &m, NULL);
    ck_assert_uint_eq(m, n);
    free(y);
    assert_no_temp();
    free(x);
}
END_TEST

START_TEST(test_write_read_only_folder)
{
    /* Root ignores folder modes: become nobody (this test runs in its own
     * process, and the folder is handed over first). */
    if (geteuid() == 0) {
        ck_assert_int_eq(chown(g_dir, 65534, 65534), 0);
        ck_assert_int_eq(setgid(65534), 0);
        ck_assert_int_eq(setuid(65534), 0);
    }
    const char old[] = "an older take";
    const char *path = tmp_path("take.wav");
    write_bytes(path, old, sizeof old);
    ck_assert_int_eq(chmod(g_dir, 0500), 0);
    float x[256] = {0.5f};
    char detail[4096] = "";
    int rc = tokvox_audio_write(path, x, 256, 16000, 0, detail, sizeof detail);
    ck_assert_int_eq(chmod(g_dir, 0700), 0);
    ck_assert_int_eq(rc, TOKVOX_ERR_IO);
    char want[4096];
    snprintf(want, sizeof want, "%s: %s", g_dir, strerror(EACCES));
    ck_assert_str_eq(detail, want);
    assert_file_is(path, old, sizeof old);
    ck_assert_int_eq(count_entries(g_dir, NULL), 1);
}
END_TEST

START_TEST(test_write_over_directory)
{
    /* The rename fails at the very end: the destination is a folder with
     * something in it. */
    const char *dest = tmp_path("busy.wav");
    ck_assert_int_eq(mkdir(dest, 0755), 0);
    write_bytes(tmp_path("busy.wav/inside"), "x", 1);
    float x[100] = {0};
    char detail[512] = "";
    ck_assert_int_eq(tokvox_audio_write(dest, x, 100, 16000, 0, detail, sizeof detail),
                     TOKVOX_ERR_IO);
    ck_assert_msg(strstr(detail, dest) != NULL, "%s", detail);
    assert_no_temp();
    ck_assert_int_eq(count_entries(dest, NULL), 1);
}
END_TEST

/* ---- atomic files ------------------------------------------------------------ */

START_TEST(test_atomic_commit)
{
    umask(027);
    const char *path = tmp_path("out.tvx");
    int err = 1;
    char detail[512] = "";
    tokvox_atomic_file *f = tokvox_atomic_open(path, &err, detail, sizeof detail);
    ck_assert_msg(f != NULL, "%d %s", err, detail);
    ck_assert_int_eq(err, TOKVOX_OK);
    const char *tmp = tokvox_atomic_temp_path(f);
    ck_assert_ptr_nonnull(tmp);
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s/.out.tvx.tmp-", g_dir);
    ck_assert_msg(strncmp(tmp, prefix, strlen(prefix)) == 0, "temp %s", tmp);
    ck_assert_int_eq(access(tmp, F_OK), 0);
    FILE *fp = tokvox_atomic_stream(f);
    ck_assert_ptr_nonnull(fp);
    fprintf(fp, "hello atomic");
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing there before commit */
    ck_assert_int_eq(tokvox_atomic_commit(f, detail, sizeof detail), TOKVOX_OK);
    assert_file_is(path, "hello atomic", 12);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640); /* 0666 & ~umask */
    assert_no_temp();

    /* Replacing keeps the existing file's mode. */
    ck_assert_int_eq(chmod(path, 0604), 0);
    f = tokvox_atomic_open(path, &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    fputs("second", tokvox_atomic_stream(f));
    ck_assert_int_eq(tokvox_atomic_commit(f, detail, sizeof detail), TOKVOX_OK);
    assert_file_is(path, "second", 6);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0604);

    /* A bare file name goes in the working folder. */
    ck_assert_int_eq(chdir(g_dir), 0);
    f = tokvox_atomic_open("bare.txt", &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    ck_assert_msg(strncmp(tokvox_atomic_temp_path(f), ".bare.txt.tmp-", 14) == 0, "%s",
                  tokvox_atomic_temp_path(f));
    fputs("bare", tokvox_atomic_stream(f));
    ck_assert_int_eq(tokvox_atomic_commit(f, detail, sizeof detail), TOKVOX_OK);
    assert_file_is(tmp_path("bare.txt"), "bare", 4);
    assert_no_temp();
}
END_TEST

START_TEST(test_atomic_abort)
{
    const char *path = tmp_path("keep.txt");
    write_bytes(path, "original", 8);
    int err;
    char detail[512];
    tokvox_atomic_file *f = tokvox_atomic_open(path, &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    fputs("replacement", tokvox_atomic_stream(f));
    tokvox_atomic_abort(f);
    assert_file_is(path, "original", 8);
    assert_no_temp();
    ck_assert_int_eq(count_entries(g_dir, NULL), 1);
    tokvox_atomic_abort(NULL);
    ck_assert_int_eq(tokvox_atomic_commit(NULL, detail, sizeof detail), TOKVOX_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_atomic_rename_fails)
{
    const char *dest = tmp_path("taken");
    ck_assert_int_eq(mkdir(dest, 0755), 0);
    write_bytes(tmp_path("taken/file"), "x", 1);
    int err;
    char detail[512] = "";
    tokvox_atomic_file *f = tokvox_atomic_open(dest, &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", tokvox_atomic_temp_path(f));
    fputs("data", tokvox_atomic_stream(f));
    ck_assert_int_eq(tokvox_atomic_commit(f, detail, sizeof detail), TOKVOX_ERR_IO);
    ck_assert_msg(strstr(detail, dest) != NULL, "%s", detail);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    assert_no_temp();
    ck_assert_int_eq(count_entries(dest, NULL), 1);
}
END_TEST

START_TEST(test_atomic_write_error)
{
    const char *path = tmp_path("big.bin");
    write_bytes(path, "small", 5);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    lim.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int err;
    char detail[512] = "";
    tokvox_atomic_file *f = tokvox_atomic_open(path, &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    FILE *fp = tokvox_atomic_stream(f);
    static char block[100000];
    memset(block, 'z', sizeof block);
    fwrite(block, 1, sizeof block, fp); /* fails somewhere; commit must notice */
    ck_assert_int_eq(tokvox_atomic_commit(f, detail, sizeof detail), TOKVOX_ERR_IO);
    ck_assert_msg(strstr(detail, path) != NULL, "%s", detail);
    assert_file_is(path, "small", 5);
    assert_no_temp();

    /* A failure at fflush names errno: "File too large". */
    f = tokvox_atomic_open(path, &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    fp = tokvox_atomic_stream(f);
    setvbuf(fp, NULL, _IOFBF, 1 << 16);
    fwrite(block, 1, 5000, fp); /* buffered: the error comes at commit */
    ck_assert_int_eq(tokvox_atomic_commit(f, detail, sizeof detail), TOKVOX_ERR_IO);
    char want[4096];
    snprintf(want, sizeof want, "%s: %s", path, strerror(EFBIG));
    ck_assert_str_eq(detail, want);
    assert_file_is(path, "small", 5);
    assert_no_temp();
}
END_TEST

START_TEST(test_atomic_missing_folder)
{
    const char *path = tmp_path("no/such/dir/out.tvx");
    int err = 0;
    char detail[4096] = "";
    ck_assert_ptr_null(tokvox_atomic_open(path, &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
    char want[4096];
    snprintf(want, sizeof want, "%s/no/such/dir: No such file or directory", g_dir);
    ck_assert_str_eq(detail, want);
    ck_assert_int_eq(count_entries(g_dir, NULL), 0);
    ck_assert_ptr_null(tokvox_atomic_open("", &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tokvox_atomic_open(tmp_path("dir/"), &err, detail, sizeof detail));
    ck_assert_int_eq(err, TOKVOX_ERR_IO);
}
END_TEST

START_TEST(test_atomic_stdout)
{
    const char *path = tmp_path("stdout.txt");
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 1);
    close(fd);
    int err;
    char detail[512];
    tokvox_atomic_file *f = tokvox_atomic_open("-", &err, detail, sizeof detail);
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_eq(tokvox_atomic_stream(f), stdout);
    ck_assert_ptr_null(tokvox_atomic_temp_path(f));
    fputs("to stdout", tokvox_atomic_stream(f));
    int rc = tokvox_atomic_commit(f, detail, sizeof detail);
    dup2(saved, 1);
    close(saved);
    ck_assert_int_eq(rc, TOKVOX_OK);
    assert_file_is(path, "to stdout", 9);
}
END_TEST

static Suite *audio_io_suite(void)
{
    Suite *s = suite_create("audio_io");
    TCase *tc = tcase_create("read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_wav_round_trip);
    tcase_add_test(tc, test_stereo_44k_to_16k);
    tcase_add_test(tc, test_six_channels_downmixed);
    tcase_add_test(tc, test_flac_and_ogg);
    tcase_add_test(tc, test_resample_round_trip);
    tcase_add_test(tc, test_nan_inf_read_as_zero);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_one_sample);
    tcase_add_test(tc, test_unsupported_rate_and_channels);
    tcase_add_test(tc, test_stdin);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_no_descriptor_leaks);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reader_matches_read);
    tcase_add_test(tc, test_reader_open_errors);
    tcase_add_test(tc, test_reader_error_mid_file);
    tcase_add_test(tc, test_reader_stdin);
    tcase_add_test(tc, test_reader_no_descriptor_leaks);
    suite_add_tcase(s, tc);

    tc = tcase_create("write");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_clips);
    tcase_add_test(tc, test_write_stdout);
    tcase_add_test(tc, test_write_missing_folder);
    tcase_add_test(tc, test_write_unsupported_extension);
    tcase_add_test(tc, test_write_failure_keeps_old_file);
    tcase_add_test(tc, test_write_read_only_folder);
    tcase_add_test(tc, test_write_over_directory);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_atomic_commit);
    tcase_add_test(tc, test_atomic_abort);
    tcase_add_test(tc, test_atomic_rename_fails);
    tcase_add_test(tc, test_atomic_write_error);
    tcase_add_test(tc, test_atomic_missing_folder);
    tcase_add_test(tc, test_atomic_stdout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audio_io_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
