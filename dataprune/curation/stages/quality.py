"""Quality stage: one per-record score, then a filter on it (a threshold, a quantile or values).

Scores (``score=``): ``length`` (response words or characters), ``perplexity`` (of the response
given the prompt, causal LM), ``ifd`` (instruction-following difficulty,
:func:`dataprune.scores.ifd_scores`), ``el2n`` (EL2N-LM, :func:`dataprune.scores.lm_scores`),
``qtuning`` (Q-Tuning quadrant 1-4 of :class:`dataprune.qtuning.QTuningTriage`'s default
triage, which keeps its ``sample_ratio`` of the records), ``qtuning_noise`` (which of that
triage's noise rules left a record out: near-duplicate, abrupt end, misaligned; 0 for none) and
``label_quality`` (confident learning on out-of-fold probabilities of a proxy head on the
embeddings; needs labels). Every score is computed on the records that reached the stage and
kept as a status column.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.curation.stages.base import (
    Stage,
    StageConfig,
    StageOutput,
    bad_option,
    register_stage,
)
from dataprune.qtuning.sample_triage import ABRUPT_END, DUPLICATE, MISALIGNED
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["QUALITY_SCORES", "Quality", "QualityConfig"]


@dataclass(frozen=True)
class ScoreSpec:
    """A quality score: how to compute it, what it needs, and its direction (for the report)."""

    compute: Callable[[Any, np.ndarray, Any], dict[str, np.ndarray]]
    needs: frozenset[str]
    direction: str
    default_drop_values: tuple[float, ...] = ()
    #: What a dropped value means, named in the record's reason (``"qtuning_noise = 2 (abrupt
    #: end)"``).
    value_names: tuple[tuple[float, str], ...] = ()


QUALITY_SCORES: Registry[ScoreSpec] = Registry("quality score")


def _length(ctx: Any, seen: np.ndarray, cfg: Any) -> dict[str, np.ndarray]:
    resp = [ctx.view.responses[p] for p in seen.tolist()]
    if cfg.unit == "chars":
        return {"length": np.array([len(r) for r in resp], dtype=np.float64)}
    return {"length": np.array([len(r.split()) for r in resp], dtype=np.float64)}


def _pairs(ctx: Any, seen: np.ndarray) -> tuple[list[str], list[str]]:
    return [ctx.view.prompts[p] for p in seen.tolist()], [
        ctx.view.responses[p] for p in seen.tolist()
    ]


def _lm_call(score_fn: Any, ctx: Any, seen: np.ndarray, cfg: Any) -> Any:
    """``score_fn(model, tokenizer, prompts, responses, ...)`` on the records ``seen``."""
    model, tok = ctx.causal_lm()
    prompts, responses = _pairs(ctx, seen)
    return score_fn(
        model,
        tok,
        prompts,
        responses,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        show_progress_bar=ctx.show_progress_bar,
    )


def _lm_stats(ctx: Any, seen: np.ndarray, cfg: Any) -> dict[str, np.ndarray]:
    from dataprune.scores import lm_scores

    s = _lm_call(lm_scores, ctx, seen, cfg)
    return {"perplexity": np.exp(s.nll), "el2n": s.el2n.astype(np.float64)}


def _ifd(ctx: Any, seen: np.ndarray, cfg: Any) -> dict[str, np.ndarray]:
    from dataprune.scores import ifd_scores

    s = _lm_call(ifd_scores, ctx, seen, cfg)
    return {"ifd": s.ifd.astype(np.float64), "perplexity": np.exp(s.nll_conditioned)}


#: ``qtuning_noise`` values: the noise rule that left a record out (by its Q-Tuning selection
#: code) -> (score value, name in the record's reason).
_NOISE_RULES = {DUPLICATE: (1.0, "near-duplicate"), ABRUPT_END: (2.0, "abrupt end"),
                MISALIGNED: (3.0, "misaligned")}  # fmt: skip


def _qtuning(ctx: Any, seen: np.ndarray, cfg: Any) -> dict[str, np.ndarray]:
    from dataprune.qtuning import QTuningTriage

    model, tok = ctx.causal_lm()
    prompts, responses = _pairs(ctx, seen)
    tri = QTuningTriage(
        model=model,
        tokenizer=tok,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        random_state=ctx.random_state,
        show_progress_bar=ctx.show_progress_bar,
    ).fit(prompts, responses)
    selection = tri.result_.samples.selection
    noise = np.array([_NOISE_RULES.get(int(c), (0.0,))[0] for c in selection])
    return {
        "qtuning": tri.quadrant_.astype(np.float64),
        "qtuning_noise": noise,
        "perplexity": np.asarray(tri.perplexity_, dtype=np.float64),
    }


def _label_quality(ctx: Any, seen: np.ndarray, cfg: Any) -> dict[str, np.ndarray]:
    from dataprune.scores import cross_val_probs, find_label_issues, label_quality_scores

    E = ctx.embeddings()[seen]
    labels = [ctx.view.labels[p] for p in seen.tolist()]
    probs, codes, _classes = cross_val_probs(
        E, labels, random_state=ctx.random_state, show_progress_bar=ctx.show_progress_bar
    )
    return {
        "label_quality": label_quality_scores(codes, probs).astype(np.float64),
        "label_issue": find_label_issues(codes, probs).astype(np.float64),
    }


QUALITY_SCORES.register("length", ScoreSpec(_length, frozenset(), "higher = longer response"))
QUALITY_SCORES.register(
    "perplexity",
    ScoreSpec(_lm_stats, frozenset({"lm"}), "higher = the LM finds the response less likely"),
)
QUALITY_SCORES.register(
    "el2n", ScoreSpec(_lm_stats, frozenset({"lm"}), "higher = harder for the LM (EL2N-LM)")
)
QUALITY_SCORES.register(
    "ifd",
    ScoreSpec(
        _ifd,
        frozenset({"lm", "sft"}),
        "PPL(response | prompt) / PPL(response); >= 1: the prompt does not help",
    ),
)
QUALITY_SCORES.register(
    "qtuning",
    ScoreSpec(
        _qtuning,
        frozenset({"lm", "sft"}),
        "Q-Tuning quadrant 1-4 (Q2/Q4: kept by the default triage)",
        (1.0, 3.0),
        (
            (1.0, "not kept by the Q-Tuning triage, Q1 side"),
            (3.0, "not kept by the Q-Tuning triage, Q3 side"),
        ),
    ),
)
QUALITY_SCORES.register(
    "qtuning_noise",
    ScoreSpec(
        _qtuning,
        frozenset({"lm", "sft"}),
        "Q-Tuning noise rule that left the record out: 1 near-duplicate, 2 abrupt end, "
        "3 misaligned; 0 none",
        (1.0, 2.0, 3.0),
        tuple(_NOISE_RULES.values()),
    ),
)
QUALITY_SCORES.register(
    "label_quality",
    ScoreSpec(
        _label_quality,
        frozenset({"embeddings", "labels"}),
        "p(given label); low = likely mislabelled",
    ),
)


@dataclass
class QualityConfig(StageConfig):
    """One score and the range of it to keep.

    Parameters
    ----------
    score : str
        A name in ``QUALITY_SCORES``: length, perplexity, ifd, el2n, qtuning, qtuning_noise,
        label_quality.
    min, max : float, optional
        Keep records with ``min <= score <= max``.
    min_quantile, max_quantile : float, optional
        The same with bounds taken as quantiles (0-1) of the scores of the records that reached
        the stage.
    drop_values : list of float, optional
        Drop records whose score equals one of these (``qtuning``: quadrants, default [1, 3] as
        in Q-Tuning's static triage, which keeps ``QTuningConfig().sample_ratio`` (a quarter) of
        the records: with its default ``fill="random"`` a seeded draw from what its noise rules
        leave in; ``qtuning_noise``: default [1, 2, 3], every record a noise rule left out,
        leaving the budget to a later ``select`` stage).
    drop_label_issues : bool, default=True
        ``label_quality``: drop the records confident learning flags as label issues.
    unit : {"words", "chars"}, default="words"
        ``length``: what is counted in the response.
    batch_size : int, default=8
        LM batch size.
    max_length : int, default=1024
        LM token window per record.
    """

    score: str = ""
    min: float | None = None
    max: float | None = None
    min_quantile: float | None = None
    max_quantile: float | None = None
    drop_values: list[float] | None = None
    drop_label_issues: bool = True
    unit: str = "words"
    batch_size: int = 8
    max_length: int = 1024

    def check(self, stage: str) -> None:
        if not self.score:
            raise bad_option(stage, "score", f"one of {', '.join(QUALITY_SCORES.names())}", None)
        QUALITY_SCORES.get(self.score)
        for name in ("min_quantile", "max_quantile"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= float(v) <= 1.0:
                raise bad_option(stage, name, "a number in [0, 1]", v)
        for lo, hi in (("min", "max"), ("min_quantile", "max_quantile")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and float(a) > float(b):
                raise bad_option(stage, lo, f"a value <= {hi} ({b})", a)
        if self.unit not in ("words", "chars"):
            raise bad_option(stage, "unit", "'words' or 'chars'", self.unit)
        if int(self.batch_size) < 1 or int(self.max_length) < 2:
            raise bad_option(
                stage, "batch_size/max_length", ">= 1 / >= 2", (self.batch_size, self.max_length)
            )
        has_filter = any(
            getattr(self, k) is not None
            for k in ("min", "max", "min_quantile", "max_quantile", "drop_values")
        )
        spec = QUALITY_SCORES.get(self.score)
        if not has_filter and not spec.default_drop_values and self.score != "label_quality":
            raise bad_option(
                stage, "min/max/min_quantile/max_quantile", "at least one bound to filter on", None
            )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@register_stage
class Quality(Stage):
    kind = "quality"
    config_class = QualityConfig
    summary = (
        "score every record (length, perplexity, IFD, EL2N-LM, Q-Tuning, label quality) and filter"
    )

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        return QUALITY_SCORES.get(self.config.score).needs

    def default_label(self) -> str:
        return f"quality:{self.config.score}"

    def run(self, ctx: Any, seen: np.ndarray) -> StageOutput:
        cfg = self.config
        spec = QUALITY_SCORES.get(cfg.score)
        what = {
            "score": cfg.score,
            "compute": spec.compute.__name__,
            "unit": cfg.unit,
            "batch_size": cfg.batch_size,
            "max_length": cfg.max_length,
            "random_state": ctx.random_state if cfg.score in ("label_quality", "qtuning") else None,
        }
        cols = ctx.memo_scores(what, seen, lambda: spec.compute(ctx, seen, cfg))
        s = cols[cfg.score]
        n = len(seen)
        dropped = np.zeros(n, dtype=bool)
        reason: list[str | None] = [None] * n
        cuts: dict[str, float] = {}
        finite = np.isfinite(s)

        def drop(mask: np.ndarray, why: str) -> None:
            new = mask & ~dropped
            for i in np.flatnonzero(new).tolist():
                reason[i] = why
            dropped[new] = True

        drop(~finite, f"{cfg.score} could not be computed")
        lo, hi = cfg.min, cfg.max
        if cfg.min_quantile is not None and finite.any():
            q = float(np.quantile(s[finite], cfg.min_quantile))
            lo = q if lo is None else max(lo, q)
        if cfg.max_quantile is not None and finite.any():
            q = float(np.quantile(s[finite], cfg.max_quantile))
            hi = q if hi is None else min(hi, q)
        if lo is not None:
            cuts["min"] = float(lo)
            drop(finite & (s < lo), f"{cfg.score} below {_fmt(lo)}")
        if hi is not None:
            cuts["max"] = float(hi)
            drop(finite & (s > hi), f"{cfg.score} above {_fmt(hi)}")
        values = cfg.drop_values if cfg.drop_values is not None else spec.default_drop_values
        names = dict(spec.value_names)
        for v in values or ():
            name = names.get(float(v))
            drop(
                finite & (s == float(v)),
                f"{cfg.score} = {_fmt(float(v))}" + (f" ({name})" if name else ""),
            )
        if cfg.score == "label_quality" and cfg.drop_label_issues:
            drop(cols["label_issue"] > 0, "likely label issue (confident learning)")
        return StageOutput(
            dropped,
            reason,
            np.full(n, -1, dtype=np.int64),
            scores={k: np.asarray(v, dtype=np.float64) for k, v in cols.items()},
            details={"score": cfg.score, "cuts": cuts, "direction": spec.direction},
        )
