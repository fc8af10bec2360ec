"""The Provence-compatible entry point :meth:`dataprune.rag.ContextPruner.process`.

Same inputs and outputs as the ``process`` method of the Provence remote-code models
(``pruned_context``, ``reranking_score``, ``compression_rate``), driven by dataprune's own
scoring and selection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dataprune.errors import DataValidationError
from dataprune.rag.selection import select_passages

if TYPE_CHECKING:
    from dataprune.rag.pruner import ContextPruner

logger = logging.getLogger(__name__)

__all__ = ["provence_process"]


def provence_process(
    pruner: ContextPruner,
    question: str | Sequence[str],
    context: str | Sequence[str] | Sequence[Sequence[str]],
    title: str | Sequence[Sequence[str]] | None = "first_sentence",
    *,
    threshold: float | None = None,
    always_select_title: bool = False,
    batch_size: int | None = None,
    reorder: bool = False,
    top_k: int = 5,
    enable_warnings: bool = True,
) -> dict[str, Any]:
    """Body of :meth:`dataprune.rag.ContextPruner.process` ; see there."""
    single_q = isinstance(question, str)
    if single_q:
        if isinstance(context, str):
            shape, ctx = "scalar", [[context]]
        else:
            shape, ctx = "list", [list(context)]
        qs = [question]
    else:
        shape, qs = "nested", list(question)
        if isinstance(context, str) or any(isinstance(c, str) for c in context):
            raise DataValidationError(
                "with a list of questions, context must be a list of lists of strings "
                "(context[i] = the contexts of question[i])"
            )
        ctx = [list(c) for c in context]
    titles: list[list[str]] | None = None
    if title is not None and title != "first_sentence":
        if isinstance(title, str):
            raise DataValidationError(
                "title must be 'first_sentence', None, or a list of lists of strings"
            )
        titles = [list(t) for t in title]
        if [len(t) for t in titles] != [len(c) for c in ctx]:
            raise DataValidationError("title must have the same list-of-lists shape as context")
        ctx = [[f"{t}\n{c}" if t else c for t, c in zip(tr, cr)] for tr, cr in zip(titles, ctx)]
    threshold = pruner._check_options(threshold, "mean_prob")
    use_title_rule = always_select_title and title is not None
    old_bs = pruner.batch_size
    if batch_size is not None:
        pruner.batch_size = batch_size
    try:
        queries, ctx = pruner._check_batch(qs, ctx)
        scores = pruner.score(queries, ctx)
    finally:
        pruner.batch_size = old_bs
    pruned_all, rank_all, comp_all = [], [], []
    for ps, sc in zip(ctx, scores):
        res = select_passages(ps, sc, threshold=threshold, always_select_title=use_title_rule)
        if enable_warnings and any(s.n_windows > 1 for s in sc):
            logger.warning(
                "%d context(s) longer than one %d-token window were split at sentence boundaries",
                sum(s.n_windows > 1 for s in sc),
                pruner.max_length,
            )
        texts = [r.text for r in res]
        ranks = [float(s.passage_logit) for s in sc]
        comps = [100.0 * r.compression_chars for r in res]
        if reorder:
            order = sorted(range(len(res)), key=lambda j: -ranks[j])[:top_k]
            texts = [texts[j] for j in order]
            ranks = [ranks[j] for j in order]
            comps = [comps[j] for j in order]
        pruned_all.append(texts)
        rank_all.append(ranks)
        comp_all.append(comps)
    if shape == "scalar":
        return {
            "pruned_context": pruned_all[0][0],
            "reranking_score": rank_all[0][0],
            "compression_rate": comp_all[0][0],
        }
    if shape == "list":
        return {
            "pruned_context": pruned_all[0],
            "reranking_score": rank_all[0],
            "compression_rate": comp_all[0],
        }
    return {
        "pruned_context": pruned_all,
        "reranking_score": rank_all,
        "compression_rate": comp_all,
    }
