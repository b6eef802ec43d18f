"""Epochs of the dead cloud: the steps at which the dead rows' cloud first contracts, moves fastest, freezes and
last moves, per run and recorded matrix (tied: W; untied: E and W), read from a recording one record at a time.

  inhale            the first step whose dead-row mean radius is below the previous record's; reported for the
                    radius from the centroid and for the radius from the origin (they can disagree: a cloud far
                    from the origin that tightens about its centroid while drifting outward)
  peak speed        the step of the fastest motion of the dead centroid (|c(t) - c(t')| / (t - t')) and of
                    each mean radius (|r(t) - r(t')| / (t - t')), speeds smoothed by a centred moving average
                    over `speed_window` records, so a single noisy step does not decide it
  freeze onset      the first step from which at least `freeze_fraction` of the dead rows never move again
                    (each row's `frozen_from` in the lattice rows table, flannel.analysis.lattice)
  last motion       the last step at which any dead row moved (the rows table's `last_move`)

A step that does not exist (no contraction, no motion, no dead rows, too few rows ever freeze) is NaN.

Series table (one per run, one row per record): `step`, then per matrix M: `M_dead_radius_centroid_mean`,
`M_dead_radius_origin_mean`, `M_dead_{centroid,radius_centroid,radius_origin}_speed` (raw; NaN at record 0),
the same with `_smoothed`, and `M_dead_still_moving` (fraction of dead rows not yet frozen at the step).
Epoch table (across runs): one row per run and matrix; the summary: per matrix and epoch the median and range
(min-max) over the runs where it exists.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import AnalysisError
from ..outputs import read_table
from ..recording import Recording
from .metrics import cloud, rows64
from .rows import dead_rows, sides

RADII = ("radius_centroid", "radius_origin")
MOVERS = ("centroid",) + RADII  # what a speed is measured of
EPOCHS = {  # epoch table column -> what the report calls it
    "inhale_radius_centroid": "inhale: first contraction of the radius from the centroid",
    "inhale_radius_origin": "inhale: first contraction of the radius from the origin",
    "peak_speed_centroid": "peak speed of the dead centroid",
    "peak_speed_radius_centroid": "peak speed of the radius from the centroid",
    "peak_speed_radius_origin": "peak speed of the radius from the origin",
    "freeze_onset": "freeze onset",
    "last_motion": "last motion of any dead row",
}
MATRICES = (("tied W", "tied", "W"), ("untied W", "untied", "W"), ("untied E", "untied", "E"))
ROW_COLUMNS = ("matrix", "token", "dead", "frozen_from", "last_move")


# ---- pure functions on one series ----------------------------------------------------------------------------


def first_decrease(steps, values) -> float:
    """The first step whose value is below the previous record's (NaN if it never decreases)."""
    values = np.asarray(values, dtype=float)
    down = np.flatnonzero(values[1:] < values[:-1])
    return float(steps[down[0] + 1]) if down.size else math.nan


def speed(steps, changes) -> np.ndarray:
    """Per record, the size of the change since the previous record per optimizer step (NaN at record 0):
    records may be `record_every` steps apart."""
    gaps = np.diff(np.asarray(steps, dtype=float))
    return np.concatenate([[math.nan], np.abs(np.asarray(changes, dtype=float)[1:]) / gaps])


def smoothed(values, window: int) -> np.ndarray:
    """Centred moving average over `window` records, NaNs skipped (a window of 1 leaves the values as they are);
    a record with no value of its own (record 0, where nothing has moved yet) stays NaN rather than borrow one."""
    values = np.asarray(values, dtype=float)
    average = pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()
    return np.where(np.isnan(values), math.nan, average)


def peak_step(steps, speeds) -> float:
    """The step of the highest speed, the first of equals; NaN when nothing moved."""
    speeds = np.asarray(speeds, dtype=float)
    if not np.isfinite(speeds).any() or np.nanmax(speeds) <= 0:
        return math.nan
    return float(steps[int(np.nanargmax(speeds))])


def still_moving(steps, frozen_from) -> np.ndarray:
    """Per step, the fraction of rows not yet frozen (a row that never freezes, NaN, is always moving)."""
    frozen = np.nan_to_num(np.asarray(frozen_from, dtype=float), nan=math.inf)
    if frozen.size == 0:
        return np.full(len(steps), math.nan)
    return np.array([(frozen > step).mean() for step in steps])


def freeze_onset(steps, frozen_from, fraction: float) -> float:
    """The first step at which at least `fraction` of the rows are frozen for good (NaN if none)."""
    frozen = 1.0 - still_moving(steps, frozen_from)
    reached = np.flatnonzero(frozen >= fraction - 1e-12)  # a fraction such as 0.9 of 10 rows, met exactly
    return float(steps[reached[0]]) if reached.size else math.nan


def last_motion(first_step: int, last_move) -> float:
    """The last step any row moved; NaN when none moved after the first record (its `last_move` stays there)."""
    last = np.asarray(last_move, dtype=float)
    return float(last.max()) if last.size and last.max() > first_step else math.nan


# ---- one run -------------------------------------------------------------------------------------------------


def dead_cloud_series(path: str | Path, expected_config: dict | None = None) -> pd.DataFrame:
    """Per record and matrix, the dead rows' two mean radii and how far their centroid moved since the previous
    record (float64), reading one record at a time."""
    recording = Recording(path).expect(config=expected_config)
    dead = dead_rows(recording)
    rows, before = [], {}
    for index, step in enumerate(recording.steps()):
        row = {"step": step}
        for side in sides(recording):
            x = rows64(recording.record(recording.matrix("embeddings", side), index)[dead])
            values = cloud(x)
            centroid = x.mean(dim=0) if x.shape[0] else None
            moved = (torch.linalg.vector_norm(centroid - before[side]).item()
                     if centroid is not None and before.get(side) is not None else math.nan)
            row.update({f"{side}_dead_{radius}_mean": values[f"{radius}_mean"] for radius in RADII})
            row[f"{side}_dead_centroid_step"] = moved
            before[side] = centroid
        rows.append(row)
    return pd.DataFrame(rows)


def dead_rows_of(rows: pd.DataFrame, side: str) -> pd.DataFrame:
    return rows[(rows["matrix"] == side) & rows["dead"].astype(bool)]


def series_table(cloud_table: pd.DataFrame, rows: pd.DataFrame, window: int) -> pd.DataFrame:
    """The series table (module docstring) from the dead-cloud series and the run's lattice rows table."""
    steps = cloud_table["step"].to_numpy()
    table = cloud_table[["step"]].copy()
    for side in [c.split("_", 1)[0] for c in cloud_table.columns if c.endswith("_dead_centroid_step")]:
        changes = {"centroid": cloud_table[f"{side}_dead_centroid_step"].to_numpy()}
        for radius in RADII:
            values = cloud_table[f"{side}_dead_{radius}_mean"].to_numpy()
            table[f"{side}_dead_{radius}_mean"] = values
            changes[radius] = np.concatenate([[math.nan], np.diff(values)])
        for mover, change in changes.items():
            table[f"{side}_dead_{mover}_speed"] = speed(steps, change)
            table[f"{side}_dead_{mover}_speed_smoothed"] = smoothed(table[f"{side}_dead_{mover}_speed"], window)
        table[f"{side}_dead_still_moving"] = still_moving(steps, dead_rows_of(rows, side)["frozen_from"])
    return table


def epochs(series: pd.DataFrame, rows: pd.DataFrame, side: str, fraction: float) -> dict[str, float]:
    """The epoch steps of one matrix of one run (module docstring)."""
    steps = series["step"].to_numpy()
    dead = dead_rows_of(rows, side)
    found = {f"inhale_{radius}": first_decrease(steps, series[f"{side}_dead_{radius}_mean"]) for radius in RADII}
    found.update({f"peak_speed_{mover}": peak_step(steps, series[f"{side}_dead_{mover}_speed_smoothed"])
                  for mover in MOVERS})
    found["freeze_onset"] = freeze_onset(steps, dead["frozen_from"], fraction)
    found["last_motion"] = last_motion(int(steps[0]), dead["last_move"])
    return found


# ---- across runs ---------------------------------------------------------------------------------------------


def epoch_table(runs, series_paths, row_paths, fraction: float, window: int) -> pd.DataFrame:
    """One row per run and matrix: `run`, `tying`, `seed`, `matrix` (tied W, untied W, untied E), `n_dead`, the
    epochs, and the settings they were found with (`speed_window`, `freeze_fraction`)."""
    found = []
    for (tying, seed), series_path, rows_path in zip(runs, series_paths, row_paths, strict=True):
        series, rows = read_table(series_path, ("step",)), read_table(rows_path, ROW_COLUMNS)
        for label, matrix_tying, side in MATRICES:
            if matrix_tying != tying:
                continue
            if f"{side}_dead_radius_origin_mean" not in series.columns:
                raise AnalysisError(f"{series_path}: no {side} columns in this {tying} series table; rerun rule epochs")
            found.append({"run": f"{tying} seed {seed}", "tying": tying, "seed": seed, "matrix": label,
                          "n_dead": len(dead_rows_of(rows, side)), **epochs(series, rows, side, fraction),
                          "speed_window": window, "freeze_fraction": fraction})
    return pd.DataFrame(found, columns=["run", "tying", "seed", "matrix", "n_dead", *EPOCHS, "speed_window", "freeze_fraction"])


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per matrix and epoch: how many runs have it, and its median, min and max over them (the tied W rows
    are the sweep)."""
    found = []
    for label, _, _ in MATRICES:
        runs = table[table["matrix"] == label]
        if runs.empty:
            continue
        for epoch in EPOCHS:
            values = runs[epoch].dropna().to_numpy(dtype=float)
            stats = (np.median(values), values.min(), values.max()) if values.size else (math.nan,) * 3
            found.append({"matrix": label, "epoch": epoch, "runs": f"{values.size}/{len(runs)}",
                          **dict(zip(("median", "min", "max"), stats))})
    return pd.DataFrame(found, columns=["matrix", "epoch", "runs", "median", "min", "max"])


def report_rows(table: pd.DataFrame, overview: pd.DataFrame) -> tuple[tuple[str, ...], list[tuple]]:
    """The report's table: per matrix and epoch, the median, the range and each run's step."""
    runs = list(dict.fromkeys(table["run"]))
    header = ("epoch", "matrix (runs with it)", "median step", "range (min–max)", *runs)
    rows = []
    for _, line in overview.iterrows():
        per_run = table[table["matrix"] == line["matrix"]].set_index("run")[line["epoch"]]
        span = "–" if math.isnan(line["min"]) else f"{line['min']:.0f}–{line['max']:.0f}"
        rows.append((EPOCHS[line["epoch"]], f"{line['matrix']} ({line['runs']})", _step(line["median"]), span,
                     *(_step(per_run.get(run, math.nan)) for run in runs)))
    return header, rows


def report_title(window: int, fraction: float) -> str:
    return (f"Epochs of the dead cloud: the step of each, per run and matrix, with the median and range over the runs "
            f"(tied W: the sweep). Speeds smoothed over {window} records; freeze onset: {fraction:.0%} of the dead rows "
            f"frozen for good.")


def _step(value) -> str:
    """A step as text: a median between two steps keeps its half; a missing one is a dash."""
    return "–" if math.isnan(value) else f"{value:g}"
