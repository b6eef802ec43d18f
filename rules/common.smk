# Config validation, wildcard constraints, the runs and target lists, and the code digests that make rules
# rerun when the package code their script runs changes.
import json
import os
import re
import sys
from pathlib import Path

# Paths from this file's own folder, not workflow.basedir: a host workflow that imports this one as a module
# has its own basedir. The package lives in src/; the scripts' own processes (local or SLURM jobs, which
# re-read this file) find it through PYTHONPATH, which the workflow sets rather than requires (so no envvars:
# directive).
REPOSITORY = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parent
SRC = REPOSITORY / "src"
sys.path.insert(0, str(SRC))
# workflow/startup holds a sitecustomize that makes Ctrl-C one line while a job's script process starts up.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [str(SRC), str(REPOSITORY / "workflow" / "startup"), os.environ.get("PYTHONPATH")])
    ),
    # envs/flannel.yaml installs the package from here (conda reads a copy of it, elsewhere).
    FLANNEL_ROOT=str(REPOSITORY),
)
import flannel.config  # noqa: E402
import flannel.report.figures  # noqa: E402
from flannel.codedigest import code_digest as _code_digest  # noqa: E402

flannel.config.validate(
    config,
    REPOSITORY / "workflow" / "schemas" / "config.schema.yaml",
    command_line=dict(workflow.config_settings.config),
)

SCRIPTS = REPOSITORY / "workflow" / "scripts"
# Each experiment's whole config (flannel.config.experiment_config): the top-level sections with its overrides.
EXPERIMENTS = {name: flannel.config.experiment_config(config, name) for name in flannel.config.experiment_names(config)}


wildcard_constraints:
    experiment="|".join(re.escape(name) for name in EXPERIMENTS),
    tying="tied|untied",
    seed=r"\d+",


def code_digest(script):
    """A digest of the package modules `script` imports (derived from its imports), passed as a param so
    that editing them reruns the rule; comments and docstrings do not count."""
    return _code_digest(SCRIPTS / script, SRC / "flannel")


def canonical(value):
    """A config value as canonical JSON: Snakemake compares params as text, so key order alone never reruns."""
    return json.dumps(value, sort_keys=True)


def analysis_settings(*keys):
    """Some keys of the analysis section as canonical JSON: a rule reruns only when its own keys change."""
    return canonical({key: config["analysis"][key] for key in keys})


# ---- the shared data ---------------------------------------------------------------------------------------


def corpus_path():
    return config["data"]["corpus"] or "results/data/demo/model_corpus.txt"


def tokenizer_corpus_path():
    return config["data"]["tokenizer_corpus"] or "results/data/demo/tokenizer_corpus.txt"


def tokenizer_path():
    return config["data"]["tokenizer"] or "results/data/tokenizer.json"


def data_needs():
    """The longest batch any experiment draws and its step count: the corpus must hold one such batch."""
    trainings = [experiment["training"] for experiment in EXPERIMENTS.values()]
    return {key: max(training[key] for training in trainings) for key in ("batch_size", "seq_len", "steps")}


def config_files():
    """The input files the config names, by key; null keys name none."""
    keys = {
        "data": ("corpus", "tokenizer", "tokenizer_corpus"),
        "sanity": ("legacy_flannel1", "legacy_flannel3", "legacy_masks"),
    }
    return {
        f"{section}.{key}": config[section][key]
        for section, names in keys.items()
        for key in names
        if config[section][key]
    }


def missing_config_files():
    """Path (as the rules request it: under a module's prefix) -> config key, for each config-named file that is
    absent when the workflow is parsed. None when a default storage provider maps every input: it provides them."""
    if workflow.storage_settings.default_storage_provider is not None:
        return {}
    requested = {
        workflow.modifier.path_modifier.replace_prefix(path): key for key, path in reversed(config_files().items())
    }
    return {path: key for path, key in requested.items() if not os.path.exists(path)}


def missing_config_file_key(wildcards):
    return missing_config_files()[wildcards.path]


def missing_config_file_pattern():
    return "|".join(re.escape(path) for path in missing_config_files())


def data_targets():
    return [
        "results/data/token_stats.json",
        "results/data/live_dead_tokens.safetensors",
        "results/data/live_dead_tokens.csv",
        "results/data/token_stats.html",
    ]


# ---- one experiment's runs (`experiment`: a name; rules pass wildcards.experiment) ------------------------------


def runs_of(experiment):
    return EXPERIMENTS[experiment]["runs"]


def run_ids(experiment):
    """(tying, seed) of every run of the experiment, tied first."""
    runs = runs_of(experiment)
    return [[tying, seed] for tying in ("tied", "untied") for seed in runs[tying]]


def per_run(experiment, pattern):
    """`pattern` (with {tying} and {seed}) under results/<experiment>/, for every run in run_ids() order."""
    return [f"results/{experiment}/{pattern}".format(tying=tying, seed=seed) for tying, seed in run_ids(experiment)]


def replica_ids(experiment):
    """The reference seed's runs, retrained after another seed in one process: tied, and untied if listed."""
    runs = runs_of(experiment)
    return [[tying, runs["reference_seed"]] for tying in ("tied", "untied") if runs["reference_seed"] in runs[tying]]


def experiment_run_ids(wildcards):
    return run_ids(wildcards.experiment)


def experiment_replica_ids(wildcards):
    return replica_ids(wildcards.experiment)


def replica_warmup_seed(wildcards):
    return flannel.config.replica_warmup_seed(EXPERIMENTS[wildcards.experiment])


def experiment_training(wildcards):
    """The experiment's training sections as canonical JSON: the param that reruns its training."""
    return flannel.config.training_json(EXPERIMENTS[wildcards.experiment])


def legacy_inputs():
    """The notebooks' files are inputs only when the config names them."""
    keys = ("legacy_flannel1", "legacy_flannel3", "legacy_masks")
    return {key: config["sanity"][key] for key in keys if config["sanity"][key]}


def sanity_inputs(wildcards):
    experiment = wildcards.experiment
    return {
        **legacy_inputs(),
        "runs": per_run(experiment, "runs/{tying}/seed{seed}.safetensors"),
        "accounting": per_run(experiment, "analysis/adam/{tying}/seed{seed}.tsv"),
        "replicas": [
            f"results/{experiment}/sanity/replica/{tying}/seed{seed}.safetensors"
            for tying, seed in replica_ids(experiment)
        ],
        "masks": "results/data/live_dead_tokens.safetensors",
    }


def sanity_settings(wildcards):
    return canonical(flannel.config.sanity_settings(EXPERIMENTS[wildcards.experiment]))


def figure_inputs(wildcards):
    """The named input lists the figures read: the tables of every run, the reference seed's recordings
    (per-row views), the decomposition tables, the Adam accounting and lattice tables (rows: the reference seed's)."""
    experiment, runs = wildcards.experiment, runs_of(wildcards.experiment)
    results, reference = f"results/{experiment}", runs["reference_seed"]
    return {
        "tied": [f"{results}/analysis/tied/seed{seed}.tsv" for seed in runs["tied"]],
        "untied": [f"{results}/analysis/untied/seed{seed}.tsv" for seed in runs["untied"]],
        "tied_run": [f"{results}/runs/tied/seed{reference}.safetensors"],
        "untied_run": [f"{results}/runs/untied/seed{reference}.safetensors"] if reference in runs["untied"] else [],
        "decomposition": decomposition_tables(wildcards),
        "adam_tied": [f"{results}/analysis/adam/tied/seed{seed}.tsv" for seed in runs["tied"]],
        "adam_untied": [f"{results}/analysis/adam/untied/seed{seed}.tsv" for seed in runs["untied"]],
        "lattice_tied": [f"{results}/analysis/lattice/tied/seed{seed}.tsv" for seed in runs["tied"]],
        "lattice_untied": [f"{results}/analysis/lattice/untied/seed{seed}.tsv" for seed in runs["untied"]],
        "lattice_rows_tied": [f"{results}/analysis/lattice/tied/seed{reference}.rows.tsv"],
        "lattice_rows_untied": (
            [f"{results}/analysis/lattice/untied/seed{reference}.rows.tsv"] if reference in runs["untied"] else []
        ),
        **cloud_inputs(experiment),
    }


def figure_outputs():
    """Every registered figure, a report entry of its own (caption, category, labels) per experiment; a figure
    an experiment cannot draw is a card saying why (flannel.report.figures.missing)."""
    return {
        name: report(
            f"results/{{experiment}}/figures/{name}.png",
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


def analysis_tables(wildcards):
    """Every run's analysis table, in run_ids() order."""
    return per_run(wildcards.experiment, "analysis/{tying}/seed{seed}.tsv")


def decomposition_tables(wildcards):
    runs = runs_of(wildcards.experiment)
    return [
        f"results/{wildcards.experiment}/analysis/decomposition/seed{seed}.tsv"
        for seed in flannel.report.figures.paired_seeds(runs)
    ]


def experiment_n_embd(wildcards):
    return EXPERIMENTS[wildcards.experiment]["model"]["n_embd"]


def report_table_outputs():
    return {
        name: report(
            f"results/{{experiment}}/report/{name}.html",
            caption=f"../workflow/report/{name}.rst",
            category="Tables",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "table": label},
        )
        for name, label in (
            ("run_summary", "one row per run"),
            ("first_step", "step 1 against lr x sqrt(D)"),
            ("findings", "notebook 1.20b's next steps, answered"),
        )
    }


def epoch_series_files(wildcards):
    return per_run(wildcards.experiment, "analysis/epochs/{tying}/seed{seed}.tsv")


def lattice_row_files(wildcards):
    """Every run's lattice rows table (each row's freeze step), in run_ids() order."""
    return per_run(wildcards.experiment, "analysis/lattice/{tying}/seed{seed}.rows.tsv")


def epoch_table_outputs():
    return {
        "table": "results/{experiment}/analysis/epochs/epochs.tsv",
        "summary": "results/{experiment}/analysis/epochs/summary.tsv",
        "report": report(
            "results/{experiment}/report/epochs.html",
            caption="../workflow/report/epochs.rst",
            category="Tables",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "table": "epochs of the dead cloud"},
        ),
    }


def tied_seeds(wildcards):
    return runs_of(wildcards.experiment)["tied"]


def tied_runs(wildcards):
    return [f"results/{wildcards.experiment}/runs/tied/seed{seed}.safetensors" for seed in tied_seeds(wildcards)]


def cloud_inputs(experiment):
    """The figures' inputs from rules/cloud.smk: the epoch series and table, the tied-vs-untied distances (with
    the shown seed's rows and its tied lattice rows, to sort them by freeze step) and the sweep's distances."""
    runs, analysis = runs_of(experiment), f"results/{experiment}/analysis"
    paired = flannel.report.figures.paired_seeds(runs)
    shown_seed = flannel.report.figures.shown_seed(runs["reference_seed"], paired)
    shown = [] if shown_seed is None else [shown_seed]
    return {
        "epochs_tied": [f"{analysis}/epochs/tied/seed{seed}.tsv" for seed in runs["tied"]],
        "epochs_untied": [f"{analysis}/epochs/untied/seed{seed}.tsv" for seed in runs["untied"]],
        "epochs_table": [f"{analysis}/epochs/epochs.tsv"],
        "distances": [f"{analysis}/distances/seed{seed}.tsv" for seed in paired],
        "distance_rows": [f"{analysis}/distances/seed{seed}.rows.safetensors" for seed in shown],
        "distance_lattice": [f"{analysis}/lattice/tied/seed{seed}.rows.tsv" for seed in shown],
        "sweep_distance": [f"{analysis}/distances/sweep.tsv"] if flannel.report.figures.is_sweep(runs) else [],
    }


def cloud_targets(experiment):
    """The tables of rules/cloud.smk in the default target (the figures ask for the rest)."""
    inputs = cloud_inputs(experiment)
    return [
        f"results/{experiment}/analysis/epochs/summary.tsv",
        f"results/{experiment}/report/epochs.html",
        *inputs["epochs_table"],
        *inputs["distances"],
        *inputs["sweep_distance"],
    ]


def experiment_targets(experiment):
    results = f"results/{experiment}"
    return (
        per_run(experiment, "runs/{tying}/seed{seed}.safetensors")
        + per_run(experiment, "runs/{tying}/seed{seed}.moved.tsv")
        + [f"{results}/sanity/{name}" for name in ("report.json", "report.md", "manifest.tsv", "verdict.txt")]
        + [f"{results}/figures/{name}.png" for name in flannel.report.figures.FIGURES]
        + [f"{results}/report/{name}.html" for name in ("run_summary", "first_step", "findings")]
        + cloud_targets(experiment)
    )


# ---- across experiments -------------------------------------------------------------------------------------


def summary_inputs():
    """Every run's analysis table, experiment by experiment, in summary_runs() order."""
    return [f"results/{e}/analysis/{tying}/seed{seed}.tsv" for e, tying, seed in summary_runs()]


def epoch_tables():
    """Each experiment's epochs table (the freeze onsets), in EXPERIMENTS order."""
    return [f"results/{experiment}/analysis/epochs/epochs.tsv" for experiment in EXPERIMENTS]


def summary_runs():
    return [[experiment, tying, seed] for experiment in EXPERIMENTS for tying, seed in run_ids(experiment)]


def summary_settings():
    """Each experiment's training sections (the summary names the values that differ between them)."""
    resolved = {name: flannel.config.run_config(experiment) for name, experiment in EXPERIMENTS.items()}
    return canonical({"experiments": resolved, "figures": config["figures"]})


def across_experiment_figure_outputs():
    return {
        name: report(
            f"results/experiments/figures/{name}.png",
            caption=f"../workflow/report/{name}.rst",
            category=figure.category,
            labels={"figure": name, "shows": figure.shows},
        )
        for name, figure in flannel.report.figures.ACROSS_EXPERIMENTS.items()
    }


def summary_targets():
    return ["results/experiments/summary.tsv", "results/experiments/summary.html"] + [
        f"results/experiments/figures/{name}.png" for name in flannel.report.figures.ACROSS_EXPERIMENTS
    ]


def all_targets():
    targets = data_targets() + summary_targets()
    for experiment in EXPERIMENTS:
        targets += experiment_targets(experiment)
    return targets


# ---- resources ----------------------------------------------------------------------------------------------


def train_mem_mb(wildcards):
    """The model, the fp32 logits of one batch and the per-step record copies; never the whole recording."""
    experiment = EXPERIMENTS[wildcards.experiment]
    model, training = experiment["model"], experiment["training"]
    logits_mb = training["batch_size"] * training["seq_len"] * model["vocab_size"] * 4 * 6 / 2**20
    return int(1024 + logits_mb)


def training_gpus(wildcards):
    """Training jobs ask SLURM for a GPU only when the experiment trains on one."""
    return 1 if EXPERIMENTS[wildcards.experiment]["training"]["device"] == "cuda" else 0


def training_threads(wildcards):
    return EXPERIMENTS[wildcards.experiment]["training"]["threads"]


def train_runtime_min(wildcards):
    """Minutes for SLURM, from a conservative 0.5 steps/s."""
    return int(10 + EXPERIMENTS[wildcards.experiment]["training"]["steps"] / 0.5 / 60)


def replica_runtime_min(wildcards):
    """Two trainings back to back: the warm-up seed, then the replica."""
    return 2 * train_runtime_min(wildcards)
