"""Train a Provence-style pruner on SQuAD v2 sentence labels (CPU-friendly, resumable).

Loss per batch of windows (query + passage, see :mod:`dataprune.rag.windows`)::

    token_loss_weight    * BCE(token keep logit, sentence label)            (passage tokens only)
  + sentence_loss_weight * BCE(mean token logit of each sentence, label)    (sentence-pooled)
  + rank_loss_weight     * BCE(rank logit, "window holds an answer sentence")

Relevant tokens / sentences are up-weighted by ``pos_weight`` and the head biases start at the
optimal constant (prior log-odds + ``log(pos_weight)``, measured with the match term in place),
which together with the sentence-pooled term keeps the tagger from collapsing to "drop
everything" (what a naive per-token tagger does on this data). The default ``query_match``
keep-head (:class:`~dataprune.rag.model.QueryMatchHead`) starts from the encoder's own
query-sentence similarity; SQuAD v2's unanswerable questions (whose most similar sentence is
labelled irrelevant) can be down-sampled in training with ``unanswerable_share``. Collapse is checked on a
held-out validation article at every evaluation; the best validation checkpoint (sentence average
precision) is kept, and a run whose best checkpoint is still collapsed raises
:class:`TrainingCollapsedError`. The training state is saved every ``checkpoint_every`` steps and
a re-run with the same output folder resumes from it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.rag.batching import collate, collate_states, schedule_batches
from dataprune.rag.config import TrainConfig
from dataprune.rag.train_data import build_card, prepare_training_data, window_targets
from dataprune.rag.train_validation import (
    EVAL_THRESHOLDS,
    TrainingCollapsedError,
    calibrate_default,
    collapse_kind,
    evaluate_examples,
    metrics_at,
)

logger = logging.getLogger(__name__)

__all__ = ["EVAL_THRESHOLDS", "TrainResult", "TrainingCollapsedError", "train_pruner"]

STATE_NAME = "train_state.pt"
CARD_NAME = "card.json"


@dataclass
class TrainResult:
    """What :func:`train_pruner` produced."""

    output_dir: Path
    card: dict[str, Any]
    model: Any
    tokenizer: Any


def _init_biases(
    model: Any,
    items: list[dict],
    prior: float,
    rank_prior: float,
    pad_id: int,
    *,
    pos_weight: float,
    random_state: int,
    n_probe: int = 64,
) -> None:
    """Set the head biases so the initial mean logits are the optimal constant predictions.

    Keep logits start at the label log-odds plus ``log(pos_weight)`` (the minimiser of the
    up-weighted BCE for a constant), rank logits at the window log-odds. With the
    ``query_match`` head the match term shifts every logit by several units; without this the
    first steps would only learn the offset.
    """
    import torch

    with torch.no_grad():
        model.token_head.bias.zero_()
        model.rank_head.bias.zero_()
        idx = np.random.default_rng(random_state).permutation(len(items))[:n_probe]
        was = model.training
        model.eval()
        b = collate(items, idx, pad_id)
        out = model(b["ids"], b["mask"], b["types"], b["seg"], b["em"])
        model.train(was)
        tok_mean = float(out.token_logits[b["y"] >= 0].mean())
        rank_mean = float(out.rank_logits.mean())
        keep_offset = math.log(prior / (1 - prior)) + math.log(pos_weight)
        model.token_head.bias.fill_(keep_offset - tok_mean)
        model.rank_head.bias.fill_(math.log(rank_prior / (1 - rank_prior)) - rank_mean)


def _losses(out: Any, batch: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    import torch
    from torch.nn import functional as nnf

    z = out.token_logits.float()
    y = batch["y"]
    valid = y >= 0
    pw = torch.tensor(config.pos_weight)
    token_loss = nnf.binary_cross_entropy_with_logits(z[valid], y[valid].float(), pos_weight=pw)
    # Sentence-pooled loss: mean token logit per (window, sentence).
    sent = batch["sent"]
    n_sent = int(sent.max().item()) + 1 if valid.any() else 1
    seg = (torch.arange(z.shape[0]).unsqueeze(1) * n_sent + sent.clamp(min=0))[valid]
    n_seg = z.shape[0] * n_sent
    sums = torch.zeros(n_seg).index_add(0, seg, z[valid])
    counts = torch.zeros(n_seg).index_add(0, seg, torch.ones_like(z[valid]))
    labels = torch.zeros(n_seg).index_add(0, seg, y[valid].float())
    present = counts > 0
    mean_logit = sums[present] / counts[present]
    sent_y = (labels[present] / counts[present]).round()
    sentence_loss = nnf.binary_cross_entropy_with_logits(mean_logit, sent_y, pos_weight=pw)
    rank_loss = nnf.binary_cross_entropy_with_logits(out.rank_logits.float(), batch["rank"])
    total = (
        config.token_loss_weight * token_loss
        + config.sentence_loss_weight * sentence_loss
        + config.rank_loss_weight * rank_loss
    )
    return {"loss": total, "token": token_loss, "sentence": sentence_loss, "rank": rank_loss}


def train_pruner(
    config: TrainConfig,
    output_dir: str | os.PathLike[str],
    *,
    command: str | None = None,
    resume: bool = True,
    show_progress_bar: bool | None = None,
) -> TrainResult:
    """Train, select on validation, evaluate on held-out articles and write a compact checkpoint.

    Parameters
    ----------
    config : TrainConfig
    output_dir : path
        Receives ``pruner_config.json``, ``model.safetensors``, ``card.json`` and (while
        training) ``train_state.pt`` for resuming.
    command : str, optional
        The command line that reproduces the run (recorded in the card).
    resume : bool, default=True
        Continue from ``train_state.pt`` when it exists and matches ``config``.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingCollapsedError
        When the best validation checkpoint still keeps (almost) nothing or everything.
    """
    import torch

    from dataprune.atomic import atomic_path, atomic_write_json
    from dataprune.progress import progress
    from dataprune.rag.frozen_cache import (
        attention_mask_builder,
        cache_frozen_layers,
        cached_path_matches,
        n_frozen_layers,
        top_forward,
    )
    from dataprune.rag.model import (
        build_pruner_model,
        save_pruner_model,
        trainable_parameter_names,
    )

    t_start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rs = config.random_state
    torch.manual_seed(rs)
    np.random.seed(rs % (2**32))

    td = prepare_training_data(config)
    split, train_ex, val_ex, test_ex, kinds = td.split, td.train, td.val, td.test, td.kinds
    logger.info(
        "split by article: %d train / %d val / %d test articles; %d training pairs %s",
        len(split.train),
        len(split.val),
        len(split.test),
        len(train_ex),
        kinds,
    )

    model, tokenizer, resolved = build_pruner_model(config.pruner, random_state=rs)
    items = window_targets(train_ex, tokenizer, config)
    lengths = np.array([len(it["ids"]) for it in items])
    tok_y = np.concatenate([it["y"][it["y"] >= 0] for it in items])
    prior = float(np.clip(tok_y.mean(), 1e-3, 0.5))
    rank_prior = float(np.clip(np.mean([it["rank"] for it in items]), 1e-3, 0.999))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    _init_biases(
        model, items, prior, rank_prior, pad, pos_weight=config.pos_weight, random_state=rs
    )
    batches = schedule_batches(lengths, config.batch_size, config.max_steps, rs)

    # the match head's projection starts as the identity: it moves at the encoder's pace
    head_params = [
        p
        for n, p in model.named_parameters()
        if p.requires_grad and "_head" in n and not n.startswith("match_head.proj")
    ]
    head_ids = {id(p) for p in head_params}
    enc_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    optim = torch.optim.AdamW(
        [
            {"params": enc_params, "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": head_params, "lr": config.head_lr, "weight_decay": 0.0},
        ]
    )
    warm = max(1, int(config.warmup_ratio * config.max_steps))

    def lr_lambda(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (config.max_steps - step) / max(1, config.max_steps - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
    names = trainable_parameter_names(model)
    params = dict(model.named_parameters())
    # stop_after_steps does not change the trajectory, so it is not part of the fingerprint
    fp_items = {k: v for k, v in config.to_dict().items() if k != "stop_after_steps"}
    fingerprint = hashlib.sha256(repr(sorted(fp_items.items())).encode()).hexdigest()[:16]
    end = min(config.max_steps, config.stop_after_steps or config.max_steps)
    state_path = out / STATE_NAME
    step = 0
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        if state.get("fingerprint") == fingerprint:
            with torch.no_grad():
                for n in names:
                    params[n].copy_(state["params"][n])
            optim.load_state_dict(state["optim"])
            sched.load_state_dict(state["sched"])
            torch.set_rng_state(state["torch_rng"])
            step, history, best = state["step"], state["history"], state["best"]
            logger.info("resuming from step %d (%s)", step, state_path)
        else:
            logger.warning("ignoring %s: it was written for different options", state_path)

    n_frozen = n_frozen_layers(model) if config.cache_frozen_layers else 0
    mask_name, build_mask = attention_mask_builder()
    if n_frozen and not cached_path_matches(model, items, n_frozen, pad, build_mask):
        n_frozen = 0
    if n_frozen and step < end:
        logger.info(
            "caching the %d frozen bottom layers for %d windows (attention mask: %s)",
            n_frozen,
            len(items),
            mask_name,
        )
        cache_frozen_layers(model, items, n_frozen, pad_id=pad, show_progress_bar=show_progress_bar)

    def snapshot() -> dict[str, Any]:
        return {n: params[n].detach().clone() for n in names}

    def save_state() -> None:
        state = {
            "fingerprint": fingerprint,
            "params": snapshot(),
            "optim": optim.state_dict(),
            "sched": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "history": history,
            "best": best,
        }
        with atomic_path(state_path) as tmp:
            torch.save(state, tmp)

    def validate() -> None:
        nonlocal best
        if not val_ex:
            best = {"step": step, "params": snapshot(), "score": float(step), "collapse": None}
            return
        m = evaluate_examples(model, tokenizer, val_ex, thresholds=(0.1, 0.3, 0.5))
        row = metrics_at(m)
        collapse = collapse_kind(m)
        rec = {
            "step": step,
            "sentence_ap": round(float(m["sentence_ap"]), 4),
            "recall@0.1": round(float(row["recall"]), 4),
            "compression@0.1": round(float(row["compression"]), 4),
            "f2@0.1": round(float(row["f2"]), 4),
            "passage_auc": round(float(row["passage_auc"]), 4),
            "collapse": collapse,
            "elapsed_s": round(time.perf_counter() - t_start, 1),
        }
        history.append(rec)
        logger.info("validation %s", rec)
        if collapse and step >= warm:
            logger.warning(
                "step %d: the keep-head looks collapsed (%s) on the validation article",
                step,
                collapse,
            )
        # plain Python floats: the resume state loads with torch.load(weights_only=True)
        score = float(m["sentence_ap"]) if not collapse else -1.0
        if best is None or score > best["score"]:
            best = {"step": step, "params": snapshot(), "score": score, "collapse": collapse}

    model.train()
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if config.precision == "bfloat16"
        else torch.autocast("cpu", enabled=False)
    )
    bar = progress(total=end, initial=step, show_progress_bar=show_progress_bar, desc="train")
    run_loss: list[float] = []
    while step < end:
        batch = collate(items, batches[step], pad)
        with autocast:
            if n_frozen:
                h = collate_states(items, batches[step]).float()
                out_b = top_forward(
                    model, h, batch["mask"], batch["seg"], batch["em"], n_frozen, build_mask
                )
            else:
                out_b = model(
                    batch["ids"], batch["mask"], batch["types"], batch["seg"], batch["em"]
                )
        losses = _losses(out_b, batch, config)
        optim.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_([params[n] for n in names], 1.0)
        optim.step()
        sched.step()
        step += 1
        run_loss.append(float(losses["loss"].detach()))
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(run_loss[-10:]):.3f}")
            logger.debug(
                "step %d loss %.4f (token %.4f sentence %.4f rank %.4f)",
                step,
                *(float(losses[k].detach()) for k in ("loss", "token", "sentence", "rank")),
            )
        if step % config.eval_every == 0 or step == end:
            validate()
            model.train()
        if step % config.checkpoint_every == 0 and step < end:
            save_state()
    bar.close()
    if best is None or not history or history[-1]["step"] != end:
        validate()
    with torch.no_grad():
        for n in names:
            params[n].copy_(best["params"][n])
    model.eval()
    if best.get("collapse"):
        raise TrainingCollapsedError(
            f"training collapsed to '{best['collapse']}' (best validation step {best['step']}); "
            "try a lower --lr, more --steps or a larger --pos-weight"
        )
    logger.info(
        "evaluating the best checkpoint (step %d) on %d held-out passages",
        best["step"],
        len(test_ex),
    )
    calibration = calibrate_default(model, tokenizer, val_ex, config)
    thresholds = EVAL_THRESHOLDS
    if calibration is not None:
        thresholds = tuple(sorted({*EVAL_THRESHOLDS, calibration.threshold}))
    held_out = evaluate_examples(
        model,
        tokenizer,
        test_ex,
        thresholds=thresholds,
        aggregations=("mean_prob", "vote"),
        show_progress_bar=show_progress_bar,
    )
    test_collapse = collapse_kind(held_out)
    if test_collapse:
        raise TrainingCollapsedError(
            f"the trained pruner is collapsed ({test_collapse}) on the held-out articles"
        )
    wall = time.perf_counter() - t_start
    card = build_card(
        config,
        out,
        td,
        command=command,
        n_windows=len(items),
        steps=end,
        best_step=best["step"],
        prior=prior,
        n_frozen=n_frozen,
        mask_name=mask_name,
        history=history,
        held_out=held_out,
        backbone=resolved.describe(),
        wall_s=wall,
        calibration=calibration,
    )
    save_pruner_model(model, out, extra={"card": CARD_NAME})
    size = sum(f.stat().st_size for f in out.iterdir() if f.name != STATE_NAME)
    card["checkpoint_bytes"] = size
    atomic_write_json(out / CARD_NAME, card)
    if state_path.exists():
        state_path.unlink()
    at = card["held_out"]["at_default"]
    logger.info(
        "held-out (T=%g): recall %.3f, compression %.3f, answer retention %.3f, AP %.3f; "
        "checkpoint %.1f MB in %s",
        at["threshold"],
        at["recall"],
        at["compression"],
        at["answer_retention"],
        held_out["sentence_ap"],
        size / 1e6,
        out,
    )
    return TrainResult(out, card, model, tokenizer)
