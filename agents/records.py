"""AGP Stage I records: ``{"task": str, "edge_weight": N x N floats, "mask": N ints}``.

In AGP's released files ``mask[i] = 1`` means agent ``i`` is PRUNED and ``edge_weight`` holds edge
keep-probabilities (soft labels), not a 0/1 adjacency. Extra keys (``score``, ``tokens``,
``query_type`` written by :func:`~dataprune.agents.mining.mine_subgraphs`) are allowed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["AGPRecords", "load_agp_records", "validate_agp_record", "validate_agp_records"]


@dataclass(frozen=True)
class AGPRecords:
    """Validated records as arrays.

    Attributes
    ----------
    tasks : list of str, length n_records
    edge_weight : ndarray of shape (n_records, n_agents, n_agents), float32 in [0, 1]
    keep : ndarray of shape (n_records, n_agents), float32; 1 = the agent runs (``1 - mask``)
    source : str
    """

    tasks: list[str]
    edge_weight: np.ndarray
    keep: np.ndarray
    source: str = "<records>"

    @property
    def n_agents(self) -> int:
        return int(self.keep.shape[1])

    def __len__(self) -> int:
        return len(self.tasks)

    def subset(self, idx: Sequence[int] | np.ndarray) -> AGPRecords:
        idx = np.asarray(idx, dtype=np.int64)
        return AGPRecords(
            [self.tasks[i] for i in idx], self.edge_weight[idx], self.keep[idx], self.source
        )


def validate_agp_record(
    record: Any, *, n_agents: int | None = None, index: int | None = None, source: str | None = None
) -> tuple[str, np.ndarray, np.ndarray]:
    """Check one record; return ``(task, edge_weight (N, N), mask (N,))``.

    Raises
    ------
    DataValidationError
        Naming the record and field: missing keys, non-string task, ragged or non-square
        ``edge_weight``, values outside [0, 1] or not finite, ``mask`` entries other than 0/1,
        sizes that disagree with each other or with ``n_agents``.
    """

    def err(msg: str, field: str | None = None) -> DataValidationError:
        return DataValidationError(msg, source=source, record=index, field=field)

    if not isinstance(record, Mapping):
        raise err(f"expected a JSON object with task/edge_weight/mask, got {type(record).__name__}")
    for key in ("task", "edge_weight", "mask"):
        if key not in record:
            raise err("missing field (AGP records need task, edge_weight and mask)", key)
    task = record["task"]
    if not isinstance(task, str) or not task.strip():
        raise err(f"expected a non-empty string, got {type(task).__name__}", "task")
    mask = record["mask"]
    if not isinstance(mask, Sequence) or isinstance(mask, (str, bytes)) or not mask:
        raise err("expected a non-empty list of 0/1 (1 = agent pruned)", "mask")
    m = np.empty(len(mask), dtype=np.int64)
    for i, v in enumerate(mask):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v not in (0, 1):
            raise err(f"entry {i} is {v!r}; expected 0 (agent runs) or 1 (agent pruned)", "mask")
        m[i] = int(v)
    n = len(m)
    if n_agents is not None and n != n_agents:
        raise err(f"has {n} agents but the agent pool has {n_agents}", "mask")
    ew = record["edge_weight"]
    if not isinstance(ew, Sequence) or isinstance(ew, (str, bytes)) or len(ew) != n:
        raise err(
            f"expected a list of {n} lists of {n} edge probabilities (n = len(mask))", "edge_weight"
        )
    E = np.empty((n, n), dtype=np.float64)
    for i, row in enumerate(ew):
        if not isinstance(row, Sequence) or isinstance(row, (str, bytes)) or len(row) != n:
            raise err(f"row {i} is not a list of {n} numbers", "edge_weight")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise err(f"entry [{i}][{j}] is {v!r}; expected a finite number", "edge_weight")
            if not 0.0 <= v <= 1.0:
                raise err(f"entry [{i}][{j}] = {v} is outside [0, 1]", "edge_weight")
            E[i, j] = v
    return task, E, m


def validate_agp_records(
    records: Sequence[Any], *, n_agents: int | None = None, source: str = "<records>"
) -> AGPRecords:
    """Validate a list of records (all with the same agent count) into :class:`AGPRecords`."""
    if isinstance(records, AGPRecords):
        if n_agents is not None and records.n_agents != n_agents:
            raise DataValidationError(
                f"records have {records.n_agents} agents but the agent pool has {n_agents}",
                source=records.source,
            )
        return records
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise DataValidationError(
            f"expected a list of AGP records, got {type(records).__name__}", source=source
        )
    if not records:
        raise DataValidationError("no records; expected at least one AGP record", source=source)
    tasks, Es, Ms = [], [], []
    for i, r in enumerate(records):
        t, E, m = validate_agp_record(r, n_agents=n_agents, index=i, source=source)
        n_agents = len(m)
        tasks.append(t)
        Es.append(E)
        Ms.append(m)
    return AGPRecords(
        tasks,
        np.stack(Es).astype(np.float32),
        (1 - np.stack(Ms)).astype(np.float32),
        source,
    )


def load_agp_records(path: str | os.PathLike[str], *, n_agents: int | None = None) -> AGPRecords:
    """Read AGP records from a JSON list or a JSONL file (real JSON parsing) and validate them."""
    p = Path(path)
    if not p.is_file():
        raise DataValidationError("file not found", source=str(p))
    text = p.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        raise DataValidationError("the file is empty; expected AGP records", source=str(p))
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"malformed JSON ({exc.msg}) at line {exc.lineno}", source=str(p)
            ) from None
    else:
        data = []
        for ln, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataValidationError(
                    f"malformed JSON ({exc.msg})", source=str(p), line=ln
                ) from None
    return validate_agp_records(data, n_agents=n_agents, source=str(p))
