"""The figure registry: every figure's name, report category, what it shows and what it needs of the config.
The function that draws a figure carries its name (flannel.report.plots lists them), and its caption is
workflow/report/<name>.rst. The rules read this registry when Snakemake parses the workflow, so it imports
nothing heavy; drawing happens in the flannel.report.plots_* modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AnalysisError


@dataclass(frozen=True)
class Figure:
    category: str  # the report's category
    shows: str  # the report's label
    needs: str = ""  # "untied": an untied run; "pair": a seed trained both tied and untied; "sweep": two tied
    # seeds or more; "": nothing more
    quantities: tuple[str, ...] = ("embeddings",)  # the recorded matrices it draws from


ADAM_STATE = ("embeddings", "momentum", "variance")  # what a figure of Adam's steps on the weights reads
HOP = "Hop condition"

FIGURES = {
    "a_dead_cloud": Figure("Dead-cloud geometry", "dead-cloud radii (centroid, origin), centroid, sd"),
    "b_fraction_moved": Figure("Freeze and optimisation", "fraction of rows that moved, LR"),
    "c_loss": Figure("Freeze and optimisation", "loss, tied vs untied"),
    "d_e_minus_w": Figure("Tied vs untied", "||E - W|| (untied)", needs="untied"),
    "e_displacements": Figure("Dead-cloud geometry", "per-row displacement at the last step"),
    "f_decomposition": Figure("Tied vs untied", "W1 = W2 + E2 decomposition", needs="pair"),
    "g_pca": Figure("Dead-cloud geometry", "PCA of W at a few steps"),
    "h_indicators": Figure("Under-trained-token indicators", "Land & Bartolo indicators, ROC AUC"),
    "i_gradients": Figure("Freeze and optimisation", "gradients and Adam steps, dead vs live",
                          quantities=("grads", "momentum", "variance")),
    "j_adam_accounting": Figure("Adam accounting", "replay of every step, lost updates", quantities=ADAM_STATE),
    "k_radial": Figure("Dead-cloud geometry", "radial motion of dead rows"),
    "l_lattice": Figure("Freeze and optimisation", "lattice phases and freeze steps"),
    "m_epochs": Figure("Dead-cloud geometry", "epochs: inhale, peak speed, freeze onset, last motion"),
    "n_tied_untied_distance": Figure("Run-to-run distances", "|W_tied,i - W_untied,i| per row and step",
                                     needs="pair"),
    "o_sweep_distance": Figure("Run-to-run distances", "pairwise distances between the sweep's runs",
                               needs="sweep"),
    "p_sky_map": Figure("Dead-cloud geometry", "sky maps of W (Mollweide), dead centroid's path"),
    "q_hop_phase_space": Figure(HOP, "(m, v) phase space of dead rows, coloured by hop", quantities=ADAM_STATE),
    "r_ulp_ratio": Figure(HOP, "Adam's update in ulps of the weight", quantities=ADAM_STATE),
    "s_adam_term": Figure(HOP, "Adam's term |m_hat / (sqrt(v_hat) + eps)| per row", quantities=ADAM_STATE),
    "t_five_phases": Figure("Freeze and optimisation", "five phases, reheating, global freezes"),
    "u_kinetics": Figure("Dead-cloud geometry", "kinetics and flow of the dead rows"),
    "v_supernova": Figure("Dead-cloud geometry", "supernova curves of the dead rows"),
    "w_freeze_causes": Figure(HOP, "freeze causes by counterfactuals", quantities=("grads",) + ADAM_STATE),
    "x_h_mean": Figure("Dead-cloud geometry", "h_mean: persistence, angle to the dead centroid's step, liftoff, swing",
                       quantities=("embeddings", "h_mean")),
    "y_lifespan": Figure("Freeze and optimisation", "freeze step per dead row against its start; the cloud's catch-up"),
}

# Drawn once from the summary across experiments (flannel.report.experiments), into results/experiments/figures/.
ACROSS_EXPERIMENTS = {
    "experiments_dead_cloud": Figure("Across experiments", "dead-cloud radii of every experiment"),
    "experiments_final_state": Figure("Across experiments", "final dead-cloud radius against the swept values"),
}


def paired_seeds(runs: dict) -> list[int]:
    """Seeds trained both tied and untied: the pairs of the decomposition test."""
    return [seed for seed in runs["tied"] if seed in runs["untied"]]


def is_sweep(runs: dict) -> bool:
    """Whether the tied runs form a sweep: two seeds or more, so that runs can be compared pairwise."""
    return len(runs["tied"]) >= 2


def shown_seed(reference: int, paired: list[int]) -> int | None:
    """The paired seed whose dead rows figure n's heatmap shows: the reference seed when it is paired, else the
    first paired seed (None: no pair)."""
    return reference if reference in paired else (paired or [None])[0]


def missing(name: str, seeds: dict, quantities) -> str | None:
    """Why an experiment cannot draw figure `name` (a sentence), or None if it can. `seeds`: the figure
    settings' seeds (tied, untied, paired)."""
    figure = FIGURES[name]
    if figure.needs == "untied" and not seeds["untied"]:
        return "this experiment trains no untied run"
    if figure.needs == "pair" and not seeds["paired"]:
        return "no seed of this experiment is trained both tied and untied"
    if figure.needs == "sweep" and not is_sweep(seeds):
        return "this experiment trains fewer than two tied seeds"
    absent = [quantity for quantity in figure.quantities if quantity not in quantities]
    if absent:
        return f"recording.quantities lacks {', '.join(absent)}"
    return None


def draw(name: str, inputs: dict, settings: dict, output: str | Path) -> str | None:
    """Draw figure `name` and write it as a PNG with no timestamp or software tag (same inputs, same bytes).
    A figure the experiment cannot draw becomes a card that says why (so no figure of an earlier config
    passes for a current one); returns that reason, or None."""
    if name not in FIGURES:
        raise AnalysisError(f"{output}: unknown figure '{name}' (known: {', '.join(FIGURES)})")
    from . import panels, plots  # matplotlib and torch load only where a figure is drawn

    reason = missing(name, settings["seeds"], settings["quantities"])
    fig = panels.card(name, reason) if reason else plots.DRAW[name](inputs, settings)
    panels.save(fig, output, settings["figures"]["dpi"])
    return reason
