"""Fake components for wiring tests (importable from any test module: tests/ is on sys.path)."""

from __future__ import annotations

import hashlib

import numpy as np


class HashingEncoder:
    """A tiny deterministic text encoder for wiring tests (not a quality model).

    ``fail_on_call`` raises on that (1-based) call to simulate an interrupted run.
    """

    def __init__(self, dim: int = 16, fail_on_call: int | None = None) -> None:
        self.dim = dim
        self.calls = 0
        self.encoded = 0
        self.fail_on_call = fail_on_call
        self.name = f"hashing-encoder-{dim}"

    def encode(self, texts, **kwargs):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        self.encoded += len(texts)
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out
