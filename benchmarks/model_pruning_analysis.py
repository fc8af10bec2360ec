"""Paired comparisons, the two targets, the dev choice of the default recipe and the coverage
rank correlation of ``benchmarks/model_pruning.py``, computed from a results JSON alone.

Run records (``out["runs"]``) carry ``pattern``, ``recipe``, ``seed``, ``refine`` (``"none"`` or
``"dsnot"``), ``ppl`` (held out) and ``dev_ppl`` (development), each ``{set: perplexity}``.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

#: Target 1: at least 16 of 18 paired comparisons better than random, none more than 1% worse
T1_PATTERNS = ("50%", "2:4")
T1_NEED, T1_OF, T1_MAX_LOSS = 16, 18, 0.01
#: Target 2: DSnoT lowers Wanda's perplexity at this pattern on every set and seed, and its
#: refinement takes less wall time than the plain Wanda prune
T2_PATTERN = "60%"

Key = tuple[str, str, Any, str]


def index_runs(runs: list[dict]) -> dict[Key, dict]:
    """``(pattern, recipe, seed, refine) -> run``."""
    return {(r["pattern"], r["recipe"], r["seed"], r["refine"]): r for r in runs}


def mean_sd(xs: list[float]) -> tuple[float, float | None]:
    if not xs:
        return float("nan"), None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def paired(
    index: dict[Key, dict],
    recipe: str,
    patterns: list[str],
    seeds: list[int],
    sets: list[str],
    *,
    refine: str = "none",
    field: str = "ppl",
    base: str = "random",
) -> list[dict]:
    """One entry per (pattern, seed, set) where both ``recipe`` and ``base`` ran."""
    out = []
    for p in patterns:
        for s in seeds:
            a, b = index.get((p, recipe, s, refine)), index.get((p, base, s, refine))
            if not (a and b and field in a and field in b):
                continue
            for e in sets:
                out.append(
                    {
                        "pattern": p,
                        "seed": s,
                        "set": e,
                        "value": a[field][e],
                        "base": b[field][e],
                        "rel": a[field][e] / b[field][e] - 1.0,
                    }
                )
    return out


def target1(comps: list[dict]) -> dict[str, Any]:
    """Target 1's counts on a list of :func:`paired` comparisons.

    With fewer than 18 comparisons (a partial run) the 16-of-18 share is scaled:
    ``need = ceil(16 * n / 18)``.
    """
    n = len(comps)
    rels = [c["rel"] for c in comps]
    wins = sum(r < 0 for r in rels)
    need = math.ceil(T1_NEED * n / T1_OF) if n else 0
    worst = max(rels) if rels else float("nan")
    return {
        "n": n,
        "wins": wins,
        "need": need,
        "worst_rel": worst,
        "mean_rel": statistics.fmean(rels) if rels else float("nan"),
        "met": bool(n) and wins >= need and worst <= T1_MAX_LOSS,
        "complete": n >= T1_OF,
    }


def _t1_patterns(patterns: list[str]) -> list[str]:
    return [p for p in T1_PATTERNS if p in patterns]


def choose_default(
    index: dict[Key, dict],
    recipes: list[str],
    patterns: list[str],
    seeds: list[int],
    sets: list[str],
) -> dict[str, Any]:
    """Target 1's rule on the development slices (plain Wanda), for every non-random recipe.

    The chosen recipe is one that meets the rule there (most wins, then the smallest worst
    relative difference, then the smallest mean); if none does, ``random`` (no recipe shown to
    beat it). ``closest`` is the best by the same ordering whether or not it meets the rule.
    Recipes with more samples than the budget (``Recipe.scale > 1``, e.g. ``random_x4``) get a
    row but are ``references``, never chosen nor closest.
    """
    from benchmarks.model_pruning_setup import RECIPES

    pats = _t1_patterns(patterns)
    rows = {
        r: target1(paired(index, r, pats, seeds, sets, field="dev_ppl"))
        for r in recipes
        if r != "random"
    }
    rows = {r: t for r, t in rows.items() if t["n"]}

    def order(r: str) -> tuple[float, float, float]:
        return (-rows[r]["wins"], rows[r]["worst_rel"], rows[r]["mean_rel"])

    references = [r for r in rows if r in RECIPES and RECIPES[r].scale != 1]
    candidates = [r for r in rows if r not in references]
    meeting = [r for r in candidates if rows[r]["met"]]
    return {
        "patterns": pats,
        "rows": rows,
        "chosen": min(meeting, key=order) if meeting else "random",
        "closest": min(candidates, key=order) if candidates else None,
        "meeting": meeting,
        "references": references,
    }


def heldout_target1(
    index: dict[Key, dict],
    recipes: list[str],
    patterns: list[str],
    seeds: list[int],
    sets: list[str],
) -> dict[str, dict[str, Any]]:
    """Target 1 on the held-out slices for every recipe, plain Wanda and with DSnoT."""
    pats = _t1_patterns(patterns)
    out = {}
    for r in recipes:
        if r == "random":
            continue
        plain = paired(index, r, pats, seeds, sets)
        if not plain:
            continue
        out[r] = {
            "none": {**target1(plain), "comparisons": plain},
            "dsnot": target1(paired(index, r, pats, seeds, sets, refine="dsnot")),
        }
    return out


def target2(
    index: dict[Key, dict], recipe: str, seeds: list[int], sets: list[str]
) -> dict[str, Any] | None:
    """DSnoT vs plain Wanda at :data:`T2_PATTERN` for one recipe (``None``: not run)."""
    per_seed = []
    for s in seeds:
        a = index.get((T2_PATTERN, recipe, s, "dsnot"))
        b = index.get((T2_PATTERN, recipe, s, "none"))
        if not (a and b):
            continue
        rel = {e: a["ppl"][e] / b["ppl"][e] - 1.0 for e in sets}
        per_seed.append(
            {
                "seed": s,
                "rel": rel,
                "lowered": sum(v < 0 for v in rel.values()),
                "refine_s": a["refine_time_s"],
                "wanda_s": b["prune_time_s"],
                "dsnot_run_s": a["prune_time_s"],
                "cheaper": a["refine_time_s"] < b["prune_time_s"],
            }
        )
    if not per_seed:
        return None
    n = len(per_seed) * len(sets)
    lowered = sum(p["lowered"] for p in per_seed)
    cheaper = sum(p["cheaper"] for p in per_seed)
    complete = len(per_seed) == len(seeds)
    return {
        "per_seed": per_seed,
        "n": n,
        "lowered": lowered,
        "cheaper": cheaper,
        "n_seeds": len(per_seed),
        "complete": complete,
        "met": complete and lowered == n and cheaper == len(per_seed),
    }


def dsnot_settings(
    index: dict[Key, dict],
    recipes: list[str],
    patterns: list[str],
    seeds: list[int],
    sets: list[str],
    refines: list[str],
) -> list[dict[str, Any]]:
    """Every DSnoT variant against plain Wanda (same pattern, recipe and seed), per pattern:
    on the development slices (``dev_ppl``, for choosing DSnoT's settings) and held out.

    Returns one row per (variant, pattern) with at least one pair: ``n_recipes`` (recipes with
    such a pair), ``dev_lowered``/``n`` and
    ``heldout_lowered``/``n`` (pairs whose perplexity DSnoT lowered), ``dev_mean_rel`` and
    ``heldout_mean_rel`` (mean relative change, negative = lower), ``refine_s`` (mean refine
    wall time)."""
    rows = []
    for f in (r for r in refines if r != "none"):
        for p in patterns:
            keys = [
                (r, s)
                for r in recipes
                for s in seeds
                if (p, r, s, f) in index and (p, r, s, "none") in index
            ]
            if not keys:
                continue
            pairs = [(index[(p, r, s, f)], index[(p, r, s, "none")]) for r, s in keys]
            row: dict[str, Any] = {
                "refine": f,
                "pattern": p,
                "n": len(pairs) * len(sets),
                "n_recipes": len({r for r, _ in keys}),
            }
            for part, field in (("dev", "dev_ppl"), ("heldout", "ppl")):
                rel = [a[field][e] / b[field][e] - 1.0 for a, b in pairs for e in sets]
                row[f"{part}_lowered"] = sum(v < 0 for v in rel)
                row[f"{part}_mean_rel"] = statistics.fmean(rel)
            row["refine_s"] = statistics.fmean(a["refine_time_s"] for a, _ in pairs)
            rows.append(row)
    return rows


def spearman(x: list[float], y: list[float]) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value (NaN for fewer than 3 points or a constant)."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan"), float("nan")
    from scipy import stats

    res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def coverage_spearman(
    index: dict[Key, dict],
    reports: dict[tuple[str, int], dict],
    recipes: list[str],
    patterns: list[str],
    seeds: list[int],
    sets: list[str],
) -> dict[str, dict[str, dict[str, float]]]:
    """Per pattern and held-out set (and their geometric mean): Spearman's rho between the
    calibration report's mean coverage of each (recipe, seed) set and that set's plain-Wanda
    held-out perplexity, with p and n. Coverage is a distance (lower = better covered), so a
    positive rho means better-covered sets gave lower perplexity."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for p in patterns:
        pts = [
            (reports[(r, s)]["coverage_mean"], index[(p, r, s, "none")]["ppl"])
            for r in recipes
            for s in seeds
            if (r, s) in reports and (p, r, s, "none") in index
        ]
        if not pts:
            continue
        cells = {}
        for e in [*sets, "geomean"]:
            x = [c for c, _ in pts]
            y = [geomean([ppl[k] for k in sets]) if e == "geomean" else ppl[e] for _, ppl in pts]
            rho, pval = spearman(x, y)
            cells[e] = {"rho": rho, "p": pval, "n": len(pts)}
        out[p] = cells
    return out


def reading(cell: dict[str, float], alpha: float = 0.05) -> str:
    """What a Spearman cell says, from its sign and p-value alone."""
    rho, p = cell["rho"], cell["p"]
    if math.isnan(rho):
        return "not computable"
    if p < alpha and rho > 0:
        return "same order (p < 0.05)"
    if p < alpha:
        return "opposite order (p < 0.05)"
    return "no rank relation detectable (p >= 0.05)"


def analyse(out: dict) -> dict[str, Any]:
    """Everything the markdown states, from the results JSON."""
    c = out["config"]
    recipes, patterns, seeds = c["recipes"], c["patterns"], c["seeds"]
    sets = list(c["eval_tokens"])
    index = index_runs(out["runs"])
    reports = {(r["recipe"], r["seed"]): r for r in out.get("reports", [])}
    choice = choose_default(index, recipes, patterns, seeds, sets)
    t1 = heldout_target1(index, recipes, patterns, seeds, sets)
    t2 = {r: t for r in recipes if (t := target2(index, r, seeds, sets))}
    refines = c.get("refines", ["none", "dsnot"])
    return {
        "dsnot_settings": dsnot_settings(index, recipes, patterns, seeds, sets, refines),
        "choice": choice,
        "target1": t1,
        "target2": t2,
        "spearman": coverage_spearman(index, reports, recipes, patterns, seeds, sets),
    }
