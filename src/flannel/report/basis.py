"""The fixed principal basis the film and the sky maps project W's rows on: the top principal directions of the
recorded rows at the last step (or of every step's rows pooled), centred on that mean, each direction's sign
fixed so that the dead centroid lies on its positive side (a direction it does not lean along: the sign that
makes the direction's largest component positive). eigh's signs are arbitrary; a fixed convention keeps a
figure's orientation from flipping between runs and builds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..analysis.metrics import principal_axes, rows64
from ..errors import ConfigError
from ..recording import Recording

BASES = ("last_step", "all_steps")


@dataclass(frozen=True)
class Basis:
    mean: np.ndarray  # [D], the centre of the projection
    directions: np.ndarray  # [D, k], the principal directions, largest variance first
    explained: np.ndarray  # [k], the share of the variance each direction holds

    def project(self, x: torch.Tensor, about: np.ndarray | None = None) -> np.ndarray:
        """Rows [n, D] -> coordinates [n, k] (float64), about the basis' mean or the point `about`."""
        return (rows64(x).numpy() - (self.mean if about is None else about)) @ self.directions


def signed(directions: np.ndarray, dead_offset: np.ndarray) -> np.ndarray:
    """Each column flipped so that `dead_offset` (the dead centroid minus the mean) has a positive coordinate
    along it; where that coordinate is 0 (no dead rows), so that the column's largest component is positive."""
    along = dead_offset @ directions
    largest = directions[np.abs(directions).argmax(axis=0), np.arange(directions.shape[1])]
    signs = np.where(along != 0, np.sign(along), np.sign(largest))
    return directions * signs


def _scatter_of_all_steps(recording: Recording, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The mean and centred scatter matrix of every record's rows pooled, read one record at a time."""
    total, outer, count = 0.0, 0.0, 0
    for index in range(recording.n_records):
        x = rows64(recording.record(key, index)).numpy()
        total, outer, count = total + x.sum(axis=0), outer + x.T @ x, count + x.shape[0]
    mean = total / count
    return mean, outer - count * np.outer(mean, mean)


def fixed_basis(recording: Recording, side: str, dead: np.ndarray, k: int, which: str = "last_step") -> Basis:
    """The top `k` principal directions of the recording's `side` matrix (`which`: the last step's rows, or
    every step's rows pooled), signs fixed by the dead centroid of the last step."""
    key = recording.matrix("embeddings", side)
    last = rows64(recording.record(key, recording.n_records - 1)).numpy()
    if which == "last_step":
        _, mean, values, vectors = principal_axes(torch.from_numpy(last))
        mean, values, vectors = mean.numpy(), values.numpy(), vectors.numpy()
    elif which == "all_steps":
        mean, scatter = _scatter_of_all_steps(recording, key)
        values, vectors = np.linalg.eigh(scatter)
    else:
        raise ConfigError(f"config key 'film.basis': '{which}' is not one of {', '.join(BASES)}")
    order = np.argsort(values)[::-1][:k]
    dead_offset = last[dead].mean(axis=0) - mean if dead.any() else np.zeros_like(mean)
    explained = values[order] / values.sum() if values.sum() > 0 else np.zeros(k)
    return Basis(mean, signed(vectors[:, order], dead_offset), explained)
