/* Small helpers shared by the Check suites. */
#ifndef TOKVOX_TESTUTIL_H
#define TOKVOX_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* TOKVOX_TEST_DATA (set by meson test) joined with name; static buffer per call slot. */
const char *tu_data_path(const char *name);
/* TOKVOX_BUILD_ROOT joined with rel. */
const char *tu_build_path(const char *rel);
/* A fresh empty folder under /tmp for this test; removed by the OS later. */
const char *tu_temp_dir(void);
float tu_max_abs_diff(const float *a, const float *b, size_t n);
/* Seed for random tests: TOKVOX_TEST_SEED or time; printed to stderr. */
unsigned tu_seed(void);
/* The shipped model in the source tree (TOKVOX_SOURCE_ROOT/models/...). */
const char *tu_model_path(void);
/* The shipped low-delay model (K = 1 synthesis, the default until 2026-12-05):
 * the base the config-variant tests edit. */
const char *tu_ld_model_path(void);
/* codes (frames x all of m's codebooks) through one decoder, pushed at
 * once then flushed, with the post-filter on or off
 * (tokvox_decoder_set_postfilter); malloc'd samples, their count in *n. */
struct tokvox_model;
float *tu_decode_all(const struct tokvox_model *m, const uint16_t *codes, size_t frames,
                     int postfilter, size_t *n);
/* Run a suite in CK_NORMAL mode; the process exit code (0 when all passed). */
struct Suite;
int tu_run(struct Suite *suite);
/* Exit 77 (skipped) with a message when a data file is missing. */
void tu_require_file(const char *path);

#endif
