"""The kept set against random subsets of the same size, on measures that need no training.

Measures (each only where the run has what it needs):

* ``duplicate_share`` — share of the set's records that have a duplicate (exact, fuzzy or
  semantic, as found by the run's dedup stages) also in the set; lower is better;
* ``flagged_share`` — share of records the user's ``flag_field`` marks as known-bad; lower is
  better;
* ``label_issue_share`` — share flagged by confident learning (among records it scored);
* ``coverage`` — mean, over a sample of the valid records, of the cosine similarity to the
  nearest member of the set (embedding coverage); higher is better;
* ``mean:<score>`` — each score's mean over the set's scored records (no better/worse stated:
  the direction is the user's choice, shown with the score's description).

Random subsets are drawn uniformly from the valid records (the pool the recipe started from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Comparison", "compare_with_random", "duplicate_components"]


@dataclass
class Comparison:
    """One measure: the kept set's value against the random subsets' values."""

    name: str
    label: str
    kept: float
    random: np.ndarray
    better: str  # "lower", "higher" or "" (no direction)

    @property
    def random_mean(self) -> float:
        return float(np.mean(self.random))

    @property
    def random_range(self) -> tuple[float, float]:
        lo, hi = np.percentile(self.random, [2.5, 97.5])
        return float(lo), float(hi)

    @property
    def verdict(self) -> str:
        """``better``/``worse`` than every random subset, ``within`` their range, or ``""``."""
        if not self.better:
            return ""
        lo, hi = float(np.min(self.random)), float(np.max(self.random))
        if self.better == "lower":
            return "better" if self.kept < lo else ("worse" if self.kept > hi else "within")
        return "better" if self.kept > hi else ("worse" if self.kept < lo else "within")


def duplicate_components(n_input: int, duplicate_of_index: np.ndarray) -> np.ndarray:
    """Component id per input record from (record -> duplicated record) edges; -1 = no group.

    Parameters
    ----------
    duplicate_of_index : ndarray of shape (n_input,), int64
        Input position a record duplicates, -1 when it duplicates none.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src = np.flatnonzero(duplicate_of_index >= 0)
    comp = np.full(n_input, -1, dtype=np.int64)
    if len(src) == 0:
        return comp
    dst = duplicate_of_index[src]
    g = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n_input, n_input))
    _, labels = connected_components(g, directed=False)
    in_group = np.zeros(n_input, dtype=bool)
    in_group[src] = True
    in_group[dst] = True
    comp[in_group] = labels[in_group]
    return comp


def _dup_share(members: np.ndarray, comp: np.ndarray) -> float:
    c = comp[members]
    c = c[c >= 0]
    if len(members) == 0:
        return 0.0
    _, counts = np.unique(c, return_counts=True)
    return float(counts[counts > 1].sum()) / len(members)


def _coverage(E: np.ndarray, members: np.ndarray, probe: np.ndarray) -> float:
    S = E[members]
    best = np.full(len(probe), -np.inf, dtype=np.float32)
    for lo in range(0, len(probe), 2048):
        block = E[probe[lo : lo + 2048]] @ S.T
        best[lo : lo + 2048] = block.max(axis=1)
    return float(np.mean(best))


def compare_with_random(
    result: Any,
    *,
    embeddings: np.ndarray | None = None,
    valid_index: np.ndarray | None = None,
    n_subsets: int = 20,
    max_probe: int = 5000,
) -> list[Comparison]:
    """Compare ``result``'s kept set with ``n_subsets`` random subsets of the same size.

    Parameters
    ----------
    result : CurationResult
    embeddings : ndarray of shape (n_valid, dim), optional
        The run's embeddings of the valid records (``coverage`` is skipped without them).
    valid_index : ndarray of shape (n_valid,), int64
        Input positions of the valid records (rows of ``embeddings``).
    """
    rng = np.random.default_rng([int(result.random_state or 0), 7])
    n_input = result.n_input
    valid = (
        np.asarray(valid_index, dtype=np.int64)
        if valid_index is not None
        else np.flatnonzero(result.stage != "validate")
    )
    kept = np.asarray(result.kept_indices, dtype=np.int64)
    k = len(kept)
    if k == 0 or len(valid) <= k:
        return []
    subsets = [np.sort(rng.choice(valid, size=k, replace=False)) for _ in range(n_subsets)]
    out: list[Comparison] = []

    ids = {rid: i for i, rid in enumerate(result.ids) if rid is not None}
    dup_idx = np.array(
        [ids.get(d, -1) if d is not None else -1 for d in result.duplicate_of], dtype=np.int64
    )
    if (dup_idx >= 0).any():
        comp = duplicate_components(n_input, dup_idx)
        out.append(
            Comparison(
                "duplicate_share",
                "records with a duplicate also in the set",
                _dup_share(kept, comp),
                np.array([_dup_share(s, comp) for s in subsets]),
                "lower",
            )
        )
    if result.flags is not None:
        f = result.flags
        out.append(
            Comparison(
                "flagged_share",
                "records flagged as known-bad (flag field)",
                float(f[kept].mean()),
                np.array([float(f[s].mean()) for s in subsets]),
                "lower",
            )
        )
    if "label_issue" in result.columns:
        li = result.columns["label_issue"]

        def share(m: np.ndarray) -> float:
            v = li[m]
            v = v[np.isfinite(v)]
            return float(v.mean()) if len(v) else float("nan")

        out.append(
            Comparison(
                "label_issue_share",
                "likely label issues (confident learning)",
                share(kept),
                np.array([share(s) for s in subsets]),
                "lower",
            )
        )
    if embeddings is not None and valid_index is not None:
        row = np.full(n_input, -1, dtype=np.int64)
        row[valid] = np.arange(len(valid))
        probe = row[rng.choice(valid, size=min(max_probe, len(valid)), replace=False)]
        E = np.asarray(embeddings, dtype=np.float32)
        out.append(
            Comparison(
                "coverage",
                "embedding coverage (mean similarity of a pool record to its nearest member)",
                _coverage(E, row[kept], probe),
                np.array([_coverage(E, row[s], probe) for s in subsets]),
                "higher",
            )
        )
    for name, col in result.columns.items():
        if name in ("label_issue", "selection_score"):
            continue

        def mean(m: np.ndarray, col: np.ndarray = col) -> float:
            v = col[m]
            v = v[np.isfinite(v)]
            return float(v.mean()) if len(v) else float("nan")

        rand = np.array([mean(s) for s in subsets])
        if np.isfinite(mean(kept)) and np.isfinite(rand).all():
            out.append(Comparison(f"mean:{name}", f"mean {name}", mean(kept), rand, ""))
    return out
