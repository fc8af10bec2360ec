"""The markdown section and EU-plane plot of ``benchmarks/qtuning_diagnostic.py``, every sentence
computed from the results JSON (:func:`render`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks import _common as common
from benchmarks.qtuning_diagnostic_rules import (
    CLASSES,
    CORRUPT,
    DTYPE,
    MAX_LENGTH,
    SEEDS,
    SIZES,
    clean_noise,
    seeds_met,
)


# ------------------------------------------------------------------------------------ plot
def plot(lm_scores: dict, path: Path) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"clean": "#9e9e9e", "shuffled": "#d62728", "truncated": "#ff7f0e",
              "duplicate": "#1f77b4"}  # fmt: skip
    fig, axes = plt.subplots(1, len(lm_scores), figsize=(6.2 * len(lm_scores), 5), dpi=110)
    for ax, (title, d) in zip(np.atleast_1d(axes), lm_scores.items()):
        ppl, ent, kinds, kept = (np.asarray(d[k]) for k in ("ppl", "entropy", "kinds", "kept"))
        # a kept "duplicate" is a copy kept on its own (its original was dropped or is the copy)
        for c in CLASSES:
            for m, mk in ((kept, "o"), (~kept, "x")):
                sel = (kinds == c) & m
                ax.scatter(ppl[sel], ent[sel], s=14 if mk == "o" else 10, c=colors[c],
                           marker=mk, alpha=0.75 if mk == "o" else 0.35, linewidths=0.8,
                           label=f"{c} {'kept' if mk == 'o' else 'dropped'} ({int(sel.sum())})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("response perplexity (error)")
        span = d.get("span", "response")
        ax.set_ylabel(
            f"mean entropy over {'every predicted position' if span == 'all' else 'the response'}"
            ", nats (uncertainty)"
        )
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6.5, ncol=2)
        ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------ render
def _r(x: float) -> str:
    return f"{x:.2f}x"


def render_table(summary: dict, labels: list[str], mark: str | None) -> list[str]:
    L = []
    cells = list(summary)
    head = "| rule | " + " | ".join(
        f"{c.split('|')[0]} r={c.split('|')[1]}: shuf / trunc / dup / clean" for c in cells
    )
    L.append(
        head + " | clean left out as noise (mean over cells) | cells meeting the target "
        "| cell x seed pairs meeting it |"
    )
    L.append("|---|" + "---:|" * (len(cells) + 3))
    for lb in labels:
        row = []
        for c in cells:
            s = summary[c][lb]["ratio"]
            row.append(
                " / ".join(_r(s[k]) for k in ("shuffled", "truncated", "duplicate", "clean"))
            )
        met = sum(summary[c][lb]["meets"] for c in cells)
        name = f"**{lb}** (default)" if lb == mark else lb
        cn = [summary[c][lb].get("clean_noise") for c in cells]
        noise = "-" if None in cn else f"{100 * clean_noise(summary, lb):.1f}%"
        L.append(
            f"| {name} | " + " | ".join(row) + f" | {noise} | {met} of {len(cells)} "
            f"| {seeds_met(summary, lb)} of {len(SEEDS) * len(cells)} |"
        )
    return L


def render(res: dict, png: str | None = None) -> str:
    L = ["## Q-Tuning diagnostic: planted faults kept by the sample triage, against random\n"]
    L.append(
        f"Command: `{res['command']}` (resumable; `--render-only` rebuilds this section). "
        f"{common.machine_sentence(res.get('machine'))} Scores: SmolLM2-135M-Instruct "
        f"({DTYPE}), response PPL and mean predictive entropy over the response (`entropy="
        f"response`) or every predicted position (`entropy=all`), and the NLL of the "
        f"end-of-turn token after the response, and IFD (a second pass with empty prompts), "
        f"max_length {MAX_LENGTH}; "
        f"{res['n_scored']} distinct pairs scored ("
        + (
            f"{res['n_scored_this_run']} of them by this run, "
            if "n_scored_this_run" in res
            else ""
        )
        + f"which took {res['scoring_seconds']:.0f} s in all; the others came from the "
        "resumable score cache).\n"
    )
    L.append(
        "Each cell: a single-source pool from `benchmarks/sft_pool.py` (10% shuffled answers, 5% "
        "truncated responses, 5% exact and 5% near duplicates), corruption seeds "
        f"{', '.join(map(str, SEEDS))}, at a sample ratio r. Numbers are retention / random's "
        "expected retention at the same K, averaged over the seeds (lower is better for the "
        "corrupted classes; clean should be >= 1.00x). *dup* is paired: a copy kept together "
        "with the record it copies (random: K(K-1)/(N(N-1))). Target per cell: shuffled, "
        "truncated and dup at most 0.50x, clean at least 1.00x. *dedup*: near-duplicates "
        "(MinHash, Jaccard >= 0.8 on prompt + response; exact copies included) are left out "
        "before the triage (`QTuningConfig.dedup`).\n"
    )
    for split in ("dev", "eval"):
        if split not in res:
            continue
        d = res[split]
        sizes = ", ".join(f"{s} {n}" for s, n in SIZES[split].items())
        L.append(f"### {split}: {'choosing the default' if split == 'dev' else 'held out'}\n")
        L.append(f"Pools: {sizes} candidates from the `{split}` partition.\n")
        L += render_table(d["summary"], d["labels"], res.get("default_label"))
        L.append("")
        if split == "dev":
            ch = d["choice"]
            L.append(
                f"Winner on dev among the `fill={res.get('default_fill', 'uniform')}` rules with "
                f"near-duplicates left out (the fill default is chosen by held-out NLL, "
                f"`benchmarks/qtuning_outcome.py --split dev-fill`; this diagnostic chooses its "
                f"noise rules: most (cell, corruption seed) pairs meeting the target; then "
                f"most cells meeting it on the mean over seeds; then the fewest clean samples "
                f"left out as noise, i.e. the least aggressive fault filter that meets it; then "
                f"the smallest worst corrupted ratio): **{ch['winner']}**, "
                + (
                    f"{ch['seeds_met'][ch['winner']]} of {len(SEEDS) * len(d['summary'])} "
                    f"(cell, seed) pairs and "
                    if "seeds_met" in ch
                    else ""
                )
                + f"{ch['cells_met'][ch['winner']]} of "
                f"{len(d['summary'])} cells. `QTuningConfig()` is "
                + (
                    "**this rule**."
                    if res.get("default_label") == ch["winner"]
                    else f"**not this rule** (it is `{res.get('default_label')}`)."
                )
                + "\n"
            )
    if "eval" in res:
        d = res["eval"]
        dl = res.get("default_label")
        L.append("**Target on the held-out pools (computed):**\n")
        for lb in (dl, "dynamic, micro-batch 16 (default config)"):
            if lb is None or lb not in d["labels"]:
                continue
            for c, s in d["summary"].items():
                x = s[lb]
                fails = [k for k in CORRUPT if x["ratio"][k] > 0.5]
                if x["ratio"]["clean"] < 1.0:
                    fails.append("clean below random")
                L.append(
                    f"- {lb}, {c.replace('|', ' r=')}: **{'met' if x['meets'] else 'NOT met'}**"
                    + (f" ({', '.join(fails)})" if fails else "")
                    + f"; met on {x['seeds_meeting']} of {len(SEEDS)} seeds."
                )
        L.append("")
        L.append(
            "Label-count duplicate retention (copy kept regardless of the original), eval, "
            "ratio to random:\n"
        )
        L.append("| rule | " + " | ".join(c.replace("|", " r=") for c in d["summary"]) + " |")
        L.append("|---|" + "---:|" * len(d["summary"]))
        for lb in d["labels"]:
            L.append(
                f"| {lb} | "
                + " | ".join(
                    _r(d["summary"][c][lb]["ratio"]["duplicate_label"]) for c in d["summary"]
                )
                + " |"
            )
        L.append("")
        med = res.get("medians")
        if med:
            L.append("Median PPL / entropy / end-of-turn NLL per class (eval, seed 0):\n")
            L.append("| pool | " + " | ".join(CLASSES) + " |")
            L.append("|---|" + "---:|" * len(CLASSES))
            for src, m in med.items():
                L.append(
                    f"| {src} | "
                    + " | ".join(
                        f"{m[c]['ppl']:.2f} / {m[c]['entropy']:.3f} / {m[c]['end']:.2f}"
                        if c in m and "end" in m[c]
                        else (f"{m[c]['ppl']:.2f} / {m[c]['entropy']:.3f} / -" if c in m else "-")
                        for c in CLASSES
                    )
                    + " |"
                )
            L.append("")
    intro = {
        "end": "End-of-turn NLL (`-log p(end)` after the response; `QTuningConfig.abrupt_end`)",
        "ifd": "IFD (`PPL(response | prompt) / PPL(response)`; `QTuningConfig.max_ifd`)",
    }
    for sig, text in intro.items():
        aucs = [
            (sp, res[sp][f"{sig}_auroc"])
            for sp in ("dev", "eval")
            if res.get(sp, {}).get(f"{sig}_auroc")
        ]
        if not aucs:
            continue
        L.append(
            f"{text} as a fault signal: AUROC of each corrupted class against the clean pairs, "
            "mean (min) over the corruption seeds:\n"
        )
        L.append("| split | pool | " + " | ".join(CORRUPT) + " |")
        L.append("|---|---|" + "---:|" * len(CORRUPT))
        for sp, by in aucs:
            for src, au in by.items():
                L.append(
                    f"| {sp} | {src} | "
                    + " | ".join(
                        f"{np.mean(au[c]):.3f} ({min(au[c]):.3f})" if c in au else "-"
                        for c in CORRUPT
                    )
                    + " |"
                )
        L.append("")
    if png:
        L.append(f"![EU plane, kept vs dropped by class](results/{png})\n")
    return "\n".join(L) + "\n"
