"""Run llm-compressor's Wanda / SparseGPT modifiers from a :class:`CalibrationSet`.

Needs the ``llmcompressor`` extra (``pip install 'dataprune[llmcompressor]'``). The adapter deals
with llm-compressor's known pitfalls:

* it needs a tokenizer even when the data are already tokenised: taken from
  ``CalibrationSet.tokenizer`` or the ``tokenizer`` parameter;
* it reloads the model's config from ``model.config.name_or_path``: an in-memory model (or one
  whose path is gone) gets its config written to a temporary folder for the call;
* it prunes every ``Linear`` it is pointed at, ``lm_head`` included, and ignores ``lm_head`` only
  with the pattern ``"re:.*lm_head"``: the adapter targets the decoder blocks (the same layers as
  the built-in pruners) and always adds that ignore pattern;
* it shuffles the calibration samples by default: the adapter turns that off so the samples (and
  their order) are exactly the CalibrationSet's;
* it replaces ``model.save_pretrained`` with a compressed-tensors writer: the adapter restores the
  plain writer unless ``compressed_save=True``.

N:M patterns follow the NVIDIA convention here (``"2:4"`` keeps 2 of every 4); llm-compressor's
``mask_structure`` counts the zeros instead, so ``"N:M"`` is passed as ``"(M-N):M"`` (identical
for 2:4 and 4:8).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dataprune.calibration.calibration_set import as_calibration_set
from dataprune.errors import DataValidationError
from dataprune.model_pruning.base import MODEL_PRUNERS, LayerReport
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.pruner import BaseModelPruner, PruneRun
from dataprune.model_pruning.structure import DEFAULT_IGNORE, all_prunable_layers
from dataprune.optional import require

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "LLMCompressorPruner"]

METHODS = ("wanda", "sparsegpt")
LM_HEAD_IGNORE = "re:.*lm_head"


def _to_llmc_ignore(pattern: str) -> str:
    """Our ignore regexes are ``re.search``-ed; llm-compressor ``re.match``-es ``re:`` patterns."""
    if pattern.startswith("re:"):
        return pattern
    return "re:.*" + (pattern[1:] if pattern.startswith("^") else pattern)


@contextlib.contextmanager
def _config_on_disk(model: Any) -> Iterator[None]:
    """Make ``model.config.name_or_path`` a folder holding config.json for llm-compressor."""
    cfg = model.config
    current = getattr(cfg, "name_or_path", "") or ""
    if current and (Path(current) / "config.json").is_file():
        yield
        return
    with tempfile.TemporaryDirectory(prefix="dataprune-llmc-") as tmp:
        cfg.save_pretrained(tmp)
        cfg.name_or_path = tmp
        try:
            yield
        finally:
            cfg.name_or_path = current


class LLMCompressorPruner(BaseModelPruner):
    """llm-compressor's ``oneshot`` with ``WandaPruningModifier`` or ``SparseGPTModifier``.

    Parameters
    ----------
    method : {"wanda", "sparsegpt"}, default="wanda"
    sparsity : float, optional
        Fraction of weights to zero, in (0, 1). Implied by ``pattern``.
    pattern : str, optional
        ``"unstructured"`` (default) or ``"N:M"`` (N non-zeros kept in every M).
    dampening_frac : float, default=0.01
        SparseGPT Hessian dampening (ignored by Wanda).
    block_size : int, default=128
        SparseGPT column block size (ignored by Wanda).
    batch_size : int, default=1
        Calibration batch size handed to llm-compressor.
    tokenizer : tokenizer, optional
        Used when the CalibrationSet carries none.
    block_path : str, optional
        Decoder block list (found automatically when omitted); its block class is the target.
    ignore : sequence of str, default=DEFAULT_IGNORE
        Regexes of layer names to keep dense (``re:.*lm_head`` is always added).
    compressed_save : bool, default=False
        Keep llm-compressor's compressed-tensors ``save_pretrained`` on the model.
    oneshot_kwargs : dict, optional
        Extra keyword arguments for ``llmcompressor.oneshot``.
    """

    requires_calibration = True

    def __init__(
        self,
        *,
        method: str = "wanda",
        sparsity: float | None = None,
        pattern: str | None = None,
        dampening_frac: float = 0.01,
        block_size: int = 128,
        batch_size: int = 1,
        tokenizer: Any = None,
        block_path: str | None = None,
        ignore: Sequence[str] = DEFAULT_IGNORE,
        compressed_save: bool = False,
        oneshot_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.sparsity = sparsity
        self.pattern = pattern
        self.dampening_frac = dampening_frac
        self.block_size = block_size
        self.batch_size = batch_size
        self.tokenizer = tokenizer
        self.block_path = block_path
        self.ignore = ignore
        self.compressed_save = compressed_save
        self.oneshot_kwargs = oneshot_kwargs

    @property
    def name(self) -> str:
        return f"llmcompressor-{self.method}"

    def build_recipe(self, model: Any) -> tuple[Any, str]:
        """The llm-compressor modifier for ``model`` and the decoder-block class it targets."""
        spec = resolve_sparsity(self.sparsity, self.pattern)
        if self.method not in METHODS:
            raise DataValidationError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        _, blocks, _ = all_prunable_layers(model, block_path=self.block_path, ignore=self.ignore)
        block_cls = type(blocks[0]).__name__
        mask = f"{spec.n_pruned_per_group}:{spec.m}" if spec.structured else "0:0"
        ignore = [LM_HEAD_IGNORE, *(_to_llmc_ignore(p) for p in self.ignore)]
        common = {
            "sparsity": spec.sparsity,
            "mask_structure": mask,
            "targets": [block_cls],
            "ignore": ignore,
        }
        if self.method == "wanda":
            mod = require(
                "llmcompressor.modifiers.pruning", "llmcompressor", purpose="llm-compressor Wanda"
            )
            return mod.WandaPruningModifier(**common), block_cls
        mod = require(
            "llmcompressor.modifiers.pruning", "llmcompressor", purpose="llm-compressor SparseGPT"
        )
        return (
            mod.SparseGPTModifier(
                **common, dampening_frac=self.dampening_frac, block_size=self.block_size
            ),
            block_cls,
        )

    def _report_params(self) -> dict[str, Any]:
        params = self.get_params()
        params.pop("tokenizer")  # an object, not a setting: kept out of the JSON report
        return params

    def _prune(self, model: Any, calibration: Any, spec: SparsitySpec) -> PruneRun:
        """Prune ``model`` in place with llm-compressor (sequential pipeline, one block at a time).

        The report's sparsity is measured on the model afterwards, for the same layers the
        built-in pruners report.
        """
        llmc = require("llmcompressor", "llmcompressor", purpose="the llm-compressor adapter")
        calib = as_calibration_set(calibration)
        tokenizer = calib.tokenizer if calib.tokenizer is not None else self.tokenizer
        if tokenizer is None:
            raise DataValidationError(
                "llm-compressor needs a tokenizer even for pre-tokenised calibration data: build "
                "the CalibrationSet with build_calibration_set(..., tokenizer) or pass "
                "LLMCompressorPruner(tokenizer=...)"
            )
        recipe, block_cls = self.build_recipe(model)
        dataset = calib.to_dataset()
        had_own_save = "save_pretrained" in model.__dict__
        kwargs = {
            "num_calibration_samples": calib.n_samples,
            "max_seq_length": calib.seq_len,
            "shuffle_calibration_samples": False,
            "batch_size": self.batch_size,
            "pipeline": "sequential",
            "sequential_targets": [block_cls],
            **(self.oneshot_kwargs or {}),
        }
        with _config_on_disk(model):
            llmc.oneshot(model=model, tokenizer=tokenizer, dataset=dataset, recipe=recipe, **kwargs)
        with contextlib.suppress(Exception):
            from llmcompressor.core import active_session

            active_session().reset()
        if not self.compressed_save and not had_own_save:
            model.__dict__.pop("save_pretrained", None)
        path, _, layers = all_prunable_layers(model, block_path=self.block_path, ignore=self.ignore)
        reports = []
        for layer in (lay for block in layers for lay in block):
            w = layer.weight_matrix()
            out_f, in_f = layer.shape
            reports.append(
                LayerReport(layer.name, (out_f, in_f), out_f * in_f, int((w == 0).sum()))
            )
        return PruneRun(layers=reports, block_path=path, calibration=calib)


MODEL_PRUNERS.register(
    "llmcompressor-wanda", lambda **kw: LLMCompressorPruner(method="wanda", **kw)
)
MODEL_PRUNERS.register(
    "llmcompressor-sparsegpt", lambda **kw: LLMCompressorPruner(method="sparsegpt", **kw)
)
