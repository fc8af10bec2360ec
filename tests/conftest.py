from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"../shared/data not found at {SHARED_DATA} (it sits beside the checkout in CI)"
        )
    return SHARED_DATA


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private DATAPRUNE_CACHE for tests that must not touch the shared model cache."""
    d = tmp_path / "dpcache"
    monkeypatch.setenv("DATAPRUNE_CACHE", str(d))
    return d


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


@pytest.fixture()
def hashing_encoder() -> HashingEncoder:
    return HashingEncoder()


def pytest_collection_modifyitems(config, items):
    # Real offline models must be installed by the set-up; fail loudly rather than skip in CI.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
