"""threshold=None: the checkpoint card's default threshold (0.1 when it names none)."""

from __future__ import annotations

import logging

import pytest

from dataprune.errors import DataValidationError
from dataprune.rag.pruner import ContextPruner

PASSAGES = [
    "The zebra lives in Africa. Paris is the capital of France.",
    "Warsaw was founded in the 13th century. The river Vistula flows through Warsaw. It rained.",
]


def with_meta(pruner, meta):
    return ContextPruner(
        pruner.model,
        pruner.tokenizer,
        max_length=pruner.max_length,
        max_query_tokens=pruner.max_query_tokens,
        batch_size=pruner.batch_size,
        meta=meta,
    )


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (None, 0.1),
        ({}, 0.1),
        ({"card": "card.json"}, 0.1),  # card file missing: the file name stays in meta
        ({"card": {"held_out": {"default_threshold": 0.25}}}, 0.25),
        ({"card": {"default_threshold": 0.3}}, 0.3),
        ({"card": {"held_out": {"default_threshold": 0.2}, "default_threshold": 0.4}}, 0.2),
        ({"card": {"held_out": {"sentence_ap": 0.4}, "default_threshold": 0.4}}, 0.4),
        ({"format": "remote-code", "hub_id": "naver/provence-reranker-debertav3-v1"}, 0.1),
    ],
)
def test_default_threshold_is_read_from_the_card(tiny_pruner, meta, expected):
    pr = with_meta(tiny_pruner, meta)
    assert pr.default_threshold == expected
    assert pr.describe()["default_threshold"] == expected


def test_bad_card_value_falls_back_with_a_warning(tiny_pruner, caplog):
    pr = with_meta(tiny_pruner, {"card": {"held_out": {"default_threshold": 7}}})
    with caplog.at_level(logging.WARNING, logger="dataprune.rag.pruner"):
        assert pr.default_threshold == 0.1
    assert "default_threshold" in caplog.text


def test_none_uses_the_default_and_explicit_values_still_win(tiny_pruner):
    keep_all = with_meta(tiny_pruner, {"card": {"held_out": {"default_threshold": 0.0}}})
    keep_none = with_meta(tiny_pruner, {"card": {"default_threshold": 1.0}})
    assert [p.text for p in keep_all.prune("zebra?", PASSAGES)] == PASSAGES
    assert all(p.is_empty for p in keep_none.prune("zebra?", PASSAGES))
    assert [p.text for p in keep_none.prune("zebra?", PASSAGES, threshold=0.0)] == PASSAGES
    assert keep_all.process("zebra?", PASSAGES[0])["pruned_context"] == PASSAGES[0]
    assert keep_none.process("zebra?", PASSAGES[0])["pruned_context"] == ""
    with pytest.raises(DataValidationError, match="threshold must be in"):
        keep_all.prune("zebra?", PASSAGES, threshold=1.5)


def test_shipped_checkpoint_default_matches_its_card(default_pruner):
    card = default_pruner.meta["card"]
    t = card["held_out"]["default_threshold"]
    assert default_pruner.default_threshold == t
    # calibrated on validation to the card's target compression, not the 0.1 fallback
    assert card["held_out"]["default_threshold_source"].startswith("calibrated") and t != 0.1
    q = "When was Warsaw founded?"
    a = default_pruner.prune(q, PASSAGES)
    b = default_pruner.prune(q, PASSAGES, threshold=t)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]


def test_remote_provence_model_keeps_0_1(tiny_pruner):
    from dataprune.rag.loading import _RemoteProvence

    pr = ContextPruner(
        _RemoteProvence(tiny_pruner.model),
        tiny_pruner.tokenizer,
        max_length=48,
        meta={"format": "remote-code", "hub_id": "x", "revision": "abc"},
    )
    assert pr.default_threshold == 0.1
