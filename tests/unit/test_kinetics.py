"""Kinetics and flow of the dead rows (flannel.analysis.kinetics) on hand-built clouds: one moving in bulk with
zero shear, one row moving alone, a row that turns back, and the centroid's drift against its noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import write_recording

from flannel.analysis import kinetics

BF16 = torch.bfloat16
ULP = 2.0**-7  # in [1, 2)


def cloud(path, moves):
    """Three dead rows (D = 2) in [1, 2) and a live row; record t adds moves[t - 1] ([3, 2] in ulps) to the
    dead rows. The live row jumps about every step (it must not count)."""
    x = [torch.tensor([[1.0, 1.25], [1.5, 1.0], [1.25, 1.5], [1.0, 1.0]], dtype=torch.float64)]
    for move in moves:
        nxt = x[-1].clone()
        nxt[:3] += torch.tensor(move, dtype=torch.float64) * ULP
        nxt[3] = -nxt[3]
        x.append(nxt)
    steps = tuple(range(len(x)))
    return write_recording(path, {"embeddings": torch.stack(x).to(BF16)}, tied=True, dead_indices=[0, 1, 2],
                           vocab_size=4, losses=(math.nan,) * len(steps), steps=steps)


def test_a_cloud_moving_in_bulk_has_no_shear(tmp_path):
    bulk = [[2.0, 1.0]] * 3
    table, runs = kinetics.kinetics_tables(cloud(tmp_path / "bulk.safetensors", [bulk] * 3))
    last = table.iloc[-1]
    assert last["W_dead_bulk"] == pytest.approx(1.0) and last["W_dead_shear"] == 0.0
    assert last["W_dead_participation"] == pytest.approx(1.0)
    assert last["W_dead_sum_l1"] == 3 * 3 * ULP and last["W_dead_sum_l2"] == pytest.approx(3 * math.sqrt(5) * ULP)
    assert last["W_dead_kinetic"] == pytest.approx(0.5 * 3 * 5 * ULP**2)
    assert table["W_dead_autocorrelation"].tolist()[2:] == pytest.approx([1.0, 1.0]) and math.isnan(table["W_dead_autocorrelation"][1])
    # |dW'|_2 = sqrt(5) = 2.24 for every row: above 2^0 and 2^1, not 2^2.
    assert [last[f"W_dead_supernova_{k}"] for k in range(4)] == [1.0, 1.0, 0.0, 0.0]
    assert last["W_dead_hops_p50"] == pytest.approx(math.sqrt(5))
    run = runs.iloc[0]
    assert run["path_efficiency"] == pytest.approx(1.0) and run["bias_to_noise"] == math.inf
    assert math.isnan(run["autocorrelation_below"])


def test_one_row_moving_alone_and_turning_back(tmp_path):
    alone = lambda sign: [[sign * 2.0, 0.0], [0.0, 0.0], [0.0, 0.0]]  # noqa: E731
    table, runs = kinetics.kinetics_tables(cloud(tmp_path / "alone.safetensors", [alone(1), alone(-1), alone(1)]))
    assert table.loc[1:, "W_dead_participation"].tolist() == pytest.approx([1 / 3] * 3)
    # cos(dW_i, dC) = 1 for the mover, NaN for the still rows: the median over the mover is 1; shear:
    # |dC| = 2 ulp / 3, |dW_i - dC| = 4/3, 2/3, 2/3 ulp: mean 8/9 ulp over 2/3 ulp = 4/3.
    assert table.loc[1, "W_dead_bulk"] == 1.0 and table.loc[1, "W_dead_shear"] == pytest.approx(4 / 3)
    assert table.loc[2:, "W_dead_autocorrelation"].tolist() == [-1.0, -1.0]
    assert runs.iloc[0]["autocorrelation_below"] == 2
    # The centroid goes out, back and out again: net 2/3 ulp over a path of 2 ulp.
    assert runs.iloc[0]["path_efficiency"] == pytest.approx(1 / 3)


def test_drift_against_noise():
    centroids = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0], [4.0, 0.0]])
    # bias (1, 0); residual steps (0, +-1): median 1; |bias| T / (1 x sqrt(T)) = 4 / 2 = 2.
    found = kinetics.drift(centroids)
    assert found["bias_to_noise"] == pytest.approx(2.0)
    assert found["path_efficiency"] == pytest.approx(4 / (4 * math.sqrt(2)))
    assert math.isnan(kinetics.drift(np.zeros((1, 2)))["path_efficiency"])
    assert all(math.isnan(v) for v in kinetics.drift(np.zeros((3, 2))).values())  # never moved
