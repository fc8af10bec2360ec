from __future__ import annotations

import pytest

from dataprune import precision
from dataprune.errors import UnknownOptionError

_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 {}\n\n"


@pytest.mark.parametrize(
    ("extra_flags", "fast"),
    [
        ("avx512f amx_tile amx_bf16", True),  # AMX only
        ("avx512f avx512_bf16", True),  # AVX512-BF16 without AMX
        ("avx512f avx512_vnni", False),  # neither
        ("", False),  # e.g. an AMD EPYC without AVX512-BF16
    ],
)
def test_auto_dtype_follows_the_cpu_flags(monkeypatch, tmp_path, extra_flags, fast):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(_CPUINFO.format(extra_flags) * 2)
    flags = precision.cpu_flags.__wrapped__(str(cpuinfo))
    assert flags == frozenset(f"fpu sse2 avx2 {extra_flags}".split())
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert precision.cpu_has_fast_bf16() is fast
    assert set(precision.cpu_bf16_flags()) == {f for f in flags if f.endswith("_bf16")}
    assert precision.fast_bf16("cpu") is fast
    assert precision.resolve_dtype("auto", "cpu") == ("bfloat16" if fast else "float32")
    for fixed in ("float32", "bfloat16", "float16"):  # explicit names pass through
        assert precision.resolve_dtype(fixed, "cpu") == fixed


def test_unreadable_cpuinfo_means_float32(monkeypatch, tmp_path):
    assert precision.cpu_flags.__wrapped__(str(tmp_path / "missing")) == frozenset()
    monkeypatch.setattr(precision, "cpu_flags", frozenset)
    assert not precision.cpu_has_fast_bf16()
    assert precision.resolve_dtype("auto") == "float32"


@pytest.mark.parametrize("supported", [True, False])
def test_auto_dtype_on_cuda_asks_torch(monkeypatch, supported):
    import torch

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda **k: calls.append(k) or supported)
    expected = "bfloat16" if supported else "float32"  # whatever the CPU says
    assert precision.resolve_dtype("auto", "cuda") == expected
    assert precision.resolve_dtype("auto", "cuda:1") == expected
    assert precision.fast_bf16("mps") is False
    # native bf16 only: torch counts emulated bf16 (T4, V100) as supported by default
    assert calls and all(k == {"including_emulation": False} for k in calls)


def test_bad_dtype_lists_the_valid_names():
    import torch

    with pytest.raises(UnknownOptionError, match="valid: auto, bfloat16, float32, float16"):
        precision.resolve_dtype("fp8")
    with pytest.raises(UnknownOptionError, match=r"torch\.dtype, got int"):
        precision.resolve_dtype(16)
    assert precision.resolve_dtype(torch.float64) is torch.float64
