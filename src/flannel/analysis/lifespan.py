"""The series' open questions (lore/lifecycle-phases.md) measured per dead row: what sets a row's lifespan,
whether which rows freeze early is structured, and why the dead cloud contracts as it moves.

A dead row's lifespan is its freeze step (`frozen_from` of the lattice rows table, flannel.analysis.lattice:
the step after its last move); a row still moving at the last record froze after the run and ranks as
last step + 1 (every such row tied at the top); a row that never moved has no lifespan and is left out.

Row table (one row per dead row of each recorded matrix): `matrix`, `token`, `lifespan`, `still_moving` (1:
moving at the last record), and what the row started with or went through:
  initial_norm       |w_i(0)|
  angle_centroid     angle (degrees) between w_i(0) and the dead centroid c(0)
  lead               cos(w_i(0) - c(0), c(T) - c(0)): +1 at the cloud's leading edge along its drift, -1 trailing
  grad_norm_1        |g_i| at step 1 (NaN without recorded grads)
  angle_h_mean       angle (degrees) between w_i(0) and h_mean of step 1, the first forward's (NaN without h_mean)
  grad_share_h_mean  mean over the row's steps up to its freeze (every step if still moving) of
                     cos^2(g_i(t), h_mean(t)): the share of its gradient's squared norm along h_mean (NaN without
                     h_mean or grads)
  travel             |w_i(T) - w_i(0)|
  grad_pull          mean over steps of cos(g_i - mean_j g_j, w_i - c), W and c before the step: positive where
                     the gradient's own part (what sets it apart from the other dead rows') points away from the
                     centroid, so that descent pulls the row in (NaN without grads)
  step_pull          mean over steps of cos(dC - dW_i, w_i - c): positive where the row's own step took it
                     towards the centroid (what the optimizer did with that gradient, Adam and the bf16 lattice
                     included)

Run table (one row per matrix): `dead_rows`, `with_lifespan` (rows that moved), `still_moving`, `h_mean` (1 if
recorded), `rho_<quantity>` (Spearman rank correlation of lifespan with each quantity above but travel; NaN
with fewer than three rows or a constant column), `rho_null` (1.96 / sqrt(n - 1): a |rho| below it is what
independent ranks give one time in twenty), `rho_travel_lead` (Spearman of travel with lead: negative when the
trailing rows travel farther, so the cloud contracts by catching up), `radius_ratio` (mean |w_i - c| at the last
record over t = 0), `spread_along_ratio` and `spread_across_ratio` (the same for the rows' offsets along the
drift direction and across it, root mean square), `drift_h_mean` (cos(c(T) - c(0), the mean h_mean of the
run): -1 when the cloud moves straight away from h_mean; NaN without h_mean), `grad_pull` and `step_pull` (their
medians over the dead rows: which of the gradient and the step contracts the cloud).
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
from .kinetics import cosines
from .rows import dead_rows, sides

QUANTITIES = ("initial_norm", "angle_centroid", "lead", "grad_norm_1", "angle_h_mean", "grad_share_h_mean")
NEEDS_H_MEAN = ("angle_h_mean", "grad_share_h_mean")
PULLS = ("grad_pull", "step_pull")
ROW_COLUMNS = ["matrix", "token", "lifespan", "still_moving", *QUANTITIES, "travel", *PULLS]
RUN_COLUMNS = ["matrix", "dead_rows", "with_lifespan", "still_moving", "h_mean", *(f"rho_{q}" for q in QUANTITIES),
               "rho_null", "rho_travel_lead", "radius_ratio", "spread_along_ratio", "spread_across_ratio",
               "drift_h_mean", *PULLS]
LATTICE_COLUMNS = ("matrix", "token", "dead", "frozen_from", "last_move")


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties) over the pairs where both are numbers; NaN with
    fewer than three pairs or a constant side."""
    pairs = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(pairs) < 3:
        return math.nan
    ranks = pairs.rank(method="average").to_numpy()
    centred = ranks - ranks.mean(axis=0)
    scale = math.sqrt((centred[:, 0] ** 2).sum() * (centred[:, 1] ** 2).sum())
    return float((centred[:, 0] * centred[:, 1]).sum() / scale) if scale > 0 else math.nan


def degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise angle in degrees between two [rows, D] float64 tensors (NaN where either row is zero)."""
    return torch.rad2deg(torch.arccos(cosines(a, b).clamp(-1, 1)))


def lifespans(lattice_rows: pd.DataFrame, side: str, tokens: list[int], last_step: int) -> pd.DataFrame:
    """Per recorded token of one matrix (in `tokens` order): `lifespan` and `still_moving` (module docstring)."""
    mine = lattice_rows[lattice_rows["matrix"] == side].set_index("token").reindex(tokens)
    moved = (mine["last_move"].fillna(0) > 0).to_numpy()  # the lattice table puts a row that never moved at step 0
    still = moved & mine["frozen_from"].isna().to_numpy()
    lifespan = np.where(still, last_step + 1, mine["frozen_from"].to_numpy(dtype=float))
    return pd.DataFrame({"lifespan": np.where(moved, lifespan, math.nan), "still_moving": still.astype(int)})


class RowMean:
    """Per row, the mean of a per-step value over the steps it counts (NaN values, such as the cosine of a
    zero vector, left out; NaN for a row with none)."""

    def __init__(self, n_rows: int):
        self.total = torch.zeros(n_rows, dtype=torch.float64)
        self.count = torch.zeros_like(self.total)

    def add(self, values: torch.Tensor, counted: torch.Tensor | bool = True) -> None:
        kept = ~values.isnan() & counted
        self.total[kept] += values[kept]
        self.count[kept] += 1

    def mean(self) -> torch.Tensor:
        return torch.where(self.count > 0, self.total / self.count, torch.full_like(self.total, math.nan))


def _through_the_run(recording: Recording, side: str, dead: torch.Tensor, lifespan: torch.Tensor) -> dict:
    """One pass over the records (module docstring): the pulls toward the centroid and the gradient's share
    along h_mean, each a mean over steps per dead row (NaN where its inputs were not recorded)."""
    key, grads = recording.matrix("embeddings", side), recording.matrix("grads", side)
    has_grads, has_h = grads in recording.keys, "h_mean" in recording.keys
    means = {name: RowMean(int(dead.sum())) for name in ("grad_pull", "step_pull", "grad_share_h_mean")}
    steps, before = recording.steps(), recording.record(key, 0)[dead].double()
    for index in range(1, len(steps)):
        x = recording.record(key, index)[dead].double()
        offset, dw = before - before.mean(dim=0), x - before
        means["step_pull"].add(cosines(dw.mean(dim=0) - dw, offset))
        if has_grads:
            g = recording.record(grads, index)[dead].double()  # taken at `before`
            means["grad_pull"].add(cosines(g - g.mean(dim=0), offset))
            if has_h:
                h = recording.record("h_mean", index).double().expand_as(g)
                means["grad_share_h_mean"].add(cosines(g, h) ** 2, steps[index] <= lifespan)
        before = x
    return {name: mean.mean() for name, mean in means.items()}


def _matrix_rows(recording: Recording, side: str, dead: torch.Tensor, found: pd.DataFrame) -> pd.DataFrame:
    """The row table's quantities for one matrix's dead rows; `found` holds their lifespans."""
    steps, key = recording.steps(), recording.matrix("embeddings", side)
    first = recording.record(key, 0)[dead].double()
    last = recording.record(key, len(steps) - 1)[dead].double()
    c0, drift = first.mean(dim=0), last.mean(dim=0) - first.mean(dim=0)
    nan = torch.full((first.shape[0],), math.nan, dtype=torch.float64)
    columns = {"initial_norm": torch.linalg.vector_norm(first, dim=1), "angle_centroid": degrees(first, c0.expand_as(first)),
               "lead": cosines(first - c0, drift.expand_as(first)), "grad_norm_1": nan, "angle_h_mean": nan,
               "travel": torch.linalg.vector_norm(last - first, dim=1)}
    grads = recording.matrix("grads", side)
    if grads in recording.keys and len(steps) > 1:
        columns["grad_norm_1"] = torch.linalg.vector_norm(recording.record(grads, 1)[dead].double(), dim=1)
    if "h_mean" in recording.keys and len(steps) > 1:
        columns["angle_h_mean"] = degrees(first, recording.record("h_mean", 1).double().expand_as(first))
    lifespan = torch.tensor(found["lifespan"].fillna(-1).to_numpy(), dtype=torch.float64)
    columns.update(_through_the_run(recording, side, dead, lifespan))
    return found.assign(**{name: value.numpy() for name, value in columns.items()})


def lifespan_rows(path: str | Path, lattice_rows_path: str | Path) -> pd.DataFrame:
    """The row table of one recording (module docstring), from it and its lattice rows table."""
    recording = Recording(path)
    lattice_rows = read_table(lattice_rows_path, LATTICE_COLUMNS)
    dead, steps = dead_rows(recording), recording.steps()
    tokens = recording.tensor("recorded_rows")[dead].tolist()
    found = []
    for side in sides(recording):
        listed = set(lattice_rows.loc[lattice_rows["matrix"] == side, "token"])
        if not set(tokens) <= listed:
            raise AnalysisError(f"{lattice_rows_path}: no row of {side} for dead token(s) "
                                f"{sorted(set(tokens) - listed)[:5]} of {recording.path}; rerun its lattice rule")
        spans = lifespans(lattice_rows, side, tokens, steps[-1])
        found.append(_matrix_rows(recording, side, dead, spans.assign(matrix=side, token=tokens)))
    return pd.concat(found, ignore_index=True)[ROW_COLUMNS] if found else pd.DataFrame(columns=ROW_COLUMNS)


def spreads(first: torch.Tensor, last: torch.Tensor) -> dict[str, float]:
    """The dead cloud's contraction from t = 0 to the last record: the mean radius from the centroid, and the
    root-mean-square offset along the centroid's drift and across it, each last over first (NaN: no drift)."""
    offsets = [x - x.mean(dim=0) for x in (first, last)]
    radius = [torch.linalg.vector_norm(o, dim=1).mean().item() for o in offsets]
    drift = last.mean(dim=0) - first.mean(dim=0)
    found = {"radius_ratio": radius[1] / radius[0] if radius[0] > 0 else math.nan,
             "spread_along_ratio": math.nan, "spread_across_ratio": math.nan}
    if torch.linalg.vector_norm(drift) == 0:
        return found
    unit = drift / torch.linalg.vector_norm(drift)
    along = [(o @ unit) for o in offsets]
    across = [torch.linalg.vector_norm(o - a[:, None] * unit, dim=1) for o, a in zip(offsets, along)]
    found["spread_along_ratio"] = _rms_ratio(along)
    found["spread_across_ratio"] = _rms_ratio(across)
    return found


def _rms_ratio(pair: list[torch.Tensor]) -> float:
    before, after = (x.pow(2).mean().sqrt().item() for x in pair)
    return after / before if before > 0 else math.nan


def run_table(path: str | Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The run table of one recording (module docstring) from it and its row table."""
    recording = Recording(path)
    dead, steps = dead_rows(recording), recording.steps()
    h_mean = "h_mean" in recording.keys
    found = []
    for side in sides(recording):
        mine = rows[rows["matrix"] == side]
        key = recording.matrix("embeddings", side)
        first, last = (recording.record(key, i)[dead].double() for i in (0, len(steps) - 1))
        n = int(mine["lifespan"].notna().sum())
        row = {"matrix": side, "dead_rows": len(mine), "with_lifespan": n, "still_moving": int(mine["still_moving"].sum()),
               "h_mean": int(h_mean), **{f"rho_{q}": spearman(mine["lifespan"], mine[q]) for q in QUANTITIES},
               "rho_null": 1.96 / math.sqrt(n - 1) if n > 1 else math.nan,
               "rho_travel_lead": spearman(mine["travel"], mine["lead"]),
               **(spreads(first, last) if len(mine) else {}), "drift_h_mean": math.nan,
               **{name: float(mine[name].median()) for name in PULLS}}
        if h_mean and len(mine) and len(steps) > 1:
            mean_h = recording.tensor("h_mean")[1:].double().mean(dim=0, keepdim=True)
            row["drift_h_mean"] = cosines((last.mean(dim=0) - first.mean(dim=0))[None], mean_h).item()
        found.append(row)
    return pd.DataFrame(found, columns=RUN_COLUMNS)
