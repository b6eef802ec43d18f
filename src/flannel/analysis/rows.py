"""What a recording's rows and steps mean, shared by every analysis of it: the dead and live groups of the
recorded rows and their tokens' text, the recorded matrices (tied W, untied E and W), and the LR each optimizer step ran at under the
config's schedule. Kept apart from the tables (flannel.analysis.per_step) so that the Adam replay
(flannel.analysis.adam, which the sanity check runs) and the lattice analysis depend on these definitions
only, not on the table code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import AnalysisError
from ..recording import Recording

GROUPS = ("dead", "live")


def group_masks(dead: torch.Tensor) -> tuple[tuple[str, torch.Tensor], ...]:
    return tuple(zip(GROUPS, (dead, ~dead)))


def scheduled_lr(step: int, training: dict) -> float:
    """The LR that optimizer step `step` (1-based) used: the scheduler is stepped after each optimizer step,
    so step t runs at lr x factor(t - 1), factor as in transformers' linear/constant schedules with warmup."""
    t, warmup, total = step - 1, training["warmup_steps"], training["steps"]
    if t < warmup:
        factor = t / max(1, warmup)
    elif training["lr_schedule"] == "linear":
        factor = max(0.0, (total - t) / max(1, total - warmup))
    else:
        factor = 1.0
    return training["learning_rate"] * factor


def dead_rows(recording: Recording) -> torch.Tensor:
    """Boolean mask over the recorded rows: True where the row's token never occurs in the training ids."""
    vocab_size = recording.config.get("model", {}).get("vocab_size")
    dead_ids = recording.tensor("dead_indices").long()
    rows = recording.tensor("recorded_rows").long()
    if vocab_size is None or (dead_ids.numel() and int(dead_ids.max()) >= vocab_size):
        raise AnalysisError(f"{recording.path}: dead_indices do not fit the recorded vocab_size {vocab_size}")
    dead = torch.zeros(vocab_size, dtype=torch.bool)
    dead[dead_ids] = True
    return dead[rows]


def sides(recording: Recording) -> tuple[str, ...]:
    return ("W",) if recording.tied else ("E", "W")


def require_matching(reference: Recording, other: Recording) -> None:
    """Two runs compare row by row and step by step only with the same steps, rows and dead rows."""
    for name in ("recorded_steps", "recorded_rows", "dead_indices"):
        if not torch.equal(reference.tensor(name), other.tensor(name)):
            raise AnalysisError(f"{other.path}: {name} differ from those of {reference.path}; the runs cannot be paired")


def token_table(path: str | Path, ids: np.ndarray) -> pd.DataFrame:
    """The recorded tokens' rows of the live/dead token table (token_id, token, count), in recorded order."""
    table = pd.read_csv(path, keep_default_na=False, dtype={"token": str})
    missing = sorted(set(ids.tolist()) - set(table["token_id"].tolist()))
    if missing:
        raise AnalysisError(f"{path}: no row for token ids {missing[:5]}; rerun rule live_dead_tokens")
    return table.set_index("token_id").loc[ids].reset_index()
