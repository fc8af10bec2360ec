"""What the curation stages read: one prompt / response / text / id (and label) per record.

Records are SFT pairs (``prompt_field`` + ``response_field``), chat ``messages`` (a list of
``{"role", "content"}`` turns: the last assistant turn is the response, the turns before it the
prompt) or plain text (``text_field``). Bad records are rejected with the field and what was
expected; they end with the status of the ``validate`` stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.io import RecordSet, Rejected

__all__ = ["Fields", "RecordView", "build_view"]


@dataclass(frozen=True)
class Fields:
    """Which record fields hold what (exactly one of text / prompt+response / messages)."""

    text_field: str | None = None
    prompt_field: str | None = None
    response_field: str | None = None
    messages_field: str | None = None
    id_field: str | None = None
    label_field: str | None = None
    flag_field: str | None = None

    def __post_init__(self) -> None:
        kinds = [
            self.text_field is not None,
            self.prompt_field is not None or self.response_field is not None,
            self.messages_field is not None,
        ]
        if sum(kinds) > 1:
            raise DataValidationError(
                "give one of text_field, prompt_field + response_field, or messages_field"
            )
        if (self.prompt_field is None) != (self.response_field is None):
            raise DataValidationError("prompt_field and response_field must be given together")

    @property
    def kind(self) -> str:
        if self.messages_field is not None:
            return "messages"
        if self.prompt_field is not None:
            return "sft"
        return "text"

    def resolved(self, records: Sequence[dict[str, Any]]) -> Fields:
        """Defaults from the data: ``messages`` / ``prompt``+``response`` / ``text`` fields."""
        if any(f is not None for f in (self.text_field, self.prompt_field, self.messages_field)):
            return self
        first = records[0] if records else {}
        for cand in (
            {"messages_field": "messages"},
            {"prompt_field": "prompt", "response_field": "response"},
            {"prompt_field": "instruction", "response_field": "output"},
            {"text_field": "text"},
        ):
            if all(v in first for v in cand.values()):
                return Fields(**{**self.__dict__, **cand})
        have = ", ".join(repr(k) for k in list(first)[:12]) or "none"
        raise DataValidationError(
            f"record 0 has no 'messages', 'prompt'/'response', 'instruction'/'output' or 'text' "
            f"field (it has {have}); name the fields with --prompt-field/--response-field, "
            "--messages-field or --text-field"
        )


@dataclass
class RecordView:
    """The validated records, as the stages see them (position ``p`` = the p-th valid record).

    Attributes
    ----------
    index : ndarray of shape (n,), int64
        Input position of each valid record.
    ids : list of str, length n
    prompts, responses : list of str, length n
        ``""`` prompts for plain-text records (the text is the response).
    texts : list of str, length n
        What the text stages (dedup, embeddings) read: prompt and response joined by a blank line.
    labels : list or None
    flags : ndarray of shape (n,), bool, or None
        Records the user marked as known-bad (``flag_field``), for the report only.
    """

    index: np.ndarray
    ids: list[str]
    prompts: list[str]
    responses: list[str]
    texts: list[str]
    labels: list[Any] | None
    flags: np.ndarray | None
    fields: Fields
    rejected: list[Rejected] = field(default_factory=list)
    rejected_ids: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_sft(self) -> bool:
        return self.fields.kind in ("sft", "messages")


def _chat(turns: Any) -> tuple[str, str] | str:
    """(prompt, response) of a chat, or the reason it is not one."""
    if not isinstance(turns, list) or not turns:
        return "expected a non-empty list of {'role', 'content'} turns"
    for t in turns:
        if not isinstance(t, dict) or not isinstance(t.get("role"), str):
            return "every turn must be an object with a string 'role'"
        if not isinstance(t.get("content"), str):
            return "every turn must have a string 'content'"
    last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
    if last is None:
        return "expected at least one turn with role 'assistant'"
    prior = turns[:last]
    if len(prior) == 1 and prior[0]["role"] == "user":
        prompt = prior[0]["content"]
    else:
        prompt = "\n\n".join(f"{t['role']}: {t['content']}" for t in prior)
    return prompt, turns[last]["content"]


def _flag(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "none", "false", "0", "no", "ok", "clean")
    return bool(v)


def build_view(rs: RecordSet, fields: Fields, *, on_bad_record: str = "skip") -> RecordView:
    """Validate ``rs`` for the curation stages.

    Raises
    ------
    DataValidationError
        On the first bad record when ``on_bad_record="error"``; on duplicate ids; when no record
        is valid.
    """
    fields = fields.resolved(rs.records)
    index, ids, prompts, responses, texts, labels, flags = [], [], [], [], [], [], []
    rejected = list(rs.rejects)
    rejected_ids: dict[int, str] = {}
    seen_ids: dict[str, int] = {}
    for pos, rec in enumerate(rs.records):
        idx = rs.indices[pos]
        problem: tuple[str, str] | None = None
        if fields.id_field is not None:
            rid = rec.get(fields.id_field)
            if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
                problem = (fields.id_field, "expected a non-empty string or integer id")
            else:
                rid = str(rid)
        else:
            rid = str(idx)
        if problem is None and fields.kind == "messages":
            got = _chat(rec.get(fields.messages_field))
            if isinstance(got, str):
                problem = (str(fields.messages_field), got)
            else:
                prompt, response = got
        elif problem is None and fields.kind == "sft":
            for f in (fields.prompt_field, fields.response_field):
                if not isinstance(rec.get(f), str):
                    problem = (str(f), "expected a string")
                    break
            else:
                prompt, response = rec[fields.prompt_field], rec[fields.response_field]
        elif problem is None:
            if not isinstance(rec.get(fields.text_field), str):
                problem = (str(fields.text_field), "expected a string")
            else:
                prompt, response = "", rec[fields.text_field]
        if problem is None and not response.strip():
            f = fields.response_field or fields.text_field or fields.messages_field
            problem = (str(f), "the response is empty; expected non-empty text")
        if problem is None and fields.label_field is not None:
            v = rec.get(fields.label_field)
            if v is None or isinstance(v, float) or not isinstance(v, (str, int, bool)):
                problem = (fields.label_field, "expected a label (string, integer or boolean)")
        if problem is None and rid in seen_ids:
            raise DataValidationError(
                f"duplicate id {rid!r} (also record {seen_ids[rid]}); ids must be unique",
                source=rs.source,
                record=idx,
                field=fields.id_field,
            )
        if problem is not None:
            f, msg = problem
            if on_bad_record == "error":
                raise DataValidationError(
                    msg, source=rs.source, record=idx, field=f, line=rs.line_of(pos)
                )
            rejected.append(
                Rejected(f"field {f!r}: {msg}", index=idx, line=rs.line_of(pos), raw=rec)
            )
            if fields.id_field is not None and isinstance(rec.get(fields.id_field), (str, int)):
                rejected_ids[idx] = str(rec[fields.id_field])
            continue
        seen_ids[rid] = idx
        index.append(idx)
        ids.append(rid)
        prompts.append(prompt)
        responses.append(response)
        texts.append(f"{prompt}\n\n{response}" if prompt else response)
        if fields.label_field is not None:
            labels.append(rec[fields.label_field])
        if fields.flag_field is not None:
            flags.append(_flag(rec.get(fields.flag_field)))
    if not index:
        raise DataValidationError(
            f"no valid records ({len(rejected)} rejected; first: {rejected[0].reason})"
            if rejected
            else "the dataset is empty; expected at least one record",
            source=rs.source,
        )
    return RecordView(
        index=np.asarray(index, dtype=np.int64),
        ids=ids,
        prompts=prompts,
        responses=responses,
        texts=texts,
        labels=labels if fields.label_field is not None else None,
        flags=np.asarray(flags, dtype=bool) if fields.flag_field is not None else None,
        fields=fields,
        rejected=rejected,
        rejected_ids=rejected_ids,
    )
