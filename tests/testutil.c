#include "testutil.h"

#include <check.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokvox/tokvox.h"

static const char *join(const char *env, const char *fallback, const char *name)
{
    static char buffers[8][4096];
    static int next;
    char *out = buffers[next++ % 8];
    const char *root = getenv(env);
    snprintf(out, sizeof buffers[0], "%s/%s", root ? root : fallback, name);
    return out;
}

const char *tu_data_path(const char *name) { return join("TOKVOX_TEST_DATA", "tests/data", name); }

const char *tu_build_path(const char *rel) { return join("TOKVOX_BUILD_ROOT", ".", rel); }

const char *tu_temp_dir(void)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/tokvox-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return dir;
}

float tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    float worst = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= worst))
            worst = d; /* NaN propagates as the worst */
    }
    return worst;
}

unsigned tu_seed(void)
{
    const char *env = getenv("TOKVOX_TEST_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "random seed %u (set TOKVOX_TEST_SEED to repeat)\n", seed);
    return seed;
}

void tu_require_file(const char *path)
{
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "SKIP: test data %s is missing\n", path);
        exit(77);
    }
}

const char *tu_model_path(void)
{
    return join("TOKVOX_SOURCE_ROOT", ".", "models/tokvox-16k.safetensors");
}

const char *tu_ld_model_path(void)
{
    return join("TOKVOX_SOURCE_ROOT", ".", "models/tokvox-16k-ld.safetensors");
}

int tu_run(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

float *tu_decode_all(const tokvox_model *m, const uint16_t *codes, size_t frames, int postfilter,
                     size_t *n)
{
    tokvox_model_info i = {.size = sizeof i};
    tokvox_model_get_info(m, &i);
    tokvox_decoder *d = tokvox_decoder_create(m, i.num_codebooks, 0, NULL);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(tokvox_decoder_set_postfilter(d, postfilter), TOKVOX_OK);
    float *pcm = malloc(sizeof(float) * (frames + 2) * (size_t)i.hop);
    size_t got = 0, tail = 0;
    ck_assert_int_eq(tokvox_decoder_push(d, codes, frames, pcm, &got), TOKVOX_OK);
    ck_assert_int_eq(tokvox_decoder_flush(d, pcm + got, &tail), TOKVOX_OK);
    *n = got + tail;
    tokvox_decoder_destroy(d);
    return pcm;
}
