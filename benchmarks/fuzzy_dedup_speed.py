"""Fuzzy deduplication speed: ``dataprune.dedup.fuzzy_duplicates`` vs datasketch's MinHash + LSH.

Run:  .venv/bin/python benchmarks/fuzzy_dedup_speed.py                    # sizes 100k and 1M
      .venv/bin/python benchmarks/fuzzy_dedup_speed.py --sizes 20000 --datasketch-max 5000 \\
          --output-dir /tmp/fuzzy                                         # quick check
      .venv/bin/python benchmarks/fuzzy_dedup_speed.py --render-only      # md from the saved JSON

Data: synthetic records of 30-55 words (about 200-400 characters) drawn from a seeded 20,000-word
vocabulary with Zipf-like frequencies; a share ``--dup-rate`` of the records (placed at random
positions) are near-duplicates of a random other record, with 1-2 light edits (a word replaced
or deleted, punctuation added). The ground truth groups each source with its copies.

Methods, each in its own subprocess (so each has its own peak memory), single-threaded
(``OMP/MKL/OPENBLAS_NUM_THREADS=1``; numpy's elementwise kernels use one core anyway), same
normalisation (:func:`dataprune.dedup.normalise_text`), same character 5-gram shingles, same
threshold and ``num_perm``, both verifying candidates by their estimated Jaccard:

* dataprune: ``fuzzy_duplicates(texts, threshold, ngram, num_perm)`` (vectorised MinHash,
  LSH banding with its own ``lsh_params``, verification, connected components);
* datasketch: one ``MinHash`` per record with ``update`` per distinct shingle,
  ``MinHashLSH(threshold, num_perm)``, ``insert`` of every record, then ``query`` per record,
  candidates kept when ``MinHash.jaccard >= threshold``, union-find. Slow, so above
  ``--datasketch-max`` records it runs on the first ``--datasketch-max`` records only and the
  rates are compared per core.

Quality: pair precision / recall of the found groups against the planted ones. Memory:
``ru_maxrss`` (whole process, texts included) and the method's peak above the RSS before it
started (``VmHWM`` reset through ``/proc/self/clear_refs``), also per record.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

NAME = "fuzzy_dedup_speed"
METHODS = ("dataprune", "datasketch")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
TARGET_RECORDS, TARGET_HOURS = 100_000_000, 1.0


# ---------------------------------------------------------------------------------------- data
def make_records(n: int, seed: int, dup_rate: float) -> tuple[list[str], np.ndarray]:
    """``n`` texts and their planted group label (a copy carries its source's index)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, k)) for k in rng.integers(2, 11, 20_000)])
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    n_dup = round(dup_rate * n)
    perm = rng.permutation(n)
    dup_pos, base_pos = np.sort(perm[:n_dup]), np.sort(perm[n_dup:])
    src = rng.choice(base_pos, n_dup) if n_dup else np.empty(0, dtype=np.int64)
    need = set(src.tolist())
    texts: list[str] = [""] * n
    words: dict[int, list[str]] = {}
    for s in range(0, len(base_pos), 50_000):  # chunks: bounded temporaries
        pos = base_pos[s : s + 50_000]
        counts = rng.integers(30, 56, len(pos))
        flat = vocab[rng.choice(len(vocab), int(counts.sum()), p=p)].tolist()
        ends = np.cumsum(counts).tolist()
        for k, (a, b) in enumerate(zip([0, *ends[:-1]], ends)):
            texts[pos[k]] = " ".join(flat[a:b])
            if pos[k] in need:
                words[int(pos[k])] = flat[a:b]
    for d, s in zip(dup_pos.tolist(), src.tolist()):
        w = list(words[s])
        for _ in range(int(rng.integers(1, 3))):
            k, kind = int(rng.integers(len(w))), int(rng.integers(3))
            if kind == 0:
                w[k] = str(vocab[int(rng.integers(len(vocab)))])
            elif kind == 1 and len(w) > 1:
                del w[k]
            else:
                w[k] += str(rng.choice([",", ";", ".", "!"]))
        texts[d] = " ".join(w)
    labels = np.arange(n)
    labels[dup_pos] = src
    return texts, labels


def pair_scores(truth: np.ndarray, pred: np.ndarray) -> dict:
    """Pair precision / recall of the clustering ``pred`` against ``truth`` (label arrays)."""

    def pairs(*cols) -> int:
        c = np.unique(np.stack(cols, axis=1), axis=0, return_counts=True)[1].astype(np.int64)
        return int((c * (c - 1) // 2).sum())

    tp, n_pred, n_true = pairs(truth, pred), pairs(pred), pairs(truth)
    return {
        "true_pairs": n_true,
        "predicted_pairs": n_pred,
        "tp_pairs": tp,
        "recall": tp / n_true if n_true else float("nan"),
        "precision": tp / n_pred if n_pred else float("nan"),
    }


# -------------------------------------------------------------------------------------- worker
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _shingles(text: str, n: int) -> set[str]:
    from dataprune.dedup import normalise_text

    t = normalise_text(text)
    return {t[i : i + n] for i in range(len(t) - n + 1)} or ({t} if t else set())


def _run_datasketch(texts: list[str], cfg: dict) -> tuple[np.ndarray, dict]:
    """Group labels (union-find roots) and the LSH's bands and rows."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=cfg["threshold"], num_perm=cfg["num_perm"])
    sketches: list = []
    for k, text in enumerate(texts):
        m = MinHash(num_perm=cfg["num_perm"], seed=1)
        shingles = _shingles(text, cfg["ngram"])
        for sh in shingles:
            m.update(sh.encode("utf-8"))
        sketches.append(m if shingles else None)
        if shingles:
            lsh.insert(k, m)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k, m in enumerate(sketches):
        if m is None:
            continue
        for c in lsh.query(m):
            if c > k and m.jaccard(sketches[c]) >= cfg["threshold"]:
                parent[find(c)] = find(k)
    return np.array([find(k) for k in range(len(texts))]), {"bands": lsh.b, "rows": lsh.r}


def worker(cfg: dict) -> dict:
    import gc

    t = time.perf_counter()
    texts, truth = make_records(cfg["n"], cfg["seed"], cfg["dup_rate"])
    n_run = cfg["n_run"]
    texts, truth = texts[:n_run], truth[:n_run]
    out: dict = {"method": cfg["method"], "n_generated": cfg["n"], "n": n_run}
    out["data_s"] = round(time.perf_counter() - t, 2)
    out["mean_chars"] = float(np.mean([len(x) for x in texts]))
    if cfg["method"] == "dataprune":
        import scipy.sparse.csgraph  # noqa: F401  (imports before the clock)

        from dataprune.dedup import fuzzy_duplicates
    else:
        import datasketch  # noqa: F401
    gc.collect()
    baseline = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        out["peak_reset"] = True
    except OSError:
        out["peak_reset"] = False
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if cfg["method"] == "dataprune":
        kw = {k: cfg[k] for k in ("threshold", "ngram", "num_perm")}
        res = fuzzy_duplicates(texts, **kw, show_progress_bar=False)
        pred = np.where(res.group >= 0, res.group, len(texts) + np.arange(len(texts)))
        out.update(bands=res.params["bands"], rows=res.params["rows"])
    else:
        pred, lsh = _run_datasketch(texts, cfg)
        out.update(lsh)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out.update(wall_s=wall, cpu_s=cpu, records_per_s=n_run / wall)
    out["peak_rss_mib"] = r1.ru_maxrss / 1024  # KiB on Linux
    out["baseline_rss_mib"] = baseline / 1024
    out["method_peak_mib"] = (_status_kib("VmHWM") - baseline) / 1024
    out["bytes_per_record"] = out["method_peak_mib"] * 2**20 / n_run
    out["quality"] = pair_scores(truth, pred)
    sub = cfg.get("subset")
    if sub and sub < n_run:
        out["quality_subset"] = pair_scores(truth[:sub], pred[:sub])
    if cfg["method"] == "dataprune":  # how similar the planted pairs really are (not timed)
        sets = [(_shingles(texts[truth[d]], cfg["ngram"]), _shingles(texts[d], cfg["ngram"]))
                for d in np.flatnonzero(truth != np.arange(n_run))[:2000]]  # fmt: skip
        j = np.array([len(a & b) / len(a | b) for a, b in sets])
        out["planted_jaccard"] = {"pairs_sampled": len(j), "median": float(np.median(j)) if len(j) else None,
                                  "share_at_or_above_threshold": float(np.mean(j >= cfg["threshold"]))}  # fmt: skip
    return out


def run_case(cfg: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {**cfg, "out": str(Path(tmp) / "result.json")}
        label = f"{cfg['method']} n={cfg['n_run']:,} (of {cfg['n']:,})"
        print(f"[{time.strftime('%H:%M:%S')}] {label} ...", flush=True)
        try:
            proc = common.run_worker(__file__, cfg, timeout=timeout, env=ONE_THREAD)
        except subprocess.TimeoutExpired:
            return {"method": cfg["method"], "n": cfg["n_run"], "error": f"timeout {timeout} s"}
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            return {"method": cfg["method"], "n": cfg["n_run"], "error": tail[-400:]}
        res = json.loads(Path(cfg["out"]).read_text())
    print(f"   {res['wall_s']:.1f} s, {res['records_per_s']:,.0f} rec/s", flush=True)
    return res


# ------------------------------------------------------------------------------------ markdown
def ray_estimate(r: dict) -> dict | None:
    """Cores and memory per worker for TARGET_RECORDS in TARGET_HOURS, from the largest run."""
    ours = [c for c in r["cases"] if c["method"] == "dataprune" and "error" not in c]
    if not ours:
        return None
    big = max(ours, key=lambda c: c["n"])
    core_hours = TARGET_RECORDS / big["records_per_s"] / 3600
    cores = math.ceil(core_hours / TARGET_HOURS)
    per_worker = TARGET_RECORDS / cores
    return {
        "from_n": big["n"],
        "records_per_s_per_core": big["records_per_s"],
        "core_hours": core_hours,
        "cores": cores,
        "records_per_worker": per_worker,
        "bytes_per_record": big["bytes_per_record"],
        "worker_gib": big["bytes_per_record"] * per_worker / 2**30,
        "signature_bytes_per_record": 4 * r["num_perm"],
        "signatures_total_gib": 4 * r["num_perm"] * TARGET_RECORDS / 2**30,
    }


def _q(c: dict, key: str = "quality") -> str:
    q = c.get(key)
    return f"{100 * q['recall']:.1f} / {100 * q['precision']:.1f}" if q else "-"


def render(r: dict) -> str:
    lines = [
        "## Fuzzy deduplication: dataprune.dedup vs datasketch MinHash + LSH "
        "(`benchmarks/fuzzy_dedup_speed.py`)",
        "",
        f"Command: `{r['command']}`. Synthetic records (seed {r['seed']}): 30-55 words from a "
        f"20,000-word Zipf vocabulary; {100 * r['dup_rate']:g}% of them are near-duplicates of "
        "another record (1-2 words replaced or deleted, or punctuation added). Both methods: "
        f"normalised character {r['ngram']}-grams, threshold {r['threshold']}, num_perm "
        f"{r['num_perm']}, candidates verified by estimated Jaccard, one process each, one "
        "thread (records/s is also records/s per core). Quality: pair recall / precision (%) "
        "against the planted groups. Method memory: peak RSS above the RSS before the method "
        "started (texts already in memory); peak RSS: the whole process (ru_maxrss).",
        "",
        "| records generated | method | records run | bands x rows | wall s | records/s "
        "(per core) | CPU s / wall s | peak RSS MiB | method memory MiB | bytes / record | "
        "recall / precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in r["cases"]:
        if "error" in c:
            lines.append(f"| {c['n_generated']:,} | {c['method']} | {c['n']:,} | failed: "
                         f"{c['error']} |" + " - |" * 7)  # fmt: skip
            continue
        lines.append(
            f"| {c['n_generated']:,} | {c['method']} | {c['n']:,} | {c['bands']} x {c['rows']} "
            f"| {c['wall_s']:.1f} | {c['records_per_s']:,.0f} | {c['cpu_s'] / c['wall_s']:.2f} "
            f"| {c['peak_rss_mib']:,.0f} | {c['method_peak_mib']:,.0f} | "
            f"{c['bytes_per_record']:,.0f} | {_q(c)} |"
        )
    lines.append("")
    for n in r["sizes"]:
        by = {c["method"]: c for c in r["cases"] if c.get("n_generated") == n and "error" not in c}
        if len(by) < 2:
            continue
        o, d = by["dataprune"], by["datasketch"]
        ratio = o["records_per_s"] / d["records_per_s"]
        ran = (
            f"all {d['n']:,} records"
            if d["n"] == n
            else f"only the first {d['n']:,} of the {n:,} records (it is too slow for all)"
        )
        s = (
            f"- {n:,} records, {o['mean_chars']:.0f} characters on average: dataprune ran all "
            f"{o['n']:,} in {o['wall_s']:.1f} s ({o['records_per_s']:,.0f} records/s per "
            f"core); datasketch ran {ran} in {d['wall_s']:.1f} s ({d['records_per_s']:,.0f} "
            f"records/s per core): dataprune is {ratio:,.1f}x faster per core"
        )
        if d["n"] < n:
            s += (
                f" (rates at different sizes). On those first {d['n']:,} records the pair "
                f"recall / precision is {_q(o, 'quality_subset')} for dataprune and {_q(d)} "
                "for datasketch."
            )
        else:
            s += f". Recall / precision: dataprune {_q(o)}, datasketch {_q(d)}."
        pj = o.get("planted_jaccard")
        if pj and pj["pairs_sampled"]:
            s += (
                f" Of {pj['pairs_sampled']:,} planted pairs, "
                f"{100 * pj['share_at_or_above_threshold']:.1f}% have an exact Jaccard at or "
                f"above {r['threshold']} (median {pj['median']:.2f}); the rest are misses by "
                "definition."
            )
        lines.append(s)
    est = ray_estimate(r)
    if est:
        lines.append(
            f"- {TARGET_RECORDS / 1e6:,.0f}M records on a Ray cluster (estimate): at the "
            f"measured {est['records_per_s_per_core']:,.0f} records/s per core "
            f"({est['from_n']:,}-record run) that is {est['core_hours']:,.1f} core-hours, so "
            f"{est['cores']:,} core{'s' * (est['cores'] != 1)} for a {TARGET_HOURS:g}-hour run, each worker with "
            f"{est['records_per_worker']:,.0f} records needing {est['worker_gib']:,.2f} GiB at "
            f"the measured {est['bytes_per_record']:,.0f} bytes/record. Assumes the per-core "
            "rate holds on every worker (texts of this length, no I/O or scheduling cost) and a "
            "worker holds its whole shard; the grouping stage then receives "
            f"{est['signatures_total_gib']:,.1f} GiB of signatures "
            f"({est['signature_bytes_per_record']} bytes/record) to band and join."
        )
    lines += ["", common.machine_sentence(r["machine"])]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="comma list of record counts")
    ap.add_argument("--datasketch-max", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--dup-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=7200, help="seconds per case")
    ap.add_argument("--output-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    if args.worker:
        cfg = json.loads(args.worker)
        Path(cfg["out"]).write_text(json.dumps(worker(cfg)))
        return 0
    out_dir = args.output_dir.resolve()
    if args.render_only:
        md = render(json.loads((out_dir / f"{NAME}.json").read_text(encoding="utf-8")))
        common.publish(NAME, md, out_dir=out_dir)
        print(md)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    machine = common.machine_info(["scipy", "datasketch"])
    base = {
        "seed": args.seed,
        "dup_rate": args.dup_rate,
        "threshold": args.threshold,
        "num_perm": args.num_perm,
        "ngram": args.ngram,
    }
    cases = []
    for n in sizes:
        sub = min(n, args.datasketch_max)
        for method in METHODS:
            n_run = n if method == "dataprune" else sub
            cfg = {**base, "method": method, "n": n, "n_run": n_run, "subset": sub}
            cases.append({"n_generated": n, **run_case(cfg, args.timeout)})
    cmd = "python benchmarks/fuzzy_dedup_speed.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    result = {"command": cmd, **base, "sizes": sizes, "datasketch_max": args.datasketch_max}
    result.update(cases=cases, machine=common.record_end_load(machine))
    result["ray_estimate"] = ray_estimate(result)
    md = render(result)
    common.publish(NAME, md, result, out_dir=out_dir)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
