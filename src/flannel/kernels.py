"""The float32 CPU kernels of a training step that would follow the CPU's vendor, replaced by ones that run
the same code on every x86-64 CPU.

In the PyTorch CPU build, float32 matrix products call MKL's sgemm, and float32 tanh, sqrt, exp, log, erf
and a few others call MKL's vector math library (VML). MKL picks its code path by the CPU's vendor and
model: MKL_CBWR=AVX2 is honoured on Intel and ignored on AMD, and only MKL_CBWR=COMPATIBLE is honoured on
both, at about +50 % time per step. So a fast-path step (float32 products) and a float32-moments Adam step
(float32 sqrt) round differently on the two vendors. ATen's own kernels (pinned to AVX2 by
flannel.training.numerics) do not. `PortableKernels` is a dispatch mode that, inside it, sends

- every float32 CPU product (mm, bmm, addmm, baddbmm; forward and backward) to numpy's bundled OpenBLAS,
  pinned to its Haswell (AVX2) kernels and one thread (flannel.training.numerics.PORTABLE_ENVIRONMENT, set
  before numpy loads): OpenBLAS picks its kernels by a core type that OPENBLAS_CORETYPE overrides on any
  CPU, and a core type's blocking is a constant of it;
- float32 sqrt to numpy's, the IEEE square root (correctly rounded: one answer on every CPU, at any
  position in any buffer, which the Adam replay relies on);
- float32 tanh to 2 sigmoid(2x) - 1 in float64 (ATen's own sigmoid), rounded once to float32;

and refuses any other float32 operator that would run MKL, naming it, so nothing falls back unnoticed.
Other dtypes and devices pass through untouched: bf16 products and functions already run ATen's kernels.
"""

from __future__ import annotations

import numpy
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .errors import TrainingError

aten = torch.ops.aten
# Float32 operators whose ATen CPU kernels call MKL (BLAS or VML): refused unless REPLACED below has their
# overload (the products' and sqrt's and tanh's other overloads, out= and in-place, are refused too).
REFUSED = {aten.mv, aten.addmv, aten.dot, aten.vdot, aten.addbmm, aten.addr, aten.convolution,
           aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention_for_cpu_backward,
           aten.exp, aten.log, aten.log10, aten.log2, aten.erf, aten.erfc, aten.erfinv, aten.tan, aten.asin,
           aten.acos, aten.atan, aten.logit, aten.mm, aten.bmm, aten.addmm, aten.baddbmm, aten.sqrt, aten.tanh,
           aten.exp_, aten.log_, aten.sqrt_, aten.tanh_, aten.erf_}


def _numpy(tensor: torch.Tensor) -> numpy.ndarray:
    return tensor.detach().numpy()


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(numpy.matmul(_numpy(a), _numpy(b)))


def _product_plus(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta=1, alpha=1) -> torch.Tensor:
    """beta * bias + alpha * (a @ b) as separate roundings, in that order (BLAS fuses them into C)."""
    product = _product(a, b)
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return product + (bias if beta == 1 else bias * beta)


def ieee_sqrt(tensor: torch.Tensor) -> torch.Tensor:
    """The correctly rounded square root of a float32/float64 CPU tensor; other tensors take torch's."""
    if tensor.device.type != "cpu" or tensor.dtype not in (torch.float32, torch.float64):
        return tensor.sqrt()
    return torch.from_numpy(numpy.sqrt(_numpy(tensor)))


def _tanh(tensor: torch.Tensor) -> torch.Tensor:
    return (torch.sigmoid(tensor.double() * 2) * 2 - 1).to(tensor.dtype)


REPLACED = {aten.mm.default: _product, aten.bmm.default: _product, aten.addmm.default: _product_plus,
            aten.baddbmm.default: _product_plus, aten.sqrt.default: ieee_sqrt, aten.tanh.default: _tanh}


def _float32_cpu(args) -> bool:
    """Whether an operator computes in float32 on the CPU: its first tensor argument's dtype (an attention
    backward of bf16 tensors also takes a float32 logsumexp)."""
    first = next((a for a in args if isinstance(a, torch.Tensor)), None)
    return first is not None and first.dtype == torch.float32 and first.device.type == "cpu"


class PortableKernels(TorchDispatchMode):
    """Inside it, the float32 CPU operators above run vendor-independent kernels (see the module)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _float32_cpu(args):
            if func in REPLACED:
                return REPLACED[func](*args, **kwargs)
            if func.overloadpacket in REFUSED:
                raise TrainingError(f"portable numerics: {func} would run MKL's vendor-specific float32 kernel "
                                    "(set training.portable_numerics: false to allow it)")
        return func(*args, **kwargs)
