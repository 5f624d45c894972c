/* Shared pieces of the tokvox command's subcommands. */
#ifndef TOKVOX_APP_H
#define TOKVOX_APP_H

#include <stddef.h>
#include <stdint.h>

#include "tokvox/io.h"
#include "tokvox/tokvox.h"

typedef int (*app_command_fn)(int argc, char **argv);

int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_transcode(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);   /* cmd_tokenize.c */
int cmd_detokenize(int argc, char **argv); /* cmd_tokens.c */
int cmd_tokstats(int argc, char **argv);   /* cmd_tokens.c */
int cmd_live(int argc, char **argv);       /* cmd_live.c */

/* Print "tokvox CMD: message" on stderr; returns 1 (the failure exit code). */
int app_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Load the model named (NULL = default) or print why not; NULL on failure. */
tokvox_model *app_load_model(const char *cmd, const char *path);
/* getopt_long's complaint as one line, "tokvox CMD: unknown option --x (see
 * 'tokvox CMD --help')" or "... option --x wants a value ...": for parsers
 * that set opterr = 0 and start their optstring with ':'.  c is what
 * getopt_long returned ('?' or ':'); argv its argv.  Returns 1. */
int app_option_error(const char *cmd, int c, char **argv);
/* Parse a positive int option value in [lo, hi]; -1 if invalid. */
int app_parse_int(const char *text, int lo, int hi);
/* The audio reader silenced NaN/Inf and clamped overs (tokvox/io.h): the
 * output is still valid but the input was damaged, so say so on stderr
 * (even with --quiet).  in = the path or "-". */
void app_warn_cleaned(const char *cmd, const char *in, const tokvox_audio_source *s);
/* --bitrate: a positive, finite kbps figure ("1", "2.5", "1k"); -1 if it is not one. */
int app_parse_kbps(const char *text, double *kbps);
/* The rate one codebook per frame adds, in kbps (each codebook adds the same). */
double app_kbps_per_codebook(const tokvox_model_info *info);
/* Sets *codebooks to the count that gives `kbps`, or returns 1 after a
 * message when no count up to `limit` (what `source` offers) gives it. */
int app_codebooks_for_kbps(const char *cmd, const tokvox_model_info *info, double kbps,
                           int limit, const char *source, int *codebooks);
/* --threads N: sets the library's thread count; 1 (after a message) if N is bad. */
int app_parse_threads(const char *cmd, const char *text);

/* What a command writes, for app_check_output. */
typedef enum app_output_kind {
    APP_OUTPUT_TVX,   /* a .tvx bitstream */
    APP_OUTPUT_AUDIO, /* an audio file libsndfile reads */
} app_output_kind;

/* Exit status of a refused output (and of usage errors). */
#define APP_EXIT_REFUSED 2

/* Never lose a user's data: refuses `out` when it is one of the inputs
 * (the same file by device and inode, so through links too; "-" stands for
 * stdin or stdout), and, unless force, when it exists as a non-empty regular
 * file that is not of `kind` (replacing a WAV by a bitstream is a typo more
 * often than a wish).  Returns 0, or APP_EXIT_REFUSED after one message. */
int app_check_output(const char *cmd, const char *out, const char *const *inputs, int n_inputs,
                     app_output_kind kind, int force);

/* --json[=FILE]: writes o (then frees it) as one JSON object to FILE, or to
 * stdout when FILE is NULL or "-".  Returns 0 or 1 after a message. */
struct cJSON;
int app_write_json(const char *cmd, struct cJSON *o, const char *file);
/* Checks --json[=FILE] against a command's input and output paths before
 * anything runs: JSON on stdout would mix with an output written there, and
 * FILE may not name either.  Returns 0, or 1 after a message. */
int app_check_json(const char *cmd, const char *file, const char *in, const char *out);

/* Progress of a long command on stderr when it is a terminal (and not
 * --quiet): "tokvox CMD: 12.3 / 60.0 s  41x real time  ETA 1 s", drawn at
 * the first update, then at most 4 times a second, erased by
 * app_progress_end. */
typedef struct app_progress {
    int on;          /* stderr is a terminal and not --quiet */
    double start, last;
    double total_s;  /* seconds of audio in all, 0 = unknown (a pipe) */
    int drawn;
} app_progress;

void app_progress_start(app_progress *p, int quiet, double total_s);
/* done_s: seconds of audio done so far. */
void app_progress_update(app_progress *p, const char *cmd, double done_s);
void app_progress_end(app_progress *p);

/* A whole signal coded at once: codes [frames][num_codebooks], malloc'ed
 * (the Python package's helper; the commands stream instead, with the same
 * codes). */
int app_encode_all(const tokvox_model *m, const float *pcm, size_t n, int num_codebooks,
                   uint16_t **codes, size_t *frames);

#endif
