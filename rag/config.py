"""Configuration dataclasses for the Provence-style pruner (peft-style: one config per part)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError

__all__ = ["KEEP_HEADS", "PrunerConfig", "TrainConfig"]

#: Valid ``PrunerConfig.keep_head`` values.
KEEP_HEADS = ("query_match", "linear")


@dataclass
class PrunerConfig(ConfigMixin):
    """Architecture of a pruner checkpoint (stored as ``pruner_config.json``).

    Parameters
    ----------
    backbone : str
        Hugging Face encoder the pruner is built on (hub id, alias or path); the default is
        all-MiniLM-L6-v2, resolved offline by :func:`dataprune.models.resolve_encoder`.
    max_length : int
        Tokens per window (query + passage + special tokens). Longer passages are split into
        several windows at sentence boundaries with the query repeated; nothing is truncated.
    max_query_tokens : int
        Longer queries are cut to this many tokens (with a logged warning).
    trainable_layers : int
        How many of the top encoder layers are fine-tuned (``-1``: all layers and embeddings).
        Only those layers and the heads are stored in a compact checkpoint.
    dropout : float
        Dropout before both heads during training.
    keep_head : {"query_match", "linear"}
        ``"linear"``: Provence's head, a linear keep logit per token and a linear rank logit on
        the first token. ``"query_match"`` adds, to every token of a sentence, the scaled cosine
        between the sentence's and the query's mean hidden states (after a learned projection
        that starts as the identity), and to the rank logit the scaled maximum of those cosines:
        the pretrained encoder's similarity geometry is used from the first step, which is what
        makes a CPU-sized fine-tune learn (the plain linear head barely moves in the same budget).
    match_scale : float
        Initial scale of the query-match cosine (learned afterwards); 10 suits the pretrained
        sentence-embedding backbones, a random backbone wants a small value.
    """

    backbone: str = "sentence-transformers/all-MiniLM-L6-v2"
    max_length: int = 512
    max_query_tokens: int = 128
    trainable_layers: int = 2
    dropout: float = 0.1
    keep_head: str = "query_match"
    match_scale: float = 10.0

    def __post_init__(self) -> None:
        if not self.match_scale > 0:
            raise DataValidationError(f"match_scale must be > 0, got {self.match_scale}")
        if self.keep_head not in KEEP_HEADS:
            raise DataValidationError(
                f"unknown keep_head {self.keep_head!r}; valid: {', '.join(KEEP_HEADS)}"
            )
        if self.max_length < 32:
            raise DataValidationError(f"max_length must be >= 32, got {self.max_length}")
        if not 1 <= self.max_query_tokens <= self.max_length // 2:
            raise DataValidationError(
                f"max_query_tokens must be in [1, max_length // 2 = {self.max_length // 2}], "
                f"got {self.max_query_tokens}"
            )
        if self.trainable_layers < -1:
            raise DataValidationError(
                f"trainable_layers must be -1 (all) or >= 0, got {self.trainable_layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise DataValidationError(f"dropout must be in [0, 1), got {self.dropout}")

    # read back from checkpoint configs of any version
    _ignore_unknown_keys = True

    @classmethod
    def _from_dict_defaults(cls, d: dict[str, Any]) -> dict[str, Any]:
        # checkpoints written before keep_head existed used the linear head
        return {"keep_head": "linear", **d}


@dataclass
class TrainConfig(ConfigMixin):
    """How a pruner is trained on SQuAD v2 (recorded in the checkpoint's card).

    Parameters
    ----------
    data : str
        SQuAD v2 JSON file or a folder holding one (``dev-v2.0.json`` / ``train-v2.0.json``).
    n_test_articles, n_val_articles : int
        Articles held out for the final evaluation and for model selection / collapse checks.
        The split is by article (never by question) and seeded by ``random_state``.
    max_steps : int
        Length of the learning-rate schedule (linear warm-up, then linear decay to 0 here).
    stop_after_steps : int or None
        Stop after this many steps of that schedule (a CPU time budget); the result is the same
        as an uninterrupted run stopped there (an interrupted run resumes from its saved state).
    batch_size : int
        Windows per step (length-bucketed).
    lr, head_lr : float
        Peak learning rates of the encoder and of the two heads (linear warm-up then decay).
    warmup_ratio : float
        Share of ``max_steps`` used for warm-up.
    weight_decay : float
    pos_weight : float
        Weight of relevant tokens / sentences in the keep losses (class imbalance).
    sentence_loss_weight, token_loss_weight : float
        Weights of the sentence-pooled keep loss (mean token logit per sentence) and of the
        per-token keep loss.
    rank_loss_weight : float
        Weight of the ranking BCE on "the window holds an answer sentence".
    negatives_per_question : int
        Extra (question, other paragraph) pairs per answerable training question; half come from
        the same article (BM25-nearest paragraph without the answer), half from other articles.
    unanswerable_share : float
        Share of the unanswerable SQuAD v2 questions used for training (all are used in eval).
    max_train_pairs : int or None
        Seeded subsample of the training pairs (CPU budget); ``None`` (on the command line: 0) uses all.
    cache_frozen_layers : bool
        Compute the frozen bottom layers once per training window and train the top layers on
        the cached states (same result, several times less compute on CPU).
    eval_every : int
        Steps between validation checks (model selection and collapse detection).
    n_val_passages : int
        Validation passages scored at each check.
    checkpoint_every : int
        Steps between resumable training-state saves.
    precision : str
        ``"bfloat16"`` (CPU autocast, faster training where supported) or ``"float32"``.
    random_state : int
        Seed of the split, sampling, initialisation and data order.
    evidence_sets : tuple of str
        Further training sets from :data:`dataprune.rag.corpora.EVIDENCE_SETS` (their ``train``
        split), mixed with SQuAD. Only sets whose licence allows training an Apache-2.0
        checkpoint are accepted unless ``allow_restricted_licences``.
    evidence_data : str
        Folder holding the evidence sets' folders.
    include_squad : bool
        Train on SQuAD v2 too (``False``: leave SQuAD out of training; its validation and
        held-out articles are still used).
    evidence_val_share : float
        Share of each evidence set's questions (whole questions) kept for validation.
    distractors_per_question : int
        Passages without evidence kept per question of a multi-passage set (seeded).
    bridge_examples : bool
        For multi-hop questions also train with the query extended by the evidence sentences of
        the question's other gold passages (what the multi-hop second pass feeds the model): one
        example per gold passage and one per question with a distractor.
    max_pairs_per_set : int or None
        Seeded subsample of each evidence set's training pairs.
    target_compression : float or None
        Calibrate the checkpoint's default threshold on the validation passages that hold
        evidence: the smallest threshold whose mean character compression reaches this share
        (``None``: the default threshold stays 0.1).
    allow_restricted_licences : bool
        Accept evaluation-only sets (non-commercial or unstated licences) for a private model.
    """

    data: str = "../shared/data/squad_v2"
    n_test_articles: int = 4
    n_val_articles: int = 1
    max_steps: int = 350
    stop_after_steps: int | None = None
    batch_size: int = 16
    lr: float = 2e-4
    head_lr: float = 1e-3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    pos_weight: float = 2.0
    sentence_loss_weight: float = 1.0
    token_loss_weight: float = 1.0
    rank_loss_weight: float = 0.2
    negatives_per_question: int = 1
    unanswerable_share: float = 1.0
    max_train_pairs: int | None = 4000
    cache_frozen_layers: bool = True
    eval_every: int = 70
    n_val_passages: int = 200
    checkpoint_every: int = 50
    precision: str = "float32"
    random_state: int = 0
    evidence_sets: tuple[str, ...] = ()
    evidence_data: str = "../shared/data"
    include_squad: bool = True
    evidence_val_share: float = 0.1
    distractors_per_question: int = 4
    bridge_examples: bool = True
    max_pairs_per_set: int | None = None
    target_compression: float | None = None
    allow_restricted_licences: bool = False
    pruner: PrunerConfig = field(default_factory=PrunerConfig)

    def __post_init__(self) -> None:
        if isinstance(self.pruner, dict):
            self.pruner = PrunerConfig.from_dict(self.pruner)
        if isinstance(self.evidence_sets, str):
            self.evidence_sets = tuple(x for x in self.evidence_sets.split(",") if x)
        self.evidence_sets = tuple(self.evidence_sets)
        if not self.include_squad and not self.evidence_sets:
            raise DataValidationError(
                "nothing to train on: include_squad=False needs at least one evidence set"
            )
        checks = {
            "max_steps": self.max_steps >= 1,
            "stop_after_steps": self.stop_after_steps is None or self.stop_after_steps >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "head_lr": self.head_lr > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "pos_weight": self.pos_weight > 0,
            "n_test_articles": self.n_test_articles >= 1,
            "n_val_articles": self.n_val_articles >= 0,
            "negatives_per_question": self.negatives_per_question >= 0,
            "unanswerable_share": 0 <= self.unanswerable_share <= 1,
            "max_train_pairs": self.max_train_pairs is None or self.max_train_pairs >= 1,
            "eval_every": self.eval_every >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "precision": self.precision in ("bfloat16", "float32"),
            "evidence_val_share": 0 <= self.evidence_val_share < 1,
            "distractors_per_question": self.distractors_per_question >= 0,
            "max_pairs_per_set": self.max_pairs_per_set is None or self.max_pairs_per_set >= 1,
            "target_compression": self.target_compression is None
            or 0 < self.target_compression < 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise DataValidationError(
                "invalid training option(s): " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            )

    # read back from the cards of any version
    _ignore_unknown_keys = True
