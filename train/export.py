#!/usr/bin/python3
"""Export a training checkpoint to the shipped safetensors model, and write the
C parity vectors from the very weights that were shipped.

  /usr/bin/python3 train/export.py [--checkpoint train/checkpoints/tokvox-16k.pt]
      [--out models/tokvox-16k.safetensors] [--vectors tests/data/parity.safetensors]

The low-delay variant, models/tokvox-16k-ld.safetensors, and its vectors
tests/data/parity-ld.safetensors came from train/checkpoints/base.pt this
way when it was the default model (2026-11-24); the file is kept byte for
byte, so that streams and tokens written with it still name it.

Weights are stored as f16 (half the size); the reference outputs are computed
by PyTorch from the f16-rounded weights, so the C runtime is compared with
exactly what it loads.  Any checkpoint of the model twins exports, whatever
its synthesis framing (config `subframes` = K: K spectra per code frame at
hop/K, which the C engine runs too); the config in the metadata is the
model's whole config.  To check another model against the C runtime:

  /usr/bin/python3 train/export.py --checkpoint CKPT --out /tmp/m.safetensors \
      --vectors /tmp/m.parity.safetensors --name NAME
  TOKVOX_PARITY_MODEL=/tmp/m.safetensors TOKVOX_PARITY_VECTORS=/tmp/m.parity.safetensors \
      build/tests/test_parity
"""
import argparse
import hashlib
import json
import os
import subprocess

import numpy as np
import torch

import registry
from safetensors_io import save

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def exported_buffer(model, name):
    """Whether buffer `name` of the model goes into the model file: a
    quantizer's buffers only when its twin lists them (grvq: the codebooks,
    not the EMA statistics)."""
    twin = registry.get_quantizer(model.config["quantizer"])
    return not name.startswith("quantizer.") or name.endswith(tuple(twin.exported))


def inference_tensors(model):
    """Names the C plugins bind: the parameters and the exported buffers."""
    params = {name for name, _ in model.named_parameters()}
    return {name: value.detach().float() for name, value in model.state_dict().items()
            if name in params or exported_buffer(model, name)}


def round_to_f16(model):
    with torch.no_grad():
        for tensor in list(model.parameters()) + [b for n, b in model.named_buffers()
                                                  if n.startswith("quantizer.")
                                                  and exported_buffer(model, n)]:
            tensor.copy_(tensor.half().float())


def latency_samples(model):
    """The algorithmic latency the C engine reports: a hop for the encoder,
    the synthesis window's overhang (n_fft - hop / subframes) for the decoder."""
    return model.hop + model.n_fft - model.synth_hop


def model_config(model, name, plugin_name, training):
    """The config stored in the model file's metadata."""
    config = dict(model.config)
    if not config.get("postfilter"):  # off: files exported before it existed stay the same
        for key in ("postfilter", "postfilter_envelope_bins", "postfilter_tilt_bins"):
            config.pop(key, None)
    config.update({
        "format": "tokvox-model/1", "name": name, "model": plugin_name,
        "features": "log_magnitude", "head": "log_magnitude_phase",
        "latency_samples": latency_samples(model), "num_codebooks": model.num_codebooks(),
        "training": training,
    })
    return config


def write_model(path, model, config):
    """The model file: the inference tensors as f16 and the config; returns
    (size in bytes, parameter count, the first 16 hex digits of its sha256)."""
    tensors = {k: v.numpy().astype(np.float16) for k, v in inference_tensors(model).items()}
    save(path, tensors, {"config": json.dumps(config, sort_keys=True)})
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]
    return os.path.getsize(path), sum(v.size for v in tensors.values()), digest


def reference_vectors(model, audio, hop):
    """The offline pipeline exactly as the C engine runs it."""
    n = len(audio)
    frames = -(-n // hop) + 1
    padded = torch.zeros(1, frames * hop)
    padded[0, :n] = torch.from_numpy(audio)
    with torch.no_grad():
        features = model.features(padded)
        latent = model.encoder(features)
        _, codes, _ = model.quantizer(latent)
        out = {"input": audio.astype(np.float32),
               "features": features[0].t().contiguous().numpy(),
               "latent": latent[0].t().contiguous().numpy(),
               "codes": codes[0].numpy().astype(np.int32)}
        groups = model.quantizer.groups
        for k in sorted({groups, 2 * groups, model.num_codebooks()}):
            y = model.decode(codes, k)[0, :n]
            out[f"output_{k}cb"] = y.numpy().astype(np.float32)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=os.path.join(HERE, "checkpoints", "tokvox-16k.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "tokvox-16k.safetensors"))
    ap.add_argument("--vectors", default=os.path.join(ROOT, "tests", "data", "parity.safetensors"))
    ap.add_argument("--parity-audio", default=os.path.join(ROOT, "samples", "speech_en.wav"))
    ap.add_argument("--name", default="tokvox-16k")
    args = ap.parse_args()

    saved = torch.load(args.checkpoint)
    if any(saved["config"].get(k) for k in ("pitch_bins", "pitch_input", "phase_input")):
        raise SystemExit(f"{args.checkpoint}: pitch side information and pitch or phase "
                         "input are training experiments the C runtime does not run")
    # checkpoints name no model plugin while there is one model twin
    model_twin = registry.get_model(saved["config"].get("model"))
    model = model_twin(saved["config"])
    model.load_state_dict(saved["model"])
    model.eval()
    round_to_f16(model)

    stats_path = os.path.join(HERE, "data", "out", "stats.json")
    data_hash = json.load(open(stats_path))["sha256"] if os.path.exists(stats_path) else "unknown"
    training = {"step": saved["step"], "audio_hours": round(saved["audio_seconds"] / 3600, 2),
                "cpu_hours": round(saved["cpu_seconds"] / 3600, 2),
                "data_sha256": data_hash, "git_commit": git_commit()}
    config = model_config(model, args.name, model_twin.plugin_name, training)
    size, params, digest = write_model(args.out, model, config)
    print(f"wrote {args.out}: {size / 1e6:.2f} MB, {params} params, sha256 {digest}")

    import soundfile
    audio, rate = soundfile.read(args.parity_audio, dtype="float32")
    assert rate == model.config["sample_rate"], "parity audio must be at the model rate"
    audio = audio[: int(2.5 * rate) + 123]  # not a whole number of hops, on purpose
    vectors = reference_vectors(model, audio, model.hop)
    save(args.vectors, vectors, {"model_sha256": digest})
    print(f"wrote {args.vectors}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in vectors.items()))


if __name__ == "__main__":
    main()
