"""Embedding throughput: dataprune's embedding paths against sentence-transformers' own ``encode``.

The encoder is all-MiniLM-L6-v2 (the library default). Every condition embeds the same texts in the
same process, one after another, with the order rotated every round, on torch with
``--threads`` threads (default 1: records/s is then records/s per core). Conditions:

* sentence-transformers ``model.encode(texts, batch_size=b, normalize_embeddings=True)`` at
  several batch sizes; the best of them is the peer;
* ``dataprune.embeddings.embed_texts(texts, model, cache=False)`` at its default batch size
  (``DEFAULT_BATCH_SIZE``): the in-process path (length-sorted chunks, validation,
  normalisation);
* ``embed_texts`` with its on-disk cache, cold (every chunk encoded and written) and warm (read
  back): the cache's write overhead and what a re-run costs;
* ``dataprune.distributed.embed_shards`` over the texts split into 4 JSONL shards (local engine):
  shard reading, per-shard manifests and parquet output;
* sentence-transformers with the weights in bfloat16 (``model.to(torch.bfloat16)``): what the
  CPU's bf16 units give, with the cosine similarity of its embeddings to the float32 ones.

Two text sets from ``../shared/data``: short questions (SQuAD v2 dev) and SFT records (Alpaca
demo: instruction, input and output joined; the encoder truncates at 256 tokens).

Run: ``.venv/bin/python benchmarks/embedding_speed.py`` (``--render-only`` re-renders).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

NAME = "embedding_speed"
ST_BATCHES = (8, 16, 32, 64, 128)
SQUAD = common.SHARED_DATA / "squad_v2" / "dev-v2.0.json"
ALPACA = common.SHARED_DATA / "alpaca" / "alpaca_en_demo.json"


def text_sets(n_short: int, n_records: int) -> dict[str, list[str]]:
    squad = json.loads(SQUAD.read_text(encoding="utf-8"))
    questions = [
        qa["question"].strip()
        for art in squad["data"]
        for para in art["paragraphs"]
        for qa in para["qas"]
    ]
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    records = [
        "\n\n".join(x for x in (r["instruction"], r.get("input", ""), r["output"]) if x.strip())
        for r in rows
    ]
    return {
        "short questions (SQuAD v2)": questions[:n_short],
        "SFT records (Alpaca)": records[:n_records],
    }


def bench_set(label: str, texts: list[str], model, bf16, work: Path, rounds: int) -> dict:
    """Every condition on one text set, ``rounds`` times with the order rotated."""
    from dataprune.distributed import embed_shards
    from dataprune.embeddings import embed_texts

    tok = model.tokenizer
    n_tokens = [min(len(tok(t)["input_ids"]), model.max_seq_length) for t in texts]
    shard_dir = work / "shards"
    shard_dir.mkdir(parents=True)
    for s, part in enumerate(np.array_split(np.arange(len(texts)), 4)):
        with open(shard_dir / f"part-{s}.jsonl", "w", encoding="utf-8") as f:
            for i in part:
                f.write(json.dumps({"text": texts[i]}) + "\n")
    cache, shard_out = work / "cache", work / "shards_out"

    def st(m, b):
        return lambda: m.encode(
            texts, batch_size=b, normalize_embeddings=True, show_progress_bar=False
        )

    def cold():
        shutil.rmtree(cache, ignore_errors=True)
        return embed_texts(texts, model, cache_dir=cache, show_progress_bar=False)

    def warm():
        return np.asarray(embed_texts(texts, model, cache_dir=cache, show_progress_bar=False))

    def shards():
        shutil.rmtree(shard_out, ignore_errors=True)
        embed_shards(
            str(shard_dir / "*.jsonl"), shard_out, text_field="text", model=model,
            show_progress_bar=False,
        )  # fmt: skip

    fns = {f"st_b{b}": st(model, b) for b in ST_BATCHES}
    fns["st_bf16_b64"] = st(bf16, 64)
    fns["ours_nocache"] = lambda: embed_texts(texts, model, cache=False, show_progress_bar=False)
    fns["ours_cache_cold"] = cold
    fns["ours_cache_warm"] = warm
    fns["ours_shards"] = shards
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    model.encode(texts[:64], batch_size=64)  # warm-up
    bf16.encode(texts[:64], batch_size=64)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        order.remove("ours_cache_warm")  # the warm read follows this round's cold write
        order.insert(order.index("ours_cache_cold") + 1, "ours_cache_warm")
        for k in order:
            w0, c0 = time.perf_counter(), time.process_time()
            fns[k]()
            times[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
            print(f"[{label}] round {r} {k}: {times[k][-1]:.2f} s", flush=True)
    head = texts[:256]
    e32 = model.encode(head, batch_size=64, normalize_embeddings=True)
    e16 = bf16.encode(head, batch_size=64, normalize_embeddings=True)
    ours = np.asarray(embed_texts(head, model, cache=False, show_progress_bar=False))
    e16 = e16.astype(np.float64)
    e16 /= np.linalg.norm(e16, axis=1, keepdims=True)  # bf16 output is normalised in bf16
    cos = np.sum(e32 * e16, axis=1)
    return {
        "n": len(texts),
        "tokens_median": float(np.median(n_tokens)),
        "tokens_total": int(np.sum(n_tokens)),
        "wall_s": times,
        "cpu_s": cpu,
        "bf16_cosine_min": float(np.min(cos)),
        "bf16_cosine_median": float(np.median(cos)),
        "ours_max_abs_diff": float(np.max(np.abs(ours - e32))),
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    from dataprune.models import load_encoder

    torch.set_num_threads(args.threads)
    info = common.machine_info(["torch", "sentence_transformers", "transformers"])
    model = load_encoder()
    bf16 = load_encoder()
    bf16.to(torch.bfloat16)
    sets = text_sets(args.n_short, args.n_records)
    tmp = Path(tempfile.mkdtemp(prefix="embedding_speed_"))
    out: dict = {"sets": {}}
    try:
        for j, (label, texts) in enumerate(sets.items()):
            out["sets"][label] = bench_set(label, texts, model, bf16, tmp / str(j), args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.record_end_load(info)
    from dataprune.embeddings import DEFAULT_BATCH_SIZE

    out.update(
        default_batch_size=DEFAULT_BATCH_SIZE,
        machine=info,
        threads=args.threads,
        rounds=args.rounds,
        command=(
            f".venv/bin/python benchmarks/{NAME}.py --threads {args.threads} --rounds "
            f"{args.rounds} --n-short {args.n_short} --n-records {args.n_records}"
        ),
        date=time.strftime("%Y-%m-%d"),
    )
    return out


LABELS = {
    **{f"st_b{b}": f"sentence-transformers `encode`, batch {b}" for b in ST_BATCHES},
    "st_bf16_b64": "sentence-transformers `encode`, bf16 weights, batch 64",
    "ours_nocache": "dataprune `embed_texts(cache=False)` (default batch size)",
    "ours_cache_cold": "dataprune `embed_texts`, cache cold (encode + write)",
    "ours_cache_warm": "dataprune `embed_texts`, cache warm (read back)",
    "ours_shards": "dataprune `embed_shards`, 4 JSONL shards, local engine",
}


def render(res: dict) -> str:
    th = res["threads"]
    per = "per core" if th == 1 else f"with {th} threads"
    L = ["## Embedding throughput (all-MiniLM-L6-v2)\n"]
    L.append(
        f"Command: `{res['command']}` ({res['date']}; dataprune's default encoder batch size "
        f"{res.get('default_batch_size', '?')}). {common.machine_sentence(res['machine'])} "
        f"torch with {th} thread(s), so records/s is {per}; {res['rounds']} rounds, the order "
        "of the conditions rotated every round; medians over rounds, [min-max] of records/s. "
        "Every condition in the same process, one after another.\n"
    )
    for label, s in res["sets"].items():
        med = {k: float(np.median(v)) for k, v in s["wall_s"].items()}
        rate = {k: s["n"] / v for k, v in med.items()}
        st = {k: v for k, v in rate.items() if k.removeprefix("st_b").isdigit()}
        best = max(st, key=st.get)
        L.append(
            f"**{label}**: {s['n']:,} texts, median {s['tokens_median']:.0f} tokens "
            f"({s['tokens_total']:,} in all, after the encoder's 256-token truncation).\n"
        )
        L.append(
            "| condition | records/s (median [min-max]) | vs best sentence-transformers | CPU s |"
        )
        L.append("|---|---:|---:|---:|")
        for k in s["wall_s"]:
            lo = s["n"] / max(s["wall_s"][k])
            hi = s["n"] / min(s["wall_s"][k])
            L.append(
                f"| {LABELS.get(k, k)}{' (best batch)' if k == best else ''} | "
                f"{rate[k]:,.0f} [{lo:,.0f}-{hi:,.0f}] | {rate[k] / rate[best]:.2f}x | "
                f"{np.median(s['cpu_s'][k]):.1f} |"
            )
        L.append("")
        ours = rate["ours_nocache"] / rate[best]
        cold = med["ours_cache_cold"] / med["ours_nocache"] - 1
        shard = med["ours_shards"] / med["ours_nocache"] - 1
        L.append(
            f"- Best sentence-transformers batch size: {best.removeprefix('st_b')} "
            f"({rate[best]:,.0f} records/s {per}). dataprune in process: {rate['ours_nocache']:,.0f} "
            f"records/s, {ours:.2f}x of it (largest difference from sentence-transformers' "
            f"embeddings on the first {min(256, s['n'])} texts: {s['ours_max_abs_diff']:.1e})."
        )
        L.append(
            f"- Cache: writing it costs {cold * 100:+.1f} % of the uncached time; a warm re-run "
            f"reads it back at {rate['ours_cache_warm']:,.0f} records/s "
            f"({med['ours_nocache'] / med['ours_cache_warm']:,.0f}x the uncached encode). "
            f"Sharding (4 JSONL shards in, parquet out, manifests): {shard * 100:+.1f} % of the "
            "uncached time."
        )
        L.append(
            f"- bf16 weights: {rate['st_bf16_b64'] / rate['st_b64']:.2f}x the float32 encode at "
            f"batch 64; cosine similarity to the float32 embeddings: median "
            f"{s['bf16_cosine_median']:.4f}, min {s['bf16_cosine_min']:.4f} (first "
            f"{min(256, s['n'])} texts).\n"
        )
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-short", type=int, default=2000)
    ap.add_argument("--n-records", type=int, default=500)
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    if args.render_only:
        print(common.render_from_json(NAME, render))
        return 0
    common.need_data(SQUAD, "SQuAD v2")
    common.need_data(ALPACA, "Alpaca")
    res = run(args)
    md = render(res)
    common.publish(NAME, md, res, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
