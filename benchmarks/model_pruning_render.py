"""The markdown section of ``benchmarks/model_pruning.py``, every sentence computed from the
results JSON (:func:`markdown`)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchmarks import _common as common
from benchmarks.model_pruning_analysis import (
    analyse,
    geomean,
    index_runs,
    mean_sd,
    reading,
)
from benchmarks.model_pruning_setup import SOURCES, pattern_label, refine_label
from benchmarks.model_pruning_verdicts import (
    choice_section,
    dsnot_settings_section,
    fmt,
    label,
    target1_section,
    target2_section,
)


def _mix(out: dict, recipe: str) -> str:
    comps = [c["composition"] for c in out["calibrations"] if c["recipe"] == recipe]
    if not comps:
        return "-"
    return "/".join(f"{100 * statistics.fmean(c[s] for c in comps):.0f}%" for s in SOURCES)


def _build_totals(out: dict, recipe: str) -> list[float]:
    """Build time of each seed's set, the activation embedding of the pool included (a build
    that loaded the shared embedding is charged its recorded computation time)."""
    return [
        c["build_time_s"] + c.get("activation_reused_s", 0.0)
        for c in out["calibrations"]
        if c["recipe"] == recipe
    ]


def _intro(out: dict) -> list[str]:
    c = out["config"]
    from_cache = out.get("assembled_from_cache", False)
    recipes = "; ".join(
        f"`{label(r)}` ("
        + ", ".join(
            f"{k}={v!r}" for k, v in o.items() if k != "pool" and not (k == "scale" and v == 1)
        )
        + (", GSM8K pool only" if o.get("pool") == "gsm8k" else "")
        + ")"
        for r, o in c["recipe_options"].items()
    )
    ds = ", ".join(f"{k}={v}" for k, v in c["dsnot"].items())
    wall = out["wall_time_s"]
    return [
        "## Model pruning: calibration recipes and DSnoT (SmolLM2-135M-Instruct)",
        "",
        f"`{out['command'].strip()}` (script `benchmarks/model_pruning.py`"
        + (
            "; every run is cached as it finishes, and this report was assembled from the runs "
            "cached by earlier invocations with the same configuration"
            if from_cache
            else _computed_text(out)
        )
        + "). Patterns: "
        + ", ".join(pattern_label(p) for p in c["patterns"])
        + ". Magnitude (per layer, no data) and Wanda (sequential, per-row comparison), "
        + _refine_text(out, ds)
        + " Calibration: "
        f"{c['n_samples']} samples x {c['seq_len']} tokens, each source packed separately, chosen "
        f"from one pool of {c['pool']['c4']} C4 documents + {c['pool']['wiki']} Wikipedia "
        f"articles + {c['pool']['gsm8k']} GSM8K train problems by each recipe: {recipes}. "
        f"Seeds {', '.join(map(str, c['seeds']))} (the seed drives the random draw, the first "
        "k-center centre and which sources get a mix's leftover samples). bf16 forward passes, float32 Wanda statistics; "
        f"perplexity over windows of {c['eval_seq_len']} tokens. "
        + _machine_text(out)
        + ("" if math.isnan(wall) else f" Total wall time {wall / 60:.1f} min."),
        "",
    ]


def _computed_text(out: dict) -> str:
    """How many of the runs this invocation computed, when the run cache supplied others."""
    n, computed = len(out["runs"]), out.get("runs_computed")
    if computed is None or computed >= n:
        return ""
    return (
        f"; this invocation computed {computed} of the {n} runs below, the others were loaded "
        "from the run cache of earlier invocations with the same configuration, so the total "
        "wall time covers only the computed runs"
    )


def _refine_text(out: dict, ds: str) -> str:
    """Which refinements the runs used: DSnoT at its defaults, and each variant where it ran."""
    refines = [f for f in out["config"].get("refines", ["none", "dsnot"]) if f != "none"]
    if not refines:
        return "every Wanda run plain (no mask refinement in this invocation)."
    text = f"every Wanda run once plain and once with DSnoT mask refinement ({ds})."
    variants = [f for f in refines if f != "dsnot"]
    if not variants:
        return text
    ran = {f: sorted({r["recipe"] for r in out["runs"] if r["refine"] == f}) for f in variants}
    return (
        text
        + " DSnoT variants (settings in the DSnoT-settings section) ran for: "
        + "; ".join(f"{f} ({', '.join(label(r) for r in ran[f]) or 'none'})" for f in variants)
        + "."
    )


def _machine_text(out: dict) -> str:
    machine = out.get("machine")
    text = common.machine_sentence(machine)
    if out.get("assembled_from_cache") and isinstance(machine, dict):
        text = text.replace("Machine:", "Machine (last invocation that ran cases):", 1)
    loads = [r["load_avg_1m"] for r in out["runs"] if r.get("load_avg_1m") is not None]
    if loads:
        text += (
            f" 1-minute load average after each prune: {min(loads):.1f}-{max(loads):.1f} "
            f"({len(loads)} runs)."
        )
    return text


def _split(out: dict) -> list[str]:
    c = out["config"]
    d = c["split"]
    rows = [
        ("calibration pool", d["pool"], None, "candidates of every recipe"),
        ("development", d["dev"], c["dev_tokens"], "choosing the default; report reference"),
        ("held out", d["heldout"], c["eval_tokens"], "the perplexities and targets below"),
    ]
    lines = [
        "### Data split",
        "",
        "| slice | wiki | c4 | gsm8k | used for |",
        "|---|---|---|---|---|",
    ]
    for name, desc, toks, use in rows:
        cells = [
            desc[s] + (f", first {toks[s]} tokens" if toks else "") for s in ("wiki", "c4", "gsm8k")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {use} |")
    return [*lines, ""]


def _ppl_tables(out: dict, a: dict) -> list[str]:
    c = out["config"]
    sets = list(c["eval_tokens"])
    index = index_runs(out["runs"])
    dense = out["dense"]
    lines = []
    for p in c["patterns"]:
        lines += [
            f"### {pattern_label(p)}: held-out perplexity (mean ± sd over seeds)",
            "",
            "| method | runs | mix c4/wiki/gsm8k | "
            + " | ".join(f"PPL {e}" for e in sets)
            + " | dev PPL (geo-mean) | prune wall (s) | DSnoT refine (s) | prune CPU (s) |",
            "|---|---:|---|" + "---:|" * (len(sets) + 4),
            "| dense | 1 | - | "
            + " | ".join(f"{dense['ppl'][e]:.2f}" for e in sets)
            + f" | {geomean(list(dense['dev_ppl'].values())):.2f} | - | - | - |",
        ]
        conds = [("magnitude", "none")] + [(r, f) for r in c["recipes"] for f in c["refines"]]
        for r, f in conds:
            rs = [v for k, v in index.items() if k[0] == p and k[1] == r and k[3] == f]
            if not rs:
                continue
            name = "magnitude" if r == "magnitude" else f"Wanda, {label(r)}"
            name += refine_label(f)
            refine = [x["refine_time_s"] for x in rs if x.get("refine_time_s") is not None]
            lines.append(
                f"| {name} | {len(rs)} | {_mix(out, r)} | "
                + " | ".join(fmt(*mean_sd([x["ppl"][e] for x in rs])) for e in sets)
                + f" | {fmt(*mean_sd([geomean(list(x['dev_ppl'].values())) for x in rs]))}"
                + f" | {fmt(*mean_sd([x['prune_time_s'] for x in rs]), 1)}"
                + f" | {fmt(*mean_sd(refine), 1) if refine else '-'}"
                + f" | {fmt(*mean_sd([x['prune_cpu_s'] for x in rs]), 1)} |"
            )
        lines.append("")
    return lines


def _timing(out: dict) -> list[str]:
    c = out["config"]
    reports = out["reports"]
    lines = [
        "### Calibration timings",
        "",
        "| recipe | sets | build (s, embeddings included) | calibration report (s) |",
        "|---|---:|---:|---:|",
    ]
    for r in c["recipes"]:
        tot = _build_totals(out, r)
        rep = [x["time_s"] for x in reports if x["recipe"] == r]
        if tot:
            lines.append(
                f"| {label(r)} | {len(tot)} | {fmt(*mean_sd(tot), 1)} | "
                f"{fmt(*mean_sd(rep), 1) if rep else 'n/a'} |"
            )
    acts = out.get("activation_embeddings", [])
    reused = sorted(
        {round(c.get("activation_reused_s", 0.0), 1) for c in out["calibrations"]} - {0}
    )
    text = ""
    fresh = [c for c in out["calibrations"] if c.get("minilm_fresh_cache")]
    if fresh:
        text += (
            f"MiniLM embeddings were computed inside each of the {len(fresh)} embedding-space "
            "builds (fresh cache). "
        )
    if acts or reused:
        text += (
            "The model's embedding of the pool's candidate blocks (activations or input "
            "moments) is the same for every seed and recipe of that space, so it is computed "
            "once and loaded by the other builds, which are charged its computation time above; "
            + (
                "it was computed here in "
                + ", ".join(f"{x['time_s']:.1f} s ({x['n_blocks']} blocks)" for x in acts)
                if acts
                else "it was loaded from an earlier invocation's computation ("
                + ", ".join(f"{v:.1f} s" for v in reused)
                + ")"
            )
            + ". "
        )
    ref = reports[0]["reference"] if reports else None
    if ref:
        text += (
            f"Each calibration report embeds {ref['n_blocks_used']} development reference blocks "
            f"of {ref['seq_len']} tokens and the set itself with the dense model."
        )
    lines += ["", text.strip()]
    return [*lines, ""]


def _coverage(out: dict, a: dict) -> list[str]:
    c = out["config"]
    reports = out["reports"]
    if not reports:
        return []
    layers = list(reports[0]["coverage"])
    lines = [
        "### Calibration report: coverage vs post-pruning perplexity",
        "",
        "Coverage = mean cosine distance from each development reference block to its nearest "
        "calibration block (dense model's hidden states; lower = better covered), per decoder "
        "block and averaged; mean ± sd over seeds.",
        "",
        "| recipe | "
        + " | ".join(f"cov L{b}" for b in layers)
        + " | cov mean | distinct-token ratio | entropy (bits) |",
        "|---|" + "---:|" * (len(layers) + 3),
    ]
    for r in c["recipes"]:
        rs = [x for x in reports if x["recipe"] == r]
        if not rs:
            continue
        lines.append(
            f"| {label(r)} | "
            + " | ".join(fmt(*mean_sd([x["coverage"][b] for x in rs]), 4) for b in layers)
            + f" | {fmt(*mean_sd([x['coverage_mean'] for x in rs]), 4)}"
            + f" | {fmt(*mean_sd([x['distinct_token_ratio'] for x in rs]), 3)}"
            + f" | {fmt(*mean_sd([x['unigram_entropy_bits'] for x in rs]), 2)} |"
        )
    sp = a["spearman"]
    lines += [
        "",
        "Spearman rank correlation between a set's mean coverage and its held-out perplexity "
        "after plain Wanda, across every (recipe, seed) set; a positive rho means better-covered "
        "sets gave lower perplexity.",
        "",
        "| pattern | held-out set | rho | p | n | reading |",
        "|---|---|---:|---:|---:|---|",
    ]
    tally: dict[str, int] = {}
    for p, cells in sp.items():
        for e, cell in cells.items():
            rd = reading(cell)
            tally[rd] = tally.get(rd, 0) + 1
            name = "geometric mean of the sets" if e == "geomean" else e
            rho = "n/a" if math.isnan(cell["rho"]) else f"{cell['rho']:+.2f}"
            pv = "n/a" if math.isnan(cell["p"]) else f"{cell['p']:.3f}"
            lines.append(f"| {pattern_label(p)} | {name} | {rho} | {pv} | {cell['n']} | {rd} |")
    if tally:
        lines += [
            "",
            f"Of {sum(tally.values())} (pattern, set) cells: "
            + "; ".join(f"{v} {k}" for k, v in tally.items())
            + ".",
        ]
    return [*lines, ""]


def markdown(out: dict, plot_path: str, name: str = "model_pruning") -> str:
    """The results section, every sentence computed from ``out`` (the saved JSON); a ``name``
    other than the default one is added to the title (its section in RESULTS.md)."""
    a = analyse(out)
    intro = _intro(out)
    if name != "model_pruning":
        intro[0] += f" — `{name}`"
    lines: list[Any] = [
        *intro,
        *_split(out),
        *choice_section(out, a),
        *target1_section(out, a),
        *target2_section(out, a),
        *dsnot_settings_section(out, a),
        *_ppl_tables(out, a),
        *_timing(out),
        *_coverage(out, a),
        f"Plot: `{plot_path}` (every seed a dot, the mean a bar with its value; one panel per "
        "pattern and held-out set).",
    ]
    return "\n".join(lines) + "\n"
