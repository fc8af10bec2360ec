"""The frozen-layer cache: both attention-mask paths reproduce the full forward pass, a wrong one
is detected (training then runs end to end), and the real MiniLM backbone takes the cached path."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dataprune.rag.config import PrunerConfig
from dataprune.rag.frozen_cache import (
    MASK_BUILDERS,
    attention_mask_builder,
    cached_path_matches,
    n_frozen_layers,
)
from dataprune.rag.model import build_pruner_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _items(vocab: int, lengths=(9, 17, 30, 12, 25), seed: int = 0) -> list[dict]:
    """Windows of different lengths (so the batch has padding): query tokens, then passage."""
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        q = 4
        seg = np.r_[np.full(q, -2), np.repeat(np.arange((n - q + 3) // 4), 4)[: n - q]]
        out.append(
            {
                "ids": rng.integers(5, vocab, size=n).astype(np.int64),
                "types": np.r_[np.zeros(q), np.ones(n - q)].astype(np.int64),
                "sent": np.where(seg >= 0, seg, -1).astype(np.int64),
                "seg": seg.astype(np.int64),
                "em": rng.integers(0, 2, size=n).astype(np.float32),
                "y": np.full(n, -100, dtype=np.int64),
                "rank": 0.0,
            }
        )
    return out


def _model(backbone: str, trainable_layers: int = 1):
    cfg = PrunerConfig(
        backbone=backbone, max_length=48, max_query_tokens=12, trainable_layers=trainable_layers
    )
    model, tok, _ = build_pruner_model(cfg, random_state=0)
    return model, tok


@pytest.mark.parametrize("name", list(MASK_BUILDERS))
def test_each_available_mask_path_reproduces_the_full_forward(tiny_backbone, name):
    available, _ = MASK_BUILDERS[name]
    if not available():
        pytest.skip(f"{name} needs a newer transformers")
    model, tok = _model(str(tiny_backbone))
    n_frozen = n_frozen_layers(model)
    assert n_frozen == 1
    _, build = attention_mask_builder(name)
    assert cached_path_matches(model, _items(len(tok)), n_frozen, tok.pad_token_id, build)


def test_the_current_transformers_uses_its_public_mask_function():
    import transformers
    from packaging.version import Version

    name, _ = attention_mask_builder()
    if Version(transformers.__version__) >= Version("5.0"):
        assert name == "masking_utils"
    else:
        assert name in MASK_BUILDERS


def test_a_wrong_mask_is_detected_and_training_falls_back(tiny_backbone, caplog):
    model, tok = _model(str(tiny_backbone))

    def no_padding_mask(config, hidden, mask):
        return None  # attends to padding: the padded windows' logits change

    def broken(config, hidden, mask):
        raise TypeError("layer signature changed")

    items = _items(len(tok))
    with caplog.at_level(logging.WARNING):
        assert not cached_path_matches(model, items, 1, tok.pad_token_id, no_padding_mask)
        assert not cached_path_matches(model, items, 1, tok.pad_token_id, broken)
    text = caplog.text
    assert "differs from the full model" in text and "training end to end" in text
    assert "TypeError: layer signature changed" in text


def test_unknown_mask_builder_lists_the_valid_ones():
    from dataprune.errors import DataValidationError

    with pytest.raises(DataValidationError, match="valid: masking_utils, additive"):
        attention_mask_builder("bogus")


@pytest.mark.offline_models
def test_minilm_backbone_takes_the_cached_path():
    """The shipped checkpoint's backbone (all-MiniLM-L6-v2, 2 trainable of 6 layers)."""
    model, tok = _model("sentence-transformers/all-MiniLM-L6-v2", trainable_layers=2)
    assert n_frozen_layers(model) == 4
    _, build = attention_mask_builder()
    items = _items(len(tok), lengths=(20, 48, 33, 41))
    assert cached_path_matches(model, items, 4, tok.pad_token_id, build, tolerance=1e-3)
