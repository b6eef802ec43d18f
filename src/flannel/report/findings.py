"""The findings page: notebook 1.20b's four "next steps", each answered with the numbers of one experiment's
runs (the median over seeds), from the per-run analysis tables and the decomposition tables; then the series'
open questions (lore/lifecycle-phases.md) from the per-run lifespan tables, with the median and range over seeds.

1. E vs W dynamics: how far the dead rows of untied E and untied W move from t=0.
2. The decomposition W1 = W2 + E2: how much of the tied run's dead-row displacement the untied E and W
   displacements explain together, and each alone.
3. Whether the expansion persists in W when untied: the dead cloud's radius from the origin, last step over t=0,
   tied and untied.
4. Dead-row gradient sizes in E vs W: the mean dead-row gradient norm over the steps, untied E, untied W and
   tied W (live rows of W for scale).
"""

from __future__ import annotations

import math
from statistics import median

import pandas as pd

QUESTIONS = ("E vs W dynamics", "W1 = W2 + E2", "Does the expansion persist in W when untied?",
             "Dead-row gradients in E vs W")
NO_UNTIED = "no untied run in this experiment"


def _median(tables: list[pd.DataFrame], value) -> float:
    return median(value(table) for table in tables) if tables else math.nan


def _last(column: str):
    return lambda table: float(table[column].iloc[-1])


def _growth(side: str):
    column = f"{side}_dead_radius_origin_mean"
    return lambda table: float(table[column].iloc[-1] / table[column].iloc[0])


def _mean_over_steps(column: str):
    return lambda table: float(table[column].iloc[1:].mean())


def answer_e_vs_w(untied: list[pd.DataFrame]) -> tuple[str, str]:
    if not untied:
        return NO_UNTIED, ""
    e, w = (_median(untied, _last(f"{side}_dead_displacement_from_init")) for side in ("E", "W"))
    moved_e = _median(untied, lambda t: float(t["E_dead_fraction_moved"].iloc[1:].max()))
    answer = ("The dead rows of E never move; those of W do: the dynamics of dead tokens are W's." if e == 0 < w
              else f"Dead rows move in {'both E and W' if e > 0 and w > 0 else 'neither' if e == w == 0 else 'E only'}.")
    return answer, f"last-step displacement from t=0: untied E {e:.4g}, untied W {w:.4g}; largest fraction of E's dead rows moved in a step {moved_e:.3g}"


def answer_decomposition(decompositions: list[pd.DataFrame]) -> tuple[str, str]:
    if not decompositions:
        return "no seed trained both tied and untied", ""
    total, w, e = (_median(decompositions, _last(f"dead_residual_{part}")) for part in ("sum", "W", "E"))
    if total == w and e == 1:  # dE = 0: the dead rows of E never moved, so the sum is W2 alone
        answer = (f"For dead rows the sum is W2 alone (E2's dead rows never move): it leaves {total:.1%} of the "
                  "tied dead rows' displacement unexplained.")
    else:
        holds = total < min(w, e)
        answer = (f"{'Roughly' if holds else 'No'}: dW_untied + dE_untied leaves {total:.1%} of the tied dead rows' "
                  f"displacement unexplained, {'better' if holds else 'no better'} than either part alone.")
    return answer, f"relative residual at the last step: sum {total:.4g}, W alone {w:.4g}, E alone {e:.4g}"


def answer_expansion(tied: list[pd.DataFrame], untied: list[pd.DataFrame]) -> tuple[str, str]:
    tied_growth = _median(tied, _growth("W"))
    if not untied:
        return NO_UNTIED, f"tied W: radius from the origin x{tied_growth:.4g} from t=0 to the last step"
    untied_growth = _median(untied, _growth("W"))
    verb = "persists" if untied_growth > 1 else "does not persist"
    answer = f"The expansion {verb} in W when untied (x{untied_growth:.4g}; tied x{tied_growth:.4g})."
    return answer, f"dead rows' mean distance from the origin, last step / t=0: tied W {tied_growth:.4g}, untied W {untied_growth:.4g}"


def answer_gradients(tied: list[pd.DataFrame], untied: list[pd.DataFrame]) -> tuple[str, str]:
    tied_w = _median(tied, _mean_over_steps("W_dead_grad_norm"))
    live_w = _median(tied, _mean_over_steps("W_live_grad_norm"))
    if not untied:
        return NO_UNTIED, f"mean dead-row gradient norm: tied W {tied_w:.4g} (live rows {live_w:.4g})"
    e, w = (_median(untied, _mean_over_steps(f"{side}_dead_grad_norm")) for side in ("E", "W"))
    answer = ("E's dead rows get no gradient at all; W's get one at every step (the softmax pushes every "
              "non-target logit down)." if e == 0 < w else "Both E's and W's dead rows get gradients.")
    return answer, (f"mean dead-row gradient norm over the steps: untied E {e:.4g}, untied W {w:.4g}, tied W {tied_w:.4g} "
                    f"(tied W's live rows {live_w:.4g})")


def findings_rows(tied: list[pd.DataFrame], untied: list[pd.DataFrame],
                  decompositions: list[pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(question, answer, numbers) for each of 1.20b's next steps."""
    answers = (answer_e_vs_w(untied), answer_decomposition(decompositions), answer_expansion(tied, untied),
               answer_gradients(tied, untied))
    return [(question, *answer) for question, answer in zip(QUESTIONS, answers, strict=True)]


# The series' open questions (lore/lifecycle-phases.md), answered from each run's lifespan table
# (flannel.analysis.lifespan), per trained W (tied and untied): the median over the seeds and its range.
OPEN_QUESTIONS = ("Why does the dead cloud contract as it moves?", "What sets a dead row's lifespan?",
                  "Is there structure in which dead rows freeze early?")
FACTOR_WORDS = {"initial_norm": "initial norm", "angle_centroid": "initial angle to the dead centroid",
                "lead": "initial lead along the drift", "grad_norm_1": "step-1 gradient norm",
                "angle_h_mean": "initial angle to h_mean", "grad_share_h_mean": "gradient's share along h_mean"}
H_MEAN_NOTE = ("the angle to h_mean and the gradient's share along it need h_mean, which these runs did not record "
                "(recording.quantities lacks h_mean)")


def spread(values) -> str:
    """The median over seeds and its range: 'm [lo, hi] over n seeds'."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    return f"{median(values):.3g} [{min(values):.3g}, {max(values):.3g}] over {len(values)} seed{'s' * (len(values) > 1)}"


def _w_rows(lifespans: dict[str, list[pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Per trained W ("tied W", "untied W") with runs, its rows of the runs' lifespan tables (one per seed)."""
    found = {f"{tying} W": pd.concat([t[t["matrix"] == "W"] for t in tables], ignore_index=True)
             for tying, tables in lifespans.items() if tables}
    return {label: rows for label, rows in found.items() if len(rows)}


def _h_mean_note(runs: dict[str, pd.DataFrame]) -> str:
    return "" if all((rows["h_mean"] == 1).all() for rows in runs.values()) else f" ({H_MEAN_NOTE})"


def _column_median(rows: pd.DataFrame, column: str) -> float:
    values = rows[column].dropna()
    return median(values) if len(values) else math.nan


def _contracts(label: str, rows: pd.DataFrame) -> str:
    """Where the contraction lies (along or across the drift), which of the gradient and the step pulls the rows
    in, and whether the trailing rows catch up."""
    ratio, along, across = (_column_median(rows, c) for c in ("radius_ratio", "spread_along_ratio", "spread_across_ratio"))
    if not ratio < 1:
        return f"{label}: the dead cloud does not contract in these runs (radius x{ratio:.4g})."
    where = ("as much across its drift as along it" if math.isclose(along, across, rel_tol=0.01)
             else "more along its drift than across it" if along < across else "more across its drift than along it")
    step, grad = _column_median(rows, "step_pull"), _column_median(rows, "grad_pull")
    source = ("the gradient's own part of each row already points it in (median pull {grad:.3g}): the contraction "
              "is in the gradient" if grad > 0 else "the gradient's own part does not (median pull {grad:.3g}): the "
              "contraction comes from what Adam and the bf16 lattice make of the gradient" if grad <= 0
              else "the gradient's part is unmeasured (no grads recorded)").format(grad=grad)
    catch_up, null = _column_median(rows, "rho_travel_lead"), _column_median(rows, "rho_null")
    lag = (f"the trailing rows travel farther (travel against lead {catch_up:.3g}, beyond chance -{null:.3g})"
           if catch_up < -null else f"no catch-up beyond chance (travel against lead {catch_up:.3g}, chance +-{null:.3g})")
    return (f"{label}: it contracts (radius x{ratio:.4g}), {where}; each row's own step takes it towards the centroid "
            f"(median pull {step:.3g}), and {source}; {lag}.")


def answer_contraction(runs: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """Whether the dead cloud contracts, along its drift or across it, whether the rows' gradients or their steps
    pull them in, whether the trailing rows travel farther, and how the drift lines up with h_mean."""
    numbers = [f"{label}: radius last/t=0 {spread(rows['radius_ratio'])}; along the drift "
               f"{spread(rows['spread_along_ratio'])}; across {spread(rows['spread_across_ratio'])}; pull towards the "
               f"centroid: step {spread(rows['step_pull'])}, gradient {spread(rows['grad_pull'])}; rho(travel, lead) "
               f"{spread(rows['rho_travel_lead'])}; cos(drift, h_mean) {spread(rows['drift_h_mean'])}"
               for label, rows in runs.items()]
    settle = (" What would settle why the gradient's own part points as it does: h_mean recorded, to see whether each "
              "row's push is its softmax weight along h_mean (cos(drift, h_mean) near -1)." if _h_mean_note(runs) else "")
    return " ".join(_contracts(label, rows) for label, rows in runs.items()) + settle, "; ".join(numbers)


def _censored(rows: pd.DataFrame) -> bool:
    """True where no run has three dead rows that froze within it (the lifespans are all censored at the end)."""
    return bool(((rows["with_lifespan"] - rows["still_moving"]) < 3).all())


def _factor_numbers(label: str, rows: pd.DataFrame) -> str:
    ranks = "; ".join(f"{FACTOR_WORDS[q]} {spread(rows[f'rho_{q}'])}" for q in FACTOR_WORDS)
    return f"{label}: rank correlation of the freeze step with {ranks}; chance level +-{spread(rows['rho_null'])}"


def _strongest(rows: pd.DataFrame) -> tuple[str, float]:
    medians = {q: _column_median(rows, f"rho_{q}") for q in FACTOR_WORDS if rows[f"rho_{q}"].notna().any()}
    name = max(medians, key=lambda q: abs(medians[q]), default="")
    return name, medians.get(name, math.nan)


def answer_lifespan(runs: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """The measured start of a row that ranks best with its freeze step (Spearman, median over seeds)."""
    answers = []
    for label, rows in runs.items():
        if _censored(rows):
            answers.append(f"{label}: unsettled: fewer than three dead rows froze within the run "
                           f"({int(rows['still_moving'].min())} of {int(rows['dead_rows'].max())} still moving at the end), "
                           "so every lifespan is censored; a run long enough to freeze them (config/long.yaml) would settle it.")
            continue
        name, rho = _strongest(rows)
        null = _column_median(rows, "rho_null")
        verdict = "the strongest, beyond chance" if abs(rho) > null else "the strongest, yet within chance: unsettled"
        answers.append(f"{label}: {FACTOR_WORDS[name]} ({verdict}: rho {rho:.3g}, chance +-{null:.3g}).")
    return " ".join(answers) + _h_mean_note(runs), "; ".join(_factor_numbers(label, rows) for label, rows in runs.items())


def answer_structure(runs: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """Structured if some start of the row ranks with its freeze step beyond chance in every seed, same sign."""
    answers = []
    for label, rows in runs.items():
        if _censored(rows):
            answers.append(f"{label}: unsettled: no dead row froze within the run, so none froze early.")
            continue
        steady = [FACTOR_WORDS[q] for q in FACTOR_WORDS if rows[f"rho_{q}"].notna().all()
                  and ((rows[f"rho_{q}"] > rows["rho_null"]).all() or (rows[f"rho_{q}"] < -rows["rho_null"]).all())]
        if steady and len(rows) < 2:
            answers.append(f"{label}: suggested by {', '.join(steady)} (beyond chance in its only seed); more seeds "
                           "would settle it.")
        else:
            answers.append(f"{label}: yes, by {', '.join(steady)} (beyond chance and of one sign in every seed)." if steady
                           else f"{label}: not by these measurements: none ranks with the freeze step beyond chance in "
                                "every seed; a measurement of each row's push (its softmax weight over training) would say more.")
    numbers = "; ".join(f"{label}: freeze steps ranked over {int(rows['with_lifespan'].median())} dead rows per seed, "
                        f"{int(rows['still_moving'].median())} still moving at the end (median)" for label, rows in runs.items())
    return " ".join(answers) + _h_mean_note(runs), numbers


def open_question_rows(lifespans: dict[str, list[pd.DataFrame]]) -> list[tuple[str, str, str]]:
    """(question, answer, numbers) for each open question; `lifespans`: per tying, its runs' lifespan tables."""
    runs = _w_rows(lifespans)
    if not runs:
        return [(question, "no run with dead rows", "") for question in OPEN_QUESTIONS]
    answers = (answer_contraction(runs), answer_lifespan(runs), answer_structure(runs))
    return [(question, *answer) for question, answer in zip(OPEN_QUESTIONS, answers, strict=True)]
