"""The hop-condition figures (q, r, s, w): the (m, v) phase space of the dead rows coloured by hop, Adam's
update in ulps of the weight over time, Adam's term |m_hat / (sqrt(v_hat) + eps)|, and the freeze causes'
shares. Each is a function of `inputs` and `settings` (as in flannel.report.plots_cloud), named by its key in
flannel.report.figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import NullFormatter

from ..analysis.hop_condition import phase_space
from ..analysis.rows import GROUPS
from ..recording import Recording
from .panels import (COLORS, GROUP_STYLE, STEP, band, empty_panel, finish, matrices, not_drawn, plt,
                     reference_views, seed_note)

SHOWN_POINTS = 3000  # per class and panel: enough to see the boundary, few enough to draw fast
CAUSE_BARS = (("revived_by_schedule", "LR held at step 1"), ("revived_by_variance", "float32 v (can decrease)"),
              ("revived_by_signal", "m_hat of step 1"), ("cause_none", "none of the three"))
FACTOR_BARS = (("median_log2_schedule", "LR"), ("median_log2_signal", "|m_hat|"),
               ("median_log2_variance", "sqrt(v_hat) + eps"), ("median_log2_lattice", "threshold"),
               ("median_log2_bf16_v", "bf16 v"))


def _shown(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The indices of at most SHOWN_POINTS of the masked elements, the same ones for the same inputs."""
    chosen = mask.nonzero().flatten()
    if chosen.numel() > SHOWN_POINTS:
        chosen = chosen[torch.randperm(chosen.numel(), generator=generator)[:SHOWN_POINTS]]
    return chosen


def q_hop_phase_space(inputs: dict, settings: dict):
    """q. The dead rows' elements in the (sqrt(v_hat) + eps, |m_hat|) plane at three steps, hop vs none."""
    views = reference_views(inputs)
    fig, axes = plt.subplots(len(views), 3, figsize=(13, 3.8 * len(views)), squeeze=False)
    for row, (label, path, side) in enumerate(views):
        recording = Recording(path)
        steps = recording.steps()
        for ax, index in zip(axes[row], (1, len(steps) // 2, len(steps) - 1)):
            points = phase_space(recording, side, index)
            generator = torch.Generator().manual_seed(index)
            if not (points["m_hat"] > 0).any():
                empty_panel(ax, f"{label}, step {steps[index]}:\nno gradient (m = v = 0)")
                continue
            for hopped, color, name in ((False, "C0", "no hop"), (True, "C3", "hop")):
                mask = points["hopped"] == hopped
                shown = _shown(mask, generator)
                ax.scatter(points["denominator"][shown].numpy(), points["m_hat"][shown].numpy(), s=3, alpha=0.4,
                           color=color, label=f"{name} ({int(mask.sum())} elements)", rasterized=True)
            ax.set(xscale="log", yscale="log", title=f"{label}: step {steps[index]}",
                   xlabel="sqrt(v_hat) + eps", ylabel="|m_hat|")
            ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on a short decade
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small", markerscale=4)
    return finish(fig, f"q. (m, v) phase space of the dead rows, coloured by hop (seed {settings['seeds']['reference']})")


def r_ulp_ratio(inputs: dict, settings: dict):
    """r. Adam's update in ulps of the weight, |u| / ulp(W), median and 90th percentile over the dead
    elements and the live median, against the half-ulp a hop needs."""
    entries = matrices(inputs, "hops_")
    fig, axes = plt.subplots(1, len(entries), figsize=(4.8 * len(entries), 4.4), sharey=True, squeeze=False)
    for ax, (label, found, prefix) in zip(axes[0], entries):
        band(ax, found, f"{prefix}_dead_ulp_ratio_median", label="dead, median", color="C3")
        band(ax, found, f"{prefix}_dead_ulp_ratio_p90", label="dead, 90th percentile", color="C3", linestyle=":")
        band(ax, found, f"{prefix}_live_ulp_ratio_median", label="live, median", color="0.45", linestyle="--")
        ax.axhline(0.5, color="k", linewidth=0.8, label="1/2: a hop needs more")
        ax.set(yscale="log", xlabel=STEP, ylabel="|u| / ulp(W)  (= lr |m_hat| / (ulp (sqrt(v_hat) + eps)))",
               title=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"r. Adam's update in ulps of the weight ({seed_note(settings)})")


def s_adam_term(inputs: dict, settings: dict):
    """s. Per row |m_hat / (sqrt(v_hat) + eps)|_2, median over the dead and over the live rows."""
    entries = matrices(inputs, "hops_")
    dims = [Recording(path).shape(key)[2] for tying in ("tied", "untied") for path in inputs.get(f"{tying}_run", [])
            for key in (["embeddings"] if tying == "tied" else ["embeddings_W"])]
    fig, axes = plt.subplots(1, len(entries), figsize=(4.8 * len(entries), 4.4), sharey=True, squeeze=False)
    for ax, (label, found, prefix) in zip(axes[0], entries):
        for group, color in zip(GROUPS, ("C3", "0.45")):
            band(ax, found, f"{prefix}_{group}_adam_term_median", label=f"{group} rows, median", color=color,
                 linestyle=GROUP_STYLE[group])
        if dims:
            ax.axhline(math.sqrt(dims[0]), color="k", linewidth=0.8, label=f"sqrt(D) = {math.sqrt(dims[0]):g}")
        ax.set(yscale="log", xlabel=STEP, ylabel="|m_hat / (sqrt(v_hat) + eps)|_2 per row", title=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return finish(fig, f"s. Adam's term: the step per row in units of the LR ({seed_note(settings)})")


def _grouped_bars(ax, table: pd.DataFrame, bars, labels) -> None:
    """Per matrix a bar per column of `bars` (the median over the runs) and each run as a dot; a matrix with no
    frozen dead row gets a legend entry saying so."""
    width = 0.8 / len(labels)
    for offset, label in enumerate(labels):
        runs = table[(table["tying"] + " " + table["matrix"]) == label]
        counts = runs["frozen_dead"].to_numpy(dtype=int)
        if not counts.any():
            not_drawn(ax, f"{label}: no frozen dead rows", "freeze summary", color=COLORS[label])
            continue
        for position, (column, _) in enumerate(bars):
            values = runs[column].to_numpy(dtype=float)
            x = position + (offset - (len(labels) - 1) / 2) * width
            ax.bar(x, np.nanmedian(values), width, color=COLORS[label], alpha=0.6,
                   label=f"{label} (frozen dead rows per run: {', '.join(map(str, counts))})" if position == 0 else None)
            ax.plot(np.full(values.size, x), values, "k.", markersize=4)
    ax.set_xticks(range(len(bars)), [name for _, name in bars])
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small")


def w_freeze_causes(inputs: dict, settings: dict):
    """w. Over the frozen dead rows, per matrix: the share each counterfactual would keep hopping, and the log2
    factors by which each input changed the hop margin from step 1 to the freeze step (medians over the rows;
    bars: the median over the runs, dots: each run)."""
    table = pd.concat([pd.read_csv(path, sep="\t") for path in inputs.get("freeze_summary", [])], ignore_index=True)
    labels = [f"{tying} {matrix}" for tying, matrix in (("tied", "W"), ("untied", "W"), ("untied", "E"))]
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.8))
    _grouped_bars(axes[0], table, CAUSE_BARS, labels)
    axes[0].set(ylim=(0, 1.05), ylabel="share of frozen dead rows that would hop",
                xlabel="counterfactual at the freeze step")
    _grouped_bars(axes[1], table, FACTOR_BARS, labels)
    axes[1].axhline(0, color="k", linewidth=0.8)
    axes[1].set(ylabel="median log2 factor on the hop margin, step 1 to freeze",
                xlabel="input (negative: it shrank the margin)")
    return finish(fig, f"w. Why the dead rows froze: counterfactuals and the margin's factors ({seed_note(settings)})")
