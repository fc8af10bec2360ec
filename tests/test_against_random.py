"""The kept-set-against-random-subsets mechanism shared by curation and selection."""

from __future__ import annotations

import numpy as np
import pytest

from dataprune.against_random import (
    Comparison,
    column_means,
    compare,
    comparison_lines,
    coverage,
    duplicate_share,
    group_ids,
    random_subsets,
)


def test_verdict_rank_ties_and_dict():
    lower = Comparison("x", "x", 0.1, np.array([0.2, 0.3, 0.1]), "lower")
    assert lower.verdict == "within" and lower.rank == 2 and lower.ties == 1
    assert Comparison("x", "x", 0.05, np.array([0.2, 0.3]), "lower").verdict == "better"
    assert Comparison("x", "x", 0.5, np.array([0.2, 0.3]), "lower").verdict == "worse"
    higher = Comparison("x", "x", 0.5, np.array([0.2, 0.3]), "higher")
    assert higher.verdict == "better" and higher.rank == 2
    none = Comparison("m", "m", 0.5, np.array([0.2, 0.3]), "")
    assert none.verdict == "" and none.rank == -1
    d = higher.to_dict()
    assert d["verdict"] == "better" and d["beats"] == 2 and d["n_subsets"] == 2
    assert d["random_min"] == 0.2 and d["random_max"] == 0.3


def test_random_subsets_are_seeded_uniform_draws_of_the_pool():
    pool = np.array([3, 5, 8, 13, 21, 34])
    a = random_subsets(pool, 3, 4, np.random.default_rng(0))
    b = random_subsets(pool, 3, 4, np.random.default_rng(0))
    assert [s.tolist() for s in a] == [s.tolist() for s in b]
    for s in a:
        assert len(set(s.tolist())) == 3 and set(s.tolist()) <= set(pool.tolist())
        assert np.all(np.diff(s) > 0)


def test_coverage_is_the_mean_best_cosine():
    E = np.eye(3, dtype=np.float32)
    probe = np.arange(3)
    assert coverage(E, np.array([0]), probe) == pytest.approx(1 / 3)
    assert coverage(E, np.array([0, 1, 2]), probe) == 1.0


def test_duplicate_share_counts_members_with_a_group_mate_in_the_set():
    comp = group_ids(6, [[0, 1, 2], [3, 4]])
    assert comp.tolist() == [0, 0, 0, 1, 1, -1]
    assert duplicate_share(np.array([0, 1, 3, 5]), comp) == 0.5  # 0 and 1 share a group
    assert duplicate_share(np.array([0, 3, 5]), comp) == 0.0
    assert duplicate_share(np.array([], dtype=np.int64), comp) == 0.0


def test_compare_and_column_means_leave_out_integer_and_undefined_columns():
    subsets = [np.array([0, 1]), np.array([2, 3])]
    c = compare("s", "sum", lambda m: float(m.sum()), np.array([0, 3]), subsets, "higher")
    assert c.kept == 3.0 and c.random.tolist() == [1.0, 5.0] and c.verdict == "within"
    cols = {
        "score": np.array([1.0, 2.0, 3.0, 4.0]),
        "flag": np.array([True, False, False, True]),
        "cluster": np.array([0, 1, 1, 0]),  # ids: a mean means nothing
        "gain": np.array([np.nan, np.nan, 1.0, np.nan]),  # undefined on the first subset
    }
    out = {c.name: c for c in column_means(cols, np.array([0, 3]), subsets)}
    assert set(out) == {"mean:score", "mean:flag"}
    assert out["mean:score"].kept == 2.5 and out["mean:flag"].kept == 1.0
    assert out["mean:score"].better == "" and out["mean:score"].verdict == ""
    assert column_means(cols, np.array([0, 3]), subsets, skip=("score", "flag")) == []


def test_comparison_lines_name_the_pool_the_verdict_and_ties():
    comps = [
        Comparison("d", "dups", 0.0, np.array([0.0, 0.1, 0.2]), "lower"),
        Comparison("m", "mean x", 2.0, np.array([1.0, 3.0]), ""),
    ]
    lines = comparison_lines(comps, 7, 3, pool="the valid input records")
    assert lines[0] == (
        "kept set against 3 random subsets of the same size (7 records) from the valid input "
        "records (no training):"
    )
    assert lines[1].endswith(": within (beats 2, ties 1 of 3; lower is better)")
    assert lines[2] == "  mean x: kept 2, random 2 (95% range 1.05-2.95)"
    assert comparison_lines([], 7, 3) == [
        "against random: nothing to compare (the 7 kept records are the whole pool)"
    ]
