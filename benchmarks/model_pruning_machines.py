"""Does the same model-pruning run give the same perplexities on another machine?

Compares two results JSONs of ``benchmarks/model_pruning.py`` written by the same command (the
same configuration: model, pool, calibration size, slices, seeds) on two machines, run by run:

* how far the perplexities of the dense model, of magnitude pruning and of every Wanda run (same
  recipe, same seed) move between the machines;
* whether each calibration recipe's paired comparisons against random calibration (Target 1's
  wins, worst difference and verdict) come out the same on both machines.

bf16 forward passes run on whichever kernels torch dispatches to on the CPU; the pruning masks
follow from those activations, so two machines can prune differently from the same data.

    .venv/bin/python benchmarks/model_pruning.py --name model_pruning_proportional \\
        --recipes proportional_fl_act,proportional_kcenter_act,proportional_herding_act,balanced_fl_act \\
        --patterns 50%,2:4 --seeds 0,1,2 --refines none --output-dir benchmarks/results/machines
    .venv/bin/python benchmarks/model_pruning_machines.py \\
        --reference benchmarks/results/model_pruning_proportional.json \\
        --other benchmarks/results/machines/model_pruning_proportional.json

(``benchmarks/results/machines/`` keeps the other machine's results apart from RESULTS.md.)

Writes benchmarks/results/<name>.{json,md} (default model_pruning_machines; then
benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.model_pruning_analysis import (  # noqa: E402
    T1_PATTERNS,
    T2_PATTERN,
    index_runs,
    paired,
    target1,
    target2,
)
from benchmarks.model_pruning_setup import SOURCES, pattern_label  # noqa: E402
from benchmarks.model_pruning_verdicts import label, pct  # noqa: E402

RESULTS = HERE / "results"
FIELDS = {"ppl": "held out", "dev_ppl": "development"}
NAME = "model_pruning_machines"
#: configuration fields that only list which runs an invocation asked for
_RUN_LISTS = ("patterns", "seeds", "recipes", "refines", "recipe_options", "refine_options")
#: row groups: the same calibration samples on both machines (random does not depend on the
#: model) apart from the recipes that select in the model's activation space
METHODS = {
    "dense": "dense",
    "magnitude": "magnitude (no data)",
    "wanda_random": "Wanda, random calibration",
    "wanda_recipes": "Wanda, the other recipes",
    "wanda_refined": "Wanda + DSnoT (every variant run)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reference", type=Path, help="results JSON of the first machine")
    ap.add_argument("--other", type=Path, help="results JSON of the same command elsewhere")
    ap.add_argument("--name", default=NAME, help=f"results file name (default {NAME})")
    ap.add_argument("--output-dir", type=Path, default=RESULTS)
    common.add_render_only(ap, "<name>")
    args = ap.parse_args(argv)
    if not args.render_only and (args.reference is None or args.other is None):
        ap.error("--reference and --other are required (or --render-only)")
    return args


def load(path: Path, role: str) -> dict[str, Any]:
    """A model_pruning results JSON, or exit 2 with a one-line reason."""
    try:
        out = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        _fail(f"{role} {path}: not a readable results JSON ({e})")
    missing = [k for k in ("config", "dense", "runs", "command") if k not in out]
    if missing:
        _fail(
            f"{role} {path}: field(s) {', '.join(missing)} missing; expected the JSON that "
            "benchmarks/model_pruning.py writes"
        )
    return out


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2 (bad input)."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def config_differences(a: dict, b: dict) -> list[str]:
    """The configuration fields (other than the run lists) whose values differ."""
    keys = (set(a) | set(b)) - set(_RUN_LISTS)
    if set(a.get("refines", [])) | set(b.get("refines", [])) <= {"none"}:
        keys.discard("dsnot")  # DSnoT's settings: no run of either refined its masks
    return sorted(k for k in keys if a.get(k) != b.get(k))


def compare(ref: dict, other: dict) -> dict[str, Any]:
    """Per-run perplexity differences and per-recipe verdicts on both machines."""
    ia, ib = index_runs(ref["runs"]), index_runs(other["runs"])
    common_keys = sorted(set(ia) & set(ib), key=str)
    rows = []
    for field in ("ppl", "dev_ppl"):
        for s in SOURCES:
            rows.append(
                {
                    "method": "dense",
                    "field": field,
                    "set": s,
                    "rel": other["dense"][field][s] / ref["dense"][field][s] - 1.0,
                }
            )
    for key in common_keys:
        pattern, recipe, seed, refine = key
        for field in ("ppl", "dev_ppl"):
            for s in SOURCES:
                rows.append(
                    {
                        "method": _method(recipe, refine),
                        "pattern": pattern,
                        "recipe": recipe,
                        "seed": seed,
                        "refine": refine,
                        "field": field,
                        "set": s,
                        "reference": ia[key][field][s],
                        "other": ib[key][field][s],
                        "rel": ib[key][field][s] / ia[key][field][s] - 1.0,
                    }
                )
    summary = {}
    for method in METHODS:
        for field in ("ppl", "dev_ppl"):
            rel = [abs(r["rel"]) for r in rows if r["method"] == method and r["field"] == field]
            if rel:
                summary[f"{method}|{field}"] = {
                    "n": len(rel),
                    "median_abs_rel": statistics.median(rel),
                    "max_abs_rel": max(rel),
                }
    both = sorted({k[1] for k in common_keys} - {"random", "magnitude"})
    patterns = [p for p in T1_PATTERNS if any(k[0] == p for k in common_keys)]
    seeds = sorted({k[2] for k in common_keys if k[2] is not None})
    verdicts = {}
    for recipe in both:
        entry = {}
        for field in ("ppl", "dev_ppl"):
            ca = paired(ia, recipe, patterns, seeds, list(SOURCES), field=field)
            cb = paired(ib, recipe, patterns, seeds, list(SOURCES), field=field)
            entry[field] = {
                "reference": target1(ca),
                "other": target1(cb),
                **_sign_changes(
                    {(c["pattern"], c["seed"], c["set"]): c["rel"] for c in ca},
                    {(c["pattern"], c["seed"], c["set"]): c["rel"] for c in cb},
                ),
            }
        verdicts[recipe] = entry
    dsnot = {}
    for recipe in sorted({k[1] for k in common_keys if k[0] == T2_PATTERN and k[3] == "dsnot"}):
        ta, tb = (target2(i, recipe, seeds, list(SOURCES)) for i in (ia, ib))
        if ta and tb:
            dsnot[recipe] = {
                "reference": ta,
                "other": tb,
                **_sign_changes(
                    *(
                        {(x["seed"], e): v for x in t["per_seed"] for e, v in x["rel"].items()}
                        for t in (ta, tb)
                    )
                ),
            }
    ra, rb = _calibrations(ref, random=True), _calibrations(other, random=True)
    same_random = [k for k in ra.keys() & rb.keys() if ra[k]["composition"] == rb[k]["composition"]]
    ca, cb = _calibrations(ref), _calibrations(other)
    both_sets = ca.keys() & cb.keys()
    same = [k for k in both_sets if ca[k]["composition"] == cb[k]["composition"]]
    # activations loaded from the benchmark's memo carry the time of the computation that made
    # them: equal non-zero times on both machines mean the same stored activations
    memo = [
        k
        for k in both_sets
        if ca[k].get("activation_reused_s")
        and ca[k].get("activation_reused_s") == cb[k].get("activation_reused_s")
    ]
    return {
        "rows": rows,
        "summary": summary,
        "verdicts": verdicts,
        "dsnot": dsnot,
        "patterns": patterns,
        "calibrations": {
            "n_random_both": len(ra.keys() & rb.keys()),
            "n_random_same_composition": len(same_random),
            "n_both": len(both_sets),
            "n_same_composition": len(same),
            "n_same_memo": len(memo),
        },
    }


def _method(recipe: str, refine: str) -> str:
    if refine != "none":
        return "wanda_refined"
    return {"magnitude": "magnitude", "random": "wanda_random"}.get(recipe, "wanda_recipes")


def _calibrations(out: dict, *, random: bool = False) -> dict[str, dict]:
    """(recipe, seed) -> the calibration entry, of random calibration or of the other recipes."""
    return {
        f"{c['recipe']}|{c['seed']}": c
        for c in out.get("calibrations", [])
        if (c["recipe"] == "random") == random
    }


def _sign_changes(ref: dict, other: dict) -> dict[str, int]:
    """Paired relative differences (key -> rel) on both machines: how many keys both have
    (``n_paired``) and how many of them change sign (``flips``: lower on one, not the other)."""
    keys = ref.keys() & other.keys()
    return {"n_paired": len(keys), "flips": sum((ref[k] < 0) != (other[k] < 0) for k in keys)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = args.output_dir.resolve()
    if args.render_only:
        res = json.loads((out_dir / f"{args.name}.json").read_text(encoding="utf-8"))
        common.publish(args.name, markdown(res, args.name), out_dir=out_dir)
        return 0
    ref, other = load(args.reference, "--reference"), load(args.other, "--other")
    diff = config_differences(ref["config"], other["config"])
    if diff:
        _fail(
            f"--other {args.other}: configuration differs from --reference in {', '.join(diff)}; "
            "compare runs of the same command"
        )
    res = {
        "command": "python benchmarks/model_pruning_machines.py " + " ".join(sys.argv[1:]),
        "reference": {"path": _shown(args.reference), "command": ref["command"]}
        | {"machine": ref.get("machine")},
        "other": {"path": _shown(args.other), "command": other["command"]}
        | {"machine": other.get("machine")},
        "config": ref["config"],
        **compare(ref, other),
    }
    common.publish(args.name, markdown(res, args.name), res, out_dir=out_dir)
    return 0


def _shown(path: Path) -> str:
    p = path.resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(path)


def _cpu(machine: dict | None) -> str:
    if not isinstance(machine, dict):
        return "not recorded"
    cpu = machine.get("cpu")
    named = cpu if cpu and cpu != machine.get("machine") else "CPU model not recorded"
    kern = machine.get("torch_cpu_capability")
    return f"{named}; torch CPU kernels {kern or 'not recorded'}; {machine.get('platform', '?')}"


def _same_platform(ref: dict, oth: dict) -> str:
    pa, pb = ((m.get("machine") or {}).get("platform") for m in (ref, oth))
    return "unknown" if not (pa and pb) else ("the same" if pa == pb else "different")


def _recipe_section(res: dict) -> list[str]:
    lines = [
        "",
        "### Each recipe against random calibration, on each machine (plain Wanda, "
        + " and ".join(pattern_label(p) for p in res["patterns"])
        + ")",
        "",
        "Target 1's counts (lower perplexity than random in at least 16 of 18 paired (seed, "
        "pattern, set) comparisons, never more than 1% worse) computed on each machine's own runs; "
        "'sign changes': paired comparisons whose winner differs between the machines.",
        "",
        "| recipe | slices | wins, reference | worst, reference | wins, other | worst, other "
        "| sign changes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for recipe, entry in res["verdicts"].items():
        for field in ("dev_ppl", "ppl"):
            e = entry[field]
            a, b = e["reference"], e["other"]
            lines.append(
                f"| {label(recipe)} | {FIELDS[field]} | {a['wins']}/{a['n']}"
                f"{' (met)' if a['met'] else ''} | {pct(a['worst_rel'])} | {b['wins']}/{b['n']}"
                f"{' (met)' if b['met'] else ''} | {pct(b['worst_rel'])} "
                f"| {e['flips']} of {e['n_paired']} |"
            )
    return lines


def _dsnot_section(res: dict) -> list[str]:
    lines = [
        "",
        f"### DSnoT against plain Wanda at {pattern_label(T2_PATTERN)}, on each machine",
        "",
        "Held-out perplexity of Wanda + DSnoT relative to plain Wanda from the same calibration "
        "set (negative: DSnoT lowers it), per seed and set; 'sign changes': (seed, set) pairs "
        "where DSnoT lowers the perplexity on one machine and not on the other.",
        "",
        "| recipe | seed | reference: " + " / ".join(SOURCES) + " | refine < prune, reference "
        "| other: " + " / ".join(SOURCES) + " | refine < prune, other |",
        "|---|---:|---|---|---|---|",
    ]
    for recipe, e in res["dsnot"].items():
        other = {x["seed"]: x for x in e["other"]["per_seed"]}
        for x in e["reference"]["per_seed"]:
            y = other.get(x["seed"])
            if y is None:
                continue
            lines.append(
                f"| {label(recipe)} | {x['seed']} | "
                + " / ".join(pct(x["rel"][k]) for k in SOURCES)
                + f" | {'yes' if x['cheaper'] else 'no'} ({x['refine_s']:.1f} s vs "
                f"{x['wanda_s']:.1f} s) | "
                + " / ".join(pct(y["rel"][k]) for k in SOURCES)
                + f" | {'yes' if y['cheaper'] else 'no'} ({y['refine_s']:.1f} s vs "
                f"{y['wanda_s']:.1f} s) |"
            )
        lines.append(f"| {label(recipe)} | sign changes | {e['flips']} of {e['n_paired']} | | | |")
    return lines


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(res: dict, name: str = NAME) -> str:
    """The section, every sentence computed from ``res``."""
    ref, oth, cal = res["reference"], res["other"], res["calibrations"]
    lines = [
        f"## Model pruning: the same run on two machines — `{name}`",
        "",
        f"`{res['command']}` (script `benchmarks/model_pruning_machines.py`). Reference: "
        f"`{ref['path']}`, written by `{ref['command']}` ({_cpu(ref['machine'])}). Other: "
        f"`{oth['path']}`, written by `{oth['command']}` ({_cpu(oth['machine'])}). "
        f"The two machines report {_same_platform(ref, oth)} platform strings. The two runs "
        "have the same configuration (model, pool, calibration size, slices) and the same "
        "seeds. Random calibration does not depend on the model: "
        f"{cal.get('n_random_same_composition', 0)} of its {cal.get('n_random_both', 0)} "
        "(seed) sets have the same source composition on both machines."
        + (
            f" Of the other recipes' (recipe, seed) sets, {cal['n_same_memo']} of "
            f"{cal['n_both']} were built on both machines from model activations loaded from "
            "the benchmark's memo with the same recorded computation time (the same stored "
            f"activations), and {cal['n_same_composition']} of {cal['n_both']} have the same "
            "source composition on both."
            if cal["n_both"]
            else ""
        ),
        "",
        "### Perplexity differences between the machines (other / reference - 1)",
        "",
        "| method | perplexities | runs x sets | median abs. difference | largest abs. difference |",
        "|---|---|---:|---:|---:|",
    ]
    for key, s in res["summary"].items():
        method, field = key.split("|")
        lines.append(
            f"| {METHODS[method]} | {FIELDS[field]} | {s['n']} | {_pct(s['median_abs_rel'])} "
            f"| {_pct(s['max_abs_rel'])} |"
        )
    wanda = [r for r in res["rows"] if r["method"].startswith("wanda") and r["field"] == "ppl"]
    if wanda:
        top = max(wanda, key=lambda r: abs(r["rel"]))
        lines += [
            "",
            "Largest held-out difference: Wanda"
            + (" + DSnoT" if top["refine"] != "none" else "")
            + f" with {label(top['recipe'])} calibration, "
            f"{pattern_label(top['pattern'])}, seed {top['seed']}, {top['set']}: "
            f"{top['reference']:.2f} on the reference, {top['other']:.2f} on the other machine "
            f"({pct(top['rel'])}).",
        ]
    if res["verdicts"]:
        lines += _recipe_section(res)
    if res.get("dsnot"):
        lines += _dsnot_section(res)
    reading = []
    w, d = res["summary"].get("wanda_random|ppl"), res["summary"].get("dense|ppl")
    if w and d:
        reading.append(
            f"The dense model's held-out perplexities differ by at most {_pct(d['max_abs_rel'])} "
            f"between the machines; Wanda's, from the same random calibration samples, by a "
            f"median {_pct(w['median_abs_rel'])} and up to {_pct(w['max_abs_rel'])}."
        )
    flips = sum(e[f]["flips"] for e in res["verdicts"].values() for f in ("ppl", "dev_ppl"))
    n_paired = sum(e[f]["n_paired"] for e in res["verdicts"].values() for f in ("ppl", "dev_ppl"))
    if n_paired:
        reading.append(
            f"{flips} of the {n_paired} paired recipe-vs-random comparisons "
            f"({_pct(flips / n_paired)}) have a different winner on the other machine."
        )
    for recipe, e in res.get("dsnot", {}).items():
        a, b = e["reference"], e["other"]
        reading.append(
            f"Target 2 with {label(recipe)} calibration (DSnoT lowers Wanda's held-out perplexity at "
            f"{pattern_label(T2_PATTERN)} on every set and seed, refining in less time than the "
            f"Wanda prune): {'met' if a['met'] else 'NOT met'} on the reference "
            f"({a['lowered']}/{a['n']} lowered), {'met' if b['met'] else 'NOT met'} on the other "
            f"machine ({b['lowered']}/{b['n']})."
        )
    if reading:
        lines += ["", "**Reading.** " + " ".join(reading)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
