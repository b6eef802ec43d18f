"""The bf16 hop rule: whether a bf16 weight w moves when an exact update u is added and the sum is rounded to
the nearest bf16 value, ties to even (IEEE round-to-nearest-even, what torch does), written out as thresholds
instead of performed.

w + u rounds back to w while it stays within half the spacing to w's neighbour on u's side. Above w that
spacing is ulp(w) (flannel.analysis.lattice.bf16_ulp); below it too, except that a power of two has the finer
binade under it: the next value toward zero from +-2^k is 2^(k-8) away, half an ulp, so the threshold toward
zero is a quarter-ulp there. (The smallest normal 2^-126 is no exception: the subnormals below it keep its
spacing 2^-133, and so does zero in both directions.) At exactly the threshold the sum is a tie and goes to the
neighbour whose mantissa is even: w keeps its place when its own last mantissa bit is 0 (powers of two and zero
included) and moves when it is 1. So:

  w moves  iff  |u| > t(w, u)  or  (|u| = t(w, u) and w's last mantissa bit is 1),
  t(w, u) = ulp(w) / 4 for a move toward zero from a power of two 2^k (k > -126), ulp(w) / 2 otherwise.

u is a float64 tensor (the update Adam meant, before rounding); w a bf16 tensor. An update that does not reach
the largest finite value's overflow threshold is assumed (bf16 weights of a trained model are far from 3.4e38).
"""

from __future__ import annotations

import torch

from .lattice import bf16_ulp

MANTISSA_BITS = 7
EXPONENT_MASK = 0x7F80
MANTISSA_MASK = 0x007F
SMALLEST_NORMAL_FIELD = 1  # the biased exponent of 2^-126


def _bits(w: torch.Tensor) -> torch.Tensor:
    """The 16 bits of each bf16 value, as non-negative integers."""
    return w.contiguous().view(torch.int16).to(torch.int32) & 0xFFFF


def odd_mantissa(w: torch.Tensor) -> torch.Tensor:
    """Whether the last mantissa bit of each bf16 value is 1 (its tie partner is then the even one)."""
    return (_bits(w) & 1) == 1


def power_of_two(w: torch.Tensor) -> torch.Tensor:
    """Whether |w| is 2^k with a finer binade below it: mantissa bits 0, biased exponent above the smallest
    normal's (2^-126's neighbour below is a subnormal at the same spacing) and below the all-ones field."""
    bits = _bits(w)
    field = (bits & EXPONENT_MASK) >> MANTISSA_BITS
    return ((bits & MANTISSA_MASK) == 0) & (field > SMALLEST_NORMAL_FIELD) & (field < 0xFF)


def threshold(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """t(w, u) of the module docstring (float64): half the spacing to w's neighbour on u's side."""
    ulp = bf16_ulp(w)
    toward_zero = (u * w.to(torch.float64)) < 0
    return torch.where(toward_zero & power_of_two(w), ulp / 4, ulp / 2)


def moves(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Whether round-to-nearest-even of w + u differs from w, elementwise (u float64, exact)."""
    if w.dtype != torch.bfloat16:
        raise TypeError(f"the hop rule is for bf16 weights, not {w.dtype}")
    size, limit = u.abs(), threshold(w, u)
    return (size > limit) | ((size == limit) & odd_mantissa(w))
