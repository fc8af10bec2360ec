"""Wiring of ContextPruner with a tiny random model (behaviour is tested with the shipped one)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataprune.errors import DataPruneError, ModelNotAvailableError
from dataprune.rag.pruner import ContextPruner

PASSAGES = [
    "The zebra lives in Africa. Paris is the capital of France.",
    "Warsaw was founded in the 13th century. The river Vistula flows through Warsaw. It rained.",
    "",
]


def test_prune_shapes_and_fields(tiny_pruner):
    out = tiny_pruner.prune("Where does the zebra live?", PASSAGES)
    assert len(out) == 3
    for p, text in zip(out, PASSAGES):
        assert len(p.sentence_scores) == len(p.sentences)
        assert all(0.0 <= s <= 1.0 for s in p.sentence_scores)
        assert 0.0 <= p.passage_score <= 1.0
        assert p.kept_sentences == sorted(p.kept_sentences)
        assert 0.0 <= p.compression_chars <= 1.0 and 0.0 <= p.compression_tokens <= 1.0
        assert p.n_chars == len(text)
        for j in p.kept_sentences:
            assert p.sentences[j] in p.text
    assert out[2].sentences == [] and out[2].text == "" and out[2].compression_chars == 0.0
    # threshold 0 keeps every sentence, threshold 1 none
    keep_all = tiny_pruner.prune("zebra?", PASSAGES[:2], threshold=0.0)
    assert [p.text for p in keep_all] == PASSAGES[:2]
    assert all(p.is_empty for p in tiny_pruner.prune("zebra?", PASSAGES[:2], threshold=1.0))


def test_single_passage_string_and_determinism(tiny_pruner):
    a = tiny_pruner.prune("zebra?", PASSAGES[0])
    b = tiny_pruner.prune("zebra?", [PASSAGES[0]])
    assert len(a) == 1 and a[0].sentence_scores == b[0].sentence_scores


def test_batch_matches_single_calls_and_length_sorting(tiny_pruner):
    queries = ["zebra?", "When was Warsaw founded?"]
    batch = tiny_pruner.prune_batch(queries, [PASSAGES[:2], PASSAGES[1:2]])
    assert [len(x) for x in batch] == [2, 1]
    single = [tiny_pruner.prune(q, ps) for q, ps in zip(queries, [PASSAGES[:2], PASSAGES[1:2]])]
    for bq, sq in zip(batch, single):
        for x, y in zip(bq, sq):
            np.testing.assert_allclose(x.sentence_scores, y.sentence_scores, atol=1e-5)
            assert x.passage_score == pytest.approx(y.passage_score, abs=1e-5)


def test_long_passage_uses_several_windows_and_scores_every_sentence(tiny_pruner):
    long = " ".join(f"The zebra lives in Africa number {i}." for i in range(20))
    (p,) = tiny_pruner.prune("Where does the zebra live?", [long], threshold=0.0)
    assert p.n_windows > 1
    assert len(p.sentences) == 20 and len(p.sentence_scores) == 20
    assert p.text == long  # nothing was silently dropped


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda pr: pr.prune("", ["a"]), "query is empty"),
        (lambda pr: pr.prune("   ", ["a"]), "query is empty"),
        (lambda pr: pr.prune(3, ["a"]), "expected a string, got int"),
        (lambda pr: pr.prune("q", ["a", 5]), r"passages\[1\]: expected a string passage, got int"),
        (lambda pr: pr.prune("q", None), "expected a list of strings"),
        (lambda pr: pr.prune_batch(["q", "r"], [["a"]]), "2 queries but 1 passage lists"),
        (lambda pr: pr.prune_batch("q", [["a"]]), "queries: expected a list of strings"),
        (lambda pr: pr.prune_batch(["q"], ["abc"]), r"passages\[0\]: expected a list of strings"),
        (lambda pr: pr.prune("q", ["a"], threshold=2), "threshold must be in"),
        (lambda pr: pr.prune("q", ["a"], aggregation="max"), "unknown aggregation 'max'"),
        (lambda pr: pr.process(["q"], ["a", "b"]), "list of lists"),
    ],
)
def test_bad_input_gives_clear_error(tiny_pruner, call, match):
    with pytest.raises(DataPruneError, match=match):
        call(tiny_pruner)


def test_process_is_provence_shaped(tiny_pruner):
    r = tiny_pruner.process("zebra?", PASSAGES[0], threshold=0.0)
    assert isinstance(r["pruned_context"], str) and isinstance(r["reranking_score"], float)
    assert r["pruned_context"] == PASSAGES[0] and r["compression_rate"] == 0.0
    r = tiny_pruner.process("zebra?", PASSAGES[:2])
    assert len(r["pruned_context"]) == 2 and len(r["reranking_score"]) == 2
    r = tiny_pruner.process(["zebra?", "Warsaw?"], [PASSAGES[:2], PASSAGES[1:2]], threshold=1.0)
    assert [len(x) for x in r["pruned_context"]] == [2, 1]
    assert r["pruned_context"][0] == ["", ""] and r["compression_rate"][1] == [100.0]
    r = tiny_pruner.process(["zebra?"], [PASSAGES[:2]], reorder=True, top_k=1)
    full = tiny_pruner.process(["zebra?"], [PASSAGES[:2]])
    assert r["reranking_score"][0] == [max(full["reranking_score"][0])]
    titled = tiny_pruner.process(
        ["zebra?"], [["The zebra lives in Africa."]], title=[["Zebra"]], threshold=0.0
    )
    assert titled["pruned_context"][0][0] == "Zebra\nThe zebra lives in Africa."


def test_remote_provence_adapter(tiny_pruner):
    """A Provence remote-code model (compression_logits + ranking_scores) behind the same API."""
    import torch

    from dataprune.rag.loading import _RemoteProvence

    class Out:
        def __init__(self, c, r):
            self.compression_logits, self.ranking_scores = c, r

    class FakeProvence(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            keep = (input_ids % 2 == 0).float() * 8 - 4  # even token ids "relevant"
            comp = torch.stack([-keep / 2, keep / 2], dim=-1)
            return Out(comp, torch.full((input_ids.shape[0], 1), 1.5))

    pr = ContextPruner(_RemoteProvence(FakeProvence()), tiny_pruner.tokenizer, max_length=48)
    (p,) = pr.prune("zebra?", [PASSAGES[1]], threshold=0.5)
    ids = tiny_pruner.tokenizer(p.sentences, add_special_tokens=False)["input_ids"]
    want = [np.mean([1.0 / (1 + np.exp(-(8 * (t % 2 == 0) - 4))) for t in s]) for s in ids]
    np.testing.assert_allclose(p.sentence_scores, want, atol=1e-5)
    assert p.passage_score == pytest.approx(1 / (1 + np.exp(-1.5)))


def test_save_load_roundtrip_is_compact_and_faithful(tiny_pruner, tmp_path):
    import json

    from dataprune.rag.model import save_pruner_model

    save_pruner_model(tiny_pruner.model, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "pruner_config.json").read_text())
    # only the top layer and the heads are stored (embeddings and layer 0 come from the base)
    assert all(("layer.1." in n) or ("_head" in n) for n in meta["stored_parameters"])
    loaded = ContextPruner.from_pretrained(tmp_path / "ckpt")
    # the raw keep-probabilities (float16 storage); the passage weight would compound the
    # rounding of the passage scores with theirs
    a = tiny_pruner.prune("zebra?", PASSAGES[:2], passage_weight=0.0)
    b = loaded.prune("zebra?", PASSAGES[:2], passage_weight=0.0)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.sentence_scores, y.sentence_scores, atol=2e-3)
        assert x.passage_score == pytest.approx(y.passage_score, abs=2e-3)


def test_checkpoint_on_wrong_base_is_refused(tiny_pruner, tmp_path, tiny_backbone):
    import shutil

    import torch
    from transformers import BertModel

    from dataprune.rag.model import save_pruner_model

    save_pruner_model(tiny_pruner.model, tmp_path / "ckpt")
    other = tmp_path / "other"
    shutil.copytree(tiny_backbone, other)
    m = BertModel.from_pretrained(other)
    with torch.no_grad():
        m.get_input_embeddings().weight.add_(1.0)
    m.save_pretrained(other)
    with pytest.raises(ModelNotAvailableError, match="differs from the one"):
        ContextPruner.from_pretrained(tmp_path / "ckpt", backbone=str(other))


def test_unavailable_models_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="not a dataprune pruner checkpoint"):
        ContextPruner.from_pretrained(tmp_path)
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE"):
        ContextPruner.from_pretrained("naver/provence-reranker-debertav3-v1")
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE"):
        ContextPruner.from_pretrained("someone/some-model")


def _hub_error(cls, message):
    """A huggingface_hub exception without an HTTP response object."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc


@pytest.fixture()
def fake_hub(tmp_path, monkeypatch):
    """``hf_hub_download`` over a dict of repositories: {repo: {file: text} or an exception}."""
    import huggingface_hub
    from huggingface_hub.utils import EntryNotFoundError

    repos: dict = {}
    calls: list = []

    def download(repo_id, filename, revision=None, local_files_only=False, **kw):
        calls.append((repo_id, filename, revision))
        repo = repos[repo_id]
        if isinstance(repo, Exception):
            raise repo
        if filename not in repo:
            raise _hub_error(EntryNotFoundError, f"{filename} not in {repo_id}")
        path = tmp_path / "hub" / repo_id / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(repo[filename])
        return str(path)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return repos, calls


def test_remote_code_is_never_implied_and_runs_only_at_a_pinned_revision(fake_hub, monkeypatch):
    import transformers

    repos, _ = fake_hub
    provence = "naver/provence-reranker-debertav3-v1"
    repos[provence] = {"config.json": json.dumps({"auto_map": {"AutoModel": "m.Provence"}})}
    repos["someone/remote"] = dict(repos[provence])
    repos["someone/plain-bert"] = {"config.json": json.dumps({"model_type": "bert"})}
    with pytest.raises(
        ModelNotAvailableError, match=r"remote-code model.*opt in with trust_remote_code"
    ):
        ContextPruner.from_pretrained(provence)
    with pytest.raises(ModelNotAvailableError, match="remote-code model"):
        ContextPruner.from_pretrained("someone/remote")
    with pytest.raises(ModelNotAvailableError, match="pinned revision"):
        ContextPruner.from_pretrained(provence, trust_remote_code=True)
    with pytest.raises(ModelNotAvailableError, match="not a dataprune pruner checkpoint"):
        ContextPruner.from_pretrained("someone/plain-bert", trust_remote_code=True)

    seen = {}

    def fake_load(hub_id, **kw):
        seen[hub_id] = kw
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_load)
    with pytest.raises(ModelNotAvailableError, match="at revision abc123"):
        ContextPruner.from_pretrained(provence, trust_remote_code=True, revision="abc123")
    assert seen[provence]["revision"] == "abc123"


def test_hub_failures_are_reported_as_such(fake_hub):
    from huggingface_hub.utils import GatedRepoError, LocalEntryNotFoundError

    repos, _ = fake_hub
    repos["org/gated"] = _hub_error(GatedRepoError, "Access to model org/gated is restricted")
    repos["org/away"] = _hub_error(LocalEntryNotFoundError, "connection error and not cached")
    with pytest.raises(ModelNotAvailableError, match="gated") as gated:
        ContextPruner.from_pretrained("org/gated")
    with pytest.raises(ModelNotAvailableError, match="could not be reached") as away:
        ContextPruner.from_pretrained("org/away")
    for err in (gated, away):
        assert "trust_remote_code" not in str(err.value)


@pytest.mark.parametrize(("fast", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_precision_auto_follows_the_machine(monkeypatch, fast, expected):
    from dataprune import precision
    from dataprune.errors import UnknownOptionError
    from dataprune.rag import inference

    # the rule itself (CPU flags, CUDA) is tested in tests/test_precision.py
    monkeypatch.setattr(precision, "fast_bf16", lambda device: fast)
    assert inference.resolve_precision("auto", "cpu") == expected
    for fixed in ("float32", "bfloat16"):  # explicit precisions pass through
        assert inference.resolve_precision(fixed, "cpu") == fixed
    assert ContextPruner(None, None, device="cpu").precision_ == expected
    with pytest.raises(UnknownOptionError, match="unknown precision"):
        inference.resolve_precision("float16", "cpu")


def test_precision_auto_resolves(tiny_pruner):
    from dataprune.rag.inference import resolve_precision

    assert tiny_pruner.precision_ == resolve_precision("auto", "cpu")
    fp, bf = (
        ContextPruner(tiny_pruner.model, tiny_pruner.tokenizer, max_length=48, precision=p)
        for p in ("float32", "bfloat16")
    )
    a = fp.prune("zebra?", PASSAGES[:1])[0].sentence_scores
    b = bf.prune("zebra?", PASSAGES[:1])[0].sentence_scores
    np.testing.assert_allclose(a, b, atol=0.05)


def test_query_match_head_needs_segment_ids_and_scores_whole_sentences(tiny_pruner):
    import torch

    from dataprune.rag.windows import encode_pairs

    model = tiny_pruner.model
    assert model.match_head is not None  # the default keep-head
    _, windows = encode_pairs(
        tiny_pruner.tokenizer,
        ["Where does the zebra live?"],
        ["The cat sat on the mat. The zebra lives in Africa."],
        max_length=48,
    )
    w = windows[0]
    ids = torch.tensor([w.input_ids])
    mask = torch.ones_like(ids)
    types = torch.tensor([w.token_type_ids])
    with pytest.raises(ValueError, match="segment_ids"):
        model(ids, mask, types)
    seg = torch.tensor([w.segment_ids()])
    hidden = model.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)
    tok, rank = model.match_head(hidden.last_hidden_state, seg)
    # without exact-match input the match term is one value per sentence, zero elsewhere
    for j in (0, 1):
        vals = tok[0][seg[0] == j]
        assert torch.allclose(vals, vals[0].expand_as(vals))
    assert torch.all(tok[0][seg[0] < 0] == 0)
    assert rank.shape == (1,)


def test_checkpoints_without_keep_head_load_as_linear():
    from dataprune.rag.config import PrunerConfig

    old = PrunerConfig.from_dict({"backbone": "x", "max_length": 256})
    assert old.keep_head == "linear"
    assert PrunerConfig().keep_head == "query_match"
    with pytest.raises(Exception, match="valid: query_match, linear"):
        PrunerConfig(keep_head="bilinear")
