"""Q-Tuning diagnostic on real data: where do injected corruptions land on the EU plane?

GSM8K train records (``../shared/data/gsm8k``) get corruption we control:

* ``shuffled``  - the answer belongs to another question (answers permuted among these records);
* ``truncated`` - the answer is cut at 30-70 % of its words (the final ``#### n`` is lost);
* ``duplicate`` - an exact copy of another (clean) record, added to the set;
* ``clean``     - untouched.

Every sample is scored once with SmolLM2-135M-Instruct (the model one would fine-tune). Then, for
several budgets, the static triage (whole set at once) and the dynamic-style triage (random
micro-batches of 16, as the trainer sees them in its first epoch) are compared with random selection
at the same budget (2,000 draws, measured here) and with two one-axis filters (keep lowest PPL /
keep highest PPL). Reported: quadrant x class counts and the retention of every class.

Run: ``.venv/bin/python benchmarks/qtuning_diagnostic.py [--n 400] [--seed 0]``
(``--render-only`` re-renders the markdown from the saved JSON, recomputing nothing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402

DATA = common.SHARED_DATA / "gsm8k" / "train.jsonl"
CLASSES = ("clean", "shuffled", "truncated", "duplicate")
NAME = "qtuning_diagnostic"
DEFAULT_DRAWS = 2000


def build_corrupted(n: int, seed: int) -> list[dict]:
    """n GSM8K records: 10 % shuffled, 10 % truncated answers, plus 5 % exact duplicates."""
    rows = common.gsm8k("train")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rows), size=n, replace=False)
    recs = [
        {
            "id": f"gsm8k-train-{int(i)}",
            "prompt": rows[i]["question"],
            "response": rows[i]["answer"],
        }
        for i in pick
    ]
    for r in recs:
        r["kind"] = "clean"
    order = rng.permutation(n)
    n_shuf, n_trunc, n_dup = n // 10, n // 10, n // 20
    shuf = order[:n_shuf]
    trunc = order[n_shuf : n_shuf + n_trunc]
    # a derangement of the answers among the shuffled records
    answers = [recs[i]["response"] for i in shuf]
    rolled = answers[1:] + answers[:1]
    for i, a in zip(shuf, rolled):
        recs[i]["response"] = a
        recs[i]["kind"] = "shuffled"
    for i in trunc:
        words = recs[i]["response"].split(" ")
        cut = max(1, int(len(words) * rng.uniform(0.3, 0.7)))
        recs[i]["response"] = " ".join(words[:cut])
        recs[i]["kind"] = "truncated"
    clean_idx = order[n_shuf + n_trunc :]
    for i in rng.choice(clean_idx, size=n_dup, replace=False):
        recs.append({**recs[i], "id": recs[i]["id"] + "-dup", "kind": "duplicate"})
    perm = rng.permutation(len(recs))
    return [recs[i] for i in perm]


def retention(kept: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    return {c: float(kept[kinds == c].mean()) for c in CLASSES if (kinds == c).any()}


def random_retention(n: int, k: int, kinds: np.ndarray, draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    per = {c: [] for c in CLASSES}
    for _ in range(draws):
        kept = np.zeros(n, dtype=bool)
        kept[rng.choice(n, size=k, replace=False)] = True
        for c, v in retention(kept, kinds).items():
            per[c].append(v)
    return {
        c: {
            "mean": float(np.mean(v)),
            "lo": float(np.percentile(v, 2.5)),
            "hi": float(np.percentile(v, 97.5)),
        }
        for c, v in per.items()
        if v
    }


def microbatch_triage(ppl, ent, cfg, batch: int, seed: int):
    """Triage random micro-batches of ``batch`` samples (one epoch), as the trainer would."""
    from dataprune.qtuning import triage_samples

    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ppl))
    kept = np.zeros(len(ppl), dtype=bool)
    quad = np.zeros(len(ppl), dtype=int)
    for lo in range(0, len(ppl), batch):
        idx = perm[lo : lo + batch]
        t = triage_samples(ppl[idx], ent[idx], cfg)
        kept[idx] = t.kept
        quad[idx] = t.quadrant
    return kept, quad


def plot_classes(ppl, ent, kinds, thresholds, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "clean": "#9e9e9e",
        "shuffled": "#d62728",
        "truncated": "#ff7f0e",
        "duplicate": "#1f77b4",
    }
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    for c in CLASSES:
        m = kinds == c
        ax.scatter(
            ppl[m],
            ent[m],
            s=12 if c == "clean" else 20,
            c=colors[c],
            alpha=0.7,
            label=f"{c} ({int(m.sum())})",
            edgecolors="none",
        )
    for k in ("ppl_lo", "ppl_hi"):
        ax.axvline(thresholds[k], color="k", ls="--", lw=0.8, alpha=0.6)
    for k in ("ent_lo", "ent_hi"):
        ax.axhline(thresholds[k], color="k", ls=":", lw=0.8, alpha=0.6)
    from dataprune.qtuning.plot import _log_axes

    _log_axes(ax)
    ax.set_xlabel("response perplexity (error)")
    ax.set_ylabel("mean response entropy, nats (uncertainty)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="GSM8K records before duplicates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--draws", type=int, default=DEFAULT_DRAWS)
    common.add_render_only(ap, NAME)
    args = ap.parse_args()
    if args.render_only:
        print(common.render_from_json(NAME, render_md))
        return 0
    common.need_data(DATA, "GSM8K")

    from dataprune.cache import cache_dir
    from dataprune.models import load_causal_lm
    from dataprune.qtuning import QTuningConfig, triage_samples
    from dataprune.qtuning.static import score_sft_cached

    recs = build_corrupted(args.n, args.seed)
    kinds = np.array([r["kind"] for r in recs])
    model, tok = load_causal_lm()
    t0 = time.perf_counter()
    scores = score_sft_cached(
        model,
        tok,
        [r["prompt"] for r in recs],
        [r["response"] for r in recs],
        cache_dir=cache_dir("bench", "qtuning_diagnostic"),
        batch_size=args.batch_size,
        max_length=args.max_length,
        show_progress_bar=True,
    )
    t_score = time.perf_counter() - t0
    ppl = scores.perplexity()
    ent = {"response": scores.mean_entropy("response"), "all": scores.mean_entropy("all")}
    n = len(recs)

    per_class_scores = {
        c: {
            "n": int((kinds == c).sum()),
            "median_ppl": float(np.median(ppl[kinds == c])),
            "median_entropy": float(np.median(ent["response"][kinds == c])),
        }
        for c in CLASSES
    }
    runs = []
    for r_sample in (0.25, 0.5):
        k = QTuningConfig(sample_ratio=r_sample).n_keep(n)
        rand = random_retention(n, k, kinds, args.draws, args.seed)
        order_ppl = np.argsort(ppl, kind="stable")
        low_ppl = np.zeros(n, bool)
        low_ppl[order_ppl[:k]] = True
        high_ppl = np.zeros(n, bool)
        high_ppl[order_ppl[-k:]] = True
        methods = {}
        for span, fill in (("response", "minmax"), ("all", "minmax"), ("response", "rank")):
            cfg = QTuningConfig(sample_ratio=r_sample, entropy_span=span, fill_norm=fill)
            t = triage_samples(ppl, ent[span], cfg)
            table = {
                f"Q{q}": {c: int(((t.quadrant == q) & (kinds == c)).sum()) for c in CLASSES}
                for q in (1, 2, 3, 4)
            }
            methods[f"q-tuning static (entropy={span}, fill={fill})"] = {
                "retention": retention(t.kept, kinds),
                "quadrant_x_class": table,
                "alpha": t.alpha,
                "n_corner": t.n_corner,
                "fill_up": int(t.counts()["fill_up"]),
                "fill_up_q4_share": float(np.mean(t.quadrant[t.selection == 2] == 4))
                if (t.selection == 2).any()
                else None,
                "fill_up_median_ppl": float(np.median(ppl[t.selection == 2]))
                if (t.selection == 2).any()
                else None,
                "fill_up_by_class": {
                    c: int(((t.selection == 2) & (kinds == c)).sum()) for c in CLASSES
                },
            }
            if span == "response" and fill == "minmax" and r_sample == 0.25:
                plot_classes(
                    ppl,
                    ent[span],
                    kinds,
                    t.thresholds,
                    HERE / "results" / f"{NAME}.png",
                    "GSM8K train + injected corruption under SmolLM2-135M-Instruct\n"
                    f"(quantile thresholds at alpha={t.alpha:.3f}, sample_ratio={r_sample})",
                )
        for fill in ("minmax", "rank"):
            kept_mb, quad_mb = microbatch_triage(
                ppl,
                ent["response"],
                QTuningConfig(sample_ratio=r_sample, fill_norm=fill),
                16,
                args.seed,
            )
            methods[f"q-tuning per micro-batch of 16 (dynamic, epoch 1, fill={fill})"] = {
                "retention": retention(kept_mb, kinds),
                "quadrant_x_class": {
                    f"Q{q}": {c: int(((quad_mb == q) & (kinds == c)).sum()) for c in CLASSES}
                    for q in (1, 2, 3, 4)
                },
            }
        methods["keep lowest PPL"] = {"retention": retention(low_ppl, kinds)}
        methods["keep highest PPL"] = {"retention": retention(high_ppl, kinds)}
        runs.append(
            {
                "sample_ratio": r_sample,
                "k": k,
                "random": rand,
                "methods": methods,
            }
        )

    result = {
        "benchmark": NAME,
        "command": f".venv/bin/python benchmarks/{NAME}.py --n {args.n} --seed {args.seed} "
        f"--max-length {args.max_length} --batch-size {args.batch_size} --draws {args.draws}",
        "machine": common.machine_info(["torch", "transformers"]),
        "random_draws": args.draws,
        "n_samples": n,
        "classes": {c: int((kinds == c).sum()) for c in CLASSES},
        "model": model.dataprune_source.describe(),
        "max_length": args.max_length,
        "scoring_seconds": round(t_score, 1),
        "scores_reused_from_cache": bool(scores.meta.get("n_shards_reused")),
        "n_truncated_to_max_length": int(scores.meta.get("n_truncated", 0)),
        "per_class_scores": per_class_scores,
        "_ppl_median": float(np.median(ppl)),
        "runs": runs,
    }
    md = render_md(result)
    common.publish(NAME, md, result, indent=1)
    print(md)
    return 0


def render_md(res: dict) -> str:
    L = []
    L.append("## Q-Tuning diagnostic: injected corruption on the EU plane (GSM8K train)\n")
    timing = (
        "scores reused from the scoring cache of an earlier identical run"
        if res.get("scores_reused_from_cache")
        else f"{res['scoring_seconds']} s"
    )
    L.append(
        f"Command: `{res['command']}` (scored once with {res['model']['name']}; {timing}; "
        f"max_length {res['max_length']}, {res['n_truncated_to_max_length']} samples truncated "
        f"to it). {common.machine_sentence(res.get('machine'))}\n"
    )
    cls = res["classes"]
    L.append(
        f"{res['n_samples']} samples: {cls['clean']} clean, {cls['shuffled']} with an answer "
        f"shuffled from another question, {cls['truncated']} with the answer cut at 30-70 % of its "
        f"words, {cls['duplicate']} exact duplicates of clean records. Plot: "
        f"`results/{NAME}.png`.\n"
    )
    L.append("| class | n | median PPL | median entropy (nats) |")
    L.append("|---|---:|---:|---:|")
    for c, v in res["per_class_scores"].items():
        L.append(f"| {c} | {v['n']} | {v['median_ppl']:.2f} | {v['median_entropy']:.3f} |")
    L.append("")
    for run in res["runs"]:
        r, k = run["sample_ratio"], run["k"]
        L.append(f"### sample_ratio = {r} (K = {k} of {res['n_samples']})\n")
        L.append(
            "Retention = fraction of the class that is kept; the ratio is retention / random "
            "retention at the same budget (random: mean and 95 % interval of "
            f"{res.get('random_draws', DEFAULT_DRAWS):,} draws, same run). "
            "Lower is better for corrupted classes.\n"
        )
        L.append("| selector | clean | shuffled | truncated | duplicate |")
        L.append("|---|---:|---:|---:|---:|")
        rnd = run["random"]
        L.append(
            "| random (mean [95 % interval]) | "
            + " | ".join(
                f"{rnd[c]['mean']:.2f} [{rnd[c]['lo']:.2f}, {rnd[c]['hi']:.2f}]" for c in CLASSES
            )
            + " |"
        )
        for name, m in run["methods"].items():
            cells = []
            for c in CLASSES:
                v = m["retention"][c]
                cells.append(f"{v:.2f} ({v / rnd[c]['mean']:.2f}x)")
            L.append(f"| {name} | " + " | ".join(cells) + " |")
        L.append("")
        for key in (
            "q-tuning static (entropy=response, fill=minmax)",
            "q-tuning static (entropy=response, fill=rank)",
        ):
            m = run["methods"][key]
            L.append(
                f"Quadrant x class, {key[len('q-tuning ') :]} (alpha = {m['alpha']:.3f}, "
                f"{m['n_corner']} samples from the corners, {m['fill_up']} by fill-up, of which "
                + ", ".join(f"{v} {c}" for c, v in m["fill_up_by_class"].items() if v)
                + "):\n"
            )
            L.append("| quadrant | clean | shuffled | truncated | duplicate |")
            L.append("|---|---:|---:|---:|---:|")
            names = {
                "Q1": "Q1 noise (dropped)",
                "Q2": "Q2 misconception (kept, token-pruned)",
                "Q3": "Q3 redundant (dropped)",
                "Q4": "Q4 calibration (kept whole)",
            }
            for q, row in m["quadrant_x_class"].items():
                L.append(f"| {names[q]} | " + " | ".join(str(row[c]) for c in CLASSES) + " |")
            L.append("")
    L.append(_reading(res))
    return "\n".join(L) + "\n"


def _verdict(v: float, rnd: dict) -> str:
    if v < rnd["lo"]:
        return "less often than random"
    if v > rnd["hi"]:
        return "MORE often than random"
    return "as often as random: inside its 95 % interval"


def _reading(res: dict) -> str:
    """Reading of the first budget, every clause computed from the numbers above."""
    run = res["runs"][0]
    rnd, k = run["random"], run["k"]
    out = [f"**Reading (sample_ratio {run['sample_ratio']}).** "]
    for key in (
        "q-tuning static (entropy=response, fill=minmax)",
        "q-tuning static (entropy=response, fill=rank)",
        "q-tuning static (entropy=all, fill=minmax)",
    ):
        m = run["methods"][key]["retention"]
        parts = [f"{c} {m[c]:.2f} ({_verdict(m[c], rnd[c])})" for c in ("shuffled", "truncated")]
        out.append(f"{key}: " + "; ".join(parts) + ". ")
    for key in (
        "q-tuning static (entropy=response, fill=minmax)",
        "q-tuning static (entropy=response, fill=rank)",
    ):
        m = run["methods"][key]
        fills = ", ".join(f"{v} {c}" for c, v in m["fill_up_by_class"].items() if v)
        out.append(
            f"With {key[len('q-tuning static ') :]} the bisection stops at alpha = "
            f"{m['alpha']:.2f} with {m['n_corner']} of the K = {k} kept samples from the corners; "
            f"the fill-up adds {m['fill_up']} ({fills}), "
            + (
                f"{m['fill_up_q4_share']:.0%} of them labelled 'Q4', with median PPL "
                f"{m['fill_up_median_ppl']:.2f} against {res['_ppl_median']:.2f} for all samples. "
                if m["fill_up_q4_share"] is not None
                else "none. "
            )
        )
    pcs = res["per_class_scores"]
    by_ent = sorted(pcs, key=lambda c: -pcs[c]["median_entropy"])
    by_ppl = sorted(pcs, key=lambda c: -pcs[c]["median_ppl"])
    out.append(
        "Median response entropy by class, highest first: "
        + ", ".join(f"{c} {pcs[c]['median_entropy']:.3f}" for c in by_ent)
        + " nats; median PPL, highest first: "
        + ", ".join(f"{c} {pcs[c]['median_ppl']:.2f}" for c in by_ppl)
        + ". "
    )
    corrupt = ("shuffled", "truncated")

    def kept_corrupt(name: str) -> float:
        return float(np.mean([run["methods"][name]["retention"][c] for c in corrupt]))

    best = min(run["methods"], key=kept_corrupt)
    r = run["methods"][best]["retention"]
    out.append(
        f"Lowest mean retention of shuffled and truncated records: `{best}` "
        f"(shuffled {r['shuffled']:.2f}, truncated {r['truncated']:.2f}; clean "
        f"{r['clean']:.2f} against {rnd['clean']['mean']:.2f} for random). "
    )
    qt = [name for name in run["methods"] if name.startswith("q-tuning")]
    lo, hi = rnd["duplicate"]["lo"], rnd["duplicate"]["hi"]
    inside = [n for n in qt if lo <= run["methods"][n]["retention"]["duplicate"] <= hi]
    out.append(
        f"Duplicate retention is inside random's 95 % interval [{lo:.2f}, {hi:.2f}] for "
        f"{len(inside)} of {len(qt)} Q-Tuning selectors."
    )
    return "".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
