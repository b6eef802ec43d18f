"""h_mean, the force on the dead rows (lore/h-mean-dynamics.md; box_4 exploration notebooks
h_mean_autocorrelation, crucible_3/h_mean_persistence and crucible_3/h_mean_swing_amplitude), per run, read one
record at a time.

h_mean[t] is the recorded final-LayerNorm output of step t's forward pass averaged over batch and positions
(flannel.training.model.HMeanHook; record 0 holds zeros: no forward pass has run). A dead row's gradient is,
summed over the positions, about -h_mean times its softmax weight, so the dead rows drift against h_mean. Per
record t, with c the centroid of a group's rows (dead, live) of a matrix M and dC[t] = c_dead[t] - c_dead[t-1]:
  h_mean_norm               |h_mean[t]|
  h_mean_autocorrelation    cos(h_mean[t-1], h_mean[t]) (from record 2: record 0 has no h_mean)
  h_mean_swing_max, _mean   the largest and the mean angle (radians) of h_mean[s] from the mean direction of the
                            window of `window` records s ending at t (from record `window`: every s >= 1)
  M_h_mean_cos_dC           cos(h_mean[t], dC[t]): the step's force against the dead centroid's step
  M_{group}_centroid        |c[t]| (distance of the centroid from the origin)
  M_{group}_radius          max_i |w_i - c[t]| (the group's bounding radius about its centroid)
  M_separation              |c_live[t] - c_dead[t]|
A group has "lifted off" at the first record where |c| > max_i |w_i - c|: the origin has left its bounding
sphere. Live rows are the recorded ones (every row, or the live sample of recording.rows: dead_and_sample).
Between records further apart than one step (recording.record_every > 1) the cosines are over the records.

The run table (one row per matrix): the mean autocorrelation, the mean of M_h_mean_cos_dC, each group's liftoff
step (NaN: never), the separation at the first and the last record, and the largest swing. The token table: at
the first and the last record with an h_mean, the TOP_TOKENS recorded rows of W that h_mean . w_i ranks highest.
A recording without h_mean gets NaN in every h_mean column and an empty token table.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..recording import Recording
from .kinetics import cosines
from .rows import GROUPS, dead_rows, group_masks, sides, token_table

TOP_TOKENS = 10
TOKEN_COLUMNS = ["step", "rank", "token_id", "token", "dead", "score", "cosine"]
RUN_COLUMNS = ("matrix", "h_mean_autocorrelation_mean", "h_mean_cos_dC_mean", "dead_liftoff", "live_liftoff",
               "separation_first", "separation_last", "h_mean_swing_max")
H_MEAN_COLUMNS = ("h_mean_norm", "h_mean_autocorrelation", "h_mean_swing_max", "h_mean_swing_mean")


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos of two float64 vectors; NaN where either is zero."""
    return cosines(a[None], b[None]).item()


def autocorrelation(h_mean: torch.Tensor) -> np.ndarray:
    """cos(h_mean[t-1], h_mean[t]) per record (NaN at records 0 and 1)."""
    found = np.full(len(h_mean), math.nan)
    if len(h_mean) > 2:
        found[2:] = cosines(h_mean[1:-1], h_mean[2:]).numpy()
    return found


def swing(h_mean: torch.Tensor, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per record t, the largest and the mean angle (radians) of h_mean[s] from the window's mean direction,
    s = t - window + 1 .. t, defined from t = window (record 0 has no h_mean)."""
    largest, mean = np.full(len(h_mean), math.nan), np.full(len(h_mean), math.nan)
    for t in range(window, len(h_mean)):
        vectors = h_mean[t - window + 1 : t + 1]
        direction = vectors.mean(dim=0).expand_as(vectors)
        angles = torch.arccos(cosines(vectors, direction).clamp(-1.0, 1.0))
        largest[t], mean[t] = angles.max().item(), angles.mean().item()
    return largest, mean


def cloud(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """A group's centroid and its bounding radius about it (NaN for a group with no row)."""
    if not len(x):
        return torch.full(x.shape[1:], math.nan, dtype=x.dtype), math.nan
    centroid = x.mean(dim=0)
    return centroid, torch.linalg.vector_norm(x - centroid, dim=1).max().item()


def liftoff(steps, centroid, radius) -> float:
    """The first step whose centroid is further from the origin than the bounding radius (NaN: never)."""
    lifted = np.flatnonzero(np.asarray(centroid) > np.asarray(radius))
    return float(np.asarray(steps)[lifted[0]]) if lifted.size else math.nan


def matrix_columns(recording: Recording, side: str, h_mean: torch.Tensor | None) -> pd.DataFrame:
    """The per-record columns of matrix `side` (module docstring), without its prefix."""
    key, dead = recording.matrix("embeddings", side), dead_rows(recording)
    found, previous = [], None
    for index in range(recording.n_records):
        x = recording.record(key, index).double()
        row, centroids = {}, {}
        for group, mask in group_masks(dead):
            centroids[group], row[f"{group}_radius"] = cloud(x[mask])
            row[f"{group}_centroid"] = torch.linalg.vector_norm(centroids[group]).item()
        row["separation"] = torch.linalg.vector_norm(centroids["live"] - centroids["dead"]).item()
        step = centroids["dead"] - previous if previous is not None else None
        row["h_mean_cos_dC"] = cosine(h_mean[index], step) if step is not None and h_mean is not None else math.nan
        found.append(row)
        previous = centroids["dead"]
    return pd.DataFrame(found)


def h_mean_columns(h_mean: torch.Tensor | None, n_records: int, window: int) -> dict[str, np.ndarray]:
    """The per-record columns of h_mean itself (module docstring); NaN without an h_mean."""
    if h_mean is None:
        return dict.fromkeys(H_MEAN_COLUMNS, np.full(n_records, math.nan))
    norms = torch.linalg.vector_norm(h_mean, dim=1).numpy()
    norms[0] = math.nan  # record 0: no forward pass yet
    largest, mean = swing(h_mean, window)
    return dict(zip(H_MEAN_COLUMNS, (norms, autocorrelation(h_mean), largest, mean)))


def run_row(side: str, steps, table: pd.DataFrame, columns: pd.DataFrame) -> dict:
    """The run table's row of matrix `side` (module docstring)."""
    values = (side, table["h_mean_autocorrelation"].mean(), columns["h_mean_cos_dC"].mean(),
              *(liftoff(steps, columns[f"{group}_centroid"], columns[f"{group}_radius"]) for group in GROUPS),
              columns["separation"].iloc[0], columns["separation"].iloc[-1], table["h_mean_swing_max"].max())
    return dict(zip(RUN_COLUMNS, values))


def h_mean_tables(path: str | Path, tokens: str | Path, window: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The step table, the run table and the token table of one recording (module docstring)."""
    recording = Recording(path)
    steps = recording.steps()
    h_mean = recording.tensor("h_mean").double() if "h_mean" in recording.keys else None
    table = pd.DataFrame({"step": steps, **h_mean_columns(h_mean, len(steps), window)})
    runs = []
    for side in sides(recording):
        columns = matrix_columns(recording, side, h_mean)
        table = pd.concat([table, columns.add_prefix(f"{side}_")], axis=1)
        runs.append(run_row(side, steps, table, columns))
    return table, pd.DataFrame(runs, columns=RUN_COLUMNS), top_tokens(recording, h_mean, tokens)


def top_tokens(recording: Recording, h_mean: torch.Tensor | None, tokens: str | Path) -> pd.DataFrame:
    """At the first and the last record with an h_mean, the recorded rows of W that h_mean . w_i ranks highest:
    rank, token id and text, whether it is dead, the score and the cosine of h_mean with the row."""
    if h_mean is None or recording.n_records < 2:
        return pd.DataFrame(columns=TOKEN_COLUMNS)
    ids = recording.tensor("recorded_rows").numpy()
    text, dead = token_table(tokens, ids)["token"].to_numpy(), dead_rows(recording).numpy()
    found, key, steps = [], recording.matrix("embeddings", "W"), recording.steps()
    for index in sorted({1, recording.n_records - 1}):
        w = recording.record(key, index).double()
        scores = w @ h_mean[index]
        cos = cosines(w, h_mean[index].expand_as(w))
        order = torch.argsort(scores, descending=True, stable=True)[:TOP_TOKENS].tolist()
        found += [{"step": steps[index], "rank": rank + 1, "token_id": int(ids[i]), "token": text[i],
                   "dead": bool(dead[i]), "score": scores[i].item(), "cosine": cos[i].item()}
                  for rank, i in enumerate(order)]
    return pd.DataFrame(found, columns=TOKEN_COLUMNS)
