/* Figures of a live session: processing time per frame (percentiles over
 * the last second and over the whole run), the counters each mode keeps, a
 * status line for a terminal and JSON lines for --stats.
 *
 * Reports are made per second of stream (every frames_per_second frames),
 * which is per second of wall time when the input is paced and stays
 * deterministic when it is not (--fast). */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <time.h>

#include "live.h"

/* Whole-run histogram: 10 us bins up to 200 ms, then one overflow bin. */
#define HIST_BIN_S 10e-6
#define HIST_BINS 20000

struct live_stats {
    FILE *json;
    int status, fps;
    double *window;          /* this second's processing times, seconds */
    int n_window;
    uint32_t hist[HIST_BINS + 1];
    uint64_t frames;
    double max_s;
};

live_stats *live_stats_create(FILE *json, int status, int frames_per_second)
{
    live_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->json = json;
    s->status = status;
    s->fps = frames_per_second > 0 ? frames_per_second : 1;
    s->window = malloc(sizeof(double) * (size_t)s->fps);
    if (!s->window) {
        free(s);
        return NULL;
    }
    return s;
}

void live_stats_destroy(live_stats *s)
{
    if (!s)
        return;
    free(s->window);
    free(s);
}

int live_stats_frame(live_stats *s, double seconds)
{
    size_t bin = (size_t)(seconds / HIST_BIN_S);
    s->hist[bin < HIST_BINS ? bin : HIST_BINS]++;
    s->frames++;
    if (seconds > s->max_s)
        s->max_s = seconds;
    if (s->n_window < s->fps)
        s->window[s->n_window++] = seconds;
    return s->n_window == s->fps;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted values (nearest rank). */
static double quantile(const double *sorted, int n, double q)
{
    if (n == 0)
        return 0.0;
    int rank = (int)(q * n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return sorted[rank - 1];
}

static double hist_quantile(const live_stats *s, double q)
{
    uint64_t want = (uint64_t)(q * (double)s->frames + 0.999999), seen = 0;
    for (size_t b = 0; b <= HIST_BINS; b++) {
        seen += s->hist[b];
        if (seen >= want && seen > 0)
            return b < HIST_BINS ? (b + 0.5) * HIST_BIN_S : s->max_s;
    }
    return 0.0;
}

/* The fields every line has, then the mode's own. */
static void json_fields(FILE *f, const live_report *r, double p50_ms, double p99_ms)
{
    fprintf(f, "\"mode\":\"%s\",\"t\":%.2f,\"frames\":%llu,\"kbps\":%.3f,"
               "\"proc_ms_p50\":%.3f,\"proc_ms_p99\":%.3f,\"latency_ms\":%.1f,"
               "\"underruns\":%llu,\"overruns\":%llu",
            r->mode, r->t, (unsigned long long)r->frames, r->kbps, p50_ms, p99_ms, r->latency_ms,
            (unsigned long long)r->underruns, (unsigned long long)r->overruns);
    if (!strcmp(r->mode, "listen"))
        fprintf(f, ",\"concealed\":%llu,\"lost\":%llu,\"late\":%llu,\"refused\":%llu,"
                   "\"received\":%llu,\"recovered\":%llu,\"stretched\":%llu,"
                   "\"skipped\":%llu,\"unauthenticated\":%llu,\"replayed\":%llu,"
                   "\"buffered\":%d,\"depth\":%d",
                (unsigned long long)r->concealed, (unsigned long long)r->lost,
                (unsigned long long)r->late, (unsigned long long)r->refused,
                (unsigned long long)r->received, (unsigned long long)r->recovered,
                (unsigned long long)r->stretched, (unsigned long long)r->skipped,
                (unsigned long long)r->unauthenticated, (unsigned long long)r->replayed,
                r->buffered, r->depth);
    if (!strcmp(r->mode, "send"))
        fprintf(f, ",\"sent\":%llu,\"dropped\":%llu,\"stream_frames\":%llu",
                (unsigned long long)r->sent, (unsigned long long)r->dropped,
                (unsigned long long)r->stream_frames);
}

static void status_line(const live_report *r, double p50_ms, double p99_ms)
{
    fprintf(stderr, "\r%s %.2f kbps | frame %.2f/%.2f ms (p50/p99) | latency %.0f ms | "
                    "underruns %llu overruns %llu",
            r->mode, r->kbps, p50_ms, p99_ms, r->latency_ms, (unsigned long long)r->underruns,
            (unsigned long long)r->overruns);
    if (!strcmp(r->mode, "listen"))
        fprintf(stderr, " | buffered %d | concealed %llu late %llu refused %llu",
                r->buffered, (unsigned long long)r->concealed, (unsigned long long)r->late,
                (unsigned long long)r->refused);
    if (!strcmp(r->mode, "send"))
        fprintf(stderr, " | sent %llu dropped %llu", (unsigned long long)r->sent,
                (unsigned long long)r->dropped);
    fputs("\033[K", stderr); /* clear what a longer previous line left */
    fflush(stderr);
}

void live_stats_report(live_stats *s, const live_report *r)
{
    qsort(s->window, (size_t)s->n_window, sizeof(double), by_value);
    double p50 = 1e3 * quantile(s->window, s->n_window, 0.50);
    double p99 = 1e3 * quantile(s->window, s->n_window, 0.99);
    s->n_window = 0;
    if (s->json) {
        fputc('{', s->json);
        json_fields(s->json, r, p50, p99);
        fputs("}\n", s->json);
        fflush(s->json);
    }
    if (s->status)
        status_line(r, p50, p99);
}

void live_stats_summary(live_stats *s, const live_report *r, double wall_s)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double cpu_s = (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
                   (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
    double cpu_percent = wall_s > 0 ? 100.0 * cpu_s / wall_s : 0.0;
    double p50 = 1e3 * hist_quantile(s, 0.50), p99 = 1e3 * hist_quantile(s, 0.99);
    if (s->json) {
        fputs("{\"summary\":true,", s->json);
        json_fields(s->json, r, p50, p99);
        fprintf(s->json, ",\"proc_ms_max\":%.3f,\"wall_s\":%.3f,\"cpu_percent\":%.1f,"
                         "\"max_rss_kb\":%ld}\n",
                1e3 * s->max_s, wall_s, cpu_percent, u.ru_maxrss);
        fflush(s->json);
    }
    if (s->status) {
        status_line(r, p50, p99);
        fprintf(stderr, "\n%s: %llu frames in %.1f s, frame p50 %.2f ms p99 %.2f ms, "
                        "CPU %.1f %% of one core, peak RSS %ld kB\n",
                r->mode, (unsigned long long)r->frames, wall_s, p50, p99, cpu_percent,
                u.ru_maxrss);
    }
}

double live_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void live_sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}
