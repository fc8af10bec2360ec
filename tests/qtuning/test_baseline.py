from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from dataprune.errors import DataValidationError
from dataprune.qtuning import QTuningConfig, QTuningTriage, coupled_random_subset, random_baseline

from tiny_models import CORPUS, tiny_causal_lm

N, K = 10, 3
FLAGGED = np.zeros(N, dtype=bool)
FLAGGED[[1, 4, 7]] = True
GROUPS = np.array(["a"] * 6 + ["b"] * 4)


def _subset_law(groups, draws: int = 24_000) -> Counter:
    """How often each K-subset comes out when ``kept`` is itself a uniform draw from the clean
    samples (stratified by group with ``groups``, as ``group_budget="share"`` keeps them)."""
    clean = np.flatnonzero(~FLAGGED)
    out: Counter = Counter()
    for t in range(draws):
        rng = np.random.default_rng(t)
        if groups is None:
            kept = rng.choice(clean, K, replace=False)
        else:  # K split 2 / 1 by group size (6 / 4)
            kept = np.concatenate([
                rng.choice(clean[GROUPS[clean] == "a"], 2, replace=False),
                rng.choice(clean[GROUPS[clean] == "b"], 1, replace=False),
            ])  # fmt: skip
        sub = coupled_random_subset(kept, FLAGGED, groups=groups, random_state=rng)
        out[tuple(sorted(sub.tolist()))] += 1
    return out


@pytest.mark.parametrize("groups", [None, GROUPS])
def test_the_coupled_subset_is_a_uniform_random_subset_of_the_pool(groups):
    law = _subset_law(groups)
    assert len(law) == math.comb(N, K)  # every K-subset of the pool, flagged samples included
    assert chisquare(list(law.values())).pvalue > 1e-3


def test_it_shares_the_kept_samples_in_place_and_swaps_in_only_flagged_ones():
    rng = np.random.default_rng(0)
    kept = np.array([9, 0, 5])
    for seed in range(200):
        sub = coupled_random_subset(kept, FLAGGED, random_state=seed)
        assert len(set(sub.tolist())) == K
        moved = sub != kept
        assert FLAGGED[sub[moved]].all()  # the rest stays where it was in the training order
    # about 3 of 10 pool samples are flagged: a random 3-subset holds 0.9 of them on average
    swapped = [
        int((coupled_random_subset(kept, FLAGGED, random_state=rng) != kept).sum())
        for _ in range(4000)
    ]
    assert abs(np.mean(swapped) - K * FLAGGED.mean()) < 0.05


def test_same_random_state_same_subset():
    kept = [0, 2, 3]
    a = coupled_random_subset(kept, FLAGGED, groups=GROUPS, random_state=7)
    b = coupled_random_subset(kept, FLAGGED, groups=GROUPS, random_state=7)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("kept", "groups", "match"),
    [
        ([0, 1, 2], None, "sample 1, which is flagged"),
        ([0, 0, 2], None, "repeats"),
        ([0, 2, 10], None, "outside the pool"),
        ([0, 2, 3], ["a"] * 3, "groups has 3 labels"),
    ],
)
def test_bad_inputs(kept, groups, match):
    with pytest.raises(DataValidationError, match=match):
        coupled_random_subset(kept, FLAGGED, groups=groups, random_state=0)


def test_random_baseline_of_a_fitted_triage():
    model, tok = tiny_causal_lm(chat_template=True)
    prompts = CORPUS * 3  # repeated pairs: the default dedup flags them
    responses = [CORPUS[(i * 3 + 1) % len(CORPUS)] for i in range(len(prompts))]

    def fit(**cfg):
        return QTuningTriage(
            QTuningConfig(sample_ratio=0.25, max_ifd=None, **cfg),
            model=model,
            tokenizer=tok,
            batch_size=8,
            random_state=0,
        ).fit(prompts, responses)

    tri = fit()
    flagged = tri.result_.samples.selection >= 4  # duplicate, abrupt end, misaligned
    assert flagged.any()
    sub = random_baseline(tri, random_state=1)
    assert len(sub) == len(tri.kept_indices_) and len(set(sub.tolist())) == len(sub)
    moved = sub != tri.kept_indices_
    assert flagged[sub[moved]].all()
    assert np.array_equal(sub, random_baseline(tri, random_state=1))
    with pytest.raises(DataValidationError, match="fill='random'"):
        random_baseline(fit(fill="uniform"), random_state=1)
