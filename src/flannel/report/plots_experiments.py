"""The figures across experiments, drawn from the summary across experiments (flannel.report.experiments)
into results/experiments/figures/."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..outputs import read_table
from .experiments import numeric, swept_keys
from .panels import STEP, band, finish, plt


def experiments_dead_cloud(summary: pd.DataFrame, table_paths: list[str], settings: dict):
    """The dead cloud of W in every experiment on shared axes: radius from the centroid and from the origin."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    runs = summary[["experiment", "tying"]].assign(path=table_paths)
    for index, (experiment, group) in enumerate(runs.groupby("experiment", sort=False)):
        for tying, linestyle in (("tied", "-"), ("untied", "--")):
            found = [read_table(path) for path in group.loc[group["tying"] == tying, "path"]]
            for ax, kind in zip(axes, ("centroid", "origin")):
                if found:
                    band(ax, found, f"W_dead_radius_{kind}_mean", label=f"{experiment} {tying} W",
                         color=f"C{index % 10}", linestyle=linestyle)
    for ax, kind in zip(axes, ("the dead centroid", "the origin")):
        ax.set(xlabel=STEP, ylabel=f"mean distance from {kind}", title=f"dead rows of W: radius from {kind}")
    axes[1].legend(fontsize=7)
    return finish(fig, "The dead cloud in every experiment (W; tied solid, untied dashed)")


def experiments_final_state(summary: pd.DataFrame, settings: dict):
    """The dead cloud's radius from the origin at the last step against each value the experiments sweep."""
    keys = swept_keys(summary) or ["experiment"]
    columns = min(len(keys), 3)
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(4.2 * columns, 7.0), 3.4 * rows), squeeze=False, sharey=True)
    for ax, key in zip(axes.flat, keys):
        values = summary[key].tolist()
        categories = list(dict.fromkeys(map(str, values)))
        x = np.asarray(values if numeric(values) else [categories.index(str(v)) for v in values], dtype=float)
        for tying, marker in (("tied", "o"), ("untied", "s")):
            chosen = (summary["tying"] == tying).to_numpy()
            if chosen.any():
                ax.scatter(x[chosen], summary.loc[chosen, "W_dead_radius_origin_last"], marker=marker,
                           label=f"{tying} W", alpha=0.75)
        if not numeric(values):
            ax.set_xticks(range(len(categories)), categories, rotation=20, ha="right", fontsize=8)
        ax.set_xlabel(key)
    for ax in axes[:, 0]:
        ax.set_ylabel("dead radius from the origin,\nlast step")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    return finish(fig, "Final dead-cloud radius (from the origin) against each swept value (one point per run)")
