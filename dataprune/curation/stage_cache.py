"""On-disk cache of stage outputs (parquet + JSON, never pickle), keyed by input and recipe prefix.

A stage's key hashes the input fingerprint, the record fields, the seed, the models and the
configs of every stage up to and including it: an interrupted run resumes at the first stage
without a cached output, and changing a stage recomputes only it and the stages after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.curation.stages.base import StageOutput

logger = logging.getLogger(__name__)

__all__ = ["StageCache", "stage_key"]


def stage_key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class StageCache:
    """Stage outputs under ``folder`` (``None``: no caching)."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = None if folder is None else Path(folder)

    def _paths(self, index: int, label: str, key: str) -> tuple[Path, Path]:
        assert self.folder is not None
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
        stem = f"{index:02d}-{safe}-{key[:20]}"
        return self.folder / f"{stem}.parquet", self.folder / f"{stem}.json"

    def load(self, index: int, label: str, key: str, seen: np.ndarray) -> StageOutput | None:
        if self.folder is None:
            return None
        table_path, meta_path = self._paths(index, label, key)
        if not (table_path.is_file() and meta_path.is_file()):
            return None
        import pyarrow.parquet as pq

        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            table = pq.read_table(table_path).to_pydict()
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cache of stage %s (%s); recomputing", label, exc)
            return None
        if meta.get("key") != key or len(table["dropped"]) != len(seen):
            return None
        scores = {
            k[len("score:") :]: np.asarray(v, dtype=np.float64)
            for k, v in table.items()
            if k.startswith("score:")
        }
        rank = np.asarray(table["order_rank"], dtype=np.int64)
        order = None
        if meta.get("has_order"):
            pos = np.flatnonzero(rank >= 0)
            order = seen[pos[np.argsort(rank[pos], kind="stable")]]
        return StageOutput(
            dropped=np.asarray(table["dropped"], dtype=bool),
            reason=list(table["reason"]),
            duplicate_of=np.asarray(table["duplicate_of"], dtype=np.int64),
            scores=scores,
            order=order,
            details=meta.get("details", {}),
        )

    def save(self, index: int, label: str, key: str, out: StageOutput, seen: np.ndarray) -> None:
        if self.folder is None:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataprune.atomic import atomic_path, atomic_write_json

        self.folder.mkdir(parents=True, exist_ok=True)
        table_path, meta_path = self._paths(index, label, key)
        rank = np.full(len(seen), -1, dtype=np.int64)
        if out.order is not None:
            local = np.searchsorted(seen, out.order)
            rank[local] = np.arange(len(local))
        cols: dict[str, Any] = {
            "dropped": pa.array(out.dropped, pa.bool_()),
            "reason": pa.array(out.reason, pa.string()),
            "duplicate_of": pa.array(out.duplicate_of, pa.int64()),
            "order_rank": pa.array(rank, pa.int64()),
        }
        for k, v in out.scores.items():
            cols[f"score:{k}"] = pa.array(np.asarray(v, dtype=np.float64), pa.float64())
        with atomic_path(table_path) as tmp:
            pq.write_table(pa.table(cols), tmp)
        atomic_write_json(
            meta_path,
            {
                "key": key,
                "label": label,
                "has_order": out.order is not None,
                "details": out.details,
            },
        )
