"""Rendering of the Q-Tuning outcome benchmark (``benchmarks/qtuning_outcome.py``): its markdown
section and plot for each split, every sentence and verdict computed from the saved numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common as common
from benchmarks.qtuning_outcome_setup import (
    BASELINES,
    CONDITIONS,
    DTYPE,
    NAME,
    QCFG_SHOWN,
    SAMPLE_RATIO,
)


def _nll(run: dict, which: str) -> float:
    return float(run["heldout"][which]["nll"])


def _by(runs: list[dict]) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for r in runs:
        out.setdefault(r["condition"], {})[r["seed"]] = r
    return out


def _ms(x: list[float], fmt: str = ".4f") -> str:
    if not x:
        return "-"
    if len(x) == 1:
        return f"{x[0]:{fmt}} (n=1)"
    return f"{np.mean(x):{fmt}} ± {np.std(x, ddof=1):{fmt.lstrip('+')}}"


def render(res: dict, png: str | None = None) -> str:
    L = ["## Q-Tuning outcome: held-out NLL at an equal gradient-token budget\n"]
    token_study = res.get("split") == "dev" and res.get("about", "the token pruning") == (
        "the token pruning"
    )  # the dev study of the Q2 token pruning: one selection, the conditions name their pruning
    if res.get("split") == "dev":
        about = res.get("about", "the token pruning")
        L[0] = L[0].replace("\n", f" (development pool: choosing {about})\n")
    p = res["pool"]
    qc = res["qtuning_config"]
    L.append(
        f"Command: `{res['command']}` (resumable; `--render-only` rebuilds this section). "
        f"{common.machine_sentence(res.get('machine'))} Pool: `build_pool({p['n_gsm8k']}, "
        f"{p['n_alpaca']}, seed={p['seed']})`, {p['n']} pairs, planted-fault share "
        f"{p['fault_share']:.1%}; every selection keeps K = {res['k']}. Training: LoRA (r=16, "
        f"alpha=32) of SmolLM2-135M-Instruct ({DTYPE} base), {res['steps']} optimizer steps, each "
        f"with a budget of {res['tokens_per_step']} loss-carrying response tokens (8 x the "
        f"pool's mean response length {res['mean_response_tokens']:.1f}), lr 1e-3 linear decay, "
        f"max_length {res['max_length']}. "
        + (
            f"Q-Tuning (`q-tuning static`): `QTuningConfig(sample_ratio={SAMPLE_RATIO})` with every "
            "other option at its default ("
            if not token_study
            else "Q-Tuning: one sample selection, `QTuningConfig(sample_ratio="
            f"{SAMPLE_RATIO})` with the sample-triage options ("
        )
        + ", ".join(
            f"{k}={qc[k]}"
            for k in QCFG_SHOWN
            if k in qc and (not token_study or k not in ("token_ratio", "drop"))
        )
        + ("; each condition names its Q2 token pruning" if token_study else "")
        + f"). Held-out response NLL on {res['heldout']['gsm8k']} GSM8K "
        + ("test" if res.get("split", "eval") == "eval" else "held-out train (dev partition)")
        + f" and {res['heldout']['alpaca']} held-out Alpaca records; lower is better.\n"
    )
    if res.get("merged"):
        m = res["merged"]
        mine = [r for r in res["runs"] if r.get("this_invocation")]
        eds = res.get("earlier_defaults", [])
        L.append(
            f"The last invocation, `{m['command']}`, "
            + (
                " and ".join(
                    f"{verb} " + ", ".join(f"{r['condition']} seed {r['seed']}" for r in rs)
                    for verb, rs in (
                        ("trained", [r for r in mine if not r.get("cached")]),
                        ("took from the run cache", [r for r in mine if r.get("cached")]),
                    )
                    if rs
                )
                + f" and merged {'it' if len(mine) == 1 else 'them'} into the published results"
                if mine
                else "trained no run"
            )
            + "; the "
            f"other {len(res['runs']) - len(mine)} runs, the selections and the base evaluation are "
            "as earlier invocations published them (same pool, budget and held-out sets, checked "
            "before merging"
            + (
                "; "
                + "; ".join(
                    "runs named "
                    + (" / ".join(f"'{x}'" for x in e.get("renamed", []))
                       or "'..., the earlier default'")
                    + " were trained with the QTuningConfig default of the time ("
                    + ", ".join(f"{k}={e['qtuning_config'][k]}" for k in QCFG_SHOWN
                                if k in e["qtuning_config"])
                    + ")"
                    for e in eds
                )
                if eds
                else "; same Q-Tuning config"
            )
            + ").\n"
        )  # fmt: skip
    by = _by(res["runs"])
    seeds = res["seeds"]
    conds = res.get("conditions", CONDITIONS)
    n_exp = len(seeds) * len(conds)
    if len(res["runs"]) < n_exp:
        short = ", ".join(
            f"{c} {len(by.get(c, {}))} of {len(seeds)}"
            for c in conds
            if len(by.get(c, {})) < len(seeds)
        )
        L.append(
            f"**Incomplete: {len(res['runs'])} of {n_exp} trainings finished** (seeds trained: "
            f"{short}).\n"
        )
    L.append("| condition | seeds | NLL GSM8K | NLL Alpaca | samples seen | passes | s/step | "
             "shuffled | truncated | dup (paired) | Alpaca share |")  # fmt: skip
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sel = res["selection"]
    shares: dict[str, float] = {}  # the kept set's Alpaca share per condition (mean over seeds)
    for c in conds:
        rs = by.get(c, {})
        g = [_nll(rs[s], "gsm8k") for s in seeds if s in rs]
        a = [_nll(rs[s], "alpaca") for s in seeds if s in rs]
        seen = [rs[s]["train"]["samples_seen"] for s in seeds if s in rs]
        passes = [rs[s]["train"]["passes"] for s in seeds if s in rs]
        sps = [rs[s]["train"]["seconds_per_step"] for s in seeds if s in rs]
        fs = sel.get(c)
        per_seed = {"random": "selection_random", "q-tuning static": "selection_default"}
        drawn = list(
            res.get("selection_by_seed", {}).get(c, res.get(per_seed.get(c, ""), {})).values()
        )
        if drawn:  # mean over the seeded subsets drawn so far
            fs = {k: float(np.mean([r[k] for r in drawn])) for k in drawn[0]}
        if fs and "alpaca" in fs:
            shares[c] = float(fs["alpaca"])
        faults = (
            f"{fs['shuffled']:.1%} | {fs['truncated']:.1%} | {fs['dup_paired']:.1%} | "
            + (f"{fs['alpaca']:.1%}" if "alpaca" in fs else "-")
            if fs else "- | - | - | -"
        )  # fmt: skip
        L.append(
            f"| {c} | {len(g)} | {_ms(g)} | {_ms(a)} | "
            f"{np.mean(seen):.0f} | {np.mean(passes):.2f} | {np.mean(sps):.2f} | {faults} |"
            if g
            else f"| {c} | 0 | - | - | - | - | - | {faults} |"
        )
    if res.get("base"):
        b = res["base"]["heldout"]
        L.append(f"| base model (no training) | - | {b['gsm8k']['nll']:.4f} | "
                 f"{b['alpaca']['nll']:.4f} | - | - | - | - | - | - | - |")  # fmt: skip
    summ = res.get("qtuning_default_summary", {})
    if res.get("split", "eval") == "eval" and summ and res.get("pool_faults"):
        left = sorted({v["quadrants"].get("abrupt_end", 0) for v in summ.values()})
        L.append(
            f"\nThe default's abrupt-end rule (abrupt_end={qc.get('abrupt_end')}) left out "
            f"{' / '.join(map(str, left))} of the {p['n']} pairs (seeds {', '.join(summ)}); the "
            f"pool holds {res['pool_faults']['truncated']} truncated responses."
        )
        L += corner_lines(summ, qc.get("fill"))
    L.append("")
    L.append("Paired deltas vs random (same seed; mean ± sd; negative = better than random):\n")
    L.append("| condition | Δ NLL GSM8K | better in | Δ NLL Alpaca | better in |")
    L.append("|---|---:|---:|---:|---:|")
    rr = by.get("random", {})
    wins: dict[str, dict[str, Any]] = {}
    mean_delta: dict[str, dict[str, float]] = {"random": {"gsm8k": 0.0, "alpaca": 0.0}}
    for c in conds[1:]:
        ss = [s for s in seeds if s in by.get(c, {}) and s in rr]
        if not ss:
            continue
        cells = []
        wins[c] = {"seeds": ss}
        for w in ("gsm8k", "alpaca"):
            d = [_nll(by[c][s], w) - _nll(rr[s], w) for s in ss]
            wins[c][w] = sum(x < 0 for x in d)
            mean_delta.setdefault(c, {})[w] = float(np.mean(d))
            cells += [_ms(d, "+.4f"), f"{wins[c][w]} of {len(d)}"]
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("**Targets (computed).**\n")
    for cond, name in (
        ("q-tuning static", "Q-Tuning static"),
        ("q-tuning static, per source", "Q-Tuning static per source"),
    ):
        st = wins.get(cond)
        if not st:
            continue
        n = len(st["seeds"])
        met = st["gsm8k"] == n and st["alpaca"] == n and n == len(seeds)
        L.append(
            f"- {name} beats random on both held-out sets on every seed: "
            f"**{'met' if met else 'NOT met'}** ({st['gsm8k']} of {n} seeds on GSM8K, "
            f"{st['alpaca']} of {n} on Alpaca" + ("" if n == len(seeds) else
            f"; {n} of {len(seeds)} seeds trained") + ")."
        )  # fmt: skip
    pf, qs = by.get("perplexity filter", {}), by.get("q-tuning static", {})
    ss = [s for s in seeds if s in pf and s in qs]
    if ss:
        for w, name in (("gsm8k", "GSM8K"), ("alpaca", "Alpaca")):
            d = [_nll(qs[s], w) - _nll(pf[s], w) for s in ss]
            better = sum(x < 0 for x in d)
            L.append(
                f"- Q-Tuning static vs the plain perplexity filter on {name}: Δ NLL "
                f"{_ms(d, '+.4f')}, Q-Tuning lower in {better} of {len(d)} seeds"
                + (" (the perplexity filter is as good or better)." if better < len(d)
                   else ".")
            )  # fmt: skip
    L += coupled_lines(res, by, seeds)
    L += share_lines(shares, mean_delta)
    if res.get("split") == "dev":
        earlier = {c for e in res.get("earlier_defaults", []) for c in e.get("renamed", [])}
        L += dev_choice(by, seeds, conds, earlier)
    L.append("")
    if res["runs"]:
        loads = [r["load_1m_before"] for r in res["runs"] if r.get("load_1m_before") is not None]
        sec = (res.get("selection_seconds") or {}).get("scoring and triage")
        if loads:
            L.append(f"1-minute load average before the runs: {min(loads):.1f}-{max(loads):.1f}."
                     + (f" Scoring and triage of the pool (once, seed 0: the PPL/entropy pass "
                        f"and the IFD pass): {sec:.0f} s." if sec else "") + "\n")  # fmt: skip
    if png:
        L.append(f"![held-out NLL per condition](results/{png})\n")
    return "\n".join(L) + "\n"


def corner_lines(summ: dict[str, dict], fill: str | None) -> list[str]:
    """How much of the default's kept set the plane's corners decide: per seed, the share of
    the corner samples (Q2 and Q4 at the bisected alpha) that are kept against the share of every
    sample the noise rules leave in (``K`` over those samples)."""
    rates = []
    for seed, v in summ.items():
        q = v["quadrants"]
        left_in = v["n_samples"] - sum(
            q.get(f, 0) for f in ("duplicate", "abrupt_end", "misaligned")
        )
        if not v.get("n_corner") or not left_in:
            return []
        kept_corner = v["n_corner"] - q.get("trimmed", 0)
        rates.append((seed, kept_corner, v["n_corner"], v["n_keep"] / left_in))
    kept = ", ".join(f"seed {s} {k} of {n} ({k / n:.1%})" for s, k, n, _ in rates)
    base = " / ".join(sorted({f"{r:.1%}" for *_, r in rates}))
    return [
        f"Corner samples (Q2 and Q4 at the bisected alpha) in the default's kept set (fill={fill}): "
        f"{kept}; K is {base} of the samples the noise rules leave in."
    ]


def coupled_lines(res: dict, by: dict, seeds: list[int]) -> list[str]:
    """Each selection against the random subset coupled to its draw (same seed), and the spread
    of two independent random subsets (the coupled one against ``random``)."""
    out = []
    for cond, info in res.get("coupled", {}).items():
        cp = by.get(cond, {})
        to = next(iter(info.values()))["to"]
        qs = by.get(to, {})
        ss = [s for s in seeds if s in cp and s in qs and str(s) in info]
        # compared only where the runs of `to` trained on the selection the subset is coupled to
        off = [s for s in ss if not info[str(s)].get("to_run_matches")]
        ss = [s for s in ss if s not in off]
        if off:
            out.append(
                f"- `{cond}` is not compared with `{to}` on seed(s) {', '.join(map(str, off))}: "
                f"no published run of `{to}` is known to have trained on the very selection this "
                f"subset is coupled to (published runs from an earlier scoring of the pool have "
                f"another random draw); retrain `{to}` with `--only` to compare."
            )
        if not ss:
            continue
        m = ", ".join(f"seed {s} {info[str(s)]['m']} of {info[str(s)]['k']}" for s in ss)
        cells, verdict = [], []
        for w, name in (("gsm8k", "GSM8K"), ("alpaca", "Alpaca")):
            d = [_nll(qs[s], w) - _nll(cp[s], w) for s in ss]
            better = sum(x < 0 for x in d)
            verdict.append(better == len(d) == len(seeds))
            cells.append(f"{name} {_ms(d, '+.4f')} (lower in {better} of {len(d)} seeds: "
                         + ", ".join(f"{x:+.4f}" for x in d) + ")")  # fmt: skip
        rr = by.get("random", {})
        sr = [s for s in seeds if s in cp and s in rr]
        spread = "; ".join(
            f"{name} {_ms([_nll(cp[s], w) - _nll(rr[s], w) for s in sr], '+.4f')}"
            for w, name in (("gsm8k", "GSM8K"), ("alpaca", "Alpaca"))
        )
        out.append(
            f"- `{to}` against the random subset coupled to its draw (`{cond}`: a uniform "
            f"K-subset of the pool that shares the same samples in the same training order, "
            f"except the flagged samples a random subset of that size holds, which take the places "
            f"of random kept ones; swapped: {m}): paired Δ NLL {'; '.join(cells)}; beats it on "
            f"both held-out sets on every seed: **{'yes' if all(verdict) else 'no'}**. Two "
            f"independent random subsets (this one against `random`, same seed) differ by "
            f"{spread if sr else 'nothing yet'} (mean ± sd over seeds)."
        )
    return out


def share_lines(shares: dict[str, float], mean_delta: dict[str, dict[str, float]]) -> list[str]:
    """How far the source mix of a kept set goes with its held-out NLL: the Spearman correlation,
    across the conditions with a kept set (random included, its delta 0), of the Alpaca share
    with the mean paired delta on each held-out set."""
    from scipy.stats import spearmanr

    cs = [c for c in shares if c in mean_delta and len(mean_delta[c]) == 2]
    if len(cs) < 4:
        return []
    x = [shares[c] for c in cs]
    rho = {w: float(spearmanr(x, [mean_delta[c][w] for c in cs])[0]) for w in ("alpaca", "gsm8k")}
    return [
        f"- Source mix: across the {len(cs)} conditions with a kept set (random's delta is 0), "
        f"the Spearman correlation of the kept set's Alpaca share with the mean paired Δ NLL "
        f"is {rho['alpaca']:+.2f} on Alpaca and {rho['gsm8k']:+.2f} on GSM8K (negative: a "
        f"larger Alpaca share goes with a lower NLL)."
    ]


def dev_choice(
    by: dict, seeds: list[int], conds: list[str], earlier: set[str] = frozenset()
) -> list[str]:
    """The dev rule: the setting with the lowest mean paired Δ NLL vs random.

    The mean is over seeds and both held-out sets (each set weighted equally); only settings
    trained on every seed and with the library's current options compete (the runs of an
    earlier default, ``"... the earlier default)"``, are shown for reference: they differ in
    options chosen elsewhere, such as the noise rules the diagnostic chose; ``earlier`` names
    them, from the results' ``earlier_defaults``). Returns the result lines.
    """
    rr = by.get("random", {})
    score = {}
    for c in conds[1:]:
        if c in earlier or c in BASELINES:
            continue
        if all(s in by.get(c, {}) and s in rr for s in seeds):
            score[c] = float(np.mean([
                _nll(by[c][s], w) - _nll(rr[s], w) for s in seeds for w in ("gsm8k", "alpaca")
            ]))  # fmt: skip
    if not score:
        return ["- Dev choice: not yet (no setting trained on every seed)."]
    best = min(score, key=score.get)
    ranked = ", ".join(f"{c} {v:+.5f}" for c, v in sorted(score.items(), key=lambda kv: kv[1]))
    return [
        f"- Dev choice (lowest mean paired Δ NLL vs random over {len(seeds)} seeds and both "
        f"held-out sets, among the settings with the current options): **{best}** ({ranked}); "
        + ("it beats random on this mean." if score[best] < 0 else
           "no setting beats random on this mean.")
    ]  # fmt: skip


def plot(res: dict, path: Path) -> Path | None:
    """Held-out NLL per condition and seed (one colour per seed, so paired runs line up), one
    row per condition with runs, GSM8K and Alpaca side by side."""
    by = _by(res["runs"])
    if not by:
        return None
    conds = [c for c in res.get("conditions", CONDITIONS) if by.get(c)]
    seeds = sorted({s for c in conds for s in by[c]})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 1.2 + 0.32 * len(conds)), dpi=110, sharey=True)
    for ax, w in zip(axes, ("gsm8k", "alpaca")):
        for j, c in enumerate(conds):
            ys = [_nll(by[c][s], w) for s in seeds if s in by[c]]
            for s in seeds:
                if s in by[c]:
                    ax.scatter(_nll(by[c][s], w), j, s=22, color=f"C{seeds.index(s)}",
                               label=f"seed {s}" if j == 0 else None)  # fmt: skip
            ax.vlines(np.mean(ys), j - 0.3, j + 0.3, color="k", lw=1)
        name = {"gsm8k": "GSM8K", "alpaca": "Alpaca"}[w]
        base = f" (base model {res['base']['heldout'][w]['nll']:.3f})" if res.get("base") else ""
        ax.set_title(f"{name} held-out NLL{base}", fontsize=9)
        ax.set_xlabel("response NLL, lower is better", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0].set_yticks(range(len(conds)), conds, fontsize=7)
    axes[0].invert_yaxis()
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def publish(res: dict) -> None:
    name = res.get("name", NAME)
    png = plot(res, common.RESULTS / f"{name}.png")
    res["png"] = png.name if png else None
    common.publish(name, render(res, res["png"]), res, indent=1)
