"""Config validation: the JSON schema (with its defaults) plus the rules that span several keys.

Every error is one line naming the key, so a bad value stops the run before any job starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .errors import ConfigError

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
# The sections a run's bytes depend on; `runs`, `sanity` and `figures` only choose what is done with runs.
TRAINING_SECTIONS = ("data", "model", "training", "recording")


def validate(config: dict, schema: str | Path = SCHEMA) -> dict:
    """Fill defaults into `config` in place (as snakemake.utils.validate does), check it, return it."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as snakemake_validate

    try:
        snakemake_validate(config, str(schema), set_default=True)
    except WorkflowError as error:
        raise ConfigError(_one_line(error)) from None
    _check_cross_keys(config)
    return config


def load(path: str | Path, schema: str | Path = SCHEMA) -> dict:
    """Read a config YAML and validate it."""
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    return validate(config, schema)


def defaults(schema: str | Path = SCHEMA) -> dict:
    """The complete default config."""
    return validate({}, schema)


def _one_line(error: Exception) -> str:
    cause = error.__context__  # snakemake re-raises jsonschema's ValidationError inside its except block
    if not hasattr(cause, "absolute_path"):
        return " ".join(str(error).split())
    path = [str(p) for p in cause.absolute_path]
    if cause.validator == "additionalProperties":
        unknown = sorted(set(cause.instance) - set(cause.schema.get("properties", {})))
        keys = ", ".join(repr(".".join(path + [name])) for name in unknown)
        return f"config key {keys}: unknown key (allowed: {', '.join(cause.schema.get('properties', {}))})"
    return f"config key '{'.'.join(path) or '(top level)'}': {cause.message}"


def _check_cross_keys(config: dict) -> None:
    model, training, runs, recording = config["model"], config["training"], config["runs"], config["recording"]
    if model["n_embd"] % model["n_head"]:
        raise ConfigError(f"config key 'model.n_head': {model['n_head']} does not divide model.n_embd = {model['n_embd']}")
    if training["seq_len"] > model["n_positions"]:
        raise ConfigError(
            f"config key 'training.seq_len': {training['seq_len']} exceeds model.n_positions = {model['n_positions']}"
        )
    if training["steps"] % recording["record_every"]:
        raise ConfigError(
            f"config key 'recording.record_every': {recording['record_every']} does not divide training.steps = {training['steps']}"
        )
    if training["warmup_steps"] > training["steps"]:
        raise ConfigError(f"config key 'training.warmup_steps': {training['warmup_steps']} exceeds training.steps")
    if training["param_dtype"] == "float32" and training["compute_dtype"] == "bfloat16":
        raise ConfigError("config key 'training.compute_dtype': bfloat16 compute needs param_dtype bfloat16")
    if not runs["tied"] and not runs["untied"]:
        raise ConfigError("config key 'runs': no run listed (runs.tied and runs.untied are both empty)")
    if runs["reference_seed"] not in runs["tied"]:
        raise ConfigError(
            f"config key 'runs.reference_seed': {runs['reference_seed']} is not one of the tied seeds {runs['tied']}"
        )
    warmup = config["sanity"]["replica_warmup_seed"]
    if warmup is not None and warmup == runs["reference_seed"]:
        raise ConfigError("config key 'sanity.replica_warmup_seed': must differ from runs.reference_seed")


def file_not_found(key: str, path: str) -> ConfigError:
    """A config-named input file that nothing provides. Checked when a job needs the file, not here: another
    rule (of a host workflow) or a storage provider may make it after the config is read."""
    return ConfigError(f"config key '{key}': file not found: {path}")


def training_json(config: dict) -> str:
    """The training sections as canonical JSON: what a run's header records, and the rules' param that reruns
    training when a value changes (Snakemake compares params as text, so key order alone must not count)."""
    return json.dumps({section: config[section] for section in TRAINING_SECTIONS}, sort_keys=True)


def data_seed(config: dict, seed: int) -> int:
    """Seed of the batch order of run `seed`."""
    chosen = config["training"]["data_seed"]
    return seed if chosen is None else chosen


def replica_warmup_seed(config: dict) -> int:
    chosen = config["sanity"]["replica_warmup_seed"]
    return config["runs"]["reference_seed"] + 1 if chosen is None else chosen


def sanity_settings(config: dict) -> dict:
    """What the sanity checks need of the config (flannel.report)."""
    return {"reference_seed": config["runs"]["reference_seed"], "warmup_seed": replica_warmup_seed(config),
            "steps": config["training"]["steps"], "record_every": config["recording"]["record_every"],
            "compare_steps": config["sanity"]["compare_steps"], "init_scale": config["model"]["init_scale"]}
