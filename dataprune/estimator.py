"""The scikit-learn estimator contract for selectors, model pruners and topology pruners.

They derive from :class:`sklearn.base.BaseEstimator` (``get_params`` / ``set_params`` / ``repr``
from the ``__init__`` signature, so ``sklearn.base.clone`` and grid search work) and check
fitted state with :func:`check_fitted`, which raises the package's one
:class:`~dataprune.errors.NotFittedError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.base import BaseEstimator

from dataprune.errors import NotFittedError

__all__ = ["BaseEstimator", "check_fitted"]


def check_fitted(estimator: Any, attributes: str | Sequence[str] | None = None) -> None:
    """Raise :class:`~dataprune.errors.NotFittedError` unless ``estimator`` is fitted.

    Parameters
    ----------
    estimator : object
        The estimator.
    attributes : str or sequence of str, optional
        Fitted attributes that must exist; default any attribute ending in ``_``
        (:func:`sklearn.utils.validation.check_is_fitted`'s rule).
    """
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator, attributes)
    except SkNotFitted:
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit() first"
        ) from None
