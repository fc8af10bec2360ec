"""Defaults of the embedding paths, importable without numpy (the CLI's parser reads them)."""

from __future__ import annotations

__all__ = ["DEFAULT_BATCH_SIZE"]

#: Encoder batch size of every embedding path. Measured on 2 CPU cores (all-MiniLM-L6-v2,
#: ``benchmarks/embedding_speed.py``): sentence-transformers' ``encode`` at batch 16 was within
#: 2% of its best batch size on short questions and on 128-token SFT records, where batch 64 ran
#: 15% slower.
DEFAULT_BATCH_SIZE = 16
