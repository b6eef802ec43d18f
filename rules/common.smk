# Config validation, wildcard constraints, target lists and the code digests that make rules rerun when
# the package code they run changes (Snakemake tracks a script's own mtime, not the modules it imports).
import hashlib
import json
import os
import sys
from pathlib import Path

# The package lives in src/; the scripts' own processes (local or SLURM jobs, which re-read this file)
# find it through PYTHONPATH, which the workflow sets rather than requires (so no envvars: directive).
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
import flannel.config  # noqa: E402

flannel.config.validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

PACKAGE = Path(workflow.basedir) / "src" / "flannel"
TRAINING_MODULES = ("config", "data", "model", "training", "recording", "outputs")


wildcard_constraints:
    tying="tied|untied",
    seed=r"\d+",


def code_digest(*modules):
    """A digest of the package modules a rule runs, passed as a param so that editing them reruns it."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update((PACKAGE / f"{module}.py").read_bytes())
    return digest.hexdigest()[:16]


def corpus_path():
    return config["data"]["corpus"] or "results/data/demo/model_corpus.txt"


def tokenizer_corpus_path():
    return config["data"]["tokenizer_corpus"] or "results/data/demo/tokenizer_corpus.txt"


def tokenizer_path():
    return config["data"]["tokenizer"] or "results/data/tokenizer.json"


def run_files():
    return [
        f"results/runs/{tying}/seed{seed}.safetensors"
        for tying in ("tied", "untied")
        for seed in config["runs"][tying]
    ]


def data_targets():
    return [
        "results/data/token_stats.json",
        "results/data/live_dead_tokens.safetensors",
        "results/data/live_dead_tokens.csv",
    ]


def all_targets():
    moved = [f.replace(".safetensors", ".moved.tsv") for f in run_files()]
    return data_targets() + run_files() + moved + sanity_targets() + figure_targets()


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
