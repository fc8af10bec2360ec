"""The evidence sets a pruner trains on besides SQuAD v2 (``TrainConfig.evidence_sets``).

Each set's ``train`` split is read with :func:`dataprune.rag.corpora.load_evidence_set` and split
by whole questions into training and validation parts (seeded). Multi-passage questions keep
their gold passages and ``distractors_per_question`` seeded distractors. For multi-hop sets,
``bridge_examples`` adds what the multi-hop second pass shows the model at inference: the query
extended with the evidence sentences of the question's other gold passages, paired with each gold
passage (same labels) and with one distractor (no evidence).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.rag.config import TrainConfig
from dataprune.rag.labels import PruningExample

logger = logging.getLogger(__name__)

__all__ = ["MixturePart", "bridge_examples", "evidence_training_examples"]


@dataclass
class MixturePart:
    """One evidence set's share of the training data (recorded in the checkpoint card).

    Attributes
    ----------
    name, licence, file, sha256 : str
    train, val : list of PruningExample
    n_questions : int
        Questions in the set's ``train`` split.
    kinds : dict of str to int
        Training examples per kind.
    """

    name: str
    licence: str
    file: str
    sha256: str
    train: list[PruningExample] = field(default_factory=list)
    val: list[PruningExample] = field(default_factory=list)
    n_questions: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "licence": self.licence,
            "file": self.file,
            "sha256": self.sha256,
            "n_questions": self.n_questions,
            "n_train_pairs": len(self.train),
            "n_val_pairs": len(self.val),
            "train_pairs_by_kind": self.kinds,
        }


def _evidence_text(ex: PruningExample) -> str:
    return " ".join(s.text for s, y in zip(ex.sentences, ex.labels) if y)


def bridge_examples(
    question: list[PruningExample], rng: np.random.Generator
) -> list[PruningExample]:
    """Extended-query examples of one multi-hop question.

    Parameters
    ----------
    question : list of PruningExample
        All passages of one question (same ``qid``).
    rng : numpy Generator
        Picks the distractor.

    Returns
    -------
    list of PruningExample
        One ``"bridge"`` example per gold passage (query + the other gold passages' evidence
        sentences) and one ``"bridge_negative"`` (query + all evidence, a distractor); empty
        when the question has fewer than two gold passages.
    """
    gold = [e for e in question if e.kind == "answerable"]
    if len(gold) < 2:
        return []
    out = []
    for g in gold:
        context = " ".join(_evidence_text(o) for o in gold if o is not g)
        out.append(replace(g, query=f"{g.query} {context}", kind="bridge"))
    negs = [e for e in question if e.kind != "answerable"]
    if negs:
        d = negs[int(rng.integers(len(negs)))]
        context = " ".join(_evidence_text(o) for o in gold)
        out.append(replace(d, query=f"{d.query} {context}", kind="bridge_negative"))
    return out


def evidence_training_examples(config: TrainConfig) -> list[MixturePart]:
    """Training and validation examples of every set in ``config.evidence_sets``.

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    list of MixturePart
        In ``config.evidence_sets`` order.

    Raises
    ------
    DataValidationError
        For a set whose licence does not allow training (unless
        ``config.allow_restricted_licences``), or an unreadable set.
    """
    from dataprune.rag.corpora import EVIDENCE_SETS, load_evidence_set
    from dataprune.rag.train_data import file_sha256

    parts = []
    for k, name in enumerate(config.evidence_sets):
        spec = EVIDENCE_SETS.get(name)
        if not spec.trainable and not config.allow_restricted_licences:
            raise DataValidationError(
                f"evidence set {name!r} is evaluation only (licence: {spec.licence}); pass "
                "allow_restricted_licences for a model you will not release"
            )
        if "train" not in spec.files:
            raise DataValidationError(f"evidence set {name!r} has no train split")
        rng = np.random.default_rng([config.random_state, 7919, k])
        examples = load_evidence_set(name, "train", config.evidence_data)
        by_q: dict[str, list[PruningExample]] = {}
        for e in examples:
            by_q.setdefault(e.qid, []).append(e)
        qids = sorted(by_q)
        order = rng.permutation(len(qids))
        n_val = round(config.evidence_val_share * len(qids))
        val_q = {qids[i] for i in order[:n_val]}
        path = Path(config.evidence_data) / spec.folder / spec.files["train"]
        part = MixturePart(
            name, spec.licence, str(path.name), file_sha256(path), n_questions=len(qids)
        )
        for q in qids:
            passages = by_q[q]
            gold = [e for e in passages if e.kind == "answerable"]
            others = [e for e in passages if e.kind != "answerable"]
            if len(passages) > 1 and len(others) > config.distractors_per_question:
                pick = sorted(rng.choice(len(others), config.distractors_per_question, False))
                kept = gold + [others[i] for i in pick]
            else:
                kept = list(passages)
            if q in val_q:
                part.val.extend(kept)
                continue
            part.train.extend(kept)
            if spec.multi_hop and config.bridge_examples:
                part.train.extend(bridge_examples(passages, rng))
        if config.max_pairs_per_set is not None and len(part.train) > config.max_pairs_per_set:
            pick = rng.choice(len(part.train), config.max_pairs_per_set, replace=False)
            part.train = [part.train[i] for i in sorted(pick)]
        part.kinds = {
            kind: sum(e.kind == kind for e in part.train)
            for kind in sorted({e.kind for e in part.train})
        }
        logger.info(
            "evidence set %s: %d training pairs %s, %d validation pairs",
            name,
            len(part.train),
            part.kinds,
            len(part.val),
        )
        parts.append(part)
    return parts
