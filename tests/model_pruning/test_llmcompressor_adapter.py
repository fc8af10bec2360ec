"""llm-compressor adapter. The parity tests need the ``llmcompressor`` extra and are skipped (with
the reason) where it is absent; llmcompressor pins transformers <= 5.17, so it cannot be installed
beside this project's transformers without replacing it."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from model_pruning_helpers import zero_masks

from dataprune.errors import DataValidationError, OptionalDependencyError
from dataprune.model_pruning import LLMCompressorPruner, WandaPruner, get_model_pruner

HAVE_LLMC = importlib.util.find_spec("llmcompressor") is not None
needs_llmc = pytest.mark.skipif(
    not HAVE_LLMC,
    reason="the 'llmcompressor' extra is not installed (pip install 'dataprune[llmcompressor]'; "
    "every llmcompressor release pins transformers<=5.17, so it is absent where a newer "
    "transformers is installed)",
)


def test_registry_names():
    assert get_model_pruner("llmcompressor-wanda", sparsity=0.5).method == "wanda"
    p = get_model_pruner("llmcompressor-sparsegpt", pattern="2:4")
    assert p.method == "sparsegpt" and p.name == "llmcompressor-sparsegpt"


@pytest.mark.skipif(HAVE_LLMC, reason="checks the message shown when the extra is missing")
def test_missing_extra_gives_install_hint(model, calib):
    with pytest.raises(OptionalDependencyError, match=r"pip install 'dataprune\[llmcompressor\]'"):
        LLMCompressorPruner(sparsity=0.5).prune(model, calib)


@needs_llmc
@pytest.mark.parametrize(("sparsity", "pattern"), [(0.5, None), (None, "2:4")])
def test_wanda_masks_match_builtin_sequential(model, calib, sparsity, pattern):
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    WandaPruner(sparsity=sparsity, pattern=pattern, sequential=True).prune(ours, calib)
    report = LLMCompressorPruner(method="wanda", sparsity=sparsity, pattern=pattern).prune(
        theirs, calib
    )
    assert report.total_sparsity == pytest.approx(0.5) and len(report.layers) == 21
    a, b = zero_masks(ours), zero_masks(theirs)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not b["lm_head.weight"].any()  # lm_head ignored via "re:.*lm_head"
    assert "save_pretrained" not in theirs.__dict__  # plain save_pretrained restored


@needs_llmc
def test_sparsegpt_runs_and_reloads(model, calib, tmp_path):
    from transformers import AutoModelForCausalLM

    report = LLMCompressorPruner(method="sparsegpt", pattern="2:4").prune(model, calib)
    assert report.total_sparsity == pytest.approx(0.5)
    model.save_pretrained(tmp_path / "m")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


@needs_llmc
def test_needs_a_tokenizer(model, calib):
    calib.tokenizer = None
    with pytest.raises(DataValidationError, match="needs a tokenizer"):
        LLMCompressorPruner(sparsity=0.5).prune(model, calib)


def test_recipe_maps_patterns_and_ignores(model):
    pytest.importorskip("llmcompressor", reason="the 'llmcompressor' extra is not installed")
    recipe, block = LLMCompressorPruner(pattern="1:4").build_recipe(model)
    assert block == "LlamaDecoderLayer"
    assert recipe.mask_structure == "3:4"  # llm-compressor counts zeros per group
    assert recipe.ignore[0] == "re:.*lm_head"
