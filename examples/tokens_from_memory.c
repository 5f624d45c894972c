/* Speech tokens with the model in memory: no model file at run time (a
 * program that links the weights in, or reads them from its own archive).
 *
 *   cc tokens_from_memory.c $(pkg-config --cflags --libs tokvox sndfile) -o tokens_from_memory
 *   ./tokens_from_memory $(pkg-config --variable=modeldir tokvox)/tokvox-16k.safetensors in.wav
 *
 * Reads the model file into a buffer (standing in for the embedded bytes),
 * loads it with tokvox_model_load_memory, encodes a mono 16 kHz WAV in one
 * call and prints its tokens: one line per 20 ms frame, one code per
 * codebook. */
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>

#include <tokvox/tokvox.h>

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    void *bytes = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        rewind(f);
        bytes = n > 0 ? malloc((size_t)n) : NULL;
        if (bytes && fread(bytes, 1, (size_t)n, f) != (size_t)n) {
            free(bytes);
            bytes = NULL;
        }
        *size = (size_t)n;
    }
    if (f)
        fclose(f);
    return bytes;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tokens_from_memory MODEL.safetensors in.wav\n");
        return 2;
    }
    size_t size = 0;
    void *bytes = read_all(argv[1], &size);
    if (!bytes) {
        perror(argv[1]);
        return 1;
    }
    char detail[512];
    int err;
    /* the bytes stay ours, and must outlive the model */
    tokvox_model *model = tokvox_model_load_memory(bytes, size, "embedded model", &err, detail,
                                                   sizeof detail);
    if (!model) {
        fprintf(stderr, "tokens_from_memory: %s\n", detail);
        return 1;
    }
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(model, &info);
    SF_INFO in_info = {0};
    SNDFILE *in = sf_open(argv[2], SFM_READ, &in_info);
    if (!in || in_info.channels != 1 || in_info.samplerate != info.sample_rate) {
        fprintf(stderr, "tokens_from_memory: %s: mono %d Hz audio wanted\n", argv[2],
                info.sample_rate);
        return 1;
    }
    size_t n = (size_t)in_info.frames;
    float *pcm = malloc(sizeof *pcm * (n ? n : 1));
    n = (size_t)sf_readf_float(in, pcm, (sf_count_t)n);
    sf_close(in);
    size_t frames = tokvox_frames_for_samples(model, n), got = 0, tail = 0;
    uint16_t *codes = malloc(sizeof *codes * frames * (size_t)info.num_codebooks);
    tokvox_encoder *enc = tokvox_encoder_create(model, 0, &err);
    if (!enc || tokvox_encoder_push(enc, pcm, n, codes, frames, &got) != TOKVOX_OK ||
        tokvox_encoder_flush(enc, codes + got * (size_t)info.num_codebooks, frames - got,
                             &tail) != TOKVOX_OK) {
        fprintf(stderr, "tokens_from_memory: encoding failed\n");
        return 1;
    }
    for (size_t t = 0; t < got + tail; t++) {
        for (int k = 0; k < info.num_codebooks; k++)
            printf(k ? " %u" : "%u", codes[t * (size_t)info.num_codebooks + (size_t)k]);
        printf("\n");
    }
    fprintf(stderr, "%zu frames x %d codebooks of %d entries (model %016llx, from memory)\n",
            got + tail, info.num_codebooks, info.codebook_size,
            (unsigned long long)info.model_id);
    tokvox_encoder_destroy(enc);
    tokvox_model_destroy(model);
    free(bytes);
    free(pcm);
    free(codes);
    return 0;
}
