"""Curation outcome: does ``dataprune.curate``'s default recipe beat a random subset of the same size?

Pools (:mod:`benchmarks.sft_pool`): GSM8K + Alpaca SFT pairs with planted, recorded faults (10%
``shuffled`` answers, 5% ``truncated`` responses, 5% ``exact_dup``, 5% ``near_dup``). Curation sees
only ``id``, ``prompt`` and ``response``; the ``fault`` labels are used to score the kept sets.
Budget: 25% of the pool, exactly (``fraction=0.25``).

Phase A, on development data only (``build_pool(1100, 165, seed=0, split="dev")``, the largest the
dev split allows, disjoint from every eval pool and held-out set): candidate recipes at the budget,
scored by the planted-fault share of the kept set, against random subsets (mean of 20). Every
candidate is run with several ``random_state`` values (``--dev-states``) and its shares averaged
(facility location is deterministic; a random ``select`` is not). The candidate with the lowest
share wins (ties: the lower paired share, then fewer stages, then list order) and becomes the ``default`` condition of Phase B;
the built-in ``BUILTIN_RECIPES["default"]`` is compared with it.

Phase B, on the eval pool (``build_pool(1000, 500, seed=0)``), each condition at the same budget and
each seed: ``random``, ``default`` (the dev-selected recipe), ``full`` (the whole pool, same number of
optimizer steps), and two single stages aimed at the two fault families: ``dedup`` (exact + fuzzy
dedup, then a random fill; duplicates) and ``ifd`` (the dev-selected IFD cut, then a random fill;
misaligned pairs). Per (condition, seed): LoRA SFT of SmolLM2-135M-Instruct
(:func:`benchmarks.sft_harness.train_lora`, bfloat16 base weights) and token-weighted held-out
response NLL on GSM8K test and held-out Alpaca; the base model is evaluated once. Runs are seed-major
and cached (:func:`benchmarks.sft_harness.run_cached`), so an interrupted benchmark continues.

LM scores: the stage cache of ``curate`` keys a stage by the seed and by every option up to it, so
IFD would be recomputed for each IFD cut and each seed. The benchmark therefore memoises
``ifd_scores`` / ``lm_scores`` (on disk, ``--score-cache``) and ``score_sft`` (in memory) by their
exact inputs (model, dtype, texts, batch size, window): a repeated call returns the stored result of
the identical call, so no number changes.

Run:  .venv/bin/python benchmarks/curation_outcome.py                  # Phase A + Phase B
      .venv/bin/python benchmarks/curation_outcome.py --phase dev      # Phase A only
      .venv/bin/python benchmarks/curation_outcome.py --render-only    # md + png from the JSON
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks import sft_harness, sft_pool  # noqa: E402

NAME = "curation_outcome"
FRACTION = 0.25
POOL_SEED = 0
DEV_SIZES = (1100, 165)  # GSM8K, Alpaca: the most the dev split allows
EVAL_SIZES = (1000, 500)
FAULT_TYPES = ("shuffled", "truncated", "exact_dup", "near_dup")
CONDITIONS = ("random", "default", "full", "dedup", "ifd")
SINGLE_STAGES = ("dedup", "ifd")
#: plot labels: Phase B's "default" condition is the recipe chosen on dev data
LABELS = {"default": "dev-chosen"}
DTYPE = "bfloat16"
EVAL_MAX_LENGTH = 1024  # held-out window: the harness cap, so held-out records are not cut
DEFAULT_WORK = HERE / ".cache" / NAME

DEDUP = ["exact_dedup", {"fuzzy_dedup": {"threshold": 0.8}}]
SELECT_FL = {"select": {"method": "facility_location"}}
SELECT_RANDOM = {"select": {"method": "random"}}


def _ifd(**cut: float) -> dict:
    return {"quality": {"score": "ifd", **cut}}


def candidates() -> list[dict[str, Any]]:
    """Phase A's candidate recipes, in tie-break order."""
    out = [
        {"name": "dedup", "stages": [*DEDUP, SELECT_FL]},
        {"name": "dedup + ifd<=1", "stages": [*DEDUP, _ifd(max=1.0), SELECT_FL]},
    ]
    for q in (0.5, 0.6, 0.7):
        out.append(
            {"name": f"dedup + ifd<=q{q}", "stages": [*DEDUP, _ifd(max_quantile=q), SELECT_FL]}
        )
    out += [
        {
            "name": "dedup + ppl<=q0.7",
            "stages": [
                *DEDUP,
                {"quality": {"score": "perplexity", "max_quantile": 0.7}},
                SELECT_FL,
            ],
        },
        {"name": "dedup + ifd<=1 + random", "stages": [*DEDUP, _ifd(max=1.0), SELECT_RANDOM]},
        {
            "name": "dedup + ifd<=q0.6 + random",
            "stages": [*DEDUP, _ifd(max_quantile=0.6), SELECT_RANDOM],
        },
        {
            "name": "dedup + ppl<=q0.5",
            "stages": [
                *DEDUP,
                {"quality": {"score": "perplexity", "max_quantile": 0.5}},
                SELECT_FL,
            ],
        },
        {
            "name": "dedup + ifd<=q0.7 + ppl<=q0.7",
            "stages": [
                *DEDUP,
                _ifd(max_quantile=0.7),
                {"quality": {"score": "perplexity", "max_quantile": 0.7}},
                SELECT_FL,
            ],
        },
    ]
    return out


# ------------------------------------------------------------------------------ score memo
def _hash_texts(h: Any, texts: Any) -> None:
    for t in texts:
        b = str(t).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


def _call_key(fn: str, model: Any, prompts: Any, responses: Any, kwargs: dict) -> str:
    from dataprune.embeddings import model_identity

    try:
        dtype = str(next(model.parameters()).dtype)
    except Exception:  # not a torch module: identity alone
        dtype = "?"
    h = hashlib.sha256()
    head = {"fn": fn, "model": model_identity(model), "dtype": dtype, "kwargs": kwargs}
    h.update(json.dumps(head, sort_keys=True, default=str).encode("utf-8"))
    _hash_texts(h, prompts)
    h.update(b"\0responses\0")
    _hash_texts(h, responses)
    return h.hexdigest()


class ScoreMemo:
    """Memoises the LM scoring functions the quality stage calls, by their exact inputs.

    ``ifd_scores`` and ``lm_scores`` results are stored under ``folder`` (npz of their arrays plus
    a JSON of the rest, no pickle), ``score_sft`` results in memory (the IFD conditioned pass and
    ``lm_scores`` make the identical call). Installed by replacing the module attributes the
    stages import at call time; :meth:`uninstall` restores them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self._mem: dict[str, Any] = {}
        self._orig: dict[str, Any] = {}

    # -- storage
    def _save(self, key: str, obj: Any) -> None:
        from dataprune.atomic import atomic_path, atomic_write_json

        arrays, meta = {}, {"class": type(obj).__name__, "fields": {}}
        for f in dc_fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, np.ndarray):
                arrays[f.name] = v
                meta["fields"][f.name] = "array"
            elif isinstance(v, list) and all(isinstance(x, np.ndarray) for x in v):
                arrays[f.name] = np.concatenate(v) if v else np.zeros(0)
                arrays[f.name + "__len"] = np.array([len(x) for x in v], dtype=np.int64)
                meta["fields"][f.name] = "ragged"
            else:
                meta["fields"][f.name] = {"value": v}
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{key}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        atomic_write_json(self.folder / f"{key}.json", meta)

    def _load(self, key: str, cls: type) -> Any:
        npz, js = self.folder / f"{key}.npz", self.folder / f"{key}.json"
        if not (npz.is_file() and js.is_file()):
            return None
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
            with np.load(npz, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None
        kw: dict[str, Any] = {}
        for name, kind in meta["fields"].items():
            if kind == "array":
                kw[name] = data[name]
            elif kind == "ragged":
                cuts = np.cumsum(data[name + "__len"])[:-1]
                kw[name] = list(np.split(data[name], cuts)) if len(data[name + "__len"]) else []
            else:
                kw[name] = kind["value"]
        return cls(**kw)

    # -- wrappers
    def _disk_wrapper(self, name: str, fn: Any, cls: type) -> Any:
        memo = self

        def wrapped(model, tokenizer, prompts, responses, **kwargs):
            kw = {k: v for k, v in kwargs.items() if k != "show_progress_bar"}
            key = _call_key(name, model, prompts, responses, kw)
            got = memo._load(key, cls)
            if got is not None:
                memo.hits[name] += 1
                return got
            memo.misses[name] += 1
            t0 = time.perf_counter()
            out = fn(model, tokenizer, prompts, responses, **kwargs)
            memo.seconds[name] += time.perf_counter() - t0
            memo._save(key, out)
            return out

        return wrapped

    def _mem_wrapper(self, fn: Any) -> Any:
        memo = self

        def wrapped(model, tokenizer, prompts, responses, **kwargs):
            kw = {k: v for k, v in kwargs.items() if k != "show_progress_bar"}
            key = _call_key("score_sft", model, prompts, responses, {**kw, "id": id(model)})
            if key in memo._mem:
                memo.hits["score_sft"] += 1
                return memo._mem[key]
            memo.misses["score_sft"] += 1
            out = fn(model, tokenizer, prompts, responses, **kwargs)
            if len(memo._mem) >= 4:
                memo._mem.pop(next(iter(memo._mem)))
            memo._mem[key] = out
            return out

        return wrapped

    def install(self) -> ScoreMemo:
        import dataprune.lm_scoring as lm_scoring
        import dataprune.scores as scores
        from dataprune.scores.ifd import IFDScores
        from dataprune.scores.lm import LMScores

        self._orig = {
            "ifd_scores": scores.ifd_scores,
            "lm_scores": scores.lm_scores,
            "score_sft": lm_scoring.score_sft,
        }
        scores.ifd_scores = self._disk_wrapper("ifd_scores", self._orig["ifd_scores"], IFDScores)
        scores.lm_scores = self._disk_wrapper("lm_scores", self._orig["lm_scores"], LMScores)
        lm_scoring.score_sft = self._mem_wrapper(self._orig["score_sft"])
        return self

    @contextlib.contextmanager
    def active(self) -> Iterator[ScoreMemo]:
        """Installed for the duration of a ``with`` block (only curation scores are memoised:
        training and held-out evaluation score other models with the same identity)."""
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

    def uninstall(self) -> None:
        import dataprune.lm_scoring as lm_scoring
        import dataprune.scores as scores

        if self._orig:
            scores.ifd_scores = self._orig["ifd_scores"]
            scores.lm_scores = self._orig["lm_scores"]
            lm_scoring.score_sft = self._orig["score_sft"]
            self._orig = {}

    def summary(self) -> dict[str, Any]:
        return {
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "compute_seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


# ----------------------------------------------------------------------------- fault shares
def fault_shares(pool: list[dict], kept: Any) -> dict[str, Any]:
    """Planted-fault share of the kept records, overall and per fault type and source.

    ``fault_share`` counts every kept record by its label. ``fault_share_paired`` counts a
    duplicate (``exact_dup`` / ``near_dup``, a copy of record ``dup_of``) only when the record it
    copies is kept too: dedup keeps the first of a pair in pool order, which is the copy about
    half the time, and a copy whose original is gone duplicates nothing in the kept set.
    """
    kept = [int(i) for i in kept]
    n = len(kept)
    c = Counter(pool[i]["fault"] for i in kept)
    kept_ids = {pool[i]["id"] for i in kept}
    paired = Counter(
        pool[i]["fault"]
        for i in kept
        if pool[i]["fault"] in ("exact_dup", "near_dup") and pool[i]["dup_of"] in kept_ids
    )
    n_paired = c["shuffled"] + c["truncated"] + paired["exact_dup"] + paired["near_dup"]
    per_source = {}
    for src in ("gsm8k", "alpaca"):
        ks = [i for i in kept if pool[i]["source"] == src]
        bad = sum(pool[i]["fault"] != "none" for i in ks)
        per_source[src] = {"n_kept": len(ks), "fault_share": bad / len(ks) if ks else None}
    nan = float("nan")
    return {
        "n_kept": n,
        "n_faulty": n - c["none"],
        "fault_share": (n - c["none"]) / n if n else nan,
        "per_type": {f: c[f] / n if n else nan for f in FAULT_TYPES},
        "n_faulty_paired": n_paired,
        "fault_share_paired": n_paired / n if n else nan,
        "dup_with_original_kept": {f: paired[f] for f in ("exact_dup", "near_dup")},
        "per_source": per_source,
    }


def _mean_shares(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of several :func:`fault_shares` (over random states, subsets or seeds)."""
    share = [r["fault_share"] for r in rows]
    return {
        "fault_share": float(np.mean(share)),
        "fault_share_sd": float(np.std(share, ddof=1)) if len(rows) > 1 else 0.0,
        "fault_share_paired": float(np.mean([r["fault_share_paired"] for r in rows])),
        "per_type": {f: float(np.mean([r["per_type"][f] for r in rows])) for f in FAULT_TYPES},
        "n": len(rows),
    }


def _strip(pool: list[dict]) -> list[dict]:
    """What curation sees: id, prompt, response."""
    return [{"id": r["id"], "prompt": r["prompt"], "response": r["response"]} for r in pool]


def _curate(data, recipe, *, random_state, cache_dir, lm, progress, memo) -> Any:
    from dataprune import curate

    with memo.active():
        return curate(
            data,
            {"stages": recipe["stages"]} if "name" in recipe else recipe,
            fraction=FRACTION,
            prompt_field="prompt",
            response_field="response",
            id_field="id",
            cache_dir=cache_dir,
            lm=lm,
            random_state=random_state,
            show_progress_bar=progress,
        )


def _curation_info(res: Any) -> dict[str, Any]:
    cuts = {lab: d["cuts"] for lab, d in res.details.items() if isinstance(d, dict) and "cuts" in d}
    return {
        "funnel": [{k: f[k] for k in ("stage", "n_in", "n_dropped", "n_out")} for f in res.funnel],
        "quality_cuts": cuts,
        "stage_seconds": res.stage_seconds,
        "cached_stages": res.cached_stages,
    }


def _norm_stages(stages: list) -> list:
    from dataprune.curation import load_recipe

    return load_recipe({"stages": stages}).to_dict()["stages"]


# ---------------------------------------------------------------------------------- phase A
def phase_a(args, lm, work: Path, memo: ScoreMemo) -> dict[str, Any]:
    from dataprune.curation import BUILTIN_RECIPES

    sizes = tuple(args.dev_sizes)
    pool = sft_pool.build_pool(*sizes, seed=POOL_SEED, split="dev")
    data = _strip(pool)
    cache = work / "curate" / "dev"
    states = list(range(args.dev_states))
    rand_rows = []
    budget = None
    cands = candidates()
    builtin = BUILTIN_RECIPES["default"]["stages"]
    builtin_norm = _norm_stages(builtin)
    match = next((c["name"] for c in cands if _norm_stages(c["stages"]) == builtin_norm), None)
    todo = list(cands)
    if match is None:
        todo.append({"name": "built-in default", "stages": builtin, "extra": True})
    rows = []
    for cand in todo:
        per_state, infos, secs, sets = [], [], [], set()
        for rs in states:
            t0 = time.perf_counter()
            res = _curate(
                data,
                cand,
                random_state=rs,
                cache_dir=cache,
                lm=lm,
                progress=args.progress,
                memo=memo,
            )
            secs.append(time.perf_counter() - t0)
            budget = res.budget
            per_state.append(fault_shares(pool, res.kept_indices))
            sets.add(tuple(res.kept_indices.tolist()))
            infos.append(_curation_info(res))
        row = {
            "name": cand["name"],
            "stages": _norm_stages(cand["stages"]),
            "recipe": {"stages": cand["stages"]},
            "n_stages": len(cand["stages"]),
            "extra": bool(cand.get("extra")),
            "random_states": states,
            **_mean_shares(per_state),
            "per_state": per_state,
            "curation": infos[0],
            "distinct_kept_sets": len(sets),
            "seconds_first": round(secs[0], 1),
            "seconds_later_mean": round(float(np.mean(secs[1:])), 1) if len(secs) > 1 else None,
        }
        rows.append(row)
        print(
            f"[dev] {cand['name']}: fault share {row['fault_share']:.3f} "
            f"(states {states}, first {secs[0]:.0f} s) load {common.load_1min():.1f}",
            flush=True,
        )
    for i in range(args.dev_random):
        idx = np.random.default_rng([POOL_SEED, i]).choice(len(pool), budget, replace=False)
        rand_rows.append(fault_shares(pool, np.sort(idx)))
    random_summary = _mean_shares(rand_rows)
    for row in rows:
        row["ratio_to_random"] = row["fault_share"] / random_summary["fault_share"]
    eligible = [r for r in rows if not r["extra"]]
    order = sorted(
        range(len(eligible)),
        key=lambda i: (
            round(eligible[i]["fault_share"], 12),
            round(eligible[i]["fault_share_paired"], 12),
            eligible[i]["n_stages"],
            i,
        ),
    )
    winner = eligible[order[0]]
    tied = [
        r["name"]
        for r in eligible
        if r is not winner and round(r["fault_share"], 12) == round(winner["fault_share"], 12)
    ]
    tied_same_stages = [
        n
        for n in tied
        if next(r for r in eligible if r["name"] == n)["n_stages"] == winner["n_stages"]
    ]
    by_paired = min(
        range(len(eligible)),
        key=lambda i: (round(eligible[i]["fault_share_paired"], 12), eligible[i]["n_stages"], i),
    )
    ifd_rows = [r for r in (eligible[i] for i in order) if _ifd_stage(r["stages"]) is not None]
    builtin_name = match or "built-in default"
    brow = next(r for r in rows if r["name"] == builtin_name)
    return {
        "pool": {
            "split": "dev",
            "n_gsm8k": sizes[0],
            "n_alpaca": sizes[1],
            "seed": POOL_SEED,
            "n": len(pool),
            "faults": dict(Counter(r["fault"] for r in pool)),
            "fault_share": float(np.mean([r["fault"] != "none" for r in pool])),
        },
        "budget": budget,
        "fraction": FRACTION,
        "random": {**random_summary, "subsets": rand_rows},
        "candidates": rows,
        "winner": winner["name"],
        "tied_with": tied,
        "tie_decided_by": (
            None
            if not tied
            else "paired share"
            if all(
                round(r["fault_share_paired"], 12) > round(winner["fault_share_paired"], 12)
                for r in eligible
                if r["name"] in tied
            )
            else "list order"
            if tied_same_stages
            else "fewer stages"
        ),
        "winner_by_paired_share": eligible[by_paired]["name"],
        "winner_recipe": {"stages": winner["recipe"]["stages"]},
        "ifd_cut_source": ifd_rows[0]["name"] if ifd_rows else None,
        "ifd_cut": _ifd_stage(ifd_rows[0]["recipe"]["stages"]) if ifd_rows else None,
        "builtin_default": {
            "recipe": {"stages": builtin},
            "equals_candidate": match,
            "equals_winner": builtin_norm == _norm_stages(winner["recipe"]["stages"]),
            "fault_share": brow["fault_share"],
        },
    }


def _ifd_stage(stages: list) -> dict | None:
    for s in stages:
        if isinstance(s, dict) and "quality" in s and s["quality"].get("score") == "ifd":
            return s
    return None


# ---------------------------------------------------------------------------------- phase B
def _is_cached(key: dict, folder: Path) -> bool:
    key = sft_harness.canonical(dict(key))
    path = Path(folder) / f"{sft_harness.fingerprint(key)[:32]}.json"
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and stored.get("key") == key and "result" in stored


def _evaluate(model, tok, heldout) -> dict[str, Any]:
    return {
        name: sft_harness.heldout_nll(model, tok, pairs, max_length=EVAL_MAX_LENGTH)
        for name, pairs in heldout.items()
    }


def phase_b(args, lm, work: Path, a: dict, state: dict, save, memo: ScoreMemo) -> None:
    from dataprune.curation import BUILTIN_RECIPES

    sizes = tuple(args.eval_sizes)
    pool = sft_pool.build_pool(*sizes, seed=POOL_SEED, split="eval")
    data = _strip(pool)
    pairs_all = [(r["prompt"], r["response"]) for r in pool]
    ids_all = [r["id"] for r in pool]
    heldout = sft_pool.heldout_sets(
        POOL_SEED, split="eval", n_gsm8k=args.n_heldout, n_alpaca=args.n_heldout
    )
    tok = lm[1]
    max_length = sft_harness.resolve_max_length(tok, pairs_all)
    budget = round(FRACTION * len(pool))
    cache = work / "curate" / "eval"
    runs_dir = work / "runs"
    default_recipe = a["winner_recipe"]
    ifd_stage = _ifd_stage(default_recipe["stages"]) or a["ifd_cut"]
    recipes = {
        "default": default_recipe,
        "dedup": {"stages": [*DEDUP, SELECT_RANDOM]},
        "ifd": {"stages": [ifd_stage, SELECT_RANDOM]} if ifd_stage else None,
    }
    b = state["phase_b"] = {
        "pool": {
            "split": "eval",
            "n_gsm8k": sizes[0],
            "n_alpaca": sizes[1],
            "seed": POOL_SEED,
            "n": len(pool),
            "faults": dict(Counter(r["fault"] for r in pool)),
            "fault_share": float(np.mean([r["fault"] != "none" for r in pool])),
        },
        "budget": budget,
        "max_length": max_length,
        "eval_max_length": EVAL_MAX_LENGTH,
        "heldout": {k: len(v) for k, v in heldout.items()},
        "steps": args.steps,
        "seeds": list(args.seeds),
        "conditions": list(CONDITIONS),
        "recipes": recipes,
        "ifd_cut_from": "default" if _ifd_stage(default_recipe["stages"]) else a["ifd_cut_source"],
        "expected_trainings": len(args.seeds) * len(CONDITIONS),
        "max_runs": args.max_runs,
        "curation": {},
        "runs": [],
        "base": None,
        "builtin_default": BUILTIN_RECIPES["default"]["stages"],
    }
    print(f"[eval] pool {len(pool)}, budget {budget}, max_length {max_length}", flush=True)

    def cfg_for(seed: int, steps: int | None = None) -> Any:
        return sft_harness.SFTRunConfig(
            steps=args.steps if steps is None else steps,
            micro_batch=4,
            grad_accum=2,
            max_length=max_length,
            dtype=DTYPE,
            n_threads=args.threads,
            seed=seed,
        )

    extra = {"benchmark": NAME, "eval_max_length": EVAL_MAX_LENGTH, "pool": b["pool"]}
    # base model, once (no training)
    base_key = sft_harness.run_key(
        "base model",
        train_ids=[],
        train_pairs=[],
        config=cfg_for(0, steps=0),
        eval_sets=heldout,
        **extra,
    )

    def base_fn() -> dict[str, Any]:
        load = common.load_1min()
        print(f"[eval] base model evaluation, load {load:.1f}", flush=True)
        model, btok = sft_harness.load_base(DTYPE)
        t0 = time.perf_counter()
        ev = _evaluate(model, btok, heldout)
        return {"heldout": ev, "load_1m_before": load, "eval_seconds": time.perf_counter() - t0}

    b["base"] = sft_harness.run_cached(base_key, base_fn, runs_dir)
    save()
    new = 0
    stopped = False
    for seed in args.seeds:
        kept: dict[str, np.ndarray] = {}
        cur: dict[str, Any] = {}
        rng = np.random.default_rng([seed, 1])
        kept["random"] = np.sort(rng.choice(len(pool), budget, replace=False))
        cur["random"] = {}
        kept["full"] = np.arange(len(pool))
        cur["full"] = {}
        for cond in ("default", "dedup", "ifd"):
            if recipes[cond] is None:
                continue
            t0 = time.perf_counter()
            res = _curate(
                data,
                recipes[cond],
                random_state=seed,
                cache_dir=cache,
                lm=lm,
                progress=args.progress,
                memo=memo,
            )
            kept[cond] = np.asarray(res.kept_indices)
            if len(kept[cond]) != budget:
                raise AssertionError(f"{cond} kept {len(kept[cond])} records, budget {budget}")
            cur[cond] = {**_curation_info(res), "seconds": round(time.perf_counter() - t0, 1)}
            print(f"[eval] seed {seed} {cond}: curated in {cur[cond]['seconds']} s", flush=True)
        b["curation"][str(seed)] = {
            c: {**fault_shares(pool, kept[c]), **cur[c]} for c in CONDITIONS if c in kept
        }
        save()
        for cond in CONDITIONS:
            if cond not in kept:
                continue
            idx = kept[cond].tolist()
            pairs = [pairs_all[i] for i in idx]
            ids = [ids_all[i] for i in idx]
            cfg = cfg_for(seed)
            key = sft_harness.run_key(
                cond, train_ids=ids, train_pairs=pairs, config=cfg, eval_sets=heldout, **extra
            )
            cached = _is_cached(key, runs_dir)
            if not cached and args.max_runs is not None and new >= args.max_runs:
                stopped = True
                continue

            def fn(pairs=pairs, cfg=cfg, cond=cond, seed=seed) -> dict[str, Any]:
                load = common.load_1min()
                print(f"[eval] train {cond} seed {seed}: 1-min load {load:.1f}", flush=True)
                t0 = time.perf_counter()
                trained = sft_harness.train_lora(pairs, cfg)
                t1 = time.perf_counter()
                ev = _evaluate(trained.model, trained.tokenizer, heldout)
                return {
                    "train": trained.info,
                    "heldout": ev,
                    "load_1m_before": load,
                    "train_seconds": t1 - t0,
                    "eval_seconds": time.perf_counter() - t1,
                }

            if not cached:
                new += 1
            r = sft_harness.run_cached(key, fn, runs_dir)
            run = {"condition": cond, "seed": seed, "cached": cached, **r}
            b["runs"].append(run)
            h = r["heldout"]
            print(
                f"[eval] {cond} seed {seed}: NLL gsm8k {h['gsm8k']['nll']:.4f} alpaca "
                f"{h['alpaca']['nll']:.4f}; {r['train']['seconds_per_step']} s/step, eval "
                f"{r['eval_seconds']:.0f} s{' (cached)' if cached else ''}",
                flush=True,
            )
            save()
    b["stopped_by_max_runs"] = stopped


# -------------------------------------------------------------------------------- reporting
def _pct(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def _mean_sd(x: list[float] | np.ndarray, fmt: str = ".4f") -> str:
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return "-"
    if len(x) == 1:
        return format(x[0], fmt)
    return f"{format(x.mean(), fmt)} ± {format(x.std(ddof=1), fmt)}"


def _stage_text(stages: list) -> str:
    out = []
    for s in stages:
        kind, opts = next(iter(s.items()))
        opts = {k: v for k, v in opts.items() if k != "label"}
        if kind == "fuzzy_dedup":
            out.append(f"fuzzy_dedup({opts.get('threshold')})")
        elif kind == "quality":
            cut = ", ".join(
                f"{k} {opts[k]}"
                for k in ("min", "max", "min_quantile", "max_quantile")
                if opts.get(k) is not None
            )
            out.append(f"quality({opts['score']}: {cut})")
        elif kind == "select":
            out.append(f"select({opts['method']})")
        else:
            out.append(kind)
    return " → ".join(out)


def _by(runs: list[dict]) -> dict[str, dict[int, dict]]:
    by: dict[str, dict[int, dict]] = {}
    for r in runs:
        by.setdefault(r["condition"], {})[r["seed"]] = r
    return by


def _nll(run: dict, which: str) -> float:
    return float(run["heldout"][which]["nll"])


def render_phase_a(a: dict) -> list[str]:
    L = ["### Phase A: choosing the default on development data\n"]
    p = a["pool"]
    rnd = a["random"]
    most = (
        ": the most the dev split allows"
        if [p["n_gsm8k"], p["n_alpaca"]] == list(DEV_SIZES)
        else ""
    )
    L.append(
        f"Dev pool: `build_pool({p['n_gsm8k']}, {p['n_alpaca']}, seed={p['seed']}, "
        f'split="dev")`, {p["n"]} records ({p["n_gsm8k"]} GSM8K, {p["n_alpaca"]} Alpaca{most}; '
        f"GSM8K share {p['n_gsm8k'] / p['n']:.0%}), planted-fault share "
        f"{_pct(p['fault_share'])}; budget "
        f"{a['budget']} records ({a['fraction']:.0%}). Each candidate ran with random_state "
        f"{', '.join(map(str, a['candidates'][0]['random_states']))} (shares averaged); random: "
        f"mean ± sd over {rnd['n']} random subsets of the budget.\n"
    )
    L.append(
        "Shares are of the kept records. *Paired* counts an exact/near duplicate only when the "
        "record it copies is kept too (dedup keeps the first of a pair in pool order, so the "
        "surviving member carries the duplicate label about half the time although it duplicates "
        "nothing); the per-type columns count labels.\n"
    )
    L.append(
        "| candidate | stages | planted-fault share | ratio to random | paired share | "
        "ratio to random | shuffled | truncated | exact dup | near dup | curate s (first state) |"
    )
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in a["candidates"]:
        mark = " **(winner)**" if r["name"] == a["winner"] else ""
        sd = f" ± {_pct(r['fault_share_sd'])}" if r["fault_share_sd"] > 0 else ""
        L.append(
            f"| {r['name']}{mark} | {_stage_text(r['stages'])} | {_pct(r['fault_share'])}{sd} | "
            f"{r['ratio_to_random']:.2f} | {_pct(r['fault_share_paired'])} | "
            f"{r['fault_share_paired'] / rnd['fault_share_paired']:.2f} | "
            + " | ".join(_pct(r["per_type"][f]) for f in FAULT_TYPES)
            + f" | {r['seconds_first']:.0f} |"
        )
    L.append(
        f"| random ({rnd['n']} subsets) | - | {_pct(rnd['fault_share'])} ± "
        f"{_pct(rnd['fault_share_sd'])} | 1.00 | {_pct(rnd['fault_share_paired'])} | 1.00 | "
        + " | ".join(_pct(rnd["per_type"][f]) for f in FAULT_TYPES)
        + " | - |"
    )
    L.append("")
    w = next(r for r in a["candidates"] if r["name"] == a["winner"])
    tie = ""
    if a.get("tied_with"):
        tie = (
            f" It ties with {', '.join(f'`{n}`' for n in a['tied_with'])}; "
            + {
                "paired share": "the lower paired share decided",
                "list order": "the same paired share and number of stages, so the candidate "
                "list order decided",
                "fewer stages": "it has fewer stages",
            }[a["tie_decided_by"]]
            + "."
        )
    paired_w = a.get("winner_by_paired_share")
    paired = (
        " By the paired share the winner would be the same."
        if paired_w == a["winner"]
        else f" By the paired share the lowest would be `{paired_w}` instead."
    )
    L.append(
        f"Winner (lowest planted-fault share; ties broken by the paired share, then fewer stages, "
        f"then list order): "
        f"**{a['winner']}**, {_pct(w['fault_share'])} vs random's {_pct(rnd['fault_share'])} "
        f"({w['ratio_to_random']:.2f}x).{tie}{paired} As a recipe: "
        f"`{json.dumps(a['winner_recipe'])}`. It is the `default` condition of Phase B.\n"
    )
    bd = a["builtin_default"]
    if bd["equals_winner"]:
        L.append(
            'The built-in `BUILTIN_RECIPES["default"]` '
            f"({_stage_text(_norm_stages(bd['recipe']['stages']))}) **equals** the dev-selected "
            "recipe.\n"
        )
    else:
        which = (
            f"it is candidate `{bd['equals_candidate']}`"
            if bd["equals_candidate"]
            else "it is not among the candidates (run as an extra row)"
        )
        L.append(
            'The built-in `BUILTIN_RECIPES["default"]` '
            f"({_stage_text(_norm_stages(bd['recipe']['stages']))}) **does not equal** the "
            f"dev-selected recipe: {which}, planted-fault share {_pct(bd['fault_share'])} vs the "
            f"winner's {_pct(w['fault_share'])} (Phase B's rule decides the shipped default; see "
            f"its targets).\n"
        )
    return L


def _nll_wins(by: dict, seeds: list[int], c: str, ref: str) -> dict[str, Any]:
    """Seeds where condition ``c`` has lower held-out NLL than ``ref``, per set."""
    a, r = by.get(c, {}), by.get(ref, {})
    both = [s for s in seeds if s in a and s in r]
    wins = {w: int(sum(_nll(a[s], w) < _nll(r[s], w) for s in both)) for w in ("gsm8k", "alpaca")}
    return {"seeds": both, **wins, "all": bool(both) and min(wins.values()) == len(both)}


def _shipped_condition(b: dict) -> str | None:
    """The Phase B condition whose recipe is the built-in default, if any."""
    builtin = b.get("builtin_default")
    if builtin is None:
        return None
    want = _norm_stages(builtin)
    for c in ("default", *SINGLE_STAGES):
        rec = b["recipes"].get(c)
        if rec is not None and _norm_stages(rec["stages"]) == want:
            return c
    return None


def _verdicts(b: dict) -> dict[str, Any]:
    by = _by(b["runs"])
    seeds = b["seeds"]
    cur = b["curation"]
    share, paired = {}, {}
    for c in CONDITIONS:
        rows = [cur[str(s)][c] for s in seeds if c in cur.get(str(s), {})]
        share[c] = float(np.mean([r["fault_share"] for r in rows])) if rows else None
        paired[c] = float(np.mean([r["fault_share_paired"] for r in rows])) if rows else None

    def targets(c: str) -> dict[str, Any]:
        w = _nll_wins(by, seeds, c, "random")
        ok = share[c] is not None and share["random"] is not None
        return {
            "nll_seeds": w["seeds"],
            "nll_gsm8k_wins": w["gsm8k"],
            "nll_alpaca_wins": w["alpaca"],
            "nll_target_met": w["all"],
            "nll_target_complete": len(w["seeds"]) == len(seeds),
            "fault_target_met": bool(ok and share[c] <= 0.25 * share["random"]),
        }

    singles = {}
    for c in SINGLE_STAGES:
        w = _nll_wins(by, seeds, c, "default")
        beats = [
            s
            for s in w["seeds"]
            if _nll(by[c][s], "gsm8k") < _nll(by["default"][s], "gsm8k")
            and _nll(by[c][s], "alpaca") < _nll(by["default"][s], "alpaca")
        ]
        mean_nll = (
            float(np.mean([_nll(by[c][s], "gsm8k") + _nll(by[c][s], "alpaca") for s in w["seeds"]]))
            if w["seeds"]
            else None
        )
        singles[c] = {
            "seeds": w["seeds"],
            "beats_default_both_sets": len(beats),
            "complete": len(w["seeds"]) == len(seeds),
            "mean_nll_sum": mean_nll,
        }
    # the rule: a single stage that beats the dev-chosen recipe on both held-out sets on
    # every seed becomes the default (the lowest summed NLL if several do)
    qualified = [
        c
        for c, i in singles.items()
        if i["complete"] and i["seeds"] and i["beats_default_both_sets"] == len(i["seeds"])
    ]
    rule = min(qualified, key=lambda c: singles[c]["mean_nll_sum"]) if qualified else "default"
    shipped = _shipped_condition(b)
    return {
        **targets("default"),
        "fault_share_mean": share,
        "fault_share_paired_mean": paired,
        "single_stage": singles,
        "rule_default": rule,
        "shipped": shipped,
        "shipped_targets": targets(shipped) if shipped else None,
    }


def render_phase_b(b: dict) -> list[str]:
    L = ["### Phase B: outcome on the eval pool\n"]
    p = b["pool"]
    by = _by(b["runs"])
    seeds = b["seeds"]
    n_done = len(b["runs"])
    n_exp = b["expected_trainings"]
    cfg = b["runs"][0]["train"] if b["runs"] else None
    L.append(
        f"Eval pool: `build_pool({p['n_gsm8k']}, {p['n_alpaca']}, seed={p['seed']})`, {p['n']} "
        f"records (GSM8K share {p['n_gsm8k'] / p['n']:.0%}), planted-fault share "
        f"{_pct(p['fault_share'])}; budget {b['budget']} records "
        f"({b['budget'] / p['n']:.0%}). Conditions: `random` (a seeded subset per seed), "
        f"`default` (the dev-chosen recipe, random_state = seed), `full` (all {p['n']} records, "
        f"the same {b['steps']} optimizer steps), and two single stages, one per fault family: "
        f"`dedup` ({_stage_text(_norm_stages(b['recipes']['dedup']['stages']))}) targets the "
        f"duplicates (exact_dup, near_dup), `ifd` "
        + (
            f"({_stage_text(_norm_stages(b['recipes']['ifd']['stages']))}; cut from "
            f"{b['ifd_cut_from']}) "
            if b["recipes"].get("ifd")
            else "(no IFD cut among the dev candidates) "
        )
        + "targets the misaligned pairs (shuffled answers, truncated responses).\n"
    )
    L.append(
        f"Training: LoRA (r=16, alpha=32, all attention and MLP projections) of "
        f"SmolLM2-135M-Instruct with {DTYPE} base weights (for speed on this CPU), "
        f"{b['steps']} steps of micro-batch 4 x 2 accumulation (effective batch 8), lr 1e-3 "
        f"linear decay, max_length {b['max_length']} (resolved once on the whole pool: its 0.99 "
        f"token-length quantile), seeds {', '.join(map(str, seeds))} (LoRA init, data order, "
        f"random subset, curate's random_state). Held-out response NLL (token-weighted, teacher "
        f"forcing, window {b['eval_max_length']}) on {b['heldout']['gsm8k']} GSM8K test "
        f"questions and {b['heldout']['alpaca']} held-out Alpaca records (`heldout_sets(0)`); "
        f"lower is better.\n"
    )
    if n_done < n_exp:
        vs = _verdicts(b)["nll_seeds"]
        cover = (
            f"seed{'s' if len(vs) != 1 else ''} {', '.join(map(str, vs))} only"
            if vs
            else "no seed (default and random not both trained)"
        )
        L.append(
            f"**Incomplete: {n_done} of {n_exp} trainings finished; verdicts cover {cover}.**\n"
        )
    rshare = _verdicts(b)["fault_share_mean"]["random"]
    L.append(
        "| condition | seeds | NLL GSM8K (mean ± sd) | NLL Alpaca (mean ± sd) | planted-fault "
        "share | ratio to random | paired share | ratio to random | shuffled | truncated | "
        "exact dup | near dup |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rpaired = _verdicts(b)["fault_share_paired_mean"]["random"]
    cur = b["curation"]
    for c in CONDITIONS:
        rows = [cur[str(s)][c] for s in seeds if c in cur.get(str(s), {})]
        if not rows:
            continue
        ms = _mean_shares(rows)
        rs = by.get(c, {})
        g = [_nll(rs[s], "gsm8k") for s in seeds if s in rs]
        al = [_nll(rs[s], "alpaca") for s in seeds if s in rs]
        ratio = f"{ms['fault_share'] / rshare:.2f}" if rshare else "-"
        pratio = f"{ms['fault_share_paired'] / rpaired:.2f}" if rpaired else "-"
        L.append(
            f"| {c} | {len(g)} | {_mean_sd(g)} | {_mean_sd(al)} | {_pct(ms['fault_share'])} | "
            f"{ratio} | {_pct(ms['fault_share_paired'])} | {pratio} | "
            + " | ".join(_pct(ms["per_type"][f]) for f in FAULT_TYPES)
            + " |"
        )
    if b.get("base"):
        bh = b["base"]["heldout"]
        L.append(
            f"| base model (no training) | - | {bh['gsm8k']['nll']:.4f} | "
            f"{bh['alpaca']['nll']:.4f} | - | - | - | - | - | - | - | - |"
        )
    L.append(
        "\nPlanted-fault shares: mean over the seeds whose kept sets were built (the table's "
        "share columns may cover more seeds than its NLL columns); *paired* counts a duplicate "
        "only when the record it copies is kept too (see Phase A).\n"
    )
    # paired deltas
    L.append(
        "Paired deltas vs random (condition minus random, same seed; mean ± sd over seeds; "
        "better = lower NLL):\n"
    )
    L.append("| condition | Δ NLL GSM8K | better in | Δ NLL Alpaca | better in |")
    L.append("|---|---:|---:|---:|---:|")
    rr = by.get("random", {})
    for c in CONDITIONS:
        if c == "random" or c not in by:
            continue
        ss = [s for s in seeds if s in by[c] and s in rr]
        if not ss:
            continue
        cells = []
        for which in ("gsm8k", "alpaca"):
            dd = [_nll(by[c][s], which) - _nll(rr[s], which) for s in ss]
            fmt = _mean_sd(dd, "+.4f") if len(dd) > 1 else f"{dd[0]:+.4f} (n=1)"
            cells += [fmt, f"{sum(x < 0 for x in dd)} of {len(dd)}"]
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    L.append("")
    # per-seed table
    conds = [c for c in CONDITIONS if c in by]
    if conds:
        L.append("Per seed, held-out NLL GSM8K / Alpaca:\n")
        L.append("| seed | " + " | ".join(conds) + " |")
        L.append("|---:|" + "---:|" * len(conds))
        for s in seeds:
            cells = [
                f"{_nll(by[c][s], 'gsm8k'):.4f} / {_nll(by[c][s], 'alpaca'):.4f}"
                if s in by[c]
                else "-"
                for c in conds
            ]
            L.append(f"| {s} | " + " | ".join(cells) + " |")
        L.append("")
    # targets
    v = _verdicts(b)
    sh, ph = v["fault_share_mean"], v["fault_share_paired_mean"]

    def target_lines(c: str, t: dict[str, Any], who: str) -> list[str]:
        n = len(t["nll_seeds"])
        return [
            f"- {who} has lower held-out NLL than random on every seed on both sets: "
            f"**{'met' if t['nll_target_met'] else 'NOT met'}** ({t['nll_gsm8k_wins']} of {n} "
            f"seeds on GSM8K, {t['nll_alpaca_wins']} of {n} on Alpaca"
            + ("" if t["nll_target_complete"] else f"; {n} of {len(seeds)} seeds trained")
            + ").",
            f"- {who} keeps at most a quarter of random's planted-fault share: "
            f"**{'met' if t['fault_target_met'] else 'NOT met'}** ({_pct(sh[c])} vs "
            f"{_pct(sh['random'])}"
            + (f", {sh[c] / sh['random']:.2f}x" if sh[c] is not None and sh["random"] else "")
            + "); by the paired share "
            f"{_pct(ph[c])} vs {_pct(ph['random'])}.",
        ]

    L.append("**Targets (computed from the numbers above).**\n")
    L += target_lines("default", v, "the dev-chosen recipe")
    for c, info in v["single_stage"].items():
        k = len(info["seeds"])
        if k:
            L.append(
                f"- the single stage `{c}` beats the dev-chosen recipe on NLL on both sets in "
                f"{info['beats_default_both_sets']} of {k} seed(s)"
                + ("" if info["complete"] else f" ({k} of {len(seeds)} seeds trained)")
                + "."
            )
    rule = v["rule_default"]
    if rule == "default":
        L.append(
            "- Rule (a single stage that beats the dev-chosen recipe on both sets on every seed "
            "becomes the default): no single stage qualifies, so the default stays the "
            "dev-chosen recipe."
        )
    else:
        L.append(
            f"- Rule (a single stage that beats the dev-chosen recipe on both sets on every seed "
            f"becomes the default): **`{rule}`** qualifies "
            f"({_stage_text(_norm_stages(b['recipes'][rule]['stages']))}), so it is the "
            f"default. Its Phase B numbers are then not a held-out estimate: it was chosen on "
            f"this pool."
        )
    shipped = v["shipped"]
    builtin = b.get("builtin_default")
    if builtin is not None:
        txt = _stage_text(_norm_stages(builtin))
        if shipped == rule:
            L.append(f'- The built-in `BUILTIN_RECIPES["default"]` ({txt}) **equals** it.')
        else:
            L.append(
                f'- The built-in `BUILTIN_RECIPES["default"]` ({txt}) **does not equal** it'
                + (f" (it is the `{shipped}` condition)." if shipped else ".")
            )
        if shipped and shipped != "default":
            L += target_lines(shipped, v["shipped_targets"], f"the built-in default (`{shipped}`)")
    L.append("")
    # timings
    if b["runs"]:
        sps = [r["train"]["seconds_per_step"] for r in b["runs"]]
        ev = [r["eval_seconds"] for r in b["runs"]]
        loads = [r["load_1m_before"] for r in b["runs"] if r.get("load_1m_before") is not None]
        L.append(
            f"Timing: {np.mean(sps):.2f} s per optimizer step (range {min(sps):.2f}-"
            f"{max(sps):.2f} over {len(sps)} trainings), {np.mean(ev):.0f} s per held-out "
            f"evaluation of both sets; 1-minute load average before the runs "
            f"{min(loads):.1f}-{max(loads):.1f}."
            + (
                f" max_length truncated {cfg['n_truncated']} of {cfg['n_records']} training "
                f"records in the first run."
                if cfg
                else ""
            )
            + "\n"
        )
    return L


def render(res: dict, png_name: str | None = None) -> str:
    L = ["## Curation outcome: the default `curate` recipe vs random at a 25% budget\n"]
    L.append(
        f"Command: `{res['command']}` (resumable; `--render-only` rebuilds this section). "
        f"{common.machine_sentence(res.get('machine'))} "
        f"Curation saw only id, prompt and response; planted faults are scored from the pool's "
        f"labels. LM scores: SmolLM2-135M-Instruct ({DTYPE}); IFD / LM scores are memoised by "
        f"exact inputs across candidates and seeds (the curate stage cache keys include the seed "
        f"and the filter options).\n"
    )
    if res.get("phase_a"):
        L += render_phase_a(res["phase_a"])
    if res.get("phase_b"):
        L += render_phase_b(res["phase_b"])
        if png_name:
            L.append(f"![held-out NLL per condition](results/{png_name})\n")
    else:
        L.append("Phase B (training on the eval pool) has not been run.\n")
    return "\n".join(L) + "\n"


def plot(res: dict, path: Path) -> Path | None:
    b = res.get("phase_b")
    if not b or not b["runs"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dataprune.atomic import atomic_path

    by = _by(b["runs"])
    conds = [c for c in CONDITIONS if c in by]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, which, title in zip(axes, ("gsm8k", "alpaca"), ("GSM8K test", "held-out Alpaca")):
        for i, c in enumerate(conds):
            ss = sorted(by[c])
            v = np.array([_nll(by[c][s], which) for s in ss])
            for s, y in zip(ss, v):
                ax.scatter(i + 0.08 * (s - 1), y, color=f"C{s % 10}", zorder=3,
                           label=f"seed {s}" if i == 0 else None)  # fmt: skip
            ax.plot([i - 0.25, i + 0.25], [v.mean()] * 2, color="k", lw=1.5)
        if b.get("base"):  # as text: a line at the base NLL would flatten the differences
            title += f" (base model {b['base']['heldout'][which]['nll']:.4f})"
        ax.set_xticks(range(len(conds)))
        ax.set_xticklabels([LABELS.get(c, c) for c in conds])
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("held-out response NLL (lower = better)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Curation outcome: LoRA SFT, {b['steps']} steps, budget {b['budget']} of {b['pool']['n']}"
        " (points: seeds, bar: mean)"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def publish(res: dict, out_dir: Path) -> str:
    png = plot(res, out_dir / f"{NAME}.png")
    md = render(res, png.name if png else None)
    common.publish(NAME, md, res, out_dir=out_dir)
    return md


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=("dev", "all"), default="all",
                    help="dev: Phase A only; all: Phase A (cached) then Phase B")  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--n-heldout", type=int, default=100, help="records per held-out set")
    ap.add_argument("--max-runs", type=int, default=None, help="stop after N new trainings")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (scoring, training)")
    ap.add_argument("--dev-states", type=int, default=5, help="random states per dev candidate")
    ap.add_argument("--dev-random", type=int, default=20, help="random subsets on the dev pool")
    ap.add_argument("--dev-sizes", type=int, nargs=2, default=list(DEV_SIZES),
                    metavar=("GSM8K", "ALPACA"), help="dev pool (smoke tests only)")  # fmt: skip
    ap.add_argument("--eval-sizes", type=int, nargs=2, default=list(EVAL_SIZES),
                    metavar=("GSM8K", "ALPACA"), help="eval pool (smoke tests only)")  # fmt: skip
    ap.add_argument("--output-dir", type=Path, default=common.RESULTS)
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK,
                    help="stage caches and cached runs")  # fmt: skip
    ap.add_argument("--score-cache", type=Path, default=DEFAULT_WORK / "scores",
                    help="memoised IFD / LM scores (shared across work dirs)")  # fmt: skip
    ap.add_argument("--progress", action="store_true", default=None, help="progress bars")
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    out_dir = args.output_dir
    if args.render_only:
        res = json.loads((out_dir / f"{NAME}.json").read_text(encoding="utf-8"))
        print(publish(res, out_dir))
        return 0
    logging.basicConfig(level=logging.WARNING)
    import torch

    from dataprune.models import load_causal_lm

    torch.set_num_threads(args.threads)
    memo = ScoreMemo(args.score_cache)
    cmd = "python benchmarks/curation_outcome.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    res: dict[str, Any] = {
        "command": cmd,
        "machine": common.machine_info(["torch", "transformers", "peft"]),
        "threads": args.threads,
    }
    t0 = time.perf_counter()
    lm = load_causal_lm(dtype=DTYPE)
    res["phase_a"] = phase_a(args, lm, args.work_dir, memo)
    res["phase_a"]["seconds"] = round(time.perf_counter() - t0, 1)
    res["score_memo"] = memo.summary()

    def save() -> None:
        res["score_memo"] = memo.summary()
        common.record_end_load(res["machine"])
        publish(res, out_dir)

    save()
    if args.phase == "all":
        phase_b(args, lm, args.work_dir, res["phase_a"], res, save, memo)
    save()
    print(render(res), flush=True)
    print("dev-selected default recipe:", json.dumps(res["phase_a"]["winner_recipe"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
