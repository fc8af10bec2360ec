from __future__ import annotations

import numpy as np
import pytest
import torch

from dataprune.errors import DataValidationError
from dataprune.scores import el2n_from_token_stats, el2n_scores, grand_scores


def _probs(n=20, c=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 2
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), rng.integers(0, c, n)


def test_el2n_closed_form_matches_one_hot_norm():
    p, y = _probs()
    onehot = np.eye(p.shape[1])[y]
    np.testing.assert_allclose(el2n_scores(p, y), np.linalg.norm(p - onehot, axis=1), atol=1e-12)


def test_el2n_extremes():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(el2n_scores(p, [0, 0, 0]), [0.0, np.sqrt(2), np.sqrt(0.5)])


def test_token_form_matches_full_distribution():
    p, y = _probs(n=7, c=11, seed=1)
    pt = p[np.arange(7), y]
    s2 = (p * p).sum(1)
    np.testing.assert_allclose(el2n_from_token_stats(pt, s2), el2n_scores(p, y), atol=1e-12)
    with pytest.raises(DataValidationError, match="equal length"):
        el2n_from_token_stats(pt, s2[:3])


@pytest.mark.parametrize("bias", [True, False])
def test_grand_matches_autograd_last_layer_gradient(bias):
    rng = np.random.default_rng(2)
    n, d, c = 12, 6, 4
    h = torch.tensor(rng.standard_normal((n, d)))
    lin = torch.nn.Linear(d, c, bias=bias).double()
    y = torch.tensor(rng.integers(0, c, n))
    expected = []
    for i in range(n):
        lin.zero_grad()
        torch.nn.functional.cross_entropy(lin(h[i : i + 1]), y[i : i + 1]).backward()
        g = lin.weight.grad.flatten()
        if bias:
            g = torch.cat([g, lin.bias.grad])
        expected.append(float(g.norm()))
    with torch.no_grad():
        p = torch.softmax(lin(h), 1).numpy()
    got = grand_scores(p, y.numpy(), h.numpy(), bias=bias)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (np.array([[0.5, 0.6]]), [0], "sum to 1"),
        (np.array([[2.0, -1.0]]), [0], "softmax outputs, not logits"),
        (np.array([[0.5, 0.5]]), [2], "outside"),
        (np.array([[0.5, 0.5]]), [0.0], "integer class indices"),
        (np.array([[0.5, 0.5]]), [0, 1], r"shape \(1,\)"),
        (np.array([0.5, 0.5]), [0], "n_classes"),
        (np.array([[np.nan, 0.5]]), [0], "NaN"),
    ],
)
def test_validation_errors(probs, labels, match):
    with pytest.raises(DataValidationError, match=match):
        el2n_scores(probs, labels)


def test_grand_feature_shape_error():
    p, y = _probs(n=4)
    with pytest.raises(DataValidationError, match="features must have shape"):
        grand_scores(p, y, np.zeros((3, 2)))
