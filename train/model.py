"""The tokvox STFT codec in PyTorch: the reference the C runtime must match.

Causal everywhere: convolutions are left-padded, the STFT frame t covers
samples [t*hop - (n_fft - hop), t*hop + hop) and the inverse STFT overlap-adds
into the same span, so a frame's output is final one frame later.  With
n_fft = 2 * hop the algorithmic latency is n_fft samples (40 ms at 16 kHz);
with K synthesis sub-frames (config `subframes`) it is hop + n_fft - hop/K
(55 ms for the shipped K = 4).

Tensor names here are the names in the exported safetensors file, and the C
model plugin (plugins/models/stftcodec) binds exactly these names.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import registry

DEFAULT_CONFIG = {
    "sample_rate": 16000,
    "hop": 320,
    "n_fft": 640,
    "window": "sqrt_hann",
    "dim": 256,
    "ffn_dim": 768,
    "kernel": 7,
    "enc_blocks": 4,
    "dec_blocks": 6,
    "latent_dim": 128,
    "quantizer": "grvq",
    "groups": 2,
    "stages": 4,
    "codebook_size": 1024,
    "log_floor": 1e-5,
    # synthesis frames per code frame: 1 is the shipped framing (synthesis hop
    # = hop, 2x overlap); K > 1 has the decoder emit K spectra per code frame
    # at hop / K (issue 12: more overlap; the C engine runs any K that divides
    # hop, at hop + n_fft - hop/K samples of latency)
    "subframes": 1,
    # decode-time spectral post-filter (issue 12): each synthesis spectrum's
    # log magnitude gains strength * (envelope - tilt), the two being moving
    # averages over postfilter_envelope_bins and postfilter_tilt_bins bins;
    # it deepens the valleys between formants that mel-loss training fills
    # in.  Training runs without it (Codec.forward); 0 turns it off.
    "postfilter": 0.0,
    "postfilter_envelope_bins": 15,
    "postfilter_tilt_bins": 61,
}


def sqrt_hann(n):
    """Periodic sqrt-Hann: its square overlap-adds to 1 at 50 % overlap."""
    k = torch.arange(n, dtype=torch.float64)
    return torch.sin(math.pi * k / n).float()


def frame_autocorrelation(frames, max_lag):
    """frames [..., n] -> (autocorrelation at lags 0..max_lag-1 normalised by
    lag 0, the lag-0 energy): of the mean-removed frames, through an FFT of
    twice the frame so no lag wraps around.  The pitch tracker's and the
    periodicity loss's (losses.py) one definition."""
    frames = frames - frames.mean(-1, keepdim=True)
    spec = torch.fft.rfft(frames, n=2 * frames.shape[-1], dim=-1)
    ac = torch.fft.irfft(spec.real ** 2 + spec.imag ** 2, dim=-1)[..., :max_lag]
    return ac / ac[..., :1].clamp(min=1e-9), ac[..., 0]


def moving_average(x, width):
    """x [B, bins, T] averaged along bins over a centred window of odd width,
    shortened at the edges (the mean of the bins that exist)."""
    b, bins, t = x.shape
    rows = x.transpose(1, 2).reshape(b * t, 1, bins)
    mean = F.avg_pool1d(rows, width, 1, width // 2, count_include_pad=False)
    return mean.reshape(b, t, bins).transpose(1, 2)


class CausalConv1d(nn.Conv1d):
    def forward(self, x):
        pad = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(F.pad(x, (pad, 0)))


class ConvNeXtBlock(nn.Module):
    """Causal depthwise conv, LayerNorm, pointwise MLP with GELU, layer scale."""

    def __init__(self, dim, ffn_dim, kernel):
        super().__init__()
        self.dwconv = CausalConv1d(dim, dim, kernel, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, ffn_dim)
        self.pw2 = nn.Linear(ffn_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x):  # x: [B, C, T]
        y = self.dwconv(x).transpose(1, 2)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class Backbone(nn.Module):
    def __init__(self, in_dim, dim, ffn_dim, kernel, blocks, out_dim):
        super().__init__()
        self.in_conv = CausalConv1d(in_dim, dim, 3)
        self.blocks = nn.ModuleList(
            [ConvNeXtBlock(dim, ffn_dim, kernel) for _ in range(blocks)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, x, extra=None):  # [B, in_dim, T] -> [B, out_dim, T]
        x = self.in_conv(x)
        if extra is not None:  # [B, dim, T], added to the first layer's output
            x = x + extra
        for block in self.blocks:
            x = block(x)
        return self.proj(self.norm(x.transpose(1, 2))).transpose(1, 2)


class EMACodebook(nn.Module):
    """One VQ stage: nearest codeword, EMA updates, k-means init, dead-code restart."""

    def __init__(self, size, dim, decay=0.99, dead_threshold=0.1):
        super().__init__()
        self.size, self.dim, self.decay = size, dim, decay
        self.dead_threshold = dead_threshold
        self.register_buffer("embed", torch.randn(size, dim) * 0.1)
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed_avg", self.embed.clone())
        self.register_buffer("initialised", torch.zeros(()))

    def nearest(self, x):  # x: [N, d] -> [N]
        dist = (x.pow(2).sum(1, keepdim=True) - 2 * x @ self.embed.t()
                + self.embed.pow(2).sum(1)[None])
        return dist.argmin(1)

    @torch.no_grad()
    def _kmeans_init(self, x, iters=10):
        idx = torch.randint(0, x.shape[0], (self.size,))
        centres = x[idx].clone()
        for _ in range(iters):
            assign = torch.cdist(x, centres).argmin(1)
            counts = torch.bincount(assign, minlength=self.size).float()
            sums = torch.zeros_like(centres).index_add_(0, assign, x)
            empty = counts == 0
            centres = torch.where(empty[:, None], centres,
                                  sums / counts.clamp(min=1)[:, None])
            centres[empty] = x[torch.randint(0, x.shape[0], (int(empty.sum()),))]
        self.embed.copy_(centres)
        self.embed_avg.copy_(centres)
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(1.0)

    @torch.no_grad()
    def _ema_update(self, x, codes):
        onehot_counts = torch.bincount(codes, minlength=self.size).float()
        sums = torch.zeros_like(self.embed).index_add_(0, codes, x)
        self.cluster_size.mul_(self.decay).add_(onehot_counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (n + self.size * 1e-5) * n
        self.embed.copy_(self.embed_avg / smoothed[:, None])
        dead = self.cluster_size < self.dead_threshold
        n_dead = int(dead.sum())
        if n_dead:
            fresh = x[torch.randint(0, x.shape[0], (n_dead,))]
            fresh = fresh + 1e-3 * torch.randn_like(fresh)
            self.embed[dead] = fresh
            self.embed_avg[dead] = fresh
            self.cluster_size[dead] = 1.0

    def forward(self, x):  # x: [N, d] -> (quantised, codes)
        if self.training and self.initialised.item() == 0:
            self._kmeans_init(x.detach())
        codes = self.nearest(x.detach())
        if self.training:
            self._ema_update(x.detach(), codes)
        return self.embed[codes], codes


class GroupResidualVQ(nn.Module):
    """GRVQ (HiFi-Codec): the latent is split into groups, each with its own
    residual stack.  groups == 1 is plain RVQ.  Codebook k = stage * groups + group,
    so any prefix of whole stages is a valid lower bitrate."""

    def __init__(self, dim, groups, stages, size):
        super().__init__()
        assert dim % groups == 0
        self.groups, self.stages = groups, stages
        self.group_dim = dim // groups
        self.codebooks = nn.ModuleList(
            [EMACodebook(size, self.group_dim) for _ in range(groups * stages)])

    def forward(self, z, n_stages=None):
        """z: [B, D, T].  n_stages: None (all) or a LongTensor [B] of stages to keep.
        Returns (quantised [B, D, T], codes [B, T, groups*stages], commit loss)."""
        b, d, t = z.shape
        flat = z.transpose(1, 2).reshape(b * t, d)
        outs, all_codes, commit = [], [], 0.0
        for g in range(self.groups):
            x = flat[:, g * self.group_dim:(g + 1) * self.group_dim]
            residual, total = x, torch.zeros_like(x)
            for s in range(self.stages):
                q, codes = self.codebooks[s * self.groups + g](residual)
                commit = commit + F.mse_loss(residual, q.detach())
                # later stages always see the true residual, so their EMA
                # statistics do not depend on the dropout draw
                residual = residual - q.detach()
                if n_stages is not None:
                    q = q * (n_stages > s).float().repeat_interleave(t)[:, None]
                total = total + q
                all_codes.append((s * self.groups + g, codes))
            outs.append(x + (total - x).detach())  # straight-through
        quantised = torch.cat(outs, 1).reshape(b, t, d).transpose(1, 2)
        codes = torch.stack([c for _, c in sorted(all_codes, key=lambda kc: kc[0])], 1)
        return quantised, codes.reshape(b, t, -1), commit / len(all_codes)

    def decode(self, codes, n_codebooks=None):  # codes [B, T, K] -> [B, D, T]
        b, t, k = codes.shape
        n = k if n_codebooks is None else n_codebooks
        parts = []
        for g in range(self.groups):
            total = torch.zeros(b, t, self.group_dim)
            for s in range(self.stages):
                idx = s * self.groups + g
                if idx < n:
                    total = total + self.codebooks[idx].embed[codes[:, :, idx]]
            parts.append(total)
        return torch.cat(parts, 2).transpose(1, 2)


class Codec(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.config = dict(DEFAULT_CONFIG, **(config or {}))
        c = self.config
        self.hop, self.n_fft = c["hop"], c["n_fft"]
        self.subframes = c.get("subframes", 1)
        self.synth_hop = self.hop // self.subframes
        self.bins = c["n_fft"] // 2 + 1
        self.register_buffer("window", sqrt_hann(c["n_fft"]), persistent=False)
        self.encoder = Backbone(self.bins, c["dim"], c["ffn_dim"], c["kernel"],
                                c["enc_blocks"], c["latent_dim"])
        # the twin of the quantizer plugin the config names (train/registry.py)
        self.quantizer = registry.build_quantizer(c)
        self.decoder = Backbone(c["latent_dim"], c["dim"], c["ffn_dim"], c["kernel"],
                                c["dec_blocks"], 2 * self.bins * self.subframes)
        # experiment (session 8): an explicit pitch code per frame, side
        # information the decoder adds to its input; zero-initialised, so a
        # model grown with it starts out decoding exactly as before
        self.pitch_bins = c.get("pitch_bins", 0)
        # (a linear map of Fourier features of log-F0, so neighbouring bins
        # share what they learn; unvoiced frames add nothing)
        self.pitch = (nn.Linear(1 + 2 * self.PITCH_HARMONICS, c["latent_dim"], bias=False)
                      if self.pitch_bins else None)
        if self.pitch is not None:
            nn.init.zeros_(self.pitch.weight)
        # experiment (session 9): the encoder sees the same F0 track, as
        # features added after its first layer (zero-initialised), so the
        # codes may carry pitch with no side channel; the value is its
        # resolution in log-F0 bins, 0 = off
        self.pitch_input_bins = c.get("pitch_input", 0)
        self.pitch_in = (nn.Linear(1 + 2 * self.PITCH_HARMONICS, c["dim"], bias=False)
                         if self.pitch_input_bins else None)
        if self.pitch_in is not None:
            nn.init.zeros_(self.pitch_in.weight)
        # experiment (session 9): the encoder sees phase too.  Log magnitude
        # alone caps what any bitrate can restore (session 6: the decoded
        # phase under the original magnitude scores PESQ 2.74, the original's
        # 4.64), so the codes carry none of the relations across bins and
        # frames PESQ punishes.  Features: the phase differences along
        # frequency (group delay) and along time (instantaneous frequency)
        # as unit phasors weighted by compressed magnitude, mapped to the
        # encoder's width after its first layer (zero-initialised)
        self.phase_in = (nn.Linear(2 * (self.bins - 1) + 2 * self.bins, c["dim"], bias=False)
                         if c.get("phase_input") else None)
        if self.phase_in is not None:
            nn.init.zeros_(self.phase_in.weight)

    # --- front-end and vocoder head -------------------------------------
    def spectrum(self, audio):
        """audio [B, L], L a multiple of hop -> complex STFT [B, L/hop, bins]."""
        x = F.pad(audio, (self.n_fft - self.hop, 0))
        frames = x.unfold(1, self.n_fft, self.hop) * self.window
        return torch.fft.rfft(frames, dim=-1)

    def features(self, audio):
        """audio [B, L], L a multiple of hop -> log magnitude [B, bins, L/hop]."""
        return self.log_magnitude(self.spectrum(audio))

    def log_magnitude(self, spec):
        """complex STFT [B, T, bins] -> the encoder's features [B, bins, T]."""
        return torch.log(spec.abs() + self.config["log_floor"]).transpose(1, 2)

    def phase_features(self, spec):
        """complex STFT [B, T, bins] -> [B, T, 2 * (bins - 1) + 2 * bins]: group
        delay and instantaneous frequency as phasors, weighted by
        (|X| / frame max)^0.3 of the weaker bin of each pair (the first frame
        has no predecessor)."""
        mag = spec.abs()
        unit = spec / mag.clamp(min=1e-7)
        weight = (mag / mag.amax(-1, keepdim=True).clamp(min=1e-7)).pow(0.3)
        along_f = unit[..., 1:] * unit[..., :-1].conj() * torch.minimum(weight[..., 1:], weight[..., :-1])
        prev_unit = F.pad(unit, (0, 0, 1, 0))[:, :-1]
        prev_weight = F.pad(weight, (0, 0, 1, 0))[:, :-1]
        along_t = unit * prev_unit.conj() * torch.minimum(weight, prev_weight)
        return torch.cat([along_f.real, along_f.imag, along_t.real, along_t.imag], -1)

    def postfilter(self, log_mag):
        """log magnitude [B, bins, T] -> the same, formant valleys deepened."""
        c = self.config
        if not c["postfilter"]:
            return log_mag
        envelope = moving_average(log_mag, c["postfilter_envelope_bins"])
        tilt = moving_average(log_mag, c["postfilter_tilt_bins"])
        return log_mag + c["postfilter"] * (envelope - tilt)

    def synthesis(self, head, postfilter=False):
        """head [B, 2*bins*subframes, T] -> audio [B, T*hop] (the last samples
        lack their overlap partners; streaming gets them from the next frame).
        postfilter: apply the decode-time post-filter the config names."""
        if self.subframes > 1:  # [B, K*2*bins, T] -> [B, 2*bins, T*K], sub-frames in time order
            b, _, t = head.shape
            head = head.reshape(b, self.subframes, 2 * self.bins, t).permute(0, 2, 3, 1)
            head = head.reshape(b, 2 * self.bins, t * self.subframes)
        log_mag, phase = head[:, :self.bins], head[:, self.bins:]
        if postfilter:
            log_mag = self.postfilter(log_mag)
        mag = torch.exp(log_mag).clamp(max=100.0)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        frames = torch.fft.irfft(spec.transpose(1, 2), n=self.n_fft, dim=-1)
        # the squared sqrt-Hann window overlap-adds to n_fft / (2 * synthesis hop)
        frames = frames * self.window * (2 * self.synth_hop / self.n_fft)  # [B, T, n_fft]
        b, t, _ = frames.shape
        hop = self.synth_hop
        out = F.fold(frames.transpose(1, 2), output_size=(1, (t - 1) * hop + self.n_fft),
                     kernel_size=(1, self.n_fft), stride=(1, hop))
        out = out.reshape(b, -1)
        return out[:, self.n_fft - hop:]

    # --- pitch side information (experiment) ------------------------------
    PITCH_LO, PITCH_HI = 60.0, 400.0
    PITCH_HARMONICS = 16

    def pitch_codes(self, audio):
        """The side channel's code: pitch_track at pitch_bins, each code held
        for pitch_hold frames."""
        codes = self.pitch_track(audio, self.pitch_bins)
        hold = self.config.get("pitch_hold", 1)
        if hold > 1:
            # one code per `hold` frames, sent with the first and held by the
            # decoder (causal: no look-ahead), e.g. 64 bins held 2 frames is
            # a constant 150 bit/s with no entropy coder
            codes = codes[:, torch.arange(codes.shape[1]) // hold * hold]
        return codes

    def pitch_track(self, audio, bins):
        """audio [B, L] -> [B, L/hop] long: 0 unvoiced, else 1..bins, a
        log-F0 bin between 60 and 400 Hz from the normalised autocorrelation
        of the frame the encoder sees (causal, like the features)."""
        rate = self.config["sample_rate"]
        x = F.pad(audio, (self.n_fft - self.hop, 0))
        ac, energy = frame_autocorrelation(x.unfold(1, self.n_fft, self.hop), self.n_fft)
        lo, hi = int(rate / self.PITCH_HI), int(rate / self.PITCH_LO)
        peak, lag = ac[..., lo:hi].max(-1)
        lag = (lag + lo).clamp(lo + 1, hi - 2)
        a0, a1, a2 = (ac.gather(-1, (lag + d)[..., None])[..., 0] for d in (-1, 0, 1))
        shift = 0.5 * (a0 - a2) / (a0 - 2 * a1 + a2).clamp(max=-1e-6)
        f0 = rate / (lag + shift.clamp(-1, 1))
        position = torch.log(f0 / self.PITCH_LO) / math.log(self.PITCH_HI / self.PITCH_LO)
        codes = 1 + (position.clamp(0, 1) * (bins - 1)).round().long()
        voiced = (peak > 0.45) & (energy > 1e-4 * self.n_fft)
        return torch.where(voiced, codes, torch.zeros_like(codes))

    def pitch_features(self, pitch, bins):
        """codes [B, T] -> [B, T, 1 + 2 * PITCH_HARMONICS]: Fourier features of
        log-F0, so neighbouring bins share what they learn; zero where unvoiced."""
        position = ((pitch - 1).clamp(min=0).float() / (bins - 1))[..., None]
        k = torch.arange(1, self.PITCH_HARMONICS + 1, dtype=torch.float32)
        angle = math.pi * k * position
        feats = torch.cat([torch.ones_like(position), torch.sin(angle), torch.cos(angle)], -1)
        return feats * (pitch > 0).float()[..., None]

    def decoder_input(self, quantised, pitch):
        if self.pitch is None:
            return quantised
        feats = self.pitch_features(pitch, self.pitch_bins)
        return quantised + self.pitch(feats).transpose(1, 2)

    def analysis(self, audio):
        """audio [B, L] -> latent [B, latent_dim, L/hop], before quantisation."""
        spec = self.spectrum(audio)
        extra = None
        if self.pitch_in is not None:
            track = self.pitch_track(audio, self.pitch_input_bins)
            extra = self.pitch_in(self.pitch_features(track, self.pitch_input_bins)).transpose(1, 2)
        if self.phase_in is not None:
            phase = self.phase_in(self.phase_features(spec)).transpose(1, 2)
            extra = phase if extra is None else extra + phase
        return self.encoder(self.log_magnitude(spec), extra)

    # --- the pipeline ------------------------------------------------------
    def encode(self, audio):
        """-> (latent, codes [B, T, K]); with pitch side information its code
        travels as one more column, after the codebooks."""
        latent = self.analysis(audio)
        _, codes, _ = self.quantizer(latent)
        if self.pitch is not None:
            codes = torch.cat([codes, self.pitch_codes(audio)[..., None]], 2)
        return latent, codes

    def decode(self, codes, n_codebooks=None):
        pitch = None
        if self.pitch is not None:
            codes, pitch = codes[..., :-1], codes[..., -1]
        quantised = self.decoder_input(self.quantizer.decode(codes, n_codebooks), pitch)
        return self.synthesis(self.decoder(quantised), postfilter=True)

    def forward(self, audio, n_stages=None):
        latent = self.analysis(audio)
        quantised, codes, commit = self.quantizer(latent, n_stages)
        pitch = self.pitch_codes(audio) if self.pitch is not None else None
        return self.synthesis(self.decoder(self.decoder_input(quantised, pitch))), codes, commit

    def num_codebooks(self):
        return len(self.quantizer.codebooks)
