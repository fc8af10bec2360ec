"""Run scoring and clustering-based selection on an execution engine: in-process or Ray.

* :mod:`~dataprune.distributed.engines`: the ``"local"`` and ``"ray"`` engines (``ENGINES``).
* :mod:`~dataprune.distributed.shards`: resumable per-record scores over parquet/JSONL shards --
  :func:`embed_shards` (sentence encoder) and :func:`lm_score_shards` (EL2N per token, Q-Tuning
  PPL and entropy) -- as ``ray.data`` ``map_batches`` with the model loaded once per actor.
* :mod:`~dataprune.distributed.clustered`: prototypes, SemDeDup and per-cluster facility location
  as k-means over a sample, assignment tasks and one task per cluster; the same selection on
  every engine (:func:`fit_with_engine`).

``ray`` is imported only when the Ray engine is used (``pip install 'dataprune[ray]'``).
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = [
    "ENGINES",
    "ENGINE_METHODS",
    "ClusteredFacilityLocation",
    "Engine",
    "LocalEngine",
    "RayEngine",
    "ShardRun",
    "cluster_rows",
    "embed_shards",
    "embed_texts_distributed",
    "fit_with_engine",
    "get_engine",
    "list_shards",
    "lm_score_shards",
    "read_embeddings",
    "read_shard_outputs",
    "score_shards",
    "split_budget",
]

_WHERE = {
    "ENGINES": "engines",
    "Engine": "engines",
    "LocalEngine": "engines",
    "RayEngine": "engines",
    "get_engine": "engines",
    "ShardRun": "pipeline",
    "list_shards": "pipeline",
    "embed_shards": "shards",
    "embed_texts_distributed": "in_memory",
    "lm_score_shards": "shards",
    "read_embeddings": "shards",
    "read_shard_outputs": "shards",
    "score_shards": "shards",
    "ENGINE_METHODS": "clustered",
    "ClusteredFacilityLocation": "clustered",
    "cluster_rows": "clustered",
    "fit_with_engine": "clustered",
    "split_budget": "clustered",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
