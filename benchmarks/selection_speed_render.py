"""The markdown section of ``benchmarks/selection_speed.py``: the table, the summary and the
target verdicts, the ratios and the notes, every sentence computed from the saved rows."""

from __future__ import annotations

import numpy as np

from benchmarks.selection_speed_worker import DIM, FRACTION, N_NEIGHBORS, SEED

COMMAND = "python benchmarks/selection_speed.py"
TARGET_SPEEDUP = 3.0  # facility location vs apricot sparse on the same kNN graph, end to end
TARGET_DENSE = 5.0  # facility location vs apricot's dense mode, end to end, at 10k and 20k rows
MEMORY_LIMIT_GIB = 24

LABELS = {
    "kcenter": "dataprune k-center (auto: batched)",
    "kcenter_full": "dataprune k-center (full matvec)",
    "reference_kcenter": "reference k-center (DeepCore loop, numpy)",
    "facility_location": "dataprune facility location (kNN, lazy)",
    "apricot_dense": "apricot FL dense (precomputed clipped cosine)",
    "apricot_dense_cosine": "apricot FL dense (metric='cosine', as typed)",
    "apricot_sparse_documented": "apricot FL sparse (n_neighbors=32, documented)",
    "knn_graph": "shared 32-NN graph (exact matrix products <= 100k, faiss IVF above)",
    "facility_location_graph": "dataprune FL lazy greedy on the shared graph",
    "apricot_sparse_int32": "apricot FL sparse on the shared graph (int32 CSR workaround)",
    "prototypes": "dataprune prototypes (faiss k-means)",
    "semdedup": "dataprune SemDeDup (k-means + per-cluster duplicate scan)",
}


def _time(r: dict) -> float | None:
    return r.get("wall_s") if "extrapolated_wall_s" not in r else r["extrapolated_wall_s"]


def render_md(payload: dict) -> str:
    """The markdown section, computed from the results JSON (``{"meta": ..., "rows": ...}``)."""
    rows, meta = payload["rows"], payload["meta"]
    by = {(r["method"], r["n"]): r for r in rows}

    def ratio(peer: str, ours: str, n: int) -> str:
        a, b = by.get((peer, n), {}), by.get((ours, n), {})
        ta, tb = _time(a), _time(b)
        return f"{ta / tb:.1f}x" if ta and tb and "error" not in a else "-"

    lines = [
        "## Selection speed and scale (k-center greedy, facility location)",
        "",
        f"Produced by `{COMMAND}` ({meta['date']}; parts: {', '.join(meta['parts'])}). "
        + _machine_text(rows, meta)
        + " Peers and ours ran back to back in the same run"
        + (
            ", except the rows re-run on their own (listed at the end)"
            if meta.get("reruns")
            else ""
        )
        + ". Data: synthetic L2-normalised "
        f"float32 {DIM}-d hierarchical Gaussian mixture (seed {SEED}), {FRACTION:.0%} selected. "
        "Each method ran in its own process; *peak RSS* is the process high-water mark during "
        "the call (it includes the interpreter and imported libraries, "
        + _baseline_text(rows)
        + ", and the memory-mapped input once touched); *(added)* is the growth during the call.",
        "",
        "| n | method | wall s | peak RSS MiB (added) | output check | load |",
        "|---:|---|---:|---:|---|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["n"], list(LABELS).index(r["method"]))):
        t = _time(r)
        if "skipped" in r:
            wall, check = "skipped", r["skipped"]
        elif "error" in r and "wall_s" not in r:
            wall, check = "failed", r["error"]
        else:
            wall = f"{t:.1f}" if t is not None else "-"
            if "extrapolated_wall_s" in r:
                wall = f"~{t:.0f} (est.)"
            elif len(r.get("wall_s_runs", [])) > 1:
                wall += f" (median; {', '.join(f'{x:.1f}' for x in r['wall_s_runs'])})"
            check = _check_text(r)
        rss = r.get("peak_rss_mib", "-")
        if "baseline_rss_mib" in r:
            rss = f"{r['peak_rss_mib']:,.0f} (+{r['peak_rss_mib'] - r['baseline_rss_mib']:,.0f})"
        lines.append(
            f"| {r['n']:,} | {LABELS[r['method']]} | {wall} | {rss} | {check} | "
            f"{r.get('load_avg', '-')} |"
        )
    lines = lines[:3] + _summary(rows) + lines[3:]
    lines += ["", "**Ratios (peer time / dataprune time, same run):**", ""]
    for n in sorted({r["n"] for r in rows}):
        parts = []
        if ("reference_kcenter", n) in by and ("kcenter", n) in by:
            parts.append(
                f"k-center vs the DeepCore-style reference "
                f"{ratio('reference_kcenter', 'kcenter', n)}"
            )
        if ("kcenter_full", n) in by and ("kcenter", n) in by:
            parts.append(f"batched vs full-matvec k-center {ratio('kcenter_full', 'kcenter', n)}")
        for peer in ("apricot_dense", "apricot_dense_cosine"):
            if (peer, n) in by and ("facility_location", n) in by and "wall_s" in by[(peer, n)]:
                parts.append(
                    f"facility location (incl. its kNN graph) vs {LABELS[peer]} "
                    f"{ratio(peer, 'facility_location', n)}"
                )
        g, ap, fl = by.get(("knn_graph", n)), by.get(("apricot_sparse_int32", n)), None
        fl = by.get(("facility_location_graph", n))
        if g and ap and fl and "wall_s" in ap and "wall_s" in fl:
            parts.append(
                "on the same kNN graph, apricot's greedy vs ours "
                f"{ap['wall_s'] / fl['wall_s']:.1f}x"
            )
            end = by.get(("facility_location", n), {})
            if "wall_s" in end:
                parts.append(
                    "end to end (graph + greedy) apricot sparse vs our facility location "
                    f"{(g['wall_s'] + ap['wall_s']) / end['wall_s']:.1f}x"
                )
        if parts:
            lines.append(f"- n = {n:,}: " + "; ".join(parts) + ".")
    notes = _notes(rows, meta.get("part_minutes", {}), meta.get("reruns", []))
    lines += ["", *notes]
    return "\n".join(lines).rstrip() + "\n"


def _case_loads(rows: list[dict]) -> list[float]:
    return [r["load_avg"] for r in rows if isinstance(r.get("load_avg"), (int, float))]


def _cpus(meta: dict) -> int | None:
    return meta.get("cpu_count") or (meta.get("machine") or {}).get("cpu_count")


def _machine_text(rows: list[dict], meta: dict) -> str:
    loads = _case_loads(rows)
    cpus = _cpus(meta)
    machine = meta.get("machine")
    text = f"Machine: {cpus} CPUs" if cpus else "Machine: CPU count not recorded in this run's JSON"
    if loads:
        text += (
            f"; the 1-minute load average at the start of each case (last column) ranged "
            f"{min(loads):.1f}-{max(loads):.1f}"
        )
        if cpus:
            above = sum(x > cpus for x in loads)
            text += f" and was above the CPU count for {above} of {len(loads)} cases"
    if isinstance(machine, dict) and machine.get("load_average_at_start"):
        end = machine.get("load_average_at_end")
        text += f"; 1-minute load average {machine['load_average_at_start'][0]:.1f} at the start"
        text += f" of the last run and {end[0]:.1f} at its end" if end else " of the last run"
    elif not loads:
        text += "; load not recorded in this run's JSON"
    return text + "."


def _baseline_text(rows: list[dict]) -> str:
    groups: dict[str, list[float]] = {"dataprune": [], "apricot/numba": []}
    for r in rows:
        if "baseline_rss_mib" in r:
            key = "apricot/numba" if r["method"].startswith("apricot") else "dataprune"
            groups[key].append(r["baseline_rss_mib"])
    parts = [
        f"{min(v):,.0f}-{max(v):,.0f} MiB before the call for {k}"
        if min(v) != max(v)
        else f"{min(v):,.0f} MiB before the call for {k}"
        for k, v in groups.items()
        if v
    ]
    return " and ".join(parts) if parts else "baseline not recorded"


def _check_text(r: dict) -> str:
    bits = []
    if "radius_exact" in r:
        bits.append(f"radius {r['radius_exact']:.4f}")
    elif r.get("radius") is not None and r.get("steps_done") == r.get("k", 0) - 1:
        bits.append(f"radius {r['radius']:.4f} (the selector's exact running minimum distances)")
    for key, who in (("vs_reference", "the reference"), ("vs_dataprune", "dataprune")):
        if key in r:
            c = r[key]
            if c["same_order"]:
                bits.append(f"same picks in the same order as {who}")
            else:
                bits.append(
                    f"{100 * c['same_set_fraction']:.1f}% same picks as {who}; order first "
                    f"differs at step {c['first_swap_step']}, a float32 near-tie (the two "
                    f"candidates' distances differ by {c['first_swap_gap']:.1e})"
                )
    if "same_order_as_dataprune" in r:
        bits.append(
            "identical selection to dataprune"
            if r["same_order_as_dataprune"]
            else f"{100 * r.get('same_picks_as_dataprune', 0):.1f}% same picks as dataprune"
        )
    if "objective_dense" in r:
        bits.append(f"dense f(S) {r['objective_dense']:.1f}")
    if "objective_knn" in r:
        bits.append(f"kNN-graph f(S) {r['objective_knn']:.1f}")
    if "overlap_with_apricot_dense" in r:
        bits.append(f"{100 * r['overlap_with_apricot_dense']:.1f}% same picks as apricot dense")
    if "timings" in r:
        t = r["timings"]
        bits.append(f"kNN {t['knn_graph_s']:.0f} s + greedy {t['lazy_greedy_s']:.0f} s")
    ki = r.get("knn_info") or {}
    if ki.get("method") == "auto":
        c = ki.get("cells", {})
        bits.append(
            f"kNN graph: auto kept {ki.get('chosen')} (cells' sampled recall "
            f"{c.get('sample_recall', float('nan')):.3f})"
        )
    elif ki.get("method"):
        bits.append(f"kNN graph: {ki['method']}")
    if "per_call_fixed_s" in r:
        bits.append(f"incl. ~{r['per_call_fixed_s']:.0f} s numba compilation per fit call")
    if "note" in r:
        bits.append(r["note"])
    if "full_run_distance_matrix_gib" in r:
        bits.append(f"full run needs a {r['full_run_distance_matrix_gib']} GiB distance matrix")
    if "error" in r:
        bits.append(r["error"])
    return "; ".join(bits) or "-"


def _summary(rows: list[dict]) -> list[str]:
    """Headline findings, computed from the rows (nothing hard-coded)."""
    by = {(r["method"], r["n"]): r for r in rows}
    sizes = sorted({r["n"] for r in rows})
    out = ["", "**Summary.**", ""]
    big = max(sizes, default=0)
    fl, pr = by.get(("facility_location", big), {}), by.get(("prototypes", big), {})
    if "wall_s" in fl:
        t = fl.get("timings", {})
        line = (
            f"- {big:,} x {DIM}: facility location finished in {fl['wall_s'] / 60:.0f} min "
            f"(kNN graph {t.get('knn_graph_s', 0) / 60:.0f} min, lazy greedy "
            f"{t.get('lazy_greedy_s', 0):.0f} s) with peak RSS {fl['peak_rss_mib'] / 1024:.1f} GiB"
        )
        if "wall_s" in pr:
            line += (
                f"; prototypes in {pr['wall_s'] / 60:.0f} min with peak RSS "
                f"{pr['peak_rss_mib'] / 1024:.1f} GiB"
            )
        sd = by.get(("semdedup", big), {})
        if "wall_s" in sd:
            line += (
                f"; SemDeDup in {sd['wall_s'] / 60:.1f} min ({sd['n_duplicates']:,} duplicates) "
                f"with peak RSS {sd['peak_rss_mib'] / 1024:.1f} GiB"
            )
        kc = by.get(("kcenter", big), {})
        peaks = [x["peak_rss_mib"] for x in (fl, pr, sd, kc) if "peak_rss_mib" in x]
        verdict = "met" if max(peaks) <= MEMORY_LIMIT_GIB * 1024 else "NOT met"
        out.append(line + f" (limit: {MEMORY_LIMIT_GIB} GiB: {verdict}).")
        goals = [(fl, "facility location", 10), (kc, "k-center greedy", 10), (sd, "SemDeDup", 5)]
        verdicts = []
        for r, what, minutes in goals:
            if "wall_s" in r:
                ok = "met" if r["wall_s"] <= minutes * 60 else "NOT met"
                extra = (
                    f", covering radius {r['radius']:.4f}, peak RSS {r['peak_rss_mib'] / 1024:.1f} GiB"
                    if what.startswith("k-center") and r.get("radius") is not None
                    else ""
                )
                verdicts.append(
                    f"{what} {r['wall_s'] / 60:.1f} min{extra} (<= {minutes} min: **{ok}**)"
                )
            elif r:
                verdicts.append(f"{what} not measured ({r.get('skipped') or r.get('error')})")
        if verdicts:
            out.append(f"- Targets at {big:,} rows: " + "; ".join(verdicts) + ".")
    per_row = [
        f"{r['n']:,}: {(r['peak_rss_mib'] - r['baseline_rss_mib']) * 2**20 / r['n']:,.0f}"
        for r in sorted(rows, key=lambda r: r["n"])
        if r["method"] == "facility_location" and "peak_rss_mib" in r
    ]
    if per_row:
        dense = [
            f"{r['n']:,}: {r['peak_rss_mib'] / 1024:.1f} GiB"
            for r in sorted(rows, key=lambda r: r["n"])
            if r["method"] == "apricot_dense" and "peak_rss_mib" in r
        ]
        dense_skipped = [
            f"{r['n'] ** 2 * 8 / 2**30:,.0f} GiB at {r['n']:,}"
            for r in sorted(rows, key=lambda r: r["n"])
            if r["method"] == "apricot_dense" and "skipped" in r
        ]
        out.append(
            "- Memory added during facility location, in bytes per row: "
            + ", ".join(per_row)
            + f" (including the memory-mapped input, {DIM * 4:,} bytes per row, and the faiss "
            "index's copy of it)"
            + ("; apricot's dense mode, peak RSS at " + ", ".join(dense) if dense else "")
            + (
                "; its n x n float64 similarity matrix alone would take "
                + ", ".join(dense_skipped)
                + " (not run)"
                if dense_skipped
                else ""
            )
            + "."
        )
    q = []
    for n in sizes:
        a, b = by.get(("facility_location", n), {}), by.get(("apricot_dense", n), {})
        if "objective_dense" in a and "objective_dense" in b:
            q.append(f"{100 * a['objective_dense'] / b['objective_dense']:.2f}% at {n:,}")
    if q:
        out.append(
            "- Output quality: on the exact dense objective, our kNN-graph selection reaches "
            + ", ".join(q)
            + " of apricot's dense greedy (which sees every pair)."
        )
    out += _target_lines(by, sizes)
    kc, same_r, diff_r, no_r = [], [], [], []
    for n in sizes:
        ours, ref = by.get(("kcenter", n), {}), by.get(("reference_kcenter", n), {})
        if "wall_s" in ours and _time(ref):
            est = " (est.)" if "extrapolated_wall_s" in ref else ""
            kc.append(f"{_time(ref) / ours['wall_s']:.0f}x at {n:,}{est}")
        if "radius_exact" in ours and "radius_exact" in ref:
            if ours["radius_exact"] == ref["radius_exact"]:
                same_r.append(f"{n:,} ({ours['radius_exact']:.4f})")
            else:
                diff_r.append(f"{n:,} ({ours['radius_exact']:.4f} vs {ref['radius_exact']:.4f})")
        elif "radius_exact" in ours and ref:
            no_r.append(f"{n:,}")
    if kc:
        mem = [
            f"{ref['full_run_distance_matrix_gib']} GiB at {n:,}"
            for n in sizes
            if "full_run_distance_matrix_gib" in (ref := by.get(("reference_kcenter", n), {}))
        ]
        radius = []
        if same_r:
            radius.append("covering radius equal to the reference's at " + ", ".join(same_r))
        if diff_r:
            radius.append("covering radius DIFFERENT from the reference's at " + ", ".join(diff_r))
        if no_r:
            radius.append(
                "radius not compared at " + ", ".join(no_r) + " (the reference ran only its first "
                "steps there)"
            )
        out.append(
            "- k-center greedy vs the DeepCore-style reference: "
            + ", ".join(kc)
            + " faster"
            + "".join("; " + x for x in radius)
            + (
                "; the reference's full (k-1) x n distance matrix would take " + ", ".join(mem)
                if mem
                else ""
            )
            + "."
        )
    return out if len(out) > 3 else []


def _target_lines(by: dict, sizes: list[int]) -> list[str]:
    """The >= 3x facility-location target, judged per size and per comparison."""

    def met(x: float, target: float = TARGET_SPEEDUP) -> str:
        return "met" if x >= target else "NOT met"

    per_size, e2e_equal, e2e_dense, greedy_all = [], [], [], []
    for n in sizes:
        ap, ours = (
            by.get(("apricot_sparse_int32", n), {}),
            by.get(("facility_location_graph", n), {}),
        )
        g, f = by.get(("knn_graph", n), {}), by.get(("facility_location", n), {})
        d = by.get(("apricot_dense", n), {})
        bits = []
        if "wall_s" in ap and "wall_s" in ours:
            agree = (
                "identical selection"
                if ap.get("same_order_as_dataprune")
                else f"{100 * ap.get('same_picks_as_dataprune', 0):.1f}% same picks"
            )
            greedy = ap["wall_s"] / ours["wall_s"]
            greedy_all.append(f"{greedy:.1f}x at {n:,}")
            bits.append(
                f"vs apricot sparse on the same kNN graph ({agree}): greedy alone {greedy:.1f}x "
                f"({met(greedy)})"
            )
            if "wall_s" in g and "wall_s" in f:
                e2e = (g["wall_s"] + ap["wall_s"]) / f["wall_s"]
                e2e_equal.append((n, e2e))
                bits[-1] += f", end to end (graph + greedy) {e2e:.1f}x (**{met(e2e)}**)"
        if "wall_s" in d and "wall_s" in f:
            runs = d.get("ratio_runs")
            e2e = float(np.median(runs)) if runs else d["wall_s"] / f["wall_s"]
            spread = (
                f" (median of {len(runs)} paired runs, range {min(runs):.2f}-{max(runs):.2f}x)"
                if runs and len(runs) > 1
                else ""
            )
            e2e_dense.append((n, e2e))
            overlap = f.get("overlap_with_apricot_dense")
            objective = (
                f", our dense objective {100 * f['objective_dense'] / d['objective_dense']:.2f}% "
                "of apricot's"
                if f.get("objective_dense") and d.get("objective_dense")
                else ""
            )
            bits.append(
                "vs apricot dense"
                + (f" ({100 * overlap:.1f}% same picks{objective})" if overlap is not None else "")
                + f": end to end {e2e:.2f}x{spread} (>= {TARGET_DENSE:g}x: **{met(e2e, TARGET_DENSE)}**;"
                f" load {f.get('load_avg', float('nan')):.1f} / {d.get('load_avg', float('nan')):.1f}"
                " at the start of ours / apricot's)"
            )
        elif "skipped" in d:
            bits.append(f"apricot dense not run ({d['skipped']})")
        if not bits and "wall_s" in f:
            bits.append("no apricot case was run at this size")
        if bits:
            per_size.append(f"  - n = {n:,}: " + "; ".join(bits) + ".")
    if not per_size:
        return []
    lines = [
        f"- Targets (ratio = apricot time / ours, same run): facility location >= "
        f"{TARGET_DENSE:g}x faster than apricot's dense mode end to end at 10,000 and 20,000 rows "
        f"on an idle machine; >= {TARGET_SPEEDUP:g}x faster than apricot at equal output (its "
        "sparse mode on our kNN graph). Per size:",
        *per_size,
    ]
    dense_differs = any(
        by.get(("facility_location", n), {}).get("overlap_with_apricot_dense", 1.0) < 1.0
        for n, _ in e2e_dense
    )
    if e2e_equal:
        hit = [n for n, x in e2e_equal if x >= TARGET_SPEEDUP]
        miss = [n for n, x in e2e_equal if x < TARGET_SPEEDUP]
        lines.append(
            "  - End to end against apricot on the same kNN graph the target is met at "
            + (", ".join(f"{n:,}" for n in hit) if hit else "no size")
            + " and **NOT met at "
            + (", ".join(f"{n:,}" for n in miss) if miss else "no size")
            + "** ("
            + ", ".join(f"{x:.1f}x at {n:,}" for n, x in e2e_equal)
            + ")"
            + (
                "; against apricot dense"
                + (" (a different selection from ours)" if dense_differs else "")
                + f", the {TARGET_DENSE:g}x target is met at "
                + (", ".join(f"{n:,}" for n, x in e2e_dense if x >= TARGET_DENSE) or "no size")
                + " ("
                + ", ".join(f"{x:.1f}x at {n:,}" for n, x in e2e_dense)
                + ")"
                if e2e_dense
                else ""
            )
            + "."
        )
    share = [
        f"{100 * f['timings']['knn_graph_s'] / f['wall_s']:.0f}% at {n:,}"
        for n in sizes
        if "timings" in (f := by.get(("facility_location", n), {})) and f.get("wall_s")
    ]
    if share:
        lines.append(
            "  - Share of our facility-location time spent building the kNN graph: "
            + ", ".join(share)
            + "."
        )
    return lines


def _notes(rows: list[dict], durations: dict, reruns: list[str] | None = None) -> list[str]:
    notes = []
    counts: dict[str, int] = {}
    for r in reruns or []:
        counts[r] = counts.get(r, 0) + 1
    for r, c in counts.items():
        notes.append(
            "- Re-run on their own with `--methods` (after a code change), later than the other "
            f"rows{f' ({c} times)' if c > 1 else ''}: {r}."
        )
    doc = [r for r in rows if r["method"] == "apricot_sparse_documented"]
    if doc:
        err = doc[0].get("error", "no error")
        notes.append(
            f"- apricot's documented sparse mode (`FacilityLocationSelection(k, "
            f"n_neighbors={N_NEIGHBORS})`) "
            + (f"fails with `{err}`" if "error" in doc[0] else "ran without error")
            + "; the `apricot_sparse_int32` rows pass it our kNN graph as a precomputed CSR "
            "matrix with int32 indices instead."
        )
    gaps = sorted(
        c["first_swap_gap"]
        for r in rows
        for key in ("vs_reference", "vs_dataprune")
        if "first_swap_gap" in (c := r.get(key, {}))
    )
    notes.append(
        "- k-center greedy: `batched` applies new centres to all rows 256 at a time with a "
        "matrix-matrix product and keeps only the ~2k candidate rows exact in between. All three "
        "implementations compute float32 distances with different summation orders; where two "
        "outputs' orders differ, the checks above give the shared picks, the first differing "
        "step and the float64 distance gap between the two candidates there"
        + (
            f" (measured gaps: {', '.join(f'{g:.1e}' for g in gaps)})"
            if gaps
            else " (no order differed)"
        )
        + ", and the exact covering radius of each output."
    )
    notes.append(
        "- Facility location objectives: *dense f(S)* is the exact objective with clipped cosine "
        "over all pairs (computed blockwise with a flat index); *kNN-graph f(S)* is the objective "
        f"on the {N_NEIGHBORS}-NN graph that both kNN-based selectors optimise."
    )
    if durations:
        notes.append(
            "- Part durations (minutes, including data generation and output checks): "
            + ", ".join(f"{k}: {v}" for k, v in durations.items())
            + ". The parts can run as separate jobs (`--parts 1m`)."
        )
    return notes
