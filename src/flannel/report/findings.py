"""The findings page: notebook 1.20b's four "next steps", each answered with the numbers of one experiment's
runs (the median over seeds), from the per-run analysis tables and the decomposition tables.

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
