"""Validating user-named fields: which fields hold the text, and that every record has them
with the right types."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.io.records import OnBadRecord, RecordSet, Rejected

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TEXT_FIELD", "resolve_text_fields", "validate_fields"]

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
