"""What both pipeline adapters do with pruning results: metadata and order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["LazyPruner", "order_and_cut", "result_metadata"]


class LazyPruner:
    """Mixin of both adapters: ``pruner`` when given, else ``model`` loaded once on first use.

    The adapter (a pydantic model) declares ``pruner``, ``model`` and a private ``_loaded``.
    """

    def _get_pruner(self) -> Any:
        if self.pruner is not None:
            return self.pruner
        if self._loaded is None:
            from dataprune.rag.pruner import ContextPruner

            self._loaded = ContextPruner.from_pretrained(self.model)
        return self._loaded


def result_metadata(result: Any) -> dict[str, Any]:
    """The ``pruner_*`` metadata an adapter attaches to a pruned passage."""
    return {
        "pruner_passage_score": result.passage_score,
        "pruner_kept_sentences": result.kept_sentences,
        "pruner_sentence_scores": result.sentence_scores,
        "pruner_compression_chars": result.compression_chars,
        "pruner_original_length": result.n_chars,
    }


def order_and_cut(
    items: list[Any], passage_scores: Sequence[float], *, rerank: bool, top_n: int | None
) -> list[Any]:
    """Sort ``items`` by passage score (higher first) when ``rerank``; keep the first ``top_n``."""
    if rerank:
        order = sorted(range(len(items)), key=lambda i: -passage_scores[i])
        items = [items[i] for i in order]
    return items if top_n is None else items[:top_n]
