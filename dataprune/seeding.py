"""One rule for turning a ``random_state`` parameter into a concrete integer seed."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["resolve_seed"]


def resolve_seed(random_state: int | np.random.Generator | None) -> int:
    """The integer seed an estimator records after ``fit``.

    Parameters
    ----------
    random_state : int, numpy Generator or None
        An int is returned unchanged (so a seeded run is the run of that seed); ``None`` draws a
        fresh seed from the operating system's entropy, and a Generator draws one from itself.
        Estimators store the result as ``random_state_`` so a saved model can be reproduced.

    Returns
    -------
    int
        A seed in ``[0, 2**31 - 1)`` for ``None`` and Generators; the given int otherwise.
    """
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    if random_state is None or isinstance(random_state, np.random.Generator):
        return int(np.random.default_rng(random_state).integers(0, 2**31 - 1))
    from dataprune.errors import DataValidationError

    raise DataValidationError(
        f"random_state must be an int, a numpy Generator or None, got {type(random_state).__name__}"
    )
