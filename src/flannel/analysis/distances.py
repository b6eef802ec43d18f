"""Run-to-run distances of the unembedding rows, read from the recordings one record at a time (a recording is
GB at the notebooks' scale; memory stays at one record per run).

Tied vs untied (a seed trained both ways, the same init): per row i and step t,
d_i(t) = ||W_tied,i(t) - W_untied,i(t)|| (L2 over the D coordinates, float64 from the recorded values). The
step table has per step `dead_{mean,median,max}` and `live_{mean,median,max}` over the group's rows; the row
matrix keeps d_i(t) of every dead row ([dead rows, records], float32) for the heatmap.

The sweep (the tied seeds): per step and pair of runs (seed_a < seed_b), the mean row distance over the dead
rows and over the live rows, `dead_mean` and `live_mean`, in a long table (`step`, `seed_a`, `seed_b`, ...).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import save_file

from ..errors import AnalysisError
from ..outputs import atomic_output
from ..recording import Recording
from .metrics import row_norms
from .rows import dead_rows, group_masks, require_matching

STATISTICS = ("mean", "median", "max")


def row_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per row, the L2 distance between the two matrices' rows, in float64."""
    return row_norms(a.double() - b.double())


def group_statistics(distances: torch.Tensor, dead: torch.Tensor, statistics=STATISTICS) -> dict[str, float]:
    """`{group}_{statistic}` of the row distances over the dead and the live rows (NaN for an empty group)."""
    found = {}
    for group, mask in group_masks(dead):
        chosen = distances[mask]
        for name in statistics:
            # torch's median of an even count is the lower middle value; the table means the usual median.
            value = {"mean": chosen.mean, "max": chosen.max, "median": lambda: chosen.quantile(0.5)}[name]
            found[f"{group}_{name}"] = value().item() if chosen.numel() else math.nan
    return found


def tied_untied(tied_path: str | Path, untied_path: str | Path,
                expected_config: dict | None = None) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """The step table and the dead rows' d_i(t) ({"distances": [dead rows, records], "tokens", "steps"}) of one
    seed's tied and untied runs."""
    tied = Recording(tied_path).expect(tied=True, config=expected_config)
    untied = Recording(untied_path).expect(tied=False, config=expected_config)
    require_matching(tied, untied)
    dead, steps = dead_rows(tied), tied.steps()
    # Filled in place: a small tensor kept per step between the steps' large temporaries fragments the heap
    # until it holds GBs (3.5 GB at the notebooks' scale).
    matrix, rows = torch.empty(int(dead.sum()), len(steps), dtype=torch.float32), []
    for index, step in enumerate(steps):
        distances = row_distances(tied.record("embeddings", index), untied.record("embeddings_W", index))
        rows.append({"step": step, **group_statistics(distances, dead)})
        matrix[:, index] = distances[dead]
    return pd.DataFrame(rows), {"distances": matrix, "tokens": tied.tensor("recorded_rows")[dead].long(),
                                "steps": torch.tensor(steps, dtype=torch.int64)}


def write_rows(rows: dict[str, torch.Tensor], path: str | Path) -> None:
    with atomic_output(path) as partial:
        save_file(rows, str(partial))


def read_rows(path: str | Path) -> dict[str, torch.Tensor]:
    """The row matrix written by write_rows, refused with one line naming the file if it is not one."""
    from safetensors.torch import load_file

    try:
        rows = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise AnalysisError(f"{path}: unreadable distance rows ({' '.join(str(error).split())[:120]})") from None
    if set(rows) != {"distances", "tokens", "steps"}:
        raise AnalysisError(f"{path}: not a distance rows file (tensors {sorted(rows)}); rerun rule tied_untied_distance")
    return rows


def sweep(paths: dict[int, str | Path], expected_config: dict | None = None) -> pd.DataFrame:
    """Per step and pair of the sweep's (tied) runs, the mean row distance over dead and over live rows."""
    runs = {seed: Recording(path).expect(tied=True, config=expected_config) for seed, path in sorted(paths.items())}
    columns = ["step", "seed_a", "seed_b", "dead_mean", "live_mean"]
    if len(runs) < 2:
        return pd.DataFrame(columns=columns)
    first = next(iter(runs.values()))
    for run in runs.values():
        require_matching(first, run)
    dead, found = dead_rows(first), []
    for index, step in enumerate(first.steps()):
        current = {seed: run.record("embeddings", index) for seed, run in runs.items()}
        for a, b in itertools.combinations(current, 2):
            statistics = group_statistics(row_distances(current[a], current[b]), dead, ("mean",))
            found.append({"step": step, "seed_a": a, "seed_b": b, **statistics})
    return pd.DataFrame(found, columns=columns)
