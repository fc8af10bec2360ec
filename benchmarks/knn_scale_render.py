"""Rendering of the kNN-graph scale benchmark (``benchmarks/knn_scale.py``): its markdown section
and plot, every sentence and verdict computed from the saved numbers (nothing hard-coded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import _common as common

TARGET_RECALL = 0.95
TARGET_SECONDS = 300.0
TARGET_N = 1_000_000
TITLE = "## kNN graph at scale (exact GEMM, IVF, HNSW, cells): time, memory, recall@k"


def _library_default_variant(n: int) -> str:
    """The variant ``knn_graph(X, k)`` runs with no method given: exact up to its limit, else
    the library's ``method="auto"`` (cells checked on a sample, else HNSW) at its defaults."""
    from dataprune.neighbors import _EXACT_LIMIT

    return "exact" if n <= _EXACT_LIMIT else "dp-auto"


def _params(case: dict, row: dict | None = None) -> dict[str, Any]:
    return {**case.get("effective_params", {}), **((row or {}).get("params") or {})}


def _params_text(case: dict, row: dict | None = None) -> str:
    p = _params(case, row)
    text = ", ".join(f"{k}={v}" for k, v in p.items()) or "-"
    return text + (" (defaults)" if p and not case.get("params") else "")


def setting(case: dict, row: dict | None = None) -> str:
    """Short name of one measured setting (an HNSW case has one per efSearch)."""
    if case["kind"] == "hnsw" and row is not None:
        return f"{case['variant']} ef{row['params']['efSearch']}"
    return case["variant"]


def measured(cases: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(case, row) for every finished measurement (a timed-out HNSW sweep keeps its done rows)."""
    for c in cases:
        for r in c.get("rows", []):
            yield c, r


def _extrapolated_exact(cases: list[dict], case: dict) -> tuple[float, int] | None:
    """n^2 extrapolation of a skipped exact case from the largest measured exact of its dataset."""
    done = [
        (c["n"], r["seconds"])
        for c, r in measured(cases)
        if c["variant"] == "exact" and c["dataset"] == case["dataset"] and c["n"] < case["n"]
    ]
    if not done:
        return None
    n0, t0 = max(done)
    return t0 * (case["n"] / n0) ** 2, n0


def _seconds_text(case: dict, row: dict) -> str:
    s = f"{row['seconds']:.1f}"
    if row.get("search_scaled"):
        return f"~{s} (build {row['build_s']:.1f} + search ~{row['search_s']:.1f}, scaled)"
    if "build_s" in row:
        return f"{s} (build {row['build_s']:.1f} + search {row['search_s']:.1f})"
    if "train_s" in row:
        return f"{s} (train {row['train_s']:.1f})"
    return s


def _load_text(case: dict) -> str:
    if "load_before" not in case:
        return "-"
    return f"{case['load_before']:.1f} → {case['load_after']:.1f}"


def _speed_text(case: dict) -> str:
    return f"{case['speed_ref_s']:.2f}" if "speed_ref_s" in case else "-"


def _table(cases: list[dict], k: int, cmd_index: dict[str, int]) -> list[str]:
    lines = [
        f"| n | method | parameters | seconds | peak RSS MiB | recall@{k} | load (1 min, before → after) | speed ref s | cmd |",
        "|---:|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for c in cases:
        cmd = f"[{cmd_index.get(_run_key(c), '?')}]"
        head = f"| {c['n']:,} | {c['label']} |"
        for r in c.get("rows", []):
            lines.append(
                f"{head} {_params_text(c, r)} | {_seconds_text(c, r)} | "
                f"{c.get('peak_rss_mib', float('nan')):,.0f} | {r['recall']:.4f} | "
                f"{_load_text(c)} | {_speed_text(c)} | {cmd} |"
            )
        if c["status"] == "ok":
            continue
        what = c.get("error") or c["status"]
        if c["status"] == "skipped" and c["variant"] == "exact":
            est = _extrapolated_exact(cases, c)
            if est:
                what += f"; ~{est[0]:,.0f} s by n² extrapolation from n = {est[1]:,}"
        status = {"timeout": "TIMED OUT", "error": "FAILED", "skipped": "not run"}[c["status"]]
        lines.append(
            f"{head} {_params_text(c)} | {status}: {what} | - | - | {_load_text(c)} | "
            f"{_speed_text(c)} | {cmd} |"
        )
    return lines


def _run_key(case: dict) -> tuple[str, str]:
    return case.get("command", "?"), case.get("run_started", "?")


def _describe(c: dict, r: dict, params: bool = False) -> str:
    text = _params_text(c, r)
    p = f" [{text}]" if params and text != "-" else ""
    approx = "~" if r.get("search_scaled") else ""
    return f"{setting(c, r)}{p} ({approx}{r['seconds']:.1f} s, recall {r['recall']:.3f})"


def _ordered(cases: list[dict], meta: dict) -> list[dict]:
    """By n, then in the order the variants are declared in the script."""
    order = {v: i for i, v in enumerate(meta.get("variants", {}))}
    return sorted(cases, key=lambda c: (c["n"], order.get(c["variant"], len(order)), c["id"]))


def _verdicts(cases: list[dict], k: int, dataset: str) -> list[str]:
    """Per-size lines: who reaches the recall target, the fastest of them, the library default,
    and at 1M whether the 5-minute target is met."""
    out = []
    for n in sorted({c["n"] for c in cases}):
        at = [c for c in cases if c["n"] == n]
        rows = [(c, r) for c, r in measured(at)]
        good = sorted(
            ((c, r) for c, r in rows if r["recall"] >= TARGET_RECALL), key=lambda x: x[1]["seconds"]
        )
        bits = []
        if good:
            bits.append(
                f"recall@{k} ≥ {TARGET_RECALL} reached by {len(good)} of {len(rows)} settings; "
                f"fastest: {_describe(*good[0], params=True)}"
            )
        elif rows:
            best = max(rows, key=lambda x: x[1]["recall"])
            bits.append(
                f"**no setting reached recall@{k} ≥ {TARGET_RECALL}** (highest: {_describe(*best)})"
            )
        failed = [
            f"{c['variant']} ({c['status']})" for c in at if c["status"] in ("timeout", "error")
        ]
        if failed:
            bits.append("did not finish: " + ", ".join(failed))
        dv = _library_default_variant(n)
        dflt = [r for c, r in rows if c["variant"] == dv]
        dcase = next((c for c, _r in rows if c["variant"] == dv), {})
        if dflt:
            r = dflt[0]
            ok = r["recall"] >= TARGET_RECALL
            bits.append(
                f"library default (`knn_graph(X, {k})` runs `{dv}` here): {r['seconds']:.1f} s, "
                f"recall {r['recall']:.3f}: recall target " + ("met" if ok else "**NOT met**")
            )
        else:
            bits.append(f"library default (`{dv}` here) not measured")
        if n == TARGET_N:
            if dflt:
                r = dflt[0]
                ok = r["seconds"] < TARGET_SECONDS and r["recall"] >= TARGET_RECALL
                refs = [c["speed_ref_s"] for c in cases if "speed_ref_s" in c]
                ref = (
                    f" (speed reference of that case {dcase['speed_ref_s']:.2f} s; over the "
                    f"cases that recorded one: {min(refs):.2f}-{max(refs):.2f} s)"
                    if "speed_ref_s" in dcase
                    else ""
                )
                bits.append(
                    f"5-minute target at the default settings (< {TARGET_SECONDS:.0f} s and "
                    f"recall ≥ {TARGET_RECALL}): " + ("met" if ok else "**NOT met**") + ref
                )
            fast = [x for x in good if x[1]["seconds"] < TARGET_SECONDS]
            bits.append(
                f"settings with recall ≥ {TARGET_RECALL} under {TARGET_SECONDS:.0f} s: "
                + (", ".join(_describe(c, r) for c, r in fast) if fast else "**none**")
            )
        out.append(f"- n = {n:,}: " + "; ".join(bits) + ".")
    if TARGET_N not in {c["n"] for c in cases}:
        out.append(
            f"- n = {TARGET_N:,} not measured for {dataset} in this file: the 5-minute target is "
            "not judged."
        )
    return out


def render_md(payload: dict) -> str:
    """The markdown section, from the results JSON only."""
    meta, cases = payload["meta"], payload["cases"]
    k = meta["k"]
    # the runs that measured the shown cases (a resumed run that reused them all is not listed)
    commands = sorted({_run_key(c) for c in cases}, key=lambda key: key[1])
    cmd_index = {key: i + 1 for i, key in enumerate(commands)}
    runs = {(r["command"], r["started"]): r for r in meta.get("runs", [])}
    lines = [
        TITLE,
        "",
        f"Script: `benchmarks/knn_scale.py` (render: `knn_scale_render.py`). k = {k} "
        f"({meta['k_source']}); {meta['dim']}-d float32 rows, L2-normalised; inner product; "
        "self excluded. *seconds*: wall time of the whole build (training, adding, searching every "
        "row), each case in its own process, imports and page-cache warm-up excluded. *peak RSS*: "
        "process high-water mark during the build, including the interpreter, torch and faiss and "
        "the memory-mapped input (n × dim × 4 bytes). *recall@k*: mean |found ∩ exact| / k over a "
        f"seeded sample of {meta['n_queries']:,} query rows (all rows when n ≤ "
        f"{meta['n_queries']:,}), exact neighbours by float32 GEMM against all rows. HNSW: one "
        "build, then one search per efSearch (its time = build + that search; one peak for the "
        "sweep); in the sampled sweep (`hnsw-ef`, built with the threads its `build_threads` "
        "names, `all` as the library builds it with faiss ≥ 1.15) only the recall queries are searched and the search time is scaled by n / queries "
        "(marked ~). Exact is not run above n = {meta['exact_max_n']:,} (n² extrapolation shown). "
        f"Case limit {meta['case_timeout_s']} s. Load: 1-minute load average read before and "
        "after each case. *speed ref s*: a fixed one-thread HNSW build (50,000 seeded Gaussian "
        "rows, 24-d, M 32, efConstruction 40) timed in the case's process just before its clock "
        "(lower = faster machine at that moment; `-` for cases run before it was recorded).",
        "",
        "Commands (the *cmd* column):",
        "",
    ]
    for i, key in enumerate(commands, 1):
        r = runs.get(key, {})
        m = r.get("machine") or {}
        mtext = f" {common.describe_machine(m)}" if m.get("machine") else ""
        if m.get("load_average_at_start"):
            mtext += f"; 1-minute load average {m['load_average_at_start'][0]:.1f} at the start"
        if m.get("load_average_at_end"):
            mtext += f", {m['load_average_at_end'][0]:.1f} at the end"
        mtext += "."
        lines.append(f"{i}. `{key[0]}` (started {key[1]}).{mtext}")
    lines.append("")
    gts = payload.get("groundtruth", {})
    if gts:
        lines += [
            "Ground truth (exact, per dataset and size): "
            + ", ".join(
                f"{key} {g['n_queries']:,} queries in {g['seconds']:.1f} s"
                for key, g in gts.items()
            )
            + ".",
            "",
        ]
    for dataset in sorted({c["dataset"] for c in cases}):
        sub = _ordered([c for c in cases if c["dataset"] == dataset], meta)
        lines += [f"### {dataset}: {meta['datasets'].get(dataset, '')}", ""]
        lines += _table(sub, k, cmd_index)
        lines += ["", f"**Verdicts ({dataset}).**", ""]
        lines += _verdicts(sub, k, dataset)
        lines.append("")
    lines.append("![kNN graph: time, peak memory and recall against n](results/knn_scale.png)")
    return "\n".join(lines) + "\n"


# colour per method family, line style per variant within it; HNSW efSearch in shades of green
STYLE = {
    "exact": ("black", "-", "s"),
    "ivf": ("tab:blue", "-", "o"),
    "ivf-np64": ("tab:blue", "--", "^"),
    "ivf-sqrt": ("tab:blue", ":", "v"),
    "faiss-ivf-full": ("tab:orange", "-", "D"),
    "hnsw": ("tab:green", "-", "P"),
    "dp-hnsw": ("darkgreen", "--", "*"),
    "hnsw-ef": ("tab:olive", ":", "x"),
    "cells": ("tab:red", "-", "o"),
    "cells-np32": ("tab:red", "--", "^"),
    "dp-auto": ("tab:purple", "--", "*"),
}


def _style(name: str, variant: str, shade: float = 1.0) -> dict[str, Any]:
    import matplotlib.colors as mcolors

    col, ls, marker = STYLE.get(variant, ("tab:gray", "-.", "x"))
    rgb = mcolors.to_rgb(col)
    rgb = tuple(1 - shade * (1 - c) for c in rgb)  # shade < 1: lighter
    return {"color": rgb, "ls": ls, "marker": marker, "ms": 5, "lw": 1.5, "label": name}


def _n_label(n: float, _pos: object = None) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k" if n >= 1e3 else f"{n:g}"


def plot(payload: dict, path: Path) -> None:
    """Time, peak RSS and recall@k against n (log-log for the first two), one line per setting
    (one memory line per HNSW build), one row of panels per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    meta, cases = payload["meta"], payload["cases"]
    datasets = sorted({c["dataset"] for c in cases})
    sizes = sorted({c["n"] for c in cases})
    efs = sorted({r["params"]["efSearch"] for c, r in measured(cases) if c["kind"] == "hnsw"})
    fig, axes = plt.subplots(len(datasets), 3, figsize=(17, 4.6 * len(datasets)), squeeze=False)
    legend: dict[str, Any] = {}
    for ax_row, dataset in zip(axes, datasets):
        sub = _ordered([c for c in cases if c["dataset"] == dataset], meta)
        time_s: dict[str, list] = {}
        for c, r in measured(sub):
            time_s.setdefault(setting(c, r), []).append((c, r))
        for name, pts in time_s.items():
            c0 = pts[0][0]
            shade = 1.0
            if c0["kind"] == "hnsw" and len(efs) > 1:
                shade = 0.35 + 0.65 * efs.index(pts[0][1]["params"]["efSearch"]) / (len(efs) - 1)
            st = _style(name, c0["variant"], shade)
            ns = [c["n"] for c, _ in pts]
            (line,) = ax_row[0].plot(ns, [r["seconds"] for _, r in pts], **st)
            ax_row[2].plot(ns, [r["recall"] for _, r in pts], **st)
            legend.setdefault(name, line)
        for variant in dict.fromkeys(c["variant"] for c in sub):
            pts = [c for c in sub if c["variant"] == variant and "peak_rss_mib" in c]
            if pts:
                st = _style(variant, variant)
                (line,) = ax_row[1].plot(
                    [c["n"] for c in pts], [c["peak_rss_mib"] for c in pts], **st
                )
                if pts[0]["kind"] == "hnsw":
                    legend.setdefault(f"{variant} (memory: whole efSearch sweep)", line)
        for c in sub:
            est = _extrapolated_exact(sub, c) if c["status"] == "skipped" else None
            if est:
                ax_row[0].plot([c["n"]], [est[0]], "x", color="black", ms=10, mew=2)
                ax_row[0].annotate(
                    "exact: n² extrapolation, not run", (c["n"], est[0]), fontsize=7,
                    ha="right", va="bottom",
                )  # fmt: skip
        ax_row[0].axhline(TARGET_SECONDS, color="red", lw=0.8, ls="--")
        ax_row[0].annotate(f"{TARGET_SECONDS:.0f} s target", (0.01, 0.93), xycoords="axes fraction",
                           color="red", fontsize=8)  # fmt: skip
        ax_row[2].axhline(TARGET_RECALL, color="red", lw=0.8, ls="--")
        ax_row[2].annotate(f"recall {TARGET_RECALL} target", (0.01, 0.02), xycoords="axes fraction",
                           color="red", fontsize=8)  # fmt: skip
        k, q = meta["k"], meta["n_queries"]
        panels = (
            ("build time", "seconds (log)", True),
            ("peak RSS", "MiB (log)", True),
            (f"recall@{k}", f"recall@{k} ({q:,}-query sample)", False),
        )
        for ax, (title, ylabel, logy) in zip(ax_row, panels):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(sizes))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(_n_label))
            if logy:
                ax.set_yscale("log")
                lo, hi = ax.get_ylim()
                few = hi / lo < 10  # less than a decade: label the minor ticks too
                ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"{y:g}"))
                ax.yaxis.set_minor_formatter(
                    FuncFormatter(lambda y, _p, few=few: f"{y:g}" if few else "")
                )
            ax.set_xlabel(f"n ({meta['dim']}-d float32 rows, log)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{dataset}: {title}")
            ax.grid(alpha=0.3, which="both")
    ncol = min(6, max(1, len(legend)))
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=ncol, fontsize=9)
    loads = [c["load_before"] for c in cases if "load_before" in c]
    load = f", 1-min load average {min(loads):.1f}-{max(loads):.1f}" if loads else ""
    cpus = next(
        (r["machine"].get("cpu_count") for r in meta.get("runs", []) if "machine" in r), "?"
    )
    fig.suptitle(
        f"kNN graph, k = {meta['k']}: build time, peak memory and recall against n "
        f"({cpus} CPUs{load})",
        fontsize=12,
    )
    rows_legend = (len(legend) + ncol - 1) // ncol
    fig.tight_layout(rect=(0, 0.02 + 0.035 * rows_legend, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
