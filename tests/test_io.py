from __future__ import annotations

import gzip
import json

import pytest

from dataprune.errors import DataPruneError, DataValidationError
from dataprune.io import (
    detect_format,
    load_records,
    validate_fields,
    write_records,
    write_rejects,
)

RECORDS = [
    {"text": "alpha beta", "label": "a", "n": 1},
    {"text": "gamma", "label": "b", "n": 2},
    {"text": "délta ünïcode", "label": "a", "n": 3},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv", ".jsonl.gz"])
def test_round_trip_every_format(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    write_records(RECORDS, path)
    rs = load_records(path)
    assert len(rs) == 3
    assert rs.column("text") == [r["text"] for r in RECORDS]
    assert rs.indices == [0, 1, 2]
    assert len(rs.content_hash) == 64
    # CSV keeps strings only
    expected_n = ["1", "2", "3"] if suffix == ".csv" else [1, 2, 3]
    assert rs.column("n") == expected_n


def test_in_memory_and_hf_dataset():
    import datasets

    rs = load_records(RECORDS)
    assert rs.format == "memory" and len(rs) == 3
    ds = datasets.Dataset.from_list(RECORDS)
    rs2 = load_records(ds)
    assert rs2.format == "hf" and rs2.column("label") == ["a", "b", "a"]


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n\n{"text": \n{"text": "x"}\n')
    with pytest.raises(DataValidationError) as e:
        load_records(p)
    assert e.value.line == 3
    assert (
        "bad.jsonl" in str(e.value)
        and "line 3" in str(e.value)
        and "malformed JSON" in str(e.value)
    )


def test_malformed_jsonl_skip_collects_rejects(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{"text": \n[1, 2]\n{"text": "x"}\n')
    rs = load_records(p, on_bad_record="skip")
    assert rs.column("text") == ["ok", "x"]
    assert [r.line for r in rs.rejects] == [2, 3]
    assert rs.indices == [0, 3]
    assert rs.n_input == 4
    out = write_rejects(rs.rejects, tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["line"] == 2


def test_non_object_jsonl_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\n"just a string"\n')
    with pytest.raises(DataValidationError, match="expected a JSON object, got str"):
        load_records(p)


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_dataset(tmp_path, content):
    p = tmp_path / "empty.jsonl"
    p.write_text(content)
    with pytest.raises(DataValidationError, match="empty"):
        load_records(p)


def test_json_must_be_list_of_objects(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('{"text": "a"}')
    with pytest.raises(DataValidationError, match="list of objects"):
        load_records(p)
    p.write_text('[{"text": "a"}, 3]')
    with pytest.raises(DataValidationError) as e:
        load_records(p)
    assert e.value.record == 1


def test_missing_field_lists_available_fields():
    rs = load_records(RECORDS)
    with pytest.raises(DataValidationError) as e:
        validate_fields(rs, text_fields=["txt"])
    assert e.value.field == "txt"
    assert "label, n, text" in str(e.value)


def test_field_missing_in_one_record_names_the_record(tmp_path):
    p = tmp_path / "d.jsonl"
    write_records([{"text": "a"}, {"other": "b"}, {"text": "c"}], p)
    rs = load_records(p)
    with pytest.raises(DataValidationError) as e:
        validate_fields(rs, text_fields=["text"])
    assert e.value.record == 1 and e.value.line == 2 and e.value.field == "text"


def test_non_string_text_and_bad_label():
    rs = load_records([{"text": "a", "y": 1}, {"text": ["x"], "y": 1}])
    with pytest.raises(DataValidationError, match="expected a string, got list") as e:
        validate_fields(rs, text_fields=["text"])
    assert e.value.record == 1
    rs = load_records([{"text": "a", "y": None}])
    with pytest.raises(DataValidationError, match="expected a label"):
        validate_fields(rs, text_fields=["text"], label_field="y")
    rs = load_records([{"text": "a", "y": 0.5}])
    with pytest.raises(DataValidationError, match="got float"):
        validate_fields(rs, text_fields=["text"], label_field="y")


def test_validate_skip_mode_keeps_good_records():
    rs = load_records([{"text": "a"}, {"text": 3}, {"text": "c"}])
    out = validate_fields(rs, text_fields=["text"], on_bad_record="skip")
    assert out.column("text") == ["a", "c"] and out.indices == [0, 2]
    assert len(out.rejects) == 1 and out.rejects[0].index == 1
    assert len(rs.records) == 3  # input object untouched


def test_validate_skip_everything_bad_is_an_error():
    rs = load_records([{"text": 1}, {"text": 2}])
    with pytest.raises(DataValidationError, match="no valid records"):
        validate_fields(rs, text_fields=["text"], on_bad_record="skip")


def test_empty_text_is_allowed_but_reported(caplog):
    rs = load_records([{"text": ""}, {"text": "b"}])
    with caplog.at_level("WARNING", logger="dataprune"):
        out = validate_fields(rs, text_fields=["text"])
    assert len(out) == 2
    assert "empty text" in caplog.text


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="file format"):
        detect_format(tmp_path / "data.txt")
    with pytest.raises(DataValidationError, match="no such file"):
        load_records(tmp_path / "nope.jsonl")


def test_hub_id_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataPruneError, match="hub dataset"):
        load_records("someone/some-dataset-that-does-not-exist")


def test_corrupt_gzip_and_parquet(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DataValidationError, match="cannot read"):
        load_records(p)
    q = tmp_path / "d.parquet"
    q.write_bytes(b"PAR1garbage")
    with pytest.raises(DataValidationError, match="parquet"):
        load_records(q)


def test_write_is_atomic_on_failure(tmp_path):
    p = tmp_path / "out.jsonl"
    write_records(RECORDS, p)
    before = p.read_bytes()

    def records():
        yield from RECORDS
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_records(records(), p)
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["out.jsonl"]


def test_gzip_jsonl_written_compressed(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    write_records(RECORDS, p)
    with gzip.open(p, "rt") as fh:
        assert json.loads(fh.readline())["text"] == "alpha beta"


def test_csv_rows_and_headers_are_checked(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text("text,label\na,x\nb,y,z\nc\n")
    with pytest.raises(DataValidationError, match=r"line 3: row has 3 cells, the header has 2"):
        load_records(extra)
    rs = load_records(extra, on_bad_record="skip")
    assert rs.records == [{"text": "a", "label": "x"}]
    assert [(r.index, r.line) for r in rs.rejects] == [(1, 3), (2, 4)]
    dup = tmp_path / "dup.csv"
    dup.write_text("text,label,text\na,b,c\n")
    with pytest.raises(DataValidationError, match=r"duplicate column name 'text'.*1 and 3"):
        load_records(dup)


def test_a_byte_order_mark_is_accepted(tmp_path):
    for name, body in [
        ("bom.jsonl", '{"text": "a"}\n{"text": "b"}\n'),
        ("bom.json", '[{"text": "a"}, {"text": "b"}]'),
        ("bom.csv", "text\na\nb\n"),
    ]:
        p = tmp_path / name
        p.write_bytes(b"\xef\xbb\xbf" + body.encode())
        assert load_records(p).records == [{"text": "a"}, {"text": "b"}], name


def test_stale_rejects_file_is_removed(tmp_path):
    from dataprune.io import Rejected, write_rejects

    out = tmp_path / "o.jsonl"
    path = write_rejects([Rejected("bad", index=0)], out)
    assert path is not None and path.exists()
    assert write_rejects([], out) is None and not path.exists()
