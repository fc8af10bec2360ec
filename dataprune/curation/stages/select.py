"""Budgeted selection: an existing selection method keeps exactly the budget of the survivors."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.curation.stages.base import (
    Stage,
    StageConfig,
    StageOutput,
    bad_option,
    register_stage,
)
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["Select", "SelectConfig"]


@dataclass
class SelectConfig(StageConfig):
    """A method of :func:`dataprune.select` applied to the records that survived the filters.

    Parameters
    ----------
    method : str, default="facility_location"
        A name in ``dataprune.selection.METHODS`` (facility_location, kcenter, ccs,
        class_balanced, random, ...).
    options : dict, optional
        The method's options (e.g. ``{"beta": 0.1}`` for ccs); checked before any work.
    """

    method: str = "facility_location"
    options: dict[str, Any] = field(default_factory=dict)

    def check(self, stage: str) -> None:
        from dataprune.selection.methods import get_method

        spec = get_method(self.method)
        if not isinstance(self.options, dict):
            raise bad_option(stage, "options", "a mapping of method options", self.options)
        try:
            spec.check_options(self.options)
        except DataValidationError as exc:
            raise DataValidationError(f"stage {stage!r}: {exc}") from None
        keeps_hard = self.options.get("keep", "hard") == "hard"
        if spec.name in ("el2n", "grand") and keeps_hard and not self.options.get("offset"):
            logger.warning(
                "stage %r keeps the hardest records by %s without an offset: with noisy "
                "labels those are mostly mislabelled; add a label_quality stage first or "
                "set options.offset",
                stage,
                spec.name,
            )


@register_stage
class Select(Stage):
    kind = "select"
    config_class = SelectConfig
    summary = "keep exactly the budget (--fraction / --n-samples) with a selection method"

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        from dataprune.selection.methods import get_method

        spec = get_method(self.config.method)
        out = {"budget"}
        if spec.needs_embeddings:
            out.add("embeddings")
        if spec.needs_labels:
            out.add("labels")
        return frozenset(out)

    def default_label(self) -> str:
        return f"select:{self.config.method}"

    def run(self, ctx: Any, seen: np.ndarray) -> StageOutput:
        from dataprune.selection import select
        from dataprune.selection.methods import get_method

        spec = get_method(self.config.method)
        k = ctx.budget
        if k is None:
            raise DataValidationError(
                f"stage {self.label!r} needs a budget (fraction or n_samples)"
            )
        if k > len(seen):
            raise DataValidationError(
                f"stage {self.label!r}: the budget of {k} records is larger than the {len(seen)} "
                "that survived the earlier stages; lower the budget or loosen the filters"
            )
        view = ctx.view
        records = [
            {"prompt": view.prompts[p], "response": view.responses[p], "text": view.texts[p]}
            for p in seen.tolist()
        ]
        kw: dict[str, Any] = {}
        if view.labels is not None:
            for r, p in zip(records, seen.tolist()):
                r["label"] = view.labels[p]
            kw["label_field"] = "label"
        if spec.needs_embeddings:
            kw["embeddings"] = ctx.embeddings()[seen]
        if spec.fit_input in ("difficulty", "lengths") and view.is_sft:
            kw.update(prompt_field="prompt", response_field="response")
            if spec.fit_input == "difficulty" and view.labels is None:
                kw["model"] = ctx.causal_lm()
        elif spec.fit_input == "lengths":
            kw["text_field"] = "text"
        engine_ok = ctx.local or spec.name in _engine_methods()
        res = select(
            records,
            method=spec.name,
            n_samples=k,
            random_state=ctx.random_state,
            empty_text="keep",
            engine=ctx.engine if engine_ok else "local",
            engine_options=(ctx.engine_options or None) if engine_ok and not ctx.local else None,
            show_progress_bar=ctx.show_progress_bar,
            **kw,
            **self.config.options,
        )
        kept = res.kept
        n = len(seen)
        reason = [None if kept[i] else f"not selected by {spec.name}" for i in range(n)]
        scores = {"selection_score": np.asarray(res.scores, dtype=np.float64)}
        return StageOutput(
            ~kept,
            reason,
            np.full(n, -1, dtype=np.int64),
            scores=scores,
            order=seen[res.order],
            details={"method": spec.name, "budget": k, "options": dict(self.config.options)},
        )


def _engine_methods() -> tuple[str, ...]:
    from dataprune.distributed.clustered import ENGINE_METHODS

    return tuple(ENGINE_METHODS)
