"""Adam's moment update, m_t and v_t, bit for bit as torch computes it on a CPU with FMA (AVX2 and above,
the kernels flannel's training pins), in numpy's IEEE float64: the same bytes on every machine.

torch.optim.AdamW (single tensor) does, in the moments' dtype (bf16 or float32, arithmetic in float32):
  g = grad.mul(clip)                                  rounded to the grads' dtype
  m = m.lerp_(g, 1 - beta1)                           fma(1 - beta1, g - m, m)
  v = v.mul_(beta2).addcmul_(g, g, value=1 - beta2)   fma((1 - beta2) g, g, round(v beta2))
numpy's float32 operations round once, as torch's do; an FMA's product is exact in float64 and its sum is
rounded through float64, corrected where that lands on a float32 tie. This is
what lets a compact recording derive the moments instead of storing them, and decode them on any CPU: the
recorder checks every derived record against the optimizer's own bytes and stores the ones that differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BF16_NAN = np.uint16(0x7FC0)
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits, round to nearest even (torch's conversion). NaN becomes 0x7FC0, where torch's
    vector kernels give 0xFFFF: a NaN moment whose bits differ from the replay's is stored, like any other."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), BF16_NAN, rounded)


def bf16_values(bits: np.ndarray) -> np.ndarray:
    """bf16 bits -> their float32 values (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def round_to(x: np.ndarray, bf16: bool) -> np.ndarray:
    """float32 values rounded to the dtype (bf16 or float32) and held as float32 (`x` may be overwritten)."""
    x = np.asarray(x, dtype=np.float32)
    if not bf16:
        return x
    bits = x.view(np.uint32)
    carry = (bits >> 16) & np.uint32(1)
    carry += np.uint32(0x7FFF)
    carry += bits
    carry &= np.uint32(0xFFFF0000)  # round to nearest even, as torch's conversion (NaN aside)
    return carry.view(np.float32)


def fma32(a, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a x b + c rounded once to float32 (float32 arrays, or a float32 scalar a)."""
    total = np.multiply(b, np.float64(a) if np.ndim(a) == 0 else a, dtype=np.float64)  # exact: 24 + 24 bits
    total += c
    result = total.astype(np.float32)
    # Rounding twice differs from once only where float64 landed exactly on a tie between two float32s (the
    # 29 bits float32 drops are 1000...0: all in the low word); there, the part of the exact sum that float64
    # rounded away (TwoSum) says which way.
    low_words = total.view(np.uint32)[0 if np.little_endian else 1::2]
    ties = np.flatnonzero((low_words & np.uint32(0x1FFFFFFF)) == np.uint32(0x10000000))
    if ties.size:
        a_tie = a if np.ndim(a) == 0 else np.asarray(a).ravel()[ties]
        p = np.multiply(np.asarray(b).ravel()[ties], a_tie, dtype=np.float64)
        t, c_tie = total.ravel()[ties], np.asarray(c).ravel()[ties].astype(np.float64)
        back = t - p
        error = (p - (t - back)) + (c_tie - back)
        nearest = result.ravel()[ties]
        towards = np.where(error > 0, np.float32(np.inf), np.float32(-np.inf))
        exact_side = np.where((nearest.astype(np.float64) - t) * error > 0, nearest, np.nextafter(nearest, towards))
        result.ravel()[ties] = np.where(error != 0, exact_side, nearest)
    return result


def clip_factor(grad_norm: float, max_norm: float | None, dtype: torch.dtype) -> torch.Tensor | None:
    """clip_grad_norm_'s factor min(max_norm / (norm + 1e-6), 1) as it computes it: a 0-dim tensor of the
    grads' dtype (the norm is exact in `dtype`; recordings store it as float32). None: no clipping."""
    if max_norm is None:
        return None
    norm = torch.tensor(grad_norm, dtype=torch.float32).to(dtype)
    return torch.clamp(float(max_norm) / (norm + CLIP_EPS), max=1.0)


@dataclass(frozen=True)
class MomentRule:
    """What decides a run's moment arithmetic, from its run config."""

    beta1: float
    beta2: float
    max_grad_norm: float | None
    bf16_state: bool
    bf16_grads: bool

    @classmethod
    def of(cls, training: dict) -> "MomentRule":
        grads = training.get("param_dtype", "bfloat16")
        return cls(training["adam_beta1"], training["adam_beta2"], training.get("max_grad_norm"),
                   (training.get("optimizer_state_dtype") or grads) == "bfloat16", grads == "bfloat16")

    def clipped(self, grad: np.ndarray, grad_norm: float) -> np.ndarray:
        """The grad Adam saw: the pre-clip grad times the clipping factor, rounded to the grads' dtype."""
        grad = np.asarray(grad, dtype=np.float32)
        clip = clip_factor(grad_norm, self.max_grad_norm, torch.bfloat16 if self.bf16_grads else torch.float32)
        return grad if clip is None else round_to(grad * np.float32(clip.item()), self.bf16_grads)

    def momentum(self, m: np.ndarray, g: np.ndarray) -> np.ndarray:
        """m_t from m_(t-1) and the clipped grad: m.lerp_(g, 1 - beta1)."""
        return round_to(fma32(np.float32(1 - self.beta1), g - m, m), self.bf16_state)

    def variance(self, v: np.ndarray, g: np.ndarray) -> np.ndarray:
        """v_t from v_(t-1) and the clipped grad: v.mul_(beta2).addcmul_(g, g, value=1 - beta2)."""
        decayed = round_to(v * np.float32(self.beta2), self.bf16_state)
        return round_to(fma32(g * np.float32(1 - self.beta2), g, decayed), self.bf16_state)
