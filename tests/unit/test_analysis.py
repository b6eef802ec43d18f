"""The analysis metrics on hand-made tensors with known answers, and the per-run table on a hand-written
recording whose every value is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup
from helpers import write_recording

from flannel.analysis import metrics, per_step, rows
from flannel.errors import AnalysisError
from flannel.outputs import read_table, write_table


def test_cloud_centroid_and_radii():
    offsets = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    stats = metrics.cloud(offsets + torch.tensor([3.0, 4.0]))
    norms = [np.hypot(4, 4), np.hypot(2, 4), np.hypot(3, 6), np.hypot(3, 2)]
    # Per-dimension variances 0.5 (x) and 2 (y): sd per dimension sqrt(1.25).
    assert stats == pytest.approx({"centroid_norm": 5.0, "radius_centroid_mean": 1.5, "radius_centroid_max": 2.0,
                                   "radius_origin_mean": np.mean(norms), "sd_per_dim": np.sqrt(1.25)})


def test_radial_fraction_of_known_directions():
    before = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [5.0, 5.0], [0.0, 0.0]])
    step = torch.tensor([[0.5, 0.0], [0.0, -1.0], [1.0, -1.0], [0.0, 0.0], [1.0, 0.0]])
    fractions = metrics.radial_fractions(before + step, before)
    # outward, inward, tangential, did not move (NaN), sat on the origin (NaN)
    assert fractions[:3].tolist() == pytest.approx([1.0, -1.0, 0.0])
    assert fractions[3:].isnan().all()
    # A step of (1, 1) from (2, 0): 45 degrees off the radius, fraction cos(45) = 0.7071.
    assert metrics.radial_fractions(torch.tensor([[3.0, 1.0]]), torch.tensor([[2.0, 0.0]])).item() == pytest.approx(0.5**0.5)
    counts = metrics.radial_counts(before + step, before)
    # No radial change: the tangential step, the row that did not move, and the row on the origin (no radial
    # direction exists there); the mean fraction is over the three rows with one (+1, -1, 0).
    assert counts == pytest.approx({"outward": 0.2, "inward": 0.2, "no_radial": 0.6, "radial_mean": 0.0})
    # About a centre at (0, 3): row 1 sits on it; row 0's step (0.5, 0) from (2, -3) is partly outward.
    about = metrics.radial_fractions(before + step, before, torch.tensor([0.0, 3.0]))
    assert math.isnan(about[1].item()) and about[0].item() == pytest.approx(2 / 13**0.5)


def test_cloud_of_no_rows_is_nan():
    assert all(math.isnan(v) for v in metrics.cloud(torch.zeros(0, 3)).values())


def test_mean_row_norm():
    assert metrics.mean_row_norm(torch.tensor([[3.0, 4.0], [0.0, 1.0]])) == pytest.approx(3.0)


def test_fraction_moved_counts_rows_with_any_change():
    before = torch.zeros(4, 3)
    after = before.clone()
    after[2, 1] = 1e-6
    assert metrics.fraction_moved(after, before) == 0.25


def test_fraction_moved_sees_the_bf16_freeze():
    # Half an ulp at 1.0 in bf16 is 3.9e-3: an update of 1e-3 rounds away and the row stays bit-identical.
    weights = torch.ones(2, 4, dtype=torch.bfloat16)
    assert metrics.fraction_moved(weights + 1e-3, weights) == 0.0
    assert metrics.fraction_moved(weights + 1e-2, weights) == 1.0


def test_adam_step_is_the_update_torch_adam_makes():
    torch.manual_seed(0)
    param = torch.nn.Parameter(torch.randn(3, 5, dtype=torch.float64))
    optimizer = torch.optim.AdamW([param], lr=0.01, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.0)
    for step in range(1, 5):
        before = param.detach().clone()
        param.grad = torch.randn(3, 5, dtype=torch.float64) * step
        optimizer.step()
    state = optimizer.state[param]
    predicted = metrics.adam_step(state["exp_avg"], state["exp_avg_sq"], lr=0.01, step=4, beta1=0.8, beta2=0.95, eps=1e-3)
    torch.testing.assert_close(predicted, (param.detach() - before).abs(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("schedule,warmup", [("linear", 0), ("linear", 3), ("constant", 2)])
def test_scheduled_lr_matches_transformers(schedule, warmup):
    training = {"learning_rate": 0.5, "warmup_steps": warmup, "steps": 10, "lr_schedule": schedule}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = (get_linear_schedule_with_warmup(optimizer, warmup, 10) if schedule == "linear"
                 else get_constant_schedule_with_warmup(optimizer, warmup))
    for step in range(1, 11):
        assert rows.scheduled_lr(step, training) == pytest.approx(optimizer.param_groups[0]["lr"]), step
        optimizer.step()
        scheduler.step()


def test_auc_known_values():
    assert metrics.auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert metrics.auc([1, 2, 3], [False, True, True]) == 1.0
    assert metrics.auc([1, 2, 3], [True, False, False]) == 0.0
    assert metrics.auc([7, 7, 7, 7], [True, False, True, False]) == 0.5
    assert math.isnan(metrics.auc([1, 2], [True, True]))


def test_auc_counts_ties_as_half_like_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores, positive = rng.integers(0, 4, 40), rng.random(40) < 0.4
    pairs = [(p, n) for p, n in itertools.product(scores[positive], scores[~positive])]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert metrics.auc(scores, positive) == pytest.approx(expected)


def test_remove_first_component_drops_the_dominant_direction():
    # Rows spread widely along x, narrowly along y, uncorrelated: after the removal only y remains.
    x = torch.tensor([[-10.0, 1.0], [10.0, 1.0], [-5.0, -1.0], [5.0, -1.0]])
    expected = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, -1.0], [0.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(metrics.remove_first_component(x), expected)


def test_dead_cosine_after_removing_the_first_component():
    # A huge spread along x (the first principal component, removed); dead rows point +y, live rows +z:
    # dead rows then have cosine 1 with the dead mean, live rows 0.
    x = torch.tensor([[100.0, 1.0, 0.0], [-100.0, 1.0, 0.0], [90.0, 0.0, 1.0], [-90.0, 0.0, 1.0]])
    dead = torch.tensor([True, True, False, False])
    torch.testing.assert_close(metrics.dead_cosine(x, dead), torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert metrics.indicator_aucs(x, dead)["auc_cosine"] == 1.0


def test_dead_cosine_leaves_each_dead_row_out_of_its_reference():
    # After the x removal the dead rows are y, y, z, z: row 0's reference is the mean of y, z, z, so its
    # cosine is 1/sqrt(5) (0.707 if it were compared with a mean it is part of).
    x = torch.tensor([[100.0, 1.0, 0.0], [-100.0, 1.0, 0.0], [100.0, 0.0, 1.0], [-100.0, 0.0, 1.0],
                      [90.0, -1.0, -1.0], [-90.0, -1.0, -1.0]])
    dead = torch.tensor([True, True, True, True, False, False])
    assert metrics.dead_cosine(x, dead)[:4].tolist() == pytest.approx([5**-0.5] * 4)


def test_norm_indicator_ranks_small_rows_as_dead():
    x = torch.tensor([[0.1, 0.0], [0.0, 0.2], [1.0, 0.0], [0.0, 2.0]])
    assert metrics.indicator_aucs(x, torch.tensor([True, True, False, False]))["auc_norm"] == 1.0


# ---- the per-run table on a hand-written recording ---------------------------------------------------------------

def tied_embeddings():
    """4 rows of 2 dims, rows 0 and 1 dead. Step 1 moves every row by (0.3, 0.4) (length 0.5); step 2 moves
    only row 0 by (0, 1)."""
    x0 = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    x1 = x0 + torch.tensor([0.3, 0.4])
    x2 = x1.clone()
    x2[0] += torch.tensor([0.0, 1.0])
    return torch.stack([x0, x1, x2])


@pytest.fixture
def tied_table(tmp_path):
    grads = torch.zeros(3, 4, 2)
    grads[1:, :, 0] = 3.0
    grads[1:, :, 1] = 4.0  # every row's gradient norm is 5
    momentum = torch.zeros(3, 4, 2)
    variance = torch.zeros(3, 4, 2)
    # At step 1 with m = (1 - b1) g and v = (1 - b2) g^2, m_hat / sqrt(v_hat) = sign(g): the step is lr * 1.
    momentum[1] = 0.1 * grads[1]
    variance[1] = 0.01 * grads[1] ** 2
    path = write_recording(tmp_path / "tied.safetensors", {"embeddings": tied_embeddings(), "grads": grads,
                           "momentum": momentum, "variance": variance}, tied=True, dead_indices=[0, 1], vocab_size=4)
    return per_step.analyse_run(path)


def test_table_has_one_row_per_record_with_loss_and_lr(tied_table):
    assert tied_table["step"].tolist() == [0, 1, 2]
    assert math.isnan(tied_table["loss"][0]) and tied_table["loss"][1:].tolist() == [2.0, 1.5]
    # Linear decay over 2 steps: step 1 runs at the full LR, step 2 at half of it.
    assert math.isnan(tied_table["lr"][0]) and tied_table["lr"][1:].tolist() == pytest.approx([0.1, 0.05])


def test_table_cloud_columns(tied_table):
    dead = tied_table.set_index("step")
    # Dead rows (1, 0) and (-1, 0): centroid at the origin, radius 1; after step 1 the centroid is (0.3, 0.4).
    assert dead.loc[0, "W_dead_centroid_norm"] == pytest.approx(0.0)
    assert dead.loc[0, "W_dead_radius_centroid_mean"] == pytest.approx(1.0)
    assert dead.loc[1, "W_dead_centroid_norm"] == pytest.approx(0.5)
    assert dead.loc[1, "W_dead_radius_centroid_max"] == pytest.approx(1.0)
    assert dead.loc[0, "W_live_radius_centroid_mean"] == pytest.approx(2.0)
    assert dead.loc[0, "W_dead_radius_origin_mean"] == pytest.approx(1.0)
    assert dead.loc[1, "W_dead_radius_origin_mean"] == pytest.approx((np.hypot(1.3, 0.4) + np.hypot(0.7, 0.4)) / 2)
    assert dead.loc[0, "W_dead_sd_per_dim"] == pytest.approx(np.sqrt(0.5))


def test_table_radial_columns(tied_table):
    table = tied_table.set_index("step")
    # Step 1 shifts (1, 0) and (-1, 0) by (0.3, 0.4): one outward, one inward about the origin; about their
    # centroid (the origin too) the same. Step 2 moves (1.3, 0.4) by (0, 1) (outward); the other row stays.
    assert table.loc[1, ["W_dead_origin_outward", "W_dead_origin_inward", "W_dead_origin_no_radial"]].tolist() == [0.5, 0.5, 0.0]
    assert table.loc[1, "W_dead_origin_radial_mean"] == pytest.approx(0.0, abs=1e-6)  # float32 inputs
    assert table.loc[1, "W_dead_centroid_outward"] == 0.5
    assert table.loc[2, ["W_dead_origin_outward", "W_dead_origin_no_radial"]].tolist() == [0.5, 0.5]
    assert table.loc[2, "W_dead_origin_radial_mean"] == pytest.approx(0.4 / np.hypot(1.3, 0.4), rel=1e-6)
    assert table.loc[2, "W_live_origin_no_radial"] == 1.0
    assert math.isnan(table.loc[0, "W_dead_origin_outward"])


def test_table_displacement_and_freeze_columns(tied_table):
    table = tied_table.set_index("step")
    assert table.loc[1, "W_dead_displacement_from_init"] == pytest.approx(0.5)
    assert table.loc[1, "W_dead_displacement_step"] == pytest.approx(0.5)
    assert table.loc[1, "W_dead_fraction_moved"] == 1.0
    # Step 2 moves only dead row 0, by 1: the dead group's mean step is 0.5, half its rows moved, no live row did.
    assert table.loc[2, "W_dead_displacement_step"] == pytest.approx(0.5)
    assert table.loc[2, "W_dead_fraction_moved"] == 0.5
    assert table.loc[2, "W_live_fraction_moved"] == 0.0
    assert table.loc[2, "W_live_displacement_from_init"] == pytest.approx(0.5)
    assert table.loc[2, "W_dead_displacement_from_init"] == pytest.approx((np.hypot(0.3, 1.4) + 0.5) / 2)
    assert math.isnan(table.loc[0, "W_dead_displacement_step"]) and math.isnan(table.loc[0, "W_dead_fraction_moved"])


def test_table_gradient_and_adam_columns(tied_table):
    table = tied_table.set_index("step")
    assert table.loc[1, "W_dead_grad_norm"] == pytest.approx(5.0)
    assert table.loc[1, "W_live_grad_norm"] == pytest.approx(5.0)
    assert table.loc[1, "W_dead_adam_step"] == pytest.approx(0.1, rel=1e-6)
    assert table.loc[2, "W_dead_adam_step"] == 0.0  # zero moments recorded at step 2
    assert math.isnan(table.loc[0, "W_dead_grad_norm"]) and math.isnan(table.loc[0, "W_dead_adam_step"])


def test_untied_table_has_both_matrices_and_their_distance(tmp_path):
    embeddings = tied_embeddings()
    path = write_recording(tmp_path / "untied.safetensors", {"embeddings_E": embeddings[[0, 0, 0]],
                           "embeddings_W": embeddings}, tied=False, dead_indices=[0, 1], vocab_size=4)
    table = per_step.analyse_run(path).set_index("step")
    assert table.loc[2, "E_dead_displacement_from_init"] == 0.0
    assert table.loc[1, "W_dead_displacement_from_init"] == pytest.approx(0.5)
    # ||E - W||_F over the two live rows, each 0.5 apart after step 1.
    assert table.loc[1, "E_minus_W_live_fro"] == pytest.approx(np.sqrt(2 * 0.25))
    assert "E_dead_grad_norm" in table.columns and table["E_dead_grad_norm"].isna().all()  # grads not recorded


def test_groups_follow_recorded_rows(tmp_path):
    # A dead_and_sample recording: rows 5 and 9 of a 10-token vocabulary, token 9 dead.
    embeddings = tied_embeddings()[:, :2]
    path = write_recording(tmp_path / "sample.safetensors", {"embeddings": embeddings}, tied=True, dead_indices=[2, 9],
                           vocab_size=10, rows=[5, 9])
    table = per_step.analyse_run(path).set_index("step")
    assert table.loc[0, "W_dead_centroid_norm"] == pytest.approx(1.0)  # row (-1, 0) alone
    assert table.loc[0, "W_live_centroid_norm"] == pytest.approx(1.0)


def test_decomposition_of_an_exact_sum_is_zero(tmp_path):
    embeddings = tied_embeddings()
    half = embeddings[0] + (embeddings - embeddings[0]) / 2
    tied = write_recording(tmp_path / "tied.safetensors", {"embeddings": embeddings}, tied=True, dead_indices=[0, 1], vocab_size=4)
    untied = write_recording(tmp_path / "untied.safetensors", {"embeddings_E": half, "embeddings_W": half}, tied=False,
                             dead_indices=[0, 1], vocab_size=4)
    table = per_step.decomposition(tied, untied).set_index("step")
    assert table.loc[[1, 2], "all_residual_sum"].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # float32 inputs
    assert table.loc[[1, 2], "dead_residual_W"].tolist() == pytest.approx([0.5, 0.5])
    assert math.isnan(table.loc[0, "all_residual_sum"])


def test_decomposition_refuses_runs_that_do_not_pair(tmp_path):
    embeddings = tied_embeddings()
    tied = write_recording(tmp_path / "tied.safetensors", {"embeddings": embeddings}, tied=True, dead_indices=[0, 1], vocab_size=4)
    untied = write_recording(tmp_path / "untied.safetensors", {"embeddings_E": embeddings, "embeddings_W": embeddings},
                             tied=False, dead_indices=[0], vocab_size=4)
    with pytest.raises(AnalysisError, match="untied.safetensors: dead_indices differ"):
        per_step.decomposition(tied, untied)


def test_a_recording_without_embeddings_is_refused_naming_the_file(tmp_path):
    path = write_recording(tmp_path / "bare.safetensors", {"grads": tied_embeddings()}, tied=True, dead_indices=[0], vocab_size=4)
    with pytest.raises(AnalysisError, match=r"bare\.safetensors: no embeddings recorded") as error:
        per_step.analyse_run(path)
    assert "\n" not in str(error.value)


def test_table_round_trip_and_bad_table(tmp_path, tied_table):
    write_table(tied_table, tmp_path / "t.tsv")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.tsv"), tied_table, check_dtype=False)
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(AnalysisError, match=r"bad\.tsv: analysis table lacks column\(s\) step"):
        read_table(tmp_path / "bad.tsv")


def test_analysis_of_a_trained_run_keeps_the_init_radius(tiny_runs):
    table = per_step.analyse_run(tiny_runs[("untied", 42)])
    # Untied dead rows of E get no gradient: they never move, whatever the step.
    assert (table["E_dead_displacement_from_init"] == 0).all()
    assert table["E_dead_radius_centroid_mean"].nunique() == 1
    # Adam's first step is about lr per coordinate for every row that has a gradient.
    assert table.loc[1, "W_dead_adam_step"] == pytest.approx(table.loc[1, "lr"], rel=0.05)
