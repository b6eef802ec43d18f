"""Kinetics and flow of the dead rows (box_3 notebooks 1.30e-1.32a): how much they move, how coherently, and
how the dead centroid drifts, per step and matrix, read one record at a time.

With dW_i the change of dead row i since the previous record (weight units), dW'_i the same in bf16 ulps of
its previous value (flannel.analysis.lattice.hops), dC the dead centroid's change and N the dead rows:
  sum_l1, sum_l2       sum over rows of |dW_i|_1 and |dW_i|_2
  kinetic              1/2 sum |dW_i|_2^2
  participation        (sum |dW_i|_2)^2 / (N sum |dW_i|_2^2): 1 when every row moves as far, 1/N when one does
  autocorrelation      median over rows of cos(dW'_i(t-1), dW'_i(t)) (rows still at either step left out)
  bulk                 median over rows of cos(dW_i, dC): 1 for a cloud moving in bulk
  shear                mean |dW_i - dC| / |dC|: 0 for a cloud moving in bulk
  supernova_k          fraction of rows with |dW'_i|_2 > 2^k, k = 0..16
  hops_pNN             the 50/75/90/95/99th percentiles of |dW'_i|_2
Per run and matrix: `autocorrelation_below` (the first step at which the autocorrelation is below 0.1),
`path_efficiency` (|c_T - c_0| / sum_t |dC_t|) and `bias_to_noise` (the drift bias = (c_T - c_0) / T against
the residual steps dC_t - bias: |bias| T / (median_t |dC_t - bias| sqrt(T)), the drift over the run against a
random walk of the median residual step; our rule, stated because the series' notebook scaled by sqrt(T D)
with a per-coordinate step).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..recording import Recording
from .lattice import hops
from .rows import dead_rows, sides

SUPERNOVA_POWERS = range(17)
PERCENTILES = (50, 75, 90, 95, 99)
AUTOCORRELATION_FLOOR = 0.1
COLUMNS = ["sum_l1", "sum_l2", "kinetic", "participation", "autocorrelation", "bulk", "shear",
           *(f"supernova_{k}" for k in SUPERNOVA_POWERS), *(f"hops_p{p}" for p in PERCENTILES)]


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of two [rows, D] float64 tensors; NaN where either row is zero."""
    norms = torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1)
    return torch.where(norms > 0, (a * b).sum(dim=1) / norms, torch.full_like(norms, math.nan))


def _nanmedian(x: torch.Tensor) -> float:
    x = x[~x.isnan()]
    return x.quantile(0.5).item() if x.numel() else math.nan


def step_columns(dw: torch.Tensor, lattice: torch.Tensor, lattice_before: torch.Tensor | None) -> dict[str, float]:
    """One step's columns (module docstring) from the dead rows' changes: weight units and ulps (float64)."""
    sizes = torch.linalg.vector_norm(dw, dim=1)
    n, squares = sizes.numel(), (sizes**2).sum().item()
    dc = dw.mean(dim=0)
    dc_norm = torch.linalg.vector_norm(dc).item()
    in_ulps = torch.linalg.vector_norm(lattice, dim=1)
    columns = {"sum_l1": dw.abs().sum().item(), "sum_l2": sizes.sum().item(), "kinetic": squares / 2,
               "participation": sizes.sum().item() ** 2 / (n * squares) if squares > 0 else math.nan,
               "autocorrelation": _nanmedian(cosines(lattice_before, lattice)) if lattice_before is not None else math.nan,
               "bulk": _nanmedian(cosines(dw, dc.expand_as(dw))),
               "shear": torch.linalg.vector_norm(dw - dc, dim=1).mean().item() / dc_norm if dc_norm > 0 else math.nan}
    columns.update({f"supernova_{k}": (in_ulps > 2.0**k).double().mean().item() for k in SUPERNOVA_POWERS})
    columns.update({f"hops_p{p}": in_ulps.quantile(p / 100).item() for p in PERCENTILES})
    return columns


def kinetics_tables(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The step table of one recording (`step`, then per matrix M the columns M_dead_<name>; NaN at record 0
    and without dead rows) and its run table (one row per matrix: `matrix`, `autocorrelation_below`,
    `path_efficiency`, `bias_to_noise`). The dead centroid's path (T x D floats) is the only history kept."""
    recording = Recording(path)
    dead, steps = dead_rows(recording), recording.steps()
    table, runs = pd.DataFrame({"step": steps}), []
    for side in sides(recording):
        key = recording.matrix("embeddings", side)
        before, lattice_before, found = recording.record(key, 0)[dead], None, [{}]
        centroids = [before.double().mean(dim=0)]
        for index in range(1, len(steps)):
            x = recording.record(key, index)[dead]
            lattice = hops(x, before)
            found.append(step_columns(x.double() - before.double(), lattice, lattice_before) if dead.any() else {})
            centroids.append(x.double().mean(dim=0))
            before, lattice_before = x, lattice
        columns = pd.DataFrame(found, columns=COLUMNS).add_prefix(f"{side}_dead_")
        table = pd.concat([table, columns], axis=1)
        path_of = torch.stack(centroids).numpy() if dead.any() else np.zeros((0, 0))
        runs.append({"matrix": side, "autocorrelation_below": first_below(steps, columns[f"{side}_dead_autocorrelation"]),
                     **drift(path_of)})
    return table, pd.DataFrame(runs)


def drift(centroids: np.ndarray) -> dict[str, float]:
    """Path efficiency and bias-to-noise of a centroid path [T + 1, D] (module docstring)."""
    if centroids.size == 0 or len(centroids) < 2:
        return {"path_efficiency": math.nan, "bias_to_noise": math.nan}
    steps = np.diff(centroids, axis=0)
    net = centroids[-1] - centroids[0]
    path = np.linalg.norm(steps, axis=1).sum()
    bias = net / len(steps)
    residual = np.median(np.linalg.norm(steps - bias, axis=1))
    if path == 0:  # a centroid that never moved has neither
        return {"path_efficiency": math.nan, "bias_to_noise": math.nan}
    return {"path_efficiency": float(np.linalg.norm(net) / path),
            "bias_to_noise": float(np.linalg.norm(bias) * len(steps) / (residual * math.sqrt(len(steps))))
            if residual > 0 else math.inf}


def first_below(steps, values, floor: float = AUTOCORRELATION_FLOOR) -> float:
    """The first step whose value is below `floor` (NaN values skipped; NaN if never)."""
    values = np.asarray(values, dtype=float)
    below = np.flatnonzero(values < floor)
    return float(np.asarray(steps)[below[0]]) if below.size else math.nan
