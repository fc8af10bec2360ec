"""Demo step: curate the SFT set in one call (exact, fuzzy and semantic dedup, then a
facility-location coreset), with the HTML report comparing the kept set with random subsets."""

from __future__ import annotations

from typing import Any

TITLE = "Curate the SFT set: dedup (exact, fuzzy, semantic), a facility-location coreset, a report"
CORESET_SIZE = 40
RECIPE = {
    "name": "demo",
    "stages": [
        "exact_dedup",
        {"fuzzy_dedup": {"threshold": 0.7}},
        {"semantic_dedup": {"eps": 0.05}},
        {"select": {"method": "facility_location"}},
    ],
}


def run(ctx: Any) -> list[str]:
    import numpy as np

    import dataprune

    if "records" not in ctx.state:  # run on its own: build what step 10 leaves behind
        from dataprune.demo.data import load_humaneval_sft

        ctx.state["records"] = load_humaneval_sft(random_state=ctx.random_state)
    records = ctx.state["records"]
    out = ctx.output_dir / "sft_coreset.jsonl"
    res = dataprune.curate(
        records,
        RECIPE,
        n_samples=CORESET_SIZE,
        prompt_field="prompt",
        response_field="response",
        id_field="id",
        flag_field="injected_duplicate_of",
        encoder=ctx.state.get("encoder"),
        output=out,
        random_state=ctx.random_state,
    )
    injected = np.array(["injected_duplicate_of" in r for r in records])
    dropped_dups = {f["stage"]: f["n_dropped"] for f in res.funnel if f["kind"].endswith("dedup")}
    caught = int((injected & (res.duplicate_of != None)).sum())  # noqa: E711 - object array
    comps = {c.name: c for c in res.comparisons}  # what the report shows
    ctx.state.update(curation=res)
    lines = [
        f"{res.summary()} -> {out}",
        "  duplicates dropped: "
        + ", ".join(f"{k} {v}" for k, v in dropped_dups.items())
        + f"; injected copies caught: {caught}/{int(injected.sum())}",
    ]
    if "coverage" in comps:
        c = comps["coverage"]
        lo, hi = c.random_range
        lines.append(
            f"  coverage (mean cosine to the nearest kept record, higher = better): kept "
            f"{c.kept:.3f}, random subsets of {CORESET_SIZE} {c.random_mean:.3f} "
            f"(95% range {lo:.3f}-{hi:.3f}): {c.verdict}"
        )
    if "flagged_share" in comps:
        c = comps["flagged_share"]
        lines.append(
            f"  injected copies in the kept set: {c.kept:.1%} vs {c.random_mean:.1%} in random "
            "subsets"
        )
    lines.append(f"  status of every record -> {out}.status.parquet; report -> {out}.report.html")
    return lines
