"""The notebooks' own recordings as a subject of the sanity checks: reading the 1.20a (Flannel 1) and 1.20c
(Flannel 3) layouts into lazy series, and running the checks of flannel.sanity.checks on them.

1.20a: `embeddings` [T, V, D] and `n_dead`. 1.20c: `embeddings` [R, T, n_dead, D] (dead rows only),
`dead_indices`, `n_dead`, `n_runs`, `base_seed`. The notebooks recorded every step, so record i is step i.
Their layouts hold no full-state digest and no replica, so check 3 compares only the dead rows at t=0 (all
that 1.22e could see) and check 7 does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import SanityError
from ..outputs import display
from ..recording import Recording
from .checks import (check_dead_indices, check_initial_state, check_manifest, check_radius, check_record_counts,
                     check_step_differences, check_sweep_distinct)
from .series import Series, open_recording

LAYOUTS = {"1.20a": (("embeddings", "n_dead"), 3), "1.20c": (("embeddings", "dead_indices", "n_dead", "n_runs", "base_seed"), 4)}


@dataclass
class Legacy:
    """One notebook file of a known layout."""

    label: str
    recording: Recording
    layout: str  # "1.20a" or "1.20c"
    shape: list[int]

    @property
    def n_records(self) -> int:
        return self.shape[0] if self.layout == "1.20a" else self.shape[1]

    @property
    def n_runs(self) -> int:
        return 1 if self.layout == "1.20a" else self.shape[0]

    def scalar(self, name: str):
        return self.recording.scalar(name)

    def series(self, run: int = 0, n_records: int | None = None) -> Series:
        """The embeddings of the file (1.20a) or of run `run` (1.20c). `n_records` keeps only the first records
        (1.22e trimmed 1.20c that way)."""
        steps = tuple(range(n_records or self.n_records))
        init_scale = self.scalar("init_scale") if "init_scale" in self.recording.keys else None
        n_dead = self.scalar("n_dead")
        if self.layout == "1.20a":
            return Series(self.label, self.label, self.recording, "embeddings", None, steps, torch.arange(self.shape[1]),
                          init_scale, None, n_dead, None)
        dead = self.recording.tensor("dead_indices").to(torch.int64)
        seed = self.scalar("base_seed") + run
        return Series(f"{self.label} run {run} (seed {seed})", self.label, self.recording, "embeddings", run, steps, dead,
                      init_scale, dead, n_dead, None)


def open_legacy(path, layout: str, root=".") -> Legacy:
    """Open a notebook file and insist on its layout; a wrong file is a one-line error naming the key."""
    label = display(path, root)
    recording = open_recording(path, root)
    required, dims = LAYOUTS[layout]
    for key in required:
        if key not in recording.keys:
            raise SanityError(f"{label}: not the {layout} layout, no tensor '{key}'")
    shape = recording.shape("embeddings")
    if len(shape) != dims:
        raise SanityError(f"{label}: not the {layout} layout, 'embeddings' has shape {shape} ({dims} dimensions expected)")
    legacy = Legacy(label, recording, layout, shape)
    if layout == "1.20c" and legacy.scalar("n_runs") != shape[0]:
        raise SanityError(f"{label}: 'n_runs' is {legacy.scalar('n_runs')} but 'embeddings' holds {shape[0]} runs")
    return legacy


def legacy_checks(settings: dict, flannel1, flannel3, canonical: torch.Tensor, root=".") -> dict:
    """Checks 1-6 and 8 on the notebooks' files; `settings` as for flannel.sanity.report.sanity_report."""
    f1 = open_legacy(flannel1, "1.20a", root) if flannel1 else None
    f3 = open_legacy(flannel3, "1.20c", root) if flannel3 else None
    files = [f for f in (f1, f3) if f]
    # 1.22e compared the first records both files hold; the 1.20a file is the reference for the count.
    common = min(f.n_records for f in files)
    sweep = {f3.scalar("base_seed") + r: f3.series(r, common) for r in range(f3.n_runs)} if f3 else {}
    reference = f1.series(n_records=common) if f1 else None
    entries = {"dead_indices": check_dead_indices([f.series() for f in files], canonical)}
    if f1 and f3:
        extra = f3.n_records - f1.n_records
        note = f"; the comparisons use the first {common} (as 1.22e did)" if extra else ""
        entries["record_counts"] = check_record_counts([f1.series(), f3.series()], list(range(f1.n_records)),
                                                       f"as many as {f1.label}, per run", note)
        seed = settings["reference_seed"]
        twin = sweep.get(seed, sweep[min(sweep)])
        entries["initial_state"] = check_initial_state({f"{reference.label} vs {twin.label}": ([reference], [twin])}, canonical)
        entries["step_differences"] = check_step_differences({f"{reference.label} vs {twin.label}": (reference, twin)},
                                                             settings["compare_steps"], canonical)
    else:
        entries["record_counts"] = check_record_counts([files[0].series()], None, "no other legacy file to compare the count with")
    if sweep:
        entries["sweep_distinct"] = check_sweep_distinct(sweep, canonical)
    entries["radius"] = check_radius(([reference] if reference else []) + list(sweep.values()), canonical,
                                     settings["init_scale"])
    entries["manifest"] = check_manifest([p for p in (flannel1, flannel3) if p], root)
    return entries
