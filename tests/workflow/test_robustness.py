"""Surprises of a finished workflow, third wave: a deterministic failure is reported once (no retries outside
the SLURM profile), and `snakemake --summary` names what an edit to the package reruns."""

from __future__ import annotations

import shutil

import pytest
import yaml
from helpers import ROOT, snakemake


@pytest.fixture
def finished_copy(workflow_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(workflow_run, copy, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return copy


@pytest.mark.slow
def test_a_deterministic_failure_is_reported_once_not_retried(finished_copy):
    """A garbage mask file fails the same way every time: one error line, not three (no retries outside SLURM)."""
    (finished_copy / "results" / "data" / "live_dead_tokens.safetensors").write_bytes(b"not a safetensors file")
    result = snakemake(finished_copy, "--cores", "1", "results/main/runs/tied/seed42.safetensors", "--forcerun", "train",
                       "--configfile", "config/test.yaml", check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "unreadable mask file" in line]
    assert len(errors) == 1, errors
    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert profile["retries"] == 2  # where nodes fail, a rerun (same bytes) is worth it


@pytest.mark.slow
def test_the_summary_names_what_a_package_edit_reruns(finished_copy):
    """Package code reaches the rules as a digest param: after an edit to the figure code, `snakemake --summary`
    marks the figures (and nothing upstream) `params changed`, as the README says; --list-changes code
    (scripts only) names nothing."""
    plots = finished_copy / "src" / "flannel" / "report" / "panels.py"
    plots.write_text(plots.read_text(encoding="utf-8") + "\nEDITED = True\n", encoding="utf-8")
    summary = snakemake(finished_copy, "--summary", "--configfile", "config/test.yaml").stdout.splitlines()
    changed = {line.split("\t")[0] for line in summary if "\tparams changed\t" in line}
    assert "results/main/figures/a_dead_cloud.png" in changed
    assert not any("/runs/" in path or "/analysis/" in path or "results/data/" in path for path in changed), changed
    code = snakemake(finished_copy, "--list-changes", "code", "--configfile", "config/test.yaml").stdout
    assert not [line for line in code.splitlines() if line.startswith("results/")]
    assert 'snakemake --summary | grep "params changed"' in (ROOT / "README.md").read_text(encoding="utf-8")


