"""The same bytes from the same config wherever and however the DAG runs: the data half in another directory,
the runs with --cores 1 and --cores 2."""

from __future__ import annotations

import pytest
from safetensors import safe_open


@pytest.mark.slow
def test_data_half_gives_identical_bytes_in_another_directory(workflow_run, workflow_run_serial):
    for name in ["results/data/tokenizer.json", "results/data/token_ids.safetensors",
                 "results/data/live_dead_tokens.safetensors", "results/data/live_dead_tokens.csv",
                 "results/data/token_stats.json"]:
        assert (workflow_run_serial / name).read_bytes() == (workflow_run / name).read_bytes(), name
    with safe_open(str(workflow_run / "results/data/live_dead_tokens.safetensors"), "pt") as handle:
        assert set(handle.keys()) == {"live_mask", "dead_mask", "live_indices", "dead_indices", "token_occurrence_counts"}


@pytest.mark.slow
def test_cores_1_and_cores_2_give_the_same_run_bytes(workflow_run, workflow_run_serial):
    for name in ("tied/seed42", "tied/seed43", "untied/seed42"):
        path = f"results/main/runs/{name}.safetensors"
        assert (workflow_run / path).read_bytes() == (workflow_run_serial / path).read_bytes(), name
