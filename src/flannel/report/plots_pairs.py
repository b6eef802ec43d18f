"""The figures that compare runs (d, f, n, o): untied E against W, the tied/untied decomposition, tied vs
untied W row by row, and the sweep's runs pair by pair. Each is a function of `inputs` and `settings` (as in
flannel.report.plots_cloud), named by its key in flannel.report.figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from ..analysis.distances import read_rows
from ..analysis.rows import GROUPS
from ..outputs import read_table
from .figures import shown_seed
from .panels import (COLORS, GROUP_COLORS, GROUP_STYLE, STEP, band, empty_panel, finish, group_bands, linear_below, plt,
                     run_tables)


def d_e_minus_w(inputs: dict, settings: dict):
    """d. How far the untied E and W drift apart, dead and live rows."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    group_bands(ax, run_tables(inputs, "untied"), "E_minus_W_{group}_fro")
    ax.set(xlabel=STEP, ylabel="||E - W||_F over the group's rows (weight units)")
    ax.grid(alpha=0.3)
    ax.legend()
    return finish(fig, "d. Untied runs: distance between embedding E and unembedding W "
                       f"(seeds {settings['seeds']['untied']})")


def f_decomposition(inputs: dict, settings: dict):
    """f. Residual of the linear decomposition dW_tied = dW_untied + dE_untied, per row group."""
    paths = inputs.get("decomposition", [])
    found = [read_table(path, ("step", "all_residual_sum")) for path in paths]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    models = (("sum", "dW_untied + dE_untied", "k", "-"), ("W", "dW_untied alone", COLORS["untied W"], "--"),
              ("E", "dE_untied alone", COLORS["untied E"], ":"))
    for ax, group in zip(axes, GROUPS + ("all",)):
        for model, label, color, style in models:
            band(ax, found, f"{group}_residual_{model}", label=label, color=color, linestyle=style)
        ax.axhline(1.0, color="k", linewidth=0.7, alpha=0.5)
        ax.set(xlabel=STEP, ylabel="||dW_tied - model||_F / ||dW_tied||_F (ratio)", title=f"{group} rows")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    seeds = settings["seeds"]["paired"]
    return finish(fig, f"f. Does W1 = W2 + E2 hold? Residual of the decomposition, displacements from t=0 "
                       f"(seeds {seeds})")


def sorted_by_freeze(rows: dict, lattice_rows: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """The dead rows' distances [rows, steps] ordered by the tied W row's freeze step (never frozen: last),
    and those freeze steps in the same order (NaN where unknown)."""
    distances, tokens = rows["distances"].numpy(), rows["tokens"].numpy()
    frozen = np.full(tokens.size, np.nan)
    if lattice_rows is not None:
        w = lattice_rows[lattice_rows["matrix"] == "W"].set_index("token")["frozen_from"]
        frozen = w.reindex(tokens).to_numpy(dtype=float)
    order = np.argsort(np.nan_to_num(frozen, nan=np.inf), kind="stable")
    return distances[order], frozen[order]


def distance_heatmap(fig, ax, rows: dict, lattice_rows: pd.DataFrame | None, seed: int) -> None:
    """Each dead row's tied-vs-untied distance per step, rows sorted by the tied row's freeze step (line)."""
    distances, frozen = sorted_by_freeze(rows, lattice_rows)
    steps = rows["steps"].numpy()
    positive = distances[distances > 0]
    norm = LogNorm(positive.min(), positive.max()) if positive.size else None
    image = ax.imshow(np.where(distances > 0, distances, np.nan), aspect="auto", interpolation="nearest", norm=norm,
                      extent=(steps[0] - 0.5, steps[-1] + 0.5, distances.shape[0], 0), cmap="viridis")
    fig.colorbar(image, ax=ax, label="|W_tied,i - W_untied,i| (L2, weight units; 0 blank)")
    never = "" if np.isfinite(frozen).any() else " (none freezes within the run)"
    ax.plot(frozen, np.arange(frozen.size) + 0.5, color="w", linewidth=1, label=f"the tied row's freeze step{never}")
    ax.set(xlabel=STEP, ylabel="dead rows, by their freeze step in the tied run",
           title=f"seed {seed}: each dead row's distance, tied vs untied W")
    ax.legend(fontsize="small", loc="lower right")


def distance_lines(ax, found: list[pd.DataFrame], paired: list[int]) -> None:
    """Per step, the mean, median and max tied-vs-untied distance over dead and over live rows."""
    for group in GROUPS:
        for statistic, width in (("mean", 1.8), ("median", 1.0), ("max", 0.8)):
            band(ax, found, f"{group}_{statistic}", label=f"{group} rows, {statistic}", color=GROUP_COLORS[group],
                 linestyle={"mean": "-", "median": "--", "max": ":"}[statistic], linewidth=width)
    values = np.concatenate([t.drop(columns="step").to_numpy(dtype=float).ravel() for t in found])
    ax.set(xlabel=STEP, ylabel="|W_tied,i - W_untied,i| over the group's rows (L2)", title=f"per step, seeds {paired}")
    ax.set_yscale("symlog", linthresh=linear_below(values[np.isfinite(values)]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def n_tied_untied_distance(inputs: dict, settings: dict):
    """n. |W_tied,i - W_untied,i| per dead row and step for one seed, rows sorted by their freeze step, and per
    step the mean, median and max over dead and live rows for every paired seed."""
    fig, (heat, lines) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    found = [read_table(path, ("step", "dead_mean", "live_mean")) for path in inputs.get("distances", [])]
    rows = [read_rows(path) for path in inputs.get("distance_rows", [])]
    lattice = [pd.read_csv(path, sep="\t") for path in inputs.get("distance_lattice", [])]
    if not rows or rows[0]["distances"].numel() == 0:
        empty_panel(heat, "no seed trained both tied and untied" if not rows else "no dead rows")
    else:
        seed = shown_seed(settings["seeds"]["reference"], settings["seeds"]["paired"])
        distance_heatmap(fig, heat, rows[0], lattice[0] if lattice else None, seed)
    if found:
        distance_lines(lines, found, settings["seeds"]["paired"])
    else:
        empty_panel(lines, "no seed trained both tied and untied")
    return finish(fig, "n. Tied vs untied W, row by row: the same seed's two runs apart")


def o_sweep_distance(inputs: dict, settings: dict):
    """o. Per step, the mean row distance between every pair of the sweep's runs, dead and live rows apart."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    required = ("step", "seed_a", "seed_b", "dead_mean", "live_mean")
    found = [read_table(path, required) for path in inputs.get("sweep_distance", [])]
    table = found[0] if found else pd.DataFrame()
    if table.empty:
        empty_panel(ax, "fewer than two tied seeds: no pairs to compare")
        return finish(fig, "o. Distances between the sweep's runs")
    pairs = [pair for _, pair in table.groupby(["seed_a", "seed_b"], sort=True)]
    steps = pairs[0]["step"].to_numpy()
    which = (f" (thin: each of {len(pairs)} pairs; thick: their median)" if len(pairs) > 1
             else f" (seeds {pairs[0]['seed_a'].iloc[0]}, {pairs[0]['seed_b'].iloc[0]})")
    for group in GROUPS:
        values = np.stack([pair[f"{group}_mean"].to_numpy(dtype=float) for pair in pairs])
        if np.isnan(values).all():
            continue
        style = {"color": GROUP_COLORS[group], "linestyle": GROUP_STYLE[group]}
        for line in values:
            ax.plot(steps, line, linewidth=0.6, alpha=0.5, **style)
        ax.plot(steps, np.median(values, axis=0), linewidth=2, **style,
                label=f"{group} rows: mean row distance{which}")
    ax.set(xlabel=STEP, ylabel="mean over rows of |W_a,i - W_b,i| (L2, weight units)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return finish(fig, f"o. Distances between the sweep's runs, pair by pair (tied seeds {settings['seeds']['tied']})")
