from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from dataprune.selection import EL2NSelector

LOGGER = "dataprune.selection.el2n"


def blobs(noise: float, *, n_per: int = 100, n_classes: int = 4, dim: int = 16, seed: int = 0):
    """Well-separated Gaussian classes as unit-norm embeddings; ``noise`` of the labels flipped."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim)) * 3
    y_true = np.repeat(np.arange(n_classes), n_per)
    X = centres[y_true] + rng.standard_normal((len(y_true), dim))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    y = y_true.copy()
    flip = rng.choice(len(y), size=round(noise * len(y)), replace=False)
    y[flip] = (y[flip] + rng.integers(1, n_classes, size=len(flip))) % n_classes
    flipped = np.zeros(len(y), bool)
    flipped[flip] = True
    return X, y, flipped


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("seed", [0, 1])
def test_keep_hard_on_noisy_labels_warns_with_the_estimated_share(caplog, seed):
    X, y, flipped = blobs(0.2, seed=seed)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sel = EL2NSelector(fraction=0.5, n_runs=3, random_state=0).fit(X, y)
    (msg,) = _warnings(caplog)
    share = sel.n_label_issues_ / len(y)
    assert 0.14 <= share <= 0.26, share
    assert sel.is_label_issue_.shape == (len(y),) and sel.is_label_issue_.dtype == bool
    assert flipped[sel.is_label_issue_].mean() > 0.9  # the flagged records are the flipped ones
    assert sel.n_label_issues_kept_ == int(sel.is_label_issue_[sel.selected_indices_].sum())
    assert sel.n_label_issues_kept_ > 0.8 * sel.n_label_issues_  # keep-hard keeps them
    assert f"{sel.n_label_issues_} of {len(y)} records" in msg
    assert "confident_learning" in msg
    offset = float(re.search(r"offset=(0\.\d+)", msg).group(1))
    assert offset == pytest.approx(share, abs=0.01)


def test_following_the_advice_silences_the_warning(caplog):
    X, y, flipped = blobs(0.2)
    first = EL2NSelector(fraction=0.5, n_runs=3, random_state=0).fit(X, y)
    offset = np.ceil(100 * first.n_label_issues_ / len(y)) / 100
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sel = EL2NSelector(fraction=0.5, n_runs=3, offset=offset, random_state=0).fit(X, y)
    assert _warnings(caplog) == []
    assert flipped[sel.selected_indices_].mean() < 0.05


def test_clean_labels_do_not_warn(caplog):
    X, y, _ = blobs(0.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sel = EL2NSelector(fraction=0.5, n_runs=3, random_state=0).fit(X, y)
    assert _warnings(caplog) == []
    assert sel.n_label_issues_ <= 0.02 * len(y)


def test_keep_easy_records_the_estimate_without_warning(caplog):
    X, y, _ = blobs(0.2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sel = EL2NSelector(fraction=0.5, n_runs=3, keep="easy", random_state=0).fit(X, y)
    assert _warnings(caplog) == []
    assert 0.14 <= sel.n_label_issues_ / len(y) <= 0.26
    assert sel.n_label_issues_kept_ == 0


def test_grand_warns_too(caplog):
    X, y, _ = blobs(0.2, seed=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        EL2NSelector(fraction=0.3, score="grand", n_runs=2, random_state=0).fit(X, y)
    (msg,) = _warnings(caplog)
    assert msg.startswith("GraNd keep='hard'")


def test_select_el2n_keep_hard_warns_through_the_one_call_api(caplog):
    """``dataprune.select(method="el2n")`` (proxy scores + ScoreSelector) warns as well."""
    import dataprune

    rng = np.random.default_rng(0)
    n, k = 400, 4
    centers = rng.normal(size=(k, 16)) * 4
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(size=(n, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    noisy = y.copy()
    flip = rng.random(n) < 0.2
    noisy[flip] = (y[flip] + 1) % k
    records = [{"text": f"r{i}", "label": int(v)} for i, v in enumerate(noisy)]
    with caplog.at_level("WARNING", logger="dataprune.selection.el2n"):
        res = dataprune.select(
            records,
            method="el2n",
            fraction=0.5,
            label_field="label",
            embeddings=X,
            random_state=0,
            n_runs=2,
        )
    assert any("look mislabelled" in r.getMessage() for r in caplog.records)
    assert res.details["n_label_issues"] > 0.1 * n
    assert np.isfinite(res.columns["label_issue"]).all()
