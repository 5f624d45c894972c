#!/usr/bin/python3
"""PyTorch on one thread running the shipped weights: the baseline bench/speed
compares the C runtime with.

  OMP_NUM_THREADS=1 /usr/bin/python3 train/bench_torch.py AUDIO.wav \\
      [--model models/tokvox-16k.safetensors] [--reps 3] [--stream-seconds 30]

Builds train/model.py's Codec from the config stored in the model file, loads
its f16 tensors (a small safetensors reader below; the names are export.py's),
and times on AUDIO (16-bit or float WAV at the model rate, mono):

  encode     features -> encoder -> quantizer over the whole file at once
  decode     quantizer.decode -> decoder -> synthesis over the whole file
  transcode  both
  stream     the same model frame by frame as a live stream runs it: each
             causal conv keeps its last kernel-1 input frames, each 20 ms hop
             is analysed, encoded, quantised, decoded and overlap-added
             before the next one; timed per frame (p50, p99)

with torch.set_num_threads(1) (and OMP_NUM_THREADS=1), in inference mode.
The frame-by-frame codes are checked against the offline ones (the fraction
that agree is printed; float reordering may flip near-ties).  Prints one
JSON object.
"""
import argparse
import json
import os
import struct
import sys
import time
import wave

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from model import Codec  # noqa: E402

DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "I64": np.int64,
          "I16": np.int16}


def read_safetensors(path):
    """-> (tensors as numpy arrays, metadata dict)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(t["shape"])
    return out, meta


def load_codec(path):
    tensors, meta = read_safetensors(path)
    config = json.loads(meta["config"])
    model = Codec({k: v for k, v in config.items()
                   if k in ("sample_rate", "hop", "n_fft", "dim", "ffn_dim", "kernel",
                            "enc_blocks", "dec_blocks", "latent_dim", "quantizer", "groups",
                            "stages", "codebook_size", "log_floor", "subframes", "postfilter",
                            "postfilter_envelope_bins", "postfilter_tilt_bins")})
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise SystemExit("bench_torch: tensors the model does not have: %s" % unexpected[:5])
    # only the quantizer's training statistics may be absent from the file
    bad = [m for m in missing if not m.startswith("quantizer.")
           or not m.endswith(("cluster_size", "embed_avg", "initialised"))]
    if bad:
        raise SystemExit("bench_torch: the model file lacks %s" % bad[:5])
    model.eval()
    return model, config


def read_wav(path, rate):
    with wave.open(path, "rb") as w:
        if w.getframerate() != rate or w.getnchannels() != 1:
            raise SystemExit("bench_torch: %s must be mono at %d Hz" % (path, rate))
        width, raw = w.getsampwidth(), w.readframes(w.getnframes())
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    raise SystemExit("bench_torch: unsupported sample width %d" % width)


def best_of(reps, fn):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


class Streamer:
    """The model one frame at a time, each causal conv with its own history."""

    def __init__(self, model):
        self.m = model
        c = model.config
        self.hop, self.n_fft, self.bins = model.hop, model.n_fft, model.bins
        self.window = model.window
        self.audio = torch.zeros(self.n_fft)
        self.overlap = torch.zeros(self.n_fft)
        self.enc = self._backbone_state(model.encoder, self.bins, c["dim"])
        self.dec = self._backbone_state(model.decoder, c["latent_dim"], c["dim"])

    @staticmethod
    def _backbone_state(bb, in_dim, dim):
        return {"in": torch.zeros(1, in_dim, 2),
                "blocks": [torch.zeros(1, dim, b.dwconv.kernel_size[0] - 1) for b in bb.blocks]}

    @staticmethod
    def _run(bb, st, x):  # x: [1, C, 1]
        buf = torch.cat([st["in"], x], 2)
        st["in"] = buf[:, :, 1:]
        h = F.conv1d(buf, bb.in_conv.weight, bb.in_conv.bias)
        for i, blk in enumerate(bb.blocks):
            buf = torch.cat([st["blocks"][i], h], 2)
            st["blocks"][i] = buf[:, :, 1:]
            y = F.conv1d(buf, blk.dwconv.weight, blk.dwconv.bias, groups=blk.dwconv.groups)
            y = blk.pw2(F.gelu(blk.pw1(blk.norm(y.transpose(1, 2)))))
            h = h + (blk.gamma * y).transpose(1, 2)
        return bb.proj(bb.norm(h.transpose(1, 2)))  # [1, 1, out]

    def step(self, samples):
        """One hop of samples -> (codes [1, 1, K], hop samples of output)."""
        m = self.m
        self.audio = torch.cat([self.audio[self.hop:], samples])
        spec = torch.fft.rfft(self.audio * self.window)
        feat = torch.log(spec.abs() + m.config["log_floor"])[None, :, None]
        latent = self._run(m.encoder, self.enc, feat).transpose(1, 2)
        _, codes, _ = m.quantizer(latent)
        q = m.quantizer.decode(codes)
        head = self._run(m.decoder, self.dec, q)[0, 0]
        # K spectra in time order, each overlap-added at the synthesis hop
        # (Codec.synthesis, one sub-frame at a time)
        sh, out = m.synth_hop, []
        for k in range(m.subframes):
            spectrum = head[k * 2 * self.bins:(k + 1) * 2 * self.bins]
            log_mag = m.postfilter(spectrum[:self.bins][None, :, None])[0, :, 0]
            mag = torch.exp(log_mag).clamp(max=100.0)
            phase = spectrum[self.bins:]
            frame = torch.fft.irfft(torch.complex(mag * torch.cos(phase), mag * torch.sin(phase)),
                                    n=self.n_fft) * self.window * (2 * sh / self.n_fft)
            self.overlap = self.overlap + frame
            out.append(self.overlap[:sh].clone())
            self.overlap = torch.cat([self.overlap[sh:], torch.zeros(sh)])
        return codes, torch.cat(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("audio")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tokvox-16k.safetensors"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--stream-seconds", type=float, default=30.0)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    model, config = load_codec(args.model)
    rate, hop = config["sample_rate"], config["hop"]
    audio = read_wav(args.audio, rate)
    seconds = len(audio) / rate
    frames = -(-len(audio) // hop) + 1
    padded = torch.zeros(1, frames * hop)
    padded[0, :len(audio)] = torch.from_numpy(audio)

    result = {"audio": args.audio, "audio_seconds": seconds, "torch": torch.__version__,
              "threads": torch.get_num_threads(),
              "blas": "see torch.__config__: " + ("OpenBLAS via libblas.so.3"
                                                  if "BLAS_INFO=generic" in torch.__config__.show()
                                                  else "built-in")}
    with torch.inference_mode():
        def encode():
            latent = model.encoder(model.features(padded))
            return model.quantizer(latent)[1]

        def decode(codes):
            return model.decode(codes)

        encode()  # warm up
        t_enc, runs_enc, codes = best_of(args.reps, encode)
        t_dec, runs_dec, _ = best_of(args.reps, lambda: decode(codes))
        t_tr, runs_tr, _ = best_of(args.reps, lambda: decode(encode()))
        for name, t, runs in (("encode", t_enc, runs_enc), ("decode", t_dec, runs_dec),
                              ("transcode", t_tr, runs_tr)):
            result[name] = {"best_s": t, "runs_s": runs, "realtime_factor": seconds / t}

        n_stream = min(frames - 1, int(args.stream_seconds * rate / hop))
        s = Streamer(model)
        for f in range(min(50, n_stream)):  # warm up, then a fresh stream
            s.step(padded[0, f * hop:(f + 1) * hop])
        s = Streamer(model)
        times, same = [], 0
        for f in range(n_stream):
            chunk = padded[0, f * hop:(f + 1) * hop]
            t0 = time.perf_counter()
            c, _ = s.step(chunk)
            times.append(time.perf_counter() - t0)
            same += int((c[0, 0] == codes[0, f]).sum())
        times = np.sort(np.array(times))
        k = codes.shape[2]
        result["stream"] = {
            "frames": n_stream, "frame_ms": 1000.0 * hop / rate,
            "p50_ms": 1e3 * float(np.percentile(times, 50)),
            "p99_ms": 1e3 * float(np.percentile(times, 99)),
            "max_ms": 1e3 * float(times[-1]),
            "realtime_factor": n_stream * hop / rate / float(times.sum()),
            "codes_as_offline": same / max(1, n_stream * k),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
