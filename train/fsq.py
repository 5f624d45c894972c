"""Residual finite scalar quantization (FSQ, Mentzer et al. 2023), the PyTorch
twin of the fsq quantizer plugin (plugins/quantizers/fsq.c).

No codebook to collapse: each codebook k (stage k // groups of group
k % groups) projects its group's residual to len(levels) dimensions, bounds
each with tanh to levels[i] values and rounds; the code is the mixed-radix
number of the rounded digits (codebook size = prod(levels)), and the
quantised value is projected back and taken off the residual, so later
stages refine earlier ones and any prefix of whole stages decodes.

  bounded_i = tanh(h_i + shift_i) * half_i - offset_i
      half_i = (L_i - 1)(1 + 1e-3) / 2, offset_i = 0.5 for even L_i else 0,
      shift_i = atanh(offset_i / half_i)
  v_i = round(bounded_i) in [-(L_i // 2), L_i - 1 - L_i // 2]
  digit_i = v_i + L_i // 2,  code = sum_i digit_i * prod_{j<i} L_j
  q_i = v_i / (L_i // 2),    out = project_out(q)

Config: latent_dim, groups, stages, levels ("8,5,5,5": a string, since model
configs hand plugins integers and strings).  Tensors, for every codebook K:
quantizer.codebooks.K.project_in.{weight [len(levels), latent/groups], bias}
and quantizer.codebooks.K.project_out.{weight [latent/groups, len(levels)],
bias}.
"""
import math

import numpy as np
import torch
import torch.nn as nn

import registry
from parity import f32, time_major

EPS = 1e-3
ROUND_MARGIN = 1e-3  # parity vectors: bounded values this far from a rounding boundary


def parse_levels(levels):
    values = [int(v) for v in str(levels).split(",")]
    if not values or min(values) < 2 or math.prod(values) > 65536:
        raise ValueError(f"fsq levels {levels!r}: each >= 2, product <= 65536")
    return values


class FSQStage(nn.Module):
    """One codebook: project, bound, round, project back."""

    def __init__(self, dim, levels):
        super().__init__()
        self.levels = levels
        self.project_in = nn.Linear(dim, len(levels))
        self.project_out = nn.Linear(len(levels), dim)
        l = torch.tensor(levels, dtype=torch.float64)
        half = (l - 1) * (1 + EPS) / 2
        offset = torch.where(l.remainder(2) == 0, 0.5, 0.0)
        self.register_buffer("half_range", half.float(), persistent=False)
        self.register_buffer("offset", offset.float(), persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half).float(), persistent=False)
        self.register_buffer("width", (l // 2).float(), persistent=False)
        basis = [1]
        for v in levels[:-1]:
            basis.append(basis[-1] * v)
        self.register_buffer("basis", torch.tensor(basis), persistent=False)

    def bound(self, x):  # x [N, dim] -> bounded [N, d]
        return torch.tanh(self.project_in(x) + self.shift) * self.half_range - self.offset

    def forward(self, x):  # -> (out [N, dim], codes [N])
        b = self.bound(x)
        v = b + (torch.round(b) - b).detach()  # straight-through rounding
        digits = (torch.round(b) + self.width).long()
        return self.project_out(v / self.width), (digits * self.basis).sum(1)

    def decode(self, codes):  # codes [N] -> out [N, dim]
        digits = (codes[:, None] // self.basis) % torch.tensor(self.levels)
        return self.project_out((digits.float() - self.width) / self.width)


class ResidualFSQ(nn.Module):
    """The GroupResidualVQ interface: forward(z [B, D, T], n_stages) ->
    (quantised, codes [B, T, groups*stages], loss), decode(codes, n)."""

    def __init__(self, dim, groups, stages, levels):
        super().__init__()
        assert dim % groups == 0
        self.groups, self.stages = groups, stages
        self.group_dim = dim // groups
        self.codebooks = nn.ModuleList(
            [FSQStage(self.group_dim, levels) for _ in range(groups * stages)])

    def forward(self, z, n_stages=None):
        b, d, t = z.shape
        flat = z.transpose(1, 2).reshape(b * t, d)
        outs, all_codes = [], []
        for g in range(self.groups):
            residual = flat[:, g * self.group_dim:(g + 1) * self.group_dim]
            total = torch.zeros_like(residual)
            for s in range(self.stages):
                q, codes = self.codebooks[s * self.groups + g](residual)
                residual = residual - q
                if n_stages is not None:
                    q = q * (n_stages > s).float().repeat_interleave(t)[:, None]
                total = total + q
                all_codes.append((s * self.groups + g, codes))
            outs.append(total)
        quantised = torch.cat(outs, 1).reshape(b, t, d).transpose(1, 2)
        codes = torch.stack([c for _, c in sorted(all_codes, key=lambda kc: kc[0])], 1)
        return quantised, codes.reshape(b, t, -1), quantised.new_zeros(())

    def decode(self, codes, n_codebooks=None):  # codes [B, T, K] -> [B, D, T]
        b, t, k = codes.shape
        n = k if n_codebooks is None else n_codebooks
        parts = []
        for g in range(self.groups):
            total = torch.zeros(b * t, self.group_dim)
            for s in range(self.stages):
                idx = s * self.groups + g
                if idx < n:
                    total = total + self.codebooks[idx].decode(codes[:, :, idx].reshape(-1))
            parts.append(total.reshape(b, t, self.group_dim))
        return torch.cat(parts, 2).transpose(1, 2)


def fsq_vectors(gen, prefix, latent, groups, stages, levels):
    """A ResidualFSQ with random projections and inputs, redrawn until no
    bounded value of any stage is within ROUND_MARGIN of a rounding boundary
    (checked in f64), so the C plugin must give exactly these codes."""
    lv = parse_levels(levels)
    for _ in range(100):
        fsq = ResidualFSQ(latent, groups, stages, lv).eval()
        with torch.no_grad():
            for k, cb in enumerate(fsq.codebooks):
                scale = 0.6 ** (k // groups)  # later stages see smaller residuals
                for p in (cb.project_in.weight, cb.project_in.bias):
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.8 / scale)
                for p in (cb.project_out.weight, cb.project_out.bias):
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.5 * scale)
            x = torch.randn(latent, 20, generator=gen)
            _, codes, _ = fsq(x[None])
            ok = True
            flat = x.t()
            for g in range(groups):
                residual = flat[:, g * fsq.group_dim:(g + 1) * fsq.group_dim].double()
                for s in range(stages):
                    cb = fsq.codebooks[s * groups + g].double()
                    bounded = cb.bound(residual)
                    if float((bounded - torch.floor(bounded) - 0.5).abs().min()) <= ROUND_MARGIN:
                        ok = False
                    out, _ = cb(residual)
                    residual = residual - out
                    cb.float()
        if ok:
            break
    else:
        raise SystemExit(prefix + ": could not draw vectors clear of rounding boundaries")
    codes = codes[0]
    out = {f"{prefix}.{name}": f32(p) for name, p in
           (("quantizer." + n, p) for n, p in fsq.state_dict().items())}
    out[prefix + ".input"] = time_major(x)
    out[prefix + ".codes"] = codes.to(torch.int32).numpy()
    with torch.no_grad():
        for n in range(1, groups * stages + 1):
            out[f"{prefix}.decode.{n}"] = time_major(fsq.decode(codes[None], n)[0])
    out[prefix + ".config"] = np.array([latent, groups, stages, math.prod(lv)], dtype=np.int32)
    meta = {prefix + ".latent_dim": latent, prefix + ".groups": groups,
            prefix + ".stages": stages, prefix + ".codebook_size": math.prod(lv)}
    return out, meta


@registry.quantizer("fsq")
class FSQTwin:
    """Residual FSQ: parameters only, nothing else to export."""
    exported = ()

    @staticmethod
    def build(config):
        return ResidualFSQ(config["latent_dim"], config.get("groups", 1), config["stages"],
                           parse_levels(config["levels"]))

    @staticmethod
    def test_cases():
        return [("fsq", {"latent_dim": 12, "groups": 2, "stages": 2, "levels": "5,4,3"})]

    @staticmethod
    def vectors(gen, case, c):
        return fsq_vectors(gen, case, c["latent_dim"], c["groups"], c["stages"], c["levels"])
