"""In-process engine vs Ray on one machine: embed -> prototypes / SemDeDup, wall time and memory.

Data: generated SFT-like records (templated questions and answers over a 2,000-word vocabulary,
10% near-duplicates: a copy of an earlier record with one word changed), seeded.

Stages, each run by both engines in the same invocation, each (stage, engine) in a fresh
subprocess so its peak memory is its own:

* ``embed_minilm``: the real all-MiniLM-L6-v2 on the first ``--n-minilm`` records. In-process:
  :func:`dataprune.embeddings.embed_texts` (torch's own threads). Ray:
  :func:`dataprune.distributed.embed_texts_distributed` (parquet text shards -> ``ray.data``
  ``map_batches`` with one MiniLM per actor -> parquet embedding shards -> memmap).
* ``embed_hash``: ``--n-embed`` records through both pipelines with a cheap deterministic
  encoder (feature hashing of word unigrams/bigrams into 2**14 buckets, then a fixed Gaussian
  projection to 384-d, L2-normalised). It is *not* a quality model: it measures what each engine
  adds around the encoder.
* ``prepare`` (in-process): all ``--n`` records embedded with that encoder, saved as ``.npy``; it
  makes the 1M-row selection stage affordable on this machine.
* ``prototypes`` / ``semdedup``: selection of 10% from the ``embed_hash`` embeddings (memory-
  mapped ``.npy``): in-process :class:`~dataprune.selection.Prototypes` /
  :class:`~dataprune.selection.SemDeDup` ``fit`` vs
  :func:`dataprune.distributed.fit_with_engine` on Ray (assignment blocks and per-cluster tasks);
  the selected indices are compared for equality.
* ``lm_scores`` (in-process only): SmolLM2-135M per-token EL2N / PPL / entropy of a few records,
  for the per-record cost in the 100M plan.

Memory: peak RSS of the driver (``ru_maxrss``) and, sampled every 0.2 s with psutil, of every
Ray worker and Ray system process (the object store's shared pages count in every process that
maps them, so worker RSS overstates private memory).

Run (from the repository root)::

    python benchmarks/distributed_scale.py   # n=1,000,000; hashing embed 200,000; MiniLM 4,096
    python benchmarks/distributed_scale.py --n 100000 --n-embed 50000 --n-minilm 1024  # quicker

Writes ``benchmarks/results/distributed_scale.json`` and ``.md``, then rebuilds RESULTS.md;
``--render-only`` (or ``--report-only``) re-renders the ``.md`` from the saved JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.distributed_scale_render import render_md, write_report  # noqa: E402
from benchmarks.distributed_scale_setup import DIM, NAME, RESULTS, WORK, checksum_step  # noqa: E402

# -- data -----------------------------------------------------------------------------------------
_SUBJECTS = ["list", "string", "matrix", "graph", "tree", "file", "date", "number", "table", "set"]
_VERBS = ["sort", "reverse", "merge", "split", "filter", "count", "parse", "compress", "index"]
_LANGS = ["python", "rust", "go", "java", "c", "sql", "bash", "julia"]


def make_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """SFT-like prompt/response records; 10% are near-duplicates of earlier ones."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(2000)])
    s = rng.integers(0, len(_SUBJECTS), n)
    v = rng.integers(0, len(_VERBS), n)
    lg = rng.integers(0, len(_LANGS), n)
    k = rng.integers(2, 500, n)
    words = vocab[rng.zipf(1.3, size=(n, 8)) % len(vocab)]
    out = []
    for i in range(n):
        w = " ".join(words[i])
        prompt = (
            f"How do I {_VERBS[v[i]]} a {_SUBJECTS[s[i]]} of {k[i]} items in {_LANGS[lg[i]]}? "
            f"Context: {w}"
        )
        response = (
            f"To {_VERBS[v[i]]} the {_SUBJECTS[s[i]]} in {_LANGS[lg[i]]}, use the built-in "
            f"routine with size {k[i]}; note {words[i][0]} and {words[i][1]}."
        )
        out.append({"prompt": prompt, "response": response})
    dup = rng.random(n) < 0.10
    dup[0] = False
    src = (rng.random(n) * np.arange(n)).astype(np.int64)
    for i in np.flatnonzero(dup).tolist():
        r = dict(out[src[i]])
        toks = r["prompt"].split()
        toks[rng.integers(0, len(toks))] = vocab[rng.integers(0, len(vocab))]
        r["prompt"] = " ".join(toks)
        out[i] = r
    return out


def texts_of(records: list[dict[str, str]]) -> list[str]:
    return [r["prompt"] + "\n\n" + r["response"] for r in records]


class FeatureHashEncoder:
    """Cheap deterministic text encoder (not a quality model): hashed uni/bigrams -> 384-d."""

    def __init__(self, dim: int = DIM, n_features: int = 1 << 14, seed: int = 0) -> None:
        self.dim = dim
        self.n_features = n_features
        self.seed = seed
        self.name = f"feature-hash-{n_features}-{dim}"
        self._proj = None
        self._vec = None

    def encode(self, texts, **kwargs):
        from sklearn.feature_extraction.text import HashingVectorizer

        if self._proj is None:
            rng = np.random.default_rng(self.seed)
            self._proj = rng.standard_normal((self.n_features, self.dim)).astype(np.float32)
            self._vec = HashingVectorizer(
                n_features=self.n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2"
            )
        H = self._vec.transform(texts).astype(np.float32)
        return np.asarray(H @ self._proj, dtype=np.float32)

    def __getstate__(self):  # ship parameters, rebuild the projection in the worker
        return {
            "dim": self.dim,
            "n_features": self.n_features,
            "seed": self.seed,
            "name": self.name,
            "_proj": None,
            "_vec": None,
        }


# -- memory sampling ------------------------------------------------------------------------------
_TASK_MARKERS = ("MapWorker", "_assign_block", "_semdedup_cluster", "_facility_location_cluster")


class ProcessSampler:
    """Peak RSS of this process's descendants (Ray's raylet, workers, ...), sampled."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.interval = interval
        self.peaks: dict[int, dict] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                kids = self.me.children(recursive=True)
            except self.psutil.Error:
                kids = []
            for p in kids:
                try:
                    rss = p.memory_info().rss
                    name = " ".join(p.cmdline()[:1]) or p.name()
                except self.psutil.Error:
                    continue
                rec = self.peaks.setdefault(p.pid, {"rss": 0, "names": set()})
                rec["rss"] = max(rec["rss"], rss)
                rec["names"].add(Path(name).name if "/" in name else name)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def summary(self) -> dict:
        workers, system = [], []
        for rec in self.peaks.values():
            names = " ".join(sorted(rec["names"]))
            mb = rec["rss"] / 2**20
            is_task = any(t in names for t in _TASK_MARKERS)
            (workers if is_task else system).append((mb, names))
        workers.sort(reverse=True)
        system.sort(reverse=True)
        return {
            "n_worker_processes": len(workers),
            "worker_peak_rss_mb_max": round(workers[0][0], 1) if workers else 0.0,
            "worker_peak_rss_mb_each": [round(w[0], 1) for w in workers[:8]],
            "worker_tasks": sorted({n for _, n in workers})[:8],
            "ray_system_peak_rss_mb_sum": round(sum(s[0] for s in system), 1),
        }


def plan_costs() -> dict:
    """Single-CPU costs of the per-task kernels at the sizes the 100M plan uses."""
    import faiss
    from threadpoolctl import threadpool_limits

    from dataprune.distributed.clustered import _semdedup_cluster
    from dataprune.selection.clustering import assign_to_centroids

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)

    def unit(m):
        X = rng.standard_normal((m, DIM)).astype(np.float32)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    out = {}
    with threadpool_limits(1):
        E = unit(8192)
        t = time.perf_counter()
        _semdedup_cluster(E)
        out["scan_8192_s"] = time.perf_counter() - t
        B, C = unit(65536), unit(1000)
        t = time.perf_counter()
        assign_to_centroids(B, C)
        out["assign_65536x1000_s"] = time.perf_counter() - t
        km = faiss.Kmeans(
            DIM, 256, niter=5, seed=1, spherical=True, verbose=False, max_points_per_centroid=256
        )
        t = time.perf_counter()
        km.train(unit(65536))
        out["kmeans_65536x256x5iter_s"] = time.perf_counter() - t
    return out


def _ray_init():
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - t


# -- one stage in a subprocess ------------------------------------------------------------------
def run_stage(cfg: dict) -> dict:
    stage, engine, n = cfg["stage"], cfg["engine"], cfg["n"]
    out: dict = {"stage": stage, "engine": engine, "n": n}
    if "shard_size" in cfg:
        out["shard_size"] = cfg["shard_size"]
    sampler = ProcessSampler() if engine == "ray" else None
    if sampler is not None:
        sampler.__enter__()
        out["ray_init_s"] = round(_ray_init(), 2)
    try:
        if stage in ("embed_minilm", "embed_hash", "prepare"):
            records = make_records(cfg["n_total"], seed=0)[:n]
            texts = texts_of(records)
            del records
            model = None if stage == "embed_minilm" else FeatureHashEncoder()
            if engine == "local":
                from dataprune.embeddings import embed_texts

                if model is None:  # load (and warm up) outside the timed call, like an actor
                    from dataprune.models import load_encoder

                    t0 = time.perf_counter()
                    model = load_encoder()
                    model.encode(texts[:8])
                    out["model_load_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                X = np.asarray(embed_texts(texts, model, cache=False))
            else:
                t0 = time.perf_counter()
                from dataprune.distributed import embed_texts_distributed

                work = WORK / f"work-{stage}-{n}"
                import shutil

                shutil.rmtree(work, ignore_errors=True)
                X = np.asarray(
                    embed_texts_distributed(
                        texts,
                        model,
                        engine="ray",
                        work_dir=work,
                        shard_size=cfg["shard_size"],
                        concurrency=2,
                    )
                )
            out["seconds"] = time.perf_counter() - t0
            out["per_record_ms"] = 1000 * out["seconds"] / n
            out["records_per_s"] = n / out["seconds"]
            if engine == "ray":  # time inside the actors (model loaded), one CPU each
                dones = list(work.glob("*/*/embeddings/part-*.done.json"))
                shard_s = sum(json.loads(f.read_text())["seconds"] for f in dones)
                out["actor_cpu_ms_per_record"] = 1000 * shard_s / n
            if stage == "prepare":
                np.save(WORK / f"emb_{n}.npy", X)
            step = checksum_step(n)
            out["checksum"] = float(np.asarray(X[::step], dtype=np.float64).sum())
            out["checksum_rows"] = len(range(0, n, step))
        elif stage in ("prototypes", "semdedup"):
            from dataprune.selection import Prototypes, SemDeDup

            X = np.load(WORK / f"emb_{n}.npy", mmap_mode="r")
            cls = Prototypes if stage == "prototypes" else SemDeDup
            sel = cls(fraction=0.1, random_state=0)
            t0 = time.perf_counter()
            if engine == "local":
                sel.fit(X)
            else:
                from dataprune.distributed import fit_with_engine

                fit_with_engine(sel, X, engine="ray")
            out["seconds"] = time.perf_counter() - t0
            out["per_record_ms"] = 1000 * out["seconds"] / n
            np.save(WORK / f"sel_{stage}_{engine}_{n}.npy", sel.selected_indices_)
            out["n_clusters"] = int(sel.labels_.max()) + 1
            if stage == "semdedup":
                out["n_duplicates"] = int(sel.n_duplicates_)
        elif stage == "lm_scores":
            from dataprune.distributed.shards import LMScoreWorker

            records = make_records(n + 2, seed=1)
            w = LMScoreWorker(prompt_field="prompt", response_field="response")
            w._columns(records[:2])  # warm-up
            records = records[2:]
            t0 = time.perf_counter()
            cols = w._columns(records)
            out["seconds"] = time.perf_counter() - t0
            out["per_record_ms"] = 1000 * out["seconds"] / n
            out["mean_response_tokens"] = float(np.mean(cols["n_tokens"]))
        elif stage == "plan_costs":
            out.update(plan_costs())
            out["seconds"] = 0.0
            out["per_record_ms"] = 0.0
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
            out.update(sampler.summary())
            import ray

            ray.shutdown()
    out["driver_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _subprocess(cfg: dict, timeout: int) -> dict:
    t = time.perf_counter()
    proc = common.run_worker(__file__, cfg, timeout=timeout, env={"HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"stage {cfg} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT ") :])
    res["process_wall_s"] = time.perf_counter() - t
    print(
        f"  {cfg['stage']:>13} {cfg['engine']:>5} n={cfg['n']:>8}: {res['seconds']:.1f} s, "
        f"driver {res['driver_peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", default=None)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--n-minilm", type=int, default=4096)
    ap.add_argument("--n-embed", type=int, default=200_000)
    ap.add_argument("--n-lm", type=int, default=16)
    ap.add_argument(
        "--stages",
        default="embed_minilm,embed_hash,prepare,prototypes,semdedup,lm_scores,plan_costs",
    )
    ap.add_argument("--timeout", type=int, default=1800)
    common.add_render_only(ap, NAME, "--report-only", dest="report_only")
    args = ap.parse_args()
    if args.report_only:
        md = render_md(common.read_results(NAME))
        common.publish(NAME, md)
        return
    if args.worker:
        res = run_stage(json.loads(args.worker))
        print("RESULT " + json.dumps(res, default=str))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(",")
    info = common.machine_info(["ray", "faiss", "torch"])
    load = info["load_average_at_start"][0]
    runs = []
    for stage in stages:
        if stage in ("lm_scores", "plan_costs", "prepare"):
            n = {"lm_scores": args.n_lm, "plan_costs": 0, "prepare": args.n}[stage]
            cfg = {"stage": stage, "engine": "local", "n": n, "n_total": n}
            runs.append(_subprocess(cfg, args.timeout))
            continue
        n = {"embed_minilm": args.n_minilm, "embed_hash": args.n_embed}.get(stage, args.n)
        shard = 2048 if stage == "embed_minilm" else 65536
        for engine in ("local", "ray"):
            cfg = {"stage": stage, "engine": engine, "n": n, "n_total": n, "shard_size": shard}
            runs.append(_subprocess(cfg, args.timeout))
    by = {(r["stage"], r["engine"]): r for r in runs}
    identical = {}
    for stage in ("embed_minilm", "embed_hash"):
        if (stage, "local") in by and (stage, "ray") in by:
            identical[stage] = (
                "yes"
                if by[(stage, "local")]["checksum"] == by[(stage, "ray")]["checksum"]
                else "no"
            )
    for stage in ("prototypes", "semdedup"):
        a = WORK / f"sel_{stage}_local_{args.n}.npy"
        b = WORK / f"sel_{stage}_ray_{args.n}.npy"
        if a.is_file() and b.is_file():
            identical[stage] = "yes" if np.array_equal(np.load(a), np.load(b)) else "no"
    res = {
        "command": ("python benchmarks/distributed_scale.py " + " ".join(sys.argv[1:])).strip(),
        "machine": common.describe_machine(info),
        "machine_info": info,
        "load_average": round(load, 1),
        "ray_version": __import__("ray").__version__,
        "n": args.n,
        "n_minilm": args.n_minilm,
        "runs": runs,
        "identical": identical,
    }
    write_report(res)
    print(f"wrote {RESULTS / 'distributed_scale.md'}")


if __name__ == "__main__":
    main()
