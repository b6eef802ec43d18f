"""The schema and the cross-key rules: defaults fill in, bad values stop with one line naming the key."""

import pytest
import yaml

from helpers import ROOT
from flannel import config as flannel_config
from flannel.config import ConfigError


def test_defaults_fill_every_section():
    config = flannel_config.defaults()
    assert set(config) == {"data", "model", "runs", "training", "recording", "experiments", "sanity", "figures",
                           "film", "explorer", "analysis"}
    assert config["film"] == {"max_frames": 200, "fps": 10, "size": [1280, 640], "dpi": 100, "live_sample": 500}
    assert config["explorer"] == {"max_points": 200} and config["figures"]["basis"] == "last_step"
    assert config["training"]["objective"] == "next_token"
    assert config["recording"]["record_every"] == 1
    assert config["analysis"] == {"early_l2": None, "mid_linf": 1.0, "speed_window": 5, "freeze_fraction": 0.9,
                                  "h_mean_window": 50}


def test_schema_defaults_are_the_embedded_default_config():
    # A module import skips `configfile:`, so the schema defaults are what an imported workflow with no config runs.
    assert flannel_config.defaults() == yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_every_schema_key_has_description_and_default():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for section, spec in schema["properties"].items():
        keys = spec.get("properties") or spec["additionalProperties"]["properties"]  # experiments: per name
        for key, prop in keys.items():
            assert "description" in prop and "default" in prop, f"{section}.{key}"


def test_shipped_configs_validate_and_every_default_key_is_commented():
    for name in ("config.yaml", "test.yaml"):
        flannel_config.load(ROOT / "config" / name)
    # flannel.yaml names the user's own corpus and tokenizer; whether they exist is checked when a job needs them
    # (tests/workflow/test_faults.py), so the config is valid without them.
    assert not (ROOT / "data" / "flannel_model_corpus.txt").exists()
    assert flannel_config.load(ROOT / "config" / "flannel.yaml")["model"]["vocab_size"] == 10000
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert default == {section: default[section] for section in flannel_config.defaults()}
    for line in (ROOT / "config" / "config.yaml").read_text().splitlines():
        key_line = line.strip() and not line.lstrip().startswith("#") and ":" in line
        nested = line.startswith("  ") and not line.rstrip().endswith(":")
        if key_line and nested:
            assert "#" in line or line.split(":")[0].strip() in {"n_layer", "n_head", "n_embd", "steps", "batch_size",
                "learning_rate", "warmup_steps", "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay",
                "live_sample", "dpi", "reference_seed"}, line


@pytest.mark.parametrize("bad, message", [
    ({"colour": 1}, "config key 'colour': unknown key"),
    ({"training": {"stepz": 3}}, "config key 'training.stepz': unknown key"),
    ({"training": {"steps": 0}}, "config key 'training.steps': 0 is less than the minimum of 1"),
    ({"training": {"steps": "ten"}}, "config key 'training.steps': 'ten' is not of type 'integer'"),
    ({"training": {"steps": 10}, "recording": {"record_every": 3}}, "config key 'recording.record_every': 3 does not divide"),
    ({"runs": {"sideways": [1]}}, "config key 'runs.sideways': unknown key"),
    ({"runs": {"tied": [42, 42]}}, "config key 'runs.tied': [42, 42] has non-unique elements"),
    ({"runs": {"tied": [-1]}}, "config key 'runs.tied.0': -1 is less than the minimum of 0"),
    ({"runs": {"tied": [1], "reference_seed": 2}}, "config key 'runs.reference_seed': 2 is not one of the tied seeds"),
    ({"training": {"seq_len": 100}}, "config key 'training.seq_len': 100 exceeds model.n_positions = 64"),
    ({"model": {"n_head": 3}}, "config key 'model.n_head': 3 does not divide model.n_embd = 64"),
    ({"training": {"objective": "next_word"}}, "config key 'training.objective': 'next_word' is not one of"),
    ({"training": {"param_dtype": "float32", "compute_dtype": "bfloat16"}}, "config key 'training.compute_dtype'"),
])
def test_bad_values_name_the_key_in_one_line(bad, message):
    with pytest.raises(ConfigError) as error:
        flannel_config.validate(bad)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_config_readme_covers_every_config_file_and_every_schema_key():
    text = (ROOT / "config" / "README.md").read_text()
    for path in (ROOT / "config").glob("*.yaml"):
        assert f"`config/{path.name}`" in text, path.name
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for section, spec in schema["properties"].items():
        assert f"### `{section}`" in text, section
        group = text.split(f"### `{section}`", 1)[1].split("\n### ", 1)[0]
        keys = spec.get("properties") or spec["additionalProperties"]["properties"]  # experiments: per name
        for key in keys:
            assert f"| `{key}` |" in group, f"{section}.{key}"
