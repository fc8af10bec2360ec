from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.scores import ProxyConfig, cross_val_probs, proxy_scores


def _data(n=120, dim=8, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.standard_normal((n, dim)).astype(np.float32) + 2.0 * np.eye(dim)[y]
    return X, np.array([f"class-{c}" for c in y])


def test_scores_shapes_averaging_and_determinism():
    X, labels = _data()
    a = proxy_scores(X, labels, n_runs=3, random_state=0)
    b = proxy_scores(X, labels, n_runs=3, random_state=0)
    assert a.el2n.shape == a.grand.shape == (len(X),)
    assert a.el2n_runs.shape == (3, len(X))
    np.testing.assert_allclose(a.el2n, a.el2n_runs.mean(0))
    np.testing.assert_allclose(a.el2n, b.el2n)
    np.testing.assert_allclose(a.probs.sum(1), 1.0, atol=1e-9)
    assert a.classes.tolist() == ["class-0", "class-1", "class-2"]
    # different seeds give different runs
    assert not np.allclose(a.el2n_runs[0], a.el2n_runs[1])
    # a correctly predicted record has lower EL2N than chance level (sqrt(1 - 2/3 + 1/3))
    assert np.median(a.el2n) < np.sqrt(2 / 3)


def test_mlp_features_feed_grand():
    X, labels = _data(seed=1)
    ps = proxy_scores(
        X, labels, n_runs=1, config={"model": "mlp", "hidden_size": 16}, random_state=0
    )
    assert np.all(ps.grand >= ps.el2n - 1e-12)  # sqrt(1 + ||h||^2) >= 1


def test_config_validation():
    with pytest.raises(
        UnknownOptionError, match=r"unknown ProxyConfig field\(s\) epoch; valid: .*epochs"
    ):
        ProxyConfig.from_options({"epoch": 3})
    with pytest.raises(DataValidationError, match="'logistic' or 'mlp'"):
        ProxyConfig(model="svm")
    with pytest.raises(DataValidationError, match="epochs"):
        ProxyConfig(epochs=0)
    assert ProxyConfig.from_options({"epochs": 2}).epochs == 2


def test_input_errors():
    X, labels = _data()
    with pytest.raises(DataValidationError, match="at least 2 classes"):
        proxy_scores(X, ["a"] * len(X))
    with pytest.raises(DataValidationError, match="n_runs"):
        proxy_scores(X, labels, n_runs=0)
    with pytest.raises(DataValidationError, match="expected 120 labels"):
        proxy_scores(X, labels[:5])
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        proxy_scores(bad, labels)


def test_cross_val_probs_are_out_of_fold():
    # random labels on random features: a flexible head memorises its training folds, so the
    # in-sample accuracy is high while the out-of-fold accuracy stays near chance (1/2)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 32)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    cfg = {"model": "mlp", "hidden_size": 256, "epochs": 60, "lr": 0.01}
    ins = proxy_scores(X, y, n_runs=1, config=cfg, random_state=0)
    assert (ins.probs.argmax(1) == y).mean() > 0.9
    oof, codes, _classes = cross_val_probs(X, y, n_folds=4, config=cfg, random_state=0)
    assert (oof.argmax(1) == codes).mean() < 0.65
    np.testing.assert_allclose(oof.sum(1), 1.0, atol=1e-9)
    with pytest.raises(DataValidationError, match="n_folds"):
        cross_val_probs(X, y, n_folds=1)
