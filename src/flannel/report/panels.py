"""What every figure is drawn with: the analysis tables it reads, seed bands, empty panels, titles, the card
that stands for a figure an experiment cannot draw, and byte-stable PNGs.

Seed bands: the line is the median over the seeds, the shaded band their min-max; with one seed, the line.
"""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
# The figure modules take pyplot from here: imported after the backend is chosen.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..analysis.rows import GROUPS  # noqa: E402
from ..errors import AnalysisError  # noqa: E402
from ..outputs import atomic_output, read_table  # noqa: E402

COLORS = {"tied W": "C0", "untied W": "C1", "untied E": "C2"}
GROUP_STYLE = {"dead": "-", "live": "--"}
GROUP_COLORS = {"dead": "C3", "live": "0.45"}
STEP = "optimizer step"
NORM = "L2 norm (weight units)"
log = logging.getLogger("flannel.report.plots")


def run_tables(inputs: dict, tying: str, required=("step",)) -> list[pd.DataFrame]:
    """The analysis tables of one tying, in seed order; every table must share the first one's steps."""
    paths = inputs.get(tying, [])
    loaded = [read_table(path, required) for path in paths]
    for path, table in zip(paths[1:], loaded[1:]):
        if not np.array_equal(table["step"].to_numpy(), loaded[0]["step"].to_numpy()):
            raise AnalysisError(f"{path}: recorded steps differ from those of {paths[0]}; rerun its training")
    return loaded


def matrices(inputs: dict, kind: str = "") -> list[tuple[str, list[pd.DataFrame], str]]:
    """(label, tables, column prefix) for tied W, untied W and untied E, skipping a tying with no run. `kind`
    picks the tables: "" the analysis tables, "adam_" the Adam accounting, "lattice_" the lattice steps."""
    tied, untied = run_tables(inputs, f"{kind}tied"), run_tables(inputs, f"{kind}untied")
    entries = [("tied W", tied, "W"), ("untied W", untied, "W"), ("untied E", untied, "E")]
    return [(label, found, prefix) for label, found, prefix in entries if found]


def band(ax, found: list[pd.DataFrame], column: str, *, label: str, color, linestyle="-", linewidth=1.6) -> bool:
    """Median line and min-max band over the seeds' tables. A column with no value in any table (the dead rows'
    when no token is dead) is not drawn; its legend entry and the log say so. Returns whether it was drawn."""
    steps = found[0]["step"].to_numpy()
    values = np.stack([table[column].to_numpy(dtype=float) for table in found])
    if np.isnan(values).all():
        not_drawn(ax, f"{label}: no values", column, color=color, linestyle=linestyle)
        return False
    seeds = f" (median, {len(found)} seeds)" if len(found) > 1 else ""
    ax.plot(steps, np.median(values, axis=0), color=color, linestyle=linestyle, linewidth=linewidth,
            label=label + seeds)
    if len(found) > 1:
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.18, linewidth=0)
    return True


def not_drawn(ax, what: str, source: str, **style) -> None:
    """A legend entry (an empty line) and a log line for a series the inputs cannot draw."""
    ax.plot([], [], label=f"{what}, not drawn", **style)
    log.info("not drawn: %s (%s)", what, source)


def empty_panel(ax, why: str, *, among_drawn: bool = False) -> None:
    """Say on an empty panel why it is empty. `among_drawn`: a panel of a grid whose other panels draw the same
    series keeps its axes and says "nothing to draw" in grey; otherwise the panel loses its ticks."""
    if among_drawn:
        ax.text(0.5, 0.5, f"nothing to draw:\n{why}", transform=ax.transAxes, ha="center", va="center", color="0.35")
        return
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set(xticks=[], yticks=[])


def group_bands(ax, found: list[pd.DataFrame], column: str) -> None:
    """The dead and the live rows' band of `column` (with "{group}" in its name), in the groups' styles."""
    for group in GROUPS:
        band(ax, found, column.format(group=group), label=f"{group} rows", color=GROUP_COLORS[group],
             linestyle=GROUP_STYLE[group])


def finish(fig, title: str):
    """Title and layout; a title too long for the figure puts its last parenthesis (the seeds) on a line of its own."""
    if len(title) > fig.get_figwidth() * 11 and " (" in title:
        head, _, tail = title.rpartition(" (")
        title = f"{head}\n({tail}"
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def seed_note(settings: dict) -> str:
    return f"tied seeds {settings['seeds']['tied']}, untied seeds {settings['seeds']['untied']}"


def reference_views(inputs: dict) -> list[tuple[str, str, str]]:
    """(label, recording, side) for the reference runs' matrices."""
    views = [("tied W", path, "W") for path in inputs.get("tied_run", [])]
    for path in inputs.get("untied_run", []):
        views += [("untied W", path, "W"), ("untied E", path, "E")]
    return views


def linear_below(values: np.ndarray) -> float:
    """The power of ten just under the smallest nonzero value: the symlog axis is linear below it (so exact
    zeros show) and logarithmic above, with no empty decades."""
    positive = values[values > 0]
    return 10.0 ** np.floor(np.log10(positive.min())) if positive.size else 1.0


def card(name: str, reason: str):
    """The card that stands for a figure an experiment cannot draw."""
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{name}: not drawn\n{reason}", ha="center", va="center", fontsize=11, wrap=True)
    return fig


def save(fig, output, dpi: int) -> None:
    """Write `fig` as a PNG with no timestamp or software tag (same inputs, same bytes), then close it."""
    try:
        with atomic_output(output) as partial:
            fig.savefig(partial, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
