"""Q-Tuning outcome: does the default triage beat random at an equal gradient-token budget?

Pool: :func:`benchmarks.sft_pool.build_pool` ``(1500, 500, seed=0)``: 2,000 GSM8K + Alpaca SFT
pairs with planted faults (10% shuffled answers, 5% truncated responses, 5% exact and 5% near
duplicates). Held out: 100 GSM8K test questions and 100 held-out Alpaca records
(:func:`benchmarks.sft_pool.heldout_sets`). Conditions, each keeping a quarter of the pool's
samples:

* ``random``: a seeded random 25% (all tokens);
* ``random, coupled to the default's draw`` (and ``..., per-source default's draw``, coupled
  source by source to the triage per source): another seeded random 25%, coupled to the default
  triage's draw of the same seed (which, with ``fill="random"``, is a uniform draw from what the
  noise rules leave in): the same samples in the same training order, except that the flagged
  samples a random subset of that size holds (a hypergeometric count) take the places of random
  kept ones (:func:`dataprune.qtuning.coupled_random_subset`). Against it the paired difference is
  what the rules remove, not the luck of two unrelated draws; against ``random`` it shows how
  far two independent random subsets differ;
* ``perplexity filter``: the 25% with the lowest response PPL under the base model;
* ``ifd``: Superfiltering: drop pairs with IFD >= 1, keep the 25% with the highest IFD;
* ``q-tuning static``: :class:`dataprune.qtuning.QTuningTriage` with ``QTuningConfig(
  sample_ratio=0.25)`` and every other option at its default (``random_state`` = the run's
  seed), scored once by the base model; its Q2 token masks, if any, carry over to training;
* ``q-tuning dynamic``: the whole pool through :func:`benchmarks.sft_harness.train_lora`'s
  dynamic mode with the same default config, as ``QTuningTrainer`` runs it (the pool
  deduplicated once, then each group of ``micro_batch / 0.25`` records triaged from its own
  forward pass by :func:`dataprune.qtuning.qtuning_loss`, with the IFD pass after an empty
  prompt); the slowest condition, so trained after the others.

The perplexity filter and IFD rank the scores of the default triage's own scoring pass (the same
PPL and IFD, :func:`dataprune.lm_scoring.score_sft`), so every condition sees one scoring.

``--split dev`` trains on the development pool (``build_pool(1100, 165, split="dev")``, every
dev candidate) with the dev held-out sets (GSM8K train records and Alpaca records of the dev
partition), seeds 0 and 1, and compares the Q2 token pruning of one selection: the authors'
``token_ratio=0.7, drop="high"``, ``drop="low"`` and no token pruning. The token-pruning default
was chosen there (lowest mean paired Δ NLL against random), never on the eval pool.
``--split dev-fill`` compares the fill rules on the same development pool (seeds 0, 1, 2): the
default triage (``q-tuning static``; its published runs were trained when the default was
``fill="uniform"``, the corners first, and the results file names that config), the triage per
source (``groups=`` each pair's source: PPL and entropy ranked within GSM8K and within Alpaca;
one ``K`` (``group_budget="pooled"``), or ``K`` split by source size (``group_budget="share"``,
with that fill and with ``fill="flat"``)), a random draw from what the noise rules alone leave
in (``noise rules + random``: dedup, abrupt ends, IFD >= 1 out; the plane unused; the rule
chosen there, now the default ``fill="random"``), ``fill="flat"`` (no corner preference),
``fill="random"`` with stricter IFD cuts (``max_ifd=0.95`` is the current default's config), and
the random subset coupled to that draw.

Every condition trains LoRA on SmolLM2-135M-Instruct (:func:`benchmarks.sft_harness.train_lora`,
bfloat16 base) for the same number of optimizer steps with the **same gradient-token budget per
step** (the pool's mean response length x the effective batch of 8): a step takes records until
its loss-carrying tokens reach the budget, so token pruning buys more samples, not fewer tokens.
Held-out response NLL (token-weighted) on both held-out sets; seeds 0, 1, 2 (LoRA init, data
order, random subset). Every finished run is cached (:func:`benchmarks.sft_run_cache.run_cached`),
so an interrupted benchmark continues where it stopped.

Run: ``.venv/bin/python benchmarks/qtuning_outcome.py`` (``--render-only`` rebuilds the section;
the conditions, variants and splits are in :mod:`benchmarks.qtuning_outcome_setup`, the merge of
``--only`` invocations in :mod:`benchmarks.qtuning_outcome_merge`, rendering in
:mod:`benchmarks.qtuning_outcome_render`). ``--only CONDITION --seeds S`` trains
just those runs and merges them into the published results (after checking that pool, budget,
held-out sets match), for finishing a benchmark on a machine without the run cache; the section
then names that invocation and how many runs came from earlier ones. When the library's
``QTuningConfig`` default changed since the published runs, the published runs of every
condition that takes a changed option from the default (the default triage, per source, dynamic,
the variants that leave it unset, the noise-rules draw) stay in the results, renamed
``"<condition> (<those options' earlier values>, the earlier default)"``; the conditions
``--only`` names train at the new default under the plain names, the others have no runs at it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402
from benchmarks import sft_harness, sft_pool, sft_run_cache  # noqa: E402
from benchmarks.qtuning_outcome_merge import merge_base  # noqa: E402
from benchmarks.qtuning_outcome_setup import (  # noqa: E402
    DEFAULT_WORK,
    DTYPE,
    EVAL_MAX_LENGTH,
    FAULTS,
    NAME,
    NOISE_RULES,
    POOL_SEED,
    PREVIOUS,
    RUN_NAME,
    SPLIT_SETUP,
    VARIANTS,
    key_dict,
    qcfg,
)


def qtuning_selection(
    pool, lm, max_length: int, work: Path, seed: int, per_source: bool = False, **over: Any
) -> dict[str, Any]:
    """``QTuningTriage`` (the default, or with ``over`` config fields) with ``random_state=seed``;
    ``per_source``: each pair's source (GSM8K / Alpaca) as its triage group (with the
    config's ``group_budget``).

    Cached as JSON in ``work``; the base model's scores are cached in ``work/triage-cache``.
    """
    from dataprune.qtuning import QTuningTriage

    key = sft_run_cache.fingerprint(
        {"pool": sft_run_cache.pairs_hash([(r["prompt"], r["response"]) for r in pool]),
         "max_length": max_length, "qtuning": key_dict(qcfg(**over)), "dtype": DTYPE,
         "seed": seed, "v": 2, **({"groups": "source"} if per_source else {}),
         **({"group_budget": gb} if per_source and (gb := qcfg(**over).group_budget) != "pooled"
            else {})}
    )[:24]  # fmt: skip
    path = work / f"qtuning-default-{key}.json"
    cached = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if cached is not None and "flagged" in cached:  # older entries lack it: refit from the
        return cached  # cached scores, keeping the first fit's time (the scoring pass)
    t0 = time.perf_counter()
    tri = QTuningTriage(
        qcfg(**over), model=lm[0], tokenizer=lm[1], max_length=max_length, random_state=seed,
        cache_dir=work / "triage-cache",
    ).fit([r["prompt"] for r in pool], [r["response"] for r in pool],
          groups=[r["source"] for r in pool] if per_source else None)  # fmt: skip
    kept = tri.kept_indices_
    flagged = tri.result_.samples.flagged
    out = {
        "kept": kept.tolist(),
        "flagged": np.flatnonzero(flagged).tolist(),
        "masks": [tri.token_keep_[i].astype(int).tolist() for i in kept],
        "summary": tri.result_.summary(),
        "perplexity": np.asarray(tri.perplexity_).tolist(),
        "ifd": None if tri.ifd_ is None else np.asarray(tri.ifd_).tolist(),
        "seconds": cached["seconds"] if cached else round(time.perf_counter() - t0, 1),
    }
    work.mkdir(parents=True, exist_ok=True)
    common.write_json(path, out, indent=0)
    return out


def selections(pool, lm, max_length: int, work: Path) -> dict[str, Any]:
    """The peers' selections from the default triage's scores (seed 0; the scores do not depend
    on the seed): the lowest response PPL, and Superfiltering's highest IFD below 1."""
    print(f"[select] scoring {len(pool)} pairs (PPL, entropy, IFD)", flush=True)
    qsel = qtuning_selection(pool, lm, max_length, work, 0)
    ppl, ifd = np.asarray(qsel["perplexity"]), np.asarray(qsel["ifd"])
    k = qcfg().n_keep(len(pool))
    low_ppl = np.sort(np.argsort(ppl, kind="stable")[:k])
    ok = np.flatnonzero(ifd < 1.0)
    ifd_keep = np.sort(ok[np.argsort(-ifd[ok], kind="stable")[:k]])
    if len(ifd_keep) < k:
        raise RuntimeError(f"only {len(ifd_keep)} pairs with IFD < 1; need {k}")
    return {
        "k": k,
        "perplexity filter": low_ppl.tolist(),
        "ifd": ifd_keep.tolist(),
        "ifd_below_1": len(ok),
        "seconds": {"scoring and triage": qsel["seconds"]},
    }


def coupled_draw(
    pool, lm, max_length: int, work: Path, seed: int, to: str
) -> tuple[list[int], dict[str, Any]]:
    """The random subset coupled to the seed's selection of the variant ``to``
    (:func:`dataprune.qtuning.coupled_random_subset`, seeded ``[seed, 3]``), aligned with that
    selection's training order; the selection must be a uniform draw from what its rules leave
    in (``fill="random"``; per source with ``K`` split by source, a draw within each source, and
    the coupling drawn source by source). Returns it and the number swapped."""
    from dataprune.qtuning import coupled_random_subset

    over = dict(VARIANTS[to])
    per_source = over.pop("per_source", False)
    cfg = qcfg(**over)
    if cfg.fill != "random" or (per_source and cfg.group_budget != "share"):
        raise ValueError(f"{to!r} is not a uniform draw from its rules' survivors")
    s = qtuning_selection(pool, lm, max_length, work, seed, per_source=per_source, **over)
    flagged = np.zeros(len(pool), dtype=bool)
    flagged[s["flagged"]] = True
    order = coupled_random_subset(
        s["kept"], flagged, groups=[r["source"] for r in pool] if per_source else None,
        random_state=np.random.default_rng([seed, 3]),
    ).tolist()  # fmt: skip
    m = len(set(order) - set(s["kept"]))
    return order, {"m": m, "n_flagged": int(flagged.sum()), "k": len(order)}


def fault_shares(pool: list[dict], kept: list[int]) -> dict[str, Any]:
    ids = {pool[i]["id"] for i in kept}
    out = {f: float(np.mean([pool[i]["fault"] == f for i in kept])) for f in FAULTS}
    out["any"] = float(np.mean([pool[i]["fault"] != "none" for i in kept]))
    out["alpaca"] = float(np.mean([pool[i]["source"] == "alpaca" for i in kept]))
    out["dup_paired"] = float(
        np.mean([pool[i]["fault"] in ("exact_dup", "near_dup") and pool[i]["dup_of"] in ids
                 for i in kept])
    )  # fmt: skip
    return out


def run(args) -> dict[str, Any]:
    import torch

    from benchmarks.qtuning_outcome_render import publish
    from dataprune.models import load_causal_lm

    torch.set_num_threads(args.threads)
    work = args.work_dir
    setup = SPLIT_SETUP[args.split]
    conditions, late = setup["conditions"], setup["late"]
    split = setup["split"]
    pool = sft_pool.build_pool(*setup["pool"], seed=POOL_SEED, split=split)
    pairs_all = [(r["prompt"], r["response"]) for r in pool]
    ids_all = [r["id"] for r in pool]
    heldout = sft_pool.heldout_sets(
        POOL_SEED, split=split, n_gsm8k=args.n_heldout, n_alpaca=args.n_heldout
    )
    lm = load_causal_lm(dtype=DTYPE)
    max_length = sft_harness.resolve_max_length(lm[1], pairs_all)
    from dataprune.sft_encoding import encode_sft_pairs

    encs = encode_sft_pairs(lm[1], [p for p, _ in pairs_all], [r for _, r in pairs_all],
                            max_length=max_length)  # fmt: skip
    mean_resp = float(np.mean([e.n_response_tokens for e in encs]))
    tokens_per_step = round(8 * mean_resp)
    k = qcfg().n_keep(len(pool))
    res: dict[str, Any] = {
        "name": setup["name"], "split": split, "about": setup["about"],
        "conditions": list(conditions),
        "command": "python benchmarks/qtuning_outcome.py"
                   + ("" if args.split == "eval" else f" --split {args.split}"),
        "machine": common.machine_info(["torch", "transformers", "peft"]),
        "pool": {"n_gsm8k": setup["pool"][0], "n_alpaca": setup["pool"][1], "seed": POOL_SEED,
                 "n": len(pool),
                 "fault_share": float(np.mean([r["fault"] != "none" for r in pool]))},
        "k": k, "max_length": max_length, "tokens_per_step": tokens_per_step,
        "mean_response_tokens": mean_resp, "steps": args.steps, "seeds": list(args.seeds),
        "heldout": {n: len(v) for n, v in heldout.items()},
        # the config of "q-tuning static" (eval, dev-fill) / of the one selection the token
        # pruning conditions share (dev)
        "qtuning_config": (qcfg(**PREVIOUS) if args.split == "dev" else qcfg()).to_dict(),
        "pool_faults": {f: sum(r["fault"] == f for r in pool) for f in FAULTS},
        "selection": {}, "selection_seconds": None,
        "runs": [], "base": None,
    }  # fmt: skip
    only = list(args.only or [])
    if only:
        res = merge_base(res, args, only)
    sel: dict[str, Any] = {}
    if args.split == "eval" and (
        not only or any(c in only for c in ("perplexity filter", "ifd"))
    ):  # the peers' selections, from the default triage's scoring pass
        sel = selections(pool, lm, max_length, work)
        res["selection"] = {
            "perplexity filter": fault_shares(pool, sel["perplexity filter"]),
            "ifd": fault_shares(pool, sel["ifd"]),
        }
        res.update(ifd_below_1=sel["ifd_below_1"], selection_seconds=sel["seconds"])
    runs_dir = work / "runs"

    def cfg_for(seed: int, steps: int | None = None):
        return sft_harness.SFTRunConfig(
            steps=args.steps if steps is None else steps, micro_batch=4, grad_accum=2,
            max_length=max_length, dtype=DTYPE, n_threads=args.threads, seed=seed,
        )  # fmt: skip

    extra = {"benchmark": NAME, "eval_max_length": EVAL_MAX_LENGTH, "pool": res["pool"],
             "tokens_per_step": tokens_per_step}  # fmt: skip

    def evaluate(model, tok):
        return {n: sft_harness.heldout_nll(model, tok, p, max_length=EVAL_MAX_LENGTH)
                for n, p in heldout.items()}  # fmt: skip

    def base_fn():
        model, tok = sft_harness.load_base(DTYPE)
        return {"heldout": evaluate(model, tok)}

    if res.get("base") is None:  # (a merged invocation keeps the published base evaluation)
        res["base"] = sft_run_cache.run_cached(
            sft_run_cache.run_key("base model", train_ids=[], train_pairs=[], config=cfg_for(0, 0),
                                eval_sets=heldout, **extra), base_fn, runs_dir)  # fmt: skip
    publish(res)
    new = 0
    # the static conditions of every seed first: dynamic runs are the slowest (one forward with
    # gradients per group of micro_batch / sample_ratio records)
    trained = [c for c in conditions if not only or c in only]
    for phase in ([c for c in trained if c not in late], [c for c in trained if c in late]):
        if not phase:
            continue
        for seed in args.seeds:
            rng = np.random.default_rng([seed, 1])
            chosen: dict[str, list[int]] = {"q-tuning dynamic": list(range(len(pool)))}
            masks_of: dict[str, dict] = {}
            if not set(phase) <= {"q-tuning dynamic"}:  # (dynamic triages its own micro-batches)
                qsel = qtuning_selection(pool, lm, max_length, work, seed)
                chosen["random"] = np.sort(rng.choice(len(pool), k, replace=False)).tolist()
                for cond, over in VARIANTS.items():
                    if cond in conditions:
                        vsel = qtuning_selection(pool, lm, max_length, work, seed, **over)
                        chosen[cond] = vsel["kept"]
                        if not all(all(m) for m in vsel["masks"]):  # else: every response token
                            masks_of[cond] = dict(zip(vsel["kept"], vsel["masks"]))
                if sel:
                    chosen.update({c: sel[c] for c in ("perplexity filter", "ifd")})
                for cond, to in setup.get("coupled", {}).items():
                    if cond in conditions:
                        chosen[cond], info = coupled_draw(pool, lm, max_length, work, seed, to)
                        res.setdefault("coupled", {}).setdefault(cond, {})[str(seed)] = {
                            **info, "to": to,
                        }  # fmt: skip
                if NOISE_RULES in conditions:
                    clean = np.setdiff1d(np.arange(len(pool)), qsel["flagged"])
                    draw = np.random.default_rng([seed, 2]).choice(len(clean), k, replace=False)
                    chosen[NOISE_RULES] = np.sort(clean[draw]).tolist()
                # what each seeded selection keeps of the planted faults; with --only, of the
                # conditions trained now (the scores, hence a selection, can differ slightly on
                # another machine: the published runs keep the selections they trained on)
                for cond in conditions:
                    if only and cond not in only:
                        continue
                    if cond in chosen and cond != "q-tuning dynamic":
                        res.setdefault("selection_by_seed", {}).setdefault(cond, {})[str(seed)] = (
                            fault_shares(pool, chosen[cond])
                        )
                if not only or "q-tuning static" in only:
                    res.setdefault("qtuning_default_summary", {})[str(seed)] = qsel["summary"]

            def run_of(cond: str, seed: int = seed, chosen=chosen, masks_of=masks_of):
                """The training inputs of ``cond`` at this seed, its run key and cache path."""
                idx = chosen[cond]
                pairs = [pairs_all[i] for i in idx]
                masks = (
                    [np.asarray(masks_of[cond][i], dtype=bool) for i in idx]
                    if cond in masks_of else None
                )  # fmt: skip
                dyn = qcfg() if cond == "q-tuning dynamic" else None
                cfg = cfg_for(seed)
                key = sft_run_cache.run_key(
                    RUN_NAME.get(cond, cond), train_ids=[ids_all[i] for i in idx], train_pairs=pairs, config=cfg,
                    eval_sets=heldout, **extra,
                    masks=None if masks is None else sft_run_cache.fingerprint([m.tolist() for m in masks]),
                    dynamic=None if dyn is None else key_dict(dyn),
                )  # fmt: skip
                return (
                    pairs,
                    masks,
                    dyn,
                    cfg,
                    key,
                    runs_dir / f"{sft_run_cache.fingerprint(key)[:32]}.json",
                )

            # a coupled subset is compared with the runs of the selection it was coupled to only
            # where those runs trained on that very selection: the run cache holds the run of the
            # current selection (the published runs may come from an earlier scoring of the pool,
            # whose draw differs), and its held-out NLL is the published one
            for cond, to in setup.get("coupled", {}).items():
                info = res.get("coupled", {}).get(cond, {}).get(str(seed))
                if info is None or to not in chosen:
                    continue
                to_path = run_of(to)[5]
                pub = next(
                    (r for r in res["runs"] if (r["condition"], r["seed"]) == (to, seed)), None
                )
                same = to_path.is_file() and pub is not None and (
                    json.loads(to_path.read_text(encoding="utf-8"))["result"]["heldout"] == pub["heldout"]
                )  # fmt: skip
                info["to_run_matches"] = bool(same)
            for cond in phase:
                pairs, masks, dyn, cfg, key, path = run_of(cond)
                path_exists = path.is_file()
                if not path_exists and args.max_runs is not None and new >= args.max_runs:
                    continue

                def fn(pairs=pairs, cfg=cfg, masks=masks, dyn=dyn, cond=cond, seed=seed):
                    load = common.load_1min()
                    print(f"[train] {cond} seed {seed}: 1-min load {load:.1f}", flush=True)
                    t0 = time.perf_counter()
                    tr = sft_harness.train_lora(pairs, cfg, loss_masks=masks,
                                                tokens_per_step=tokens_per_step, dynamic=dyn)  # fmt: skip
                    t1 = time.perf_counter()
                    ev = evaluate(tr.model, tr.tokenizer)
                    return {"train": tr.info, "heldout": ev, "load_1m_before": load,
                            "train_seconds": t1 - t0, "eval_seconds": time.perf_counter() - t1}  # fmt: skip

                new += 0 if path_exists else 1
                r = sft_run_cache.run_cached(key, fn, runs_dir)
                res["runs"] = [
                    x for x in res["runs"] if (x["condition"], x["seed"]) != (cond, seed)
                ]
                res["runs"].append({"condition": cond, "seed": seed, "cached": path_exists,
                                    **({"this_invocation": True} if only else {}), **r})  # fmt: skip
                h = r["heldout"]
                print(f"[train] {cond} seed {seed}: NLL gsm8k {h['gsm8k']['nll']:.4f} alpaca "
                      f"{h['alpaca']['nll']:.4f}", flush=True)  # fmt: skip
                common.record_end_load(res["machine"])
                publish(res)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="default: 0 1 2 (eval, dev-fill), 0 1 (dev)",
    )
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--n-heldout", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-runs", type=int, default=None, help="stop after N new trainings")
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    ap.add_argument(
        "--only", nargs="+", default=None, metavar="CONDITION",
        help="train only these conditions (and --seeds) and merge them into the published results "
        "(the other runs are kept as published); for finishing runs on a machine without the run "
        "cache",
    )  # fmt: skip
    ap.add_argument(
        "--split", choices=tuple(SPLIT_SETUP), default="eval",
        help="eval: the reported comparison; dev: the token-pruning settings on the development "
        "pool (writes results/qtuning_outcome_dev.*); dev-fill: the fill rules there "
        "(results/qtuning_outcome_dev_fill.*); the defaults are chosen on the development pool",
    )  # fmt: skip
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    from benchmarks.qtuning_outcome_render import publish, render

    args.seeds = args.seeds or list(SPLIT_SETUP[args.split]["seeds"])
    if args.render_only:
        name = SPLIT_SETUP[args.split]["name"]
        res = json.loads((common.RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        publish(res)
        print(render(res, res.get("png")))
        return 0
    logging.basicConfig(level=logging.WARNING)
    res = run(args)
    print(render(res, res.get("png")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
