"""Engines: ``Engine`` is abstract, and constructing a ``RayEngine`` starts nothing."""

from __future__ import annotations

import pytest

from dataprune.distributed.engines import Engine, LocalEngine, RayEngine


def test_engine_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        Engine()

    class Half(Engine):
        def map(self, fn, args, **kw):
            return [fn(*a) for a in args]

    with pytest.raises(TypeError, match="map_shards"):
        Half()
    assert LocalEngine().map(pow, [(2, 3)]) == [8]


def test_ray_engine_starts_ray_only_when_used():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    engine = RayEngine(num_cpus=1, init_kwargs={"include_dashboard": False})
    assert not ray.is_initialized()
    assert engine.init_kwargs == {"include_dashboard": False}  # stored as given
