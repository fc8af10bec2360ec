"""Duplicate stages: exact (normalised text), fuzzy (MinHash + LSH) and semantic (SemDeDup)."""

from __future__ import annotations

import hashlib
import logging
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

logger = logging.getLogger(__name__)

__all__ = ["ExactDedup", "FuzzyDedup", "SemanticDedup"]

_KEEP_RULES = ("first", "longest", "quality")


def _check_keep(stage: str, keep: str, quality_score: str | None) -> None:
    if keep not in _KEEP_RULES:
        raise bad_option(stage, "keep", f"one of {', '.join(_KEEP_RULES)}", keep)
    if keep == "quality" and not quality_score:
        raise bad_option(stage, "quality_score", "a score computed by an earlier stage", None)


def _quality(ctx: Any, seen: np.ndarray, keep: str, score: str | None) -> np.ndarray | None:
    return ctx.score(score)[seen] if keep == "quality" else None


def _output(
    ctx: Any, seen: np.ndarray, dup_local: np.ndarray, what: str, **extra: Any
) -> StageOutput:
    """Drop every record with a survivor in ``dup_local`` (seen-local index, -1 = keep)."""
    dropped = dup_local >= 0
    dup_of = np.where(dropped, seen[np.clip(dup_local, 0, None)], -1).astype(np.int64)
    ids = ctx.view.ids
    reason = [f"{what} of {ids[d]}" if d >= 0 else None for d in dup_of.tolist()]
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(dropped).tolist():
        groups.setdefault(int(dup_of[i]), []).append(int(seen[i]))
    largest = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:20]
    details = {
        "n_groups": len(groups),
        "largest_groups": [[s, *m] for s, m in largest],
        **extra.pop("details", {}),
    }
    return StageOutput(dropped, reason, dup_of, details=details, **extra)


@dataclass
class ExactDedupConfig(StageConfig):
    """Exact duplicates after normalisation (Unicode NFKC, case-folded, whitespace collapsed).

    Parameters
    ----------
    keep : {"first", "longest", "quality"}, default="first"
        Which record of a group survives: the first in input order, the longest text, or the
        highest ``quality_score`` (a score an earlier stage computed).
    quality_score : str, optional
        Score column for ``keep="quality"``.
    """

    keep: str = "first"
    quality_score: str | None = None

    def check(self, stage: str) -> None:
        _check_keep(stage, self.keep, self.quality_score)


def _survivor_order(n: int, keep: str, lengths: np.ndarray, quality: np.ndarray | None):
    """Sort key: earlier = preferred survivor."""
    if keep == "longest":
        return np.lexsort((np.arange(n), -lengths))
    if keep == "quality":
        q = np.where(np.isnan(quality), -np.inf, quality)
        return np.lexsort((np.arange(n), -q))
    return np.arange(n)


@register_stage
class ExactDedup(Stage):
    kind = "exact_dedup"
    config_class = ExactDedupConfig
    summary = "drop exact duplicates of the normalised text (one survivor per group)"

    def run(self, ctx: Any, seen: np.ndarray) -> StageOutput:
        from dataprune.dedup.normalise import normalise_text

        cfg = self.config
        norm = [normalise_text(ctx.view.texts[p]) for p in seen.tolist()]
        lengths = np.array([len(t) for t in norm], dtype=np.int64)
        order = _survivor_order(
            len(seen), cfg.keep, lengths, _quality(ctx, seen, cfg.keep, cfg.quality_score)
        )
        first: dict[bytes, int] = {}
        dup = np.full(len(seen), -1, dtype=np.int64)
        for i in order.tolist():
            key = hashlib.blake2b(norm[i].encode("utf-8"), digest_size=16).digest()
            j = first.setdefault(key, i)
            if j != i:
                dup[i] = j
        return _output(ctx, seen, dup, "exact duplicate")


@dataclass
class FuzzyDedupConfig(StageConfig):
    """Near duplicates by MinHash + LSH (:func:`dataprune.dedup.fuzzy_duplicates`).

    Parameters
    ----------
    threshold : float, default=0.8
        Estimated Jaccard similarity of the shingle sets above which two records are duplicates.
    unit : {"char", "word"}, default="char"
        Shingles: character or word n-grams of the normalised text.
    ngram : int, default=5
        Shingle length.
    num_perm : int, default=128
        MinHash permutations (signature length).
    keep : {"first", "longest", "quality"}, default="first"
        Which record of a group survives (see ``exact_dedup``).
    quality_score : str, optional
        Score column for ``keep="quality"``.
    seed : int, default=1
        Seed of the hash permutations.
    """

    threshold: float = 0.8
    unit: str = "char"
    ngram: int = 5
    num_perm: int = 128
    keep: str = "first"
    quality_score: str | None = None
    seed: int = 1

    def check(self, stage: str) -> None:
        if not 0.0 < float(self.threshold) <= 1.0:
            raise bad_option(stage, "threshold", "a number in (0, 1]", self.threshold)
        if self.unit not in ("char", "word"):
            raise bad_option(stage, "unit", "'char' or 'word'", self.unit)
        if int(self.ngram) < 1:
            raise bad_option(stage, "ngram", "an integer >= 1", self.ngram)
        if int(self.num_perm) < 2:
            raise bad_option(stage, "num_perm", "an integer >= 2", self.num_perm)
        _check_keep(stage, self.keep, self.quality_score)


@register_stage
class FuzzyDedup(Stage):
    kind = "fuzzy_dedup"
    config_class = FuzzyDedupConfig
    summary = "drop near duplicates (MinHash + LSH on n-grams, CPU, memory linear in n)"

    def run(self, ctx: Any, seen: np.ndarray) -> StageOutput:
        from dataprune.dedup import fuzzy_duplicates

        cfg = self.config
        texts = [ctx.view.texts[p] for p in seen.tolist()]
        if cfg.keep == "quality":
            quality = _quality(ctx, seen, cfg.keep, cfg.quality_score)
        else:
            quality = None
        res = fuzzy_duplicates(
            texts,
            threshold=cfg.threshold,
            unit=cfg.unit,
            ngram=cfg.ngram,
            num_perm=cfg.num_perm,
            keep=cfg.keep,
            quality=quality,
            seed=cfg.seed,
            show_progress_bar=ctx.show_progress_bar,
        )
        sim = np.asarray(res.similarity, dtype=np.float64)
        return _output(
            ctx,
            seen,
            np.asarray(res.duplicate_of, dtype=np.int64),
            "near duplicate",
            scores={"fuzzy_similarity": sim},
            details={"params": res.params},
        )


@dataclass
class SemanticDedupConfig(StageConfig):
    """Semantic duplicates: SemDeDup on the sentence embeddings (cosine > ``1 - eps``).

    Parameters
    ----------
    eps : float, default=0.05
        Records whose embedding similarity to an earlier member of their k-means cluster exceeds
        ``1 - eps`` are duplicates.
    n_clusters : int, optional
        k-means clusters (default: SemDeDup's rule).
    keep : {"hard", "easy", "random"}, default="hard"
        Which member of a duplicate group survives (SemDeDup's rule: farthest from the centre).
    """

    eps: float = 0.05
    n_clusters: int | None = None
    keep: str = "hard"

    def check(self, stage: str) -> None:
        if not 0.0 <= float(self.eps) <= 2.0:
            raise bad_option(stage, "eps", "a number in [0, 2]", self.eps)
        if self.keep not in ("hard", "easy", "random"):
            raise bad_option(stage, "keep", "'hard', 'easy' or 'random'", self.keep)
        if self.n_clusters is not None and int(self.n_clusters) < 1:
            raise bad_option(stage, "n_clusters", "an integer >= 1", self.n_clusters)


@register_stage
class SemanticDedup(Stage):
    kind = "semantic_dedup"
    config_class = SemanticDedupConfig
    needs = frozenset({"embeddings"})
    summary = "drop semantic duplicates (SemDeDup on sentence embeddings)"

    def run(self, ctx: Any, seen: np.ndarray) -> StageOutput:
        from dataprune.selection import select

        cfg = self.config
        E = ctx.embeddings()[seen]
        opts: dict[str, Any] = {"eps": cfg.eps, "keep": cfg.keep}
        if cfg.n_clusters is not None:
            opts["n_clusters"] = cfg.n_clusters
        res = select(
            [{"text": ""}] * len(seen),
            method="semdedup",
            n_samples=len(seen),
            embeddings=E,
            empty_text="keep",
            random_state=ctx.random_state,
            engine=ctx.engine,
            engine_options=ctx.engine_options or None,
            show_progress_bar=ctx.show_progress_bar,
            **opts,
        )
        is_dup = res.columns["is_duplicate"].astype(bool)
        dup = np.where(is_dup, res.columns["duplicate_of"], -1).astype(np.int64)
        return _output(
            ctx,
            seen,
            dup,
            "semantic duplicate",
            scores={"max_similarity": res.columns["max_similarity"].astype(np.float64)},
            details={"eps": cfg.eps},
        )
