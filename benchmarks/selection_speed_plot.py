"""The plot of ``benchmarks/selection_speed.py``: wall time and peak RSS against n, one line per
method (log-log), estimated times marked."""

from __future__ import annotations

from pathlib import Path

from benchmarks.selection_speed_render import LABELS, _case_loads, _cpus, _time


def _plot_title(rows: list[dict], meta: dict) -> str:
    """The figure title: the machine as the JSON records it (or that it does not)."""
    cpus, loads = _cpus(meta), _case_loads(rows)
    where = f"{cpus} CPUs" if cpus else "CPU count not recorded"
    if loads:
        where += f", 1-min load {min(loads):.1f}-{max(loads):.1f} at case start"
    return f"dataprune selection speed/scale vs peers ({where})"


def plot(rows: list[dict], meta: dict, path: Path) -> None:
    """Write the PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for method, style in (
        ("kcenter", "o-"),
        ("kcenter_full", "o--"),
        ("reference_kcenter", "s--"),
        ("facility_location", "^-"),
        ("apricot_dense", "v--"),
        ("facility_location_graph", "^:"),
        ("apricot_sparse_int32", "d--"),
        ("prototypes", "x-"),
        ("semdedup", "*-"),
    ):
        pts = sorted(
            (r["n"], _time(r), r.get("peak_rss_mib"), "extrapolated_wall_s" in r)
            for r in rows
            if r["method"] == method and _time(r) is not None and "error" not in r
        )
        if not pts:
            continue
        ns = [p[0] for p in pts]
        ax1.plot(ns, [p[1] for p in pts], style, label=LABELS[method])
        for n, t, _, est in pts:
            if est:
                ax1.annotate("est.", (n, t), fontsize=7)
        mem = [(p[0], p[2]) for p in pts if p[2] and not p[3]]
        if mem:
            ax2.plot([m[0] for m in mem], [m[1] for m in mem], style, label=LABELS[method])
    for ax, title, ylabel in (
        (ax1, "Wall time (10% selected)", "seconds"),
        (ax2, "Peak RSS", "MiB"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n (384-d float32 rows)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    ax2.axhline(24 * 1024, color="red", lw=0.8)
    ax2.annotate("24 GiB", (1e4, 24 * 1024 * 1.1), color="red", fontsize=8)
    ax1.legend(fontsize=7)
    fig.suptitle(_plot_title(rows, meta), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
