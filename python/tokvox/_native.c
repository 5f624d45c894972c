/* The C half of the Python package: what `import tokvox` needs beyond the
 * public API of libtokvox (tokvox/tokvox.h, which the package binds
 * directly through this library's dependency on libtokvox.so).
 *
 * The audio path of the tokvox command (cleaning NaN/Inf and overs, libsoxr
 * resampling) lives in the private io/ library, linked statically into the
 * tokvox command.  This small shared library links the same code, so that
 * Python gets exactly the command's samples and codes without io/ becoming
 * public API; it also compiles apps/app.c for app_encode_all, the command's
 * whole-signal encoder.  Loaded with ctypes; not a CPython extension (no Python.h),
 * so it does not depend on the Python version.
 *
 * Every function returns TOKVOX_OK or a negative tokvox_error and writes a
 * one-line message into detail on failure.  Buffers handed out are
 * malloc'ed and released with tvpy_free.  All functions are [thread-safe]
 * for distinct output buffers: they share only the immutable model.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "tokvox/bitstream.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

#define TVPY_API __attribute__((visibility("default")))

TVPY_API void tvpy_free(void *p);
TVPY_API size_t tvpy_model_info_size(void);
TVPY_API int tvpy_clean(float *x, size_t n, int64_t *nonfinite, int64_t *clipped);
TVPY_API int tvpy_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                           size_t *n_out, char *detail, size_t detail_size);
TVPY_API int tvpy_encode(const tokvox_model *model, const float *pcm, size_t n, int rate,
                         int codebooks, uint16_t **codes, size_t *frames, char *detail,
                         size_t detail_size);
TVPY_API int tvpy_read_audio(const char *path, int target_rate, float **samples, size_t *n,
                             int *source_rate, int64_t *nonfinite, int64_t *clipped,
                             char *detail, size_t detail_size);
TVPY_API int tvpy_read_tvx(const char *path, uint16_t **codes, size_t *frames, int *codebooks,
                           uint64_t *sample_count, int *source_rate, uint64_t *model_id,
                           char *detail, size_t detail_size);

static int fail(int err, char *detail, size_t size, const char *fmt, ...)
{
    if (detail && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, size, fmt, ap);
        va_end(ap);
    }
    return err;
}

void tvpy_free(void *p) { free(p); }

/* sizeof(tokvox_model_info) as compiled: _lib.py declares the struct again
 * for ctypes and refuses to load when the two disagree. */
size_t tvpy_model_info_size(void) { return sizeof(tokvox_model_info); }

/* In place, as the command's reader treats every sample of a float file:
 * NaN/Inf become 0, values beyond [-1, 1] are clamped; both counted. */
int tvpy_clean(float *x, size_t n, int64_t *nonfinite, int64_t *clipped)
{
    int64_t bad = 0, over = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            x[i] = 0.0f;
            bad++;
        } else if (x[i] > 1.0f || x[i] < -1.0f) {
            x[i] = x[i] > 0.0f ? 1.0f : -1.0f;
            over++;
        }
    }
    if (nonfinite)
        *nonfinite = bad;
    if (clipped)
        *clipped = over;
    return TOKVOX_OK;
}

/* tokvox_resample (libsoxr, the command's settings); rates are checked. */
int tvpy_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                  size_t *n_out, char *detail, size_t detail_size)
{
    if (in_rate < TOKVOX_AUDIO_MIN_RATE || in_rate > TOKVOX_AUDIO_MAX_RATE ||
        out_rate < TOKVOX_AUDIO_MIN_RATE || out_rate > TOKVOX_AUDIO_MAX_RATE)
        return fail(TOKVOX_ERR_INVALID_ARGUMENT, detail, detail_size,
                    "cannot resample %d Hz to %d Hz (rates from %d to %d Hz)", in_rate, out_rate,
                    TOKVOX_AUDIO_MIN_RATE, TOKVOX_AUDIO_MAX_RATE);
    int err = tokvox_resample(in, n, in_rate, out_rate, out, n_out);
    if (err)
        return fail(err, detail, detail_size, "cannot resample %d Hz to %d Hz: %s", in_rate,
                    out_rate, tokvox_strerror(err));
    return TOKVOX_OK;
}

/* pcm (mono float at `rate`, already cleaned) -> codes[frames][codebooks]:
 * resampled to the model's rate as the command does, then encoded.  One
 * call does the whole job, so a Python thread spends it outside the GIL. */
int tvpy_encode(const tokvox_model *model, const float *pcm, size_t n, int rate, int codebooks,
                uint16_t **codes, size_t *frames, char *detail, size_t detail_size)
{
    *codes = NULL;
    *frames = 0;
    if (!model || (n && !pcm))
        return fail(TOKVOX_ERR_INVALID_ARGUMENT, detail, detail_size, "missing model or audio");
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(model, &info);
    float *resampled = NULL;
    const float *x = pcm;
    if (rate != info.sample_rate) {
        int err = tvpy_resample(pcm, n, rate, info.sample_rate, &resampled, &n, detail,
                                detail_size);
        if (err)
            return err;
        x = resampled;
    }
    /* the very function `tokvox encode` codes a file with */
    int err = app_encode_all(model, x, n, codebooks, codes, frames);
    free(resampled);
    if (err)
        return fail(err, detail, detail_size, "encoding failed: %s", tokvox_strerror(err));
    return TOKVOX_OK;
}

/* tokvox_audio_read: any file libsndfile reads, mono, at target_rate (0 =
 * the file's), exactly the samples the command encodes. */
int tvpy_read_audio(const char *path, int target_rate, float **samples, size_t *n,
                    int *source_rate, int64_t *nonfinite, int64_t *clipped, char *detail,
                    size_t detail_size)
{
    tokvox_audio_source source = {0};
    int err = tokvox_audio_read(path, target_rate, samples, n, &source, detail, detail_size);
    if (err)
        return err;
    *source_rate = source.rate;
    *nonfinite = source.nonfinite;
    *clipped = source.clipped;
    return TOKVOX_OK;
}

/* A whole .tvx bitstream (tokvox encode's output) -> its codes
 * [frames][codebooks] and what its header says.  Through the public
 * bitstream reader, so the header's layout stays the library's business. */
int tvpy_read_tvx(const char *path, uint16_t **codes, size_t *frames, int *codebooks,
                  uint64_t *sample_count, int *source_rate, uint64_t *model_id, char *detail,
                  size_t detail_size)
{
    *codes = NULL;
    *frames = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(TOKVOX_ERR_IO, detail, detail_size, "%s: cannot open (%s)", path,
                    strerror(errno));
    int err;
    tokvox_tvx_reader *r = tokvox_tvx_reader_open(f, path, &err, detail, detail_size);
    if (!r) {
        fclose(f);
        return err;
    }
    const tokvox_tvx_header *h = tokvox_tvx_reader_header(r);
    size_t k = h->num_codebooks;
    uint16_t *out = NULL;
    /* the header's count is checked against the file, not trusted for the
     * allocation: grow as frames actually arrive */
    size_t cap = 0, got = 0, n = 0;
    do {
        if (got == cap) {
            size_t grown = cap ? cap * 2 : 4096;
            uint16_t *p = grown < SIZE_MAX / sizeof *p / k ? realloc(out, grown * k * sizeof *p)
                                                           : NULL;
            if (!p) {
                err = TOKVOX_ERR_NO_MEMORY;
                snprintf(detail, detail_size, "%s: out of memory", path);
                break;
            }
            out = p;
            cap = grown;
        }
        err = tokvox_tvx_read_frames(r, out + got * k, cap - got, &n);
        if (err)
            snprintf(detail, detail_size, "%s", tokvox_tvx_reader_detail(r));
        got += n;
    } while (!err && n);
    /* after the clean end: a version-2 stream states its length in its trailer */
    uint64_t want = tokvox_tvx_expected_frames(h);
    if (!err && got != want)
        err = fail(TOKVOX_ERR_TRUNCATED, detail, detail_size, "%s: %zu frames, the header wants %llu",
                   path, got, (unsigned long long)want);
    if (!err) {
        *codes = out;
        *frames = got;
        *codebooks = (int)k;
        *sample_count = h->sample_count;
        *source_rate = (int)h->source_rate;
        *model_id = h->model_id;
    } else {
        free(out);
    }
    tokvox_tvx_reader_destroy(r);
    fclose(f);
    return err;
}
