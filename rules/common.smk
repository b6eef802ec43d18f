# Start-up (the package on the path), config validation, the experiments, wildcard constraints, the code digests
# that make rules rerun when the package code their script runs changes, and the lists of runs. Each stage's
# paths and input/output helpers are at the top of its own rules file.
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


# ---- one experiment's runs (`experiment`: a name; rules pass wildcards.experiment) ------------------------------


def runs_of(experiment):
    return EXPERIMENTS[experiment]["runs"]


def run_ids(experiment):
    """(tying, seed) of every run of the experiment, tied first."""
    runs = runs_of(experiment)
    return [[tying, seed] for tying in ("tied", "untied") for seed in runs[tying]]


def fill(pattern, **values):
    """`pattern` with some of its wildcards filled in; the others stay wildcards."""
    for name, value in values.items():
        pattern = pattern.replace(f"{{{name}}}", str(value))
    return pattern


def per_run(experiment, pattern):
    """`pattern` (with {experiment}, {tying} and {seed}) for every run of the experiment, in run_ids() order."""
    return [fill(pattern, experiment=experiment, tying=tying, seed=seed) for tying, seed in run_ids(experiment)]


def replica_ids(experiment):
    """The reference seed's runs, retrained after another seed in one process: tied, and untied if listed."""
    runs = runs_of(experiment)
    return [[tying, runs["reference_seed"]] for tying in ("tied", "untied") if runs["reference_seed"] in runs[tying]]


def experiment_run_ids(wildcards):
    return run_ids(wildcards.experiment)


def experiment_replica_ids(wildcards):
    return replica_ids(wildcards.experiment)


def experiment_training(wildcards):
    """The experiment's training sections as canonical JSON: the param that reruns its training."""
    return flannel.config.training_json(EXPERIMENTS[wildcards.experiment])


def summary_runs():
    """(experiment, tying, seed) of every run of every experiment."""
    return [[experiment, tying, seed] for experiment in EXPERIMENTS for tying, seed in run_ids(experiment)]


def all_targets():
    """The default target, everything the config lists: the shared data, each experiment's stages, the summary
    across experiments. Each stage's helpers (rules/helpers/) list its own targets."""
    targets = data_targets() + summary_targets()
    for experiment in EXPERIMENTS:
        targets += train_targets(experiment) + sanity_targets(experiment) + figure_targets(experiment)
        targets += analysis_targets(experiment)
    return targets
