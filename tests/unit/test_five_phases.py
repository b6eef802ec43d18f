"""The five phases, reheating and global-freeze runs (flannel.analysis.five_phases) on a hand-built recording
whose row visits every phase at known steps."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import write_recording

from flannel.analysis import five_phases

BF16 = torch.bfloat16
ULP = 2.0**-7  # at 1.0


def tour(path):
    """Dead row 0 (D = 4) from 1.0: step 1 one element jumps to 64 (thousands of ulps: hypernova); step 2 every
    element moves 2 hops (L2 = 4 > sqrt(4): superluminal); step 3 one hop (stumbling); step 4 still; step 5 two
    elements one hop each (L1 = 2, L2 = 1.4: spherical, a reheat from Fimbulwinter); steps 6 and 7 still.
    Dead row 1 never moves; live row 2 moves one hop every step. The dead rows all stand still at steps 4, 6, 7:
    two global-freeze runs, the first thawed at step 5, the second lasting to the end (2 steps)."""
    x = [torch.ones(3, 4, dtype=torch.float64)]

    def step(change):
        nxt = x[-1].clone()
        change(nxt)
        nxt[2, 0] += ULP
        x.append(nxt)

    step(lambda r: r[0].__setitem__(0, 64.0))
    step(lambda r: r[0].add_(torch.tensor([2 * 0.5, 2 * ULP, 2 * ULP, 2 * ULP])))
    step(lambda r: r[0, 1].add_(ULP))
    step(lambda r: None)
    step(lambda r: r[0, 2:].add_(ULP))
    step(lambda r: None)
    step(lambda r: None)
    steps = tuple(range(len(x)))
    return write_recording(path, {"embeddings": torch.stack(x).to(BF16)}, tied=True, dead_indices=[0, 1], vocab_size=3,
                           losses=(math.nan,) * len(steps), steps=steps)


def test_a_row_visiting_every_phase(tmp_path):
    table, rows, runs = five_phases.phase_tables(tour(tmp_path / "tour.safetensors"))
    table = table.set_index("step")
    expected = {1: "hypernova", 2: "superluminal", 3: "stumbling", 4: "fimbulwinter", 5: "spherical",
                6: "fimbulwinter", 7: "fimbulwinter"}
    for step, phase in expected.items():
        # row 1 is in Fimbulwinter throughout
        assert table.loc[step, f"W_dead_{phase}"] == (1.0 if phase == "fimbulwinter" else 0.5)
        assert sum(table.loc[step, f"W_dead_{p}"] for p in five_phases.PHASES) == 1.0
    assert (table.loc[1:, "W_live_stumbling"] == 1.0).all()
    assert table.loc[1:, "W_dead_reheating"].tolist() == [0, 0, 0, 0, 1, 0, 0]
    assert table.loc[1:, "W_dead_still"].tolist() == [0, 0, 0, 1, 0, 1, 1]
    row = rows[rows["token"] == 0].iloc[0]
    assert (row["last_hypernova"], row["last_superluminal"], row["last_spherical"], row["last_stumbling"]) == (1, 2, 5, 5)
    assert row["reheats"] == 1
    quiet = rows[rows["token"] == 1].iloc[0]
    assert math.isnan(quiet["last_stumbling"]) and quiet["reheats"] == 0
    assert runs.values.tolist() == [["W", 4, 4, 1, 1], ["W", 6, 7, 2, 0]]
    assert five_phases.run_summary(runs, "W") == {"freeze_runs": 2, "longest_run": 2.0, "steps_all_still": 3, "thaws": 1}


@pytest.mark.parametrize("still, expected", [
    ([False, True, True, False, True], [(1, 2, 2), (4, 4, 1)]),
    ([False, False, False], []),
    ([False, True, True, True], [(1, 3, 3)]),
])
def test_still_runs_are_maximal_stretches(still, expected):
    assert five_phases.still_runs(list(range(len(still))), still) == expected


def test_phase_codes_at_their_thresholds():
    l1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 9.0, 2000.0, 3000.0])
    l2 = torch.tensor([0.0, 0.5, 1.0, 1.2, 8.0, 1000.0, 1000.5])
    assert five_phases.phase_codes(l1, l2, 64).tolist() == [0, 1, 1, 2, 2, 3, 4]
