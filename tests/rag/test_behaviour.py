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
    assert at["threshold"] == card["held_out"]["default_threshold"]
    assert 0 < at["recall"] <= 1 and 0 < at["compression"] < 1
    # the training sets and their licences are on the card; none is non-commercial or unlicensed
    assert card["training_sets"] and all("(" in s for s in card["training_sets"])
    assert not any(
        name in " ".join(card["training_sets"]).lower() for name in ("wikiqa", "climate")
    )
    meta = json.loads((folder / "pruner_config.json").read_text())
    assert meta["dtype"] == "float16"
    assert not any("embeddings" in n for n in meta["stored_parameters"])


@pytest.mark.slow
@pytest.mark.shared_data
def test_loaded_checkpoint_reproduces_its_recorded_held_out_behaviour(default_pruner, shared_data):
    """A random sample of the card's own held-out set (same articles, same passage kinds), scored
    by the fp16 checkpoint loaded on the base encoder: the card's recall and compression at two
    thresholds and its sentence AP each lie in the sample's 99% bootstrap interval."""
    from dataprune.rag.evaluation import pruning_metrics, sentence_average_precision
    from dataprune.rag.labels import build_examples, load_squad_v2
    from dataprune.rag.selection import select_sentences

    card = default_pruner.meta["card"]
    data = load_squad_v2(shared_data / "squad_v2")
    held_out = build_examples(
        data,
        card["data"]["split"]["test"],
        negatives_per_question=card["train_config"]["negatives_per_question"],
        negative_kinds=("hard_negative",),
    )
    by_kind = {k: sum(e.kind == k for e in held_out) for k in card["data"]["test_passages_by_kind"]}
    assert by_kind == card["data"]["test_passages_by_kind"]  # the card's population
    rng = np.random.default_rng(0)
    ex = [held_out[i] for i in sorted(rng.choice(len(held_out), 300, replace=False))]
    scores = [s[0] for s in default_pruner.score([e.query for e in ex], [[e.passage] for e in ex])]
    curve = {r["threshold"]: r for r in card["held_out"]["curves"]["mean_prob"]}
    boot = [rng.choice(len(ex), len(ex)) for _ in range(200)]

    def interval(stat):
        values = [stat([ex[i] for i in b], b) for b in boot]
        return np.percentile(values, [0.5, 99.5])

    for t in (0.1, 0.2):
        kept = [select_sentences(x, threshold=t) for x in scores]
        for key in ("recall", "compression"):
            lo, hi = interval(
                lambda e, b, kept=kept, key=key: pruning_metrics(e, [kept[i] for i in b])[key]
            )
            assert lo <= curve[t][key] <= hi, (t, key, curve[t][key], lo, hi)
    sentence_scores = [x.sentence_scores for x in scores]
    lo, hi = interval(lambda e, b: sentence_average_precision(e, [sentence_scores[i] for i in b]))
    assert lo <= card["held_out"]["sentence_ap"] <= hi, (card["held_out"]["sentence_ap"], lo, hi)
    chance = np.mean(np.concatenate([e.labels for e in ex]))
    assert lo > 2 * chance  # and far above ranking sentences at random


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
    assert 59 in q.kept_sentences  # the needle, in the last window, is kept
    others = [s for i, s in enumerate(q.sentence_scores) if i != 59]
    assert q.sentence_scores[59] > 10 * max(others)


def test_same_inputs_same_outputs(default_pruner):
    q, ps = (
        "What is the capital of France?",
        ["Paris is the capital of France. Berlin is in Germany."],
    )
    a, b = default_pruner.prune(q, ps), default_pruner.prune(q, ps)
    assert a[0].sentence_scores == b[0].sentence_scores
    assert a[0].kept_sentences == b[0].kept_sentences
