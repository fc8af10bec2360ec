from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataprune.errors import DataValidationError
from dataprune.qtuning import Q1, Q2, Q3, Q4, QTuningConfig, corner_masks, triage_samples
from dataprune.qtuning.fill import _minmax
from dataprune.qtuning.groups import within_group_ranks
from dataprune.qtuning.sample_triage import CORNER, DROPPED, FILL_UP, TRIMMED

PPL = np.arange(1.0, 11.0)  # 1..10
ANTI = PPL[::-1].copy()  # entropy perfectly anti-correlated with PPL


def test_corner_rules_by_hand():
    q2, q4, t = corner_masks(PPL, ANTI, 0.2)
    # numpy linear quantiles of 1..10: q(0.8) = 8.2, q(0.2) = 2.8
    assert t == pytest.approx({"ppl_hi": 8.2, "ppl_lo": 2.8, "ent_lo": 2.8, "ent_hi": 8.2})
    assert np.flatnonzero(q2).tolist() == [8, 9]  # PPL > 8.2 and Ent <= 2.8
    assert np.flatnonzero(q4).tolist() == [0, 1]  # PPL <= 2.8 and Ent > 8.2


def test_q2_needs_low_entropy_and_q4_needs_low_ppl():
    # same PPL ranking, but entropy follows PPL: the high-PPL corner is high-entropy -> not Q2
    q2, q4, _ = corner_masks(PPL, PPL.copy(), 0.3)
    assert not q2.any() and not q4.any()


def test_triage_keeps_q2_q4_and_labels_dropped_q1_q3():
    tri = triage_samples(PPL, ANTI, QTuningConfig(sample_ratio=0.4, fill="uniform"))
    assert tri.n_keep == 4 and tri.kept.sum() == 4
    assert set(np.flatnonzero(tri.q2)) == {8, 9} and set(np.flatnonzero(tri.q4)) == {0, 1}
    assert set(tri.quadrant[~tri.kept]) <= {Q1, Q3}
    assert set(tri.quadrant[tri.kept]) <= {Q2, Q4}
    # correlated data: the high/high samples are noise (Q1), the low/low redundant (Q3)
    corr = triage_samples(PPL, PPL * 0.1, QTuningConfig(sample_ratio=0.2, fill="uniform"))
    dropped = np.flatnonzero(~corr.kept)
    for i in dropped:
        assert corr.quadrant[i] == (Q1 if PPL[i] > 5.5 else Q3)


def test_bisection_hits_the_budget_without_fill_up():
    rng = np.random.default_rng(0)
    ppl = np.exp(rng.normal(1.5, 0.5, 400))
    ent = rng.normal(1.0, 0.2, 400) - 0.3 * np.log(ppl)  # anti-correlated: corners are populated
    cfg = QTuningConfig(sample_ratio=0.2, fill="uniform")
    tri = triage_samples(ppl, ent, cfg)
    assert tri.kept.sum() == 80
    assert abs(tri.n_corner - 80) / 400 < cfg.tol or tri.n_bisection_steps == cfg.max_steps
    assert 0.0 < tri.alpha < 0.49
    # every kept corner sample satisfies the rule at the reported alpha
    q2, q4, _ = corner_masks(ppl, ent, tri.alpha)
    corner = tri.selection == CORNER
    assert np.all((q2 | q4)[corner])
    assert np.all(q2[corner & (tri.quadrant == Q2)]) and np.all(q4[corner & (tri.quadrant == Q4)])


def test_bisection_steps_and_tolerance():
    cfg = QTuningConfig(sample_ratio=0.2, max_steps=1, fill="uniform")
    tri = triage_samples(PPL, ANTI, cfg)
    assert tri.n_bisection_steps == 1 and tri.alpha == pytest.approx(0.245)
    assert len(tri.history) == 1
    full = triage_samples(PPL, ANTI, QTuningConfig(sample_ratio=0.2, fill="uniform"))
    assert full.n_bisection_steps <= 10
    alphas = [h["alpha"] for h in full.history]
    assert alphas[0] == pytest.approx(0.245)
    # bisection: each step moves by half the previous move
    moves = np.abs(np.diff(alphas))
    assert np.allclose(moves, 0.49 / 2 ** np.arange(2, len(alphas) + 1))


@pytest.mark.parametrize("r", [0.5, 0.6, 0.9, 1.0])
def test_paper_fill_at_or_above_half_fills_up_exactly(r):
    rng = np.random.default_rng(1)
    ppl, ent = np.exp(rng.normal(size=37)), rng.random(37)
    tri = triage_samples(ppl, ent, QTuningConfig(sample_ratio=r, fill="paper"))
    K = max(1, round(37 * r))
    assert tri.kept.sum() == K == tri.n_keep
    if r >= 0.6:
        assert tri.n_corner < K  # opposite corners cannot hold much more than half the batch
    fill = tri.selection == FILL_UP
    assert fill.sum() == max(0, K - tri.n_corner)
    ppl_n, ent_n = _minmax(ppl), _minmax(ent)
    ext = np.abs(ppl_n - ent_n)
    # fill-up takes the largest |ppl_n - ent_n| among the non-corner samples
    if fill.any() and (~tri.kept).any():
        assert ext[fill].min() >= ext[~tri.kept].max() - 1e-12
    # and assigns Q2 when ppl_n >= ent_n, else Q4
    assert np.all(tri.quadrant[fill] == np.where(ppl_n[fill] >= ent_n[fill], Q2, Q4))
    if r == 1.0:
        assert tri.kept.all()


def test_trimming_when_the_corners_overshoot():
    ppl, ent = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])
    tri = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"))
    # both extreme corners are populated at every alpha > 0: 2 > K = 1
    assert tri.n_corner == 2 and tri.kept.sum() == 1
    assert tri.selection.tolist() == [CORNER, DROPPED, DROPPED, TRIMMED]
    # ties in extremity go by index; dropped samples on the anti-diagonal go by the PPL rank
    assert tri.quadrant.tolist() == [Q4, Q3, Q1, Q1]


def test_single_sample_batch():
    tri = triage_samples([7.0], [1.2], QTuningConfig(sample_ratio=0.25, fill="uniform"))
    assert tri.kept.tolist() == [True] and tri.quadrant.tolist() == [Q2]
    assert tri.selection.tolist() == [FILL_UP] and tri.n_keep == 1


def test_two_sample_batch():
    tri = triage_samples([2.0, 9.0], [1.0, 0.5], QTuningConfig(sample_ratio=0.5, fill="uniform"))
    assert tri.kept.sum() == 1


def test_all_ties():
    ppl, ent = np.full(8, 3.0), np.full(8, 1.0)
    tri = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="margin"))
    # strict '>' in the rules: nothing is in a corner; the margin fill-up breaks ties by index
    assert tri.n_corner == 0 and np.flatnonzero(tri.kept).tolist() == [0, 1]
    assert set(tri.quadrant[tri.kept]) == {Q2}  # ppl_n == ent_n -> Q2
    a = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="margin"), random_state=3)
    b = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="margin"), random_state=3)
    assert a.kept.tolist() == b.kept.tolist() and a.kept.sum() == 2
    picks = {
        tuple(np.flatnonzero(triage_samples(ppl, ent, random_state=s).kept)) for s in range(10)
    }
    assert len(picks) > 1  # random_state really breaks ties


def test_partial_ties_in_ppl():
    ppl = np.array([5.0, 5.0, 5.0, 5.0, 1.0, 1.0, 9.0, 9.0])
    ent = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, 0.4])
    tri = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.5, fill="uniform"))
    assert tri.kept.sum() == 4
    assert tri.kept[[6, 7]].all()  # high PPL, lowest entropy


def test_determinism():
    rng = np.random.default_rng(5)
    ppl, ent = np.exp(rng.normal(size=64)), rng.random(64)
    a = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.3, fill="uniform"))
    b = triage_samples(ppl.copy(), ent.copy(), QTuningConfig(sample_ratio=0.3, fill="uniform"))
    assert np.array_equal(a.quadrant, b.quadrant) and np.array_equal(a.kept, b.kept)
    assert a.alpha == b.alpha


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.floats(1.0, 1e4, allow_nan=False, allow_infinity=False), min_size=n, max_size=n
            ),
            st.lists(
                st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False), min_size=n, max_size=n
            ),
        )
    ),
    st.floats(0.01, 1.0),
)
def test_invariants(data, r):
    ppl, ent = np.array(data[0]), np.array(data[1])
    cfg = QTuningConfig(sample_ratio=r, fill="uniform")
    tri = triage_samples(ppl, ent, cfg)
    K = max(1, round(len(ppl) * r))
    assert tri.kept.sum() == K
    assert set(tri.quadrant[tri.kept].tolist()) <= {Q2, Q4}
    assert set(tri.quadrant[~tri.kept].tolist()) <= {Q1, Q3}
    assert np.all(tri.selection[tri.kept] != DROPPED)
    q2, q4, _ = corner_masks(ppl, ent, tri.alpha)
    assert tri.n_corner == int(q2.sum() + q4.sum())
    if tri.n_corner <= K:  # nothing trimmed: every corner sample is kept in its quadrant
        assert np.all(tri.kept[q2 | q4])
        assert np.all(tri.quadrant[q2] == Q2) and np.all(tri.quadrant[q4] == Q4)


@pytest.mark.parametrize(
    ("ppl", "ent", "match"),
    [
        ([1.0, float("nan")], [1.0, 1.0], "record 1"),
        ([1.0, 2.0], [1.0], "equal lengths"),
        ([], [], "at least one"),
        ([[1.0]], [[1.0]], "1-D"),
    ],
)
def test_bad_inputs(ppl, ent, match):
    with pytest.raises(DataValidationError, match=match):
        triage_samples(ppl, ent)


def test_rank_fill_up_is_robust_to_a_ppl_outlier():
    rng = np.random.default_rng(3)
    n = 40
    ppl = np.exp(rng.normal(1.3, 0.3, n))
    ppl[0] = 1e4  # one outlier squeezes every other min-max normalised PPL towards 0
    ent = rng.normal(1.0, 0.2, n)
    cfg_mm = QTuningConfig(sample_ratio=0.75, fill="paper")
    cfg_rank = QTuningConfig(sample_ratio=0.75, fill="rank")
    mm, rk = triage_samples(ppl, ent, cfg_mm), triage_samples(ppl, ent, cfg_rank)
    assert mm.kept.sum() == rk.kept.sum() == 30
    fill_mm, fill_rk = mm.selection == FILL_UP, rk.selection == FILL_UP
    # min-max: almost every filled sample is "Q4" (ent_n > ppl_n ~ 0) whatever its PPL
    assert np.mean(mm.quadrant[fill_mm] == Q4) > 0.9
    # rank: Q2 fill-ups have above-median PPL and below-median entropy ranks, Q4 the reverse
    q2 = fill_rk & (rk.quadrant == Q2)
    q4 = fill_rk & (rk.quadrant == Q4)
    assert q2.any() and q4.any()
    assert np.all(rk.ppl_rank[q2] >= rk.ent_rank[q2]) and np.all(rk.ppl_rank[q4] < rk.ent_rank[q4])


@pytest.mark.parametrize("fill", ["uniform", "flat", "margin"])
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.6, 0.75, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_fill_never_prefers_the_q1_side(ratio, seed, fill):
    # PPL and entropy strongly correlated (as measured on GSM8K: ~0.9), with a long PPL tail
    rng = np.random.default_rng(seed)
    n = 301
    z = rng.normal(size=n)
    ppl = np.exp(1.3 + 0.5 * z + 0.2 * rng.normal(size=n))
    ppl[:3] = [500.0, 900.0, 1e4]
    ent = 1.0 + 0.3 * z + 0.1 * rng.normal(size=n)
    ent[:3] = ent.max() + np.array([0.1, 0.2, 0.3])  # the outliers are the most uncertain too
    cfg = QTuningConfig(sample_ratio=ratio, fill=fill)
    t = triage_samples(ppl, ent, cfg, random_state=seed)
    assert t.kept.sum() == cfg.n_keep(n)
    u, v = t.ppl_rank, t.ent_rank
    q1_side = (u > 0.5) & (v > 0.5)  # nearer the Q1 corner than the Q2 and Q4 corners
    # a Q1-side sample is kept only when every other sample is kept too
    if (t.kept & q1_side).any():
        assert t.kept[~q1_side].all()
    # and the PPL outliers (deep in the Q1 corner) are the last to be kept
    if ratio < 0.9:
        assert not t.kept[:3].any()


def _correlated(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    return np.exp(1.3 + 0.5 * z + 0.2 * rng.normal(size=n)), 1.0 + 0.3 * z + 0.1 * rng.normal(
        size=n
    )


def test_uniform_fill_draws_the_rest_without_preferring_easy_samples():
    ppl, ent = _correlated(2000, 0)
    uni = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"), random_state=0)
    mar = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="margin"), random_state=0)
    off_q1 = ~((uni.ppl_rank > 0.5) & (uni.ent_rank > 0.5))
    corner = uni.selection == CORNER
    pool = off_q1 & ~corner  # what the uniform fill-up draws from
    filled = uni.selection == FILL_UP
    assert filled.sum() > 100 and not (filled & ~pool).any()
    # the uniform fill-up's mean PPL rank is the pool's (within sampling error: sd of a mean of
    # >100 draws of a rank spread over ~0.5 is < 0.02); the margin order takes the lowest ranks
    assert abs(uni.ppl_rank[filled].mean() - uni.ppl_rank[pool].mean()) < 0.06
    m_filled = mar.selection == FILL_UP
    assert mar.ppl_rank[m_filled].mean() < uni.ppl_rank[filled].mean() - 0.05
    # seeded: the same seed gives the same set, other seeds other sets
    again = triage_samples(
        ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"), random_state=0
    )
    other = triage_samples(
        ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"), random_state=1
    )
    assert again.kept.tolist() == uni.kept.tolist() and other.kept.tolist() != uni.kept.tolist()
    none_a = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"))
    none_b = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"))
    assert none_a.kept.tolist() == none_b.kept.tolist()


def test_uniform_priority_groups():
    from dataprune.qtuning.quadrants import uniform_priority

    u = np.array([0.9, 0.1, 0.2, 0.9, 0.6, 0.95])
    v = np.array([0.1, 0.9, 0.2, 0.9, 0.4, 0.95])
    corner = np.array([True, False, False, False, False, True])
    p = uniform_priority(u, v, corner, np.random.default_rng(0))
    # corners (nearest Q1 last when trimming) > every sample off the Q1 side > the Q1 side
    assert min(p[0], p[5]) > max(p[1], p[2], p[4]) and min(p[1], p[2], p[4]) > p[3]
    assert p[0] > p[5]


def test_margin_fill_orders_groups():
    from dataprune.qtuning.quadrants import margin_priority

    u = np.array([0.9, 0.1, 0.2, 0.9, 0.6])
    v = np.array([0.1, 0.9, 0.2, 0.9, 0.4])
    corner = np.array([True, False, False, False, False])
    p = margin_priority(u, v, corner)
    # corner > off-diagonal (Q4 side, Q2 side) > Q3 side > Q1 side
    assert p[0] > max(p[1], p[4]) and min(p[1], p[4]) > p[2] > p[3]


def test_excluded_samples_are_never_kept_while_others_remain():
    rng = np.random.default_rng(5)
    ppl, ent = np.exp(rng.normal(size=40)), rng.random(40)
    ex = np.zeros(40, dtype=bool)
    ex[::4] = True  # 10 duplicates
    for ratio in (0.25, 0.5, 0.75):
        t = triage_samples(ppl, ent, QTuningConfig(sample_ratio=ratio, fill="uniform"), exclude=ex)
        k = QTuningConfig(sample_ratio=ratio, fill="uniform").n_keep(40)
        assert t.kept.sum() == k and not t.kept[ex].any()
        assert np.all(t.quadrant[ex] == Q3) and t.counts()["duplicate"] == 10
        # the others are triaged as if the duplicates were absent, with the same K
        sub = triage_samples(ppl[~ex], ent[~ex], QTuningConfig(sample_ratio=k / 30, fill="uniform"))
        assert t.kept[~ex].sum() == k
        assert sub.kept.sum() == k
    # fewer than K others: the excluded fill in, in index order
    t = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.9, fill="uniform"), exclude=~ex)
    assert t.kept.sum() == 36 and t.kept[ex].all()
    with pytest.raises(DataValidationError, match="one flag per sample"):
        triage_samples(ppl, ent, exclude=ex[:5])


def test_noise_flags_leave_samples_out_as_q1_abrupt_end():
    from dataprune.qtuning.sample_triage import SELECTION_NAMES

    rng = np.random.default_rng(6)
    ppl, ent = np.exp(rng.normal(size=40)), rng.random(40)
    ex = np.zeros(40, dtype=bool)
    ex[::8] = True  # 5 duplicates
    nz = np.zeros(40, dtype=bool)
    nz[1::8] = True  # 5 abrupt ends
    cfg = QTuningConfig(sample_ratio=0.5, fill="uniform")
    t = triage_samples(ppl, ent, cfg, exclude=ex, noise=nz)
    assert t.kept.sum() == 20 and not t.kept[ex | nz].any()
    assert np.all(t.quadrant[nz] == 1) and np.all(t.quadrant[ex] == Q3)
    assert {SELECTION_NAMES[int(s)] for s in t.selection[nz]} == {"abrupt end"}
    assert t.counts()["abrupt_end"] == 5 and t.counts()["duplicate"] == 5
    assert np.array_equal(t.flagged, ex | nz)
    # the others are triaged exactly as if the flagged samples were excluded
    same = triage_samples(ppl, ent, cfg, exclude=ex | nz)
    assert np.array_equal(same.kept, t.kept)
    # fewer than K others: duplicates fill in before abrupt ends
    t = triage_samples(
        ppl, ent, QTuningConfig(sample_ratio=0.9, fill="uniform"), exclude=ex, noise=nz
    )
    assert t.kept.sum() == 36 and t.kept[ex].all() and t.kept[nz].sum() == 1
    assert np.array_equal(t.flagged, nz & ~t.kept) and not t.kept[t.flagged].any()
    with pytest.raises(DataValidationError, match="noise has shape"):
        triage_samples(ppl, ent, noise=nz[:3])
    with pytest.raises(DataValidationError, match="every sample"):
        triage_samples(ppl, ent, exclude=~nz, noise=nz)


def test_flat_fill_draws_without_the_corners_head_start():
    ppl, ent = _correlated(2000, 1)
    cfg = QTuningConfig(sample_ratio=0.25, fill="flat")
    flat = triage_samples(ppl, ent, cfg, random_state=0)
    uni = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"), random_state=0)
    assert flat.kept.sum() == cfg.n_keep(2000)
    off_q1 = ~((flat.ppl_rank > 0.5) & (flat.ent_rank > 0.5))
    corner = (uni.selection == CORNER) | (flat.selection == TRIMMED)
    assert off_q1.sum() > cfg.n_keep(2000) and not (flat.kept & ~off_q1).any()
    # the corners hold about their share of the off-Q1 pool, not all of them as with "uniform"
    share = corner[off_q1].mean()
    assert abs(flat.kept[corner].sum() / flat.kept.sum() - share) < 0.08
    assert uni.kept[corner].all() and not flat.kept[corner].all()
    # labels: kept corner samples stay corners, the others are fill-ups; left-out corners trimmed
    assert set(np.unique(flat.selection[flat.kept])) <= {CORNER, FILL_UP}
    assert (flat.selection[corner & ~flat.kept] == TRIMMED).all()
    again = triage_samples(ppl, ent, cfg, random_state=0)
    other = triage_samples(ppl, ent, cfg, random_state=1)
    assert np.array_equal(again.kept, flat.kept) and not np.array_equal(other.kept, flat.kept)


def test_groups_triage_each_source_on_its_own_scale():
    # two sources, the second with PPL and entropy shifted far up (another answer format):
    # one plane puts it on the Q1 side; per group, it keeps about its share
    a_ppl, a_ent = _correlated(1500, 2)
    b_ppl, b_ent = _correlated(500, 3)
    ppl, ent = np.r_[a_ppl, b_ppl * 6.0], np.r_[a_ent, b_ent + 1.5]
    groups = ["a"] * 1500 + ["b"] * 500
    cfg = QTuningConfig(sample_ratio=0.25, fill="uniform")
    pooled = triage_samples(ppl, ent, cfg, random_state=0)
    per = triage_samples(ppl, ent, cfg, groups=groups, random_state=0)
    assert per.kept.sum() == pooled.kept.sum() == cfg.n_keep(2000)
    assert pooled.kept[1500:].sum() < 0.5 * 125  # far below its share of the 500 kept
    assert abs(per.kept[1500:].sum() - 125) <= 15
    # within a group, the same ranks as triaging it alone
    alone = triage_samples(b_ppl, b_ent, cfg)
    assert np.allclose(per.ppl_rank[1500:], alone.ppl_rank)


def test_groups_validate_and_abrupt_end_uses_each_groups_median():
    from dataprune.qtuning.noise import abrupt_end_mask

    ppl, ent = _correlated(10, 0)
    with pytest.raises(DataValidationError, match="groups has 3 labels"):
        triage_samples(ppl, ent, groups=["a", "b", "a"])
    with pytest.raises(DataValidationError, match=r"record 2.*groups"):
        triage_samples(ppl, ent, groups=["a", "b", None] + ["a"] * 7)
    end = np.array([5.0, 5.2, 4.8, 14.0, 0.5, 0.4, 0.6, 9.0, np.nan])
    g = ["gsm8k"] * 4 + ["alpaca"] * 5
    # pooled median 4.9: only 14.0 is above 4.9 + 8; per group also 9.0 (alpaca median 0.55)
    assert abrupt_end_mask(end, 8.0).tolist() == [False] * 3 + [True] + [False] * 5
    assert np.flatnonzero(abrupt_end_mask(end, 8.0, g)).tolist() == [3, 7]


def _two_sources():
    a_ppl, a_ent = _correlated(1500, 2)
    b_ppl, b_ent = _correlated(500, 3)
    return np.r_[a_ppl, b_ppl * 6.0], np.r_[a_ent, b_ent + 1.5], ["a"] * 1500 + ["b"] * 500


def test_group_budget_share_keeps_each_source_at_its_share_triaged_alone():
    ppl, ent, groups = _two_sources()
    cfg = QTuningConfig(sample_ratio=0.25, group_budget="share", fill="uniform")
    t = triage_samples(ppl, ent, cfg, groups=groups)
    assert t.kept[:1500].sum() == 375 and t.kept[1500:].sum() == 125
    # each source's kept set is its own triage (same K, same seed-free order)
    alone = triage_samples(ppl[1500:], ent[1500:], cfg)
    assert np.array_equal(t.kept[1500:], alone.kept)
    assert np.array_equal(t.quadrant[1500:], alone.quadrant)
    assert np.isnan(t.alpha) and t.thresholds == {}
    assert [(g["group"], g["n_samples"], g["n_keep"]) for g in t.by_group] == [
        ("a", 1500, 375),
        ("b", 500, 125),
    ]
    assert t.by_group[1]["alpha"] == alone.alpha
    # seeded: same seed, same kept set; another seed, another draw
    s0 = triage_samples(ppl, ent, cfg, groups=groups, random_state=0)
    assert np.array_equal(
        s0.kept, triage_samples(ppl, ent, cfg, groups=groups, random_state=0).kept
    )
    assert not np.array_equal(
        s0.kept, triage_samples(ppl, ent, cfg, groups=groups, random_state=1).kept
    )


def test_group_budget_pooled_lets_sources_compete_for_one_k():
    ppl, ent, groups = _two_sources()
    pooled = triage_samples(
        ppl,
        ent,
        QTuningConfig(sample_ratio=0.25, fill="uniform", group_budget="pooled"),
        groups=groups,
    )
    assert pooled.kept.sum() == 500 and np.isfinite(pooled.alpha)
    # by_group reports what each source got of the one K
    assert [(g["group"], g["n_samples"], g["alpha"]) for g in pooled.by_group] == [
        ("a", 1500, pooled.alpha),
        ("b", 500, pooled.alpha),
    ]
    assert [g["n_keep"] for g in pooled.by_group] == [
        int(pooled.kept[:1500].sum()),
        int(pooled.kept[1500:].sum()),
    ]
    assert (
        triage_samples(ppl, ent, QTuningConfig(0.25, fill="uniform")).by_group is None
    )  # no groups
    as_np = triage_samples(
        ppl,
        ent,
        QTuningConfig(0.25, fill="uniform", group_budget="pooled"),
        groups=np.repeat([0, 1], [1500, 500]),
    )
    assert [type(g["group"]) for g in as_np.by_group] == [int, int]  # JSON-able labels
    # the same plane as ranking each source and triaging the ranks together
    codes = np.r_[np.zeros(1500, int), np.ones(500, int)]
    same = triage_samples(
        within_group_ranks(ppl, codes),
        within_group_ranks(ent, codes),
        QTuningConfig(0.25, fill="uniform"),
    )
    assert np.array_equal(pooled.kept, same.kept)


def test_group_budget_share_never_keeps_noise_while_clean_samples_remain():
    ppl, ent, groups = _two_sources()
    nz = np.zeros(2000, dtype=bool)
    nz[1500:1900] = True  # 400 of source b flagged: 100 clean left, below its share of 125
    cfg = QTuningConfig(sample_ratio=0.25, group_budget="share", fill="uniform")
    t = triage_samples(ppl, ent, cfg, noise=nz, groups=groups)
    assert t.kept.sum() == 500 and not t.kept[nz].any()
    assert t.kept[1900:].sum() == 100 and t.kept[:1500].sum() == 400
    # fewer clean samples than K in all: every clean one is kept, flagged ones fill in
    nz[:1450] = True
    t = triage_samples(ppl, ent, cfg, noise=nz, groups=groups)
    assert t.kept.sum() == 500 and t.kept[~nz].all() and t.counts()["fill_up"] >= 350
    # a source with only flagged samples still triages (and keeps none while others remain)
    nz = np.zeros(2000, dtype=bool)
    nz[1500:] = True
    t = triage_samples(ppl, ent, cfg, noise=nz, groups=groups)
    assert t.kept.sum() == 500 and not t.kept[1500:].any()


def test_random_fill_ignores_the_plane_and_follows_the_seed():
    rng = np.random.default_rng(0)
    ppl, ent = np.exp(rng.normal(size=400)), rng.random(400)
    cfg = QTuningConfig(sample_ratio=0.25, fill="random")
    a, b = (triage_samples(ppl, ent, cfg, random_state=s) for s in (1, 1))
    assert a.kept.tolist() == b.kept.tolist() and a.kept.sum() == 100
    # the plane orders nothing: about a quarter of the Q1 side is kept, as a random draw keeps it
    q1_side = (a.ppl_rank > 0.5) & (a.ent_rank > 0.5)
    assert 0.15 < a.kept[q1_side].mean() < 0.35
    kept = [frozenset(np.flatnonzero(triage_samples(ppl, ent, cfg, random_state=s).kept))
            for s in range(5)]  # fmt: skip
    assert len(set(kept)) == 5
    # the plane's own fill never keeps the Q1 side while samples off it are left
    uni = triage_samples(ppl, ent, QTuningConfig(sample_ratio=0.25, fill="uniform"), random_state=1)
    assert uni.kept[q1_side].sum() == 0
