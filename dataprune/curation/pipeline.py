"""``dataprune.curate``: run a recipe's stages over SFT records, resumably, and account for every
record."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.curation.context import CurationContext
from dataprune.curation.recipe import Recipe, load_recipe
from dataprune.curation.result import DROPPED, KEPT, VALIDATE, CurationResult
from dataprune.curation.stage_cache import StageCache, stage_key
from dataprune.curation.view import Fields, RecordView, build_view
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["curate", "output_paths"]


def output_paths(output: str | os.PathLike[str]) -> dict[str, Path]:
    """Where a run with ``output=OUT`` writes: the kept records at ``OUT`` and its siblings."""
    out = Path(output)
    return {
        "kept": out,
        "status": Path(f"{out}.status.parquet"),
        "report": Path(f"{out}.report.html"),
        "rejects": Path(f"{out}.rejects.jsonl"),
        "cache": Path(f"{out}.cache"),
    }


def _describe_model(m: Any) -> Any:
    if m is None or isinstance(m, (str, os.PathLike)):
        return None if m is None else str(m)
    from dataprune.embeddings import model_identity

    return model_identity(m[0] if isinstance(m, tuple) else m)


def _preflight(recipe: Recipe, view: RecordView, budget: int | None) -> None:
    """Fail before any work when a stage needs what the data or the budget lacks."""
    for st in recipe.stages:
        needs = set(st.needs)
        if "labels" in needs and view.labels is None:
            raise DataValidationError(
                f"stage {st.label!r} needs labels: give label_field (--label-field)"
            )
        if "sft" in needs and not view.is_sft:
            raise DataValidationError(
                f"stage {st.label!r} needs prompt/response records: give prompt_field and "
                "response_field (--prompt-field/--response-field) or messages_field; for "
                "plain-text records use a recipe without it (e.g. the built-in 'dedup')"
            )
        if "budget" in needs and budget is None:
            raise DataValidationError(
                f"stage {st.label!r} needs a budget: give fraction or n_samples (--fraction / "
                "--n-samples, or budget: in the recipe)"
            )
    if budget is not None and budget > len(view):
        raise DataValidationError(
            f"the budget of {budget} records is larger than the {len(view)} valid input records"
        )
    if budget is not None and not recipe.has_select:
        raise DataValidationError(
            "a budget was given but the recipe has no 'select' stage to keep exactly that many"
        )


def curate(
    data: Any,
    recipe: str | os.PathLike[str] | Mapping[str, Any] | Recipe = "default",
    *,
    fraction: float | None = None,
    n_samples: int | None = None,
    text_field: str | None = None,
    prompt_field: str | None = None,
    response_field: str | None = None,
    messages_field: str | None = None,
    id_field: str | None = None,
    label_field: str | None = None,
    flag_field: str | None = None,
    output: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    encoder: Any = None,
    lm: Any = None,
    engine: Any = "local",
    engine_options: Mapping[str, Any] | None = None,
    on_bad_record: str = "skip",
    random_state: int | None = None,
    report: bool = True,
    n_random_subsets: int = 20,
    show_progress_bar: bool | None = None,
) -> CurationResult:
    """Curate SFT (or plain-text) records with a recipe of stages.

    Parameters
    ----------
    data : path, list of dict, datasets.Dataset or RecordSet
        The records (JSONL / JSON / parquet / CSV files).
    recipe : str, path, mapping or Recipe, default="default"
        A built-in name (``"default"``, ``"dedup"``), a YAML file or a mapping
        (:func:`dataprune.curation.load_recipe`).
    fraction, n_samples : float or int, optional
        Budget of the ``select`` stage (overrides the recipe's): records kept, exactly.
        ``fraction`` counts all input records.
    text_field, prompt_field, response_field, messages_field : str, optional
        Which fields hold the text: plain text, an SFT pair, or chat turns. Default: the first of
        ``messages``, ``prompt``/``response``, ``instruction``/``output``, ``text`` present.
    id_field : str, optional
        The records' own ids (unique), carried to the status table; default: input positions.
    label_field : str, optional
        Class labels (``label_quality`` scores, class-balanced selection).
    flag_field : str, optional
        A field marking records known to be bad (true, or a non-empty value other than
        "none"/"false"/"0"); only the report uses it, to compare their share with random subsets.
    output : path, optional
        Write the kept records here (format from the suffix), with ``OUT.status.parquet``,
        ``OUT.report.html``, ``OUT.manifest.json`` and the stage cache ``OUT.cache/``.
    cache_dir : path, optional
        Stage cache without writing outputs (default: ``OUT.cache`` when ``output`` is given).
    encoder, lm : str, path or model, optional
        Sentence encoder (default all-MiniLM-L6-v2) and causal LM (default SmolLM2-135M-Instruct;
        a loaded model as ``(model, tokenizer)``).
    engine : {"local", "ray"} or Engine, default="local"
        Where embeddings and the clustering selection run; results equal the local engine's.
    on_bad_record : {"skip", "error"}, default="skip"
        Malformed records end as ``dropped`` by ``validate`` (``"skip"``) or stop the run.
    random_state : int, optional
        Seed of every stage; with ``None`` one is drawn (and recorded). Pass an int to resume a
        cached run.
    report : bool, default=True
        With ``output``: write the HTML report.
    n_random_subsets : int, default=20
        Random subsets of the kept size the report compares the kept set with.

    Returns
    -------
    CurationResult
    """
    from dataprune.io import load_records
    from dataprune.outputs import check_output
    from dataprune.progress import progress
    from dataprune.seeding import resolve_seed

    rec = load_recipe(recipe).with_budget(fraction=fraction, n_samples=n_samples)
    if on_bad_record not in ("skip", "error"):
        raise DataValidationError(f"on_bad_record must be 'skip' or 'error', got {on_bad_record!r}")
    fields = Fields(
        text_field, prompt_field, response_field, messages_field, id_field, label_field, flag_field
    )
    paths = output_paths(output) if output is not None else None
    if paths is not None:
        for kind, p in paths.items():
            check_output(
                p, kind="dir" if kind == "cache" else "file", inputs=[data], overwrite=True
            )
    seed = resolve_seed(random_state)
    rs = load_records(data, on_bad_record=on_bad_record)  # type: ignore[arg-type]
    view = build_view(rs, fields, on_bad_record=on_bad_record)
    n_input = rs.n_input
    budget = rec.budget_for(n_input)
    _preflight(rec, view, budget)

    folder = cache_dir if cache_dir is not None else (paths["cache"] if paths else None)
    cache = StageCache(folder)
    ctx = CurationContext(
        view=view,
        budget=budget,
        random_state=seed,
        encoder=encoder,
        lm=lm,
        engine=engine,
        engine_options=dict(engine_options or {}),
        work_dir=Path(folder) if folder is not None else None,
        show_progress_bar=show_progress_bar,
    )
    n = len(view)
    alive = np.ones(n, dtype=bool)
    v_stage = np.full(n, None, dtype=object)
    v_reason = np.full(n, None, dtype=object)
    v_dup = np.full(n, -1, dtype=np.int64)
    details: dict[str, Any] = {}
    funnel = [
        {"stage": VALIDATE, "kind": VALIDATE, "n_in": n_input, "n_dropped": n_input - n, "n_out": n}
    ]
    order = None
    base_key = {
        "input": rs.content_hash,
        "n_input": n_input,
        "fields": fields.resolved(rs.records).__dict__ if rs.records else {},
        "random_state": seed,
        "encoder": _describe_model(encoder),
        "lm": _describe_model(lm),
        "version": _version(),
    }
    timings: dict[str, float] = {}
    cached: list[str] = []
    bar = progress(rec.stages, show_progress_bar=show_progress_bar, desc="Curating", unit="stage")
    for i, st in enumerate(bar):
        seen = np.flatnonzero(alive)
        key = stage_key(
            {
                **base_key,
                "stages": [
                    s.kind + ":" + repr(sorted(s.config.to_dict().items()))
                    for s in rec.stages[: i + 1]
                ],
                "budget": budget if st.kind == "select" else None,
            }
        )
        t0 = time.perf_counter()
        out = cache.load(i, st.label, key, seen)
        if out is None:
            logger.info("stage %s: %d records", st.label, len(seen))
            out = st.run(ctx, seen)
            cache.save(i, st.label, key, out, seen)
        else:
            cached.append(st.label)
            logger.info("stage %s: reused its cached output", st.label)
        timings[st.label] = round(time.perf_counter() - t0, 3)
        drop_local = np.flatnonzero(out.dropped)
        pos = seen[drop_local]
        alive[pos] = False
        v_stage[pos] = st.label
        v_reason[pos] = [out.reason[j] for j in drop_local.tolist()]
        v_dup[pos] = out.duplicate_of[drop_local]
        for name, col in out.scores.items():
            full = ctx.scores.setdefault(name, np.full(n, np.nan))
            full[seen] = col
        if out.order is not None:
            order = out.order
        d = dict(out.details)
        if "largest_groups" in d:  # view positions -> input positions
            d["largest_groups"] = [[int(view.index[p]) for p in g] for g in d["largest_groups"]]
        details[st.label] = d
        funnel.append(
            {
                "stage": st.label,
                "kind": st.kind,
                "n_in": len(seen),
                "n_dropped": len(drop_local),
                "n_out": len(seen) - len(drop_local),
            }
        )
    result = _assemble(
        rs, view, rec, alive, v_stage, v_reason, v_dup, ctx, order, funnel, details, budget, seed
    )
    result.stage_seconds = timings
    result.cached_stages = cached
    if budget is not None and len(result) != budget:  # pragma: no cover - guarded by select
        raise AssertionError(f"kept {len(result)} records for a budget of {budget}")
    if paths is not None:
        _write_outputs(result, rs, paths, report=report, n_random_subsets=n_random_subsets, ctx=ctx)
    return result


def _version() -> str:
    from dataprune import __version__

    return __version__


def _assemble(
    rs, view, rec, alive, v_stage, v_reason, v_dup, ctx, order, funnel, details, budget, seed
):
    n_input = rs.n_input
    idx = view.index
    ids: list[str | None] = [None] * n_input
    for p, i in enumerate(idx.tolist()):
        ids[i] = view.ids[p]
    for i, rid in view.rejected_ids.items():
        ids[i] = rid
    status = np.full(n_input, DROPPED, dtype=object)
    stage = np.full(n_input, VALIDATE, dtype=object)
    reason = np.full(n_input, None, dtype=object)
    for r in view.rejected:
        if r.index is not None:
            reason[r.index] = r.reason
    missing = [i for i in range(n_input) if reason[i] is None]
    dup = np.full(n_input, None, dtype=object)
    status[idx] = np.where(alive, KEPT, DROPPED)
    stage[idx] = v_stage
    reason[idx] = v_reason
    for p in np.flatnonzero(v_dup >= 0).tolist():
        dup[idx[p]] = view.ids[int(v_dup[p])]
    unaccounted = [
        i for i in missing if status[i] == DROPPED and stage[i] == VALIDATE and reason[i] is None
    ]
    for i in unaccounted:
        reason[i] = "rejected by validation"
    columns = {}
    for name, col in ctx.scores.items():
        full = np.full(n_input, np.nan)
        full[idx] = col
        columns[name] = full
    kept_idx = np.sort(idx[alive])
    order_in = idx[order] if order is not None else kept_idx
    records: list[Any] = [None] * n_input
    for pos, i in enumerate(rs.indices):
        records[i] = rs.records[pos]
    for r in view.rejected:
        if r.index is not None and records[r.index] is None:
            records[r.index] = r.raw
    prompts: list[str | None] = [None] * n_input
    responses: list[str | None] = [None] * n_input
    for p, i in enumerate(idx.tolist()):
        prompts[i] = view.prompts[p]
        responses[i] = view.responses[p]
    flags = None
    if view.flags is not None:
        flags = np.zeros(n_input, dtype=bool)
        flags[idx] = view.flags
    return CurationResult(
        n_input=n_input,
        ids=ids,
        status=status,
        stage=np.where(status == KEPT, None, stage),
        reason=reason,
        duplicate_of=dup,
        columns=columns,
        kept_indices=kept_idx.astype(np.int64),
        order=np.asarray(order_in, dtype=np.int64),
        funnel=funnel,
        details=details,
        recipe=rec.to_dict(),
        budget=budget,
        random_state=seed,
        records=records,
        prompts=prompts,
        responses=responses,
        flags=flags,
        embeddings=ctx._embeddings,
        models=dict(ctx.models),
    )


def _write_outputs(
    result: CurationResult,
    rs: Any,
    paths: dict[str, Path],
    *,
    report: bool,
    n_random_subsets: int,
    ctx: CurationContext,
) -> None:
    from dataprune.io import write_records, write_rejects
    from dataprune.manifest import build_manifest, write_manifest

    write_records(result.kept_records, paths["kept"])
    result.write_status(paths["status"])
    outputs = {"kept": str(paths["kept"]), "status": str(paths["status"])}
    rej = write_rejects(ctx.view.rejected, paths["kept"])
    if rej is not None:
        outputs["rejects"] = str(rej)
    if report:
        from dataprune.curation.report import compare_with_random, write_report

        result.comparisons = compare_with_random(
            result,
            embeddings=getattr(ctx, "_embeddings", None),
            valid_index=ctx.view.index,
            n_subsets=n_random_subsets,
        )
        write_report(
            result,
            paths["report"],
            n_random_subsets=n_random_subsets,
            comparisons=result.comparisons,
        )
        outputs["report"] = str(paths["report"])
    manifest = build_manifest(
        command="dataprune curate",
        parameters={"recipe": result.recipe},
        random_state=result.random_state,
        inputs={rs.source: rs.content_hash},
        # n_output as every other command's manifest names the records written
        counts={**result.counts(), "n_output": int(result.kept.sum())},
        models=result.models,
        outputs=outputs,
        extra={
            "funnel": result.funnel,
            "stage_seconds": result.stage_seconds,
            "cached_stages": result.cached_stages,
            "against_random": [c.to_dict() for c in result.comparisons],
        },
    )
    write_manifest(paths["kept"], manifest)
