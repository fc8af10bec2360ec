"""Flat (query, passage) records to the pruner's per-query nesting and back.

The pruner's batch methods take one list of passages per query (the second pass extends a query
with the best sentences of *its* passages), while records on disk and labelled examples are flat:
one passage per row, each with its query. :func:`per_query` groups the rows by query (first-seen
order), calls the batch method once, and returns its results in row order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["per_query"]


def per_query(
    batch_fn: Callable[..., Sequence[Sequence[Any]]],
    queries: Sequence[str],
    passages: Sequence[str],
    **kwargs: Any,
) -> list[Any]:
    """Call ``batch_fn(unique_queries, passages_per_query, **kwargs)`` on flat rows.

    Parameters
    ----------
    batch_fn : callable
        A nested batch method such as :meth:`ContextPruner.prune_batch` or
        :meth:`ContextPruner.score`: ``(queries (n_q,), passages (n_q, *)) -> nested results``.
    queries, passages : sequence of str
        Shape ``(n_rows,)`` each: row ``i`` is passage ``passages[i]`` retrieved for
        ``queries[i]``. Rows with an identical query string form one group, in the order their
        query first appears; inside a group the rows keep their order.
    **kwargs
        Passed to ``batch_fn``.

    Returns
    -------
    list
        Shape ``(n_rows,)``: the result of row ``i`` at position ``i``.
    """
    if len(queries) != len(passages):
        raise ValueError(f"{len(queries)} queries for {len(passages)} passages")
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        groups.setdefault(q, []).append(i)
    nested = batch_fn(
        list(groups), [[passages[i] for i in idx] for idx in groups.values()], **kwargs
    )
    out: list[Any] = [None] * len(queries)
    for idx, row in zip(groups.values(), nested):
        for i, r in zip(idx, row, strict=True):
            out[i] = r
    return out
