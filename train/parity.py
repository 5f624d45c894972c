"""Helpers for the parity vectors the C tests read (train/make_test_vectors.py
and the twins' vectors functions): layouts as tokvox/plugin.h has them, and
the tie check that makes exact code comparisons between C and PyTorch sound.
"""
import torch

TIE_MARGIN = 1e-3  # smallest allowed gap between best and second-best distance


def f32(t):
    return t.detach().to(torch.float32).contiguous().numpy()


def time_major(x):  # [C, T] -> [T, C]
    return f32(x.transpose(0, 1))


def min_gap(x, codewords):
    """Smallest (second best - best) squared distance over the rows of x, in f64."""
    x = x.double()
    c = codewords.double()
    d = torch.cdist(x, c).pow(2)
    two = d.topk(2, dim=1, largest=False).values
    return float((two[:, 1] - two[:, 0]).min())
