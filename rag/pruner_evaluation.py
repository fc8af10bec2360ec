"""Does the pruner help on *your* passages? Evidence recall and compression of a pruner against
the simple filters a user would otherwise reach for, at matched compression, on labelled data.

>>> from dataprune.rag import ContextPruner
>>> from dataprune.rag.labelled import examples_from_records
>>> from dataprune.rag.pruner_evaluation import evaluate_pruner, evaluation_lines
>>> examples = examples_from_records(queries, passages, evidence)
>>> report = evaluate_pruner(ContextPruner.from_pretrained("default"), examples)
>>> print("\\n".join(evaluation_lines(report)))

The pruner is scored once; its setting (``threshold``) is measured on the evidence-bearing
passages (recall = evidence sentences kept / evidence sentences; compression = characters
removed / characters) and on all passages (compression). Each baseline (BM25, or embedding
cosine as LangChain's ``EmbeddingsFilter`` does) is swept over global thresholds and read at the
pruner's compression (:func:`~dataprune.rag.comparison.compare_at_threshold`), with a paired
bootstrap interval over passages. Every sentence :func:`evaluation_lines` prints is computed
from the report's numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.rag.comparison import (
    compare_at_threshold,
    passage_stats,
    score_sweep,
    summed_metrics,
    threshold_masks,
)
from dataprune.rag.evaluation import pruning_metrics
from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT, check_passage_weight
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["BASELINES", "evaluate_pruner", "evaluation_lines"]

#: Sentence filters the pruner is compared with: ``name(queries, sentence_texts, encoder)`` ->
#: one score array per passage (higher = keep).
BASELINES: Registry[Callable[..., list[np.ndarray]]] = Registry("baseline")


@BASELINES.register("bm25")
def _bm25(queries: Sequence[str], texts: Sequence[Sequence[str]], encoder: Any) -> list:
    from dataprune.rag.baselines import bm25_scores

    return bm25_scores(queries, texts)


@BASELINES.register("embedding")
def _embedding(queries: Sequence[str], texts: Sequence[Sequence[str]], encoder: Any) -> list:
    from dataprune.rag.baselines import embedding_scores

    return embedding_scores(queries, texts, encoder=encoder)


def _score(
    pruner: Any, examples: Sequence[Any], show_progress_bar: bool | None, passage_weight: float
) -> list[Any]:
    """The pruner's threshold-free scores, one per example, scored query by query and weighted
    over each query's passages (:mod:`dataprune.rag.passage_weight`)."""
    from dataprune.rag.grouping import per_query
    from dataprune.rag.passage_weight import weight_by_passage

    def score_weighted(queries: list[str], passages: list[list[str]], **kw: Any) -> list[Any]:
        return [
            weight_by_passage(sc, passage_weight) for sc in pruner.score(queries, passages, **kw)
        ]

    return per_query(
        score_weighted,
        [e.query for e in examples],
        [e.passage for e in examples],
        show_progress_bar=show_progress_bar,
    )


def evaluate_pruner(
    pruner: Any,
    examples: Sequence[Any],
    *,
    threshold: float | None = None,
    passage_weight: float = DEFAULT_PASSAGE_WEIGHT,
    baselines: Sequence[str] = ("bm25", "embedding"),
    encoder: Any = None,
    target_compression: float = 0.6,
    n_boot: int = 1000,
    random_state: int = 0,
    show_progress_bar: bool | None = None,
) -> dict[str, Any]:
    """Evidence recall and compression of ``pruner`` against baselines at matched compression.

    Parameters
    ----------
    pruner : ContextPruner
    examples : sequence of PruningExample
        Labelled passages (:func:`~dataprune.rag.labelled.examples_from_records`); at least one
        must hold evidence.
    threshold : float, optional
        The pruner's keep threshold (default: its checkpoint's ``default_threshold``).
    passage_weight : float, default=DEFAULT_PASSAGE_WEIGHT
        As in :meth:`~dataprune.rag.ContextPruner.prune`, over each query's passages (records
        with the same query): evaluate once with 0 and once with a weight to see whether it
        helps on your passages.
    baselines : sequence of str, default=("bm25", "embedding")
        Names in :data:`BASELINES`.
    encoder : optional
        Sentence encoder of the embedding baseline (default: all-MiniLM-L6-v2).
    target_compression : float, default=0.6
        The share of characters a user wants removed: the report gives the best recall each
        method reaches while removing at least this much, and the pruner's threshold for it.
    n_boot : int, default=1000
        Paired bootstrap resamples over passages.
    random_state : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``threshold``, counts, ``evidence_passages`` (recall, f2, compression at the threshold;
        higher recall and compression are better), ``all_passages``, ``evidence_retention``
        (share of evidence-bearing passages whose kept text still holds one of their evidence
        strings whole; with spans only, one of their evidence sentences), ``oracle_compression``
        (keeping exactly the evidence), ``against`` (per baseline: recall at the pruner's
        compression, ``delta_recall`` = pruner - baseline and its 95% interval), the best
        recalls at ``target_compression`` and ``threshold_for_target``.
    """
    from dataprune.rag.selection import check_threshold

    if not examples:
        raise DataValidationError("no passages to evaluate; expected at least one record")
    names = [b.lower() for b in baselines]
    fns = {n: BASELINES.get(n) for n in names}
    if not 0.0 < float(target_compression) < 1.0:
        raise DataValidationError(f"target_compression must be in (0, 1), got {target_compression}")
    if int(n_boot) < 100:
        raise DataValidationError(f"n_boot must be >= 100, got {n_boot}")
    threshold = pruner.default_threshold if threshold is None else check_threshold(threshold)
    passage_weight = check_passage_weight(passage_weight)
    bearing = [i for i, e in enumerate(examples) if e.has_answer]
    if not bearing:
        raise DataValidationError(
            "no passage holds evidence; give evidence for at least one passage (the recall of "
            "evidence is what is measured)"
        )
    scores = _score(pruner, examples, show_progress_bar, passage_weight)
    sub = [examples[i] for i in bearing]
    texts = [[s.text for s in e.sentences] for e in examples]
    queries = [e.query for e in examples]
    others = {}
    for name, fn in fns.items():
        sc = fn(queries, texts, encoder)
        others[name] = score_sweep([sc[i] for i in bearing])
    report = compare_at_threshold(
        sub,
        [scores[i] for i in bearing],
        threshold,
        others,
        target_compression=target_compression,
        n_boot=int(n_boot),
        seed=int(random_state),
    )
    curve = report.pop("curve")
    reaching = [r for r in curve if r["compression"] >= target_compression]
    best = max(reaching, key=lambda r: (r["recall"], -r["param"]), default=None)
    oracle = summed_metrics(passage_stats(sub, [np.asarray(e.labels, bool) for e in sub]))
    masks = threshold_masks(scores, threshold)
    retention = pruning_metrics(examples, masks)["answer_retention"]
    return {
        "threshold": float(threshold),
        "passage_weight": passage_weight,
        "n_passages": len(examples),
        "n_queries": len({e.query for e in examples}),
        "n_evidence_passages": len(bearing),
        "n_evidence_sentences": int(sum(sum(e.labels) for e in sub)),
        "evidence_passages": report["default"],
        "all_passages": summed_metrics(passage_stats(examples, masks)),
        "evidence_retention": retention,
        "oracle_compression": oracle["compression"],
        "against": report["against"],
        "target_compression": float(target_compression),
        "best_recall_at_target_compression": report["best_recall_at_target_compression"],
        "threshold_for_target": None if best is None else best["param"],
        "n_boot": int(n_boot),
        "random_state": int(random_state),
    }


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def evaluation_lines(report: dict[str, Any]) -> list[str]:
    """A plain-text account of :func:`evaluate_pruner`'s report, every statement computed."""
    ev, al = report["evidence_passages"], report["all_passages"]
    lines = [
        f"{report['n_passages']} passages for {report['n_queries']} queries; "
        f"{report['n_evidence_passages']} hold evidence ({report['n_evidence_sentences']} "
        f"evidence sentences)",
        f"pruner at threshold {report['threshold']:g}"
        + (f", passage weight {report['passage_weight']:g}" if report.get("passage_weight") else "")
        + f": keeps {_pct(ev['recall'])} of the evidence "
        f"sentences, removes {_pct(ev['compression'])} of the characters of evidence-bearing "
        f"passages and {_pct(al['compression'])} of all passages' characters (keeping exactly "
        f"the evidence would remove {_pct(report['oracle_compression'])}); in "
        f"{_pct(report['evidence_retention'])} of the evidence-bearing passages the kept text "
        "still holds an evidence string whole",
    ]
    for name, r in report["against"].items():
        ci = r["ci95_recall"]
        lo, hi = ci["lo"], ci["hi"]
        if r["recall"] != r["recall"]:
            verdict = (
                f"{name} cannot reach the pruner's compression with one global threshold; "
                "no matched comparison"
            )
        else:
            if lo > 0:
                word = "higher than"
            elif hi < 0:
                word = "lower than"
            else:
                word = "not significantly different from"
            verdict = (
                f"at the same compression {name} keeps {_pct(r['recall'])} of the evidence: the "
                f"pruner's recall is {word} {name}'s ({100 * r['delta_recall']:+.1f} points, 95% "
                f"CI {100 * lo:+.1f} to {100 * hi:+.1f}, {report['n_boot']} paired resamples)"
            )
        lines.append(verdict)
    t = report["target_compression"]
    best = report["best_recall_at_target_compression"]
    if report["threshold_for_target"] is None:
        lines.append(f"no threshold of the sweep removes {_pct(t)} of the characters")
    else:
        others = "; ".join(
            f"{name} {_pct(r['best_recall_at_target_compression'])}"
            for name, r in report["against"].items()
        )
        lines.append(
            f"removing at least {_pct(t)}: the pruner keeps at most {_pct(best)} of the evidence "
            f"(threshold {report['threshold_for_target']:g})" + (f"; {others}" if others else "")
        )
    return lines
