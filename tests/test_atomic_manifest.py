from __future__ import annotations

import json

import numpy as np
import pytest

from dataprune.atomic import atomic_write, atomic_write_json
from dataprune.manifest import RunTimer, build_manifest, manifest_path, write_manifest


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(p) as fh:
        fh.write("new partial")
        raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.txt"]


def test_atomic_json_handles_numpy(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3)})
    assert json.loads(p.read_text()) == {"a": 3, "b": 0.5, "c": [0, 1, 2]}


def test_json_nan_as_null_is_strict(tmp_path):
    import math

    p = tmp_path / "r.json"
    obj = {"a": float("nan"), "b": [1.5, np.float64("inf"), (np.float32("nan"),)], "c": "x"}
    atomic_write_json(p, obj, nan_as_null=True)
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None, [None]], "c": "x"}
    assert math.isnan(obj["a"])  # the caller's object is not modified
    atomic_write_json(p, {"a": float("nan")})  # default: json.dump's own tokens
    assert "NaN" in p.read_text()


def test_manifest_contents(tmp_path):
    out = tmp_path / "out.jsonl"
    m = build_manifest(
        command="dataprune test",
        parameters={"k": 1},
        random_state=7,
        inputs={"in.jsonl": "abc"},
        counts={"n_input": 3, "n_output": 2},
        timer=RunTimer(),
    )
    path = write_manifest(out, m)
    assert path == manifest_path(out) == tmp_path / "out.jsonl.manifest.json"
    data = json.loads(path.read_text())
    assert data["random_state"] == 7
    assert data["versions"]["dataprune"] == "0.1.0"
    assert data["versions"]["numpy"] == np.__version__
    assert data["wall_time_s"] >= 0
    assert data["inputs"] == {"in.jsonl": "abc"}
