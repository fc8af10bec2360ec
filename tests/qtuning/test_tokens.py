from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.qtuning import QTuningConfig, neighbor_token_scores, token_keep_masks, triage_samples
from dataprune.qtuning.sample_triage import Q2, Q4, SampleTriage


def test_neighbor_scores_by_hand_with_edge_replication():
    nll = np.log([1.0, 2.0, 4.0])
    s = neighbor_token_scores(nll, 0.5)
    # s0 = .5*1 + .5*(1+2)/2 ; s1 = .5*2 + .5*(1+4)/2 ; s2 = .5*4 + .5*(2+4)/2
    np.testing.assert_allclose(s, [1.25, 2.25, 3.5])
    np.testing.assert_allclose(neighbor_token_scores(nll, 0.0), [1.0, 2.0, 4.0])
    np.testing.assert_allclose(neighbor_token_scores(nll, 1.0), [1.5, 2.5, 3.0])
    np.testing.assert_allclose(neighbor_token_scores(np.log([3.0]), 0.7), [3.0])
    assert neighbor_token_scores(np.array([]), 0.5).shape == (0,)


def test_masked_neighbours_replicate_the_token():
    nll = np.log([1.0, 2.0, 4.0, 8.0])
    s = neighbor_token_scores(nll, 0.5, positions=[10, 11, 13, 14])
    # 11 and 13 are not adjacent: token 1 has no right neighbour, token 2 no left one
    np.testing.assert_allclose(
        s, [1.25, 0.5 * 2 + 0.5 * (1 + 2) / 2, 0.5 * 4 + 0.5 * (4 + 8) / 2, 7.0]
    )


def test_huge_nll_does_not_overflow():
    s = neighbor_token_scores(np.array([1.0, 5000.0, 2.0]), 0.5)
    assert np.all(np.isfinite(s)) and s.argmax() == 1


def _triage(quadrants, kept):
    n = len(quadrants)
    return SampleTriage(
        quadrant=np.array(quadrants, dtype=np.int8),
        kept=np.array(kept),
        selection=np.array([1 if k else 0 for k in kept], dtype=np.int8),
        alpha=0.1,
        thresholds={},
        n_keep=int(sum(kept)),
        n_corner=int(sum(kept)),
        n_bisection_steps=1,
        ppl_rank=np.full(n, 0.5),
        ent_rank=np.full(n, 0.5),
    )


NLL = [
    np.log([1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0, 10.0]),  # Q2, L=10
    np.log([5.0, 1.0, 5.0]),  # Q4
    np.log([2.0, 2.0]),  # dropped (Q1)
    np.log([50.0]),  # Q2, L=1
]
TRI = _triage([Q2, Q4, 1, Q2], [True, True, False, True])


@pytest.mark.parametrize("drop", ["high", "low"])
def test_per_sample_budget(drop):
    masks = token_keep_masks(NLL, TRI, QTuningConfig(token_ratio=0.7, drop=drop))
    assert [m.sum() for m in masks] == [7, 3, 0, 1]  # round(0.7*10); Q4 whole; dropped; >= 1
    s = neighbor_token_scores(NLL[0], 0.5)
    kept, pruned = s[masks[0]], s[~masks[0]]
    if drop == "high":
        assert kept.max() <= pruned.min()
    else:
        assert kept.min() >= pruned.max()


def test_at_least_one_token_and_q4_untouched():
    masks = token_keep_masks(NLL, TRI, QTuningConfig(token_ratio=0.01))
    assert [m.sum() for m in masks] == [1, 3, 0, 1]
    assert masks[1].all()


def test_ties_keep_earlier_tokens():
    tri = _triage([Q2], [True])
    masks = token_keep_masks([np.zeros(6)], tri, QTuningConfig(token_ratio=0.5))
    assert masks[0].tolist() == [True, True, True, False, False, False]


def test_batch_budget_is_exact_and_keeps_one_per_sample():
    cfg = QTuningConfig(token_ratio=0.5, token_budget="batch")
    masks = token_keep_masks(NLL, TRI, cfg)
    total_q2 = len(NLL[0]) + len(NLL[3])
    assert masks[0].sum() + masks[3].sum() == round(0.5 * total_q2)
    assert masks[3].sum() == 1 and masks[1].all() and not masks[2].any()
    # tiny ratio: still one token per Q2 sample
    masks = token_keep_masks(NLL, TRI, QTuningConfig(token_ratio=0.01, token_budget="batch"))
    assert masks[0].sum() == 1 and masks[3].sum() == 1


def test_batch_budget_competes_across_samples():
    nll = [np.log([1.0, 1.0, 1.0, 1.0]), np.log([100.0, 100.0, 100.0, 100.0])]
    tri = _triage([Q2, Q2], [True, True])
    masks = token_keep_masks(nll, tri, QTuningConfig(token_ratio=0.5, token_budget="batch"))
    # drop="high": the surprising sample loses everything but its reserved token
    assert masks[0].sum() == 3 and masks[1].sum() == 1


def test_with_real_triage_and_validation():
    rng = np.random.default_rng(0)
    nll = [rng.random(rng.integers(1, 30)) * 3 for _ in range(20)]
    ppl = np.array([np.exp(x.mean()) for x in nll])
    ent = rng.random(20)
    tri = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.5))
    masks = token_keep_masks(nll, tri, QTuningConfig(sample_ratio=0.5, token_ratio=0.6))
    for i, m in enumerate(masks):
        if not tri.kept[i]:
            assert not m.any()
        elif tri.quadrant[i] == Q4:
            assert m.all()
        else:
            assert m.sum() == max(1, round(0.6 * len(m)))
    with pytest.raises(DataValidationError, match="3 samples"):
        token_keep_masks(nll[:3], tri)
