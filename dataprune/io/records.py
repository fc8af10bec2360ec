"""The record model: :class:`RecordSet` (records loaded from one source) and :class:`Rejected`
(a record skipped by validation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["OnBadRecord", "RecordSet", "Rejected"]

OnBadRecord = Literal["error", "skip"]


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
