/* The loaded model as the engine sees it (private to libtokvox). */
#ifndef TOKVOX_MODEL_INTERNAL_H
#define TOKVOX_MODEL_INTERNAL_H

#include "dsp.h"
#include "plugin_host.h"
#include "safetensors.h"
#include "tokvox/tokvox.h"

/* tokvox_model_info's size in its first version: a caller's .size below
 * it is a mistake (fields appended later are optional).  Frozen: later
 * fields go after `name`. */
#define TK_MODEL_INFO_SIZE_1 \
    (offsetof(tokvox_model_info, name) + sizeof(((tokvox_model_info *)0)->name))

/* Largest block of frames the engine hands a plugin at once. */
#define TK_MAX_BLOCK 256

struct tokvox_model {
    char *path;
    char *config_json;
    st_file *file;
    tk_plugin model_plugin, quantizer_plugin;
    void *model, *quantizer;               /* plugin instances */
    const tokvox_model_api *model_api;     /* normalised, in the tk_plugins */
    const tokvox_quantizer_api *quantizer_api;
    tokvox_model_layout layout;            /* normalised copies */
    tokvox_quantizer_layout qlayout;
    tokvox_model_info info;
    int sub_frames;                        /* synthesis frames per code frame (framing) */
    float log_floor;
    tk_postfilter postfilter;              /* decode-time, from the config (engine.c) */
    void **owned;                          /* what tensor()/tensor_f32() handed out */
    size_t n_owned;
};

/* Engine state the packet layer (packet.c) needs: a session's model, the
 * samples of a partial hop pushed. */
const tokvox_model *tk_encoder_model(const tokvox_encoder *e);
size_t tk_encoder_pending(const tokvox_encoder *e);
const tokvox_model *tk_decoder_model(const tokvox_decoder *d);
/* A packet's count becomes the stream's; the decoder's use_codebooks cap
 * (as given at create or set_codebooks, 0 = none) still applies. */
void tk_decoder_set_stream(tokvox_decoder *d, int stream_codebooks);

/* Frames through the decoder with a packet's framing (packet.c): hop
 * samples per frame, a stream's first hop zeros.  decode: `frames` frames of
 * num_codebooks codes; conceal: `frames` lost ones. */
int tk_decode_frames(tokvox_decoder *d, const uint16_t *codes, int frames, int num_codebooks,
                     float *pcm);
int tk_conceal_frames(tokvox_decoder *d, size_t frames, float *pcm);

/* A packet's TOC byte: its frame and codebook counts and the packet's
 * size, or TOKVOX_ERR_VERSION / TOKVOX_ERR_FORMAT. */
int tk_packet_toc(const tokvox_model *m, uint8_t toc, int *frames, int *num_codebooks,
                  size_t *size);

#endif
