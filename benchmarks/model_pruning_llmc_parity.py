"""Built-in sequential Wanda vs llm-compressor's WandaPruningModifier on SmolLM2-135M (float32).

Needs ``llmcompressor`` importable. It cannot be installed into this project's environment
without replacing transformers (every release pins ``transformers<=5.17``), so
``scripts/setup.sh`` installs it, with the transformers and huggingface_hub it pins, into an
out-of-tree target folder that is put in front of the path only for this script and the adapter
tests:

    .venv/bin/python -m pip install --no-deps --target .venv/llmc-site llmcompressor==0.14.0.1 \\
        compressed-tensors==0.19.0 transformers==5.17.0 huggingface_hub==1.33.0 loguru==0.7.3
    PYTHONPATH=.venv/llmc-site .venv/bin/python benchmarks/model_pruning_llmc_parity.py

Both prune the same copy of the model from the same CalibrationSet (4 x 64 tokens of C4); the
script counts, per decoder block, the mask entries where the two disagree.
Writes benchmarks/results/model_pruning_llmc_parity.{json,md} and rebuilds RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402

NAME = "model_pruning_llmc_parity"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    if args.render_only:
        print(common.render_from_json(NAME, render_md))
        return 0
    import importlib.util

    if importlib.util.find_spec("llmcompressor") is None:
        print("llmcompressor is not importable; see the module docstring", file=sys.stderr)
        return 1
    import llmcompressor
    import transformers

    from dataprune.calibration import build_calibration_set
    from dataprune.model_pruning import LLMCompressorPruner, WandaPruner
    from dataprune.models import load_causal_lm

    model, tok = load_causal_lm(dtype="float32")
    c4 = [r["text"] for r in common.read_jsonl(common.SHARED_DATA / "lm_text" / "c4_demo.jsonl")][
        :40
    ]
    calib = build_calibration_set(c4, tok, n_samples=4, seq_len=64, random_state=0)
    out = {
        "command": "PYTHONPATH=<llmcompressor target> python benchmarks/model_pruning_llmc_parity.py",
        "versions": {
            "llmcompressor": llmcompressor.__version__,
            "transformers": transformers.__version__,
        },
        "machine": common.machine_info(["torch"]),
        "calibration": {"n_samples": calib.n_samples, "seq_len": calib.seq_len},
        "patterns": {},
    }
    for pattern, sparsity in (("unstructured", 0.5), ("2:4", None)):
        ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
        kw = {"sparsity": sparsity, "pattern": None if sparsity else pattern}
        r_ours = WandaPruner(**kw, sequential=True, batch_size=1).prune(ours, calib)
        t0 = time.perf_counter()
        r_theirs = LLMCompressorPruner(method="wanda", **kw).prune(theirs, calib)
        t_theirs = time.perf_counter() - t0
        sa, sb = ours.state_dict(), theirs.state_dict()
        per_block: dict[int, int] = {}
        total = differ = 0
        for k in sa:
            if sa[k].ndim == 2 and ".layers." in k:
                d = int(((sa[k] == 0) != (sb[k] == 0)).sum())
                b = int(k.split(".layers.")[1].split(".")[0])
                per_block[b] = per_block.get(b, 0) + d
                differ += d
                total += sa[k].numel()
        first = next((b for b, d in sorted(per_block.items()) if d), None)
        out["patterns"][pattern] = {
            "mask_agreement": 1 - differ / total,
            "differing_entries_per_block": per_block,
            "first_block_with_a_difference": first,
            "sparsity_builtin": r_ours.total_sparsity,
            "sparsity_llmcompressor": r_theirs.total_sparsity,
            "time_builtin_s": r_ours.time_s,
            "time_llmcompressor_s": t_theirs,
        }
        print(pattern, out["patterns"][pattern])
    md = render_md(out)
    common.publish(NAME, md, out)
    print(md)
    return 0


def render_md(out: dict) -> str:
    """The markdown section, computed from the results JSON only."""
    cal = out["calibration"]
    where = common.machine_sentence(out.get("machine"))
    lines = [
        "## Model pruning: built-in Wanda vs llm-compressor (parity check)",
        "",
        f"`{out['command']}` (llmcompressor {out['versions']['llmcompressor']}, transformers "
        f"{out['versions']['transformers']} in an out-of-tree target folder: llmcompressor cannot be "
        "installed beside this project's transformers, see the script's docstring). "
        "SmolLM2-135M-Instruct in float32, both sequential (block by block, pruned outputs "
        f"propagated), the same CalibrationSet of {cal['n_samples']} x {cal['seq_len']} C4 tokens. "
        f"{where} Times are from one run of each.",
        "",
        "| pattern | mask agreement | first block with any difference | differing entries, blocks 0-9 / 10-19 / 20-29 | time built-in / llm-compressor (s) |",
        "|---|---:|---:|---|---:|",
    ]
    for pattern, r in out["patterns"].items():
        pb = {int(b): d for b, d in r["differing_entries_per_block"].items()}
        thirds = " / ".join(
            str(sum(pb.get(b, 0) for b in range(lo, lo + 10))) for lo in (0, 10, 20)
        )
        lines.append(
            f"| {pattern} | {100 * r['mask_agreement']:.3f}% | {r['first_block_with_a_difference']} "
            f"| {thirds} | {r['time_builtin_s']:.0f} / {r['time_llmcompressor_s']:.0f} |"
        )
    lines += ["", *(_reading(p, r) for p, r in out["patterns"].items())]
    return "\n".join(lines) + "\n"


def _reading(pattern: str, r: dict) -> str:
    """Per pattern: which blocks agree exactly, how the differences run across blocks."""
    from scipy import stats

    pb = sorted((int(b), d) for b, d in r["differing_entries_per_block"].items())
    blocks, counts = [b for b, _ in pb], [d for _, d in pb]
    zero = [b for b, d in pb if d == 0]
    first = r["first_block_with_a_difference"]
    sp = (
        f"total sparsity {r['sparsity_builtin']:.6f} built-in vs "
        f"{r['sparsity_llmcompressor']:.6f} llm-compressor"
        + (" (equal)" if r["sparsity_builtin"] == r["sparsity_llmcompressor"] else " (DIFFERENT)")
    )
    if first is None:
        return f"- {pattern}: all {len(blocks)} blocks have identical masks; {sp}."
    lead = (
        f"blocks {blocks[0]}-{first - 1} have identical masks"
        if first > blocks[0]
        else f"block {blocks[0]} already differs"
    )
    after = [(b, d) for b, d in pb if b >= first]
    steps = list(itertools.pairwise(after))
    rising = sum(d1 >= d0 for (_, d0), (_, d1) in steps)
    rho = stats.spearmanr(blocks, counts).statistic
    return (
        f"- {pattern}: {lead} ({len(zero)} of {len(blocks)} blocks without any difference); "
        f"from block {first} on, the per-block count of differing entries goes from "
        f"{after[0][1]:,} to {after[-1][1]:,} (block {after[-1][0]}), is at least the previous "
        f"block's in {rising} of {len(steps)} steps, Spearman correlation with the block index "
        f"{rho:.2f}; {sp}."
    )


if __name__ == "__main__":
    raise SystemExit(main())
