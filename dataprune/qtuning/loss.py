"""The dynamic Q-Tuning loss: triage a training micro-batch from the forward pass it already computes.

:func:`qtuning_loss` runs ONE forward pass, takes the logits of the response positions (labels
``!= -100``), computes per-token NLL (with gradient) and predictive entropy (without), places the
micro-batch's samples on the EU plane with exactly the static rules
(:func:`~dataprune.qtuning.quadrants.triage_samples`, :func:`~dataprune.qtuning.tokens.token_keep_masks`)
and returns the mean NLL over the tokens that survive. Q1/Q3 samples and pruned Q2 tokens carry no
gradient; no second forward pass with gradient is run. With ``QTuningConfig.max_ifd`` (the default)
the responses are scored once more after an empty prompt, without gradient, to leave out misaligned
samples (IFD >= max_ifd) exactly as static triage does; ``max_ifd=None`` saves that pass.
:mod:`dataprune.qtuning.trainer` wraps it in a ``transformers.Trainer``.

Memory: on an unwrapped model whose LM head is a plain linear layer (``forward="auto"``), the decoder
runs once and only the response positions are projected to the vocabulary, so the
batch x seq_len x vocab logits tensor is never built. Under DDP/FSDP/DeepSpeed wrappers (or
``forward="full"``) the wrapped model's own forward is used and its logits are read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.errors import UnknownOptionError
from dataprune.lm_scoring import end_token_nll, logit_statistics
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.noise import abrupt_end_mask, add_misaligned, name_misaligned
from dataprune.qtuning.quadrants import triage_samples
from dataprune.qtuning.sample_triage import ABRUPT_END, CORNER, FILL_UP, MISALIGNED, TRIMMED
from dataprune.qtuning.tokens import token_keep_masks

logger = logging.getLogger(__name__)

__all__ = ["qtuning_loss"]

#: How :func:`qtuning_loss` gets the response positions' logits (see its ``forward``).
FORWARDS = ("auto", "hidden", "full")
_IGNORE = -100


def _peft_base(model: Any) -> Any | None:
    """The transformers model under a peft wrapper (None for prompt-learning adapters)."""
    if hasattr(model, "get_base_model") and hasattr(model, "peft_config"):
        cfg = model.peft_config.get(getattr(model, "active_adapter", "default"))
        if cfg is not None and getattr(cfg, "is_prompt_learning", False):
            return None
        return model.get_base_model()
    return model


def _hidden_base(model: Any) -> Any | None:
    from dataprune.lm_scoring import _hidden_path_ok

    base = _peft_base(model)
    if base is None or not _hidden_path_ok(base):
        return None
    return base


def _entropy_rows(logp: Any, chunk_size: int) -> Any:
    import torch

    out = torch.empty(logp.shape[0], dtype=torch.float32, device=logp.device)
    with torch.no_grad():
        for lo in range(0, logp.shape[0], chunk_size):
            lp = logp[lo : lo + chunk_size].detach()
            out[lo : lo + chunk_size] = -(lp.exp() * lp).sum(-1)
    return out


def qtuning_loss(
    model: Any,
    inputs: dict[str, Any],
    config: QTuningConfig | None = None,
    *,
    forward: str = "auto",
    chunk_size: int = 1024,
    empty_prompt_ids: Sequence[int] | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Q-Tuning loss of one micro-batch from a single forward pass (with gradient).

    Parameters
    ----------
    model : torch.nn.Module
        A causal LM (transformers model, optionally peft-wrapped) in training mode.
    inputs : dict
        ``input_ids`` (batch, seq_len), ``attention_mask`` (optional) and ``labels`` (-100 where no
        loss, unshifted as for Hugging Face causal LMs). Other keys go to the forward call.
    config : QTuningConfig, optional
    forward : {"auto", "hidden", "full"}, default="auto"
        ``"hidden"``: run the decoder and project only response positions (needs a linear LM head
        and no prompt-learning adapter); ``"full"``: call ``model(**inputs)`` and read its logits;
        ``"auto"``: hidden when possible. Callers holding a DDP/FSDP-wrapped model must use
        ``"full"`` (the Trainer integration decides this itself).
    chunk_size : int, default=1024
        Rows per chunk for the (gradient-free) entropy computation.
    empty_prompt_ids : sequence of int, optional
        The context of an empty prompt (:func:`dataprune.sft_encoding.empty_prompt_ids` of the
        tokenizer that built the batch). Needed by ``config.max_ifd``: each response is scored a
        second time after this context alone, without gradient, and samples whose IFD
        (``exp(mean NLL with the prompt - mean NLL without)``) is ``>= max_ifd`` are left out as
        misaligned, as in static triage. Without it the rule is skipped (warned once).

    Returns
    -------
    loss : torch.Tensor
        Scalar: mean NLL over the kept tokens of the kept samples (zero with a graph when the
        batch has no response token).
    outputs : transformers.modeling_outputs.CausalLMOutputWithPast or model output
    stats : dict
        ``batch_size``, ``samples_scored``, ``kept_samples``, ``q2``, ``q4``, ``fill_up``,
        ``trimmed``, ``corner``, ``abrupt_end`` (left out by ``config.abrupt_end``),
        ``misaligned`` (left out by ``config.max_ifd``), ``alpha``, ``response_tokens``, ``tokens_in_kept_samples``, ``kept_tokens``,
        ``loss_all_tokens`` (mean NLL before triage), ``quadrant`` and ``kept`` (per sample).
    """
    import torch

    cfg = (config if config is not None else QTuningConfig()).validate()
    if forward not in FORWARDS:
        raise UnknownOptionError(f"unknown forward {forward!r}; valid: {', '.join(FORWARDS)}")
    if "labels" not in inputs:
        raise ValueError("Q-Tuning needs 'labels' in the batch (-100 where no loss)")
    labels = inputs["labels"]
    attn = inputs.get("attention_mask")
    model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "num_items_in_batch")}
    base = _hidden_base(model) if forward in ("auto", "hidden") else None
    if forward == "hidden" and base is None:
        raise ValueError(
            "forward='hidden' needs a model with a linear LM head (and no prompt-learning adapter)"
        )
    if base is not None:
        dec_out = base.get_decoder()(**{**model_inputs, "use_cache": False})
        states = dec_out[0] if isinstance(dec_out, tuple) else dec_out.last_hidden_state
        head = base.get_output_embeddings()
        outputs = None
    else:
        outputs = model(**model_inputs)
        states = outputs.logits if hasattr(outputs, "logits") else outputs[0]
        head = None

    B = labels.shape[0]
    shift = labels[:, 1:]
    valid = shift != _IGNORE
    if attn is not None:
        valid = valid & attn[:, 1:].bool()
    rows_b, rows_t = torch.nonzero(valid, as_tuple=True)
    n_rows = int(rows_b.numel())
    if n_rows == 0:
        loss = states.sum() * 0.0
        stats = _empty_stats(B)
        return loss, _as_output(outputs, loss), stats
    targets = shift[rows_b, rows_t]
    h = states[rows_b, rows_t]
    logits = head(h) if head is not None else h
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(1, targets[:, None]).squeeze(1)
    ent = _entropy_rows(logp, chunk_size)

    nll_np = nll.detach().cpu().numpy().astype(np.float64)
    ent_np = ent.cpu().numpy().astype(np.float64)
    b_np = rows_b.cpu().numpy()
    t_np = rows_t.cpu().numpy()
    counts = np.bincount(b_np, minlength=B)
    scored = np.flatnonzero(counts > 0)
    splits = np.cumsum(counts)[:-1]
    nll_per = np.split(nll_np, splits)
    ent_per = np.split(ent_np, splits)
    pos_per = np.split(t_np, splits)

    ppl = np.array([np.exp(np.mean(nll_per[b])) for b in scored])
    if cfg.entropy_span == "response":
        sample_ent = np.array([np.mean(ent_per[b]) for b in scored])
    else:
        sample_ent = _entropy_all_positions(states, head, attn, ent_per, scored, chunk_size)
    noise = None
    eos = _eos_ids(model) if cfg.abrupt_end is not None else []
    if eos:
        tgt_per = np.split(targets.cpu().numpy(), splits)
        end = end_token_nll([nll_per[b] for b in scored], [tgt_per[b] for b in scored], eos)
        noise = abrupt_end_mask(end, cfg.abrupt_end)
    misaligned = None
    if cfg.max_ifd is not None and empty_prompt_ids is None:
        _warn_once(
            "no_prompt_ids",
            "QTuningConfig.max_ifd is skipped: pass empty_prompt_ids (the trainer takes them "
            "from its tokenizer) to score responses without their prompts",
        )
    elif cfg.max_ifd is not None:
        tgt_per = np.split(targets.cpu().numpy(), splits)
        uncond = _unconditioned_mean_nll(
            None if base is not None else model,
            base,
            list(empty_prompt_ids),
            [tgt_per[b] for b in scored],
            input_ids_device=labels.device,
            chunk_size=chunk_size,
        )
        cond = np.array([np.mean(nll_per[b]) for b in scored])
        # IFD = exp(mean NLL with the prompt - without); NaN (nothing to score): never flagged
        misaligned, noise = add_misaligned(np.exp(cond - uncond), cfg.max_ifd, noise)
    # a micro-batch can be all noise by chance: keep K of it then, as static triage does when
    # fewer than K others exist, rather than stop training
    triage = name_misaligned(
        triage_samples(ppl, sample_ent, cfg, noise=noise, allow_all_flagged=True), misaligned
    )
    masks = token_keep_masks(
        [nll_per[b] for b in scored], triage, cfg, positions=[pos_per[b] for b in scored]
    )
    keep_np = np.zeros(n_rows, dtype=bool)
    offsets = np.r_[0, np.cumsum(counts)]
    for j, b in enumerate(scored.tolist()):
        keep_np[offsets[b] : offsets[b + 1]] = masks[j]
    keep = torch.from_numpy(keep_np).to(nll.device)
    n_keep = int(keep_np.sum())
    loss = nll[keep].sum() / n_keep

    quadrant = np.zeros(B, dtype=int)
    quadrant[scored] = triage.quadrant
    kept = np.zeros(B, dtype=bool)
    kept[scored] = triage.kept
    kept_rows_total = int(sum(counts[b] for b in scored[triage.kept]))
    stats = {
        "batch_size": B,
        "samples_scored": len(scored),
        "kept_samples": int(triage.kept.sum()),
        "q2": int(triage.q2.sum()),
        "q4": int(triage.q4.sum()),
        "fill_up": int(np.sum(triage.selection == FILL_UP)),
        "trimmed": int(np.sum(triage.selection == TRIMMED)),
        "corner": int(np.sum(triage.selection == CORNER)),
        "abrupt_end": int(np.sum(triage.selection == ABRUPT_END)),
        "misaligned": int(np.sum(triage.selection == MISALIGNED)),
        "alpha": triage.alpha,
        "response_tokens": n_rows,
        "tokens_in_kept_samples": kept_rows_total,
        "kept_tokens": n_keep,
        "loss_all_tokens": float(nll_np.mean()),
        "loss_kept": float(loss.detach()),
        "quadrant": quadrant.tolist(),
        "kept": kept.tolist(),
    }
    return loss, _as_output(outputs, loss), stats


_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """Once per process, not once per micro-batch."""
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message)


def _unconditioned_mean_nll(
    model: Any,
    base: Any,
    prefix: list[int],
    responses: list[np.ndarray],
    *,
    input_ids_device: Any,
    chunk_size: int,
) -> np.ndarray:
    """Mean NLL of each response's tokens after ``prefix`` alone (no gradient).

    The sequences are what :func:`dataprune.sft_encoding.encode_sft` builds for an empty prompt:
    ``prefix + response``, or, when ``prefix`` is empty, the first response token as context.
    ``model`` (its own forward, logits read) is used when given, else ``base``'s decoder and
    LM head. NaN where nothing is left to score.
    """
    import torch

    seqs, starts = [], []
    for r in responses:
        r = [int(t) for t in r]
        ctx, tgt = (prefix, r) if prefix else (r[:1], r[1:])
        seqs.append(ctx + tgt)
        starts.append(len(ctx))
    B, T = len(seqs), max(len(x) for x in seqs)
    ids = torch.zeros((B, T), dtype=torch.long, device=input_ids_device)
    attn = torch.zeros((B, T), dtype=torch.long, device=input_ids_device)
    for b, x in enumerate(seqs):
        ids[b, : len(x)] = torch.tensor(x, dtype=torch.long)
        attn[b, : len(x)] = 1
    rows_b = np.concatenate([np.full(len(x) - s, b) for b, (x, s) in enumerate(zip(seqs, starts))])
    rows_t = np.concatenate([np.arange(s - 1, len(x) - 1) for x, s in zip(seqs, starts)])
    out = np.full(B, np.nan)
    if not len(rows_b):
        return out
    rb = torch.from_numpy(rows_b).to(ids.device)
    rt = torch.from_numpy(rows_t).to(ids.device)
    with torch.no_grad():
        if model is not None:
            o = model(input_ids=ids, attention_mask=attn)
            states, head = (o.logits if hasattr(o, "logits") else o[0]), None
        else:
            o = base.get_decoder()(input_ids=ids, attention_mask=attn, use_cache=False)
            states = o[0] if isinstance(o, tuple) else o.last_hidden_state
            head = base.get_output_embeddings()
        nll = torch.empty(len(rows_b), dtype=torch.float32)
        for lo in range(0, len(rows_b), chunk_size):  # the static scorer's NLL, per chunk
            h = states[rb[lo : lo + chunk_size], rt[lo : lo + chunk_size]]
            tgt = ids[rb[lo : lo + chunk_size], rt[lo : lo + chunk_size] + 1]
            stats = logit_statistics(head(h) if head is not None else h, tgt, chunk_size=chunk_size)
            nll[lo : lo + chunk_size] = stats["nll"].cpu()
    sums = np.bincount(rows_b, weights=nll.numpy().astype(np.float64), minlength=B)
    counts = np.bincount(rows_b, minlength=B)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _eos_ids(model: Any) -> list[int]:
    """The model config's (or generation config's) ``eos_token_id`` as a list (maybe empty)."""
    eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        _warn_once(
            "no_eos", "QTuningConfig.abrupt_end is skipped: the model config has no eos_token_id"
        )
        return []
    return [int(x) for x in (eos if isinstance(eos, (list, tuple)) else [eos])]


def _entropy_all_positions(
    states: Any, head: Any, attn: Any, ent_per: list[np.ndarray], scored: np.ndarray, chunk: int
) -> np.ndarray:
    """Mean entropy over every predicted position (prompt included), without gradient."""
    import torch

    from dataprune.lm_scoring import logit_statistics

    B, T = states.shape[:2]
    pred = (
        attn[:, 1:].bool()
        if attn is not None
        else torch.ones(B, T - 1, dtype=torch.bool, device=states.device)
    )
    out = []
    with torch.no_grad():
        for b in scored.tolist():
            t = torch.nonzero(pred[b], as_tuple=True)[0]
            rows = states[b, t].detach()
            logits = head(rows) if head is not None else rows
            dummy = torch.zeros(len(t), dtype=torch.long, device=states.device)
            e = logit_statistics(logits, dummy, chunk_size=chunk)["entropy"]
            out.append(float(e.mean()) if len(t) else float(np.mean(ent_per[b])))
    return np.array(out)


def _as_output(outputs: Any, loss: Any) -> Any:
    if outputs is not None:
        return outputs
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return CausalLMOutputWithPast(loss=loss)


def _empty_stats(B: int) -> dict[str, Any]:
    return {
        "batch_size": B,
        "samples_scored": 0,
        "kept_samples": 0,
        "q2": 0,
        "q4": 0,
        "fill_up": 0,
        "trimmed": 0,
        "corner": 0,
        "abrupt_end": 0,
        "misaligned": 0,
        "alpha": float("nan"),
        "response_tokens": 0,
        "tokens_in_kept_samples": 0,
        "kept_tokens": 0,
        "loss_all_tokens": float("nan"),
        "loss_kept": float("nan"),
        "quadrant": [0] * B,
        "kept": [False] * B,
    }
