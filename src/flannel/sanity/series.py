"""What the sanity checks read and compare: lazy series of one embedding matrix over a run's records (either
subject's), the canonical dead indices, the radius a fresh initialisation predicts, and byte-level comparisons
of two records."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import RecordingError, SanityError
from ..outputs import display
from ..recording import Recording


@dataclass(frozen=True)
class Series:
    """One embedding matrix of one run over its records, read one record at a time."""

    label: str
    file: str  # the file as it appears in the report
    source: Recording
    key: str
    run: int | None  # index along a leading runs dimension (the 1.20c layout); None otherwise
    steps: tuple[int, ...]
    row_ids: torch.Tensor  # vocabulary ids of the stored rows
    init_scale: float | None
    dead_indices: torch.Tensor | None  # the dead ids the file names; None where its layout stores none
    n_dead: int
    state_sha256_initial: str | None  # full-state digest at t=0; None where the layout stores none

    def record(self, index: int) -> torch.Tensor:
        return self.source.record(self.key, index if self.run is None else (self.run, index))

    def at_step(self, step: int) -> torch.Tensor:
        return self.record(self.steps.index(step))

    def positions(self, ids: torch.Tensor) -> torch.Tensor | None:
        """Where `ids` sit among the stored rows; None if any of them was not stored."""
        if ids.numel() == 0:
            return ids.new_zeros(0)
        order = torch.argsort(self.row_ids)
        stored = self.row_ids[order]
        found = torch.searchsorted(stored, ids).clamp(max=stored.numel() - 1)
        if not bool((stored[found] == ids).all()):
            return None
        return order[found]


def open_recording(path, root=".") -> Recording:
    try:
        return Recording(path)
    except RecordingError as error:
        raise SanityError(str(error).replace(str(path), display(path, root), 1)) from None


def run_series(recording: Recording, file: str) -> list[Series]:
    """The embedding matrices of one of this workflow's runs: tied W, or untied E and W."""
    keys = ["embeddings"] if recording.tied else ["embeddings_E", "embeddings_W"]
    rows, steps = recording.tensor("recorded_rows"), tuple(recording.steps())
    dead = recording.tensor("dead_indices").to(torch.int64)
    return [Series(f"{file} {key}", file, recording, key, None, steps, rows, recording.scalar("init_scale"), dead,
                   recording.scalar("n_dead"), recording.metadata.get("state_sha256_initial")) for key in keys]


def load_dead_indices(path, root=".") -> torch.Tensor:
    recording = open_recording(path, root)
    if "dead_indices" not in recording.keys:
        raise SanityError(f"{display(path, root)}: no tensor 'dead_indices' (not a live/dead mask file)")
    return recording.tensor("dead_indices").to(torch.int64)


# ---- comparing records ---------------------------------------------------------------------------------------------


def expected_radius(init_scale: float, dim: int, n_rows: int | None = None) -> dict:
    """The mean distance of N(0, init_scale^2 I_D) rows from the origin (a scaled chi mean,
    init_scale * sqrt(2) * Gamma((D+1)/2) / Gamma(D/2), about init_scale * sqrt(D - 1/2)), and from the
    sample centroid of n_rows rows (each centred row has variance scaled by 1 - 1/n_rows)."""
    chi = math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))
    mean = init_scale * chi
    shrink = math.sqrt(1 - 1 / n_rows) if n_rows and n_rows > 1 else 1.0
    return {"expected": mean, "expected_centred": mean * shrink, "row_sd": init_scale * math.sqrt(max(dim - chi**2, 0.0)) * shrink}


def difference(a: torch.Tensor, b: torch.Tensor) -> dict:
    delta = a.to(torch.float32) - b.to(torch.float32)
    return {"frobenius": torch.linalg.vector_norm(delta).item(), "max_abs": delta.abs().max().item() if delta.numel() else 0.0}


def _bytes_of(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous().reshape(-1).view(torch.uint8)


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN equals NaN: record 0 holds a NaN loss)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bytes_of(a), _bytes_of(b))


def differing_elements(a: torch.Tensor, b: torch.Tensor) -> int:
    width = a.element_size()
    return int((_bytes_of(a).reshape(-1, width) != _bytes_of(b).reshape(-1, width)).any(dim=1).sum())


def shared_rows(a: Series, b: Series, dead: torch.Tensor | None):
    """Positions of the rows both series hold: every row when they store the same ids, else the dead rows."""
    if torch.equal(a.row_ids, b.row_ids):
        return "all recorded rows", slice(None), slice(None)
    pa, pb = (a.positions(dead), b.positions(dead)) if dead is not None else (None, None)
    return ("dead rows only", pa, pb) if pa is not None and pb is not None else (None, None, None)
