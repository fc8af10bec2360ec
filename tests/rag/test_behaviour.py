"""Behaviour of the pruner shipped inside the package (real MiniLM base, held-out SQuAD v2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataprune.rag.pruner import default_checkpoint_path

pytestmark = pytest.mark.offline_models


def test_checkpoint_is_compact_and_documented():
    folder = default_checkpoint_path()
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 25 * 1024 * 1024, size
    assert not (folder / "train_state.pt").exists()
    card = json.loads((folder / "card.json").read_text())
    for key in ("command", "train_config", "data", "steps", "seed", "held_out", "backbone"):
        assert key in card
    assert card["data"]["split_by"] == "article"
    assert not set(card["data"]["split"]["test"]) & set(card["data"]["split"]["train"])
    at = card["held_out"]["at_default"]
    assert at["threshold"] == 0.1 and 0 < at["recall"] <= 1 and 0 < at["compression"] < 1
    meta = json.loads((folder / "pruner_config.json").read_text())
    assert meta["dtype"] == "float16"
    assert not any("embeddings" in n for n in meta["stored_parameters"])


@pytest.mark.shared_data
def test_loaded_checkpoint_reproduces_its_recorded_held_out_behaviour(default_pruner, shared_data):
    """On a held-out slice, the fp16 checkpoint loaded on the base encoder behaves as the card
    records (same splitter, windows and selection as at training time)."""
    from dataprune.rag.evaluation import pruning_metrics, sentence_average_precision
    from dataprune.rag.labels import build_examples, load_squad_v2
    from dataprune.rag.selection import select_sentences

    card = default_pruner.meta["card"]
    data = load_squad_v2(shared_data / "squad_v2")
    ex = build_examples(
        data,
        card["data"]["split"]["test"][:1],
        negatives_per_question=1,
        negative_kinds=("hard_negative",),
    )
    rng = np.random.default_rng(0)
    ex = [ex[i] for i in sorted(rng.choice(len(ex), 120, replace=False))]
    scores = [s[0] for s in default_pruner.score([e.query for e in ex], [[e.passage] for e in ex])]
    curve = {r["threshold"]: r for r in card["held_out"]["curves"]["mean_prob"]}
    for t, tol in ((0.1, 0.1), (0.2, 0.1)):
        m = pruning_metrics(ex, [select_sentences(s, threshold=t) for s in scores])
        assert abs(m["recall"] - curve[t]["recall"]) <= tol, (t, m["recall"], curve[t]["recall"])
        assert abs(m["compression"] - curve[t]["compression"]) <= tol, (t, m["compression"])
    # the sentence scores carry signal: better than ranking sentences at random
    ap = sentence_average_precision(ex, [s.sentence_scores for s in scores])
    chance = np.mean(np.concatenate([e.labels for e in ex]))
    assert ap > chance, (ap, chance)


def test_long_passage_with_the_real_model_is_windowed_not_truncated(default_pruner):
    filler = [
        "The cathedral was rebuilt after the fire of 1834.",
        "Its organ has more than four thousand pipes.",
        "Tourists visit the crypt during the summer months.",
        "The bell tower offers a view over the old town.",
        "A small museum displays the original stained glass.",
    ]
    needle = "The city's first university was founded in 1816 by the tsar."
    sents = [filler[i % 5] for i in range(60)]
    sents.insert(59, needle)
    text = " ".join(sents)
    (p,) = default_pruner.prune(
        "When was the city's first university founded?", [text], threshold=0.0
    )
    assert p.n_windows > 1 and len(p.sentence_scores) == 61 and p.text == text
    (q,) = default_pruner.prune("When was the city's first university founded?", [text])
    assert set(q.kept_sentences) <= set(range(61))


def test_same_inputs_same_outputs(default_pruner):
    q, ps = (
        "What is the capital of France?",
        ["Paris is the capital of France. Berlin is in Germany."],
    )
    a, b = default_pruner.prune(q, ps), default_pruner.prune(q, ps)
    assert a[0].sentence_scores == b[0].sentence_scores
    assert a[0].kept_sentences == b[0].kept_sentences
