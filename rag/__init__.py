"""Provence-style RAG context pruning (installed as ``dataprune.rag``).

Hand a query and the retrieved passages to a :class:`ContextPruner`; get back each passage with
its irrelevant sentences removed and a relevance score to rerank by::

    from dataprune.rag import ContextPruner

    pruner = ContextPruner.from_pretrained("default")   # shipped MiniLM pruner, works offline
    for p in pruner.prune(query, passages):
        print(p.passage_score, p.compression_chars, p.text)

Heavy modules (torch, transformers) load on first use, so ``import dataprune.rag`` stays cheap.
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports
from dataprune.rag.config import PrunerConfig, TrainConfig
from dataprune.rag.sentences import Sentence, split_sentences

__all__ = [
    "AGGREGATIONS",
    "KEEP_PATTERNS",
    "ContextPruner",
    "PassageScores",
    "PrunedPassage",
    "PrunerConfig",
    "Sentence",
    "ThresholdCalibration",
    "TrainConfig",
    "TrainingCollapsedError",
    "calibrate_threshold",
    "pruning_metrics",
    "split_sentences",
    "train_pruner",
]

_LAZY = {
    "ContextPruner": "dataprune.rag.pruner",
    "PrunedPassage": "dataprune.rag.selection",
    "AGGREGATIONS": "dataprune.rag.selection",
    "PassageScores": "dataprune.rag.inference",
    "KEEP_PATTERNS": "dataprune.rag.patterns",
    "calibrate_threshold": "dataprune.rag.calibrate",
    "ThresholdCalibration": "dataprune.rag.calibrate",
    "train_pruner": "dataprune.rag.train",
    "TrainingCollapsedError": "dataprune.rag.train_validation",
    "pruning_metrics": "dataprune.rag.evaluation",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
