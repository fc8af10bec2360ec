"""dataprune.curate: every record accounted for, resumable stages, budgets, recipes and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataprune.curation import curate, load_recipe
from dataprune.errors import DataValidationError, UnknownOptionError

from fakes import HashingEncoder

DEDUP_SELECT = {
    "stages": [
        "exact_dedup",
        {"quality": {"score": "length", "min": 3}},
        {"select": {"method": "random"}},
    ]
}


def _pool(n=60):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    recs = []
    for i in range(n):
        q = " ".join(rng.choice(words, size=8))
        a = " ".join(rng.choice(words, size=int(rng.integers(1, 12))))
        recs.append({"uid": f"r{i}", "prompt": f"Question {i}: {q}?", "response": a})
    recs.append(dict(recs[3], uid="copy3"))  # exact duplicate
    recs.append(dict(recs[5], uid="copy5", response=recs[5]["response"].upper() + "  "))
    return recs


def test_every_record_has_one_status_and_the_budget_is_exact(tmp_path):
    data = _pool()
    data.append({"uid": "bad", "prompt": 7, "response": "x"})
    out = tmp_path / "kept.jsonl"
    res = curate(
        data,
        DEDUP_SELECT,
        n_samples=20,
        id_field="uid",
        output=out,
        random_state=0,
        show_progress_bar=False,
    )
    assert len(res) == 20 and res.n_input == len(data)
    st = pd.read_parquet(f"{out}.status.parquet")
    assert len(st) == len(data) and st["id"].tolist()[:3] == ["r0", "r1", "r2"]
    assert (st["status"] == "kept").sum() == 20
    dropped = st[st["status"] == "dropped"]
    assert dropped["stage"].notna().all() and dropped["reason"].notna().all()
    assert st.loc[st["id"] == "copy3", "duplicate_of"].item() == "r3"
    # normalisation: case and whitespace do not hide a duplicate
    assert st.loc[st["id"] == "copy5", "duplicate_of"].item() == "r5"
    bad = st[st["id"] == "bad"]
    assert bad["stage"].item() == "validate" and "expected a string" in bad["reason"].item()
    short = st[st["reason"].fillna("").str.startswith("length below")]
    assert (short["length"] < 3).all() and len(short) > 0
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["uid"] for r in kept] == st.loc[st["status"] == "kept", "id"].tolist()
    funnel = {f["stage"]: f for f in res.funnel}
    assert sum(f["n_dropped"] for f in res.funnel) + 20 == len(data)
    assert funnel["validate"]["n_dropped"] == 1
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["counts"]["n_kept"] == 20
    assert (tmp_path / "kept.jsonl.rejects.jsonl").is_file()


def test_same_seed_same_output_and_resume_recomputes_only_changed_stages(tmp_path):
    data = _pool()
    out = tmp_path / "a.jsonl"
    kw = dict(n_samples=15, id_field="uid", output=out, random_state=3, show_progress_bar=False)
    a = curate(data, DEDUP_SELECT, **kw)
    assert a.cached_stages == []
    b = curate(data, DEDUP_SELECT, **kw)
    assert b.cached_stages == ["exact_dedup", "quality:length", "select:random"]
    np.testing.assert_array_equal(a.kept_indices, b.kept_indices)
    changed = {
        "stages": [
            *DEDUP_SELECT["stages"][:1],
            {"quality": {"score": "length", "min": 4}},
            DEDUP_SELECT["stages"][2],
        ]
    }
    c = curate(data, changed, **kw)
    assert c.cached_stages == ["exact_dedup"]
    other_seed = curate(data, DEDUP_SELECT, **{**kw, "random_state": 4})
    assert not np.array_equal(a.kept_indices, other_seed.kept_indices)


def test_interrupted_run_resumes_at_the_unfinished_stage(tmp_path):
    data = [{"text": f"record {i} " + "x" * (i % 7)} for i in range(40)]
    recipe = {"stages": ["exact_dedup", "semantic_dedup", {"select": {"method": "kcenter"}}]}
    out = tmp_path / "k.jsonl"
    with pytest.raises(KeyboardInterrupt):
        curate(
            data,
            recipe,
            n_samples=10,
            output=out,
            encoder=HashingEncoder(fail_on_call=1),
            random_state=0,
            show_progress_bar=False,
        )
    assert not out.exists()
    res = curate(
        data,
        recipe,
        n_samples=10,
        output=out,
        encoder=HashingEncoder(),
        random_state=0,
        show_progress_bar=False,
    )
    assert res.cached_stages == ["exact_dedup"] and len(res) == 10


def test_chat_messages_and_plain_text_records():
    chats = [
        {
            "messages": [
                {"role": "user", "content": f"hi {i}"},
                {"role": "assistant", "content": f"answer {i % 5}"},
            ]
        }
        for i in range(12)
    ]
    chats.append({"messages": [{"role": "user", "content": "no answer"}]})
    res = curate(chats, {"stages": ["exact_dedup"]}, random_state=0, show_progress_bar=False)
    assert res.prompts[0] == "hi 0" and res.responses[0] == "answer 0"
    assert res.stage[12] == "validate" and "assistant" in res.reason[12]
    texts = [{"text": "same"}, {"text": "same"}, {"text": "other"}]
    res = curate(texts, {"stages": ["exact_dedup"]}, random_state=0, show_progress_bar=False)
    assert res.status.tolist() == ["kept", "dropped", "kept"] and res.duplicate_of[1] == "0"


@pytest.mark.parametrize(
    ("recipe", "kw", "message"),
    [
        ({"stages": ["bogus"]}, {}, "unknown curation stage 'bogus'; valid: exact_dedup"),
        (
            {"stages": [{"fuzzy_dedup": {"treshold": 0.8}}]},
            {},
            "unknown option(s) treshold; valid:",
        ),
        (
            {"stages": [{"fuzzy_dedup": {"threshold": 2}}]},
            {},
            "stage 'fuzzy_dedup', option 'threshold'",
        ),
        (
            {"stages": [{"quality": {"score": "ifd"}}]},
            {},
            "option 'min/max/min_quantile/max_quantile'",
        ),
        (
            {"stages": [{"quality": {"score": "nope", "max": 1}}]},
            {},
            "unknown quality score 'nope'",
        ),
        ({"stages": [{"select": {"method": "random"}}]}, {}, "needs a budget"),
        ({"stages": [{"select": {"method": "random"}}]}, {"n_samples": 500}, "larger than the"),
        ({"stages": [{"select": {"method": "class_balanced"}}]}, {"n_samples": 5}, "needs labels"),
        (
            {"stages": [{"quality": {"score": "ifd", "max": 1}}]},
            {"text_field": "prompt"},
            "needs prompt/response",
        ),
        ({"stages": ["exact_dedup"]}, {"fraction": 1.5}, "option 'fraction'"),
        (
            {"stages": [{"select": {"method": "random"}}, "exact_dedup"]},
            {},
            "may appear once, as the last",
        ),
        # option values of the wrong type (a YAML typo) are named, never a traceback
        ({"stages": [{"quality": 5}]}, {}, "stage 1 (quality): options must be a mapping"),
        ({"stages": [{"quality": ["min"]}]}, {}, "options must be a mapping {option: value}"),
        (
            {"stages": [{"fuzzy_dedup": {"threshold": "abc"}}]},
            {},
            "option 'threshold': expected a number, got 'abc'",
        ),
        (
            {"stages": [{"quality": {"score": "length", "min": 1, "batch_size": 2.5}}]},
            {},
            "option 'batch_size': expected an integer, got 2.5",
        ),
        (
            {"stages": [{"quality": {"score": "length", "drop_values": [1, "x"]}}]},
            {},
            "option 'drop_values': expected a list of numbers or null, got [1, 'x']",
        ),
        (
            {"stages": [{"quality": {"score": "length", "min": 1, "drop_label_issues": "no"}}]},
            {},
            "option 'drop_label_issues': expected true or false, got 'no'",
        ),
        (
            {"stages": [{"semantic_dedup": {"n_clusters": "10"}}]},
            {},
            "option 'n_clusters': expected an integer or null, got '10'",
        ),
    ],
)
def test_bad_recipes_fail_before_any_work(recipe, kw, message):
    with pytest.raises((DataValidationError, UnknownOptionError)) as exc:
        curate(_pool(), recipe, random_state=0, show_progress_bar=False, **kw)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_budget_larger_than_the_survivors_names_the_stage():
    data = [{"text": "dup"}] * 30 + [{"text": f"u{i}"} for i in range(5)]
    with pytest.raises(
        DataValidationError,
        match="stage 'select:random': the budget of 10 records is larger than the 6",
    ):
        curate(
            data,
            {"stages": ["exact_dedup", {"select": {"method": "random"}}]},
            n_samples=10,
            random_state=0,
            show_progress_bar=False,
        )


def test_builtin_and_yaml_recipes(tmp_path):
    assert [s.kind for s in load_recipe("default").stages][-1] == "select"
    p = tmp_path / "r.yaml"
    p.write_text(
        "budget:\n  fraction: 0.5\nstages:\n  - exact_dedup\n  - select: {method: random}\n"
    )
    r = load_recipe(p)
    assert r.fraction == 0.5 and [s.label for s in r.stages] == ["exact_dedup", "select:random"]
    p.write_text("stages: [exact_dedup\n")
    with pytest.raises(DataValidationError, match="not valid YAML"):
        load_recipe(p)
    with pytest.raises(DataValidationError, match="built-ins: dedup, default"):
        load_recipe(tmp_path / "missing.yaml")


def test_duplicate_ids_are_refused():
    data = [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]
    with pytest.raises(DataValidationError, match="duplicate id 'a'"):
        curate(data, {"stages": ["exact_dedup"]}, id_field="id", random_state=0)


def test_changing_only_a_cut_refilters_without_rescoring(tmp_path, monkeypatch):
    from dataprune.curation.stages import quality

    calls = []
    original = quality._length

    def counting(ctx, seen, cfg):
        calls.append(len(seen))
        return original(ctx, seen, cfg)

    spec = quality.QUALITY_SCORES.get("length")
    monkeypatch.setitem(
        quality.QUALITY_SCORES._entries,
        "length",
        quality.ScoreSpec(counting, spec.needs, spec.direction),
    )
    data = _pool()
    kw = dict(id_field="uid", output=tmp_path / "o.jsonl", random_state=0, show_progress_bar=False)
    a = curate(data, {"stages": ["exact_dedup", {"quality": {"score": "length", "min": 3}}]}, **kw)
    b = curate(data, {"stages": ["exact_dedup", {"quality": {"score": "length", "min": 5}}]}, **kw)
    assert len(calls) == 1 and b.cached_stages == ["exact_dedup"]
    assert b.kept.sum() < a.kept.sum()
