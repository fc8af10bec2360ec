"""Speed and scale of k-center greedy and facility location, against peers in the same run.

Data: synthetic L2-normalised float32 embeddings (384-d, seeded hierarchical Gaussian mixture: 64
topics x 4096 sub-clusters with Zipf sizes; nearest-neighbour cosine ~0.6-0.85, random pairs ~0),
written once to ``.npy`` files and opened as ``np.memmap`` by every run. Each method runs in its own
subprocess: wall time of the selection call (imports and data generation excluded) and peak
resident memory (``VmHWM``, reset after the imports; the memory-mapped input counts once touched).

Peers
-----
- ``apricot-select`` 0.6.1 facility location. Dense mode on the same clipped-cosine similarity
  (``metric="precomputed"``; the n x n float64 matrix is built inside the timed call, as a user must)
  and, at 10k, ``metric="cosine"`` as typed by a user (it optimises cos^2). Its documented sparse
  mode (``n_neighbors=``) is run to show what a user meets; a workaround (our kNN graph passed as a
  precomputed CSR matrix with int32 indices) is timed at 200k on the very graph we use, so the
  outputs can be compared exactly.
- A straightforward reference k-center: a numpy port of DeepCore's ``k_center_greedy`` loop (a
  full distance row from the new centre to every unselected row per step, kept in a
  (k - 1) x n matrix). Where it cannot run (memory, time), it is timed on its first steps and the
  full time is extrapolated (marked as such).

Run (from the repository root)::

    python benchmarks/selection_speed.py                     # all parts
    python benchmarks/selection_speed.py --parts small,200k  # or any of: small, 200k, 1m
    python benchmarks/selection_speed.py --render-only       # md/png from the saved JSON

Writes ``benchmarks/results/selection_speed.json`` (merging parts), ``selection_speed.md`` and
``selection_speed.png``, then rebuilds ``benchmarks/RESULTS.md``.

The worker (data, one case timed in its own process) is ``selection_speed_worker.py``; the
markdown section ``selection_speed_render.py``; the plot ``selection_speed_plot.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.selection_speed_plot import plot  # noqa: E402
from benchmarks.selection_speed_render import render_md  # noqa: E402
from benchmarks.selection_speed_worker import (  # noqa: E402
    FRACTION,
    ONLY,
    PREVIOUS,
    SEED,
    make_embeddings,
    run_case,
)

RESULTS = HERE / "results"
NAME = "selection_speed"
SIZES = {"small": (10_000, 20_000), "200k": 200_000, "1m": 1_000_000}
REPEATS = 3  # paired runs of facility location and apricot dense at the small sizes


# ------------------------------------------------------------------------------------ cases
def _selected(res: dict) -> np.ndarray | None:
    p = res.get("selected_path")
    return np.load(p) if p and Path(p).exists() else None


def _kcenter_radius(X: np.ndarray, sel: np.ndarray) -> float:
    """Exact covering radius of ``sel`` (1-NN search, blocked)."""
    import faiss

    index = faiss.IndexFlatL2(X.shape[1])
    index.add(np.ascontiguousarray(X[np.sort(sel)]))
    worst = 0.0
    for lo in range(0, X.shape[0], 65536):
        d, _ = index.search(np.asarray(X[lo : lo + 65536]), 1)
        worst = max(worst, float(np.sqrt(max(d.max(), 0.0))))
    return worst


def _compare_kcenter(X: np.ndarray, ours: np.ndarray, other: np.ndarray) -> dict:
    """Same picks? Where the orders first differ, how far apart were the two candidates?

    Two float32 implementations can only disagree where the farthest candidates are within float32
    rounding of each other; the gap is measured in float64.
    """
    m = min(len(ours), len(other))
    a, b = ours[:m], other[:m]
    out = {"same_set_fraction": round(len(np.intersect1d(a, b)) / m, 4)}
    if np.array_equal(a, b):
        out["same_order"] = True
        return out
    i = int(np.argmax(a != b))
    chosen = np.asarray(X[np.sort(a[:i])], dtype=np.float64)
    two = np.asarray(X[[a[i], b[i]]], dtype=np.float64)
    d = np.sqrt(np.maximum(((two[:, None, :] - chosen[None]) ** 2).sum(-1), 0.0)).min(axis=1)
    out.update(same_order=False, first_swap_step=i, first_swap_gap=float(abs(d[0] - d[1])))
    return out


def _fl_graph_cases(base: dict, workdir: Path) -> dict:
    """Our lazy greedy and apricot's on one saved kNN graph (identical function)."""
    graph = str(workdir / f"graph_{base['n']}")
    g = {**base, "graph": graph}
    case = {"knn_graph": run_case({**g, "method": "knn_graph"}, workdir)}
    if "wall_s" not in case["knn_graph"]:
        return case
    for m in ("facility_location_graph", "apricot_sparse_int32"):
        case[m] = run_case({**g, "method": m}, workdir)
    a, b = _selected(case["facility_location_graph"]), _selected(case["apricot_sparse_int32"])
    if a is not None and b is not None:
        case["apricot_sparse_int32"]["same_picks_as_dataprune"] = round(
            len(np.intersect1d(a, b)) / len(a), 4
        )
        case["apricot_sparse_int32"]["same_order_as_dataprune"] = bool(np.array_equal(a, b))
    return case


def _repeat_pair(case: dict, base: dict, workdir: Path) -> None:
    """Facility location and apricot's dense mode, ``REPEATS`` paired runs in alternating order
    (single runs of apricot varied 2x on the idle machine): each row's ``wall_s`` becomes the
    median, the runs and the per-run ratios are kept."""
    pair = ("facility_location", "apricot_dense")
    if REPEATS < 2 or any("wall_s" not in case.get(m, {}) for m in pair):
        return
    runs = {m: [case[m]] for m in pair}
    for r in range(1, REPEATS):
        for m in pair[::-1] if r % 2 else pair:
            runs[m].append(run_case({**base, "method": m}, workdir))
    ok = [i for i in range(REPEATS) if all("wall_s" in runs[m][i] for m in pair)]
    for m in pair:
        case[m]["wall_s_runs"] = [runs[m][i]["wall_s"] for i in ok]
        case[m]["load_avg_runs"] = [runs[m][i]["load_avg"] for i in ok]
        case[m]["wall_s"] = float(np.median(case[m]["wall_s_runs"]))
    case["apricot_dense"]["ratio_runs"] = [
        runs["apricot_dense"][i]["wall_s"] / runs["facility_location"][i]["wall_s"] for i in ok
    ]


def part_small(data_dir: Path, workdir: Path) -> list[dict]:
    from dataprune.selection.facility_location import facility_location_objective

    rows = []
    for n in SIZES["small"]:
        path = make_embeddings(n, data_dir / f"emb_{n}.npy")
        X = np.load(path, mmap_mode="r")
        k = round(FRACTION * n)
        first = int(np.random.default_rng(SEED).integers(n))
        base = {"data": str(path), "n": n, "k": k, "first": first, "part": "small"}
        methods = ["kcenter", "kcenter_full", "reference_kcenter", "facility_location"]
        methods += ["apricot_dense"]
        if n == SIZES["small"][0]:
            methods += ["apricot_dense_cosine", "apricot_sparse_documented"]
        case = {m: run_case({**base, "method": m}, workdir) for m in methods}
        _repeat_pair(case, base, workdir)
        case.update(_fl_graph_cases(base, workdir))
        ref = _selected(case["reference_kcenter"])
        for m in ("kcenter", "kcenter_full", "reference_kcenter"):
            s = _selected(case[m])
            if s is None:
                continue
            if "radius_exact" not in case[m]:
                case[m]["radius_exact"] = _kcenter_radius(X, s)
            if m != "reference_kcenter" and ref is not None:
                case[m]["vs_reference"] = _compare_kcenter(X, s, ref)
        for m in ("facility_location", "apricot_dense", "apricot_dense_cosine"):
            s = _selected(case.get(m, {}))
            if s is not None:
                case[m]["objective_dense"] = facility_location_objective(X, s)
        ap = _selected(case["apricot_dense"])
        ours = _selected(case["facility_location"])
        if ap is not None and ours is not None:
            case["facility_location"]["overlap_with_apricot_dense"] = round(
                len(np.intersect1d(ap, ours)) / k, 4
            )
        rows += list(case.values())
    return rows


def part_200k(data_dir: Path, workdir: Path) -> list[dict]:
    n = SIZES["200k"]
    path = make_embeddings(n, data_dir / f"emb_{n}.npy")
    X = np.load(path, mmap_mode="r")
    k = round(FRACTION * n)
    first = int(np.random.default_rng(SEED).integers(n))
    base = {"data": str(path), "n": n, "k": k, "first": first, "part": "200k"}
    case = {"kcenter": run_case({**base, "method": "kcenter"}, workdir)}
    # the straightforward loops cost the same per step all along: time their first steps
    for m, steps in (("kcenter_full", min(400, k // 4)), ("reference_kcenter", min(60, k // 4))):
        r = run_case({**base, "method": m, "max_steps": steps}, workdir)
        if "wall_s" in r:
            r["extrapolated_wall_s"] = round(r["wall_s"] * (k - 1) / r["steps_done"], 1)
            r["note"] = f"timed on the first {r['steps_done']} of {k - 1} steps, extrapolated"
        if m == "reference_kcenter":
            r["full_run_distance_matrix_gib"] = round((k - 1) * n * 4 / 2**30, 1)
        case[m] = r
    ours = _selected(case["kcenter"])
    if ours is not None:
        if "radius_exact" not in case["kcenter"]:
            case["kcenter"]["radius_exact"] = _kcenter_radius(X, ours)
        for m in ("kcenter_full", "reference_kcenter"):
            s = _selected(case[m])
            if s is not None:
                case[m]["vs_dataprune"] = _compare_kcenter(X, ours, s)
    case["facility_location"] = run_case({**base, "method": "facility_location"}, workdir)
    case.update(_fl_graph_cases(base, workdir))
    case["apricot_dense"] = {
        "method": "apricot_dense",
        "n": n,
        "k": k,
        "skipped": f"needs the dense n x n float64 similarity matrix: {n * n * 8 / 2**30:.0f} GiB",
    }
    return [{**r, "part": "200k"} for r in case.values()]


def part_1m(data_dir: Path, workdir: Path) -> list[dict]:
    n = SIZES["1m"]
    path = make_embeddings(n, data_dir / f"emb_{n}.npy")
    k = round(FRACTION * n)
    first = int(np.random.default_rng(SEED).integers(n))
    base = {"data": str(path), "n": n, "k": k, "first": first, "part": "1m"}
    rows = [
        run_case({**base, "method": "facility_location"}, workdir, timeout=6000),
        run_case({**base, "method": "prototypes"}, workdir, timeout=1800),
        run_case({**base, "method": "semdedup"}, workdir, timeout=1800),
        # the covering radius is the selector's own (exact running minimum distances); an
        # independent 1-NN check against 100,000 centres would cost as much as the selection
        run_case({**base, "method": "kcenter"}, workdir, timeout=5400),
    ]
    return [{**r, "part": "1m"} for r in rows]


# ------------------------------------------------------------------------------------ report
def write_report(payload: dict, *, write_json: bool = True) -> None:
    """``results/selection_speed.{json,md,png}`` (the JSON only after a run), then RESULTS.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = render_md(payload)
    common.publish(NAME, md, payload if write_json else None, indent=1)
    plot(payload["rows"], payload["meta"], RESULTS / f"{NAME}.png")


def _reruns_after(reruns: list[str], full_parts: list[str]) -> list[str]:
    """The recorded partial re-runs (``"methods (part, part)"``) minus the parts just run in full
    (their rows are all from this run now)."""
    out = []
    for entry in reruns:
        head, _, tail = entry.rpartition(" (")
        left = [p for p in tail.rstrip(")").split(", ") if p not in full_parts]
        if head and left:
            out.append(f"{head} ({', '.join(left)})")
        elif not head:
            out.append(entry)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="small,200k,1m", help="comma list of small, 200k, 1m")
    p.add_argument(
        "--data-dir",
        default=os.path.join(tempfile.gettempdir(), "dataprune-selection-speed"),
        help="where the synthetic embeddings are written (reused between runs)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test on sizes /50; prints the rows and writes no results",
    )
    common.add_render_only(p, NAME, "--report-only", dest="report_only")
    p.add_argument(
        "--methods",
        default="",
        help="comma list: re-run only these methods (others reuse the recorded rows)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help="paired runs of facility location and apricot dense at 10k/20k (medians reported)",
    )
    args = p.parse_args(argv)
    globals()["REPEATS"] = max(1, args.repeats)
    if args.methods:
        ONLY.update(m.strip() for m in args.methods.split(",") if m.strip())
        prev_json = RESULTS / f"{NAME}.json"
        if prev_json.exists():
            for r in json.loads(prev_json.read_text())["rows"]:
                PREVIOUS[(r["method"], r["n"])] = r
    if args.report_only:
        write_report(common.read_results(NAME), write_json=False)
        return
    if args.quick:
        SIZES.update(small=(1000, 2000), **{"200k": 4000, "1m": 8000})
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    workdir = data_dir / "runs"
    workdir.mkdir(exist_ok=True)
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    prev = RESULTS / f"{NAME}.json"
    started = time.time()
    info = common.machine_info(["faiss", "apricot", "torch"])
    rows: list[dict] = []
    funcs = {"small": part_small, "200k": part_200k, "1m": part_1m}
    durations: dict = {}
    for part in parts:
        t = time.time()
        new = funcs[part](data_dir, workdir)
        if not ONLY:
            durations[part] = round((time.time() - t) / 60, 1)
        if args.quick:
            for r in new:
                print(json.dumps(r, default=float))
            continue
        rows += new
    if args.quick:
        return
    # merge with the other parts' rows written meanwhile (parts may run as separate jobs)
    old = json.loads(prev.read_text()) if prev.exists() else {"rows": [], "meta": {}}
    rows = [r for r in old["rows"] if r.get("part") not in parts] + rows
    durations = {**old.get("meta", {}).get("part_minutes", {}), **durations}
    common.record_end_load(info)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "parts": sorted({r.get("part", "?") for r in rows}),
        "part_minutes": durations,
        "cpu_count": info["cpu_count"],
        "machine": info,
        "reruns": _reruns_after(old.get("meta", {}).get("reruns", []), [] if ONLY else parts)
        + ([f"{', '.join(sorted(ONLY))} ({', '.join(parts)})"] if ONLY else []),
        "last_run_minutes": round((time.time() - started) / 60, 1),
    }
    write_report({"meta": meta, "rows": rows})
    print(f"wrote {RESULTS / (NAME + '.md')}")


if __name__ == "__main__":
    main()
