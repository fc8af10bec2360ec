from __future__ import annotations

import pytest

from tiny_models import CORPUS, tiny_tokenizer

POOL = [f"{a} and {b}" for a in CORPUS for b in CORPUS]  # 64 distinct short texts


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture()
def pool():
    return list(POOL)
