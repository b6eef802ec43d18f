# The paths and input/output helpers of rules/figures.smk (the linter keeps functions out of rule files).
FIGURE = "results/{experiment}/figures/{name}.png"
REPORT_TABLE = "results/{experiment}/report/{name}.html"
FILM = "results/{experiment}/figures/film/{tying}/seed{seed}.mp4"
FILM_PAGE = "results/{experiment}/report/film/{tying}/seed{seed}.html"
EXPLORER = "results/{experiment}/report/explorer/{tying}/seed{seed}.html"
REPORT_TABLES = {
    "run_summary": "one row per run",
    "first_step": "step 1 against lr x sqrt(D)",
    "findings": "notebook 1.20b's next steps and the series' open questions, answered",
}


def figure_inputs(wildcards):
    """The named input lists the figures read: the tables of every run, the reference seed's recordings
    (per-row views), the decomposition tables, the Adam accounting and lattice tables (rows: the reference seed's),
    the epoch series and table, the tied-vs-untied distances (with the shown seed's rows and its tied lattice rows,
    to sort them by freeze step), the sweep's distances, every run's hop, five-phase, kinetics, h_mean and
    lifespan tables with the freeze summary, and the reference run's h_mean token table."""
    experiment, runs = wildcards.experiment, runs_of(wildcards.experiment)
    reference, paired = runs["reference_seed"], flannel.report.figures.paired_seeds(runs)
    shown = flannel.report.figures.shown_seed(reference, paired)
    shown = [] if shown is None else [shown]

    def of(pattern, tying, seeds):
        return [fill(pattern, experiment=experiment, tying=tying, seed=seed) for seed in seeds]

    reference_of = {tying: [reference] if reference in runs[tying] else [] for tying in ("tied", "untied")}
    return {
        **{tying: of(ANALYSIS_TABLE, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"{tying}_run": of(RUN, tying, reference_of[tying]) for tying in ("tied", "untied")},
        "decomposition": decomposition_tables(wildcards),
        **{f"adam_{tying}": of(ADAM_TABLE, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"lattice_{tying}": of(LATTICE_STEPS, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"lattice_rows_{tying}": of(LATTICE_ROWS, tying, reference_of[tying]) for tying in ("tied", "untied")},
        **{f"epochs_{tying}": of(EPOCH_SERIES, tying, runs[tying]) for tying in ("tied", "untied")},
        "epochs_table": [fill(EPOCH_TABLE, experiment=experiment)],
        "distances": paired_files(experiment, DISTANCES),
        "distance_rows": [fill(DISTANCE_ROWS, experiment=experiment, seed=seed) for seed in shown],
        "distance_lattice": of(LATTICE_ROWS, "tied", shown),
        "sweep_distance": sweep_tables(experiment),
        **{f"hops_{tying}": of(HOP_STEPS, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"phases_{tying}": of(PHASE_STEPS, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"kinetics_{tying}": of(KINETICS_STEPS, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"h_mean_{tying}": of(H_MEAN_STEPS, tying, runs[tying]) for tying in ("tied", "untied")},
        "h_mean_tokens": of(H_MEAN_TOKENS, "tied", reference_of["tied"])
        or of(H_MEAN_TOKENS, "untied", reference_of["untied"]),
        "freeze_summary": [fill(FREEZE_SUMMARY, experiment=experiment)],
        **{f"lifespan_{tying}": of(LIFESPAN_RUNS, tying, runs[tying]) for tying in ("tied", "untied")},
        **{f"lifespan_rows_{tying}": of(LIFESPAN_ROWS, tying, runs[tying]) for tying in ("tied", "untied")},
    }


def figure_outputs():
    """Every registered figure, a report entry of its own (caption, category, labels) per experiment; a figure
    an experiment cannot draw is a card saying why (flannel.report.figures.missing)."""
    return {
        name: report(
            fill(FIGURE, name=name),
            caption=f"../workflow/report/{name}.rst",
            category=figure.category,
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "figure": name.split("_")[0], "shows": figure.shows},
        )
        for name, figure in flannel.report.figures.FIGURES.items()
    }


def figure_settings(wildcards):
    experiment = EXPERIMENTS[wildcards.experiment]
    runs = experiment["runs"]
    seeds = {
        "tied": runs["tied"],
        "untied": runs["untied"],
        "paired": flannel.report.figures.paired_seeds(runs),
        "reference": runs["reference_seed"],
    }
    return canonical(
        {"seeds": seeds, "quantities": experiment["recording"]["quantities"], "figures": config["figures"]}
    )


def experiment_n_embd(wildcards):
    return EXPERIMENTS[wildcards.experiment]["model"]["n_embd"]


def report_table_outputs():
    return {
        name: report(
            fill(REPORT_TABLE, name=name),
            caption=f"../workflow/report/{name}.rst",
            category="Tables",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "table": label},
        )
        for name, label in REPORT_TABLES.items()
    }


def film_settings(wildcards):
    """The film section and the figures' PCA basis: the film's only params besides its code."""
    return canonical({**config["film"], "basis": config["figures"]["basis"]})


def explorer_settings(wildcards):
    """The explorer section and the figures' PCA basis (the cloud panel's)."""
    return canonical({**config["explorer"], "basis": config["figures"]["basis"]})


def figure_targets(experiment):
    """Every figure and report table, and the film and token explorer of each reference run (any run's film and
    explorer are targets of their own)."""
    names = [(FIGURE, name) for name in flannel.report.figures.FIGURES] + [(REPORT_TABLE, n) for n in REPORT_TABLES]
    films = [
        fill(pattern, experiment=experiment, tying=tying, seed=seed)
        for tying, seed in replica_ids(experiment)
        for pattern in (FILM, EXPLORER)
    ]
    return [fill(pattern, experiment=experiment, name=name) for pattern, name in names] + films
