"""Loaders of the sentence-labelled evidence sets and their registry (licence, role, hops).

Every loader returns :class:`~dataprune.rag.labels.PruningExample` objects, one per (question,
passage), with ``qid`` grouping a question's passages (multi-hop sets give every question its gold
and distractor passages) and ``article`` the passage's title or source article. ``kind`` is
``"answerable"`` for a passage holding evidence, ``"hard_negative"`` for a retrieved passage
without, and ``"unanswerable"`` for every passage of a question with no evidence at all.

Licences decide the role: an Apache-2.0 checkpoint trains only on sets whose licence allows it
(``trainable``); WikiQA (non-commercial) and Climate-FEVER (no stated licence) are evaluation only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dataprune.errors import DataValidationError
from dataprune.rag.corpora.build import example_from_sentences, example_from_text
from dataprune.rag.labels import PruningExample
from dataprune.registry import Registry

__all__ = ["EVIDENCE_SETS", "EvidenceSet", "load_evidence_set"]


@dataclass(frozen=True)
class EvidenceSet:
    """A registered evidence set.

    Attributes
    ----------
    name : str
    folder : str
        Folder under the shared data directory.
    files : dict of str to str
        Split name -> file name inside ``folder``.
    licence : str
    trainable : bool
        The licence allows training a checkpoint released under Apache-2.0.
    multi_hop : bool
        Questions need evidence from several passages.
    evidence : str
        How sentence labels are obtained.
    loader : callable
        ``loader(path) -> list[PruningExample]``.
    """

    name: str
    folder: str
    files: dict[str, str]
    licence: str
    trainable: bool
    multi_hop: bool
    evidence: str
    loader: Callable[[Path], list[PruningExample]]


def _read_json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(data, list):
        raise DataValidationError(f"{path}: expected a JSON list of records")
    return data


def _field(rec: dict, key: str, where: str, typ: type | tuple[type, ...]) -> object:
    if not isinstance(rec, dict) or key not in rec:
        raise DataValidationError(f"{where}: missing field {key!r}")
    val = rec[key]
    if not isinstance(val, typ):
        raise DataValidationError(f"{where}: field {key!r} has the wrong type")
    return val


def load_hotpotqa(path: Path) -> list[PruningExample]:
    """HotpotQA (distractor setting): 10 titled paragraphs per question, supporting facts."""
    out = []
    for i, rec in enumerate(_read_json(path)):
        where = f"{path.name} record {i}"
        qid = str(_field(rec, "_id", where, str))
        query = str(_field(rec, "question", where, str))
        answer = str(rec.get("answer", ""))
        facts = _field(rec, "supporting_facts", where, list)
        gold: dict[str, set[int]] = {}
        for f in facts:
            if not (isinstance(f, list) and len(f) == 2 and isinstance(f[1], int)):
                raise DataValidationError(f"{where}: supporting_facts entries must be [title, int]")
            gold.setdefault(str(f[0]), set()).add(f[1])
        for j, para in enumerate(_field(rec, "context", where, list)):
            if not (isinstance(para, list) and len(para) == 2 and isinstance(para[1], list)):
                raise DataValidationError(f"{where}: context[{j}] must be [title, [sentences]]")
            title, sents = str(para[0]), [str(s) for s in para[1]]
            out.append(
                example_from_sentences(
                    query,
                    sents,
                    sorted(gold.get(title, ())),
                    title=title,
                    answers=[answer] if answer else [],
                    article=title,
                    qid=qid,
                )
            )
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _answer_spans(text: str, answers: list[str]) -> list[tuple[int, int]]:
    low = text.casefold()
    spans = []
    for a in answers:
        a = a.strip().casefold()
        if not a:
            continue
        start = low.find(a)
        while start >= 0:
            spans.append((start, start + len(a)))
            start = low.find(a, start + 1)
    return spans


def load_musique(path: Path) -> list[PruningExample]:
    """MuSiQue-Ans: 20 paragraphs per question, paragraph-level support.

    Sentence labels are derived: in a supporting paragraph, the sentences containing the answer of
    a decomposition step that cites that paragraph (the final step's aliases included). When no
    sentence contains it, every sentence of the paragraph is evidence (the whole paragraph is the
    support the data gives).
    """
    out = []
    for i, rec in enumerate(_read_json(path)):
        where = f"{path.name} record {i}"
        qid = str(_field(rec, "id", where, str))
        query = str(_field(rec, "question", where, str))
        final = [str(rec.get("answer", "")), *[str(a) for a in rec.get("answer_aliases", [])]]
        steps = _field(rec, "question_decomposition", where, list)
        step_answers: dict[int, list[str]] = {}
        for k, st in enumerate(steps):
            idx = _field(st, "paragraph_support_idx", f"{where} step {k}", (int, type(None)))
            if idx is None:
                continue
            ans = [str(st.get("answer", ""))] + (final if k == len(steps) - 1 else [])
            step_answers.setdefault(int(idx), []).extend(ans)
        for j, para in enumerate(_field(rec, "paragraphs", where, list)):
            pw = f"{where} paragraph {j}"
            title = str(_field(para, "title", pw, str))
            body = str(_field(para, "paragraph_text", pw, str)).strip()
            text = f"{title.strip()}\n{body}" if title.strip() else body
            spans: list[tuple[int, int]] = []
            if _field(para, "is_supporting", pw, bool):
                offset = len(text) - len(body)
                spans = [
                    (b + offset, e + offset)
                    for b, e in _answer_spans(body, step_answers.get(int(para.get("idx", j)), []))
                ]
                if not spans:
                    spans = [(offset, len(text))]
            out.append(
                example_from_text(
                    query,
                    text,
                    spans,
                    answers=[final[0]] if final[0] else [],
                    article=title,
                    qid=qid,
                )
            )
    return out


def load_selqa(path: Path) -> list[PruningExample]:
    """SelQA answer sentence selection: a Wikipedia section's sentences, gold answer indices."""
    out = []
    for i, rec in enumerate(_read_json(path)):
        where = f"{path.name} record {i}"
        query = str(_field(rec, "question", where, str))
        cands = [str(c) for c in _field(rec, "candidates", where, list)]
        answers = _field(rec, "answers", where, list)
        article = str(rec.get("article", ""))
        out.append(
            example_from_sentences(
                query,
                cands,
                [int(a) for a in answers],
                article=article,
                qid=f"selqa-{path.stem}-{i}",
            )
        )
    return out


def load_wikiqa(path: Path) -> list[PruningExample]:
    """WikiQA (official 7-column TSV): a Wikipedia summary's sentences with 0/1 labels.

    A question's rows form one titled passage; questions with no correct sentence are
    ``"unanswerable"``.
    """
    groups: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:2] != ["QuestionID", "Question"] or header[-1] != "Label":
            raise DataValidationError(f"{path.name}: unexpected header {header}")
        for n, line in enumerate(fh, start=2):
            row = line.rstrip("\n").split("\t")
            if len(row) != 7 or row[-1] not in ("0", "1"):
                raise DataValidationError(
                    f"{path.name} line {n}: expected 7 tab-separated fields ending in a 0/1 label"
                )
            g = groups.setdefault(row[0], {"q": row[1], "title": row[3], "s": [], "y": []})
            g["s"].append(row[5])
            g["y"].append(int(row[6]))
    out = []
    for qid, g in groups.items():
        ev = [k for k, y in enumerate(g["y"]) if y]
        out.append(
            example_from_sentences(
                g["q"],
                g["s"],
                ev,
                title=g["title"],
                article=g["title"],
                kind=None if ev else "unanswerable",
                qid=f"wikiqa-{qid}",
            )
        )
    return out


def load_climate_fever(path: Path) -> list[PruningExample]:
    """Climate-FEVER: a claim and its 5 retrieved sentences as one context; SUPPORTS and REFUTES
    sentences are evidence, NOT_ENOUGH_INFO ones are hard negatives."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {n}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(f"{where}: not valid JSON ({exc.msg})") from None
            claim = str(_field(rec, "claim", where, str))
            evs = _field(rec, "evidences", where, list)
            sents = [str(_field(e, "evidence", where, str)) for e in evs]
            ev = [
                k for k, e in enumerate(evs) if e.get("evidence_label") in ("SUPPORTS", "REFUTES")
            ]
            out.append(
                example_from_sentences(
                    claim,
                    sents,
                    ev,
                    kind=None if ev else "unanswerable",
                    qid=f"climate-{rec.get('claim_id', n)}",
                )
            )
    return out


#: Evidence sets by name.
EVIDENCE_SETS: Registry[EvidenceSet] = Registry("evidence set")
for _s in (
    EvidenceSet(
        "hotpotqa",
        "hotpotqa_train",
        {"train": "qa_train.json"},
        "CC BY-SA 4.0",
        True,
        True,
        "supporting facts (sentence level)",
        load_hotpotqa,
    ),
    EvidenceSet(
        "musique",
        "musique",
        {"train": "qa_train.json", "heldout": "musique_qa_100.json"},
        "CC BY 4.0",
        True,
        True,
        "paragraph support; sentences holding a hop's answer (else the whole paragraph)",
        load_musique,
    ),
    EvidenceSet(
        "selqa",
        "selqa",
        {"train": "selqa-ass-dev.json", "heldout": "selqa-ass-test.json"},
        "Apache-2.0",
        True,
        False,
        "answer sentence indices",
        load_selqa,
    ),
    EvidenceSet(
        "wikiqa",
        "wikiqa",
        {"heldout": "WikiQA-test.tsv", "dev": "WikiQA-dev.tsv"},
        "Microsoft Research Data License (non-commercial)",
        False,
        False,
        "0/1 sentence labels",
        load_wikiqa,
    ),
    EvidenceSet(
        "climate_fever",
        "climate_fever",
        {"heldout": "climate-fever.jsonl"},
        "not stated (Wikipedia text, research use)",
        False,
        False,
        "SUPPORTS/REFUTES sentences",
        load_climate_fever,
    ),
):
    EVIDENCE_SETS.register(_s.name, _s)


def load_evidence_set(
    name: str, split: str, data_dir: str | os.PathLike[str]
) -> list[PruningExample]:
    """Load one split of a registered evidence set.

    Parameters
    ----------
    name : str
        A name of :data:`EVIDENCE_SETS`.
    split : str
        One of the set's ``files`` keys (``"train"``, ``"heldout"``, ``"dev"``).
    data_dir : path
        The shared data directory holding the set's folder.

    Returns
    -------
    list of PruningExample

    Raises
    ------
    DataValidationError
        For an unknown split, a missing file or a malformed record (named in the message).
    """
    spec = EVIDENCE_SETS.get(name)
    if split not in spec.files:
        raise DataValidationError(
            f"evidence set {name!r} has no split {split!r}; splits: {', '.join(spec.files)}"
        )
    path = Path(data_dir) / spec.folder / spec.files[split]
    if not path.is_file():
        raise DataValidationError(f"evidence set {name!r}: file not found: {path}")
    return spec.loader(path)
