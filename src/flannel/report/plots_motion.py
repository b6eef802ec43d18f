"""The motion figures (t, u, v, x): the five phases of the dead rows with their reheating and global-freeze runs,
the dead rows' kinetics and flow, the supernova curves, and h_mean, the force on the dead rows. Each is a function of `inputs` and `settings` (as
in flannel.report.plots_cloud), named by its key in flannel.report.figures."""

from __future__ import annotations

import numpy as np

from ..analysis.five_phases import PHASES
from ..analysis.h_mean import TOKEN_COLUMNS
from ..analysis.kinetics import PERCENTILES
from ..outputs import read_table
from .panels import COLORS, GROUP_STYLE, STEP, band, empty_panel, finish, matrices, plt, run_tables, seed_note

FIVE_COLORS = dict(zip(PHASES, ("C0", "C2", "C1", "C3", "C4")))
SUPERNOVA_SHOWN = (0, 2, 4, 6, 8, 10, 12)


def t_five_phases(inputs: dict, settings: dict):
    """t. Per step the fraction of dead rows in each of the five phases; the dead rows that reheated, with the
    global-freeze stretches (every dead row unchanged) of the first run shaded."""
    entries = matrices(inputs, "phases_")
    fig, axes = plt.subplots(2, len(entries), figsize=(4.8 * len(entries), 8), squeeze=False)
    for column, (label, found, prefix) in enumerate(entries):
        ax = axes[0][column]
        for phase in reversed(PHASES):
            band(ax, found, f"{prefix}_dead_{phase}", label=phase, color=FIVE_COLORS[phase])
        ax.set(title=f"{label}: dead rows", xlabel=STEP, ylabel="fraction of dead rows in the phase", ylim=(-0.03, 1.03))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax = axes[1][column]
        band(ax, found, f"{prefix}_dead_reheating", label="dead rows whose phase rose", color="C3")
        steps, still = found[0]["step"].to_numpy(), found[0][f"{prefix}_dead_still"].to_numpy() == 1
        ax.fill_between(steps, 0, 1, where=still, step="mid", color="C0", alpha=0.25,
                        transform=ax.get_xaxis_transform(), label=f"every dead row unchanged ({int(still.sum())} steps)")
        ax.set(title=f"{label}: reheating and global freeze", xlabel=STEP, ylabel="number of dead rows")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"t. Five phases of the dead rows, reheating and global freezes ({seed_note(settings)})")


def u_kinetics(inputs: dict, settings: dict):
    """u. The dead rows' kinetic energy, participation ratio, velocity autocorrelation, bulk flow and shear."""
    entries = matrices(inputs, "kinetics_")
    panels = (("kinetic", "1/2 sum |dW_i|^2", "log", None), ("participation", "(sum |dW_i|)^2 / (N sum |dW_i|^2)", "linear", (0, 1.03)),
              ("autocorrelation", "median cos(dW'_i(t-1), dW'_i(t))", "linear", (-1.03, 1.03)),
              ("bulk", "median cos(dW_i, dC) (bulk flow)", "linear", (-1.03, 1.03)),
              ("shear", "mean |dW_i - dC| / |dC| (shear)", "log", None))
    fig, axes = plt.subplots(len(panels), len(entries), figsize=(4.8 * len(entries), 2.9 * len(panels)), squeeze=False)
    for column, (label, found, prefix) in enumerate(entries):
        for ax, (name, ylabel, scale, limits) in zip(axes[:, column], panels):
            values = np.concatenate([table[f"{prefix}_dead_{name}"].to_numpy(dtype=float) for table in found])
            band(ax, found, f"{prefix}_dead_{name}", label=label, color="C3")
            if scale == "log" and (values > 0).any():
                ax.set_yscale("log")
            if name == "autocorrelation":
                ax.axhline(0.1, color="k", linewidth=0.8, label="0.1: the transition")
            ax.set(xlabel=STEP, ylabel=ylabel, ylim=limits)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        axes[0][column].set_title(f"{label}: dead rows")
    return finish(fig, f"u. Kinetics and flow of the dead rows ({seed_note(settings)})")


def v_supernova(inputs: dict, settings: dict):
    """v. The supernova curves: the fraction of dead rows whose step is above 2^k ulps, and the percentiles of
    the step in ulps."""
    entries = matrices(inputs, "kinetics_")
    fig, axes = plt.subplots(2, len(entries), figsize=(4.8 * len(entries), 8), squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(SUPERNOVA_SHOWN)))
    for column, (label, found, prefix) in enumerate(entries):
        for k, color in zip(SUPERNOVA_SHOWN, colors):
            band(axes[0][column], found, f"{prefix}_dead_supernova_{k}", label=f"|dW'|_2 > 2^{k}", color=color)
        axes[0][column].set(title=f"{label}: dead rows", xlabel=STEP, ylabel="fraction of dead rows", ylim=(-0.03, 1.03))
        for p, color in zip(PERCENTILES, plt.cm.plasma(np.linspace(0, 0.8, len(PERCENTILES)))):
            band(axes[1][column], found, f"{prefix}_dead_hops_p{p}", label=f"{p}th percentile", color=color)
        axes[1][column].set(yscale="symlog", xlabel=STEP, ylabel="|dW'|_2 per dead row (bf16 ulps)")
        for ax in axes[:, column]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    return finish(fig, f"v. Supernova curves of the dead rows ({seed_note(settings)})")


def x_h_mean(inputs: dict, settings: dict):
    """x. h_mean, the force on the dead rows: its persistence, its angle to the dead centroid's step, each
    cloud's distance from the origin against its bounding radius (liftoff where they cross), the live/dead
    separation, the swing, and the tokens h_mean ranks highest."""
    entries, tyings = matrices(inputs, "h_mean_"), [t for t in ("tied", "untied") if run_tables(inputs, f"h_mean_{t}")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    swung = False
    for tying in tyings:
        found, color = run_tables(inputs, f"h_mean_{tying}"), COLORS[f"{tying} W"]
        band(axes[0][0], found, "h_mean_autocorrelation", label=tying, color=color)
        swung |= band(axes[1][1], found, "h_mean_swing_max", label=f"{tying}: largest", color=color)
        band(axes[1][1], found, "h_mean_swing_mean", label=f"{tying}: mean", color=color, linestyle=":")
    if not swung:
        empty_panel(axes[1][1], "fewer records than analysis.h_mean_window", among_drawn=True)
    for label, found, prefix in entries:
        color = COLORS[label]
        band(axes[0][1], found, f"{prefix}_h_mean_cos_dC", label=label, color=color)
        band(axes[1][0], found, f"{prefix}_separation", label=label, color=color)
        for group, style in GROUP_STYLE.items():
            band(axes[0][2], found, f"{prefix}_{group}_centroid", label=f"{label} {group}: |c|", color=color,
                 linestyle=style)
        band(axes[0][2], found, f"{prefix}_dead_radius", label=f"{label} dead: max |w_i - c|", color=color,
             linestyle="-.", linewidth=0.9)
    labels = (("cos(h_mean[t-1], h_mean[t])", None), ("cos(h_mean[t], dC[t]) (dead centroid's step)", (-1.03, 1.03)),
              ("distance (weight units)", None), ("|c_live - c_dead|", None),
              ("angle from the window's mean direction (rad)", None))
    for ax, (ylabel, limits) in zip(axes.flat, labels):
        ax.set(xlabel=STEP, ylabel=ylabel, ylim=limits)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    top_tokens_panel(axes[1][2], inputs.get("h_mean_tokens", []))
    return finish(fig, f"x. h_mean, the force on the dead rows ({seed_note(settings)})")


def top_tokens_panel(ax, paths: list[str]) -> None:
    """The tokens h_mean . w_i ranks highest at the first and the last recorded step (the reference run)."""
    ax.axis("off")
    table = read_table(paths[0], TOKEN_COLUMNS) if paths else None
    if table is None or table.empty:
        empty_panel(ax, "no h_mean recorded: no tokens to rank")
        return
    lines = ["step  rank  token            dead  h_mean.w"]
    for row in table.itertuples():
        lines.append(f"{row.step:>4}  {row.rank:>4}  {repr(str(row.token))[:15]:<15}  {'yes' if row.dead else 'no':<4}  {row.score:+.4f}")
    ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=7, va="top", transform=ax.transAxes)
    ax.set_title("tokens h_mean ranks highest (reference run, W)", fontsize="medium")
