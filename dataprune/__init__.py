"""dataprune: data- and agent-level pruning for LLM pipelines.

Subpackages: ``dataprune.rag`` (context pruning) and ``dataprune.agents`` (multi-agent graph
pruning). Heavy dependencies (torch, transformers, faiss) are imported inside functions, so
``import dataprune`` stays fast.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["SelectionResult", "__version__", "select"]

_LAZY = {"select": "dataprune.selection.api", "SelectionResult": "dataprune.selection.api"}


def __getattr__(name: str):
    """Lazy exports: ``dataprune.select`` imports numpy and the selectors on first use only."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dataprune' has no attribute {name!r}")
