"""Writing records (JSONL, JSON, CSV, parquet) and rejected records, atomically."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dataprune.atomic import atomic_path, atomic_write
from dataprune.errors import DataValidationError
from dataprune.io.formats import FORMATS, detect_format
from dataprune.io.records import Rejected

__all__ = ["write_records", "write_rejects"]


def write_records(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
) -> Path:
    """Write records atomically in the format given by ``fmt`` or ``path``'s suffix.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    kind = fmt or detect_format(path)
    if kind not in FORMATS:
        raise DataValidationError(
            f"unknown output format {kind!r}; expected one of {', '.join(FORMATS)}"
        )
    gz = path.suffix.lower() == ".gz"
    if kind in ("jsonl", "json", "csv"):
        with atomic_path(path) as tmp:
            opener = gzip.open if gz else open
            with opener(tmp, "wt", encoding="utf-8", newline="") as fh:
                if kind == "jsonl":
                    for r in records:
                        fh.write(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n")
                elif kind == "json":
                    json.dump(list(records), fh, ensure_ascii=False, indent=1, default=_jsonable)
                    fh.write("\n")
                else:
                    columns: dict[str, None] = {}
                    for r in records:
                        columns.update(dict.fromkeys(r))
                    writer = csv.DictWriter(fh, fieldnames=list(columns))
                    writer.writeheader()
                    writer.writerows(records)
                fh.flush()
                os.fsync(fh.fileno())
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(list(records))
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    return path


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def write_frame(frame: Any, path: str | os.PathLike[str]) -> Path:
    """Write a pandas DataFrame to a parquet file atomically (no index column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def write_rejects(rejects: Sequence[Rejected], output: str | os.PathLike[str]) -> Path | None:
    """Write rejected records to ``<output>.rejects.jsonl`` (atomically); ``None`` when empty.

    With no rejects, a ``.rejects.jsonl`` left by an earlier run into the same output is removed,
    so the files next to an output always describe the run that wrote it.
    """
    path = Path(f"{output}.rejects.jsonl")
    if not rejects:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    with atomic_write(path) as fh:
        for r in rejects:
            fh.write(json.dumps(r.to_json(), ensure_ascii=False, default=_jsonable) + "\n")
    return path
