"""Drawing the figures of the dead-token analysis (flannel.report.figures lists them), from the per-run tables and,
for the per-row views, from the reference recordings. Each figure is a function of `inputs` (name -> list of
paths, as the figure rule lists them) and `settings` (the seeds and the figures config section) returning a
matplotlib Figure.

Seed bands: the line is the median over the seeds, the shaded band their min-max; with one seed, the line.
"""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..analysis import per_step  # noqa: E402
from ..analysis.rows import GROUPS  # noqa: E402
from ..errors import AnalysisError  # noqa: E402
from ..outputs import atomic_output, read_table  # noqa: E402

COLORS = {"tied W": "C0", "untied W": "C1", "untied E": "C2"}
GROUP_STYLE = {"dead": "-", "live": "--"}
GROUP_COLORS = {"dead": "C3", "live": "0.45"}
STEP = "optimizer step"
NORM = "L2 norm (weight units)"
log = logging.getLogger("flannel.report.plots")


# ---- reading and plotting helpers ------------------------------------------------------------------------------


def tables(inputs: dict, tying: str, required=("step",)) -> list[pd.DataFrame]:
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
    tied, untied = tables(inputs, f"{kind}tied"), tables(inputs, f"{kind}untied")
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
    ax.plot(steps, np.median(values, axis=0), color=color, linestyle=linestyle, linewidth=linewidth, label=label + seeds)
    if len(found) > 1:
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.18, linewidth=0)
    return True


def not_drawn(ax, what: str, source: str, **style) -> None:
    """A legend entry (an empty line) and a log line for a series the inputs cannot draw."""
    ax.plot([], [], label=f"{what}, not drawn", **style)
    log.info("not drawn: %s (%s)", what, source)


def nothing_drawn(ax, why: str) -> None:
    """Say on an empty panel why it is empty."""
    ax.text(0.5, 0.5, f"nothing to draw:\n{why}", transform=ax.transAxes, ha="center", va="center", color="0.35")


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


# ---- the figures ---------------------------------------------------------------------------------------------------


def dead_cloud(inputs: dict, settings: dict):
    """a. The dead cloud's two radii, named (from its centroid and from the origin), its centroid norm and its
    per-dimension standard deviation."""
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
    panels = ((axes[0], "radius_centroid_mean", "radius from the centroid:\nmean distance from the dead centroid (L2)", "linear"),
              (axes[1], "radius_origin_mean", "radius from the origin:\nmean dead-row norm (L2)", "linear"),
              (axes[2], "centroid_norm", "norm of the dead centroid (L2)", "log"),
              (axes[3], "sd_per_dim", "per-dimension standard deviation\nsqrt(mean_d var_d)", "linear"))
    entries = matrices(inputs)
    for ax, metric, ylabel, scale in panels:
        ax.set(xlabel=STEP, ylabel=ylabel)
        drawn = [band(ax, found, f"{prefix}_dead_{metric}", label=label, color=COLORS[label]) for label, found, prefix in entries]
        if any(drawn):
            ax.set_yscale(scale)  # a log axis needs a positive value to scale
        else:
            nothing_drawn(ax, "no dead rows in these runs")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return finish(fig, f"a. Dead-token cloud: both radii, centroid, spread ({seed_note(settings)})")


def radial_motion(inputs: dict, settings: dict):
    """k. Per step, the fractions of dead rows that moved outward, inward or not at all radially, about the
    origin and about the dead centroid."""
    entries = matrices(inputs)
    fig, axes = plt.subplots(2, len(entries), figsize=(4.8 * len(entries), 7.4), sharex=True, sharey=True, squeeze=False)
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
                nothing_drawn(ax, "no dead rows in these runs")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    return finish(fig, f"k. Radial motion of the dead rows, step by step ({seed_note(settings)})")


def rows_moved(inputs: dict, settings: dict):
    """b. Per step, the fraction of dead and of live rows that changed at all, with the LR schedule."""
    entries = matrices(inputs)
    fig, axes = plt.subplots(1, len(entries), figsize=(4.6 * len(entries), 4.2), sharey=True, squeeze=False)
    for ax, (label, found, prefix) in zip(axes[0], entries):
        group_bands(ax, found, prefix + "_{group}_fraction_moved")
        ax.set(xlabel=STEP, ylabel="fraction of rows changed\nsince the previous record", ylim=(-0.03, 1.03), title=label)
        lr_axis = ax.twinx()
        lr_axis.plot(found[0]["step"], found[0]["lr"], color="C4", linewidth=1, alpha=0.8, label="learning rate")
        lr_axis.set_ylabel("learning rate (per step)", color="C4")
        lr_axis.set_ylim(bottom=0)
        handles = ax.get_legend_handles_labels()
        extra = lr_axis.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="lower left")
        ax.grid(alpha=0.3)
    return finish(fig, f"b. Rows that still move (bf16 freeze) vs the LR schedule ({seed_note(settings)})")


def loss_curves(inputs: dict, settings: dict):
    """c. Training loss across seeds, tied vs untied."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for tying, color in (("tied", COLORS["tied W"]), ("untied", COLORS["untied W"])):
        found = tables(inputs, tying)
        if found:
            band(ax, found, "loss", label=tying, color=color)
    ax.set(xlabel=STEP, ylabel="cross-entropy loss of the step's batch (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    return finish(fig, f"c. Training loss, tied vs untied ({seed_note(settings)})")


def e_minus_w(inputs: dict, settings: dict):
    """d. How far the untied E and W drift apart, dead and live rows."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    group_bands(ax, tables(inputs, "untied"), "E_minus_W_{group}_fro")
    ax.set(xlabel=STEP, ylabel="||E - W||_F over the group's rows (weight units)")
    ax.grid(alpha=0.3)
    ax.legend()
    return finish(fig, f"d. Untied runs: distance between embedding E and unembedding W (seeds {settings['seeds']['untied']})")


def reference_views(inputs: dict) -> list[tuple[str, str, str]]:
    """(label, recording, side) for the reference runs' matrices."""
    views = [("tied W", path, "W") for path in inputs.get("tied_run", [])]
    for path in inputs.get("untied_run", []):
        views += [("untied W", path, "W"), ("untied E", path, "E")]
    return views


def ecdf(ax, values: np.ndarray, **style) -> None:
    ordered = np.sort(values)
    ax.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", **style)


def displacements(inputs: dict, settings: dict):
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


def linear_below(values: np.ndarray) -> float:
    """The power of ten just under the smallest nonzero value: the symlog axis is linear below it (so exact
    zeros show) and logarithmic above, with no empty decades."""
    positive = values[values > 0]
    return 10.0 ** np.floor(np.log10(positive.min())) if positive.size else 1.0


def decomposition_residuals(inputs: dict, settings: dict):
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
    return finish(fig, f"f. Does W1 = W2 + E2 hold? Residual of the decomposition, displacements from t=0 (seeds {seeds})")


def pca(inputs: dict, settings: dict):
    """g. The rows projected on the top two principal directions of the last step, at a few steps."""
    views = [view for view in reference_views(inputs) if view[2] == "W"]
    projections = [per_step.pca_projections(path, side, settings["figures"]["pca_steps"]) for _, path, side in views]
    n_steps = max(len(coordinates) for coordinates, _, _ in projections)
    fig, axes = plt.subplots(len(views), n_steps, figsize=(3.3 * n_steps, 3.3 * len(views)), squeeze=False)
    for row, ((label, _, _), (coordinates, dead, explained)) in enumerate(zip(views, projections)):
        for ax, (step, xy) in zip(axes[row], coordinates.items()):
            for group, mask, alpha in (("live", ~dead, 0.5), ("dead", dead, 0.7)):
                if mask.any():
                    ax.scatter(*xy[mask].T, s=3, color=GROUP_COLORS[group], alpha=alpha, label=f"{group} rows", linewidths=0)
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


def indicators(inputs: dict, settings: dict):
    """h. ROC AUC of Land & Bartolo's under-trained-token indicators vs step."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    tied, untied = tables(inputs, "tied"), tables(inputs, "untied")
    lines = [(untied, "E_auc_norm", "untied E: row norm (their untied indicator)", COLORS["untied E"], "-"),
             (tied, "W_auc_cosine", "tied W: cosine to dead mean, PC1 removed (their tied indicator)", COLORS["tied W"], "-"),
             (tied, "W_auc_norm", "tied W: row norm", COLORS["tied W"], ":"),
             (untied, "W_auc_cosine", "untied W: cosine to dead mean, PC1 removed", COLORS["untied W"], "--")]
    for found, column, label, color, style in lines:
        if found:
            band(ax, found, column, label=label, color=color, linestyle=style)
    ax.axhline(0.5, color="k", linewidth=0.7, alpha=0.5, label="chance (0.5)")
    ax.set(xlabel=STEP, ylabel="ROC AUC, dead vs live rows (1 = perfect)", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center right")
    return finish(fig, f"h. Under-trained-token indicators (Land & Bartolo 2024) ({seed_note(settings)})")


def gradients(inputs: dict, settings: dict):
    """i. Mean per-row gradient norm and mean Adam step size, dead vs live, per matrix."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    panels = ((axes[0], "grad_norm", "mean per-row gradient L2 norm (before clipping)"),
              (axes[1], "adam_step", "mean |Adam update| per element (weight units)"))
    entries = matrices(inputs)
    for ax, metric, ylabel in panels:
        for label, found, prefix in entries:
            for group in GROUPS:
                column = f"{prefix}_{group}_{metric}"
                values = pd.concat([table[column] for table in found])
                zero = values.notna().any() and (values.fillna(0) == 0).all()  # all NaN: band says "not drawn"
                band(ax, found, column, label=f"{label}, {group}" + (" (exactly 0: off the log axis)" if zero else ""),
                     color=COLORS[label], linestyle=GROUP_STYLE[group])
        ax.set(xlabel=STEP, ylabel=ylabel, yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return finish(fig, f"i. Gradients and Adam steps, dead vs live rows ({seed_note(settings)})")


def adam_accounting(inputs: dict, settings: dict):
    """j. The replay of every step from the recording (fraction rebuilt bitwise), the updates bf16 lost, and
    the second moments that could not decrease."""
    entries = matrices(inputs, "adam_")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for label, found, prefix in entries:
        worst = np.stack([table[[f"{prefix}_{q}_bitwise" for q in ("weights", "momentum", "variance")]].min(axis=1)
                          .to_numpy(dtype=float) for table in found])
        replayed = np.isfinite(worst)
        low = f"lowest {worst[replayed].min():.4%}" if replayed.any() else "not replayable"
        axes[0].plot(found[0]["step"], worst.min(axis=0), color=COLORS[label], label=f"{label}: {low} ({len(found)} run(s))")
    axes[0].set(xlabel=STEP, ylabel="fraction of elements rebuilt bitwise\n(lowest of W, m, v; lowest over runs)",
                ylim=(-0.03, 1.03), title="replay of torch's AdamW from the recording")
    for ax, metric, ylabel, title in (
            (axes[1], "lost_update", "fraction of elements: exact update != 0\nbut bf16 weight unchanged", "lost updates"),
            (axes[2], "v_cannot_decrease", "fraction of elements (v > 0) whose\nv x beta2 rounds back to v", "second moment cannot decrease")):
        for label, found, prefix in entries:
            for group in GROUPS:
                column = f"{prefix}_{group}_{metric}"
                band(ax, found, column, label=f"{label}, {group} rows", color=COLORS[label], linestyle=GROUP_STYLE[group])
        ax.set(xlabel=STEP, ylabel=ylabel, ylim=(-0.03, 1.03), title=title)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"j. Adam accounting: every step replayed, updates lost to bf16 ({seed_note(settings)})")


PHASE_COLORS = {"early": "C3", "mid": "C1", "late": "C2", "frozen": "C0"}


def lattice_phases(inputs: dict, settings: dict):
    """l. Per step, the fraction of dead and live rows in each lattice phase; per row, the step it froze at,
    dead vs live (the reference seed)."""
    entries = matrices(inputs, "lattice_")
    per_row = {("untied" if "/untied/" in path else "tied"): pd.read_csv(path, sep="\t") for path in inputs.get("lattice_rows", [])}
    fig, axes = plt.subplots(3, len(entries), figsize=(4.8 * len(entries), 10.5), squeeze=False)
    for column, (label, found, prefix) in enumerate(entries):
        for row, group in enumerate(GROUPS):
            ax = axes[row][column]
            for phase in ("early", "mid", "late", "frozen"):
                band(ax, found, f"{prefix}_{group}_phase_{phase}", label=phase, color=PHASE_COLORS[phase])
            ax.set(title=f"{label}: {group} rows", xlabel=STEP, ylabel=f"fraction of {group} rows in the phase", ylim=(-0.03, 1.03))
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        ax = axes[2][column]
        rows = per_row.get(label.split()[0])
        if rows is not None:
            rows = rows[rows["matrix"] == prefix]
            last = found[0]["step"].max()
            bins = np.linspace(0, last + 1, min(50, int(last) + 2))
            for group, mask in (("dead", rows["dead"].astype(bool)), ("live", ~rows["dead"].astype(bool))):
                frozen = rows.loc[mask, "frozen_from"].dropna()
                never = int(mask.sum()) - frozen.size
                style = {"color": GROUP_COLORS[group], "linestyle": GROUP_STYLE[group]}
                if mask.any():
                    ax.hist(frozen, bins=bins, histtype="step", label=f"{group} rows (n={int(mask.sum())}; {never} still moving at the end)",
                            **style)
                else:
                    not_drawn(ax, f"{group} rows: none (n=0)", f"{label} freeze steps", **style)
        ax.set(title=f"{label}: freeze step per row (seed {settings['seeds']['reference']})", xlabel="step the row froze at (after its last move)",
               ylabel="number of rows")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"l. Lattice phases (early, mid-life, late, frozen) and freeze steps ({seed_note(settings)})")


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


# ---- epochs of the dead cloud and run-to-run distances ----------------------------------------------------------

EPOCH_COLORS = {"centroid": "C4", "radius_centroid": "C0", "radius_origin": "C1"}
EPOCH_NAMES = {"centroid": "dead centroid", "radius_centroid": "radius from the centroid",
               "radius_origin": "radius from the origin"}


def no_data(ax, message: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set(xticks=[], yticks=[])


def mark_epoch(ax, epochs: pd.DataFrame, label: str, column: str, name: str, color, style=":") -> None:
    """A vertical line at the median over the matrix's runs of one epoch, labelled with its range."""
    values = epochs.loc[epochs["matrix"] == label, column].dropna()
    if values.empty:
        ax.plot([], [], color=color, linestyle=style, label=f"{name}: none")
        return
    span = f", range {values.min():g}-{values.max():g}" if values.min() != values.max() else ""
    ax.axvline(values.median(), color=color, linestyle=style, linewidth=1.2, label=f"{name}: step {values.median():g}{span}")


def step_axis(ax, last_step) -> None:
    """Steps on a linear axis, or over a long run linear to 10 and logarithmic beyond, so that the early epochs
    (the notebooks' inhale at step 2) and the late ones (freeze near step 400) both show."""
    if last_step <= 100:
        ax.set(xlabel=STEP)
        return
    ax.set_xscale("symlog", linthresh=10)
    ax.set(xlabel=f"{STEP} (linear to 10, then log)", xlim=(0, last_step))


def cloud_epochs(inputs: dict, settings: dict):
    """m. Per matrix: the dead cloud's two radii with the inhale marked, the smoothed speeds of its centroid and
    radii with their peaks, and the fraction of dead rows still moving with the freeze onset and last motion."""
    from ..analysis.epochs import RADII

    entries = matrices(inputs, "epochs_")
    found = [read_table(path, ("run", "matrix")) for path in inputs.get("epochs_table", [])]
    epochs = found[0] if found else pd.DataFrame(columns=["matrix", "n_dead", "speed_window", "freeze_fraction"])
    fig, axes = plt.subplots(len(entries), 3, figsize=(16, 4.2 * len(entries)), squeeze=False)
    for row, (label, series, prefix) in enumerate(entries):
        mine = epochs[epochs["matrix"] == label]
        if mine.empty or (mine["n_dead"] == 0).all():
            for ax in axes[row]:
                no_data(ax, f"{label}: no dead rows, no epochs")
            continue
        window, fraction = mine["speed_window"].iloc[0], mine["freeze_fraction"].iloc[0]
        radii, speeds, moving = axes[row]
        for radius, style in zip(RADII, ("-", "--")):
            band(radii, series, f"{prefix}_dead_{radius}_mean", label=EPOCH_NAMES[radius], color=EPOCH_COLORS[radius],
                 linestyle=style)
            mark_epoch(radii, epochs, label, f"inhale_{radius}", f"inhale ({EPOCH_NAMES[radius]})", EPOCH_COLORS[radius])
        radii.set(title=f"{label}: dead-cloud radii", ylabel=f"mean dead-row distance, {NORM}")
        for mover in ("centroid",) + RADII:
            band(speeds, series, f"{prefix}_dead_{mover}_speed_smoothed", label=f"{EPOCH_NAMES[mover]}",
                 color=EPOCH_COLORS[mover])
            mark_epoch(speeds, epochs, label, f"peak_speed_{mover}", f"peak ({EPOCH_NAMES[mover]})", EPOCH_COLORS[mover])
        columns = [f"{prefix}_dead_{mover}_speed_smoothed" for mover in ("centroid",) + RADII]
        still = not any((table[columns] > 0).any().any() for table in series)
        speeds.set(title=f"{label}: speeds, centred mean over {window:g} records", yscale="linear" if still else "log",
                   ylabel="|change| per optimizer step (weight units)")
        if still:
            speeds.text(0.5, 0.5, "the dead rows never move: every speed is 0", ha="center", transform=speeds.transAxes)
        band(moving, series, f"{prefix}_dead_still_moving", label="dead rows still moving", color=GROUP_COLORS["dead"])
        moving.axhline(1 - fraction, color="k", linewidth=0.7, alpha=0.5)
        mark_epoch(moving, epochs, label, "freeze_onset", f"freeze onset ({fraction:.0%} frozen)", "C0")
        mark_epoch(moving, epochs, label, "last_motion", "last motion", "k", "--")
        moving.set(title=f"{label}: dead rows not yet frozen for good", ylim=(-0.03, 1.03),
                   ylabel="fraction of dead rows that move again")
        for ax in axes[row]:
            step_axis(ax, series[0]["step"].max())
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize="x-small")
    return finish(fig, f"m. Epochs of the dead cloud: inhale, peak speed, freeze onset, last motion ({seed_note(settings)})")


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


def shown_seed(settings: dict):
    """The paired seed whose rows the heatmap shows (rules/common.smk's distance_seed): the reference if paired."""
    paired = settings["seeds"]["paired"]
    return settings["seeds"]["reference"] if settings["seeds"]["reference"] in paired else (paired or [None])[0]


def tied_untied_distance(inputs: dict, settings: dict):
    """n. |W_tied,i - W_untied,i| per dead row and step for one seed, rows sorted by their freeze step, and per
    step the mean, median and max over dead and live rows for every paired seed."""
    from matplotlib.colors import LogNorm

    from ..analysis.distances import read_rows

    fig, (heat, lines) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    found = [read_table(path, ("step", "dead_mean", "live_mean")) for path in inputs.get("distances", [])]
    rows = [read_rows(path) for path in inputs.get("distance_rows", [])]
    lattice = [pd.read_csv(path, sep="\t") for path in inputs.get("distance_lattice", [])]
    seed = shown_seed(settings)
    if not rows or rows[0]["distances"].numel() == 0:
        no_data(heat, "no seed trained both tied and untied" if not rows else "no dead rows")
    else:
        distances, frozen = sorted_by_freeze(rows[0], lattice[0] if lattice else None)
        steps = rows[0]["steps"].numpy()
        positive = distances[distances > 0]
        norm = LogNorm(positive.min(), positive.max()) if positive.size else None
        image = heat.imshow(np.where(distances > 0, distances, np.nan), aspect="auto", interpolation="nearest", norm=norm,
                            extent=(steps[0] - 0.5, steps[-1] + 0.5, distances.shape[0], 0), cmap="viridis")
        fig.colorbar(image, ax=heat, label="|W_tied,i - W_untied,i| (L2, weight units; 0 blank)")
        never = "" if np.isfinite(frozen).any() else " (none freezes within the run)"
        heat.plot(frozen, np.arange(frozen.size) + 0.5, color="w", linewidth=1, label=f"the tied row's freeze step{never}")
        heat.set(xlabel=STEP, ylabel="dead rows, by their freeze step in the tied run",
                 title=f"seed {seed}: each dead row's distance, tied vs untied W")
        heat.legend(fontsize="small", loc="lower right")
    if found:
        for group in GROUPS:
            for statistic, width in (("mean", 1.8), ("median", 1.0), ("max", 0.8)):
                band(lines, found, f"{group}_{statistic}", label=f"{group} rows, {statistic}", color=GROUP_COLORS[group],
                     linestyle={"mean": "-", "median": "--", "max": ":"}[statistic], linewidth=width)
        values = np.concatenate([t.drop(columns="step").to_numpy(dtype=float).ravel() for t in found])
        lines.set(xlabel=STEP, ylabel="|W_tied,i - W_untied,i| over the group's rows (L2)",
                  title=f"per step, seeds {settings['seeds']['paired']}")
        lines.set_yscale("symlog", linthresh=linear_below(values[np.isfinite(values)]))
        lines.grid(alpha=0.3)
        lines.legend(fontsize="small")
    else:
        no_data(lines, "no seed trained both tied and untied")
    return finish(fig, "n. Tied vs untied W, row by row: the same seed's two runs apart")


def sweep_distance(inputs: dict, settings: dict):
    """o. Per step, the mean row distance between every pair of the sweep's runs, dead and live rows apart."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    found = [read_table(path, ("step", "seed_a", "seed_b", "dead_mean", "live_mean")) for path in inputs.get("sweep_distance", [])]
    table = found[0] if found else pd.DataFrame()
    if table.empty:
        no_data(ax, "fewer than two tied seeds: no pairs to compare")
        return finish(fig, "o. Distances between the sweep's runs")
    pairs = [pair for _, pair in table.groupby(["seed_a", "seed_b"], sort=True)]
    steps = pairs[0]["step"].to_numpy()
    for group in GROUPS:
        values = np.stack([pair[f"{group}_mean"].to_numpy(dtype=float) for pair in pairs])
        if np.isnan(values).all():
            continue
        style = {"color": GROUP_COLORS[group], "linestyle": GROUP_STYLE[group]}
        for line in values:
            ax.plot(steps, line, linewidth=0.6, alpha=0.5, **style)
        ax.plot(steps, np.median(values, axis=0), linewidth=2, **style,
                label=f"{group} rows: mean row distance" + (f" (thin: each of {len(pairs)} pairs; thick: their median)"
                                                             if len(pairs) > 1 else f" (seeds {pairs[0]['seed_a'].iloc[0]}, "
                                                             f"{pairs[0]['seed_b'].iloc[0]})"))
    ax.set(xlabel=STEP, ylabel="mean over rows of |W_a,i - W_b,i| (L2, weight units)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return finish(fig, f"o. Distances between the sweep's runs, pair by pair (tied seeds {settings['seeds']['tied']})")


# ---- across experiments ---------------------------------------------------------------------------------------


def experiments_dead_cloud(summary: pd.DataFrame, table_paths: list[str], settings: dict):
    """The dead cloud of W in every experiment on shared axes: radius from the centroid and from the origin."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    runs = summary[["experiment", "tying"]].assign(path=table_paths)
    for index, (experiment, group) in enumerate(runs.groupby("experiment", sort=False)):
        for tying, linestyle in (("tied", "-"), ("untied", "--")):
            found = [read_table(path) for path in group.loc[group["tying"] == tying, "path"]]
            for ax, kind in zip(axes, ("centroid", "origin")):
                if found:
                    band(ax, found, f"W_dead_radius_{kind}_mean", label=f"{experiment} {tying} W", color=f"C{index % 10}",
                         linestyle=linestyle)
    for ax, kind in zip(axes, ("the dead centroid", "the origin")):
        ax.set(xlabel=STEP, ylabel=f"mean distance from {kind}", title=f"dead rows of W: radius from {kind}")
    axes[1].legend(fontsize=7)
    return finish(fig, "The dead cloud in every experiment (W; tied solid, untied dashed)")


def experiments_final_state(summary: pd.DataFrame, settings: dict):
    """The dead cloud's radius from the origin at the last step against each value the experiments sweep."""
    from .experiments import numeric, swept_keys

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
