"""Across experiments: one summary row per run of every experiment, with the config values that tell the
experiments apart, read from the per-run analysis tables (their first and last records).

Summary columns: `experiment`, `tying`, `seed`, then `<section>.<key>` for each resolved config value that
differs between experiments, then `final_loss` and, for the dead rows of W (the matrix every run trains):
  W_dead_radius_centroid_t0, W_dead_radius_centroid_last   mean distance from the dead centroid
  W_dead_radius_origin_t0, W_dead_radius_origin_last       mean distance from the origin (mean row norm)
  W_dead_centroid_norm_last                                norm of the dead centroid at the last step
  W_dead_fraction_moved_last                               fraction of dead rows that moved at the last step
  W_dead_freeze_onset                                      first step after which analysis.freeze_fraction of the
                                                           dead rows never move again (flannel.analysis.epochs;
                                                           NaN: never)
then the series after notebook 1.24, for the run's W, so that the experiments answer "what changes the freeze"
side by side:
  W_hop_precision, W_hop_recall                            the hop predictor on the dead rows (hop_condition)
  W_frozen_dead, W_revived_by_{schedule,variance,signal},  the frozen dead rows and the share each counterfactual
  W_cause_none                                             revives, and that none does (freeze_causes)
  W_freeze_runs, W_longest_run, W_steps_all_still, W_thaws the global-freeze runs (five_phases)
  W_autocorrelation_below, W_path_efficiency,              the kinetics scalars (kinetics)
  W_bias_to_noise                                          (all these through the experiment's freeze summary)
  W_dead_last_{hypernova,...,stumbling}_median,            the median dead row's last step in each of the five
  W_dead_reheats_mean                                      phases or hotter (rows never in it left out) and the
                                                           mean reheats (five_phases rows)
  W_<column> of the lifespan run table                     rank correlations, contraction, pulls (lifespan)
"""

from __future__ import annotations

import math

import pandas as pd

from ..errors import AnalysisError
from ..outputs import read_table

LAST = {  # summary column: (analysis column, record)
    "W_dead_radius_centroid_t0": ("W_dead_radius_centroid_mean", 0),
    "W_dead_radius_centroid_last": ("W_dead_radius_centroid_mean", -1),
    "W_dead_radius_origin_t0": ("W_dead_radius_origin_mean", 0),
    "W_dead_radius_origin_last": ("W_dead_radius_origin_mean", -1),
    "W_dead_centroid_norm_last": ("W_dead_centroid_norm", -1),
    "W_dead_fraction_moved_last": ("W_dead_fraction_moved", -1),
}

FREEZE = {  # summary column: the freeze summary's column (flannel.analysis.freeze_summary), at the run's W
    "W_hop_precision": "dead_precision", "W_hop_recall": "dead_recall", "W_frozen_dead": "frozen_dead",
    **{f"W_revived_by_{cause}": f"revived_by_{cause}" for cause in ("schedule", "variance", "signal")},
    "W_cause_none": "cause_none",
    **{f"W_{name}": name for name in ("freeze_runs", "longest_run", "steps_all_still", "thaws", "autocorrelation_below",
                                      "path_efficiency", "bias_to_noise")},
}
PHASE_BOUNDARIES = ("hypernova", "superluminal", "spherical", "stumbling")
LIFESPAN = ("radius_ratio", "spread_along_ratio", "spread_across_ratio", "step_pull", "grad_pull", "rho_travel_lead",
            "drift_h_mean", "rho_null", "rho_initial_norm", "rho_angle_centroid", "rho_lead", "rho_grad_norm_1",
            "rho_angle_h_mean", "rho_grad_share_h_mean")


def flatten(sections: dict) -> dict:
    """{"model": {"init_scale": 0.02}} -> {"model.init_scale": 0.02}; lists become their text, null "null"."""
    return {f"{section}.{key}": (str(value) if isinstance(value, list) else "null" if value is None else value)
            for section, values in sections.items() for key, value in values.items()}


def differing_values(experiments: dict[str, dict]) -> dict[str, dict]:
    """Per experiment, the resolved values of the keys whose values differ between experiments (none with
    only one experiment), in config order."""
    flat = {name: flatten(sections) for name, sections in experiments.items()}
    keys = list(next(iter(flat.values()), {}))
    differ = [key for key in keys if len({repr(values[key]) for values in flat.values()}) > 1]
    return {name: {key: values[key] for key in differ} for name, values in flat.items()}


def summary_row(experiment: str, tying: str, seed: int, table_path, epochs: pd.DataFrame, differing: dict) -> dict:
    table = read_table(table_path, ("step", "loss", *sorted({column for column, _ in LAST.values()})))
    row = {"experiment": experiment, "tying": tying, "seed": seed, **differing,
           "steps": int(table["step"].iloc[-1]), "final_loss": float(table["loss"].iloc[-1])}
    row.update({name: float(table[column].iloc[record]) for name, (column, record) in LAST.items()})
    onset = epochs.loc[(epochs["seed"] == seed) & (epochs["matrix"] == f"{tying} W"), "freeze_onset"]
    row["W_dead_freeze_onset"] = float(onset.iloc[0]) if len(onset) else math.nan
    return row


def _at_w(table: pd.DataFrame, path, **match) -> pd.Series:
    """The one row of `table` for W (and `match`), refused with a line naming the file if there is none."""
    mask = table["matrix"] == "W"
    for column, value in match.items():
        mask &= table[column] == value
    if mask.sum() != 1:
        raise AnalysisError(f"{path}: {int(mask.sum())} rows for W{''.join(f' {k} {v}' for k, v in match.items())}, "
                            "expected one; rerun its rule")
    rows = table[mask]
    return rows.iloc[0]


def series_columns(tying: str, seed: int, freeze_path, phase_rows_path, lifespan_path) -> dict:
    """The run's columns of the series after notebook 1.24 (module docstring), from its experiment's freeze
    summary, its five-phase rows and its lifespan run table."""
    freeze = _at_w(read_table(freeze_path, ("tying", "seed", "matrix", *FREEZE.values())), freeze_path, tying=tying, seed=seed)
    phases = read_table(phase_rows_path, ("matrix", "dead", "reheats", *(f"last_{p}" for p in PHASE_BOUNDARIES)))
    dead_w = phases[(phases["matrix"] == "W") & phases["dead"].astype(bool)]
    lifespan = _at_w(read_table(lifespan_path, ("matrix", *LIFESPAN)), lifespan_path)
    return {**{name: float(freeze[column]) for name, column in FREEZE.items()},
            **{f"W_dead_last_{p}_median": float(dead_w[f"last_{p}"].median()) for p in PHASE_BOUNDARIES},
            "W_dead_reheats_mean": float(dead_w["reheats"].mean()) if len(dead_w) else math.nan,
            **{f"W_{name}": float(lifespan[name]) for name in LIFESPAN}}


def summary_table(runs: list[tuple[str, str, int]], table_paths: list[str], epoch_paths: dict[str, str],
                  experiments: dict[str, dict], series: dict) -> pd.DataFrame:
    """`runs`: (experiment, tying, seed) of each analysis table, in the same order as `table_paths`;
    `epoch_paths`: each experiment's epochs table (flannel.analysis.epochs); `experiments`: each experiment's resolved
    training sections; `series`: "freeze" (each experiment's freeze summary), "phase_rows" and "lifespan" (each
    run's five-phase rows and lifespan run table, in `runs` order)."""
    differing = differing_values(experiments)
    epochs = {name: read_table(path, ("seed", "matrix", "freeze_onset")) for name, path in epoch_paths.items()}
    rows = [{**summary_row(experiment, tying, seed, path, epochs[experiment], differing[experiment]),
             **series_columns(tying, seed, series["freeze"][experiment], phase_rows, lifespan)}
            for (experiment, tying, seed), path, phase_rows, lifespan
            in zip(runs, table_paths, series["phase_rows"], series["lifespan"], strict=True)]
    return pd.DataFrame(rows)


def swept_keys(summary: pd.DataFrame) -> list[str]:
    """The config columns of a summary table (the values the experiments sweep)."""
    return [column for column in summary.columns if "." in column]


def numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))
               for v in values)
