"""Demo step: Q-Tuning triage of a slice of the demo's SFT records with SmolLM2."""

from __future__ import annotations

import time
from typing import Any

TITLE = "Q-Tuning: triage SFT samples and tokens on the Error-Uncertainty plane (SmolLM2)"
N_SAMPLES = 32
MAX_LENGTH = 256


def run(ctx: Any) -> list[str]:
    import numpy as np

    from dataprune.io import write_records
    from dataprune.manifest import RunTimer, build_manifest
    from dataprune.models import load_causal_lm
    from dataprune.qtuning import QTuningConfig, QTuningTriage, write_triage

    records = ctx.state.get("records")
    if records is None:  # step run on its own
        from dataprune.demo.data import load_humaneval_sft

        records = load_humaneval_sft(random_state=ctx.random_state)
    rng = np.random.default_rng(ctx.random_state)
    pick = sorted(rng.choice(len(records), size=min(N_SAMPLES, len(records)), replace=False))
    sample = [records[i] for i in pick]
    # one deliberately broken record: a response that belongs to another problem
    broken = dict(sample[0])
    broken["response"] = sample[-1]["response"]
    broken["id"] = f"{broken['id']}-mismatched"
    sample.append(broken)
    timer = RunTimer()
    t0 = time.perf_counter()
    model, tok = load_causal_lm()
    t_load = time.perf_counter() - t0
    cfg = QTuningConfig(sample_ratio=0.25)  # every other option at its default
    t0 = time.perf_counter()
    tri = QTuningTriage(
        cfg,
        model=model,
        tokenizer=tok,
        batch_size=8,
        max_length=MAX_LENGTH,
        random_state=ctx.random_state,
    ).fit([r["prompt"] for r in sample], [r["response"] for r in sample])
    t_fit = time.perf_counter() - t0
    res = tri.result_
    out = ctx.output_dir / "triage_kept.jsonl"
    write_records(sample, ctx.output_dir / "triage_input.jsonl")
    manifest = build_manifest(
        command="dataprune demo (triage step)",
        parameters={**cfg.to_dict(), "max_length": MAX_LENGTH},
        random_state=ctx.random_state,
        inputs={"demo HumanEval slice": str(len(sample))},
        counts={"n_input": len(sample), "n_output": len(res.kept_indices)},
        models={"causal_lm": model.dataprune_source.describe()},
        timer=timer,
    )
    paths = write_triage(out, sample, res, tok, manifest=manifest)
    c = res.samples.counts()
    tokens = res.token_counts()
    n_tok = sum(len(e.input_ids) for e in res.encodings)
    j = len(sample) - 1
    lines = [
        f"scored {len(sample)} HumanEval SFT samples ({n_tok} tokens, 1 with a mismatched "
        f"response) with {model.dataprune_source.name} in {t_fit:.1f} s (model load {t_load:.1f} s)",
        f"quadrants: Q1 noise {c['Q1']}, Q2 misconception {c['Q2']}, "
        f"Q3 redundant {c['Q3']}, Q4 calibration {c['Q4']} (kept whole); alpha={res.samples.alpha:.3f}, "
        f"{c['fill_up']} added by the fill={cfg.fill} fill-up -> kept exactly {c['kept']} = round({len(sample)} x 0.25)",
        f"tokens: {tokens['kept_tokens']} of {tokens['response_tokens_in_kept_samples']} response "
        f"tokens in kept samples carry loss (token_ratio={cfg.token_ratio}: Q2 samples keep "
        f"{cfg.token_ratio:.0%} of their tokens)"
        + (f"; {c['abrupt_end']} left out for an abrupt end" if cfg.abrupt_end else "")
        + (
            f"; {c['misaligned']} left out as misaligned (IFD >= {cfg.max_ifd:g})"
            if cfg.max_ifd
            else ""
        ),
        f"mismatched record {sample[j]['id']}: PPL {res.perplexity[j]:.1f} (median "
        f"{np.median(res.perplexity):.1f})"
        + ("" if res.ifd is None else f", IFD {res.ifd[j]:.2f} (median {np.median(res.ifd):.2f})")
        + f", {_fate(res, j)}",
        f"kept samples with labels (-100 where pruned) -> {paths['kept']}",
        f"scores -> {paths['scores']}; EU-plane plot -> {paths['plot']}",
    ]
    ctx.state.update(triage=res)
    return lines


def _fate(res: Any, j: int) -> str:
    """Why sample ``j`` was kept or dropped: the rule that decided, and whether it can change."""
    from dataprune.qtuning.sample_triage import (
        ABRUPT_END,
        CORNER,
        DUPLICATE,
        FILL_UP,
        MISALIGNED,
        SELECTION_NAMES,
        TRIMMED,
    )

    tri, fill = res.samples, res.config.fill
    sel, q = int(tri.selection[j]), f"Q{int(tri.quadrant[j])}"
    t, p = tri.thresholds, res.perplexity[j]
    corner = "a corner"  # per-source triage: each source has its own thresholds
    if t:
        corner = f"the {'Q2' if p > t['ppl_hi'] else 'Q4'} corner at alpha={tri.alpha:.3f}"
    if sel in (DUPLICATE, ABRUPT_END, MISALIGNED):
        return f"{q}, left out by the {SELECTION_NAMES[sel]!r} noise rule"
    if sel == CORNER:
        return f"{q}, kept: in {corner}"
    if sel == FILL_UP:
        return f"{q}, kept by the fill={fill} fill-up (no noise rule flagged it)"
    where = f"in {corner} but " if sel == TRIMMED else ""
    if fill == "random":  # a seeded uniform draw: the plane did not decide
        return (
            f"dropped (labelled {q}): {where}not taken by the fill=random draw; no noise rule "
            "flagged it, so another random_state can keep it"
        )
    return f"dropped (labelled {q}): " + (
        f"{where}trimmed by the fill={fill} order to reach exactly K"
        if sel == TRIMMED
        else f"outside the corners and not reached by the fill={fill} fill-up"
    )
