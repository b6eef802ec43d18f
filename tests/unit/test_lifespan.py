"""What sets a dead row's lifespan (flannel.analysis.lifespan) on a hand-built cloud whose rows freeze at known
steps, with known norms, angles, gradients and h_mean, and whose trailing row catches up (the cloud contracts
along its drift and not across it)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from helpers import write_recording

from flannel.analysis import lattice, lifespan
from flannel.errors import AnalysisError
from flannel.outputs import write_table

BF16 = torch.bfloat16
# Dead rows 0-3 start around the centroid (1, 1) at offsets +x, -x, +y, -y; live row 4 never moves. Row 0 and
# row 2 move +1 in x at step 1 (frozen from 2); row 1, the trailing one, +1 at steps 1 and 2 (frozen from 3);
# row 3 +1 at step 3 (still moving at the last record: lifespan 4). The cloud drifts by (1.25, 0).
START = [[2.0, 1.0], [0.0, 1.0], [1.0, 2.0], [1.0, 0.0], [5.0, 5.0]]
MOVES = {1: (0, 1, 2), 2: (1,), 3: (3,)}
H_MEAN = [[0.0, 0.0], [0.0, 1.0], [0.0, 1.0], [2.0, 1.0]]
# Per record 1..3, each dead row's gradient (the live row's is zero).
GRADS = [[[1.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]],
         [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]],
         [[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]


def cloud(tmp_path, *, h_mean: bool):
    x = [torch.tensor(START, dtype=torch.float64)]
    for step in (1, 2, 3):
        nxt = x[-1].clone()
        nxt[list(MOVES[step]), 0] += 1.0
        x.append(nxt)
    grads = torch.zeros(4, 5, 2)
    grads[1:, :4] = torch.tensor(GRADS)
    extra = {"h_mean": torch.tensor(H_MEAN, dtype=torch.float32)} if h_mean else {}
    path = write_recording(tmp_path / "cloud.safetensors", {"embeddings": torch.stack(x).to(BF16), "grads": grads},
                           tied=True, dead_indices=[0, 1, 2, 3], vocab_size=5, losses=(math.nan,) * 4,
                           steps=(0, 1, 2, 3), extra=extra)
    _, rows = lattice.lattice_tables(path)
    write_table(rows, tmp_path / "lattice.rows.tsv")
    return path, tmp_path / "lattice.rows.tsv"


def test_each_dead_row_has_its_known_lifespan_and_start(tmp_path):
    rows = lifespan.lifespan_rows(*cloud(tmp_path, h_mean=True)).set_index("token")
    assert rows.index.tolist() == [0, 1, 2, 3] and (rows["matrix"] == "W").all()
    assert rows["lifespan"].tolist() == [2, 3, 2, 4] and rows["still_moving"].tolist() == [0, 0, 0, 1]
    assert rows["initial_norm"].tolist() == pytest.approx([math.sqrt(5), 1, math.sqrt(5), 1])
    tilted = math.degrees(math.acos(3 / math.sqrt(10)))  # (2, 1) against the centroid (1, 1)
    assert rows["angle_centroid"].tolist() == pytest.approx([tilted, 45, tilted, 45])
    assert rows["lead"].tolist() == pytest.approx([1, -1, 0, 0], abs=1e-12)
    assert rows["travel"].tolist() == [1, 2, 1, 1]
    assert rows["grad_norm_1"].tolist() == pytest.approx([math.sqrt(2), 2, 1, 1])
    assert rows["angle_h_mean"].tolist() == pytest.approx([math.degrees(math.acos(1 / math.sqrt(5))), 0,
                                                          math.degrees(math.acos(2 / math.sqrt(5))), 90])
    # cos^2 with h_mean over steps 1..lifespan; row 0's zero gradient at step 2 has no direction and is left out
    assert rows["grad_share_h_mean"].tolist() == pytest.approx([0.5, (1 + 1 + 0.8) / 3, 0.25, (1 + 1 + 0.2) / 3])
    # Per step, cos(dC - dW_i, w_i - c) and cos(g_i - mean g, w_i - c) before the step (worked by hand); row 1
    # sits on the centroid before step 3, where neither has a direction.
    assert rows["step_pull"].tolist() == pytest.approx([(-1 + 1 + 1) / 3, (1 + 1) / 2, (0 + 0.25 / math.sqrt(1.0625) + 0) / 3,
                                                        (0 - 0.6 + math.sqrt(0.5)) / 3])
    assert rows["grad_pull"].tolist() == pytest.approx([(1 - math.sqrt(0.1) + math.sqrt(0.5)) / 3,
                                                        (1 / math.sqrt(5) + math.sqrt(0.5)) / 2,
                                                        (-2 / math.sqrt(5) + 0.4375 / math.sqrt(0.625 * 1.0625) + math.sqrt(0.5)) / 3,
                                                        (0 - math.sqrt(0.02) + 0.5 / math.sqrt(1.25)) / 3])


def test_the_run_table_ranks_and_measures_the_contraction(tmp_path):
    path, lattice_rows = cloud(tmp_path, h_mean=True)
    runs = lifespan.run_table(path, lifespan.lifespan_rows(path, lattice_rows))
    run = runs.iloc[0]
    assert runs.columns.tolist() == lifespan.RUN_COLUMNS
    assert (run["matrix"], run["dead_rows"], run["with_lifespan"], run["still_moving"], run["h_mean"]) == ("W", 4, 4, 1, 1)
    assert run["rho_initial_norm"] == pytest.approx(-2 * math.sqrt(2) / 3)
    assert run["rho_angle_centroid"] == pytest.approx(2 * math.sqrt(2) / 3)
    assert run["rho_lead"] == pytest.approx(-0.5)
    assert run["rho_null"] == pytest.approx(1.96 / math.sqrt(3))
    assert run["rho_travel_lead"] == pytest.approx(-math.sqrt(2 / 3))
    assert run["radius_ratio"] == pytest.approx((1 + 2 * math.sqrt(1.0625)) / 4)
    assert run["spread_along_ratio"] == pytest.approx(math.sqrt(0.375))
    assert run["spread_across_ratio"] == pytest.approx(1.0)
    assert run["drift_h_mean"] == pytest.approx(2 / math.sqrt(13))  # drift (1.25, 0), mean h_mean (2/3, 1)
    rows = lifespan.lifespan_rows(path, lattice_rows)
    assert run["step_pull"] == pytest.approx(rows["step_pull"].median())  # the middle two of four rows' means


def test_without_h_mean_its_measurements_are_empty(tmp_path):
    path, lattice_rows = cloud(tmp_path, h_mean=False)
    rows = lifespan.lifespan_rows(path, lattice_rows)
    assert rows["angle_h_mean"].isna().all() and rows["grad_share_h_mean"].isna().all()
    assert rows["grad_norm_1"].notna().all()
    run = lifespan.run_table(path, rows).iloc[0]
    assert run["h_mean"] == 0 and math.isnan(run["rho_angle_h_mean"]) and math.isnan(run["drift_h_mean"])
    assert run["rho_lead"] == pytest.approx(-0.5)


@pytest.mark.parametrize("x, y, expected", [
    ([1, 2, 3, 4], [10, 20, 30, 100], 1.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
    ([1, 2, 3, 4], [1, 1, 1, 1], math.nan),
    ([1, 2], [1, 2], math.nan),
    ([1, 2, 3, math.nan], [1, 3, 2, 5], 0.5),
])
def test_spearman_known_answers(x, y, expected):
    found = lifespan.spearman(x, y)
    assert math.isnan(found) if math.isnan(expected) else found == pytest.approx(expected)


def test_a_row_that_never_moved_has_no_lifespan_and_a_moving_one_ranks_last():
    # The lattice rows table's conventions: never moved: last_move 0, frozen from 0; still moving: no frozen_from.
    table = pd.DataFrame({"matrix": ["W", "W", "W", "E"], "token": [7, 8, 9, 7], "frozen_from": [0, 5, math.nan, 0],
                          "last_move": [0, 4, 10, 0]})
    found = lifespan.lifespans(table, "W", [9, 8, 7], last_step=10)
    assert found["lifespan"].tolist()[:2] == [11, 5] and math.isnan(found["lifespan"].iloc[2])
    assert found["still_moving"].tolist() == [1, 0, 0]


def test_a_lattice_table_of_another_run_is_refused_naming_it(tmp_path):
    path, lattice_rows = cloud(tmp_path, h_mean=False)
    table = pd.read_csv(lattice_rows, sep="\t")
    table[table["token"] != 2].to_csv(tmp_path / "other.rows.tsv", sep="\t", index=False)
    with pytest.raises(AnalysisError, match=r"other\.rows\.tsv: no row of W for dead token\(s\) \[2\]"):
        lifespan.lifespan_rows(path, tmp_path / "other.rows.tsv")
