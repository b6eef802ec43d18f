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
# The sections an experiment may override; the data are shared by every experiment.
EXPERIMENT_SECTIONS = ("model", "training", "recording", "runs")


def validate(config: dict, schema: str | Path = SCHEMA, command_line: dict | None = None) -> dict:
    """Fill defaults into `config` in place (as snakemake.utils.validate does), check it, return it.
    `command_line`: the values given with `snakemake --config`, whose nested leaves arrive as strings."""
    with open(schema, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    if command_line:
        read_command_line_values(config, command_line, spec)
    if isinstance(config.get("experiments"), dict):  # `name:` with nothing after it: no overrides
        config["experiments"] = {name: {} if value is None else value for name, value in config["experiments"].items()}
    _check_whole(config, schema, spec, set_default=True)
    for name in config["experiments"]:
        _validate_experiment(config, name, schema, spec)
    return config


def _check_whole(config: dict, schema, spec: dict, set_default: bool) -> None:
    """The schema (filling its defaults if asked), integers to the letter, and the rules across keys."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as snakemake_validate

    try:
        snakemake_validate(config, str(schema), set_default=set_default)
    except WorkflowError as error:
        raise ConfigError(_one_line(error)) from None
    _check_integers(config, spec)
    _check_cross_keys(config)


def _validate_experiment(config: dict, name: str, schema, spec: dict) -> None:
    """An experiment's resolved config, checked as a whole config; errors name the experiment's key."""
    if "format" in config["experiments"][name].get("recording", {}):
        raise ConfigError(f"config key 'experiments.{name}.recording.format': the run files' container is one for "
                          "the whole workflow; set recording.format at the top level")
    if "vocab_size" in config["experiments"][name].get("model", {}):
        raise ConfigError(f"config key 'experiments.{name}.model.vocab_size': the data (tokenizer, token ids, "
                          "masks) are shared by every experiment; set model.vocab_size at the top level")
    try:
        _check_whole(experiment_config(config, name), schema, spec, set_default=False)
    except ConfigError as error:
        raise ConfigError(str(error).replace("config key '", f"config key 'experiments.{name}.", 1)) from None


def experiment_names(config: dict) -> list[str]:
    """The experiments the config names, in its order; with none, the one experiment `main`."""
    return list(config["experiments"]) or ["main"]


def experiment_config(config: dict, name: str) -> dict:
    """The whole config of one experiment: each overridden section's keys replace the top-level ones."""
    overrides = config["experiments"].get(name) or {}
    resolved = {section: value for section, value in config.items() if section != "experiments"}
    for section in EXPERIMENT_SECTIONS:
        if isinstance(overrides.get(section), dict):
            resolved[section] = {**config[section], **overrides[section]}
    resolved["experiments"] = {}
    return resolved


def _check_integers(value, schema: dict, path: str = "") -> None:
    """JSON Schema counts 20.0 as an integer; a step count, seed or size must be one to the letter."""
    kinds = schema.get("type", [])
    if "integer" in (kinds if isinstance(kinds, list) else [kinds]) and isinstance(value, float):
        raise ConfigError(f"config key '{path}': {value!r} is not an integer (write {int(value)})"
                          if value.is_integer() else f"config key '{path}': {value!r} is not an integer")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_integers(item, schema.get("properties", {}).get(key, {}), f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_integers(item, schema.get("items", {}), f"{path}.{index}")


def read_command_line_values(config: dict, given: dict, schema: dict) -> None:
    """Snakemake parses a nested `--config` value with YAML's BaseLoader, so every leaf of it arrives as a
    string ('25', 'null', ['42', '43']). Where the schema wants a number, boolean, null or array, read such a
    string as YAML and keep the result if it is of a wanted type; anything else stays as given, for the
    schema to refuse with its usual line. Only the command line's own values are read: a config file's never."""
    properties = schema.get("properties", {})
    for key, value in given.items():
        if key not in properties or key not in config:
            continue
        if key == "experiments" and isinstance(value, dict):
            _read_experiment_values(config[key], value, schema)
            continue
        if isinstance(value, dict) and isinstance(config[key], dict):
            read_command_line_values(config[key], value, properties[key])
        elif config[key] is value or config[key] == value:
            config[key] = _typed(value, properties[key])


def _read_experiment_values(experiments: dict, given: dict, schema: dict) -> None:
    """An experiment's overrides from the command line, typed as the top-level sections they override."""
    for name, sections in given.items():
        if isinstance(sections, dict) and isinstance(experiments.get(name), dict):
            read_command_line_values(experiments[name], sections,
                                     {"properties": {s: schema["properties"][s] for s in EXPERIMENT_SECTIONS}})


def _typed(value, schema: dict):
    """`value` (a string, or a list of them, from the command line) as the type the schema wants."""
    if isinstance(value, list):
        return [_typed(item, schema.get("items", {})) for item in value]
    wanted = set(schema["type"]) if isinstance(schema.get("type"), list) else {schema.get("type")}
    if not isinstance(value, str) or not wanted - {"string", None}:
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    kinds = {"integer": isinstance(parsed, int) and not isinstance(parsed, bool),
             "number": isinstance(parsed, (int, float)) and not isinstance(parsed, bool),
             "boolean": isinstance(parsed, bool), "null": parsed is None, "array": isinstance(parsed, list)}
    if not any(kinds.get(kind) for kind in wanted):
        return value
    return _typed(parsed, schema) if isinstance(parsed, list) else parsed


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
    if "propertyNames" in cause.schema_path:
        return (f"config key '{'.'.join(path + [str(cause.instance)])}': not a usable name (letters, digits, "
                "'_', '.', '-'; not 'data' or 'experiments', which results/ uses for other outputs)")
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
    if "embeddings" not in recording["quantities"]:
        raise ConfigError(f"config key 'recording.quantities': {recording['quantities']} lacks embeddings, which every "
                          "analysis and check reads")
    if not runs["tied"] and not runs["untied"]:
        raise ConfigError("config key 'runs': no run listed (runs.tied and runs.untied are both empty)")
    if runs["reference_seed"] not in runs["tied"]:
        raise ConfigError(
            f"config key 'runs.reference_seed': {runs['reference_seed']} is not one of the tied seeds {runs['tied']}"
        )
    for key in ("corpus", "tokenizer", "tokenizer_corpus"):
        path = config["data"][key]
        if path and ("{" in path or "}" in path):
            raise ConfigError(f"config key 'data.{key}': {path}: braces in a path are not allowed (Snakemake reads them as wildcards)")
    warmup = config["sanity"]["replica_warmup_seed"]
    if warmup is not None and warmup == runs["reference_seed"]:
        raise ConfigError("config key 'sanity.replica_warmup_seed': must differ from runs.reference_seed")


def file_not_found(key: str, path: str) -> ConfigError:
    """A config-named input file that nothing provides. Checked when a job needs the file, not here: another
    rule (of a host workflow) or a storage provider may make it after the config is read."""
    return ConfigError(f"config key '{key}': file not found: {path}")


def run_config(config: dict) -> dict:
    """The training sections as far as they decide a run's bytes: what its header records and what readers
    compare. Left out: training.log_every (progress lines only), training.checkpoint_every (a resumed run has
    the same bytes), recording.format (the container, not the tensors) and recording.live_sample while
    recording.rows is all (unused). Sections `config` lacks stay absent."""
    sections = {section: dict(config[section]) for section in TRAINING_SECTIONS if section in config}
    sections.get("training", {}).pop("log_every", None)
    sections.get("training", {}).pop("checkpoint_every", None)
    sections.get("recording", {}).pop("format", None)
    if sections.get("recording", {}).get("rows", "all") == "all":
        sections.get("recording", {}).pop("live_sample", None)
    return sections


def training_json(config: dict) -> str:
    """run_config as canonical JSON: what a run's header records, and the rules' param that reruns training
    when a value changes (Snakemake compares params as text, so key order alone must not count)."""
    return json.dumps(run_config(config), sort_keys=True)


def data_seed(config: dict, seed: int) -> int:
    """Seed of the batch order of run `seed`."""
    chosen = config["training"]["data_seed"]
    return seed if chosen is None else chosen


def init_seed(config: dict, seed: int) -> int:
    """Seed of the model initialisation of run `seed`."""
    chosen = config["training"]["init_seed"]
    return seed if chosen is None else chosen


def replica_warmup_seed(config: dict) -> int:
    chosen = config["sanity"]["replica_warmup_seed"]
    return config["runs"]["reference_seed"] + 1 if chosen is None else chosen


def sanity_settings(config: dict) -> dict:
    """What the sanity checks need of the config (flannel.sanity.report)."""
    return {"reference_seed": config["runs"]["reference_seed"], "warmup_seed": replica_warmup_seed(config),
            "steps": config["training"]["steps"], "record_every": config["recording"]["record_every"],
            "compare_steps": config["sanity"]["compare_steps"], "init_scale": config["model"]["init_scale"],
            "init_seed": config["training"]["init_seed"]}
