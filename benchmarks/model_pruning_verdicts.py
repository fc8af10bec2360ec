"""The verdict sections of ``benchmarks/model_pruning.py``'s results: the choice of the default
recipe on the development slices, Targets 1 and 2 on the held-out slices and the DSnoT-settings
study, every sentence computed from the results JSON and its analysis; with the number formats the
other sections (``model_pruning_render.py``) share."""

from __future__ import annotations

import math
import statistics

from benchmarks.model_pruning_analysis import (
    T1_MAX_LOSS,
    T1_NEED,
    T1_OF,
    T1_PATTERNS,
    T2_PATTERN,
)
from benchmarks.model_pruning_setup import RECIPES, pattern_label


def fmt(mean: float, sd: float | None, digits: int = 2) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if sd is None else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def pct(rel: float) -> str:
    return "n/a" if math.isnan(rel) else f"{100 * rel:+.1f}%"


def label(recipe: str) -> str:
    return RECIPES[recipe].label if recipe in RECIPES else recipe


def choice_section(out: dict, a: dict) -> list[str]:
    ch = a["choice"]
    head = ["### Choosing the default recipe on the development slices", ""]
    if not ch["patterns"]:
        return [
            *head,
            "Not evaluated: the rule compares recipes at "
            + " and ".join(pattern_label(p) for p in T1_PATTERNS)
            + ", and this run has "
            + ", ".join(pattern_label(p) for p in out["config"]["patterns"])
            + " only.",
            "",
        ]
    lines = [
        *head,
        f"Rule (Target 1's, plain Wanda, on the development perplexities at "
        f"{' and '.join(pattern_label(p) for p in ch['patterns'])}): "
        f"lower perplexity than random in at least {T1_NEED} of {T1_OF} paired (seed, pattern, "
        f"set) comparisons (scaled to the comparisons available) and never more than "
        f"{100 * T1_MAX_LOSS:.0f}% worse; among recipes meeting it, the most wins, then the "
        "smallest worst difference.",
        "",
        "| recipe | dev wins vs random | needed | worst rel. diff. | mean rel. diff. | meets rule |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r, t in ch["rows"].items():
        lines.append(
            f"| {label(r)} | {t['wins']}/{t['n']} | {t['need']} | {pct(t['worst_rel'])} | "
            f"{pct(t['mean_rel'])} | "
            + (
                f"reference ({RECIPES[r].scale}x the samples, not a candidate)"
                if r in ch.get("references", ())
                else ("yes" if t["met"] else "no")
            )
            + " |"
        )
    chosen = ch["chosen"]
    if ch["meeting"]:
        txt = f"The benchmark picks **{label(chosen)}** as the default recipe."
    else:
        txt = (
            "No recipe meets the rule on the development slices, so the benchmark keeps "
            f"**{label(chosen)}**"
            + (
                f" (closest by the same ordering: {label(ch['closest'])})."
                if ch["closest"]
                else " (no recipe at the budget other than random ran)."
            )
        )
    defaults = out["library_defaults"]
    opts = RECIPES[chosen].kwargs()
    same = all(defaults.get(k) == v for k, v in opts.items()) and RECIPES[chosen].pool == "mixed"
    txt += (
        " `build_calibration_set`'s defaults when this JSON was written ("
        + ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        + f") {'equal' if same else 'do not equal'} it"
        + ("." if same else f" ({', '.join(f'{k}={v!r}' for k, v in opts.items())}).")
    )
    return [*lines, "", txt, ""]


def target1_section(out: dict, a: dict) -> list[str]:
    ch, t1 = a["choice"], a["target1"]
    chosen = ch["chosen"]
    shown = chosen if chosen != "random" else ch["closest"]
    lines = ["### Target 1 (held out): the default recipe vs random calibration", ""]
    if shown is None or shown not in t1:
        refs = [r for r in ch.get("references", ()) if r in t1]
        return [
            *lines,
            "Not evaluated: no recipe at the budget other than random was run on a Target-1 "
            "pattern."
            if ch["patterns"]
            else "Not evaluated: no Target-1 pattern was run (see the previous section).",
            "",
            *(
                line
                for r in refs
                for line in (
                    f"Reference {label(r)} on the held-out slices: lower perplexity than random "
                    f"in {t1[r]['none']['wins']}/{t1[r]['none']['n']} paired (seed, pattern, "
                    f"set) comparisons, worst relative difference "
                    f"{pct(t1[r]['none']['worst_rel'])}.",
                    "",
                )
            ),
        ]
    t = t1[shown]["none"]
    partial = (
        ""
        if t["complete"]
        else f"; partial run: {t['n']} of {T1_OF} comparisons, the {T1_NEED}-of-{T1_OF} share scaled"
    )
    counts = (
        f"{label(shown)} has lower held-out perplexity than random in {t['wins']}/{t['n']} paired "
        f"(seed, pattern, set) comparisons (needs {t['need']}{partial}), worst relative "
        f"difference {pct(t['worst_rel'])} (limit {100 * T1_MAX_LOSS:+.1f}%)"
    )
    if chosen == "random":
        verdict = (
            "**NOT met**: no recipe was chosen on the development slices. For information, the "
            f"closest on dev: {counts}."
        )
    else:
        word = "met" if t["met"] else "NOT met"
        verdict = f"**{word}{'' if t['complete'] else ' (partial run)'}**: {counts}."
    lines += [
        verdict,
        "",
        f"Paired relative differences of {label(shown)} vs random (plain Wanda):",
        "",
    ]
    sets = list(out["config"]["eval_tokens"])
    lines += ["| pattern | seed | " + " | ".join(sets) + " |", "|---|---:|" + "---:|" * len(sets)]
    by: dict[tuple[str, int], dict[str, dict]] = {}
    for cmp in t["comparisons"]:
        by.setdefault((cmp["pattern"], cmp["seed"]), {})[cmp["set"]] = cmp
    for (p, s), cells in by.items():
        lines.append(
            f"| {pattern_label(p)} | {s} | "
            + " | ".join(
                f"{pct(cells[e]['rel'])} ({cells[e]['value']:.2f} vs {cells[e]['base']:.2f})"
                for e in sets
            )
            + " |"
        )
    lines += [
        "",
        "Every recipe on the held-out slices (not used to choose; with DSnoT: recipe + DSnoT vs "
        "random + DSnoT):",
        "",
        "| recipe | wins (Wanda) | worst | met | wins (Wanda + DSnoT) | worst | met |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for r, d in t1.items():
        cells = []
        for k in ("none", "dsnot"):
            x = d[k]
            cells += (
                [f"{x['wins']}/{x['n']}", pct(x["worst_rel"]), "yes" if x["met"] else "no"]
                if x["n"]
                else ["n/a"] * 3
            )
        lines.append(f"| {label(r)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def target2_section(out: dict, a: dict) -> list[str]:
    t2 = a["target2"]
    chosen = a["choice"]["chosen"]
    lines = [f"### Target 2 (held out): DSnoT on Wanda at {pattern_label(T2_PATTERN)}", ""]
    if chosen not in t2:
        return [
            *lines,
            f"Not evaluated: {pattern_label(T2_PATTERN)} was not run for {label(chosen)}.",
            "",
        ]
    sets = list(out["config"]["eval_tokens"])
    t = t2[chosen]
    lines += [
        "Rule: with DSnoT, lower held-out perplexity than plain Wanda (same recipe and seed) on "
        "every held-out set and every seed, and DSnoT's refinement (the pruner report's refine "
        "time) shorter in wall time than the plain Wanda prune, on every seed.",
        "",
    ]
    refine = statistics.fmean(p["refine_s"] for p in t["per_seed"])
    wanda = statistics.fmean(p["wanda_s"] for p in t["per_seed"])
    lines += [
        f"**{'met' if t['met'] else 'NOT met'}"
        + ("" if t["n_seeds"] >= 3 else f" (partial run: {t['n_seeds']} seed(s))")
        + f"** (recipe {label(chosen)}): DSnoT lowered Wanda's "
        f"perplexity in {t['lowered']}/{t['n']} (seed, set) pairs; its refinement took less wall "
        f"time than the plain Wanda prune on {t['cheaper']}/{t['n_seeds']} seeds (mean "
        f"{refine:.1f} s vs {wanda:.1f} s)"
        + ("" if t["complete"] else f"; only {t['n_seeds']} of the seeds ran")
        + ".",
        "",
        "| seed | "
        + " | ".join(f"{e} (DSnoT vs Wanda)" for e in sets)
        + " | DSnoT refine (s) | Wanda prune (s) | Wanda + DSnoT run (s) |",
        "|---:|" + "---:|" * (len(sets) + 3),
    ]
    for p in t["per_seed"]:
        lines.append(
            f"| {p['seed']} | "
            + " | ".join(pct(p["rel"][e]) for e in sets)
            + f" | {p['refine_s']:.1f} | {p['wanda_s']:.1f} | {p['dsnot_run_s']:.1f} |"
        )
    lines += ["", "| recipe | pairs lowered | seeds cheaper | met |", "|---|---:|---:|---|"]
    for r, x in t2.items():
        lines.append(
            f"| {label(r)} | {x['lowered']}/{x['n']} | {x['cheaper']}/{x['n_seeds']} | "
            f"{'yes' if x['met'] else 'no'} |"
        )
    met = sum(x["met"] for x in t2.values())
    return [*lines, "", f"Target 2 holds for {met} of {len(t2)} recipes.", ""]


def dsnot_settings_section(out: dict, a: dict) -> list[str]:
    """DSnoT variants against plain Wanda, when more than one variant ran."""
    rows = a["dsnot_settings"]
    c = out["config"]
    if len({r["refine"] for r in rows}) < 2:
        return []
    base = c["dsnot"]

    def changed(f: str) -> str:
        opts = c.get("refine_options", {}).get(f, base)
        diff = {k: v for k, v in opts.items() if base.get(k) != v}
        return ", ".join(f"{k}={v!r}" for k, v in diff.items()) or "the defaults"

    lines = [
        "### DSnoT settings: every variant against plain Wanda",
        "",
        "Pairs = (recipe, seed, set) with the same calibration set; lowered = DSnoT's perplexity "
        "below plain Wanda's. Development slices choose DSnoT's settings; the held-out columns "
        "are for information.",
        "",
        "| variant | settings | pattern | recipes | dev lowered | dev mean change "
        "| held-out lowered | held-out mean change | refine (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['refine']} | {changed(r['refine'])} | {pattern_label(r['pattern'])} | "
            f"{r['n_recipes']} | {r['dev_lowered']}/{r['n']} | {pct(r['dev_mean_rel'])} | "
            f"{r['heldout_lowered']}/{r['n']} | {pct(r['heldout_mean_rel'])} | "
            f"{r['refine_s']:.1f} |"
        )
    for p in dict.fromkeys(r["pattern"] for r in rows):
        at = [r for r in rows if r["pattern"] == p]
        best = min(at, key=lambda r: (-r["dev_lowered"] / r["n"], r["dev_mean_rel"]))
        lines += [
            "",
            f"At {pattern_label(p)} the variant that lowers the development perplexity in the "
            f"largest share of its pairs is {best['refine']} ({best['dev_lowered']}/{best['n']}, "
            "mean change "
            f"{pct(best['dev_mean_rel'])}); "
            + (
                "it lowers every development pair."
                if best["dev_lowered"] == best["n"]
                else "no variant lowers all of its pairs."
            ),
        ]
    return [*lines, ""]
