from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes import HashingEncoder

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


@pytest.fixture()
def hashing_encoder() -> HashingEncoder:
    return HashingEncoder()


def pytest_collection_modifyitems(config, items):
    # Real offline models must be installed by the set-up; fail loudly rather than skip in CI.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
