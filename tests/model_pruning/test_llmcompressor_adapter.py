"""llm-compressor adapter.

llmcompressor pins ``transformers<=5.17``, so it cannot be installed beside this project's
transformers. ``scripts/setup.sh`` installs it, with the transformers and huggingface_hub it pins,
into a folder of its own (``<venv>/llmc-site``; ``DATAPRUNE_LLMC_SITE`` points elsewhere), and
``test_parity_in_llmc_site`` runs this file's llm-compressor tests in a subprocess with that
folder in front of ``PYTHONPATH``. Where llmcompressor is importable in-process (installed
normally with ``pip install 'dataprune[llmcompressor]'``), the same tests run here directly.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from model_pruning_helpers import zero_masks

from dataprune.errors import DataValidationError, OptionalDependencyError
from dataprune.model_pruning import LLMCompressorPruner, WandaPruner, get_model_pruner

HAVE_LLMC = importlib.util.find_spec("llmcompressor") is not None
needs_llmc = pytest.mark.skipif(
    not HAVE_LLMC,
    reason="llmcompressor is not importable in-process (it pins transformers<=5.17); "
    "test_parity_in_llmc_site runs these tests against the copy scripts/setup.sh installs",
)
LLMC_SITE = Path(os.environ.get("DATAPRUNE_LLMC_SITE") or Path(sys.prefix) / "llmc-site")
IN_SUBPROCESS = os.environ.get("DATAPRUNE_LLMC_SUBPROCESS") == "1"
REPO = Path(__file__).resolve().parents[2]
# the tests the subprocess must report as passed (the parity check above all)
LLMC_TESTS = {
    "test_wanda_masks_match_builtin_sequential[0.5-None]",
    "test_wanda_masks_match_builtin_sequential[None-2:4]",
    "test_sparsegpt_runs_and_reloads",
    "test_needs_a_tokenizer",
    "test_recipe_maps_patterns_and_ignores",
}


@pytest.mark.slow
@pytest.mark.skipif(IN_SUBPROCESS, reason="already inside the llmc-site subprocess")
@pytest.mark.skipif(
    not (LLMC_SITE / "llmcompressor").is_dir(),
    reason=f"no llmcompressor in {LLMC_SITE}: scripts/setup.sh installs it there "
    "(llmcompressor 0.14.0.1 with the transformers 5.17 it pins)",
)
def test_parity_in_llmc_site(tmp_path):
    """Built-in sequential Wanda masks == llm-compressor's (unstructured and 2:4) on a tiny
    in-process Llama, run in a subprocess that imports llmcompressor from ``LLMC_SITE``."""
    report = tmp_path / "junit.xml"
    env = dict(os.environ, DATAPRUNE_LLMC_SUBPROCESS="1", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(LLMC_SITE), os.environ.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(Path(__file__).relative_to(REPO)),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    cases = {c.get("name"): c for c in ET.parse(report).iter("testcase")}
    for name in LLMC_TESTS:
        assert name in cases, (name, sorted(cases))
        outcome = {child.tag for child in cases[name]} & {"skipped", "failure", "error"}
        assert not outcome, ET.tostring(cases[name], encoding="unicode")[:2000]
    props = {
        p.get("name"): p.get("value")
        for p in cases["test_wanda_masks_match_builtin_sequential[0.5-None]"].iter("property")
    }
    # the llmcompressor and transformers versions came from the site folder, not the venv
    assert props["llmcompressor_file"].startswith(str(LLMC_SITE)), props
    assert props["transformers_file"].startswith(str(LLMC_SITE)), props


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
def test_wanda_masks_match_builtin_sequential(model, calib, sparsity, pattern, record_property):
    import llmcompressor
    import transformers

    for mod in (llmcompressor, transformers):
        record_property(f"{mod.__name__}_version", mod.__version__)
        record_property(f"{mod.__name__}_file", mod.__file__)
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
