"""LangChain adapter: a ``BaseDocumentCompressor`` that prunes retrieved documents.

>>> from langchain_classic.retrievers import ContextualCompressionRetriever
>>> from dataprune.rag.integrations.langchain import ProvenceCompressor
>>> retriever = ContextualCompressionRetriever(
...     base_compressor=ProvenceCompressor(), base_retriever=my_retriever
... )
>>> docs = retriever.invoke("Who founded Warsaw?")

Each returned ``Document`` holds the pruned text; its metadata gains ``pruner_passage_score``
(relevance in [0, 1], higher = more relevant), ``pruner_kept_sentences``,
``pruner_sentence_scores``, ``pruner_compression_chars`` and ``pruner_original_length``. Input
documents are never modified. Needs ``pip install 'dataprune[langchain]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dataprune.optional import require
from dataprune.rag.integrations.results import LazyPruner

require("langchain_core.documents", "langchain", purpose="the LangChain document compressor")

from langchain_core.documents import BaseDocumentCompressor, Document  # noqa: E402
from pydantic import ConfigDict, Field, PrivateAttr  # noqa: E402

__all__ = ["ProvenceCompressor"]


class ProvenceCompressor(LazyPruner, BaseDocumentCompressor):
    """Prune each retrieved document to its query-relevant sentences.

    Parameters
    ----------
    model : str, default="default"
        Passed to :meth:`ContextPruner.from_pretrained` (ignored when ``pruner`` is given).
    pruner : ContextPruner, optional
        An already loaded pruner (shared between components).
    threshold : float, optional
        Keep threshold (default: the checkpoint's calibrated default).
    aggregation : {"mean_prob", "vote"}, default="mean_prob"
    always_select_title : bool, default=False
    max_tokens : int, optional
        Token budget over all documents of a query.
    keep_patterns : list of str, optional
        Regexes whose sentences are always kept (see :meth:`ContextPruner.prune`).
    second_pass : bool, default=False
        The multi-hop second pass (see :meth:`ContextPruner.prune`).
    drop_empty : bool, default=True
        Leave out documents pruned to nothing.
    rerank : bool, default=False
        Return documents sorted by passage score (descending).
    top_n : int, optional
        Keep at most this many documents (after ``rerank``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = "default"
    pruner: Any = Field(default=None, exclude=True)
    threshold: float | None = None
    aggregation: str = "mean_prob"
    always_select_title: bool = False
    max_tokens: int | None = None
    keep_patterns: list[str] | None = None
    second_pass: bool = False
    drop_empty: bool = True
    rerank: bool = False
    top_n: int | None = None
    _loaded: Any = PrivateAttr(default=None)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Any = None,
    ) -> Sequence[Document]:
        """Return pruned copies of ``documents`` (see the module docstring for metadata)."""
        from dataprune.errors import DataValidationError

        docs = list(documents)
        if not docs:
            return []
        for i, d in enumerate(docs):
            if not isinstance(getattr(d, "page_content", None), str):
                raise DataValidationError(
                    f"documents[{i}]: expected a langchain Document with a string page_content"
                )
        results = self._get_pruner().prune(
            query,
            [d.page_content for d in docs],
            threshold=self.threshold,
            aggregation=self.aggregation,
            always_select_title=self.always_select_title,
            max_tokens=self.max_tokens,
            keep_patterns=self.keep_patterns,
            second_pass=self.second_pass,
        )
        from dataprune.rag.integrations.results import order_and_cut, result_metadata

        out, scores = [], []
        for d, r in zip(docs, results):
            if self.drop_empty and r.is_empty:
                continue
            meta = {**d.metadata, **result_metadata(r)}
            out.append(Document(page_content=r.text, metadata=meta, id=getattr(d, "id", None)))
            scores.append(r.passage_score)
        return order_and_cut(out, scores, rerank=self.rerank, top_n=self.top_n)
