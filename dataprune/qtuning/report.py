"""Writing a Q-Tuning triage: the kept records with token labels and a readable view of the pruned
spans, the per-sample scores table, the EU-plane plot and the manifest."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataprune.errors import DataValidationError
from dataprune.qtuning.collate import IGNORE_INDEX

if TYPE_CHECKING:
    from dataprune.qtuning.static import TriageResult

logger = logging.getLogger(__name__)

__all__ = [
    "PRUNED_CLOSE",
    "PRUNED_OPEN",
    "alpha_text",
    "pruned_view",
    "write_random_baseline",
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
            # per source, the thresholds are in rank units (or per source): not on these axes
            thresholds=None if result.samples.by_group else result.samples.thresholds,
            selection=result.samples.selection,
            title=(
                f"EU plane: {len(result)} samples, kept {c['kept']} "
                f"({alpha_text(result.samples)}, {c['fill_up']} by the fill={result.config.fill} "
                "fill-up)"
                + (
                    "\nthe fill-up is a uniform draw from the samples no noise rule flagged;\n"
                    "colour (rank axes): kept = nearer of Q2/Q4, dropped = nearer of Q1/Q3"
                    if result.config.fill == "random"
                    else ""
                )
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


def write_random_baseline(
    output: str | os.PathLike[str],
    records: Sequence[Mapping[str, Any]],
    result: TriageResult,
    subset: Sequence[int],
    *,
    input_indices: Sequence[int] | None = None,
) -> Path:
    """Write a random subset to train against (:func:`dataprune.qtuning.random_baseline`).

    Rows as the kept records of :func:`write_triage` (``input_ids``, ``labels``,
    ``qtuning_index``), with every response token carrying loss (a random subset prunes no
    token) and ``qtuning_in_kept_set`` (False for the samples that replaced kept ones).

    Parameters
    ----------
    output : path
        Format from the suffix (``.jsonl``, ``.jsonl.gz``, ``.json``, ``.parquet``).
    records : sequence of dict, length n_samples
    result : TriageResult
    subset : sequence of int, length K
        Sample indices, in the order of the kept set they are coupled to.
    input_indices : sequence of int, optional
        Position of each record in the original input (default ``0..n-1``).

    Returns
    -------
    Path
    """
    from dataprune.io import write_records

    idx = list(range(len(records))) if input_indices is None else list(input_indices)
    kept = set(result.kept_indices.tolist())
    rows = []
    for i in subset:
        enc = result.encodings[i]
        ids = enc.input_ids.tolist()
        labels = [t if r else IGNORE_INDEX for t, r in zip(ids, enc.response_mask.tolist())]
        row = dict(records[i])
        row.update({"qtuning_index": idx[i], "qtuning_in_kept_set": i in kept,
                    "input_ids": ids, "labels": labels})  # fmt: skip
        rows.append(row)
    return write_records(rows, Path(output))


def _write_scores(path: Path, table: dict[str, list[Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataprune.atomic import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(pa.table(table), tmp)
    return path


def alpha_text(samples: Any) -> str:
    """``alpha=0.123``; triaged per source, what each source kept (and its own alpha)."""
    if not samples.by_group:
        return f"alpha={samples.alpha:.3f}"
    if math.isnan(samples.alpha):  # group_budget="share": one triage per source
        return "per source: " + ", ".join(
            f"{g['group']} alpha={g['alpha']:.3f} K={g['n_keep']}" for g in samples.by_group
        )
    kept = ", ".join(f"{g['group']} {g['n_keep']}" for g in samples.by_group)
    return f"alpha={samples.alpha:.3f} on within-source ranks; kept per source: {kept}"
