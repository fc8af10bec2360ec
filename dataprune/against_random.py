"""A kept set against random subsets of the same size, on measures that need no training.

The one mechanism behind the curation report's "kept set against random subsets" section and
``dataprune select --against-random``: draw ``n_subsets`` uniform subsets of the kept set's size
from the pool the set was chosen from, compute each measure on the kept set and on every random
subset, and say whether the kept set lies outside the whole random range (``better`` /
``worse``) or ``within`` it. A kept set that is ``within`` on the measure its method optimises
did no better than chance there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Comparison",
    "column_means",
    "compare",
    "comparison_lines",
    "coverage",
    "duplicate_share",
    "finite_mean",
    "group_ids",
    "label_issue_share",
    "random_subsets",
]


@dataclass
class Comparison:
    """One measure: the kept set's value against the random subsets' values.

    Attributes
    ----------
    name : str
        Short key (e.g. ``coverage``, ``mean:el2n``).
    label : str
        What the measure is, for people.
    kept : float
        The kept set's value.
    random : ndarray of shape (n_subsets,)
        The value on each random subset of the same size.
    better : {"lower", "higher", ""}
        Which direction is better; ``""``: no direction (the user's choice), no verdict.
    """

    name: str
    label: str
    kept: float
    random: np.ndarray
    better: str

    @property
    def random_mean(self) -> float:
        return float(np.mean(self.random))

    @property
    def random_range(self) -> tuple[float, float]:
        """The 2.5th and 97.5th percentiles of the random subsets' values."""
        lo, hi = np.percentile(self.random, [2.5, 97.5])
        return float(lo), float(hi)

    @property
    def rank(self) -> int:
        """How many random subsets the kept set beats (0 .. n_subsets; ``-1``: no direction)."""
        if not self.better:
            return -1
        r = np.asarray(self.random, dtype=np.float64)
        return int((r > self.kept).sum() if self.better == "lower" else (r < self.kept).sum())

    @property
    def ties(self) -> int:
        """How many random subsets have exactly the kept set's value."""
        return int((np.asarray(self.random, dtype=np.float64) == self.kept).sum())

    @property
    def verdict(self) -> str:
        """``better``/``worse`` than every random subset, ``within`` their range, or ``""``."""
        if not self.better:
            return ""
        lo, hi = float(np.min(self.random)), float(np.max(self.random))
        if self.better == "lower":
            return "better" if self.kept < lo else ("worse" if self.kept > hi else "within")
        return "better" if self.kept > hi else ("worse" if self.kept < lo else "within")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for manifests)."""
        lo, hi = self.random_range
        return {
            "name": self.name,
            "label": self.label,
            "kept": self.kept,
            "random_mean": self.random_mean,
            "random_2.5%": lo,
            "random_97.5%": hi,
            "random_min": float(np.min(self.random)),
            "random_max": float(np.max(self.random)),
            "n_subsets": len(self.random),
            "better": self.better,
            "beats": self.rank,
            "ties": self.ties,
            "verdict": self.verdict,
        }


def random_subsets(
    pool: np.ndarray, k: int, n_subsets: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``n_subsets`` uniform draws of ``k`` distinct members of ``pool``, each sorted.

    Parameters
    ----------
    pool : ndarray of shape (n_pool,), int64
        The positions the kept set was chosen from.
    """
    pool = np.asarray(pool, dtype=np.int64)
    return [np.sort(rng.choice(pool, size=k, replace=False)) for _ in range(n_subsets)]


def compare(
    name: str,
    label: str,
    measure: Callable[[np.ndarray], float],
    kept: np.ndarray,
    subsets: Sequence[np.ndarray],
    better: str,
) -> Comparison:
    """``measure`` on the kept set and on every random subset."""
    return Comparison(name, label, measure(kept), np.array([measure(s) for s in subsets]), better)


def coverage(E: np.ndarray, members: np.ndarray, probe: np.ndarray) -> float:
    """Mean, over the ``probe`` rows of ``E``, of the cosine similarity to the nearest member.

    Parameters
    ----------
    E : ndarray of shape (n, dim), float32
        L2-normalised embeddings.
    members, probe : ndarray of int64
        Rows of ``E``: the set, and the records whose coverage is averaged. Higher is better.
    """
    S = E[members]
    best = np.full(len(probe), -np.inf, dtype=np.float32)
    for lo in range(0, len(probe), 2048):
        block = E[probe[lo : lo + 2048]] @ S.T
        best[lo : lo + 2048] = block.max(axis=1)
    return float(np.mean(best))


def group_ids(n: int, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Group id per position from lists of grouped positions; ``-1`` outside every group."""
    comp = np.full(n, -1, dtype=np.int64)
    for gid, members in enumerate(groups):
        comp[np.asarray(members, dtype=np.int64)] = gid
    return comp


def duplicate_share(members: np.ndarray, comp: np.ndarray) -> float:
    """Share of ``members`` that have another record of their duplicate group in the set.

    Parameters
    ----------
    comp : ndarray of shape (n,), int64
        Duplicate group per position, ``-1`` for none (:func:`group_ids`). Lower is better.
    """
    if len(members) == 0:
        return 0.0
    c = comp[members]
    c = c[c >= 0]
    _, counts = np.unique(c, return_counts=True)
    return float(counts[counts > 1].sum()) / len(members)


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def label_issue_share(
    label_issue: np.ndarray, kept: np.ndarray, subsets: Sequence[np.ndarray]
) -> Comparison:
    """Share of likely label issues (confident learning's flags; NaN = not scored) among the
    scored members; lower is better."""
    return compare(
        "label_issue_share",
        "likely label issues (confident learning)",
        lambda m: finite_mean(label_issue[m]),
        kept,
        subsets,
        "lower",
    )


def column_means(
    columns: Mapping[str, np.ndarray],
    kept: np.ndarray,
    subsets: Sequence[np.ndarray],
    *,
    skip: Sequence[str] = (),
) -> list[Comparison]:
    """``mean:<name>`` of every float or boolean per-record column over its finite values (a
    boolean column's mean is a share), no direction.

    Integer columns (indices, cluster ids, ranks) are left out, and so are columns whose
    kept-set or random-subset mean is undefined (no finite value).
    """
    out: list[Comparison] = []
    for name, col in columns.items():
        col = np.asarray(col)
        if name in skip or col.dtype.kind not in "bf":
            continue

        def mean(m: np.ndarray, col: np.ndarray = col) -> float:
            return finite_mean(col[m])

        c = compare(f"mean:{name}", f"mean {name}", mean, kept, subsets, "")
        if np.isfinite(c.kept) and np.isfinite(c.random).all():
            out.append(c)
    return out


def comparison_lines(
    comparisons: Sequence[Comparison],
    k: int,
    n_subsets: int,
    *,
    pool: str = "the same candidates",
) -> list[str]:
    """What ``select --against-random`` and ``curate`` print: a heading, then one line per
    measure with its verdict (``k``: the kept set's size; ``pool``: where the random subsets
    come from)."""
    if not comparisons:
        return [f"against random: nothing to compare (the {k} kept records are the whole pool)"]
    lines = [
        f"kept set against {n_subsets} random subsets of the same size ({k} records) from "
        f"{pool} (no training):"
    ]
    for c in comparisons:
        lo, hi = c.random_range
        if c.verdict:
            ties = f", ties {c.ties}" if c.ties else ""
            tail = f": {c.verdict} (beats {c.rank}{ties} of {len(c.random)}; {c.better} is better)"
        else:
            tail = ""
        lines.append(
            f"  {c.label}: kept {c.kept:.4g}, random {c.random_mean:.4g} "
            f"(95% range {lo:.4g}-{hi:.4g}){tail}"
        )
    return lines
