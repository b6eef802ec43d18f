"""The research series' five phases of a row's motion (box_4 phase_transitions_v2), its reheating, and the
global-freeze runs of the dead rows, from the lattice displacement dW' = dW / ulp(W_(t-1)) per element
(flannel.analysis.lattice.hops), read one record at a time.

Per row and step, with L1 and L2 the norms of its dW' over the D coordinates, a phase code:
  4 hypernova     L2 > 1000
  3 superluminal  sqrt(D) < L2 <= 1000
  2 spherical     L1 > 1 and L2 <= sqrt(D)
  1 stumbling     0 < L1 <= 1
  0 Fimbulwinter  L1 = 0 (this step: a row can leave it again)
A row's boundary out of a phase is the last step its code was at that phase or hotter (so `last_stumbling` is
its last motion; NaN: never). Reheating: a step whose code is above the row's code at the previous step.

Global-freeze runs, per matrix: maximal stretches of consecutive records at which every dead row is
bit-identical to the previous record; a thaw ends one (the dead rows move again), a re-freeze starts the next.

Step table: `step`, per matrix M and group G: M_G_{phase} (fraction of the group's rows in each phase at the
step; NaN at record 0) and M_G_reheating (rows whose code rose); per matrix M_dead_still (1 where every dead row
is unchanged, 0 where one moved). Row table: `matrix`, `token`, `dead`, `last_{hypernova,superluminal,spherical,
stumbling}`, `reheats`. Run table: `matrix`, `start`, `end` (first and last step of the run), `steps`, `thawed` (1: the dead rows
moved after it; 0: it lasts to the end of the run).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from ..recording import Recording
from .lattice import hop_norms, hops
from .rows import dead_rows, group_masks, sides

PHASES = ("fimbulwinter", "stumbling", "spherical", "superluminal", "hypernova")  # by code, 0 to 4
HYPERNOVA_L2 = 1000.0
RUN_COLUMNS = ["matrix", "start", "end", "steps", "thawed"]


def phase_codes(l1: torch.Tensor, l2: torch.Tensor, dim: int) -> torch.Tensor:
    """Each row's phase code (module docstring) from its hop norms."""
    code = torch.where(l1 > 1, 2, torch.where(l1 > 0, 1, 0))
    code = torch.where(l2 > math.sqrt(dim), 3, code)
    return torch.where(l2 > HYPERNOVA_L2, 4, code)


def still_runs(steps, still) -> list[tuple[int, int, int]]:
    """(first step, last step, number of steps) of each maximal stretch of records where `still` holds."""
    found, start = [], None
    for index, (step, quiet) in enumerate(zip(steps, still)):
        if quiet and start is None:
            start = index
        if start is not None and (not quiet or index == len(steps) - 1):
            end = index if quiet else index - 1
            found.append((steps[start], steps[end], steps[end] - steps[start - 1]))
            start = None
    return found


class PhaseRecord:
    """One matrix's rows through the run: the code at the previous step, the last step at each phase or
    hotter, the reheats, and per step whether every dead row stood still."""

    def __init__(self, n_rows: int):
        self.previous = None
        self.last = torch.full((n_rows, len(PHASES)), -1, dtype=torch.int64)
        self.reheats = torch.zeros(n_rows, dtype=torch.int64)

    def update(self, step: int, code: torch.Tensor) -> torch.Tensor:
        """Record one step's codes; returns the rows that reheated."""
        for phase in range(1, len(PHASES)):
            self.last[code >= phase, phase] = step
        rose = code > self.previous if self.previous is not None else torch.zeros_like(code, dtype=torch.bool)
        self.reheats += rose.long()
        self.previous = code
        return rose


def phase_tables(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The step, row and run tables of one recording (module docstring)."""
    recording = Recording(path)
    dead, steps = dead_rows(recording), recording.steps()
    table = pd.DataFrame({"step": steps})
    per_row, runs = [], []
    for side in sides(recording):
        key = recording.matrix("embeddings", side)
        before = recording.record(key, 0)
        record, found, still = PhaseRecord(before.shape[0]), [{}], [False]
        for index in range(1, len(steps)):
            x = recording.record(key, index)
            norms = hop_norms(hops(x, before))
            code = phase_codes(norms["l1"], norms["l2"], x.shape[1])
            rose = record.update(steps[index], code)
            found.append({f"{side}_{group}_{name}": _fraction(code == c, mask) for group, mask in group_masks(dead)
                          for c, name in enumerate(PHASES)})
            found[-1].update({f"{side}_{group}_reheating": int(rose[mask].sum()) for group, mask in group_masks(dead)})
            still.append(bool(dead.any()) and bool((norms["l1"][dead] == 0).all()))  # none: no dead row to stand still
            before = x
        table = pd.concat([table, pd.DataFrame(found)], axis=1)
        table[f"{side}_dead_still"] = [math.nan] + [float(s) if dead.any() else math.nan for s in still[1:]]
        per_row.append(_rows(side, recording.tensor("recorded_rows").tolist(), dead, record))
        runs += [{"matrix": side, "start": a, "end": b, "steps": n, "thawed": int(b < steps[-1])}
                 for a, b, n in still_runs(steps, still)]
    return table, pd.concat(per_row, ignore_index=True), pd.DataFrame(runs, columns=RUN_COLUMNS)


def _fraction(value: torch.Tensor, mask: torch.Tensor) -> float:
    return value[mask].double().mean().item() if mask.any() else math.nan


def _rows(side: str, tokens: list[int], dead: torch.Tensor, record: PhaseRecord) -> pd.DataFrame:
    last = record.last.numpy().astype(float)
    last[last < 0] = math.nan
    return pd.DataFrame({"matrix": side, "token": tokens, "dead": dead.numpy(),
                         **{f"last_{PHASES[p]}": last[:, p] for p in range(len(PHASES) - 1, 0, -1)},
                         "reheats": record.reheats.numpy()})


def run_summary(runs: pd.DataFrame, matrix: str) -> dict[str, float]:
    """One matrix's global-freeze runs: how many, the longest, the steps they cover, and the thaws (runs after
    which the dead rows moved again)."""
    mine = runs[runs["matrix"] == matrix]
    lengths = mine["steps"].to_numpy()
    return {"freeze_runs": len(mine), "longest_run": float(lengths.max()) if lengths.size else math.nan,
            "steps_all_still": int(lengths.sum()), "thaws": int(mine["thawed"].sum())}
