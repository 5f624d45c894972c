/* file -> packets -> file: what a radio link does with libtokvox.
 *
 *   cc file_to_packets.c $(pkg-config --cflags --libs tokvox sndfile) -o file_to_packets
 *   ./file_to_packets in.wav out.wav [KBPS]
 *
 * Reads a mono 16 kHz WAV (libsndfile), cuts it into 20 ms frames, encodes
 * each into one packet (tokvox_encoder_encode_packet: 11 bytes at 4 kbps,
 * 4 at 1 kbps), switches the bitrate half-way, decodes every packet again
 * (tokvox_decoder_decode_packet) and writes what came out, lined up with the
 * input.  Prints the bytes sent. */
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tokvox/tokvox.h>

#if TOKVOX_VERSION_NUMBER < 100
#error "needs libtokvox 0.1 or later"
#endif

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "file_to_packets: %s: %s\n", what, why);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return fail("usage", "file_to_packets in.wav out.wav [KBPS]");
    double kbps = argc > 3 ? atof(argv[3]) : 2.0;
    char detail[512];
    int err;
    tokvox_model *model = tokvox_model_load(NULL, &err, detail, sizeof detail);
    if (!model)
        return fail("model", detail);
    tokvox_model_info info = {.size = sizeof info};
    tokvox_model_get_info(model, &info);
    /* codebooks for the bitrate: each is codebook_bits x frames per second */
    double per_codebook = info.codebook_bits * (double)info.sample_rate / info.hop / 1000.0;
    int codebooks = (int)(kbps / per_codebook + 0.5);
    codebooks = codebooks < 1 ? 1 : codebooks > info.num_codebooks ? info.num_codebooks : codebooks;

    SF_INFO in_info = {0};
    SNDFILE *in = sf_open(argv[1], SFM_READ, &in_info);
    if (!in)
        return fail(argv[1], sf_strerror(NULL));
    if (in_info.channels != 1 || in_info.samplerate != info.sample_rate)
        return fail(argv[1], "this example wants mono audio at the model's rate (16 kHz)");
    SF_INFO out_info = {.samplerate = info.sample_rate, .channels = 1,
                        .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *out = sf_open(argv[2], SFM_WRITE, &out_info);
    if (!out)
        return fail(argv[2], sf_strerror(NULL));

    tokvox_encoder *enc = tokvox_encoder_create(model, codebooks, &err);
    tokvox_decoder *dec = tokvox_decoder_create(model, codebooks, 0, &err);
    if (!enc || !dec)
        return fail("codec", tokvox_strerror(err));
    size_t hop = (size_t)info.hop, packets = 0, bytes = 0, total = 0, written = 0;
    size_t skip = (size_t)tokvox_decoder_latency(dec); /* a hop for the shipped model */
    float *pcm = calloc(hop, sizeof *pcm), *back = calloc(hop, sizeof *back);
    uint8_t packet[64];
    /* one frame per packet; after the input, hops of silence push the last
     * input samples out of the decoder (it lags by its latency) */
    for (;;) {
        sf_count_t got = sf_readf_float(in, pcm, (sf_count_t)hop);
        got = got < 0 ? 0 : got;
        if (got == 0 && written >= total)
            break;
        total += (size_t)got;
        memset(pcm + got, 0, sizeof *pcm * (hop - (size_t)got));
        if (packets == 100) /* two seconds in: half the bitrate, nothing reset */
            tokvox_encoder_set_codebooks(enc, codebooks > 1 ? codebooks / 2 : 1);
        size_t len = 0, n = 0;
        err = tokvox_encoder_encode_packet(enc, pcm, hop, packet, sizeof packet, &len);
        if (!err) /* ... the packet crosses the link here ... */
            err = tokvox_decoder_decode_packet(dec, packet, len, back, hop, &n);
        if (err)
            return fail("coding", tokvox_strerror(err));
        packets++;
        bytes += len;
        /* the first samples decoded are the decoder's delay; the end is cut
         * at the input's length */
        size_t drop = skip < n ? skip : n, keep = n - drop;
        skip -= drop;
        if (written + keep > total)
            keep = total > written ? total - written : 0;
        sf_writef_float(out, back + drop, (sf_count_t)keep);
        written += keep;
    }
    printf("%zu packets, %zu bytes: %.2f kbps with the TOC bytes\n", packets, bytes,
           8.0 * (double)bytes / ((double)packets * hop / info.sample_rate) / 1000.0);
    sf_close(in);
    sf_close(out);
    free(pcm);
    free(back);
    tokvox_encoder_destroy(enc);
    tokvox_decoder_destroy(dec);
    tokvox_model_destroy(model);
    return 0;
}
