"""The dead-cloud geometry figures (a, e, g, k, m): the cloud's radii and spread, each row's displacement,
the PCA of W, the radial motion of the dead rows and the epochs of the dead cloud. Each is a function of
`inputs` (name -> list of paths, as the figure rule lists them) and `settings` (the seeds and the figures config
section), named by its key in flannel.report.figures, returning a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import per_step
from ..analysis.epochs import RADII
from ..outputs import read_table
from .panels import (COLORS, GROUP_COLORS, GROUP_STYLE, NORM, STEP, band, empty_panel, finish, linear_below, matrices,
                     not_drawn, plt, reference_views, seed_note)


def a_dead_cloud(inputs: dict, settings: dict):
    """a. The dead cloud's two radii, named (from its centroid and from the origin), its centroid norm and its
    per-dimension standard deviation."""
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
    panels = ((axes[0], "radius_centroid_mean", "radius from the centroid:\nmean distance from the dead centroid (L2)",
               "linear"),
              (axes[1], "radius_origin_mean", "radius from the origin:\nmean dead-row norm (L2)", "linear"),
              (axes[2], "centroid_norm", "norm of the dead centroid (L2)", "log"),
              (axes[3], "sd_per_dim", "per-dimension standard deviation\nsqrt(mean_d var_d)", "linear"))
    entries = matrices(inputs)
    for ax, metric, ylabel, scale in panels:
        ax.set(xlabel=STEP, ylabel=ylabel)
        drawn = [band(ax, found, f"{prefix}_dead_{metric}", label=label, color=COLORS[label])
                 for label, found, prefix in entries]
        if any(drawn):
            ax.set_yscale(scale)  # a log axis needs a positive value to scale
        else:
            empty_panel(ax, "no dead rows in these runs", among_drawn=True)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return finish(fig, f"a. Dead-token cloud: both radii, centroid, spread ({seed_note(settings)})")


def k_radial(inputs: dict, settings: dict):
    """k. Per step, the fractions of dead rows that moved outward, inward or not at all radially, about the
    origin and about the dead centroid."""
    entries = matrices(inputs)
    fig, axes = plt.subplots(2, len(entries), figsize=(4.8 * len(entries), 7.4), sharex=True, sharey=True,
                             squeeze=False)
    styles = (("outward", "C3", "-"), ("inward", "C0", "-"), ("no_radial", "0.4", ":"))
    for column, (label, found, prefix) in enumerate(entries):
        for row, centre in enumerate(("origin", "centroid")):
            ax = axes[row][column]
            about = "the origin" if centre == "origin" else "the dead centroid"
            ax.set(title=f"{label}: dead rows, about {about}", ylim=(-0.03, 1.03),
                   ylabel=f"fraction of dead rows\n(radial motion about {about})", xlabel=STEP if row else "")
            drawn = [band(ax, found, f"{prefix}_dead_{centre}_{kind}", label=kind.replace("_", " "), color=color,
                          linestyle=style) for kind, color, style in styles]
            if not any(drawn):
                empty_panel(ax, "no dead rows in these runs", among_drawn=True)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    return finish(fig, f"k. Radial motion of the dead rows, step by step ({seed_note(settings)})")


def ecdf(ax, values: np.ndarray, **style) -> None:
    ordered = np.sort(values)
    ax.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", **style)


def e_displacements(inputs: dict, settings: dict):
    """e. Cumulative distributions of each row's displacement from t=0 at the last step, dead vs live."""
    views = [(label, *per_step.last_displacements(path, side)) for label, path, side in reference_views(inputs)]
    fig, axes = plt.subplots(1, len(views), figsize=(4.6 * len(views), 4.2), sharex=True, sharey=True, squeeze=False)
    for ax, (label, moved, dead) in zip(axes[0], views):
        for group, mask in (("dead", dead), ("live", ~dead)):
            style = {"color": GROUP_COLORS[group], "linestyle": GROUP_STYLE[group]}
            if mask.any():
                frozen = int((moved[mask] == 0).sum())
                ecdf(ax, moved[mask], label=f"{group} rows (n={int(mask.sum())}, {frozen} exactly 0)", **style)
            else:
                not_drawn(ax, f"{group} rows: none (n=0)", f"{label} displacements", **style)
        ax.set(title=label, xlabel=f"displacement from t=0 at last step, {NORM}",
               ylabel="fraction of rows with displacement <= x")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    axes[0][0].set_xscale("symlog", linthresh=linear_below(np.concatenate([moved for _, moved, _ in views])))
    return finish(fig, f"e. Per-row displacement at the last step (seed {settings['seeds']['reference']})")


def g_pca(inputs: dict, settings: dict):
    """g. The rows projected on the top two principal directions of the last step, at a few steps."""
    views = [view for view in reference_views(inputs) if view[2] == "W"]
    projections = [per_step.pca_projections(path, side, settings["figures"]["pca_steps"]) for _, path, side in views]
    n_steps = max(len(coordinates) for coordinates, _, _ in projections)
    fig, axes = plt.subplots(len(views), n_steps, figsize=(3.3 * n_steps, 3.3 * len(views)), squeeze=False)
    for row, ((label, _, _), (coordinates, dead, explained)) in enumerate(zip(views, projections)):
        for ax, (step, xy) in zip(axes[row], coordinates.items()):
            for group, mask, alpha in (("live", ~dead, 0.5), ("dead", dead, 0.7)):
                if mask.any():
                    ax.scatter(*xy[mask].T, s=3, color=GROUP_COLORS[group], alpha=alpha, label=f"{group} rows",
                               linewidths=0)
                else:
                    not_drawn(ax, f"{group} rows: none (n=0)", f"{label} PCA, step {step}", color=GROUP_COLORS[group])
            ax.set(title=f"{label}, step {step}", xlabel=f"PC1 ({explained[0]:.0%} of var.), weight units",
                   ylabel=f"PC2 ({explained[1]:.0%}), weight units")
            ax.set_aspect("equal", adjustable="box")
        axes[row][0].legend(markerscale=4, fontsize="small")
        _share_limits(axes[row][: len(coordinates)])
        for ax in axes[row][len(coordinates):]:
            ax.axis("off")
    return finish(fig, f"g. PCA of W (basis: last step's top two directions), seed {settings['seeds']['reference']}")


def _share_limits(axes) -> None:
    """One scale across a row's panels, so that the cloud's growth reads as growth."""
    limits = np.array([[*ax.get_xlim(), *ax.get_ylim()] for ax in axes])
    low, high = min(limits[:, 0].min(), limits[:, 2].min()), max(limits[:, 1].max(), limits[:, 3].max())
    for ax in axes:
        ax.set(xlim=(low, high), ylim=(low, high))


EPOCH_COLORS = {"centroid": "C4", "radius_centroid": "C0", "radius_origin": "C1"}


EPOCH_NAMES = {"centroid": "dead centroid", "radius_centroid": "radius from the centroid",
               "radius_origin": "radius from the origin"}


def mark_epoch(ax, epochs: pd.DataFrame, label: str, column: str, name: str, color, style=":") -> None:
    """A vertical line at the median over the matrix's runs of one epoch, labelled with its range."""
    values = epochs.loc[epochs["matrix"] == label, column].dropna()
    if values.empty:
        ax.plot([], [], color=color, linestyle=style, label=f"{name}: none")
        return
    span = f", range {values.min():g}-{values.max():g}" if values.min() != values.max() else ""
    ax.axvline(values.median(), color=color, linestyle=style, linewidth=1.2,
               label=f"{name}: step {values.median():g}{span}")


def step_axis(ax, last_step) -> None:
    """Steps on a linear axis, or over a long run linear to 10 and logarithmic beyond, so that the early epochs
    (the notebooks' inhale at step 2) and the late ones (freeze near step 400) both show."""
    if last_step <= 100:
        ax.set(xlabel=STEP)
        return
    ax.set_xscale("symlog", linthresh=10)
    ax.set(xlabel=f"{STEP} (linear to 10, then log)", xlim=(0, last_step))


def epoch_radii(ax, series: list[pd.DataFrame], epochs: pd.DataFrame, label: str, prefix: str) -> None:
    """The dead cloud's two radii with the inhale of each marked."""
    for radius, style in zip(RADII, ("-", "--")):
        band(ax, series, f"{prefix}_dead_{radius}_mean", label=EPOCH_NAMES[radius], color=EPOCH_COLORS[radius],
             linestyle=style)
        mark_epoch(ax, epochs, label, f"inhale_{radius}", f"inhale ({EPOCH_NAMES[radius]})", EPOCH_COLORS[radius])
    ax.set(title=f"{label}: dead-cloud radii", ylabel=f"mean dead-row distance, {NORM}")


def epoch_speeds(ax, series: list[pd.DataFrame], epochs: pd.DataFrame, label: str, prefix: str, window) -> None:
    """The smoothed speeds of the dead centroid and of both radii, with their peaks marked."""
    for mover in ("centroid",) + RADII:
        band(ax, series, f"{prefix}_dead_{mover}_speed_smoothed", label=f"{EPOCH_NAMES[mover]}",
             color=EPOCH_COLORS[mover])
        mark_epoch(ax, epochs, label, f"peak_speed_{mover}", f"peak ({EPOCH_NAMES[mover]})", EPOCH_COLORS[mover])
    columns = [f"{prefix}_dead_{mover}_speed_smoothed" for mover in ("centroid",) + RADII]
    still = not any((table[columns] > 0).any().any() for table in series)
    ax.set(title=f"{label}: speeds, centred mean over {window:g} records", yscale="linear" if still else "log",
           ylabel="|change| per optimizer step (weight units)")
    if still:
        ax.text(0.5, 0.5, "the dead rows never move: every speed is 0", ha="center", transform=ax.transAxes)


def epoch_freeze(ax, series: list[pd.DataFrame], epochs: pd.DataFrame, label: str, prefix: str, fraction) -> None:
    """The fraction of dead rows still moving, with the freeze onset and the last motion marked."""
    band(ax, series, f"{prefix}_dead_still_moving", label="dead rows still moving", color=GROUP_COLORS["dead"])
    ax.axhline(1 - fraction, color="k", linewidth=0.7, alpha=0.5)
    mark_epoch(ax, epochs, label, "freeze_onset", f"freeze onset ({fraction:.0%} frozen)", "C0")
    mark_epoch(ax, epochs, label, "last_motion", "last motion", "k", "--")
    ax.set(title=f"{label}: dead rows not yet frozen for good", ylim=(-0.03, 1.03),
           ylabel="fraction of dead rows that move again")


def m_epochs(inputs: dict, settings: dict):
    """m. Per matrix: the dead cloud's two radii with the inhale marked, the smoothed speeds of its centroid and
    radii with their peaks, and the fraction of dead rows still moving with the freeze onset and last motion."""
    entries = matrices(inputs, "epochs_")
    found = [read_table(path, ("run", "matrix")) for path in inputs.get("epochs_table", [])]
    epochs = found[0] if found else pd.DataFrame(columns=["matrix", "n_dead", "speed_window", "freeze_fraction"])
    fig, axes = plt.subplots(len(entries), 3, figsize=(16, 4.2 * len(entries)), squeeze=False)
    for row, (label, series, prefix) in enumerate(entries):
        mine = epochs[epochs["matrix"] == label]
        if mine.empty or (mine["n_dead"] == 0).all():
            for ax in axes[row]:
                empty_panel(ax, f"{label}: no dead rows, no epochs")
            continue
        radii, speeds, moving = axes[row]
        epoch_radii(radii, series, epochs, label, prefix)
        epoch_speeds(speeds, series, epochs, label, prefix, mine["speed_window"].iloc[0])
        epoch_freeze(moving, series, epochs, label, prefix, mine["freeze_fraction"].iloc[0])
        for ax in axes[row]:
            step_axis(ax, series[0]["step"].max())
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize="x-small")
    return finish(fig, "m. Epochs of the dead cloud: inhale, peak speed, freeze onset, last motion "
                       f"({seed_note(settings)})")
