"""Pruning throughput on CPU: the shipped MiniLM pruner vs the original Provence architecture.

Usage (from the repository root)::

    .venv/bin/python benchmarks/rag_speed.py

Passages: held-out SQuAD v2 paragraphs cut at sentence boundaries to about 200 tokens (query
included in each forward pass). Both models run through the same ``ContextPruner`` pipeline
(sentence splitting, windowing, length-sorted batching, selection); only the network differs:

* ours: all-MiniLM-L6-v2 backbone (6 layers, 384 hidden, 22.7M parameters) with the shipped
  fine-tuned weights;
* Provence architecture: DeBERTa-v3-large config (24 layers, 1024 hidden, 435M parameters, what
  ``naver/provence-reranker-debertav3-v1`` uses), randomly initialised (timing only), fed the same
  token ids.

Passages/s at batch 1 (one passage per call) and batch 32 (32 passages per call), float32 and
bf16 autocast for ours, repeated and interleaved so both models see the same machine load; the
median is reported. In the same run, quality parity of bf16 autocast vs float32 for ours on the
same passages (each with its own question): per-sentence score differences, agreement of the
keep/drop decisions at the checkpoint's default threshold, and the char compression under each;
with the CPU's bf16 flags and what ``precision="auto"`` resolves to on it. Writes
``benchmarks/results/rag_speed.{json,md}`` (or ``<out-dir>/<name>.{json,md}`` with
``--out-dir``, leaving ``benchmarks/RESULTS.md`` alone).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402

logger = logging.getLogger("benchmarks.rag_speed")


def _passages(pruner, data, articles, n, target_tokens=200):
    from dataprune.rag.sentences import split_sentences

    out = []
    for art in data:
        if art["title"] not in articles:
            continue
        for p in art["paragraphs"]:
            sents = split_sentences(p["context"])
            ids = pruner.tokenizer([s.text for s in sents], add_special_tokens=False)["input_ids"]
            acc, used = [], 0
            for s, t in zip(sents, ids):
                if used + len(t) > target_tokens + 15:
                    break
                acc.append(s.text)
                used += len(t)
            if target_tokens - 40 <= used <= target_tokens + 15:
                out.append((p["qas"][0]["question"], " ".join(acc), used))
            if len(out) >= n:
                return out
    return out


def _parity(fp32, bf16, passages) -> dict:
    """bf16 autocast vs float32 on ``passages`` ((question, text, n_tokens) triples).

    Both pruners prune every passage for its own question at the checkpoint's default threshold
    (one batched call each); compares per-sentence scores, keep/drop decisions and compression.
    """
    import numpy as np

    threshold = fp32.default_threshold
    queries = [q for q, _, _ in passages]
    texts = [[t] for _, t, _ in passages]
    res = {}
    for key, pr in (("float32", fp32), ("bfloat16", bf16)):
        res[key] = [ps[0] for ps in pr.prune_batch(queries, texts, threshold=threshold)]
    diffs, same, n_sent, pass_diffs = [], 0, 0, []
    chars = {"float32": 0.0, "bfloat16": 0.0}
    n_chars = 0
    for a, b in zip(res["float32"], res["bfloat16"]):
        if a.sentences != b.sentences:
            raise RuntimeError("float32 and bf16 runs split a passage differently")
        diffs.extend(abs(x - y) for x, y in zip(a.sentence_scores, b.sentence_scores))
        kept_a, kept_b = set(a.kept_sentences), set(b.kept_sentences)
        same += sum((j in kept_a) == (j in kept_b) for j in range(len(a.sentences)))
        n_sent += len(a.sentences)
        pass_diffs.append(abs(a.passage_score - b.passage_score))
        n_chars += a.n_chars
        for key, pp in (("float32", a), ("bfloat16", b)):
            chars[key] += pp.compression_chars * pp.n_chars
    d = np.asarray(diffs, dtype=np.float64)
    return {
        "threshold": threshold,
        "n_passages": len(passages),
        "n_sentences": n_sent,
        "sentence_score_abs_diff": {"max": float(d.max()), "mean": float(d.mean())},
        "passage_score_abs_diff_max": float(max(pass_diffs)),
        "decisions_agree": same / n_sent,
        "n_decisions_differ": n_sent - same,
        "compression_chars": {k: v / n_chars for k, v in chars.items()},
    }


def _time(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "squad_v2"))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    ap.add_argument("--b1-calls", type=int, default=16, help="batch-1 calls per round (ours)")
    ap.add_argument("--b1-calls-provence", type=int, default=2)
    ap.add_argument("--name", default="rag_speed")
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="write <name>.json/.md here instead of benchmarks/results (RESULTS.md untouched); "
        "with --render-only, re-render from the JSON there",
    )
    common.add_render_only(ap, "rag_speed")
    args = ap.parse_args(argv)
    out_dir = args.out_dir or common.RESULTS
    if args.render_only:
        saved = json.loads((out_dir / f"{args.name}.json").read_text(encoding="utf-8"))
        common.publish(args.name, _markdown(saved), out_dir=out_dir)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    machine = common.machine_info(["torch", "transformers"])

    import torch
    from transformers import DebertaV2Config, DebertaV2Model

    from dataprune.precision import cpu_bf16_flags, cpu_has_fast_bf16
    from dataprune.rag.config import PrunerConfig
    from dataprune.rag.inference import resolve_precision
    from dataprune.rag.labels import load_squad_v2
    from dataprune.rag.model import PrunerModel
    from dataprune.rag.pruner import ContextPruner

    ours = ContextPruner.from_pretrained("default", precision="float32")
    ours_bf16 = ContextPruner(
        ours.model, ours.tokenizer, max_length=ours.max_length, precision="bfloat16", name="default"
    )
    card = ours.meta["card"]
    data = load_squad_v2(args.data)
    passages = _passages(ours, data, set(card["data"]["split"]["test"]), 64)
    if len(passages) < 33:
        raise SystemExit(f"only {len(passages)} ~200-token passages found")
    mean_tokens = sum(p[2] for p in passages) / len(passages)
    logger.info("%d passages of ~%.0f passage tokens", len(passages), mean_tokens)

    torch.manual_seed(0)
    cfg = DebertaV2Config(
        vocab_size=128100,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=256,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        layer_norm_eps=1e-7,
        max_relative_positions=-1,
        position_biased_input=False,
        type_vocab_size=0,
    )
    deberta = DebertaV2Model(cfg).eval()
    n_params_prov = sum(p.numel() for p in deberta.parameters())
    prov_model = PrunerModel(
        deberta, PrunerConfig(backbone="deberta-v3-large (random init)", keep_head="linear")
    ).eval()
    provence = ContextPruner(
        prov_model, ours.tokenizer, max_length=512, precision="float32", name="provence-arch"
    )
    n_params_ours = sum(p.numel() for p in ours.model.parameters())

    q0 = passages[0][0]
    batch32 = [p[1] for p in passages[:32]]
    results: dict[str, dict[str, list[float]]] = {}

    def rec(key, size, times):
        results.setdefault(key, {"batch": size, "passages_per_s": []})
        results[key]["passages_per_s"].extend(size / t for t in times)

    # warm-up
    ours.prune(q0, batch32[:2])
    provence.prune(q0, batch32[:1])
    parity = _parity(ours, ours_bf16, passages)
    logger.info("bf16 vs float32 parity: %s", parity)
    singles = iter([p for _ in range(1000) for p in passages])

    def one(pr):
        q, text, _ = next(singles)
        pr.prune(q, [text])

    for rnd in range(args.rounds):
        logger.info("round %d", rnd + 1)
        rec("ours/float32/b1", 1, _time(lambda: one(ours), args.b1_calls))
        rec("ours/bfloat16/b1", 1, _time(lambda: one(ours_bf16), args.b1_calls))
        rec("ours/float32/b32", 32, _time(lambda: ours.prune(q0, batch32), 2))
        rec("ours/bfloat16/b32", 32, _time(lambda: ours_bf16.prune(q0, batch32), 2))
        rec("provence-arch/float32/b1", 1, _time(lambda: one(provence), args.b1_calls_provence))
        if rnd < 2:
            rec("provence-arch/float32/b32", 32, _time(lambda: provence.prune(q0, batch32), 1))
    med = {k: statistics.median(v["passages_per_s"]) for k, v in results.items()}
    ratios = {
        "b1": med["ours/float32/b1"] / med["provence-arch/float32/b1"],
        "b32": med["ours/float32/b32"] / med["provence-arch/float32/b32"],
    }
    bf16_vs_fp32 = {
        "b1": med["ours/bfloat16/b1"] / med["ours/float32/b1"],
        "b32": med["ours/bfloat16/b32"] / med["ours/float32/b32"],
    }
    out = {
        "command": "python benchmarks/rag_speed.py"
        + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "checkpoint": f"default, card steps {card.get('steps')}, keep_head "
        f"{card.get('train_config', {}).get('pruner', {}).get('keep_head')}",
        "n_passages": len(passages),
        "mean_passage_tokens": mean_tokens,
        "params": {"ours": n_params_ours, "provence_arch": n_params_prov},
        "raw": results,
        "median_passages_per_s": med,
        "speedup_vs_provence_arch": ratios,
        "bf16_over_fp32": bf16_vs_fp32,
        "parity_bf16_vs_fp32": parity,
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16_flags": list(cpu_bf16_flags()),
        "cpu_has_fast_bf16": cpu_has_fast_bf16(),
        "auto_precision_cpu": resolve_precision("auto", "cpu"),
        "machine": machine,
    }
    out["machine"]["load_average_at_end"] = list(os.getloadavg())
    common.publish(args.name, _markdown(out), out, out_dir=out_dir)
    summary = {"median": med, "speedup": ratios, "bf16_over_fp32": bf16_vs_fp32, "parity": parity}
    print(json.dumps(summary, indent=1))
    return 0


def _markdown(out: dict) -> str:
    """The results section, every sentence computed from ``out`` (the saved JSON)."""
    med = out["median_passages_per_s"]
    ratios = out["speedup_vs_provence_arch"]
    p_ours, p_prov = out["params"]["ours"], out["params"]["provence_arch"]
    machine = out.get("machine")
    load = (
        f" 1-minute load average {machine['load_average_at_start'][0]:.1f} at the start and "
        f"{machine['load_average_at_end'][0]:.1f} at the end on {machine['cpu_count']} CPUs."
        if machine and machine.get("load_average_at_end")
        else " Machine and load not recorded in this run's JSON."
    )
    lines = [
        "## RAG pruning speed vs the Provence architecture (`rag_speed`)",
        "",
        f"Command: `{out['command']}`. {out['n_passages']} held-out SQuAD v2 passages of "
        f"~{out['mean_passage_tokens']:.0f} tokens (+ the query), pruned through the same "
        "`ContextPruner` pipeline; only the network differs: ours = the shipped checkpoint "
        f"(`{out.get('checkpoint', 'default')}`, all-MiniLM-L6-v2 base, {p_ours / 1e6:.1f}M "
        f"parameters), Provence architecture = DeBERTa-v3-large config, random init "
        f"({p_prov / 1e6:.0f}M). Torch threads: {out['torch_threads']}; interleaved rounds, "
        f"medians.{load}",
        "",
        "| model | precision | batch | passages/s (median) |",
        "|---|---|---|---|",
    ]
    for k in sorted(med):
        name, prec, b = k.split("/")
        lines.append(f"| {name} | {prec} | {b[1:]} | {med[k]:.2f} |")
    lines += [
        "",
        f"Speed-up of ours over the Provence architecture (float32): batch 1 **{ratios['b1']:.1f}x**, "
        f"batch 32 **{ratios['b32']:.1f}x** (target >= 10x: "
        f"{'met' if min(ratios.values()) >= 10 else 'NOT met'}).",
        _bf16_sentence(out),
    ]
    best32 = max((v, k) for k, v in med.items() if k.startswith("ours/") and k.endswith("/b32"))
    lines.append(
        f"Best of ours at batch 32: {best32[0]:.1f} passages/s ({best32[1].split('/')[1]}; "
        f"target >= 50 passages/s on this machine: {'met' if best32[0] >= 50 else 'NOT met'})."
    )
    return "\n".join(lines) + "\n"


def _bf16_sentence(out: dict) -> str:
    """bf16 autocast vs float32 for ours: speed, score parity and what ``auto`` picks."""
    ratio = out["bf16_over_fp32"]
    if "cpu_bf16_flags" in out:
        flags = "bf16 CPU flags: " + (", ".join(out["cpu_bf16_flags"]) or "none")
    else:  # JSON written before the flags were recorded
        flags = f"AMX: {out.get('cpu_has_amx_bf16', 'not recorded')}"
    text = (
        f"bf16 autocast / float32 speed for ours on this CPU ({flags}): batch 1 "
        f"{ratio['b1']:.2f}x, batch 32 {ratio['b32']:.2f}x"
    )
    par = out.get("parity_bf16_vs_fp32")
    if par:
        diff = par["sentence_score_abs_diff"]
        comp = par["compression_chars"]
        text += (
            f"; on the same {par['n_passages']} passages ({par['n_sentences']} sentences) the "
            f"per-sentence scores differ by at most {diff['max']:.4f} (mean {diff['mean']:.5f}), "
            f"keep/drop decisions at the default threshold {par['threshold']:g} agree on "
            f"{100 * par['decisions_agree']:.1f}% of sentences ({par['n_decisions_differ']} of "
            f"{par['n_sentences']} differ), char compression {100 * comp['bfloat16']:.1f}% (bf16) vs "
            f"{100 * comp['float32']:.1f}% (float32)"
        )
    else:
        text += "; bf16/float32 score parity not measured in this run"
    auto = out.get("auto_precision_cpu")
    if auto:
        text += f' -> `precision="auto"` uses {auto} here.'
    else:
        text += '; what `precision="auto"` resolved to was not recorded in this run.'
    return text


if __name__ == "__main__":
    sys.exit(main())
