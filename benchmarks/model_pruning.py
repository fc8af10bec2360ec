"""Does the calibration set chosen by data pruning change a Wanda-pruned model's perplexity?

SmolLM2-135M-Instruct pruned to 50% unstructured and 2:4 with:

* magnitude (no data);
* Wanda from a random calibration set drawn from a mixed pool (C4 + Wikipedia + GSM8K train);
* Wanda from coreset-selected calibration sets (k-center, prototypes over MiniLM embeddings of the
  candidate blocks) from the same pool;
* Wanda from a domain-matched set (random blocks of GSM8K train only).

Perplexity on fixed held-out slices: Wikipedia articles and C4 documents not in the pool, and
GSM8K *test* answers. Every calibration method is run with the same seeds; deltas are paired per
seed against random calibration. The run is resumable (finished runs are cached), so it can be
stopped and restarted.

    .venv/bin/python benchmarks/model_pruning.py                # full run (both patterns, 3 seeds)
    .venv/bin/python benchmarks/model_pruning.py --patterns 2:4 --seeds 0

Writes benchmarks/results/model_pruning.{json,md,png} and rebuilds benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402

RESULTS = HERE / "results"
logger = logging.getLogger("benchmarks.model_pruning")
#: the key under which the run cache keeps the machine info of the last invocation that ran cases
MACHINE_KEY = "__machine__"

SOURCES = ("c4", "wiki", "gsm8k")


def load_data(n_gsm_pool: int):
    """Pool texts (+ source labels) and held-out evaluation texts."""
    c4 = [r["text"] for r in common.read_jsonl(common.SHARED_DATA / "lm_text" / "c4_demo.jsonl")]
    wiki = [
        t
        for t in (common.SHARED_DATA / "lm_text" / "wiki_demo.txt").read_text().splitlines()
        if t.strip()
    ]
    train = common.read_jsonl(common.SHARED_DATA / "gsm8k" / "train.jsonl")
    test = common.read_jsonl(common.SHARED_DATA / "gsm8k" / "test.jsonl")
    gsm_pool = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in train[:n_gsm_pool]]
    pool = {"c4": c4[:240], "wiki": wiki[:24], "gsm8k": gsm_pool}
    evals = {"wiki": wiki[24:], "c4": c4[240:], "gsm8k": [r["answer"] for r in test]}
    return pool, evals


def fmt(mean: float, sd: float | None) -> str:
    return f"{mean:.2f}" if sd is None or math.isnan(sd) else f"{mean:.2f} ± {sd:.2f}"


def mean_sd(xs: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patterns", default="unstructured,2:4")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--selectors", default="random,kcenter,prototypes")
    ap.add_argument("--n-samples", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--eval-tokens", type=int, default=2048)
    ap.add_argument("--eval-seq-len", type=int, default=512)
    ap.add_argument("--n-gsm-pool", type=int, default=1000)
    ap.add_argument("--name", default="model_pruning")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="write the results from the finished runs in the cache, run nothing",
    )
    common.add_render_only(ap, "<name>")
    args = ap.parse_args(argv)
    if args.render_only:
        render(common.read_results(args.name), args.name)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    machine = common.machine_info(["torch", "transformers"])
    logging.getLogger("dataprune").setLevel(logging.WARNING)

    import torch

    from dataprune.cache import cache_dir
    from dataprune.calibration import CalibrationSet, build_calibration_set
    from dataprune.model_pruning import MagnitudePruner, WandaPruner
    from dataprune.model_pruning.perplexity import perplexity_of_ids, tokenize_eval_texts
    from dataprune.models import load_causal_lm, load_encoder

    patterns = args.patterns.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    selectors = args.selectors.split(",")
    t_start = time.perf_counter()
    pool, evals = load_data(args.n_gsm_pool)
    mixed = [t for s in SOURCES for t in pool[s]]
    labels = [s for s in SOURCES for _ in pool[s]]
    if args.report_only:
        from transformers import AutoTokenizer

        from dataprune.models import resolve_causal_lm

        tok = AutoTokenizer.from_pretrained(resolve_causal_lm().path)
    else:
        model, tok = load_causal_lm()  # bf16 forwards; Wanda statistics and scores are float32
        encoder = load_encoder()
    eval_ids = {
        k: tokenize_eval_texts(tok, v, max_tokens=args.eval_tokens) for k, v in evals.items()
    }
    config = {
        "model": "SmolLM2-135M-Instruct (bf16 forwards, float32 Wanda statistics/scores)",
        "n_samples": args.n_samples,
        "seq_len": args.seq_len,
        "chunking": "pack",
        "pool": {s: len(pool[s]) for s in SOURCES},
        "eval_tokens": {k: len(v) for k, v in eval_ids.items()},
        "eval_seq_len": args.eval_seq_len,
        "seeds": seeds,
        "selectors": selectors,
        "wanda": {"sequential": True, "comparison": "row"},
        "magnitude": {"comparison": "layer"},
    }
    # seeds and the selector list only say which runs to do; every run is cached on its own
    keyed = {k: v for k, v in config.items() if k not in ("seeds", "selectors")}
    key_base = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    partial_path = cache_dir("benchmarks") / f"{args.name}-{key_base}.partial.json"
    done: dict[str, dict] = json.loads(partial_path.read_text()) if partial_path.exists() else {}
    logger.info("resuming with %d finished runs from %s", len(done), partial_path)

    def save_partial() -> None:
        tmp = partial_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(done))
        tmp.replace(partial_path)

    if args.report_only:
        if "dense" not in done:
            logger.error("no finished runs in %s", partial_path)
            return 1
        write_outputs(args, config, done, patterns, seeds, selectors, float("nan"))
        return 0
    ran_cases = False

    def note_machine() -> None:
        """The machine info of the invocation that runs cases, kept beside the cached runs."""
        nonlocal ran_cases
        if not ran_cases:
            done[MACHINE_KEY] = machine
            ran_cases = True

    dense_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def evaluate() -> dict[str, float]:
        return {
            k: perplexity_of_ids(model, v, seq_len=args.eval_seq_len, batch_size=2).perplexity
            for k, v in eval_ids.items()
        }

    if "dense" not in done:
        note_machine()
        done["dense"] = {"ppl": evaluate()}
        save_partial()
    logger.info("dense: %s", done["dense"]["ppl"])

    # calibration sets: name -> seed -> CalibrationSet (built lazily, embeddings cached on disk)
    calib_cache: dict[tuple[str, int], object] = {}

    def calibration(name: str, seed: int):
        if (name, seed) not in calib_cache:
            t0 = time.perf_counter()
            if name.endswith("_by_source"):
                # the same selector inside each source, equal quotas (stratified coverage)
                base = name[: -len("_by_source")]
                quotas = [args.n_samples // 3 + (i < args.n_samples % 3) for i in range(3)]
                parts = [
                    build_calibration_set(
                        pool[src],
                        tok,
                        n_samples=q,
                        seq_len=args.seq_len,
                        selector=base,
                        encoder=encoder,
                        random_state=seed,
                    )
                    for src, q in zip(SOURCES, quotas)
                ]
                c = CalibrationSet.concatenate(parts, names=list(SOURCES))
                comp = {src: q / args.n_samples for src, q in zip(SOURCES, quotas)}
            elif name == "gsm8k":
                c = build_calibration_set(
                    pool["gsm8k"],
                    tok,
                    n_samples=args.n_samples,
                    seq_len=args.seq_len,
                    selector="random",
                    random_state=seed,
                )
                comp = {"gsm8k": 1.0}
            else:
                c = build_calibration_set(
                    mixed,
                    tok,
                    n_samples=args.n_samples,
                    seq_len=args.seq_len,
                    selector=name,
                    encoder=encoder,
                    random_state=seed,
                )
                spans = np.asarray(c.provenance["sample_text_spans"])
                src = [labels[i] for i in spans[:, 0]]
                comp = {s: src.count(s) / len(src) for s in SOURCES}
            c.provenance["composition"] = comp
            c.provenance["build_time_s"] = time.perf_counter() - t0
            calib_cache[(name, seed)] = c
        return calib_cache[(name, seed)]

    runs: list[tuple[str, str, int | None]] = []
    for pattern in patterns:
        runs.append((pattern, "magnitude", None))
        for seed in seeds:
            for name in [*selectors, "gsm8k"]:
                runs.append((pattern, name, seed))
    for pattern, name, seed in runs:
        key = f"{pattern}|{name}|{seed}"
        if key in done:
            continue
        note_machine()
        spec = {"pattern": pattern} if ":" in pattern else {"sparsity": 0.5}
        with torch.no_grad():
            model.load_state_dict(dense_state)
        if name == "magnitude":
            report = MagnitudePruner(**spec).prune(model)
            comp = None
        else:
            calib = calibration(name, seed)
            report = WandaPruner(**spec, sequential=True, batch_size=8).prune(model, calib)
            comp = calib.provenance["composition"]
        ppl = evaluate()
        done[key] = {
            "pattern": pattern,
            "calibration": name,
            "seed": seed,
            "ppl": ppl,
            "prune_time_s": report.time_s,
            "prune_cpu_s": report.cpu_time_s,
            "sparsity": report.total_sparsity,
            "composition": comp,
            "load_avg_1m": round(common.load_1min(), 2),
        }
        save_partial()
        logger.info(
            "%s: %s (prune %.1f s)", key, {k: round(v, 2) for k, v in ppl.items()}, report.time_s
        )
    with torch.no_grad():
        model.load_state_dict(dense_state)
    if ran_cases:
        common.record_end_load(machine)
        save_partial()

    write_outputs(args, config, done, patterns, seeds, selectors, time.perf_counter() - t_start)
    return 0


def write_outputs(args, config, done, patterns, seeds, selectors, wall) -> None:
    from dataprune.atomic import atomic_write_json

    methods = ["magnitude", *selectors, "gsm8k"]
    evals = list(config["eval_tokens"])
    dense = done["dense"]["ppl"]
    summary: dict = {}
    for pattern in patterns:
        rows = {}
        for m in methods:
            rs = [
                v
                for v in done.values()
                if v.get("pattern") == pattern and v.get("calibration") == m
            ]
            if not rs:
                continue
            rows[m] = {
                "ppl": {e: mean_sd([r["ppl"][e] for r in rs]) for e in evals},
                "prune_time_s": mean_sd([r["prune_time_s"] for r in rs]),
                "prune_cpu_s": mean_sd(cpu)
                if (cpu := [r["prune_cpu_s"] for r in rs if "prune_cpu_s" in r])
                else None,
                "n_runs": len(rs),
                "composition": rs[0]["composition"]
                and {
                    s: statistics.fmean(r["composition"].get(s, 0.0) for r in rs) for s in SOURCES
                },
            }
        paired = {}
        for m in [*selectors[1:], "gsm8k"] if selectors and selectors[0] == "random" else []:
            per_eval = {}
            for e in evals:
                deltas, rels = [], []
                for s in seeds:
                    a = done.get(f"{pattern}|{m}|{s}")
                    b = done.get(f"{pattern}|random|{s}")
                    if a and b:
                        deltas.append(a["ppl"][e] - b["ppl"][e])
                        rels.append(a["ppl"][e] / b["ppl"][e])
                if deltas:
                    per_eval[e] = {
                        "delta_mean": statistics.fmean(deltas),
                        "delta_sd": statistics.stdev(deltas) if len(deltas) > 1 else None,
                        "ratio_mean": statistics.fmean(rels),
                        "wins": sum(d < 0 for d in deltas),
                        "n": len(deltas),
                    }
            paired[m] = per_eval
        summary[pattern] = {"rows": rows, "paired_vs_random": paired}

    out = {
        "command": "python benchmarks/model_pruning.py " + " ".join(sys.argv[1:]),
        "assembled_from_cache": bool(args.report_only),
        "config": config,
        "dense_ppl": dense,
        "summary": summary,
        "runs": [v for k, v in done.items() if k not in ("dense", MACHINE_KEY)],
        "wall_time_s": wall,
        # machine_info of the last invocation that ran cases (None: not recorded)
        "machine": done.get(MACHINE_KEY),
    }
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / f"{args.name}.json", out)
    render(out, args.name)


def render(out: dict, name: str) -> None:
    """``<name>.png`` and ``<name>.md`` from the results JSON alone, then RESULTS.md."""
    from benchmarks.make_results import write_results_md

    _plot(out, name)
    common.write_text(RESULTS / f"{name}.md", _markdown(out, name))
    write_results_md()


def _shape(out: dict) -> tuple[list[str], list[int], list[str]]:
    """Patterns, seeds and held-out sets of a results JSON."""
    return list(out["summary"]), out["config"]["seeds"], list(out["config"]["eval_tokens"])


def _plot(out: dict, name: str) -> None:
    from dataprune.atomic import atomic_path

    patterns, seeds, evals = _shape(out)
    summary, dense = out["summary"], out["dense_ppl"]
    done = {f"{r['pattern']}|{r['calibration']}|{r['seed']}": r for r in out["runs"]}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(patterns), figsize=(6.2 * len(patterns), 7.2), squeeze=False)
    for ax, pattern in zip(axes[1], patterns):
        paired = summary[pattern]["paired_vs_random"]
        names = [m for m in paired if paired[m]]
        lo_hi: list[float] = []
        width = 0.8 / max(len(names), 1)
        x = np.arange(len(evals))
        for i, m in enumerate(names):
            ratios = []
            errs = []
            for e in evals:
                rs = [
                    done[f"{pattern}|{m}|{s}"]["ppl"][e] / done[f"{pattern}|random|{s}"]["ppl"][e]
                    for s in seeds
                    if f"{pattern}|{m}|{s}" in done and f"{pattern}|random|{s}" in done
                ]
                ratios.append(statistics.fmean(rs) if rs else float("nan"))
                errs.append(statistics.stdev(rs) if len(rs) > 1 else 0.0)
            ax.bar(
                x + (i - (len(names) - 1) / 2) * width, ratios, width, yerr=errs, label=m, capsize=2
            )
            lo_hi.extend(
                [r - e for r, e in zip(ratios, errs) if not math.isnan(r)]
                + [r + e for r, e in zip(ratios, errs) if not math.isnan(r)]
            )
        if lo_hi:
            pad = 0.1 * (max(lo_hi) - min(lo_hi)) + 0.01
            ax.set_ylim(min(min(lo_hi), 1.0) - pad, max(max(lo_hi), 1.0) + pad)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(evals)
        ax.set_ylabel("PPL / PPL(random, same seed)")
        ax.set_title(f"50% {pattern}: paired vs random calibration (< 1 = better)")
        ax.legend(fontsize=7)
    for ax, pattern in zip(axes[0], patterns):
        rows = summary[pattern]["rows"]
        names = ["dense", *rows]
        width = 0.8 / len(names)
        x = np.arange(len(evals))
        for i, m in enumerate(names):
            if m == "dense":
                vals, err = [dense[e] for e in evals], None
            else:
                vals = [rows[m]["ppl"][e][0] for e in evals]
                err = [rows[m]["ppl"][e][1] or 0.0 for e in evals]
            label = m if m in ("dense", "magnitude") else f"wanda/{m}"
            ax.bar(
                x + (i - (len(names) - 1) / 2) * width,
                vals,
                width,
                yerr=err,
                label=label,
                capsize=2,
            )
        ax.set_xticks(x)
        ax.set_xticklabels([f"{e} (held out)" for e in evals])
        ax.set_yscale("log")
        ax.set_ylabel("perplexity (log, lower is better)")
        ax.set_title(f"SmolLM2-135M, 50% {pattern}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(RESULTS / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _markdown(out: dict, name: str) -> str:
    """The results section, every sentence computed from ``out`` (the saved JSON)."""
    patterns, _, evals = _shape(out)
    summary, dense, wall = out["summary"], out["dense_ppl"], out["wall_time_s"]
    c = out["config"]
    selectors = c["selectors"]
    from_cache = out.get("assembled_from_cache", "--report-only" in out["command"])
    lines = [
        "## Model pruning: calibration sets chosen by data pruning (SmolLM2-135M-Instruct)",
        "",
        f"`{out['command'].strip()}` (script `benchmarks/model_pruning.py`"
        + (
            "; every run is cached as it finishes, and this report was assembled from the runs "
            "cached by earlier invocations with the same configuration"
            if from_cache
            else ""
        )
        + "). Wanda (sequential, "
        "per-row comparison) vs magnitude (per-layer) at 50% unstructured and 2:4. Calibration: "
        f"{c['n_samples']} samples x {c['seq_len']} tokens (packed blocks) chosen from a mixed pool "
        f"of {c['pool']['c4']} C4 documents + {c['pool']['wiki']} Wikipedia articles + "
        f"{c['pool']['gsm8k']} GSM8K train problems; `gsm8k` = random blocks of the GSM8K train "
        "problems only (domain-matched). k-center / prototypes run on all-MiniLM-L6-v2 embeddings "
        "of the candidate blocks"
        + (
            "; `kcenter_by_source` = k-center inside each source with equal quotas (stratified)"
            if any(s.endswith("_by_source") for s in selectors)
            else ""
        )
        + ". Perplexity on fixed held-out slices (never in the pool): "
        + ", ".join(f"{e} {n} tokens" for e, n in c["eval_tokens"].items())
        + f" (windows of {c['eval_seq_len']}; GSM8K = test-set answers). Seeds "
        f"{', '.join(map(str, c['seeds']))} (the seed drives the random draw, the first k-center "
        "centre and the k-means initialisation). bf16 forward passes, float32 Wanda statistics. "
        + _timing_text(out, from_cache)
        + ("" if math.isnan(wall) else f" Total wall time {wall / 60:.1f} min."),
        "",
    ]
    for pattern in patterns:
        rows = summary[pattern]["rows"]
        lines += [
            f"### 50% {pattern}: perplexity (mean ± sd over seeds)",
            "",
            "| method | runs | calibration mix (c4/wiki/gsm8k) | "
            + " | ".join(f"PPL {e}" for e in evals)
            + " | prune wall time (s) | prune CPU time (s) |",
            "|---|---:|---|" + "---:|" * (len(evals) + 2),
            "| dense | 1 | - | " + " | ".join(f"{dense[e]:.2f}" for e in evals) + " | - | - |",
        ]
        for m, r in rows.items():
            comp = r["composition"]
            mix = "-" if not comp else "/".join(f"{100 * comp[s]:.0f}%" for s in SOURCES)
            label = m if m == "magnitude" else f"wanda, {m}"
            lines.append(
                f"| {label} | {r['n_runs']} | {mix} | "
                + " | ".join(fmt(*r["ppl"][e]) for e in evals)
                + f" | {fmt(*r['prune_time_s'])} | "
                + (fmt(*r["prune_cpu_s"]) if r["prune_cpu_s"] else "n/a")
                + " |"
            )
        lines += ["", f"Paired vs random calibration (same seed), 50% {pattern}:", ""]
        lines += [
            "| calibration | " + " | ".join(f"ΔPPL {e} (wins)" for e in evals) + " |",
            "|---|" + "---:|" * len(evals),
        ]
        for m, per in summary[pattern]["paired_vs_random"].items():
            cells = []
            for e in evals:
                d = per.get(e)
                cells.append(
                    ""
                    if d is None
                    else f"{d['delta_mean']:+.2f} (x{d['ratio_mean']:.3f}; {d['wins']}/{d['n']})"
                )
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Verdict", "", *verdict(summary, patterns, evals), ""]
    lines.append(f"Plot: `benchmarks/results/{name}.png`.")
    return "\n".join(lines) + "\n"


def _timing_text(out: dict, from_cache: bool) -> str:
    """Machine, load and prune-time spread as the JSON records them (or that it does not)."""
    machine = out.get("machine")
    loads = [r["load_avg_1m"] for r in out["runs"] if r.get("load_avg_1m") is not None]
    if isinstance(machine, dict) and machine.get("load_average_at_start"):
        text = common.machine_sentence(machine)
        if from_cache:
            text = text.replace(
                "Machine:", "Machine (recorded by the last invocation that ran cases):", 1
            )
    elif loads:
        text = "Machine not recorded in this run's JSON."
    else:
        text = common.machine_sentence(None)
    if loads:
        text += (
            f" 1-minute load average after each case: {min(loads):.1f}-{max(loads):.1f} "
            f"({len(loads)} cases)."
        )
    wanda = [r for r in out["runs"] if r.get("calibration") != "magnitude"]
    walls = [r["prune_time_s"] for r in wanda]
    cpus = [r["prune_cpu_s"] for r in wanda if r.get("prune_cpu_s") is not None]
    if walls:
        text += (
            f" Wanda prune wall time ranged {min(walls):.0f}-{max(walls):.0f} s over "
            f"{len(walls)} runs"
        )
        if cpus:
            text += (
                f", CPU time (all threads of this process) {min(cpus):.0f}-{max(cpus):.0f} s "
                f"over {len(cpus)} runs"
            )
        text += "."
    return text


def verdict(summary, patterns, evals) -> list[str]:
    """Plain statements computed from the numbers (no hand-written claims)."""
    out = []
    for pattern in patterns:
        rows = summary[pattern]["rows"]
        if "magnitude" in rows and "random" in rows:
            better = [
                e for e in evals if rows["random"]["ppl"][e][0] < rows["magnitude"]["ppl"][e][0]
            ]
            out.append(
                f"- 50% {pattern}: Wanda with random calibration beats magnitude on "
                f"{len(better)}/{len(evals)} held-out sets "
                + "("
                + ", ".join(
                    f"{e}: {rows['random']['ppl'][e][0]:.1f} vs {rows['magnitude']['ppl'][e][0]:.1f}"
                    for e in evals
                )
                + ")."
            )
        for m, per in summary[pattern]["paired_vs_random"].items():
            if not per:
                continue
            wins = sum(d["wins"] for d in per.values())
            n = sum(d["n"] for d in per.values())
            clear = [e for e, d in per.items() if d["wins"] == d["n"]]
            worse = [e for e, d in per.items() if d["wins"] == 0]
            txt = (
                f"- 50% {pattern}, {m} vs random: lower perplexity in {wins}/{n} paired "
                f"(seed, eval set) comparisons"
            )
            if clear:
                txt += f"; better on every seed for {', '.join(clear)}"
            if worse:
                txt += f"; worse on every seed for {', '.join(worse)}"
            out.append(txt + ".")
        wanda = [r for m, r in rows.items() if m != "magnitude"]
        if wanda:
            cpu = [r["prune_cpu_s"][0] for r in wanda if r["prune_cpu_s"]]
            wall = [r["prune_time_s"][0] for r in wanda]
            txt = f"- 50% {pattern}, time per Wanda prune: {statistics.fmean(wall):.0f} s wall"
            if cpu:
                txt += f", {statistics.fmean(cpu):.0f} s CPU"
            if "magnitude" in rows:
                txt += f" (magnitude: {rows['magnitude']['prune_time_s'][0]:.0f} s wall)"
            out.append(txt + ".")
    out += _selection_answer(summary, patterns, evals)
    return out


def _selection_answer(summary, patterns, evals) -> list[str]:
    """Does coreset selection beat random calibration, and does domain matching help GSM8K?

    A (pattern, eval set) pair counts as a consistent gain (loss) only when the method is better
    (worse) than random on every seed; everything else is within seed-to-seed variation.
    """
    methods: list[str] = []
    for pattern in patterns:
        methods += [m for m in summary[pattern]["paired_vs_random"] if m not in methods]
    out: list[str] = []
    selectors = [m for m in methods if m != "gsm8k"]
    verdicts: dict[str, tuple[str, float, int]] = {}
    for m in selectors:
        wins = n = 0
        ratios, gains, losses, used = [], [], [], []
        for pattern in patterns:
            per = summary[pattern]["paired_vs_random"].get(m, {})
            used += [pattern] if per else []
            for e, d in per.items():
                wins, n = wins + d["wins"], n + d["n"]
                ratios.append(d["ratio_mean"])
                if d["n"] >= 2 and d["wins"] == d["n"]:
                    gains.append(f"{pattern} {e} (x{d['ratio_mean']:.3f})")
                elif d["n"] >= 2 and d["wins"] == 0:
                    losses.append(f"{pattern} {e} (x{d['ratio_mean']:.3f})")
        if not n:
            continue
        if gains and len(gains) == len(ratios):
            v = "is better than random on every seed for every (pattern, held-out set)"
        elif gains and not losses:
            v = "is better than random on some held-out sets and never consistently worse"
        elif gains:
            v = "helps some held-out sets and hurts others"
        elif losses:
            v = "is worse than random"
        else:
            v = "shows no consistent difference from random"
        ratio = statistics.fmean(ratios)
        verdicts[m] = (v, ratio, len(gains))
        rows = summary[used[0]]["rows"]
        mix = ""
        if rows.get(m, {}).get("composition") and rows.get("random", {}).get("composition"):
            mix = " (calibration mix c4/wiki/gsm8k {} vs random's {})".format(
                *(
                    "/".join(f"{100 * rows[k]['composition'][s]:.0f}%" for s in SOURCES)
                    for k in (m, "random")
                )
            )
        out.append(
            f"- Overall, {m}{mix} {v}: lower perplexity than random in {wins}/{n} paired "
            f"comparisons ({', '.join(used)}; every held-out set), mean PPL ratio x{ratio:.3f}; "
            f"consistent gains: {', '.join(gains) or 'none'}; consistent losses: "
            f"{', '.join(losses) or 'none'}."
        )
    if verdicts:
        everywhere = [
            m for m, (v, _, _) in verdicts.items() if v.startswith("is better than random on every")
        ]
        partial = [
            m for m, (v, _, _) in verdicts.items() if v.startswith("is better than random on some")
        ]
        if everywhere:
            answer = f"yes: {', '.join(everywhere)} is better than random everywhere it was tested"
        elif partial:
            answer = "only partly: " + "; ".join(
                f"{m} is never consistently worse and better on every seed in "
                f"{verdicts[m][2]} (pattern, held-out set) pair(s), but averaged over all of them "
                f"its perplexity is {100 * abs(1 - verdicts[m][1]):.1f}% "
                + ("below" if verdicts[m][1] < 1 else "above")
                + " random's"
                for m in partial
            )
            rest = [m for m in verdicts if m not in partial]
            if rest:
                answer += f"; {', '.join(rest)} does not beat random"
        else:
            answer = (
                "no: no coreset selector has consistent gains over random without consistent losses"
            )
        out.append(f"- **Does selection beat random calibration?** {answer}.")
    for pattern in patterns:
        d = summary[pattern]["paired_vs_random"].get("gsm8k", {})
        if "gsm8k" not in d:
            continue
        g = d["gsm8k"]
        others = ", ".join(
            f"{e} x{d[e]['ratio_mean']:.3f} ({d[e]['wins']}/{d[e]['n']} wins)"
            for e in evals
            if e != "gsm8k" and e in d
        )
        out.append(
            f"- 50% {pattern}, domain-matched calibration (GSM8K train only): GSM8K-test "
            f"perplexity {g['delta_mean']:+.2f} vs random (x{g['ratio_mean']:.3f}, lower on "
            f"{g['wins']}/{g['n']} seeds); on the other held-out sets: {others or 'n/a'}."
        )
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
