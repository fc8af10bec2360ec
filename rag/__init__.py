"""Provence-style RAG context pruning (installed as ``dataprune.rag``)."""

from __future__ import annotations

__all__: list[str] = []
