"""The markdown report of ``benchmarks/distributed_scale.py``: the runs, the findings and the
100M-record plan, every sentence computed from the results (:func:`render_md`,
:func:`write_report`)."""

from __future__ import annotations

import numpy as np

from benchmarks import _common as common
from benchmarks.distributed_scale_setup import DIM, NAME, checksum_step


def _fmt_mb(x):
    return f"{x:,.0f}"


def _ray_system_mb(rows: list[dict]) -> float:
    vals = [r["ray_system_peak_rss_mb_sum"] for r in rows if "ray_system_peak_rss_mb_sum" in r]
    return float(np.median(vals)) if vals else 0.0


EMBED_STAGES = ("embed_minilm", "embed_hash")
STAGES = (*EMBED_STAGES, "prototypes", "semdedup")


def same_output_text(res: dict, stage: str) -> str:
    """What the engines' outputs were compared on, and the result, for one stage."""
    same = res["identical"].get(stage)
    if same is None:
        return "not compared"
    if stage in EMBED_STAGES:
        r = next(x for x in res["runs"] if x["stage"] == stage and x["engine"] == "local")
        rows = r.get("checksum_rows", len(range(0, r["n"], checksum_step(r["n"]))))
        return (
            f"checksums of {rows:,} sampled rows equal"
            if same == "yes"
            else f"checksums of {rows:,} sampled rows DIFFER"
        )
    return "identical selected indices" if same == "yes" else "selected indices DIFFER"


def render_md(res: dict) -> str:
    """The markdown section, computed from the results JSON only."""
    rows = res["runs"]
    by = {(r["stage"], r["engine"]): r for r in rows}
    ratio = ratios(by)
    cpus = _cpu_count(res)
    L = []
    L.append("## Ray engine vs in-process on one machine (`benchmarks/distributed_scale.py`)\n")
    load = res["load_average"]
    busy = (
        " (above the CPU count: other jobs competed for the cores, so timings are noisy)"
        if cpus and load > cpus
        else ""
    )
    L.append(
        f"Command: `{res['command'].strip()}`. Machine: {res['machine']}; 1-minute load average "
        f"{load} at the start{busy}. Both engines ran in the same invocation, alternating. Ray: "
        f"{res['ray_version']}, local `ray.init(num_cpus=2)`, started inside each Ray "
        "process (start-up time reported separately, not in the stage time).\n"
    )
    L.append(
        "| stage | n records | in-process s | Ray s | Ray / in-process | in-process ms/record "
        "| Ray ms/record | driver peak RSS MB (in-process / Ray) | largest Ray worker peak RSS MB "
        "| Ray start s | same output |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for stage in STAGES:
        a, b = by.get((stage, "local")), by.get((stage, "ray"))
        if not a or not b:
            continue
        L.append(
            f"| {stage} | {a['n']:,} | {a['seconds']:.1f} | {b['seconds']:.1f} | "
            f"{b['seconds'] / a['seconds']:.2f} | {a['per_record_ms']:.3g} | "
            f"{b['per_record_ms']:.3g} | {_fmt_mb(a['driver_peak_rss_mb'])} / "
            f"{_fmt_mb(b['driver_peak_rss_mb'])} | {_fmt_mb(b['worker_peak_rss_mb_max'])} | "
            f"{b.get('ray_init_s', 0):.1f} | {same_output_text(res, stage)} |"
        )
    if ("prepare", "local") in by:
        r = by[("prepare", "local")]
        L.append(
            f"\nThe {r['n']:,} selection embeddings (`prepare`, feature-hashing encoder, "
            f"in-process): {r['seconds']:.0f} s, driver peak RSS "
            f"{r['driver_peak_rss_mb']:,.0f} MB."
        )
    for stage in EMBED_STAGES:
        r = by.get((stage, "ray"))
        if r and "actor_cpu_ms_per_record" in r:
            L.append(
                f"\n`{stage}`: {r['actor_cpu_ms_per_record']:.3f} ms per record inside a "
                "Ray actor (one CPU, model loaded; the wall time above adds actor start-up, "
                "model loading and shard I/O)."
            )
    if ("lm_scores", "local") in by:
        r = by[("lm_scores", "local")]
        L.append(
            f"\nSmolLM2-135M per-token scores (EL2N, PPL, entropy), in-process, {r['n']} "
            f"records of ~{r['mean_response_tokens']:.0f} response tokens: "
            f"{r['per_record_ms']:.0f} ms/record.\n"
        )
    minilm = by.get(("embed_minilm", "local"))
    sel_n = max((r["n"] for r in rows if r["stage"] in ("prototypes", "semdedup")), default=0)
    minilm_text = (
        f"MiniLM in-process at {minilm['per_record_ms']:.1f} ms/record would take "
        f"{sel_n * minilm['per_record_ms'] / 3.6e6:.1f} h for the {sel_n:,} selection records "
        "on this machine, so the selection stages run on these cheap embeddings. "
        if minilm and sel_n
        else ""
    )
    L.append(
        "\nWhat the rows mean. *same output*: for embeddings, the in-process and Ray "
        "matrices are compared by a checksum (the float64 sum of "
        + ", ".join(
            f"{_every(checksum_step(by[(s, 'local')]['n']))} for `{s}`"
            for s in EMBED_STAGES
            if (s, "local") in by
        )
        + "), not element by element; for selections, the selected indices (same order). "
        "`embed_hash` embeddings are a feature-hashing encoder, not MiniLM: "
        + minilm_text
        + "Ray worker RSS includes mapped object-store pages shared between processes; Ray's "
        "system processes (raylet, GCS and their helpers) add a median of "
        f"{_ray_system_mb(rows):,.0f} MB per run on top.\n"
    )
    L.append(findings_text(res, by, ratio))
    L.append(
        plan_text(by, res["n"], res)
        if ("embed_minilm", "ray") in by and ("plan_costs", "local") in by
        else ""
    )
    return "\n".join(L) + "\n"


def _every(step: int) -> str:
    if step == 1:
        return "every row"
    suffix = "th" if 10 <= step % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(step % 10, "th")
    return f"every {step:,}{suffix} row"


def _cpu_count(res: dict) -> int | None:
    info = res.get("machine_info")
    if info:
        return info.get("cpu_count")
    try:  # "x86_64, 2 CPUs, 24 GiB"
        return int(res["machine"].split(",")[1].split()[0])
    except (IndexError, ValueError, KeyError):
        return None


def ratios(by: dict) -> dict:
    return {
        s: by[(s, "ray")]["seconds"] / by[(s, "local")]["seconds"]
        for s in STAGES
        if (s, "ray") in by and (s, "local") in by
    }


def findings_text(res: dict, by: dict, ratio: dict) -> str:
    findings = ["\n### Findings\n"]
    for s, r in ratio.items():
        word = "faster" if r < 1 else "slower"
        findings.append(
            f"- `{s}`: Ray took {r:.2f}x the in-process time ({word}); {same_output_text(res, s)}."
        )
    more = [
        s
        for s in ratio
        if by[(s, "ray")]["driver_peak_rss_mb"] > by[(s, "local")]["driver_peak_rss_mb"]
    ]
    findings.append(
        f"- The Ray driver's peak RSS was above the in-process run's in {len(more)} of "
        f"{len(ratio)} stages"
        + (f" ({', '.join(f'`{s}`' for s in more)})" if more else "")
        + "; the largest Ray worker reached "
        + ", ".join(
            f"{by[(s, 'ray')]['worker_peak_rss_mb_max']:,.0f} MB (`{s}`)"
            for s in ratio
            if "worker_peak_rss_mb_max" in by[(s, "ray")]
        )
        + "."
    )
    inits = [r["ray_init_s"] for r in res["runs"] if "ray_init_s" in r]
    if inits:
        findings.append(
            f"- Ray start-up (`ray.init`) took {min(inits):.1f}-{max(inits):.1f} s per process "
            f"({len(inits)} processes); it is not in the stage times."
        )
    return "\n".join(findings) + "\n"


def write_report(res: dict) -> None:
    """After a run: ``results/distributed_scale.{json,md}`` and RESULTS.md."""
    by = {(r["stage"], r["engine"]): r for r in res["runs"]}
    res["ratio_ray_over_local"] = ratios(by)
    common.publish(NAME, render_md(res), res)


def plan_text(by: dict, n: int, res: dict | None = None) -> str:
    """The 100M-record cluster plan from the per-record and per-task costs measured here."""
    N, K, CPUS = 100_000_000, 3_000, 32
    K_DEFAULT = 1_000  # dataprune.selection.clustering: round(sqrt(n)) clipped to 1,000
    m = N / K
    emb_cpu_s = by[("embed_minilm", "ray")]["actor_cpu_ms_per_record"] / 1000
    lm = by.get(("lm_scores", "local"), {})
    lm_cpu_s = 2 * lm.get("per_record_ms", float("nan")) / 1000  # 2 torch threads
    pc = by[("plan_costs", "local")]
    rate = 65536 * 256 * DIM * 2 * 5 / pc["kmeans_65536x256x5iter_s"]  # k-means flop/s, 1 CPU
    km_cpu_s = 256 * K * K * DIM * 2 * 20 / rate
    assign_cpu_s = (N / 65536) * pc["assign_65536x1000_s"] * K / 1000
    scan_task_s = pc["scan_8192_s"] * (m / 8192) ** 2
    scan_cpu_s = K * scan_task_s
    task_mb = m * DIM * 4 / 2**20 + 128 + m * 12 / 2**20
    m_def = N / K_DEFAULT
    h = 3600.0
    emb_share = N * emb_cpu_s / (N * emb_cpu_s + assign_cpu_s + scan_cpu_s + km_cpu_s)
    actor_mb = by[("embed_minilm", "ray")].get("worker_peak_rss_mb_max")
    emb_n = by[("embed_minilm", "ray")]["n"]
    emb_shard = by[("embed_minilm", "ray")].get("shard_size")
    lm_mb = lm.get("driver_peak_rss_mb")

    def wall(nodes):
        par = (N * emb_cpu_s + assign_cpu_s + scan_cpu_s) / (CPUS * nodes)
        return (par + km_cpu_s / CPUS) / h

    where = (
        f"{res['machine']}, 1-minute load average {res['load_average']} at the start"
        if res
        else "this machine"
    )
    rows = [
        "\n### Plan for 100M records on a cluster (extrapolated from the costs measured here)\n",
        f"Per-CPU costs measured in this run (one thread each): MiniLM "
        f"{emb_cpu_s * 1000:.1f} ms/record inside a Ray actor; SmolLM2-135M per-token scores "
        f"{lm_cpu_s * 1000:,.0f} CPU-ms/record (bf16 on CPU, ~{lm.get('mean_response_tokens', 0):.0f}"
        f" response tokens); SemDeDup scan of one 8,192-row cluster {pc['scan_8192_s']:.2f} s "
        f"(grows as rows^2); assignment of a 65,536-row block to 1,000 centres "
        f"{pc['assign_65536x1000_s']:.2f} s; faiss k-means {rate / 1e9:.1f} GFLOP/s.\n",
        f"Setting: N = 100M SFT records, {DIM}-d embeddings ({N * DIM * 4 / 1e9:.0f} GB float32), "
        f"`-O n_clusters={K}` (~{m:,.0f} rows per cluster; with the default cap of "
        f"{K_DEFAULT:,} clusters each would hold {m_def:,.0f} rows and each scan would take "
        f"{(m_def / m) ** 2:.0f}x as long, {K_DEFAULT * m_def**2 / (K * m**2):.0f}x the total "
        f"scan CPU time), nodes of {CPUS} CPUs.\n",
        "| step | how it runs | CPU time | memory per task |",
        "|---|---|---:|---|",
        f"| text shards | {N // 100_000:,} parquet shards of 100k records | I/O | - |",
        f"| embed (MiniLM) | `embed_shards` on `ray.data` `map_batches`, one model per 1-CPU actor"
        f" | {N * emb_cpu_s / h:,.0f} CPU-h | "
        + (
            f"largest actor here: {actor_mb:,.0f} MB ({emb_n:,} records in shards of {emb_shard}) |"
            if actor_mb and emb_shard
            else f"largest actor here: {actor_mb:,.0f} MB ({emb_n:,} records) |"
            if actor_mb
            else "not measured |"
        ),
        f"| LM scores (optional) | `lm_score_shards`, same pattern | {N * lm_cpu_s / h:,.0f} CPU-h "
        "| "
        + (f"{lm_mb:,.0f} MB in-process here ({lm['n']} records) |" if lm_mb else "not measured |"),
        f"| k-means | driver, faiss on {256 * K:,} sampled rows, 20 iterations | "
        f"{km_cpu_s / h:,.1f} CPU-h ({km_cpu_s / CPUS / 60:,.0f} min on a {CPUS}-CPU driver) | "
        f"{256 * K * DIM * 4 / 2**30:.1f} GB driver |",
        f"| assignment | {N // 65536 + 1:,} tasks of 65,536 rows | {assign_cpu_s / h:,.1f} CPU-h | "
        f"{65536 * DIM * 4 / 2**20:.0f} MB block |",
        f"| SemDeDup scans | {K:,} tasks, one per cluster | {scan_cpu_s / h:,.1f} CPU-h "
        f"({scan_task_s:,.0f} s per task) | ~{task_mb:,.0f} MB |",
        "| prototypes | nothing beyond the assignment | - | - |",
        f"| merge / fill | driver, a float64 and an int64 per record | not measured | "
        f"{N * 16 / 1e9:.1f} GB driver |",
        "",
        f"Expected wall time (embedding + selection; LM scores excluded): {wall(10):,.1f} h on "
        f"10 nodes, {wall(50):,.1f} h on 50, {wall(100):,.1f} h on 100; the MiniLM embedding "
        f"is {emb_share:.0%} of the CPU time. These figures are extrapolated from the per-CPU "
        f"costs measured on {where}, not measured on a cluster.\n",
    ]
    return "\n".join(rows)
