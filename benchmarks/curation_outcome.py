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
and cached (:func:`benchmarks.sft_run_cache.run_cached`), so an interrupted benchmark continues.

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
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks import sft_harness, sft_pool, sft_run_cache  # noqa: E402
from benchmarks.curation_outcome_memo import ScoreMemo  # noqa: E402
from benchmarks.curation_outcome_render import publish, render  # noqa: E402
from benchmarks.curation_outcome_setup import (  # noqa: E402
    CONDITIONS,
    DEDUP,
    DEFAULT_WORK,
    DEV_SIZES,
    DTYPE,
    EVAL_MAX_LENGTH,
    EVAL_SIZES,
    FRACTION,
    NAME,
    POOL_SEED,
    SELECT_RANDOM,
    candidates,
    fault_shares,
    mean_shares,
    norm_stages,
)


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
    builtin_norm = norm_stages(builtin)
    match = next((c["name"] for c in cands if norm_stages(c["stages"]) == builtin_norm), None)
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
            "stages": norm_stages(cand["stages"]),
            "recipe": {"stages": cand["stages"]},
            "n_stages": len(cand["stages"]),
            "extra": bool(cand.get("extra")),
            "random_states": states,
            **mean_shares(per_state),
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
    random_summary = mean_shares(rand_rows)
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
            "equals_winner": builtin_norm == norm_stages(winner["recipe"]["stages"]),
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
    key = sft_run_cache.canonical(dict(key))
    path = Path(folder) / f"{sft_run_cache.fingerprint(key)[:32]}.json"
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
    base_key = sft_run_cache.run_key(
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

    b["base"] = sft_run_cache.run_cached(base_key, base_fn, runs_dir)
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
            key = sft_run_cache.run_key(
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
            r = sft_run_cache.run_cached(key, fn, runs_dir)
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
