"""Q-Tuning outcome: short LoRA SFT runs of SmolLM2-135M-Instruct on a GSM8K slice.

Conditions at an equal gradient budget (the same number of optimizer steps, each with the same
number of gradient-contributing samples, ``k`` per step), all through the same ``transformers``
Trainer code path:

* ``q-tuning dynamic``: micro-batches of ``k / sample_ratio`` samples from the whole pool, triaged
  by :class:`~dataprune.qtuning.QTuningTrainer` from its own forward pass (``k`` samples and a
  ``token_ratio`` of Q2 tokens carry loss);
* ``q-tuning static``: the pool triaged once by the base model (``dataprune triage`` logic), then
  one epoch over the kept ``sample_ratio`` share with its token masks;
* ``random``: a random ``sample_ratio`` share of the pool (all tokens);
* ``longest``: the ``sample_ratio`` share with the longest responses (all tokens);
* ``full data``: one epoch over the whole pool with batches of ``k / sample_ratio`` (it gets
  ``1 / sample_ratio`` times the gradient budget: the reference every pruning method is compared to).

Measured on a fixed GSM8K test slice: mean response NLL (teacher forcing; lower is better) and
exact match of the final ``#### n`` answer with greedy decoding (plus a lenient variant that takes
the last number in the output). Generation is batched (left padding, KV cache, length-sorted
prompts) and stops a sequence at EOS or once it has written ``#### <number>`` and a newline.

Resumable: every finished (condition, seed) is written atomically to the results JSON, and a rerun
with the same settings skips it. The markdown table aggregates every seed present.

Run: ``.venv/bin/python benchmarks/qtuning_outcome.py --seeds 0 1 2``
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks import sft_harness  # noqa: E402

DATA = common.SHARED_DATA / "gsm8k"
NAME = "qtuning_outcome"
CONDITIONS = ("base model", "full data", "random", "longest", "q-tuning static", "q-tuning dynamic")
# optional extra conditions: the same with fill_norm="rank" (see the diagnostic benchmark)
EXTRA_CONDITIONS = ("q-tuning static (fill=rank)", "q-tuning dynamic (fill=rank)")
PRUNING = ("longest", "q-tuning static", "q-tuning dynamic", *EXTRA_CONDITIONS)
_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# a finished GSM8K answer: "#### <number>" followed by a line break
_DONE = re.compile(r"####[^\n]*\d[^\n]*\n")


def normalise_number(s: str | None) -> str | None:
    if s is None:
        return None
    s = s.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        v = float(s)
    except ValueError:
        return s
    return str(int(v)) if v == int(v) else str(v)


def final_answer(text: str) -> str | None:
    """The number after the last ``####`` (strict GSM8K format)."""
    if "####" not in text:
        return None
    m = _NUM.search(text.rsplit("####", 1)[1])
    return normalise_number(m.group(0)) if m else None


def last_number(text: str) -> str | None:
    nums = _NUM.findall(text)
    return normalise_number(nums[-1]) if nums else None


def _answer_stop(tokenizer, prompt_len: int):
    """Per-sequence stopping criterion: done once the output holds ``#### <number>`` + newline."""
    import torch
    from transformers import StoppingCriteria

    class AnswerStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            return torch.tensor([bool(_DONE.search(t)) for t in texts], dtype=torch.bool)

    return AnswerStop()


def generate_answers(model, tok, questions, *, max_new_tokens, batch_size):
    """Greedy answers for ``questions`` (batched, left-padded, length-sorted, early stop)."""
    import torch
    from transformers import StoppingCriteriaList

    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in questions
    ]
    lens = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = np.argsort(lens, kind="stable")
    outputs: list[str] = [""] * len(prompts)
    n_new: list[int] = [0] * len(prompts)
    old_side = tok.padding_side
    tok.padding_side = "left"
    model.eval()
    try:
        with torch.inference_mode():
            for lo in range(0, len(prompts), batch_size):
                idx = order[lo : lo + batch_size].tolist()
                enc = tok(
                    [prompts[i] for i in idx],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                )
                T = enc["input_ids"].shape[1]
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    use_cache=True,
                    pad_token_id=tok.pad_token_id,
                    stopping_criteria=StoppingCriteriaList([_answer_stop(tok, T)]),
                )
                new = gen[:, T:]
                texts = tok.batch_decode(new, skip_special_tokens=True)
                for b, i in enumerate(idx):
                    outputs[i] = texts[b]
                    n_new[i] = int((new[b] != tok.pad_token_id).sum())
    finally:
        tok.padding_side = old_side
    return outputs, n_new


def evaluate(model, tok, test_nll, test_em, *, max_length, max_new_tokens, batch_size):
    t0 = time.perf_counter()
    nll = sft_harness.heldout_nll(
        model,
        tok,
        [(r["question"], r["answer"]) for r in test_nll],
        max_length=max_length,
        batch_size=8,
    )
    t_nll = time.perf_counter() - t0
    t0 = time.perf_counter()
    outputs, n_new = generate_answers(
        model,
        tok,
        [r["question"] for r in test_em],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    t_em = time.perf_counter() - t0
    gold = [final_answer(r["answer"]) for r in test_em]
    strict = [int(final_answer(t) == g) for t, g in zip(outputs, gold)]
    lenient = [int(last_number(t) == g) for t, g in zip(outputs, gold)]
    return {
        "nll": nll["nll"],
        "nll_sem": nll["nll_sem"],
        "nll_per_question": [round(x, 5) for x in nll["nll_per_record"]],
        "em_strict": float(np.mean(strict)),
        "em_lenient": float(np.mean(lenient)),
        "n_em_strict": int(sum(strict)),
        "n_em_lenient": int(sum(lenient)),
        "em_strict_per_question": strict,
        "n_with_hash_format": int(sum("####" in t for t in outputs)),
        "mean_new_tokens": float(np.mean(n_new)),
        "nll_eval_seconds": round(t_nll, 1),
        "em_eval_seconds": round(t_em, 1),
        "example_output": outputs[0][:400],
    }


def train(condition, feats, *, batch, steps, seed, lr, qcfg, out_dir, dtype):
    """LoRA SFT through the ``transformers`` Trainer (``QTuningTrainer`` for the dynamic
    conditions): its sampler gives the data order, ``feats`` carry the token masks. Model, LoRA
    wrap and optimizer/schedule come from :mod:`benchmarks.sft_harness`."""
    from transformers import Trainer, TrainingArguments

    from dataprune.qtuning import QTuningTrainer, SFTCollator

    model, tok = sft_harness.load_base(dtype=dtype)
    model = sft_harness.add_lora(model, seed=seed)
    model.train()
    warmup = max(1, steps // 10)
    optimizers = sft_harness.make_optimizer(model, lr=lr, steps=steps, warmup_steps=warmup)
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=lr,
        lr_scheduler_type="linear",
        warmup_steps=warmup,
        weight_decay=0.0,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        dataloader_drop_last=True,
    )
    common = dict(
        model=model,
        args=args,
        train_dataset=feats,
        data_collator=SFTCollator(tok.pad_token_id),
        optimizers=optimizers,
    )
    if condition.startswith("q-tuning dynamic"):
        trainer = QTuningTrainer(**common, qtuning_config=qcfg)
    else:
        trainer = Trainer(**common)
    t0 = time.perf_counter()
    trainer.train()
    t_train = time.perf_counter() - t0
    logs = [e for e in trainer.state.log_history if "loss" in e]
    info = {
        "train_seconds": round(t_train, 1),
        "steps": steps,
        "batch": batch,
        "train_loss_first": logs[0]["loss"] if logs else None,
        "train_loss_last": logs[-1]["loss"] if logs else None,
        "n_train_features": len(feats),
    }
    if condition.startswith("q-tuning dynamic"):
        h = trainer.qtuning_history
        info["gradient_samples"] = int(sum(x["kept_samples"] for x in h))
        info["gradient_tokens"] = int(sum(x["kept_tokens"] for x in h))
        info["q2_q4_fill"] = [
            int(sum(x["q2"] for x in h)),
            int(sum(x["q4"] for x in h)),
            int(sum(x["fill_up"] for x in h)),
        ]
    else:
        used = steps * batch
        info["gradient_samples"] = used
        n_tok = [sum(t != -100 for t in f["labels"][1:]) for f in feats]
        info["gradient_tokens"] = int(np.mean(n_tok) * used)
    # evaluated with the adapters attached (merging into bf16 weights would round small deltas away)
    model.eval()
    return model, tok, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pool", type=int, default=64, help="GSM8K train records in the pool")
    ap.add_argument("--k", type=int, default=2, help="gradient-contributing samples per step")
    ap.add_argument("--sample-ratio", type=float, default=0.25)
    ap.add_argument("--token-ratio", type=float, default=0.7)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--nll-n", type=int, default=48, help="test questions for held-out NLL")
    ap.add_argument("--em-n", type=int, default=24, help="test questions for exact match")
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--gen-batch", type=int, default=12)
    ap.add_argument(
        "--dtype",
        default="float32",
        choices=["bfloat16", "float32"],
        help="model dtype for the LoRA steps, NLL and decoding",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per process",
    )
    ap.add_argument("--conditions", nargs="*", default=list(CONDITIONS))
    ap.add_argument("--results", default=str(HERE / "results" / f"{NAME}.json"))
    ap.add_argument(
        "--fresh", action="store_true", help="discard a results file made with other settings"
    )
    common.add_render_only(ap, NAME, "--report-only", dest="report_only")
    args = ap.parse_args()
    results_path = Path(args.results)
    if args.report_only:
        report(json.loads(results_path.read_text()), results_path)
        return 0
    common.need_data(DATA / "train.jsonl", "GSM8K")
    import tempfile

    import torch

    from dataprune.atomic import atomic_write_json
    from dataprune.cache import cache_dir
    from dataprune.qtuning import QTuningConfig, QTuningTriage, sft_features

    torch.set_num_threads(args.threads)
    train_rows = common.gsm8k("train")
    test_rows = common.gsm8k("test")
    # the pool is fixed across seeds (seeds vary LoRA init, order and the random subset)
    pool = [
        train_rows[i]
        for i in np.random.default_rng(1234).choice(len(train_rows), args.pool, replace=False)
    ]
    test_nll = test_rows[: args.nll_n]
    test_em = test_rows[: args.em_n]
    qcfg = QTuningConfig(sample_ratio=args.sample_ratio, token_ratio=args.token_ratio)
    n_keep = qcfg.n_keep(len(pool))
    big = round(args.k / args.sample_ratio)
    steps = len(pool) // big  # one epoch of the pool in micro-batches of `big`
    base_model, tok = sft_harness.load_base(dtype=args.dtype)
    prompts = [r["question"] for r in pool]
    answers = [r["answer"] for r in pool]
    feats_all = sft_features(tok, prompts, answers, max_length=args.max_length)
    setup = {
        "pool": args.pool,
        "k_per_step": args.k,
        "micro_batch_dynamic_and_full": big,
        "steps": steps,
        "sample_ratio": args.sample_ratio,
        "token_ratio": args.token_ratio,
        "lr": args.lr,
        "lora": "r=16, alpha=32, all attention and MLP projections",
        "max_length": args.max_length,
        "nll_n": args.nll_n,
        "em_n": args.em_n,
        "max_new_tokens": args.max_new_tokens,
        "dtype": args.dtype,
        "model": base_model.dataprune_source.describe(),
    }
    existing = json.loads(results_path.read_text()) if results_path.is_file() else None
    if existing is not None and existing.get("setup") != setup:
        if not args.fresh:
            print(
                f"{results_path} was made with other settings; pass --fresh to start over",
                file=sys.stderr,
            )
            return 2
        existing = None
    if existing is None:
        existing = {"setup": setup, "runs": []}
    existing.setdefault("timing", {})
    existing["timing"].update(
        {"threads": args.threads, "machine": common.machine_info(["torch", "transformers", "peft"])}
    )
    runs = existing["runs"]
    tmp = Path(tempfile.mkdtemp(prefix="qtuning_outcome_"))

    def save():
        existing["runs"] = runs
        atomic_write_json(results_path, existing, indent=1)

    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        # drawn before the loop so a resumed run gets the same random subset
        random_idx = sorted(rng.choice(len(pool), n_keep, replace=False).tolist())
        for cond in args.conditions:
            done = {(r["condition"], r["seed"]) for r in runs}
            if (cond, seed) in done or (cond == "base model" and (cond, None) in done):
                print(f"skip {cond} seed {seed} (done)", flush=True)
                continue
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            info: dict = {}
            ccfg = qcfg
            if cond.endswith("(fill=rank)"):
                ccfg = QTuningConfig(
                    sample_ratio=args.sample_ratio, token_ratio=args.token_ratio, fill_norm="rank"
                )
            base_cond = cond.replace(" (fill=rank)", "")
            if cond == "base model":
                model, mtok = base_model, tok
            else:
                if cond == "full data" or base_cond == "q-tuning dynamic":
                    feats, batch = feats_all, big
                elif cond == "random":
                    feats, batch = [feats_all[i] for i in random_idx], args.k
                elif cond == "longest":
                    lens = [sum(t != -100 for t in f["labels"]) for f in feats_all]
                    idx = np.argsort(lens, kind="stable")[::-1][:n_keep]
                    feats, batch = [feats_all[i] for i in sorted(idx)], args.k
                elif base_cond == "q-tuning static":
                    t1 = time.perf_counter()
                    tri = QTuningTriage(
                        ccfg,
                        model=base_model,
                        tokenizer=tok,
                        batch_size=8,
                        max_length=args.max_length,
                        cache_dir=cache_dir("bench", "qtuning_outcome"),
                    ).fit(prompts, answers)
                    info["triage_seconds"] = round(time.perf_counter() - t1, 1)
                    info["triage"] = tri.result_.summary()
                    feats, batch = tri.features(), args.k
                else:
                    raise SystemExit(f"unknown condition {cond!r}")
                model, mtok, tinfo = train(
                    cond,
                    feats,
                    batch=batch,
                    steps=steps,
                    seed=seed,
                    lr=args.lr,
                    qcfg=ccfg,
                    out_dir=tmp / f"{cond.replace(' ', '_').replace('(', '').replace(')', '')}",
                    dtype=args.dtype,
                )
                info.update(tinfo)
            ev = evaluate(
                model,
                mtok,
                test_nll,
                test_em,
                max_length=args.max_length,
                max_new_tokens=args.max_new_tokens,
                batch_size=args.gen_batch,
            )
            run = {
                "condition": cond,
                "seed": seed if cond != "base model" else None,
                **info,
                **ev,
                "wall_seconds": round(time.perf_counter() - t0, 1),
                "load_avg_1m": round(common.load_1min(), 1),
            }
            runs.append(run)
            save()
            short = {
                k: v
                for k, v in run.items()
                if k not in ("example_output", "nll_per_question", "em_strict_per_question")
            }
            print(json.dumps(short), flush=True)
            del model
        report(existing, results_path)
    common.record_end_load(existing["timing"]["machine"])
    save()
    report(existing, results_path)
    return 0


# ----------------------------------------------------------------------------- reporting


def _by_condition(runs: list[dict]) -> dict[str, dict]:
    """condition -> {seed: run} (the base model is seed-independent: key None)."""
    by: dict[str, dict] = {}
    for r in runs:
        by.setdefault(r["condition"], {})[r["seed"]] = r
    return by


def _paired(by: dict, cond: str, ref: str, key: str) -> np.ndarray:
    a, b = by.get(cond, {}), by.get(ref, {})
    seeds = sorted(s for s in a if s is not None and s in b)
    return np.array([a[s][key] - b[s][key] for s in seeds], dtype=float)


def _mean_sd(x: np.ndarray, fmt: str) -> str:
    if len(x) == 0:
        return "-"
    if len(x) == 1:
        return format(x[0], fmt)
    return f"{format(x.mean(), fmt)} ± {format(x.std(ddof=1), fmt)}"


def _delta_cell(d: np.ndarray, fmt: str, lower_is_better: bool) -> str:
    if len(d) == 0:
        return "-"
    better = int(np.sum(d < 0) if lower_is_better else np.sum(d > 0))
    ties = int(np.sum(d == 0))
    counts = f"better {better}, worse {len(d) - better - ties}" + (f", tie {ties}" if ties else "")
    sign_fmt = "+" + fmt
    if len(d) == 1:
        return f"{format(d[0], sign_fmt)} (n=1)"
    return f"{format(d.mean(), sign_fmt)} ± {format(d.std(ddof=1), fmt)} ({counts})"


def _verdict_nll(d: np.ndarray) -> str:
    """Classify a paired NLL delta series (lower = better) from the numbers alone."""
    if len(d) == 0:
        return "not measured"
    if len(d) == 1:
        return f"{'lower' if d[0] < 0 else 'higher'} in the single seed (no spread to judge)"
    m, sd = d.mean(), d.std(ddof=1)
    se = sd / math.sqrt(len(d))
    if np.all(d < 0) and m + 2 * se < 0:
        return "consistently lower (better)"
    if np.all(d > 0) and m - 2 * se > 0:
        return "consistently higher (worse)"
    if np.all(d < 0):
        return "lower in every seed, but within 2 standard errors"
    if np.all(d > 0):
        return "higher in every seed, but within 2 standard errors"
    return "no consistent difference (sign changes across seeds)"


def render_md(res: dict) -> str:
    st = res["setup"]
    runs = res["runs"]
    by = _by_condition(runs)
    seeds = sorted({r["seed"] for r in runs if r["seed"] is not None})
    timing = res.get("timing", {})
    threads = timing.get("threads", 1)
    L = ["## Q-Tuning outcome: short LoRA SFT of SmolLM2-135M-Instruct on GSM8K (CPU)\n"]
    L.append(
        f"Command: `.venv/bin/python benchmarks/{NAME}.py --seeds {' '.join(map(str, seeds))}` "
        f"(resumable; `--report-only` rebuilds this section). Trained and evaluated on the CPU "
        f"with {threads} torch thread(s). {_machine_text(res)}\n"
    )
    L.append(
        f"Settings: pool of {st['pool']} GSM8K train records (fixed across seeds; seeds vary the "
        f"LoRA init, data order and the random subset). Every pruning condition gets the same "
        f"gradient budget: {st['steps']} optimizer steps x {st['k_per_step']} gradient-contributing "
        f"samples (sample_ratio {st['sample_ratio']}; Q-Tuning also keeps only {st['token_ratio']} "
        f"of the tokens of its Q2 samples; random/longest keep all tokens). Q-Tuning dynamic sees "
        f"micro-batches of {st['micro_batch_dynamic_and_full']} and keeps {st['k_per_step']}; full "
        f"data trains on all {st['micro_batch_dynamic_and_full']} per step "
        f"({round(1 / st['sample_ratio'])}x the gradient budget). LoRA {st['lora']}, lr "
        f"{st['lr']} (linear decay), {st['dtype']} base weights, max_length {st['max_length']}. "
        f"Held-out response NLL (mean over all answer tokens) on the first {st['nll_n']} GSM8K "
        f"test questions; exact match (EM) of the final `#### n` with greedy decoding (max "
        f"{st['max_new_tokens']} new tokens, stop at EOS or after `#### n` + newline) on the "
        f"first {st['em_n']}; lenient EM takes the last number of the output.\n"
    )
    L.append(
        "| condition | seeds | held-out NLL (mean ± sd) | EM strict | EM lenient | "
        "outputs with `####` | gradient samples | gradient tokens | train s | eval s |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cond in CONDITIONS + EXTRA_CONDITIONS:
        rs = list(by.get(cond, {}).values())
        if not rs:
            continue
        nll = np.array([r["nll"] for r in rs])
        ems = np.array([r["em_strict"] for r in rs])
        eml = np.array([r["em_lenient"] for r in rs])
        hashes = np.mean([r["n_with_hash_format"] for r in rs])
        gs = np.mean([r.get("gradient_samples", 0) for r in rs])
        gt = np.mean([r.get("gradient_tokens", 0) for r in rs])
        ts = np.mean([r.get("train_seconds", 0) for r in rs])
        es = np.mean([r["nll_eval_seconds"] + r["em_eval_seconds"] for r in rs])
        L.append(
            f"| {cond} | {'-' if cond == 'base model' else len(rs)} | {_mean_sd(nll, '.4f')} | "
            f"{_mean_sd(ems, '.3f')} | {_mean_sd(eml, '.3f')} | {hashes:.1f}/{st['em_n']} | "
            f"{int(gs) if gs else '-'} | {int(gt) if gt else '-'} | "
            f"{ts:.0f} | {es:.0f} |"
        )
    L.append("")
    L.append(
        "Paired deltas (condition minus reference, same seed; mean ± sd over seeds, and in how "
        "many seeds the condition was better / worse / tied). NLL: lower is better; EM: higher is "
        "better.\n"
    )
    L.append(
        "| condition | Δ NLL vs random | Δ EM strict vs random | Δ NLL vs full data | "
        "Δ EM strict vs full data |"
    )
    L.append("|---|---:|---:|---:|---:|")
    for cond in (*PRUNING, "random"):
        if cond not in by:
            continue
        cells = []
        for ref in ("random", "full data"):
            if ref == cond:
                cells += ["-", "-"]
                continue
            cells.append(_delta_cell(_paired(by, cond, ref, "nll"), ".4f", True))
            cells.append(_delta_cell(_paired(by, cond, ref, "em_strict"), ".3f", False))
        L.append(f"| {cond} | " + " | ".join(cells) + " |")
    L.append("")
    # per-seed numbers and wall time
    L.append(
        "Per-seed held-out NLL / EM strict (wall time summed over the seed's trained conditions):\n"
    )
    conds = [c for c in CONDITIONS + EXTRA_CONDITIONS if c in by and c != "base model"]
    L.append("| seed | " + " | ".join(conds) + " | wall s |")
    L.append("|---:|" + "---:|" * (len(conds) + 1))
    for s in seeds:
        cells = []
        for c in conds:
            r = by[c].get(s)
            cells.append(f"{r['nll']:.4f} / {r['n_em_strict']}" if r else "-")
        wall = sum(by[c][s]["wall_seconds"] for c in conds if s in by[c])
        L.append(f"| {s} | " + " | ".join(cells) + f" | {wall:.0f} |")
    if "base model" in by:
        b = by["base model"][None]
        L.append(
            f"\nBase model (no training, evaluated once): NLL {b['nll']:.4f}, EM strict "
            f"{b['n_em_strict']}/{st['em_n']}, {b['wall_seconds']:.0f} s."
        )
    L.append("")
    L.append(_reading(by, st, seeds))
    return "\n".join(L) + "\n"


def _reading(by: dict, st: dict, seeds: list[int]) -> str:
    out = [f"**Verdict (computed from the numbers above, {len(seeds)} seed(s)).** "]
    for cond in PRUNING:
        if cond not in by:
            continue
        parts = []
        for ref in ("random", "full data"):
            d = _paired(by, cond, ref, "nll")
            if len(d):
                parts.append(f"vs {ref}: {_verdict_nll(d)} (Δ NLL {d.mean():+.4f})")
        if parts:
            out.append(f"{cond} held-out NLL " + "; ".join(parts) + ". ")
    comp = []
    for cond in ("q-tuning static", "q-tuning dynamic"):
        rs = list(by.get(cond, {}).values())
        if not rs or "random" not in by:
            continue
        if cond == "q-tuning static" and rs[0].get("triage"):
            q = rs[0]["triage"]["quadrants"]
            mix = f"Q2 {q['Q2']} / Q4 {q['Q4']} of {q['kept']} kept (fill-up {q['fill_up']})"
        elif rs[0].get("q2_q4_fill"):
            q2, q4, fill = np.sum([r["q2_q4_fill"] for r in rs], axis=0) / len(rs)
            mix = f"per run on average Q2 {q2:.1f} / Q4 {q4:.1f} (fill-up {fill:.1f})"
        else:
            mix = "composition not recorded"
        tok_ratio = np.mean([r["gradient_tokens"] for r in rs]) / np.mean(
            [r["gradient_tokens"] for r in by["random"].values()]
        )
        comp.append(f"{cond}: {mix}, {tok_ratio:.0%} of random's gradient tokens")
    if comp:
        out.append(
            "Q-Tuning keeps high-PPL/low-entropy (Q2, token-pruned) and low-PPL/high-entropy (Q4) "
            "samples; " + "; ".join(comp) + ". "
        )
    if "full data" in by and "random" in by:
        d = _paired(by, "full data", "random", "nll")
        if len(d):
            out.append(
                f"Full data ({round(1 / st['sample_ratio'])}x the gradient budget) vs random: "
                f"{_verdict_nll(d)} (Δ NLL {d.mean():+.4f}). "
            )
    em = [r["n_em_strict"] for rs in by.values() for r in rs.values()]
    base_em = by.get("base model", {}).get(None, {}).get("n_em_strict")
    if em:
        # EM: a difference of a few problems out of em_n is within binomial noise
        p = max(np.mean(em) / st["em_n"], 1 / st["em_n"])
        noise = 2 * math.sqrt(2 * st["em_n"] * p * (1 - p))
        spread = max(em) - min(em)
        out.append(
            f"Exact match ranges from {min(em)} to {max(em)} of {st['em_n']} problems across runs "
            f"(base model: {base_em}); at this rate, binomial noise alone makes two runs differ by "
            f"up to ~{noise:.1f} problems (2 sd), and the whole range across runs ({spread} "
            f"problem(s)) is {'within' if spread <= noise else 'larger than'} that. "
        )
    model = st.get("model")
    name = model.get("name", "?") if isinstance(model, dict) else str(model)
    out.append(
        f"Scale of this run: a {st['pool']}-record pool, {st['steps']} optimizer steps per "
        f"condition, {name}."
    )
    return "".join(out)


def _machine_text(res: dict) -> str:
    """Machine info and the 1-minute load averages the JSON holds (or that it holds none)."""
    timing = res.get("timing", {})
    machine = timing.get("machine")
    loads = [r["load_avg_1m"] for r in res["runs"] if r.get("load_avg_1m") is not None]
    loads += timing.get("load_avg_1m_samples", [])
    if not loads:
        return common.machine_sentence(machine)
    span = (
        f"1-minute load average recorded during the runs: {min(loads):.1f}-{max(loads):.1f} "
        f"({len(loads)} readings)."
    )
    if isinstance(machine, dict) and machine.get("load_average_at_start"):
        return f"{common.machine_sentence(machine)} {span}"
    return f"Machine not recorded in this run's JSON. {span}"


def plot(res: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dataprune.atomic import atomic_path

    by = _by_condition(res["runs"])
    conds = [c for c in CONDITIONS + EXTRA_CONDITIONS if c in by]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    rng = np.random.default_rng(0)
    for i, c in enumerate(conds):
        v = np.array([r["nll"] for r in by[c].values()])
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(v)), v, color="C0", alpha=0.7, zorder=3)
        ax.errorbar(
            i + 0.22,
            v.mean(),
            yerr=v.std(ddof=1) if len(v) > 1 else 0,
            fmt="s",
            color="C3",
            capsize=4,
            zorder=4,
        )
    if "random" in by:
        rmean = float(np.mean([r["nll"] for r in by["random"].values()]))
        ax.axhline(rmean, color="grey", ls="--", lw=1, label="random (mean)")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(range(len(conds)))
    ax.set_xticklabels([c.replace(" (", "\n(") for c in conds], rotation=20, fontsize=8)
    ax.set_ylabel("held-out response NLL (lower = better)")
    n = len({r["seed"] for r in res["runs"] if r["seed"] is not None})
    ax.set_title(f"Q-Tuning outcome, SmolLM2-135M LoRA on GSM8K: seeds (dots), mean ± sd, n={n}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def report(res: dict, results_path: Path) -> None:
    md = render_md(res)
    png = results_path.with_suffix(".png")
    plot(res, png)
    md += f"\n![held-out NLL per condition](results/{png.name})\n"
    common.write_text(results_path.with_suffix(".md"), md)
    common.rebuild_results_md()
    print(md, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
