"""One-call selection: ``dataprune.select(data, method=..., fraction=... | n_samples=...)``.

Loads and validates the records, computes what the method needs (embeddings, labels, lengths,
difficulty scores), fits the selector and returns a :class:`SelectionResult` with the kept indices,
every per-record score and the selected dataset in the input's own type.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.selection.base import resolve_budget
from dataprune.selection.features import FEATURES, FeatureContext
from dataprune.selection.methods import get_method

logger = logging.getLogger(__name__)

__all__ = ["SelectionResult", "select"]

_SKIP_ATTRS = {"selected_indices_", "scores_", "ranking_", "n_samples_seen_"}
_STATUS_OK, _STATUS_EMPTY, _STATUS_REJECTED = "ok", "empty_text", "rejected"
_ENGINE_OPTIONS = {"address", "num_cpus", "concurrency", "work_dir", "shard_size", "max_retries"}


@dataclass
class SelectionResult:
    """What :func:`select` returns.

    Attributes
    ----------
    method : str
        Method name.
    indices : ndarray of shape (k,), int64
        Input positions (0-based, counting every input record) of the kept records, ascending;
        ``dataset`` holds exactly these records in this order.
    order : ndarray of shape (k,), int64
        The same positions in selection order (the selector's preference).
    scores : ndarray of shape (n_input,), float64
        The selector's score per input record (higher = keep); NaN where the record was not a
        candidate (rejected or empty text).
    columns : dict of str to ndarray of shape (n_input,)
        Every per-record score computed on the way (e.g. ``el2n``, ``grand``, ``distance``,
        ``max_similarity``), NaN / -1 for non-candidates.
    kept : ndarray of shape (n_input,), bool
    rank : ndarray of shape (n_input,), int64
        0..k-1 for kept records in selection order, then the rest by decreasing score; -1 for
        non-candidates.
    status : ndarray of shape (n_input,), object
        ``"ok"``, ``"empty_text"`` or ``"rejected"``.
    dataset : list of dict, datasets.Dataset or RecordSet
        The kept records, same type as the input (a RecordSet for file inputs).
    selector : BaseSelector
        The fitted selector.
    budget : int
    n_input : int
    params : dict
        Every option that influenced the result (for manifests).
    models : dict
        Descriptions of the models used.
    details : dict
        Method-specific findings (e.g. ``duplicate_groups`` as input positions).
    rejects : list
        :class:`~dataprune.io.Rejected` records skipped by validation.
    comparisons : list of Comparison
        With ``select(..., against_random=N)``: the kept set against N random subsets of the
        same size (:func:`dataprune.selection.against_random.compare_selection_with_random`);
        empty otherwise.
    """

    method: str
    indices: np.ndarray
    order: np.ndarray
    scores: np.ndarray
    columns: dict[str, np.ndarray]
    kept: np.ndarray
    rank: np.ndarray
    status: np.ndarray
    dataset: Any
    selector: Any
    budget: int
    n_input: int
    params: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    rejects: list[Any] = field(default_factory=list)
    comparisons: list[Any] = field(default_factory=list)

    @property
    def candidates(self) -> np.ndarray:
        """Input positions of the records the method chose from, ascending."""
        return np.flatnonzero(self.rank >= 0)

    @property
    def empty_indices(self) -> np.ndarray:
        """Input positions of records whose text was empty (reported, not selected)."""
        return np.flatnonzero(self.status == _STATUS_EMPTY)

    @property
    def rejected_indices(self) -> np.ndarray:
        return np.flatnonzero(self.status == _STATUS_REJECTED)

    def __len__(self) -> int:
        return int(self.budget)

    def to_frame(self):
        """A pandas DataFrame with one row per input record: index, status, score columns,
        kept, rank."""
        import pandas as pd

        data: dict[str, Any] = {"index": np.arange(self.n_input), "status": self.status}
        data["score"] = self.scores
        for name, col in self.columns.items():
            data[name] = col
        data["kept"] = self.kept
        data["rank"] = self.rank
        return pd.DataFrame(data)

    def write_scores(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_frame` to a parquet file atomically."""
        from dataprune.io.writers import write_frame

        return write_frame(self.to_frame(), path)

    def plot_scores(self, path: str | os.PathLike[str], *, max_columns: int = 6) -> Path:
        """Histogram of every numeric score column, kept vs not kept, saved as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from dataprune.atomic import atomic_path

        cols = {"score": self.scores}
        for name, col in self.columns.items():
            if col.dtype.kind == "f" and name not in cols:
                cols[name] = col
        cols = dict(list(cols.items())[:max_columns])
        fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.4), squeeze=False)
        for ax, (name, col) in zip(axes[0], cols.items()):
            ok = np.isfinite(col)
            if not ok.any():
                ax.set_title(f"{name} (no values)")
                continue
            bins = np.histogram_bin_edges(col[ok], bins=30)
            ax.hist(col[ok & ~self.kept], bins=bins, alpha=0.6, label="not kept")
            ax.hist(col[ok & self.kept], bins=bins, alpha=0.6, label="kept")
            ax.set_title(f"{name} (higher = keep)" if name == "score" else name)
            ax.set_xlabel(name)
            ax.set_ylabel("records")
        axes[0][0].legend()
        fig.suptitle(f"{self.method}: kept {self.budget} of {self.n_input}")
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        return path

    def summary(self) -> str:
        """One readable line."""
        n_empty, n_rej = len(self.empty_indices), len(self.rejected_indices)
        extra = []
        if n_empty:
            extra.append(f"{n_empty} empty-text records excluded")
        if n_rej:
            extra.append(f"{n_rej} rejected")
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"{self.method}: kept {self.budget} of {self.n_input} records{tail}"


def _text_fields(
    text_field: str | None, prompt_field: str | None, response_field: str | None
) -> tuple[list[str], bool]:
    if text_field and (prompt_field or response_field):
        raise DataValidationError("give either text_field or prompt_field/response_field, not both")
    if text_field:
        return [text_field], False
    if prompt_field and response_field:
        return [prompt_field, response_field], True
    if prompt_field or response_field:
        raise DataValidationError("prompt_field and response_field must be given together")
    return [], False


def _dataset_subset(data: Any, rs: Any, positions: np.ndarray, original: np.ndarray) -> Any:
    """Kept records in the input's own type (``positions`` index ``rs.records``)."""
    from dataprune.io import RecordSet
    from dataprune.io.readers import _is_hf_dataset

    if _is_hf_dataset(data):
        return data.select(original.tolist())
    if isinstance(data, (list, tuple)):
        return [data[i] for i in original.tolist()]
    if isinstance(data, (RecordSet, str, os.PathLike)):
        return replace(
            rs,
            records=[rs.records[p] for p in positions.tolist()],
            indices=original.tolist(),
            rejects=[],
            lines=[rs.lines[p] for p in positions.tolist()] if rs.lines is not None else None,
        )
    return [rs.records[p] for p in positions.tolist()]


_SKIP_COLUMNS = {
    "raw_scores_",  # the input score, already a column
    "difficulty_",
    "quota_",
    "classes_",
    "n_per_stratum_",
    "strata_edges_",
    "cluster_centers_",
}
_RENAME = {"labels_": "cluster"}
_INDEX_ATTRS = {
    "duplicate_of_",
    "nearest_center_",
    "nearest_selected_",
}  # values are candidate positions: map them to input positions


def _per_record_columns(selector: Any, where: np.ndarray) -> dict[str, np.ndarray]:
    """Fitted 1-D attributes with one value per candidate (plus per-selection ``gains_``)."""
    n_cand = len(where)
    cols: dict[str, np.ndarray] = {}
    k = len(selector.selected_indices_)
    for name, value in vars(selector).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if name in _SKIP_ATTRS or name in _SKIP_COLUMNS:
            continue
        if not isinstance(value, np.ndarray) or value.ndim != 1:
            continue
        if value.dtype.kind not in "biuf":
            continue
        col = _RENAME.get(name, name[:-1])
        if len(value) == n_cand:
            if name in _INDEX_ATTRS:
                value = np.where(value >= 0, where[np.clip(value, 0, None)], -1)
            cols[col] = value
        elif len(value) == k and name == "gains_":
            full = np.full(n_cand, np.nan)
            full[selector.selected_indices_] = value
            cols["gain"] = full
    return cols


def _expand(values: np.ndarray, where: np.ndarray, n_input: int) -> np.ndarray:
    if values.dtype == bool:
        out = np.zeros(n_input, dtype=bool)
    elif values.dtype.kind in "iu":
        out = np.full(n_input, -1, dtype=np.int64)
    else:
        out = np.full(n_input, np.nan, dtype=np.float64)
    out[where] = values
    return out


def select(
    data: Any,
    *,
    method: str = "random",
    fraction: float | None = None,
    n_samples: int | None = None,
    random_state: int | None = None,
    text_field: str | None = None,
    prompt_field: str | None = None,
    response_field: str | None = None,
    label_field: str | None = None,
    model: Any = None,
    embeddings: Any = None,
    on_bad_record: str = "error",
    empty_text: str = "exclude",
    show_progress_bar: bool | None = None,
    engine: Any = "local",
    engine_options: Mapping[str, Any] | None = None,
    against_random: int = 0,
    **options: Any,
) -> SelectionResult:
    """Select exactly ``n_samples`` (or ``fraction`` of the) records with a named method.

    Parameters
    ----------
    data : list of dict, datasets.Dataset, RecordSet or path
        The records (files: JSONL / JSON / parquet / CSV).
    method : str, default="random"
        A name in ``dataprune.selection.METHODS`` (``random``, ``class_balanced``, ``longest``,
        ``kcenter``, ``facility_location``, ``prototypes``, ``semdedup``, ``ccs``, ``el2n``,
        ``grand``, ``confident_learning``); unknown names fail with the list.
    fraction, n_samples : float or int
        Budget, exactly one: ``0 < fraction <= 1`` or ``1 <= n_samples <= n_candidates``.
    random_state : int, optional
        Seed; the same inputs and seed give the same selection.
    text_field : str, optional
        Field with the text (embedding methods); default ``"text"`` when the records have it.
    prompt_field, response_field : str, optional
        SFT records: the text is prompt + response; ``longest`` counts response tokens and the
        difficulty methods (``el2n``, ``grand``, ``ccs``) score response tokens with a causal LM
        when there is no label field.
    label_field : str, optional
        Class labels: ``class_balanced``, ``confident_learning``, and proxy-head EL2N/GraNd.
    model : str, SentenceTransformer, or (model, tokenizer), optional
        The encoder for embedding methods (default all-MiniLM-L6-v2) or the causal LM for LM
        scores and token lengths (default SmolLM2-135M-Instruct).
    embeddings : array-like of shape (n_input, dim), optional
        Precomputed L2-normalised embeddings, one row per input record (skips encoding).
    on_bad_record : {"error", "skip"}, default="error"
    empty_text : {"exclude", "keep"}, default="exclude"
        Records whose text (or response) is empty are reported in ``status``; ``"exclude"`` keeps
        them out of the candidates (the budget is counted over the candidates).
    engine : {"local", "ray"} or dataprune.distributed.Engine, default="local"
        Where the work runs. ``"local"``: in this process (every method). Any other engine runs
        the embedding (and, for ``el2n`` / ``ccs`` on SFT records, the LM scores) as a resumable
        shard pipeline and the clustering methods (``prototypes``, ``semdedup``,
        ``cluster_facility_location``) as per-block and per-cluster tasks, with the same
        selection as ``"local"`` for the same embeddings and ``random_state`` (see
        :mod:`dataprune.distributed.clustered`).
    engine_options : dict, optional
        For ``engine="ray"``: ``address``, ``num_cpus``, ``concurrency`` (model actors),
        ``work_dir`` (shards, for resuming), ``shard_size``, ``max_retries``.
    against_random : int, default=0
        Also compare the kept set with this many random subsets of the same size drawn from
        the candidates (embedding coverage, label mix, duplicates, score means; stored in
        ``SelectionResult.comparisons``). Methods that do not embed the records embed them with
        the default sentence encoder for the coverage. 0: no comparison.
    **options
        Method options, e.g. ``keep="easy"`` (prototypes, el2n), ``offset=0.1`` (el2n, grand),
        ``eps=0.05`` (semdedup), ``beta=0.1`` (ccs), ``n_runs=5`` / ``proxy={...}`` (proxy
        scores), ``unit="words"`` (longest). Unknown options fail with the valid ones.

    Returns
    -------
    SelectionResult
    """
    from dataprune.io import load_records, resolve_text_fields, validate_fields

    spec = get_method(method)
    eng: Any = None
    eng_opts = dict(engine_options or {})
    bad = sorted(set(eng_opts) - _ENGINE_OPTIONS)
    if bad:
        raise DataValidationError(
            f"unknown engine option(s) {', '.join(map(repr, bad))}; valid: "
            f"{', '.join(sorted(_ENGINE_OPTIONS))}"
        )
    if not (isinstance(engine, str) and engine.lower() == "local"):
        from dataprune.distributed.clustered import ENGINE_METHODS
        from dataprune.distributed.engines import get_engine

        if spec.name not in ENGINE_METHODS:
            raise DataValidationError(
                f"method {spec.name!r} runs on the local engine only; methods for other engines: "
                f"{', '.join(ENGINE_METHODS)}"
            )
        eng = get_engine(
            engine,
            **{k: eng_opts.pop(k) for k in ("address", "num_cpus") if k in eng_opts},
        )
    if empty_text not in ("exclude", "keep"):
        raise DataValidationError(f"empty_text must be 'exclude' or 'keep', got {empty_text!r}")
    if (
        isinstance(against_random, bool)
        or not isinstance(against_random, (int, np.integer))
        or against_random < 0
    ):
        raise DataValidationError(
            f"against_random: expected an integer >= 0 (random subsets), got {against_random!r}"
        )
    spec.check_options(options)  # names and values, before any loading
    sel_opts, inp_opts = spec.split_options(options)
    fields, is_sft = _text_fields(text_field, prompt_field, response_field)
    needs_text = spec.fit_input in ("embeddings", "embeddings+labels", "lengths") or (
        spec.fit_input == "difficulty" and label_field is None
    )
    if spec.fit_input in ("embeddings", "embeddings+labels") and embeddings is not None:
        needs_text = False
    if spec.needs_labels and label_field is None:
        raise DataValidationError(f"method {spec.name!r} needs a label field (label_field)")
    if spec.fit_input == "difficulty" and label_field is None and not is_sft:
        raise DataValidationError(
            f"method {spec.name!r} needs labels (label_field, for proxy-head scores) or SFT "
            "records (prompt_field and response_field, for LM token scores)"
        )

    rs = load_records(data, on_bad_record=on_bad_record)  # type: ignore[arg-type]
    if needs_text and not fields:  # the records' "text" field, or an error naming the options
        fields = resolve_text_fields(rs, fields)
    rs = validate_fields(
        rs, text_fields=fields, label_field=label_field, on_bad_record=on_bad_record
    )
    n_input = rs.n_input
    original = np.asarray(rs.indices, dtype=np.int64)
    status = np.full(n_input, _STATUS_REJECTED, dtype=object)
    status[original] = _STATUS_OK
    empty_fields = [response_field] if is_sft else fields
    empty = np.array(
        [any(not r[f].strip() for f in empty_fields) for r in rs.records]
        if empty_fields
        else [False] * len(rs.records),
        dtype=bool,
    )
    status[original[empty]] = _STATUS_EMPTY
    if empty.any():
        shown = ", ".join(map(str, original[empty][:10].tolist()))
        logger.warning(
            "%d records have empty text (input positions %s%s)%s",
            int(empty.sum()),
            shown,
            ", ..." if empty.sum() > 10 else "",
            "; they are excluded from selection" if empty_text == "exclude" else "",
        )
    cand = np.flatnonzero(~empty) if empty_text == "exclude" else np.arange(len(rs.records))
    if len(cand) == 0:
        raise DataValidationError("no records with non-empty text to select from", source=rs.source)
    budget = resolve_budget(len(cand), n_samples=n_samples, fraction=fraction)
    records = [rs.records[i] for i in cand.tolist()]
    y: Any = None
    if label_field is not None:
        y = np.array([r[label_field] for r in records], dtype=object)
    ctx = FeatureContext(
        spec=spec,
        records=records,
        fields=fields,
        is_sft=is_sft,
        prompt_field=prompt_field,
        response_field=response_field,
        label_field=label_field,
        y=y,
        model=model,
        embeddings=embeddings,
        rows=original[cand],
        n_input=n_input,
        engine=eng,
        engine_options=eng_opts,
        input_options=inp_opts,
        random_state=random_state,
        show_progress_bar=show_progress_bar,
    )
    X = FEATURES.get(spec.fit_input)(ctx)
    models, columns, details = ctx.models, ctx.columns, ctx.details

    selector = spec.build(
        n_samples=budget,
        random_state=random_state,
        show_progress_bar=show_progress_bar,
        **sel_opts,
    )
    if eng is None or spec.fit_input == "difficulty":  # a ranking of scores: on the driver
        selector.fit(X, y)
        if eng is not None:
            models["engine"] = eng.describe()
    else:
        from dataprune.distributed.clustered import fit_with_engine

        fit_with_engine(selector, X, y, engine=eng)
        models["engine"] = eng.describe()
    where = original[cand]
    if "label_issue" in columns and spec.name in ("el2n", "grand"):
        from dataprune.selection.el2n import warn_keep_hard_label_issues

        hard = str(getattr(selector, "keep", "hard")) in ("hard", "high")
        details["n_label_issues_kept"] = warn_keep_hard_label_issues(
            np.asarray(columns["label_issue"], dtype=bool),
            np.asarray(selector.selected_indices_),
            keep="hard" if hard else "easy",
            offset=float(getattr(selector, "offset", 0.0) or 0.0),
            score=spec.name,
        )
    feature_columns = list(columns)  # computed before selecting: scores of the records alone
    columns.update(_per_record_columns(selector, where))

    sel_pos = cand[selector.selected_indices_]  # positions in rs.records, selection order
    order = original[sel_pos]
    kept_sorted = np.sort(order)
    pos_sorted = np.sort(sel_pos)
    scores = _expand(selector.scores_, where, n_input)
    rank = _expand(selector.ranking_.astype(np.int64), where, n_input)
    kept = np.zeros(n_input, dtype=bool)
    kept[order] = True
    full_cols = {name: _expand(np.asarray(v), where, n_input) for name, v in columns.items()}
    groups = getattr(selector, "duplicate_groups_", None)
    if groups is not None:
        details["duplicate_groups"] = [[int(where[i]) for i in g] for g in groups]
        details["n_duplicates"] = int(getattr(selector, "n_duplicates_", 0))
    for attr in ("n_label_issues_", "n_offset_", "n_dropped_hard_"):
        if hasattr(selector, attr):
            details[attr[:-1]] = int(getattr(selector, attr))
    params = {
        "method": spec.name,
        "fraction": fraction,
        "n_samples": n_samples,
        "budget": budget,
        "random_state": random_state,
        "text_field": text_field,
        "prompt_field": prompt_field,
        "response_field": response_field,
        "label_field": label_field,
        "empty_text": empty_text,
        "on_bad_record": on_bad_record,
        "options": {k: v for k, v in options.items()},
        "engine": "local" if eng is None else eng.name,
        "selector": repr(selector),
        "against_random": int(against_random),
    }
    result = SelectionResult(
        method=spec.name,
        indices=kept_sorted,
        order=order,
        scores=scores,
        columns=full_cols,
        kept=kept,
        rank=rank,
        status=status,
        dataset=_dataset_subset(data, rs, pos_sorted, kept_sorted),
        selector=selector,
        budget=budget,
        n_input=n_input,
        params=params,
        models=models,
        details=details,
        rejects=list(rs.rejects),
    )
    logger.info("%s", result.summary())
    if against_random:
        from dataprune.selection.against_random import (
            candidate_embeddings,
            compare_selection_with_random,
        )

        result.comparisons = compare_selection_with_random(
            result,
            embeddings=candidate_embeddings(spec, X, ctx),
            labels=y,
            columns=[c for c in feature_columns if c in full_cols],
            n_subsets=int(against_random),
        )
    return result
