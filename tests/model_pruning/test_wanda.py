from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from model_pruning_helpers import tiny_gpt2, zero_masks

from dataprune.calibration import CalibrationSet
from dataprune.errors import DataValidationError
from dataprune.model_pruning import (
    MagnitudePruner,
    UnsupportedModelError,
    WandaPruner,
    find_decoder_blocks,
    get_model_pruner,
)

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _reference_masks(model, calib, sparsity, *, sequential):
    """Independent Wanda: full-model forwards with input hooks, numpy argsort per row.

    Sequential: block i is calibrated by running the whole model with blocks < i already pruned.
    """
    model = copy.deepcopy(model)
    blocks = model.model.layers
    ids = torch.from_numpy(calib.input_ids)

    def stats(block_ids):
        acc = {}
        hooks = []
        for bi in block_ids:
            for name in LINEARS:
                lin = blocks[bi].get_submodule(
                    ("self_attn." if name in LINEARS[:4] else "mlp.") + name
                )

                def hook(mod, args, out, key=(bi, name)):
                    x = args[0].reshape(-1, args[0].shape[-1]).double()
                    acc[key] = acc.get(key, 0) + (x**2).sum(0)

                hooks.append(lin.register_forward_hook(hook))
        with torch.no_grad():
            model(input_ids=ids)
        for h in hooks:
            h.remove()
        return acc

    def prune(acc):
        for (bi, name), sq in acc.items():
            lin = blocks[bi].get_submodule(("self_attn." if name in LINEARS[:4] else "mlp.") + name)
            w = lin.weight.data
            score = w.abs().double().numpy() * np.sqrt(sq.numpy())[None, :]
            k = int(w.shape[1] * sparsity)
            order = np.argsort(score, axis=1, kind="stable")[:, :k]
            m = np.zeros(w.shape, bool)
            np.put_along_axis(m, order, True, axis=1)
            w[torch.from_numpy(m)] = 0

    if sequential:
        for bi in range(len(blocks)):
            prune(stats([bi]))
    else:
        prune(stats(range(len(blocks))))
    return zero_masks(model)


@pytest.mark.parametrize("sequential", [True, False])
def test_matches_reference_implementation(model, calib, sequential):
    ref = _reference_masks(model, calib, 0.5, sequential=sequential)
    WandaPruner(sparsity=0.5, sequential=sequential, batch_size=4).prune(model, calib)
    got = zero_masks(model)
    assert got.keys() == ref.keys()
    for k in got:
        assert torch.equal(got[k], ref[k]), k


def test_sequential_and_one_pass_differ_and_both_differ_from_magnitude(model, calib):
    a, b, c = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    WandaPruner(sparsity=0.5, sequential=True).prune(a, calib)
    WandaPruner(sparsity=0.5, sequential=False).prune(b, calib)
    MagnitudePruner(sparsity=0.5, comparison="row").prune(c, calib)
    ma, mb, mc = zero_masks(a), zero_masks(b), zero_masks(c)
    first = "model.layers.0.self_attn.q_proj.weight"
    last = "model.layers.2.mlp.down_proj.weight"
    assert torch.equal(ma[first], mb[first])  # block 0 sees the same (dense) inputs
    assert not torch.equal(ma[last], mb[last])  # later blocks see pruned vs dense inputs
    assert not torch.equal(mb[first], mc[first])  # activations change the ranking


def test_unstructured_report_and_untouched_parts(model, calib):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = WandaPruner(sparsity=0.5).prune(model, calib)
    after = model.state_dict()
    assert len(report.layers) == 3 * 7
    assert report.total_sparsity == pytest.approx(0.5)
    assert report.block_path == "model.layers"
    assert report.n_calibration_samples == 6 and report.n_calibration_tokens == 6 * 24
    assert report.time_s > 0 and report.calibration == {"selector": "test"}
    for lr in report.layers:
        w = model.get_submodule(lr.name).weight
        assert ((w == 0).sum(dim=1) == w.shape[1] // 2).all(), lr.name
    for k in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"):
        assert torch.equal(before[k], after[k]), k
    d = report.to_dict()
    assert d["total_sparsity"] == 0.5 and d["n_layers"] == 21 and len(d["layers"]) == 21
    assert "| **total** |" in report.to_markdown()
    assert "wanda unstructured: 50.00% zeros in 21 layers" in report.summary()


def test_two_four_pattern(model, calib):
    report = get_model_pruner("wanda", pattern="2:4").prune(model, calib)
    assert report.pattern == "2:4" and report.total_sparsity == pytest.approx(0.5)
    for lr in report.layers:
        w = model.get_submodule(lr.name).weight
        groups = (w == 0).reshape(w.shape[0], -1, 4).sum(dim=2)
        assert (groups >= 2).all(), lr.name


def test_padding_is_not_counted(model, tok):
    rng = np.random.default_rng(3)
    lengths = [24, 9, 17, 12]
    rows = [rng.integers(4, len(tok), size=n) for n in lengths]
    ids = np.zeros((4, 24), np.int64)
    mask = np.zeros((4, 24), np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    padded = CalibrationSet(ids, mask, {})
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    # batch_size=4 pads three samples inside the batch; batch_size=1 never pads
    WandaPruner(sparsity=0.5, sequential=False, batch_size=4).prune(a, padded)
    WandaPruner(sparsity=0.5, sequential=False, batch_size=1).prune(b, padded)
    ma, mb = zero_masks(a), zero_masks(b)
    agree = np.mean([float((ma[k] == mb[k]).float().mean()) for k in ma])
    assert agree > 0.999
    # while counting the pad tokens would change the masks
    c = copy.deepcopy(model)
    full = CalibrationSet(ids, np.ones_like(ids), {})
    WandaPruner(sparsity=0.5, sequential=False, batch_size=4).prune(c, full)
    mc = zero_masks(c)
    assert any(not torch.equal(ma[k], mc[k]) for k in ma)


def test_deterministic(model, calib):
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    WandaPruner(sparsity=0.6).prune(a, calib)
    WandaPruner(sparsity=0.6).prune(b, calib)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_accepts_tensor_and_list_calibration(model, calib):
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    WandaPruner(sparsity=0.5).prune(a, torch.from_numpy(calib.input_ids))
    WandaPruner(sparsity=0.5).prune(b, calib.to_list())
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_save_and_reload(model, calib, tmp_path):
    from transformers import AutoModelForCausalLM

    WandaPruner(pattern="2:4").prune(model, calib)
    model.save_pretrained(tmp_path / "m")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    x = torch.from_numpy(calib.input_ids[:2])
    with torch.no_grad():
        assert torch.allclose(model(x).logits, again(x).logits)


def test_bf16_model(model, calib):
    m = copy.deepcopy(model).to(torch.bfloat16)
    report = WandaPruner(sparsity=0.5).prune(m, calib)
    assert report.total_sparsity == pytest.approx(0.5)
    assert m.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16


def test_gpt2_conv1d_blocks(tok, calib):
    m = tiny_gpt2(len(tok))
    assert find_decoder_blocks(m)[0] == "transformer.h"
    report = WandaPruner(sparsity=0.5).prune(m, calib)
    names = [lr.name for lr in report.layers]
    assert "transformer.h.0.attn.c_attn" in names and "transformer.h.1.mlp.c_proj" in names
    for lr in report.layers:
        w = m.get_submodule(lr.name).weight  # Conv1D: (in, out); rows of W^T are outputs
        assert ((w.t() == 0).sum(dim=1) == w.shape[0] // 2).all(), lr.name
    assert report.total_sparsity == pytest.approx(0.5)


def test_blocks_found_generically_not_by_attribute_name(tok, calib):
    m = tiny_gpt2(len(tok))
    m.transformer.blocks_renamed = m.transformer.h  # a second reference must not confuse it
    del m.transformer.blocks_renamed
    path, blocks = find_decoder_blocks(m)
    assert path == "transformer.h" and len(blocks) == 2


def test_ignore_patterns(model, calib):
    report = WandaPruner(sparsity=0.5, ignore=[r"down_proj$"]).prune(model, calib)
    assert not any(lr.name.endswith("down_proj") for lr in report.layers)
    assert not (model.model.layers[0].mlp.down_proj.weight == 0).any()


def test_nm_on_indivisible_width_leaves_layer_dense(tok, calib):
    from tiny_models import tiny_llama

    m = tiny_llama(len(tok), hidden_size=24, n_layers=1)  # in_features 24 (and 48 for down_proj)
    report = WandaPruner(pattern="8:16").prune(m, calib)
    assert [lr.name for lr in report.layers] == ["model.layers.0.mlp.down_proj"]
    assert all("not divisible by M=16" in s["reason"] for s in report.skipped)
    assert {s["layer"].rsplit(".", 1)[1] for s in report.skipped} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
    }


def test_errors(model, calib):
    with pytest.raises(DataValidationError, match="needs calibration data"):
        WandaPruner(sparsity=0.5).prune(model, None)
    with pytest.raises(DataValidationError, match="strictly between 0 and 1"):
        WandaPruner(sparsity=2).prune(model, calib)
    with pytest.raises(DataValidationError, match="batch_size must be >= 1"):
        WandaPruner(sparsity=0.5, batch_size=0).prune(model, calib)
    with pytest.raises(UnsupportedModelError, match="no decoder blocks with linear layers"):
        WandaPruner(sparsity=0.5).prune(torch.nn.Sequential(torch.nn.Embedding(10, 4)), calib)
    no_linear = torch.nn.Module()
    no_linear.layers = torch.nn.ModuleList([torch.nn.LayerNorm(4) for _ in range(3)])
    with pytest.raises(UnsupportedModelError, match="no decoder blocks with linear layers"):
        MagnitudePruner(sparsity=0.5).prune(no_linear)
    with pytest.raises(UnsupportedModelError, match="not a submodule"):
        WandaPruner(sparsity=0.5, block_path="model.nope").prune(model, calib)
    with pytest.raises(UnsupportedModelError, match="hold no linear layers left"):
        WandaPruner(sparsity=0.5, ignore=[".*"]).prune(model, calib)


def test_magnitude_layer_and_row(model):
    w0 = model.model.layers[1].mlp.up_proj.weight.detach().clone()
    report = MagnitudePruner(sparsity=0.25).prune(copy.deepcopy(model))
    assert report.requires_calibration if hasattr(report, "requires_calibration") else True
    assert report.n_calibration_samples is None
    m = copy.deepcopy(model)
    MagnitudePruner(sparsity=0.25).prune(m)
    w = m.model.layers[1].mlp.up_proj.weight
    assert int((w == 0).sum()) == int(w.numel() * 0.25)
    assert w0[w == 0].abs().max() <= w0[w != 0].abs().min()
    m2 = copy.deepcopy(model)
    MagnitudePruner(sparsity=0.25, comparison="row").prune(m2)
    w2 = m2.model.layers[1].mlp.up_proj.weight
    assert ((w2 == 0).sum(dim=1) == w2.shape[1] // 4).all()
