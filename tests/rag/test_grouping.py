from __future__ import annotations

import pytest

from dataprune.rag.grouping import per_query


def test_rows_grouped_by_query_and_returned_in_row_order():
    calls = []

    def batch(queries, passages, *, tag):
        calls.append((list(queries), [list(p) for p in passages], tag))
        return [[f"{q}:{p}" for p in ps] for q, ps in zip(queries, passages)]

    qs = ["b", "a", "b", "c", "a"]
    ps = ["p0", "p1", "p2", "p3", "p4"]
    out = per_query(batch, qs, ps, tag=1)
    assert out == ["b:p0", "a:p1", "b:p2", "c:p3", "a:p4"]
    # one call, queries in first-seen order, each group's rows in their order
    assert calls == [(["b", "a", "c"], [["p0", "p2"], ["p1", "p4"], ["p3"]], 1)]


def test_length_mismatch_and_short_results_are_errors():
    with pytest.raises(ValueError, match="2 queries for 1 passages"):
        per_query(lambda q, p: [], ["a", "b"], ["x"])
    with pytest.raises(ValueError):  # a batch function that drops a row is never silently padded
        per_query(lambda q, p: [[1]], ["a", "a"], ["x", "y"])
