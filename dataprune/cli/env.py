"""``dataprune env``: versions, devices and which offline models resolve."""

from __future__ import annotations

import argparse

from dataprune.cli._common import Subparsers

ORDER = 90


def register(sub: Subparsers) -> None:
    p = sub.add_parser("env", help="print versions, devices and which offline models resolve")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def collect() -> dict:
    """Environment facts as a dictionary."""
    import os
    import platform

    from dataprune.cache import cache_dir
    from dataprune.errors import ModelNotAvailableError
    from dataprune.manifest import package_versions
    from dataprune.models import resolve_causal_lm, resolve_encoder

    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "cache_dir": str(cache_dir(create=False)),
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE", ""),
    }
    try:
        import torch

        from dataprune.precision import cpu_bf16_flags, resolve_dtype

        info["devices"] = {
            "cpu_threads": torch.get_num_threads(),
            # the CPU kernels torch dispatches to: pruned-model perplexities from the same
            # calibration samples differ between them (benchmarks/results/model_pruning_machines.md)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda": torch.cuda.is_available(),
            "cuda_devices": [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ],
            "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
            # what dtype="auto" picks on the CPU (dataprune.precision): bf16 only where it is fast
            "cpu_bf16_flags": list(cpu_bf16_flags()),
            "auto_dtype_cpu": resolve_dtype("auto", "cpu"),
        }
    except ImportError:
        info["devices"] = {"error": "torch is not installed"}
    models = {}
    for label, fn in (("encoder", resolve_encoder), ("causal_lm", resolve_causal_lm)):
        try:
            models[label] = fn().describe()
        except ModelNotAvailableError as exc:
            models[label] = {"error": str(exc)}
    info["models"] = models
    return info


def run(args: argparse.Namespace) -> int:
    import json

    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"dataprune {info['packages'].get('dataprune')}  python {info['python']}  ({info['platform']})"
    )
    print("packages:")
    for k, v in info["packages"].items():
        print(f"  {k:<24} {v or '-'}")
    d = info["devices"]
    if "error" in d:
        print(f"devices: {d['error']}")
    else:
        cuda = ", ".join(d["cuda_devices"]) if d["cuda"] else "no"
        print(
            f"devices: cpu ({d['cpu_threads']} threads, torch kernels {d['cpu_capability']}), "
            f"cuda: {cuda}, mps: {'yes' if d['mps'] else 'no'}"
        )
        flags = ", ".join(d["cpu_bf16_flags"]) or "no amx_bf16 / avx512_bf16"
        print(f"dtype auto on cpu: {d['auto_dtype_cpu']} ({flags})")
    print(f"cache: {info['cache_dir']}   HF_HUB_OFFLINE={info['hf_hub_offline'] or '(unset)'}")
    print("models:")
    for label, m in info["models"].items():
        if "error" in m:
            print(f"  {label:<10} NOT AVAILABLE: {m['error']}")
        else:
            ver = f" {m['version']}" if m["version"] else ""
            print(f"  {label:<10} {m['name']}  [{m['source']}{ver}]  {m['path']}")
    return 0
