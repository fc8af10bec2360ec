"""Dynamic Q-Tuning inside a ``transformers.Trainer``: every training micro-batch is triaged by
:func:`~dataprune.qtuning.loss.qtuning_loss` from the forward pass it already computes.

:class:`QTuningTrainer` is a ``transformers.Trainer`` with that loss; :class:`QTuningMixin` adds it to
any ``Trainer`` subclass (e.g. TRL's ``SFTTrainer``: ``class T(QTuningMixin, SFTTrainer)``). Both work
with peft (LoRA) models and full fine-tuning. The trainer also deduplicates the training set once
before training (``QTuningConfig.dedup``): a copy and its original rarely share a micro-batch.
Per-step counts (kept samples/tokens, quadrants, alpha) are added to the Trainer's logs as
``qtuning/*`` and kept in ``trainer.qtuning_history``. ``qtuning_loss`` is importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.errors import UnknownOptionError
from dataprune.qtuning.config import DEDUP_THRESHOLD, QTuningConfig
from dataprune.qtuning.loss import FORWARDS, qtuning_loss

logger = logging.getLogger(__name__)

# QTuningTrainer is built on first access (module __getattr__) to keep imports light
__all__ = ["QTuningMixin", "QTuningTrainer", "qtuning_loss"]  # noqa: F822

_SUMMED = (
    "batch_size",
    "samples_scored",
    "kept_samples",
    "q2",
    "q4",
    "fill_up",
    "trimmed",
    "abrupt_end",
    "misaligned",
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

    def _init_qtuning(
        self,
        config: QTuningConfig | None,
        forward: str,
        empty_prompt_ids: Sequence[int] | None = None,
    ) -> None:
        if forward not in FORWARDS:
            raise UnknownOptionError(f"unknown forward {forward!r}; valid: {', '.join(FORWARDS)}")
        self.qtuning_config = (config if config is not None else QTuningConfig()).validate()
        self.qtuning_forward = forward
        tok = getattr(self, "processing_class", None)
        if empty_prompt_ids is None and self.qtuning_config.max_ifd is not None:
            if tok is not None and callable(tok) and hasattr(tok, "pad_token_id"):
                from dataprune.sft_encoding import empty_prompt_ids as _empty

                empty_prompt_ids = _empty(tok)
            else:
                logger.warning(
                    "max_ifd=%s is skipped: the trainer has no tokenizer (processing_class) to "
                    "build the empty prompt; pass qtuning_empty_prompt_ids",
                    self.qtuning_config.max_ifd,
                )
        #: context of an empty prompt for the IFD pass (None: ``max_ifd`` skipped)
        self.qtuning_empty_prompt_ids = (
            None if empty_prompt_ids is None else [int(t) for t in empty_prompt_ids]
        )
        #: one dict per training micro-batch (see :func:`qtuning_loss` for the keys, plus ``step``)
        self.qtuning_history: list[dict[str, Any]] = []
        self._qtuning_pending: list[dict[str, Any]] = []
        #: per training record: the index of the record it duplicates (left out), or -1
        self.qtuning_duplicate_of: np.ndarray | None = None
        if self.qtuning_config.dedup == "fuzzy":
            self._qtuning_dedup(tok)
        # older transformers decide GA scaling from this flag instead of loss_is_scaled_for_ga
        self.model_accepts_loss_kwargs = False

    def _qtuning_dedup(self, tok: Any) -> None:
        """Leave near-duplicate training records out before training (``config.dedup``).

        Micro-batches see a handful of samples: a copy and its original rarely meet in one, so
        per-batch triage cannot drop one of them. The whole training set is deduplicated up
        front instead, as static triage does (MinHash, Jaccard >= 0.8 on the decoded text of
        ``input_ids``; the first occurrence stays).
        """
        ds = getattr(self, "train_dataset", None)
        if ds is None:
            return
        if not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")):
            logger.warning(
                "dedup=%r is skipped: the training set is not indexable (an iterable dataset); "
                "deduplicate it first (dataprune curate --recipe dedup)",
                self.qtuning_config.dedup,
            )
            return
        n = len(ds)
        if n < 2:
            return
        records = (ds[i] for i in range(n))
        ids = [r.get("input_ids") if hasattr(r, "get") else None for r in records]
        if any(x is None for x in ids):
            logger.warning("dedup is skipped: training records have no 'input_ids'")
            return
        from dataprune.dedup import fuzzy_duplicates

        decode = getattr(tok, "decode", None) if tok is not None else None
        texts = [
            decode(list(x), skip_special_tokens=True)
            if decode is not None
            else " ".join(str(int(t)) for t in x)
            for x in ids
        ]
        dup = fuzzy_duplicates(texts, threshold=DEDUP_THRESHOLD).duplicate_of
        self.qtuning_duplicate_of = dup
        keep = np.flatnonzero(dup < 0)
        if len(keep) == n:
            return
        if hasattr(ds, "select"):  # datasets.Dataset
            self.train_dataset = ds.select(keep.tolist())
        else:
            from torch.utils.data import Subset

            self.train_dataset = Subset(ds, keep.tolist())
        logger.info(
            "Q-Tuning dedup: left out %d of %d training records as near-duplicates of an "
            "earlier one (qtuning_duplicate_of)",
            n - len(keep),
            n,
        )

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
            model,
            inputs,
            self.qtuning_config,
            forward=self._qtuning_forward_for(model),
            empty_prompt_ids=self.qtuning_empty_prompt_ids,
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
        qtuning_empty_prompt_ids : sequence of int, optional
            Context of an empty prompt for ``qtuning_config.max_ifd``; by default
            :func:`dataprune.sft_encoding.empty_prompt_ids` of ``processing_class`` (chat template
            when it has one, as :func:`~dataprune.qtuning.sft_features` encodes). Pass it when
            the batches were encoded otherwise (e.g. ``use_chat_template=False``).

        With ``qtuning_config.dedup="fuzzy"`` (the default) the training set is deduplicated
        once, before training (``qtuning_duplicate_of``); ``max_ifd`` costs one more forward
        pass per micro-batch, without gradient, over the responses alone.

        Attributes
        ----------
        qtuning_history : list of dict
            Per micro-batch triage statistics.
        qtuning_duplicate_of : ndarray of shape (n_records,) or None
            Per original training record, the index of the record it duplicates (left out of
            training), -1 otherwise; None when no deduplication ran.
        """

        def __init__(
            self,
            *args: Any,
            qtuning_config: QTuningConfig | None = None,
            qtuning_forward: str = "auto",
            qtuning_empty_prompt_ids: Sequence[int] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self._init_qtuning(qtuning_config, qtuning_forward, qtuning_empty_prompt_ids)

    QTuningTrainer.__module__ = __name__
    QTuningTrainer.__qualname__ = "QTuningTrainer"
    return QTuningTrainer
