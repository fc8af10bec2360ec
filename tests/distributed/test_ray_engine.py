"""The Ray engine: same selection as the local engine, resumable shards after a killed worker."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from dataprune.distributed.clustered import ClusteredFacilityLocation, fit_with_engine  # noqa: E402
from dataprune.distributed.engines import RayEngine  # noqa: E402
from dataprune.distributed.shards import (  # noqa: E402
    ShardPipelineError,
    embed_shards,
    lm_score_shards,
    read_embeddings,
    read_shard_outputs,
    score_shards,
)
from dataprune.errors import DataValidationError  # noqa: E402
from dataprune.selection import Prototypes, SemDeDup  # noqa: E402

import fakes  # noqa: E402
import tiny_models  # noqa: E402
from fakes import HashingEncoder  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for mod in (fakes, tiny_models, sys.modules[__name__]):  # test helpers travel by value
        ray.cloudpickle.register_pickle_by_value(mod)
    yield RayEngine()
    if started:
        ray.shutdown()


def _data(n, dim=16, n_dup=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    X = np.concatenate([X, X[:n_dup] + 0.01 * rng.standard_normal((n_dup, dim)).astype(np.float32)])
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Prototypes(fraction=0.2, random_state=4),
        lambda: SemDeDup(fraction=0.2, random_state=4, eps=0.05),
        lambda: ClusteredFacilityLocation(fraction=0.2, random_state=4, n_clusters=12),
    ],
    ids=["prototypes", "semdedup", "cluster_facility_location"],
)
def test_ray_selection_equals_local(engine, make):
    # 66,000 rows: two assignment blocks, so block boundaries are exercised
    X = _data(65_700) if isinstance(make(), Prototypes) else _data(6_000)
    local = fit_with_engine(make(), X, engine="local")
    dist = fit_with_engine(make(), X, engine=engine)
    assert np.array_equal(local.selected_indices_, dist.selected_indices_)
    assert np.array_equal(local.scores_, dist.scores_)
    assert np.array_equal(local.labels_, dist.labels_)
    assert dist.engine_["engine"] == "ray" and local.engine_["engine"] == "local"


def test_select_api_ray_equals_local(engine, tmp_path):
    from dataprune.selection.api import select

    recs = [{"text": f"record {i % 150} about topic {i % 7}"} for i in range(400)]
    recs[5]["text"] = ""
    kw = {"method": "semdedup", "fraction": 0.25, "text_field": "text", "random_state": 1}
    a = select(recs, model=HashingEncoder(), **kw)
    b = select(
        recs,
        model=HashingEncoder(),
        engine="ray",
        engine_options={"work_dir": str(tmp_path), "shard_size": 128, "concurrency": 2},
        **kw,
    )
    assert np.array_equal(a.order, b.order) and np.array_equal(a.kept, b.kept)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.details["duplicate_groups"] == b.details["duplicate_groups"]
    assert b.params["engine"] == "ray" and b.models["engine"]["engine"] == "ray"
    with pytest.raises(DataValidationError, match="local engine only"):
        select(recs, model=HashingEncoder(), engine="ray", **{**kw, "method": "kcenter"})
    with pytest.raises(DataValidationError, match="unknown engine option"):
        select(recs, model=HashingEncoder(), engine="ray", engine_options={"gpus": 1}, **kw)


def test_curate_on_ray_equals_local(engine, tmp_path):
    from dataprune.curation import curate

    recs = [
        {"prompt": f"question {i % 90}?", "response": f"answer {i % 150} on topic {i % 7}"}
        for i in range(300)
    ]
    recipe = {"stages": ["exact_dedup", "semantic_dedup", {"select": {"method": "prototypes"}}]}
    kw = {
        "fraction": 0.2,
        "encoder": HashingEncoder(),
        "random_state": 2,
        "show_progress_bar": False,
    }
    a = curate(recs, recipe, **kw)
    b = curate(
        recs,
        recipe,
        engine="ray",
        engine_options={"work_dir": str(tmp_path), "shard_size": 128, "concurrency": 2},
        **kw,
    )
    assert list(a.status) == list(b.status) and list(a.reason) == list(b.reason)
    np.testing.assert_array_equal(a.kept_indices, b.kept_indices)
    assert a.funnel == b.funnel


def _n_words(records):
    return {"n_words": np.array([len(r["response"].split()) for r in records])}


def test_shard_pipelines_ray_equal_local(engine, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for s in range(3):
        recs = [
            {"prompt": f"what is {s} plus {r}", "response": "two plus two is four the answer"}
            for r in range(6)
        ]
        (d / f"s{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for name in ("local", "ray"):
        eng = engine if name == "ray" else "local"
        embed_shards(
            d, tmp_path / f"emb-{name}", text_field="prompt", model=HashingEncoder(), engine=eng
        )
        lm_score_shards(
            d,
            tmp_path / f"lm-{name}",
            prompt_field="prompt",
            response_field="response",
            model=tiny_models.tiny_causal_lm,
            engine=eng,
        )
        score_shards(d, tmp_path / f"len-{name}", _n_words, fields=["response"], engine=eng)
    assert np.array_equal(
        read_embeddings(tmp_path / "emb-local")[2], read_embeddings(tmp_path / "emb-ray")[2]
    )
    a, b = read_shard_outputs(tmp_path / "len-local"), read_shard_outputs(tmp_path / "len-ray")
    assert a.equals(b) and a.column("n_words").to_pylist() == [7] * 18
    a, b = read_shard_outputs(tmp_path / "lm-local"), read_shard_outputs(tmp_path / "lm-ray")
    for col in ("el2n", "nll", "ppl", "entropy", "n_tokens"):
        np.testing.assert_allclose(a.column(col).to_numpy(), b.column(col).to_numpy(), rtol=1e-6)


class DyingEncoder(HashingEncoder):
    """Kills its worker process (os._exit) on texts marked KILL, once (a marker file remembers);
    logs the shard of every batch it encodes."""

    def __init__(self, marker, log):
        super().__init__()
        self.marker, self.log = str(marker), str(log)

    def encode(self, texts, **kwargs):
        if any("KILL" in t for t in texts) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        with open(self.log, "a") as f:
            f.write(texts[0].split()[1] + "\n")
        return super().encode(texts, **kwargs)


def _kill_inputs(d, n_shards=4, kill=3):
    d.mkdir()
    texts = []
    for s in range(n_shards):
        recs = [f"shard {s} row {r}" + (" KILL" if s == kill else "") for r in range(10)]
        texts += recs
        (d / f"s{s}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in recs))
    return texts


def test_killed_worker_keeps_finished_shards_and_rerun_resumes(engine, tmp_path):
    from dataprune.embeddings import embed_texts

    texts = _kill_inputs(tmp_path / "in")
    marker, log, out = tmp_path / "marker", tmp_path / "log", tmp_path / "out"
    enc = DyingEncoder(marker, log)
    kw = {"text_field": "text", "model": enc, "engine": engine, "concurrency": 1}
    with pytest.raises(ShardPipelineError, match="rerun the same command to resume"):
        embed_shards(tmp_path / "in", out, max_retries=0, **kw)
    assert marker.exists()  # the worker really died
    done = sorted(p.name.split(".")[0] for p in out.glob("part-*.done.json"))
    assert done and "part-00003" not in done
    first = log.read_text().split()
    rerun = embed_shards(tmp_path / "in", out, max_retries=0, **kw)
    assert rerun.skipped == done
    assert sorted(p["key"] for p in rerun.processed) == sorted(
        f"part-{s:05d}" for s in range(4) if f"part-{s:05d}" not in done
    )
    again = log.read_text().split()[len(first) :]
    assert sorted(again) == sorted(str(s) for s in range(4) if f"part-{s:05d}" not in done)
    assert np.array_equal(
        read_embeddings(out)[2], embed_texts(texts, HashingEncoder(), cache=False)
    )


def test_killed_worker_is_restarted_within_a_run(engine, tmp_path):
    _kill_inputs(tmp_path / "in", kill=1)
    marker, log = tmp_path / "marker", tmp_path / "log"
    run = embed_shards(
        tmp_path / "in",
        tmp_path / "out",
        text_field="text",
        model=DyingEncoder(marker, log),
        engine=engine,
        concurrency=1,
        max_retries=2,
    )
    assert marker.exists() and run.n_rows == 40
    assert sorted(log.read_text().split()) == ["0", "1", "2", "3"]  # nothing encoded twice


def test_bad_shard_error_comes_back_as_a_validation_error(engine, tmp_path):
    _kill_inputs(tmp_path / "in")
    with pytest.raises(DataValidationError, match=r"s\d\.jsonl.*'body'"):
        embed_shards(
            tmp_path / "in",
            tmp_path / "out",
            text_field="body",
            model=HashingEncoder(),
            engine=engine,
        )


@pytest.mark.offline_models
@pytest.mark.slow
def test_cli_engine_ray_writes_the_same_selection_as_local_with_minilm(engine, tmp_path):
    """Real MiniLM embedded by Ray actors (one thread each) is bit-identical to in-process."""
    import pandas as pd
    import pyarrow.parquet as pq

    from dataprune.cli.main import main

    src = tmp_path / "sft.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {"prompt": f"How do I sort {i % 40} items?", "response": f"Use key {i % 9}."}
            )
            + "\n"
            for i in range(200)
        )
    )
    common = [
        "select",
        str(src),
        "-m",
        "semdedup",
        "--fraction",
        "0.3",
        "--prompt-field",
        "prompt",
        "--response-field",
        "response",
    ]
    assert main([*common, "-o", str(tmp_path / "local.jsonl")]) == 0
    work = tmp_path / "work"
    assert (
        main(
            [*common, "-o", str(tmp_path / "ray.jsonl"), "--engine", "ray", "--work-dir", str(work)]
        )
        == 0
    )
    assert (tmp_path / "local.jsonl").read_text() == (tmp_path / "ray.jsonl").read_text()
    a = pq.read_table(tmp_path / "local.jsonl.scores.parquet").to_pandas()
    b = pq.read_table(tmp_path / "ray.jsonl.scores.parquet").to_pandas()
    pd.testing.assert_frame_equal(a, b)
    manifest = json.loads((tmp_path / "ray.jsonl.manifest.json").read_text())
    assert manifest["parameters"]["engine"] == "ray"
    assert len(list(work.glob("*/*/embeddings/part-*.done.json"))) == 1


def test_select_el2n_scores_sft_records_on_ray(engine, tmp_path):
    from dataprune.selection.api import select

    recs = [
        {
            "prompt": f"what is {i % 5} plus two",
            "response": " ".join(["the answer is"] * (1 + i % 4)),
        }
        for i in range(24)
    ]
    lm = tiny_models.tiny_causal_lm()
    kw = {"method": "el2n", "n_samples": 8, "prompt_field": "prompt", "response_field": "response"}
    a = select(recs, model=lm, **kw)
    b = select(
        recs,
        model=lm,
        engine=engine,
        engine_options={"work_dir": str(tmp_path), "shard_size": 10},
        **kw,
    )
    np.testing.assert_allclose(a.columns["el2n"], b.columns["el2n"], rtol=1e-6)
    np.testing.assert_allclose(a.columns["nll"], b.columns["nll"], rtol=1e-6)
    assert "ppl" in b.columns and "entropy" in b.columns
    assert np.array_equal(np.sort(a.indices), np.sort(b.indices))
    assert len(list(tmp_path.glob("*/*/scores/part-*.done.json"))) == 3
    with pytest.raises(DataValidationError, match="'grand' runs on the local engine only"):
        select(recs, model=lm, engine=engine, **{**kw, "method": "ccs", "score": "grand"})
    with pytest.raises(DataValidationError, match="method 'grand' runs on the local engine"):
        select(recs, model=lm, engine=engine, **{**kw, "method": "grand"})
