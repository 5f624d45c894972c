"""A dataset over a folder written by ``tokvox tokenize`` (an example to copy
and adapt; torch is optional).

    from tokvox.dataset import TokenDataset
    ds = TokenDataset("tokens/", max_frames=500)      # any --layout, any shards
    codes = ds[0]                                     # int16 [frames, K], numpy
    len(ds), ds.entries[0]["input"]

    # with PyTorch installed:
    from tokvox.dataset import torch_dataset, collate
    loader = torch.utils.data.DataLoader(torch_dataset("tokens/"), batch_size=8,
                                         collate_fn=collate, shuffle=True)
    for codes, lengths in loader: ...                 # [B, T, K] int64, pad -1

Items are read lazily, one ``.npy`` each, and returned in the ``codebooks``
layout whatever layout the folder was written in (layouts are cheap to
re-apply: ``tokvox.to_delay(codes)``).
"""
import os

import numpy as np

from .tokens import invert_layout, read_manifest

__all__ = ["TokenDataset", "torch_dataset", "collate"]


class TokenDataset:
    """The utterances of a tokenize output folder, in manifest order (every
    ``manifest*.jsonl``, so the shards of a ``--shard I/N`` run count too).
    ``dataset[i]`` is the int16 codes [frames, K] of utterance i, cut to a
    random window of ``max_frames`` when it is longer (``rng`` seeds it)."""

    def __init__(self, folder, max_frames=None, rng=None):
        self.folder = folder
        self.entries = read_manifest(folder)
        if not self.entries:
            raise ValueError("%s: no manifest*.jsonl entries (not a tokvox tokenize folder?)"
                             % folder)
        self.max_frames = max_frames
        self.rng = np.random.default_rng(rng)

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        e = self.entries[i]
        path = os.path.join(self.folder, e["output"])
        values = np.load(path, allow_pickle=False)
        codes = invert_layout(values, e.get("layout", "codebooks"), e.get("codebooks"),
                              e.get("codebook_size", 1024), name=path)
        if self.max_frames and len(codes) > self.max_frames:
            start = int(self.rng.integers(0, len(codes) - self.max_frames + 1))
            codes = codes[start:start + self.max_frames]
        return codes


def collate(batch, pad=-1):
    """A list of [T_i, K] arrays -> (padded [B, max T, K] int64 tensor,
    lengths [B]); a torch DataLoader's collate_fn.  Needs torch."""
    import torch
    lengths = torch.tensor([len(b) for b in batch])
    out = torch.full((len(batch), int(lengths.max()), batch[0].shape[1]), pad, dtype=torch.int64)
    for i, b in enumerate(batch):
        out[i, :len(b)] = torch.from_numpy(b.astype(np.int64))
    return out, lengths


def torch_dataset(folder, max_frames=None, rng=None):
    """TokenDataset as a ``torch.utils.data.Dataset`` (imports torch)."""
    import torch

    class _TorchTokens(torch.utils.data.Dataset):
        def __init__(self):
            self.inner = TokenDataset(folder, max_frames, rng)

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            return self.inner[i]

    return _TorchTokens()
