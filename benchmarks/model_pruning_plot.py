"""The comparison plot of ``benchmarks/model_pruning.py``: one panel per (pattern, held-out
set), one row per (recipe, refinement), every seed a dot on a linear perplexity axis, the mean a
bar with its value written beside it; dense and magnitude in the panel title."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.model_pruning_analysis import analyse, index_runs
from benchmarks.model_pruning_setup import RECIPES, pattern_label, refine_label

COLORS = {"none": "#1f77b4", "dsnot": "#d62728"}
MARKERS = {"none": "o", "dsnot": "s"}


def plot(out: dict, path: Path) -> None:
    """Write the PNG to ``path`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dataprune.atomic import atomic_path

    c = out["config"]
    patterns, sets = c["patterns"], list(c["eval_tokens"])
    index = index_runs(out["runs"])
    chosen = analyse(out)["choice"]["chosen"]
    conds = [(r, f) for r in c["recipes"] for f in c["refines"]]
    conds = [(r, f) for r, f in conds if any(k[1] == r and k[3] == f for k in index)]
    names = [
        RECIPES[r].label
        + refine_label(f)
        + (" [dev-chosen]" if r == chosen and r != "random" else "")
        for r, f in conds
    ]
    rows_h = 0.32 * len(conds) + 1.3
    fig, axes = plt.subplots(
        len(patterns),
        len(sets),
        figsize=(5.6 * len(sets), rows_h * len(patterns)),
        squeeze=False,
        sharey=True,
    )
    y = list(range(len(conds)))[::-1]  # first condition on top
    for i, p in enumerate(patterns):
        for j, e in enumerate(sets):
            ax = axes[i][j]
            values_all: list[float] = []
            means: list[tuple[float, float, float]] = []
            for yy, (r, f) in zip(y, conds):
                vals = [v["ppl"][e] for k, v in index.items() if k[:2] == (p, r) and k[3] == f]
                if not vals:
                    continue
                values_all += vals
                m = statistics.fmean(vals)
                ax.scatter(
                    vals,
                    [yy] * len(vals),
                    s=22,
                    # DSnoT variants (``DSNOT_VARIANTS``) share DSnoT's style; the label names them
                    marker=MARKERS["none" if f == "none" else "dsnot"],
                    color=COLORS["none" if f == "none" else "dsnot"],
                    alpha=0.75,
                    zorder=3,
                )
                ax.plot([m, m], [yy - 0.32, yy + 0.32], color="k", lw=2.0, zorder=2)
                means.append((m, max(vals), yy))
            if not values_all:
                ax.set_visible(False)
                continue
            lo, hi = min(values_all), max(values_all)
            span = max(hi - lo, 0.02 * hi)
            ax.set_xlim(lo - 0.08 * span, hi + 0.38 * span)
            for m, top, yy in means:
                ax.text(top + 0.05 * span, yy, f"{m:.2f}", va="center", fontsize=7.5)
            base = [
                v["ppl"][e] for k, v in index.items() if k[:2] == (p, "random") and k[3] == "none"
            ]
            if base:
                ax.axvline(statistics.fmean(base), color="0.5", ls="--", lw=0.8, zorder=1)
            mag = index.get((p, "magnitude", None, "none"))
            title = f"{pattern_label(p)}: {e} (held out)\ndense {out['dense']['ppl'][e]:.2f}"
            title += f", magnitude {mag['ppl'][e]:.1f}" if mag else ""
            ax.set_title(title, fontsize=9)
            ax.set_yticks(y)
            ax.set_yticklabels(names, fontsize=8)
            ax.set_ylim(-0.7, len(conds) - 0.3)
            ax.grid(axis="x", color="0.9", zorder=0)
            ax.tick_params(axis="x", labelsize=8)
            if i == len(patterns) - 1:
                ax.set_xlabel("perplexity (linear axis, lower is better)", fontsize=8)
    handles = [
        plt.Line2D(
            [], [], ls="", marker=MARKERS["none"], color=COLORS["none"], label="Wanda, a seed"
        ),
        *(
            [
                plt.Line2D(
                    [],
                    [],
                    ls="",
                    marker=MARKERS["dsnot"],
                    color=COLORS["dsnot"],
                    label="Wanda + DSnoT, a seed",
                )
            ]
            if any(f != "none" for f in c["refines"])
            else []
        ),
        plt.Line2D([], [], color="k", lw=2, label="mean over seeds (value written)"),
        plt.Line2D([], [], color="0.5", ls="--", lw=0.8, label="random calibration, Wanda, mean"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        "SmolLM2-135M-Instruct: held-out perplexity by calibration recipe "
        f"({len(c['seeds'])} seed(s), {c['n_samples']} x {c['seq_len']} calibration tokens)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
