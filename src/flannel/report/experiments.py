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
"""

from __future__ import annotations

import math

import pandas as pd

from ..outputs import read_table

LAST = {  # summary column: (analysis column, record)
    "W_dead_radius_centroid_t0": ("W_dead_radius_centroid_mean", 0),
    "W_dead_radius_centroid_last": ("W_dead_radius_centroid_mean", -1),
    "W_dead_radius_origin_t0": ("W_dead_radius_origin_mean", 0),
    "W_dead_radius_origin_last": ("W_dead_radius_origin_mean", -1),
    "W_dead_centroid_norm_last": ("W_dead_centroid_norm", -1),
    "W_dead_fraction_moved_last": ("W_dead_fraction_moved", -1),
}


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


def summary_table(runs: list[tuple[str, str, int]], table_paths: list[str], epoch_paths: dict[str, str],
                  experiments: dict[str, dict]) -> pd.DataFrame:
    """`runs`: (experiment, tying, seed) of each analysis table, in the same order as `table_paths`;
    `epoch_paths`: each experiment's epochs table (flannel.analysis.epochs); `experiments`: each experiment's resolved
    training sections."""
    differing = differing_values(experiments)
    epochs = {name: read_table(path, ("seed", "matrix", "freeze_onset")) for name, path in epoch_paths.items()}
    rows = [summary_row(experiment, tying, seed, path, epochs[experiment], differing[experiment])
            for (experiment, tying, seed), path in zip(runs, table_paths, strict=True)]
    return pd.DataFrame(rows)


def swept_keys(summary: pd.DataFrame) -> list[str]:
    """The config columns of a summary table (the values the experiments sweep)."""
    return [column for column in summary.columns if "." in column]


def numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))
               for v in values)
