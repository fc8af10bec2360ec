"""Resumable shard pipelines on the local engine: outputs, resume, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataprune.distributed.shards import (
    embed_shards,
    embed_texts_distributed,
    list_shards,
    lm_score_shards,
    read_embeddings,
    read_shard_outputs,
    score_shards,
)
from dataprune.embeddings import embed_texts
from dataprune.errors import DataValidationError

from fakes import HashingEncoder
from tiny_models import tiny_causal_lm


def _write_shards(d, n_shards=3, rows=12):
    d.mkdir(parents=True, exist_ok=True)
    texts = []
    for s in range(n_shards):
        recs = [
            {"text": f"shard {s} record {r} the cat sat", "uid": f"{s}-{r}"} for r in range(rows)
        ]
        texts += [r["text"] for r in recs]
        if s % 2 == 0:
            (d / f"s{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        else:
            pq.write_table(pa.Table.from_pylist(recs), d / f"s{s}.parquet")
    return texts


class CountingEncoder(HashingEncoder):
    """Logs every shard it encodes (first word pair of the first text) to a file."""

    def __init__(self, log):
        super().__init__()
        self.log = str(log)

    def encode(self, texts, **kwargs):
        with open(self.log, "a") as f:
            f.write(" ".join(texts[0].split()[:2]) + "\n")
        return super().encode(texts, **kwargs)


def test_embed_shards_match_in_process_embeddings_and_keep_ids(tmp_path):
    texts = _write_shards(tmp_path / "in")
    run = embed_shards(
        tmp_path / "in", tmp_path / "out", text_field="text", model=HashingEncoder(), id_field="uid"
    )
    assert run.n_shards == 3 and run.n_rows == 36 and not run.skipped
    shard, row, X = read_embeddings(tmp_path / "out")
    assert np.array_equal(X, embed_texts(texts, HashingEncoder(), cache=False))
    assert shard.tolist() == [s for s in range(3) for _ in range(12)]
    assert row.tolist() == list(range(12)) * 3
    t = read_shard_outputs(tmp_path / "out", columns=["id"])
    assert t.column("id").to_pylist() == [f"{s}-{r}" for s in range(3) for r in range(12)]
    _, _, M = read_embeddings(tmp_path / "out", memmap_path=tmp_path / "e.npy")
    assert isinstance(M, np.memmap) and np.array_equal(np.asarray(M), X)


def test_rerun_skips_finished_shards_and_redoes_changed_ones(tmp_path):
    _write_shards(tmp_path / "in")
    log = tmp_path / "log"
    kw = {"text_field": "text", "model": CountingEncoder(log)}
    embed_shards(tmp_path / "in", tmp_path / "out", **kw)
    assert log.read_text().split("\n")[:-1] == ["shard 0", "shard 1", "shard 2"]
    again = embed_shards(tmp_path / "in", tmp_path / "out", **kw)
    assert again.processed == [] and again.skipped == ["part-00000", "part-00001", "part-00002"]
    # an unfinished shard (output but no done record) and a changed input are recomputed
    (tmp_path / "out" / "part-00000.done.json").unlink()
    p = tmp_path / "in" / "s2.jsonl"
    p.write_text(p.read_text().replace("shard 2 record 0", "shard 2 record zero"))
    third = embed_shards(tmp_path / "in", tmp_path / "out", **kw)
    assert sorted(x["key"] for x in third.processed) == ["part-00000", "part-00002"]
    assert third.skipped == ["part-00001"]


def test_other_configuration_is_refused_unless_overwrite(tmp_path):
    _write_shards(tmp_path / "in", n_shards=1)
    embed_shards(tmp_path / "in", tmp_path / "out", text_field="text", model=HashingEncoder())
    with pytest.raises(DataValidationError, match="another pipeline configuration"):
        embed_shards(tmp_path / "in", tmp_path / "out", text_field="text", model=HashingEncoder(8))
    run = embed_shards(
        tmp_path / "in",
        tmp_path / "out",
        text_field="text",
        model=HashingEncoder(8),
        overwrite=True,
    )
    assert run.n_rows == 12 and read_embeddings(tmp_path / "out")[2].shape == (12, 8)


def test_bad_inputs_name_the_shard_and_field(tmp_path):
    _write_shards(tmp_path / "in", n_shards=1)
    with pytest.raises(DataValidationError, match=r"s0\.jsonl.*'body'"):
        embed_shards(tmp_path / "in", tmp_path / "o1", text_field="body", model=HashingEncoder())
    with pytest.raises(DataValidationError, match="no id field 'key'"):
        embed_shards(
            tmp_path / "in",
            tmp_path / "o2",
            text_field="text",
            id_field="key",
            model=HashingEncoder(),
        )
    (tmp_path / "in" / "bad.jsonl").write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(DataValidationError, match=r"bad\.jsonl.*line 2"):
        embed_shards(tmp_path / "in", tmp_path / "o3", text_field="text", model=HashingEncoder())
    # skipping bad records keeps the positions of the good ones
    run = embed_shards(
        tmp_path / "in",
        tmp_path / "o4",
        text_field="text",
        model=HashingEncoder(),
        on_bad_record="skip",
    )
    assert run.processed[0]["n_rejected"] == 1
    with pytest.raises(DataValidationError, match="no input shards"):
        list_shards(tmp_path / "nothing-*.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataValidationError, match="not a supported format"):
        list_shards([tmp_path / "x.txt"])
    with pytest.raises(DataValidationError, match="exactly one"):
        embed_shards(tmp_path / "in", tmp_path / "o5", model=HashingEncoder())
    with pytest.raises(DataValidationError, match="not a shard pipeline"):
        read_shard_outputs(tmp_path)


def test_embed_texts_distributed_local_equals_embed_texts(tmp_path, caplog):
    texts = [f"text number {i}" for i in range(50)]
    X = embed_texts_distributed(
        texts, HashingEncoder(), engine="local", work_dir=tmp_path, shard_size=16, chunk_size=8
    )
    assert np.array_equal(np.asarray(X), embed_texts(texts, HashingEncoder(), cache=False))
    assert len(list(tmp_path.glob("*/*/embeddings/part-*.done.json"))) == 4
    with caplog.at_level("WARNING"):
        embed_texts_distributed(
            texts, HashingEncoder(), engine="local", work_dir=tmp_path, shard_size=10
        )
    assert "not a multiple of chunk_size" in caplog.text
    with pytest.raises(DataValidationError, match="must be >= 1"):
        embed_texts_distributed(texts, HashingEncoder(), engine="local", shard_size=0)


def test_lm_score_shards_equal_in_process_scores(tmp_path):
    from dataprune.lm_scoring import score_sft
    from dataprune.scores.lm import lm_scores

    d = tmp_path / "in"
    d.mkdir()
    recs = [
        {"prompt": "what is two plus two", "response": "two plus two is four"},
        {"prompt": "hello world", "response": "the cat sat on the mat"},
        {"prompt": "a dog", "response": "   "},
        {"prompt": "the sea", "response": "the sea is blue and wide"},
    ]
    (d / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[:2]))
    (d / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[2:]))
    run = lm_score_shards(
        d, tmp_path / "out", prompt_field="prompt", response_field="response", model=tiny_causal_lm
    )
    assert run.n_rows == 4
    t = read_shard_outputs(tmp_path / "out")
    model, tok = tiny_causal_lm()
    ok = [recs[i] for i in (0, 1, 3)]
    ref = lm_scores(model, tok, [r["prompt"] for r in ok], [r["response"] for r in ok])
    ts = score_sft(model, tok, [r["prompt"] for r in ok], [r["response"] for r in ok])
    el2n = np.array(t.column("el2n").to_pylist())
    assert np.isnan(el2n[2]) and t.column("n_tokens").to_pylist()[2] == 0
    np.testing.assert_allclose(el2n[[0, 1, 3]], ref.el2n, rtol=1e-6)
    np.testing.assert_allclose(np.array(t.column("nll").to_pylist())[[0, 1, 3]], ref.nll, rtol=1e-6)
    ppl = np.array(t.column("ppl").to_pylist())[[0, 1, 3]]
    np.testing.assert_allclose(ppl, ts.perplexity(), rtol=1e-6)
    ent = np.array(t.column("entropy").to_pylist())[[0, 1, 3]]
    np.testing.assert_allclose(ent, ts.mean_entropy("response"), rtol=1e-6)
    with pytest.raises(DataValidationError, match="'answer'"):
        lm_score_shards(
            d, tmp_path / "o2", prompt_field="prompt", response_field="answer", model=tiny_causal_lm
        )


def _lengths(records):
    return {"n_words": np.array([len(r["response"].split()) for r in records])}


def _make_scorer():
    return _lengths


def test_score_shards_runs_any_per_record_score(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    recs = [{"response": "a b c", "n": 1}, {"response": "d", "n": 2}, {"response": "", "n": 3}]
    (d / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = score_shards(d, tmp_path / "o1", _lengths, fields=["response"])
    assert run.n_rows == 3
    assert read_shard_outputs(tmp_path / "o1").column("n_words").to_pylist() == [3, 1, 0]
    run = score_shards(d, tmp_path / "o2", _make_scorer, factory=True, fields=["response", "n"])
    assert read_shard_outputs(tmp_path / "o2").column("n_words").to_pylist() == [3, 1, 0]
    with pytest.raises(DataValidationError, match=r"a\.jsonl.*record 0.*no field 'prompt'"):
        score_shards(d, tmp_path / "o3", _lengths, fields=["prompt"])
    with pytest.raises(DataValidationError, match="one per record"):
        score_shards(d, tmp_path / "o4", lambda rs: {"x": [1]}, fields=["response"], name="bad")
