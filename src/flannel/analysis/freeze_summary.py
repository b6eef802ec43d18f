"""The freeze summary of an experiment: one row per run and matrix gathering the per-run tables of the series
after notebook 1.24, and per matrix the median and range of each over the runs (tied W: the sweep).

Columns: `run`, `tying`, `seed`, `matrix`; the hop predictor over the run (flannel.analysis.hop_condition),
for dead and live rows: {dead,live}_predicted, _observed, _both, _precision, _recall; the freeze causes' shares
over the frozen dead rows (flannel.analysis.freeze_causes.shares); the dead rows' global-freeze runs
(flannel.analysis.five_phases.run_summary); the kinetics scalars (flannel.analysis.kinetics); the h_mean
scalars (flannel.analysis.h_mean: its mean autocorrelation and angle to the dead centroid's step, each cloud's
liftoff, the live/dead separation, the largest swing).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..outputs import read_table
from .five_phases import RUN_COLUMNS, run_summary
from .freeze_causes import shares
from .h_mean import RUN_COLUMNS as H_MEAN_COLUMNS
from .hop_condition import precision_recall
from .rows import GROUPS

CAUSE_COLUMNS = ("matrix", "dead", "status", "as_recorded", "schedule", "variance", "signal", "cause")
KINETICS_COLUMNS = ("matrix", "autocorrelation_below", "path_efficiency", "bias_to_noise")


def summary_table(runs, inputs: dict[str, list[str]]) -> pd.DataFrame:
    """One row per run and matrix (module docstring); `inputs` names each run's tables, in `runs` order."""
    found = []
    for index, (tying, seed) in enumerate(runs):
        hops = read_table(inputs["hops"][index])
        causes = read_table(inputs["causes"][index], CAUSE_COLUMNS)
        still = read_table(inputs["phase_runs"][index], RUN_COLUMNS)
        kinetics = read_table(inputs["kinetics"][index], KINETICS_COLUMNS).set_index("matrix")
        h_mean = read_table(inputs["h_mean"][index], H_MEAN_COLUMNS).set_index("matrix")
        for side in ("W",) if tying == "tied" else ("E", "W"):
            row = {"run": f"{tying} seed {seed}", "tying": tying, "seed": seed, "matrix": side}
            for group in GROUPS:
                row.update({f"{group}_{k}": v for k, v in precision_recall(hops, f"{side}_{group}").items()})
            row.update(shares(causes, side))
            row.update(run_summary(still, side))
            row.update(kinetics.loc[side].to_dict())
            row.update(h_mean.loc[side].to_dict())
            found.append(row)
    return pd.DataFrame(found)


def across_runs(table: pd.DataFrame) -> pd.DataFrame:
    """Per matrix (tied W, untied W, untied E) and numeric column: the runs with a value, median, min and max."""
    found = []
    labelled = table.assign(label=table["tying"] + " " + table["matrix"])
    for label, runs in labelled.groupby("label", sort=True):
        for column in table.columns.drop(["run", "tying", "seed", "matrix"]):
            values = runs[column].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            stats = (np.median(values), values.min(), values.max()) if values.size else (math.nan,) * 3
            found.append({"matrix": label, "quantity": column, "runs": f"{values.size}/{len(runs)}",
                          **dict(zip(("median", "min", "max"), stats))})
    return pd.DataFrame(found, columns=["matrix", "quantity", "runs", "median", "min", "max"])
