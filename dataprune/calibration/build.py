"""``build_calibration_set``: choose calibration samples with any selector of the toolkit.

Candidates are token sequences cut from the input texts (``chunking``):

* ``"pack"`` (default): all texts are tokenised, joined with the EOS token, and the stream is cut
  into consecutive ``seq_len``-token blocks (the C4 / WikiText practice of Wanda, SparseGPT and
  llm-compressor's ``concatenate_data``). Every sample is full length; short records (GSM8K,
  chat turns) share blocks with their neighbours in input order.
* ``"truncate"``: one candidate per text, cut to ``seq_len`` and right-padded (``attention_mask``
  marks padding; the pruners skip padded positions).

A selector then keeps ``n_samples`` candidates. Selectors fitted on embeddings (k-center,
prototypes, facility location, SemDeDup, ...) see :func:`dataprune.embeddings.embed_texts` of each
candidate's decoded text, or with ``space="activations"`` the target model's own mean-pooled
hidden states (:mod:`dataprune.calibration.activations`); ``"random"`` (the baseline) needs no
embeddings. With sources (``sources=`` / ``source_field=``) each source is packed separately, and
``mix="balanced"`` spreads the budget evenly over them, ``mix="proportional"`` in proportion to
their candidates (:mod:`dataprune.calibration.mixing`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dataprune.calibration.activations import check_space
from dataprune.calibration.calibration_set import CalibrationSet
from dataprune.calibration.mixing import (
    check_mix,
    mix_quotas,
    pack_blocks,
    select_by_source,
    source_provenance,
    text_sources,
)
from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["CHUNKING", "build_calibration_set", "extract_texts"]

CHUNKING = ("pack", "truncate")
_SUPPORTED_FIT = ("none", "embeddings", "labels", "embeddings+labels", "lengths")


def extract_texts(data: Any, text_field: str | None = None) -> tuple[list[str], str]:
    """Texts from a sequence of strings, a ``datasets.Dataset``, a ``RecordSet`` or dicts.

    Returns
    -------
    texts : list of str
    source : str
        Short description for provenance.

    Raises
    ------
    DataValidationError
        For a missing field or a non-string value (naming the record and field).
    """
    if isinstance(data, str):
        raise DataValidationError(
            "expected a sequence of texts or a dataset, got a single string (wrap it in a list; "
            "to read a file use dataprune.io.load_records first)"
        )
    records: Sequence[Any]
    source = type(data).__name__
    if hasattr(data, "column_names") and hasattr(data, "features"):  # datasets.Dataset
        field = text_field or ("text" if "text" in data.column_names else None)
        if field is None or field not in data.column_names:
            raise DataValidationError(
                f"name the text column with text_field=; columns: {', '.join(data.column_names)}"
                if field is None
                else f"column {field!r} not found; columns: {', '.join(data.column_names)}",
                source="datasets.Dataset",
            )
        values, source = list(data[field]), f"datasets.Dataset[{field}]"
        return _check_texts(values, source, field), source
    if hasattr(data, "records") and hasattr(data, "content_hash"):  # dataprune.io.RecordSet
        records, source = data.records, str(getattr(data, "source", "RecordSet"))
    else:
        records = list(data)
    if not records:
        raise DataValidationError("the calibration pool is empty", source=source)
    if all(isinstance(r, str) for r in records):
        if text_field is not None:
            raise DataValidationError("text_field is only for records/datasets, not plain texts")
        return list(records), "texts"
    if text_field is None:  # the records' "text" field (the rule every entry point shares)
        from dataprune.io import DEFAULT_TEXT_FIELD, RecordSet, resolve_text_fields

        text_field = DEFAULT_TEXT_FIELD
        if isinstance(records[0], Mapping):  # a non-record is reported below, by position
            pool = RecordSet(list(records), source, "memory", list(range(len(records))))
            (text_field,) = resolve_text_fields(pool, [], how="text_field=")
    values = []
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise DataValidationError(
                f"expected a record (mapping) or a string, got {type(r).__name__}",
                source=source,
                record=i,
            )
        if text_field not in r:
            raise DataValidationError("missing field", source=source, record=i, field=text_field)
        values.append(r[text_field])
    return _check_texts(values, source, text_field), source


def _check_texts(values: Sequence[Any], source: str, field: str | None) -> list[str]:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise DataValidationError(
                f"expected a string, got {type(v).__name__}", source=source, record=i, field=field
            )
    return list(values)


def resolve_selector(
    selector: Any, n_samples: int, random_state: int | None, params: Mapping[str, Any] | None
) -> tuple[Any, str, str]:
    """(selector instance, name, fit input) for a registry name or a BaseSelector instance.

    Option names and values are validated here (before any data is read or model loaded).
    """
    from dataprune.selection import BaseSelector
    from dataprune.selection.methods import METHODS

    if selector is None:
        selector = "random"
    if isinstance(selector, str):
        spec = METHODS.get(selector)
        if spec.fit_input not in _SUPPORTED_FIT:
            raise UnknownOptionError(
                f"selection method {spec.name!r} needs {spec.fit_input} scores, which calibration "
                f"selection does not compute; use one fitted on embeddings, labels, lengths or "
                f"nothing: {', '.join(m for m in METHODS.names() if METHODS.get(m).fit_input in _SUPPORTED_FIT)}"
            )
        sel_opts, inp_opts = spec.split_options(dict(params or {}))
        if inp_opts:
            raise UnknownOptionError(
                f"option(s) {', '.join(sorted(inp_opts))} are not selector options of {spec.name!r}"
            )
        inst = spec.build(n_samples=n_samples, random_state=random_state, **sel_opts)
        inst._check_params()
        return inst, spec.name, spec.fit_input
    if isinstance(selector, BaseSelector):
        if params:
            raise DataValidationError("selector_params are only for selectors given by name")
        p = selector.get_params()
        p.update(n_samples=n_samples, fraction=None)
        if p.get("random_state") is None:
            p["random_state"] = random_state
        inst = type(selector)(**p)
        fit_input = "embeddings"
        for name in METHODS.names():
            spec = METHODS.get(name)
            if spec.selector_class() is type(selector):
                fit_input, label = spec.fit_input, name
                break
        else:
            label = type(selector).__name__
        if fit_input not in _SUPPORTED_FIT:
            raise UnknownOptionError(
                f"{type(selector).__name__} is fitted on {fit_input} scores, which calibration "
                "selection does not compute; use a selector fitted on embeddings, labels, lengths "
                "or nothing"
            )
        return inst, label, fit_input
    raise DataValidationError(
        f"selector must be a method name ({', '.join(METHODS.names())}) or a "
        f"dataprune.selection.BaseSelector, got {type(selector).__name__}"
    )


def _tokenize(tokenizer: Any, texts: list[str], *, special: bool) -> list[list[int]]:
    out: list[list[int]] = []
    step = 256
    for lo in range(0, len(texts), step):
        enc = tokenizer(texts[lo : lo + step], add_special_tokens=special)["input_ids"]
        out.extend(list(map(list, enc)))
    return out


def _separator_id(tokenizer: Any) -> int | None:
    for attr in ("eos_token_id", "sep_token_id"):
        v = getattr(tokenizer, attr, None)
        if isinstance(v, int):
            return v
    return None


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)


def build_calibration_set(
    data: Any,
    tokenizer: Any,
    *,
    n_samples: int = 128,
    seq_len: int = 2048,
    selector: Any = "random",
    selector_params: Mapping[str, Any] | None = None,
    text_field: str | None = None,
    labels: Sequence[Any] | None = None,
    chunking: str = "pack",
    encoder: Any = None,
    embeddings: Any = None,
    random_state: int | None = None,
    embedding_cache_dir: str | os.PathLike[str] | None = None,
    show_progress_bar: bool | None = None,
    space: str = "embeddings",
    model: Any = None,
    layers: str | int | Sequence[int] | None = None,
    sources: Sequence[Any] | None = None,
    source_field: str | None = None,
    mix: str = "none",
) -> CalibrationSet:
    """Tokenise a text pool and choose ``n_samples`` calibration samples of ``seq_len`` tokens.

    Parameters
    ----------
    data : sequence of str, datasets.Dataset, RecordSet or sequence of dict
        The candidate pool (records need ``text_field``).
    tokenizer : transformers tokenizer
        The tokenizer of the model to be pruned.
    n_samples : int, default=128
        Calibration samples to keep.
    seq_len : int, default=2048
        Tokens per sample (Wanda/SparseGPT use 2048; llm-compressor's examples 512 or more).
    selector : str or BaseSelector, default="random"
        A method name of :data:`dataprune.selection.METHODS` (``"random"``, ``"kcenter"``,
        ``"prototypes"``, ``"facility_location"``, ``"semdedup"``, ``"class_balanced"``, ...) or a
        selector instance (its budget is replaced by ``n_samples``).
    selector_params : mapping, optional
        Options for a selector given by name (e.g. ``{"keep": "easy"}`` for prototypes).
    text_field : str, optional
        Field/column holding the text (records and datasets).
    labels : sequence, optional
        One label per text, for label-aware selectors (``class_balanced``); with
        ``chunking="pack"`` a block takes the label of the text contributing most of its tokens.
    chunking : {"pack", "truncate"}, default="pack"
        How candidates are cut from the texts (see the module docstring).
    encoder : str or SentenceTransformer, optional
        Encoder for embedding selectors (default all-MiniLM-L6-v2).
    embeddings : array of shape (n_texts, dim), optional
        Precomputed text embeddings (``chunking="truncate"`` only, one row per input text).
    random_state : int, optional
        Seed for the selector.
    embedding_cache_dir : path, optional
        Embedding cache root (see :func:`dataprune.embeddings.embed_texts`).
    show_progress_bar : bool, optional
        ``None`` follows the log level.
    space : {"embeddings", "activations", "input_moments"}, default="embeddings"
        What embedding selectors see: ``encoder`` embeddings of the decoded candidates,
        ``model``'s mean-pooled hidden states at ``layers``
        (:func:`~dataprune.calibration.activations.activation_embeddings`, unit rows), or the
        per-channel second moments of the inputs of ``model``'s linear layers, relative to the
        pool's (:func:`~dataprune.calibration.input_moments.input_moment_features`: the
        statistics Wanda calibrates on; ``selector="herding"`` matches the pool's).
    model : transformers causal LM, optional
        The model to be pruned; required with a model space (only then allowed).
    layers : "auto", int or sequence of int, optional
        Decoder blocks for ``space="activations"``; ``None``/``"auto"``: 1/3, 2/3 and the last
        block (:func:`~dataprune.calibration.activations.default_layers`). For
        ``space="input_moments"``, ``None``/``"auto"``/``"all"``: every block.
    sources : sequence, optional
        One source per text (e.g. a dataset name). With sources, ``"pack"`` packs each source's
        texts separately (no block mixes sources) and the provenance counts samples per source.
    source_field : str, optional
        Field/column of the records holding their source (instead of ``sources``).
    mix : {"none", "balanced", "proportional"}, default="none"
        ``"balanced"`` (needs sources): ``n_samples`` spread as evenly as possible over the
        sources (:func:`~dataprune.calibration.mixing.balanced_quotas`; a source with too few
        candidates gives its remainder to the others), the selector run inside each source.
        ``"proportional"`` (needs sources): each source gets its share of the candidates
        (:func:`~dataprune.calibration.mixing.proportional_quotas`, a random draw's mix in
        expectation), the selector run inside each source.

    Returns
    -------
    CalibrationSet
        Samples in selection order (with a ``mix``, source by source), with provenance
        (selector, parameters, ``space`` and ``activation_layers``, source hash, chosen candidates,
        the input texts each sample came from, and with sources ``source_counts`` and
        ``sample_sources``).

    Raises
    ------
    DataValidationError
        For bad sizes, too few candidates, or texts that are not strings.
    UnknownOptionError
        For an unknown selector name or chunking.
    """
    from dataprune.embeddings import model_identity, texts_sha256

    for name, v in (("n_samples", n_samples), ("seq_len", seq_len)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise DataValidationError(f"{name} must be a positive integer, got {v!r}")
    if chunking not in CHUNKING:
        raise UnknownOptionError(f"unknown chunking {chunking!r}; valid: {', '.join(CHUNKING)}")
    check_mix(mix)
    act_layers = check_space(space, model, layers, encoder=encoder, embeddings=embeddings)
    if tokenizer is None or not callable(tokenizer):
        raise DataValidationError("a tokenizer (callable, transformers-style) is required")
    texts, source = extract_texts(data, text_field)
    if not texts:
        raise DataValidationError("the calibration pool is empty", source=source)
    if labels is not None and len(labels) != len(texts):
        raise DataValidationError(f"{len(labels)} labels for {len(texts)} texts", source=source)
    srcs = text_sources(
        data, len(texts), sources=sources, source_field=source_field, plain_texts=source == "texts"
    )
    if mix != "none" and srcs is None:
        raise DataValidationError(f"mix={mix!r} needs sources= or source_field=")
    inst, sel_name, fit_input = resolve_selector(selector, n_samples, random_state, selector_params)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = int(pad_id) if isinstance(pad_id, int) else (_separator_id(tokenizer) or 0)

    # -- candidates ---------------------------------------------------------------------------
    if chunking == "pack":
        if embeddings is not None:
            raise DataValidationError(
                "precomputed embeddings are per text; with chunking='pack' candidates are token "
                "blocks, so let build_calibration_set embed them (or use chunking='truncate')"
            )
        toks = _tokenize(tokenizer, texts, special=False)
        groups = None if srcs is None else srcs[1]
        cand_ids, cand_owner, n_tok = pack_blocks(toks, seq_len, _separator_id(tokenizer), groups)
        if n_tok == 0:
            raise DataValidationError("the texts produced no tokens", source=source)
        if len(cand_ids) < n_samples:
            per = ", each source packed separately" if srcs is not None else ""
            raise DataValidationError(
                f"the pool gives {len(cand_ids)} blocks of seq_len={seq_len} tokens ({n_tok} "
                f"tokens in all{per}), fewer than n_samples={n_samples}: lower n_samples or "
                "seq_len, or add texts",
                source=source,
            )
        cand_mask = np.ones_like(cand_ids)
        spans = np.stack([cand_owner[:, 0], cand_owner[:, -1]], axis=1)
        main_text = np.array([np.bincount(row - row[0]).argmax() + row[0] for row in cand_owner])
    else:
        toks = _tokenize(tokenizer, texts, special=True)
        keep = [i for i, t in enumerate(toks) if len(t) >= 2]
        if len(keep) < len(toks):
            logger.warning("%d texts with fewer than 2 tokens skipped", len(toks) - len(keep))
        if len(keep) < n_samples:
            raise DataValidationError(
                f"{len(keep)} usable texts (>= 2 tokens), fewer than n_samples={n_samples}",
                source=source,
            )
        cand_ids = np.full((len(keep), seq_len), pad_id, dtype=np.int64)
        cand_mask = np.zeros((len(keep), seq_len), dtype=np.int64)
        for r, i in enumerate(keep):
            t = toks[i][:seq_len]
            cand_ids[r, : len(t)] = t
            cand_mask[r, : len(t)] = 1
        main_text = np.asarray(keep, dtype=np.int64)
        spans = np.stack([main_text, main_text], axis=1)
    n_cand = len(cand_ids)

    # -- what the selector is fitted on ---------------------------------------------------------
    cand_texts: list[str] | None = None

    def candidate_texts() -> list[str]:
        nonlocal cand_texts
        if cand_texts is None:
            cand_texts = [
                tokenizer.decode(cand_ids[r, cand_mask[r].astype(bool)], skip_special_tokens=True)
                for r in progress(
                    range(n_cand), show_progress_bar=show_progress_bar, desc="decoding candidates"
                )
            ]
        return cand_texts

    y = None
    if fit_input in ("labels", "embeddings+labels"):
        if labels is None:
            raise DataValidationError(f"selector {sel_name!r} needs labels= (one per text)")
        y = np.asarray([labels[i] for i in main_text], dtype=object)
    encoder_id = None
    if fit_input in ("embeddings", "embeddings+labels") and space == "input_moments":
        from dataprune.calibration.input_moments import input_moment_features

        X = input_moment_features(
            model, cand_ids, cand_mask, layers=act_layers, show_progress_bar=show_progress_bar
        )
    elif fit_input in ("embeddings", "embeddings+labels") and act_layers is not None:
        from dataprune.calibration.activations import activation_embeddings

        X = activation_embeddings(
            model, cand_ids, cand_mask, layers=act_layers, show_progress_bar=show_progress_bar
        )
    elif fit_input in ("embeddings", "embeddings+labels"):
        if embeddings is not None:
            E = np.asarray(embeddings)
            if E.ndim != 2 or E.shape[0] != len(texts):
                raise DataValidationError(
                    f"embeddings must have shape (n_texts={len(texts)}, dim), got {E.shape}"
                )
            X = E[main_text]
            encoder_id = "precomputed"
        else:
            from dataprune.embeddings import embed_texts

            if encoder is None or isinstance(encoder, str):
                from dataprune.models import load_encoder

                encoder = load_encoder(encoder)
            encoder_id = model_identity(encoder)
            X = embed_texts(
                candidate_texts(),
                encoder,
                cache_dir=embedding_cache_dir,
                show_progress_bar=show_progress_bar,
            )
    elif fit_input == "lengths":
        X = cand_mask.sum(axis=1).astype(np.float64)
    else:
        X = np.zeros((n_cand, 1), dtype=np.float32)
    cand_src = None if srcs is None else srcs[1][main_text]
    if mix != "none":
        available = np.bincount(cand_src, minlength=len(srcs[0]))
        chosen = select_by_source(
            X,
            y,
            cand_src,
            mix_quotas(mix, available, n_samples, random_state),
            lambda k: resolve_selector(selector, k, random_state, selector_params)[0],
        )
    else:
        inst.fit(X, y)
        chosen = np.asarray(inst.selected_indices_, dtype=np.int64)

    texts_out = (
        [candidate_texts()[i] for i in chosen]
        if cand_texts is not None
        else [
            tokenizer.decode(cand_ids[i, cand_mask[i].astype(bool)], skip_special_tokens=True)
            for i in chosen
        ]
    )
    provenance = {
        "selector": sel_name,
        "selector_params": _jsonable(inst.get_params()),
        "fit_input": fit_input,
        "encoder": encoder_id,
        "random_state": random_state,
        "n_samples": int(n_samples),
        "seq_len": int(seq_len),
        "chunking": chunking,
        "source": source,
        "source_sha256": texts_sha256(texts),
        "n_texts": len(texts),
        "n_candidates": int(n_cand),
        "tokenizer": str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__),
        "candidate_indices": chosen.tolist(),
        "sample_text_spans": spans[chosen].tolist(),
        "space": space,
        "activation_layers": act_layers,
        "activation_model": None if act_layers is None else model_identity(model),
        "mix": mix,
        **({} if srcs is None else source_provenance(srcs[0], cand_src, chosen)),
    }
    logger.info(
        "calibration set: %d of %d candidates (%s, %s chunking, seq_len %d)",
        len(chosen),
        n_cand,
        sel_name,
        chunking,
        seq_len,
    )
    return CalibrationSet(
        cand_ids[chosen],
        cand_mask[chosen],
        provenance,
        texts_out,
        pad_id,
        tokenizer,
    )
