"""kNN-graph build time, peak memory and recall@k from 10k to 1M rows (384-d), every method in one run.

What: the k-nearest-neighbour graph (every row a query, self excluded, inner product on
L2-normalised float32 rows) as :func:`dataprune.neighbors.knn_graph` builds it, with ``k`` the
library default (``FacilityLocation(n_neighbors=...)``, read from its signature; ``knn_graph``
itself has no default ``k``). Compared in the same run, each case in its own subprocess (wall time
of the build call only, imports and page-cache warm-up excluded; peak RSS = ``VmHWM`` reset after
the imports, so it includes the memory-mapped input once touched):

- ``exact``: the library's blockwise exact GEMM (``method="exact"``);
- ``ivf``: the library's faiss IVF-Flat at its defaults (quantizer trained on a random sample of
  ``max(40 * nlist, 10_000)`` rows), and variants with another ``nlist`` / ``nprobe``;
- ``faiss-ivf-full``: faiss IVF-Flat called directly, quantizer trained the plain way (faiss's own
  cap of 256 rows per list, i.e. all rows up to 1M), same ``nlist`` / ``nprobe`` as the library;
- ``hnsw``: faiss ``IndexHNSWFlat`` (inner product, M=32, efConstruction=40) called directly, one
  build and an efSearch sweep (time = build + that search);
- ``cells``: the library's cell self-join (``method="cells"``) at its defaults, and one variant;
- ``dp-hnsw`` / ``dp-auto``: the library's HNSW (one-thread build, efSearch tuned on a sample) and
  ``method="auto"`` (the cells kept when a 2,000-row sample reaches the recall target, else HNSW;
  the library default above 100k rows) at their defaults.

Recall@k is measured against exact search of a fixed, seeded sample of 10,000 query rows (all
rows when n <= 10,000) against all rows, self excluded as ``knn_graph`` excludes it; the ground
truth is computed once per dataset and size and cached. Data: the clustered synthetic embeddings
of ``benchmarks/selection_speed.py`` (``make_embeddings`` in ``selection_speed_worker.py``) and a
continuous low-rank set (rank 24 Gaussian in a random subspace + isotropic noise, L2-normalised,
seeded), written once to ``.npy`` under ``benchmarks/.cache/knn_scale/`` and memory-mapped.

Run (from the repository root; resumable: finished cases are kept under the cache dir and skipped)::

    python benchmarks/knn_scale.py                                   # 10k, 100k, 300k, 1M
    python benchmarks/knn_scale.py --sizes 10000,100000 --methods ivf,hnsw
    python benchmarks/knn_scale.py --retry-failed                    # re-run timed-out/failed cases
    python benchmarks/knn_scale.py --render-only                     # md/png from the saved JSON
    python benchmarks/knn_scale.py --smoke                           # 5k/10k into a temp dir

Each case has a time limit (``--timeout``, 1800 s; an HNSW sweep keeps the efSearch values it
finished); exact search is not run above ``--exact-max-n`` (300k) and an n^2 extrapolation from the
largest measured size is shown instead. The 1-minute load average is recorded before and after each
case, and every case keeps the command of the run that measured it.

Writes ``benchmarks/results/knn_scale.json`` (all cases, merged over runs), ``knn_scale.md``
(tables and verdicts, see ``benchmarks/knn_scale_render.py``) and ``knn_scale.png`` (time, peak
memory and recall against n), then rebuilds ``benchmarks/RESULTS.md``. ``--smoke`` (5k and 10k
rows; exact only at 5k, so the not-run / extrapolation path is exercised too) writes the same files
under ``<tmp>/dataprune-knn-scale-smoke/`` and never touches ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.selection_speed_worker import _reset_peak, _rss_kib, make_embeddings  # noqa: E402

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


# ------------------------------------------------------------------------------------- parent
@dataclass
class Run:
    """One invocation's settings."""

    cache: Path
    results: Path
    k: int
    n_queries: int
    timeout: int
    gt_timeout: int
    exact_max_n: int
    retry_failed: bool
    command: str
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))


def _spawn(spec: dict[str, Any], timeout: int) -> tuple[str, str | None]:
    """Run the worker; ``(status, error)`` with status ok / timeout / error."""
    try:
        proc = common.run_worker(__file__, spec, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"did not finish within the {timeout} s case limit"
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])[-400:]
        sig = f"killed by signal {-proc.returncode}: " if proc.returncode < 0 else ""
        return "error", sig + tail
    return "ok", None


def ensure_groundtruth(run: Run, dataset: str, n: int, data: Path) -> tuple[Path, dict]:
    """The cached ground-truth file of (dataset, n), computed in a subprocess if missing."""
    path = run.cache / "gt" / f"{dataset}_{n}_k{run.k}_q{run.n_queries}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        logger.info("ground truth %s n=%d (exact, %d queries) ...", dataset, n, run.n_queries)
        spec = {"task": "groundtruth", "data": str(data), "k": run.k, "out": str(path)}
        status, err = _spawn({**spec, "n_queries": run.n_queries}, run.gt_timeout)
        if status != "ok" or not path.exists():
            raise RuntimeError(f"ground truth for {dataset} n={n} failed: {err}")
    with np.load(path) as gt:
        info = {"n_queries": len(gt["queries"]), "seconds": round(float(gt["seconds"]), 2)}
    return path, info


def run_case(run: Run, v: Variant, dataset: str, n: int, data: Path, gt: Path) -> dict:
    """One (dataset, n, variant) case: reused from the cache when finished, else run now."""
    case_id = f"{dataset}-{n}-{v.name}"
    path = run.cache / "cases" / f"{case_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    params = v.params(n)
    old = json.loads(path.read_text()) if path.exists() else {}
    same = old.get("params") == json.loads(json.dumps(params)) and old.get("k") == run.k
    skip = v.name == "exact" and n > run.exact_max_n
    if same and old["status"] == "ok":
        return old
    if same and old["status"] in ("timeout", "error") and not run.retry_failed and not skip:
        return old
    case: dict[str, Any] = {
        "id": case_id, "dataset": dataset, "n": n, "variant": v.name, "kind": v.kind,
        "method": v.method, "label": v.label, "k": run.k, "params": params,
        "effective_params": v.effective(n), "command": run.command,
        "run_started": run.started, "date": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    if skip:  # decided anew each run (--exact-max-n may change)
        case.update(status="skipped", rows=[], error=f"n > --exact-max-n {run.exact_max_n}")
        common.write_json(path, case)
        return case
    partial = path.with_suffix(".partial.json")
    partial.unlink(missing_ok=True)
    spec = {"task": "case", "kind": v.kind, "method": v.method, "params": params, "k": run.k}
    spec.update(data=str(data), gt=str(gt), out=str(partial))
    case["load_before"] = round(common.load_1min(), 2)
    logger.info("%s (load %.1f) ...", case_id, case["load_before"])
    t = time.perf_counter()
    status, err = _spawn(spec, run.timeout)
    case.update(
        load_after=round(common.load_1min(), 2), process_s=round(time.perf_counter() - t, 1)
    )
    res = json.loads(partial.read_text()) if partial.exists() else {"rows": []}
    partial.unlink(missing_ok=True)
    case.update(res, status=status, error=err)
    common.write_json(path, case)
    best = ", ".join(f"{r['seconds']:.1f} s recall {r['recall']:.3f}" for r in case["rows"])
    logger.info("   %s%s", status, f": {best}" if best else f" ({err})")
    return case


def _payload(run: Run, info: dict, cases: dict[str, dict], gts: dict[str, dict]) -> dict:
    """The results JSON: cases and ground-truth info merged with the previous file's."""
    out_json = run.results / f"{NAME}.json"
    old = json.loads(out_json.read_text()) if out_json.exists() else {}
    same = (info["command"], info["started"])
    runs = [r for r in old.get("meta", {}).get("runs", []) if (r["command"], r["started"]) != same]
    meta = {
        "k": run.k,
        "k_source": "FacilityLocation(n_neighbors=...) default; knn_graph has no default k",
        "dim": DIM,
        "seed": SEED,
        "n_queries": run.n_queries,
        "exact_max_n": run.exact_max_n,
        "case_timeout_s": run.timeout,
        "datasets": DATASET_TEXT,
        "variants": {v.name: v.label for v in VARIANTS},
        "runs": [*runs, info],
    }
    merged = {c["id"]: c for c in old.get("cases", [])} | cases
    return {
        "meta": meta,
        "groundtruth": {**old.get("groundtruth", {}), **gts},
        "cases": sorted(merged.values(), key=lambda c: (c["dataset"], c["n"], c["id"])),
    }


def execute(run: Run, datasets: list[str], sizes: list[int], variants: list[Variant]) -> dict:
    """Every requested case, in order of size; the results JSON is rewritten after each case."""
    info = {
        "command": run.command,
        "started": run.started,
        "machine": common.machine_info(["faiss", "torch"]),
    }
    cases: dict[str, dict] = {}
    gts: dict[str, dict] = {}
    run.results.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        for dataset in datasets:
            data = dataset_path(run.cache, dataset, n)
            gt, gts[f"{dataset}-{n}"] = ensure_groundtruth(run, dataset, n, data)
            for v in variants:
                c = run_case(run, v, dataset, n, data, gt)
                cases[c["id"]] = c
                common.write_json(run.results / f"{NAME}.json", _payload(run, info, cases, gts))
    common.record_end_load(info["machine"])
    payload = _payload(run, info, cases, gts)
    common.write_json(run.results / f"{NAME}.json", payload)
    return payload


def publish(payload: dict, results: Path) -> None:
    """Write the md and png next to the JSON (RESULTS.md rebuilt only for the real results dir)."""
    from benchmarks import knn_scale_render as render

    render.plot(payload, results / f"{NAME}.png")
    common.publish(NAME, render.render_md(payload), None, out_dir=results)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma list of n")
    p.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma list of: clustered, lowrank"
    )
    p.add_argument(
        "--methods", default="", help="comma list of variants (default all): " + ", ".join(VARIANT_BY_NAME)
    )  # fmt: skip
    p.add_argument("--timeout", type=int, default=CASE_TIMEOUT_S, help="seconds per case")
    p.add_argument("--gt-timeout", type=int, default=GT_TIMEOUT_S, help="seconds per ground truth")
    p.add_argument("--exact-max-n", type=int, default=EXACT_MAX_N, help="largest n run exactly")
    p.add_argument("--n-queries", type=int, default=N_QUERIES, help="recall query sample size")
    p.add_argument("--retry-failed", action="store_true", help="re-run timed-out / failed cases")
    p.add_argument("--cache-dir", type=Path, default=None, help=f"default {CACHE}")
    p.add_argument("--results-dir", type=Path, default=None, help=f"default {common.RESULTS}")
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"sizes {SMOKE_SIZES}, exact only up to {SMOKE_SIZES[0]}, cache and results under "
        f"{SMOKE_ROOT} (never benchmarks/results)",
    )
    common.add_render_only(p, NAME)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    logging.basicConfig(format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(logging.INFO)  # progress; other libraries' INFO (faiss loader) stays quiet
    root = SMOKE_ROOT if args.smoke else None
    cache = args.cache_dir or (root / "cache" if root else CACHE)
    results = args.results_dir or (root / "results" if root else common.RESULTS)
    if args.render_only:
        publish(json.loads((results / f"{NAME}.json").read_text()), results)
        logger.info("rendered %s", results / f"{NAME}.md")
        return
    sizes = list(SMOKE_SIZES) if args.smoke else [int(s) for s in args.sizes.split(",") if s]
    names = [m.strip() for m in args.methods.split(",") if m.strip()] or list(VARIANT_BY_NAME)
    unknown = [m for m in names if m not in VARIANT_BY_NAME]
    if unknown:
        p.error(f"unknown methods {unknown}; valid: {', '.join(VARIANT_BY_NAME)}")
    niceness = os.nice(0)
    run = Run(
        cache=cache,
        results=results,
        k=default_k(),
        n_queries=args.n_queries,
        timeout=args.timeout,
        gt_timeout=args.gt_timeout,
        exact_max_n=SMOKE_SIZES[0] if args.smoke else args.exact_max_n,
        retry_failed=args.retry_failed,
        command=(f"nice -n {niceness} " if niceness else "")
        + shlex.join(["python", "benchmarks/knn_scale.py", *argv]),
    )
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    payload = execute(run, datasets, sizes, [VARIANT_BY_NAME[m] for m in names])
    publish(payload, results)
    logger.info("wrote %s", results / f"{NAME}.md")


if __name__ == "__main__":
    main()
