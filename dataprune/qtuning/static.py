"""Static Q-Tuning: triage a whole SFT dataset once with a causal LM.

:class:`QTuningTriage` (scikit-learn style) scores every (prompt, response) pair with
:func:`dataprune.lm_scoring.score_sft`, places it on the EU plane, keeps exactly
``K = max(1, round(n_samples * sample_ratio))`` samples (Q2 and Q4) and masks tokens of Q2 samples.
:func:`dataprune.qtuning.report.write_triage` writes

* ``OUTPUT``: the kept records with ``input_ids`` and ``labels`` (-100 on the prompt and on pruned
  tokens), ready for a ``transformers.Trainer`` through :class:`~dataprune.qtuning.SFTCollator`,
  plus a readable ``qtuning_view`` of the response with pruned spans marked ``[-...-]``;
* ``OUTPUT.scores.parquet``: one row per input sample (quadrant, PPL, entropy, ranks, token counts);
* ``OUTPUT.eu_plane.png``: the EU-plane scatter plot; ``OUTPUT.manifest.json``.

Scoring is resumable: with ``cache_dir`` the dataset is scored in length-sorted shards saved as
they finish, and a re-run reuses every finished shard (:mod:`dataprune.qtuning.score_cache`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.estimator import BaseEstimator, check_fitted
from dataprune.lm_scoring import TokenScores
from dataprune.qtuning.collate import IGNORE_INDEX
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.groups import group_codes
from dataprune.qtuning.noise import abrupt_end_mask, add_misaligned, name_misaligned
from dataprune.qtuning.quadrants import triage_samples
from dataprune.qtuning.sample_triage import SELECTION_NAMES, SampleTriage
from dataprune.qtuning.score_cache import score_sft_cached
from dataprune.qtuning.tokens import token_keep_masks
from dataprune.sft_encoding import SFTEncoding

logger = logging.getLogger(__name__)

__all__ = ["QTuningTriage", "TriageResult", "triage_token_scores"]


@dataclass
class TriageResult:
    """Static triage of a dataset.

    Attributes
    ----------
    config : QTuningConfig
    samples : SampleTriage
        Quadrants and the kept set.
    perplexity : ndarray of shape (n_samples,)
        PPL over response tokens (higher = larger error).
    entropy : ndarray of shape (n_samples,)
        The entropy used for triage (``config.entropy_span``).
    entropy_response, entropy_all : ndarray of shape (n_samples,)
        Mean entropy over response tokens / over every predicted position.
    token_keep : list of ndarray of bool, each of shape (n_response_tokens_i,)
        Response tokens that carry loss (all False for dropped samples).
    encodings : list of SFTEncoding
        Token ids and response masks.
    duplicate_of : ndarray of shape (n_samples,), int, optional
        For samples left out as duplicates (``config.dedup``), the index of the sample they
        duplicate; -1 otherwise. ``None`` when no deduplication ran.
    end_nll : ndarray of shape (n_samples,), optional
        NLL of each response's end-of-turn token (NaN where absent; higher = a more abrupt end);
        ``None`` when no end token id was given.
    ifd : ndarray of shape (n_samples,), optional
        IFD, ``PPL(response | prompt) / PPL(response)`` (>= 1: the prompt does not help predict
        the response); ``None`` when it was not computed (``config.max_ifd`` off).
    """

    config: QTuningConfig
    samples: SampleTriage
    perplexity: np.ndarray
    entropy: np.ndarray
    entropy_response: np.ndarray
    entropy_all: np.ndarray
    token_keep: list[np.ndarray]
    encodings: list[SFTEncoding]
    mean_nll: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    duplicate_of: np.ndarray | None = None
    end_nll: np.ndarray | None = None
    ifd: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.perplexity)

    @property
    def kept_indices(self) -> np.ndarray:
        return self.samples.kept_indices

    def labels(self, i: int) -> tuple[list[int], list[int]]:
        """``(input_ids, labels)`` of sample ``i``; labels are -100 on the prompt and pruned tokens."""
        enc = self.encodings[i]
        ids = enc.input_ids.tolist()
        labels = [IGNORE_INDEX] * len(ids)
        resp_pos = np.flatnonzero(enc.response_mask)
        for p, keep in zip(resp_pos.tolist(), self.token_keep[i].tolist()):
            if keep:
                labels[p] = ids[p]
        return ids, labels

    def features(self) -> list[dict[str, list[int]]]:
        """``{"input_ids", "labels"}`` of the kept samples, in input order."""
        out = []
        for i in self.kept_indices.tolist():
            ids, labels = self.labels(i)
            out.append({"input_ids": ids, "labels": labels})
        return out

    def token_counts(self) -> dict[str, int]:
        """Response tokens: all samples, in kept samples, and carrying loss."""
        n_resp = np.array([len(k) for k in self.token_keep])
        kept = self.samples.kept
        return {
            "response_tokens": int(n_resp.sum()),
            "response_tokens_in_kept_samples": int(n_resp[kept].sum()),
            "kept_tokens": int(sum(int(k.sum()) for k in self.token_keep)),
        }

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (counts, alpha, thresholds; per group when triaged by source)."""
        return {
            "n_samples": len(self),
            "n_keep": self.samples.n_keep,
            "quadrants": self.samples.counts(),
            "alpha": None if math.isnan(self.samples.alpha) else self.samples.alpha,
            "thresholds": self.samples.thresholds,
            "n_corner": self.samples.n_corner,
            "n_bisection_steps": self.samples.n_bisection_steps,
            **({"by_group": self.samples.by_group} if self.samples.by_group else {}),
            "tokens": self.token_counts(),
        }

    def to_table(self, input_indices: Sequence[int] | None = None) -> dict[str, list[Any]]:
        """Column dict with one row per sample (what ``OUTPUT.scores.parquet`` holds)."""
        idx = list(range(len(self))) if input_indices is None else list(input_indices)
        s = self.samples
        n_resp = [len(k) for k in self.token_keep]
        return {
            "index": idx,
            "quadrant": [f"Q{int(q)}" for q in s.quadrant],
            "kept": s.kept.tolist(),
            "selection": [SELECTION_NAMES[int(x)] for x in s.selection],
            "perplexity": self.perplexity.tolist(),
            "entropy": self.entropy.tolist(),
            "entropy_response": self.entropy_response.tolist(),
            "entropy_all": self.entropy_all.tolist(),
            "mean_nll": self.mean_nll.tolist(),
            "ppl_rank": s.ppl_rank.tolist(),
            "ent_rank": s.ent_rank.tolist(),
            "n_response_tokens": n_resp,
            "n_kept_tokens": [int(k.sum()) for k in self.token_keep],
            "truncated": [bool(e.truncated) for e in self.encodings],
            "duplicate_of": (
                [None] * len(idx)
                if self.duplicate_of is None
                else [idx[int(j)] if j >= 0 else None for j in self.duplicate_of]
            ),
            "end_nll": (
                [None] * len(idx)
                if self.end_nll is None
                else [None if np.isnan(x) else float(x) for x in self.end_nll]
            ),
            "ifd": [None] * len(idx) if self.ifd is None else self.ifd.tolist(),
        }


def triage_token_scores(
    scores: TokenScores,
    config: QTuningConfig | None = None,
    *,
    duplicate_of: Any = None,
    end_token_id: int | Sequence[int] | None = None,
    ifd: Any = None,
    groups: Any = None,
    random_state: int | None = None,
) -> TriageResult:
    """Triage samples and tokens from per-token scores already computed.

    Parameters
    ----------
    scores : TokenScores
        From :func:`dataprune.lm_scoring.score_sft` (or :func:`score_sft_cached`).
    config : QTuningConfig, optional
    duplicate_of : array-like of shape (n_samples,), int, optional
        Index of the sample each one duplicates, -1 for none (e.g.
        :attr:`dataprune.dedup.FuzzyDuplicates.duplicate_of`); duplicates are left out of the
        triage (see :func:`~dataprune.qtuning.triage_samples`'s ``exclude``).
    end_token_id : int or sequence of int, optional
        The end-of-turn token id(s) for ``end_nll`` and ``config.abrupt_end``; default: the
        scoring tokenizer's ``eos_token_id`` (``scores.meta``). When neither is known, the
        abrupt-end rule is skipped with a warning.
    ifd : array-like of shape (n_samples,), optional
        IFD of every sample (:func:`dataprune.scores.ifd_from_token_scores` of ``scores`` and a
        pass with empty prompts); needed by ``config.max_ifd`` (skipped with a warning without
        it). Samples with ``ifd >= config.max_ifd`` are left out as misaligned (after the
        abrupt-end rule).
    groups : array-like of shape (n_samples,), optional
        Source label per sample: each source is triaged on its own scale (PPL and entropy
        ranked within it, the abrupt-end median its own; see :mod:`dataprune.qtuning.groups`),
        so a source whose scores run high is not dropped wholesale as Q1.
    random_state : int, optional
        Seeds the ``"uniform"``, ``"flat"`` and ``"random"`` fill-up draws and breaks exact ties
        in the other fill-up orders (``None``: a generator seeded with 0 for the draw, ties by
        index).

    Returns
    -------
    TriageResult
    """
    cfg = (config if config is not None else QTuningConfig()).validate()
    if len(scores) == 0:
        raise DataValidationError("no samples to triage; expected at least one")
    ppl = scores.perplexity()
    ent_resp = scores.mean_entropy("response")
    ent_all = scores.mean_entropy("all")
    ent = ent_resp if cfg.entropy_span == "response" else ent_all
    dup = None
    if duplicate_of is not None:
        dup = np.asarray(duplicate_of, dtype=np.int64)
        if dup.shape != ppl.shape:
            raise DataValidationError(
                f"duplicate_of has shape {dup.shape}; expected one index per sample, {ppl.shape}"
            )
    if end_token_id is None:
        end_token_id = scores.meta.get("eos_token_id")
    end = None if end_token_id is None else scores.end_nll(end_token_id)
    noise = None
    if cfg.abrupt_end is not None and end is None:
        logger.warning(
            "abrupt_end=%s is skipped: no end token id (pass end_token_id, e.g. the tokenizer's "
            "eos_token_id)",
            cfg.abrupt_end,
        )
    elif cfg.abrupt_end is not None:
        noise = abrupt_end_mask(end, cfg.abrupt_end, groups)
        if np.isnan(end).all():
            logger.warning(
                "no response holds the end token %s: abrupt_end leaves nothing out", end_token_id
            )
    misaligned = None
    if ifd is not None:
        ifd = np.asarray(ifd, dtype=np.float64)
        if ifd.shape != ppl.shape:
            raise DataValidationError(
                f"ifd has shape {ifd.shape}; expected one value per sample, {ppl.shape}"
            )
    if cfg.max_ifd is not None and ifd is None:
        logger.warning(
            "max_ifd=%s is skipped: pass ifd= (IFD per sample, from "
            "dataprune.scores.ifd_from_token_scores and a pass with empty prompts)",
            cfg.max_ifd,
        )
    elif cfg.max_ifd is not None:
        misaligned, noise = add_misaligned(ifd, cfg.max_ifd, noise)
    samples = triage_samples(
        ppl,
        ent,
        cfg,
        exclude=None if dup is None else dup >= 0,
        noise=noise,
        groups=groups,
        random_state=random_state,
    )
    name_misaligned(samples, misaligned)
    keep = token_keep_masks(scores.nll, samples, cfg)
    return TriageResult(
        config=cfg,
        samples=samples,
        perplexity=ppl,
        entropy=ent,
        entropy_response=ent_resp,
        entropy_all=ent_all,
        token_keep=keep,
        encodings=scores.encodings,
        mean_nll=np.array([float(np.mean(x)) for x in scores.nll]),
        meta={"model_id": scores.model_id, **scores.meta},
        duplicate_of=dup,
        end_nll=end,
        ifd=ifd,
    )


# ----------------------------------------------------------------------------- estimator


class QTuningTriage(BaseEstimator):
    """Static Q-Tuning triage of SFT samples and tokens (scikit-learn style).

    Parameters
    ----------
    config : QTuningConfig, optional
        Budgets and options (default ``QTuningConfig()``).
    model : str, path, or transformers model, optional
        The scoring causal LM: a loaded model (then pass ``tokenizer``), a path or hub id, or
        ``None`` for the offline SmolLM2-135M-Instruct (:func:`dataprune.models.load_causal_lm`).
    tokenizer : transformers tokenizer, optional
        Required when ``model`` is a loaded model.
    batch_size : int, default=8
    max_length : int, default=1024
        Token window per sample (longer samples are truncated, see ``encode_sft``).
    chunk_size : int, default=512
        Positions projected to the vocabulary at once.
    use_chat_template : bool, optional
        Default: when the tokenizer has one.
    cache_dir : path, optional
        Resumable shard cache for scoring (see :func:`score_sft_cached`).
    random_state : int, optional
        Seeds the ``"uniform"``, ``"flat"`` and ``"random"`` fill-up draws and breaks exact ties
        in the fill-up order.
    show_progress_bar : bool, optional
    compile_stats : bool, default=False
        Fused ``torch.compile`` kernel for the NLL/entropy statistics (see
        :func:`dataprune.lm_scoring.score_sft`); pays a one-time compilation for large datasets.

    Attributes
    ----------
    result_ : TriageResult
    scores_ : TokenScores
    perplexity_, entropy_ : ndarray of shape (n_samples,)
    quadrant_ : ndarray of shape (n_samples,), int8 (1..4)
    kept_indices_ : ndarray of int
        Exactly ``config.n_keep(n_samples)`` indices, ascending.
    token_keep_ : list of ndarray of bool
    alpha_ : float
    end_nll_ : ndarray of shape (n_samples,)
        NLL of each response's end-of-turn token (the tokenizer's EOS; NaN where absent;
        higher = a more abrupt end), whether or not ``config.abrupt_end`` is set.
    ifd_ : ndarray of shape (n_samples,) or None
        IFD per sample (``PPL(response | prompt) / PPL(response)``) when ``config.max_ifd`` is
        set, else ``None``.
    model_info_ : dict
    """

    def __init__(
        self,
        config: QTuningConfig | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        batch_size: int = 8,
        max_length: int = 1024,
        chunk_size: int = 512,
        use_chat_template: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        random_state: int | None = None,
        show_progress_bar: bool | None = None,
        compile_stats: bool = False,
    ) -> None:
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.chunk_size = chunk_size
        self.use_chat_template = use_chat_template
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.show_progress_bar = show_progress_bar
        self.compile_stats = compile_stats

    def _resolve_model(self) -> tuple[Any, Any, dict[str, Any]]:
        m = self.model
        if m is None or isinstance(m, (str, os.PathLike)):
            from dataprune.models import load_causal_lm, resolve_causal_lm

            model, tok = load_causal_lm(m)
            src = getattr(model, "dataprune_source", None) or resolve_causal_lm(m)
            return model, tok, src.describe()
        if self.tokenizer is None:
            raise DataValidationError("pass tokenizer=... together with a loaded model")
        src = getattr(m, "dataprune_source", None)
        info = (
            src.describe()
            if src is not None
            else {
                "name": str(getattr(getattr(m, "config", None), "name_or_path", "")),
                "class": type(m).__name__,
                "source": "in-memory",
            }
        )
        return m, self.tokenizer, info

    def fit(
        self, prompts: Sequence[str], responses: Sequence[str], groups: Any = None
    ) -> QTuningTriage:
        """Score and triage the pairs.

        Parameters
        ----------
        prompts, responses : sequence of str, length n_samples
        groups : sequence of str or int, length n_samples, optional
            Source of each pair (dataset, file, field): each source is triaged on its own
            scale (:func:`triage_token_scores`); ``K`` is not split by source.

        Returns
        -------
        self
        """
        cfg = (self.config if self.config is not None else QTuningConfig()).validate()
        if len(prompts) != len(responses):
            raise DataValidationError(
                f"got {len(prompts)} prompts but {len(responses)} responses; expected equal lengths"
            )
        if len(prompts) == 0:
            raise DataValidationError("no samples to triage; expected at least one")
        for i, (p, r) in enumerate(zip(prompts, responses)):
            if not isinstance(p, str):
                raise DataValidationError(
                    f"expected a string, got {type(p).__name__}", record=i, field="prompt"
                )
            if not isinstance(r, str) or not r.strip():
                raise DataValidationError(
                    "expected a non-empty response string", record=i, field="response"
                )
        if groups is not None:
            group_codes(groups, len(prompts))  # fail before scoring
        model, tok, info = self._resolve_model()

        def score(prompt_texts: list[str]) -> TokenScores:
            return score_sft_cached(
                model,
                tok,
                prompt_texts,
                list(responses),
                cache_dir=self.cache_dir,
                batch_size=self.batch_size,
                max_length=self.max_length,
                chunk_size=self.chunk_size,
                use_chat_template=self.use_chat_template,
                show_progress_bar=self.show_progress_bar,
                compile_stats=self.compile_stats,
            )

        scores = score(list(prompts))
        ifd = None
        if cfg.max_ifd is not None:  # one more pass: the same responses with empty prompts
            from dataprune.scores import ifd_from_token_scores

            ifd = ifd_from_token_scores(scores, score([""] * len(responses))).ifd
        duplicate_of = None
        if cfg.dedup == "fuzzy":
            from dataprune.dedup import fuzzy_duplicates
            from dataprune.qtuning.config import DEDUP_THRESHOLD

            texts = [f"{p}\n{r}" for p, r in zip(prompts, responses)]
            duplicate_of = fuzzy_duplicates(texts, threshold=DEDUP_THRESHOLD).duplicate_of
        result = triage_token_scores(
            scores,
            cfg,
            duplicate_of=duplicate_of,
            ifd=ifd,
            groups=groups,
            random_state=self.random_state,
        )
        self.tokenizer_ = tok
        self.scores_ = scores
        self.result_ = result
        self.perplexity_ = result.perplexity
        self.entropy_ = result.entropy
        self.quadrant_ = result.samples.quadrant
        self.kept_indices_ = result.kept_indices
        self.token_keep_ = result.token_keep
        self.alpha_ = result.samples.alpha
        self.end_nll_ = result.end_nll
        self.ifd_ = result.ifd
        self.model_info_ = info
        return self

    def features(self) -> list[dict[str, list[int]]]:
        """Kept samples as ``{"input_ids", "labels"}`` (for :class:`~dataprune.qtuning.SFTCollator`)."""
        self._check_fitted()
        return self.result_.features()

    def _check_fitted(self) -> None:
        check_fitted(self, "result_")
