"""Command-line overrides: `snakemake --config section='{key: value}'` hands every nested leaf over as a string;
numbers, booleans, null and lists are read as the schema types them, each through a real `snakemake -n`."""

from __future__ import annotations


import pytest
import yaml
from helpers import ROOT, copy_repo, job_counts, snakemake

from flannel import config as flannel_config


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("overrides"))


def plan(repo, *overrides: str, check=True):
    """Job name -> count of the dry run of config/test.yaml with the overrides, or the failed run."""
    result = snakemake(repo, "-n", "--cores", "1", "--configfile", "config/test.yaml", "--config", *overrides, check=check)
    return result if not check else job_counts(result.stdout)


def test_an_integer_and_a_list_of_integers(repo):
    jobs = plan(repo, "runs={tied: [42, 43, 44], untied: [], reference_seed: 42}", "training={log_every: 25}")
    assert jobs["train"] == 3 and jobs["replica"] == 1 and "decomposition" not in jobs


def test_a_float_a_boolean_null_and_a_nested_section(repo):
    jobs = plan(repo, "model={init_scale: 0.01}", "sanity={fail_on_reproducibility: false}",
                "training={max_grad_norm: null, steps: 30}", "figures={dpi: 100, pca_steps: [0, 5]}")
    assert jobs["train"] == 3


def test_an_integer_is_checked_as_one(repo):
    """record_every 7 does not divide 30 steps: the cross-key rule sees two integers."""
    result = plan(repo, "training={steps: 30}", "recording={record_every: 7}", check=False)
    assert result.returncode != 0
    assert "config key 'recording.record_every': 7 does not divide training.steps = 30" in result.stdout + result.stderr


def test_a_bad_value_still_fails_naming_the_key(repo):
    result = plan(repo, "training={steps: ten}", check=False)
    assert result.returncode != 0 and "config key 'training.steps': 'ten' is not of type 'integer'" in result.stdout + result.stderr


def test_only_command_line_strings_are_read_and_only_into_the_wanted_types():
    config = flannel_config.load(ROOT / "config" / "test.yaml")
    config["data"]["corpus"] = "001"  # from a file: never reinterpreted
    given = {"training": {"steps": "12", "device": "cpu", "data_seed": "null"}, "runs": {"tied": ["42", "7"]},
             "data": {"tokenizer": "null", "tokenizer_corpus": "042"}, "figures": {"dpi": "1e2"}}
    for section, values in given.items():
        config[section].update(values)
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    flannel_config.read_command_line_values(config, given, schema)
    assert (config["training"]["steps"], config["training"]["device"], config["training"]["data_seed"]) == (12, "cpu", None)
    assert config["runs"]["tied"] == [42, 7]
    # string-or-null keys: null becomes None, a number-looking path stays the text it was
    assert (config["data"]["tokenizer"], config["data"]["tokenizer_corpus"], config["data"]["corpus"]) == (None, "042", "001")
    assert config["figures"]["dpi"] == "1e2"  # YAML reads 1e2 as a string: left for the schema to refuse


@pytest.mark.slow
def test_a_dpi_override_redraws_the_figures_only(workflow_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(workflow_run, copy, symlinks=True)
    jobs = plan(copy, "figures={dpi: 61}")
    assert jobs.get("figures") == 1 and not {"train", "replica", "analyse_run", "sanity_check"} & set(jobs), jobs
    test_config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    assert plan(copy, f"training={{steps: {test_config['training']['steps']}}}") == {}  # the same value: nothing to do


@pytest.mark.slow
def test_a_logging_knob_or_an_unused_key_retrains_nothing(workflow_run, tmp_path):
    """training.log_every only spaces the progress lines and recording.live_sample is unused while rows is all:
    neither reaches a run's bytes, so neither reruns a job; a key that does (rows) still retrains."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(workflow_run, copy, symlinks=True)
    assert plan(copy, "training={log_every: 3}") == {}
    assert plan(copy, "recording={live_sample: 7}") == {}
    assert plan(copy, "recording={rows: dead_and_sample}")["train"] == 3


def test_the_run_config_holds_only_what_reaches_the_bytes():
    config = flannel_config.load(ROOT / "config" / "test.yaml")
    recorded = flannel_config.run_config(config)
    assert "log_every" not in recorded["training"] and "live_sample" not in recorded["recording"]
    config["recording"]["rows"] = "dead_and_sample"
    assert flannel_config.run_config(config)["recording"]["live_sample"] == config["recording"]["live_sample"]
    assert "log_every" in config["training"]  # the config itself keeps it: the train script reads it there
