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

import copy
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data"


def main() -> int:
    import importlib.util

    if importlib.util.find_spec("llmcompressor") is None:
        print("llmcompressor is not importable; see the module docstring", file=sys.stderr)
        return 1
    import llmcompressor
    import transformers

    from benchmarks.make_results import write_results_md
    from dataprune.atomic import atomic_write, atomic_write_json
    from dataprune.calibration import build_calibration_set
    from dataprune.model_pruning import LLMCompressorPruner, WandaPruner
    from dataprune.models import load_causal_lm

    model, tok = load_causal_lm(dtype="float32")
    with open(DATA / "lm_text" / "c4_demo.jsonl", encoding="utf-8") as fh:
        c4 = [json.loads(line)["text"] for line in fh][:40]
    calib = build_calibration_set(c4, tok, n_samples=4, seq_len=64, random_state=0)
    out = {
        "command": "PYTHONPATH=<llmcompressor target> python benchmarks/model_pruning_llmc_parity.py",
        "versions": {
            "llmcompressor": llmcompressor.__version__,
            "transformers": transformers.__version__,
        },
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
    res = HERE / "results"
    atomic_write_json(res / "model_pruning_llmc_parity.json", out)
    lines = [
        "## Model pruning: built-in Wanda vs llm-compressor (parity check)",
        "",
        f"`{out['command']}` (llmcompressor {out['versions']['llmcompressor']}, transformers "
        f"{out['versions']['transformers']} in an out-of-tree target folder: llmcompressor cannot be "
        "installed beside this project's transformers, see the script's docstring). "
        "SmolLM2-135M-Instruct in float32, both sequential (block by block, pruned outputs "
        f"propagated), the same CalibrationSet of {calib.n_samples} x {calib.seq_len} C4 tokens. "
        "Shared 2-core CPU with other jobs running: times are indicative only.",
        "",
        "| pattern | mask agreement | first block with any difference | differing entries, blocks 0-9 / 10-19 / 20-29 | time built-in / llm-compressor (s) |",
        "|---|---:|---:|---|---:|",
    ]
    for pattern, r in out["patterns"].items():
        pb = r["differing_entries_per_block"]
        thirds = " / ".join(
            str(sum(pb.get(b, 0) for b in range(lo, lo + 10))) for lo in (0, 10, 20)
        )
        lines.append(
            f"| {pattern} | {100 * r['mask_agreement']:.3f}% | {r['first_block_with_a_difference']} "
            f"| {thirds} | {r['time_builtin_s']:.0f} / {r['time_llmcompressor_s']:.0f} |"
        )
    lines += [
        "",
        "The first blocks agree exactly (as do all blocks of the tiny Llama in "
        "`tests/model_pruning/test_llmcompressor_adapter.py`); later blocks drift apart by a growing "
        "number of entries, the signature of float rounding differences in the propagated hidden "
        "states (llm-compressor runs torch.fx-traced subgraphs) flipping near-tied scores, not of a "
        "different rule.",
    ]
    with atomic_write(res / "model_pruning_llmc_parity.md") as fh:
        fh.write("\n".join(lines) + "\n")
    write_results_md()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
