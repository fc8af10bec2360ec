"""What :func:`dataprune.curate` returns: one status per input record, the funnel and the scores."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CurationResult"]

KEPT, DROPPED = "kept", "dropped"
VALIDATE = "validate"


@dataclass
class CurationResult:
    """The outcome of a curation run.

    Every input record has exactly one status: ``"kept"``, or ``"dropped"`` with the ``stage``
    that dropped it and the ``reason`` (duplicates also name the ``duplicate_of`` id they
    duplicate).

    Attributes
    ----------
    n_input : int
        Input records (including malformed ones).
    ids : list of str or None, length n_input
        The record ids (the id field, else the input position); ``None`` where a rejected record
        had no readable id.
    status, stage, reason, duplicate_of : ndarray of shape (n_input,), object
    columns : dict of str to ndarray of shape (n_input,), float64
        Every score a stage computed (NaN where the record did not reach that stage).
    kept_indices : ndarray of shape (k,), int64
        Input positions of the kept records, ascending.
    order : ndarray of shape (k,), int64
        The same in the selection stage's preference order (input order without one).
    funnel : list of dict
        Per stage (``validate`` first): ``stage``, ``kind``, ``n_in``, ``n_dropped``, ``n_out``.
    details : dict
        Per stage label: what the report shows (cuts, duplicate groups as input positions, ...).
    recipe : dict
        The resolved recipe (every option).
    comparisons : list of Comparison
        With ``output`` and ``report``: the kept set against random subsets of its size
        (coverage, duplicate, flagged and label-issue shares, score means;
        :mod:`dataprune.against_random`), as the report shows it; empty otherwise.
    """

    n_input: int
    ids: list[str | None]
    status: np.ndarray
    stage: np.ndarray
    reason: np.ndarray
    duplicate_of: np.ndarray
    columns: dict[str, np.ndarray]
    kept_indices: np.ndarray
    order: np.ndarray
    funnel: list[dict[str, Any]]
    details: dict[str, Any]
    recipe: dict[str, Any]
    budget: int | None
    random_state: int | None
    records: list[Any] = field(repr=False, default_factory=list)
    prompts: list[str | None] = field(repr=False, default_factory=list)
    responses: list[str | None] = field(repr=False, default_factory=list)
    flags: np.ndarray | None = None
    embeddings: np.ndarray | None = field(repr=False, default=None)
    models: dict[str, Any] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cached_stages: list[str] = field(default_factory=list)
    comparisons: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kept_indices)

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of shape (n_input,)."""
        return self.status == KEPT

    @property
    def kept_records(self) -> list[Any]:
        """The kept input records, in input order."""
        return [self.records[i] for i in self.kept_indices.tolist()]

    def to_frame(self):
        """One row per input record: index, id, status, stage, reason, duplicate_of, scores."""
        import pandas as pd

        data: dict[str, Any] = {
            "index": np.arange(self.n_input, dtype=np.int64),
            "id": self.ids,
            "status": self.status,
            "stage": self.stage,
            "reason": self.reason,
            "duplicate_of": self.duplicate_of,
        }
        if self.flags is not None:
            data["flagged"] = self.flags
        data.update(self.columns)
        return pd.DataFrame(data)

    def write_status(self, path: str | os.PathLike[str]) -> Path:
        """The status table as parquet (atomic)."""
        from dataprune.io.writers import write_frame

        return write_frame(self.to_frame(), path)

    def counts(self) -> dict[str, int]:
        """Records kept and dropped per stage (the funnel as a mapping)."""
        out = {"n_input": self.n_input, "n_kept": int(self.kept.sum())}
        for f in self.funnel:
            out[f"dropped_{f['stage']}"] = int(f["n_dropped"])
        return out

    def summary(self) -> str:
        """One readable line."""
        parts = [f"{f['stage']} -{f['n_dropped']}" for f in self.funnel if f["n_dropped"]]
        tail = f" ({', '.join(parts)})" if parts else ""
        return f"curate: kept {len(self)} of {self.n_input} records{tail}"
