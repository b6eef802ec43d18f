# The paths and input/output helpers of rules/experiments.smk (the linter keeps functions out of rule files).
SUMMARY = "results/experiments/summary.tsv"
SUMMARY_TABLE = "results/experiments/summary.html"
SUMMARY_FIGURE = "results/experiments/figures/{name}.png"


def per_summary_run(pattern):
    """`pattern` (with {experiment}, {tying} and {seed}) for every run of every experiment, in summary_runs() order."""
    return [fill(pattern, experiment=e, tying=tying, seed=seed) for e, tying, seed in summary_runs()]


def summary_inputs():
    """Every run's analysis table, experiment by experiment, in summary_runs() order."""
    return per_summary_run(ANALYSIS_TABLE)


def epoch_tables():
    """Each experiment's epochs table (the freeze onsets), in EXPERIMENTS order."""
    return [fill(EPOCH_TABLE, experiment=experiment) for experiment in EXPERIMENTS]


def freeze_summaries():
    """Each experiment's freeze summary, in EXPERIMENTS order."""
    return [fill(FREEZE_SUMMARY, experiment=experiment) for experiment in EXPERIMENTS]


def summary_settings():
    """Each experiment's training sections (the summary names the values that differ between them)."""
    resolved = {name: flannel.config.run_config(experiment) for name, experiment in EXPERIMENTS.items()}
    return canonical({"experiments": resolved, "figures": config["figures"]})


def across_experiment_figure_outputs():
    return {
        name: report(
            fill(SUMMARY_FIGURE, name=name),
            caption=f"../workflow/report/{name}.rst",
            category=figure.category,
            labels={"figure": name, "shows": figure.shows},
        )
        for name, figure in flannel.report.figures.ACROSS_EXPERIMENTS.items()
    }


def summary_targets():
    figures = [fill(SUMMARY_FIGURE, name=name) for name in flannel.report.figures.ACROSS_EXPERIMENTS]
    return [SUMMARY, SUMMARY_TABLE] + figures
