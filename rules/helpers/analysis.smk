# The paths and input/output helpers of rules/analysis.smk (the linter keeps functions out of rule files).
ANALYSIS_TABLE = "results/{experiment}/analysis/{tying}/seed{seed}.tsv"
DECOMPOSITION = "results/{experiment}/analysis/decomposition/seed{seed}.tsv"
ADAM_TABLE = "results/{experiment}/analysis/adam/{tying}/seed{seed}.tsv"
LATTICE_STEPS = "results/{experiment}/analysis/lattice/{tying}/seed{seed}.tsv"
LATTICE_ROWS = "results/{experiment}/analysis/lattice/{tying}/seed{seed}.rows.tsv"
EPOCH_SERIES = "results/{experiment}/analysis/epochs/{tying}/seed{seed}.tsv"
EPOCH_TABLE = "results/{experiment}/analysis/epochs/epochs.tsv"
EPOCH_SUMMARY = "results/{experiment}/analysis/epochs/summary.tsv"
EPOCH_REPORT = "results/{experiment}/report/epochs.html"
DISTANCES = "results/{experiment}/analysis/distances/seed{seed}.tsv"
DISTANCE_ROWS = "results/{experiment}/analysis/distances/seed{seed}.rows.safetensors"
SWEEP_DISTANCE = "results/{experiment}/analysis/distances/sweep.tsv"
HOP_STEPS = "results/{experiment}/analysis/hops/{tying}/seed{seed}.tsv"
FREEZE_CAUSES = "results/{experiment}/analysis/hops/{tying}/seed{seed}.causes.tsv"
PHASE_STEPS = "results/{experiment}/analysis/phases/{tying}/seed{seed}.tsv"
PHASE_ROWS = "results/{experiment}/analysis/phases/{tying}/seed{seed}.rows.tsv"
PHASE_RUNS = "results/{experiment}/analysis/phases/{tying}/seed{seed}.runs.tsv"
KINETICS_STEPS = "results/{experiment}/analysis/kinetics/{tying}/seed{seed}.tsv"
KINETICS_RUNS = "results/{experiment}/analysis/kinetics/{tying}/seed{seed}.runs.tsv"
H_MEAN_STEPS = "results/{experiment}/analysis/h_mean/{tying}/seed{seed}.tsv"
H_MEAN_RUNS = "results/{experiment}/analysis/h_mean/{tying}/seed{seed}.runs.tsv"
H_MEAN_TOKENS = "results/{experiment}/analysis/h_mean/{tying}/seed{seed}.tokens.tsv"
LIFESPAN_ROWS = "results/{experiment}/analysis/lifespan/{tying}/seed{seed}.rows.tsv"
LIFESPAN_RUNS = "results/{experiment}/analysis/lifespan/{tying}/seed{seed}.tsv"
FREEZE_SUMMARY = "results/{experiment}/analysis/freeze_summary.tsv"
FREEZE_ACROSS_RUNS = "results/{experiment}/analysis/freeze_summary_across_runs.tsv"


def analysis_settings(*keys):
    """Some keys of the analysis section as canonical JSON: a rule reruns only when its own keys change."""
    return canonical({key: config["analysis"][key] for key in keys})


def analysis_tables(wildcards):
    """Every run's analysis table, in run_ids() order."""
    return per_run(wildcards.experiment, ANALYSIS_TABLE)


def lifespan_tables(wildcards):
    """Every run's lifespan run table, in run_ids() order."""
    return per_run(wildcards.experiment, LIFESPAN_RUNS)


def paired_files(experiment, pattern):
    """`pattern` (with {experiment} and {seed}) for every seed trained both tied and untied."""
    return [
        fill(pattern, experiment=experiment, seed=seed)
        for seed in flannel.report.figures.paired_seeds(runs_of(experiment))
    ]


def decomposition_tables(wildcards):
    return paired_files(wildcards.experiment, DECOMPOSITION)


def epoch_series_files(wildcards):
    return per_run(wildcards.experiment, EPOCH_SERIES)


def lattice_row_files(wildcards):
    """Every run's lattice rows table (each row's freeze step), in run_ids() order."""
    return per_run(wildcards.experiment, LATTICE_ROWS)


def epoch_table_outputs():
    return {
        "table": EPOCH_TABLE,
        "summary": EPOCH_SUMMARY,
        "report": report(
            EPOCH_REPORT,
            caption="../workflow/report/epochs.rst",
            category="Tables",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "table": "epochs of the dead cloud"},
        ),
    }


def tied_seeds(wildcards):
    return runs_of(wildcards.experiment)["tied"]


def tied_runs(wildcards):
    return [fill(RUN, experiment=wildcards.experiment, tying="tied", seed=seed) for seed in tied_seeds(wildcards)]


def sweep_tables(experiment):
    """The sweep's distance table, when the experiment's tied runs form a sweep."""
    return [fill(SWEEP_DISTANCE, experiment=experiment)] if flannel.report.figures.is_sweep(runs_of(experiment)) else []


def analysis_targets(experiment):
    """The tables the default target asks for itself (the figures ask for the rest)."""
    return (
        [
            fill(path, experiment=experiment)
            for path in (EPOCH_SUMMARY, EPOCH_REPORT, EPOCH_TABLE, FREEZE_SUMMARY, FREEZE_ACROSS_RUNS)
        ]
        + paired_files(experiment, DISTANCES)
        + per_run(experiment, H_MEAN_TOKENS)
        + sweep_tables(experiment)
    )


def freeze_summary_inputs(wildcards):
    """Every run's hop table, freeze causes, global-freeze runs, kinetics and h_mean scalars, in run_ids() order."""
    patterns = {
        "hops": HOP_STEPS,
        "causes": FREEZE_CAUSES,
        "phase_runs": PHASE_RUNS,
        "kinetics": KINETICS_RUNS,
        "h_mean": H_MEAN_RUNS,
    }
    return {name: per_run(wildcards.experiment, pattern) for name, pattern in patterns.items()}
