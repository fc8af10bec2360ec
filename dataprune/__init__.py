"""dataprune: data- and agent-level pruning for LLM pipelines.

Subpackages: ``dataprune.rag`` (context pruning) and ``dataprune.agents`` (multi-agent graph
pruning). Heavy dependencies (torch, transformers, faiss) are imported inside functions, so
``import dataprune`` stays fast.
"""

from __future__ import annotations

import logging

from dataprune.lazy import lazy_exports

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["CurationResult", "SelectionResult", "__version__", "curate", "select"]

_LAZY = {
    "select": "dataprune.selection.api",
    "SelectionResult": "dataprune.selection.api",
    "curate": "dataprune.curation.pipeline",
    "CurationResult": "dataprune.curation.result",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
