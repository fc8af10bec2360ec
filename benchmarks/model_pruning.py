"""Which calibration recipe should Wanda use, and does DSnoT help? (SmolLM2-135M-Instruct)

SmolLM2-135M-Instruct pruned to 50% and 60% unstructured and 2:4 with:

* magnitude (no data) and the dense model as references;
* Wanda, and Wanda + DSnoT mask refinement, from five calibration recipes over one mixed pool
  (C4 + Wikipedia + GSM8K train, with source labels): ``random``, ``kcenter`` on MiniLM
  embeddings, ``kcenter`` on the model's own activations, source-balanced random, and
  source-balanced ``kcenter`` on activations (optional: ``prototypes``, ``gsm8k`` only).

Perplexity on development slices (to choose the default recipe by Target 1's rule) and on the
fixed held-out slices (reported; see ``benchmarks/model_pruning_setup.py`` for the split). Every
recipe runs with the same seeds; comparisons are paired per seed against random calibration.
Each (recipe, seed) calibration set also gets a ``calibration_report`` against the development
slices, whose coverage is rank-correlated with the post-pruning perplexity. Every finished run
is cached as it finishes, so the script can be stopped and restarted.

    .venv/bin/python benchmarks/model_pruning.py                      # full run
    .venv/bin/python benchmarks/model_pruning.py --patterns 2:4 --seeds 0 --n-samples 4 \\
        --seq-len 64 --eval-tokens 256 --pool-c4 8 --pool-wiki 1 --n-gsm-pool 20 \\
        --output-dir /tmp/mp_smoke                                     # smoke run

Writes <output-dir>/model_pruning.{json,md,png} (default benchmarks/results, then rebuilds
benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.model_pruning_setup import (  # noqa: E402
    DEFAULT_RECIPES,
    DSNOT_VARIANTS,
    RECIPES,
    REFINES,
    SOURCES,
    Splits,
    load_splits,
    memoized_activations,
    model_fingerprint,
    parse_patterns,
    parse_recipes,
    pattern_spec,
)

RESULTS = HERE / "results"
logger = logging.getLogger("benchmarks.model_pruning")
#: the key under which the run cache keeps the machine info of the last invocation that ran cases
MACHINE_KEY = "__machine__"
ACT_KEY = "__activation_embeddings__"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--patterns",
        default="50%,60%,2:4",
        help="comma list: 50%%, 60%% (or 0.5, 0.6; 'unstructured' = 50%%), N:M",
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--recipes",
        "--selectors",
        dest="recipes",
        default=",".join(DEFAULT_RECIPES),
        help=f"calibration recipes (random always runs): {', '.join(RECIPES)}",
    )
    ap.add_argument(
        "--refines",
        default="none,dsnot",
        help=f"none (plain Wanda) and DSnoT variants: {', '.join(DSNOT_VARIANTS)}",
    )
    ap.add_argument("--n-samples", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--eval-tokens", type=int, default=2048, help="tokens per held-out set")
    ap.add_argument(
        "--dev-tokens", type=int, default=None, help="tokens per dev set (default: eval)"
    )
    ap.add_argument("--eval-seq-len", type=int, default=512)
    ap.add_argument("--pool-c4", type=int, default=240, help="C4 documents in the pool (<= 240)")
    ap.add_argument("--pool-wiki", type=int, default=24, help="wiki articles in the pool (<= 24)")
    ap.add_argument("--n-gsm-pool", type=int, default=1000)
    ap.add_argument(
        "--report-blocks", type=int, default=256, help="calibration-report reference blocks at most"
    )
    ap.add_argument("--name", default="model_pruning")
    ap.add_argument("--output-dir", type=Path, default=RESULTS)
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="write the results from the finished runs in the cache, run nothing",
    )
    common.add_render_only(ap, "<name>")
    args = ap.parse_args(argv)
    args.output_dir = args.output_dir.resolve()
    args.dev_tokens = args.dev_tokens or args.eval_tokens
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        out = json.loads((args.output_dir / f"{args.name}.json").read_text(encoding="utf-8"))
        render(out, args.name, args.output_dir)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("dataprune").setLevel(logging.WARNING)
    machine = common.machine_info(["torch", "transformers"])
    patterns = parse_patterns(args.patterns)
    seeds = [int(s) for s in args.seeds.split(",")]
    recipes = parse_recipes(args.recipes)
    refines = [r for r in REFINES if r in args.refines.split(",")]
    t_start = time.perf_counter()
    splits = load_splits(args.pool_c4, args.pool_wiki, args.n_gsm_pool)

    from dataprune.cache import cache_dir
    from dataprune.model_pruning.dsnot import DSnoTConfig
    from dataprune.model_pruning.perplexity import tokenize_eval_texts

    if args.report_only:
        from transformers import AutoTokenizer

        from dataprune.models import resolve_causal_lm

        model, tok = None, AutoTokenizer.from_pretrained(resolve_causal_lm().path)
    else:
        from dataprune.models import load_causal_lm

        # bf16 forwards as published (Wanda statistics and scores are float32)
        model, tok = load_causal_lm(dtype="bfloat16")

    def ids_of(texts: dict[str, list[str]], n: int) -> dict[str, Any]:
        return {k: tokenize_eval_texts(tok, v, max_tokens=n) for k, v in texts.items()}

    eval_ids, dev_ids = (
        ids_of(splits.heldout, args.eval_tokens),
        ids_of(splits.dev, args.dev_tokens),
    )
    config = {
        "model": "SmolLM2-135M-Instruct (bf16 forwards, float32 Wanda statistics/scores)",
        "n_samples": args.n_samples,
        "seq_len": args.seq_len,
        "chunking": "pack (each source packed separately)",
        "pool": {s: len(splits.pool[s]) for s in SOURCES},
        "split": splits.description,
        "eval_tokens": {k: len(v) for k, v in eval_ids.items()},
        "dev_tokens": {k: len(v) for k, v in dev_ids.items()},
        "eval_seq_len": args.eval_seq_len,
        "wanda": {"sequential": True, "comparison": "row", "batch_size": 8},
        "dsnot": DSnoTConfig().to_dict(),
        "magnitude": {"comparison": "layer"},
        "report": {"reference": "development slices", "max_reference_blocks": args.report_blocks},
        "recipe_options": {
            r: RECIPES[r].kwargs() | {"pool": RECIPES[r].pool, "scale": RECIPES[r].scale}
            for r in recipes
        },
        # the lists below only say which runs to do; every run is cached on its own
        "patterns": patterns,
        "seeds": seeds,
        "recipes": recipes,
        "refines": refines,
        "refine_options": {
            r: DSnoTConfig(**DSNOT_VARIANTS[r]).to_dict() for r in refines if r != "none"
        },
    }
    keyed = {
        k: v
        for k, v in config.items()
        # the split's wording is not keyed (its slices are fixed; pool sizes and token counts are)
        if k
        not in (
            "patterns",
            "seeds",
            "recipes",
            "refines",
            "recipe_options",
            "refine_options",
            "split",
        )
    }
    key_base = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    store = cache_dir("benchmarks")
    partial_path = store / f"{args.name}-{key_base}.partial.json"
    done: dict[str, Any] = json.loads(partial_path.read_text()) if partial_path.exists() else {}
    logger.info("resuming with %d finished entries from %s", len(done), partial_path)
    if args.report_only:
        if "dense" not in done:
            logger.error("no finished runs in %s", partial_path)
            return 1
        write_outputs(args, config, done, float("nan"))
        return 0
    cached = frozenset(done)
    ran = Runner(args, config, done, partial_path, store, machine, model, tok, splits)
    ran.run_all(eval_ids, dev_ids, patterns, seeds, recipes, refines)
    write_outputs(args, config, done, time.perf_counter() - t_start, cached)
    return 0


class Runner:
    """Runs (and caches) the dense evaluation, calibration sets, reports and prunes."""

    def __init__(
        self,
        args: argparse.Namespace,
        config: dict,
        done: dict[str, Any],
        partial_path: Path,
        store: Path,
        machine: dict,
        model: Any,
        tok: Any,
        splits: Splits,
    ) -> None:
        self.args, self.config, self.done, self.partial_path = args, config, done, partial_path
        self.store, self.machine, self.splits = store, machine, splits
        self.model, self.tok = model, tok
        self.ran_cases = False
        self.dense_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.dense_fp = model_fingerprint(model)
        self.calib: dict[tuple[str, int], Any] = {}
        self._encoder: Any = None

    def save(self) -> None:
        tmp = self.partial_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.done))
        tmp.replace(self.partial_path)

    def note_machine(self) -> None:
        """The machine info of the invocation that runs cases, kept beside the cached runs."""
        if not self.ran_cases:
            self.done[MACHINE_KEY] = self.machine
            self.ran_cases = True

    def restore_dense(self) -> None:
        import torch

        with torch.no_grad():
            self.model.load_state_dict(self.dense_state)

    def perplexities(self, ids: dict[str, Any]) -> dict[str, float]:
        from dataprune.model_pruning.perplexity import perplexity_of_ids

        seq = self.args.eval_seq_len
        return {
            k: perplexity_of_ids(self.model, v, seq_len=seq, batch_size=2).perplexity
            for k, v in ids.items()
        }

    def encoder(self) -> Any:
        if self._encoder is None:
            from dataprune.models import load_encoder

            self._encoder = load_encoder()
        return self._encoder

    def calibration(self, recipe: str, seed: int) -> Any:
        """The (recipe, seed) calibration set, built on the dense model (cached in memory);
        its build time, composition and calibration report are cached with the runs."""
        from dataprune.calibration import build_calibration_set, calibration_report

        if (recipe, seed) in self.calib:
            return self.calib[(recipe, seed)]
        a, r = self.args, RECIPES[recipe]
        self.restore_dense()
        if r.pool == "gsm8k":
            texts, sources = self.splits.pool["gsm8k"], None
        else:
            texts, sources = self.splits.mixed
        extra: dict[str, Any] = {}
        if r.space != "embeddings":  # a model space: the dense model embeds the candidates
            extra["model"] = self.model
        elif r.selector != "random":
            extra["encoder"] = self.encoder()
        load = common.load_1min()
        t0 = time.perf_counter()
        # MiniLM embeddings go to a fresh cache, so every build's time includes computing them
        with (
            tempfile.TemporaryDirectory() as fresh,
            memoized_activations(self.store, self.dense_fp) as act,
        ):
            if "encoder" in extra:
                extra["embedding_cache_dir"] = fresh
            c = build_calibration_set(
                texts,
                self.tok,
                n_samples=a.n_samples * r.scale,
                seq_len=a.seq_len,
                sources=sources,
                random_state=seed,
                **r.kwargs(),
                **extra,
            )
        build_s = time.perf_counter() - t0
        if act["computed_s"]:
            self.done.setdefault(ACT_KEY, []).append(
                {"time_s": act["computed_s"], "n_blocks": int(act["n_blocks"]), "load_avg_1m": load}
            )
        counts = c.provenance.get("source_counts") or {"gsm8k": c.n_samples}
        key = f"calib|{recipe}|{seed}"
        if key not in self.done:
            self.note_machine()
            self.done[key] = {
                "recipe": recipe,
                "seed": seed,
                "build_time_s": build_s,
                "activation_computed_s": act["computed_s"],
                "activation_reused_s": act["reused_s"],
                "n_candidates": c.provenance["n_candidates"],
                "minilm_fresh_cache": "encoder" in extra,
                "composition": {s: counts.get(s, 0) / c.n_samples for s in SOURCES},
                "load_avg_1m": round(load, 2),
            }
        rkey = f"report|{recipe}|{seed}"
        if rkey not in self.done:
            self.note_machine()
            ref = [self.tok.decode(v) for v in self.dev_ids.values()]
            t0 = time.perf_counter()
            rep = calibration_report(
                {recipe: c},
                self.model,
                self.tok,
                ref,
                seq_len=a.seq_len,
                max_reference_blocks=a.report_blocks,
            )
            row = rep.to_dict()["sets"][0]
            self.done[rkey] = {
                "recipe": recipe,
                "seed": seed,
                "time_s": time.perf_counter() - t0,
                "coverage": row["coverage"],
                "coverage_mean": row["coverage_mean"],
                "distinct_token_ratio": row["distinct_token_ratio"],
                "unigram_entropy_bits": row["unigram_entropy_bits"],
                "reference": rep.reference,
                "load_avg_1m": round(common.load_1min(), 2),
            }
        self.save()
        logger.info(
            "calibration %s seed %d: %.1f s, coverage %.4f",
            recipe,
            seed,
            build_s,
            self.done[rkey]["coverage_mean"],
        )
        self.calib[(recipe, seed)] = c
        return c

    def prune_one(self, pattern: str, recipe: str, seed: int | None, refine: str) -> None:
        from dataprune.model_pruning import MagnitudePruner, WandaPruner

        key = f"{pattern}|{recipe}|{seed}|{refine}"
        if key in self.done:
            return
        calib = None if recipe == "magnitude" else self.calibration(recipe, seed)
        self.note_machine()
        self.restore_dense()
        spec = pattern_spec(pattern)
        if recipe == "magnitude":
            report = MagnitudePruner(**spec).prune(self.model)
        else:
            pruner = WandaPruner(
                **spec,
                sequential=True,
                batch_size=8,
                refine=None if refine == "none" else "dsnot",
                refine_config=DSNOT_VARIANTS.get(refine),
            )
            report = pruner.prune(self.model, calib)
        rf = report.refine
        before = sum(x.sq_error_before for x in rf.layers) if rf else 0.0
        after = sum(x.sq_error_after for x in rf.layers) if rf else 0.0
        self.done[key] = {
            "pattern": pattern,
            "recipe": recipe,
            "seed": seed,
            "refine": refine,
            "ppl": self.perplexities(self.eval_ids),
            "dev_ppl": self.perplexities(self.dev_ids),
            "prune_time_s": report.time_s,
            "prune_cpu_s": report.cpu_time_s,
            "refine_time_s": rf.time_s if rf else None,
            "refine_swaps": rf.n_swaps if rf else None,
            "refine_sq_error_change": (after / before - 1) if rf and before else None,
            "sparsity": report.total_sparsity,
            "load_avg_1m": round(common.load_1min(), 2),
        }
        self.save()
        r = self.done[key]
        logger.info(
            "%s: held out %s, dev %s (prune %.1f s%s)",
            key,
            {k: round(v, 2) for k, v in r["ppl"].items()},
            {k: round(v, 2) for k, v in r["dev_ppl"].items()},
            report.time_s,
            f", refine {rf.time_s:.1f} s" if rf else "",
        )

    def run_all(
        self,
        eval_ids: dict[str, Any],
        dev_ids: dict[str, Any],
        patterns: list[str],
        seeds: list[int],
        recipes: list[str],
        refines: list[str],
    ) -> None:
        self.eval_ids, self.dev_ids = eval_ids, dev_ids
        if "dense" not in self.done:
            self.note_machine()
            self.done["dense"] = {
                "ppl": self.perplexities(eval_ids),
                "dev_ppl": self.perplexities(dev_ids),
            }
            self.save()
        logger.info("dense: %s", self.done["dense"])
        for pattern in patterns:
            self.prune_one(pattern, "magnitude", None, "none")
        for seed in seeds:  # seed first: an interrupted run has every condition for seed 0
            for pattern in patterns:
                for recipe in recipes:
                    for refine in refines:
                        self.prune_one(pattern, recipe, seed, refine)
        self.restore_dense()
        if self.ran_cases:
            common.record_end_load(self.machine)
            self.save()


def library_defaults() -> dict[str, Any]:
    """``build_calibration_set``'s current defaults for the options a recipe sets."""
    import inspect

    from dataprune.calibration import build_calibration_set

    sig = inspect.signature(build_calibration_set).parameters
    return {k: sig[k].default for k in ("selector", "space", "mix")}


def write_outputs(
    args: argparse.Namespace,
    config: dict,
    done: dict,
    wall: float,
    cached: frozenset[str] | None = None,
) -> None:
    """Write the results JSON and markdown; ``cached``: the run-cache keys that existed before
    this invocation (``None``: every run was loaded from the cache)."""
    from benchmarks.model_pruning_analysis import analyse

    # only what this command asked for (the cache may hold other recipes and refinements)
    recipes, refines = set(config["recipes"]) | {"magnitude"}, set(config["refines"])

    def listed(prefix: str) -> list[dict]:
        return [v for k, v in done.items() if k.startswith(prefix) and v["recipe"] in recipes]

    run_keys = [
        k
        for k, v in done.items()
        if k.count("|") == 3
        and v["recipe"] in recipes
        and v["refine"] in refines
        and v["pattern"] in config["patterns"]
    ]
    out = {
        "command": "python benchmarks/model_pruning.py " + " ".join(sys.argv[1:]),
        "assembled_from_cache": bool(args.report_only),
        "config": config,
        "dense": done["dense"],
        "runs": [done[k] for k in run_keys],
        # runs this invocation computed; the others were loaded from the run cache
        "runs_computed": sum(k not in cached for k in run_keys) if cached is not None else 0,
        "calibrations": listed("calib|"),
        "reports": listed("report|"),
        "activation_embeddings": done.get(ACT_KEY, []),
        "library_defaults": library_defaults(),
        "wall_time_s": wall,
        # machine_info of the last invocation that ran cases (None: not recorded)
        "machine": done.get(MACHINE_KEY),
    }
    out["analysis"] = analyse(out)  # for readers of the JSON; the markdown recomputes it
    args.output_dir.mkdir(parents=True, exist_ok=True)
    common.write_json(args.output_dir / f"{args.name}.json", out)
    render(out, args.name, args.output_dir)


def render(out: dict, name: str, out_dir: Path) -> None:
    """``<name>.png`` and ``<name>.md`` from the results JSON alone (then RESULTS.md when
    writing into benchmarks/results)."""
    from benchmarks.model_pruning_plot import plot
    from benchmarks.model_pruning_render import markdown

    png = out_dir / f"{name}.png"
    plot(out, png)
    shown = png.relative_to(REPO) if png.is_relative_to(REPO) else png
    md = markdown(out, str(shown), name=name)
    common.publish(name, md, out_dir=out_dir, rebuild=out_dir == RESULTS)


if __name__ == "__main__":
    raise SystemExit(main())
