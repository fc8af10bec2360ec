"""Whether this machine computes fast in bfloat16, and the ``"auto"`` dtype every model loader uses.

bfloat16 halves memory and, where the hardware has it, multiplies matrix-product speed: CUDA
GPUs with native bf16 (Ampere and later), and CPUs with AMX tiles (``amx_bf16``) or AVX512-BF16
dot-product instructions (``avx512_bf16``), which oneDNN uses for bf16 matmuls. Elsewhere PyTorch emulates bf16 matmuls, and they are far
slower than float32: on a 2-core AMD EPYC without those flags a SmolLM2-135M forward over 2 x 512
tokens took 16.1 s in bfloat16 against 2.7 s in float32, and an 8192 x 384 by 384 x 8192 product
95 s against 0.9 s. So ``dtype="auto"`` (the default of :func:`dataprune.models.load_causal_lm`,
the CLI's ``--dtype`` and the cell self-join) means bfloat16 where it is fast and float32
everywhere else; :func:`resolve_dtype` says which, and manifests record the resolved name.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = [
    "DTYPES",
    "FAST_BF16_CPU_FLAGS",
    "cpu_bf16_flags",
    "cpu_flags",
    "cpu_has_fast_bf16",
    "fast_bf16",
    "resolve_dtype",
]

#: ``/proc/cpuinfo`` flags under which bfloat16 matrix products are fast on CPU: AMX tiles
#: (``amx_bf16``) or the AVX512-BF16 dot-product instructions (``avx512_bf16``).
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
#: Names :func:`resolve_dtype` accepts; ``"auto"`` resolves to one of the others.
DTYPES = ("auto", "bfloat16", "float32", "float16")


@functools.cache
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags listed in ``path`` (first ``flags`` line); empty when unreadable."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_flags() -> tuple[str, ...]:
    """The :data:`FAST_BF16_CPU_FLAGS` this CPU lists in ``/proc/cpuinfo`` (may be empty)."""
    flags = cpu_flags()
    return tuple(f for f in FAST_BF16_CPU_FLAGS if f in flags)


def cpu_has_fast_bf16() -> bool:
    """True when the CPU lists ``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``.

    False where ``/proc/cpuinfo`` is missing (non-Linux): float32 is the safe choice there.
    """
    return bool(cpu_bf16_flags())


def fast_bf16(device: Any = "cpu") -> bool:
    """Whether bfloat16 matrix products are fast on ``device``: CUDA GPUs with native bf16
    (compute capability 8.0 or later, or ROCm; ``torch.cuda.is_bf16_supported`` without the
    emulation it counts by default, so a T4 or V100 says False), CPUs per
    :func:`cpu_has_fast_bf16`; other devices (``mps``, ...) False."""
    dev = str(device)
    if dev.startswith("cuda"):
        import torch

        return bool(
            torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        )
    if dev == "cpu" or dev.startswith("cpu:"):
        return cpu_has_fast_bf16()
    return False


def resolve_dtype(dtype: Any, device: Any = "cpu") -> Any:
    """Resolve a dtype option for ``device``.

    Parameters
    ----------
    dtype : {"auto", "bfloat16", "float32", "float16"} or torch.dtype
        ``"auto"`` -> ``"bfloat16"`` where :func:`fast_bf16` holds for ``device``, else
        ``"float32"``; other names and ``torch.dtype`` objects pass through.
    device : str or torch.device, default="cpu"

    Returns
    -------
    str or torch.dtype
        A name from :data:`DTYPES` other than ``"auto"``, or the given ``torch.dtype``.

    Raises
    ------
    UnknownOptionError
        For any other string or type (the message lists the valid names).
    """
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            from dataprune.errors import UnknownOptionError

            raise UnknownOptionError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
        if dtype != "auto":
            return dtype
        return "bfloat16" if fast_bf16(device) else "float32"
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    from dataprune.errors import UnknownOptionError

    raise UnknownOptionError(
        f"dtype must be a name ({', '.join(DTYPES)}) or a torch.dtype, got {type(dtype).__name__}"
    )
