"""Demo step: embed an SFT-style set and find near-duplicates."""

from __future__ import annotations

import time
from typing import Any

TITLE = "Embed an SFT set (HumanEval problems) and detect near-duplicates"
THRESHOLD = 0.95


def run(ctx: Any) -> list[str]:
    from dataprune.atomic import atomic_write_json
    from dataprune.demo.data import load_humaneval_sft, sft_text
    from dataprune.embeddings import embed_texts
    from dataprune.io import write_records
    from dataprune.models import load_encoder, resolve_encoder
    from dataprune.near_duplicates import duplicate_groups, near_duplicate_pairs

    records = load_humaneval_sft(random_state=ctx.random_state)
    n_injected = sum("injected_duplicate_of" in r for r in records)
    data_path = write_records(records, ctx.output_dir / "demo_sft.jsonl")
    texts = [sft_text(r) for r in records]
    resolved = resolve_encoder()
    t0 = time.perf_counter()
    encoder = load_encoder()
    X = embed_texts(texts, encoder, cache_dir=ctx.output_dir / "embedding-cache")
    t_embed = time.perf_counter() - t0
    pairs = near_duplicate_pairs(X, threshold=THRESHOLD)
    groups = duplicate_groups(len(records), pairs)
    ids = [r["id"] for r in records]
    id_pos = {rid: i for i, rid in enumerate(ids)}
    pair_set = {(p.i, p.j) for p in pairs}
    recovered = 0
    for i, r in enumerate(records):
        orig = r.get("injected_duplicate_of")
        if orig is not None:
            j = id_pos[orig]
            recovered += (min(i, j), max(i, j)) in pair_set
    injected_idx = {i for i, r in enumerate(records) if "injected_duplicate_of" in r}
    natural = [p for p in pairs if p.i not in injected_idx and p.j not in injected_idx]
    report = {
        "threshold": THRESHOLD,
        "n_records": len(records),
        "pairs": [{"a": ids[p.i], "b": ids[p.j], "cosine": round(p.similarity, 4)} for p in pairs],
        "groups": [[ids[i] for i in g] for g in groups],
    }
    atomic_write_json(ctx.output_dir / "near_duplicates.json", report)
    ctx.state.update(
        records=records, texts=texts, embeddings=X, encoder=encoder, duplicate_groups=groups
    )
    lines = [
        f"{len(records) - n_injected} HumanEval problems + {n_injected} injected edited copies -> {data_path}",
        f"embedded {len(texts)} texts with {resolved.name} [{resolved.source}] in {t_embed:.1f} s "
        f"(dim {X.shape[1]}, cached)",
        f"near-duplicate pairs (cosine >= {THRESHOLD}): {len(pairs)} in {len(groups)} groups; "
        f"injected copies recovered: {recovered}/{n_injected}; natural pairs among the originals: {len(natural)}",
    ]
    for p in natural[:3]:
        lines.append(f"  natural pair: {ids[p.i]} ~ {ids[p.j]} (cosine {p.similarity:.3f})")
    lines.append(f"details -> {ctx.output_dir / 'near_duplicates.json'}")
    return lines
