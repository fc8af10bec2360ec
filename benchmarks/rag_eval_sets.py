"""Held-out evaluation data of the RAG pruning benchmark, and the models it compares.

* ``squad``: the test articles recorded in the evaluated pruner's card (never trained on by any
  model here), each question with its own paragraph plus the BM25-nearest other paragraph of the
  same article without the answer;
* ``selqa``, ``wikiqa``, ``climate_fever``: their held-out files (WikiQA and Climate-FEVER are
  never trained on, for their licences); ``musique``: the second MuSiQue sample (multi-hop, never
  trained on);
* leave-one-dataset-out: the ``lodo-<set>`` model is evaluated on ``<set>``'s held-out data
  (``hotpotqa``: all 100 questions, which that model never saw).

The previous checkpoint (the one the shipped pruner replaced: all-MiniLM-L6-v2 with its top 2
layers trained 600 steps on the same mixture) is read from git at :data:`PREVIOUS_COMMIT`.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common as common

__all__ = [
    "EVAL_SETS",
    "LODO_SETS",
    "MODELS_DIR",
    "PREVIOUS_COMMIT",
    "dev_multihop_examples",
    "eval_examples",
    "group_by_question",
    "previous_checkpoint",
    "pruner_recipe",
    "question_stats",
    "score_examples",
]

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE / ".cache" / "rag_models"
#: Held-out sets of the shipped model: "single" (one passage per question) or "multi" (a
#: question's gold and distractor passages).
EVAL_SETS = {
    "squad": "single",
    "selqa": "single",
    "wikiqa": "single",
    "climate_fever": "single",
    "musique": "multi",
}
#: Sets each left out of one model's training.
LODO_SETS = ("squad", "hotpotqa", "musique", "selqa")
#: The last commit whose ``rag/checkpoints/default`` is the previous pruner (the mixture, top 2
#: layers trained, 600 steps); before it, ``d4a7c424cc`` held the SQuAD-only pruner.
PREVIOUS_COMMIT = "4a59a57479c412f89b25e345aed5a8bcd3537115"
_CHECKPOINT_FILES = ("pruner_config.json", "model.safetensors", "card.json")


def previous_checkpoint() -> Path:
    """The checkpoint of :data:`PREVIOUS_COMMIT`, written once into the cache."""
    from dataprune.atomic import atomic_path
    from dataprune.cache import cache_dir

    out = cache_dir("benchmarks") / f"rag_previous_{PREVIOUS_COMMIT[:10]}"
    if all((out / f).is_file() for f in _CHECKPOINT_FILES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    for f in _CHECKPOINT_FILES:
        blob = subprocess.run(
            ["git", "show", f"{PREVIOUS_COMMIT}:rag/checkpoints/default/{f}"],
            cwd=HERE.parent,
            capture_output=True,
            check=True,
        ).stdout
        with atomic_path(out / f) as tmp:
            Path(tmp).write_bytes(blob)
    return out


def group_by_question(examples: list[Any]) -> list[list[Any]]:
    """Examples grouped by ``qid``, in first-seen order."""
    groups: dict[str, list[Any]] = {}
    for e in examples:
        groups.setdefault(e.qid, []).append(e)
    return list(groups.values())


def question_stats(groups: list[list[Any]], masks: list[list[Any]]) -> np.ndarray:
    """Per-question sums of :func:`~dataprune.rag.comparison.passage_stats`: ``groups[q]`` are
    question ``q``'s passages (:func:`group_by_question`), ``masks[q]`` their keep masks; shape
    ``(5, n_questions)``."""
    from dataprune.rag.comparison import passage_stats

    return np.stack([passage_stats(g, m).sum(axis=1) for g, m in zip(groups, masks)], axis=1)


def _subsample(examples: list[Any], max_passages: int | None, seed: int, multi: bool) -> list[Any]:
    if not max_passages or len(examples) <= max_passages:
        return examples
    rng = np.random.default_rng(seed)
    if not multi:
        idx = sorted(rng.choice(len(examples), max_passages, replace=False))
        return [examples[i] for i in idx]
    groups = group_by_question(examples)
    per_q = max(1, round(len(examples) / len(groups)))
    keep = sorted(rng.choice(len(groups), max(1, max_passages // per_q), replace=False))
    return [e for i in keep for e in groups[i]]


def _squad_examples(pruner: Any, seed: int) -> list[Any]:
    from dataprune.rag.labels import build_examples, load_squad_v2

    card = (pruner.meta or {}).get("card") or {}
    test = card.get("data", {}).get("split", {}).get("test")
    if not test:
        raise SystemExit("the pruner's card records no SQuAD test articles")
    data = load_squad_v2(common.SHARED_DATA / "squad_v2")
    return build_examples(
        data, test, negatives_per_question=1, negative_kinds=("hard_negative",), random_state=seed
    )


def eval_examples(
    name: str, pruner: Any, *, max_passages: int | None, seed: int, lodo: bool = False
) -> list[Any]:
    """The held-out examples of ``name`` (see the module docstring)."""
    from dataprune.rag.corpora import EVIDENCE_SETS, load_evidence_set

    if name == "squad":
        ex = _squad_examples(pruner, seed)
    elif name == "hotpotqa":
        if not lodo:
            raise SystemExit("hotpotqa is training data of the shipped model: only its LODO model")
        ex = load_evidence_set("hotpotqa", "train", common.SHARED_DATA)
    else:
        ex = load_evidence_set(name, "heldout", common.SHARED_DATA)
    multi = name != "squad" and EVIDENCE_SETS.get(name).multi_hop
    return _subsample(ex, max_passages, seed, multi)


def dev_multihop_examples(pruner: Any) -> list[Any]:
    """Validation questions of the multi-hop sets the pruner trained on (development data), each
    with ALL its passages (gold and every distractor), as the held-out multi-hop questions come;
    training saw none of these questions."""
    from dataprune.rag.config import TrainConfig
    from dataprune.rag.corpora import EVIDENCE_SETS, load_evidence_set
    from dataprune.rag.train_mixture import evidence_training_examples

    card = (pruner.meta or {}).get("card") or {}
    if "train_config" not in card:
        return []
    cfg = TrainConfig.from_dict({**card["train_config"], "evidence_data": str(common.SHARED_DATA)})
    if not any(EVIDENCE_SETS.get(s).multi_hop for s in cfg.evidence_sets):
        return []
    # the full list: each set's validation split is seeded by its position in it
    out = []
    for part in evidence_training_examples(cfg):
        if not EVIDENCE_SETS.get(part.name).multi_hop:
            continue
        val_q = {e.qid for e in part.val}
        out += [
            e for e in load_evidence_set(part.name, "train", cfg.evidence_data) if e.qid in val_q
        ]
    return out


def score_examples(pruner: Any, examples: list[Any]) -> tuple[list[Any], float]:
    """One scoring pass (threshold-free) over labelled examples; seconds taken."""
    from dataprune.rag.inference import score_pairs

    t0 = time.perf_counter()
    scores = score_pairs(
        pruner.model,
        pruner.tokenizer,
        [e.query for e in examples],
        [e.passage for e in examples],
        max_length=pruner.max_length,
        max_query_tokens=pruner.max_query_tokens,
        batch_size=32,
        precision=pruner.precision_,
        sentences=[e.sentences for e in examples],
        show_progress_bar=True,
    )
    return scores, time.perf_counter() - t0


def pruner_recipe(pruner: Any) -> dict[str, Any]:
    """Trainable layers and training steps of a pruner, from its card."""
    card = (pruner.meta or {}).get("card") or {}
    cfg = card.get("train_config") or {}
    return {"trainable_layers": (cfg.get("pruner") or {}).get("trainable_layers"),
            "steps": card.get("steps")}  # fmt: skip
