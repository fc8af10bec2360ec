"""One LoRA SFT harness for the benchmarks that fine-tune SmolLM2-135M-Instruct on the CPU.

Pieces, usable alone or together:

* :func:`load_base` / :func:`add_lora` / :func:`make_optimizer`: the base model (through the
  package's own :func:`dataprune.models.load_causal_lm`), its LoRA wrap (seeded init) and AdamW with
  a linear schedule. ``benchmarks/qtuning_outcome.py`` feeds these to its ``transformers`` Trainer.
* :func:`train_lora`: a plain, deterministic training loop on (prompt, response) pairs, see
  :class:`SFTRunConfig`. Tokenisation is :func:`dataprune.sft_encoding.encode_sft` (the chat template
  when the tokenizer has one); only response tokens carry loss.
* :func:`heldout_nll`: mean response-token NLL by :func:`dataprune.lm_scoring.score_sft`.
* the result cache of these runs (``run_key`` / ``run_cached``) is ``benchmarks/sft_run_cache.py``.

The caller is expected to have the repository root on ``sys.path`` (every benchmark script does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from benchmarks import _common as common
from benchmarks.sft_run_cache import Pair


@dataclass(frozen=True)
class SFTRunConfig:
    """Everything that defines one :func:`train_lora` run (all of it enters the cache key).

    Attributes
    ----------
    steps : int, default=60
        Optimizer steps.
    micro_batch, grad_accum : int, default=4, 2
        Samples per forward pass, forward passes per step: effective batch ``micro_batch *
        grad_accum`` (8). A step's loss is the summed response-token NLL of the effective batch
        over its response-token count, so the micro-batch split changes only rounding.
    lr, warmup_steps : float, int, default=1e-3, 0
        AdamW peak learning rate (betas 0.9/0.999, eps 1e-8, no weight decay); linear warmup
        from 0 over ``warmup_steps``, then linear decay to 0 at ``steps``.
    max_grad_norm : float or None, default=1.0
        Gradient clipping (``None``: none).
    max_length : int or None, default=None
        Token window per sample (:func:`dataprune.sft_encoding.encode_sft` truncation). ``None``:
        :func:`resolve_max_length` of the training pairs: their ``max_length_quantile`` (0.99)
        token length rounded up to a multiple of 8, at most ``max_length_cap`` (1024). A benchmark
        comparing subsets of one pool should resolve it once on the whole pool and pass it, so
        every condition trains with the same window.
    lora_r, lora_alpha, lora_dropout, target_modules
        LoRA rank 16, alpha 32, no dropout, ``_common.LORA_TARGET_MODULES``.
    seed : int, default=0
        LoRA init (``torch.manual_seed``) and data order.
    dtype : str, default="float32"
        Base weight dtype.
    n_threads : int or None, default=1
        ``torch.set_num_threads`` (process-wide) before training; results depend on it in the last
        bits, hence part of the config. ``None`` leaves the setting alone.
    model : str or None, default=None
        Model path or hub id; ``None`` is SmolLM2-135M-Instruct.
    """

    steps: int = 60
    micro_batch: int = 4
    grad_accum: int = 2
    lr: float = 1e-3
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    max_length: int | None = None
    max_length_quantile: float = 0.99
    max_length_cap: int = 1024
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = common.LORA_TARGET_MODULES
    seed: int = 0
    dtype: str = "float32"
    n_threads: int | None = 1
    model: str | None = None

    @property
    def effective_batch(self) -> int:
        return self.micro_batch * self.grad_accum


class TrainedLoRA(NamedTuple):
    """What :func:`train_lora` returns: the model with its adapter attached (eval mode), the
    tokenizer and a JSON-ready ``info`` dict (resolved max_length, losses, timings)."""

    model: Any
    tokenizer: Any
    info: dict[str, Any]


# ----------------------------------------------------------------------------- model pieces
def load_base(dtype: str = "float32", *, model: str | None = None) -> tuple[Any, Any]:
    """The base causal LM and tokenizer from :func:`dataprune.models.load_causal_lm` (eval mode).

    ``model=None`` is SmolLM2-135M-Instruct (offline package or cache); ``model.dataprune_source``
    says where it came from.
    """
    from dataprune.models import load_causal_lm

    return load_causal_lm(model, dtype=dtype)


def add_lora(
    model: Any,
    *,
    seed: int,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.0,
    target_modules: Sequence[str] = common.LORA_TARGET_MODULES,
) -> Any:
    """``model`` wrapped in a PEFT LoRA adapter, initialised after ``torch.manual_seed(seed)``."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def make_optimizer(
    model: Any, *, lr: float, steps: int, warmup_steps: int = 0, weight_decay: float = 0.0
) -> tuple[Any, Any]:
    """Fused AdamW over the trainable parameters and a linear warmup/decay schedule.

    The same optimizer and schedule ``transformers.Trainer`` builds by default for these
    arguments (``adamw_torch_fused``, betas 0.9/0.999, eps 1e-8, ``lr_scheduler_type="linear"``),
    so a Trainer given ``optimizers=make_optimizer(...)`` trains exactly as it would on its own.

    Returns
    -------
    optimizer, scheduler
        Call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for _, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay, fused=True
    )
    return opt, get_linear_schedule_with_warmup(opt, warmup_steps, steps)


# ------------------------------------------------------------------------------- tokenising
def token_lengths(tokenizer: Any, pairs: Sequence[Pair]) -> np.ndarray:
    """Untruncated token length of every pair under :func:`dataprune.sft_encoding.encode_sft`."""
    from dataprune.sft_encoding import encode_sft

    return np.array(
        [len(encode_sft(tokenizer, p, r, max_length=10**9).input_ids) for p, r in pairs]
    )


def resolve_max_length(
    tokenizer: Any, pairs: Sequence[Pair], *, quantile: float = 0.99, cap: int = 1024
) -> int:
    """``min(cap, ceil8(quantile of the pairs' token lengths))``: the window the data needs.

    Pairs longer than the result are truncated by :func:`~dataprune.sft_encoding.encode_sft` (prompt
    from the left first, then the response from the right).
    """
    q = float(np.quantile(token_lengths(tokenizer, pairs), quantile))
    return int(min(cap, 8 * math.ceil(q / 8)))


# --------------------------------------------------------------------------------- training
def _stream(n: int, seed: int) -> Iterator[int]:
    """Record indices without end: passes over ``range(n)``, each a new permutation drawn from one
    ``numpy`` generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    while True:
        yield from rng.permutation(n).tolist()


def _micro_batch_loss(
    model: Any, encs: Sequence[Any], pad_id: int, masks: Sequence[np.ndarray] | None = None
) -> Any:
    """Summed response-token NLL (float32) of ``encs``, projecting only response positions.

    ``masks[b]`` (bool, one per response token of ``encs[b]``) keeps only some tokens' loss.
    """
    import torch

    T = max(len(e.input_ids) for e in encs)
    ids = torch.full((len(encs), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(encs), T), dtype=torch.long)
    resp = torch.zeros((len(encs), T), dtype=torch.bool)
    for b, e in enumerate(encs):
        L = len(e.input_ids)
        ids[b, :L] = torch.from_numpy(e.input_ids)
        att[b, :L] = 1
        if masks is None:
            resp[b, :L] = torch.from_numpy(e.response_mask)
        else:
            pos = np.flatnonzero(e.response_mask)[np.asarray(masks[b], dtype=bool)]
            resp[b, torch.from_numpy(pos)] = True
    base = model.get_base_model()  # LoRA layers are injected in place, so they run here too
    hidden = base.get_decoder()(input_ids=ids, attention_mask=att).last_hidden_state
    sel = resp[:, 1:]  # position t-1 predicts token t
    logits = base.get_output_embeddings()(hidden[:, :-1][sel]).float()
    return torch.nn.functional.cross_entropy(logits, ids[:, 1:][sel], reduction="sum")


def _qtuning_inputs(encs: Sequence[Any], pad_id: int) -> dict[str, Any]:
    """Padded ``input_ids`` / ``attention_mask`` / ``labels`` (-100 off the response)."""
    import torch

    T = max(len(e.input_ids) for e in encs)
    ids = torch.full((len(encs), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(encs), T), dtype=torch.long)
    lab = torch.full((len(encs), T), -100, dtype=torch.long)
    for b, e in enumerate(encs):
        L = len(e.input_ids)
        x = torch.from_numpy(e.input_ids)
        ids[b, :L] = x
        att[b, :L] = 1
        m = torch.from_numpy(e.response_mask)
        lab[b, :L] = torch.where(m, x, torch.full_like(x, -100))
    return {"input_ids": ids, "attention_mask": att, "labels": lab}


def train_lora(
    pairs: Sequence[Pair],
    config: SFTRunConfig,
    *,
    loss_masks: Sequence[np.ndarray] | None = None,
    tokens_per_step: int | None = None,
    dynamic: Any = None,
) -> TrainedLoRA:
    """LoRA SFT of a freshly loaded base model on ``pairs`` (deterministic for its arguments).

    Records are visited in seeded shuffled passes (:func:`_stream`). By default each step takes
    ``effective_batch`` records; with ``tokens_per_step`` a step takes records until the
    loss-carrying response tokens seen so far reach ``(step + 1) * tokens_per_step`` (an equal
    *gradient-token* budget whatever each record keeps). A step's records are length-sorted into
    micro-batches (less padding). Loss: response-token NLL over the step's loss-carrying tokens
    (prompt tokens carry none). AdamW with linear warmup/decay (:func:`make_optimizer`), gradient
    clipping at ``max_grad_norm``.

    Parameters
    ----------
    loss_masks : sequence of bool ndarray, optional
        Per record, one flag per response token (after truncation to the window): which tokens
        carry loss (static Q-Tuning's token masks).
    tokens_per_step : int, optional
        The gradient-token budget per step (see above); required with ``dynamic``.
    dynamic : QTuningConfig, optional
        Dynamic Q-Tuning: records come in groups of ``round(micro_batch / sample_ratio)``, each
        triaged from its own forward pass by :func:`dataprune.qtuning.qtuning_loss` (the
        package's trainer loss); only the kept tokens carry loss and count against the budget.
        As in :class:`dataprune.qtuning.QTuningTrainer`, near-duplicates are left out of the
        stream once (``dedup``) and ``max_ifd`` scores the responses after an empty prompt.

    Returns
    -------
    TrainedLoRA
        ``model`` in eval mode with the adapter attached (not merged: merging into low-precision
        weights would round small deltas away), ``tokenizer``, ``info``.
    """
    import torch

    from dataprune.sft_encoding import encode_sft_pairs

    cfg = config
    if not pairs:
        raise ValueError("no training pairs")
    if min(cfg.steps, cfg.micro_batch, cfg.grad_accum) < 1:
        raise ValueError("steps, micro_batch and grad_accum must be >= 1")
    if dynamic is not None and (tokens_per_step is None or loss_masks is not None):
        raise ValueError("dynamic needs tokens_per_step and no loss_masks")
    if cfg.n_threads is not None:
        torch.set_num_threads(cfg.n_threads)
    model, tok = load_base(cfg.dtype, model=cfg.model)
    max_length = cfg.max_length or resolve_max_length(
        tok, pairs, quantile=cfg.max_length_quantile, cap=cfg.max_length_cap
    )
    encs = encode_sft_pairs(
        tok, [p for p, _ in pairs], [r for _, r in pairs], max_length=max_length
    )
    if loss_masks is not None:
        if len(loss_masks) != len(encs):
            raise ValueError(f"{len(loss_masks)} loss masks for {len(encs)} records")
        for i, (m, e) in enumerate(zip(loss_masks, encs)):
            if len(m) != e.n_response_tokens or not np.any(m):
                raise ValueError(
                    f"record {i}: loss mask of {len(m)} flags ({int(np.sum(m))} set) for "
                    f"{e.n_response_tokens} response tokens; expected one per token, >= 1 set"
                )
    n_loss = np.array(
        [int(np.sum(m)) for m in loss_masks]
        if loss_masks is not None
        else [e.n_response_tokens for e in encs]
    )
    if dynamic is not None:
        # a dynamic group is micro_batch / sample_ratio records in one forward with gradients:
        # without recomputation its activations exceed the machine's memory (24 GB); the
        # result is the same, only slower
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:  # the older name
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
    model = add_lora(
        model,
        seed=cfg.seed,
        r=cfg.lora_r,
        alpha=cfg.lora_alpha,
        dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
    )
    opt, sched = make_optimizer(model, lr=cfg.lr, steps=cfg.steps, warmup_steps=cfg.warmup_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    E, mb = cfg.effective_batch, cfg.micro_batch
    stream = _stream(len(encs), cfg.seed)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    losses, n_tokens, n_seen = [], 0, 0
    qstats = {
        "kept_samples": 0, "q2": 0, "q4": 0, "fill_up": 0, "abrupt_end": 0, "misaligned": 0,
        "groups": 0, "duplicates_left_out": 0,
    }  # fmt: skip
    group = empty = None
    if dynamic is not None:
        from dataprune.qtuning import qtuning_loss
        from dataprune.sft_encoding import empty_prompt_ids

        group = max(1, round(mb / dynamic.sample_ratio))
        # as QTuningTrainer: the training set deduplicated once, the IFD pass after an empty prompt
        empty = empty_prompt_ids(tok) if dynamic.max_ifd is not None else None
        if dynamic.dedup != "none":
            from dataprune.dedup import fuzzy_duplicates
            from dataprune.qtuning.config import DEDUP_THRESHOLD

            dup = fuzzy_duplicates(
                [f"{p}\n{r}" for p, r in pairs], threshold=DEDUP_THRESHOLD
            ).is_duplicate
            keep = np.flatnonzero(~dup)
            qstats["duplicates_left_out"] = int(dup.sum())
            stream = (int(keep[i]) for i in _stream(len(keep), cfg.seed))
    model.train()
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        opt.zero_grad(set_to_none=True)
        loss_step = 0.0
        if dynamic is not None:
            target = (step + 1) * tokens_per_step
            while n_tokens < target:
                idx = [next(stream) for _ in range(group)]
                n_seen += group
                loss, _, st = qtuning_loss(
                    model,
                    _qtuning_inputs([encs[i] for i in idx], pad_id),
                    dynamic,
                    empty_prompt_ids=empty,
                )
                (loss * st["kept_tokens"] / tokens_per_step).backward()
                loss_step += float(loss.detach()) * st["kept_tokens"] / tokens_per_step
                n_tokens += st["kept_tokens"]
                for k in ("kept_samples", "q2", "q4", "fill_up", "abrupt_end", "misaligned"):
                    qstats[k] += st[k]
                qstats["groups"] += 1
        else:
            if tokens_per_step is None:
                batch = [next(stream) for _ in range(E)]
            else:
                batch, target = [], (step + 1) * tokens_per_step
                while n_tokens + int(n_loss[batch].sum()) < target:
                    batch.append(next(stream))
            batch.sort(key=lambda i: len(encs[i].input_ids))
            n_step = int(n_loss[batch].sum())
            for lo in range(0, len(batch), mb):
                part = batch[lo : lo + mb]
                loss = (
                    _micro_batch_loss(
                        model,
                        [encs[i] for i in part],
                        pad_id,
                        None if loss_masks is None else [loss_masks[i] for i in part],
                    )
                    / n_step
                )
                loss.backward()
                loss_step += float(loss.detach())
            n_tokens += n_step
            n_seen += len(batch)
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        losses.append(round(loss_step, 5))
    seconds = time.perf_counter() - t0
    model.eval()
    info = {
        "max_length": max_length,
        "n_records": len(encs),
        "n_truncated": int(sum(e.truncated for e in encs)),
        "samples_seen": n_seen,
        "passes": round(n_seen / len(encs), 3),
        "response_tokens_seen": int(n_tokens),
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / cfg.steps, 2),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_per_step": losses,
    }
    if tokens_per_step is not None:
        info["tokens_per_step"] = int(tokens_per_step)
    if dynamic is not None:
        info["dynamic"] = {**qstats, "group": group}
    return TrainedLoRA(model, tok, info)


def heldout_nll(
    model: Any, tokenizer: Any, pairs: Sequence[Pair], *, max_length: int, batch_size: int = 8
) -> dict[str, Any]:
    """Response-token NLL of ``pairs`` under ``model`` (teacher forcing, no grad).

    Returns
    -------
    dict
        ``nll`` (mean over all response tokens: token-weighted), ``nll_sem`` (its standard error
        over tokens), ``nll_record_mean`` (mean of the per-record means), ``nll_per_record``,
        ``n_tokens``, ``n_records``, ``n_truncated``, ``seconds``.
    """
    from dataprune.lm_scoring import score_sft

    t0 = time.perf_counter()
    s = score_sft(
        model,
        tokenizer,
        [p for p, _ in pairs],
        [r for _, r in pairs],
        batch_size=batch_size,
        max_length=max_length,
        show_progress_bar=False,
    )
    tokens = np.concatenate(s.nll)
    per_record = [float(x.mean()) for x in s.nll]
    return {
        "nll": float(tokens.mean()),
        "nll_sem": float(tokens.std(ddof=1) / math.sqrt(len(tokens))),
        "nll_record_mean": float(np.mean(per_record)),
        "nll_per_record": per_record,
        "n_tokens": len(tokens),
        "n_records": len(per_record),
        "n_truncated": int(s.meta["n_truncated"]),
        "seconds": round(time.perf_counter() - t0, 1),
    }
