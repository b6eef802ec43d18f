"""One row per recorded step: a run's analysis table of its dead and live rows, and a seed's tied/untied
decomposition table, computed from the recordings one record at a time.

Memory stays bounded by a few [rows, D] matrices per side (record 0, the previous record and the current
one), whatever the number of records. The metrics are small functions on tensors (flannel.analysis.metrics).
Rows are grouped by the recording's own `dead_indices`, so a table always matches the masks its run trained
with.

Table columns: `step`, `loss` (NaN at record 0), `lr` (the LR the step ran at; NaN at record 0), then per
matrix M (tied: W; untied: E and W) and group G (dead, live), `M_G_<metric>`:
  centroid_norm                               norm of the group's centroid (L2)
  radius_centroid_mean, radius_centroid_max   mean and max distance of the rows from the group's centroid
  radius_origin_mean                          mean distance of the rows from the origin (mean row norm)
  sd_per_dim                                  per-dimension standard deviation, sqrt(mean_d var_d)
  {origin,centroid}_{outward,inward,no_radial}  fraction of rows whose step since the previous record moved
                                              them outward, inward, or not at all radially, about the origin or
                                              about the group's previous centroid
                                              (flannel.analysis.metrics.radial_counts)
  {origin,centroid}_radial_mean               mean over the rows that moved of (dw . w_hat) / |dw|
  displacement_from_init, displacement_step   mean over rows of ||row - row at t=0|| and of ||row - previous||
  fraction_moved                              fraction of rows with any element changed since the previous record
  grad_norm                                   mean over rows of the row's gradient L2 norm (before clipping)
  adam_step                                   mean over the group's *elements* of lr |m_hat| / (sqrt(v_hat) + eps)
per matrix `M_auc_norm`, `M_auc_cosine` (the under-trained-token indicators' ROC AUC), and untied
`E_minus_W_G_fro` (||E - W||_F over the group's rows). Step-to-step columns are NaN at record 0, and every
column of a group with no rows (no dead token) is NaN.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import AnalysisError
from ..recording import Recording
from .metrics import (adam_step, cloud, fraction_moved, indicator_aucs, mean_or_nan, mean_row_norm,
                      principal_axes, radial_counts_of, row_norms, rows64)
from .rows import dead_rows, group_masks, require_matching, scheduled_lr, sides



# ---- one record of one run --------------------------------------------------------------------------------


def group_metrics(prefix: str, x: torch.Tensor, first: torch.Tensor, previous: torch.Tensor | None,
                  adam: torch.Tensor | None, grad: torch.Tensor | None) -> dict[str, float]:
    """The table's columns for one group of rows of one matrix (each tensor float64, the group's rows only);
    step-to-step quantities are NaN at record 0. The step since the previous record and its row norms are
    computed once, for the displacement and both radial counts."""
    values = cloud(x)
    values["displacement_from_init"] = mean_row_norm(x - first)
    step = None if previous is None else x - previous
    step_norms = None if step is None else row_norms(step)
    values["displacement_step"] = math.nan if step is None else step_norms.mean().item() if x.shape[0] else math.nan
    values["fraction_moved"] = math.nan if previous is None else fraction_moved(x, previous)
    values["grad_norm"] = math.nan if grad is None else mean_row_norm(grad)
    values["adam_step"] = math.nan if adam is None else mean_or_nan(adam)
    for centre in ("origin", "centroid"):
        counts = (dict.fromkeys(("outward", "inward", "no_radial", "radial_mean"), math.nan) if step is None else
                  radial_counts_of(step, step_norms, previous if centre == "origin" else previous - previous.mean(dim=0)))
        values.update({f"{centre}_{name}": value for name, value in counts.items()})
    return {f"{prefix}_{name}": value for name, value in values.items()}


def _read_side(recording: Recording, side: str, index: int, step: int, lr: float):
    """The embeddings of one side at record `index` (as recorded and in float64), with its grads (float64) and
    Adam steps (None at record 0, where no step was taken, or when the quantity was not recorded)."""
    key = functools.partial(recording.matrix, side=side)
    x = recording.record(key("embeddings"), index)
    if step == 0:
        return x, rows64(x), None, None
    grad = rows64(recording.record(key("grads"), index)) if key("grads") in recording.keys else None
    adam = None
    if {key("momentum"), key("variance")} <= recording.keys:
        training = recording.config["training"]
        adam = adam_step(recording.record(key("momentum"), index), recording.record(key("variance"), index), lr=lr,
                         step=step, beta1=training["adam_beta1"], beta2=training["adam_beta2"], eps=training["adam_epsilon"])
    return x, rows64(x), grad, adam


def _masked(tensor: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor | None:
    return None if tensor is None else tensor[mask]


def record_row(recording: Recording, index: int, step: int, first: dict, previous: dict | None,
               dead: torch.Tensor) -> tuple[dict, dict]:
    """One table row and, per side and group, the record's rows in float64 (the next call's `previous`; `first`
    is record 0's, in the same form). Each record is converted to float64 once and split into its groups
    once; the float64 values are exact, so every metric sees what it would from the recorded dtype."""
    lr = scheduled_lr(step, recording.config["training"]) if step > 0 else math.nan
    row, current, whole = {"step": step, "lr": lr}, {}, {}
    for side in sides(recording):
        x, whole[side], grad, adam = _read_side(recording, side, index, step, lr)
        current[side] = {group: whole[side][mask] for group, mask in group_masks(dead)}
        for group, mask in group_masks(dead):
            before = None if previous is None else previous[side][group]
            row.update(group_metrics(f"{side}_{group}", current[side][group], first[side][group], before,
                                     _masked(adam, mask), _masked(grad, mask)))
        row.update({f"{side}_{name}": value for name, value in indicator_aucs(whole[side], dead).items()})
    if not recording.tied:
        difference = whole["E"] - whole["W"]
        for group, mask in group_masks(dead):
            # NaN for an empty group, as every other column: a norm over no rows is no measurement.
            row[f"E_minus_W_{group}_fro"] = torch.linalg.matrix_norm(difference[mask]).item() if mask.any() else math.nan
    return row, current


def analyse_run(path: str | Path, expected_config: dict | None = None) -> pd.DataFrame:
    """One row per recorded step: loss, LR and, per matrix and group, the cloud, displacement, freeze,
    gradient and Adam-step columns; per matrix the indicator AUCs; untied, the dead and live ||E - W||_F."""
    recording = Recording(path).expect(config=expected_config)
    if "embeddings" not in recording.keys and "embeddings_E" not in recording.keys:
        raise AnalysisError(f"{recording.path}: no embeddings recorded; the analysis needs them")
    dead = dead_rows(recording)
    losses = recording.tensor("losses").tolist()
    first = {side: {group: rows64(recording.record(recording.matrix("embeddings", side), 0))[mask]
                    for group, mask in group_masks(dead)} for side in sides(recording)}
    rows, previous = [], None
    for index, step in enumerate(recording.steps()):
        row, previous = record_row(recording, index, step, first, previous, dead)
        rows.append({"step": row.pop("step"), "loss": losses[index], **row})
    return pd.DataFrame(rows)


# ---- across runs --------------------------------------------------------------------------------------------


def decomposition(tied_path: str | Path, untied_path: str | Path, expected_config: dict | None = None) -> pd.DataFrame:
    """The linear decomposition test W1 = W2 + E2 on displacements from t=0: per step and row group,
    ||dW_tied - (dW_untied + dE_untied)||_F / ||dW_tied||_F, and the same residual for dW_untied alone and
    dE_untied alone (what the sum must beat to mean anything). NaN at step 0, where dW_tied = 0."""
    tied = Recording(tied_path).expect(tied=True, config=expected_config)
    untied = Recording(untied_path).expect(tied=False, config=expected_config)
    require_matching(tied, untied)
    dead = dead_rows(tied)
    first = {"tied": tied.record("embeddings", 0), "E": untied.record("embeddings_E", 0), "W": untied.record("embeddings_W", 0)}
    rows = []
    for index, step in enumerate(tied.steps()):
        delta = {"tied": tied.record("embeddings", index), "E": untied.record("embeddings_E", index),
                 "W": untied.record("embeddings_W", index)}
        delta = {name: x.double() - first[name].double() for name, x in delta.items()}
        row = {"step": step}
        for group, mask in group_masks(dead) + (("all", torch.ones_like(dead)),):
            d = {name: x[mask] for name, x in delta.items()}
            scale = torch.linalg.matrix_norm(d["tied"]).item() if mask.any() else math.nan
            for label, model in (("sum", d["W"] + d["E"]), ("W", d["W"]), ("E", d["E"])):
                residual = torch.linalg.matrix_norm(d["tied"] - model).item() if mask.any() else math.nan
                row[f"{group}_residual_{label}"] = residual / scale if scale > 0 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ---- per-row views for the figures ----------------------------------------------------------------------------


def last_displacements(path: str | Path, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Each recorded row's L2 displacement from t=0 at the last record, and the dead mask."""
    recording = Recording(path)
    key = recording.matrix("embeddings", side)
    moved = row_norms(recording.record(key, recording.n_records - 1).double() - recording.record(key, 0).double())
    return moved.numpy(), dead_rows(recording).numpy()


def pca_projections(path: str | Path, side: str, steps) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """2-D coordinates of the rows at each of `steps` that was recorded (the last step always included), in one
    basis: the top two principal directions of the last record, so that motion between panels is real
    motion. Returns ({step: [rows, 2]}, dead mask, fraction of the last record's variance each axis holds)."""
    recording = Recording(path)
    key, recorded = recording.matrix("embeddings", side), recording.steps()
    wanted = sorted({s for s in steps if s in recorded} | {recorded[-1]})
    _, mean, values, vectors = principal_axes(recording.record(key, len(recorded) - 1))
    basis, explained = vectors[:, [-1, -2]], (values[[-1, -2]] / values.sum()).numpy()
    coordinates = {s: ((rows64(recording.record(key, recorded.index(s))) - mean) @ basis).numpy() for s in wanted}
    return coordinates, dead_rows(recording).numpy(), explained
