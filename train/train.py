#!/usr/bin/python3
"""Train the tokvox codec on the corpus built by train/data/build_corpus.py.

Resumable: --resume picks up train/runs/<name>/state.pt (weights, optimiser,
step) when present, otherwise the committed weights in train/checkpoints/.
Every --save-every seconds it writes state.pt and the committable weights
train/checkpoints/<name>.pt (model only, f32).  Validation (mel distance at
each bitrate and per-codebook perplexity) goes to the log as JSON lines.

Run it niced in the background, e.g.
  OMP_WAIT_POLICY=PASSIVE nohup nice -n 10 /usr/bin/python3 train/train.py \
      --name small --threads 1 > train/runs/small.log 2>&1 &
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from losses import (FineStructureLoss, LoudnessDisturbanceLoss, MultiResolutionDiscriminator,
                    PeriodicityLoss, PhaseDerivativeLoss, discriminator_loss, generator_losses)
from model import Codec
from pesq_eval import pesq_clips, validate_pesq

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_WEIGHTS = {"shared": 0.55, "asterisk": 0.15, "fillets": 0.25, "music": 0.05}
# Within the real speech, the share of each voice group (build_corpus.py's
# labels): adult men are over-weighted because low voices were the codec's
# weakest and scarcest (issue 12); "" is unlabelled (Picovoice, some VCTK).
SHARED_GROUP_WEIGHTS = {"m": 0.45, "f": 0.30, "child": 0.10, "": 0.15}


def bucket_of(source, group):
    """Sampling bucket of a row: the top-level source, split by voice group
    for the real speech."""
    top = source.split("/")[0]
    return f"{top}:{group}" if top == "shared" else top


def bucket_weight(bucket, present):
    top, _, group = bucket.partition(":")
    weight = SOURCE_WEIGHTS.get(top, 0.1)
    if top == "shared":
        groups = [b.partition(":")[2] for b in present if b.startswith("shared:")]
        weight *= SHARED_GROUP_WEIGHTS.get(group, 0.1) / sum(
            SHARED_GROUP_WEIGHTS.get(g, 0.1) for g in groups)
    return weight


class Corpus:
    """Random crops from the concatenated int16 corpus, sampled per source
    (and per voice group within the real speech)."""

    def __init__(self, directory, split, seed):
        self.pcm = np.memmap(os.path.join(directory, split + ".pcm"), dtype=np.int16, mode="r")
        self.rows = []
        with open(os.path.join(directory, split + ".tsv")) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                source, speaker, offset, length, path = fields[:5]
                group = fields[5] if len(fields) > 5 else ""
                self.rows.append((bucket_of(source, group), speaker, int(offset), int(length),
                                  path, group))
        self.by_source = {}
        for i, row in enumerate(self.rows):
            self.by_source.setdefault(row[0], []).append(i)
        self.rng = np.random.default_rng(seed)
        names = sorted(self.by_source)
        weights = np.array([bucket_weight(n, names) for n in names])
        self.sources, self.source_p = names, weights / weights.sum()
        self.lengths = {n: np.array([self.rows[i][3] for i in idx], dtype=np.float64)
                        for n, idx in self.by_source.items()}

    def crop(self, length, whole=False):
        """A random crop; whole=True only draws utterances at least `length`
        long, so no zero padding enters (validation metrics)."""
        source = self.rng.choice(self.sources, p=self.source_p)
        lens = self.lengths[source]
        weights = lens * (lens >= length) if whole and (lens >= length).any() else lens
        i = self.by_source[source][self.rng.choice(len(lens), p=weights / weights.sum())]
        _, _, offset, n, _, _ = self.rows[i]
        out = np.zeros(length, dtype=np.float32)
        if n <= length:
            start = self.rng.integers(0, length - n + 1)
            out[start:start + n] = self.pcm[offset:offset + n] / 32768.0
        else:
            start = self.rng.integers(0, n - length + 1)
            out[:] = self.pcm[offset + start:offset + start + length] / 32768.0
        return out

    def batch(self, size, length, whole=False):
        return torch.from_numpy(np.stack([self.crop(length, whole) for _ in range(size)]))


def augment(x, gen):
    """Random gain (+-12 dB), mild band-limiting/tilt, low-level noise."""
    b, n = x.shape
    gain_db = (torch.rand(b, 1, generator=gen) * 24 - 12)
    x = x * 10 ** (gain_db / 20)
    spec = torch.fft.rfft(x)
    freqs = torch.linspace(0, 1, spec.shape[1])[None]
    cutoff = 0.5 + 0.5 * torch.rand(b, 1, generator=gen)       # 4-8 kHz
    lowpass = torch.sigmoid((cutoff - freqs) * 60)
    tilt = 10 ** ((torch.rand(b, 1, generator=gen) * 6 - 3) * freqs / 20)  # +-3 dB tilt
    apply = (torch.rand(b, 1, generator=gen) < 0.5).float()
    shaping = apply * lowpass * tilt + (1 - apply)
    x = torch.fft.irfft(spec * shaping, n=n)
    noise_db = -70 + 25 * torch.rand(b, 1, generator=gen)        # -70..-45 dBFS
    noisy = (torch.rand(b, 1, generator=gen) < 0.5).float()
    x = x + noisy * torch.randn(b, n, generator=gen) * 10 ** (noise_db / 20)
    peak = x.abs().amax(1, keepdim=True).clamp(min=1.0)
    return x / peak


def mel_matrix(n_fft, n_mels, rate):
    def hz_to_mel(f):
        return 2595 * np.log10(1 + f / 700)
    mels = np.linspace(hz_to_mel(0), hz_to_mel(rate / 2), n_mels + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(bins)), dtype=np.float32)
    for m in range(n_mels):
        lo, mid, hi = hz[m], hz[m + 1], hz[m + 2]
        fb[m] = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return torch.from_numpy(fb)


class SpectralLoss:
    """Multi-resolution log-mel L1 and multi-resolution STFT (log-mag L1 + SC).

    over > 1 makes both log-domain L1 terms asymmetric: energy the output has
    and the target lacks costs `over` times as much as energy it lacks (the
    asymmetry PESQ applies), normalised so that an even mix of over- and
    under-shoot costs what plain L1 does.  The decoder then predicts a lower
    quantile of what the codes allow instead of the median: uncertain
    valleys come out deeper, as the decode-time post-filter makes them."""

    def __init__(self, rate, resolutions=((256, 64, 40), (512, 128, 64), (1024, 256, 80)),
                 over=1.0):
        self.res = [(n, h, torch.hann_window(n), mel_matrix(n, m, rate)) for n, h, m in resolutions]
        self.over = over

    def log_l1(self, y, x):
        d = torch.log(y + 1e-5) - torch.log(x + 1e-5)
        if self.over == 1.0:
            return d.abs().mean()
        return torch.where(d > 0, self.over * d, -d).mean() * (2 / (1 + self.over))

    def __call__(self, y, x):
        mel_loss, stft_loss = 0.0, 0.0
        for n, hop, win, fb in self.res:
            sy = torch.stft(y, n, hop, window=win, return_complex=True).abs()
            sx = torch.stft(x, n, hop, window=win, return_complex=True).abs()
            mel_loss = mel_loss + self.log_l1(fb @ sy, fb @ sx)
            sc = torch.norm(sx - sy) / (torch.norm(sx) + 1e-7)
            stft_loss = stft_loss + self.log_l1(sy, sx) + sc
        return mel_loss / len(self.res), stft_loss / len(self.res)


LOUDNESS = LoudnessDisturbanceLoss()


@torch.no_grad()
def validate(model, corpus, loss_fn, seconds, hop):
    """Mel distance and loudness disturbance at 1/2/3/4 stages and per-codebook
    perplexity on held-out speakers."""
    model.eval()
    gen = np.random.default_rng(1234)
    corpus.rng = gen
    x = corpus.batch(32, int(seconds * 16000) // hop * hop, whole=True)
    latent, codes = model.encode(x)
    result = {}
    groups = model.quantizer.groups
    for stages in range(1, model.quantizer.stages + 1):
        y = model.decode(codes, stages * groups)
        cut = y.shape[1] - hop
        mel, _ = loss_fn(y[:, :cut], x[:, :cut])
        result[f"mel@{stages * groups}cb"] = round(float(mel), 4)
        # a PESQ-shaped figure that needs no PESQ executable (a judge, not a loss)
        result[f"loud@{stages * groups}cb"] = round(float(LOUDNESS(y[:, :cut], x[:, :cut])), 4)
    size = model.config["codebook_size"]
    perp, used = [], []
    for k in range(codes.shape[2]):
        counts = torch.bincount(codes[:, :, k].flatten(), minlength=size).float()
        p = counts / counts.sum()
        perp.append(round(float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())), 1))
        used.append(int((counts > 0).sum()))
    result["perplexity"], result["used"] = perp, used
    model.train()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="small")
    ap.add_argument("--data", default=os.path.join(HERE, "data", "out"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=10 ** 9)
    ap.add_argument("--save-every", type=float, default=300)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--config", default="{}", help="JSON overrides of the model config")
    ap.add_argument("--init", help="weights to start from when the run has no state of its "
                    "own yet (e.g. train/checkpoints/base.pt for a fine-tuning run)")
    ap.add_argument("--stage-probs", default="",
                    help="quantiser dropout: probabilities of keeping 1..S stages for the "
                         "dropped half of the batch (default uniform), e.g. 0.4,0.3,0.2,0.1 "
                         "to weight low bitrates")
    ap.add_argument("--anneal-steps", type=int, default=0,
                    help="from the step this process starts at, decay the learning rate "
                         "(cosine, to 10 %%) over this many steps, then stop")
    ap.add_argument("--anneal-seconds", type=float, default=0,
                    help="the same anneal over this much wall time instead of a step "
                         "count, so runs of different cost end together")
    ap.add_argument("--decoder-only", action="store_true",
                    help="train only the decoder: the encoder and codebooks stay frozen, "
                         "so the codes (tokens) of the starting model do not change")
    ap.add_argument("--phase-weight", type=float, default=0.0,
                    help="weight of the instantaneous-frequency/group-delay loss")
    ap.add_argument("--over-weight", type=float, default=1.0,
                    help="cost of log-spectral overshoot relative to undershoot in the "
                         "mel and STFT terms (SpectralLoss)")
    ap.add_argument("--fine-weight", type=float, default=0.0,
                    help="weight of the 2048-point log-magnitude loss (harmonic fine "
                         "structure the mel and STFT terms cannot resolve)")
    ap.add_argument("--periodicity-weight", type=float, default=0.0,
                    help="weight of the periodicity loss (the original's voiced frames "
                         "decoded as periodic, at the original's period)")
    ap.add_argument("--loud-weight", type=float, default=0.0,
                    help="weight of the PESQ-shaped loudness-domain disturbance "
                         "(losses.LoudnessDisturbanceLoss)")
    ap.add_argument("--gan", action="store_true",
                    help="adversarial training with a multi-resolution complex-STFT "
                         "discriminator and feature matching")
    ap.add_argument("--disc-warmup", type=int, default=0,
                    help="steps of training a fresh discriminator alone before the "
                         "codec starts to follow it")
    ap.add_argument("--adv-weight", type=float, default=1.0)
    ap.add_argument("--fm-weight", type=float, default=2.0)
    ap.add_argument("--disc-channels", type=int, default=16)
    ap.add_argument("--disc-ffts", default="256,512,1024",
                    help="the discriminator's STFT sizes (hop a quarter of each); "
                         "larger ones resolve harmonics")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    run_dir = os.path.join(HERE, "runs", args.name)
    os.makedirs(run_dir, exist_ok=True)
    os.makedirs(os.path.join(HERE, "checkpoints"), exist_ok=True)
    state_path = os.path.join(run_dir, "state.pt")
    weights_path = os.path.join(HERE, "checkpoints", args.name + ".pt")

    model = Codec(json.loads(args.config))
    disc_res = tuple((n, n // 4) for n in map(int, args.disc_ffts.split(",")))
    disc = (MultiResolutionDiscriminator(disc_res, channels=args.disc_channels)
            if args.gan else None)
    step, audio_seconds, cpu_seconds = 0, 0.0, 0.0
    anneal_from = time.time()  # wall-clock start of an --anneal-seconds schedule
    state = None
    if os.path.exists(state_path):
        state = torch.load(state_path)
        model = Codec(state["config"])
        model.load_state_dict(state["model"])
        if disc is not None and "disc" in state:
            disc.load_state_dict(state["disc"])
        step, audio_seconds, cpu_seconds = state["step"], state["audio_seconds"], state["cpu_seconds"]
        # a restarted process keeps the anneal it was in (e.g. after a corpus rebuild)
        anneal_from = state.get("anneal_from", anneal_from)
        print(f"resumed {state_path} at step {step}", flush=True)
    elif os.path.exists(weights_path) or args.init:
        # the run's own weights win over --init; only --init may grow the model
        own = os.path.exists(weights_path)
        source = weights_path if own else args.init
        saved = torch.load(source)
        model = grown_model(saved, {} if own else json.loads(args.config))
        step, audio_seconds, cpu_seconds = saved["step"], saved["audio_seconds"], saved["cpu_seconds"]
        print(f"resumed weights {source} at step {step} (fresh optimiser)", flush=True)
    # decoder-only: the decoder and the pitch side channel's input map
    maps = list(model.pitch.parameters()) if model.pitch is not None else []
    trained = list(model.decoder.parameters()) + maps
    if not args.decoder_only:
        maps += [p for m in (model.pitch_in, model.phase_in) if m is not None
                 for p in m.parameters()]
        trained = list(model.parameters())
    groups = [{"params": trained}]
    if maps:
        # a new, zero-initialised input map learns at ten times the rate:
        # at the decoder's fine-tuning rate it would take thousands of steps
        # to reach the scale of the activations it is added to
        groups = [{"params": [p for p in trained if not any(p is q for q in maps)]},
                  {"params": maps, "lr_scale": 10.0}]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.8, 0.99), weight_decay=1e-4)
    disc_opt = (torch.optim.AdamW(disc.parameters(), lr=args.lr, betas=(0.8, 0.99),
                                  weight_decay=1e-4) if disc is not None else None)
    if state is not None:
        opt.load_state_dict(state["opt"])
        if disc_opt is not None and "disc_opt" in state:
            disc_opt.load_state_dict(state["disc_opt"])
    set_mode(model, args.decoder_only)
    # a fresh optimiser (resumed from weights only) has no second-moment
    # estimates yet: warm it up again instead of taking full-size steps at once
    warm_from = 0 if os.path.exists(state_path) else step
    start_step = step
    if args.anneal_steps:
        args.steps = min(args.steps, start_step + args.anneal_steps)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"config": model.config, "params": n_params}), flush=True)

    train = Corpus(args.data, "train", seed=step + 1)
    val = Corpus(args.data, "val", seed=0)
    loss_fn = SpectralLoss(16000)  # validation: plain L1 whatever the training loss
    train_loss = SpectralLoss(16000, over=args.over_weight)
    phase_loss = PhaseDerivativeLoss() if args.phase_weight else None
    fine_loss = FineStructureLoss() if args.fine_weight else None
    periodicity_loss = PeriodicityLoss() if args.periodicity_weight else None
    loud_loss = LOUDNESS if args.loud_weight else None
    pesq_set = pesq_clips(args.data, hop=model.hop)
    gen = torch.Generator().manual_seed(step)
    hop = model.hop
    length = int(args.seconds * 16000) // hop * hop
    stages = model.quantizer.stages
    last_save, t0 = time.time(), time.process_time()
    log_acc = []
    if disc is not None and args.disc_warmup and not (state and "disc" in state):
        warm_discriminator(args, model, disc, disc_opt, train, length, stages, gen)
    if step == start_step:  # where this process starts from, for comparison
        log_validation(model, val, loss_fn, hop, step, pesq_set, args.decoder_only)

    while step < args.steps and not (args.anneal_seconds
                                     and time.time() - anneal_from >= args.anneal_seconds):
        x = augment(train.batch(args.batch, length), gen)
        n_stages = batch_stages(args, stages, gen)
        y, commit = forward(model, x, n_stages, args.decoder_only)
        cut = length - hop
        y, x = y[:, :cut], x[:, :cut]
        if disc is not None:
            # the discriminator first, on a detached output
            d_loss = discriminator_loss(disc(x), disc(y.detach()))
            disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(disc.parameters(), 1.0)
            disc_opt.step()
        mel, stft = train_loss(y, x)
        loss = 15 * mel + 2 * stft + 1.0 * commit
        extra = {}
        if phase_loss is not None:
            extra["phase"] = phase_loss(y, x)
            loss = loss + args.phase_weight * extra["phase"]
        if periodicity_loss is not None:
            extra["periodicity"] = periodicity_loss(y, x)
            loss = loss + args.periodicity_weight * extra["periodicity"]
        if fine_loss is not None:
            extra["fine"] = fine_loss(y, x)
            loss = loss + args.fine_weight * extra["fine"]
        if loud_loss is not None:
            extra["loud"] = loud_loss(y, x)
            loss = loss + args.loud_weight * extra["loud"]
        if disc is not None:
            with torch.no_grad():
                real_outs = disc(x)
            extra["adv"], extra["fm"] = generator_losses(real_outs, disc(y))
            extra["disc"] = d_loss
            loss = loss + args.adv_weight * extra["adv"] + args.fm_weight * extra["fm"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        lr = learning_rate(args, step, warm_from, start_step, time.time() - anneal_from)
        for group in opt.param_groups + (disc_opt.param_groups if disc_opt else []):
            group["lr"] = lr * group.get("lr_scale", 1.0)
        opt.step()
        step += 1
        audio_seconds += args.batch * length / 16000
        log_acc.append(dict({"mel": float(mel), "stft": float(stft), "commit": float(commit)},
                            **{k: float(v) for k, v in extra.items()}))
        if step % 50 == 0:
            now = time.process_time()
            cpu_seconds += now - t0
            t0 = now
            means = {k: round(float(np.mean([a[k] for a in log_acc])), 5) for k in log_acc[0]}
            print(json.dumps(dict({"step": step}, **means, lr=lr,
                                  audio_h=round(audio_seconds / 3600, 2),
                                  cpu_h=round(cpu_seconds / 3600, 3))), flush=True)
            log_acc = []
        if step % args.val_every == 0:
            log_validation(model, val, loss_fn, hop, step, pesq_set, args.decoder_only)
        if time.time() - last_save > args.save_every:
            save(model, opt, disc, disc_opt, step, audio_seconds, cpu_seconds, anneal_from,
                 state_path, weights_path)
            last_save = time.time()
    save(model, opt, disc, disc_opt, step, audio_seconds, cpu_seconds, anneal_from, state_path,
         weights_path)


def warm_discriminator(args, model, disc, disc_opt, train, length, stages, gen):
    """Train a fresh discriminator alone against the frozen codec first: its
    first judgements are noise, and a generator that follows them only loses
    quality it then has to win back."""
    for i in range(args.disc_warmup):
        x = augment(train.batch(args.batch, length), gen)
        with torch.no_grad():
            y, _ = forward(model, x, batch_stages(args, stages, gen), args.decoder_only)
        d_loss = discriminator_loss(disc(x), disc(y))
        disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(disc.parameters(), 1.0)
        disc_opt.step()
        if i % 50 == 0:
            print(json.dumps({"disc_warmup": i, "disc": round(float(d_loss), 4)}), flush=True)


def set_mode(model, decoder_only):
    """Training mode, except a frozen encoder and quantiser stay in eval mode
    (no EMA codebook updates, no dead-code restarts)."""
    model.train()
    if decoder_only:
        model.encoder.eval()
        model.quantizer.eval()
        for p in list(model.encoder.parameters()) + list(model.quantizer.parameters()):
            p.requires_grad_(False)


def forward(model, x, n_stages, decoder_only):
    """(decoded audio, commitment loss); the frozen half runs without a graph."""
    if not decoder_only:
        y, _, commit = model(x, n_stages)
        return y, commit
    with torch.no_grad():
        quantised, _, commit = model.quantizer(model.analysis(x), n_stages)
        pitch = model.pitch_codes(x) if model.pitch is not None else None
    return model.synthesis(model.decoder(model.decoder_input(quantised, pitch))), commit


def log_validation(model, val, loss_fn, hop, step, pesq_set, decoder_only):
    result = validate(model, val, loss_fn, 2.0, hop)
    result.update(validate_pesq(model, pesq_set))
    set_mode(model, decoder_only)
    print(json.dumps({"step": step, "val": result}), flush=True)


def batch_stages(args, stages, gen):
    """Quantiser dropout: half the batch keeps a random prefix of stages."""
    n_stages = dropout_stages(args, stages, gen)
    return torch.where(torch.rand(args.batch, generator=gen) < 0.5, n_stages,
                       torch.full_like(n_stages, stages))


def dropout_stages(args, stages, gen):
    """Stages kept per example when dropped: uniform, or --stage-probs."""
    if not args.stage_probs:
        return torch.randint(1, stages + 1, (args.batch,), generator=gen)
    probs = torch.tensor([float(p) for p in args.stage_probs.split(",")])
    assert len(probs) == stages, f"--stage-probs wants {stages} values"
    return torch.multinomial(probs, args.batch, replacement=True, generator=gen) + 1


def learning_rate(args, step, warm_from, start_step, elapsed):
    """Warm-up over 500 steps, slow halving every 60k steps, optional cosine
    anneal over a step count or a wall-time budget."""
    lr = args.lr * min(1.0, (step + 1 - warm_from) / 500) * max(0.1, 0.5 ** (step / 60000))
    t = None
    if args.anneal_steps:
        t = min(1.0, (step - start_step) / args.anneal_steps)
    elif args.anneal_seconds:
        t = min(1.0, elapsed / args.anneal_seconds)
    if t is not None:
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
    return lr


def grown_model(saved, overrides):
    """The saved model, optionally with more encoder/decoder blocks than it was
    trained with (--config '{"dec_blocks": 10}' with --init).  New blocks are
    appended after the trained ones with a zero layer scale, so the grown model
    starts out computing exactly what the saved one did."""
    allowed = {"enc_blocks", "dec_blocks", "subframes", "pitch_bins", "pitch_hold", "pitch_input",
               "phase_input"}
    if set(overrides) - allowed:
        raise SystemExit(f"--init can only grow {sorted(allowed)}, not {sorted(set(overrides) - allowed)}")
    # a pitch code may be re-quantised (bins span the same log-F0 range, so
    # the learnt map reads a coarser code as is) or held longer
    recoded = {"pitch_bins", "pitch_hold"} if saved["config"].get("pitch_bins") else set()
    for key, value in overrides.items():
        if key not in recoded and value < saved["config"].get(key, 1):
            raise SystemExit(f"--init cannot shrink {key} ({saved['config'][key]} -> {value})")
    model = Codec(dict(saved["config"], **overrides))
    weights = dict(saved["model"])
    old_k, new_k = saved["config"].get("subframes", 1), model.subframes
    if new_k != old_k:
        # a head for more synthesis sub-frames: every new sub-frame starts as a
        # copy of the trained one it falls in; training then tells them apart
        if new_k % old_k:
            raise SystemExit(f"--init can only split each sub-frame evenly ({old_k} -> {new_k})")
        for name in ("decoder.proj.weight", "decoder.proj.bias"):
            w = weights[name]
            per_sub = w.reshape(old_k, w.shape[0] // old_k, *w.shape[1:])
            weights[name] = per_sub.repeat_interleave(new_k // old_k, dim=0).reshape(
                new_k * per_sub.shape[1], *w.shape[1:])
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected, unexpected
    new_blocks = []
    for part, key in (("encoder", "enc_blocks"), ("decoder", "dec_blocks")):
        for i in range(saved["config"][key], model.config[key]):
            getattr(model, part).blocks[i].gamma.data.zero_()
            new_blocks.append(f"{part}.blocks.{i}.")
    # only the appended blocks may lack saved weights
    if model.pitch is not None and saved["config"].get("pitch_bins", 0) == 0:
        new_blocks.append("pitch.")  # zero-initialised: adds nothing yet
    if model.pitch_in is not None and saved["config"].get("pitch_input", 0) == 0:
        new_blocks.append("pitch_in.")
    if model.phase_in is not None and not saved["config"].get("phase_input"):
        new_blocks.append("phase_in.")
    stray = sorted(k for k in missing if not k.startswith(tuple(new_blocks)))
    assert not stray, f"weights missing from {stray}"
    return model


def save(model, opt, disc, disc_opt, step, audio_seconds, cpu_seconds, anneal_from,
         state_path, weights_path):
    """state.pt resumes everything (optimisers, discriminator); the committable
    weights file holds the codec only."""
    common = {"config": model.config, "model": model.state_dict(), "step": step,
              "audio_seconds": audio_seconds, "cpu_seconds": cpu_seconds}
    resume = dict(common, opt=opt.state_dict(), anneal_from=anneal_from)
    if disc is not None:
        resume.update(disc=disc.state_dict(), disc_opt=disc_opt.state_dict())
    torch.save(resume, state_path + ".tmp")
    os.replace(state_path + ".tmp", state_path)
    torch.save(common, weights_path + ".tmp")
    os.replace(weights_path + ".tmp", weights_path)
    print(json.dumps({"saved": step}), flush=True)


if __name__ == "__main__":
    main()
