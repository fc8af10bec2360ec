"""DSnoT mask refinement: the functional core, the streaming statistics, the pruners, the CLI."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from model_pruning_helpers import random_layer as _layer
from model_pruning_helpers import zero_masks

from dataprune.cli.main import main
from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.io import write_records
from dataprune.model_pruning import (
    DSnoTConfig,
    InputMoments,
    MagnitudePruner,
    WandaPruner,
    dsnot_refine_mask,
    expected_reconstruction_error,
    get_mask_refiner,
)
from dataprune.model_pruning.masks import prune_mask, wanda_scores
from dataprune.model_pruning.patterns import resolve_sparsity
from dataprune.model_pruning.structure import PrunableLayer, layer_part

from tiny_models import CORPUS


def _wanda_and_dsnot(w, x, pattern=None, sparsity=0.6, **config):
    spec = resolve_sparsity(None if pattern else sparsity, pattern)
    wanda = prune_mask(wanda_scores(w, (x * x).sum(0)), spec)
    refined = dsnot_refine_mask(
        w,
        wanda,
        x.mean(0),
        x.var(0, unbiased=False),
        pattern=pattern,
        config={"agree_halves": False, **config},  # the halves: test_dsnot_halves.py
        tokens_per_sequence=x.shape[0] / 4,  # the calibration tokens as 4 sequences
    )
    return wanda, refined


def _recon_error(w, x, mask):
    """||X W^T - X (W * kept)^T||^2 on the calibration inputs (mask True = pruned)."""
    return float(((x @ (w * mask).T) ** 2).sum())


def test_same_zeros_per_row_and_a_valid_two_four_pattern():
    w, x = _layer(0)
    wanda, refined = _wanda_and_dsnot(w, x, sparsity=0.6)
    assert refined.dtype == torch.bool and refined.shape == w.shape
    assert torch.equal(refined.sum(dim=1), wanda.sum(dim=1))
    assert (refined != wanda).any()  # swaps were made
    wanda, refined = _wanda_and_dsnot(w, x, pattern="2:4")
    groups = refined.reshape(w.shape[0], -1, 4).sum(dim=2)
    assert (groups == 2).all()  # every group of 4 keeps 2 weights: still 2:4
    assert (refined != wanda).any()


@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_lowers_the_reconstruction_error_of_wanda(pattern):
    strictly_lower = 0
    for seed in range(6):
        w, x = _layer(seed)
        wanda, refined = _wanda_and_dsnot(w, x, pattern=pattern)
        before, after = _recon_error(w, x, wanda), _recon_error(w, x, refined)
        assert after <= before, (seed, before, after)
        strictly_lower += after < 0.95 * before
    assert strictly_lower == 6


@pytest.mark.parametrize("objective", ["mse", "mean"])
def test_its_own_estimate_never_rises_even_on_zero_mean_inputs(objective):
    key = "mean_sq_error" if objective == "mse" else "mean_abs_error"
    for seed in range(4):
        w, x = _layer(seed, mean_scale=0.0 if seed % 2 else 0.3)
        wanda, refined = _wanda_and_dsnot(w, x, objective=objective)
        mu, var = x.mean(0), x.var(0, unbiased=False)
        before = expected_reconstruction_error(w, wanda, mu, var)[key]
        after = expected_reconstruction_error(w, refined, mu, var)[key]
        assert after <= before * (1 + 1e-5), (seed, before, after)


def test_options_change_the_result_and_the_threshold_stops_rows():
    w, x = _layer(1)
    wanda, default = _wanda_and_dsnot(w, x)
    _, one_cycle = _wanda_and_dsnot(w, x, max_cycles=1)
    assert int((one_cycle & ~wanda).sum()) <= w.shape[0] < int((default & ~wanda).sum())
    _, none = _wanda_and_dsnot(w, x, update_threshold=1e9)
    assert torch.equal(none, wanda)
    _, plain_gain = _wanda_and_dsnot(w, x, variance_power=0.0)
    assert not torch.equal(plain_gain, default)


def test_deterministic_and_dtype_independent_statistics():
    w, x = _layer(2)
    a = _wanda_and_dsnot(w, x)[1]
    b = _wanda_and_dsnot(w.clone(), x.clone())[1]
    assert torch.equal(a, b)
    wanda = prune_mask(wanda_scores(w, (x * x).sum(0)), resolve_sparsity(0.6))
    half = dsnot_refine_mask(
        w.to(torch.bfloat16),
        wanda,
        x.mean(0),
        x.var(0, unbiased=False),
        config={"agree_halves": False},
    )
    assert half.dtype == torch.bool and torch.equal(half.sum(1), wanda.sum(1))


def test_input_moments_stream_over_batches_and_skip_padding():
    lin = torch.nn.Linear(8, 4)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, 5, 8, generator=g) * 3 + 1 for _ in range(3)]
    masks = [torch.ones(2, 5, dtype=torch.bool) for _ in range(3)]
    masks[1][1, 2:] = False  # padding
    masks[2][0, :] = False  # an all-padding sequence
    with InputMoments([PrunableLayer("lin", lin)]) as moments, torch.no_grad():
        for xb, mb in zip(batches, masks):
            moments.token_mask = mb
            lin(xb)
    real = torch.cat([xb[mb] for xb, mb in zip(batches, masks)]).double()
    assert torch.allclose(moments.sq_norms["lin"].double(), (real**2).sum(0), rtol=1e-5)
    stats = moments.pop("lin")
    assert stats.n_tokens == real.shape[0] == 22 and stats.n_sequences == 5
    assert stats.tokens_per_sequence == pytest.approx(22 / 5)
    assert torch.allclose(stats.mean.double(), real.mean(0), atol=1e-5)
    assert torch.allclose(stats.var.double(), real.var(0, unbiased=False), rtol=1e-4)
    assert moments.pop("lin") is None


def _row_errors(w, x, mask):
    """Per output row: the squared error summed over the calibration tokens."""
    return ((x @ (w * mask).T) ** 2).sum(0)


def test_full_objective_lowers_the_exact_calibration_error_of_every_row():
    for seed, pattern in ((0, None), (1, "2:4")):
        w, x = _layer(seed)
        gram = x.T @ x / x.shape[0]
        spec = resolve_sparsity(None if pattern else 0.6, pattern)
        wanda = prune_mask(wanda_scores(w, (x * x).sum(0)), spec)
        stats = (x.mean(0), x.var(0, unbiased=False))
        kw = {"pattern": pattern, "tokens_per_sequence": x.shape[0] / 4}
        full = dsnot_refine_mask(
            w,
            wanda,
            *stats,
            config={"objective": "mse_full", "agree_halves": False},
            second_moment=gram,
            **kw,
        )
        diag = dsnot_refine_mask(
            w, wanda, *stats, config={"objective": "mse", "agree_halves": False}, **kw
        )
        assert torch.equal(full.sum(1), wanda.sum(1)) and not torch.equal(full, wanda)

        # every swap lowered its row's exact error, so no row ends above where it started
        assert (_row_errors(w, x, full) <= _row_errors(w, x, wanda) * (1 + 1e-5)).all()
        assert _recon_error(w, x, full) < _recon_error(w, x, diag)  # correlations count here
        exact = expected_reconstruction_error(w, full, *stats, second_moment=gram)
        assert exact["mean_sq_error"] == pytest.approx(
            float(_row_errors(w, x, full).mean()) / x.shape[0], rel=1e-4
        )


def test_full_objective_needs_the_second_moment():
    w, x = _layer(2)
    wanda = prune_mask(wanda_scores(w, (x * x).sum(0)), resolve_sparsity(0.6))
    with pytest.raises(DataValidationError, match="needs second_moment"):
        dsnot_refine_mask(
            w, wanda, x.mean(0), x.var(0, unbiased=False), config={"objective": "mse_full"}
        )
    assert get_mask_refiner("dsnot", {"objective": "mse_full"}).needs_second_moment
    assert not get_mask_refiner("dsnot").needs_second_moment


def test_input_moments_second_moment_over_real_tokens():
    lin = torch.nn.Linear(6, 3)
    g = torch.Generator().manual_seed(3)
    batches = [torch.randn(2, 4, 6, generator=g) + 0.5 for _ in range(2)]
    masks = [torch.ones(2, 4, dtype=torch.bool), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]).bool()]
    layers = [PrunableLayer("lin", lin)]
    with InputMoments(layers, second_moment=True) as moments, torch.no_grad():
        for xb, mb in zip(batches, masks):
            moments.token_mask = mb
            lin(xb)
    real = torch.cat([xb[mb] for xb, mb in zip(batches, masks)])
    stats = moments.pop("lin")
    assert torch.allclose(stats.second_moment, real.T @ real / real.shape[0], atol=1e-5)
    with InputMoments(layers) as plain, torch.no_grad():
        lin(batches[0])
    assert plain.pop("lin").second_moment is None


def test_layers_sharing_an_input_share_its_statistics_and_no_other_layer_does():
    # gate/up (q/k/v) receive the same tensor: the statistics pass derives the token matrix and
    # x^T x once for both; a different tensor, or the same one under another mask, is its own
    a, b, c = (torch.nn.Linear(6, 3) for _ in range(3))
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2, 4, 6, generator=g), torch.randn(2, 4, 6, generator=g)
    full, half = (
        torch.ones(2, 4, dtype=torch.bool),
        torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]).bool(),
    )
    layers = [PrunableLayer(n, m) for n, m in (("a", a), ("b", b), ("c", c))]
    with InputMoments(layers, second_moment=True) as moments, torch.no_grad():
        moments.token_mask = full
        c(y), a(x), b(x)
        moments.token_mask = half  # the same tensor x next, under another mask
        a(x), b(x), c(x)
    sa, sb, sc = (moments.pop(n) for n in "abc")
    xs = torch.cat([x.reshape(-1, 6), x[half]])
    ys = torch.cat([y.reshape(-1, 6), x[half]])
    for st, ref in ((sa, xs), (sb, xs), (sc, ys)):
        assert st.n_tokens == ref.shape[0] == 11
        assert torch.allclose(st.second_moment, ref.T @ ref / ref.shape[0], atol=1e-5)
        assert torch.allclose(st.mean, ref.mean(0), atol=1e-6)
        assert torch.allclose(st.var, ref.var(0, unbiased=False), atol=1e-5)
    assert torch.allclose(moments.sq_norms["c"], (ys * ys).sum(0), atol=1e-5)


def test_wanda_with_full_objective_end_to_end(model, calib):
    refined = copy.deepcopy(model)
    report = WandaPruner(
        sparsity=0.6, refine="dsnot", refine_config={"objective": "mse_full"}
    ).prune(refined, calib)
    r = report.refine
    assert r.config["objective"] == "mse_full" and r.n_swaps > 0
    # the report's squared errors are then exact on the calibration tokens: never raised
    assert all(lay.sq_error_after <= lay.sq_error_before * (1 + 1e-4) for lay in r.layers)


def test_input_moments_only_for_the_layers_a_refinement_touches():
    a, b = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))
    layers = [PrunableLayer("a", a), PrunableLayer("b", b)]
    with InputMoments(layers, moments_for=lambda name: name == "b") as moments, torch.no_grad():
        a(x), b(x)
    assert torch.equal(moments.sq_norms["a"], moments.sq_norms["b"])  # norms for both (Wanda)
    assert moments.pop("a") is None  # no means and variances for a skipped layer
    assert torch.allclose(moments.pop("b").mean, x.reshape(-1, 8).mean(0), atol=1e-6)


def test_wanda_with_dsnot_end_to_end(model, calib):
    plain, refined = copy.deepcopy(model), copy.deepcopy(model)
    plain_report = WandaPruner(sparsity=0.6).prune(plain, calib)
    report = WandaPruner(sparsity=0.6, refine="dsnot").prune(refined, calib)
    for lr in report.layers:  # Wanda's per-row sparsity, kept exactly
        w = refined.get_submodule(lr.name).weight
        assert ((w == 0).sum(dim=1) == int(w.shape[1] * 0.6)).all(), lr.name
    assert report.n_zeros == plain_report.n_zeros and plain_report.refine is None
    a, b = zero_masks(plain), zero_masks(refined)
    assert any(not torch.equal(a[n], b[n]) for n in a)
    r = report.refine
    assert r is not None and r.method == "dsnot" and r.config["skip"] == "attention"
    mlp = [lr.name for lr in report.layers if layer_part(lr.name) == "mlp"]
    assert [lay.name for lay in r.layers] == mlp and 0 < len(mlp) < 21  # the default: MLP only
    for lr in report.layers:  # block 0's attention (same inputs in both runs) keeps Wanda's masks
        if lr.name not in mlp and ".layers.0." in lr.name:
            assert torch.equal(a[f"{lr.name}.weight"], b[f"{lr.name}.weight"]), lr.name
    assert r.config == DSnoTConfig().to_dict() and r.n_swaps > 0 and r.time_s > 0
    assert all(lay.sq_error_after <= lay.sq_error_before * (1 + 1e-5) for lay in r.layers)
    assert sum(lay.abs_error_after for lay in r.layers) < sum(
        lay.abs_error_before for lay in r.layers
    )
    d = report.to_dict()
    assert d["refine"]["n_swaps"] == r.n_swaps and len(d["refine"]["layers"]) == len(mlp)
    assert d["refine"]["prune_time_s"] == pytest.approx(report.time_s - r.time_s, abs=2e-3)
    assert d["params"]["refine"] == "dsnot" and d["params"]["refine_config"]["max_cycles"] == 5
    assert "dsnot refinement:" in report.summary()
    json.dumps(d)


def test_two_four_magnitude_and_one_pass(model, calib):
    m = copy.deepcopy(model)
    report = MagnitudePruner(pattern="2:4", refine="dsnot", refine_config={"max_cycles": 5}).prune(
        m, calib
    )
    assert report.total_sparsity == pytest.approx(0.5) and report.refine.n_swaps > 0
    for lr in report.layers:
        w = m.get_submodule(lr.name).weight
        assert ((w == 0).reshape(w.shape[0], -1, 4).sum(dim=2) == 2).all(), lr.name
    assert report.n_calibration_samples == 6
    seq, one = copy.deepcopy(model), copy.deepcopy(model)
    WandaPruner(sparsity=0.5, refine="dsnot").prune(seq, calib)
    WandaPruner(sparsity=0.5, refine="dsnot", sequential=False).prune(one, calib)
    first = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(zero_masks(seq)[first], zero_masks(one)[first])  # same (dense) inputs
    x, y = copy.deepcopy(model), copy.deepcopy(model)
    WandaPruner(sparsity=0.5, refine="dsnot").prune(x, calib)
    WandaPruner(sparsity=0.5, refine="dsnot").prune(y, calib)
    for key, v in x.state_dict().items():
        assert torch.equal(v, y.state_dict()[key]), key


@pytest.mark.parametrize("skip", ["mlp", "attention"])
def test_skip_leaves_one_part_of_every_block_as_the_pruner_made_it(model, calib, skip):
    # one dense pass: every layer's statistics come from the dense model, so masks compare
    plain, every, part = (copy.deepcopy(model) for _ in range(3))
    WandaPruner(sparsity=0.6, sequential=False).prune(plain, calib)
    WandaPruner(
        sparsity=0.6, sequential=False, refine="dsnot", refine_config={"skip": "none"}
    ).prune(every, calib)
    report = WandaPruner(
        sparsity=0.6, sequential=False, refine="dsnot", refine_config={"skip": skip}
    ).prune(part, calib)
    a, b, c = zero_masks(plain), zero_masks(every), zero_masks(part)
    refined = [lay.name for lay in report.refine.layers]
    assert refined and all(layer_part(n) != skip for n in refined)
    assert len(report.layers) == 21 and report.n_zeros == sum(int(m.sum()) for m in a.values())
    for name in a:
        layer = name.removesuffix(".weight")
        if layer_part(layer) == skip:
            assert torch.equal(c[name], a[name]), name  # Wanda's mask
        else:
            assert torch.equal(c[name], b[name]), name  # as refined with every layer
    assert any(not torch.equal(c[n], a[n]) for n in a)


def test_layer_part_from_module_names():
    attention = ["model.layers.0.self_attn.q_proj", "transformer.h.1.attn.c_attn",
                 "transformer.h.2.self_attention.dense", "model.decoder.layers.3.self_attn.out_proj"]  # fmt: skip
    mlp = ["model.layers.0.mlp.down_proj", "model.decoder.layers.3.fc1", "transformer.h.1.mlp.c_fc",
           "model.layers.2.feed_forward.w1"]  # fmt: skip
    assert [layer_part(n) for n in attention] == ["attention"] * 4
    assert [layer_part(n) for n in mlp] == ["mlp"] * 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_cycles": 0}, "max_cycles must be an integer >= 1"),
        ({"max_cycles": 2.5}, "max_cycles must be an integer >= 1"),
        ({"update_threshold": -1}, "update_threshold must be a finite number >= 0"),
        ({"variance_power": float("nan")}, "variance_power must be a finite number >= 0"),
        ({"objective": "median"}, "objective must be one of mse, mse_full, mean"),
        ({"keep_sign": "yes"}, "keep_sign must be True or False"),
        ({"skip": "ffn"}, "skip must be one of none, attention, mlp"),
    ],
)
def test_bad_config_values(options, message):
    with pytest.raises(DataValidationError, match=message):
        DSnoTConfig(**options)
    with pytest.raises(DataValidationError, match=message):
        WandaPruner(sparsity=0.5, refine="dsnot", refine_config=options)._validate()


def test_config_from_options_is_the_shared_config_mechanism():
    """``config=`` takes None, a DSnoTConfig or a mapping (ConfigMixin.from_options)."""
    cfg = DSnoTConfig(max_cycles=3)
    assert DSnoTConfig.from_options(None) == DSnoTConfig()
    assert DSnoTConfig.from_options(cfg) is cfg
    assert DSnoTConfig.from_options({"max_cycles": 3}) == cfg
    with pytest.raises(UnknownOptionError, match="unknown DSnoTConfig field"):
        DSnoTConfig.from_options({"cycles": 3})
    with pytest.raises(DataValidationError, match="DSnoTConfig options must be a mapping"):
        DSnoTConfig.from_options(3)


def test_errors(model, calib):
    with pytest.raises(UnknownOptionError, match=r"unknown mask refinement 'dsnoot'; valid: dsnot"):
        WandaPruner(sparsity=0.5, refine="dsnoot").prune(model, calib)
    with pytest.raises(UnknownOptionError, match="valid: agree_halves, keep_sign, max_cycles"):
        get_mask_refiner("dsnot", {"cycles": 3})
    with pytest.raises(DataValidationError, match="refine_config is set but refine is None"):
        WandaPruner(sparsity=0.5, refine_config={"max_cycles": 3}).prune(model, calib)
    with pytest.raises(
        DataValidationError, match=r"MagnitudePruner\(refine='dsnot'\) needs calibration"
    ):
        MagnitudePruner(sparsity=0.5, refine="dsnot").prune(model)
    assert MagnitudePruner(sparsity=0.5, refine="dsnot").requires_calibration
    assert not MagnitudePruner(sparsity=0.5).requires_calibration
    w, x = _layer(0, out=4, inp=8, tokens=16)
    mask = prune_mask(w.abs(), resolve_sparsity(0.5))
    mu, var = x.mean(0), x.var(0)
    with pytest.raises(DataValidationError, match="mask must be a tensor of the weight's shape"):
        dsnot_refine_mask(w, mask[:, :4], mu, var)
    with pytest.raises(DataValidationError, match="mask must be a bool tensor"):
        dsnot_refine_mask(w, mask.float(), mu, var)
    with pytest.raises(DataValidationError, match=r"mean must be a tensor of shape \(8,\)"):
        dsnot_refine_mask(w, mask, mu[:3], var)
    with pytest.raises(DataValidationError, match="var must be >= 0"):
        dsnot_refine_mask(w, mask, mu, -var)
    with pytest.raises(DataValidationError, match="does not follow the 2:4 pattern"):
        dsnot_refine_mask(w, torch.zeros_like(mask), mu, var, pattern="2:4")
    with pytest.raises(DataValidationError, match="tokens_per_sequence must be > 0"):
        dsnot_refine_mask(w, mask, mu, var, tokens_per_sequence=0)
    with pytest.raises(DataValidationError, match=r"agree_halves \(on by default\) needs halves"):
        dsnot_refine_mask(w, mask, mu, var)


def test_cli_refine_flag_reaches_the_pruner(tiny_dir, tmp_path, capsys, isolated_cache):
    pool = write_records(
        [{"text": f"{a} and {b}"} for a in CORPUS for b in CORPUS], tmp_path / "p.jsonl"
    )
    base = ["prune-model", "--model", str(tiny_dir), "--sparsity", "0.5", "--dtype", "float32"]
    calib = ["--calibration", str(pool), "--n-samples", "2", "--seq-len", "8"]
    out = tmp_path / "o"
    rc = main(
        [*base, "--method", "magnitude", "--refine", "dsnot", "--dsnot-max-cycles", "7",
         "--dsnot-objective", "mean", *calib, "-o", str(out)]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert "dsnot refinement:" in capsys.readouterr().out
    report = json.loads((out / "prune_report.json").read_text())
    assert report["method"] == "magnitude" and report["n_calibration_samples"] == 2
    assert report["refine"]["config"] == {
        **DSnoTConfig().to_dict(),
        "max_cycles": 7,
        "objective": "mean",
    }
    assert report["params"]["refine"] == "dsnot" and report["total_sparsity"] == 0.5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["refine"] == "dsnot"
    assert manifest["parameters"]["refine_config"]["max_cycles"] == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "magnitude", "--refine", "dsnot"], "--refine dsnot needs --calibration"),
        (["--method", "llmcompressor-wanda", "--refine", "dsnot"], "--refine works with --method"),
        (["--method", "magnitude", "--dsnot-max-cycles", "3"], "need --refine dsnot"),
    ],
)
def test_cli_bad_refine_options(extra, message, capsys, tmp_path):
    assert main(["prune-model", "--sparsity", "0.5", *extra, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--refine", "dsnoot"], "invalid choice: 'dsnoot'"),
        (["--dsnot-max-cycles", "0"], "argument --dsnot-max-cycles: expected an integer >= 1"),
        (["--dsnot-objective", "median"], "invalid choice: 'median'"),
    ],
)
def test_cli_rejects_bad_values_while_parsing(extra, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["prune-model", "--sparsity", "0.5", *extra, "--output", str(tmp_path / "o")])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_cli_help_takes_defaults_from_the_config(capsys):
    with pytest.raises(SystemExit):
        main(["prune-model", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    cfg = DSnoTConfig()
    assert "--dsnot-max-cycles MAX_CYCLES Prune-and-grow cycles at most" in text
    for value in (cfg.max_cycles, cfg.update_threshold, cfg.variance_power, cfg.objective):
        assert f"(default {value})" in text
    assert "--refine {dsnot}" in text
