"""h_mean, the force on the dead rows (flannel.analysis.h_mean), on hand-built inputs: h_mean series whose
autocorrelation and swing are known, and a recording whose dead cloud moves straight against h_mean and lifts
off the origin at a known step while the live cloud stays about it. (h_mean of a model whose final LayerNorm
output is known: tests/unit/test_training.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import write_recording

from flannel.analysis import h_mean as analysis
from flannel.errors import AnalysisError

BF16 = torch.bfloat16


def test_autocorrelation_is_the_cosine_of_consecutive_h_means_from_record_two():
    h = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    found = analysis.autocorrelation(h)
    assert np.isnan(found[:2]).all()
    assert found[2:] == pytest.approx([math.sqrt(0.5), math.sqrt(0.5), -1.0])


def test_swing_is_the_angle_from_the_window_mean_direction():
    h = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    largest, mean = analysis.swing(h, window=2)
    assert np.isnan(largest[:2]).all() and np.isnan(mean[:2]).all()
    assert (largest[2], mean[2]) == pytest.approx((math.pi / 4, math.pi / 4))  # (1,0), (0,1) about (1,1)
    assert (largest[3], mean[3]) == pytest.approx((0.0, 0.0), abs=1e-7)  # the same vector twice
    assert np.isnan(analysis.swing(h, window=4)[0]).all()  # a window longer than the h_means recorded


def cloud_run(path, tokens, *, with_h_mean=True):
    """Dead rows 0, 1 at c +- (0, 0.375) with c = (-0.25 t, 0): each step moves them by -0.25 h_mean, h_mean =
    (1, 0); bounding radius 0.375, so |c| passes it at step 2. Live rows 2, 3 at (+-0.5, 0): centroid at the
    origin, never lifted off. Steps 0-3."""
    records = [torch.tensor([[-0.25 * t, 0.375], [-0.25 * t, -0.375], [0.5, 0.0], [-0.5, 0.0]]) for t in range(4)]
    h = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    tokens.write_text("token_id,token,count,live\n0,zero,0,0\n1,one,0,0\n2,two,5,1\n3,three,7,1\n", encoding="utf-8")
    return write_recording(path, {"embeddings": torch.stack(records).to(BF16)}, tied=True, dead_indices=[0, 1],
                           vocab_size=4, losses=(math.nan, 1.0, 1.0, 1.0), steps=(0, 1, 2, 3),
                           extra={"h_mean": h} if with_h_mean else None)


def test_a_cloud_moving_against_h_mean_lifts_off_at_its_known_step(tmp_path):
    run = cloud_run(tmp_path / "run.safetensors", tmp_path / "tokens.csv")
    steps, runs, tokens = analysis.h_mean_tables(run, tmp_path / "tokens.csv", window=2)
    assert steps["h_mean_norm"].tolist()[1:] == [1.0, 1.0, 1.0] and math.isnan(steps["h_mean_norm"][0])
    assert steps["h_mean_autocorrelation"].tolist()[2:] == pytest.approx([1.0, 1.0])
    assert steps["W_h_mean_cos_dC"].tolist()[1:] == pytest.approx([-1.0, -1.0, -1.0])
    assert steps["W_dead_centroid"].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert steps["W_dead_radius"].tolist() == pytest.approx([0.375] * 4)
    assert steps["W_live_centroid"].tolist() == [0.0] * 4 and steps["W_live_radius"].tolist() == [0.5] * 4
    assert steps["W_separation"].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75])
    row = runs.set_index("matrix").loc["W"]
    assert row["dead_liftoff"] == 2 and math.isnan(row["live_liftoff"])
    assert (row["h_mean_cos_dC_mean"], row["h_mean_autocorrelation_mean"]) == pytest.approx((-1.0, 1.0))
    assert (row["separation_first"], row["separation_last"]) == pytest.approx((0.0, 0.75))
    assert row["h_mean_swing_max"] == pytest.approx(0.0, abs=1e-7)
    # h_mean . w_i is the first coordinate: live row 2, then the dead rows (tied, in row order), then row 3;
    # by step 3 the dead rows have moved below row 3.
    assert tokens["step"].tolist() == [1] * 4 + [3] * 4
    assert tokens["token_id"].tolist() == [2, 0, 1, 3, 2, 3, 0, 1]
    assert tokens["token"].tolist()[:4] == ["two", "zero", "one", "three"]
    assert tokens["dead"].tolist()[:4] == [False, True, True, False]
    assert tokens["score"].tolist()[4:] == pytest.approx([0.5, -0.5, -0.75, -0.75])


def test_a_recording_without_h_mean_keeps_the_clouds_and_has_no_h_mean_columns(tmp_path):
    run = cloud_run(tmp_path / "run.safetensors", tmp_path / "tokens.csv", with_h_mean=False)
    steps, runs, tokens = analysis.h_mean_tables(run, tmp_path / "tokens.csv", window=2)
    for column in (*analysis.H_MEAN_COLUMNS, "W_h_mean_cos_dC"):
        assert steps[column].isna().all(), column
    assert runs.loc[0, "dead_liftoff"] == 2 and math.isnan(runs.loc[0, "h_mean_cos_dC_mean"])
    assert tokens.empty and list(tokens.columns) == analysis.TOKEN_COLUMNS


def test_a_token_table_lacking_a_recorded_token_is_one_line_naming_it(tmp_path):
    run = cloud_run(tmp_path / "run.safetensors", tmp_path / "tokens.csv")
    (tmp_path / "tokens.csv").write_text("token_id,token,count,live\n0,zero,0,0\n", encoding="utf-8")
    with pytest.raises(AnalysisError, match=r"tokens\.csv: no row for token ids \[1, 2, 3\]"):
        analysis.h_mean_tables(run, tmp_path / "tokens.csv", window=2)


def test_a_group_with_no_row_has_no_centroid():
    centroid, radius = analysis.cloud(torch.zeros(0, 3, dtype=torch.float64))
    assert centroid.isnan().all() and centroid.shape == (3,) and math.isnan(radius)


def test_figure_x_draws_from_the_tables_and_is_a_card_without_h_mean(tmp_path):
    from flannel.outputs import write_table
    from flannel.report import figures

    run = cloud_run(tmp_path / "run.safetensors", tmp_path / "tokens.csv")
    steps, _, tokens = analysis.h_mean_tables(run, tmp_path / "tokens.csv", window=2)
    write_table(steps, tmp_path / "steps.tsv")
    write_table(tokens, tmp_path / "top.tsv")
    seeds = {"tied": [1], "untied": [], "paired": [], "reference": 1}
    settings = {"seeds": seeds, "quantities": ["embeddings", "h_mean"], "figures": {"dpi": 40}}
    inputs = {"h_mean_tied": [str(tmp_path / "steps.tsv")], "h_mean_tokens": [str(tmp_path / "top.tsv")]}
    assert figures.draw("x_h_mean", inputs, settings, tmp_path / "x.png") is None
    assert (tmp_path / "x.png").stat().st_size > 3000
    without = {**settings, "quantities": ["embeddings"]}
    assert figures.draw("x_h_mean", inputs, without, tmp_path / "x.png") == "recording.quantities lacks h_mean"
