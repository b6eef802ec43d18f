"""The findings page on hand-built tables with known answers: each of 1.20b's next steps answered with numbers."""

import pandas as pd
import pytest

from flannel.report.findings import NO_UNTIED, OPEN_QUESTIONS, findings_rows, open_question_rows


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


def lifespan_table(**values) -> pd.DataFrame:
    """One run's lifespan table: W with the given columns over these defaults (100 dead rows, 40 still moving,
    h_mean recorded, no correlation)."""
    row = {"matrix": "W", "dead_rows": 100, "with_lifespan": 100, "still_moving": 40, "h_mean": 1, "rho_null": 0.2,
           "rho_travel_lead": -0.5, "radius_ratio": 0.6, "spread_along_ratio": 0.5, "spread_across_ratio": 0.7,
           "drift_h_mean": -0.9, "step_pull": 0.1, "grad_pull": -0.05, **{f"rho_{q}": 0.0 for q in ("initial_norm", "angle_centroid", "lead", "grad_norm_1",
                                                             "angle_h_mean", "grad_share_h_mean")}}
    row.update(values)
    return pd.DataFrame([row, {**row, "matrix": "E"}])


def test_the_open_questions_are_answered_with_the_median_and_range_over_seeds():
    seeds = [lifespan_table(rho_initial_norm=0.3, rho_angle_h_mean=-0.25, radius_ratio=0.5),
             lifespan_table(rho_initial_norm=0.5, rho_angle_h_mean=-0.15, radius_ratio=0.7)]
    rows = {question: (answer, numbers) for question, answer, numbers in open_question_rows({"tied": seeds, "untied": []})}
    assert list(rows) == list(OPEN_QUESTIONS)
    contraction, numbers = rows[OPEN_QUESTIONS[0]]
    assert contraction.startswith("tied W: it contracts (radius x0.6), more along its drift than across it; each row's own "
                                  "step takes it towards the centroid (median pull 0.1), and the gradient's own part does "
                                  "not (median pull -0.05): the contraction comes from what Adam and the bf16 lattice")
    assert "the trailing rows travel farther (travel against lead -0.5, beyond chance -0.2)" in contraction
    assert "radius last/t=0 0.6 [0.5, 0.7] over 2 seeds" in numbers and "cos(drift, h_mean) -0.9 [-0.9, -0.9]" in numbers
    assert rows[OPEN_QUESTIONS[1]][0] == "tied W: initial norm (the strongest, beyond chance: rho 0.4, chance +-0.2)."
    assert "initial norm 0.4 [0.3, 0.5] over 2 seeds" in rows[OPEN_QUESTIONS[1]][1]
    # the angle to h_mean is beyond chance in one seed only: not a structure
    assert rows[OPEN_QUESTIONS[2]][0] == "tied W: yes, by initial norm (beyond chance and of one sign in every seed)."
    one_seed = open_question_rows({"tied": seeds[:1], "untied": []})[2][1]
    assert one_seed == "tied W: suggested by initial norm, initial angle to h_mean (beyond chance in its only seed); more seeds would settle it."


def test_censored_lifespans_and_no_h_mean_say_what_would_settle_them():
    seeds = [lifespan_table(still_moving=100, h_mean=0, drift_h_mean=float("nan"), radius_ratio=1.1)]
    rows = open_question_rows({"tied": seeds, "untied": seeds})
    assert rows[0][1].startswith("tied W: the dead cloud does not contract in these runs (radius x1.1). untied W:")
    assert "h_mean recorded" in rows[0][1]
    assert rows[1][1].startswith("tied W: unsettled: fewer than three dead rows froze within the run (100 of 100 still moving")
    assert "config/long.yaml" in rows[1][1] and "recording.quantities lacks h_mean" in rows[1][1]
    assert rows[2][1].startswith("tied W: unsettled: no dead row froze within the run")
    assert open_question_rows({"tied": [], "untied": []})[0][1] == "no run with dead rows"
