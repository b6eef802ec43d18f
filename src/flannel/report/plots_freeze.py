"""The freeze and optimisation figures (b, c, h, i, j, l): the rows that still move, the loss, the
under-trained-token indicators, gradients and Adam steps, the Adam accounting and the lattice phases. Each is a
function of `inputs` and `settings` (as in flannel.report.plots_cloud), named by its key in
flannel.report.figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.rows import GROUPS
from .panels import (COLORS, GROUP_COLORS, GROUP_STYLE, STEP, band, finish, group_bands, matrices, not_drawn, plt,
                     run_tables, seed_note)


def b_fraction_moved(inputs: dict, settings: dict):
    """b. Per step, the fraction of dead and of live rows that changed at all, with the LR schedule."""
    entries = matrices(inputs)
    fig, axes = plt.subplots(1, len(entries), figsize=(4.6 * len(entries), 4.2), sharey=True, squeeze=False)
    for ax, (label, found, prefix) in zip(axes[0], entries):
        group_bands(ax, found, prefix + "_{group}_fraction_moved")
        ax.set(xlabel=STEP, ylabel="fraction of rows changed\nsince the previous record", ylim=(-0.03, 1.03),
               title=label)
        lr_axis = ax.twinx()
        lr_axis.plot(found[0]["step"], found[0]["lr"], color="C4", linewidth=1, alpha=0.8, label="learning rate")
        lr_axis.set_ylabel("learning rate (per step)", color="C4")
        lr_axis.set_ylim(bottom=0)
        handles = ax.get_legend_handles_labels()
        extra = lr_axis.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="lower left")
        ax.grid(alpha=0.3)
    return finish(fig, f"b. Rows that still move (bf16 freeze) vs the LR schedule ({seed_note(settings)})")


def c_loss(inputs: dict, settings: dict):
    """c. Training loss across seeds, tied vs untied."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for tying, color in (("tied", COLORS["tied W"]), ("untied", COLORS["untied W"])):
        found = run_tables(inputs, tying)
        if found:
            band(ax, found, "loss", label=tying, color=color)
    ax.set(xlabel=STEP, ylabel="cross-entropy loss of the step's batch (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    return finish(fig, f"c. Training loss, tied vs untied ({seed_note(settings)})")


def h_indicators(inputs: dict, settings: dict):
    """h. ROC AUC of Land & Bartolo's under-trained-token indicators vs step."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    tied, untied = run_tables(inputs, "tied"), run_tables(inputs, "untied")
    lines = [(untied, "E_auc_norm", "untied E: row norm (their untied indicator)", COLORS["untied E"], "-"),
             (tied, "W_auc_cosine", "tied W: cosine to dead mean, PC1 removed (their tied indicator)",
              COLORS["tied W"], "-"),
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


def i_gradients(inputs: dict, settings: dict):
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


def j_adam_accounting(inputs: dict, settings: dict):
    """j. The replay of every step from the recording (fraction rebuilt bitwise), the updates bf16 lost, and
    the second moments that could not decrease."""
    entries = matrices(inputs, "adam_")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for label, found, prefix in entries:
        worst = np.stack([table[[f"{prefix}_{q}_bitwise" for q in ("weights", "momentum", "variance")]].min(axis=1)
                          .to_numpy(dtype=float) for table in found])
        replayed = np.isfinite(worst)
        low = f"lowest {worst[replayed].min():.4%}" if replayed.any() else "not replayable"
        axes[0].plot(found[0]["step"], worst.min(axis=0), color=COLORS[label],
                     label=f"{label}: {low} ({len(found)} run(s))")
    axes[0].set(xlabel=STEP, ylabel="fraction of elements rebuilt bitwise\n(lowest of W, m, v; lowest over runs)",
                ylim=(-0.03, 1.03), title="replay of torch's AdamW from the recording")
    for ax, metric, ylabel, title in (
            (axes[1], "lost_update", "fraction of elements: exact update != 0\nbut bf16 weight unchanged",
             "lost updates"),
            (axes[2], "v_cannot_decrease", "fraction of elements (v > 0) whose\nv x beta2 rounds back to v",
             "second moment cannot decrease")):
        for label, found, prefix in entries:
            for group in GROUPS:
                band(ax, found, f"{prefix}_{group}_{metric}", label=f"{label}, {group} rows", color=COLORS[label],
                     linestyle=GROUP_STYLE[group])
        ax.set(xlabel=STEP, ylabel=ylabel, ylim=(-0.03, 1.03), title=title)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"j. Adam accounting: every step replayed, updates lost to bf16 ({seed_note(settings)})")


PHASE_COLORS = {"early": "C3", "mid": "C1", "late": "C2", "frozen": "C0"}


def freeze_steps(ax, rows: pd.DataFrame, label: str, last_step) -> None:
    """Histograms of the step each dead and each live row of one matrix froze at (lattice rows table)."""
    bins = np.linspace(0, last_step + 1, min(50, int(last_step) + 2))
    for group, mask in (("dead", rows["dead"].astype(bool)), ("live", ~rows["dead"].astype(bool))):
        frozen = rows.loc[mask, "frozen_from"].dropna()
        never = int(mask.sum()) - frozen.size
        style = {"color": GROUP_COLORS[group], "linestyle": GROUP_STYLE[group]}
        if mask.any():
            ax.hist(frozen, bins=bins, histtype="step",
                    label=f"{group} rows (n={int(mask.sum())}; {never} still moving at the end)", **style)
        else:
            not_drawn(ax, f"{group} rows: none (n=0)", f"{label} freeze steps", **style)


def l_lattice(inputs: dict, settings: dict):
    """l. Per step, the fraction of dead and live rows in each lattice phase; per row, the step it froze at,
    dead vs live (the reference seed)."""
    entries = matrices(inputs, "lattice_")
    per_row = {tying: pd.read_csv(path, sep="\t") for tying in ("tied", "untied")
               for path in inputs.get(f"lattice_rows_{tying}", [])}
    fig, axes = plt.subplots(3, len(entries), figsize=(4.8 * len(entries), 10.5), squeeze=False)
    for column, (label, found, prefix) in enumerate(entries):
        for row, group in enumerate(GROUPS):
            ax = axes[row][column]
            for phase in ("early", "mid", "late", "frozen"):
                band(ax, found, f"{prefix}_{group}_phase_{phase}", label=phase, color=PHASE_COLORS[phase])
            ax.set(title=f"{label}: {group} rows", xlabel=STEP, ylabel=f"fraction of {group} rows in the phase",
                   ylim=(-0.03, 1.03))
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        ax = axes[2][column]
        rows = per_row.get(label.split()[0])
        if rows is not None:
            freeze_steps(ax, rows[rows["matrix"] == prefix], label, found[0]["step"].max())
        ax.set(title=f"{label}: freeze step per row (seed {settings['seeds']['reference']})",
               xlabel="step the row froze at (after its last move)", ylabel="number of rows")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"l. Lattice phases (early, mid-life, late, frozen) and freeze steps ({seed_note(settings)})")
