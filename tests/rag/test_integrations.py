"""LangChain / LlamaIndex adapters with the real libraries (wiring on the tiny model; behaviour
with the shipped pruner is in test_behaviour.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")

PASSAGES = [
    "The zebra lives in Africa. Paris is the capital of France.",
    "Warsaw was founded in the 13th century. It rained all day.",
]


def _retriever(docs):
    from langchain_core.retrievers import BaseRetriever

    class ListRetriever(BaseRetriever):
        docs: list

        def _get_relevant_documents(self, query, *, run_manager=None):
            return list(self.docs)

    return ListRetriever(docs=docs)


def test_langchain_compressor_inside_contextual_compression_retriever(tiny_pruner):
    pytest.importorskip("langchain_classic")
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.documents import Document

    from dataprune.rag.integrations.langchain import ProvenceCompressor

    docs = [Document(page_content=t, metadata={"source": i}) for i, t in enumerate(PASSAGES)]
    comp = ProvenceCompressor(pruner=tiny_pruner, threshold=0.0)
    retriever = ContextualCompressionRetriever(
        base_compressor=comp, base_retriever=_retriever(docs)
    )
    out = retriever.invoke("Where does the zebra live?")
    assert [d.page_content for d in out] == PASSAGES
    for d, i in zip(out, range(2)):
        assert d.metadata["source"] == i
        assert 0.0 <= d.metadata["pruner_passage_score"] <= 1.0
        assert len(d.metadata["pruner_sentence_scores"]) == 2
    # everything pruned away: dropped by default, kept (empty) with drop_empty=False
    assert ProvenceCompressor(pruner=tiny_pruner, threshold=1.0).compress_documents(docs, "q") == []
    kept = ProvenceCompressor(
        pruner=tiny_pruner, threshold=1.0, drop_empty=False
    ).compress_documents(docs, "q")
    assert [d.page_content for d in kept] == ["", ""]
    assert docs[0].page_content == PASSAGES[0] and "pruner_passage_score" not in docs[0].metadata
    ranked = ProvenceCompressor(
        pruner=tiny_pruner, threshold=0.0, rerank=True, top_n=1
    ).compress_documents(docs, "q")
    best = max(kept, key=lambda d: d.metadata["pruner_passage_score"])
    assert len(ranked) == 1 and ranked[0].metadata["source"] == best.metadata["source"]


def test_langchain_async(tiny_pruner):
    import asyncio

    from langchain_core.documents import Document

    from dataprune.rag.integrations.langchain import ProvenceCompressor

    comp = ProvenceCompressor(pruner=tiny_pruner, threshold=0.0)
    out = asyncio.run(comp.acompress_documents([Document(page_content=PASSAGES[0])], "zebra?"))
    assert out[0].page_content == PASSAGES[0]


def test_llamaindex_postprocessor(tiny_pruner):
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from dataprune.rag.integrations.llamaindex import ProvenceNodePostprocessor

    nodes = [
        NodeWithScore(node=TextNode(text=t, metadata={"i": i}), score=0.5 + i)
        for i, t in enumerate(PASSAGES)
    ]
    post = ProvenceNodePostprocessor(pruner=tiny_pruner, threshold=0.0)
    out = post.postprocess_nodes(nodes, query_str="Where does the zebra live?")
    assert [n.node.get_content() for n in out] == PASSAGES
    assert [n.score for n in out] == [0.5, 1.5]
    assert all(0 <= n.node.metadata["pruner_passage_score"] <= 1 for n in out)
    assert "pruner_sentence_scores" in out[0].node.excluded_llm_metadata_keys
    assert nodes[0].node.metadata == {"i": 0}  # inputs untouched
    assert (
        ProvenceNodePostprocessor(pruner=tiny_pruner, threshold=1.0).postprocess_nodes(
            nodes, QueryBundle("q")
        )
        == []
    )
    kept = ProvenceNodePostprocessor(
        pruner=tiny_pruner, threshold=1.0, drop_empty=False, replace_score=True
    )
    res = kept.postprocess_nodes(nodes, query_str="q")
    assert [n.node.get_content() for n in res] == ["", ""]
    assert [n.score for n in res] == [n.node.metadata["pruner_passage_score"] for n in res]
    from dataprune.errors import DataValidationError

    with pytest.raises(DataValidationError, match="query"):
        post.postprocess_nodes(nodes)
