"""Dynamic Q-Tuning: triage every training micro-batch from the forward pass it already computes.

:func:`qtuning_loss` runs ONE forward pass, takes the logits of the response positions (labels
``!= -100``), computes per-token NLL (with gradient) and predictive entropy (without), places the
micro-batch's samples on the EU plane with exactly the static rules
(:func:`~dataprune.qtuning.quadrants.triage_samples`, :func:`~dataprune.qtuning.tokens.token_keep_masks`)
and returns the mean NLL over the tokens that survive. Q1/Q3 samples and pruned Q2 tokens carry no
gradient; no second forward pass is run.

:class:`QTuningTrainer` is a ``transformers.Trainer`` with that loss; :class:`QTuningMixin` adds it to
any ``Trainer`` subclass (e.g. TRL's ``SFTTrainer``: ``class T(QTuningMixin, SFTTrainer)``). Both work
with peft (LoRA) models and full fine-tuning. Per-step counts (kept samples/tokens, quadrants,
alpha) are added to the Trainer's logs as ``qtuning/*`` and kept in ``trainer.qtuning_history``.

Memory: on an unwrapped model whose LM head is a plain linear layer (``forward="auto"``), the decoder
runs once and only the response positions are projected to the vocabulary, so the
batch x seq_len x vocab logits tensor is never built. Under DDP/FSDP/DeepSpeed wrappers (or
``forward="full"``) the wrapped model's own forward is used and its logits are read.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dataprune.errors import UnknownOptionError
from dataprune.lm_scoring import end_token_nll
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.quadrants import (
    ABRUPT_END,
    CORNER,
    FILL_UP,
    TRIMMED,
    abrupt_end_mask,
    triage_samples,
)
from dataprune.qtuning.tokens import token_keep_masks

logger = logging.getLogger(__name__)

# QTuningTrainer is built on first access (module __getattr__) to keep imports light
__all__ = ["QTuningMixin", "QTuningTrainer", "qtuning_loss"]  # noqa: F822

_FORWARDS = ("auto", "hidden", "full")
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
) -> tuple[Any, Any, dict[str, Any]]:
    """Q-Tuning loss of one micro-batch from a single forward pass.

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

    Returns
    -------
    loss : torch.Tensor
        Scalar: mean NLL over the kept tokens of the kept samples (zero with a graph when the
        batch has no response token).
    outputs : transformers.modeling_outputs.CausalLMOutputWithPast or model output
    stats : dict
        ``batch_size``, ``samples_scored``, ``kept_samples``, ``q2``, ``q4``, ``fill_up``,
        ``trimmed``, ``corner``, ``abrupt_end`` (left out by ``config.abrupt_end``),
        ``alpha``, ``response_tokens``, ``tokens_in_kept_samples``, ``kept_tokens``,
        ``loss_all_tokens`` (mean NLL before triage), ``quadrant`` and ``kept`` (per sample).
    """
    import torch

    cfg = (config if config is not None else QTuningConfig()).validate()
    if forward not in _FORWARDS:
        raise UnknownOptionError(f"unknown forward {forward!r}; valid: {', '.join(_FORWARDS)}")
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
    triage = triage_samples(ppl, sample_ent, cfg, noise=noise)
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


_WARNED = {"no_eos": False}


def _eos_ids(model: Any) -> list[int]:
    """The model config's (or generation config's) ``eos_token_id`` as a list (maybe empty)."""
    eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        if not _WARNED["no_eos"]:  # once per process, not once per micro-batch
            _WARNED["no_eos"] = True
            logger.warning(
                "QTuningConfig.abrupt_end is skipped: the model config has no eos_token_id"
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
        "alpha": float("nan"),
        "response_tokens": 0,
        "tokens_in_kept_samples": 0,
        "kept_tokens": 0,
        "loss_all_tokens": float("nan"),
        "loss_kept": float("nan"),
        "quadrant": [0] * B,
        "kept": [False] * B,
    }


_SUMMED = (
    "batch_size",
    "samples_scored",
    "kept_samples",
    "q2",
    "q4",
    "fill_up",
    "trimmed",
    "abrupt_end",
    "response_tokens",
    "tokens_in_kept_samples",
    "kept_tokens",
)


class QTuningMixin:
    """Adds dynamic Q-Tuning to a ``transformers.Trainer`` subclass (put it first in the bases).

    Call :meth:`_init_qtuning` from ``__init__`` after ``super().__init__``. In training mode
    ``compute_loss`` returns the Q-Tuning loss (a per-micro-batch mean, scaled by the Trainer for
    gradient accumulation); in evaluation it is the parent's plain loss.
    """

    #: the loss is a mean over the micro-batch's kept tokens: the Trainer divides it by the
    #: gradient-accumulation steps (transformers >= 5 reads this attribute)
    loss_is_scaled_for_ga = False

    def _init_qtuning(self, config: QTuningConfig | None, forward: str) -> None:
        if forward not in _FORWARDS:
            raise UnknownOptionError(f"unknown forward {forward!r}; valid: {', '.join(_FORWARDS)}")
        self.qtuning_config = (config if config is not None else QTuningConfig()).validate()
        if self.qtuning_config.max_ifd is not None:
            logger.info(
                "max_ifd=%s is a static-triage rule (it needs a pass with empty prompts); the "
                "trainer does not apply it: triage the data first (QTuningTriage, dataprune "
                "triage) to leave misaligned pairs out",
                self.qtuning_config.max_ifd,
            )
        self.qtuning_forward = forward
        #: one dict per training micro-batch (see :func:`qtuning_loss` for the keys, plus ``step``)
        self.qtuning_history: list[dict[str, Any]] = []
        self._qtuning_pending: list[dict[str, Any]] = []
        # older transformers decide GA scaling from this flag instead of loss_is_scaled_for_ga
        self.model_accepts_loss_kwargs = False

    def _qtuning_forward_for(self, model: Any) -> str:
        if self.qtuning_forward != "auto":
            return self.qtuning_forward
        acc = getattr(self, "accelerator", None)
        unwrapped = acc.unwrap_model(model) if acc is not None else model
        # a DDP/FSDP/DeepSpeed wrapper must see its own forward call (gradient sync hooks)
        return "auto" if unwrapped is model else "full"

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        if not getattr(model, "training", False) or "labels" not in inputs:
            return super().compute_loss(  # type: ignore[misc]
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        loss, outputs, stats = qtuning_loss(
            model, inputs, self.qtuning_config, forward=self._qtuning_forward_for(model)
        )
        state = getattr(self, "state", None)
        stats["step"] = int(getattr(state, "global_step", 0) or 0)
        self.qtuning_history.append(stats)
        self._qtuning_pending.append(stats)
        logger.debug(
            "qtuning step %d: kept %d/%d samples (Q2 %d, Q4 %d, fill-up %d), %d/%d tokens",
            stats["step"],
            stats["kept_samples"],
            stats["samples_scored"],
            stats["q2"],
            stats["q4"],
            stats["fill_up"],
            stats["kept_tokens"],
            stats["response_tokens"],
        )
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        pending = getattr(self, "_qtuning_pending", None)
        if pending and "loss" in logs:
            for k in _SUMMED:
                logs[f"qtuning/{k}"] = float(sum(s[k] for s in pending))
            alphas = [s["alpha"] for s in pending if np.isfinite(s["alpha"])]
            if alphas:
                logs["qtuning/alpha"] = float(np.mean(alphas))
            tot = logs["qtuning/response_tokens"]
            if tot:
                logs["qtuning/kept_token_fraction"] = logs["qtuning/kept_tokens"] / tot
            logs["qtuning/micro_batches"] = float(len(pending))
            self._qtuning_pending = []
        super().log(logs, *args, **kwargs)  # type: ignore[misc]


def _trainer_base() -> type:
    from transformers import Trainer

    return Trainer


def __getattr__(name: str) -> Any:
    # QTuningTrainer subclasses transformers.Trainer; build it on first use so that importing
    # dataprune.qtuning does not import transformers.
    if name == "QTuningTrainer":
        cls = _build_trainer()
        globals()["QTuningTrainer"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_trainer() -> type:
    Trainer = _trainer_base()

    class QTuningTrainer(QTuningMixin, Trainer):  # type: ignore[misc, valid-type]
        """``transformers.Trainer`` with dynamic Q-Tuning triage of every training micro-batch.

        Parameters
        ----------
        *args, **kwargs
            As ``transformers.Trainer`` (``model``, ``args``, ``train_dataset``,
            ``data_collator``...). Batches need ``labels`` with -100 on prompt/padding positions
            (:class:`~dataprune.qtuning.SFTCollator` builds them).
        qtuning_config : QTuningConfig, optional
            Budgets and options; ``sample_ratio`` applies to each micro-batch
            (``per_device_train_batch_size`` samples).
        qtuning_forward : {"auto", "hidden", "full"}, default="auto"
            See :func:`qtuning_loss`.

        Attributes
        ----------
        qtuning_history : list of dict
            Per micro-batch triage statistics.
        """

        def __init__(
            self,
            *args: Any,
            qtuning_config: QTuningConfig | None = None,
            qtuning_forward: str = "auto",
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self._init_qtuning(qtuning_config, qtuning_forward)

    QTuningTrainer.__module__ = __name__
    QTuningTrainer.__qualname__ = "QTuningTrainer"
    return QTuningTrainer
