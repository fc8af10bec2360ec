"""``calibration_report``: compare candidate calibration sets before any pruning.

Per set: samples and tokens, the share of every source, token diversity (distinct-token ratio,
unigram entropy) and the **activation coverage** of a reference set: for each chosen decoder
block, the mean over reference blocks of the cosine distance from the reference block's
mean-pooled hidden state to the nearest calibration block's (lower = the reference is better
covered). The hidden states are those of :func:`~dataprune.calibration.activations.activation_embeddings`.

>>> rep = calibration_report({"random": a, "kcenter": b}, model, tok, heldout_texts)
>>> print(rep.to_markdown()); rep.save("calibration_report.json")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.calibration.calibration_set import CalibrationSet
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "CalibrationReport",
    "activation_coverage",
    "calibration_report",
    "load_calibration_sets",
    "token_diversity",
]

_SAVED_NAME = "calibration.npz"  # what `dataprune prune-model` writes into its output folder


def token_diversity(input_ids: Any, attention_mask: Any = None) -> tuple[float, float]:
    """Distinct-token ratio and unigram entropy of a token set (padding excluded).

    Parameters
    ----------
    input_ids : array of shape (n_samples, seq_len), int
    attention_mask : array of shape (n_samples, seq_len), optional
        1 for real tokens; default all real.

    Returns
    -------
    distinct_ratio : float
        Distinct token ids / real tokens, in (0, 1]; higher = more varied.
    entropy_bits : float
        Shannon entropy (bits) of the unigram distribution of the real tokens; higher = more
        varied (at most log2 of the number of distinct tokens).
    """
    ids = np.asarray(input_ids)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
    if ids.shape != mask.shape or ids.ndim != 2:
        raise DataValidationError(
            f"expected input_ids and attention_mask of one shape (n_samples, seq_len), got "
            f"{ids.shape} and {mask.shape}"
        )
    tokens = ids[mask.astype(bool)]
    if tokens.size == 0:
        raise DataValidationError("the token set is empty")
    return _compute_token_diversity(tokens)


def _compute_token_diversity(tokens: np.ndarray) -> tuple[float, float]:
    _, counts = np.unique(tokens, return_counts=True)
    p = counts / counts.sum()
    return float(len(counts) / tokens.size), float(max(0.0, -(p * np.log2(p)).sum()))


def activation_coverage(reference: Any, calibration: Any) -> np.ndarray:
    """Mean cosine distance from each reference block to its nearest calibration block, per layer.

    Parameters
    ----------
    reference : array of shape (n_reference, n_layers, dim)
        Unit vectors (``activation_embeddings(..., per_layer=True)`` of the reference blocks).
    calibration : array of shape (n_calibration, n_layers, dim)
        Unit vectors of the calibration blocks.

    Returns
    -------
    ndarray of shape (n_layers,), float64
        ``mean_i min_j (1 - <r_i, c_j>)`` per layer, in [0, 2]; lower = better covered
        (0: every reference block has an identical calibration block).
    """
    R, C = np.asarray(reference, dtype=np.float32), np.asarray(calibration, dtype=np.float32)
    if R.ndim != 3 or C.ndim != 3 or R.shape[1:] != C.shape[1:] or not len(R) or not len(C):
        raise DataValidationError(
            "expected non-empty arrays of shape (n, n_layers, dim) with the same n_layers and "
            f"dim, got {R.shape} and {C.shape}"
        )
    out = np.empty(R.shape[1], dtype=np.float64)
    for j in range(R.shape[1]):
        sim = R[:, j] @ C[:, j].T  # (n_reference, n_calibration)
        out[j] = float(np.clip(1.0 - sim.max(axis=1).astype(np.float64), 0.0, 2.0).mean())
    return out


def load_calibration_sets(
    sets: Any, names: Sequence[str] | None = None
) -> dict[str, CalibrationSet]:
    """Named calibration sets from sets, saved files or ``prune-model`` output folders.

    Parameters
    ----------
    sets : CalibrationSet, path, sequence of them, or mapping name -> set/path
        Paths are ``.npz`` files written by :meth:`CalibrationSet.save` or folders holding
        ``calibration.npz`` (the output folder of ``dataprune prune-model``).
    names : sequence of str, optional
        One name per set (default: the mapping's keys, a file's stem, a folder's name, or
        ``set<i>``).

    Returns
    -------
    dict
        Name -> CalibrationSet, in input order.
    """
    if isinstance(sets, Mapping):
        items = list(sets.items())
    else:
        one = isinstance(sets, (CalibrationSet, str, os.PathLike))
        items = [(None, s) for s in ([sets] if one else list(sets))]
    if not items:
        raise DataValidationError("no calibration sets given")
    if names is not None and len(names) != len(items):
        raise DataValidationError(f"{len(names)} names for {len(items)} calibration sets")
    out: dict[str, CalibrationSet] = {}
    for i, (key, obj) in enumerate(items):
        if isinstance(obj, CalibrationSet):
            calib, default = obj, f"set{i}"
        elif isinstance(obj, (str, os.PathLike)):
            calib, default = _load_path(Path(obj))
        else:
            raise DataValidationError(
                "expected a CalibrationSet, a .npz file written by CalibrationSet.save or a "
                f"folder holding {_SAVED_NAME}, got {type(obj).__name__}"
            )
        name = str(names[i] if names is not None else key if key is not None else default)
        base, k = name, 2
        while name in out:
            name, k = f"{base}-{k}", k + 1
        out[name] = calib
    return out


def _load_path(p: Path) -> tuple[CalibrationSet, str]:
    expected = (
        f"expected a .npz file written by CalibrationSet.save or a folder holding {_SAVED_NAME}"
    )
    f = p / _SAVED_NAME if p.is_dir() else p
    if not f.is_file():
        raise DataValidationError(
            f"no such file; {expected}"
            if not p.exists()
            else f"no {_SAVED_NAME} inside; {expected}",
            source=str(p),
        )
    import zipfile

    try:
        return CalibrationSet.load(f), p.name if p.is_dir() else p.stem
    except DataValidationError as exc:  # not an .npz archive, arrays of the wrong shape
        raise DataValidationError(exc.reason, source=str(f)) from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # not an .npz, bad JSON
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataValidationError(
            f"not a saved calibration set ({reason}); {expected}", source=str(f)
        ) from None


@dataclass
class CalibrationReport:
    """What :func:`calibration_report` measured.

    Attributes
    ----------
    sets : list of dict
        One entry per set: ``name``, ``n_samples``, ``seq_len``, ``n_tokens``, ``selector``,
        ``space``, ``sources`` (``{source: {"count", "share"}}`` or ``None``),
        ``distinct_token_ratio``, ``unigram_entropy_bits``, ``coverage`` (``{layer: mean cosine
        distance}``, lower = better) and ``coverage_mean`` (their mean).
    layers : list of int
        The decoder blocks of the coverage (0-based).
    reference : dict
        ``n_texts``, ``sha256``, ``seq_len``, ``n_blocks`` and ``n_blocks_used``.
    model : str
        The model that embedded the blocks.
    """

    sets: list[dict[str, Any]]
    layers: list[int]
    reference: dict[str, Any]
    model: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "model": self.model,
            "layers": list(self.layers),
            "reference": dict(self.reference),
            "params": dict(self.params),
            "sets": [dict(s) for s in self.sets],
        }

    def to_markdown(self) -> str:
        """A Markdown table, one row per set (coverage: lower = better covered)."""
        cols = [f"cov L{b}" for b in self.layers]
        head = ["set", "samples", "tokens", "distinct", "entropy (bits)", *cols, "cov mean"]
        lines = ["| " + " | ".join([*head, "sources"]) + " |"]
        lines.append("|" + "---|" * (len(head) + 1))
        for s in self.sets:
            src = s["sources"]
            share = ", ".join(f"{k} {v['share']:.0%}" for k, v in src.items()) if src else "-"
            row = [
                s["name"],
                str(s["n_samples"]),
                str(s["n_tokens"]),
                f"{s['distinct_token_ratio']:.3f}",
                f"{s['unigram_entropy_bits']:.2f}",
                *(f"{s['coverage'][str(b)]:.4f}" for b in self.layers),
                f"{s['coverage_mean']:.4f}",
                share,
            ]
            lines.append("| " + " | ".join(row) + " |")
        ref = self.reference
        lines.append("")
        lines.append(
            f"Coverage: mean cosine distance from each of {ref['n_blocks_used']} reference blocks "
            f"({ref['seq_len']} tokens) to the nearest calibration block, by decoder block of "
            f"{self.model}; lower = better covered."
        )
        return "\n".join(lines)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        from dataprune.atomic import atomic_write_json

        atomic_write_json(path, self.to_dict())
        return Path(path)


def calibration_report(
    sets: Any,
    model: Any,
    tokenizer: Any,
    reference_texts: Any,
    *,
    names: Sequence[str] | None = None,
    text_field: str | None = None,
    layers: str | int | Sequence[int] | None = "auto",
    seq_len: int | None = None,
    max_reference_blocks: int | None = 256,
    batch_size: int = 8,
    show_progress_bar: bool | None = None,
) -> CalibrationReport:
    """Compare calibration sets on the target model before pruning.

    Parameters
    ----------
    sets : CalibrationSet, path, sequence of them, or mapping name -> set/path
        See :func:`load_calibration_sets`.
    model : transformers causal LM
        The model to be pruned (its hidden states measure coverage).
    tokenizer : transformers tokenizer
        The model's tokenizer (tokenises the reference texts).
    reference_texts : sequence of str, datasets.Dataset, RecordSet or sequence of dict
        Text the pruned model should do well on (e.g. held-out data of the target task).
    names : sequence of str, optional
        One name per set.
    text_field : str, optional
        Field/column of the reference records holding the text.
    layers : "auto", int or sequence of int, default="auto"
        Decoder blocks (``"auto"``: 1/3, 2/3 and the last,
        :func:`~dataprune.calibration.activations.default_layers`).
    seq_len : int, optional
        Tokens per reference block (the reference texts are packed like ``chunking="pack"``);
        default: the largest ``seq_len`` of the sets.
    max_reference_blocks : int or None, default=256
        Evenly spaced reference blocks to keep at most (``None``: all).
    batch_size : int, default=8
        Blocks per forward pass.
    show_progress_bar : bool, optional
        ``None`` follows the log level.

    Returns
    -------
    CalibrationReport

    Raises
    ------
    DataValidationError
        For unreadable sets, bad sizes, an empty reference, or token ids outside the model's
        vocabulary (sets made with another tokenizer).
    """
    from dataprune.calibration.activations import resolve_layers
    from dataprune.calibration.build import extract_texts

    named = load_calibration_sets(sets, names)
    if tokenizer is None or not callable(tokenizer):
        raise DataValidationError("a tokenizer (callable, transformers-style) is required")
    if hasattr(reference_texts, "__len__") and not len(reference_texts):
        raise DataValidationError("the reference texts are empty")
    texts, _ = extract_texts(reference_texts, text_field)
    for what, v in (("seq_len", seq_len), ("max_reference_blocks", max_reference_blocks)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise DataValidationError(f"{what} must be a positive integer or None, got {v!r}")
    chosen = resolve_layers(model, layers)
    seq_len = int(seq_len or max(c.seq_len for c in named.values()))
    return _compute_report(
        named,
        model,
        tokenizer,
        texts,
        layers=chosen,
        seq_len=seq_len,
        max_reference_blocks=max_reference_blocks,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )


def _compute_report(
    named: dict[str, CalibrationSet],
    model: Any,
    tokenizer: Any,
    texts: list[str],
    *,
    layers: list[int],
    seq_len: int,
    max_reference_blocks: int | None,
    batch_size: int,
    show_progress_bar: bool | None,
) -> CalibrationReport:
    from dataprune.calibration.activations import activation_embeddings
    from dataprune.calibration.build import _separator_id, _tokenize
    from dataprune.calibration.mixing import pack_blocks
    from dataprune.embeddings import model_identity, texts_sha256

    toks = _tokenize(tokenizer, texts, special=False)
    ref_ids, _, n_tok = pack_blocks(toks, seq_len, _separator_id(tokenizer))
    if not len(ref_ids):
        raise DataValidationError(
            f"the reference texts give no block of seq_len={seq_len} tokens ({n_tok} tokens in "
            "all): pass a smaller seq_len or more reference text"
        )
    n_blocks = len(ref_ids)
    if max_reference_blocks is not None and n_blocks > max_reference_blocks:
        ref_ids = ref_ids[np.linspace(0, n_blocks - 1, max_reference_blocks).round().astype(int)]
    opts = {"layers": layers, "batch_size": batch_size, "per_layer": True}
    R = activation_embeddings(model, ref_ids, show_progress_bar=show_progress_bar, **opts)
    tok_name = str(getattr(tokenizer, "name_or_path", "") or "")
    rows = []
    for name, calib in named.items():
        made_with = str(calib.provenance.get("tokenizer", "") or "")
        named_only_by_class = made_with == type(tokenizer).__name__  # no name_or_path then
        if made_with and tok_name and made_with != tok_name and not named_only_by_class:
            logger.warning("set %r was tokenised by %s, not %s", name, made_with, tok_name)
        try:
            C = activation_embeddings(
                model,
                calib.input_ids,
                calib.attention_mask,
                show_progress_bar=show_progress_bar,
                **opts,
            )
        except DataValidationError as exc:
            raise DataValidationError(exc.reason, source=f"calibration set {name!r}") from None
        cov = activation_coverage(R, C)
        distinct, entropy = token_diversity(calib.input_ids, calib.attention_mask)
        src = calib.sample_sources
        sources = None
        if src is not None:
            uniq, counts = np.unique(np.asarray(src, dtype=object), return_counts=True)
            order = list(dict.fromkeys(src))  # first appearance
            by = dict(zip(uniq.tolist(), counts.tolist()))
            sources = {k: {"count": by[k], "share": by[k] / calib.n_samples} for k in order}
        rows.append(
            {
                "name": name,
                "n_samples": calib.n_samples,
                "seq_len": calib.seq_len,
                "n_tokens": calib.n_tokens,
                "selector": calib.provenance.get("selector"),
                "space": calib.provenance.get("space"),
                "sources": sources,
                "distinct_token_ratio": distinct,
                "unigram_entropy_bits": entropy,
                "coverage": {str(b): float(v) for b, v in zip(layers, cov)},
                "coverage_mean": float(cov.mean()),
            }
        )
        logger.info("%s: coverage %.4f (mean cosine distance, lower = better)", name, cov.mean())
    return CalibrationReport(
        sets=rows,
        layers=list(layers),
        reference={
            "n_texts": len(texts),
            "sha256": texts_sha256(texts),
            "seq_len": seq_len,
            "n_blocks": n_blocks,
            "n_blocks_used": len(ref_ids),
        },
        model=model_identity(model),
        params={"max_reference_blocks": max_reference_blocks, "batch_size": batch_size},
    )
