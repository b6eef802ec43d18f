"""Lattice units and freeze phases: every weight change counted in hops of the bf16 lattice, and each row's
life split into phases by those counts, read from a recording one record at a time.

A bf16 number has 8 significant bits, so in the binade [2^e, 2^(e+1)) its values are 2^(e-7) apart: the ulp of
x is 2^(floor(log2|x|) - 7) (frexp's exponent minus 8: frexp returns a mantissa in [0.5, 1), so using its
exponent minus 7 gives twice the ulp, a slip of the research series). Below the smallest normal 2^-126 the
spacing is the subnormal one, 2^-133, and so it is for 0. An element's change from x is counted as
(x_new - x) / ulp(x): an integer, or a half-integer where it steps down into the finer binade. For float32
weights the changes are not on the bf16 lattice and the counts are not integers; the step table says so.

Per row and step: the L1, L-infinity and L2 norms of its hop vector. Phases (thresholds from the `analysis`
config section): early while L2 > early_l2 (default sqrt(D)); mid-life while L-inf > mid_linf (default 1);
late while it still moves, by single hops; frozen from the step after its last move (from the first record on
for a row that never moves, and likewise for the phases it never enters). Each boundary is the row's
*last* exit from the previous regime, so a row that re-enters an earlier regime later stays in it until then.

Step table (one row per record; NaN at record 0): `step`, `hops_on_lattice` (1 if every change of every matrix
is a whole number of bf16 hops, as for bf16 weights; 0 for float32 weights, whose counts are not integers), per matrix M and group G: M_G_hops_l1, M_G_hops_linf, M_G_hops_l2 (means
over the group's rows) and M_G_phase_{early,mid,late,frozen} (fractions of the group's rows in each phase).
Row table: per matrix and recorded row, `matrix`, `token`, `dead`, `mid_from`, `late_from`, `frozen_from`
(the step each phase begins; empty where the row never reaches it within the run) and `last_move`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from ..recording import Recording
from .rows import dead_rows, group_masks, sides

SUBNORMAL_ULP = 2.0**-133
MIN_NORMAL = 2.0**-126
PHASES = ("early", "mid", "late", "frozen")


def bf16_ulp(x: torch.Tensor) -> torch.Tensor:
    """The spacing of the bf16 lattice in the binade of each |x| (float64): 2^(floor(log2|x|) - 7), and the
    subnormal spacing 2^-133 for |x| < 2^-126 (zero included). NaN for infinities and NaN. A bf16 tensor is
    read from its exponent bits (the same values, many times faster than frexp on float64)."""
    if x.dtype == torch.bfloat16:
        # The exponent field alone is the bf16 number 2^(E - 127), the ulp times 2^7; exponent 0 (zero and the
        # subnormals) is raised to 1, whose spacing it shares, and 255 (infinities, NaN) becomes a NaN.
        binade = x.detach().view(torch.int16) & 0x7F80
        binade.clamp_(min=0x0080).masked_fill_(binade == 0x7F80, 0x7FC0)
        return binade.view(torch.bfloat16).to(torch.float64).mul_(2.0**-7)
    x64 = x.detach().to(torch.float64)
    _, exponent = torch.frexp(x64)
    ulp = torch.ldexp(torch.ones_like(x64), exponent - 8)
    ulp = torch.where(x64.abs() < MIN_NORMAL, torch.full_like(x64, SUBNORMAL_ULP), ulp)
    return torch.where(torch.isfinite(x64), ulp, torch.full_like(x64, math.nan))


def hops(x: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    """Each element's change from `before` to `x`, in ulps of its previous value (float64, exact for bf16)."""
    return (x.to(torch.float64) - before.to(torch.float64)).div_(bf16_ulp(before))


def hop_norms(h: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per row, the L1, L-infinity and L2 norms of the hop counts."""
    size = h.abs()
    return {"l1": size.sum(dim=1), "linf": size.amax(dim=1), "l2": torch.linalg.vector_norm(h, dim=1)}


def on_lattice(x: torch.Tensor, before: torch.Tensor) -> bool:
    """Whether every change is a whole number of hops of the finer of the two values' spacings: always so for
    bf16 weights (the count in ulps of the previous value is then an integer, a half-integer one binade down,
    a finer fraction only for a jump across several binades towards zero); not so for float32 weights."""
    if x.dtype == before.dtype == torch.bfloat16:
        # Both values are whole multiples of their own power-of-two spacing, so of the finer one: every count
        # is a whole number (in float64 too: a difference it must round is at least 2^53 spacings, an integer).
        return True
    x64, b64 = x.detach().to(torch.float64), before.detach().to(torch.float64)
    count = (x64 - b64) / torch.minimum(bf16_ulp(x64), bf16_ulp(b64))
    finite = torch.isfinite(count)
    return bool(torch.equal(count[finite], count[finite].round()))


class PhaseTracker:
    """Per row, the last record index at which it was early, mid-life and moving, updated one record at a time;
    -1 while it never was, so a row that never moves is frozen from the first record on."""

    def __init__(self, n_rows: int, early_l2: float, mid_linf: float):
        self.early_l2, self.mid_linf = early_l2, mid_linf
        self.last = {name: torch.full((n_rows,), -1, dtype=torch.int64) for name in ("early", "mid", "move")}

    def update(self, index: int, norms: dict[str, torch.Tensor]) -> None:
        for name, active in (("early", norms["l2"] > self.early_l2), ("mid", norms["linf"] > self.mid_linf),
                             ("move", norms["l1"] > 0)):
            self.last[name][active] = index

    def starts(self) -> dict[str, torch.Tensor]:
        """Per row, the record index at which each phase after "early" begins (monotone: a phase begins after
        the last exit from the one before it); an index past the last record means never within the run."""
        mid = self.last["early"] + 1
        late = torch.maximum(mid, self.last["mid"] + 1)
        frozen = torch.maximum(late, self.last["move"] + 1)
        return {"mid": mid, "late": late, "frozen": frozen}


def phase_fractions(starts: dict[str, torch.Tensor], n_records: int, mask: torch.Tensor) -> dict[str, list[float]]:
    """Per phase, the fraction of the masked rows in it at each record. The starts are monotone (mid <= late <=
    frozen), so the rows in a phase at record i are those whose phase began by i less those whose next one did:
    whole counts, divided once (the mean of the 0/1 indicators, to the bit)."""
    n_rows = int(mask.sum())
    if not n_rows:
        return {name: [math.nan] * n_records for name in PHASES}
    begun = {name: torch.bincount(starts[name][mask].clamp(max=n_records), minlength=n_records + 1)[:n_records].cumsum(0)
             for name in ("mid", "late", "frozen")}
    counts = {"early": n_rows - begun["mid"], "mid": begun["mid"] - begun["late"], "late": begun["late"] - begun["frozen"],
              "frozen": begun["frozen"]}
    return {name: [count / n_rows for count in value.tolist()] for name, value in counts.items()}


def lattice_tables(path: str | Path, settings: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The step table and the row table of one recording (see the module docstring)."""
    settings = settings or {}
    recording = Recording(path)
    dead = dead_rows(recording)
    steps = recording.steps()
    keys = {side: recording.matrix("embeddings", side) for side in sides(recording)}
    previous = {side: recording.record(key, 0) for side, key in keys.items()}
    dim = previous[next(iter(previous))].shape[1]
    early_l2 = settings.get("early_l2") or math.sqrt(dim)
    trackers = {side: PhaseTracker(x.shape[0], early_l2, settings.get("mid_linf", 1.0)) for side, x in previous.items()}
    rows = [{"step": steps[0], "hops_on_lattice": math.nan}]
    for index in range(1, len(steps)):
        row = {"step": steps[index]}
        lattice = True
        for side, key in keys.items():
            x = recording.record(key, index)
            h = hops(x, previous[side])
            lattice &= on_lattice(x, previous[side])
            norms = hop_norms(h)
            trackers[side].update(index, norms)
            for group, mask in group_masks(dead):
                for name, value in norms.items():
                    row[f"{side}_{group}_hops_{name}"] = value[mask].mean().item() if mask.any() else math.nan
            previous[side] = x
        row["hops_on_lattice"] = float(lattice)
        rows.append(row)
    table = pd.DataFrame(rows)
    ids = recording.tensor("recorded_rows").tolist()
    per_row = []
    for side, tracker in trackers.items():
        starts = tracker.starts()
        for group, mask in group_masks(dead):
            for phase, values in phase_fractions(starts, len(steps), mask).items():
                table[f"{side}_{group}_phase_{phase}"] = [math.nan] + values[1:]
        step_of = lambda i: steps[i] if i < len(steps) else math.nan  # noqa: E731
        for position, token in enumerate(ids):
            per_row.append({"matrix": side, "token": token, "dead": bool(dead[position]),
                            **{f"{phase}_from": step_of(int(starts[phase][position])) for phase in ("mid", "late", "frozen")},
                            "last_move": steps[max(int(tracker.last["move"][position]), 0)]})
    return table, pd.DataFrame(per_row)
