"""Where ``benchmarks/distributed_scale.py`` writes, the embedding width it measures, and which
rows its embedding checksum reads."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NAME = "distributed_scale"
WORK = Path(os.environ.get("DATAPRUNE_BENCH_DIR", "/tmp/dataprune-distributed-scale"))
DIM = 384


def checksum_step(n: int) -> int:
    """Embedding check: the float64 sum of every ``checksum_step(n)``-th row (~1,000 rows)."""
    return max(1, n // 1000)
