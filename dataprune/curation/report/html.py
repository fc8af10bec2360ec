"""The curation report: one self-contained HTML page (images inline) a reader can follow without
having run the job — funnel, score histograms with the cuts, dropped examples per reason, the
largest duplicate groups, and the kept set against random subsets of the same size."""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.curation.report.compare import Comparison, compare_with_random

logger = logging.getLogger(__name__)

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2330;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
td,th{border:1px solid #d6d9e0;padding:.3rem .55rem;vertical-align:top;text-align:left}
th{background:#f2f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ex{max-width:460px;white-space:pre-wrap;word-break:break-word;font-size:.85rem}
.better{color:#176b2c;font-weight:600}.worse{color:#a3271b;font-weight:600}
.note{color:#555;font-size:.9rem}img{max-width:100%}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _clip(text: str | None, n: int = 320) -> str:
    if text is None:
        return ""
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _funnel_plot(funnel: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(funnel)))
    labels = [f["stage"] for f in funnel]
    outs = [f["n_out"] for f in funnel]
    drops = [f["n_dropped"] for f in funnel]
    y = np.arange(len(funnel))[::-1]
    ax.barh(y, outs, color="#4a7bd0", label="remaining")
    ax.barh(y, drops, left=outs, color="#e0a04a", label="dropped here")
    ax.set_yticks(y, labels)
    ax.set_xlabel("records")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Retention per stage")
    return _png(fig)


def _hist(values: np.ndarray, kept: np.ndarray, name: str, cuts: dict[str, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = np.isfinite(values)
    v = values[ok]
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    codes = np.unique(v)
    if 0 < len(codes) <= 10 and np.all(codes == np.round(codes)) and not cuts:
        # a score of a few codes (Q-Tuning quadrants, noise rules): counts per code, every code
        # shown (a histogram's percentile range would clip a rare code away)
        kk = kept[ok]
        x = np.arange(len(codes))
        for off, mask, color, label in (
            (-0.2, ~kk, "#e0a04a", "dropped"),
            (0.2, kk, "#4a7bd0", "kept"),
        ):
            bars = ax.bar(x + off, [int(np.sum(v[mask] == c)) for c in codes], 0.4, color=color,
                          label=label)  # fmt: skip
            ax.bar_label(bars, fontsize=7, padding=1)
        ax.margins(y=0.15)  # room for the count labels
        ax.set_xticks(x, [f"{c:g}" for c in codes])
        ax.set_xlabel(f"{name} (value)")
        ax.set_ylabel("records")
        ax.set_title(name)
        ax.legend(fontsize=8)
        return _png(fig)
    lo, hi = np.percentile(v, [0.5, 99.5]) if len(v) else (0, 1)
    for c in cuts.values():
        lo, hi = min(lo, c), max(hi, c)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    vv = np.clip(v, lo, hi)
    kk = kept[ok]
    ax.hist(vv[~kk], bins=bins, alpha=0.65, color="#e0a04a", label="dropped")
    ax.hist(vv[kk], bins=bins, alpha=0.65, color="#4a7bd0", label="kept")
    for side, c in cuts.items():
        ax.axvline(c, color="#a3271b", ls="--", lw=1.3)
        ax.annotate(f"{side} {c:.3g}", (c, ax.get_ylim()[1] * 0.92), fontsize=8, color="#a3271b")
    ax.set_xlabel(name)
    ax.set_ylabel("records")
    ax.set_title(name)
    ax.legend(fontsize=8)
    return _png(fig)


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    if abs(x) < 1 and x != 0:
        return f"{x:.3f}"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _comparison_rows(comps: list[Comparison], n_subsets: int) -> tuple[str, list[str]]:
    rows, sentences = [], []
    for c in comps:
        lo, hi = c.random_range
        verdict = c.verdict
        cls = verdict if verdict in ("better", "worse") else ""
        rows.append(
            f'<tr data-measure="{_esc(c.name)}" data-kept="{c.kept:.6g}" '
            f'data-random-mean="{c.random_mean:.6g}"><td>{_esc(c.label)}</td>'
            f'<td class="num">{_fmt(c.kept)}</td><td class="num">{_fmt(c.random_mean)}</td>'
            f'<td class="num">{_fmt(lo)} – {_fmt(hi)}</td><td>{_esc(c.better or "-")}</td>'
            f'<td class="{cls}">{_esc(verdict or "-")}</td></tr>'
        )
        if verdict == "better":
            sentences.append(
                f"{c.label}: the kept set ({_fmt(c.kept)}) is better than all {n_subsets} random "
                f"subsets (mean {_fmt(c.random_mean)})."
            )
        elif verdict == "worse":
            sentences.append(
                f"{c.label}: the kept set ({_fmt(c.kept)}) is WORSE than all {n_subsets} random "
                f"subsets (mean {_fmt(c.random_mean)})."
            )
        elif verdict == "within":
            sentences.append(
                f"{c.label}: the kept set ({_fmt(c.kept)}) is within the range of random subsets "
                f"({_fmt(float(np.min(c.random)))}–{_fmt(float(np.max(c.random)))}): no measurable "
                "benefit on this measure."
            )
    return "\n".join(rows), sentences


def render_report(
    result: Any,
    *,
    comparisons: list[Comparison] | None = None,
    n_random_subsets: int = 20,
    title: str = "dataprune curation report",
) -> str:
    """The report's HTML (a string)."""
    n_kept = len(result.kept_indices)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        '<section id="summary"><h2>Summary</h2>',
        f'<p data-n-input="{result.n_input}" data-n-kept="{n_kept}">Kept <b>{n_kept:,}</b> of '
        f"<b>{result.n_input:,}</b> input records ({100 * n_kept / max(result.n_input, 1):.1f}%)"
        + (f" for a budget of {result.budget:,}" if result.budget is not None else "")
        + f". Recipe: <code>{_esc(result.recipe.get('name', 'custom'))}</code>; seed "
        f"{_esc(result.random_state)}. Every input record has one status in the status file.</p>",
    ]
    comps = comparisons if comparisons is not None else []
    rows, sentences = _comparison_rows(comps, n_random_subsets)
    if sentences:
        parts.append("<ul>" + "".join(f"<li>{_esc(s)}</li>" for s in sentences) + "</ul>")
    parts.append("</section>")

    parts.append('<section id="funnel"><h2>Retention funnel</h2>')
    parts.append(f'<img alt="retention funnel" src="{_funnel_plot(result.funnel)}">')
    parts.append(
        "<table><tr><th>stage</th><th>in</th><th>dropped</th><th>out</th><th>seconds</th></tr>"
    )
    for f in result.funnel:
        secs = result.stage_seconds.get(f["stage"])
        cached = " (cached)" if f["stage"] in result.cached_stages else ""
        parts.append(
            f'<tr data-stage="{_esc(f["stage"])}" data-dropped="{f["n_dropped"]}" '
            f'data-out="{f["n_out"]}"><td>{_esc(f["stage"])}</td><td class="num">{f["n_in"]:,}</td>'
            f'<td class="num">{f["n_dropped"]:,}</td><td class="num">{f["n_out"]:,}</td>'
            f'<td class="num">{"" if secs is None else f"{secs:.1f}"}{cached}</td></tr>'
        )
    parts.append("</table></section>")

    parts.append('<section id="scores"><h2>Scores and cuts</h2>')
    kept_mask = result.kept
    cut_of: dict[str, dict[str, float]] = {}
    desc_of: dict[str, str] = {}
    for d in result.details.values():
        if "score" in d:
            cut_of[d["score"]] = d.get("cuts", {})
            desc_of[d["score"]] = d.get("direction", "")
    shown = 0
    for name, col in result.columns.items():
        if name in ("label_issue", "selection_score") or not np.isfinite(col).any():
            continue
        n_scored = int(np.isfinite(col).sum())
        parts.append(
            f'<figure data-score="{_esc(name)}"><img alt="histogram of {_esc(name)}" '
            f'src="{_hist(col, kept_mask, name, cut_of.get(name, {}))}"><figcaption>{_esc(name)}: '
            f"{n_scored:,} records scored. {_esc(desc_of.get(name, ''))}</figcaption></figure>"
        )
        shown += 1
    if not shown:
        parts.append("<p class='note'>No stage computed a score.</p>")
    parts.append("</section>")

    parts.append('<section id="dropped"><h2>Dropped records, 10 per reason</h2>')
    dropped = np.flatnonzero(result.status == "dropped")
    by_reason: dict[tuple[str, str], list[int]] = {}
    for i in dropped.tolist():
        r = str(result.reason[i] or "")
        # one group per stage and reason kind (duplicates differ only by the id they duplicate)
        kind = r.split(" of ")[0] if " of " in r else r
        by_reason.setdefault((str(result.stage[i]), kind), []).append(i)
    counts = Counter({k: len(v) for k, v in by_reason.items()})
    stage_pos = {f["stage"]: i for i, f in enumerate(result.funnel)}
    for (stage, kind), n in sorted(
        counts.items(), key=lambda kv: (stage_pos.get(kv[0][0], 99), -kv[1], kv[0][1])
    ):
        ex = by_reason[(stage, kind)][:10]
        parts.append(
            f'<h3 data-stage="{_esc(stage)}" data-reason="{_esc(kind)}" data-count="{n}">'
            f"{_esc(stage)}: {_esc(kind)} ({n:,} records)</h3><table><tr><th>id</th><th>prompt</th>"
            "<th>response</th><th>reason</th></tr>"
        )
        for i in ex:
            prompt = (
                result.prompts[i] if result.prompts[i] is not None else _clip(result.records[i])
            )
            parts.append(
                f"<tr><td>{_esc(result.ids[i])}</td><td class='ex'>{_esc(_clip(prompt))}</td>"
                f"<td class='ex'>{_esc(_clip(result.responses[i]))}</td>"
                f"<td>{_esc(result.reason[i])}</td></tr>"
            )
        parts.append("</table>")
    if not counts:
        parts.append("<p class='note'>No record was dropped.</p>")
    parts.append("</section>")

    parts.append('<section id="duplicates"><h2>Largest duplicate groups</h2>')
    any_groups = False
    for label, d in result.details.items():
        groups = d.get("largest_groups") or []
        if not groups:
            continue
        any_groups = True
        parts.append(f"<h3>{_esc(label)} ({d.get('n_groups', len(groups)):,} groups)</h3>")
        for g in groups[:5]:
            parts.append(
                f'<table data-group-size="{len(g)}"><tr><th>id</th><th>status</th><th>text</th></tr>'
            )
            for j, i in enumerate(g[:6]):
                st = "survivor" if j == 0 else "dropped"
                parts.append(
                    f"<tr><td>{_esc(result.ids[i])}</td><td>{st}</td><td class='ex'>"
                    f"{_esc(_clip((result.prompts[i] or '') + ' ⏎ ' + (result.responses[i] or ''), 240))}</td></tr>"
                )
            if len(g) > 6:
                parts.append(f"<tr><td colspan='3'>… and {len(g) - 6} more</td></tr>")
            parts.append("</table>")
    if not any_groups:
        parts.append("<p class='note'>No duplicates were found (or no dedup stage ran).</p>")
    parts.append("</section>")

    parts.append(
        '<section id="kept-vs-random"><h2>Kept set against random subsets of the same size</h2>'
    )
    if comps:
        parts.append(
            f"<p>{n_random_subsets} subsets of {n_kept:,} records drawn uniformly from the valid "
            "records. 'better'/'worse' means outside the range of every random subset.</p>"
            "<table><tr><th>measure</th><th>kept</th><th>random mean</th><th>random 95% range</th>"
            f"<th>better is</th><th>verdict</th></tr>{rows}</table>"
        )
    else:
        parts.append("<p class='note'>Nothing to compare (no budget-sized kept set).</p>")
    parts.append("</section></body></html>")
    return "\n".join(parts)


def write_report(
    result: Any,
    path: str | os.PathLike[str],
    *,
    n_random_subsets: int = 20,
    ctx: Any = None,
    comparisons: list[Comparison] | None = None,
) -> Path:
    """Write the report atomically; ``comparisons``: the kept-versus-random comparison
    (``result.comparisons`` after :func:`dataprune.curate`), computed here when not given."""
    from dataprune.atomic import atomic_write

    if comparisons is None:
        emb = getattr(ctx, "_embeddings", None) if ctx is not None else None
        valid_index = ctx.view.index if ctx is not None else None
        comparisons = compare_with_random(
            result, embeddings=emb, valid_index=valid_index, n_subsets=n_random_subsets
        )
    text = render_report(result, comparisons=comparisons, n_random_subsets=n_random_subsets)
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write(text)
    return path
