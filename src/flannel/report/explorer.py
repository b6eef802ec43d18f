"""The token explorer's data: for one run, every recorded token (its string, id, count, dead or live), its row
of W's distance from the origin and from the dead centroid at a bounded set of steps, its lattice phases and
freeze step per matrix (the lattice rows table), and its place in the cloud (the fixed principal basis at the
last step); written into one self-contained HTML page (flannel.report.explorer_page).

Size: the two distance series are float32, each row's base64 in the page (decoded only when the row is shown):
10,000 rows x 200 points is 16 MB of floats, 21 MB of text; everything else is a few values per row. The points are every record when they
fit in `max_points`, else the film's choice (flannel.report.film.frame_indices: half log-spaced over the early
steps, half even), so the first steps, where rows move most, are all there."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.metrics import rows64
from ..analysis.rows import dead_rows, sides, token_table
from ..errors import AnalysisError
from ..outputs import read_table
from ..recording import Recording
from .basis import fixed_basis
from .film import frame_indices

PHASE_STARTS = ("mid_from", "late_from", "frozen_from", "last_move")


def distances(x, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distance from the origin and from the dead centroid (NaN with no dead rows), float64."""
    rows = rows64(x).numpy()
    centroid = rows[dead].mean(axis=0) if dead.any() else np.full(rows.shape[1], math.nan)
    return np.linalg.norm(rows, axis=1), np.linalg.norm(rows - centroid, axis=1)


def distance_series(recording: Recording, dead: np.ndarray, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """[rows, points] distances of W's rows from the origin and from the dead centroid at the chosen records."""
    key = recording.matrix("embeddings", "W")
    pairs = [distances(recording.record(key, index), dead) for index in indices]
    return np.stack([origin for origin, _ in pairs], axis=1), np.stack([centroid for _, centroid in pairs], axis=1)


def phases(rows: pd.DataFrame, side: str, ids: np.ndarray, path) -> dict[str, list]:
    """Per recorded token, the step each lattice phase begins and its last move (None: never within the run)."""
    mine = rows[rows["matrix"] == side].set_index("token")
    if not set(ids.tolist()) <= set(mine.index.tolist()):
        raise AnalysisError(f"{path}: the lattice rows of {side} lack recorded tokens; rerun rule lattice")
    return {column: _plain(mine.loc[ids, column].to_numpy(dtype=float)) for column in PHASE_STARTS}


def _plain(values: np.ndarray, digits: int | None = None) -> list:
    """Numbers for JSON: NaN as None, integral values as ints, others rounded to `digits` significant digits."""
    out = []
    for value in values.tolist():
        if math.isnan(value):
            out.append(None)
        elif digits is None and float(value).is_integer():
            out.append(int(value))
        else:
            out.append(float(f"{value:.{digits or 6}g}"))
    return out


def _float32_rows(values: np.ndarray) -> list[str]:
    """Each row as base64 of its little-endian float32s: the page decodes only the row it shows."""
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in np.ascontiguousarray(values, dtype="<f4")]


def explorer_data(run: str | Path, rows: str | Path, tokens: str | Path, label: str, settings: dict) -> dict:
    """Everything the page shows of run `run` (its lattice rows table `rows`, the token table `tokens`).
    `settings`: max_points, basis."""
    recording = Recording(run)
    dead = dead_rows(recording).numpy()
    ids = recording.tensor("recorded_rows").numpy()
    table, lattice = token_table(tokens, ids), read_table(rows, ("matrix", "token", *PHASE_STARTS))
    steps = recording.steps()
    indices = frame_indices(recording.n_records, settings["max_points"])
    origin, centroid = distance_series(recording, dead, indices)
    basis = fixed_basis(recording, "W", dead, 2, settings["basis"])
    cloud = basis.project(recording.record(recording.matrix("embeddings", "W"), recording.n_records - 1))
    return {
        "run": label, "n_records": recording.n_records, "steps": [steps[i] for i in indices],
        "matrices": list(sides(recording)),
        "tokens": {"id": ids.tolist(), "text": table["token"].tolist(), "count": table["count"].tolist(),
                   "dead": dead.astype(int).tolist()},
        "phases": {side: phases(lattice, side, ids, rows) for side in sides(recording)},
        "final": {"origin": _plain(origin[:, -1], 5), "centroid": _plain(centroid[:, -1], 5)},
        "cloud": {"x": _plain(cloud[:, 0], 4), "y": _plain(cloud[:, 1], 4),
                  "explained": _plain(basis.explained, 3)},
        "series": {"origin": _float32_rows(origin), "centroid": _float32_rows(centroid)},
    }
