"""Settings, method variants and data of ``benchmarks/knn_scale.py`` (the kNN-graph scale benchmark)."""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.selection_speed_worker import make_embeddings  # noqa: E402

logger = logging.getLogger("benchmarks.knn_scale")

NAME = "knn_scale"
DIM = 384
SEED = 0
N_QUERIES = 10_000
SIZES = (10_000, 100_000, 300_000, 1_000_000)
SMOKE_SIZES = (5_000, 10_000)
DATASETS = ("clustered", "lowrank")
LOWRANK_RANK = 24
LOWRANK_NOISE = 0.1  # per-coordinate std of the noise; the rank-24 part has unit variance per axis
CACHE = HERE / ".cache" / NAME
SMOKE_ROOT = Path(tempfile.gettempdir()) / "dataprune-knn-scale-smoke"
CASE_TIMEOUT_S = 1800
GT_TIMEOUT_S = 3600
EXACT_MAX_N = 300_000  # exact above this is not run (n^2 extrapolation reported instead)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = (40, 64, 96, 128)
#: efSearch values of the sampled sweep (``hnsw-ef``): recall against efSearch per dataset
HNSW_EF_SWEEP = (33, 48, 64, 80, 96, 128, 160)
SEARCH_BLOCK = 16_384
DATASET_TEXT = {
    "clustered": "clustered synthetic embeddings of selection_speed.py (64 topics x 4096 "
    "sub-clusters, Zipf sizes)",
    "lowrank": f"continuous low-rank: rank-{LOWRANK_RANK} Gaussian in a random subspace + "
    f"isotropic noise (std {LOWRANK_NOISE} per coordinate), rows L2-normalised",
}


# ----------------------------------------------------------------------------------- settings
def default_k() -> int:
    """``k`` of the library's kNN graph by default: ``FacilityLocation``'s ``n_neighbors``."""
    import inspect

    from dataprune.selection.facility_location import FacilityLocation

    return int(inspect.signature(FacilityLocation).parameters["n_neighbors"].default)


def _ivf_defaults(n: int) -> dict[str, int]:
    """What ``knn_graph(method="ivf")`` uses when given nothing (``default_ivf_params``)."""
    from dataprune.neighbors import default_ivf_params

    p = default_ivf_params(n)
    return {"nlist": p["nlist"], "nprobe": p["nprobe"]}


def _hnsw_defaults(n: int) -> dict[str, int]:
    """What ``knn_graph(method="hnsw")`` uses when given nothing (``default_hnsw_params``)."""
    from dataprune.neighbors_hnsw import default_hnsw_params

    p = default_hnsw_params(n, default_k())
    return {key: p[key] for key in ("M", "efConstruction", "efSearch", "target_recall")}


def _auto_defaults(n: int) -> dict[str, Any]:
    """What ``knn_graph(method="auto")`` uses: the cells' defaults, then the HNSW defaults."""
    return {"cells": _cells_defaults(n), "hnsw": _hnsw_defaults(n)}


def _cells_defaults(n: int) -> dict[str, int]:
    from dataprune.cell_join import default_cell_params

    return default_cell_params(n)


@dataclass(frozen=True)
class Variant:
    """One method and parameter rule; ``params(n)`` is what is passed, ``effective(n)`` what runs."""

    name: str
    kind: str  # "library" (knn_graph), "faiss_ivf" or "hnsw" (faiss called directly)
    method: str  # knn_graph's method, or the faiss index type
    label: str
    params: Callable[[int], dict[str, Any]] = field(default=lambda n: {})
    defaults: Callable[[int], dict[str, Any]] = field(default=lambda n: {})

    def effective(self, n: int) -> dict[str, Any]:
        return {**self.defaults(n), **self.params(n)}


VARIANTS: tuple[Variant, ...] = (
    Variant("exact", "library", "exact", "dataprune exact (blockwise GEMM)"),
    Variant("ivf", "library", "ivf", "dataprune ivf (defaults)", defaults=_ivf_defaults),
    Variant(
        "ivf-np64",
        "library",
        "ivf",
        "dataprune ivf, nprobe 64",
        params=lambda n: {"nprobe": 64},
        defaults=_ivf_defaults,
    ),
    Variant(
        "ivf-sqrt",
        "library",
        "ivf",
        "dataprune ivf, nlist sqrt(n)",
        params=lambda n: {"nlist": max(16, int(math.sqrt(n))), "nprobe": 16},
    ),
    Variant(
        "faiss-ivf-full",
        "faiss_ivf",
        "IndexIVFFlat",
        "faiss IVF-Flat, trained on all rows (faiss cap 256/list)",
        params=_ivf_defaults,
    ),
    Variant(
        "hnsw",
        "hnsw",
        "IndexHNSWFlat",
        f"faiss HNSW (M {HNSW_M}, efC {HNSW_EF_CONSTRUCTION})",
        params=lambda n: {
            "M": HNSW_M,
            "efConstruction": HNSW_EF_CONSTRUCTION,
            "efSearch": list(HNSW_EF_SEARCH),
        },
    ),
    Variant(
        "dp-hnsw",
        "library",
        "hnsw",
        "dataprune hnsw (defaults: deterministic build on all threads, efSearch tuned on a "
        "2,000-row sample; over the leading principal components (8-bit codes), re-scored "
        "exactly, when few hold 80% of the variance)",
        defaults=_hnsw_defaults,
    ),
    Variant(
        "hnsw-ef",
        "hnsw",
        "IndexHNSWFlat",
        f"faiss HNSW (M {HNSW_M}, efC {HNSW_EF_CONSTRUCTION}), built on all threads as the "
        "library builds it, efSearch sweep timed on the recall queries",
        params=lambda n: {
            "M": HNSW_M,
            "efConstruction": HNSW_EF_CONSTRUCTION,
            "efSearch": list(HNSW_EF_SWEEP),
            "build_threads": "all",
            "search": "sample",
        },
    ),
    Variant("cells", "library", "cells", "dataprune cells (defaults)", defaults=_cells_defaults),
    Variant(
        "dp-auto",
        "library",
        "auto",
        "dataprune auto (cells kept when a 2,000-row sample reaches recall 0.95, else hnsw; the "
        "cell join skipped when its candidates cannot reach it)",
        defaults=_auto_defaults,
    ),
    Variant(
        "cells-np32",
        "library",
        "cells",
        "dataprune cells, nprobe 32",
        # nlist given too (its default) so cached cases keep their recorded params
        params=lambda n: {"nlist": _cells_defaults(n)["nlist"], "nprobe": 32},
        defaults=_cells_defaults,
    ),
)
VARIANT_BY_NAME = {v.name: v for v in VARIANTS}


# --------------------------------------------------------------------------------------- data
def make_lowrank(
    n: int,
    path: Path,
    *,
    dim: int = DIM,
    rank: int = LOWRANK_RANK,
    noise: float = LOWRANK_NOISE,
    seed: int = SEED,
) -> Path:
    """Write ``n`` rows of a rank-``rank`` Gaussian + isotropic noise, L2-normalised, to ``path``.

    No clusters: the density varies smoothly over a ``rank``-dimensional subspace. Rows are
    generated in seeded chunks, so the first rows are the same for every ``n``.
    """
    if path.exists():
        return path
    basis, _ = np.linalg.qr(np.random.default_rng([seed, 1]).standard_normal((dim, rank)))
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
    for lo in range(0, n, 65536):
        hi = min(n, lo + 65536)
        r = np.random.default_rng([seed, 2, lo])
        x = r.standard_normal((hi - lo, rank)) @ basis.T
        x += noise * r.standard_normal((hi - lo, dim))
        out[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    del out
    os.replace(tmp, path)
    return path


def dataset_path(cache: Path, dataset: str, n: int) -> Path:
    """The ``.npy`` of ``dataset`` at ``n`` rows, generated on first use."""
    path = cache / "data" / f"{dataset}_{n}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        logger.info("generating %s n=%d -> %s", dataset, n, path)
    make = make_embeddings if dataset == "clustered" else make_lowrank
    return make(n, path)


def query_sample(n: int, n_queries: int = N_QUERIES) -> np.ndarray:
    """The seeded query rows of the recall measurement (all rows when ``n <= n_queries``)."""
    if n <= n_queries:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(SEED).choice(n, size=n_queries, replace=False))
