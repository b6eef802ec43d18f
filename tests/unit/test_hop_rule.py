"""The bf16 hop rule (flannel.analysis.hop_rule) at its boundaries, each case checked against torch's own
rounding of w + u: the half-ulp tie from an even and from an odd mantissa, a hair below and above it, the
quarter-ulp toward zero from a power of two (both signs), the smallest normal and zero."""

from __future__ import annotations

import pytest
import torch

from flannel.analysis import hop_rule

BF16 = torch.bfloat16
HAIR = 2.0**-12  # a fraction of an ulp small enough that w + u stays exact in float32


def torch_moves(w: float, u: float) -> bool:
    """torch's rounding of the exact sum (w + u is exact in float32 for every case here: checked)."""
    total = torch.tensor(w, dtype=torch.float64) + u
    assert total.float().double() == total
    return bool(total.float().to(BF16) != torch.tensor(w, dtype=BF16))


CASES = [  # (w, u in ulps of w, moves)
    (1.0, 0.5, False),  # a tie from an even mantissa (1.0) stays
    (1.0 + 2**-7, 0.5, True),  # a tie from an odd mantissa moves up to the even 1 + 2^-6
    (1.0 + 2**-7, -0.5, True),  # and down to the even 1.0
    (1.0 + 2**-6, 0.5, False),  # mantissa ...10: even, the tie stays
    (1.0 + 2**-6, -0.5, False),
    (1.0, 0.5 + HAIR, True),  # just above half an ulp: moves from any mantissa
    (1.0 + 2**-7, 0.5 - HAIR, False),  # just below: stays, odd or not
    (1.0, -0.25, False),  # toward zero from a power of two: a quarter-ulp is the tie, 2^k's mantissa is even
    (1.0, -0.25 - HAIR, True),  # just past it: down to 1 - 2^-8, a half-ulp below
    (1.0, -0.5 + HAIR, True),  # a move the general half-ulp rule would call a stay
    (-1.0, 0.25, False),  # the same toward zero from -1
    (-1.0, 0.25 + HAIR, True),
    (-1.0, -0.5, False),  # away from zero from -1: the full half-ulp, tie to the even -1
    (-1.0, -0.25 - HAIR, False),
    (-1.0 - 2**-7, -0.5, True),  # odd mantissa, negative: the tie moves away from zero to -1 - 2^-6
    (0.015625, -0.25 - HAIR, True),  # 2^-6, a power of two of another binade
    (0.015625, 0.25 + HAIR, False),  # away from zero from it: half an ulp needed
    (0.02, 0.5, False),  # 0.02 rounds to 2^-6 x (1 + 36/128): an even mantissa
    (-0.02, -0.5, False),
    (2**-6 * (1 + 37 / 128), 0.5, True),  # its odd neighbour
    (-(2**-6) * (1 + 37 / 128), -0.5, True),
    (2.0**-126, -0.5, False),  # the smallest normal: subnormals below at the same spacing, no quarter-ulp
    (2.0**-126, -0.5 - HAIR, True),
    (0.0, 0.5, False),  # zero: the subnormal spacing 2^-133 both ways, its mantissa even
    (0.0, -0.5 - 2**-3, True),  # (2^-136: exact in float32)
    (0.0, 0.5 + 2**-3, True),
]


@pytest.mark.parametrize("w, u_ulps, expected", CASES)
def test_the_rule_at_its_boundaries_matches_torch_rounding(w, u_ulps, expected):
    weight = torch.tensor([w], dtype=BF16)
    assert weight.double().item() == pytest.approx(w, rel=2**-8)
    u = u_ulps * hop_rule.bf16_ulp(weight)
    assert torch_moves(weight.double().item(), u.item()) == expected  # the case is what it says
    assert hop_rule.moves(weight, u).tolist() == [expected]


def test_parities_and_powers_of_two_from_the_bits():
    w = torch.tensor([1.0, 1.0 + 2**-7, -1.0, 0.5, 0.75, 2.0**-126, 2.0**-125, 0.0, -0.0], dtype=BF16)
    assert hop_rule.odd_mantissa(w).tolist() == [False, True, False, False, False, False, False, False, False]
    assert hop_rule.power_of_two(w).tolist() == [True, False, True, True, False, False, True, False, False]


def test_random_weights_and_updates_agree_with_torch_rounding():
    g = torch.Generator().manual_seed(0)
    n = 50_000
    scale = torch.exp2(torch.randint(-20, 4, (n,), generator=g).float())
    w = (torch.randn(n, generator=g) * scale).to(BF16)
    w[: n // 10] = torch.exp2(torch.randint(-20, 4, (n // 10,), generator=g).float()).to(BF16)  # powers of two
    w[: n // 20] *= -1
    u = torch.randint(-80, 81, (n,), generator=g).double() / 128 * hop_rule.bf16_ulp(w)  # every 1/128 ulp: ties too
    total = w.double() + u
    assert torch.equal(total.float().double(), total)
    assert torch.equal(hop_rule.moves(w, u), total.float().to(BF16) != w)


def test_float32_weights_are_refused():
    with pytest.raises(TypeError, match="bf16"):
        hop_rule.moves(torch.ones(2), torch.ones(2, dtype=torch.float64))
