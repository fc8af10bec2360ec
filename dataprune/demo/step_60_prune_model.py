"""Demo step: prune SmolLM2 with Wanda from calibration samples chosen by k-center vs random."""

from __future__ import annotations

from typing import Any

TITLE = "Prune SmolLM2-135M to 50% with Wanda: calibration chosen by k-center vs random"
N_SAMPLES = 8
SEQ_LEN = 64
EVAL_TOKENS = 512


def run(ctx: Any) -> list[str]:
    import numpy as np

    from dataprune.calibration import build_calibration_set
    from dataprune.model_pruning import MagnitudePruner, WandaPruner, compare_calibration
    from dataprune.models import load_causal_lm, resolve_causal_lm

    if "embeddings" not in ctx.state:  # run on its own: build what step 10 leaves behind
        from dataprune.demo.data import load_humaneval_sft, sft_text
        from dataprune.embeddings import embed_texts

        records = load_humaneval_sft(random_state=ctx.random_state)
        texts = [sft_text(r) for r in records]
        X = embed_texts(texts, cache_dir=ctx.output_dir / "embedding-cache")
        ctx.state.update(records=records, texts=texts, embeddings=X)
    records, texts = ctx.state["records"], ctx.state["texts"]
    X = np.asarray(ctx.state["embeddings"], dtype=np.float32)
    originals = [i for i, r in enumerate(records) if "injected_duplicate_of" not in r]
    n_pool = (len(originals) * 3) // 4
    pool, held_out = originals[:n_pool], originals[n_pool:]

    model, tok = load_causal_lm()  # bf16 forwards; Wanda's statistics are float32
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
            embeddings=X[pool],  # the step-10 embeddings, no re-encoding
            random_state=ctx.random_state,
            **common,
        ),
    }
    eval_texts = {"held-out HumanEval": [texts[i] for i in held_out]}
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
        f" | Wanda+random {rows['random']['perplexity']:.2f}"
        f" | Wanda+k-center {rows['kcenter']['perplexity']:.2f}",
        f"prune time: Wanda {rows['random']['prune_time_s']:.1f} s / "
        f"{rows['kcenter']['prune_time_s']:.1f} s, magnitude "
        f"{rows['magnitude (no data)']['prune_time_s']:.1f} s; sparsity of pruned layers "
        f"{100 * rows['kcenter']['sparsity']:.1f}%",
        f"plot -> {plot}; table -> {ctx.output_dir / 'model_pruning.json'} "
        "(full comparison with seeds: benchmarks/model_pruning.py; CLI: dataprune prune-model)",
    ]
    return lines
