"""Pruning quality against sentence labels (no LLM needed).

Metrics (all computed from boolean keep masks, one per labelled passage):

* ``recall``: kept gold sentences / gold sentences, over passages that hold the answer (micro);
* ``precision``: kept gold sentences / kept sentences, over ALL passages (sentences kept from
  passages without the answer count as false positives);
* ``f2``: F-beta with beta = 2 (recall weighs 4x precision: losing evidence costs more);
* ``compression`` (chars): share of characters removed, over all passages, and separately over
  passages with / without the answer; ``compression_tokens`` the same in tokens when token counts
  are given;
* ``answer_retention``: share of answerable passages whose pruned text still contains a gold
  answer string;
* ``empty_rate_answerable``: share of answerable passages pruned to nothing;
* ``empty_rate_no_answer``: share of passages without the answer pruned to nothing (higher =
  better filtering);
* ``passage_auc`` (when passage scores are given): ROC-AUC of the passage score for "holds the
  answer".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["f_beta", "pruning_metrics", "sentence_average_precision"]


def f_beta(precision: float, recall: float, beta: float = 2.0) -> float:
    b2 = beta * beta
    den = b2 * precision + recall
    return float((1 + b2) * precision * recall / den) if den > 0 else 0.0


def _kept_text(passage: str, sentences: Sequence[Any], keep: np.ndarray) -> str:
    return " ".join(passage[s.start : s.end] for s, k in zip(sentences, keep) if k)


def pruning_metrics(
    examples: Sequence[Any],
    masks: Sequence[np.ndarray],
    *,
    token_counts: Sequence[np.ndarray] | None = None,
    passage_scores: Sequence[float] | None = None,
) -> dict[str, float]:
    """Metrics of keep ``masks`` (one boolean array per example) against example labels.

    Parameters
    ----------
    examples : sequence of PruningExample
        ``n_passages`` labelled passages (``sentences``, ``labels``, ``answers``, ``passage``).
    masks : sequence of numpy.ndarray
        ``masks[i]`` has shape ``(n_sentences_i,)``; True = kept.
    token_counts : sequence of numpy.ndarray, optional
        Tokens per sentence, for token-level compression.
    passage_scores : sequence of float, optional
        Passage relevance (higher = more relevant), for ``passage_auc``.

    Returns
    -------
    dict
        See the module docstring.
    """
    if len(examples) != len(masks):
        raise ValueError(f"{len(examples)} examples but {len(masks)} masks")
    tp = fn = kept_total = 0
    chars = {"all": [0, 0], "with": [0, 0], "without": [0, 0]}
    toks = {"all": [0, 0], "with": [0, 0], "without": [0, 0]}
    n_ans = retained = empty_ans = n_no = empty_no = 0
    for i, (ex, m) in enumerate(zip(examples, masks)):
        m = np.asarray(m, dtype=bool)
        y = np.asarray(ex.labels, dtype=bool)
        if m.shape != y.shape:
            raise ValueError(f"example {i}: mask shape {m.shape} != labels shape {y.shape}")
        lens = np.array([s.end - s.start for s in ex.sentences], dtype=np.int64)
        has = bool(y.any())
        group = "with" if has else "without"
        kept_c, tot_c = int(lens[m].sum()), int(lens.sum())
        for g in ("all", group):
            chars[g][0] += kept_c
            chars[g][1] += tot_c
        if token_counts is not None:
            tc = np.asarray(token_counts[i])
            for g in ("all", group):
                toks[g][0] += int(tc[m].sum())
                toks[g][1] += int(tc.sum())
        kept_total += int(m.sum())
        if has:
            n_ans += 1
            tp += int((m & y).sum())
            fn += int((~m & y).sum())
            empty_ans += not m.any()
            if ex.answers:
                text = _kept_text(ex.passage, ex.sentences, m).lower()
                retained += any(a.lower() in text for a in ex.answers)
            else:
                retained += bool((m & y).any())
        else:
            n_no += 1
            empty_no += not m.any()
    recall = tp / (tp + fn) if tp + fn else float("nan")
    precision = tp / kept_total if kept_total else 0.0
    out = {
        "n_passages": len(examples),
        "n_answerable": n_ans,
        "recall": recall,
        "precision": precision,
        "f2": f_beta(precision, recall) if n_ans else float("nan"),
        "compression": _comp(chars["all"]),
        "compression_with_answer": _comp(chars["with"]),
        "compression_without_answer": _comp(chars["without"]),
        "answer_retention": retained / n_ans if n_ans else float("nan"),
        "empty_rate_answerable": empty_ans / n_ans if n_ans else float("nan"),
        "empty_rate_no_answer": empty_no / n_no if n_no else float("nan"),
        "kept_sentence_rate": kept_total / max(1, sum(len(ex.labels) for ex in examples)),
    }
    if token_counts is not None:
        out["compression_tokens"] = _comp(toks["all"])
        out["compression_tokens_with_answer"] = _comp(toks["with"])
        out["compression_tokens_without_answer"] = _comp(toks["without"])
    if passage_scores is not None:
        from sklearn.metrics import roc_auc_score

        y_p = [ex.has_answer for ex in examples]
        out["passage_auc"] = (
            float(roc_auc_score(y_p, list(passage_scores)))
            if 0 < sum(y_p) < len(y_p)
            else float("nan")
        )
    return out


def _comp(pair: list[int]) -> float:
    kept, total = pair
    return 1.0 - kept / total if total else float("nan")


def sentence_average_precision(examples: Sequence[Any], scores: Sequence[np.ndarray]) -> float:
    """Average precision of sentence scores for "relevant" over all sentences (threshold-free)."""
    from sklearn.metrics import average_precision_score

    y = np.concatenate([np.asarray(ex.labels) for ex in examples])
    s = np.concatenate([np.asarray(x, dtype=np.float64) for x in scores])
    return float(average_precision_score(y, s)) if 0 < y.sum() < y.size else float("nan")
