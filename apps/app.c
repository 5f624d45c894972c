#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tokvox/bitstream.h"

int app_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tokvox %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

tokvox_model *app_load_model(const char *cmd, const char *path)
{
    int err;
    char detail[1024] = "";
    tokvox_model *m = tokvox_model_load(path, &err, detail, sizeof detail);
    if (!m)
        app_fail(cmd, "%s", detail[0] ? detail : tokvox_strerror(err));
    return m;
}

int app_option_error(const char *cmd, int c, char **argv)
{
    /* a long option as written (without "=value"); a short one by optopt,
     * since argv holds it in a cluster such as -qz */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char shown[64];
    if (!strncmp(word, "--", 2))
        snprintf(shown, sizeof shown, "%.*s", (int)strcspn(word, "="), word);
    else
        snprintf(shown, sizeof shown, "-%c", optopt > 32 && optopt < 127 ? optopt : '?');
    const char *opt = shown;
    if (c == ':')
        return app_fail(cmd, "option %s wants a value (see 'tokvox %s --help')", opt, cmd);
    return app_fail(cmd, "unknown option %s (see 'tokvox %s --help')", opt, cmd);
}

int app_parse_int(const char *text, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return -1;
    return (int)v;
}

int app_parse_kbps(const char *text, double *kbps)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text && (*end == 'k' || *end == 'K'))
        end++;
    if (errno || end == text || *end || !isfinite(v) || v <= 0)
        return -1;
    *kbps = v;
    return 0;
}

double app_kbps_per_codebook(const tokvox_model_info *info)
{
    return info->codebook_bits * (double)info->sample_rate / info->hop / 1000.0;
}

int app_codebooks_for_kbps(const char *cmd, const tokvox_model_info *info, double kbps,
                           int limit, const char *source, int *codebooks)
{
    double step = app_kbps_per_codebook(info), n = round(kbps / step);
    if (fabs(kbps / step - n) > 1e-6 || n < 1 || n > limit)
        return app_fail(cmd, "--bitrate %g: %s offers %g to %g kbps in steps of %g kbps", kbps,
                        source, step, limit * step, step);
    *codebooks = (int)n;
    return 0;
}

void app_warn_cleaned(const char *cmd, const char *in, const tokvox_audio_source *s)
{
    const char *name = strcmp(in, "-") ? in : "stdin";
    if (s->nonfinite)
        fprintf(stderr, "tokvox %s: warning: %s: %lld NaN/Inf sample%s read as 0\n", cmd, name,
                (long long)s->nonfinite, s->nonfinite == 1 ? "" : "s");
    if (s->clipped)
        fprintf(stderr, "tokvox %s: warning: %s: %lld sample%s beyond full scale clamped to [-1, 1]\n",
                cmd, name, (long long)s->clipped, s->clipped == 1 ? "" : "s");
}

int app_write_json(const char *cmd, cJSON *o, const char *file)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return app_fail(cmd, "--json: out of memory");
    int to_stdout = !file || !strcmp(file, "-");
    FILE *f = to_stdout ? stdout : fopen(file, "w");
    int rc = 0;
    if (!f || fprintf(f, "%s\n", text) < 0 || fflush(f) != 0)
        rc = app_fail(cmd, "--json: %s: %s", to_stdout ? "stdout" : file, strerror(errno));
    if (f && !to_stdout && fclose(f) != 0 && !rc)
        rc = app_fail(cmd, "--json: %s: %s", file, strerror(errno));
    free(text);
    return rc;
}

int app_check_json(const char *cmd, const char *file, const char *in, const char *out)
{
    if ((!file || !strcmp(file, "-")) && out && !strcmp(out, "-"))
        return app_fail(cmd, "--json would mix with the output on stdout: give --json=FILE");
    if (file && strcmp(file, "-") && ((out && !strcmp(file, out)) || (in && !strcmp(file, in))))
        return app_fail(cmd, "--json=%s names the input or the output", file);
    return 0;
}

int app_parse_threads(const char *cmd, const char *text)
{
    int n = app_parse_int(text, 1, 64);
    if (n < 0)
        return app_fail(cmd, "--threads wants a number from 1 to 64, not '%s'", text);
    tokvox_set_threads(n);
    return 0;
}

int app_encode_all(const tokvox_model *m, const float *pcm, size_t n, int num_codebooks,
                   uint16_t **codes, size_t *frames)
{
    int err;
    *codes = NULL;
    *frames = 0;
    tokvox_encoder *enc = tokvox_encoder_create(m, num_codebooks, &err);
    if (!enc)
        return err;
    size_t k = (size_t)tokvox_encoder_num_codebooks(enc);
    size_t total = tokvox_frames_for_samples(m, n);
    uint16_t *out = malloc(sizeof(uint16_t) * total * k);
    if (!out) {
        tokvox_encoder_destroy(enc);
        return TOKVOX_ERR_NO_MEMORY;
    }
    size_t got = 0, tail = 0;
    err = tokvox_encoder_push(enc, pcm, n, out, total, &got);
    if (!err)
        err = tokvox_encoder_flush(enc, out + got * k, total - got, &tail);
    tokvox_encoder_destroy(enc);
    if (err || got + tail != total) {
        free(out);
        return err ? err : TOKVOX_ERR_STATE;
    }
    *codes = out;
    *frames = total;
    return TOKVOX_OK;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void app_progress_start(app_progress *p, int quiet, double total_s)
{
    memset(p, 0, sizeof *p);
    p->on = !quiet && isatty(STDERR_FILENO);
    p->start = now_s();
    p->last = p->start - 1.0; /* the first update draws: a terminal always sees the line */
    p->total_s = total_s;
}

void app_progress_update(app_progress *p, const char *cmd, double done_s)
{
    double t = now_s();
    if (!p->on || t - p->last < 0.25)
        return;
    p->last = t;
    double rtf = done_s / (t - p->start > 1e-9 ? t - p->start : 1e-9);
    if (p->total_s > 0)
        fprintf(stderr, "\rtokvox %s: %.1f / %.1f s  %.0fx real time  ETA %.0f s   ", cmd, done_s,
                p->total_s, rtf, rtf > 0 ? (p->total_s - done_s) / rtf : 0.0);
    else
        fprintf(stderr, "\rtokvox %s: %.1f s  %.0fx real time   ", cmd, done_s, rtf);
    p->drawn = 1;
}

void app_progress_end(app_progress *p)
{
    if (p->drawn)
        fputs("\r\033[K", stderr);
}

/* stat of a path, or of stdin / stdout for "-". */
static int stat_of(const char *path, int std_fd, struct stat *st)
{
    return strcmp(path, "-") == 0 ? fstat(std_fd, st) : stat(path, st);
}

static int is_tvx_file(const char *path)
{
    static const unsigned char magic[4] = {'T', 'V', 'X', 0x1A};
    unsigned char head[4];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return got == sizeof head && memcmp(head, magic, sizeof magic) == 0;
}


int app_check_output(const char *cmd, const char *out, const char *const *inputs, int n_inputs,
                     app_output_kind kind, int force)
{
    struct stat so, si;
    if (stat_of(out, STDOUT_FILENO, &so) != 0 || !S_ISREG(so.st_mode))
        return 0; /* a new file, a pipe, a device: nothing of the user's to lose */
    const char *shown = strcmp(out, "-") ? out : "stdout";
    for (int i = 0; i < n_inputs; i++)
        if (stat_of(inputs[i], STDIN_FILENO, &si) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino) {
            fprintf(stderr, "tokvox %s: %s is the input %s: refusing to write over it\n", cmd,
                    shown, strcmp(inputs[i], "-") ? inputs[i] : "stdin");
            return APP_EXIT_REFUSED;
        }
    if (force || so.st_size == 0 || strcmp(out, "-") == 0)
        return 0;
    int fits = kind == APP_OUTPUT_TVX ? is_tvx_file(out) : tokvox_audio_is_audio(out);
    if (fits)
        return 0;
    fprintf(stderr, "tokvox %s: %s exists and is not %s; --force replaces it\n", cmd, out,
            kind == APP_OUTPUT_TVX ? "a .tvx bitstream" : "an audio file");
    return APP_EXIT_REFUSED;
}
