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

from typing import Any

import numpy as np

from dataprune.against_random import (
    Comparison,
    column_means,
    compare,
    coverage,
    duplicate_share,
    label_issue_share,
    random_subsets,
)

__all__ = ["Comparison", "compare_with_random", "duplicate_components"]


def duplicate_components(n_input: int, duplicate_of_index: np.ndarray) -> np.ndarray:
    """Component id per input record from (record -> duplicated record) edges; -1 = no group.

    Parameters
    ----------
    duplicate_of_index : ndarray of shape (n_input,), int64
        Input position a record duplicates, -1 when it duplicates none.
    """
    from dataprune.dedup.components import component_labels

    src = np.flatnonzero(duplicate_of_index >= 0)
    comp = np.full(n_input, -1, dtype=np.int64)
    if len(src) == 0:
        return comp
    labels = component_labels(n_input, src, duplicate_of_index[src])
    in_group = np.zeros(n_input, dtype=bool)
    in_group[src] = True
    in_group[duplicate_of_index[src]] = True
    comp[in_group] = labels[in_group]
    return comp


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
    subsets = random_subsets(valid, k, n_subsets, rng)
    out: list[Comparison] = []

    ids = {rid: i for i, rid in enumerate(result.ids) if rid is not None}
    dup_idx = np.array(
        [ids.get(d, -1) if d is not None else -1 for d in result.duplicate_of], dtype=np.int64
    )
    if (dup_idx >= 0).any():
        comp = duplicate_components(n_input, dup_idx)
        out.append(
            compare(
                "duplicate_share",
                "records with a duplicate also in the set",
                lambda m: duplicate_share(m, comp),
                kept,
                subsets,
                "lower",
            )
        )
    if result.flags is not None:
        f = result.flags
        out.append(
            compare(
                "flagged_share",
                "records flagged as known-bad (flag field)",
                lambda m: float(f[m].mean()),
                kept,
                subsets,
                "lower",
            )
        )
    if "label_issue" in result.columns:
        out.append(label_issue_share(result.columns["label_issue"], kept, subsets))
    if embeddings is not None and valid_index is not None:
        row = np.full(n_input, -1, dtype=np.int64)
        row[valid] = np.arange(len(valid))
        probe = row[rng.choice(valid, size=min(max_probe, len(valid)), replace=False)]
        E = np.asarray(embeddings, dtype=np.float32)
        out.append(
            compare(
                "coverage",
                "embedding coverage (mean similarity of a pool record to its nearest member)",
                lambda m: coverage(E, row[m], probe),
                kept,
                subsets,
                "higher",
            )
        )
    out.extend(column_means(result.columns, kept, subsets, skip=("label_issue", "selection_score")))
    return out
