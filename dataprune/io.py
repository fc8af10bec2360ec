"""Reading, validating and writing record datasets.

Supported inputs: JSONL (optionally ``.gz``), JSON (a list of objects), parquet, CSV, an in-memory
``datasets.Dataset`` or list of dicts, and Hugging Face hub dataset ids (for users with internet).
Field names come from the user and are validated up front; every problem is reported with the
source, the line or record number, the field and what was expected.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dataprune.atomic import atomic_path, atomic_write
from dataprune.errors import DataPruneError, DataValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TEXT_FIELD",
    "FORMATS",
    "RecordSet",
    "Rejected",
    "detect_format",
    "file_sha256",
    "load_records",
    "resolve_text_fields",
    "validate_fields",
    "write_records",
    "write_rejects",
]

FORMATS = ("jsonl", "json", "parquet", "csv")
OnBadRecord = Literal["error", "skip"]
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass
class Rejected:
    """A record that failed validation and was skipped (``on_bad_record="skip"``)."""

    reason: str
    index: int | None = None
    line: int | None = None
    raw: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass
class RecordSet:
    """Records loaded from one source.

    Attributes
    ----------
    records : list of dict
        The records, in input order (rejected records removed).
    source : str
        Human-readable name of the source (file path or dataset description).
    format : str
        One of ``FORMATS``, ``"hf"`` (hub dataset or ``datasets.Dataset``) or ``"memory"``.
    indices : list of int
        Position of each kept record in the original input (0-based).
    rejects : list of Rejected
        Records skipped because they were malformed or failed validation.
    content_hash : str
        SHA-256 of the input file (or a fingerprint of an in-memory dataset).
    """

    records: list[dict[str, Any]]
    source: str
    format: str
    indices: list[int]
    rejects: list[Rejected] = field(default_factory=list)
    content_hash: str = ""
    path: Path | None = None
    lines: list[int] | None = None

    def line_of(self, pos: int) -> int | None:
        """One-based line number of the record at position ``pos`` (JSONL and CSV inputs)."""
        return self.lines[pos] if self.lines is not None else None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def n_input(self) -> int:
        """Number of records in the input before rejects were removed."""
        return len(self.records) + len(self.rejects)

    def column(self, name: str) -> list[Any]:
        """Values of field ``name`` for every record (fields are validated before this is used)."""
        return [r[name] for r in self.records]


def detect_format(path: str | os.PathLike[str]) -> str:
    """Return the file format implied by ``path``'s suffix (``.gz`` is looked through)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise DataValidationError(
        f"cannot tell the file format from the name; expected one of the suffixes "
        f"{', '.join(sorted(_SUFFIXES))} (optionally .gz)",
        source=str(path),
    )


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


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


def _fingerprint_records(records: Sequence[Mapping[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


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


DEFAULT_TEXT_FIELD = "text"


def resolve_text_fields(
    data: RecordSet,
    fields: Sequence[str],
    *,
    how: str = "text_field (--text-field), or prompt_field and response_field "
    "(--prompt-field and --response-field)",
) -> list[str]:
    """The text fields to use: ``fields`` when given, else ``["text"]`` when the records have it.

    Parameters
    ----------
    data : RecordSet
        The loaded records.
    fields : sequence of str
        Fields the user named (empty: none named).
    how : str
        How the caller names text fields, for the error message (CLI options or arguments).

    Raises
    ------
    DataValidationError
        No field named and the first record has no ``"text"`` field; lists the fields it has.
    """
    if fields:
        return list(fields)
    if not data.records or DEFAULT_TEXT_FIELD in data.records[0]:
        return [DEFAULT_TEXT_FIELD]
    have = ", ".join(repr(k) for k in list(data.records[0])[:12]) or "none"
    raise DataValidationError(
        f"records have no {DEFAULT_TEXT_FIELD!r} field (record 0 has {have}); name the text "
        f"with {how}",
        source=data.source,
    )


def validate_fields(
    data: RecordSet,
    *,
    text_fields: Iterable[str] = (),
    label_field: str | None = None,
    on_bad_record: OnBadRecord = "error",
) -> RecordSet:
    """Check that every record has the named fields with the right types.

    Text fields must be strings (empty strings are allowed but reported in the log); the label
    field must be a non-null string, integer or boolean.

    Returns
    -------
    RecordSet
        ``data`` itself when nothing was rejected, else a copy without the rejected records.

    Raises
    ------
    DataValidationError
        On the first bad record when ``on_bad_record="error"``, or when no record survives.
    """
    text_fields = list(text_fields)
    if not data.records:
        raise DataValidationError(
            "the dataset is empty; expected at least one record", source=data.source
        )
    fields = [*text_fields] + ([label_field] if label_field else [])
    missing_everywhere = [f for f in fields if all(f not in r for r in data.records[:1000])]
    if missing_everywhere and on_bad_record == "error":
        available = sorted(set().union(*(r.keys() for r in data.records[:100])))
        f = missing_everywhere[0]
        raise DataValidationError(
            f"missing field; the records have the fields: {', '.join(map(str, available)) or '(none)'}",
            source=data.source,
            record=data.indices[0],
            field=f,
            line=data.line_of(0),
        )
    keep: list[int] = []
    rejects = list(data.rejects)
    n_empty = 0
    for pos, rec in enumerate(data.records):
        problem = None
        for f in text_fields:
            if f not in rec:
                problem = (f, "missing field; expected a string")
                break
            v = rec[f]
            if not isinstance(v, str):
                problem = (f, f"expected a string, got {_type_name(v)}")
                break
            if not v.strip():
                n_empty += 1
        if problem is None and label_field is not None:
            if label_field not in rec:
                problem = (
                    label_field,
                    "missing field; expected a label (string, integer or boolean)",
                )
            else:
                v = rec[label_field]
                if v is None or isinstance(v, float) or not isinstance(v, (str, int, bool)):
                    problem = (
                        label_field,
                        f"expected a label (string, integer or boolean), got {_type_name(v)}",
                    )
        if problem is None:
            keep.append(pos)
            continue
        f, msg = problem
        idx = data.indices[pos]
        if on_bad_record == "error":
            raise DataValidationError(
                msg, source=data.source, record=idx, field=f, line=data.line_of(pos)
            )
        rejects.append(Rejected(f"field {f!r}: {msg}", index=idx, line=data.line_of(pos), raw=rec))
    if n_empty:
        logger.warning("%s: %d records have an empty text field", data.source, n_empty)
    if len(keep) == len(data.records):
        return data
    if not keep:
        raise DataValidationError(
            f"no valid records left after skipping {len(rejects)} bad ones", source=data.source
        )
    logger.warning(
        "%s: skipped %d records that failed validation",
        data.source,
        len(rejects) - len(data.rejects),
    )
    return replace(
        data,
        records=[data.records[i] for i in keep],
        indices=[data.indices[i] for i in keep],
        rejects=rejects,
        lines=[data.lines[i] for i in keep] if data.lines is not None else None,
    )


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


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
