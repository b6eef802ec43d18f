"""Epochs of the dead cloud (flannel.analysis.epochs) with known answers: a cloud that first contracts at step 2
(about its centroid) and at step 3 (from the origin), a speed peak, rows frozen from step s, and the table across
runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import write_recording

from flannel.analysis import epochs, lattice
from flannel.errors import AnalysisError

STEPS = np.arange(6)


def test_first_decrease_is_the_first_step_below_the_previous_record():
    assert epochs.first_decrease(STEPS, [1.0, 2.0, 1.5, 1.0, 3.0, 0.5]) == 2
    assert math.isnan(epochs.first_decrease(STEPS, [1.0, 1.0, 2.0, 3.0, 3.0, 4.0]))  # never contracts
    assert epochs.first_decrease([0, 10, 20], [1.0, 1.0, 0.9]) == 20  # steps, not record indices


def test_speeds_are_per_optimizer_step_and_smoothed_about_their_centre():
    assert epochs.speed([0, 2, 6], [math.nan, -4.0, 8.0])[1:].tolist() == [2.0, 2.0]
    assert epochs.smoothed([0.0, 3.0, 0.0, 0.0], 3).tolist() == [1.5, 1.0, 1.0, 0.0]
    assert epochs.smoothed([math.nan, 1.0, 5.0], 1)[1:].tolist() == [1.0, 5.0]
    # A lone spike loses to a broad hump once smoothed over 3 records.
    raw = [math.nan, 9.0, 0.0, 0.0, 5.0, 5.0, 5.0, 0.0]
    assert epochs.peak_step(range(8), raw) == 1
    assert epochs.peak_step(range(8), epochs.smoothed(raw, 3)) == 5
    assert math.isnan(epochs.peak_step(range(3), [math.nan, 0.0, 0.0]))  # nothing moved


def test_rows_frozen_from_step_s_give_the_freeze_onset_and_last_motion():
    # Ten rows: eight frozen from step 2, one from step 4, one never (still moving at the end).
    frozen_from = [2] * 8 + [4, math.nan]
    assert epochs.still_moving(STEPS, frozen_from).tolist() == [1.0, 1.0, 0.2, 0.2, 0.1, 0.1]
    assert epochs.freeze_onset(STEPS, frozen_from, 0.8) == 2
    assert epochs.freeze_onset(STEPS, frozen_from, 0.9) == 4
    assert math.isnan(epochs.freeze_onset(STEPS, frozen_from, 1.0))
    assert math.isnan(epochs.freeze_onset(STEPS, [], 0.9))  # no dead rows
    assert epochs.last_motion(0, [1, 3, 5]) == 5
    assert math.isnan(epochs.last_motion(0, [0, 0]))  # rows that never moved


def contracting_cloud(tmp_path, tied=True):
    """Two dead rows at +-r along x around a centroid at (c, 0): r = 1, 2, 1.5, 1.5, 1.5 and c = 0, 0, 2.5, 3, 2.
    The radius from the centroid first shrinks at step 2; the one from the origin (the mean of |c +- r|, c for
    c >= r) grows on while the centroid moves out and first shrinks at step 4. The centroid moves fastest at
    step 2 (2.5), both radii at step 1 (by 1; the origin's again at step 4, the first of equals counts).
    Row 2 is live and fixed."""
    radius, centre = [1.0, 2.0, 1.5, 1.5, 1.5], [0.0, 0.0, 2.5, 3.0, 2.0]
    records = [torch.tensor([[c + r, 0.0], [c - r, 0.0], [5.0, 5.0]]) for r, c in zip(radius, centre)]
    matrices = {"embeddings": torch.stack(records).to(torch.bfloat16)}
    if not tied:
        matrices = {"embeddings_E": matrices["embeddings"], "embeddings_W": matrices["embeddings"]}
    return write_recording(tmp_path / f"cloud{tied}.safetensors", matrices, tied=tied, dead_indices=[0, 1], vocab_size=3,
                           losses=(math.nan,) * 5, steps=tuple(range(5)))


def rows_table(sides=("W",)):
    return pd.DataFrame([{"matrix": side, "token": token, "dead": token < 2, "frozen_from": {0: 4, 1: 4, 2: 1}[token],
                          "last_move": {0: 3, 1: 3, 2: 0}[token]} for side in sides for token in range(3)])


def test_a_cloud_that_contracts_first_at_step_2(tmp_path):
    cloud = epochs.dead_cloud_series(contracting_cloud(tmp_path))
    assert cloud["W_dead_radius_centroid_mean"].tolist() == [1.0, 2.0, 1.5, 1.5, 1.5]
    assert cloud["W_dead_radius_origin_mean"].tolist() == [1.0, 2.0, 2.5, 3.0, 2.0]
    assert cloud["W_dead_centroid_step"].tolist()[1:] == [0.0, 2.5, 0.5, 1.0]
    series = epochs.series_table(cloud, rows_table(), window=1)
    found = epochs.epochs(series, rows_table(), "W", 0.9)
    assert found == {"inhale_radius_centroid": 2.0, "inhale_radius_origin": 4.0, "peak_speed_centroid": 2.0,
                     "peak_speed_radius_centroid": 1.0, "peak_speed_radius_origin": 1.0, "freeze_onset": 4.0,
                     "last_motion": 3.0}
    assert series["W_dead_still_moving"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]


def test_the_table_across_runs_and_its_summary(tmp_path):
    cloud = epochs.dead_cloud_series(contracting_cloud(tmp_path, tied=False))
    assert set(c.split("_")[0] for c in cloud.columns if c != "step") == {"E", "W"}
    paths = []
    for name, sides in (("tied", ("W",)), ("untied", ("E", "W"))):
        series = epochs.series_table(cloud if name == "untied" else cloud.drop(columns=[c for c in cloud if c.startswith("E_")]),
                                     rows_table(sides), window=1)
        series.to_csv(tmp_path / f"{name}.tsv", sep="\t", index=False)
        rows_table(sides).to_csv(tmp_path / f"{name}.rows.tsv", sep="\t", index=False)
        paths.append((tmp_path / f"{name}.tsv", tmp_path / f"{name}.rows.tsv"))
    runs = [("tied", 42), ("tied", 43), ("untied", 42)]
    table = epochs.epoch_table(runs, [paths[0][0], paths[0][0], paths[1][0]], [paths[0][1], paths[0][1], paths[1][1]], 0.9, 1)
    assert table[["run", "matrix"]].values.tolist() == [["tied seed 42", "tied W"], ["tied seed 43", "tied W"],
                                                       ["untied seed 42", "untied W"], ["untied seed 42", "untied E"]]
    assert (table["inhale_radius_centroid"] == 2.0).all() and (table["n_dead"] == 2).all()
    overview = epochs.summary(table).set_index(["matrix", "epoch"])
    assert overview.loc[("tied W", "freeze_onset")].tolist() == ["2/2", 4.0, 4.0, 4.0]
    header, rows = epochs.report_rows(table, epochs.summary(table))
    assert header[-3:] == ("tied seed 42", "tied seed 43", "untied seed 42") and len(rows) == 3 * len(epochs.EPOCHS)
    assert rows[0][:4] == (epochs.EPOCHS["inhale_radius_centroid"], "tied W (2/2)", "2", "2–2")


def test_no_dead_rows_gives_no_epochs_and_a_table_lacking_columns_is_named(tmp_path):
    records = torch.stack([torch.ones(2, 2), torch.ones(2, 2) * 2]).to(torch.bfloat16)
    path = write_recording(tmp_path / "alive.safetensors", {"embeddings": records}, tied=True, dead_indices=[],
                           vocab_size=2, losses=(math.nan, 1.0), steps=(0, 1))
    rows = pd.DataFrame({"matrix": ["W", "W"], "token": [0, 1], "dead": [False, False], "frozen_from": [2, 2],
                         "last_move": [1, 1]})
    series = epochs.series_table(epochs.dead_cloud_series(path), rows, window=5)
    assert all(math.isnan(v) for v in epochs.epochs(series, rows, "W", 0.9).values())
    (tmp_path / "bad.tsv").write_text("step\n0\n")
    rows.to_csv(tmp_path / "rows.tsv", sep="\t", index=False)
    with pytest.raises(AnalysisError, match=r"bad\.tsv: no W columns"):
        epochs.epoch_table([("tied", 1)], [tmp_path / "bad.tsv"], [tmp_path / "rows.tsv"], 0.9, 5)


def test_rows_that_never_move_are_frozen_from_the_first_step():
    """Untied E's dead rows never move: not 'still moving' at step 0 and freezing at step 1, but frozen from 0."""
    tracker = lattice.PhaseTracker(2, early_l2=4.0, mid_linf=1.0)
    for index, moved in ((1, 1.0), (2, 0.0)):
        norms = {"l1": torch.tensor([moved, 0.0]), "linf": torch.tensor([moved, 0.0]), "l2": torch.tensor([moved, 0.0])}
        tracker.update(index, norms)
    frozen_from = tracker.starts()["frozen"].tolist()
    assert frozen_from == [2, 0]
    assert epochs.still_moving([0, 1, 2], [0]).tolist() == [0.0, 0.0, 0.0]
    assert epochs.freeze_onset([0, 1, 2], [0, 0], 0.9) == 0
