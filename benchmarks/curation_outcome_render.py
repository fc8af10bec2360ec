"""The markdown section and plot of ``benchmarks/curation_outcome.py``, every sentence computed
from the results JSON (:func:`render`, :func:`publish`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common as common
from benchmarks.curation_outcome_setup import (
    CONDITIONS,
    DEV_SIZES,
    DTYPE,
    FAULT_TYPES,
    LABELS,
    NAME,
    SINGLE_STAGES,
    mean_shares,
    norm_stages,
)


def _pct(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def _mean_sd(x: list[float] | np.ndarray, fmt: str = ".4f") -> str:
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return "-"
    if len(x) == 1:
        return format(x[0], fmt)
    return f"{format(x.mean(), fmt)} ± {format(x.std(ddof=1), fmt)}"


def _stage_text(stages: list) -> str:
    out = []
    for s in stages:
        kind, opts = next(iter(s.items()))
        opts = {k: v for k, v in opts.items() if k != "label"}
        if kind == "fuzzy_dedup":
            out.append(f"fuzzy_dedup({opts.get('threshold')})")
        elif kind == "quality":
            cut = ", ".join(
                f"{k} {opts[k]}"
                for k in ("min", "max", "min_quantile", "max_quantile")
                if opts.get(k) is not None
            )
            out.append(f"quality({opts['score']}: {cut})")
        elif kind == "select":
            out.append(f"select({opts['method']})")
        else:
            out.append(kind)
    return " → ".join(out)


def _by(runs: list[dict]) -> dict[str, dict[int, dict]]:
    by: dict[str, dict[int, dict]] = {}
    for r in runs:
        by.setdefault(r["condition"], {})[r["seed"]] = r
    return by


def _nll(run: dict, which: str) -> float:
    return float(run["heldout"][which]["nll"])


def render_phase_a(a: dict) -> list[str]:
    L = ["### Phase A: choosing the default on development data\n"]
    p = a["pool"]
    rnd = a["random"]
    most = (
        ": the most the dev split allows"
        if [p["n_gsm8k"], p["n_alpaca"]] == list(DEV_SIZES)
        else ""
    )
    L.append(
        f"Dev pool: `build_pool({p['n_gsm8k']}, {p['n_alpaca']}, seed={p['seed']}, "
        f'split="dev")`, {p["n"]} records ({p["n_gsm8k"]} GSM8K, {p["n_alpaca"]} Alpaca{most}; '
        f"GSM8K share {p['n_gsm8k'] / p['n']:.0%}), planted-fault share "
        f"{_pct(p['fault_share'])}; budget "
        f"{a['budget']} records ({a['fraction']:.0%}). Each candidate ran with random_state "
        f"{', '.join(map(str, a['candidates'][0]['random_states']))} (shares averaged); random: "
        f"mean ± sd over {rnd['n']} random subsets of the budget.\n"
    )
    L.append(
        "Shares are of the kept records. *Paired* counts an exact/near duplicate only when the "
        "record it copies is kept too (dedup keeps the first of a pair in pool order, so the "
        "surviving member carries the duplicate label about half the time although it duplicates "
        "nothing); the per-type columns count labels.\n"
    )
    L.append(
        "| candidate | stages | planted-fault share | ratio to random | paired share | "
        "ratio to random | shuffled | truncated | exact dup | near dup | curate s (first state) |"
    )
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in a["candidates"]:
        mark = " **(winner)**" if r["name"] == a["winner"] else ""
        sd = f" ± {_pct(r['fault_share_sd'])}" if r["fault_share_sd"] > 0 else ""
        L.append(
            f"| {r['name']}{mark} | {_stage_text(r['stages'])} | {_pct(r['fault_share'])}{sd} | "
            f"{r['ratio_to_random']:.2f} | {_pct(r['fault_share_paired'])} | "
            f"{r['fault_share_paired'] / rnd['fault_share_paired']:.2f} | "
            + " | ".join(_pct(r["per_type"][f]) for f in FAULT_TYPES)
            + f" | {r['seconds_first']:.0f} |"
        )
    L.append(
        f"| random ({rnd['n']} subsets) | - | {_pct(rnd['fault_share'])} ± "
        f"{_pct(rnd['fault_share_sd'])} | 1.00 | {_pct(rnd['fault_share_paired'])} | 1.00 | "
        + " | ".join(_pct(rnd["per_type"][f]) for f in FAULT_TYPES)
        + " | - |"
    )
    L.append("")
    w = next(r for r in a["candidates"] if r["name"] == a["winner"])
    tie = ""
    if a.get("tied_with"):
        tie = (
            f" It ties with {', '.join(f'`{n}`' for n in a['tied_with'])}; "
            + {
                "paired share": "the lower paired share decided",
                "list order": "the same paired share and number of stages, so the candidate "
                "list order decided",
                "fewer stages": "it has fewer stages",
            }[a["tie_decided_by"]]
            + "."
        )
    paired_w = a.get("winner_by_paired_share")
    paired = (
        " By the paired share the winner would be the same."
        if paired_w == a["winner"]
        else f" By the paired share the lowest would be `{paired_w}` instead."
    )
    L.append(
        f"Winner (lowest planted-fault share; ties broken by the paired share, then fewer stages, "
        f"then list order): "
        f"**{a['winner']}**, {_pct(w['fault_share'])} vs random's {_pct(rnd['fault_share'])} "
        f"({w['ratio_to_random']:.2f}x).{tie}{paired} As a recipe: "
        f"`{json.dumps(a['winner_recipe'])}`. It is the `default` condition of Phase B.\n"
    )
    bd = a["builtin_default"]
    if bd["equals_winner"]:
        L.append(
            'The built-in `BUILTIN_RECIPES["default"]` '
            f"({_stage_text(norm_stages(bd['recipe']['stages']))}) **equals** the dev-selected "
            "recipe.\n"
        )
    else:
        which = (
            f"it is candidate `{bd['equals_candidate']}`"
            if bd["equals_candidate"]
            else "it is not among the candidates (run as an extra row)"
        )
        L.append(
            'The built-in `BUILTIN_RECIPES["default"]` '
            f"({_stage_text(norm_stages(bd['recipe']['stages']))}) **does not equal** the "
            f"dev-selected recipe: {which}, planted-fault share {_pct(bd['fault_share'])} vs the "
            f"winner's {_pct(w['fault_share'])} (Phase B's rule decides the shipped default; see "
            f"its targets).\n"
        )
    return L


def _nll_wins(by: dict, seeds: list[int], c: str, ref: str) -> dict[str, Any]:
    """Seeds where condition ``c`` has lower held-out NLL than ``ref``, per set."""
    a, r = by.get(c, {}), by.get(ref, {})
    both = [s for s in seeds if s in a and s in r]
    wins = {w: int(sum(_nll(a[s], w) < _nll(r[s], w) for s in both)) for w in ("gsm8k", "alpaca")}
    return {"seeds": both, **wins, "all": bool(both) and min(wins.values()) == len(both)}


def _shipped_condition(b: dict) -> str | None:
    """The Phase B condition whose recipe is the built-in default, if any."""
    builtin = b.get("builtin_default")
    if builtin is None:
        return None
    want = norm_stages(builtin)
    for c in ("default", *SINGLE_STAGES):
        rec = b["recipes"].get(c)
        if rec is not None and norm_stages(rec["stages"]) == want:
            return c
    return None


def _verdicts(b: dict) -> dict[str, Any]:
    by = _by(b["runs"])
    seeds = b["seeds"]
    cur = b["curation"]
    share, paired = {}, {}
    for c in CONDITIONS:
        rows = [cur[str(s)][c] for s in seeds if c in cur.get(str(s), {})]
        share[c] = float(np.mean([r["fault_share"] for r in rows])) if rows else None
        paired[c] = float(np.mean([r["fault_share_paired"] for r in rows])) if rows else None

    def targets(c: str) -> dict[str, Any]:
        w = _nll_wins(by, seeds, c, "random")
        ok = share[c] is not None and share["random"] is not None
        return {
            "nll_seeds": w["seeds"],
            "nll_gsm8k_wins": w["gsm8k"],
            "nll_alpaca_wins": w["alpaca"],
            "nll_target_met": w["all"],
            "nll_target_complete": len(w["seeds"]) == len(seeds),
            "fault_target_met": bool(ok and share[c] <= 0.25 * share["random"]),
        }

    singles = {}
    for c in SINGLE_STAGES:
        w = _nll_wins(by, seeds, c, "default")
        beats = [
            s
            for s in w["seeds"]
            if _nll(by[c][s], "gsm8k") < _nll(by["default"][s], "gsm8k")
            and _nll(by[c][s], "alpaca") < _nll(by["default"][s], "alpaca")
        ]
        mean_nll = (
            float(np.mean([_nll(by[c][s], "gsm8k") + _nll(by[c][s], "alpaca") for s in w["seeds"]]))
            if w["seeds"]
            else None
        )
        singles[c] = {
            "seeds": w["seeds"],
            "beats_default_both_sets": len(beats),
            "complete": len(w["seeds"]) == len(seeds),
            "mean_nll_sum": mean_nll,
        }
    # the rule: a single stage that beats the dev-chosen recipe on both held-out sets on
    # every seed becomes the default (the lowest summed NLL if several do)
    qualified = [
        c
        for c, i in singles.items()
        if i["complete"] and i["seeds"] and i["beats_default_both_sets"] == len(i["seeds"])
    ]
    rule = min(qualified, key=lambda c: singles[c]["mean_nll_sum"]) if qualified else "default"
    shipped = _shipped_condition(b)
    return {
        **targets("default"),
        "fault_share_mean": share,
        "fault_share_paired_mean": paired,
        "single_stage": singles,
        "rule_default": rule,
        "shipped": shipped,
        "shipped_targets": targets(shipped) if shipped else None,
    }


def render_phase_b(b: dict) -> list[str]:
    L = ["### Phase B: outcome on the eval pool\n"]
    p = b["pool"]
    by = _by(b["runs"])
    seeds = b["seeds"]
    n_done = len(b["runs"])
    n_exp = b["expected_trainings"]
    cfg = b["runs"][0]["train"] if b["runs"] else None
    L.append(
        f"Eval pool: `build_pool({p['n_gsm8k']}, {p['n_alpaca']}, seed={p['seed']})`, {p['n']} "
        f"records (GSM8K share {p['n_gsm8k'] / p['n']:.0%}), planted-fault share "
        f"{_pct(p['fault_share'])}; budget {b['budget']} records "
        f"({b['budget'] / p['n']:.0%}). Conditions: `random` (a seeded subset per seed), "
        f"`default` (the dev-chosen recipe, random_state = seed), `full` (all {p['n']} records, "
        f"the same {b['steps']} optimizer steps), and two single stages, one per fault family: "
        f"`dedup` ({_stage_text(norm_stages(b['recipes']['dedup']['stages']))}) targets the "
        f"duplicates (exact_dup, near_dup), `ifd` "
        + (
            f"({_stage_text(norm_stages(b['recipes']['ifd']['stages']))}; cut from "
            f"{b['ifd_cut_from']}) "
            if b["recipes"].get("ifd")
            else "(no IFD cut among the dev candidates) "
        )
        + "targets the misaligned pairs (shuffled answers, truncated responses).\n"
    )
    L.append(
        f"Training: LoRA (r=16, alpha=32, all attention and MLP projections) of "
        f"SmolLM2-135M-Instruct with {DTYPE} base weights (for speed on this CPU), "
        f"{b['steps']} steps of micro-batch 4 x 2 accumulation (effective batch 8), lr 1e-3 "
        f"linear decay, max_length {b['max_length']} (resolved once on the whole pool: its 0.99 "
        f"token-length quantile), seeds {', '.join(map(str, seeds))} (LoRA init, data order, "
        f"random subset, curate's random_state). Held-out response NLL (token-weighted, teacher "
        f"forcing, window {b['eval_max_length']}) on {b['heldout']['gsm8k']} GSM8K test "
        f"questions and {b['heldout']['alpaca']} held-out Alpaca records (`heldout_sets(0)`); "
        f"lower is better.\n"
    )
    if n_done < n_exp:
        vs = _verdicts(b)["nll_seeds"]
        cover = (
            f"seed{'s' if len(vs) != 1 else ''} {', '.join(map(str, vs))} only"
            if vs
            else "no seed (default and random not both trained)"
        )
        L.append(
            f"**Incomplete: {n_done} of {n_exp} trainings finished; verdicts cover {cover}.**\n"
        )
    rshare = _verdicts(b)["fault_share_mean"]["random"]
    L.append(
        "| condition | seeds | NLL GSM8K (mean ± sd) | NLL Alpaca (mean ± sd) | planted-fault "
        "share | ratio to random | paired share | ratio to random | shuffled | truncated | "
        "exact dup | near dup |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rpaired = _verdicts(b)["fault_share_paired_mean"]["random"]
    cur = b["curation"]
    for c in CONDITIONS:
        rows = [cur[str(s)][c] for s in seeds if c in cur.get(str(s), {})]
        if not rows:
            continue
        ms = mean_shares(rows)
        rs = by.get(c, {})
        g = [_nll(rs[s], "gsm8k") for s in seeds if s in rs]
        al = [_nll(rs[s], "alpaca") for s in seeds if s in rs]
        ratio = f"{ms['fault_share'] / rshare:.2f}" if rshare else "-"
        pratio = f"{ms['fault_share_paired'] / rpaired:.2f}" if rpaired else "-"
        L.append(
            f"| {c} | {len(g)} | {_mean_sd(g)} | {_mean_sd(al)} | {_pct(ms['fault_share'])} | "
            f"{ratio} | {_pct(ms['fault_share_paired'])} | {pratio} | "
            + " | ".join(_pct(ms["per_type"][f]) for f in FAULT_TYPES)
            + " |"
        )
    if b.get("base"):
        bh = b["base"]["heldout"]
        L.append(
            f"| base model (no training) | - | {bh['gsm8k']['nll']:.4f} | "
            f"{bh['alpaca']['nll']:.4f} | - | - | - | - | - | - | - | - |"
        )
    L.append(
        "\nPlanted-fault shares: mean over the seeds whose kept sets were built (the table's "
        "share columns may cover more seeds than its NLL columns); *paired* counts a duplicate "
        "only when the record it copies is kept too (see Phase A).\n"
    )
    # paired deltas
    L.append(
        "Paired deltas vs random (condition minus random, same seed; mean ± sd over seeds; "
        "better = lower NLL):\n"
    )
    L.append("| condition | Δ NLL GSM8K | better in | Δ NLL Alpaca | better in |")
    L.append("|---|---:|---:|---:|---:|")
    rr = by.get("random", {})
    for c in CONDITIONS:
        if c == "random" or c not in by:
            continue
        ss = [s for s in seeds if s in by[c] and s in rr]
        if not ss:
            continue
        cells = []
        for which in ("gsm8k", "alpaca"):
            dd = [_nll(by[c][s], which) - _nll(rr[s], which) for s in ss]
            fmt = _mean_sd(dd, "+.4f") if len(dd) > 1 else f"{dd[0]:+.4f} (n=1)"
            cells += [fmt, f"{sum(x < 0 for x in dd)} of {len(dd)}"]
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    L.append("")
    # per-seed table
    conds = [c for c in CONDITIONS if c in by]
    if conds:
        L.append("Per seed, held-out NLL GSM8K / Alpaca:\n")
        L.append("| seed | " + " | ".join(conds) + " |")
        L.append("|---:|" + "---:|" * len(conds))
        for s in seeds:
            cells = [
                f"{_nll(by[c][s], 'gsm8k'):.4f} / {_nll(by[c][s], 'alpaca'):.4f}"
                if s in by[c]
                else "-"
                for c in conds
            ]
            L.append(f"| {s} | " + " | ".join(cells) + " |")
        L.append("")
    # targets
    v = _verdicts(b)
    sh, ph = v["fault_share_mean"], v["fault_share_paired_mean"]

    def target_lines(c: str, t: dict[str, Any], who: str) -> list[str]:
        n = len(t["nll_seeds"])
        return [
            f"- {who} has lower held-out NLL than random on every seed on both sets: "
            f"**{'met' if t['nll_target_met'] else 'NOT met'}** ({t['nll_gsm8k_wins']} of {n} "
            f"seeds on GSM8K, {t['nll_alpaca_wins']} of {n} on Alpaca"
            + ("" if t["nll_target_complete"] else f"; {n} of {len(seeds)} seeds trained")
            + ").",
            f"- {who} keeps at most a quarter of random's planted-fault share: "
            f"**{'met' if t['fault_target_met'] else 'NOT met'}** ({_pct(sh[c])} vs "
            f"{_pct(sh['random'])}"
            + (f", {sh[c] / sh['random']:.2f}x" if sh[c] is not None and sh["random"] else "")
            + "); by the paired share "
            f"{_pct(ph[c])} vs {_pct(ph['random'])}.",
        ]

    L.append("**Targets (computed from the numbers above).**\n")
    L += target_lines("default", v, "the dev-chosen recipe")
    for c, info in v["single_stage"].items():
        k = len(info["seeds"])
        if k:
            L.append(
                f"- the single stage `{c}` beats the dev-chosen recipe on NLL on both sets in "
                f"{info['beats_default_both_sets']} of {k} seed(s)"
                + ("" if info["complete"] else f" ({k} of {len(seeds)} seeds trained)")
                + "."
            )
    rule = v["rule_default"]
    if rule == "default":
        L.append(
            "- Rule (a single stage that beats the dev-chosen recipe on both sets on every seed "
            "becomes the default): no single stage qualifies, so the default stays the "
            "dev-chosen recipe."
        )
    else:
        L.append(
            f"- Rule (a single stage that beats the dev-chosen recipe on both sets on every seed "
            f"becomes the default): **`{rule}`** qualifies "
            f"({_stage_text(norm_stages(b['recipes'][rule]['stages']))}), so it is the "
            f"default. Its Phase B numbers are then not a held-out estimate: it was chosen on "
            f"this pool."
        )
    shipped = v["shipped"]
    builtin = b.get("builtin_default")
    if builtin is not None:
        txt = _stage_text(norm_stages(builtin))
        if shipped == rule:
            L.append(f'- The built-in `BUILTIN_RECIPES["default"]` ({txt}) **equals** it.')
        else:
            L.append(
                f'- The built-in `BUILTIN_RECIPES["default"]` ({txt}) **does not equal** it'
                + (f" (it is the `{shipped}` condition)." if shipped else ".")
            )
        if shipped and shipped != "default":
            L += target_lines(shipped, v["shipped_targets"], f"the built-in default (`{shipped}`)")
    L.append("")
    # timings
    if b["runs"]:
        sps = [r["train"]["seconds_per_step"] for r in b["runs"]]
        ev = [r["eval_seconds"] for r in b["runs"]]
        loads = [r["load_1m_before"] for r in b["runs"] if r.get("load_1m_before") is not None]
        L.append(
            f"Timing: {np.mean(sps):.2f} s per optimizer step (range {min(sps):.2f}-"
            f"{max(sps):.2f} over {len(sps)} trainings), {np.mean(ev):.0f} s per held-out "
            f"evaluation of both sets; 1-minute load average before the runs "
            f"{min(loads):.1f}-{max(loads):.1f}."
            + (
                f" max_length truncated {cfg['n_truncated']} of {cfg['n_records']} training "
                f"records in the first run."
                if cfg
                else ""
            )
            + "\n"
        )
    return L


def render(res: dict, png_name: str | None = None) -> str:
    L = ["## Curation outcome: the default `curate` recipe vs random at a 25% budget\n"]
    L.append(
        f"Command: `{res['command']}` (resumable; `--render-only` rebuilds this section). "
        f"{common.machine_sentence(res.get('machine'))} "
        f"Curation saw only id, prompt and response; planted faults are scored from the pool's "
        f"labels. LM scores: SmolLM2-135M-Instruct ({DTYPE}); IFD / LM scores are memoised by "
        f"exact inputs across candidates and seeds (the curate stage cache keys include the seed "
        f"and the filter options).\n"
    )
    if res.get("phase_a"):
        L += render_phase_a(res["phase_a"])
    if res.get("phase_b"):
        L += render_phase_b(res["phase_b"])
        if png_name:
            L.append(f"![held-out NLL per condition](results/{png_name})\n")
    else:
        L.append("Phase B (training on the eval pool) has not been run.\n")
    return "\n".join(L) + "\n"


def plot(res: dict, path: Path) -> Path | None:
    b = res.get("phase_b")
    if not b or not b["runs"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dataprune.atomic import atomic_path

    by = _by(b["runs"])
    conds = [c for c in CONDITIONS if c in by]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, which, title in zip(axes, ("gsm8k", "alpaca"), ("GSM8K test", "held-out Alpaca")):
        for i, c in enumerate(conds):
            ss = sorted(by[c])
            v = np.array([_nll(by[c][s], which) for s in ss])
            for s, y in zip(ss, v):
                ax.scatter(i + 0.08 * (s - 1), y, color=f"C{s % 10}", zorder=3,
                           label=f"seed {s}" if i == 0 else None)  # fmt: skip
            ax.plot([i - 0.25, i + 0.25], [v.mean()] * 2, color="k", lw=1.5)
        if b.get("base"):  # as text: a line at the base NLL would flatten the differences
            title += f" (base model {b['base']['heldout'][which]['nll']:.4f})"
        ax.set_xticks(range(len(conds)))
        ax.set_xticklabels([LABELS.get(c, c) for c in conds])
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("held-out response NLL (lower = better)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Curation outcome: LoRA SFT, {b['steps']} steps, budget {b['budget']} of {b['pool']['n']}"
        " (points: seeds, bar: mean)"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def publish(res: dict, out_dir: Path) -> str:
    png = plot(res, out_dir / f"{NAME}.png")
    md = render(res, png.name if png else None)
    common.publish(NAME, md, res, out_dir=out_dir)
    return md
