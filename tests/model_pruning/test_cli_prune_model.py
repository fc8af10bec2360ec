from __future__ import annotations

import json

import pytest
import torch

from dataprune.cli.main import main
from dataprune.io import write_records

from tiny_models import CORPUS


@pytest.fixture()
def pool_file(tmp_path):
    recs = [
        {"body": f"{a} and {b}", "n": i}
        for i, (a, b) in enumerate((a, b) for a in CORPUS for b in CORPUS)
    ]
    return write_records(recs, tmp_path / "pool.jsonl")


def test_prune_model_end_to_end(
    tiny_dir, pool_file, tmp_path, monkeypatch, capsys, hashing_encoder, isolated_cache
):
    from transformers import AutoModelForCausalLM

    import dataprune.models as models

    monkeypatch.setattr(models, "load_encoder", lambda *a, **k: hashing_encoder)
    out = tmp_path / "pruned"
    rc = main(
        [
            "prune-model",
            "--model",
            str(tiny_dir),
            "--pattern",
            "2:4",
            "--calibration",
            str(pool_file),
            "--text-field",
            "body",
            "--selector",
            "kcenter",
            "--n-samples",
            "4",
            "--seq-len",
            "12",
            "--eval",
            str(pool_file),
            "--eval-max-tokens",
            "60",
            "--eval-seq-len",
            "20",
            "--dtype",
            "float32",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "wanda 2:4: 50.00% zeros in 21 layers" in printed
    assert "calibration: 4 x 12 tokens chosen by kcenter from 64 records" in printed
    assert "perplexity on" in printed
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "prune_report.json",
        "calibration.npz",
        "manifest.json",
    }
    report = json.loads((out / "prune_report.json").read_text())
    assert report["total_sparsity"] == 0.5 and report["pattern"] == "2:4"
    assert report["calibration"]["selector"] == "kcenter"
    assert report["eval"]["pruned"]["n_tokens"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["selector"] == "kcenter"
    assert manifest["counts"]["n_calibration_samples"] == 4
    assert str(pool_file) in manifest["inputs"]
    m = AutoModelForCausalLM.from_pretrained(out)
    w = m.model.layers[0].mlp.up_proj.weight
    assert ((w == 0).reshape(w.shape[0], -1, 4).sum(-1) >= 2).all()
    # a second run into the same folder needs --overwrite
    again = [
        "prune-model",
        "--model",
        str(tiny_dir),
        "--method",
        "magnitude",
        "--sparsity",
        "0.3",
        "--output",
        str(out),
    ]
    assert main(again) == 2
    assert "use --overwrite" in capsys.readouterr().err
    assert main([*again, "--overwrite"]) == 0
    assert json.loads((out / "prune_report.json").read_text())["method"] == "magnitude"
    assert not (out / "calibration.npz").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sparsity", "1.5"], "sparsity must be strictly between 0 and 1"),
        (["--sparsity", "0"], "sparsity must be strictly between 0 and 1"),
        (["--pattern", "3:2"], "need 0 < N < M"),
        (["--pattern", "two-four"], "pattern must be 'unstructured' or 'N:M'"),
        (["--sparsity", "0.7", "--pattern", "2:4"], "contradicts pattern '2:4'"),
        ([], "give a sparsity"),
        (["--sparsity", "0.5"], "needs --calibration INPUT"),
        (
            ["--sparsity", "0.5", "--calibration", "x.jsonl", "--n-samples", "0"],
            "--n-samples must be >= 1",
        ),
    ],
)
def test_bad_options(extra, message, capsys, tmp_path):
    assert main(["prune-model", *extra, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_model_without_linear_layers(monkeypatch, tok, capsys, tmp_path):
    import dataprune.models as models

    monkeypatch.setattr(
        models,
        "load_causal_lm",
        lambda *a, **k: (torch.nn.Sequential(torch.nn.Embedding(8, 4)), tok),
    )
    rc = main(
        [
            "prune-model",
            "--model",
            "x",
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "no decoder blocks with linear layers" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_text_field_defaults_to_text(tiny_dir, tmp_path, capsys, isolated_cache):
    """Records with a ``text`` field need no --text-field (calibration and --eval); records
    without one get a one-line error naming the fields they have, before any model is loaded."""
    texts = write_records(
        [{"text": f"{a} and {b}"} for a in CORPUS for b in CORPUS], tmp_path / "texts.jsonl"
    )
    base = ["prune-model", "--model", str(tiny_dir), "--sparsity", "0.5", "--dtype", "float32"]
    calib = ["--calibration", str(texts), "--n-samples", "2", "--seq-len", "8"]
    rc = main(
        [*base, *calib, "--eval", str(texts), "--eval-max-tokens", "40", "-o", str(tmp_path / "a")]
    )
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "a" / "prune_report.json").read_text())
    assert report["eval"]["pruned"]["n_tokens"] > 0
    bodies = write_records([{"body": "a b"}], tmp_path / "bodies.jsonl")
    capsys.readouterr()
    rc = main([*base, "--calibration", str(bodies), "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "no 'text' field (record 0 has 'body')" in err and "--text-field" in err
    assert not (tmp_path / "b").exists()


def test_prune_model_activation_space_and_balanced_mix(tiny_dir, tmp_path, capsys):
    from dataprune.calibration import MIXES, SPACES, CalibrationSet

    recs = [
        {"body": f"{a} and {b}", "src": "left" if i % 3 else "right"}
        for i, (a, b) in enumerate((a, b) for a in CORPUS for b in CORPUS)
    ]
    pool = write_records(recs, tmp_path / "pool.jsonl")
    out = tmp_path / "pruned"
    args = ["prune-model", "--model", str(tiny_dir), "--sparsity", "0.5", "--dtype", "float32"]
    args += ["--calibration", str(pool), "--text-field", "body", "--selector", "kcenter"]
    args += ["--n-samples", "6", "--seq-len", "12", "--output", str(out)]
    rc = main([*args, "--space", "activations", "--mix", "balanced", "--source-field", "src"])
    assert rc == 0, capsys.readouterr().err
    calib = CalibrationSet.load(out / "calibration.npz")
    prov = calib.provenance
    assert prov["space"] == "activations" and prov["mix"] == "balanced"
    assert sorted(calib.sample_sources) == ["left"] * 3 + ["right"] * 3
    # the choices are the library's (the CLI module stays light, so it spells them out)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*args, "--overwrite", "--space", "nowhere"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert all(repr(s) in err for s in SPACES)
    with pytest.raises(SystemExit) as exc:
        main([*args, "--overwrite", "--mix", "everything"])
    err = capsys.readouterr().err
    assert all(repr(m) in err for m in MIXES)
    assert main([*args, "--overwrite", "--mix", "balanced"]) == 2
    assert "--mix balanced needs --source-field" in capsys.readouterr().err


def test_against_random_reports_where_the_run_falls_among_random_calibration(
    tiny_dir, pool_file, tmp_path, capsys, isolated_cache
):
    base = ["prune-model", "--model", str(tiny_dir), "--sparsity", "0.5", "--dtype", "float32"]
    base += ["--calibration", str(pool_file), "--text-field", "body", "--n-samples", "4"]
    base += ["--seq-len", "12", "--eval", str(pool_file), "--eval-max-tokens", "60"]
    base += ["--eval-seq-len", "20", "--selector", "longest"]
    assert main([*base, "--output", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main([*base, "--against-random", "2", "--output", str(tmp_path / "vs")]) == 0
    printed = capsys.readouterr().out
    plain = json.loads((tmp_path / "plain" / "prune_report.json").read_text())["eval"]
    vs = json.loads((tmp_path / "vs" / "prune_report.json").read_text())["eval"]
    # the kept pruning is untouched by the baseline runs (the model is dense again before it)
    assert vs["pruned"] == plain["pruned"] and vs["dense"] == plain["dense"]
    b = vs["random_calibration"]
    assert b["n"] == 2 and b["seeds"] == [1, 2] and len(b["perplexity"]) == 2
    assert b["pruned"] == vs["pruned"]["perplexity"]
    assert b["lower_than"] == sum(vs["pruned"]["perplexity"] < x for x in b["perplexity"])
    # a random set of another seed is a different set: its perplexity is the kept run's only
    # by chance, and each is what a plain run with that seed and selector reports
    assert main([*base[:-2], "--random-state", "2", "--output", str(tmp_path / "r2")]) == 0
    capsys.readouterr()
    r2 = json.loads((tmp_path / "r2" / "prune_report.json").read_text())["eval"]["pruned"]
    assert b["perplexity"][1] == pytest.approx(r2["perplexity"])
    assert "against 2 random calibration set(s) of the same size (seeds 1, 2)" in printed
    assert f"lower than {b['lower_than']} of 2" in printed
    manifest = json.loads((tmp_path / "vs" / "manifest.json").read_text())
    assert manifest["parameters"]["against_random"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--against-random", "2"], "--against-random needs --eval INPUT"),
        (["--against-random", "-1"], "--against-random must be >= 0"),
        (
            ["--method", "magnitude", "--against-random", "2", "--eval", "e.jsonl"],
            "--against-random compares calibration sets; --method magnitude uses none",
        ),
    ],
)
def test_against_random_bad_options(extra, message, capsys, tmp_path):
    argv = ["prune-model", "--sparsity", "0.5", "--calibration", "x.jsonl", *extra]
    assert main([*argv, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_skipped_records_are_kept_in_the_output_folder(tiny_dir, tmp_path, capsys, isolated_cache):
    rows = [{"body": f"{a} and {b}"} for a in CORPUS for b in CORPUS[:2]]
    rows[3] = {"body": 5}
    pool = write_records(rows, tmp_path / "pool.jsonl")
    out = tmp_path / "pruned"
    argv = ["prune-model", "--model", str(tiny_dir), "--sparsity", "0.5", "--dtype", "float32",
            "--calibration", str(pool), "--text-field", "body", "--n-samples", "2",
            "--seq-len", "12", "--on-bad-record", "skip", "--eval", str(pool),
            "--eval-max-tokens", "40", "--eval-seq-len", "20", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        f"skipped 1 bad calibration records (details in {out / 'calibration.rejects.jsonl'})"
        in printed
    )
    for name in ("calibration", "eval"):
        (r,) = [json.loads(x) for x in (out / f"{name}.rejects.jsonl").read_text().splitlines()]
        assert r["line"] == 4 and r["raw"] == {"body": 5}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["n_rejected"] == 1 and manifest["counts"]["n_eval_rejected"] == 1
    assert manifest["outputs"]["eval_rejects"] == str(out / "eval.rejects.jsonl")
