"""A pruner against other sentence filters at matched compression, with paired bootstrap CIs.

A pruner at one threshold removes some share of the characters; another filter (BM25, embedding
cosine, another checkpoint) is swept over its own thresholds, and its recall and F2 are
interpolated at the pruner's compression. The paired bootstrap resamples passages and repeats the
interpolation inside every resample, so the interval covers the matching as well.

Per-passage sums (:func:`passage_stats`) are the unit: recall, precision, F2 and compression of
any set of passages are computed from their sums (:func:`metrics_from_sums`), so a resample is a
weighted sum. ``benchmarks/rag_pruning.py`` and ``dataprune rag evaluate`` both use this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "THRESHOLD_GRID",
    "best_recall",
    "compare_at_threshold",
    "interp_rows",
    "metric_curve",
    "metrics_from_sums",
    "paired_bootstrap",
    "passage_stats",
    "pruner_sweep",
    "score_sweep",
    "summed_metrics",
    "threshold_masks",
    "value_at_compression",
]

#: Thresholds a pruner is swept over (curves, matched compression): 12 log-spaced steps from
#: 1e-4 to 0.002 (passage-weighted probabilities of low-ranked passages are small), steps of
#: 0.002 below 0.1 (a pruner trained with more layers puts its default near 0.07), then of 0.01.
THRESHOLD_GRID: tuple[float, ...] = tuple(
    float(t)
    for t in np.unique(
        np.r_[
            np.round(np.geomspace(1e-4, 0.002, 12, endpoint=False), 6),
            np.round(np.r_[np.arange(0.002, 0.1, 0.002), np.arange(0.1, 1.0, 0.01)], 3),
        ]
    )
)


def passage_stats(examples: Sequence[Any], masks: Sequence[Any]) -> np.ndarray:
    """Per-passage sums behind recall, precision and compression.

    Parameters
    ----------
    examples : sequence of PruningExample
        ``n_passages`` passages with ``sentences`` and 0/1 ``labels``.
    masks : sequence of ndarray of bool
        ``masks[i]`` has shape ``(n_sentences_i,)``; True = kept.

    Returns
    -------
    ndarray of shape (5, n_passages)
        Rows: true positives, relevant sentences, kept sentences, kept characters, characters.
    """
    out = np.zeros((5, len(examples)), dtype=np.float64)
    for i, (ex, m) in enumerate(zip(examples, masks)):
        m = np.asarray(m, dtype=bool)
        y = np.asarray(ex.labels, dtype=bool)
        lens = np.array([s.end - s.start for s in ex.sentences], dtype=np.float64)
        out[:, i] = ((m & y).sum(), y.sum(), m.sum(), lens[m].sum(), lens.sum())
    return out


def metrics_from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """``recall``, ``f2`` and ``compression`` (share of characters removed; higher = smaller
    context) from summed :func:`passage_stats` rows, shape ``(..., 5)``; recall is NaN where no
    sentence is relevant."""
    from dataprune.rag.evaluation import f_beta

    tp, rel, kept, kc, tc = (sums[..., j] for j in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(rel > 0, tp / rel, np.nan)
        precision = np.where(kept > 0, tp / kept, 0.0)
        f2 = np.vectorize(f_beta)(precision, recall)
        compression = np.where(tc > 0, 1.0 - kc / tc, np.nan)
    return {"recall": recall, "f2": f2, "compression": compression}


def summed_metrics(stats: np.ndarray) -> dict[str, float]:
    """:func:`metrics_from_sums` of all passages of ``stats`` (shape ``(5, n_passages)``)."""
    m = metrics_from_sums(stats.sum(axis=1))
    return {k: float(v) for k, v in m.items()}


def metric_curve(stats_per_param: Sequence[np.ndarray], params: Sequence[float]) -> list[dict]:
    """One ``{"param", "recall", "f2", "compression"}`` row per swept parameter."""
    return [{"param": float(p), **summed_metrics(st)} for p, st in zip(params, stats_per_param)]


def value_at_compression(
    curve: Sequence[Mapping[str, float]], compression: float, key: str
) -> float:
    """``key`` of a :func:`metric_curve` linearly interpolated at ``compression`` (points with
    equal compression averaged); NaN outside the curve's range."""
    pts = sorted((r["compression"], r[key]) for r in curve if r[key] == r[key])
    if not pts or not pts[0][0] - 1e-9 <= compression <= pts[-1][0] + 1e-9:
        return float("nan")
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    ux = np.unique(xs)
    return float(np.interp(compression, ux, [ys[xs == x].mean() for x in ux]))


def best_recall(curve: Sequence[Mapping[str, float]], min_compression: float) -> float:
    """The highest recall of a curve among its points removing at least ``min_compression``."""
    return max((r["recall"] for r in curve if r["compression"] >= min_compression), default=np.nan)


def threshold_masks(scores: Sequence[Any], threshold: float) -> list[np.ndarray]:
    """Keep masks of pruner scores (:class:`~dataprune.rag.PassageScores`) at ``threshold``,
    with the selection :meth:`~dataprune.rag.ContextPruner.prune` uses."""
    from dataprune.rag.selection import select_sentences

    return [select_sentences(s, threshold=threshold) for s in scores]


def pruner_sweep(
    scores: Sequence[Any], thresholds: Sequence[float] = THRESHOLD_GRID
) -> tuple[list[list[np.ndarray]], list[float]]:
    """Masks of another pruner's scores (:class:`~dataprune.rag.PassageScores`) at each of
    ``thresholds``: the sweep a second checkpoint is matched on (same form as
    :func:`score_sweep`)."""
    thresholds = [float(t) for t in thresholds]
    return [threshold_masks(scores, t) for t in thresholds], thresholds


def score_sweep(
    sentence_scores: Sequence[np.ndarray],
) -> tuple[list[list[np.ndarray]], list[float]]:
    """Masks of a per-sentence score (higher = keep) at 81 global thresholds (its quantiles):
    the sweep a filter is matched on."""
    from dataprune.rag import baselines as bl

    flat = np.concatenate([s for s in sentence_scores if len(s)])
    ths = list(np.unique(np.quantile(flat, np.linspace(0, 1, 81))) - 1e-9)
    return [bl.keep_global_threshold(sentence_scores, t) for t in ths], [float(t) for t in ths]


def interp_rows(xs: np.ndarray, ys: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row-wise linear interpolation: ``xs``, ``ys`` of shape (B, P), ``x`` of shape (B,)."""
    out = np.full(len(x), np.nan)
    for b in range(len(x)):
        ok = ~np.isnan(ys[b])
        px, py = xs[b][ok], ys[b][ok]
        if not len(px) or x[b] < px.min() - 1e-9 or x[b] > px.max() + 1e-9:
            continue
        ux = np.unique(px)
        uy = np.array([py[px == v].mean() for v in ux])
        out[b] = np.interp(x[b], ux, uy)
    return out


def paired_bootstrap(
    pruner_stats: Mapping[float, np.ndarray],
    baseline_stats: Mapping[str, Sequence[np.ndarray]],
    *,
    n_boot: int,
    seed: int,
) -> dict[float, dict[str, dict[str, dict[str, float]]]]:
    """Paired bootstrap over passages of (pruner - baseline) recall and F2, the baseline
    interpolated to the pruner's compression in each resample (as in the point estimate).

    ``pruner_stats``: {threshold: (5, n)}; ``baseline_stats``: {name: [(5, n) per parameter]}.
    Returns {threshold: {baseline: {metric: {"lo", "hi", "n_nan"}}}}: the 95% percentile interval
    and the resamples in which the baseline's sweep did not reach the pruner's compression.
    """
    n = next(iter(pruner_stats.values())).shape[1]
    rng = np.random.default_rng(seed)
    W = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
    base = {}
    for name, per_param in baseline_stats.items():
        sums = np.stack([W @ st.T for st in per_param], axis=1)  # (B, P, 5)
        base[name] = metrics_from_sums(sums)
    out: dict[float, dict[str, dict[str, dict[str, float]]]] = {}
    for t, st in pruner_stats.items():
        pm = metrics_from_sums(W @ st.T)  # (B,)
        out[t] = {}
        for name, bm in base.items():
            out[t][name] = {}
            for key in ("recall", "f2"):
                d = pm[key] - interp_rows(bm["compression"], bm[key], pm["compression"])
                ok = ~np.isnan(d)
                lo, hi = np.percentile(d[ok], [2.5, 97.5]) if ok.any() else (np.nan, np.nan)
                out[t][name][key] = {"lo": float(lo), "hi": float(hi), "n_nan": int((~ok).sum())}
    return out


def compare_at_threshold(
    examples: Sequence[Any],
    scores: Sequence[Any],
    threshold: float,
    others: Mapping[str, tuple[list[list[np.ndarray]], list[float]]],
    *,
    target_compression: float,
    thresholds: Sequence[float] = THRESHOLD_GRID,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """A pruner at ``threshold`` against swept filters on the same passages.

    Parameters
    ----------
    examples : sequence of PruningExample
        The passages (usually the evidence-bearing ones).
    scores : sequence of PassageScores
        The pruner's threshold-free scores of ``examples``.
    threshold : float
        The setting reported.
    others : mapping of name to (masks per parameter, parameters)
        Each filter's keep masks over its sweep (:func:`score_sweep`, or :func:`pruner_sweep`
        of another pruner).
    target_compression : float
        ``best_recall_at_target_compression``: the best recall each curve reaches while
        removing at least this share of characters.
    thresholds : sequence of float
        The pruner's own sweep (its curve).
    n_boot, seed : int
        Paired bootstrap resamples and their seed.

    Returns
    -------
    dict
        ``default`` (recall, f2, compression at ``threshold``), ``curve``,
        ``best_recall_at_target_compression`` and ``against``: per filter its recall and F2 at
        the pruner's compression, the differences (pruner - filter; positive = pruner better)
        and their 95% bootstrap intervals.
    """
    st = passage_stats(examples, threshold_masks(scores, threshold))
    thresholds = list(thresholds)
    curve = metric_curve(
        [passage_stats(examples, threshold_masks(scores, t)) for t in thresholds], thresholds
    )
    at = summed_metrics(st)
    other_stats = {
        name: [passage_stats(examples, m) for m in masks] for name, (masks, _) in others.items()
    }
    boot = paired_bootstrap({threshold: st}, other_stats, n_boot=n_boot, seed=seed)[threshold]
    rows: dict[str, Any] = {}
    for name, (_masks, params) in others.items():
        c = metric_curve(other_stats[name], params)
        r = {k: value_at_compression(c, at["compression"], k) for k in ("recall", "f2")}
        rows[name] = {
            **r,
            "delta_recall": at["recall"] - r["recall"],
            "delta_f2": at["f2"] - r["f2"],
            "ci95_recall": boot[name]["recall"],
            "ci95_f2": boot[name]["f2"],
            "best_recall_at_target_compression": best_recall(c, target_compression),
        }
    return {
        "default": at,
        "curve": curve,
        "best_recall_at_target_compression": best_recall(curve, target_compression),
        "against": rows,
    }
