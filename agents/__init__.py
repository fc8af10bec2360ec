"""Adaptive multi-agent graph pruning (installed as ``dataprune.agents``)."""

from __future__ import annotations

__all__: list[str] = []
