"""The findings page on hand-built tables with known answers: each of 1.20b's next steps answered with numbers."""

import pandas as pd
import pytest

from flannel.report.findings import findings_rows, NO_UNTIED


def run_table(sides: dict[str, dict]) -> pd.DataFrame:
    """Three records; per side, dead-row displacement and radius from the origin at each record, and grad norms."""
    columns = {"step": [0, 1, 2]}
    for side, values in sides.items():
        columns[f"{side}_dead_displacement_from_init"] = [0.0, *values["moved"]]
        columns[f"{side}_dead_fraction_moved"] = [float("nan"), *values.get("fraction", (0.5, 0.5))]
        columns[f"{side}_dead_radius_origin_mean"] = values["radius"]
        columns[f"{side}_dead_grad_norm"] = [float("nan"), *values["grad"]]
        columns[f"{side}_live_grad_norm"] = [float("nan"), 1.0, 3.0]
    return pd.DataFrame(columns)


TIED = run_table({"W": {"moved": (0.1, 0.2), "radius": (1.0, 1.5, 2.0), "grad": (0.2, 0.4)}})
UNTIED = run_table({"E": {"moved": (0.0, 0.0), "fraction": (0.0, 0.0), "radius": (1.0, 1.0, 1.0), "grad": (0.0, 0.0)},
                    "W": {"moved": (0.1, 0.3), "radius": (1.0, 1.2, 1.5), "grad": (0.1, 0.3)}})
DECOMPOSITION = pd.DataFrame({"step": [0, 1, 2], "dead_residual_sum": [float("nan"), 0.1, 0.05],
                              "dead_residual_W": [float("nan"), 0.5, 0.4], "dead_residual_E": [float("nan"), 1.0, 1.0]})


def test_each_next_step_is_answered_with_its_numbers():
    rows = {question: (answer, numbers) for question, answer, numbers in findings_rows([TIED], [UNTIED], [DECOMPOSITION])}
    assert rows["E vs W dynamics"][0].startswith("The dead rows of E never move")
    assert "untied E 0, untied W 0.3" in rows["E vs W dynamics"][1]
    assert rows["W1 = W2 + E2"][0].startswith("Roughly: dW_untied + dE_untied leaves 5.0%")
    assert rows["Does the expansion persist in W when untied?"][0] == "The expansion persists in W when untied (x1.5; tied x2)."
    assert "untied E 0, untied W 0.2, tied W 0.3 (tied W's live rows 2)" in rows["Dead-row gradients in E vs W"][1]


def test_without_untied_runs_each_row_says_so():
    rows = findings_rows([TIED], [], [])
    assert [answer for _, answer, _ in rows] == [NO_UNTIED, "no seed trained both tied and untied", NO_UNTIED, NO_UNTIED]
    assert rows[2][2] == "tied W: radius from the origin x2 from t=0 to the last step"


@pytest.mark.parametrize("residual, verdict", [(0.05, "Roughly"), (0.6, "No")])
def test_the_decomposition_must_beat_each_part(residual, verdict):
    table = DECOMPOSITION.assign(dead_residual_sum=[float("nan"), 0.1, residual])
    assert findings_rows([TIED], [UNTIED], [table])[1][1].startswith(verdict)


def test_a_still_e_makes_the_sum_w_alone():
    table = DECOMPOSITION.assign(dead_residual_sum=[float("nan"), 0.2, 0.15], dead_residual_W=[float("nan"), 0.2, 0.15])
    answer = findings_rows([TIED], [UNTIED], [table])[1][1]
    assert answer.startswith("For dead rows the sum is W2 alone (E2's dead rows never move): it leaves 15.0%")
