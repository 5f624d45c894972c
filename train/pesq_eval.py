"""Validation PESQ-WB (ITU-T P.862.2) through an external executable.

The ITU reference code is not open source, so the repository holds none of
it: PESQ_BIN names an evaluation-only build (see bench/README.md) called as
`PESQ_BIN ref.wav deg.wav`, printing the MOS-LQO.  Without it the figures are
simply absent.  The same clips also get bench/quality's pitch measures
(bench/metrics.py), which need nothing external.
"""
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import metrics  # noqa: E402  (bench/metrics.py: the benchmark's own pitch measure)


def pesq_clips(directory, seconds=3.2, per_group=12, hop=320):
    """A fixed, gender-balanced set of held-out adult voices from the real
    speech: the first `seconds` of up to `per_group` clips per group (m, f),
    chosen by a hash of the path so every run scores the same clips."""
    pcm = np.memmap(os.path.join(directory, "val.pcm"), dtype=np.int16, mode="r")
    length = int(seconds * 16000) // hop * hop
    chosen = {"m": [], "f": []}
    with open(os.path.join(directory, "val.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    rows = [r for r in rows if len(r) > 5 and r[0].startswith("shared")
            and r[5] in chosen and int(r[3]) >= length]
    rows.sort(key=lambda r: hashlib.sha1(r[4].encode()).hexdigest())
    for source, speaker, offset, n, path, group in rows:
        # one clip per speaker, so the figure is about voices, not utterances
        if len(chosen[group]) < per_group and speaker not in {s for s, _ in chosen[group]}:
            start = int(offset)
            chosen[group].append((speaker, pcm[start:start + length].astype(np.float32) / 32768))
    return [(g, audio) for g in ("m", "f") for _, audio in chosen[g]]


def pesq_wb(pesq_bin, ref, deg, workdir):
    ref_path, deg_path = os.path.join(workdir, "ref.wav"), os.path.join(workdir, "deg.wav")
    soundfile.write(ref_path, ref, 16000, subtype="PCM_16")
    soundfile.write(deg_path, np.clip(deg, -1, 1), 16000, subtype="PCM_16")
    out = subprocess.run([pesq_bin, ref_path, deg_path], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return float(out.stdout.split()[-1])


@torch.no_grad()
def validate_pesq(model, clips, codebooks=(2, 4, 8), pesq_bin=None):
    """{"pesq@Kcb": mean, "pesq@Kcb_m": ..., "pesq@Kcb_f": ...} (absent when
    no PESQ executable is configured) and {"f0@Kcb": mean median F0 error in
    cents, "vlost@Kcb": mean share of voiced frames decoded unvoiced}."""
    pesq_bin = pesq_bin or os.environ.get("PESQ_BIN")
    if not clips:
        return {}
    was_training = model.training
    model.eval()
    x = torch.from_numpy(np.stack([audio for _, audio in clips]))
    _, codes = model.encode(x)
    result = {}
    with tempfile.TemporaryDirectory() as work:
        for k in codebooks:
            y = model.decode(codes, k).numpy()
            cut = y.shape[1] - model.hop
            pitch = np.array([metrics.pitch_error(ref[:cut], deg[:cut], 16000)
                              for (_, ref), deg in zip(clips, y)])
            result[f"f0@{k}cb"] = round(float(np.nanmean(pitch[:, 0])), 2)
            result[f"vlost@{k}cb"] = round(float(np.nanmean(pitch[:, 1])), 4)
            if not pesq_bin:
                continue
            scores = {"m": [], "f": []}
            for (group, ref), deg in zip(clips, y):
                s = pesq_wb(pesq_bin, ref[:cut], deg[:cut], work)
                if s is not None:
                    scores[group].append(s)
            every = scores["m"] + scores["f"]
            result[f"pesq@{k}cb"] = round(float(np.mean(every)), 3)
            for g in ("m", "f"):
                result[f"pesq@{k}cb_{g}"] = round(float(np.mean(scores[g])), 3)
    model.train(was_training)
    return result
