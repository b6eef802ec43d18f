"""Named experiments: validation naming the experiment, the summary across experiments on hand-built tables,
and, end to end, config/sweeps.yaml at the test scale (per-experiment sanity, bytes that depend on the resolved
config only, and reruns confined to the experiment that changed)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch
import yaml
from helpers import ROOT, copy_repo, job_counts, payload_sha256, snakemake, tiny_config

from flannel import config as flannel_config
from flannel.analysis import lifespan
from flannel.errors import ConfigError
from flannel.recording import Recording
from flannel.report import experiments

SWEEPS = ("init_0.005", "init_0.01", "init_0.02", "init_0.045", "shared_init", "batch_128", "float32_moments")


# ---- the config ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, message", [
    ({"lr_high": {"training": {"learning_rate": -1}}}, "config key 'experiments.lr_high.training.learning_rate': -1"),
    ({"a": {"training": {"stepz": 3}}}, "config key 'experiments.a.training.stepz': unknown key"),
    ({"a": {"training": {"steps": 20.0}}}, "config key 'experiments.a.training.steps': 20.0 is not an integer"),
    ({"a": {"runs": {"tied": [7]}}}, "config key 'experiments.a.runs.reference_seed': 42 is not one of the tied seeds"),
    ({"a": {"model": {"vocab_size": 500}}}, "config key 'experiments.a.model.vocab_size': the data"),
    ({"a": {"sanity": {}}}, "config key 'experiments.a.sanity': unknown key (allowed: model, training, recording, runs)"),
    ({"data": {}}, "config key 'experiments.data': not a usable name"),
])
def test_an_experiment_override_error_names_the_experiment_and_key(overrides, message):
    config = tiny_config()
    config["experiments"] = overrides
    with pytest.raises(ConfigError) as error:
        flannel_config.validate(config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_experiment_inherits_what_it_does_not_override():
    config = tiny_config()
    config["experiments"] = {"small": {"model": {"init_scale": 0.005}}, "plain": None}
    flannel_config.validate(config)
    small = flannel_config.experiment_config(config, "small")
    assert small["model"] == {**config["model"], "init_scale": 0.005}
    assert small["training"] == config["training"] and small["runs"] == config["runs"]
    assert flannel_config.experiment_names(config) == ["small", "plain"]
    assert flannel_config.experiment_names(tiny_config()) == ["main"]


def test_differing_values_name_only_the_keys_that_differ():
    resolved = {"a": {"model": {"init_scale": 0.02, "n_embd": 16}, "training": {"init_seed": None}},
                "b": {"model": {"init_scale": 0.005, "n_embd": 16}, "training": {"init_seed": 42}}}
    assert experiments.differing_values(resolved) == {
        "a": {"model.init_scale": 0.02, "training.init_seed": "null"},
        "b": {"model.init_scale": 0.005, "training.init_seed": 42}}
    assert experiments.differing_values({"only": resolved["a"]}) == {"only": {}}


def test_the_summary_reads_first_and_last_records(tmp_path):
    columns = {"step": [0, 1, 2], "loss": [float("nan"), 3.0, 2.5]}
    columns.update({column: [1.0, 2.0, 4.0] for column, _ in experiments.LAST.values()})
    pd.DataFrame(columns).to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    epochs = {"seed": [42, 42, 43], "matrix": ["tied W", "untied W", "tied W"], "freeze_onset": [7, 9, 11]}
    pd.DataFrame(epochs).to_csv(tmp_path / "epochs.tsv", sep="\t", index=False)
    table = experiments.summary_table([("a", "tied", 42)], [str(tmp_path / "t.tsv")], {"a": str(tmp_path / "epochs.tsv")},
                                      {"a": {"model": {}}}, series_tables(tmp_path))
    row = table.iloc[0]
    assert row["W_dead_freeze_onset"] == 7
    assert (row["experiment"], row["seed"], row["steps"], row["final_loss"]) == ("a", 42, 2, 2.5)
    assert row["W_dead_radius_origin_t0"] == 1.0 and row["W_dead_radius_origin_last"] == 4.0
    # the series after 1.24: seed 42's tied W row of the freeze summary (not seed 43's, not untied), the dead W
    # rows of the five phases (not the live one), the lifespan table's W row (not E's)
    assert (row["W_hop_precision"], row["W_revived_by_variance"], row["W_longest_run"]) == (0.9, 0.25, 12)
    assert row["W_dead_last_stumbling_median"] == 20 and row["W_dead_reheats_mean"] == 1.5
    assert (row["W_radius_ratio"], row["W_rho_lead"], row["W_grad_pull"]) == (0.8, -0.3, 0.5)
    assert list(table.columns[-len(experiments.LIFESPAN):]) == [f"W_{name}" for name in experiments.LIFESPAN]


def series_tables(tmp_path) -> dict:
    """A freeze summary with runs tied 42, tied 43 and untied 42; five-phase rows with two dead W rows and a live
    one; a lifespan table with W and E. Each wanted value sits beside others the summary must not take."""
    freeze = pd.DataFrame([{"tying": tying, "seed": seed, "matrix": "W", **{c: value for c in experiments.FREEZE.values()}}
                           for tying, seed, value in (("tied", 42, 0.0), ("tied", 43, 5.0), ("untied", 42, 7.0))])
    freeze.loc[0, ["dead_precision", "revived_by_variance", "longest_run"]] = (0.9, 0.25, 12)
    phases = pd.DataFrame({"matrix": ["W", "W", "W"], "dead": [True, True, False], "reheats": [1, 2, 9],
                           **{f"last_{p}": [10, 30, 99] for p in experiments.PHASE_BOUNDARIES}})
    lifespan_columns = {name: [0.0, 9.0] for name in experiments.LIFESPAN}
    lifespan_columns.update(radius_ratio=[0.8, 9.0], rho_lead=[-0.3, 9.0], grad_pull=[0.5, 9.0])
    lifespan = pd.DataFrame({"matrix": ["W", "E"], **lifespan_columns})
    for name, frame in (("freeze", freeze), ("phases", phases), ("lifespan", lifespan)):
        frame.to_csv(tmp_path / f"{name}.tsv", sep="\t", index=False)
    return {"freeze": {"a": str(tmp_path / "freeze.tsv")}, "phase_rows": [str(tmp_path / "phases.tsv")],
            "lifespan": [str(tmp_path / "lifespan.tsv")]}


def test_the_lifespan_columns_are_the_lifespan_tables():
    assert set(experiments.LIFESPAN) <= set(lifespan.RUN_COLUMNS)
    assert set(experiments.FREEZE.values()) <= set(freeze_summary_columns())


def freeze_summary_columns() -> list[str]:
    from flannel.analysis import five_phases, freeze_causes

    shares = freeze_causes.shares(pd.DataFrame(columns=["matrix", "dead", "status", *freeze_causes.VERDICTS, "cause",
                                                        *freeze_causes.FACTORS]), "W")
    runs = five_phases.run_summary(pd.DataFrame(columns=five_phases.RUN_COLUMNS), "W")
    return [*shares, *runs, "dead_precision", "dead_recall", "autocorrelation_below", "path_efficiency", "bias_to_noise"]


# ---- end to end ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweeps_run(tmp_path_factory):
    """config/sweeps.yaml at the test scale, the whole DAG, in a fresh copy of the repository."""
    workdir = copy_repo(tmp_path_factory.mktemp("sweeps"))
    snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml", "config/sweeps.yaml", timeout=1800)
    return workdir


@pytest.mark.slow
def test_every_experiment_passes_its_sanity_checks(sweeps_run):
    for name in SWEEPS:
        report = json.loads((sweeps_run / "results" / name / "sanity" / "report.json").read_text())
        assert report["passed"], (name, report["reproducibility"]["failures"])
        assert (sweeps_run / "results" / name / "sanity" / "verdict.txt").read_text().startswith("passed")
    summary = pd.read_csv(sweeps_run / "results" / "experiments" / "summary.tsv", sep="\t")
    assert summary.groupby("experiment", sort=False).size().to_dict() == {
        "init_0.005": 1, "init_0.01": 1, "init_0.02": 1, "init_0.045": 1, "shared_init": 5, "batch_128": 1,
        "float32_moments": 1}
    assert summary["model.init_scale"].tolist()[:4] == [0.005, 0.01, 0.02, 0.045]


@pytest.mark.slow
def test_a_shared_init_gives_one_start_and_different_batch_orders(sweeps_run):
    runs = [Recording(sweeps_run / f"results/shared_init/runs/tied/seed{seed}.safetensors") for seed in range(42, 47)]
    starts = [run.record("embeddings", 0) for run in runs]
    assert all(torch.equal(starts[0], start) for start in starts[1:])
    assert len({run.tensor("losses")[1].item() for run in runs}) == 5
    assert [run.metadata["data_seed"] for run in runs] == [str(seed) for seed in range(42, 47)]
    # The same resolved seeds and config as init_0.02's run: the same tensors, whatever the experiment's name.
    assert payload_sha256(runs[0].path) == payload_sha256(sweeps_run / "results/init_0.02/runs/tied/seed42.safetensors")


@pytest.mark.slow
def test_float32_moments_are_recorded_in_float32_beside_bf16_weights(sweeps_run):
    run = Recording(sweeps_run / "results/float32_moments/runs/tied/seed42.safetensors")
    assert run.tensor("variance").dtype == run.tensor("embeddings").dtype == torch.float32
    weights = run.record("embeddings", run.n_records - 1)
    assert torch.equal(weights, weights.to(torch.bfloat16).float())
    assert json.loads(run.metadata["config"])["training"]["optimizer_state_dtype"] == "float32"


@pytest.mark.slow
def test_two_experiments_of_one_resolved_config_give_identical_files(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    config = {"experiments": {"plain": {"runs": {"tied": [42], "untied": []}},
                              "restated": {"training": {"learning_rate": 0.001}, "runs": {"tied": [42], "untied": []}}}}
    (workdir / "config" / "twins.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/{name}/runs/tied/seed42.safetensors" for name in ("plain", "restated")]
    snakemake(workdir, *targets, "--cores", "2", "--configfile", "config/test.yaml", "config/twins.yaml")
    assert (workdir / targets[0]).read_bytes() == (workdir / targets[1]).read_bytes()


@pytest.mark.slow
def test_changing_one_experiments_learning_rate_reruns_that_experiment_only(sweeps_run):
    sweeps = yaml.safe_load((sweeps_run / "config" / "sweeps.yaml").read_text())
    sweeps["experiments"]["init_0.01"]["training"] = {"learning_rate": 0.002}
    (sweeps_run / "config" / "changed.yaml").write_text(yaml.safe_dump(sweeps))
    result = snakemake(sweeps_run, "-n", "--cores", "1", "--configfile", "config/test.yaml", "config/changed.yaml")
    jobs = job_counts(result.stdout)
    per_run = {"train": 1, "analyse_run": 1, "adam_accounting": 1, "lattice": 1, "epochs": 1, "hop_condition": 1,
               "freeze_causes": 1, "five_phases": 1, "kinetics": 1, "h_mean": 1, "lifespan": 1}
    per_experiment = {"replica": 1, "sanity_check": 1, "sanity_verdict": 1, "figures": 1, "report_tables": 1,
                      "epochs_table": 1, "freeze_summary": 1, "film": 1, "explorer": 1}  # film, explorer: its reference run
    assert jobs == {**per_run, **per_experiment, "experiments_summary": 1, "all": 1}, jobs
    outputs = {folder for line in result.stdout.splitlines() if line.strip().startswith("output:")
               for folder in re.findall(r"results/([^/\s,]+)/", line)}
    assert outputs == {"init_0.01", "experiments"}, outputs


# ---- config/long.yaml: the series' long runs, and their tiny scale ---------------------------------------------

LONG = {"thimble_7": 12, "thimble_8": 8, "thimble_9": 20, "crucible_1": 10, "marble_1": 10}  # name -> tiny steps
# What config/long_test.yaml may change: sizes only.
SIZES = {"data": {"corpus", "tokenizer", "demo_words", "demo_extra_words"},
         "model": {"vocab_size", "n_positions", "n_embd", "n_layer", "n_head"},
         "training": {"batch_size", "seq_len", "steps", "log_every"}}


def long_configs(*files: str) -> dict:
    """The experiments' resolved configs of config files merged as Snakemake merges --configfile FILES."""
    from snakemake.utils import update_config

    merged = {}
    for name in files:
        update_config(merged, yaml.safe_load((ROOT / "config" / name).read_text()))
    config = flannel_config.validate(merged)
    return {name: flannel_config.experiment_config(config, name) for name in flannel_config.experiment_names(config)}


def test_long_test_yaml_changes_only_the_sizes_of_long_yaml():
    full, tiny = long_configs("long.yaml"), long_configs("long.yaml", "long_test.yaml")
    assert list(full) == list(tiny) == list(LONG)
    for name in LONG:
        for section in ("data", "model", "training", "recording", "runs"):
            changed = {key for key in full[name][section] if full[name][section][key] != tiny[name][section][key]}
            assert changed <= SIZES.get(section, set()), (name, section, changed)
        assert tiny[name]["training"]["steps"] == LONG[name]
    settings = {name: (c["training"]["learning_rate"], c["training"]["weight_decay"], c["training"]["steps"])
                for name, c in full.items()}
    assert settings == {"thimble_7": (1e-3, 0.0, 6000), "thimble_8": (3e-4, 0.1, 4000), "thimble_9": (3e-4, 0.1, 10000),
                        "crucible_1": (1e-3, 0.0, 5000), "marble_1": (3e-4, 0.01, 5000)}


def long_recording(workdir, name: str) -> Recording:
    """An experiment's seed-42 run file, in whichever container the config chose."""
    [path] = [p for p in (workdir / f"results/{name}/runs/tied").iterdir() if p.name in ("seed42.safetensors", "seed42.zarr.zip")]
    return Recording(path)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """config/long.yaml at its tiny scale: each experiment's run, replica, sanity verdict and per-run tables."""
    workdir = copy_repo(tmp_path_factory.mktemp("long"))
    targets = [f"results/{name}/{path}" for name in LONG for path in (
        "sanity/verdict.txt", "analysis/tied/seed42.tsv", "analysis/lattice/tied/seed42.tsv",
        "analysis/epochs/tied/seed42.tsv")]
    snakemake(workdir, *targets, "--cores", "2", "--configfile", "config/long.yaml", "config/long_test.yaml",
              timeout=1800)
    return workdir


@pytest.mark.slow
def test_every_long_run_passes_its_sanity_checks_and_replays_bitwise(long_run):
    for name, steps in LONG.items():
        report = json.loads((long_run / "results" / name / "sanity" / "report.json").read_text())
        assert report["passed"], (name, report["reproducibility"]["failures"])
        [replay] = report["checks"]["adam_replay"]["rows"]
        assert replay["replayed_steps"] == steps and replay["first_failure"] is None, (name, replay)
        run = long_recording(long_run, name)
        training = json.loads(run.metadata["config"])["training"]
        assert (training["windows"], training["objective"]) == (
            ("every_offset", "skip_one") if name == "thimble_7" else ("disjoint", "next_token"))
        assert (training["lr_schedule"], training["max_grad_norm"], training["compute_dtype"]) == ("constant", None, "bfloat16")


@pytest.mark.slow
def test_thimble_9_begins_as_thimble_8(long_run):
    """A constant LR: the longer run's first records are the shorter run's, bit for bit (the series' check)."""
    eight, nine = (long_recording(long_run, name) for name in ("thimble_8", "thimble_9"))
    assert nine.n_records > eight.n_records
    for key in ("embeddings", "grads", "momentum", "variance"):
        for index in range(eight.n_records):
            assert torch.equal(eight.record(key, index), nine.record(key, index)), (key, index)
    assert torch.equal(eight.tensor("losses")[1:], nine.tensor("losses")[1 : eight.n_records])  # record 0: NaN
