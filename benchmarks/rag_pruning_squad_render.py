"""The curves plot and the results section of ``benchmarks/rag_pruning_squad.py``."""

from __future__ import annotations

from benchmarks import _common as common


def plot_curves(curves, path, atomic_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    style = {
        "pruner/mean_prob": ("C3", "-", "o"),
        "pruner/vote": ("C1", "--", "s"),
        "lead-k": ("C7", ":", "^"),
        "random-k": ("C8", ":", "v"),
        "bm25-threshold": ("C0", "-", "."),
        "embedding-threshold": ("C2", "-", "."),
        "embedding-percentile": ("C4", "--", "."),
        "keep-all": ("k", "", "*"),
    }
    for ax, key, label in (
        (axes[0], "recall", "sentence recall (answerable passages)"),
        (axes[1], "answer_retention", "answer-string retention"),
    ):
        for name, rows in curves.items():
            c, ls, mk = style.get(name, ("C9", "-", "."))
            pts = sorted((r["compression"], r[key]) for r in rows)
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=c,
                linestyle=ls or "none",
                marker=mk,
                markersize=4,
                label=name,
            )
        ax.axvline(0.5, color="grey", lw=0.5)
        ax.axhline(0.9, color="grey", lw=0.5)
        ax.set_xlabel("compression (share of characters removed, all passages)")
        ax.set_ylabel(label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Held-out SQuAD v2 articles: recall vs compression")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _f(x, d=3):
    return "n/a" if x != x else f"{x:.{d}f}"


def _beats_line(t) -> str:
    """The verdict, computed: beaten = paired 95% CI of the difference above 0 at a point."""
    if "n_comparisons_recall" not in t:  # a run from before the paired bootstrap
        return (
            "- beats the BM25 and embedding filters at every matched point: not decided (this "
            "run recorded no confidence interval for the differences)"
        )
    parts = []
    for key, label in (("recall", "recall"), ("f2", "F2")):
        n, k, nan = (t[f"n_comparisons_{key}"], t[f"n_beaten_{key}"], t[f"n_not_comparable_{key}"])
        verdict = "yes" if t[f"beats_bm25_and_embedding_{key}_at_all_matched_points"] else "no"
        parts.append(
            f"{label} **{verdict}** ({k} of {n} matched comparisons with the whole paired 95% "
            f"interval above 0; {nan} not comparable)"
        )
    return (
        "- beats the BM25 and embedding filters at every matched point (paired bootstrap over "
        f"passages, {t['n_bootstrap']} resamples): " + "; ".join(parts)
    )


def markdown(r, name) -> str:
    c = r["curves"]["pruner/mean_prob"]
    lines = [
        "## RAG context pruning: held-out SQuAD v2 articles (`rag_pruning_squad`)",
        "",
        f"Command: `{r['command']}` (script `benchmarks/{name}.py`). Pruner: "
        f"`{r['model']['name']}`; evaluated on the held-out articles {', '.join(r['test_articles'])} "
        f"({r['n_passages']} passages: {r['passages_by_kind']}). Recall / precision / F2 are "
        "sentence-level against the sentence holding the gold answer span (recall over answerable "
        "passages; precision over all passages); compression = share of characters removed over "
        "all passages. All methods are scored on the same passages in the same run.",
        "",
        f"Threshold-free: sentence average precision {_f(r['pruner_sentence_ap'])}; passage-score "
        f"ROC-AUC (holds the answer vs not) {_f(r['pruner_passage_auc'])}.",
        "",
        "### Pruner threshold sweep (`mean_prob`)",
        "",
        "| T | recall | precision | F2 | compression | compr. with answer | compr. without answer | "
        "token compr. | answer retention | empty (answerable) | empty (no answer) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in c:
        lines.append(
            f"| {row['param']:g} | {_f(row['recall'])} | {_f(row['precision'])} | {_f(row['f2'])} | "
            f"{_f(row['compression'])} | {_f(row['compression_with_answer'])} | "
            f"{_f(row['compression_without_answer'])} | {_f(row['compression_tokens'])} | "
            f"{_f(row['answer_retention'])} | {_f(row['empty_rate_answerable'])} | "
            f"{_f(row['empty_rate_no_answer'])} |"
        )
    lines += [
        "",
        "### At matched compression (baselines interpolated to the pruner's compression)",
        "",
        "| pruner T | compression | method | recall (pruner - method, paired 95% CI) | F2 (pruner - method, 95% CI) | answer retention | empty (answerable) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in r["matched"]:
        lines.append(
            f"| {m['threshold']:g} | {_f(m['compression'])} | **pruner** | {_f(m['pruner']['recall'])} | "
            f"{_f(m['pruner']['f2'])} | {_f(m['pruner']['answer_retention'])} | "
            f"{_f(m['pruner']['empty_rate_answerable'])} |"
        )
        for b, v in m["baselines"].items():
            cells = []
            for key in ("recall", "f2"):
                d = m["pruner"][key] - v[key]
                ci = m.get("paired_ci95", {}).get(b, {}).get(key)
                ci_txt = (
                    f"; [{_f(ci['lo'])}, {_f(ci['hi'])}]"
                    + (f", {ci['n_nan']} resamples not comparable" if ci["n_nan"] else "")
                    if ci
                    else ""
                )
                cells.append(f"{_f(v[key])} ({'+' if d >= 0 else ''}{_f(d)}{ci_txt})")
            lines.append(
                f"| | | {b} | {cells[0]} | {cells[1]} | "
                f"{_f(v['answer_retention'])} | {_f(v['empty_rate_answerable'])} |"
            )
    lines += [
        "",
        "### At 50% compression (interpolated)",
        "",
        "| method | recall | F2 | answer retention |",
        "|---|---|---|---|",
    ]
    for k, v in r["at_compression_0.5"].items():
        lines.append(f"| {k} | {_f(v['recall'])} | {_f(v['f2'])} | {_f(v['answer_retention'])} |")
    lines += [
        "",
        "### Needle test (answer sentence among same-article distractors, T = "
        f"{r['targets'].get('default_threshold', 0.1):g}, the default)",
        "",
        "| passage | position | n | recall of the answer sentence | empty | share of sentences kept | windows |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, v in r["needles"].items():
        length, pos = k.split("/")
        lines.append(
            f"| {length} | {pos} | {v['n']} | {_f(v['recall'])} | {_f(v['empty'])} | "
            f"{_f(v['kept_share'])} | {v['windows']:.1f} |"
        )
    t = r["targets"]
    lines += [
        "",
        "### Targets",
        "",
        "- recall >= 0.9 on answerable passages at >= 50% compression at the default T = "
        f"{t.get('default_threshold', 0.1):g}: "
        f"recall {_f(t['recall_at_default'])}, compression {_f(t['compression_at_default'])} -> "
        f"**{'met' if t['recall_ge_0.9_at_compression_ge_0.5'] else 'NOT met'}** (best recall at any "
        f"threshold with compression >= 0.5: {_f(t['best_recall_with_compression_ge_0.5'])})",
        _beats_line(t),
        "",
        f"Plot: `benchmarks/results/{name}_curves.png`. Pruner scoring: "
        f"{r['timing_s']['pruner_passages_per_s']} passages/s over the whole set. "
        + common.machine_sentence(r.get("machine")),
    ]
    return "\n".join(lines) + "\n"
