"""Lattice units and freeze phases (flannel.analysis.lattice) with known answers: ulps of hand-picked bf16 values (zero,
subnormal, binade edges), a row moved by exactly k ulps, a row frozen from step s, and the phase boundaries as
last exits."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import write_recording

from flannel.analysis import lattice

BF16 = torch.bfloat16


def test_bf16_ulp_of_known_values():
    x = torch.tensor([1.0, 0.02, 0.5, -0.5, 1.5, 2.0**-126, 2.0**-130, 0.0, -0.0], dtype=BF16)
    expected = [2.0**-7, 2.0**-13, 2.0**-8, 2.0**-8, 2.0**-7, 2.0**-133, 2.0**-133, 2.0**-133, 2.0**-133]
    assert lattice.bf16_ulp(x).tolist() == expected
    # The notes' half-ulps: 6.1e-5 at 0.02, 3.9e-3 at 1.0. frexp's exponent - 7 would double each.
    assert lattice.bf16_ulp(torch.tensor([0.02, 1.0], dtype=BF16)).div(2).tolist() == pytest.approx([6.1e-5, 3.9e-3], rel=0.01)
    # The ulp is the real spacing: the next bf16 number up is exactly one ulp away.
    for value in (1.0, 0.02, 0.3, 2.0**-126, 3.0 * 2.0**-133):
        v = torch.tensor(value, dtype=BF16)
        nxt = torch.nextafter(v.float(), torch.tensor(1.0)).to(BF16)  # rounds up to the next bf16 (ties aside)
        up = (v.double() + lattice.bf16_ulp(v)).to(BF16)
        assert up.double() - v.double() == lattice.bf16_ulp(v).item() and up >= nxt


def test_every_bf16_value_has_the_ulp_and_lattice_verdict_of_the_float64_arithmetic():
    """The bf16 shortcuts (ulp by exponent bits; on_lattice always true) against the general arithmetic on all
    65,536 bf16 bit patterns: zeros, subnormals, both binade edges, infinities and NaNs."""
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    by_bits, by_frexp = lattice.bf16_ulp(every), lattice.bf16_ulp(every.to(torch.float32))
    assert torch.equal(by_bits.isnan(), by_frexp.isnan()) and int(by_bits.isnan().sum()) == 2 * 2**7  # exponent 255: infinities and NaNs
    assert torch.equal(by_bits[~by_bits.isnan()], by_frexp[~by_frexp.isnan()])
    shuffled = every[torch.randperm(every.numel(), generator=torch.Generator().manual_seed(0))]
    for before in (shuffled, every.roll(1), torch.zeros_like(every)):
        assert lattice.on_lattice(every, before) is True
        assert lattice.on_lattice(every.to(torch.float32), before.to(torch.float32)) is True


@pytest.mark.parametrize("k", [1, 3, -2, 17])
def test_a_row_moved_by_exactly_k_ulps(k):
    before = torch.tensor([[0.02, -0.3, 1.0, 0.0]], dtype=BF16)
    ulp = lattice.bf16_ulp(before)
    after = (before.double() + k * ulp * torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)).to(BF16)
    h = lattice.hops(after, before)
    assert h.tolist() == [[k, 0, k, 0]]
    norms = lattice.hop_norms(h)
    assert (norms["l1"].item(), norms["linf"].item(), norms["l2"].item()) == (2 * abs(k), abs(k), pytest.approx(abs(k) * 2**0.5))
    assert lattice.on_lattice(after, before)


def test_a_step_down_into_a_finer_binade_is_a_half_hop_and_zero_is_subnormal():
    before = torch.tensor([0.5, 0.0, 2.0**-130], dtype=BF16)
    after = torch.tensor([0.5 - 2.0**-9, 2.0**-133, 2.0**-130 + 2.0**-133], dtype=BF16)
    assert lattice.hops(after, before).tolist() == [-0.5, 1.0, 1.0]
    assert not lattice.on_lattice(torch.tensor([0.3001]), torch.tensor([0.3]))  # float32 weights


def test_phases_are_last_exits_and_the_freeze_is_the_last_move(tmp_path):
    # One row of D = 4 at 1.0 (ulp 2^-7). Steps 1-6 move it by 4, 4, 0, 3, 1, 1 hops in every element (L2 = 2 x hops):
    # early (L2 > sqrt(4) = 2) last at step 4 (3 hops: L2 6), mid-life (L-inf > 1) never after step 4, late on steps 5
    # and 6 (single hops), frozen from step 7. A second row never moves: frozen from step 1. Step 3's pause does
    # not end the early phase, because the boundaries are last exits.
    moves = [4, 4, 0, 3, 1, 1, 0, 0]
    x = [torch.ones(2, 4, dtype=torch.float64)]
    for k in moves:
        nxt = x[-1].clone()
        nxt[0] += k * 2.0**-7
        x.append(nxt)
    matrices = {"embeddings": torch.stack(x).to(BF16)}
    steps = tuple(range(len(moves) + 1))
    path = write_recording(tmp_path / "phases.safetensors", matrices, tied=True, dead_indices=[0], vocab_size=2,
                           losses=(math.nan,) * len(steps), steps=steps)
    table, rows = lattice.lattice_tables(path)
    table = table.set_index("step")
    assert table.loc[1:, "W_dead_hops_linf"].tolist() == [float(k) for k in moves]
    assert table.loc[1:, "W_dead_hops_l2"].tolist() == [2.0 * k for k in moves]
    phase = {s: next(p for p in lattice.PHASES if table.loc[s, f"W_dead_phase_{p}"] == 1.0) for s in steps[1:]}
    assert phase == {1: "early", 2: "early", 3: "early", 4: "early", 5: "late", 6: "late", 7: "frozen", 8: "frozen"}
    dead, live = rows[rows["dead"]].iloc[0], rows[~rows["dead"]].iloc[0]
    assert (dead["mid_from"], dead["late_from"], dead["frozen_from"], dead["last_move"]) == (5, 5, 7, 6)
    # The live row never moves: frozen from t = 0, in every phase boundary (not from step 1, as if it moved at 0).
    assert (live["mid_from"], live["late_from"], live["frozen_from"], live["last_move"]) == (0, 0, 0, 0)
    assert (table.loc[1:, "W_live_phase_frozen"] == 1.0).all()
    assert (table.loc[1:, "hops_on_lattice"] == 1.0).all()


def test_a_row_still_moving_at_the_end_never_freezes(tmp_path):
    x = torch.stack([torch.ones(1, 2), torch.ones(1, 2) + 2.0**-7, torch.ones(1, 2) + 2.0**-6]).to(BF16)
    path = write_recording(tmp_path / "moving.safetensors", {"embeddings": x}, tied=True, dead_indices=[0], vocab_size=1)
    _, rows = lattice.lattice_tables(path, {"early_l2": 10.0, "mid_linf": 1.0})
    assert math.isnan(rows["frozen_from"].iloc[0]) and rows["late_from"].iloc[0] == 0  # never early nor mid
