from __future__ import annotations

import numpy as np

from dataprune.rag import baselines as bl
from dataprune.rag.comparison import (
    THRESHOLD_GRID,
    compare_at_threshold,
    metrics_from_sums,
    passage_stats,
    pruner_sweep,
    score_sweep,
    threshold_masks,
    value_at_compression,
)
from dataprune.rag.inference import PassageScores
from dataprune.rag.labelled import examples_from_records


def _examples(n=60, seed=0):
    rng = np.random.default_rng(seed)
    passages, evidence = [], []
    for i in range(n):
        sents = [
            f"Sentence {j} of passage {i} says {'x' * int(rng.integers(5, 40))}." for j in range(6)
        ]
        passages.append(" ".join(sents))
        evidence.append(
            [sents[int(k)] for k in rng.choice(6, size=int(rng.integers(1, 3)), replace=False)]
        )
    return examples_from_records([f"q{i}" for i in range(n)], passages, evidence)


def _oracle(examples):
    """Scores that keep exactly the evidence at any threshold in (0, 1)."""
    return [
        PassageScores(
            sentences=e.sentences,
            token_probs=[np.array([float(y)], dtype=np.float32) for y in e.labels],
            sentence_n_tokens=np.ones(len(e.labels), dtype=np.int64),
            passage_score=1.0,
            passage_logit=0.0,
            n_windows=1,
        )
        for e in examples
    ]


def test_sums_give_recall_and_compression():
    ex = _examples(5)
    masks = [np.asarray(e.labels, bool) for e in ex]
    st = passage_stats(ex, masks)
    assert st.shape == (5, 5)
    m = metrics_from_sums(st.sum(axis=1))
    assert m["recall"] == 1.0 and 0 < m["compression"] < 1


def test_an_oracle_beats_a_random_filter_at_its_own_compression():
    ex = _examples()
    others = {"random": score_sweep(bl.random_scores([len(e.labels) for e in ex], random_state=1))}
    rep = compare_at_threshold(ex, _oracle(ex), 0.5, others, target_compression=0.5, n_boot=300)
    assert rep["default"]["recall"] == 1.0
    r = rep["against"]["random"]
    # a random filter removing the same share keeps about (1 - compression) of the evidence
    assert abs(r["recall"] - (1 - rep["default"]["compression"])) < 0.15
    assert r["delta_recall"] > 0 and r["ci95_recall"]["lo"] > 0
    again = compare_at_threshold(ex, _oracle(ex), 0.5, others, target_compression=0.5, n_boot=300)
    assert again == rep  # same seed, same intervals


def test_interpolation_reads_between_points_and_refuses_outside():
    curve = [{"compression": 0.2, "recall": 0.9}, {"compression": 0.6, "recall": 0.5}]
    assert abs(value_at_compression(curve, 0.4, "recall") - 0.7) < 1e-12
    assert np.isnan(value_at_compression(curve, 0.8, "recall"))


def test_pruner_sweep_is_the_threshold_masks_at_each_threshold():
    ex = _examples(8)
    scores = _oracle(ex)
    masks, params = pruner_sweep(scores, (0.2, 0.5))
    assert params == [0.2, 0.5]
    for m, t in zip(masks, params):
        assert all(np.array_equal(a, b) for a, b in zip(m, threshold_masks(scores, t)))
    # the oracle keeps exactly the evidence at any threshold in (0, 1)
    assert all(np.array_equal(a, np.asarray(e.labels, bool)) for a, e in zip(masks[0], ex))
    full, grid = pruner_sweep(scores)
    assert grid == list(THRESHOLD_GRID) and len(full) == len(THRESHOLD_GRID)
