"""The film of one run: every dead row and a fixed sample of the live rows of W (untied: E beside W), projected
on the run's fixed principal basis (flannel.report.basis), one frame per chosen record; rows frozen for good
(the lattice rows table's freeze step) drawn hollow, moving rows filled; the step, the LR and the fraction of
dead rows frozen in the corner. Encoded by ffmpeg through matplotlib's writer with one thread, bitexact flags
and no metadata, so the same inputs give the same bytes. The report shows it in a page of its own that embeds
it in a <video> element: the report's viewer plays no bare video file (it offers one for download)."""

from __future__ import annotations

import base64
import html
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import animation

from ..analysis.rows import dead_rows, scheduled_lr, sides
from ..errors import ToolError
from ..outputs import atomic_output, read_table
from ..recording import Recording
from .basis import fixed_basis
from .panels import GROUP_COLORS, plt

ENCODER = "ffmpeg"
# Output options after matplotlib's own: one encoder thread and bitexact muxing (no encoder version string, no
# creation time, no metadata carried over) make the bytes a function of the frames alone.
BITEXACT = ["-pix_fmt", "yuv420p", "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
            "-map_metadata", "-1", "-f", "mp4"]


def frame_indices(n_records: int, max_frames: int) -> list[int]:
    """The records the film shows: every record if they fit in `max_frames`; otherwise exactly `max_frames` of
    them, the first half spaced logarithmically (so the first records, where the cloud moves most, all appear)
    and the rest spread evenly over the records not yet chosen; the first and last record always among them."""
    if n_records <= max_frames:
        return list(range(n_records))
    early = {0, n_records - 1, *np.geomspace(1, n_records - 1, max_frames // 2 - 1).round().astype(int).tolist()}
    rest = np.array(sorted(set(range(n_records)) - early))
    even = rest[np.linspace(0, rest.size - 1, max_frames - len(early)).round().astype(int)]
    return sorted(early | set(even.tolist()))


def shown_rows(dead: np.ndarray, live_sample: int) -> np.ndarray:
    """The recorded rows the film draws: every dead row and at most `live_sample` live rows, drawn by a fixed
    generator (the same rows in every build)."""
    live = np.flatnonzero(~dead)
    if live.size > live_sample:
        live = np.sort(np.random.default_rng(0).choice(live, live_sample, replace=False))
    return np.sort(np.concatenate([np.flatnonzero(dead), live]))


def require_encoder(output) -> None:
    """Stop with one line naming what to install when ffmpeg is missing, rather than let matplotlib fall back
    to another writer (a GIF, or frames) that would pass for the film."""
    if shutil.which(ENCODER) is None:
        raise ToolError(f"{output}: the film needs ffmpeg, which is not on PATH: install it "
                        f"(Debian/Ubuntu: apt-get install ffmpeg; conda: conda install -c conda-forge ffmpeg)")


def frozen_from(rows: pd.DataFrame, side: str, tokens: np.ndarray) -> np.ndarray:
    """The step from which each recorded row never moves again (inf: it still moves at the last record)."""
    mine = rows[rows["matrix"] == side].set_index("token")["frozen_from"]
    return mine.reindex(tokens).to_numpy(dtype=float, na_value=math.inf)


class Panel:
    """One matrix's axes in the film: four scatters (dead/live x moving/frozen) and the corner text."""

    def __init__(self, ax, label: str, coordinates: np.ndarray, dead: np.ndarray, frozen: np.ndarray):
        self.coordinates, self.dead, self.frozen = coordinates, dead, frozen
        self.ax, self.label, self.dots = ax, label, {}
        for group in ("live", "dead"):
            color = GROUP_COLORS[group]
            self.dots[group, "moving"] = ax.scatter([], [], s=6, color=color, linewidths=0, label=f"{group}, moving")
            self.dots[group, "frozen"] = ax.scatter([], [], s=8, facecolors="none", edgecolors=color, linewidths=0.5,
                                                    label=f"{group}, frozen for good")
        low, high = coordinates.min(axis=(0, 1)), coordinates.max(axis=(0, 1))
        margin = 0.04 * (high - low).max()
        ax.set(xlim=(low[0] - margin, high[0] + margin), ylim=(low[1] - margin, high[1] + margin))
        ax.legend(loc="lower right", fontsize="x-small", markerscale=2)
        self.text = ax.text(0.02, 0.98, "", transform=ax.transAxes, va="top", family="monospace", fontsize="small")

    def show(self, frame: int, step: int, lr: float | None) -> None:
        still = self.frozen <= step
        for group, in_group in (("dead", self.dead), ("live", ~self.dead)):
            for state, mask in (("moving", ~still), ("frozen", still)):
                self.dots[group, state].set_offsets(self.coordinates[frame][in_group & mask])
        frozen = f"{still[self.dead].mean():.0%}" if self.dead.any() else "n/a (no dead rows)"
        rate = "initial state" if lr is None else f"{lr:.2e}"
        self.text.set_text(f"{self.label}  step {step}\nLR {rate}\ndead rows frozen {frozen}")


def draw_film(run: str | Path, rows: str | Path, output: str | Path, settings: dict) -> int:
    """Write the film of recording `run` (its lattice rows table `rows`) to `output`; returns the frame count.
    `settings`: basis, max_frames, fps, size ([width, height] pixels), dpi, live_sample."""
    require_encoder(output)
    recording = Recording(run)
    table = read_table(rows, ("matrix", "token", "frozen_from"))
    dead = dead_rows(recording).numpy()
    shown = shown_rows(dead, settings["live_sample"])
    tokens = recording.tensor("recorded_rows").numpy()[shown]
    steps, frames = recording.steps(), frame_indices(recording.n_records, settings["max_frames"])
    width, height = settings["size"]
    fig, axes = plt.subplots(1, len(sides(recording)), figsize=(width / settings["dpi"], height / settings["dpi"]),
                             squeeze=False)
    panels = []
    for ax, side in zip(axes[0], sides(recording)):
        basis = fixed_basis(recording, side, dead, 2, settings["basis"])
        key = recording.matrix("embeddings", side)
        coordinates = np.stack([basis.project(recording.record(key, index))[shown] for index in frames])
        label = ("tied " if recording.tied else "untied ") + side
        panels.append(Panel(ax, label, coordinates, dead[shown], frozen_from(table, side, tokens)))
        ax.set(xlabel=f"PC1 ({basis.explained[0]:.0%} of var.)", ylabel=f"PC2 ({basis.explained[1]:.0%})")
    fig.tight_layout()
    writer = animation.FFMpegWriter(fps=settings["fps"], codec="h264", extra_args=BITEXACT)
    training = recording.config["training"]
    try:
        with atomic_output(output) as partial, writer.saving(fig, str(partial), settings["dpi"]):
            for frame, index in enumerate(frames):
                step = steps[index]
                for panel in panels:
                    panel.show(frame, step, scheduled_lr(step, training) if step > 0 else None)
                writer.grab_frame()
    finally:
        plt.close(fig)
    return len(frames)


def film_page(film: str | Path, title: str) -> str:
    """A self-contained HTML page that plays the film (embedded as a data URI), looping, with its controls."""
    data = base64.b64encode(Path(film).read_bytes()).decode("ascii")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
            f'<body style="margin:0"><video id="film" controls autoplay muted loop playsinline style="max-width:100%" '
            f'src="data:video/mp4;base64,{data}"></video></body></html>\n')
