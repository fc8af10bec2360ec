"""Rows and a recall measure shared by the kNN-graph tests."""

from __future__ import annotations

import numpy as np


def unit_rows(rng, n, d):
    """``n`` Gaussian rows of dimension ``d``, L2-normalised (float32)."""
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def lowrank(rng, n, d=64, rank=8, noise=0.1):
    """Structureless low-rank rows (no clusters for cells to align with), L2-normalised."""
    X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) / np.sqrt(rank)
    X = X + noise * rng.standard_normal((n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of the share of the exact neighbours found."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(approx, exact)]))
