"""Demo step: SemDeDup, then a facility-location coreset of the SFT set, compared with random."""

from __future__ import annotations

from typing import Any

TITLE = "Select from the SFT set: SemDeDup, then a facility-location coreset vs random"
CORESET_SIZE = 40


def _coverage(X: Any, kept: Any) -> float:
    """Mean over all records of the cosine similarity to the nearest kept record."""
    import numpy as np

    return float(np.mean((X @ X[kept].T).max(axis=1)))


def run(ctx: Any) -> list[str]:
    import numpy as np

    import dataprune
    from dataprune.io import write_records

    if "embeddings" not in ctx.state:  # run on its own: build what step 10 leaves behind
        from dataprune.demo.data import load_humaneval_sft, sft_text
        from dataprune.embeddings import embed_texts

        records = load_humaneval_sft(random_state=ctx.random_state)
        X = embed_texts(
            [sft_text(r) for r in records], cache_dir=ctx.output_dir / "embedding-cache"
        )
        ctx.state.update(records=records, embeddings=X)
    records, X = ctx.state["records"], np.asarray(ctx.state["embeddings"], dtype=np.float32)
    seed = ctx.random_state

    dedup = dataprune.select(
        records,
        method="semdedup",
        fraction=1.0,
        embeddings=X,
        random_state=seed,
        prompt_field="prompt",
        response_field="response",
    )
    groups = dedup.details["duplicate_groups"]
    dup_rows = {i for g in groups for i in g[1:]}
    injected = [i for i, r in enumerate(records) if "injected_duplicate_of" in r]
    caught = sum(i in {j for g in groups for j in g} for i in injected)
    survivors = np.flatnonzero(
        np.array([i not in dup_rows for i in range(len(records))], dtype=bool)
    )

    unique_records = [records[i] for i in survivors.tolist()]
    fl = dataprune.select(
        unique_records,
        method="facility_location",
        n_samples=CORESET_SIZE,
        embeddings=X[survivors],
        random_state=seed,
    )
    rnd = dataprune.select(
        unique_records, method="random", n_samples=CORESET_SIZE, random_state=seed
    )
    kc = dataprune.select(
        unique_records,
        method="kcenter",
        n_samples=CORESET_SIZE,
        embeddings=X[survivors],
        random_state=seed,
    )
    Xu = X[survivors]
    cov = {name: _coverage(Xu, r.indices) for name, r in (("fl", fl), ("random", rnd), ("kc", kc))}
    rnd_cov = [
        _coverage(Xu, np.random.default_rng(s).choice(len(Xu), CORESET_SIZE, replace=False))
        for s in range(20)
    ]
    out = write_records(fl.dataset, ctx.output_dir / "sft_coreset.jsonl")
    scores = fl.write_scores(ctx.output_dir / "sft_coreset.scores.parquet")
    ctx.state.update(coreset=fl, dedup=dedup)
    largest = groups[0] if groups else []
    return [
        f"SemDeDup (eps=0.05) on {len(records)} records: {dedup.details['n_duplicates']} "
        f"duplicates in {len(groups)} groups; injected copies caught: {caught}/{len(injected)}",
        (
            "  largest group: " + " ~ ".join(records[i]["id"] for i in largest)
            if largest
            else "  no duplicate groups"
        ),
        f"facility-location coreset of {CORESET_SIZE} from the {len(survivors)} unique records "
        f"-> {out}",
        f"coverage (mean cosine to the nearest kept record, higher = better): facility location "
        f"{cov['fl']:.3f}, k-center {cov['kc']:.3f}, random {cov['random']:.3f} "
        f"(random over 20 seeds: {np.mean(rnd_cov):.3f} +/- {np.std(rnd_cov):.3f})",
        f"per-record scores (gain, coverage, rank) -> {scores}",
    ]
