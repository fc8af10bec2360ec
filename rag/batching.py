"""Batches of training windows: padding (:func:`collate`) and the length-bucketed schedule."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["collate", "collate_states", "schedule_batches"]


def collate(items: list[dict], idx: np.ndarray, pad_id: int) -> dict[str, Any]:
    """Pad the windows ``items[idx]`` into tensors of shape ``(len(idx), longest window)``."""
    import torch

    width = max(len(items[i]["ids"]) for i in idx)
    b = len(idx)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    types = torch.zeros((b, width), dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    y = torch.full((b, width), -100, dtype=torch.long)
    sent = torch.full((b, width), -1, dtype=torch.long)
    seg = torch.full((b, width), -1, dtype=torch.long)
    em = torch.zeros((b, width), dtype=torch.float32)
    rank = torch.zeros(b)
    for r, i in enumerate(idx):
        it = items[i]
        n = len(it["ids"])
        ids[r, :n] = torch.from_numpy(it["ids"])
        types[r, :n] = torch.from_numpy(it["types"])
        mask[r, :n] = 1
        y[r, :n] = torch.from_numpy(it["y"])
        sent[r, :n] = torch.from_numpy(it["sent"])
        seg[r, :n] = torch.from_numpy(it["seg"])
        em[r, :n] = torch.from_numpy(it["em"])
        rank[r] = it["rank"]
    return {
        "ids": ids,
        "types": types,
        "mask": mask,
        "y": y,
        "sent": sent,
        "seg": seg,
        "em": em,
        "rank": rank,
    }


def collate_states(items: list[dict], idx: np.ndarray) -> Any:
    """Pad the cached frozen-layer states ``items[i]["h"]`` to ``(len(idx), width, hidden)``."""
    import torch

    width = max(len(items[i]["ids"]) for i in idx)
    dim = items[idx[0]]["h"].shape[-1]
    h = torch.zeros((len(idx), width, dim), dtype=torch.float16)
    for r, i in enumerate(idx):
        h[r, : len(items[i]["ids"])] = items[i]["h"]
    return h


def schedule_batches(
    lengths: np.ndarray, batch_size: int, steps: int, seed: int
) -> list[np.ndarray]:
    """Length-bucketed batches for ``steps`` steps (deterministic given ``seed``)."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    chunk = batch_size * 32
    while len(out) < steps:
        perm = rng.permutation(len(lengths))
        batches = []
        for k in range(0, len(perm), chunk):
            block = perm[k : k + chunk]
            block = block[np.argsort(lengths[block], kind="stable")]
            batches.extend(block[j : j + batch_size] for j in range(0, len(block), batch_size))
        rng.shuffle(batches)
        out.extend(batches)
    return out[:steps]
