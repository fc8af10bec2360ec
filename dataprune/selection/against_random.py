"""A selection against random subsets of the same size: did the method do better than chance?

:func:`compare_selection_with_random` measures the kept set of a :class:`SelectionResult` and
``n_subsets`` uniform random subsets of the same size drawn from the same candidates, on measures
that need no training (the mechanism of :mod:`dataprune.against_random`, shared with the
curation report):

* ``coverage`` — mean, over (a sample of) the candidates, of the cosine similarity to the nearest
  kept record in the embedding space; higher is better;
* ``classes_present`` — distinct labels in the set (with labels); higher is better;
* ``label_distance`` — total variation distance between the set's label mix and the candidates'
  (0 = the same mix), and ``label_imbalance`` — its distance from equal classes (0 = every
  class equally often); no direction: a representative subset wants the first low, a
  class-balanced one the second;
* ``duplicate_share`` — records with a semantic duplicate (the method's duplicate groups) also
  in the set; lower is better;
* ``label_issue_share`` — likely label issues (confident learning) in the set; lower is better;
* ``mean:<column>`` — the mean of each per-record score the method computed before selecting
  (lengths, EL2N, GraNd, ...), no direction.

``dataprune select --against-random N`` prints them; ``dataprune.select(...,
against_random=N)`` stores them in ``SelectionResult.comparisons``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.against_random import (
    Comparison,
    column_means,
    compare,
    coverage,
    duplicate_share,
    group_ids,
    label_issue_share,
    random_subsets,
)
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["candidate_embeddings", "compare_selection_with_random"]


def compare_selection_with_random(
    result: Any,
    *,
    embeddings: Any = None,
    labels: Any = None,
    columns: Sequence[str] = (),
    n_subsets: int = 20,
    max_probe: int = 5000,
) -> list[Comparison]:
    """Compare a selection's kept set with ``n_subsets`` random subsets of the same size.

    Parameters
    ----------
    result : SelectionResult
        What :func:`dataprune.select` returned.
    embeddings : array-like of shape (n_candidates, dim), optional
        L2-normalised embeddings of the candidates (``result.candidates``, ascending input
        positions); ``coverage`` is skipped without them.
    labels : array-like of shape (n_candidates,), optional
        The candidates' labels; the label measures are skipped without them.
    columns : sequence of str, default=()
        Names in ``result.columns`` to average (``mean:<name>``): per-record scores the records
        have on their own (lengths, EL2N, GraNd, ...), not the selector's fitted attributes
        (gains, coverage of the kept set), which mean nothing for another subset.
        :func:`dataprune.select` passes the scores it computed before selecting.
    n_subsets : int, default=20
        Random subsets drawn uniformly from the candidates, seeded by the selection's
        ``random_state``.
    max_probe : int, default=5000
        Candidates whose coverage is averaged (a seeded sample when there are more).

    Returns
    -------
    list of Comparison
        Empty when the set holds every candidate (nothing to compare).
    """
    n_subsets = _check_int("n_subsets", n_subsets)
    max_probe = _check_int("max_probe", max_probe)
    unknown = sorted(set(columns) - set(result.columns))
    if unknown:
        raise DataValidationError(
            f"columns: {', '.join(map(repr, unknown))} not in the result's columns "
            f"({', '.join(result.columns) or 'none'})"
        )
    n_cand = len(result.candidates)
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != n_cand:
            raise DataValidationError(
                f"embeddings: expected shape ({n_cand}, dim), one row per candidate, got "
                f"{embeddings.shape}"
            )
    if labels is not None:
        labels = np.asarray(labels, dtype=object)
        if labels.shape != (n_cand,):
            raise DataValidationError(
                f"labels: expected shape ({n_cand},), one label per candidate, got {labels.shape}"
            )
    return _compute_comparisons(result, embeddings, labels, list(columns), n_subsets, max_probe)


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataValidationError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def _compute_comparisons(
    result: Any,
    embeddings: np.ndarray | None,
    labels: np.ndarray | None,
    columns: list[str],
    n_subsets: int,
    max_probe: int,
) -> list[Comparison]:
    cand = result.candidates  # input positions, ascending
    n_cand = len(cand)
    row = np.full(result.n_input, -1, dtype=np.int64)
    row[cand] = np.arange(n_cand)
    kept = row[np.asarray(result.indices, dtype=np.int64)]  # candidate rows
    k = len(kept)
    if k == 0 or k >= n_cand:
        return []
    seed = result.params.get("random_state")
    rng = np.random.default_rng([int(seed or 0), 7])
    subsets = random_subsets(np.arange(n_cand), k, n_subsets, rng)
    out: list[Comparison] = []
    if embeddings is not None:
        probe = np.sort(rng.choice(n_cand, size=min(max_probe, n_cand), replace=False))
        out.append(
            compare(
                "coverage",
                "embedding coverage (mean cosine similarity of a candidate to its nearest "
                "kept record)",
                lambda m: coverage(embeddings, m, probe),
                kept,
                subsets,
                "higher",
            )
        )
    if labels is not None:
        codes = np.unique(labels.astype(str), return_inverse=True)[1].reshape(-1)
        n_classes = int(codes.max()) + 1
        pool_mix = np.bincount(codes, minlength=n_classes) / n_cand

        def mix(m: np.ndarray) -> np.ndarray:
            return np.bincount(codes[m], minlength=n_classes) / len(m)

        out.append(
            compare(
                "classes_present",
                f"classes present (of {n_classes})",
                lambda m: float(len(np.unique(codes[m]))),
                kept,
                subsets,
                "higher",
            )
        )
        out.append(
            compare(
                "label_distance",
                "label mix's distance from the candidates' (total variation; 0 = same mix)",
                lambda m: 0.5 * float(np.abs(mix(m) - pool_mix).sum()),
                kept,
                subsets,
                "",
            )
        )
        out.append(
            compare(
                "label_imbalance",
                "label mix's distance from equal classes (total variation; 0 = balanced)",
                lambda m: 0.5 * float(np.abs(mix(m) - 1.0 / n_classes).sum()),
                kept,
                subsets,
                "",
            )
        )
    groups = result.details.get("duplicate_groups")
    if groups:
        comp = group_ids(result.n_input, groups)[cand]
        out.append(
            compare(
                "duplicate_share",
                "records with a semantic duplicate also in the set",
                lambda m: duplicate_share(m, comp),
                kept,
                subsets,
                "lower",
            )
        )
    # label_issue: the proxy heads' flags (el2n, grand, ccs); is_label_issue: confident
    # learning's cross-validated flags; both from the records alone, not from the kept set
    issues = [c for c in ("label_issue", "is_label_issue") if c in result.columns][:1]
    for name in issues:
        flags = np.asarray(result.columns[name])[cand].astype(np.float64)
        out.append(label_issue_share(flags, kept, subsets))
    cols = {name: np.asarray(result.columns[name])[cand] for name in columns}
    out.extend(column_means(cols, kept, subsets, skip=("label_issue",)))
    return out


def candidate_embeddings(spec: Any, X: Any, ctx: Any) -> np.ndarray | None:
    """The candidates' embeddings for ``coverage``: the method's own when it embedded them, the
    caller's precomputed rows, else the default sentence encoder on the method's text fields
    (``None`` when the records name no text field)."""
    if spec.fit_input in ("embeddings", "embeddings+labels"):
        return np.asarray(X, dtype=np.float32)
    if ctx.embeddings is not None:
        E = np.asarray(ctx.embeddings, dtype=np.float32)
        if E.ndim != 2 or E.shape[0] != ctx.n_input:
            raise DataValidationError(
                f"embeddings must have shape ({ctx.n_input}, dim): one row per input record, "
                f"got {E.shape}"
            )
        return E[ctx.rows]
    if not ctx.fields:
        logger.info("against random: no text field, so no embedding coverage")
        return None
    from dataprune.embeddings import embed_texts
    from dataprune.models import resolve_encoder

    ctx.models["coverage_encoder"] = resolve_encoder(None).describe()
    return np.asarray(
        embed_texts(ctx.texts(), None, show_progress_bar=ctx.show_progress_bar), dtype=np.float32
    )
