"""Static Q-Tuning: triage a whole SFT dataset once with a causal LM and write the result.

:class:`QTuningTriage` (scikit-learn style) scores every (prompt, response) pair with
:func:`dataprune.lm_scoring.score_sft`, places it on the EU plane, keeps exactly
``K = max(1, round(n_samples * sample_ratio))`` samples (Q2 and Q4) and masks tokens of Q2 samples.
:func:`write_triage` writes

* ``OUTPUT``: the kept records with ``input_ids`` and ``labels`` (-100 on the prompt and on pruned
  tokens), ready for a ``transformers.Trainer`` through :class:`~dataprune.qtuning.SFTCollator`,
  plus a readable ``qtuning_view`` of the response with pruned spans marked ``[-...-]``;
* ``OUTPUT.scores.parquet``: one row per input sample (quadrant, PPL, entropy, ranks, token counts);
* ``OUTPUT.eu_plane.png``: the EU-plane scatter plot; ``OUTPUT.manifest.json``.

Scoring is resumable: with ``cache_dir`` the dataset is scored in length-sorted shards saved as
they finish, and a re-run reuses every finished shard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.estimator import BaseEstimator, check_fitted
from dataprune.lm_scoring import SFTEncoding, TokenScores, encode_sft, score_sft
from dataprune.qtuning.collate import IGNORE_INDEX
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.quadrants import SELECTION_NAMES, SampleTriage, triage_samples
from dataprune.qtuning.tokens import token_keep_masks

logger = logging.getLogger(__name__)

__all__ = [
    "PRUNED_CLOSE",
    "PRUNED_OPEN",
    "QTuningTriage",
    "TriageResult",
    "pruned_view",
    "score_sft_cached",
    "triage_token_scores",
    "write_triage",
]

PRUNED_OPEN, PRUNED_CLOSE = "[-", "-]"
_OUTPUT_FIELDS = (
    "input_ids",
    "labels",
    "qtuning_index",
    "qtuning_quadrant",
    "qtuning_view",
    "qtuning_n_response_tokens",
    "qtuning_n_kept_tokens",
)


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
        """JSON-able summary (counts, alpha, thresholds)."""
        return {
            "n_samples": len(self),
            "n_keep": self.samples.n_keep,
            "quadrants": self.samples.counts(),
            "alpha": self.samples.alpha,
            "thresholds": self.samples.thresholds,
            "n_corner": self.samples.n_corner,
            "n_bisection_steps": self.samples.n_bisection_steps,
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
        }


def triage_token_scores(
    scores: TokenScores,
    config: QTuningConfig | None = None,
    *,
    random_state: int | None = None,
) -> TriageResult:
    """Triage samples and tokens from per-token scores already computed.

    Parameters
    ----------
    scores : TokenScores
        From :func:`dataprune.lm_scoring.score_sft` (or :func:`score_sft_cached`).
    config : QTuningConfig, optional
    random_state : int, optional
        Breaks exact ties in the fill-up order (``None``: by index).

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
    samples = triage_samples(ppl, ent, cfg, random_state=random_state)
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
    )


# ----------------------------------------------------------------------------- resumable scoring


def _model_fingerprint(model: Any) -> str:
    """Cheap identity of a model's weights (a strided sample of every parameter)."""
    import torch

    h = hashlib.sha256()
    src = getattr(model, "dataprune_source", None)
    h.update(str(getattr(src, "name", "")).encode())
    h.update(str(getattr(getattr(model, "config", None), "name_or_path", "")).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            step = max(1, flat.numel() // 256)
            h.update(name.encode())
            h.update(str(tuple(p.shape)).encode())
            h.update(flat[::step].float().cpu().numpy().tobytes())
    return h.hexdigest()


def _save_shard(path: Path, scores: TokenScores) -> None:
    from dataprune.atomic import atomic_path

    lens = np.array([len(x) for x in scores.nll], dtype=np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            lengths=lens,
            nll=np.concatenate(scores.nll),
            entropy=np.concatenate(scores.entropy),
            p_true=np.concatenate(scores.p_true),
            sum_p2=np.concatenate(scores.sum_p2),
            entropy_all=scores.entropy_all,
        )


def _load_shard(path: Path) -> dict[str, list[np.ndarray] | np.ndarray]:
    with np.load(path) as z:
        splits = np.cumsum(z["lengths"])[:-1]
        out: dict[str, Any] = {
            k: np.split(z[k], splits) for k in ("nll", "entropy", "p_true", "sum_p2")
        }
        out["entropy_all"] = z["entropy_all"].copy()
    return out


def score_sft_cached(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 512,
    batch_size: int = 8,
    max_length: int = 1024,
    chunk_size: int = 512,
    use_chat_template: bool | None = None,
    show_progress_bar: bool | None = None,
    compile_stats: bool = False,
) -> TokenScores:
    """:func:`~dataprune.lm_scoring.score_sft`, resumable through a shard cache.

    Samples are sorted by token length and scored ``shard_size`` at a time; each finished shard
    is saved to ``cache_dir`` under a key made of the model's weights, the scoring options and the
    shard's texts, so an interrupted run resumes where it stopped and a changed input re-scores only
    the shards it touches. Without ``cache_dir`` this is ``score_sft``.

    Returns
    -------
    TokenScores
        In input order.
    """
    kw = {
        "batch_size": batch_size,
        "max_length": max_length,
        "chunk_size": chunk_size,
        "use_chat_template": use_chat_template,
    }
    if cache_dir is None:
        return score_sft(
            model,
            tokenizer,
            prompts,
            responses,
            show_progress_bar=show_progress_bar,
            compile_stats=compile_stats,
            **kw,
        )
    if len(prompts) != len(responses):
        raise DataValidationError(
            f"got {len(prompts)} prompts but {len(responses)} responses; expected equal lengths"
        )
    if not prompts:
        raise DataValidationError("no samples to score; expected at least one")
    if shard_size < 1:
        raise DataValidationError(f"shard_size must be >= 1, got {shard_size}")
    encodings = []
    for i, (p, r) in enumerate(zip(prompts, responses)):
        try:
            encodings.append(
                encode_sft(
                    tokenizer, p, r, max_length=max_length, use_chat_template=use_chat_template
                )
            )
        except DataValidationError as exc:
            raise DataValidationError(exc.reason, record=i, field="response") from None
    n = len(encodings)
    order = np.argsort([len(e.input_ids) for e in encodings], kind="stable")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    base = hashlib.sha256()
    base.update(_model_fingerprint(model).encode())
    base.update(json.dumps(kw, sort_keys=True).encode())
    per: dict[str, list[Any]] = {k: [None] * n for k in ("nll", "entropy", "p_true", "sum_p2")}
    entropy_all = np.zeros(n)
    n_cached = 0
    shards = [order[lo : lo + shard_size] for lo in range(0, n, shard_size)]
    for s, idx in enumerate(shards):
        h = base.copy()
        for i in idx.tolist():
            h.update(encodings[i].input_ids.tobytes())
            h.update(encodings[i].response_mask.tobytes())
        path = cache / f"shard-{s:05d}-{h.hexdigest()[:20]}.npz"
        data: dict[str, Any] | None = None
        if path.is_file():
            try:
                data = _load_shard(path)
                n_cached += 1
            except Exception as exc:  # a corrupt shard is re-scored
                logger.warning("ignoring unreadable cached shard %s (%s)", path, exc)
        if data is None:
            logger.info("scoring shard %d/%d (%d samples)", s + 1, len(shards), len(idx))
            sc = score_sft(
                model,
                tokenizer,
                [prompts[i] for i in idx.tolist()],
                [responses[i] for i in idx.tolist()],
                show_progress_bar=show_progress_bar,
                compile_stats=compile_stats,
                **kw,
            )
            _save_shard(path, sc)
            data = {
                "nll": sc.nll,
                "entropy": sc.entropy,
                "p_true": sc.p_true,
                "sum_p2": sc.sum_p2,
                "entropy_all": sc.entropy_all,
            }
        for j, i in enumerate(idx.tolist()):
            for k in per:
                per[k][i] = np.asarray(data[k][j], dtype=np.float32)
            entropy_all[i] = float(data["entropy_all"][j])
    if n_cached:
        logger.info("reused %d of %d scored shards from %s", n_cached, len(shards), cache)
    src = getattr(model, "dataprune_source", None)
    return TokenScores(
        nll=per["nll"],
        entropy=per["entropy"],
        p_true=per["p_true"],
        sum_p2=per["sum_p2"],
        encodings=encodings,
        entropy_all=entropy_all,
        model_id=f"{src.name}@{src.version or src.source}"
        if src is not None
        else type(model).__name__,
        meta={
            "max_length": max_length,
            "n_truncated": int(sum(e.truncated for e in encodings)),
            "n_shards": len(shards),
            "n_shards_reused": n_cached,
        },
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
        Breaks exact ties in the fill-up order.
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

    def fit(self, prompts: Sequence[str], responses: Sequence[str]) -> QTuningTriage:
        """Score and triage the pairs.

        Parameters
        ----------
        prompts, responses : sequence of str, length n_samples

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
        model, tok, info = self._resolve_model()
        scores = score_sft_cached(
            model,
            tok,
            list(prompts),
            list(responses),
            cache_dir=self.cache_dir,
            batch_size=self.batch_size,
            max_length=self.max_length,
            chunk_size=self.chunk_size,
            use_chat_template=self.use_chat_template,
            show_progress_bar=self.show_progress_bar,
            compile_stats=self.compile_stats,
        )
        result = triage_token_scores(scores, cfg, random_state=self.random_state)
        self.tokenizer_ = tok
        self.scores_ = scores
        self.result_ = result
        self.perplexity_ = result.perplexity
        self.entropy_ = result.entropy
        self.quadrant_ = result.samples.quadrant
        self.kept_indices_ = result.kept_indices
        self.token_keep_ = result.token_keep
        self.alpha_ = result.samples.alpha
        self.model_info_ = info
        return self

    def features(self) -> list[dict[str, list[int]]]:
        """Kept samples as ``{"input_ids", "labels"}`` (for :class:`~dataprune.qtuning.SFTCollator`)."""
        self._check_fitted()
        return self.result_.features()

    def _check_fitted(self) -> None:
        check_fitted(self, "result_")


# ----------------------------------------------------------------------------- writing


def pruned_view(tokenizer: Any, input_ids: Sequence[int], keep: Sequence[bool]) -> str:
    """Response text with the tokens that carry no loss wrapped in ``[-`` ... ``-]``.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    input_ids : sequence of int
        The response token ids.
    keep : sequence of bool
        True for tokens that carry loss.
    """
    ids = list(input_ids)
    flags = [bool(k) for k in keep]
    if len(ids) != len(flags):
        raise ValueError(f"got {len(ids)} token ids but {len(flags)} keep flags")
    parts: list[str] = []
    start = 0
    for j in range(1, len(ids) + 1):
        if j == len(ids) or flags[j] != flags[start]:
            text = tokenizer.decode(ids[start:j], skip_special_tokens=False)
            parts.append(text if flags[start] else f"{PRUNED_OPEN}{text}{PRUNED_CLOSE}")
            start = j
    return "".join(parts)


def write_triage(
    output: str | os.PathLike[str],
    records: Sequence[Mapping[str, Any]],
    result: TriageResult,
    tokenizer: Any,
    *,
    input_indices: Sequence[int] | None = None,
    plot: bool = True,
    manifest: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the kept records, the per-sample scores, the EU-plane plot and a manifest.

    Parameters
    ----------
    output : path
        Kept records; format from the suffix (``.jsonl``, ``.jsonl.gz``, ``.json``, ``.parquet``).
    records : sequence of dict, length n_samples
        The input records, aligned with ``result``.
    result : TriageResult
    tokenizer : transformers tokenizer
        Used for the readable view.
    input_indices : sequence of int, optional
        Position of each record in the original input (default ``0..n-1``).
    plot : bool, default=True
        Write ``OUTPUT.eu_plane.png``.
    manifest : mapping, optional
        Manifest to write as ``OUTPUT.manifest.json`` (see :func:`dataprune.manifest.build_manifest`);
        the triage summary and the paths written are added to it.

    Returns
    -------
    dict of Path
        ``kept``, ``scores``, ``plot`` (when written), ``manifest`` (when given).
    """
    from dataprune.io import detect_format, write_records

    if len(records) != len(result):
        raise DataValidationError(
            f"got {len(records)} records but a triage of {len(result)} samples"
        )
    out = Path(output)
    fmt = detect_format(out)
    if fmt == "csv":
        raise DataValidationError(
            "CSV cannot hold token-level labels; use .jsonl, .json or .parquet", source=str(out)
        )
    idx = list(range(len(records))) if input_indices is None else list(input_indices)
    clash = sorted({f for f in _OUTPUT_FIELDS for r in records[:1000] if f in r})
    if clash:
        logger.warning("input fields %s are replaced in the output by the triage's", clash)
    kept_rows = []
    for i in result.kept_indices.tolist():
        ids, labels = result.labels(i)
        enc = result.encodings[i]
        resp_ids = enc.input_ids[enc.response_mask].tolist()
        row = dict(records[i])
        row.update(
            {
                "qtuning_index": idx[i],
                "qtuning_quadrant": f"Q{int(result.samples.quadrant[i])}",
                "input_ids": ids,
                "labels": labels,
                "qtuning_n_response_tokens": len(resp_ids),
                "qtuning_n_kept_tokens": int(result.token_keep[i].sum()),
                "qtuning_view": pruned_view(tokenizer, resp_ids, result.token_keep[i]),
            }
        )
        kept_rows.append(row)
    paths: dict[str, Path] = {}
    paths["kept"] = write_records(kept_rows, out, fmt=fmt)
    paths["scores"] = _write_scores(Path(f"{out}.scores.parquet"), result.to_table(idx))
    if plot:
        from dataprune.qtuning.plot import plot_eu_plane

        c = result.samples.counts()
        paths["plot"] = plot_eu_plane(
            result.perplexity,
            result.entropy,
            result.samples.quadrant,
            Path(f"{out}.eu_plane.png"),
            thresholds=result.samples.thresholds,
            selection=result.samples.selection,
            title=(
                f"EU plane: {len(result)} samples, kept {c['kept']} "
                f"(alpha={result.samples.alpha:.3f}, {c['fill_up']} by fill-up)"
            ),
            entropy_label=f"mean entropy over {result.config.entropy_span} positions",
        )
    if manifest is not None:
        from dataprune.manifest import write_manifest

        m = dict(manifest)
        m["triage"] = result.summary()
        m["qtuning_config"] = result.config.to_dict()
        m.setdefault("outputs", {})
        m["outputs"] = {**dict(m["outputs"]), **{k: str(v) for k, v in paths.items()}}
        paths["manifest"] = write_manifest(out, m)
    return paths


def _write_scores(path: Path, table: dict[str, list[Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataprune.atomic import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(pa.table(table), tmp)
    return path
