"""Reading records: JSONL (optionally ``.gz``), JSON, CSV and parquet files, records in memory
(a list of dicts or a ``datasets.Dataset``) and Hugging Face hub dataset ids.

Every problem is reported with the source, the line or record number and what was expected.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dataprune.errors import DataPruneError, DataValidationError
from dataprune.io.fingerprints import _fingerprint_records, file_sha256
from dataprune.io.formats import FORMATS, detect_format
from dataprune.io.records import OnBadRecord, RecordSet, Rejected

logger = logging.getLogger(__name__)

__all__ = ["load_records", "read_json_file"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def read_json_file(path: str | os.PathLike[str], what: str = "file") -> Any:
    """The parsed JSON of one file; a missing, unreadable or malformed file is a
    :class:`DataValidationError` naming it (``what``: e.g. "policy file")."""
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(f"{what} not found", source=str(p))
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"malformed JSON ({exc.msg}) at line {exc.lineno}", source=str(p)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"cannot read the {what} ({exc})", source=str(p)) from None


def _open_text(path: Path):
    # utf-8-sig: a leading byte-order mark (as some editors and Excel write) is dropped
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_jsonl(path: Path, on_bad_record: OnBadRecord):
    records: list[dict[str, Any]] = []
    indices: list[int] = []
    rejects: list[Rejected] = []
    lines: list[int] = []
    index = 0
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"malformed JSON ({exc.msg} at column {exc.colno}); expected one JSON object per line"
                if on_bad_record == "error":
                    raise DataValidationError(msg, source=str(path), line=lineno) from None
                rejects.append(Rejected(msg, index=index, line=lineno, raw=line.rstrip("\n")))
                index += 1
                continue
            if not isinstance(obj, dict):
                msg = f"expected a JSON object, got {type(obj).__name__}"
                if on_bad_record == "error":
                    raise DataValidationError(msg, source=str(path), line=lineno)
                rejects.append(Rejected(msg, index=index, line=lineno, raw=obj))
                index += 1
                continue
            records.append(obj)
            indices.append(index)
            lines.append(lineno)
            index += 1
    return records, indices, rejects, lines


def _read_json(path: Path, on_bad_record: OnBadRecord):
    with _open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                "expected a JSON list of objects",
                source=str(path),
            ) from None
    if not isinstance(data, list):
        raise DataValidationError(
            f"expected a JSON list of objects at the top level, got {type(data).__name__}"
            + (" (use .jsonl for one object per line)" if isinstance(data, dict) else ""),
            source=str(path),
        )
    records, indices, rejects = [], [], []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            msg = f"expected a JSON object, got {type(obj).__name__}"
            if on_bad_record == "error":
                raise DataValidationError(msg, source=str(path), record=i)
            rejects.append(Rejected(msg, index=i, raw=obj))
            continue
        records.append(obj)
        indices.append(i)
    return records, indices, rejects


def _read_csv(path: Path, on_bad_record: OnBadRecord):
    """Rows as dicts keyed by the header; a duplicate header name, or a row whose cell count
    differs from the header's, is a bad record (stop, or skip into the rejects)."""
    records: list[dict[str, Any]] = []
    indices: list[int] = []
    rejects: list[Rejected] = []
    lines: list[int] = []
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return records, indices, rejects, lines
        seen: dict[str, int] = {}
        for col, name in enumerate(header, start=1):
            if name in seen:
                raise DataValidationError(
                    f"duplicate column name {name!r} in the header (columns {seen[name]} and "
                    f"{col}); expected unique column names",
                    source=str(path),
                    line=1,
                )
            seen[name] = col
        index = 0
        for row in reader:
            lineno = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                msg = (
                    f"row has {len(row)} cells, the header has {len(header)}; expected one "
                    "cell per column"
                )
                if on_bad_record == "error":
                    raise DataValidationError(msg, source=str(path), line=lineno)
                rejects.append(Rejected(msg, index=index, line=lineno, raw=row))
                index += 1
                continue
            records.append(dict(zip(header, row)))
            indices.append(index)
            lines.append(lineno)
            index += 1
    return records, indices, rejects, lines


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataValidationError(
            f"not a readable parquet file ({exc})", source=str(path)
        ) from None
    records = table.to_pylist()
    return records, list(range(len(records))), []


def load_records(
    source: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | Any,
    *,
    fmt: str | None = None,
    split: str | None = None,
    on_bad_record: OnBadRecord = "error",
) -> RecordSet:
    """Load records from a file, an in-memory dataset, or a hub dataset id.

    Parameters
    ----------
    source : path, list of dict, datasets.Dataset or str
        A file (``.jsonl``, ``.jsonl.gz``, ``.json``, ``.parquet``, ``.csv``), records in memory, or
        a Hugging Face hub dataset id (needs internet).
    fmt : str, optional
        Force a format instead of inferring it from the suffix.
    split : str, optional
        Split to load for hub ids (default ``"train"``).
    on_bad_record : {"error", "skip"}, default="error"
        Malformed lines/records raise :class:`DataValidationError`, or are collected in
        ``RecordSet.rejects``.

    Returns
    -------
    RecordSet

    Raises
    ------
    DataValidationError
        For malformed input or an empty dataset.
    """
    if on_bad_record not in ("error", "skip"):
        raise DataValidationError(f"on_bad_record must be 'error' or 'skip', got {on_bad_record!r}")
    rs = _load(source, fmt=fmt, split=split, on_bad_record=on_bad_record)
    if not rs.records:
        detail = f" ({len(rs.rejects)} malformed records were skipped)" if rs.rejects else ""
        raise DataValidationError(
            f"the dataset is empty; expected at least one record{detail}", source=rs.source
        )
    if rs.rejects:
        logger.warning("%s: skipped %d malformed records", rs.source, len(rs.rejects))
    return rs


def _load(
    source: Any, *, fmt: str | None, split: str | None, on_bad_record: OnBadRecord
) -> RecordSet:
    if isinstance(source, RecordSet):
        return source
    if _is_hf_dataset(source):
        records = source.to_list()
        fp = _fingerprint_records(records)
        return RecordSet(
            records, "datasets.Dataset", "hf", list(range(len(records))), content_hash=fp
        )
    if isinstance(source, (list, tuple)):
        records, indices, rejects = [], [], []
        for i, obj in enumerate(source):
            if not isinstance(obj, Mapping):
                msg = f"expected a mapping (dict), got {type(obj).__name__}"
                if on_bad_record == "error":
                    raise DataValidationError(msg, source="<records>", record=i)
                rejects.append(Rejected(msg, index=i, raw=repr(obj)))
                continue
            records.append(dict(obj))
            indices.append(i)
        return RecordSet(
            records, "<records>", "memory", indices, rejects, _fingerprint_records(records)
        )
    if not isinstance(source, (str, os.PathLike)):
        raise DataValidationError(
            f"unsupported data source of type {type(source).__name__}; expected a file path, "
            "a hub dataset id, a list of dicts or a datasets.Dataset"
        )
    path = Path(source)
    if path.is_dir():
        raise DataValidationError("is a directory; expected a data file", source=str(path))
    if not path.exists():
        text = str(source)
        if _HUB_ID.match(text) and not Path(text).suffix:
            return _load_hub(text, split=split)
        raise DataValidationError("no such file", source=str(path))
    kind = fmt or detect_format(path)
    if kind not in FORMATS:
        raise DataValidationError(f"unknown format {kind!r}; expected one of {', '.join(FORMATS)}")
    lines = None
    try:
        if kind == "jsonl":
            records, indices, rejects, lines = _read_jsonl(path, on_bad_record)
        elif kind == "json":
            records, indices, rejects = _read_json(path, on_bad_record)
        elif kind == "csv":
            records, indices, rejects, lines = _read_csv(path, on_bad_record)
        else:
            records, indices, rejects = _read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"not valid UTF-8 text ({exc.reason})", source=str(path)
        ) from None
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read file ({exc})", source=str(path)) from None
    return RecordSet(records, str(path), kind, indices, rejects, file_sha256(path), path, lines)


def _is_hf_dataset(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("datasets") and hasattr(obj, "to_list") and hasattr(obj, "column_names")


def _load_hub(dataset_id: str, *, split: str | None) -> RecordSet:
    split = split or "train"
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:
        from dataprune.models import hub_error_reason

        raise DataPruneError(
            f"{dataset_id}: no such file, and loading it as a Hugging Face hub dataset "
            f"(split {split!r}) failed: {hub_error_reason(exc)}"
        ) from None
    records = ds.to_list()
    return RecordSet(
        records,
        f"hf:{dataset_id}[{split}]",
        "hf",
        list(range(len(records))),
        content_hash=_fingerprint_records(records),
    )
