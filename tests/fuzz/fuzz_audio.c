/* libFuzzer target for the audio read path (io/audio.c): the input bytes are
 * opened as an in-memory file with libsndfile's virtual I/O and go through
 * tokvox_audio_read_memory (the streaming reader), resampled to 16 kHz, as
 * tokvox_audio_read does for files and stdin.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -D_DEFAULT_SOURCE -Icodec/include -Iio/include -Iio tests/fuzz/fuzz_audio.c \
 *     io/audio.c io/atomic.c -lsndfile -lsoxr -lpthread -lm -o fuzz_audio
 *   ./fuzz_audio -max_total_time=60 tests/fuzz/corpus/audio
 */
#include "audio_internal.h"
#include "tokvox/io.h"
#include "tokvox/tokvox.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Compressed formats can expand a few bytes into very long audio: stop at
 * a length that keeps each run fast. */
#define FUZZ_MAX_SAMPLES ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libvorbis, reached through libsndfile's Ogg reader, leaks on some broken
 * files when the open fails (the caller gets no handle to free; cf.
 * libsndfile issue #922, xiph/vorbis issue #125).  Those leaks are not ours;
 * leaks of libsndfile's own handles (a missing sf_close) are still reported. */
const char *__lsan_default_suppressions(void)
{
    return "leak:libvorbis.so\n"
           "leak:libogg.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float *samples = NULL;
    size_t n = 0;
    tokvox_audio_source source;
    char detail[256];
    memset(detail, 0x5a, sizeof detail); /* must come back terminated */
    int rc = tokvox_audio_read_memory(data, size, "fuzz", 16000, FUZZ_MAX_SAMPLES, &samples, &n,
                                      &source, detail, sizeof detail);
    if (rc == TOKVOX_OK) {
        if (!samples || n == 0)
            abort();
        if (source.rate < TOKVOX_AUDIO_MIN_RATE || source.rate > TOKVOX_AUDIO_MAX_RATE ||
            source.channels < 1 || source.channels > TOKVOX_AUDIO_MAX_CHANNELS ||
            source.frames < 1 || (size_t)source.frames > FUZZ_MAX_SAMPLES)
            abort();
        for (size_t i = 0; i < n; i++)
            if (!isfinite(samples[i]))
                abort();
        /* round(frames * 16000 / rate), give or take one. */
        double expect = (double)source.frames * 16000.0 / source.rate;
        if (fabs((double)n - expect) > 1.0 + 1e-9 * expect && !(n == 1 && expect < 1.0))
            abort();
    } else {
        if (samples || n)
            abort();
        if (!memchr(detail, '\0', sizeof detail) || strncmp(detail, "fuzz", 4) != 0)
            abort();
        if (rc != TOKVOX_ERR_AUDIO && rc != TOKVOX_ERR_NO_MEMORY)
            abort();
    }
    free(samples);
    return 0;
}
