"""The markdown section, findings and plot of ``benchmarks/selection_quality.py``, every sentence
computed from the summary (:func:`write_md`, :func:`findings`, :func:`plot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common as common
from benchmarks.selection_quality_setup import (
    CCS_BETA,
    CONDITIONS,
    EL2N_OFFSET,
    FRACTIONS,
    LR_C,
    LR_MAX_ITER,
    METHODS,
    NAME,
)


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(CONDITIONS), figsize=(6 * len(CONDITIONS), 9), sharex=True)
    cmap = plt.get_cmap("tab20")
    fr = [100 * f for f in FRACTIONS]
    for j, cond in enumerate(CONDITIONS):
        s = summary[cond]
        ax, axd = axes[0, j], axes[1, j]
        for i, m in enumerate(METHODS):
            acc = [100 * s["methods"][m][str(f)]["acc_mean"] for f in FRACTIONS]
            style = dict(color="black", lw=2.5) if m == "random" else dict(color=cmap(i), lw=1.4)
            ax.plot(fr, acc, marker="o", ms=3, label=m, **style)
            if m != "random":
                d = [100 * s["methods"][m][str(f)]["delta_mean"] for f in FRACTIONS]
                lo = [100 * s["methods"][m][str(f)]["delta_ci"][0] for f in FRACTIONS]
                hi = [100 * s["methods"][m][str(f)]["delta_ci"][1] for f in FRACTIONS]
                axd.errorbar(
                    [x + (i - 6) * 0.6 for x in fr],
                    d,
                    yerr=[np.subtract(d, lo), np.subtract(hi, d)],
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=cmap(i),
                    lw=1,
                    label=m,
                )
        ax.axhline(100 * s["full_acc_mean"], color="gray", ls="--", lw=1, label="all data")
        axd.axhline(0, color="black", lw=1)
        # zoom on the region where methods compete with random; far-below points are cut off
        top = max(
            100 * s["methods"][m][str(f)]["delta_ci"][1]
            for m in METHODS
            if m != "random"
            for f in FRACTIONS
        )
        axd.set_ylim(-12, max(4.0, top + 1.0))
        ax.set_title(f"{cond}: test accuracy vs kept fraction")
        axd.set_title(f"{cond}: delta vs random (points, 95% CI; cut at -12)")
        axd.set_xlabel("kept (% of training pool)")
        ax.set_ylabel("held-out accuracy (%)")
        axd.set_ylabel("accuracy - random (points)")
        ax.grid(alpha=0.3)
        axd.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(
        "MMLU subject classification (57 classes): pruning curves, MiniLM + logistic regression"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_md(summary: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    lines = [
        f"## Selection quality: MMLU subject classification (`benchmarks/{NAME}.py`)",
        "",
        f"Command: `{meta['command']}`. {meta['n_seeds']} seeds; total "
        f"{meta['wall_s'] / 60:.1f} min. {common.machine_sentence(meta.get('machine'))}",
        "",
        f"Task: MMLU question text -> subject (57 classes, `../shared/data/mmlu` test CSVs, "
        f"{meta['n_total']} questions). Fixed stratified held-out split: {meta['n_test']} test / "
        f"{meta['n_pool']} training pool (never seen by selection). Features: all-MiniLM-L6-v2 "
        f"embeddings (cached). Downstream learner: multinomial logistic regression (L2, C={LR_C}, "
        f"full-batch L-BFGS, {LR_MAX_ITER} iterations) on the kept records' embeddings and (possibly "
        "noisy) labels. Conditions: **clean**; **noise20** = 20% of training labels replaced by a "
        "random other class (new pattern per seed); **dup30** = edited copies (prefix, case/"
        "punctuation, dropped/swapped word) of 10% of the training questions, 3 each (+30% "
        f"records, {meta['n_dup']} copies, same label as the source). Deltas are paired per seed "
        "against random (same data, same seed); CI = t-interval over seeds. **Bold** = the CI "
        "excludes 0 in favour of the method; _italic_ = significantly worse than random.",
        "",
        "Methods: k-center greedy and facility location (kNN graph, k=32) on embeddings; prototypes "
        "(k-means, sqrt(n) clusters) keep easy/hard; SemDeDup (eps=0.05, random fill); EL2N / "
        "GraNd averaged over 5 proxy heads (softmax regression, 5 epochs, Adam) keep hardest; "
        f"EL2N with offset {EL2N_OFFSET}; CCS (beta={CCS_BETA}, 50 strata) over EL2N; confident "
        "learning (5-fold out-of-fold probabilities, prune_by_noise_rate, random fill).",
        "",
    ]
    for cond in CONDITIONS:
        s = summary[cond]
        lines += [
            f"### {cond} (all-data accuracy {100 * s['full_acc_mean']:.2f}%)",
            "",
            "| method | "
            + " | ".join(f"keep {int(100 * f)}%" for f in FRACTIONS)
            + " | select s |",
            "|---|" + "---:|" * (len(FRACTIONS) + 1),
        ]
        for m in METHODS:
            cells = []
            for f in FRACTIONS:
                r = s["methods"][m][str(f)]
                if m == "random":
                    cells.append(f"{100 * r['acc_mean']:.2f}% (acc)")
                    continue
                d, (lo, hi) = (
                    100 * r["delta_mean"],
                    (100 * r["delta_ci"][0], 100 * r["delta_ci"][1]),
                )
                txt = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                if lo > 0:
                    txt = f"**{txt}**"
                elif hi < 0:
                    txt = f"_{txt}_"
                cells.append(txt)
            lines.append(
                f"| {m} | " + " | ".join(cells) + f" | {s['methods'][m]['select_s']:.1f} |"
            )
        lines.append("")
        if cond == "noise20":
            lines.append(
                "Noisy labels among the kept records (%): "
                + ", ".join(
                    f"{m} {100 * s['methods'][m]['0.3']['noisy_kept']:.1f}" for m in METHODS
                )
                + " (at keep 30%). EL2N AUROC for flagging a flipped label: "
                f"{s['diagnostics']['el2n_noise_auroc']:.3f}; confident learning flags "
                f"{s['diagnostics']['cl_flagged']:.0f} records with precision "
                f"{s['diagnostics']['cl_precision']:.3f} / recall {s['diagnostics']['cl_recall']:.3f}."
            )
            lines.append("")
        if cond == "dup30":
            lines.append(
                "Injected copies among the kept records (%): "
                + ", ".join(f"{m} {100 * s['methods'][m]['0.3']['dups_kept']:.1f}" for m in METHODS)
                + " (at keep 30%). SemDeDup marks "
                f"{s['diagnostics']['semdedup_flagged']:.0f} records as duplicates; "
                f"{100 * s['diagnostics']['semdedup_copy_recall']:.1f}% of the injected copies "
                "are among them"
                + (
                    f", and {100 * s['diagnostics']['semdedup_precision']:.1f}% of the marked "
                    "records are injected copies."
                    if "semdedup_precision" in s["diagnostics"]
                    else "."
                )
            )
            lines.append("")
    lines += ["### Findings", "", *meta["findings"], ""]
    path.write_text("\n".join(lines))


def findings(summary: dict[str, Any]) -> list[str]:
    """Plain statements derived from the numbers (no hand-written claims)."""
    out = []
    for cond in CONDITIONS:
        s = summary[cond]
        wins: list[tuple[float, str]] = []
        losses: dict[str, list[str]] = {}
        for m in METHODS:
            if m == "random":
                continue
            for f in FRACTIONS:
                lo, hi = s["methods"][m][str(f)]["delta_ci"]
                d = 100 * s["methods"][m][str(f)]["delta_mean"]
                if lo > 0:
                    wins.append((d, f"{m}@{int(100 * f)}% ({d:+.2f})"))
                elif hi < 0:
                    losses.setdefault(m, []).append(f"{int(100 * f)}%")
        best = max(wins)[1] if wins else None
        out.append(
            f"- **{cond}**: significantly better than random: "
            + (", ".join(w for _, w in wins) if wins else "**none** (no method beats random here)")
            + (f"; largest gain {best}" if best else "")
            + ". Significantly worse than random: "
            + ("; ".join(f"{m} at {', '.join(b)}" for m, b in losses.items()) or "none")
            + "."
        )
    return out
