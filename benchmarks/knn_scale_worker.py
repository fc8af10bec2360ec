"""One case of ``benchmarks/knn_scale.py`` in a fresh process: ``--worker <spec as JSON>``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.knn_scale_setup import SEARCH_BLOCK, SEED, query_sample  # noqa: E402
from benchmarks.selection_speed_worker import _reset_peak, _rss_kib  # noqa: E402


# ------------------------------------------------------------------------------------- worker
def _warm_page_cache(path: Path) -> None:
    """Read the file once (plain reads, no mapping) so no case pays the disk."""
    buf = bytearray(64 * 2**20)
    with open(path, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass


def _search_without_self(
    index: Any, X: np.ndarray, k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The library's own search loop (``k + 1`` hits per row of ``rows``, self dropped)."""
    from dataprune.neighbors import _search_without_self as search

    return search(index, X, k, SEARCH_BLOCK, False, rows=rows)


def recall_at_k(idx: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the query rows of |found ∩ exact| / k (missing neighbours, -1, count as misses)."""
    found = idx[queries]
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2) & (found >= 0)
    return float(hits.sum(axis=1).mean() / truth.shape[1])


def _groundtruth(spec: dict[str, Any]) -> None:
    """Exact top-k (self excluded) of the query sample against all rows; keys read once."""
    from dataprune.neighbors import exact_knn_rows

    X = np.load(spec["data"], mmap_mode="r")
    n, k = X.shape[0], int(spec["k"])
    queries = query_sample(n, int(spec["n_queries"]))
    _warm_page_cache(Path(spec["data"]))
    t0 = time.perf_counter()
    sims, idx = exact_knn_rows(X, queries, k)
    np.savez(
        spec["out"], queries=queries, idx=idx, sims=sims, seconds=time.perf_counter() - t0
    )  # fmt: skip


def speed_reference(n: int = 50_000, dim: int = 24) -> float:
    """Seconds of a fixed one-thread HNSW build (M 32, efConstruction 40) over ``n`` seeded
    Gaussian rows of ``dim`` dimensions: graph walking, the work that dominates the HNSW cases.

    Run before each case's clock, so a case's time can be read against the machine's speed at
    that moment (on this shared virtual machine the same build has taken 1.7x as long from one
    half hour to the next).
    """
    import faiss

    Z = np.random.default_rng(SEED).standard_normal((n, dim)).astype(np.float32)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_L2)
    index.hnsw.efConstruction = 40
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    t0 = time.perf_counter()
    try:
        index.add(Z)
    finally:
        faiss.omp_set_num_threads(threads)
    return time.perf_counter() - t0


def worker(spec: dict[str, Any]) -> None:
    """Build one case's kNN graph in this fresh process; write its rows to ``spec["out"]``."""
    if spec["task"] == "groundtruth":
        _groundtruth(spec)
        return
    import faiss
    import torch  # noqa: F401  (imported before the clock: the exact and cells GEMMs)

    from dataprune.neighbors import knn_graph

    X = np.load(spec["data"], mmap_mode="r")
    d = X.shape[1]
    k, params, out = int(spec["k"]), dict(spec["params"]), Path(spec["out"])
    with np.load(spec["gt"]) as gt:
        queries, truth = gt["queries"], gt["idx"]
    _warm_page_cache(Path(spec["data"]))
    res: dict[str, Any] = {"rows": [], "speed_ref_s": round(speed_reference(), 2)}
    res["baseline_rss_mib"] = round(_rss_kib("VmRSS") / 1024, 1)
    _reset_peak()

    def record(row: dict[str, Any], idx: np.ndarray) -> None:
        res["peak_rss_mib"] = round(_rss_kib("VmHWM") / 1024, 1)
        row["recall"] = round(recall_at_k(idx, queries, truth), 5)
        res["rows"].append(row)
        common.write_json(out, res)  # partial results survive a timeout

    if spec["kind"] == "library":
        t0 = time.perf_counter()
        _, idx, info = knn_graph(
            X,
            k,
            method=spec["method"],
            random_state=SEED,
            show_progress_bar=False,
            return_info=True,
            **params,
        )
        seconds = round(time.perf_counter() - t0, 3)
        tuned = {key: info[key] for key in ("efSearch", "sample_recall") if key in info}
        if (info.get("projection") or {}).get("dim"):  # the HNSW graph over principal components
            tuned["projected_dim"] = info["projection"]["dim"]
        if info.get("method") == "auto":  # which graph it kept, and what each step measured
            cells = info["cells"]
            tuned = {"chosen": info["chosen"], "cells_s": cells["time_s"]}
            for key in ("candidate_recall", "sample_recall"):  # the join is skipped when the
                if key in cells:  # cells' candidates cannot reach the target
                    tuned[f"cells_{key}"] = cells[key]
            if "hnsw" in info:
                tuned.update(efSearch=info["hnsw"]["efSearch"],
                             sample_recall=info["hnsw"].get("sample_recall"))  # fmt: skip
                if (info["hnsw"].get("projection") or {}).get("dim"):
                    tuned["projected_dim"] = info["hnsw"]["projection"]["dim"]
        record({"params": {**params, **tuned}, "seconds": seconds}, idx)
    elif spec["kind"] == "faiss_ivf":
        t0 = time.perf_counter()
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(d), d, int(params["nlist"]), faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = SEED
        index.train(np.asarray(X))  # faiss subsamples to 256 rows per list itself
        train_s = time.perf_counter() - t0
        index.add(np.asarray(X))
        index.nprobe = int(params["nprobe"])
        _, idx = _search_without_self(index, X, k)
        row = {"params": params, "seconds": round(time.perf_counter() - t0, 3)}
        record({**row, "train_s": round(train_s, 3)}, idx)
    elif spec["kind"] == "hnsw":
        t0 = time.perf_counter()
        index = faiss.IndexHNSWFlat(d, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params["efConstruction"])
        threads = faiss.omp_get_max_threads()
        build_threads = params.get("build_threads", "all")
        faiss.omp_set_num_threads(threads if build_threads == "all" else int(build_threads))
        index.add(np.asarray(X))
        faiss.omp_set_num_threads(threads)
        build_s = time.perf_counter() - t0
        sampled = params.get("search") == "sample"
        for ef in params["efSearch"]:
            index.hnsw.efSearch = int(ef)
            t1 = time.perf_counter()
            if sampled:  # only the recall queries; the search time is scaled to all n rows
                idx = np.full((X.shape[0], k), -1, np.int64)
                _, idx[queries] = _search_without_self(index, X, k, rows=queries)
                search_s = (time.perf_counter() - t1) * X.shape[0] / len(queries)
            else:
                _, idx = _search_without_self(index, X, k)
                search_s = time.perf_counter() - t1
            row = {"params": {**params, "efSearch": int(ef)}, "build_s": round(build_s, 3)}
            row.update(search_s=round(search_s, 3), seconds=round(build_s + search_s, 3))
            record({**row, "search_scaled": True} if sampled else row, idx)
    else:
        raise ValueError(f"unknown kind {spec['kind']!r}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="one knn_scale case in a fresh process")
    p.add_argument("--worker", required=True, help="the case's spec as JSON (from run_case)")
    worker(json.loads(p.parse_args(argv).worker))


if __name__ == "__main__":
    main()
