"""Leave-one-dataset-out part of ``benchmarks/rag_pruning.py``.

Each ``benchmarks/.cache/rag_models/lodo-<set>`` model (``benchmarks/rag_training.py``: the
shipped recipe with one whole dataset left out of training) is evaluated on the set it never
saw, at its own default threshold (calibrated on its own validation split):

* every evidence-bearing passage scored alone, against the BM25 sentence filter at the same
  compression (paired bootstrap over passages), as for the shipped model's single-hop sets;
* for the multi-hop sets (HotpotQA, MuSiQue) also every question's passages pruned together
  (gold and distractors; the issue's multi-hop setting), against BM25 and, where the shipped
  model never saw the questions (MuSiQue's held-out sample), the shipped model trained on that
  dataset (paired bootstrap over questions).

A model that is not on this machine keeps the row of an earlier run (``--lodo-from``), which then
names the run and the recipe it came from.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from benchmarks.rag_eval_sets import (
    LODO_SETS,
    MODELS_DIR,
    eval_examples,
    group_by_question,
    pruner_recipe,
    question_stats,
    score_examples,
)
from dataprune.rag.comparison import (
    THRESHOLD_GRID,
    best_recall,
    compare_at_threshold,
    metric_curve,
    paired_bootstrap,
    pruner_sweep,
    score_sweep,
    summed_metrics,
    threshold_masks,
    value_at_compression,
)

logger = logging.getLogger("benchmarks.rag_pruning")

__all__ = ["lodo_report"]

#: Multi-hop sets among :data:`LODO_SETS` (each question comes with gold and distractor passages).
MULTI_HOP_LODO = ("hotpotqa", "musique")
#: Sets whose LODO evaluation questions the shipped model never trained on (so it can be compared).
SHIPPED_UNSEEN = ("musique",)


def _grouped(
    examples: list[Any],
    scores: list[Any],
    threshold: float,
    others: dict[str, tuple[list[list[np.ndarray]], list[float]]],
    *,
    target_compression: float,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Each question's passages pruned together: recall of its supporting sentences and the share
    of all its passages' characters removed; ``others`` matched at our compression (bootstrap
    over questions)."""
    groups = group_by_question(examples)
    where = {id(e): i for i, e in enumerate(examples)}

    def by_question(flat: list[Any]) -> list[list[Any]]:
        return [[flat[where[id(e)]] for e in g] for g in groups]

    def stats(masks: list[np.ndarray]) -> np.ndarray:
        return question_stats(groups, by_question(masks))

    st = stats(threshold_masks(scores, threshold))
    curve = metric_curve(
        [stats(threshold_masks(scores, t)) for t in THRESHOLD_GRID], THRESHOLD_GRID
    )
    at = summed_metrics(st)
    other_stats = {name: [stats(m) for m in masks] for name, (masks, _) in others.items()}
    boot = paired_bootstrap({threshold: st}, other_stats, n_boot=n_boot, seed=seed)[threshold]
    against = {}
    for name, (_masks, params) in others.items():
        c = metric_curve(other_stats[name], params)
        r = value_at_compression(c, at["compression"], "recall")
        against[name] = {
            "recall": r,
            "delta_recall": at["recall"] - r,
            "ci95_recall": boot[name]["recall"],
            "best_recall_at_target_compression": best_recall(c, target_compression),
        }
    return {
        "n_questions": len(groups),
        "n_passages": len(examples),
        "default": at,
        "best_recall_at_target_compression": best_recall(curve, target_compression),
        "against": against,
    }


def lodo_report(
    shipped: Any,
    *,
    targets: dict[str, dict[str, float]],
    max_passages: int | None,
    n_boot: int,
    seed: int,
    earlier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Each leave-one-dataset-out model on the set it never saw.

    Parameters
    ----------
    shipped : ContextPruner
        The shipped pruner, compared on the multi-hop questions it never saw.
    targets : dict
        ``{"single_hop": {...}, "multi_hop": {...}}`` (the compressions best recalls are read at).
    earlier : dict, optional
        An earlier run's results: rows of models not on this machine are taken from it, each
        with ``carried_from`` (that run's command) and its recipe.

    Returns
    -------
    dict
        One row per left-out set, in :data:`LODO_SETS` order.
    """
    from dataprune.rag import baselines as bl
    from dataprune.rag.pruner import ContextPruner

    out: dict[str, Any] = {}
    for name in LODO_SETS:
        path = MODELS_DIR / f"lodo-{name}"
        if not (path / "card.json").is_file():
            row = _carried(name, earlier)
            if row is None:
                logger.warning("no model %s: run benchmarks/rag_training.py first", path)
            else:
                out[name] = row
            continue
        pruner = ContextPruner.from_pretrained(path)
        examples = eval_examples(name, pruner, max_passages=max_passages, seed=seed, lodo=True)
        scores, _ = score_examples(pruner, examples)
        bearing = [i for i, e in enumerate(examples) if e.has_answer]
        sub = [examples[i] for i in bearing]
        texts = [[s.text for s in e.sentences] for e in sub]
        bm = bl.bm25_scores([e.query for e in sub], texts)
        rep = compare_at_threshold(
            sub,
            [scores[i] for i in bearing],
            pruner.default_threshold,
            {"bm25": score_sweep(bm)},
            target_compression=targets["single_hop"]["compression"],
            thresholds=THRESHOLD_GRID,
            n_boot=n_boot,
            seed=seed,
        )
        rep.pop("curve")
        rep["threshold"] = pruner.default_threshold
        rep["training_sets"] = ((pruner.meta or {}).get("card") or {}).get("training_sets")
        rep["recipe"] = pruner_recipe(pruner)
        if name in MULTI_HOP_LODO:
            all_texts = [[s.text for s in e.sentences] for e in examples]
            others = {"bm25": score_sweep(bl.bm25_scores([e.query for e in examples], all_texts))}
            if name in SHIPPED_UNSEEN:
                theirs, _ = score_examples(shipped, examples)
                others["shipped"] = pruner_sweep(theirs)
            rep["questions"] = _grouped(
                examples,
                scores,
                pruner.default_threshold,
                others,
                target_compression=targets["multi_hop"]["compression"],
                n_boot=n_boot,
                seed=seed,
            )
        out[name] = rep
        logger.info("lodo %s: %s", name, {k: round(v, 3) for k, v in rep["default"].items()})
    return out


def _carried(name: str, earlier: dict[str, Any] | None) -> dict[str, Any] | None:
    """The row of ``name`` in an earlier run, marked with where it came from."""
    if not earlier or name not in (earlier.get("lodo") or {}):
        return None
    row = dict(earlier["lodo"][name])
    if "carried_from" not in row:  # a row carried twice keeps the run it was computed in
        src = earlier.get("lodo_source") or {}
        row["carried_from"] = src.get("command") or earlier["command"]
        # rows written before each recorded its recipe share the section's
        row.setdefault("recipe", src.get("recipe") or earlier.get("model_recipe"))
    return row
