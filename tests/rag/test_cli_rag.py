from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataprune.cli.main import main

pytestmark = pytest.mark.usefixtures("restore_logging")


def _passages(tmp_path):
    src = tmp_path / "passages.jsonl"
    rows = [
        {"id": 1, "text": "The zebra lives in Africa. Paris is the capital of France."},
        {"id": 2, "text": "Warsaw was founded in the 13th century. It rained all day."},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return src


def test_prune_writes_records_and_manifest(tmp_path, tiny_ckpt, capsys):
    src = _passages(tmp_path)
    out = tmp_path / "out.jsonl"
    rc = main(
        [
            "rag",
            "prune",
            "--query",
            "Where does the zebra live?",
            "--input",
            str(src),
            "--output",
            str(out),
            "--model",
            str(tiny_ckpt),
            "--threshold",
            "0",
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["pruned_text"] == rows[0]["text"]
    assert {
        "kept_sentences",
        "sentence_scores",
        "passage_score",
        "compression_chars",
        "compression_tokens",
    } <= set(rows[0])
    man = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert man["command"] == "dataprune rag prune" and man["counts"]["n_output"] == 2
    assert "wrote" in capsys.readouterr().out
    rc = main(
        [
            "rag",
            "prune",
            "--query",
            "q",
            "--input",
            str(src),
            "--output",
            str(out),
            "--model",
            str(tiny_ckpt),
            "--threshold",
            "1",
            "--drop-empty",
        ]
    )
    assert rc == 0 and out.read_text() == ""


def test_prune_with_per_record_queries(tmp_path, tiny_ckpt):
    src = tmp_path / "p.jsonl"
    src.write_text(
        json.dumps({"q": "zebra?", "text": "A cat sat."})
        + "\n"
        + json.dumps({"q": "Warsaw?", "text": "It rained."})
        + "\n"
    )
    out = tmp_path / "o.jsonl"
    assert (
        main(
            [
                "rag",
                "prune",
                "--query-field",
                "q",
                "--input",
                str(src),
                "--output",
                str(out),
                "--model",
                str(tiny_ckpt),
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--query", " "], "--query is empty"),
        (["--query", "q", "--text-field", "body"], "field 'body': missing field"),
        (["--query", "q", "--threshold", "3"], "threshold must be in [0, 1]"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, tiny_ckpt, capsys, args, expected):
    src = _passages(tmp_path)
    rc = main(
        [
            "rag",
            "prune",
            *args,
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--model",
            str(tiny_ckpt),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and expected in err
    assert not (tmp_path / "o.jsonl").exists()


def test_rag_without_subcommand_prints_help_and_exits_2(capsys):
    assert main(["rag"]) == 2
    assert "train" in capsys.readouterr().out


def test_help_lists_nested_commands():
    r = subprocess.run(
        [sys.executable, "-m", "dataprune.cli.main", "rag", "--help"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "train" in r.stdout and "prune" in r.stdout


def test_shipped_card_command_reproduces_train_config():
    """The recorded training command parses back into exactly the recorded training options."""
    import shlex

    from dataprune.cli.main import build_parser
    from dataprune.rag.pruner import default_checkpoint_path

    card_path = default_checkpoint_path() / "card.json"
    if not card_path.exists():
        pytest.skip("no default checkpoint in this checkout")
    card = json.loads(card_path.read_text())
    argv = shlex.split(card["command"])
    assert argv[:3] == ["dataprune", "rag", "train"]
    args = build_parser().parse_args(argv[1:])
    recorded = card["train_config"]
    assert args.max_steps == recorded["max_steps"] == card["schedule_steps"]
    assert (args.stop_after_steps or args.max_steps) == card["steps"]
    assert args.stop_after_steps == recorded["stop_after_steps"]
    assert args.random_state == recorded["random_state"] == card["seed"]
    assert args.lr == recorded["lr"] and args.batch_size == recorded["batch_size"]
    assert (args.max_train_pairs or None) == recorded["max_train_pairs"]  # 0 = all pairs
    assert args.unanswerable_share == recorded["unanswerable_share"]
    assert args.keep_head == recorded["pruner"]["keep_head"]
    assert args.trainable_layers == recorded["pruner"]["trainable_layers"]
    assert args.data == recorded["data"] == "../shared/data/squad_v2"
    # the mixture options too: the evidence sets, their folder and the calibrated compression
    sets = (
        tuple(x for x in (args.evidence_sets or "").split(",") if x)
        if isinstance(args.evidence_sets, str)
        else tuple(args.evidence_sets or ())
    )
    assert sets == tuple(recorded.get("evidence_sets") or ())
    assert args.evidence_data == recorded.get("evidence_data", args.evidence_data)
    assert args.include_squad == recorded.get("include_squad", True)
    assert args.target_compression == recorded.get("target_compression")
    assert args.allow_restricted_licences == recorded.get("allow_restricted_licences", False)


TEXTS = [
    "The zebra lives in Africa. Paris is the capital of France.",
    "Warsaw was founded in the 13th century. The river Vistula flows through Warsaw. It rained.",
]


def _prune_texts(tmp_path):
    """``dataprune rag prune`` arguments over TEXTS (one record each) for the query "zebra?"."""
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    out = tmp_path / "o.jsonl"
    return ["rag", "prune", "--query", "zebra?", "--input", str(src), "--output", str(out)], out


def test_threshold_defaults_to_the_checkpoint(tiny_ckpt, tmp_path):
    ckpt = tiny_ckpt
    (ckpt / "card.json").write_text(json.dumps({"held_out": {"default_threshold": 0.0}}))
    args, out = _prune_texts(tmp_path)
    assert main([*args, "--model", str(ckpt)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pruned_text"] for r in rows] == TEXTS  # threshold 0 from the card
    man = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert man["parameters"]["threshold"] == 0.0
    assert man["parameters"]["threshold_from_checkpoint"] is True
    assert man["models"]["pruner"]["default_threshold"] == 0.0
    assert main([*args, "--model", str(ckpt), "--threshold", "1"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["pruned_text"] == "" for r in rows)


def test_keep_patterns_and_presets(tiny_ckpt, tmp_path):
    args, out = _prune_texts(tmp_path)
    args += ["--model", str(tiny_ckpt), "--threshold", "1"]
    assert main([*args, "--keep-pattern", "Paris", "--keep-preset", "numbers"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pruned_text"] for r in rows] == [
        "Paris is the capital of France.",
        "Warsaw was founded in the 13th century.",
    ]
    assert [r["forced_sentences"] for r in rows] == [[1], [0]]
    man = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert man["parameters"]["keep_patterns"][0] == "Paris"
    assert len(man["parameters"]["keep_patterns"]) == 2


def test_second_pass_flag_records_the_extended_query(tiny_ckpt, tmp_path):
    args, out = _prune_texts(tmp_path)
    assert main([*args, "--model", str(tiny_ckpt), "--second-pass"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["extended_query"].startswith("zebra? ") for r in rows)
    man = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert man["parameters"]["second_pass"] is True
    assert man["parameters"]["second_pass_passages"] == 2


def test_passage_weight_flag_is_passed_and_recorded(tiny_ckpt, tmp_path):
    from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT

    args, out = _prune_texts(tmp_path)
    args += ["--model", str(tiny_ckpt), "--threshold", "0.3"]
    manifest = tmp_path / "o.jsonl.manifest.json"
    scores = {}
    for extra, weight in (([], DEFAULT_PASSAGE_WEIGHT), (["--passage-weight", "2"], 2.0)):
        assert main([*args, *extra]) == 0
        assert json.loads(manifest.read_text())["parameters"]["passage_weight"] == weight
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        scores[weight] = [r["sentence_scores"] for r in rows]
    # every record is a passage of the one --query: only the best passage keeps its scores
    on, off = scores[2.0], scores[DEFAULT_PASSAGE_WEIGHT]
    assert sum(max(a) == max(b) for a, b in zip(on, off)) >= 1
    assert all(x <= y + 1e-6 for a, b in zip(on, off) for x, y in zip(a, b))
    assert any(x < y - 1e-6 for a, b in zip(on, off) for x, y in zip(a, b))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--keep-pattern", "(oops"], "keep_patterns[0]: '(oops' is not a valid regular"),
        (["--second-pass", "--second-pass-passages", "0"], "expected an integer >= 1"),
        (["--passage-weight", "-1"], "expected a number >= 0"),
        (["--passage-weight", "nan"], "passage_weight must be a finite number >= 0"),
    ],
)
def test_bad_pruning_options_one_line_exit_2(tmp_path, tiny_ckpt, capsys, args, expected):
    src = _passages(tmp_path)
    out = tmp_path / "o.jsonl"
    argv = ["rag", "prune", "--query", "q", "--input", str(src), "--output", str(out)]
    try:
        rc = main([*argv, "--model", str(tiny_ckpt), *args])
    except SystemExit as exc:  # argparse type errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expected in err.splitlines()[-1]
    assert not out.exists()


def test_train_options_build_the_config_and_the_recorded_command_rebuilds_it():
    """``rag train`` flags -> TrainConfig (defaults from the config itself), and the command
    recorded in the card (``_train_command``) parses back into the same config."""
    import shlex
    from dataclasses import asdict

    from dataprune.cli.main import build_parser
    from dataprune.cli.rag import _train_command, train_config_from_args
    from dataprune.rag.config import PrunerConfig, TrainConfig

    parser = build_parser()
    plain = train_config_from_args(parser.parse_args(["rag", "train", "--data", "d", "-o", "o"]))
    assert asdict(plain) == asdict(TrainConfig(data="d"))
    argv = ["rag", "train", "--data", "d", "--output", "o", "--steps", "7", "--seed", "3"]
    argv += [
        "--evidence-sets",
        "hotpotqa,selqa",
        "--trainable-layers",
        "4",
        "--max-train-pairs",
        "0",
    ]
    argv += ["--stop-after-steps", "5", "--target-compression", "0.55"]
    args = parser.parse_args(argv)
    cfg = train_config_from_args(args)
    expected = TrainConfig(
        data="d",
        max_steps=7,
        random_state=3,
        evidence_sets=("hotpotqa", "selqa"),
        max_train_pairs=None,  # 0 = all pairs
        stop_after_steps=5,
        target_compression=0.55,
        pruner=PrunerConfig(trainable_layers=4),
    )
    assert asdict(cfg) == asdict(expected)
    command = _train_command(args)
    assert command.startswith("dataprune rag train --data d --output o")
    again = train_config_from_args(parser.parse_args(shlex.split(command)[1:]))
    assert asdict(again) == asdict(cfg)
