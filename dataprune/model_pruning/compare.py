"""``compare_calibration``: one model, one pruner, several calibration sets -> perplexity table.

This is the demonstration of why calibration selection matters: the same Wanda (or any
:class:`ModelPruner`) run from a random, a coreset-selected and a domain-matched calibration set,
each scored by perplexity on the same held-out texts, against the dense model measured in the same
run. The model is restored to its dense weights between runs and at the end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprune.atomic import atomic_path, atomic_write_json
from dataprune.errors import DataValidationError
from dataprune.model_pruning.base import ModelPruner
from dataprune.model_pruning.perplexity import perplexity_of_ids, tokenize_eval_texts

logger = logging.getLogger(__name__)

__all__ = ["CalibrationComparison", "compare_calibration"]

DENSE = "dense"


@dataclass
class CalibrationComparison:
    """Perplexities per (calibration set, evaluation set).

    Attributes
    ----------
    rows : list of dict
        One row per (calibration, eval): ``calibration``, ``eval``, ``perplexity``, ``mean_nll``,
        ``n_tokens``, ``ratio_vs_dense``, ``prune_time_s``, ``sparsity``, ``n_calibration_samples``,
        ``n_calibration_tokens``.
    reports : dict
        ``PruneReport.to_dict()`` per calibration set.
    eval_tokens : dict
        Tokens evaluated per evaluation set.
    """

    rows: list[dict[str, Any]]
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_tokens: dict[str, int] = field(default_factory=dict)
    pruner: str = ""

    @property
    def calibrations(self) -> list[str]:
        return list(dict.fromkeys(r["calibration"] for r in self.rows))

    @property
    def evals(self) -> list[str]:
        return list(dict.fromkeys(r["eval"] for r in self.rows))

    def perplexity(self, calibration: str, eval_name: str) -> float:
        for r in self.rows:
            if r["calibration"] == calibration and r["eval"] == eval_name:
                return float(r["perplexity"])
        raise KeyError((calibration, eval_name))

    def best(self, eval_name: str) -> str:
        """Calibration set (dense excluded) with the lowest perplexity on ``eval_name``."""
        rows = [r for r in self.rows if r["eval"] == eval_name and r["calibration"] != DENSE]
        return min(rows, key=lambda r: r["perplexity"])["calibration"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pruner": self.pruner,
            "rows": self.rows,
            "reports": self.reports,
            "eval_tokens": self.eval_tokens,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_json(path, self.to_dict())

    def to_markdown(self) -> str:
        """Calibration sets as rows, evaluation sets as columns (perplexity, lower is better)."""
        evals = self.evals
        head = "| calibration | " + " | ".join(f"PPL {e}" for e in evals) + " | prune time (s) |"
        lines = [head, "|---|" + "---:|" * (len(evals) + 1)]
        for c in self.calibrations:
            rows = {r["eval"]: r for r in self.rows if r["calibration"] == c}
            t = next(iter(rows.values()))["prune_time_s"]
            cells = [f"{rows[e]['perplexity']:.2f}" if e in rows else "" for e in evals]
            lines.append(
                f"| {c} | " + " | ".join(cells) + f" | {'' if t is None else f'{t:.1f}'} |"
            )
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
        """Grouped bar chart (one group per evaluation set, one bar per calibration set, bars from
        zero with their values), PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        evals, calibs = self.evals, self.calibrations
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(evals) * len(calibs) / 2), 3.6))
        width = 0.8 / max(len(calibs), 1)
        x = np.arange(len(evals))
        for i, c in enumerate(calibs):
            vals = [
                next(
                    (
                        r["perplexity"]
                        for r in self.rows
                        if r["calibration"] == c and r["eval"] == e
                    ),
                    np.nan,
                )
                for e in evals
            ]
            bars = ax.bar(x + (i - (len(calibs) - 1) / 2) * width, vals, width, label=c)
            ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
        ax.set_xticks(x)
        ax.set_xticklabels(evals)
        # bars from zero on a linear axis, each labelled: a log axis that starts near the dense
        # value exaggerates small gaps between calibration sets
        ax.set_ylabel("perplexity (lower is better)")
        ax.set_ylim(0, 1.15 * np.nanmax([r["perplexity"] for r in self.rows] or [1.0]))
        ax.set_title(title or f"{self.pruner}: perplexity by calibration set")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = Path(path)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)
        return out


def compare_calibration(
    model: Any,
    pruner: ModelPruner,
    calibration_sets: Mapping[str, Any],
    eval_texts: Mapping[str, Sequence[str]] | Sequence[str],
    *,
    tokenizer: Any = None,
    seq_len: int = 512,
    max_eval_tokens: int | None = None,
    include_dense: bool = True,
    plot_path: str | os.PathLike[str] | None = None,
    batch_size: int = 4,
    show_progress_bar: bool | None = None,
) -> CalibrationComparison:
    """Prune ``model`` from each calibration set in turn and measure held-out perplexity.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Restored to its dense weights after every run (and at the end).
    pruner : ModelPruner
        E.g. ``WandaPruner(sparsity=0.5)``; a data-free pruner can be run with a ``None`` set.
    calibration_sets : mapping of str to CalibrationSet
        Named calibration sets (``{"random": ..., "kcenter": ..., "gsm8k": ...}``).
    eval_texts : mapping of str to sequence of str, or sequence of str
        Held-out texts (one or several named evaluation sets).
    tokenizer : tokenizer, optional
        For the evaluation texts; defaults to the first calibration set's tokenizer.
    seq_len : int, default=512
        Evaluation window.
    max_eval_tokens : int, optional
        Fixed token budget per evaluation set.
    include_dense : bool, default=True
        Also measure the unpruned model (row ``"dense"``; ratios are against it).
    plot_path : path, optional
        Write the bar chart there.

    Returns
    -------
    CalibrationComparison
    """
    import torch

    if not calibration_sets:
        raise DataValidationError("give at least one calibration set")
    if tokenizer is None:
        tokenizer = next(
            (c.tokenizer for c in calibration_sets.values() if getattr(c, "tokenizer", None)), None
        )
    if tokenizer is None:
        raise DataValidationError("pass tokenizer= (no calibration set carries one)")
    if isinstance(eval_texts, Mapping):
        named = dict(eval_texts)
    else:
        named = {"eval": list(eval_texts)}
    if not named:
        raise DataValidationError("give at least one evaluation text set")
    ids = {
        k: tokenize_eval_texts(tokenizer, v, max_tokens=max_eval_tokens) for k, v in named.items()
    }
    dense_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def evaluate(label: str, report: Any) -> list[dict[str, Any]]:
        out = []
        for e, toks in ids.items():
            res = perplexity_of_ids(
                model,
                toks,
                seq_len=seq_len,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
            )
            out.append(
                {
                    "calibration": label,
                    "eval": e,
                    "perplexity": res.perplexity,
                    "mean_nll": res.mean_nll,
                    "n_tokens": res.n_tokens,
                    "prune_time_s": None if report is None else report.time_s,
                    "sparsity": None if report is None else report.total_sparsity,
                    "n_calibration_samples": None
                    if report is None
                    else report.n_calibration_samples,
                    "n_calibration_tokens": None if report is None else report.n_calibration_tokens,
                }
            )
            logger.info("%s on %s: perplexity %.3f", label, e, res.perplexity)
        return out

    rows: list[dict[str, Any]] = []
    reports: dict[str, dict[str, Any]] = {}
    try:
        if include_dense:
            rows += evaluate(DENSE, None)
        for label, calib in calibration_sets.items():
            if label == DENSE:
                raise DataValidationError(f"{DENSE!r} is reserved for the unpruned model")
            with torch.no_grad():
                model.load_state_dict(dense_state)
            report = pruner.prune(model, calib)
            reports[label] = report.to_dict()
            rows += evaluate(label, report)
    finally:
        with torch.no_grad():
            model.load_state_dict(dense_state)
    if include_dense:
        base = {r["eval"]: r["perplexity"] for r in rows if r["calibration"] == DENSE}
        for r in rows:
            r["ratio_vs_dense"] = r["perplexity"] / base[r["eval"]]
    result = CalibrationComparison(
        rows,
        reports,
        {k: len(v) for k, v in ids.items()},
        getattr(pruner, "name", type(pruner).__name__),
    )
    if plot_path is not None:
        result.plot(plot_path)
    return result
