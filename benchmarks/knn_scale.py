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
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks import knn_scale_worker  # noqa: E402
from benchmarks.knn_scale_setup import (  # noqa: E402
    CACHE,
    CASE_TIMEOUT_S,
    DATASET_TEXT,
    DATASETS,
    DIM,
    EXACT_MAX_N,
    GT_TIMEOUT_S,
    N_QUERIES,
    NAME,
    SEED,
    SIZES,
    SMOKE_ROOT,
    SMOKE_SIZES,
    VARIANT_BY_NAME,
    VARIANTS,
    Variant,
    dataset_path,
    default_k,
)

logger = logging.getLogger("benchmarks.knn_scale")


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
        proc = common.run_worker(knn_scale_worker.__file__, spec, timeout=timeout)
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
    args = p.parse_args(argv)
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
