"""PyTorch twins of the shipped plugins, registered in train/registry.py:
the stftcodec model plugin is train/model.py's Codec, and the grvq and rvq
quantizer plugins (plugins/quantizers/residual_vq.c) its GroupResidualVQ,
rvq with one group.  (Registered here rather than in model.py, which the
training runs import: model.py stays as it is.)"""
import numpy as np
import torch

import registry
from model import Codec, GroupResidualVQ
from parity import TIE_MARGIN, f32, min_gap, time_major


def residual_vectors(gen, prefix, latent, groups, stages, size):
    """One GroupResidualVQ in eval mode, codebooks random; redrawn until every
    stage's nearest-codeword decision is clear of ties."""
    for _ in range(100):
        vq = GroupResidualVQ(latent, groups, stages, size).eval()
        with torch.no_grad():
            for k, cb in enumerate(vq.codebooks):
                # later stages get smaller codewords, as trained residual stacks have
                scale = 0.8 * 0.6 ** (k // groups)
                cb.embed.copy_(torch.randn(size, latent // groups, generator=gen) * scale)
            x = torch.randn(latent, 20, generator=gen)  # [D, T]
            _, codes, _ = vq(x[None])
        codes = codes[0]  # [T, K]
        # replay the residual stacks in f64 to check the margins
        flat = x.t().double()
        gd = latent // groups
        ok = True
        for g in range(groups):
            residual = flat[:, g * gd:(g + 1) * gd]
            for s in range(stages):
                k = s * groups + g
                embed = vq.codebooks[k].embed.double()
                if min_gap(residual, embed) <= TIE_MARGIN:
                    ok = False
                residual = residual - embed[codes[:, k]]
        if ok:
            break
    else:
        raise SystemExit(prefix + ": could not draw tie-free vectors")
    out = {}
    for k, cb in enumerate(vq.codebooks):
        out["%s.quantizer.codebooks.%d.embed" % (prefix, k)] = f32(cb.embed)
    out[prefix + ".input"] = time_major(x)
    out[prefix + ".codes"] = codes.to(torch.int32).numpy()
    with torch.no_grad():
        for n in range(1, groups * stages + 1):
            out["%s.decode.%d" % (prefix, n)] = time_major(vq.decode(codes[None], n)[0])
    out[prefix + ".config"] = np.array([latent, groups, stages, size], dtype=np.int32)
    meta = {prefix + ".latent_dim": latent, prefix + ".groups": groups,
            prefix + ".stages": stages, prefix + ".codebook_size": size}
    return out, meta


registry.model("stftcodec")(Codec)


@registry.quantizer("grvq")
class GRVQTwin:
    """Group-residual VQ (HiFi-Codec)."""
    exported = (".embed",)  # the codebooks; not the EMA statistics

    @staticmethod
    def build(config):
        return GroupResidualVQ(config["latent_dim"], config["groups"], config["stages"],
                               config["codebook_size"])

    @staticmethod
    def test_cases():
        return [("grvq", {"latent_dim": 16, "groups": 2, "stages": 3, "codebook_size": 32})]

    @staticmethod
    def vectors(gen, case, c):
        return residual_vectors(gen, case, c["latent_dim"], c["groups"], c["stages"],
                                c["codebook_size"])


@registry.quantizer("rvq")
class RVQTwin:
    """Plain residual VQ: one group."""
    exported = (".embed",)

    @staticmethod
    def build(config):
        return GroupResidualVQ(config["latent_dim"], 1, config["stages"],
                               config["codebook_size"])

    @staticmethod
    def test_cases():
        return [("rvq", {"latent_dim": 16, "groups": 1, "stages": 4, "codebook_size": 32})]

    @staticmethod
    def vectors(gen, case, c):
        return residual_vectors(gen, case, c["latent_dim"], 1, c["stages"], c["codebook_size"])
