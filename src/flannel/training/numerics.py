"""What decides a run's bytes besides its config and seed: the CPU kernels the libraries pick, pinned for
portable runs, and the record of them (and of the hardware) that goes into the run's header.

PyTorch picks ATen's vectorised kernels by the CPU's instruction set (ATEN_CPU_CAPABILITY), MKL picks its
code path by CPU too (MKL_CBWR), and torch sends bf16 matrix products to oneDNN only on CPUs with AVX-512.
On a cluster of mixed x86 nodes those choices differ, and so do the bytes. The portable mode pins all three
to what every x86-64 CPU with AVX2 can run: ATen's AVX2 kernels, MKL's AVX2 code path, and no oneDNN matrix
products (so bf16 products take ATen's own kernels, as on a CPU without AVX-512). The environment variables are read when torch loads, so `pin_cpu_kernels` must run
before torch is imported; this module imports nothing heavy at the top for that reason.
"""

from __future__ import annotations

import os
import platform
import sys

from ..errors import ConfigError

# Read when torch (ATen) and MKL load.
PORTABLE_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def pin_cpu_kernels(portable: bool) -> None:
    """Before torch is imported: pin the kernel choices that vary between x86 CPUs (portable), or leave them
    to the machine. Refuses to run after torch was imported with other choices, since they are fixed then."""
    if not portable or not x86_64():
        return
    wrong = {key: os.environ.get(key) for key, value in PORTABLE_ENVIRONMENT.items() if os.environ.get(key) != value}
    if wrong and "torch" in sys.modules:
        raise ConfigError("config key 'training.portable_numerics': torch was imported before the CPU kernels were "
                          f"pinned ({', '.join(f'{k}={v}' for k, v in wrong.items())}); call "
                          "flannel.training.numerics.pin_cpu_kernels first")
    os.environ.update(PORTABLE_ENVIRONMENT)


def apply(portable: bool) -> None:
    """The runtime part of the pinning, once torch is loaded: no oneDNN matrix products (a CPU without AVX-512
    never uses them for bf16), and a check that the environment part took effect."""
    import torch

    if not portable or not x86_64():
        return
    torch.backends.mkldnn.enabled = False
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2" or os.environ.get("MKL_CBWR") != PORTABLE_ENVIRONMENT["MKL_CBWR"]:
        raise ConfigError("config key 'training.portable_numerics': this process runs ATen's "
                          f"{capability} kernels with MKL_CBWR={os.environ.get('MKL_CBWR')}; the portable mode needs "
                          "flannel.training.numerics.pin_cpu_kernels(True) before torch is imported")


def settings(portable: bool, device) -> dict:
    """The numerics settings in effect: identical on every machine that runs the same kernels."""
    import torch

    record = {"portable": portable and x86_64() and device.type == "cpu", "threads": torch.get_num_threads(),
              "deterministic": torch.are_deterministic_algorithms_enabled(), "device": device.type}
    if device.type == "cpu":
        record.update({"aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                       "blas": "mkl" if torch.backends.mkl.is_available() else "other",
                       "mkl_cbwr": os.environ.get("MKL_CBWR", "unset"), "onednn_matmul": torch.backends.mkldnn.enabled})
    else:
        record.update({"tf32": torch.backends.cuda.matmul.allow_tf32,
                       "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset")})
    return record


def hardware(device) -> dict:
    """The machine: CPU model and the instruction-set flags that change kernels; the GPU on cuda."""
    import torch

    record = {"machine": platform.machine(), "cpu": _cpu_model(), "cpu_flags": [f for f in CPU_FLAGS if f in _cpu_flags()]}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        record.update({"gpu": properties.name, "cuda": torch.version.cuda, "driver": _nvidia_driver()})
    return record


def _cpuinfo_field(name: str) -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def _cpu_flags() -> set[str]:
    return set(_cpuinfo_field("flags").split())


def _nvidia_driver() -> str:
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as handle:
            return handle.readline().split("Kernel Module")[-1].split()[0]
    except (OSError, IndexError):
        return "unknown"
