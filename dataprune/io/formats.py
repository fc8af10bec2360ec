"""File formats of record datasets and how a file's name tells its format."""

from __future__ import annotations

import os
from pathlib import Path

from dataprune.errors import DataValidationError

__all__ = ["FORMATS", "detect_format"]

FORMATS = ("jsonl", "json", "parquet", "csv")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}


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
