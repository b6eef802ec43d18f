"""What decides a run's bytes besides its config and seed: the CPU kernels the libraries pick, pinned for
portable runs, and the record of them (and of the hardware) that goes into the run's header.

PyTorch picks ATen's vectorised kernels by the CPU's instruction set (ATEN_CPU_CAPABILITY), sends bf16
matrix products to oneDNN only on CPUs with AVX-512, and sends float32 products and a few float32 functions
(tanh, sqrt, exp, ...) to MKL, which picks its code path by the CPU's vendor and model (MKL_CBWR=AVX2 is
honoured on Intel, ignored on AMD). The portable mode pins what every x86-64 CPU with AVX2 runs alike:
ATen's AVX2 kernels and no oneDNN matrix products (so bf16 products take ATen's own kernels, as on a CPU
without AVX-512); and it keeps MKL out of the training step altogether (flannel.kernels: float32 products on
numpy's OpenBLAS pinned to its Haswell kernels, IEEE sqrt, tanh from ATen's sigmoid). So a run gives the
same bytes on Intel and AMD. The environment variables are read when torch and numpy load, so
`pin_cpu_kernels` must run before torch is imported; this module imports nothing heavy at the top for that
reason.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path

from ..errors import ConfigError

# Read when torch (ATen, MKL) and numpy (OpenBLAS) load. MKL no longer computes any of a run's bytes in the
# portable mode; its AVX2 branch stays pinned for the analyses' products on Intel nodes.
PORTABLE_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
                        "OPENBLAS_NUM_THREADS": "1"}
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def pin_cpu_kernels(portable: bool) -> None:
    """Before torch is imported: pin the kernel choices that vary between x86 CPUs (portable), or leave them
    to the machine. Refuses to run after torch was imported with other choices, since they are fixed then."""
    if not portable or not x86_64():
        return
    wrong = {key: os.environ.get(key) for key, value in PORTABLE_ENVIRONMENT.items() if os.environ.get(key) != value}
    if wrong and ("torch" in sys.modules or "numpy" in sys.modules):
        raise ConfigError("config key 'training.portable_numerics': torch or numpy was imported before the CPU kernels were "
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
    capability, core = torch.backends.cpu.get_cpu_capability(), openblas_core()
    if capability != "AVX2" or core != PORTABLE_ENVIRONMENT["OPENBLAS_CORETYPE"]:
        raise ConfigError("config key 'training.portable_numerics': this process runs ATen's "
                          f"{capability} kernels and numpy's BLAS on core {core}; the portable mode needs "
                          "flannel.training.numerics.pin_cpu_kernels(True) before torch and numpy are imported, and "
                          "numpy's bundled OpenBLAS (a numpy built on another BLAS cannot be pinned)")


@contextlib.contextmanager
def gradient_kernels(training: dict, device, compute_dtype):
    """Where the forward and backward pass run (portable mode on an x86-64 CPU): flannel.kernels' vendor-
    independent float32 kernels, and on the fast path the math attention, whose products they cover (the
    fused CPU attention calls MKL inside one operator)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from ..kernels import PortableKernels

    with contextlib.ExitStack() as stack:
        if training["portable_numerics"] and x86_64() and device.type == "cpu":
            if compute_dtype == torch.float32:
                stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
            stack.enter_context(PortableKernels())
        yield


def optimizer_kernels(device) -> contextlib.AbstractContextManager:
    """Where the optimizer steps on a CPU, in either mode: with float32 moments its sqrt is then the IEEE one
    that the Adam replay computes too (MKL's differs between its code paths, so between the training
    process and the accounting one); other dtypes pass through unchanged."""
    from ..kernels import PortableKernels

    return PortableKernels() if device.type == "cpu" else contextlib.nullcontext()


def openblas_core() -> str:
    """The core type numpy's OpenBLAS runs (its kernels), or a sentence if numpy has no OpenBLAS."""
    import ctypes

    import numpy

    for library in sorted(Path(numpy.__file__).parent.with_name("numpy.libs").glob("*openblas*.so*")):
        handle = ctypes.CDLL(str(library))
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            if hasattr(handle, symbol):
                getattr(handle, symbol).restype = ctypes.c_char_p
                return getattr(handle, symbol)().decode()
    return "none (numpy has no bundled OpenBLAS)"


def settings(portable: bool, device) -> dict:
    """The numerics settings in effect: identical on every machine that runs the same kernels."""
    import torch

    record = {"portable": portable and x86_64() and device.type == "cpu", "threads": torch.get_num_threads(),
              "deterministic": torch.are_deterministic_algorithms_enabled(), "device": device.type}
    if device.type == "cpu":
        record.update({"aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                       "blas": "mkl" if torch.backends.mkl.is_available() else "other",
                       "mkl_cbwr": os.environ.get("MKL_CBWR", "unset"), "onednn_matmul": torch.backends.mkldnn.enabled})
        if record["portable"]:
            threads = PORTABLE_ENVIRONMENT["OPENBLAS_NUM_THREADS"]
            record["step_kernels"] = f"flannel.kernels; numpy's OpenBLAS {openblas_core()}, {threads} thread"
    else:
        record.update({"tf32": torch.backends.cuda.matmul.allow_tf32,
                       "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset")})
    return record


def hardware(device) -> dict:
    """The machine: CPU model and the instruction-set flags that change kernels; the GPU on cuda."""
    import torch

    record = {"machine": platform.machine(), "cpu_vendor": _cpuinfo_field("vendor_id") or "unknown", "cpu": _cpu_model(),
              "cpu_flags": [f for f in CPU_FLAGS if f in _cpu_flags()]}
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
