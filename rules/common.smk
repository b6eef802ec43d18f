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
import flannel.figures  # noqa: E402
from flannel.codedigest import code_digest as _code_digest  # noqa: E402

flannel.config.validate(
    config,
    REPOSITORY / "workflow" / "schemas" / "config.schema.yaml",
    command_line=dict(workflow.config_settings.config),
)

SCRIPTS = REPOSITORY / "workflow" / "scripts"
RUNS = config["runs"]
REFERENCE_SEED = RUNS["reference_seed"]


wildcard_constraints:
    tying="tied|untied",
    seed=r"\d+",


def code_digest(script):
    """A digest of the package modules `script` imports (derived from its imports), passed as a param so
    that editing them reruns the rule; comments and docstrings do not count."""
    return _code_digest(SCRIPTS / script, SRC / "flannel")


def canonical(value):
    """A config value as canonical JSON: Snakemake compares params as text, so key order alone never reruns."""
    return json.dumps(value, sort_keys=True)


def corpus_path():
    return config["data"]["corpus"] or "results/data/demo/model_corpus.txt"


def tokenizer_corpus_path():
    return config["data"]["tokenizer_corpus"] or "results/data/demo/tokenizer_corpus.txt"


def tokenizer_path():
    return config["data"]["tokenizer"] or "results/data/tokenizer.json"


def run_ids():
    """(tying, seed) of every run the config lists, tied first."""
    return [[tying, seed] for tying in ("tied", "untied") for seed in RUNS[tying]]


def run_files():
    return [f"results/runs/{tying}/seed{seed}.safetensors" for tying, seed in run_ids()]


def accounting_files():
    """The Adam accounting table of every run, in run_ids() order (sanity check 9 reads them)."""
    return [f"results/analysis/adam/{tying}/seed{seed}.tsv" for tying, seed in run_ids()]


def replica_ids():
    """The reference seed's runs, retrained after another seed in one process: tied, and untied if listed."""
    return [[tying, REFERENCE_SEED] for tying in ("tied", "untied") if REFERENCE_SEED in RUNS[tying]]


def replica_files():
    return [f"results/sanity/replica/{tying}/seed{seed}.safetensors" for tying, seed in replica_ids()]


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


def legacy_inputs():
    """The notebooks' files are inputs only when the config names them."""
    keys = ("legacy_flannel1", "legacy_flannel3", "legacy_masks")
    return {key: config["sanity"][key] for key in keys if config["sanity"][key]}


def data_targets():
    return [
        "results/data/token_stats.json",
        "results/data/live_dead_tokens.safetensors",
        "results/data/live_dead_tokens.csv",
    ]


def sanity_targets():
    return [
        "results/sanity/report.json",
        "results/sanity/report.md",
        "results/sanity/manifest.tsv",
        "results/sanity/verdict.txt",
    ]


def figure_targets():
    return [f"results/figures/{name}.png" for name in flannel.figures.drawable(RUNS, config["recording"]["quantities"])]


def figure_inputs():
    """The named input lists the figures read: the tables of every run, the reference seed's recordings
    (per-row views), the decomposition tables, the Adam accounting and lattice tables (rows: the reference seed's)."""
    paired = flannel.figures.paired_seeds(RUNS)
    return {
        "tied": [f"results/analysis/tied/seed{seed}.tsv" for seed in RUNS["tied"]],
        "untied": [f"results/analysis/untied/seed{seed}.tsv" for seed in RUNS["untied"]],
        "tied_run": [f"results/runs/tied/seed{REFERENCE_SEED}.safetensors"],
        "untied_run": (
            [f"results/runs/untied/seed{REFERENCE_SEED}.safetensors"] if REFERENCE_SEED in RUNS["untied"] else []
        ),
        "decomposition": [f"results/analysis/decomposition/seed{seed}.tsv" for seed in paired],
        "adam_tied": [f"results/analysis/adam/tied/seed{seed}.tsv" for seed in RUNS["tied"]],
        "adam_untied": [f"results/analysis/adam/untied/seed{seed}.tsv" for seed in RUNS["untied"]],
        "lattice_tied": [f"results/analysis/lattice/tied/seed{seed}.tsv" for seed in RUNS["tied"]],
        "lattice_untied": [f"results/analysis/lattice/untied/seed{seed}.tsv" for seed in RUNS["untied"]],
        "lattice_rows": [
            f"results/analysis/lattice/{tying}/seed{REFERENCE_SEED}.rows.tsv"
            for tying in ("tied", "untied")
            if REFERENCE_SEED in RUNS[tying]
        ],
    }


def figure_outputs():
    """Each figure a report entry of its own: caption, category, labels."""
    return {
        name: report(
            f"results/figures/{name}.png",
            caption=f"../workflow/report/{name}.rst",
            category=flannel.figures.FIGURES[name].category,
            labels={"figure": name.split("_")[0], "shows": flannel.figures.FIGURES[name].shows},
        )
        for name in flannel.figures.drawable(RUNS, config["recording"]["quantities"])
    }


def analysis_tables():
    """Every run's analysis table, in run_ids() order."""
    return [f"results/analysis/{tying}/seed{seed}.tsv" for tying, seed in run_ids()]


def report_table_outputs():
    return {
        name: report(
            f"results/report/{name}.html",
            caption=f"../workflow/report/{name}.rst",
            category="Tables",
            labels={"table": label},
        )
        for name, label in (
            ("token_stats", "token statistics"),
            ("run_summary", "one row per run"),
            ("first_step", "step 1 against lr x sqrt(D)"),
        )
    }


def figure_settings():
    seeds = {
        "tied": RUNS["tied"],
        "untied": RUNS["untied"],
        "paired": flannel.figures.paired_seeds(RUNS),
        "reference": REFERENCE_SEED,
    }
    return canonical({"seeds": seeds, "figures": config["figures"]})


def all_targets():
    moved = [f.replace(".safetensors", ".moved.tsv") for f in run_files()]
    tables = ["results/report/token_stats.html", "results/report/run_summary.html"]
    return data_targets() + run_files() + moved + sanity_targets() + figure_targets() + tables


def train_mem_mb(wildcards):
    """The model, the fp32 logits of one batch and the per-step record copies; never the whole recording."""
    model, training = config["model"], config["training"]
    logits_mb = training["batch_size"] * training["seq_len"] * model["vocab_size"] * 4 * 6 / 2**20
    return int(1024 + logits_mb)


# Training jobs ask SLURM for a GPU only when the config trains on one.
TRAINING_GPUS = 1 if config["training"]["device"] == "cuda" else 0


def train_runtime_min(wildcards):
    """Minutes for SLURM, from a conservative 0.5 steps/s."""
    return int(10 + config["training"]["steps"] / 0.5 / 60)


def replica_runtime_min(wildcards):
    """Two trainings back to back: the warm-up seed, then the replica."""
    return 2 * train_runtime_min(wildcards)
