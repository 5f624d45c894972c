/* Packets: one to four code frames as bytes, a TOC byte and the codes
 * through the bit packer (format in tokvox.h and docs/packets.md).  The
 * encoder and decoder calls here are thin: push and pack, unpack and push;
 * what they add is the contract an embedder needs, a fixed number of
 * samples per packet in and out and a bitrate read from every packet. */
#include <string.h>

#include "model_internal.h"

enum {
    TOC_CODEBOOK_BITS = 5, /* bits 0-4: codebooks - 1 */
    TOC_FRAME_SHIFT = 5,   /* bits 5-6: frames - 1 */
    TOC_RESERVED = 0x80,   /* bit 7: a later packet version */
};

static int layout_valid(const tokvox_model *m, int frames, int num_codebooks)
{
    return frames >= 1 && frames <= TOKVOX_PACKET_MAX_FRAMES && num_codebooks >= 1 &&
           num_codebooks <= TOKVOX_PACKET_CODEBOOKS_MAX &&
           num_codebooks <= m->info.num_codebooks;
}

static size_t packet_size(const tokvox_model *m, int frames, int num_codebooks)
{
    return 1 + tokvox_bits_size((size_t)frames * (size_t)num_codebooks, m->info.codebook_bits);
}

size_t tokvox_packet_bytes(const tokvox_model *m, int frames, int num_codebooks)
{
    if (!m)
        return 0;
    num_codebooks = num_codebooks ? num_codebooks : m->info.num_codebooks;
    return layout_valid(m, frames, num_codebooks) ? packet_size(m, frames, num_codebooks) : 0;
}

int tk_packet_toc(const tokvox_model *m, uint8_t toc, int *frames, int *num_codebooks,
                  size_t *size)
{
    if (toc & TOC_RESERVED)
        return TOKVOX_ERR_VERSION;
    int f = ((toc >> TOC_FRAME_SHIFT) & 3) + 1;
    int cb = (toc & ((1 << TOC_CODEBOOK_BITS) - 1)) + 1;
    if (!layout_valid(m, f, cb))
        return TOKVOX_ERR_FORMAT;
    *frames = f;
    *num_codebooks = cb;
    *size = packet_size(m, f, cb);
    return TOKVOX_OK;
}

int tokvox_packet_layout(const tokvox_model *m, const uint8_t *data, size_t len, int *frames,
                         int *num_codebooks)
{
    if (!m || (!data && len))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (len == 0)
        return TOKVOX_ERR_TRUNCATED;
    int f = 0, cb = 0;
    size_t want = 0;
    int err = tk_packet_toc(m, data[0], &f, &cb, &want);
    if (err)
        return err;
    if (len != want)
        return len < want ? TOKVOX_ERR_TRUNCATED : TOKVOX_ERR_FORMAT;
    if (frames)
        *frames = f;
    if (num_codebooks)
        *num_codebooks = cb;
    return TOKVOX_OK;
}

int tokvox_packet_pack(const tokvox_model *m, const uint16_t *codes, int frames,
                       int num_codebooks, uint8_t *out, size_t out_size, size_t *len)
{
    if (len)
        *len = 0;
    if (!m || !codes || !out || !len || !layout_valid(m, frames, num_codebooks))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    size_t n = (size_t)frames * (size_t)num_codebooks, size = packet_size(m, frames, num_codebooks);
    if (out_size < size)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++)
        if (codes[i] >= m->info.codebook_size)
            return TOKVOX_ERR_CODE_RANGE;
    int err = tokvox_bits_pack(codes, n, m->info.codebook_bits, out + 1, size - 1);
    if (err)
        return err;
    out[0] = (uint8_t)((frames - 1) << TOC_FRAME_SHIFT | (num_codebooks - 1));
    *len = size;
    return TOKVOX_OK;
}

int tokvox_packet_unpack(const tokvox_model *m, const uint8_t *data, size_t len,
                         uint16_t *codes, size_t max_codes, int *frames, int *num_codebooks)
{
    int f = 0, cb = 0;
    if (!codes)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    int err = tokvox_packet_layout(m, data, len, &f, &cb);
    if (err)
        return err;
    size_t n = (size_t)f * (size_t)cb;
    if (max_codes < n)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    err = tokvox_bits_unpack(data + 1, len - 1, m->info.codebook_bits, codes, n);
    for (size_t i = 0; !err && i < n; i++)
        if (codes[i] >= m->info.codebook_size)
            err = TOKVOX_ERR_CODE_RANGE;
    if (err)
        return err;
    if (frames)
        *frames = f;
    if (num_codebooks)
        *num_codebooks = cb;
    return TOKVOX_OK;
}

int tokvox_encoder_encode_packet(tokvox_encoder *e, const float *pcm, size_t n, uint8_t *out,
                                 size_t out_size, size_t *len)
{
    if (len)
        *len = 0;
    if (!e || !pcm || !out || !len)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    const tokvox_model *m = tk_encoder_model(e);
    size_t hop = (size_t)m->info.hop;
    int cb = tokvox_encoder_num_codebooks(e);
    if (n == 0 || n % hop || n / hop > TOKVOX_PACKET_MAX_FRAMES ||
        out_size < tokvox_packet_bytes(m, (int)(n / hop), cb) || cb > TOKVOX_PACKET_CODEBOOKS_MAX)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    if (tk_encoder_pending(e))
        return TOKVOX_ERR_STATE;
    uint16_t codes[TOKVOX_PACKET_MAX_FRAMES * TOKVOX_PACKET_CODEBOOKS_MAX];
    size_t frames = 0;
    int err = tokvox_encoder_push(e, pcm, n, codes, TOKVOX_PACKET_MAX_FRAMES, &frames);
    if (!err && frames != n / hop)
        err = TOKVOX_ERR_STATE; /* a finished encoder */
    return err ? err : tokvox_packet_pack(m, codes, (int)frames, cb, out, out_size, len);
}

/* decoder_push releases up to a hop per frame, nothing at all until the
 * decoder's latency (n_fft - hop/K) has passed; a packet always gives hop
 * samples per frame, so what is missing is silence at the front: a
 * stream's first tokvox_decoder_latency samples. */
static void pad_front(float *pcm, size_t got, size_t want)
{
    if (got >= want)
        return;
    memmove(pcm + (want - got), pcm, sizeof(float) * got);
    memset(pcm, 0, sizeof(float) * (want - got));
}

int tk_decode_frames(tokvox_decoder *d, const uint16_t *codes, int frames, int num_codebooks,
                     float *pcm)
{
    size_t hop = (size_t)tk_decoder_model(d)->info.hop, got = 0;
    tk_decoder_set_stream(d, num_codebooks);
    int err = tokvox_decoder_push(d, codes, (size_t)frames, pcm, &got);
    if (!err)
        pad_front(pcm, got, (size_t)frames * hop);
    return err;
}

int tk_conceal_frames(tokvox_decoder *d, size_t frames, float *pcm)
{
    size_t hop = (size_t)tk_decoder_model(d)->info.hop;
    for (size_t f = 0; f < frames; f++) {
        size_t got = 0;
        int err = tokvox_decoder_conceal(d, pcm + f * hop, &got);
        if (err)
            return err;
        pad_front(pcm + f * hop, got, hop);
    }
    return TOKVOX_OK;
}

int tokvox_decoder_decode_packet(tokvox_decoder *d, const uint8_t *data, size_t len,
                                 float *pcm, size_t max_samples, size_t *samples_out)
{
    if (samples_out)
        *samples_out = 0;
    if (!d || !pcm || !samples_out)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    const tokvox_model *m = tk_decoder_model(d);
    size_t hop = (size_t)m->info.hop;
    if (!data) {
        if (max_samples < hop)
            return TOKVOX_ERR_INVALID_ARGUMENT;
        int err = tk_conceal_frames(d, max_samples / hop, pcm);
        *samples_out = err ? 0 : max_samples / hop * hop;
        return err;
    }
    uint16_t codes[TOKVOX_PACKET_MAX_FRAMES * TOKVOX_PACKET_CODEBOOKS_MAX];
    int frames = 0, cb = 0;
    int err = tokvox_packet_unpack(m, data, len, codes, sizeof codes / sizeof codes[0], &frames,
                                   &cb);
    if (err)
        return err;
    if ((size_t)frames * hop > max_samples)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    err = tk_decode_frames(d, codes, frames, cb, pcm);
    if (err)
        return err;
    *samples_out = (size_t)frames * hop;
    return TOKVOX_OK;
}
