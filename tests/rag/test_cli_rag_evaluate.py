from __future__ import annotations

import json

import pytest

from dataprune.cli.main import main

pytestmark = pytest.mark.usefixtures("restore_logging")


ROWS = [
    {"query": "where do zebras live?", "text": "The zebra lives in Africa. Paris is in France.",
     "evidence": ["lives in Africa"]},
    {"query": "where do zebras live?", "text": "Warsaw is old. The Vistula flows through it.",
     "evidence": []},
    {"query": "what is a zebra like?", "text": "Bananas are yellow. Zebras have stripes. Cars.",
     "evidence": [[20, 39]]},
]  # fmt: skip


def _write(tmp_path, rows):
    src = tmp_path / "labelled.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return src


def test_evaluate_prints_the_comparison_and_writes_strict_json(tmp_path, tiny_ckpt, capsys):
    src, out = _write(tmp_path, ROWS), tmp_path / "report.json"
    argv = ["rag", "evaluate", "-i", str(src), "--model", str(tiny_ckpt), "--threshold", "0",
            "--baselines", "bm25", "--n-boot", "200", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 passages for 2 queries; 2 hold evidence" in text
    assert "keeps 100.0% of the evidence sentences" in text and "bm25" in text
    rep = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert rep["report"]["threshold"] == 0.0 and rep["input"]["n_input"] == 3
    assert rep["parameters"]["baselines"] == ["bm25"]
    assert rep["parameters"]["passage_weight"] == rep["report"]["passage_weight"] == 0.0
    assert main([*argv, "--passage-weight", "2"]) == 0
    assert "passage weight 2" in capsys.readouterr().out
    assert json.loads(out.read_text())["report"]["passage_weight"] == 2.0
    before = src.read_bytes()
    assert main(argv[:-2]) == 0  # without --output: prints only
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    "change, message",
    [
        ({"evidence": ["stripes of a tiger"]}, "record 2, field 'evidence': evidence 'stripes of"),
        ({"evidence": "Zebras"}, "record 2, field 'evidence': expected a list"),
        (None, "record 2, field 'evidence': missing field"),
    ],
)
def test_bad_evidence_exits_2_with_one_line(tmp_path, tiny_ckpt, capsys, change, message):
    rows = [dict(r) for r in ROWS]
    if change is None:
        del rows[2]["evidence"]
    else:
        rows[2].update(change)
    src, out = _write(tmp_path, rows), tmp_path / "report.json"
    argv = ["rag", "evaluate", "-i", str(src), "--model", str(tiny_ckpt), "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unknown_baseline_lists_the_valid_ones(tmp_path, tiny_ckpt, capsys):
    src = _write(tmp_path, ROWS)
    argv = ["rag", "evaluate", "-i", str(src), "--model", str(tiny_ckpt), "--baselines", "tfidf"]
    assert main(argv) == 2
    assert "valid: bm25, embedding" in capsys.readouterr().err


def test_skipped_records_are_kept_next_to_the_report(tmp_path, tiny_ckpt, capsys):
    rows = [*ROWS, {"query": "q?", "text": 7, "evidence": []}, {"query": "q?", "evidence": []}]
    src, out = _write(tmp_path, rows), tmp_path / "report.json"
    argv = ["rag", "evaluate", "-i", str(src), "--model", str(tiny_ckpt), "--baselines", "bm25",
            "--n-boot", "200", "--on-bad-record", "skip"]  # fmt: skip
    assert main([*argv, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"skipped 2 bad records (details in {out}.rejects.jsonl)" in text
    rejected = [
        json.loads(x) for x in (tmp_path / "report.json.rejects.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in rejected] == [4, 5]
    assert json.loads(out.read_text())["input"]["n_rejected"] == 2
    assert main(argv) == 0  # without --output the count is still printed
    assert "skipped 2 bad records (give --output to keep them" in capsys.readouterr().out
