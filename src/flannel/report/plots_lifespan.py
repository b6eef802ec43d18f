"""The lifespan figure (x): each dead row's freeze step against what it started with, and its travel against
its lead along the dead cloud's drift, for the reference seed, titled with the rank correlations over every
seed (flannel.analysis.lifespan). A function of `inputs` and `settings` (as in flannel.report.plots_cloud),
named by its key in flannel.report.figures."""

from __future__ import annotations

import pandas as pd

from ..analysis.lifespan import NEEDS_H_MEAN
from ..outputs import read_table
from .findings import FACTOR_WORDS, spread
from .panels import empty_panel, finish, plt, seed_note

WHY_EMPTY = {**{q: "needs h_mean:\nrecording.quantities\nlacks h_mean" for q in NEEDS_H_MEAN},
             "grad_norm_1": "needs grads:\nrecording.quantities\nlacks grads"}


def _trained_w(inputs: dict, settings: dict) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(label, the reference seed's W rows or the first seed's, every seed's W run rows) per tying with runs."""
    found = []
    for tying in ("tied", "untied"):
        seeds, paths = settings["seeds"][tying], inputs.get(f"lifespan_rows_{tying}", [])
        if not paths:
            continue
        shown = seeds.index(settings["seeds"]["reference"]) if settings["seeds"]["reference"] in seeds else 0
        rows = read_table(paths[shown], ("matrix",))
        runs = pd.concat([read_table(path, ("matrix",)) for path in inputs[f"lifespan_{tying}"]], ignore_index=True)
        found.append((f"{tying} W (seed {seeds[shown]})", rows[rows["matrix"] == "W"], runs[runs["matrix"] == "W"]))
    return found


def _freeze_panel(ax, rows: pd.DataFrame, runs: pd.DataFrame, quantity: str) -> None:
    censored = " (no row froze)" if (rows["still_moving"] == 1).all() else ""
    ax.set(title=f"{FACTOR_WORDS[quantity]}\nrho {spread(runs[f'rho_{quantity}'])}{censored}",
           xlabel=FACTOR_WORDS[quantity], ylabel="freeze step (step after the last move)")
    if rows[quantity].isna().all():
        empty_panel(ax, WHY_EMPTY.get(quantity, "no values"), among_drawn=True)
        return
    still = rows["still_moving"] == 1
    ax.scatter(rows.loc[~still, quantity], rows.loc[~still, "lifespan"], s=8, color="C0", alpha=0.6,
               label=f"froze within the run ({int((~still).sum())})")
    ax.scatter(rows.loc[still, quantity], rows.loc[still, "lifespan"], s=10, facecolors="none", edgecolors="0.5",
               label=f"still moving at the end, ranked last ({int(still.sum())})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")


def _travel_panel(ax, rows: pd.DataFrame, runs: pd.DataFrame) -> None:
    ax.scatter(rows["lead"], rows["travel"], s=8, color="C3", alpha=0.6)
    ax.set(title=f"travel against lead:\nrho {spread(runs['rho_travel_lead'])}\nspread along the drift, last/t=0:\n"
                 f"{spread(runs['spread_along_ratio'])}\nacross: {spread(runs['spread_across_ratio'])}",
           xlabel="lead along the drift: cos(w_i(0) - c(0), c(T) - c(0))", ylabel="travel |w_i(T) - w_i(0)|")
    ax.grid(alpha=0.3)


def _pull_panel(ax, rows: pd.DataFrame, runs: pd.DataFrame) -> None:
    for name, color, what in (("step_pull", "C3", "step"), ("grad_pull", "C0", "gradient's own part")):
        values = rows[name].dropna()
        if values.empty:
            empty_panel(ax, f"{what}: not recorded", among_drawn=True)
            continue
        ax.hist(values, bins=30, histtype="step", color=color,
                label=f"{what}\n{spread(runs[name])}")
    ax.axvline(0, color="0.4", linewidth=0.8)
    ax.set(title="pull towards the centroid per dead row\n(mean over steps; > 0: inwards)",
           xlabel="cos(pull, offset from the centroid)", ylabel="number of dead rows")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", title="median over seeds", title_fontsize="x-small")


def y_lifespan(inputs: dict, settings: dict):
    """y. Per trained W, each dead row's freeze step against each measured start, its travel against its lead
    along the drift, and how its step and its gradient pull it towards the centroid."""
    entries = _trained_w(inputs, settings)
    columns = len(FACTOR_WORDS) + 2
    fig, axes = plt.subplots(len(entries), columns, figsize=(4.2 * columns, 5.2 * len(entries)), squeeze=False)
    for row, (label, rows, runs) in enumerate(entries):
        for column, quantity in enumerate(FACTOR_WORDS):
            _freeze_panel(axes[row][column], rows, runs, quantity)
        _travel_panel(axes[row][-2], rows, runs)
        _pull_panel(axes[row][-1], rows, runs)
        axes[row][0].annotate(label, xy=(0, 1.45), xycoords="axes fraction", fontweight="bold")
    return finish(fig, f"y. What sets a dead row's lifespan, and does the back of the cloud catch up? ({seed_note(settings)})")
