"""Demo step: check calibration sets with the calibration report, then prune SmolLM2 with Wanda
from each: the default (random) against k-center on the model's own activations."""

from __future__ import annotations

from typing import Any

TITLE = (
    "Prune SmolLM2-135M to 50% with Wanda: calibration report, then random (default) vs "
    "activation k-center"
)
N_SAMPLES = 8
SEQ_LEN = 64
EVAL_TOKENS = 512


def run(ctx: Any) -> list[str]:
    from dataprune.calibration import build_calibration_set, calibration_report
    from dataprune.model_pruning import MagnitudePruner, WandaPruner, compare_calibration
    from dataprune.models import load_causal_lm, resolve_causal_lm

    if "records" not in ctx.state:  # run on its own: load what step 10 leaves behind
        from dataprune.demo.data import load_humaneval_sft, sft_text

        records = load_humaneval_sft(random_state=ctx.random_state)
        ctx.state.update(records=records, texts=[sft_text(r) for r in records])
    records, texts = ctx.state["records"], ctx.state["texts"]
    originals = [i for i, r in enumerate(records) if "injected_duplicate_of" not in r]
    n_pool = (len(originals) * 3) // 4
    pool, held_out = originals[:n_pool], originals[n_pool:]

    model, tok = load_causal_lm()  # dtype auto (bf16 where fast); Wanda's statistics are float32
    common = {"n_samples": N_SAMPLES, "seq_len": SEQ_LEN, "chunking": "truncate"}
    pool_texts = [texts[i] for i in pool]
    sets = {
        "random": build_calibration_set(
            pool_texts, tok, selector="random", random_state=ctx.random_state, **common
        ),
        "kcenter": build_calibration_set(
            pool_texts,
            tok,
            selector="kcenter",
            space="activations",  # the model's own hidden states, not a sentence encoder's
            model=model,
            random_state=ctx.random_state,
            **common,
        ),
    }
    eval_texts = {"held-out HumanEval": [texts[i] for i in held_out]}
    # before any pruning: how well does each set cover the model's activations on the target text?
    report = calibration_report(sets, model, tok, eval_texts["held-out HumanEval"], seq_len=SEQ_LEN)
    report.save(ctx.output_dir / "calibration_report.json")
    cov = {s["name"]: s["coverage_mean"] for s in report.sets}
    plot = ctx.output_dir / "model_pruning.png"
    wanda = compare_calibration(
        model,
        WandaPruner(sparsity=0.5),
        sets,
        eval_texts,
        seq_len=256,
        max_eval_tokens=EVAL_TOKENS,
        plot_path=plot,
    )
    magnitude = compare_calibration(
        model,
        MagnitudePruner(sparsity=0.5),
        {"magnitude (no data)": None},
        eval_texts,
        tokenizer=tok,
        seq_len=256,
        max_eval_tokens=EVAL_TOKENS,
        include_dense=False,
    )
    rows = {r["calibration"]: r for r in wanda.rows + magnitude.rows}
    wanda.save(ctx.output_dir / "model_pruning.json")
    e = "held-out HumanEval"
    dense = rows["dense"]["perplexity"]
    lines = [
        f"{resolve_causal_lm().name}: 50% unstructured Wanda on the 210 linear layers of its 30 "
        f"decoder blocks; calibration {N_SAMPLES} x <= {SEQ_LEN} tokens from {len(pool)} "
        f"HumanEval problems; perplexity on {wanda.eval_tokens[e]} tokens of {len(held_out)} "
        "held-out problems",
        f"perplexity: dense {dense:.2f} | magnitude {rows['magnitude (no data)']['perplexity']:.2f}"
        f" | Wanda+random (default) {rows['random']['perplexity']:.2f}"
        f" | Wanda+k-center (activations) {rows['kcenter']['perplexity']:.2f}",
        f"calibration report before pruning (coverage of the held-out activations, lower = "
        f"better): random {cov['random']:.4f}, k-center {cov['kcenter']:.4f} -> "
        f"{ctx.output_dir / 'calibration_report.json'}",
        f"prune time: Wanda {rows['random']['prune_time_s']:.1f} s / "
        f"{rows['kcenter']['prune_time_s']:.1f} s, magnitude "
        f"{rows['magnitude (no data)']['prune_time_s']:.1f} s; sparsity of pruned layers "
        f"{100 * rows['kcenter']['sparsity']:.1f}%",
        f"plot -> {plot}; table -> {ctx.output_dir / 'model_pruning.json'} "
        "(full comparison with seeds and the default's evidence: benchmarks/model_pruning.py; "
        "CLI: dataprune calibration-report, dataprune prune-model)",
    ]
    return lines
