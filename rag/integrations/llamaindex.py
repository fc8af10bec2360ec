"""LlamaIndex adapter: a ``BaseNodePostprocessor`` that prunes retrieved nodes.

>>> from dataprune.rag.integrations.llamaindex import ProvenceNodePostprocessor
>>> query_engine = index.as_query_engine(
...     node_postprocessors=[ProvenceNodePostprocessor()]
... )

Each returned ``NodeWithScore`` holds a copy of the node with the pruned text; the node metadata
gains ``pruner_passage_score`` (relevance in [0, 1]), ``pruner_kept_sentences``,
``pruner_sentence_scores`` and ``pruner_compression_chars``; the retrieval score is kept unless
``replace_score=True`` (then the passage score becomes the node score). Input nodes are never
modified. Needs ``pip install 'dataprune[llamaindex]'``.

LlamaIndex downloads NLTK data lazily for some of its own components (not for this one); in
offline environments point ``NLTK_DATA`` / ``LLAMA_INDEX_CACHE_DIR`` at a writable folder.
"""

from __future__ import annotations

from typing import Any

from dataprune.optional import require
from dataprune.rag.integrations.results import LazyPruner

require(
    "llama_index.core.postprocessor.types", "llamaindex", purpose="the LlamaIndex postprocessor"
)

from llama_index.core.bridge.pydantic import Field, PrivateAttr  # noqa: E402
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle  # noqa: E402

__all__ = ["ProvenceNodePostprocessor"]


class ProvenceNodePostprocessor(LazyPruner, BaseNodePostprocessor):
    """Prune retrieved nodes to their query-relevant sentences.

    Parameters
    ----------
    model : str, default="default"
        Passed to :meth:`ContextPruner.from_pretrained` (ignored when ``pruner`` is given).
    pruner : ContextPruner, optional
        An already loaded pruner.
    threshold, aggregation, always_select_title, max_tokens, keep_patterns, second_pass
        As in :meth:`ContextPruner.prune`.
    drop_empty : bool, default=True
        Leave out nodes pruned to nothing.
    replace_score : bool, default=False
        Use the pruner's passage score as the node score.
    rerank : bool, default=False
        Sort nodes by passage score (descending).
    top_n : int, optional
        Keep at most this many nodes.
    """

    model: str = Field(default="default")
    pruner: Any = Field(default=None, exclude=True)
    threshold: float | None = Field(default=None)
    aggregation: str = Field(default="mean_prob")
    always_select_title: bool = Field(default=False)
    max_tokens: int | None = Field(default=None)
    keep_patterns: list[str] | None = Field(default=None)
    second_pass: bool = Field(default=False)
    drop_empty: bool = Field(default=True)
    replace_score: bool = Field(default=False)
    rerank: bool = Field(default=False)
    top_n: int | None = Field(default=None)
    _loaded: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "ProvenceNodePostprocessor"

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        from dataprune.errors import DataValidationError

        if query_bundle is None:
            raise DataValidationError("ProvenceNodePostprocessor needs the query (query_bundle)")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        results = self._get_pruner().prune(
            query_bundle.query_str,
            texts,
            threshold=self.threshold,
            aggregation=self.aggregation,
            always_select_title=self.always_select_title,
            max_tokens=self.max_tokens,
            keep_patterns=self.keep_patterns,
            second_pass=self.second_pass,
        )
        from dataprune.rag.integrations.results import order_and_cut, result_metadata

        out, scores = [], []
        for n, r in zip(nodes, results):
            if self.drop_empty and r.is_empty:
                continue
            node = n.node.model_copy(deep=True)
            node.set_content(r.text)
            node.metadata = {**node.metadata, **result_metadata(r)}
            # Scores and sentence lists are bookkeeping, not text for the LLM or the embedder.
            for key in (
                "pruner_kept_sentences",
                "pruner_sentence_scores",
                "pruner_original_length",
            ):
                if key not in node.excluded_llm_metadata_keys:
                    node.excluded_llm_metadata_keys.append(key)
                if key not in node.excluded_embed_metadata_keys:
                    node.excluded_embed_metadata_keys.append(key)
            score = r.passage_score if self.replace_score else n.score
            out.append(NodeWithScore(node=node, score=score))
            scores.append(r.passage_score)
        return order_and_cut(out, scores, rerank=self.rerank, top_n=self.top_n)
