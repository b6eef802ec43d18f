"""Adam's hop condition (flannel.analysis.hop_condition) and the freeze attribution
(flannel.analysis.freeze_causes) on hand-built recordings whose updates land exactly on the rule's boundaries.

Settings chosen so every update is exact: beta1 1/2, beta2 3/4 and eps 0, so at step 1 m_hat = 2 m and
sqrt(v_hat) = 2 sqrt(v); with v = 1/4, u = -lr m_hat / sqrt(v_hat) = -2 lr m."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import write_recording

from flannel.analysis import freeze_causes, hop_condition

BF16 = torch.bfloat16
LR = 2.0**-4
TRAINING = {"learning_rate": LR, "lr_schedule": "linear", "warmup_steps": 0, "steps": 2, "adam_beta1": 0.5,
            "adam_beta2": 0.75, "adam_epsilon": 0.0}


def boundary_run(path):
    """Rows 0 and 1 dead, row 2 live; D = 2. Step 1 (lr 2^-4): row 0 sits at 1.0 and gets u = -2^-9, the
    quarter-ulp tie toward zero from a power of two (no hop); row 1 sits at 1 + 2^-7 (odd) and gets u = +2^-8,
    the half-ulp tie (hop to 1 + 2^-6), recorded as it happened. Step 2 (lr 2^-5, m_hat = m / (3/4) and
    sqrt(v_hat) = sqrt(v / (15/16))): row 0 gets a hop past the quarter-ulp, recorded; row 1 gets less than half
    an ulp but is recorded as hopping anyway (a miss of the predictor). Row 2 never moves (m = 0)."""
    w0 = torch.tensor([[1.0, 0.5], [1.0 + 2**-7, 0.5], [0.25, 0.25]])
    w1 = torch.tensor([[1.0, 0.5], [1.0 + 2**-6, 0.5], [0.25, 0.25]])
    w2 = torch.tensor([[1.0 - 2**-8, 0.5], [1.0 + 2**-6 + 2**-7, 0.5], [0.25, 0.25]])
    # Step 1: u = -2 lr m = -m / 8. Step 2: u = -lr2 (m / (3/4)) / (sqrt(v) / sqrt(15/16)).
    m1 = torch.tensor([[2.0**-6, 0.0], [-(2.0**-5), 0.0], [0.0, 0.0]])
    m2 = torch.tensor([[2.0**-3, 0.0], [-(2.0**-8), 0.0], [0.0, 0.0]])
    v = torch.full((3, 2), 0.25)
    matrices = {"embeddings": torch.stack([w0, w1, w2]).to(BF16), "momentum": torch.stack([torch.zeros(3, 2), m1, m2]).to(BF16),
                "variance": torch.stack([torch.zeros(3, 2), v, v]).to(BF16)}
    return write_recording(path, matrices, tied=True, dead_indices=[0, 1], vocab_size=3, training=TRAINING)


def test_the_predictor_on_the_boundaries_counts_hits_and_misses(tmp_path):
    table = hop_condition.hop_table(boundary_run(tmp_path / "b.safetensors")).set_index("step")
    assert table.loc[1:, "lr"].tolist() == [LR, LR / 2]
    assert table.loc[1:, "W_dead_predicted"].tolist() == [1, 1]  # step 1: row 1's odd tie; step 2: row 0
    assert table.loc[1:, "W_dead_observed"].tolist() == [1, 2]
    assert table.loc[1:, "W_dead_both"].tolist() == [1, 1]
    assert table.loc[1:, "W_live_observed"].tolist() == [0, 0]
    assert table.loc[1, "W_dead_ulp_ratio_p90"] <= 0.5  # the step-1 updates are 1/4 and 1/2 ulp
    # Adam's term per row at step 1: |2m / (2 x 1/2)| = 2|m|: 2^-5 and 2^-4, median of the two rows.
    assert table.loc[1, "W_dead_adam_term_median"] == pytest.approx((2.0**-5 + 2.0**-4) / 2)
    scores = hop_condition.precision_recall(table, "W_dead")
    assert (scores["predicted"], scores["observed"], scores["both"]) == (2, 3, 2)
    assert (scores["precision"], scores["recall"]) == (1.0, pytest.approx(2 / 3))
    assert math.isnan(hop_condition.precision_recall(table, "W_live")["precision"])


def test_a_recording_without_moments_gives_empty_counts(tmp_path):
    x = torch.ones(3, 2, 2, dtype=BF16)
    path = write_recording(tmp_path / "w.safetensors", {"embeddings": x}, tied=True, dead_indices=[0], vocab_size=2)
    table = hop_condition.hop_table(path)
    assert hop_condition.why_not(__import__("flannel.recording").recording.Recording(path)) == "recording.quantities lacks momentum, variance"
    assert (table["W_dead_predicted"] == 0).all() and table["W_dead_adam_term_median"].isna().all()


def freezing_run(path):
    """Four dead rows (D = 1) and a live one that never moves; 4 steps of lr 2^-4 decaying linearly (step 3:
    2^-5). Each dead row sits at 1.5 (half-ulp 2^-8), hops at steps 1 and 2 and is still from step 3, where the
    recorded v = 1/4 gives sqrt(v_hat) = sqrt(16/37) = 0.658 and |m_hat| / sqrt(v_hat) is 0.1 for row A and 0.05
    for B, C, D: no hop (2^-5 x 0.1 < 2^-8). Held at lr 2^-4, only A hops. The grads are 0, 0, g: the float32
    v at step 3 is g^2 / 4, equal to the recorded v for g = 1 and 16 times smaller for B's g = 1/4 (ratio 0.2:
    B hops). m_hat at step 1 is 2 m_1: 0.0625 for A, B, D (ratio 0.095: no hop) and 0.125 for C (0.19: hops)."""
    m3 = torch.tensor([0.0576, 0.0288, 0.0288, 0.0288, 0.0])
    m1 = torch.tensor([2.0**-5, 2.0**-5, 2.0**-4, 2.0**-5, 0.0])
    g3 = torch.tensor([1.0, 0.25, 1.0, 1.0, 0.0])
    w = 1.5 + torch.tensor([0.0, 2.0**-7, 2.0**-6, 2.0**-6, 2.0**-6])[:, None] * torch.tensor([1.0, 1, 1, 1, 0])
    column = lambda values: torch.stack(values)[:, :, None].to(BF16)  # noqa: E731  [T, rows, 1]
    zero, quarter = torch.zeros(5), torch.full((5,), 0.25)
    matrices = {"embeddings": column(list(w)), "momentum": column([zero, m1, m3, m3, m3]),
                "variance": column([zero, quarter, quarter, quarter, quarter]),
                "grads": column([zero, zero, zero, g3, zero])}
    return write_recording(path, matrices, tied=True, dead_indices=[0, 1, 2, 3], vocab_size=5,
                           training={**TRAINING, "steps": 4}, losses=(math.nan,) * 5, steps=tuple(range(5)))


def test_each_counterfactual_revives_the_row_frozen_by_its_own_cause(tmp_path):
    rows = freeze_causes.cause_rows(freezing_run(tmp_path / "f.safetensors"))
    dead = rows[rows["dead"]]
    assert dead["status"].tolist() == ["frozen"] * 4
    assert dead["last_move"].tolist() == [2] * 4 and dead["frozen_from"].tolist() == [3] * 4
    assert dead["as_recorded"].tolist() == [0] * 4
    assert dead["schedule"].tolist() == [1, 0, 0, 0]
    assert dead["variance"].tolist() == [0, 1, 0, 0]
    assert dead["signal"].tolist() == [0, 0, 1, 0]
    assert dead["cause"].tolist() == ["schedule", "variance", "signal", "none"]
    live = rows[~rows["dead"]].iloc[0]
    assert live["status"] == "never_moved" and math.isnan(live["schedule"]) and live["cause"] == ""
    assert freeze_causes.shares(rows, "W")["cause_none"] == 0.25
    # The margin's factors from step 1 to step 3 for row A: the LR halved (-1); m_hat from 2^-4 to
    # bf16(0.0576) / (7/8); sqrt(v_hat) from 1 to sqrt(16/37); same binade (0); the float32 v equals the bf16 v.
    signal = math.log2(torch.tensor(0.0576, dtype=BF16).item() / (7 / 8) / 2**-4)
    a = dead.iloc[0]
    assert [a[f"log2_{n}"] for n in ("schedule", "signal", "variance", "lattice", "bf16_v")] == pytest.approx(
        [-1.0, signal, -math.log2(math.sqrt(16 / 37)), 0.0, 0.0])
    assert dead.iloc[1]["log2_bf16_v"] == pytest.approx(-2.0)  # B: float32 v 16 times smaller, sqrt 4 times


def test_shares_count_frozen_dead_rows_only():
    import pandas as pd

    rows = pd.DataFrame({"matrix": ["W"] * 5, "dead": [True, True, True, True, False],
                         "status": ["frozen", "frozen", "frozen", "moving", "frozen"],
                         "as_recorded": [0, 0, 1, math.nan, 0], "schedule": [1, 1, 0, math.nan, 1],
                         "variance": [0, 1, 0, math.nan, 0], "signal": [0, 0, 0, math.nan, 0],
                         "cause": ["schedule", "several", "none", "", "schedule"],
                         **{name: [-1.0, -2.0, -4.0, math.nan, -9.0] for name in freeze_causes.FACTORS}})
    found = freeze_causes.shares(rows, "W")
    assert found["frozen_dead"] == 3
    assert found["revived_by_schedule"] == pytest.approx(2 / 3) and found["revived_by_variance"] == pytest.approx(1 / 3)
    assert (found["cause_schedule"], found["cause_several"], found["cause_none"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert found["hop_as_recorded"] == pytest.approx(1 / 3)
    assert found["median_log2_schedule"] == -2.0  # over the three frozen dead rows only
