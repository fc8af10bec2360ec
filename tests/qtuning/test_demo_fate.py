"""The demo's account of why a sample was kept or dropped (``dataprune demo``, triage step)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dataprune.demo.step_30_triage import _fate
from dataprune.qtuning import QTuningConfig, triage_samples
from dataprune.qtuning.sample_triage import ABRUPT_END, CORNER, FILL_UP, TRIMMED


def _result(fill: str, **kw):
    rng = np.random.default_rng(0)
    ppl = np.exp(rng.normal(1.5, 0.5, 40))
    ent = rng.normal(1.5, 0.3, 40)
    cfg = QTuningConfig(sample_ratio=0.25, fill=fill)
    tri = triage_samples(ppl, ent, cfg, random_state=0, **kw)
    return SimpleNamespace(samples=tri, config=cfg, perplexity=ppl, entropy=ent)


def test_every_selection_names_the_rule_that_decided():
    res = _result("random")
    sel = res.samples.selection
    trimmed = int(np.flatnonzero(sel == TRIMMED)[0])
    text = _fate(res, trimmed)
    assert text.startswith(f"dropped (labelled Q{res.samples.quadrant[trimmed]}): in the Q")
    assert "not taken by the fill=random draw" in text and "another random_state" in text
    fill = int(np.flatnonzero(sel == FILL_UP)[0])
    assert "kept by the fill=random fill-up" in _fate(res, fill)

    uniform = _result("uniform")
    corner = int(np.flatnonzero(uniform.samples.selection == CORNER)[0])
    assert f"kept: in the Q{uniform.samples.quadrant[corner]} corner at alpha=" in _fate(
        uniform, corner
    )
    dropped = int(np.flatnonzero(~uniform.samples.kept & (uniform.samples.selection == 0))[0])
    assert _fate(uniform, dropped).endswith(
        "outside the corners and not reached by the fill=uniform fill-up"
    )
    # a deterministic order trims a surplus of corner samples: no other draw would keep them
    ppl, ent = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])
    cfg = QTuningConfig(sample_ratio=0.25, fill="uniform")
    tri = triage_samples(ppl, ent, cfg)
    assert tri.selection[3] == TRIMMED
    over = SimpleNamespace(samples=tri, config=cfg, perplexity=ppl, entropy=ent)
    assert _fate(over, 3) == (
        f"dropped (labelled Q1): in the Q2 corner at alpha={tri.alpha:.3f} but trimmed by the "
        "fill=uniform order to reach exactly K"
    )

    flags = np.zeros(40, dtype=bool)
    flags[3] = True
    flagged = _result("random", noise=flags)
    assert flagged.samples.selection[3] == ABRUPT_END
    assert _fate(flagged, 3).endswith("left out by the 'abrupt end' noise rule")

    groups = np.repeat(["a", "b"], 20)
    per_source = _result("random", groups=groups)
    assert not per_source.samples.thresholds
    trimmed = np.flatnonzero(per_source.samples.selection == TRIMMED)
    assert all("in a corner but not taken" in _fate(per_source, int(i)) for i in trimmed)
