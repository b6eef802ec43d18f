"""The sky maps (figure p), the series' construction: W's rows as directions on a sphere, each from the mean of
all rows at its step, in the fixed principal basis of W (flannel.report.basis: PC2 the pole, PC1 at longitude
0, PC3 at longitude 90 degrees), drawn in the Mollweide projection; dead vs live rows at t = 0, at the dead
centroid's peak speed, at the freeze onset and at the last step, and the dead centroid's path over every
recorded step on the same sphere."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis.metrics import rows64
from ..analysis.rows import dead_rows
from ..outputs import read_table
from ..recording import Recording
from .basis import fixed_basis
from .panels import GROUP_COLORS, empty_panel, finish, plt, reference_views

# Sky-map panel -> the epoch table column that names its step ("" : the first or the last record).
MOMENTS = {"t = 0": "", "peak speed of the dead centroid": "peak_speed_centroid", "freeze onset": "freeze_onset",
           "last step": ""}


def sky_coordinates(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates [n, 3] on (PC1, PC2, PC3) -> (longitude, latitude) in radians: PC2 is the pole, PC1 is at
    longitude 0 and PC3 at +90 degrees. A row at the centre itself has no direction: it goes to (0, 0)."""
    norm = np.linalg.norm(xyz, axis=1)
    safe = np.where(norm > 0, norm, 1.0)
    return np.arctan2(xyz[:, 2], xyz[:, 0]), np.arcsin(np.clip(xyz[:, 1] / safe, -1.0, 1.0))


def moment_steps(steps: list[int], epochs: pd.DataFrame, run: str, matrix: str) -> dict[str, float]:
    """The step of each sky-map panel for one run and matrix: the first and last recorded steps, and the epoch
    steps of the epochs table (NaN where the run never reaches that epoch)."""
    mine = epochs[(epochs["run"] == run) & (epochs["matrix"] == matrix)]
    found = {}
    for name, column in MOMENTS.items():
        if not column:
            found[name] = steps[0] if name == "t = 0" else steps[-1]
        else:
            found[name] = float(mine[column].iloc[0]) if not mine.empty else math.nan
    return found


def centroid_path(recording: Recording, key: str, dead: np.ndarray, basis) -> np.ndarray:
    """The dead centroid at every record, about that record's mean of all rows, on the basis: [records, 3]."""
    path = []
    for index in range(recording.n_records):
        rows = rows64(recording.record(key, index))
        path.append(basis.project(rows[dead].mean(dim=0, keepdim=True), rows.mean(dim=0).numpy())[0])
    return np.stack(path)


def _sky_axes(ax) -> None:
    """Latitude labels only: the longitude labels of a small Mollweide panel run into each other."""
    ax.grid(alpha=0.4)
    ax.set_xticklabels([])
    ax.tick_params(labelsize=6)


def _rows_panel(ax, recording: Recording, key: str, dead: np.ndarray, basis, step: int) -> None:
    """The rows at `step` as directions from their own mean (the cloud's centre at that step), so a cloud that
    drifts as a whole does not crowd into one point of the sky; the directions are the run's fixed ones."""
    rows = rows64(recording.record(key, recording.steps().index(step)))
    lon, lat = sky_coordinates(basis.project(rows, rows.mean(dim=0).numpy()))
    for group, mask, size in (("live", ~dead, 2), ("dead", dead, 4)):
        if mask.any():
            ax.scatter(lon[mask], lat[mask], s=size, color=GROUP_COLORS[group], alpha=0.6, linewidths=0,
                       label=f"{group} rows (n={int(mask.sum())})")


def _path_panel(ax, fig, path: np.ndarray, steps: list[int]) -> None:
    lon, lat = sky_coordinates(path)
    dots = ax.scatter(lon, lat, c=np.arange(len(steps)), cmap="viridis", s=8, linewidths=0)
    ax.scatter(lon[[0, -1]], lat[[0, -1]], s=60, facecolors="none", edgecolors=["k", "C3"], linewidths=1.2)
    bar = fig.colorbar(dots, ax=ax, orientation="horizontal", fraction=0.05, pad=0.08)
    ticks = np.unique(np.linspace(0, len(steps) - 1, 5).round().astype(int))
    bar.set_ticks(ticks, labels=[str(steps[i]) for i in ticks])
    bar.set_label("recorded step (black ring: first, red ring: last)", fontsize="small")


def p_sky_map(inputs: dict, settings: dict):
    """p. Sky maps of W's rows (reference seed): four moments and the dead centroid's path."""
    views = [view for view in reference_views(inputs) if view[2] == "W"]
    found = [read_table(path, ("run", "matrix")) for path in inputs.get("epochs_table", [])]
    epochs = found[0] if found else pd.DataFrame(columns=["run", "matrix"])
    reference, which = settings["seeds"]["reference"], settings["figures"]["basis"]
    columns = len(MOMENTS) + 1
    fig, axes = plt.subplots(len(views), columns, figsize=(4.2 * columns, 3.2 * len(views)), squeeze=False,
                             subplot_kw={"projection": "mollweide"})
    for row, (label, path, side) in enumerate(views):
        recording = Recording(path)
        dead, key, steps = dead_rows(recording).numpy(), recording.matrix("embeddings", side), recording.steps()
        basis = fixed_basis(recording, side, dead, 3, which)
        moments = moment_steps(steps, epochs, f"{label.split()[0]} seed {reference}", label)
        for ax, (name, step) in zip(axes[row], moments.items()):
            _sky_axes(ax)
            if math.isnan(step):
                empty_panel(ax, f"{label}: {name}\n{'not reached within the run' if dead.any() else 'no dead rows'}")
                continue
            _rows_panel(ax, recording, key, dead, basis, int(step))
            ax.set_title(f"{label}, {name}\n(step {int(step)})", fontsize="medium")
        ax = axes[row][-1]
        _sky_axes(ax)
        if dead.any():
            _path_panel(ax, fig, centroid_path(recording, key, dead, basis), steps)
            ax.set_title(f"{label}: the dead centroid's path", fontsize="medium")
        else:
            empty_panel(ax, f"{label}: no dead rows, no dead centroid")
        axes[row][0].legend(markerscale=3, fontsize="x-small", loc="lower left")
        axes[row][0].text(0, -0.18, f"basis: PCA of W ({which.replace('_', ' ')}); PC1-3 hold "
                          f"{', '.join(f'{share:.0%}' for share in basis.explained)} of the variance",
                          transform=axes[row][0].transAxes, fontsize="x-small")
    return finish(fig, f"p. Sky maps of W: PC2 the pole, PC1 at longitude 0, PC3 at 90 degrees (seed {reference})")
