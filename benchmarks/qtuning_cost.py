"""Q-Tuning cost: static scoring vs a plain forward pass, dynamic step vs a plain training step.

1. Static scoring throughput: :func:`dataprune.lm_scoring.score_sft` (tokenisation with the chat
   template, decoder forward, chunked projection of the valid positions, NLL/entropy/EL2N terms)
   plus the triage itself, against ``model(input_ids, attention_mask)`` (full logits, nothing
   else) on the same length-sorted batches of the same samples. Target: >= 0.9x the plain
   forward's tokens/s.
2. Dynamic overhead: ``QTuningTrainer.training_step`` (one forward, triage, backward) against
   ``transformers.Trainer.training_step`` (the model's own loss) on identical micro-batches, with
   LoRA and with full fine-tuning. Target: <= 5 % extra time per step. The default config's IFD
   rule (``max_ifd``) adds a gradient-free forward pass over the responses per micro-batch (static:
   a second scoring pass); both are measured with it and without it.

Measurements alternate A/B on the same inputs (so a drifting machine load affects both alike);
reported are medians of per-round ratios. The machine info and load average are recorded in the
JSON at the start of the run (and the load again at the end).

Run: ``.venv/bin/python benchmarks/qtuning_cost.py``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402

DATA = common.SHARED_DATA / "gsm8k" / "train.jsonl"
NAME = "qtuning_cost"


def _rows(n: int, seed: int) -> list[dict]:
    rows = common.gsm8k("train")
    pick = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [rows[i] for i in pick]


def bench_static(model, tok, rows, *, batch_size, max_length, rounds):
    import torch

    from dataprune.lm_scoring import score_sft
    from dataprune.qtuning import QTuningConfig
    from dataprune.qtuning.static import triage_token_scores
    from dataprune.sft_encoding import encode_sft

    prompts = [r["question"] for r in rows]
    answers = [r["answer"] for r in rows]
    encs = [encode_sft(tok, p, a, max_length=max_length) for p, a in zip(prompts, answers)]
    order = np.argsort([len(e.input_ids) for e in encs], kind="stable")
    batches = []
    for lo in range(0, len(encs), batch_size):
        idx = order[lo : lo + batch_size]
        T = max(len(encs[i].input_ids) for i in idx)
        ids = torch.full((len(idx), T), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(idx), T), dtype=torch.long)
        for b, i in enumerate(idx):
            L = len(encs[i].input_ids)
            ids[b, :L] = torch.from_numpy(encs[i].input_ids)
            att[b, :L] = 1
        batches.append((ids, att))
    n_tokens = int(sum(len(e.input_ids) for e in encs))

    def plain():
        with torch.inference_mode():
            for ids, att in batches:
                model(input_ids=ids, attention_mask=att).logits  # noqa: B018

    def scoring(compiled):
        def run():
            s = score_sft(
                model,
                tok,
                prompts,
                answers,
                batch_size=batch_size,
                max_length=max_length,
                show_progress_bar=False,
                compile_stats=compiled,
            )
            triage_token_scores(s, QTuningConfig(max_ifd=None))

        return run

    def scoring_ifd():
        # what QTuningTriage.fit does at the default config: the scoring pass, one more over the
        # responses after empty prompts (max_ifd), then the triage with IFD
        from dataprune.scores import ifd_from_token_scores

        kw = dict(
            batch_size=batch_size,
            max_length=max_length,
            show_progress_bar=False,
            compile_stats=True,
        )
        s = score_sft(model, tok, prompts, answers, **kw)
        u = score_sft(model, tok, [""] * len(prompts), answers, **kw)
        triage_token_scores(s, QTuningConfig(), ifd=ifd_from_token_scores(s, u).ifd)

    plain()  # warm-up
    t0 = time.perf_counter()
    scoring(True)()  # compiles the fused statistics kernel (cached on disk by torch)
    t_compile_first = time.perf_counter() - t0
    fns = [
        ("plain", plain),
        ("eager", scoring(False)),
        ("compiled", scoring(True)),
        ("default_ifd", scoring_ifd),
    ]
    cpu: dict[str, list[float]] = {k: [] for k, _ in fns}
    wall: dict[str, list[float]] = {k: [] for k, _ in fns}
    for r in range(rounds):
        for name, fn in fns[r % len(fns) :] + fns[: r % len(fns)]:  # rotate the order
            w, c = timed(fn)
            wall[name].append(w)
            cpu[name].append(c)
    out = {
        "n_samples": len(rows),
        "n_tokens": n_tokens,
        "batch_size": batch_size,
        "plain_forward_tokens_per_cpu_s": n_tokens / float(np.median(cpu["plain"])),
        "first_compiled_call_seconds": round(t_compile_first, 1),
        "plain_cpu_seconds": np.round(cpu["plain"], 2).tolist(),
        "plain_wall_seconds": np.round(wall["plain"], 2).tolist(),
    }
    for name in ("eager", "compiled", "default_ifd"):
        r_cpu = np.array(cpu["plain"]) / np.array(cpu[name])
        r_wall = np.array(wall["plain"]) / np.array(wall[name])
        out[name] = {
            "tokens_per_cpu_s": n_tokens / float(np.median(cpu[name])),
            "throughput_ratio_cpu_median": float(np.median(r_cpu)),
            "throughput_ratio_cpu_per_round": r_cpu.round(3).tolist(),
            "throughput_ratio_wall_median": float(np.median(r_wall)),
            "throughput_ratio_wall_per_round": r_wall.round(3).tolist(),
            "cpu_seconds": np.round(cpu[name], 2).tolist(),
        }
    return out


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def bench_dynamic(rows, *, micro_batch, max_length, rounds, use_lora, forward, tmp, ifd=True):
    from transformers import Trainer, TrainingArguments

    from dataprune.models import load_causal_lm
    from dataprune.qtuning import QTuningConfig, QTuningTrainer, SFTCollator, sft_features

    model, tok = load_causal_lm(dtype="bfloat16")  # as published
    if use_lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=16,
                lora_alpha=32,
                lora_dropout=0.0,
                task_type="CAUSAL_LM",
                target_modules=list(common.LORA_TARGET_MODULES),
            ),
        )
    feats = sft_features(
        tok, [r["question"] for r in rows], [r["answer"] for r in rows], max_length=max_length
    )
    collate = SFTCollator(tok.pad_token_id)
    batches = [collate(feats[i : i + micro_batch]) for i in range(0, len(feats), micro_batch)]
    args = TrainingArguments(
        output_dir=str(tmp),
        per_device_train_batch_size=micro_batch,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    plain_tr = Trainer(model=model, args=args)
    q_tr = QTuningTrainer(
        model=model,
        args=args,
        processing_class=tok,  # the empty prompt of the IFD pass (max_ifd)
        qtuning_config=QTuningConfig(max_ifd=1.0 if ifd else None),
        qtuning_forward=forward,
    )
    for tr in (plain_tr, q_tr):
        tr.current_gradient_accumulation_steps = 1

    def step(tr, batch):
        w, c = timed(lambda: tr.training_step(model, dict(batch)))
        model.zero_grad(set_to_none=True)
        return w, c

    step(plain_tr, batches[0])  # warm-up
    step(q_tr, batches[0])
    t_plain, t_q = [], []
    for r in range(rounds):
        batch = batches[r % len(batches)]
        if r % 2:
            t_q.append(step(q_tr, batch))
            t_plain.append(step(plain_tr, batch))
        else:
            t_plain.append(step(plain_tr, batch))
            t_q.append(step(q_tr, batch))
    tp, tq = np.array(t_plain), np.array(t_q)
    overhead = tq[:, 1] / tp[:, 1] - 1.0
    overhead_wall = tq[:, 0] / tp[:, 0] - 1.0
    n_tok = [int((b["attention_mask"]).sum()) for b in batches]
    return {
        "mode": "LoRA r=16" if use_lora else "full fine-tuning",
        "forward": forward,
        "max_ifd": 1.0 if ifd else None,
        "micro_batch": micro_batch,
        "tokens_per_micro_batch": float(np.mean(n_tok)),
        "plain_step_cpu_s_median": float(np.median(tp[:, 1])),
        "qtuning_step_cpu_s_median": float(np.median(tq[:, 1])),
        "overhead_median": float(np.median(overhead)),
        "overhead_per_round": overhead.round(3).tolist(),
        "overhead_wall_median": float(np.median(overhead_wall)),
        "overhead_wall_per_round": overhead_wall.round(3).tolist(),
        "rounds": rounds,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-static", type=int, default=64)
    ap.add_argument("--static-rounds", type=int, default=4)
    ap.add_argument("--dynamic-rounds", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: process CPU time then measures work, not waiting for the CPU)",
    )
    common.add_render_only(ap, NAME)
    args = ap.parse_args()
    if args.render_only:
        print(common.render_from_json(NAME, render_md))
        return 0
    common.need_data(DATA, "GSM8K")
    machine = common.machine_info(["torch", "transformers", "peft"])
    import tempfile

    import torch

    from dataprune.models import load_causal_lm

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rows = _rows(max(args.n_static, args.micro_batch * 4), args.seed)
    model, tok = load_causal_lm(dtype="bfloat16")  # as published
    static = bench_static(
        model,
        tok,
        rows[: args.n_static],
        batch_size=16,
        max_length=args.max_length,
        rounds=args.static_rounds,
    )
    print(json.dumps(static), flush=True)
    del model
    tmp = Path(tempfile.mkdtemp(prefix="qtuning_cost_"))
    dynamic = []
    for use_lora, forward, rounds, ifd in (
        (True, "auto", args.dynamic_rounds, True),
        (True, "auto", args.dynamic_rounds, False),
        (True, "full", max(2, args.dynamic_rounds // 2), True),
        (False, "auto", max(2, args.dynamic_rounds // 2), True),
    ):
        d = bench_dynamic(
            rows[: args.micro_batch * 4],
            micro_batch=args.micro_batch,
            max_length=args.max_length,
            rounds=rounds,
            use_lora=use_lora,
            forward=forward,
            tmp=tmp,
            ifd=ifd,
        )
        print(json.dumps(d), flush=True)
        dynamic.append(d)
    res = {
        "benchmark": NAME,
        "command": (
            f".venv/bin/python benchmarks/{NAME}.py --n-static {args.n_static} --static-rounds "
            f"{args.static_rounds} --dynamic-rounds {args.dynamic_rounds} --micro-batch "
            f"{args.micro_batch} --max-length {args.max_length} --threads {args.threads}"
        ),
        "model": "SmolLM2-135M-Instruct bf16 (CPU)",
        "torch_threads": torch.get_num_threads(),
        "machine": common.record_end_load(machine),
        "static": static,
        "dynamic": dynamic,
    }
    md = render_md(res)
    common.publish(NAME, md, res, indent=1)
    print(md)
    return 0


def render_md(res: dict) -> str:
    s = res["static"]
    L = ["## Q-Tuning cost: scoring throughput and dynamic-mode step overhead\n"]
    wall_over_cpu = float(
        np.median(np.array(s["plain_wall_seconds"]) / np.array(s["plain_cpu_seconds"]))
    )
    L.append(
        f"Command: `{res['command']}`. {res['model']} with {res['torch_threads']} torch "
        f"thread(s). {common.machine_sentence(res.get('machine'))} The headline numbers are **CPU "
        "seconds of this process** (CPU time does not count time spent waiting for a core); "
        "wall-clock ratios are listed too. The plain forward's wall time was "
        f"{wall_over_cpu:.2f}x its CPU time (median over {len(s['plain_cpu_seconds'])} "
        "round(s)). A and B alternate on the same inputs and the medians of per-round ratios are "
        "reported.\n"
    )
    L.append(
        f"**Static scoring** of {s['n_samples']} GSM8K train samples ({s['n_tokens']} tokens, "
        f"batches of {s['batch_size']}, length-sorted): `score_sft` + triage vs a plain "
        "`model(input_ids, attention_mask)` on the same batches.\n"
    )
    L.append(
        "| | tokens per CPU-second | throughput ratio, CPU time (median [rounds]) | "
        "ratio, wall clock (median) | target |"
    )
    L.append("|---|---:|---:|---:|---:|")
    L.append(
        f"| plain forward (full logits) | {s['plain_forward_tokens_per_cpu_s']:.0f} | 1.00 | 1.00 | |"
    )
    for name, label in (
        ("eager", "Q-Tuning scoring + triage, `max_ifd=None` (eager statistics)"),
        ("compiled", "Q-Tuning scoring + triage, `max_ifd=None`, `compile_stats=True`"),
        ("default_ifd", "default: + IFD pass (empty prompts), `compile_stats=True`"),
    ):
        if name not in s:
            continue
        v = s[name]
        ok = "met" if v["throughput_ratio_cpu_median"] >= 0.9 else "NOT met"
        L.append(
            f"| {label} | {v['tokens_per_cpu_s']:.0f} | {v['throughput_ratio_cpu_median']:.2f} "
            f"{v['throughput_ratio_cpu_per_round']} | {v['throughput_ratio_wall_median']:.2f} | "
            f">= 0.9 ({ok}) |"
        )
    L.append("")
    L.append(
        f"The first `compile_stats=True` call took {s['first_compiled_call_seconds']} s wall "
        "(compilation plus the scoring itself, with torch's on-disk compile cache as found); a "
        f"timed pass took a median of {np.median(s['compiled']['cpu_seconds']):.2f} CPU s with "
        f"`compile_stats=True` and {np.median(s['eager']['cpu_seconds']):.2f} CPU s without.\n"
    )
    L.append(
        "**Dynamic mode**: `QTuningTrainer.training_step` vs `Trainer.training_step` (forward + "
        "backward) on identical GSM8K micro-batches.\n"
    )
    L.append(
        "| training | Q-Tuning forward path | IFD pass (`max_ifd`) | micro-batch | tokens | "
        "plain step CPU s | "
        "Q-Tuning step CPU s | overhead, CPU time (median [rounds]) | overhead, wall (median) | "
        "target |"
    )
    L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for d in res["dynamic"]:
        ok = "met" if d["overhead_median"] <= 0.05 else "NOT met"
        path = (
            "decoder + response-row projection"
            if d["forward"] == "auto"
            else "model forward (full logits)"
        )
        L.append(
            f"| {d['mode']} | {path} | {'yes' if d.get('max_ifd') else 'no'} | "
            f"{d['micro_batch']} | {d['tokens_per_micro_batch']:.0f} | "
            f"{d['plain_step_cpu_s_median']:.2f} | {d['qtuning_step_cpu_s_median']:.2f} | "
            f"{d['overhead_median'] * 100:+.1f} % {[round(x * 100, 1) for x in d['overhead_per_round']]} | "
            f"{d['overhead_wall_median'] * 100:+.1f} % | <= 5 % ({ok}) |"
        )
    L.append("")
    L.append(_dynamic_sentence(res["dynamic"]))
    return "\n".join(L) + "\n"


def _dynamic_sentence(dynamic: list[dict]) -> str:
    """Which configurations made the Q-Tuning step cheaper or dearer than the plain step."""
    parts = []
    for d in dynamic:
        per_round = d["overhead_per_round"]
        cheaper = sum(x < 0 for x in per_round)
        parts.append(
            f"{d['mode']} with the `{d['forward']}` forward path"
            f"{' and the IFD pass' if d.get('max_ifd') else ', no IFD pass'} "
            f"{d['overhead_median'] * 100:+.1f} %"
            f" (Q-Tuning step cheaper in {cheaper} of {len(per_round)} rounds)"
        )
    lower = sum(d["overhead_median"] < 0 for d in dynamic)
    return (
        "Only forward and backward are timed, not the optimizer step. Median CPU overhead of the "
        f"Q-Tuning step: {'; '.join(parts)}; the median was negative in {lower} of {len(dynamic)} "
        "configurations."
    )


if __name__ == "__main__":
    raise SystemExit(main())
