"""Shared fixtures: a tiny validated config, tiny data, tiny trained runs, and one end-to-end workflow run
on config/test.yaml in a temporary copy of the repository (shared by every end-to-end test)."""

from __future__ import annotations

from flannel.training.numerics import pin_cpu_kernels

# Before torch loads: the tests train with the default portable_numerics, which needs the pinned kernels, and
# the parity tests run the notebook side in this same process, on the same kernels.
pin_cpu_kernels(True)

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import copy_repo, snakemake, tiny_config, train_tiny  # noqa: E402

from flannel.data import tokens  # noqa: E402
from flannel.data.corpus import demo_corpora  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Demo corpora, a trained tokenizer, token ids and masks at test.yaml scale."""
    folder = tmp_path_factory.mktemp("data")
    config = tiny_config()
    model_text, tokenizer_text = demo_corpora(0, config["data"]["demo_words"], config["data"]["demo_extra_words"])
    (folder / "model.txt").write_text(model_text, encoding="utf-8")
    (folder / "tokenizer.txt").write_text(tokenizer_text, encoding="utf-8")
    vocab_size = config["model"]["vocab_size"]
    tokenizer = tokens.train_tokenizer(folder / "tokenizer.txt", vocab_size)
    tokens.save_tokenizer(tokenizer, folder / "tokenizer.json")
    ids = tokens.tokenize(folder / "model.txt", tokenizer, vocab_size)
    tokens.save_token_ids(ids, folder / "token_ids.safetensors")
    masks = tokens.live_dead(ids, vocab_size)
    tokens.save_live_dead(masks, folder / "live_dead_tokens.safetensors")
    return {"folder": folder, "ids": torch.from_numpy(ids.astype("int64")), "masks": masks, "config": config}


@pytest.fixture(scope="session")
def tiny_runs(tiny_data, tmp_path_factory):
    """Tied seeds 42 and 43 and untied seed 42 on test.yaml settings."""
    folder = tmp_path_factory.mktemp("runs")
    return {(tying, seed): train_tiny(tiny_data, folder, tying, seed) for tying, seed in [("tied", 42), ("tied", 43), ("untied", 42)]}


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory):
    """The whole DAG on config/test.yaml, run once with --cores 2 in a fresh copy of the repository."""
    workdir = copy_repo(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml")
    return workdir


@pytest.fixture(scope="session")
def workflow_run_compact(tmp_path_factory):
    """The whole DAG on config/test.yaml with compact run files (the default container; test.yaml keeps
    safetensors for the fault tests), in a copy whose test.yaml says so, so later commands there agree."""
    workdir = copy_repo(tmp_path_factory.mktemp("workflow_compact"))
    config = workdir / "config" / "test.yaml"
    config.write_text(config.read_text().replace("format: safetensors", "format: compact"))
    snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml")
    return workdir


SERIAL_TARGETS = [
    "results/data/tokenizer.json", "results/data/token_ids.safetensors", "results/data/live_dead_tokens.safetensors",
    "results/data/live_dead_tokens.csv", "results/data/token_stats.json",
    "results/main/runs/tied/seed42.safetensors", "results/main/runs/tied/seed43.safetensors", "results/main/runs/untied/seed42.safetensors",
]


@pytest.fixture(scope="session")
def workflow_run_serial(tmp_path_factory):
    """The data half and the runs of config/test.yaml again, with --cores 1, in another directory."""
    workdir = copy_repo(tmp_path_factory.mktemp("workflow_serial"))
    snakemake(workdir, *SERIAL_TARGETS, "--cores", "1", "--configfile", "config/test.yaml")  # targets first: --configfile is greedy
    return workdir
