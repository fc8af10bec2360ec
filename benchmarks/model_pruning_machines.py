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

Writes benchmarks/results/model_pruning_machines.{json,md} (then benchmarks/RESULTS.md).
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
    index_runs,
    paired,
    target1,
)
from benchmarks.model_pruning_setup import SOURCES, pattern_label  # noqa: E402

RESULTS = HERE / "results"
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
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reference", type=Path, help="results JSON of the first machine")
    ap.add_argument("--other", type=Path, help="results JSON of the same command elsewhere")
    ap.add_argument("--output-dir", type=Path, default=RESULTS)
    common.add_render_only(ap, NAME)
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
                        "method": _method(recipe),
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
            sign_b = {(c["pattern"], c["seed"], c["set"]): c["rel"] < 0 for c in cb}
            flips = sum(
                (c["rel"] < 0) != sign_b[(c["pattern"], c["seed"], c["set"])]
                for c in ca
                if (c["pattern"], c["seed"], c["set"]) in sign_b
            )
            entry[field] = {
                "reference": target1(ca),
                "other": target1(cb),
                "flips": flips,
                "n_paired": len(sign_b.keys() & {(c["pattern"], c["seed"], c["set"]) for c in ca}),
            }
        verdicts[recipe] = entry
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
        "patterns": patterns,
        "calibrations": {
            "n_both": len(both_sets),
            "n_same_composition": len(same),
            "n_same_memo": len(memo),
        },
    }


def _method(recipe: str) -> str:
    return {"magnitude": "magnitude", "random": "wanda_random"}.get(recipe, "wanda_recipes")


def _calibrations(out: dict) -> dict[str, dict]:
    """(recipe, seed) -> the calibration entry (recipes other than random)."""
    return {
        f"{c['recipe']}|{c['seed']}": c
        for c in out.get("calibrations", [])
        if c["recipe"] != "random"
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = args.output_dir.resolve()
    if args.render_only:
        res = json.loads((out_dir / f"{NAME}.json").read_text(encoding="utf-8"))
        common.publish(NAME, markdown(res), out_dir=out_dir)
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
    common.publish(NAME, markdown(res), res, out_dir=out_dir)
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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(res: dict) -> str:
    """The section, every sentence computed from ``res``."""
    ref, oth, cal = res["reference"], res["other"], res["calibrations"]
    lines = [
        "## Model pruning: the same run on two machines — `model_pruning_machines`",
        "",
        f"`{res['command']}` (script `benchmarks/model_pruning_machines.py`). Reference: "
        f"`{ref['path']}`, written by `{ref['command']}` ({_cpu(ref['machine'])}). Other: "
        f"`{oth['path']}`, written by `{oth['command']}` ({_cpu(oth['machine'])}). The two runs "
        "have the same configuration (model, pool, calibration size, slices) and the same "
        "seeds. Random calibration does not depend on the model, so both machines prune from "
        "the same random samples. Of the other recipes' (recipe, seed) sets, "
        f"{cal['n_same_memo']} of {cal['n_both']} were built on both machines from model "
        "activations loaded from the benchmark's memo with the same recorded "
        "computation time (the same stored activations), and "
        f"{cal['n_same_composition']} of {cal['n_both']} have the same source composition on "
        "both.",
        "",
        "### Perplexity differences between the machines (other / reference - 1)",
        "",
        "| method | perplexities | runs x sets | median abs. difference | largest abs. difference |",
        "|---|---|---:|---:|---:|",
    ]
    fields = {"ppl": "held out", "dev_ppl": "development"}
    for key, s in res["summary"].items():
        method, field = key.split("|")
        lines.append(
            f"| {METHODS[method]} | {fields[field]} | {s['n']} | {_pct(s['median_abs_rel'])} "
            f"| {_pct(s['max_abs_rel'])} |"
        )
    wanda = [r for r in res["rows"] if r["method"].startswith("wanda") and r["field"] == "ppl"]
    if wanda:
        top = max(wanda, key=lambda r: abs(r["rel"]))
        lines += [
            "",
            f"Largest held-out difference: Wanda with `{top['recipe']}` calibration, "
            f"{pattern_label(top['pattern'])}, seed {top['seed']}, {top['set']}: "
            f"{top['reference']:.2f} on the reference, {top['other']:.2f} on the other machine "
            f"({top['rel']:+.1%}).",
        ]
    lines += [
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
                f"| {recipe} | {fields[field]} | {a['wins']}/{a['n']}{' (met)' if a['met'] else ''} "
                f"| {a['worst_rel']:+.1%} | {b['wins']}/{b['n']}{' (met)' if b['met'] else ''} "
                f"| {b['worst_rel']:+.1%} | {e['flips']} of {e['n_paired']} |"
            )
    flips = sum(e[f]["flips"] for e in res["verdicts"].values() for f in ("ppl", "dev_ppl"))
    n_paired = sum(e[f]["n_paired"] for e in res["verdicts"].values() for f in ("ppl", "dev_ppl"))
    w = res["summary"].get("wanda_random|ppl")
    d = res["summary"].get("dense|ppl")
    if w and d and n_paired:
        lines += [
            "",
            f"**Reading.** The dense model's held-out perplexities differ by at most "
            f"{_pct(d['max_abs_rel'])} between the machines; Wanda's, from the same random "
            f"calibration samples, by a median {_pct(w['median_abs_rel'])} and up to "
            f"{_pct(w['max_abs_rel'])}. {flips} of the {n_paired} paired recipe-vs-random "
            f"comparisons ({_pct(flips / n_paired)}) have a different winner on the other machine.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
