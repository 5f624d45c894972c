#!/usr/bin/python3
"""Write the PyTorch reference vectors the C kernel and quantizer tests check.

  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 /usr/bin/python3 train/make_test_vectors.py [DIR]

(run from anywhere; it needs torch and numpy).  It writes, deterministically
(fixed seed), into DIR (default: the committed files)

  tests/data/kernels.safetensors     read by tests/test_kernels.c
  tests/data/quantizers.safetensors  read by tests/test_quantizers.c
  tests/data/tiny_k2.safetensors     a tiny random stftcodec model with two
                                     synthesis sub-frames (train/export.py's
                                     format), and
  tests/data/tiny_k2.parity.safetensors  its reference vectors (export.py's
                                     reference_vectors), both read by
                                     tests/test_parity.c (meson test
                                     parity_subframes)

Layouts follow tokvox/plugin.h: activations are time-major ([frames][channels],
PyTorch's [C, T] transposed), weights keep PyTorch's layouts.  Conv inputs are
stored without their causal history: the C test prepends kernel-1 zero frames.

kernels.safetensors
  linear.{x [5,37], w [19,37], b [19], y_bias, y_nobias [5,19]}
  conv.{x [9,6], w [5,6,3], b [5], y [9,5]}              standard causal conv
  dwconv.{x [9,8], w [8,1,7], b [8], y [9,8]}            depthwise (groups 8)
  layer_norm.{x [7,33], gamma [33], beta [33], y [7,33]}  eps 1e-6
  gelu.{x [n], y [n]}                                     exact erf, -6..6
  block.{x [10,16], y [10,16]} and block.<param> for every parameter of a
      ConvNeXtBlock(16, 48, 7) (dwconv.weight, norm.bias, pw1.weight, gamma...)
  nearest.{x [50,8], codewords [64,8], codes I32 [50]}
  metadata: block.dim, block.ffn_dim, block.kernel, eps

quantizers.safetensors: for every quantizer twin in train/registry.py and
each of its test cases CASE (grvq: latent 16, groups 2, stages 3, size 32;
rvq: latent 16, groups 1, stages 4, size 32; fsq: see train/fsq.py):
  CASE.<the tensors the plugin binds>   (the model file names, prefixed by CASE.)
  CASE.input [20, latent], CASE.codes I32 [20, K],
  CASE.decode.N [20, latent] for N = 1..K (first N codebooks)
  CASE.config I32 [4] = latent_dim, groups, stages, codebook_size (residual VQs)
  metadata: cases (comma-separated), CASE.plugin, and the case's config
      as CASE.KEY

Every nearest-codeword decision stored is checked here to be clear of ties
(second-best squared distance larger by a margin), so the C results, computed
with a different but equivalent formula, must agree exactly.

tiny_k2: train/model.py's Codec with TINY_K2_CONFIG (hop 64, n_fft 128,
subframes 2: the synthesis framing of the 4-kbps candidate at a fifth of its
size, 4x overlap), weights from the default initialisation, codebooks drawn
at the latent's scale, all rounded to f16 as export.py stores them; its
input is a stretch of samples/speech_en.wav that is not a whole number of
hops.  Every encoder code decision is checked to be clear of ties, so the C
codes must equal PyTorch's.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import registry  # noqa: E402
from model import ConvNeXtBlock  # noqa: E402
from parity import TIE_MARGIN, f32, min_gap, time_major  # noqa: E402
from safetensors_io import save  # noqa: E402

SEED = 20240611

TINY_K2_CONFIG = {
    "sample_rate": 16000, "hop": 64, "n_fft": 128, "subframes": 2, "window": "sqrt_hann",
    "dim": 16, "ffn_dim": 32, "kernel": 7, "enc_blocks": 1, "dec_blocks": 2, "latent_dim": 8,
    "quantizer": "grvq", "groups": 2, "stages": 2, "codebook_size": 16, "log_floor": 1e-5,
}


def kernel_vectors(gen):
    out, meta = {}, {}

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    # linear: frames 5, in 37, out 19
    x, w, b = randn(5, 37), randn(19, 37, scale=0.3), randn(19)
    out["linear.x"], out["linear.w"], out["linear.b"] = f32(x), f32(w), f32(b)
    out["linear.y_bias"] = f32(F.linear(x, w, b))
    out["linear.y_nobias"] = f32(F.linear(x, w))

    # causal conv1d, standard: in 6, out 5, kernel 3, frames 9
    conv = torch.nn.Conv1d(6, 5, 3)
    with torch.no_grad():
        conv.weight.copy_(randn(5, 6, 3, scale=0.5))
        conv.bias.copy_(randn(5))
    x = randn(6, 9)  # [C, T]
    y = conv(F.pad(x, (2, 0))[None])[0]
    out["conv.x"], out["conv.w"], out["conv.b"] = time_major(x), f32(conv.weight), f32(conv.bias)
    out["conv.y"] = time_major(y)

    # depthwise: channels 8, kernel 7, groups 8, frames 9
    dw = torch.nn.Conv1d(8, 8, 7, groups=8)
    with torch.no_grad():
        dw.weight.copy_(randn(8, 1, 7, scale=0.5))
        dw.bias.copy_(randn(8))
    x = randn(8, 9)
    y = dw(F.pad(x, (6, 0))[None])[0]
    out["dwconv.x"], out["dwconv.w"], out["dwconv.b"] = time_major(x), f32(dw.weight), f32(dw.bias)
    out["dwconv.y"] = time_major(y)

    # layer norm: 7 frames x 33, eps 1e-6; an offset and scale per frame
    x = randn(7, 33) * torch.linspace(0.1, 5.0, 7)[:, None] + torch.linspace(-3, 3, 7)[:, None]
    gamma, beta = 1.0 + randn(33, scale=0.5), randn(33, scale=0.5)
    out["layer_norm.x"], out["layer_norm.gamma"], out["layer_norm.beta"] = f32(x), f32(gamma), f32(beta)
    out["layer_norm.y"] = f32(F.layer_norm(x, (33,), gamma, beta, eps=1e-6))
    meta["eps"] = 1e-6

    # GELU (exact erf): an even grid over -6..6 plus random points
    x = torch.cat([torch.linspace(-6.0, 6.0, 241), (torch.rand(59, generator=gen) * 12 - 6),
                   torch.tensor([0.0, -0.0, 1e-7, -1e-7, 3e-4, -3e-4])])
    out["gelu.x"] = f32(x)
    out["gelu.y"] = f32(F.gelu(x))  # approximate='none' is the erf form

    # a whole ConvNeXtBlock(16, 48, 7), every parameter randomised
    block = ConvNeXtBlock(16, 48, 7).eval()
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name in ("norm.weight", "gamma"):
                p.copy_(1.0 + randn(*p.shape, scale=0.3) if name == "norm.weight"
                        else randn(*p.shape, scale=0.5))
            else:
                p.copy_(randn(*p.shape, scale=0.3))
        x = randn(16, 10)
        y = block(x[None])[0]
    for name, p in block.named_parameters():
        out["block." + name] = f32(p)
    out["block.x"], out["block.y"] = time_major(x), time_major(y)
    meta.update({"block.dim": 16, "block.ffn_dim": 48, "block.kernel": 7})

    # nearest codeword: 50 vectors, 64 codewords, dim 8; PyTorch's argmin of
    # the squared distance; redrawn until no decision is a near tie
    for _ in range(100):
        x, cw = randn(50, 8), randn(64, 8)
        if min_gap(x, cw) > TIE_MARGIN:
            break
    else:
        raise SystemExit("nearest: could not draw tie-free vectors")
    dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ cw.t() + cw.pow(2).sum(1)[None]
    codes = dist.argmin(1)
    assert torch.equal(codes, torch.cdist(x.double(), cw.double()).argmin(1))
    out["nearest.x"], out["nearest.codewords"] = f32(x), f32(cw)
    out["nearest.codes"] = codes.to(torch.int32).numpy()
    return out, meta


def quantizer_vectors(gen):
    """Every registered quantizer's test cases, in registration order."""
    tensors, meta, cases = {}, {}, []
    for name, twin in registry.quantizers().items():
        for case, config in twin.test_cases():
            t, m = twin.vectors(gen, case, config)
            tensors.update(t)
            meta.update(m)
            meta.update({f"{case}.{k}": v for k, v in config.items()})
            meta[case + ".plugin"] = name
            cases.append(case)
    meta["cases"] = ",".join(cases)
    return tensors, meta


def tie_free_codes(model, latent):
    """Whether every nearest-codeword decision of the residual quantizer
    over latent [1, D, T] is clear of a tie (as quantizer_vectors demands)."""
    q = model.quantizer
    flat = latent[0].t()
    for g in range(q.groups):
        residual = flat[:, g * q.group_dim:(g + 1) * q.group_dim]
        for s in range(q.stages):
            stage = q.codebooks[s * q.groups + g]
            if min_gap(residual, stage.embed) <= TIE_MARGIN:
                return False
            residual = residual - stage.embed[stage.nearest(residual)]
    return True


def tiny_k2(data):
    """The tiny two-sub-frame model and its parity vectors (see the top)."""
    import soundfile
    from export import model_config, reference_vectors, round_to_f16, write_model
    audio, rate = soundfile.read(os.path.join(ROOT, "samples", "speech_en.wav"), dtype="float32")
    assert rate == TINY_K2_CONFIG["sample_rate"]
    audio = audio[rate // 2: rate // 2 + 20 * TINY_K2_CONFIG["hop"] * 6 + 37]
    twin = registry.get_model("stftcodec")
    for attempt in range(50):
        torch.manual_seed(SEED + attempt)
        model = twin(TINY_K2_CONFIG).eval()
        round_to_f16(model)
        hop = model.hop
        n = len(audio)
        padded = torch.zeros(1, (-(-n // hop) + 1) * hop)
        padded[0, :n] = torch.from_numpy(audio)
        with torch.no_grad():
            latent = model.encoder(model.features(padded))
            scale = float(latent.std())
            for s in range(model.quantizer.stages):  # coarse to fine, at the latent's scale
                for g in range(model.quantizer.groups):
                    book = model.quantizer.codebooks[s * model.quantizer.groups + g]
                    book.embed.copy_((torch.randn_like(book.embed) * scale * 0.5 ** s)
                                     .half().float())
        if tie_free_codes(model, latent):
            break
    else:
        raise SystemExit("tiny_k2: could not draw tie-free codebooks")
    training = {"note": "random initialisation for the parity test, not trained",
                "seed": SEED + attempt}
    config = model_config(model, "tiny-k2", twin.plugin_name, training)
    path = os.path.join(data, "tiny_k2.safetensors")
    _, _, digest = write_model(path, model, config)
    vectors = reference_vectors(model, audio, model.hop)
    save(os.path.join(data, "tiny_k2.parity.safetensors"), vectors,
         {"model_sha256": digest, "generator": "train/make_test_vectors.py",
          "torch": torch.__version__})


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data")
    os.makedirs(data, exist_ok=True)

    tensors, meta = kernel_vectors(gen)
    meta["generator"] = "train/make_test_vectors.py"
    meta["torch"] = torch.__version__
    save(os.path.join(data, "kernels.safetensors"), tensors, meta)

    tensors, meta = quantizer_vectors(gen)
    meta.update({"generator": "train/make_test_vectors.py", "torch": torch.__version__})
    save(os.path.join(data, "quantizers.safetensors"), tensors, meta)

    tiny_k2(data)

    for name in ("kernels.safetensors", "quantizers.safetensors", "tiny_k2.safetensors",
                 "tiny_k2.parity.safetensors"):
        path = os.path.join(data, name)
        size = os.path.getsize(path)
        assert size < 300 * 1024, path
        print("wrote %s (%d bytes)" % (path, size))


if __name__ == "__main__":
    main()
