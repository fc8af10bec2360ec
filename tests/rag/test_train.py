"""Training on a synthetic, learnable SQuAD-format set with the tiny backbone (seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataprune.rag.config import PrunerConfig, TrainConfig
from dataprune.rag.train import train_pruner
from dataprune.rag.train_validation import TrainingCollapsedError, collapse_kind

FILLER = [
    "The cat sat on the mat.",
    "Dogs bark loudly at night.",
    "Water boils at 100 degrees.",
    "Berlin is in Germany.",
    "It rained all day.",
    "Steam engines use boilers.",
]


def _squad(path, n_articles=6, seed=0):
    """Half of the paragraphs hold one "zebra" sentence (the answer), half none (unanswerable).

    The relevant sentence is marked by a word, so even a tiny random model learns it in a few
    dozen steps: this exercises the training machinery, not language understanding.
    """
    rng = np.random.default_rng(seed)
    data = []
    for a in range(n_articles):
        paras = []
        for p in range(4):
            sents = [FILLER[int(i)] for i in rng.choice(len(FILLER), 3, replace=False)]
            answerable = p % 2 == 0
            if answerable:
                sents.insert(int(rng.integers(4)), "The zebra lives in Africa.")
            ctx = " ".join(sents)
            qas = []
            for j in range(3):
                q = ["Where does the zebra live?", "What lives in Africa?", "Where is the zebra?"][
                    j
                ]
                if answerable:
                    ans = [{"text": "zebra", "answer_start": ctx.index("zebra")}]
                    qas.append(
                        {
                            "id": f"{a}-{p}-{j}",
                            "question": q,
                            "answers": ans,
                            "is_impossible": False,
                        }
                    )
                else:
                    qas.append(
                        {"id": f"{a}-{p}-{j}", "question": q, "answers": [], "is_impossible": True}
                    )
            paras.append({"context": ctx, "qas": qas})
        data.append({"title": f"article_{a}", "paragraphs": paras})
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(tmp_path, tiny_backbone, keep_head="query_match", **kw):
    base = dict(
        data=str(_squad(tmp_path / "squad.json")),
        n_test_articles=2,
        n_val_articles=1,
        max_steps=40,
        batch_size=8,
        lr=1e-3,
        head_lr=5e-3,
        eval_every=20,
        checkpoint_every=10,
        max_train_pairs=None,
        random_state=0,
        pruner=PrunerConfig(
            backbone=str(tiny_backbone),
            max_length=48,
            max_query_tokens=12,
            trainable_layers=1,
            keep_head=keep_head,
            match_scale=0.1,
        ),
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("keep_head", ["query_match", "linear"])
def test_train_learns_and_writes_compact_checkpoint(tmp_path, tiny_backbone, keep_head):
    from dataprune.rag.pruner import ContextPruner

    cfg = _config(tmp_path, tiny_backbone, keep_head)
    res = train_pruner(
        cfg, tmp_path / "out", command="dataprune rag train ...", show_progress_bar=False
    )
    out = tmp_path / "out"
    assert {"pruner_config.json", "model.safetensors", "card.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "train_state.pt").exists()
    card = json.loads((out / "card.json").read_text())
    assert (
        card["command"] == "dataprune rag train ..." and card["steps"] == 40 and card["seed"] == 0
    )
    assert card["frozen_layers_cached"] == 1
    split = card["data"]["split"]
    assert not set(split["test"]) & set(split["train"])
    # the key-word task is learnable: held-out ranking far above chance (1 relevant of 4)
    assert card["held_out"]["sentence_ap"] > 0.6, card["held_out"]["sentence_ap"]
    meta = json.loads((out / "pruner_config.json").read_text())
    assert all("layer.1." in n or "_head" in n for n in meta["stored_parameters"])
    pruner = ContextPruner.from_pretrained(out)
    (p,) = pruner.prune(
        "Where does the zebra live?", ["The cat sat on the mat. The zebra lives in Africa."]
    )
    assert p.sentence_scores[1] > p.sentence_scores[0]
    assert 1 in p.kept_sentences
    assert res.card == card


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, tiny_backbone, monkeypatch):
    import dataprune.rag.train as train_mod

    cfg = _config(
        tmp_path, tiny_backbone, max_steps=8, eval_every=4, checkpoint_every=3, pos_weight=1.0
    )
    train_pruner(cfg, tmp_path / "a", show_progress_bar=False)
    calls = {"n": 0}
    real = train_mod._losses

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated")
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "_losses", flaky)
    with pytest.raises(KeyboardInterrupt):
        train_pruner(cfg, tmp_path / "b", show_progress_bar=False)
    assert (tmp_path / "b" / "train_state.pt").exists()
    monkeypatch.setattr(train_mod, "_losses", real)
    train_pruner(cfg, tmp_path / "b", show_progress_bar=False)
    from safetensors.numpy import load_file

    wa, wb = (
        load_file(tmp_path / "a" / "model.safetensors"),
        load_file(tmp_path / "b" / "model.safetensors"),
    )
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_a_run_that_does_not_learn_is_flagged_as_collapsed(tmp_path, tiny_backbone):
    cfg = _config(tmp_path, tiny_backbone, max_steps=4, eval_every=2, lr=1e-12, head_lr=1e-12)
    with pytest.raises(TrainingCollapsedError, match="collapsed"):
        train_pruner(cfg, tmp_path / "c", show_progress_bar=False)


def test_collapse_rule():
    def m(recall, kept, comp):
        return {
            "curves": {
                "mean_prob": [
                    {
                        "threshold": 0.1,
                        "recall": recall,
                        "kept_sentence_rate": kept,
                        "compression": comp,
                    }
                ]
            }
        }

    assert collapse_kind(m(0.0, 0.0, 1.0)) == "drop-everything"
    assert collapse_kind(m(1.0, 1.0, 0.0)) == "keep-everything"
    assert collapse_kind(m(0.9, 0.3, 0.6)) is None


def test_bad_training_options():
    from dataprune.errors import DataValidationError

    with pytest.raises(DataValidationError, match="max_steps=0"):
        TrainConfig(max_steps=0)
    with pytest.raises(DataValidationError, match="max_query_tokens"):
        PrunerConfig(max_length=64, max_query_tokens=40)


def test_stop_after_steps_matches_the_same_schedule_interrupted(
    tmp_path, tiny_backbone, monkeypatch
):
    """Stopping at step 4 of an 8-step schedule: recorded in the card, and a run killed before
    the stop and resumed ends with the same weights."""
    import dataprune.rag.train as train_mod

    cfg = _config(
        tmp_path,
        tiny_backbone,
        max_steps=8,
        stop_after_steps=4,
        eval_every=3,
        checkpoint_every=2,
        pos_weight=1.0,
    )
    res = train_pruner(cfg, tmp_path / "a", show_progress_bar=False)
    assert res.card["steps"] == 4 and res.card["schedule_steps"] == 8
    assert res.card["validation_history"][-1]["step"] == 4
    real = train_mod._losses
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated")
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "_losses", flaky)
    with pytest.raises(KeyboardInterrupt):
        train_pruner(cfg, tmp_path / "b", show_progress_bar=False)
    monkeypatch.setattr(train_mod, "_losses", real)
    train_pruner(cfg, tmp_path / "b", show_progress_bar=False)
    from safetensors.numpy import load_file

    wa, wb = (
        load_file(tmp_path / "a" / "model.safetensors"),
        load_file(tmp_path / "b" / "model.safetensors"),
    )
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_training_records_the_cached_path(tmp_path, tiny_backbone, monkeypatch):
    """A training run takes the cached path and says which mask it used; with a mask builder
    that breaks, the same run trains end to end and records that instead."""
    import json

    import dataprune.rag.frozen_cache as fc
    from dataprune.rag.frozen_cache import attention_mask_builder

    cfg = _config(tmp_path, tiny_backbone, max_steps=4, eval_every=2, pos_weight=1.0)
    train_pruner(cfg, tmp_path / "a", show_progress_bar=False)
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert card["frozen_layers_cached"] == 1
    assert card["frozen_layers_attention_mask"] == attention_mask_builder()[0]

    def broken(config, hidden, mask):
        raise TypeError("layer signature changed")

    monkeypatch.setattr(fc, "MASK_BUILDERS", {"broken": (lambda: True, broken), **fc.MASK_BUILDERS})
    train_pruner(cfg, tmp_path / "b", show_progress_bar=False)
    card = json.loads((tmp_path / "b" / "card.json").read_text())
    assert card["frozen_layers_cached"] == 0 and card["frozen_layers_attention_mask"] is None


def test_mixture_and_target_compression_reach_the_card(tmp_path, tiny_backbone):
    from dataprune.rag.pruner import ContextPruner

    rng = np.random.default_rng(1)
    hp = []
    for i in range(12):
        f = [FILLER[int(k)] for k in rng.choice(len(FILLER), 25)]
        ctx = [[f"G{i}", [*f[:2], "The zebra lives in Africa.", *f[2:4]]]]
        ctx += [[f"H{i}", ["A zebra.", *f[4:8]]]]
        ctx += [[f"D{i}{k}", f[8 + 5 * k : 13 + 5 * k]] for k in range(3)]
        sf = [[f"G{i}", 2], [f"H{i}", 0]]
        hp.append(
            {
                "_id": f"q{i}",
                "question": "Where does the zebra live?",
                "answer": "Africa",
                "context": ctx,
                "supporting_facts": sf,
            }
        )
    (tmp_path / "hotpotqa_train").mkdir()
    (tmp_path / "hotpotqa_train" / "qa_train.json").write_text(json.dumps(hp))
    cfg = _config(
        tmp_path,
        tiny_backbone,
        evidence_sets=("hotpotqa",),
        evidence_data=str(tmp_path),
        evidence_val_share=0.25,
        target_compression=0.4,
        max_steps=80,
        eval_every=40,
    )
    res = train_pruner(cfg, tmp_path / "out", show_progress_bar=False)
    card = res.card
    sets = card["data"]["evidence_sets"]
    assert [s["name"] for s in sets] == ["hotpotqa"] and sets[0]["n_val_pairs"] > 0
    assert card["training_sets"] == ["SQuAD v2 (CC BY-SA 4.0)", "hotpotqa (CC BY-SA 4.0)"]
    assert card["data"]["train_pairs_by_kind"]["bridge"] > 0
    held = card["held_out"]
    assert held["calibration"]["validation_compression"] >= 0.4
    assert held["default_threshold"] == held["calibration"]["threshold"]
    assert held["at_default"]["threshold"] == held["default_threshold"]
    assert ContextPruner.from_pretrained(tmp_path / "out").default_threshold == pytest.approx(
        held["default_threshold"]
    )
