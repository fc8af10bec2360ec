"""Resumable LM scoring of SFT pairs: :func:`score_sft_cached` saves length-sorted shards as they
finish, keyed by the model's weights, the scoring options and the shard's texts, so an interrupted
run resumes where it stopped and a changed input re-scores only the shards it touches."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.lm_scoring import TokenScores, score_sft
from dataprune.sft_encoding import encode_sft_pairs

logger = logging.getLogger(__name__)

__all__ = ["score_sft_cached"]


def _model_fingerprint(model: Any) -> str:
    """Cheap identity of a model's weights (a strided sample of every parameter) and dtypes: a
    float32 load of bfloat16 weights holds the same values but scores differently."""
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
            h.update(f"{tuple(p.shape)} {p.dtype}".encode())
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
    if shard_size < 1:
        raise DataValidationError(f"shard_size must be >= 1, got {shard_size}")
    encodings = encode_sft_pairs(
        tokenizer, prompts, responses, max_length=max_length, use_chat_template=use_chat_template
    )
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
            "eos_token_id": getattr(tokenizer, "eos_token_id", None),
        },
    )
