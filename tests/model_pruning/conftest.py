from __future__ import annotations

import numpy as np
import pytest

from dataprune.calibration import CalibrationSet

from tiny_models import tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture()
def model(tok):
    """A random 3-block Llama with hidden size 64 (every width divisible by 4 for 2:4)."""
    return tiny_llama(len(tok), seed=0, hidden_size=64, n_layers=3)


@pytest.fixture()
def calib(tok):
    ids = np.random.default_rng(0).integers(4, len(tok), size=(6, 24))
    return CalibrationSet(ids, np.ones_like(ids), {"selector": "test"}, tokenizer=tok)


@pytest.fixture()
def tiny_dir(tmp_path, model, tok):
    d = tmp_path / "tiny"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d
