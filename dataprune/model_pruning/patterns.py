"""Sparsity targets: an unstructured fraction or an N:M pattern (at most N non-zeros in every M)."""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

from dataprune.errors import DataValidationError

__all__ = ["SparsitySpec", "resolve_sparsity"]

_NM = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class SparsitySpec:
    """What a pruner should reach.

    Attributes
    ----------
    sparsity : float
        Fraction of weights set to zero in every compared group, in (0, 1).
    n, m : int or None
        For an N:M pattern, at most ``n`` non-zeros in every ``m`` consecutive weights of an input
        row (the NVIDIA convention: 2:4 keeps 2 of every 4); ``None`` for unstructured sparsity.
    """

    sparsity: float
    n: int | None = None
    m: int | None = None

    @property
    def structured(self) -> bool:
        return self.m is not None

    @property
    def n_pruned_per_group(self) -> int:
        """Zeros in every group of ``m`` (N:M patterns only)."""
        if self.m is None or self.n is None:
            raise ValueError("not an N:M pattern")
        return self.m - self.n

    def describe(self) -> str:
        """``"2:4"`` or ``"unstructured 50%"``."""
        if self.structured:
            return f"{self.n}:{self.m}"
        return f"unstructured {100 * self.sparsity:g}%"

    @property
    def pattern(self) -> str:
        """``"N:M"`` or ``"unstructured"``."""
        return f"{self.n}:{self.m}" if self.structured else "unstructured"


def resolve_sparsity(sparsity: float | None = None, pattern: str | None = None) -> SparsitySpec:
    """Validate a sparsity target.

    Parameters
    ----------
    sparsity : float, optional
        Fraction of weights to zero, strictly between 0 and 1. Optional with an N:M pattern
        (it is then ``1 - N/M``; if given it must equal that).
    pattern : str, optional
        ``None`` / ``"unstructured"``, or ``"N:M"`` with ``0 < N < M`` (e.g. ``"2:4"``).

    Raises
    ------
    DataValidationError
        For a sparsity outside (0, 1), a malformed pattern, or a sparsity that contradicts it.
    """
    if sparsity is not None:
        if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
            raise DataValidationError(
                f"sparsity must be a number in (0, 1), got {sparsity!r} ({type(sparsity).__name__})"
            )
        s = float(sparsity)
        if math.isnan(s) or not 0.0 < s < 1.0:
            raise DataValidationError(
                f"sparsity must be strictly between 0 and 1 (a fraction of weights to zero, "
                f"e.g. 0.5), got {sparsity!r}"
            )
    if pattern is None or str(pattern).strip().lower() in ("", "unstructured"):
        if sparsity is None:
            raise DataValidationError(
                "give a sparsity (e.g. 0.5) for unstructured pruning, or an N:M pattern such as 2:4"
            )
        return SparsitySpec(float(sparsity))
    match = _NM.match(str(pattern))
    if not match:
        raise DataValidationError(
            f"pattern must be 'unstructured' or 'N:M' with integers 0 < N < M (e.g. '2:4', "
            f"'4:8'), got {pattern!r}"
        )
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise DataValidationError(
            f"pattern {pattern!r}: need 0 < N < M (N non-zeros kept in every M weights), got "
            f"N={n}, M={m}"
        )
    implied = 1.0 - n / m
    if sparsity is not None and abs(float(sparsity) - implied) > 1e-6:
        raise DataValidationError(
            f"sparsity {sparsity!r} contradicts pattern {pattern!r}, which zeroes {m - n} of every "
            f"{m} weights (sparsity {implied:g}); omit the sparsity or make them agree"
        )
    return SparsitySpec(implied, n, m)
