from __future__ import annotations

import json
import logging

import pytest

from dataprune.errors import UnknownOptionError
from dataprune.example_data import (
    EXAMPLE_DATASETS,
    DataNotAvailableError,
    load_example_data,
    squad_articles_from_rows,
)

GSM = [{"question": "1 + 1?", "answer": "2\n#### 2"}, {"question": "2 + 2?", "answer": "4\n#### 4"}]


@pytest.fixture()
def local_root(tmp_path, monkeypatch):
    """A folder of local copies; the hub caches point at an empty folder (nothing cached)."""
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM))
    (tmp_path / "lm_text").mkdir()
    (tmp_path / "lm_text" / "wiki_demo.txt").write_text("first article\n\nsecond article\n")
    return tmp_path


def test_offline_falls_back_to_the_local_copy_and_says_so(local_root, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="dataprune.example_data"):
        data = load_example_data("gsm8k", split="train", local_root=local_root)
    assert data.records == GSM
    assert data.source == "local" and data.origin == str(local_root / "gsm8k" / "train.jsonl")
    assert "HF_HUB_OFFLINE" in data.reason and "openai/gsm8k" in data.reason
    line = data.describe()
    assert (
        line.startswith("gsm8k[train]: 2 records from the local copy ") and "HF_HUB_OFFLINE" in line
    )
    assert "using the local copy" in caplog.text


def test_offline_url_dataset_reads_the_local_text_file_line_by_line(local_root, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = load_example_data("wiki_demo", local_root=local_root)
    assert data.source == "local"
    assert [r["text"] for r in data.records] == ["first article", "", "second article"]


def test_offline_without_local_copy_raises(local_root, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotAvailableError, match="no local copy"):
        load_example_data("gsm8k", split="test", local_root=local_root)


def test_unknown_name_or_split_lists_the_valid_ones():
    with pytest.raises(UnknownOptionError) as info:
        load_example_data("no-such-data")
    for name in EXAMPLE_DATASETS.names():
        assert name in str(info.value)
    assert {"gsm8k", "squad_v2", "c4_demo", "wiki_demo"} <= set(EXAMPLE_DATASETS.names())
    with pytest.raises(UnknownOptionError, match="valid: train, test"):
        load_example_data("gsm8k", split="dev")


def test_the_hub_is_used_when_it_answers(local_root, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_list(GSM)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_example_data("gsm8k", split="train", local_root=local_root)
    assert calls == [(("openai/gsm8k", "main"), {"split": "train"})]
    assert data.source == "hub" and data.reason is None and data.records == GSM
    assert "from the Hugging Face Hub: openai/gsm8k" in data.describe()


def test_other_errors_are_not_swallowed(local_root, monkeypatch):
    import datasets

    def broken(*args, **kwargs):
        raise ValueError("malformed")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.raises(ValueError, match="malformed"):
        load_example_data("gsm8k", split="train", local_root=local_root)


def test_squad_rows_are_regrouped_into_articles():
    def row(qid, title, context, answers=(), start=0):
        texts = list(answers)
        starts = [start] * len(texts)
        return {
            "id": qid,
            "title": title,
            "context": context,
            "question": "q" + qid,
            "answers": {"text": texts, "answer_start": starts},
        }

    rows = [
        row("a", "T", "C1", ["x"]),
        row("b", "T", "C1"),
        row("c", "T", "C2", ["y"], 3),
        row("d", "U", "C3", ["z"], 1),
    ]
    data = squad_articles_from_rows(rows)
    assert [a["title"] for a in data] == ["T", "U"]
    assert [p["context"] for p in data[0]["paragraphs"]] == ["C1", "C2"]
    qas = data[0]["paragraphs"][0]["qas"]
    assert qas[0] == {
        "id": "a",
        "question": "qa",
        "is_impossible": False,
        "answers": [{"text": "x", "answer_start": 0}],
    }
    assert qas[1]["is_impossible"] and qas[1]["answers"] == []
