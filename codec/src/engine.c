/* Encoder and decoder sessions: the frame engine shared by files, tokens and
 * live streams.  Samples are collected into hops; each full hop makes one
 * feature frame; feature frames are coded in blocks of up to TK_MAX_BLOCK.
 * Everything a session needs is allocated at create time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "model_internal.h"

struct tokvox_encoder {
    const tokvox_model *m;
    int num_codebooks;
    size_t hop, n_fft, bins, block;
    tk_stft *stft;
    void *state;           /* model plugin's causal history */
    float *window;         /* the last n_fft samples: overhang then current hop */
    size_t pending;        /* samples of the current hop collected so far */
    float *features;       /* [block][bins] */
    size_t n_features;
    float *latent;         /* [block][latent_dim] */
    int finished;
};

struct tokvox_decoder {
    const tokvox_model *m;
    int stream_codebooks, use_codebooks;
    int use_limit;         /* use_codebooks as asked (0 = all): caps packets */
    size_t hop, n_fft, bins, block;
    size_t sub_frames;     /* K synthesis frames per code frame ... */
    size_t synth_hop;      /* ... at hop / K samples apart */
    float synth_gain;      /* 2 * synth_hop / n_fft: exactly 1 for K = 1 */
    tk_stft *stft;
    void *state;
    float *latent;         /* [block][latent_dim] */
    float *head;           /* [block][K][2 * bins] */
    float *frame;          /* one synthesised n_fft frame */
    float *overlap;        /* n_fft samples being overlap-added */
    float *filtered;       /* one sub-frame's post-filtered log magnitude (bins) */
    double *sums;          /* the post-filter's prefix sums (bins + 1) */
    int postfilter;        /* apply the model's post-filter (it has one and it is on) */
    size_t skip;           /* stream padding still to drop: n_fft - synth_hop at the start */
    uint64_t frames_seen;
};

static size_t block_size(const tokvox_model *m)
{
    size_t b = (size_t)m->layout.max_frames;
    return b < TK_MAX_BLOCK ? b : TK_MAX_BLOCK;
}

/* ---- encoder --------------------------------------------------------- */

tokvox_encoder *tokvox_encoder_create(const tokvox_model *m, int num_codebooks, int *error)
{
    int dummy;
    error = error ? error : &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (!m || num_codebooks < 0 || num_codebooks > m->info.num_codebooks)
        return NULL;
    tokvox_encoder *e = calloc(1, sizeof *e);
    *error = TOKVOX_ERR_NO_MEMORY;
    if (!e)
        return NULL;
    e->m = m;
    e->num_codebooks = num_codebooks ? num_codebooks : m->info.num_codebooks;
    e->hop = (size_t)m->info.hop;
    e->n_fft = (size_t)m->info.n_fft;
    e->bins = e->n_fft / 2 + 1;
    e->block = block_size(m);
    size_t latent_dim = (size_t)m->layout.latent_dim;
    e->stft = tk_stft_create((int)e->n_fft, error);
    e->state = m->model_api->encoder_state_create(m->model);
    e->window = calloc(e->n_fft, sizeof(float));
    e->features = malloc(sizeof(float) * e->block * e->bins);
    e->latent = malloc(sizeof(float) * e->block * latent_dim);
    if (!e->stft || !e->state || !e->window || !e->features || !e->latent) {
        tokvox_encoder_destroy(e);
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    *error = TOKVOX_OK;
    return e;
}

void tokvox_encoder_destroy(tokvox_encoder *e)
{
    if (!e)
        return;
    tk_stft_destroy(e->stft);
    if (e->state)
        e->m->model_api->state_destroy(e->m->model, e->state);
    free(e->window);
    free(e->features);
    free(e->latent);
    free(e);
}

int tokvox_encoder_num_codebooks(const tokvox_encoder *e) { return e ? e->num_codebooks : 0; }

/* Frames are quantized one block at a time at the count in force when the
 * block is coded, and push codes every complete hop before it returns, so a
 * new count applies exactly from the next frame completed. */
int tokvox_encoder_set_codebooks(tokvox_encoder *e, int num_codebooks)
{
    if (!e || num_codebooks < 0 || num_codebooks > e->m->info.num_codebooks)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    e->num_codebooks = num_codebooks ? num_codebooks : e->m->info.num_codebooks;
    return TOKVOX_OK;
}

size_t tk_encoder_pending(const tokvox_encoder *e) { return e->pending; }
const tokvox_model *tk_encoder_model(const tokvox_encoder *e) { return e->m; }

void tokvox_encoder_reset(tokvox_encoder *e)
{
    if (!e)
        return;
    memset(e->window, 0, sizeof(float) * e->n_fft);
    e->pending = 0;
    e->n_features = 0;
    e->finished = 0;
    e->m->model_api->state_reset(e->m->model, e->state);
}

/* Run the model and quantizer over the collected feature frames. */
static int encode_features(tokvox_encoder *e, uint16_t *codes)
{
    const tokvox_model *m = e->m;
    if (e->n_features == 0)
        return TOKVOX_OK;
    int err = m->model_api->encode(m->model, e->state, e->features, e->n_features, e->latent);
    if (!err)
        err = m->quantizer_api->encode(m->quantizer, e->latent, e->n_features, e->num_codebooks,
                                       codes);
    e->n_features = 0;
    return err;
}

/* One full hop is in the window: make its feature frame and slide. */
static int complete_hop(tokvox_encoder *e, uint16_t *codes, size_t *frames_out)
{
    tk_stft_log_magnitude(e->stft, e->window, e->m->log_floor,
                          e->features + e->n_features * e->bins);
    e->n_features++;
    memmove(e->window, e->window + e->hop, sizeof(float) * (e->n_fft - e->hop));
    e->pending = 0;
    if (e->n_features < e->block)
        return TOKVOX_OK;
    size_t first = *frames_out;
    *frames_out += e->n_features;
    return encode_features(e, codes + first * (size_t)e->num_codebooks);
}

static int push_samples(tokvox_encoder *e, const float *pcm, size_t n, uint16_t *codes,
                        size_t *frames_out)
{
    size_t overhang = e->n_fft - e->hop;
    while (n > 0) {
        size_t take = e->hop - e->pending;
        take = take < n ? take : n;
        float *dst = e->window + overhang + e->pending;
        if (pcm) {
            /* The codec's input domain is [-1, 1]: one NaN or Inf (or a huge
             * value, whose square overflows in the STFT) would turn every
             * later frame into garbage codes through the causal state, so
             * such samples are silenced and overs clamped. */
            for (size_t i = 0; i < take; i++) {
                float v = pcm[i];
                dst[i] = !isfinite(v) ? 0.0f : v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
            }
            pcm += take;
        } else {
            memset(dst, 0, sizeof(float) * take);
        }
        e->pending += take;
        n -= take;
        if (e->pending == e->hop) {
            int err = complete_hop(e, codes, frames_out);
            if (err)
                return err;
        }
    }
    size_t first = *frames_out;
    *frames_out += e->n_features;
    return encode_features(e, codes + first * (size_t)e->num_codebooks);
}

int tokvox_encoder_push(tokvox_encoder *e, const float *pcm, size_t n, uint16_t *codes,
                        size_t max_frames, size_t *frames_out)
{
    if (!e || !frames_out || (n && !pcm) || (!codes && max_frames))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *frames_out = 0;
    if (e->finished)
        return TOKVOX_ERR_STATE;
    if ((e->pending + n) / e->hop > max_frames)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    return push_samples(e, pcm, n, codes, frames_out);
}

int tokvox_encoder_flush(tokvox_encoder *e, uint16_t *codes, size_t max_frames,
                         size_t *frames_out)
{
    if (!e || !frames_out)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *frames_out = 0;
    if (e->finished)
        return TOKVOX_ERR_STATE;
    /* zero-pad the partial hop, then one silent hop so the decoder can
     * finish the overlap of the last real one */
    size_t padding = (e->pending ? e->hop - e->pending : 0) + e->hop;
    if (padding / e->hop > max_frames || !codes)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    e->finished = 1;
    return push_samples(e, NULL, padding, codes, frames_out);
}

/* ---- decoder --------------------------------------------------------- */

tokvox_decoder *tokvox_decoder_create(const tokvox_model *m, int stream_codebooks,
                                      int use_codebooks, int *error)
{
    int dummy;
    error = error ? error : &dummy;
    *error = TOKVOX_ERR_INVALID_ARGUMENT;
    if (!m || stream_codebooks < 1 || stream_codebooks > m->info.num_codebooks ||
        use_codebooks < 0 || use_codebooks > stream_codebooks)
        return NULL;
    tokvox_decoder *d = calloc(1, sizeof *d);
    *error = TOKVOX_ERR_NO_MEMORY;
    if (!d)
        return NULL;
    d->m = m;
    tokvox_decoder_set_codebooks(d, stream_codebooks, use_codebooks);
    d->hop = (size_t)m->info.hop;
    d->n_fft = (size_t)m->info.n_fft;
    d->bins = d->n_fft / 2 + 1;
    d->block = block_size(m);
    d->sub_frames = (size_t)m->sub_frames;
    d->synth_hop = d->hop / d->sub_frames;
    /* the squared sqrt-Hann overlap-adds to n_fft / (2 * synth_hop) */
    d->synth_gain = (float)(2 * d->synth_hop) / (float)d->n_fft;
    d->skip = d->n_fft - d->synth_hop;
    tokvox_decoder_set_postfilter(d, 1); /* the model's, if it has one */
    d->stft = tk_stft_create((int)d->n_fft, error);
    d->state = m->model_api->decoder_state_create(m->model);
    d->latent = malloc(sizeof(float) * d->block * (size_t)m->layout.latent_dim);
    d->head = malloc(sizeof(float) * d->block * (size_t)m->layout.head_dim);
    d->frame = malloc(sizeof(float) * d->n_fft);
    d->overlap = calloc(d->n_fft, sizeof(float));
    d->filtered = malloc(sizeof(float) * d->bins);
    d->sums = malloc(sizeof(double) * (d->bins + 1));
    if (!d->stft || !d->state || !d->latent || !d->head || !d->frame || !d->overlap ||
        !d->filtered || !d->sums) {
        tokvox_decoder_destroy(d);
        *error = TOKVOX_ERR_NO_MEMORY;
        return NULL;
    }
    *error = TOKVOX_OK;
    return d;
}

void tokvox_decoder_destroy(tokvox_decoder *d)
{
    if (!d)
        return;
    tk_stft_destroy(d->stft);
    if (d->state)
        d->m->model_api->state_destroy(d->m->model, d->state);
    free(d->latent);
    free(d->head);
    free(d->frame);
    free(d->overlap);
    free(d->filtered);
    free(d->sums);
    free(d);
}

/* The model's history and the overlap do not depend on the codebook count:
 * only the quantizer's decode reads it. */
int tokvox_decoder_set_codebooks(tokvox_decoder *d, int stream_codebooks, int use_codebooks)
{
    if (!d || stream_codebooks < 1 || stream_codebooks > d->m->info.num_codebooks ||
        use_codebooks < 0 || use_codebooks > stream_codebooks)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    d->stream_codebooks = stream_codebooks;
    d->use_codebooks = use_codebooks ? use_codebooks : stream_codebooks;
    d->use_limit = use_codebooks;
    return TOKVOX_OK;
}

int tokvox_decoder_set_postfilter(tokvox_decoder *d, int enabled)
{
    if (!d)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    d->postfilter = enabled && d->m->postfilter.strength > 0.0f;
    return TOKVOX_OK;
}

const tokvox_model *tk_decoder_model(const tokvox_decoder *d) { return d->m; }

void tk_decoder_set_stream(tokvox_decoder *d, int stream_codebooks)
{
    d->stream_codebooks = stream_codebooks;
    d->use_codebooks = d->use_limit && d->use_limit < stream_codebooks ? d->use_limit
                                                                       : stream_codebooks;
}

void tokvox_decoder_reset(tokvox_decoder *d)
{
    if (!d)
        return;
    memset(d->overlap, 0, sizeof(float) * d->n_fft);
    d->skip = d->n_fft - d->synth_hop;
    d->frames_seen = 0;
    d->m->model_api->state_reset(d->m->model, d->state);
}

/* Overlap-add one synthesised sub-frame and release the synth_hop samples
 * it finished, less the stream's leading padding: the first n_fft -
 * synth_hop samples of the overlap-add precede the stream (train/model.py
 * drops them too), so they are never released. */
static size_t overlap_add_one(tokvox_decoder *d, const float *spectrum, float *pcm)
{
    size_t sh = d->synth_hop;
    const float *log_mag = spectrum;
    if (d->postfilter) {
        tk_postfilter_apply(&d->m->postfilter, spectrum, (int)d->bins, d->sums, d->filtered);
        log_mag = d->filtered;
    }
    tk_stft_from_mag_phase(d->stft, log_mag, spectrum + d->bins, d->frame);
    for (size_t i = 0; i < d->n_fft; i++)
        d->overlap[i] += d->frame[i] * d->synth_gain;
    size_t dropped = d->skip < sh ? d->skip : sh;
    d->skip -= dropped;
    memcpy(pcm, d->overlap + dropped, sizeof(float) * (sh - dropped));
    memmove(d->overlap, d->overlap + sh, sizeof(float) * (d->n_fft - sh));
    memset(d->overlap + d->n_fft - sh, 0, sizeof(float) * sh);
    return sh - dropped;
}

/* One code frame's head: its K spectra in time order.  Releases up to a
 * hop: none for a stream's first frame, then (K = 1) a hop each, or
 * (K > 1) hop - synth_hop for the second and a hop from the third on. */
static size_t overlap_add(tokvox_decoder *d, const float *head, float *pcm)
{
    size_t released = 0;
    for (size_t k = 0; k < d->sub_frames; k++)
        released += overlap_add_one(d, head + k * 2 * d->bins, pcm + released);
    d->frames_seen++;
    return released;
}

static int check_codes(const tokvox_decoder *d, const uint16_t *codes, size_t n_frames)
{
    size_t n = n_frames * (size_t)d->stream_codebooks;
    for (size_t i = 0; i < n; i++)
        if (codes[i] >= d->m->info.codebook_size)
            return TOKVOX_ERR_CODE_RANGE;
    return TOKVOX_OK;
}

int tokvox_decoder_push(tokvox_decoder *d, const uint16_t *codes, size_t n_frames, float *pcm,
                        size_t *samples_out)
{
    if (!d || !samples_out || (n_frames && (!codes || !pcm)))
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *samples_out = 0;
    int err = check_codes(d, codes, n_frames);
    const tokvox_model *m = d->m;
    size_t head_dim = (size_t)m->layout.head_dim;
    while (!err && n_frames > 0) {
        size_t n = n_frames < d->block ? n_frames : d->block;
        err = m->quantizer_api->decode(m->quantizer, codes, n, d->stream_codebooks,
                                       d->use_codebooks, d->latent);
        if (!err)
            err = m->model_api->decode(m->model, d->state, d->latent, n, d->head);
        for (size_t t = 0; !err && t < n; t++)
            *samples_out += overlap_add(d, d->head + t * head_dim, pcm + *samples_out);
        /* keep the newest latent in slot 0: concealment repeats it */
        size_t dim = (size_t)m->layout.latent_dim;
        memmove(d->latent, d->latent + (n - 1) * dim, sizeof(float) * dim);
        codes += n * (size_t)d->stream_codebooks;
        n_frames -= n;
    }
    return err;
}

int tokvox_decoder_flush(tokvox_decoder *d, float *pcm, size_t *samples_out)
{
    if (!d || !pcm || !samples_out)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *samples_out = 0;
    if (d->frames_seen == 0)
        return TOKVOX_OK;
    /* the window overhang still owed, less any padding not yet dropped (a
     * stream shorter than the overhang) */
    size_t owed = d->n_fft - d->synth_hop;
    size_t dropped = d->skip < owed ? d->skip : owed;
    memcpy(pcm, d->overlap + dropped, sizeof(float) * (owed - dropped));
    memset(d->overlap, 0, sizeof(float) * d->n_fft);
    d->skip -= dropped;
    *samples_out = owed - dropped;
    return TOKVOX_OK;
}

/* ---- latency and loss concealment (live streams) --------------------- */

/* The encoder's share of the model latency: a sample waits until the hop it
 * falls in is complete. */
int tokvox_encoder_latency(const tokvox_encoder *e)
{
    return e ? (int)e->hop : TOKVOX_ERR_INVALID_ARGUMENT;
}

/* The decoder's share: each synthesis frame releases the oldest synth_hop
 * of its window, so the window overhang, n_fft - synth_hop, is still owed
 * when a frame is decoded (and is what the flush writes). */
int tokvox_decoder_latency(const tokvox_decoder *d)
{
    return d ? (int)(d->n_fft - d->synth_hop) : TOKVOX_ERR_INVALID_ARGUMENT;
}

/* Decay of the repeated latent per concealed frame: a lost frame continues
 * the last sound and a burst of losses fades out instead of droning on. */
#define TK_CONCEAL_DECAY 0.7f

/* One frame without codes.  d->latent[0] is the latent of the last decoded
 * frame (decoder_push keeps it there), or of the last concealed one, which
 * this scales again, so a burst decays geometrically.
 * Running it through the decoder keeps the model's history and the overlap
 * continuous, which repeating PCM or writing zeros would break with a click. */
int tokvox_decoder_conceal(tokvox_decoder *d, float *pcm, size_t *samples_out)
{
    if (!d || !pcm || !samples_out)
        return TOKVOX_ERR_INVALID_ARGUMENT;
    *samples_out = 0;
    const tokvox_model *m = d->m;
    size_t dim = (size_t)m->layout.latent_dim;
    for (size_t i = 0; i < dim; i++) /* nothing heard yet: nothing to repeat */
        d->latent[i] = d->frames_seen ? d->latent[i] * TK_CONCEAL_DECAY : 0.0f;
    int err = m->model_api->decode(m->model, d->state, d->latent, 1, d->head);
    if (!err)
        *samples_out = overlap_add(d, d->head, pcm);
    return err;
}
