"""Selectors, model pruners, topology pruners and Q-Tuning triage follow scikit-learn's estimator
contract: ``clone`` and ``set_params`` work, grid search runs over a selector, and every
not-fitted call raises the package's one ``NotFittedError``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from dataprune.errors import NotFittedError
from dataprune.selection.methods import METHODS


@pytest.mark.parametrize("name", METHODS.names())
def test_every_selection_method_clones(name):
    est = METHODS.get(name).build(n_samples=3, random_state=7)
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    assert twin.get_params() == est.get_params()
    twin.set_params(n_samples=5)
    assert twin.n_samples == 5 and est.n_samples == 3
    with pytest.raises(NotFittedError, match="not fitted"):
        est.get_support()


def test_grid_search_over_a_selector():
    from dataprune.selection import KCenterGreedy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)

    def coverage(est, X_test, y_test=None):
        """Negative covering radius of the test points by the selected training points."""
        centres = est.fit_X_[est.selected_indices_]
        d = ((X_test[:, None, :] - centres[None]) ** 2).sum(-1).min(1)
        return -float(np.sqrt(d).max())

    class Recorded(KCenterGreedy):  # keeps the training rows for the scorer
        def fit(self, X, y=None):
            self.fit_X_ = np.asarray(X)
            return super().fit(X, y)

    search = GridSearchCV(Recorded(n_samples=2), {"n_samples": [2, 8]}, scoring=coverage, cv=3)
    search.fit(X)
    assert search.best_params_ == {"n_samples": 8}  # more centres cover better


def test_model_and_topology_pruners_and_triage_clone():
    from dataprune.agents import AGPPruner
    from dataprune.agents.baselines import RandomPruner
    from dataprune.model_pruning import LLMCompressorPruner, MagnitudePruner, WandaPruner
    from dataprune.qtuning.static import QTuningTriage

    for est in (
        WandaPruner(sparsity=0.5),
        MagnitudePruner(pattern="2:4"),
        LLMCompressorPruner(method="sparsegpt", sparsity=0.5),
        AGPPruner(node_threshold=0.4),
        RandomPruner(p_agent=0.3),
        QTuningTriage(batch_size=4),
    ):
        twin = clone(est)
        assert twin.get_params() == est.get_params(), type(est).__name__
    with pytest.raises(NotFittedError):
        AGPPruner().predict("q")
    with pytest.raises(NotFittedError):
        QTuningTriage().features()
