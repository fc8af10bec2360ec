"""Demo step: the same selection on the Ray engine as in-process, and resumable embedding shards."""

from __future__ import annotations

import time
from typing import Any

TITLE = "Scale out with Ray: per-cluster selection equal to in-process, resumable shards"


def run(ctx: Any) -> list[str]:
    import importlib.util
    import json

    import numpy as np

    if importlib.util.find_spec("ray") is None:
        return ["skipped: Ray is not installed (pip install 'dataprune[ray]')"]
    import ray

    from dataprune.distributed import RayEngine, embed_shards, fit_with_engine, read_embeddings
    from dataprune.distributed.clustered import ClusteredFacilityLocation
    from dataprune.selection import SemDeDup

    if "embeddings" not in ctx.state:  # run on its own: build what step 10 leaves behind
        from dataprune.demo.data import load_humaneval_sft, sft_text
        from dataprune.embeddings import embed_texts

        records = load_humaneval_sft(random_state=ctx.random_state)
        X = embed_texts(
            [sft_text(r) for r in records], cache_dir=ctx.output_dir / "embedding-cache"
        )
        ctx.state.update(records=records, embeddings=X)
    records = ctx.state["records"]
    X = np.asarray(ctx.state["embeddings"], dtype=np.float32)
    seed = ctx.random_state

    started = not ray.is_initialized()
    t0 = time.perf_counter()
    engine = RayEngine(num_cpus=2).start()
    t_init = time.perf_counter() - t0
    try:
        lines = [f"local Ray started in {t_init:.1f} s ({engine.cluster_cpus()} CPUs)"]
        for name, make in (
            ("semdedup", lambda: SemDeDup(fraction=0.5, random_state=seed, n_clusters=8)),
            (
                "cluster_facility_location",
                lambda: ClusteredFacilityLocation(n_samples=40, random_state=seed, n_clusters=8),
            ),
        ):
            local = fit_with_engine(make(), X, engine="local")
            t = time.perf_counter()
            dist = fit_with_engine(make(), X, engine=engine)
            same = np.array_equal(local.selected_indices_, dist.selected_indices_)
            lines.append(
                f"{name}: {len(dist.selected_indices_)} of {len(X)} kept on Ray "
                f"({time.perf_counter() - t:.1f} s, 8 cluster tasks); "
                f"identical to in-process: {'yes' if same else 'NO'}"
            )
        shards = ctx.output_dir / "ray-shards"
        shards.mkdir(parents=True, exist_ok=True)
        half = len(records) // 2
        for i, part in enumerate((records[:half], records[half:])):
            (shards / f"sft-{i}.jsonl").write_text(
                "".join(
                    json.dumps({"id": r["id"], "prompt": r["prompt"], "response": r["response"]})
                    + "\n"
                    for r in part
                )
            )
        out = ctx.output_dir / "ray-embeddings"
        kw = {
            "text_fields": ["prompt", "response"],
            "id_field": "id",
            "model": ctx.state.get("shard_encoder"),  # None: MiniLM, loaded once per actor
            "engine": engine,
            "concurrency": 2,
            # no actor restarts in the demo (an interrupted run resumes from its shards anyway),
            # which also keeps Ray from printing its note about restartable actors
            "max_retries": 0,
        }
        t = time.perf_counter()
        first = embed_shards(shards, out, **kw)
        t_first = time.perf_counter() - t
        again = embed_shards(shards, out, **kw)
        _, _, E = read_embeddings(out)
        lines.append(
            f"embed_shards on 2 Ray actors: {first.n_rows} records in {first.n_shards} parquet "
            f"shards ({t_first:.1f} s, model loaded once per actor) -> {out.name}/"
        )
        lines.append(
            f"rerun resumes: {len(again.skipped)} of {again.n_shards} shards already finished, "
            f"{len(again.processed)} recomputed; embeddings {E.shape[0]} x {E.shape[1]}"
        )
        return lines
    finally:
        if started:
            engine.shutdown()
