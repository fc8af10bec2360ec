"""What a selection method is fitted on, computed from the records: one provider per input kind.

:data:`FEATURES` maps each :data:`~dataprune.selection.methods.FIT_INPUTS` kind to a provider
``provider(ctx) -> X`` that computes the selector's input from a :class:`FeatureContext` and may
add per-record columns (``ctx.columns``), model descriptions (``ctx.models``) and run details
(``ctx.details``) for the :class:`~dataprune.selection.api.SelectionResult`. A method with a new
kind of input registers its own provider here (``FEATURES.register("kind", provider)``);
:func:`dataprune.select` needs no change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.registry import Registry

__all__ = ["FEATURES", "FeatureContext", "joined_texts"]


@dataclass
class FeatureContext:
    """Everything a feature provider may use, and where it reports what it computed.

    Attributes
    ----------
    records : list of dict
        The candidate records (non-empty text unless kept on purpose), in input order.
    rows : ndarray of shape (len(records),), int64
        Their positions in the original input (precomputed ``embeddings`` are indexed by these).
    engine : Engine or None
        ``None`` for the local (in-process) engine.
    models, columns, details : dict
        Filled by the provider: model descriptions, per-record columns (length
        ``len(records)``), run details.
    """

    spec: Any
    records: list[dict[str, Any]]
    fields: list[str]
    is_sft: bool
    prompt_field: str | None
    response_field: str | None
    label_field: str | None
    y: Any
    model: Any
    embeddings: Any
    rows: np.ndarray
    n_input: int
    engine: Any
    engine_options: Mapping[str, Any]
    input_options: Mapping[str, Any]
    random_state: int | None
    show_progress_bar: bool | None
    models: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def texts(self) -> list[str]:
        return joined_texts(self.records, self.fields)

    def prompts(self) -> list[str]:
        return [r[self.prompt_field] for r in self.records]  # type: ignore[index]

    def responses(self) -> list[str]:
        return [r[self.response_field] for r in self.records]  # type: ignore[index]


FEATURES: Registry[Callable[[FeatureContext], Any]] = Registry("selection input kind")


def joined_texts(records: Sequence[Mapping[str, Any]], fields: list[str]) -> list[str]:
    """One text per record: the named fields joined by a blank line."""
    if len(fields) == 1:
        return [r[fields[0]] for r in records]
    return ["\n\n".join(r[f] for f in fields) for r in records]


def _load_lm(model: Any) -> tuple[Any, Any, dict[str, Any]]:
    from dataprune.models import load_causal_lm

    if isinstance(model, tuple) and len(model) == 2:
        m, tok = model
        src = getattr(m, "dataprune_source", None)
        return m, tok, src.describe() if src is not None else {"name": type(m).__name__}
    m, tok = load_causal_lm(model)
    return m, tok, m.dataprune_source.describe()


def _load_tokenizer(model: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(model, tuple) and len(model) == 2:
        return model[1], {"name": getattr(model[1], "name_or_path", type(model[1]).__name__)}
    if model is not None and not isinstance(model, (str, os.PathLike)):
        tok = getattr(model, "tokenizer", None)
        if tok is None:
            raise DataValidationError(
                "pass a model name, a (model, tokenizer) tuple or an object with .tokenizer"
            )
        return tok, {"name": type(model).__name__}
    from dataprune.models import load_causal_lm, resolve_causal_lm

    resolved = resolve_causal_lm(model)
    if resolved.source == "offline-package":  # first use converts the GGUF; reuse load_causal_lm
        _, tok = load_causal_lm(model)
        return tok, resolve_causal_lm(model).describe()
    from transformers import AutoTokenizer

    from dataprune.models import _hub_offline

    tok = AutoTokenizer.from_pretrained(
        resolved.path, local_files_only=_hub_offline() or resolved.source != "hub"
    )
    return tok, resolved.describe()


def _nothing(ctx: FeatureContext) -> np.ndarray:
    """``none`` / ``labels``: the selector needs only the record count (and ``y``)."""
    return np.zeros((len(ctx.records), 1))


def _lengths(ctx: FeatureContext) -> np.ndarray:
    """``lengths``: response (SFT) or text length in tokens (default), words or characters."""
    unit = ctx.input_options.get("unit", "tokens")
    texts = [r[ctx.response_field if ctx.is_sft else ctx.fields[0]] for r in ctx.records]
    if unit == "chars":
        out = np.array([len(t) for t in texts], dtype=np.float64)
    elif unit == "words":
        out = np.array([len(t.split()) for t in texts], dtype=np.float64)
    elif unit == "tokens":
        tok, desc = _load_tokenizer(ctx.model)
        ctx.models["tokenizer"] = desc
        out = np.empty(len(texts), dtype=np.float64)
        for lo in range(0, len(texts), 1024):
            enc = tok(texts[lo : lo + 1024], add_special_tokens=False)["input_ids"]
            out[lo : lo + len(enc)] = [len(e) for e in enc]
    else:
        raise DataValidationError(f"unit must be 'tokens', 'words' or 'chars', got {unit!r}")
    ctx.columns[f"length_{unit}"] = out
    return out


def _embeddings(ctx: FeatureContext) -> np.ndarray:
    """``embeddings`` (+labels): precomputed rows, else the encoder (on the engine when given)."""
    if ctx.embeddings is not None:
        E = np.asarray(ctx.embeddings)
        if E.ndim != 2 or E.shape[0] != ctx.n_input:
            raise DataValidationError(
                f"embeddings must have shape ({ctx.n_input}, dim): one row per input record, "
                f"got {E.shape}"
            )
        ctx.models["encoder"] = {"name": "precomputed embeddings"}
        return np.ascontiguousarray(E[ctx.rows], dtype=np.float32)
    from dataprune.embeddings import embed_texts, model_identity
    from dataprune.models import resolve_encoder

    model = ctx.model
    if model is None or isinstance(model, (str, os.PathLike)):
        ctx.models["encoder"] = resolve_encoder(model).describe()
    else:
        ctx.models["encoder"] = {"name": model_identity(model)}
    if ctx.engine is not None:
        from dataprune.distributed.shards import embed_texts_distributed

        return embed_texts_distributed(
            ctx.texts(),
            model,
            engine=ctx.engine,
            show_progress_bar=ctx.show_progress_bar,
            **ctx.engine_options,
        )
    return np.asarray(
        embed_texts(ctx.texts(), model, show_progress_bar=ctx.show_progress_bar),
        dtype=np.float32,
    )


def _proxy_difficulty(ctx: FeatureContext) -> None:
    """EL2N / GraNd of proxy heads trained on embeddings (labelled records)."""
    if ctx.engine is not None:
        raise DataValidationError(
            f"method {ctx.spec.name!r} with a label field trains proxy heads on the local "
            "engine only; other engines score SFT records (prompt_field and "
            "response_field) with the LM"
        )
    from dataprune.scores.proxy import proxy_scores

    ps = proxy_scores(
        _embeddings(ctx),
        ctx.y,
        n_runs=ctx.input_options.get("n_runs", 5),
        config=ctx.input_options.get("proxy"),
        random_state=ctx.random_state,
        show_progress_bar=ctx.show_progress_bar,
    )
    from dataprune.selection.el2n import label_issues_of_proxy

    issues = label_issues_of_proxy(ps)
    ctx.columns.update(el2n=ps.el2n, grand=ps.grand, label_issue=issues)
    ctx.details["proxy"] = {"n_runs": ps.n_runs, **ps.config.to_dict()}
    ctx.details["n_label_issues"] = int(issues.sum())


def _lm_difficulty(ctx: FeatureContext, score_name: str) -> None:
    """Per-response-token EL2N (and GraNd locally) of a causal LM on SFT records."""
    opts = ctx.input_options
    model = ctx.model
    if ctx.engine is not None:
        if score_name != "el2n":
            raise DataValidationError(
                f"score {score_name!r} runs on the local engine only; other engines "
                "compute the LM EL2N (with NLL, PPL and entropy)"
            )
        from dataprune.distributed.shards import lm_score_records
        from dataprune.models import resolve_causal_lm

        if model is None or isinstance(model, (str, os.PathLike)):
            ctx.models["causal_lm"] = resolve_causal_lm(model).describe()
        else:
            obj = model[0] if isinstance(model, tuple) else model
            ctx.models["causal_lm"] = {"name": getattr(obj, "__qualname__", type(obj).__name__)}
        ds = lm_score_records(
            ctx.prompts(),
            ctx.responses(),
            model,
            engine=ctx.engine,
            batch_size=opts.get("batch_size", 8),
            max_length=opts.get("max_length", 1024),
            show_progress_bar=ctx.show_progress_bar,
            **ctx.engine_options,
        )
        ctx.columns.update(
            el2n=ds["el2n"],
            nll=ds["nll"],
            ppl=ds["ppl"],
            entropy=ds["entropy"],
            response_tokens=ds["n_tokens"],
        )
        ctx.details["lm"] = {"n_truncated": int(ds["truncated"].sum())}
        return
    from dataprune.scores.lm import lm_scores

    lm, tok, desc = _load_lm(model)
    ctx.models["causal_lm"] = desc
    ls = lm_scores(
        lm,
        tok,
        ctx.prompts(),
        ctx.responses(),
        grand=score_name == "grand",
        batch_size=opts.get("batch_size", 8),
        max_length=opts.get("max_length", 1024),
        show_progress_bar=ctx.show_progress_bar,
    )
    ctx.columns.update(el2n=ls.el2n, nll=ls.nll, response_tokens=ls.n_tokens)
    if ls.grand is not None:
        ctx.columns["grand"] = ls.grand
    ctx.details["lm"] = {"n_truncated": ls.n_truncated}


def _difficulty(ctx: FeatureContext) -> np.ndarray:
    """``difficulty``: proxy-head scores with labels, else LM token scores of SFT records."""
    score_name = ctx.input_options.get("score", "el2n")
    if score_name not in ("el2n", "grand"):
        raise DataValidationError(f"score must be 'el2n' or 'grand', got {score_name!r}")
    if ctx.label_field is not None:
        _proxy_difficulty(ctx)
    else:
        _lm_difficulty(ctx, score_name)
    return ctx.columns[score_name]


FEATURES.register("none", _nothing)
FEATURES.register("labels", _nothing)
FEATURES.register("lengths", _lengths)
FEATURES.register("embeddings", _embeddings)
FEATURES.register("embeddings+labels", _embeddings)
FEATURES.register("difficulty", _difficulty)
