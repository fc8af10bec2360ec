"""Reading, validating and writing record datasets.

Supported inputs: JSONL (optionally ``.gz``), JSON (a list of objects), parquet, CSV, an in-memory
``datasets.Dataset`` or list of dicts, and Hugging Face hub dataset ids (for users with internet).
Field names come from the user and are validated up front; every problem is reported with the
source, the line or record number, the field and what was expected.

The pieces: :mod:`~dataprune.io.records` (:class:`RecordSet`, :class:`Rejected`),
:mod:`~dataprune.io.formats` (``FORMATS``, :func:`detect_format`),
:mod:`~dataprune.io.fingerprints` (:func:`file_sha256`), :mod:`~dataprune.io.readers`
(:func:`load_records`), :mod:`~dataprune.io.validation` (:func:`validate_fields`,
:func:`resolve_text_fields`) and :mod:`~dataprune.io.writers` (:func:`write_records`,
:func:`write_rejects`).
"""

from __future__ import annotations

from dataprune.io.fingerprints import file_sha256
from dataprune.io.formats import FORMATS, detect_format
from dataprune.io.readers import load_records
from dataprune.io.records import RecordSet, Rejected
from dataprune.io.validation import DEFAULT_TEXT_FIELD, resolve_text_fields, validate_fields
from dataprune.io.writers import write_records, write_rejects

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
