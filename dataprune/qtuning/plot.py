"""EU-plane scatter plot: PPL vs entropy (log scales), coloured by quadrant, thresholds drawn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.atomic import atomic_path
from dataprune.qtuning.sample_triage import FILL_UP, Q1, Q2, Q3, Q4, QUADRANT_NAMES

__all__ = ["QUADRANT_COLORS", "plot_eu_plane"]

QUADRANT_COLORS = {Q1: "#d62728", Q2: "#1f77b4", Q3: "#7f7f7f", Q4: "#2ca02c"}


def plot_eu_plane(
    perplexity: Any,
    entropy: Any,
    quadrant: Any,
    path: str | os.PathLike[str],
    *,
    thresholds: dict[str, float] | None = None,
    selection: Any | None = None,
    title: str | None = None,
    entropy_label: str = "mean predictive entropy (nats)",
) -> Path:
    """Save the EU-plane scatter plot as PNG (written atomically).

    Parameters
    ----------
    perplexity, entropy : array-like of shape (n_samples,)
        Error and uncertainty per sample.
    quadrant : array-like of shape (n_samples,), int
        1..4 (Q1..Q4).
    path : path
        PNG file to write.
    thresholds : dict, optional
        ``ppl_lo``, ``ppl_hi``, ``ent_lo``, ``ent_hi`` drawn as dashed lines.
    selection : array-like of shape (n_samples,), optional
        Selection codes; fill-up samples get a black edge.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ppl = np.asarray(perplexity, dtype=np.float64)
    ent = np.asarray(entropy, dtype=np.float64)
    quad = np.asarray(quadrant)
    # log axes need positive values
    ent_plot = np.maximum(ent, 1e-6)
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    for q in (Q1, Q3, Q2, Q4):
        m = quad == q
        if not m.any():
            continue
        ax.scatter(
            ppl[m],
            ent_plot[m],
            s=14,
            alpha=0.75,
            c=QUADRANT_COLORS[q],
            label=f"{QUADRANT_NAMES[q]} ({int(m.sum())})",
            edgecolors="none",
        )
    if selection is not None:
        fill = np.asarray(selection) == FILL_UP
        if fill.any():
            ax.scatter(
                ppl[fill],
                ent_plot[fill],
                s=22,
                facecolors="none",
                edgecolors="black",
                linewidths=0.6,
                label=f"added by fill-up ({int(fill.sum())})",
            )
    if thresholds:
        for key in ("ppl_lo", "ppl_hi"):
            if key in thresholds and np.isfinite(thresholds[key]) and thresholds[key] > 0:
                ax.axvline(thresholds[key], color="k", ls="--", lw=0.8, alpha=0.6)
        for key in ("ent_lo", "ent_hi"):
            if key in thresholds and np.isfinite(thresholds[key]) and thresholds[key] > 0:
                ax.axhline(thresholds[key], color="k", ls=":", lw=0.8, alpha=0.6)
    _log_axes(ax)
    ax.set_xlabel("perplexity of the response (error)")
    ax.set_ylabel(entropy_label + " (uncertainty)")
    ax.set_title(
        title or "Error-Uncertainty plane", fontsize=10 if title and "\n" in title else None
    )
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out


def _log_axes(ax: Any) -> None:
    """Log scales on both axes with plain numbers as tick labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
