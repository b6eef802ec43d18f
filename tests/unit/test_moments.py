"""flannel.moments' primitives on known answers (the whole update against torch's AdamW is in test_adam.py)."""

from __future__ import annotations

import numpy as np
import torch

from flannel.moments import bf16_bits, bf16_values, fma32


def test_fma32_rounds_once_where_float64_lands_on_a_float32_tie():
    # a b + c = 1 + 2^-24 + 2^-80 exactly: float64 drops 2^-80 and lands on the tie between 1 and 1 + 2^-23,
    # which round-to-even would settle at 1; rounded once, the exact sum is above the tie.
    a, b = np.float32(1 + 2**-23), np.float32(1 - 2**-24)
    c = np.float32(2**-47 + 2**-70)  # float32 holds 2^-47 (1 + 2^-23)
    exact_above_tie = np.float64(a) * np.float64(b) + np.float64(c)
    assert np.float32(exact_above_tie) == np.float32(1.0)  # what rounding twice gives
    assert fma32(np.array([a]), np.array([b]), np.array([c]))[0] == np.float32(1 + 2**-23)
    assert fma32(np.array([-a]), np.array([b]), np.array([-c]))[0] == np.float32(-(1 + 2**-23))


def test_fma32_matches_plain_rounding_off_ties():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(10_000).astype(np.float32) for _ in range(3))
    assert np.array_equal(fma32(a, b, c), (a.astype(np.float64) * b + c).astype(np.float32))


def test_bf16_bits_is_torchs_rounding():
    values = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 1 + 2**-8 + 2**-20, np.inf, 3e38,
                       1e-40], dtype=np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.uint16).numpy()
    assert np.array_equal(bf16_bits(values), expected)
    assert np.array_equal(bf16_values(expected), torch.from_numpy(values).to(torch.bfloat16).float().numpy())
