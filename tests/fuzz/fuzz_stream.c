/* libFuzzer target for the stream layer's datagram parser (codec/src/
 * stream.c, and through it the packet parser of codec/src/packet.c): the
 * input is a sequence of datagrams, each a byte of length then that many
 * bytes, pushed into one receiver with the shipped model, with a frame
 * pulled after each.  Besides the sanitizers' checks it asserts the
 * receiver's promises: only the documented errors, a refused datagram
 * changes no counter but `refused`, and every pull gives a hop or nothing.
 *
 *   clang -g -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_stream.c
 *   ./fuzz_stream tests/fuzz/corpus/stream      (TOKVOX_MODEL = the model)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokvox/stream.h"
#include "tokvox/tokvox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tokvox_model *model;
static tokvox_model_info info = {.size = sizeof info};

static void load(void)
{
    char detail[512] = "";
    model = tokvox_model_load(NULL, NULL, detail, sizeof detail);
    if (!model) {
        fprintf(stderr, "fuzz_stream: %s\n", detail);
        abort();
    }
    tokvox_model_get_info(model, &info);
}

static int documented(int err)
{
    return err == TOKVOX_OK || err == TOKVOX_ERR_FORMAT || err == TOKVOX_ERR_TRUNCATED ||
           err == TOKVOX_ERR_VERSION || err == TOKVOX_ERR_MODEL_MISMATCH ||
           err == TOKVOX_ERR_CODE_RANGE || err == TOKVOX_ERR_AUTH;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model)
        load();
    tokvox_receiver_config rc;
    tokvox_receiver_config_init(&rc);
    tokvox_receiver *r = tokvox_receiver_create(model, &rc, NULL);
    /* and one that wants sealed datagrams: the path before authentication */
    static const uint8_t key[TOKVOX_STREAM_KEY_BYTES];
    rc.key = key;
    tokvox_receiver *sealed = tokvox_receiver_create(model, &rc, NULL);
    if (!r || !sealed)
        abort();
    float pcm[4096];
    double now = 0;
    for (size_t at = 0; at < size; now += 0.02) {
        size_t len = data[at++];
        len = len < size - at ? len : size - at;
        tokvox_receiver_stats before = {.size = sizeof before}, after = {.size = sizeof after};
        tokvox_receiver_get_stats(r, &before);
        int err = tokvox_receiver_push(r, data + at, len, now);
        tokvox_receiver_get_stats(r, &after);
        if (!documented(err))
            abort();
        if (err && (after.refused != before.refused + 1 || after.datagrams != before.datagrams))
            abort();
        err = tokvox_receiver_push(sealed, data + at, len, now);
        if (err != TOKVOX_ERR_AUTH && err != TOKVOX_ERR_FORMAT && err != TOKVOX_ERR_TRUNCATED &&
            err != TOKVOX_ERR_VERSION)
            abort(); /* nothing unsealed, nothing not sealed with the key gets in */
        at += len;
        size_t got = 0;
        if (tokvox_receiver_pull(r, now, pcm, sizeof pcm / sizeof pcm[0], &got) != TOKVOX_OK ||
            (got != 0 && got != (size_t)info.hop))
            abort();
    }
    tokvox_receiver_destroy(r);
    tokvox_receiver_destroy(sealed);
    return 0;
}
