"""The worker of ``benchmarks/selection_speed.py``: the synthetic embeddings, one method timed on
one data file in its own process (wall time of the call, peak RSS), and the parent side that
launches it (``python benchmarks/selection_speed_worker.py --worker <spec as JSON>``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402

DIM = 384
SEED = 0
N_NEIGHBORS = 32
FRACTION = 0.1
CASE_TIMEOUT_S = 600
# --methods: re-run only these; other cases reuse their rows from the last results JSON
ONLY: set[str] = set()
PREVIOUS: dict[tuple[str, int], dict] = {}


# ------------------------------------------------------------------------------------ data
def make_embeddings(n: int, path: Path, *, dim: int = DIM, seed: int = SEED) -> Path:
    """Write ``n`` x ``dim`` normalised float32 rows (hierarchical Gaussian mixture) to ``path``."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    n_topics, n_sub = 64, 4096
    topics = unit(rng.standard_normal((n_topics, dim)))
    topic_of = rng.integers(n_topics, size=n_sub)
    a = np.sqrt(0.4)
    subs = unit(a * topics[topic_of] + np.sqrt(1 - a * a) * unit(rng.standard_normal((n_sub, dim))))
    weights = 1.0 / np.arange(1, n_sub + 1) ** 0.5
    weights /= weights.sum()
    tightness = rng.uniform(0.8, 0.93, size=n_sub)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
    for lo in range(0, n, 65536):
        hi = min(n, lo + 65536)
        r = np.random.default_rng([seed, lo])
        sub = r.choice(n_sub, size=hi - lo, p=weights)
        c = tightness[sub][:, None]
        noise = unit(r.standard_normal((hi - lo, dim)))
        out[lo:hi] = unit(c * subs[sub] + np.sqrt(1 - c**2) * noise)
    out.flush()
    del out
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------ worker
def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def reference_kcenter(X: np.ndarray, k: int, first: int, max_steps: int | None = None):
    """Numpy port of DeepCore's ``k_center_greedy`` loop (the straightforward method).

    Per step: the full Euclidean distance row (``xx + yy - 2 x y^T``, clamped, sqrt) from the new
    centre to every unselected row, stored in a (steps x n) matrix, then a running minimum.
    Returns the selection order and the number of steps actually done.
    """
    n = X.shape[0]
    steps = k - 1 if max_steps is None else min(k - 1, max_steps)
    select = np.zeros(n, dtype=bool)
    select[first] = True
    order = [first]

    def euclid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        xx = (a * a).sum(1)[:, None]
        yy = (b * b).sum(1)[None, :]
        d = xx + yy - 2.0 * (a @ b.T)
        return np.sqrt(np.maximum(d, 1e-12))

    dis = -np.ones((steps + 1, n), dtype=np.float32)
    dis[0, ~select] = euclid(X[select], X[~select])[0]
    mins = dis[0].copy()
    for i in range(steps):
        p = int(np.argmax(mins))
        select[p] = True
        order.append(p)
        if i == steps - 1:
            break
        mins[p] = -1
        dis[i + 1, ~select] = euclid(X[[p]], X[~select])[0]
        mins = np.minimum(mins, dis[i + 1])
    return np.asarray(order), len(order) - 1


def _apricot_sparse_matrix(sims: np.ndarray, idx: np.ndarray):
    """A kNN graph as the precomputed CSR apricot expects (row j = records j covers)."""
    import scipy.sparse as sp

    n = idx.shape[0]
    vals = np.maximum(sims, 0).ravel()
    covered = np.repeat(np.arange(n), idx.shape[1])
    cand = idx.ravel()
    keep = (cand >= 0) & (vals > 0)
    data = np.concatenate([np.ones(n), vals[keep]]).astype(np.float64)
    rows = np.concatenate([np.arange(n), cand[keep]])
    cols = np.concatenate([np.arange(n), covered[keep]])
    M = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    # apricot's numba kernel is compiled for int32 indices; scipy now builds int64 ones
    M.indices = M.indices.astype(np.int32)
    M.indptr = M.indptr.astype(np.int32)
    return M


def run_worker(spec: dict) -> dict:
    """Run one method on one data file; called in a fresh subprocess."""
    method, k = spec["method"], int(spec["k"])
    X = np.load(spec["data"], mmap_mode="r")
    n = X.shape[0]
    # imports done before the clock starts (torch: the exact kNN graph's matrix products)
    import faiss  # noqa: F401
    import torch  # noqa: F401

    from dataprune.selection.facility_location import FacilityLocation
    from dataprune.selection.kcenter import KCenterGreedy

    out: dict = {}
    if method.startswith("apricot"):
        from apricot import FacilityLocationSelection

        # apricot compiles its numba kernels inside every fit call: measure that fixed cost on a
        # 64-row input (reported separately; it is part of what a user waits for)
        tiny = np.asarray(X[:64], dtype=np.float64)
        t_fix = time.perf_counter()
        FacilityLocationSelection(8, metric="precomputed", optimizer="lazy").fit(
            np.maximum(tiny @ tiny.T, 0.0)
        )
        out["per_call_fixed_s"] = round(time.perf_counter() - t_fix, 2)
    baseline = _rss_kib("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    if method in ("kcenter", "kcenter_full"):
        algorithm = "auto" if method == "kcenter" else "full"
        steps = spec.get("max_steps")
        budget = k if steps is None else min(k, steps + 1)
        sel = KCenterGreedy(
            n_samples=budget, initial_centers=[spec["first"]], algorithm=algorithm
        ).fit(X)
        out.update(
            selected=sel.selected_indices_,
            radius=sel.coverage_radius_,
            algorithm=sel.algorithm_,
            steps_done=budget - 1,
        )
    elif method == "reference_kcenter":
        order, done = reference_kcenter(np.asarray(X), k, spec["first"], spec.get("max_steps"))
        out.update(selected=order, steps_done=done)
    elif method == "facility_location":
        sel = FacilityLocation(n_samples=k, n_neighbors=N_NEIGHBORS, random_state=SEED).fit(X)
        out.update(
            selected=sel.selected_indices_,
            objective_knn=sel.objective_,
            n_gain_evaluations=sel.n_gain_evaluations_,
            timings={key: round(v, 3) for key, v in sel.timings_.items()},
            knn_info=sel.knn_info_,
        )
    elif method == "apricot_dense":
        from apricot import FacilityLocationSelection

        Xd = np.asarray(X, dtype=np.float64)
        S = np.empty((n, n), dtype=np.float64)
        for lo in range(0, n, 4096):  # blockwise: one 20k x 20k dgemm crashes numpy's OpenBLAS
            np.matmul(Xd[lo : lo + 4096], Xd.T, out=S[lo : lo + 4096])
        np.maximum(S, 0.0, out=S)
        np.fill_diagonal(S, 1.0)
        ap = FacilityLocationSelection(k, metric="precomputed", optimizer="lazy").fit(S)
        out.update(selected=np.asarray(ap.ranking), objective_dense=float(np.sum(ap.gains)))
    elif method == "apricot_dense_cosine":
        from apricot import FacilityLocationSelection

        ap = FacilityLocationSelection(k, metric="cosine", optimizer="lazy").fit(
            np.asarray(X, dtype=np.float64)
        )
        out.update(selected=np.asarray(ap.ranking))
    elif method == "apricot_sparse_documented":
        from apricot import FacilityLocationSelection

        try:
            ap = FacilityLocationSelection(
                k, metric="euclidean", n_neighbors=N_NEIGHBORS, optimizer="lazy"
            ).fit(np.asarray(X, dtype=np.float64))
            out.update(selected=np.asarray(ap.ranking))
        except Exception as exc:  # what a user meets
            out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    elif method == "knn_graph":  # the graph both kNN facility-location runs are compared on
        from dataprune.neighbors import knn_graph

        seed = int(np.random.default_rng(SEED).integers(2**31 - 1))  # as FacilityLocation
        sims, idx = knn_graph(X, N_NEIGHBORS, random_state=seed)
        np.save(spec["graph"] + ".sims.npy", sims)
        np.save(spec["graph"] + ".idx.npy", idx)
    elif method == "facility_location_graph":  # our lazy greedy on the saved graph
        from dataprune.selection.facility_location import (
            _all_gains,
            _coverage_csr,
            _lazy_greedy,
        )

        sims, idx = np.load(spec["graph"] + ".sims.npy"), np.load(spec["graph"] + ".idx.npy")
        indptr, indices, data = _coverage_csr(sims, idx, "clip")
        selected, _, coverage, _, n_evals = _lazy_greedy(indptr, indices, data, k)
        _all_gains(indptr, indices, data, coverage)  # scores_, as the estimator computes them
        out.update(
            selected=selected, objective_knn=float(coverage.sum()), n_gain_evaluations=n_evals
        )
    elif method == "apricot_sparse_int32":
        from apricot import FacilityLocationSelection

        sims, idx = np.load(spec["graph"] + ".sims.npy"), np.load(spec["graph"] + ".idx.npy")
        M = _apricot_sparse_matrix(sims, idx)
        ap = FacilityLocationSelection(k, metric="precomputed", optimizer="lazy").fit(M)
        out.update(selected=np.asarray(ap.ranking), objective_knn=float(np.sum(ap.gains)))
    elif method == "semdedup":
        from dataprune.selection.semdedup import SemDeDup

        sel = SemDeDup(n_samples=k, random_state=SEED, show_progress_bar=False).fit(X)
        out.update(selected=sel.selected_indices_, n_duplicates=int(sel.n_duplicates_))
    elif method == "prototypes":
        try:
            from dataprune.selection.prototypes import Prototypes
        except ImportError:  # pragma: no cover - written by another part of the project
            out["error"] = "dataprune.selection.prototypes not available"
        else:
            sel = Prototypes(n_samples=k, random_state=SEED).fit(X)
            out.update(selected=sel.selected_indices_, n_clusters=len(sel.cluster_centers_))
    else:
        raise ValueError(f"unknown method {method}")
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    out["peak_rss_mib"] = round(_rss_kib("VmHWM") / 1024, 1)
    out["baseline_rss_mib"] = round(baseline / 1024, 1)
    if "selected" in out:
        sel_path = Path(spec["out"]).with_suffix(".selected.npy")
        np.save(sel_path, np.asarray(out.pop("selected"), dtype=np.int64))
        out["selected_path"] = str(sel_path)
    out["n"], out["k"], out["method"] = n, k, method
    return out


# ------------------------------------------------------------------------------------ parent
def run_case(spec: dict, workdir: Path, timeout: int = CASE_TIMEOUT_S) -> dict:
    tag = f"{spec['method']}_{spec['n']}"
    if ONLY and spec["method"] not in ONLY and (spec["method"], spec["n"]) in PREVIOUS:
        return dict(PREVIOUS[(spec["method"], spec["n"])])
    out = workdir / f"{tag}.json"
    spec = {**spec, "out": str(out)}
    load = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] {tag} (load {load:.1f}) ...", flush=True)
    t = time.perf_counter()
    try:
        proc = common.run_worker(__file__, spec, timeout=timeout)
    except subprocess.TimeoutExpired:
        res = {"method": spec["method"], "n": spec["n"], "k": spec["k"], "part": spec.get("part")}
        res["skipped"] = f"did not finish within the {timeout} s case limit"
        print("   timed out", flush=True)
        return {**res, "load_avg": round(load, 1)}
    if proc.returncode != 0:
        res = {"method": spec["method"], "n": spec["n"], "k": spec["k"], "part": spec.get("part")}
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        res["error"] = " | ".join(tail)[-400:]
        if proc.returncode < 0:
            res["error"] = f"killed by signal {-proc.returncode} " + res["error"]
        print("   failed:", res["error"], flush=True)
        return {**res, "load_avg": round(load, 1)}
    res = json.loads(out.read_text())
    res["part"] = spec.get("part")
    res["load_avg"] = round(load, 1)
    res["process_s"] = round(time.perf_counter() - t, 1)
    print(
        f"   {res.get('wall_s')} s, peak {res.get('peak_rss_mib')} MiB"
        + (f", {res['error']}" if "error" in res else ""),
        flush=True,
    )
    return res


def main(argv: list[str] | None = None) -> None:
    """``--worker <spec as JSON>``: run one case and write its result to the spec's ``out``."""
    p = argparse.ArgumentParser(description="one selection_speed case in a fresh process")
    p.add_argument("--worker", required=True, help="the case's spec as JSON (from run_case)")
    spec = json.loads(p.parse_args(argv).worker)
    res = run_worker(spec)
    Path(spec["out"]).write_text(json.dumps(res, default=float))


if __name__ == "__main__":
    main()
