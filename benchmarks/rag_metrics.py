"""Metric helpers shared by the RAG pruning benchmarks: per-passage sums, metrics from sums,
interpolation at matched compression and the paired bootstrap."""

from __future__ import annotations

import numpy as np

__all__ = ["interp_rows", "metrics_from_sums", "paired_bootstrap", "passage_stats"]


def passage_stats(examples, masks):
    """Per-passage sums behind recall, precision and compression: shape (5, n_passages) rows
    true positives, relevant sentences, kept sentences, kept characters, all characters."""
    out = np.zeros((5, len(examples)), dtype=np.float64)
    for i, (ex, m) in enumerate(zip(examples, masks)):
        m = np.asarray(m, dtype=bool)
        y = np.asarray(ex.labels, dtype=bool)
        lens = np.array([s.end - s.start for s in ex.sentences], dtype=np.float64)
        out[:, i] = ((m & y).sum(), y.sum(), m.sum(), lens[m].sum(), lens.sum())
    return out


def metrics_from_sums(sums):
    """recall, F2, compression from summed :func:`passage_stats` rows (any leading batch shape)."""
    from dataprune.rag.evaluation import f_beta

    tp, rel, kept, kc, tc = (sums[..., j] for j in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(rel > 0, tp / rel, np.nan)
        precision = np.where(kept > 0, tp / kept, 0.0)
        f2 = np.vectorize(f_beta)(precision, recall)
        compression = np.where(tc > 0, 1.0 - kc / tc, np.nan)
    return {"recall": recall, "f2": f2, "compression": compression}


def interp_rows(xs, ys, x):
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


def paired_bootstrap(pruner_stats, baseline_stats, *, n_boot, seed):
    """Paired bootstrap over passages of (pruner - baseline) recall and F2, the baseline
    interpolated to the pruner's compression in each resample (as in the point estimate).

    ``pruner_stats``: {threshold: (5, n)}; ``baseline_stats``: {name: [(5, n) per parameter]}.
    Returns {threshold: {baseline: {metric: {"lo", "hi", "n_nan"}}}}.
    """
    n = next(iter(pruner_stats.values())).shape[1]
    rng = np.random.default_rng(seed)
    W = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
    base = {}
    for name, per_param in baseline_stats.items():
        sums = np.stack([W @ st.T for st in per_param], axis=1)  # (B, P, 5)
        base[name] = metrics_from_sums(sums)
    out = {}
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
