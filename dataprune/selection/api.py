"""One-call selection: ``dataprune.select(data, method=..., fraction=... | n_samples=...)``.

Loads and validates the records, computes what the method needs (embeddings, labels, lengths,
difficulty scores), fits the selector and returns a :class:`SelectionResult` with the kept indices,
every per-record score and the selected dataset in the input's own type.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.selection.base import resolve_budget
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
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataprune.atomic import atomic_path

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        path = Path(path)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path

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
            ax.set_title(name)
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


def _joined_texts(records: Sequence[Mapping[str, Any]], fields: list[str]) -> list[str]:
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


def _lengths(
    records: list[dict[str, Any]], field_: str, unit: str, model: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    texts = [r[field_] for r in records]
    if unit == "chars":
        return np.array([len(t) for t in texts], dtype=np.float64), {}
    if unit == "words":
        return np.array([len(t.split()) for t in texts], dtype=np.float64), {}
    if unit != "tokens":
        raise DataValidationError(f"unit must be 'tokens', 'words' or 'chars', got {unit!r}")
    tok, desc = _load_tokenizer(model)
    out = np.empty(len(texts), dtype=np.float64)
    for lo in range(0, len(texts), 1024):
        enc = tok(texts[lo : lo + 1024], add_special_tokens=False)["input_ids"]
        out[lo : lo + len(enc)] = [len(e) for e in enc]
    return out, {"tokenizer": desc}


def _dataset_subset(data: Any, rs: Any, positions: np.ndarray, original: np.ndarray) -> Any:
    """Kept records in the input's own type (``positions`` index ``rs.records``)."""
    from dataprune.io import RecordSet, _is_hf_dataset

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
    models: dict[str, Any] = {}
    columns: dict[str, np.ndarray] = {}
    details: dict[str, Any] = {}

    X: Any = None
    y: Any = None
    if label_field is not None:
        y = np.array([r[label_field] for r in records], dtype=object)

    def get_embeddings() -> np.ndarray:
        if embeddings is not None:
            E = np.asarray(embeddings)
            if E.ndim != 2 or E.shape[0] != n_input:
                raise DataValidationError(
                    f"embeddings must have shape ({n_input}, dim): one row per input record, "
                    f"got {E.shape}"
                )
            models["encoder"] = {"name": "precomputed embeddings"}
            return np.ascontiguousarray(E[original[cand]], dtype=np.float32)
        from dataprune.embeddings import embed_texts, model_identity
        from dataprune.models import resolve_encoder

        if model is None or isinstance(model, (str, os.PathLike)):
            models["encoder"] = resolve_encoder(model).describe()
        else:
            models["encoder"] = {"name": model_identity(model)}
        if eng is not None:
            from dataprune.distributed.shards import embed_texts_distributed

            return embed_texts_distributed(
                _joined_texts(records, fields),
                model,
                engine=eng,
                show_progress_bar=show_progress_bar,
                **eng_opts,
            )
        return np.asarray(
            embed_texts(_joined_texts(records, fields), model, show_progress_bar=show_progress_bar),
            dtype=np.float32,
        )

    if spec.fit_input == "none" or spec.fit_input == "labels":
        X = np.zeros((len(cand), 1))
    elif spec.fit_input == "lengths":
        unit = inp_opts.get("unit", "tokens")
        length_field = response_field if is_sft else fields[0]
        X, desc = _lengths(records, length_field, unit, model)
        models.update(desc)
        columns[f"length_{unit}"] = X
    elif spec.needs_embeddings:
        X = get_embeddings()
    else:  # difficulty
        score_name = inp_opts.get("score", "el2n")
        if score_name not in ("el2n", "grand"):
            raise DataValidationError(f"score must be 'el2n' or 'grand', got {score_name!r}")
        if label_field is not None:
            if eng is not None:
                raise DataValidationError(
                    f"method {spec.name!r} with a label field trains proxy heads on the local "
                    "engine only; other engines score SFT records (prompt_field and "
                    "response_field) with the LM"
                )
            from dataprune.scores.proxy import proxy_scores

            ps = proxy_scores(
                get_embeddings(),
                y,
                n_runs=inp_opts.get("n_runs", 5),
                config=inp_opts.get("proxy"),
                random_state=random_state,
                show_progress_bar=show_progress_bar,
            )
            columns.update(el2n=ps.el2n, grand=ps.grand)
            details["proxy"] = {"n_runs": ps.n_runs, **ps.config.to_dict()}
        else:
            from dataprune.scores.lm import lm_scores

            if eng is not None:
                if score_name != "el2n":
                    raise DataValidationError(
                        f"score {score_name!r} runs on the local engine only; other engines "
                        "compute the LM EL2N (with NLL, PPL and entropy)"
                    )
                from dataprune.distributed.shards import lm_score_records
                from dataprune.models import resolve_causal_lm

                if model is None or isinstance(model, (str, os.PathLike)):
                    models["causal_lm"] = resolve_causal_lm(model).describe()
                else:
                    obj = model[0] if isinstance(model, tuple) else model
                    models["causal_lm"] = {"name": getattr(obj, "__qualname__", type(obj).__name__)}
                ds = lm_score_records(
                    [r[prompt_field] for r in records],  # type: ignore[index]
                    [r[response_field] for r in records],  # type: ignore[index]
                    model,
                    engine=eng,
                    batch_size=inp_opts.get("batch_size", 8),
                    max_length=inp_opts.get("max_length", 1024),
                    show_progress_bar=show_progress_bar,
                    **eng_opts,
                )
                columns.update(
                    el2n=ds["el2n"],
                    nll=ds["nll"],
                    ppl=ds["ppl"],
                    entropy=ds["entropy"],
                    response_tokens=ds["n_tokens"],
                )
                details["lm"] = {"n_truncated": int(ds["truncated"].sum())}
            else:
                lm, tok, desc = _load_lm(model)
                models["causal_lm"] = desc
                ls = lm_scores(
                    lm,
                    tok,
                    [r[prompt_field] for r in records],  # type: ignore[index]
                    [r[response_field] for r in records],  # type: ignore[index]
                    grand=score_name == "grand",
                    batch_size=inp_opts.get("batch_size", 8),
                    max_length=inp_opts.get("max_length", 1024),
                    show_progress_bar=show_progress_bar,
                )
                columns.update(el2n=ls.el2n, nll=ls.nll, response_tokens=ls.n_tokens)
                if ls.grand is not None:
                    columns["grand"] = ls.grand
                details["lm"] = {"n_truncated": ls.n_truncated}
        X = columns[score_name]

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
    return result
