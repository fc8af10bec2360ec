"""Markdown of ``benchmarks/rag_pruning.py``: every sentence is computed from the saved run."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import _common as common

__all__ = ["render"]


def _f(x: float, nd: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{nd}f}"


def _ci(d: float, ci: dict[str, Any]) -> str:
    if ci.get("n_nan"):
        return f"{_f(d, 3)} (not comparable in {ci['n_nan']} resamples)"
    return f"{d:+.3f} [{ci['lo']:+.3f}, {ci['hi']:+.3f}]"


def _verdict(d: float, ci: dict[str, Any]) -> str:
    if ci.get("n_nan") or d != d:
        return "not comparable"
    if ci["lo"] > 0:
        return "ours better"
    if ci["hi"] < 0:
        return "ours worse"
    return "no significant difference"


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def _single(res: dict[str, Any]) -> list[str]:
    tgt = res["targets"]["single_hop"]
    rd = res["targets"]["readme"]
    lines = [
        "### Single-hop held-out sets (passages that hold evidence; default settings)",
        "",
        "Oracle compression: what keeping exactly the evidence sentences removes.",
        "",
        "| set | passages (with evidence) | threshold | recall | F2 | compression | oracle "
        "compression | compression, all passages | target (recall >= "
        f"{tgt['recall']:.2f} at compression >= {tgt['compression']:.2f}) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for name, r in res["sets"].items():
        d = r["default"]
        ok = d["recall"] >= tgt["recall"] and d["compression"] >= tgt["compression"]
        verdicts.append((name, ok, d, r))
        unattainable = (
            " (unattainable: keeping exactly the evidence removes less)"
            if r["oracle_compression"] < tgt["compression"]
            else ""
        )
        lines.append(
            f"| {name} | {r['n_passages']} ({r['n_evidence_passages']}) | {r['threshold']:.3f} | "
            f"{_f(d['recall'])} | {_f(d['f2'])} | {_f(d['compression'])} | "
            f"{_f(r['oracle_compression'])} | {_f(r['all_passages']['compression'])} | "
            f"{_met(ok)}{unattainable} |"
        )
    lines += [
        "",
        "At our default's compression on the same passages (competitors swept over their "
        "threshold and interpolated; paired bootstrap 95% CI over passages; positive = ours "
        "higher):",
        "",
        "| set | vs | their recall | Δ recall [95% CI] | Δ F2 [95% CI] | reading |",
        "|---|---|---:|---|---|---|",
    ]
    for name, r in res["sets"].items():
        for other, a in r["against"].items():
            lines.append(
                f"| {name} | {other} | {_f(a['recall'])} | {_ci(a['delta_recall'], a['ci95_recall'])} "
                f"| {_ci(a['delta_f2'], a['ci95_f2'])} | {_verdict(a['delta_recall'], a['ci95_recall'])} |"
            )
    prev = [(n, r["previous_at_its_default"]) for n, _, _, r in verdicts
            if r.get("previous_at_its_default")]  # fmt: skip
    if prev:
        lines += [
            "",
            "The previous checkpoint at its own default threshold on the same evidence-bearing "
            "passages (recall / compression): "
            + ", ".join(f"{n} {_f(d['recall'])} / {_f(d['compression'])}" for n, d in prev)
            + ".",
        ]
    met = [n for n, ok, _, _ in verdicts if ok]
    missed = [n for n, ok, _, _ in verdicts if not ok]
    lines += [
        "",
        f"Single-hop target met on {len(met)} of {len(verdicts)} sets"
        + (f" ({', '.join(met)})" if met else "")
        + (f"; missed on {', '.join(missed)}" if missed else "")
        + ". Best recall the threshold sweep reaches at compression >= "
        f"{tgt['compression']:.2f}: "
        + ", ".join(f"{n} {_f(r['best_recall_at_target_compression'])}" for n, _, _, r in verdicts)
        + ".",
        "",
    ]
    rd_ok = [
        n
        for n, _, d, _ in verdicts
        if d["compression"] >= rd["compression"] and d["recall"] >= rd["recall"]
    ]
    lines.append(
        f"README claim (default removes >= {rd['compression']:.0%} of the characters of "
        f"evidence-bearing passages and keeps >= {rd['recall']:.0%} of evidence sentences): holds "
        f"on {len(rd_ok)} of {len(verdicts)} sets"
        + (f" ({', '.join(rd_ok)})" if rd_ok else "")
        + "."
    )
    return lines


def _wname(w: float) -> str:
    return f"{w:g}"


def _multi(title: str, r: dict[str, Any], tgt: dict[str, float], cw_source: str) -> list[str]:
    w, cw = r["passage_weight"], r["compare_weight"]

    def tag(x: float) -> str:
        return " (default)" if x == w else ""

    lines = [
        f"### {title}",
        "",
        f"{r['n_questions']} questions, {r['n_passages']} passages (gold and distractors), each "
        f"question's passages pruned together at threshold {r['threshold']:.3f}; recall = "
        "supporting sentences kept, compression = share of all its passages' characters removed.",
        "",
        "| setting | recall | compression | best recall at compression >= "
        f"{tgt['compression']:.2f} | target |",
        "|---|---:|---:|---:|---|",
    ]
    names = {
        "off": f"single pass, passage weight 0{tag(0.0)}",
        "weighted": f"single pass, passage weight {_wname(cw)} ({cw_source}){tag(cw)}",
        "second": f"second pass, passage weight {_wname(w)}",
    }
    for k, name in names.items():
        d = r[k]["default"]
        ok = d["recall"] >= tgt["recall"] and d["compression"] >= tgt["compression"]
        lines.append(
            f"| {name} | {_f(d['recall'])} | {_f(d['compression'])} | "
            f"{_f(r[k]['best_recall_at_target_compression'])} | {_met(ok)} |"
        )
    single = f"single pass, passage weight {_wname(w)}"
    lines += ["", "Matched-compression comparisons (the second interpolated at the first's "
              "compression; paired bootstrap 95% CI over questions):", ""]  # fmt: skip
    for key, a, b in (
        ("weighted_vs_off", names["weighted"], names["off"]),
        ("weighted_vs_off_at_target", names["weighted"], names["off"]),
        ("second_vs_single", names["second"], single),
    ):
        c = r[key]
        lines.append(
            f"- {a} at threshold {c['threshold']:.4g} (recall {_f(c['recall'])}, compression "
            f"{_f(c['compression'])}) against {b}: Δ recall "
            f"{_ci(c['delta_recall'], c['ci95_recall'])} "
            f"({_verdict(c['delta_recall'], c['ci95_recall'])})."
        )
    comps = r["rule_compressions"]
    lines += [
        "",
        "Passage weight swept (single pass): best recall at compression >= "
        + " and >= ".join(f"{c:.2f}" for c in comps)
        + (
            f"; the rule on this held-out set alone (not used) would pick {_wname(r['weight_choice'])}."
            if cw_source == "development choice"
            else f"; the rule picks {_wname(r['weight_choice'])}."
        ),
        "",
        "| passage weight | "
        + " | ".join(f"best recall at >= {c:.2f}" for c in comps)
        + " | mean |",
        "|---:|" + "---:|" * (len(comps) + 1),
    ]
    for v in r["weight_sweep"].values():
        lines.append(
            f"| {_wname(v['weight'])} | "
            + " | ".join(_f(x) for x in v["best_recall"])
            + f" | {_f(float(np.mean(v['best_recall'])))} |"
        )
    lines.append("")
    return lines


def _recipe_text(recipe: dict[str, Any] | None) -> str:
    if not recipe or recipe.get("trainable_layers") is None:
        return ""
    return f" ({recipe['trainable_layers']} trainable layers, {recipe['steps']} steps)"


def _previous_text(res: dict[str, Any]) -> str:
    sets = res.get("previous_training_sets") or ["(no card)"]
    return "trained on " + ", ".join(sets) + _recipe_text(res.get("previous_recipe"))


def _lodo(res: dict[str, Any]) -> list[str]:
    if not res.get("lodo"):
        return ["Leave-one-dataset-out: no LODO models found (run benchmarks/rag_training.py).", ""]
    rows = res["lodo"]
    lines = [
        "### Leave-one-dataset-out (each model never trained on the set it is evaluated on)",
        "",
        "Each model follows the recipe in its row, is trained without the left-out set and "
        "prunes at its own default threshold (calibrated on its own validation split); evidence-"
        "bearing passages scored alone, BM25 matched at the same compression (bootstrap over "
        "passages).",
        "",
        "| left out | recipe | threshold | recall | F2 | compression | vs BM25: Δ recall [95% CI] "
        "| reading |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    carried: dict[str, list[str]] = {}
    for name, r in rows.items():
        d, a = r["default"], r["against"]["bm25"]
        rec = r.get("recipe") or {}
        recipe = (
            f"{rec['trainable_layers']} layers, {rec['steps']} steps"
            if rec.get("trainable_layers") is not None
            else "n/a"
        )
        if r.get("carried_from"):
            carried.setdefault(r["carried_from"], []).append(name)
            recipe += " *"
        lines.append(
            f"| {name} | {recipe} | {r['threshold']:.3f} | {_f(d['recall'])} | {_f(d['f2'])} | "
            f"{_f(d['compression'])} | {_ci(a['delta_recall'], a['ci95_recall'])} | "
            f"{_verdict(a['delta_recall'], a['ci95_recall'])} |"
        )
    lines.append("")
    for cmd, names in carried.items():
        lines += [
            f"\\* Not retrained for this run: {', '.join(names)} taken from the earlier run "
            f"`{cmd}`.",
            "",
        ]
    multi = {n: r["questions"] for n, r in rows.items() if r.get("questions")}
    if multi:
        tgt = res["targets"]["multi_hop"]
        lines += [
            "Multi-hop sets, every question's passages pruned together (gold and distractors; "
            "recall = supporting sentences kept, compression = share of all its passages' "
            "characters removed); the others matched at the LODO model's compression, paired "
            "bootstrap over questions. `shipped` = the shipped pruner, which trained on this "
            "dataset but never on these questions.",
            "",
            f"| left out | questions | recall | compression | best recall at >= "
            f"{tgt['compression']:.2f} | vs | their recall | Δ recall [95% CI] | reading | their "
            f"best recall at >= {tgt['compression']:.2f} |",
            "|---|---:|---:|---:|---:|---|---:|---|---|---:|",
        ]
        for name, q in multi.items():
            d = q["default"]
            for other, a in q["against"].items():
                lines.append(
                    f"| {name} | {q['n_questions']} | {_f(d['recall'])} | "
                    f"{_f(d['compression'])} | {_f(q['best_recall_at_target_compression'])} | "
                    f"{other} | {_f(a['recall'])} | {_ci(a['delta_recall'], a['ci95_recall'])} | "
                    f"{_verdict(a['delta_recall'], a['ci95_recall'])} | "
                    f"{_f(a['best_recall_at_target_compression'])} |"
                )
        met = [
            n
            for n, q in multi.items()
            if q["default"]["recall"] >= tgt["recall"]
            and q["default"]["compression"] >= tgt["compression"]
        ]
        lines += [
            "",
            f"Multi-hop target (recall >= {tgt['recall']:.2f} with compression >= "
            f"{tgt['compression']:.2f}) at the LODO models' defaults: met on {len(met)} of "
            f"{len(multi)} ({', '.join(met) or 'none'}).",
            "",
        ]
    return lines


def render(res: dict[str, Any]) -> str:
    lines = [
        "## RAG context pruning across held-out datasets (`rag_pruning`)",
        "",
        f"Command: `{res['command']}`. Pruner: `{res['model'].get('name')}` trained on "
        f"{', '.join(res.get('training_sets') or ['(no card)'])}{_recipe_text(res.get('model_recipe'))}"
        f"; previous checkpoint (`{res['previous'].get('name')}`): "
        f"{_previous_text(res)}. " + common.machine_sentence(res.get("machine")),
        "",
    ]
    if res.get("sets"):
        lines += [*_single(res), ""]
    for name, r in res.get("multi_hop", {}).items():
        lines += _multi(
            f"Multi-hop held-out: {name}", r, res["targets"]["multi_hop"], "development choice"
        )
    if res.get("dev_multi_hop"):
        dev = res["dev_multi_hop"]
        sec = dev["second_vs_single"]
        helps = sec["ci95_recall"]["lo"] > 0 if not sec["ci95_recall"].get("n_nan") else False
        lines += _multi(
            "Development (validation questions of the multi-hop training sets, all passages)",
            dev,
            res["targets"]["multi_hop"],
            "this set's rule choice",
        )
        choice, w = dev["weight_choice"], dev["passage_weight"]
        lines.append(
            "Rule for the passage weight (development data only): the highest mean of the best "
            "recalls at the compressions above, ties to the smaller weight; it picks "
            f"{_wname(choice)}, "
            + (
                "the shipped default."
                if choice == w
                else f"but the shipped default is {_wname(w)}: **the default does not follow the rule**."
            )
        )
        lines.append(
            "On development data the second pass "
            + (
                "raises recall significantly at matched compression: it should be on by default."
                if helps
                else "does not raise recall significantly at matched compression: it stays off by default."
            )
        )
        lines.append("")
    lines += _lodo(res)
    lines.append(
        f"Wall time {res.get('wall_s', 0):.0f} s, {res.get('torch_threads')} torch threads."
    )
    return "\n".join(lines) + "\n"
