"""The whole DAG with compact run files: every check, table and figure, and run files that decode to the bytes
of the safetensors build (config/test.yaml, which the fixture workflow_run builds as safetensors)."""

from __future__ import annotations

import shutil

import pytest

from helpers import snakemake, tensor_bytes

from flannel.recording import Recording

RUNS = ("runs/tied/seed42", "runs/tied/seed43", "runs/untied/seed42", "sanity/replica/tied/seed42",
        "sanity/replica/untied/seed42")


@pytest.mark.slow
def test_workflow_run_compacts_decode_to_the_safetensors_build(workflow_run_compact, workflow_run):
    for name in RUNS:
        compact = Recording(workflow_run_compact / f"results/main/{name}.zarr.zip")
        raw = Recording(workflow_run / f"results/main/{name}.safetensors")
        assert compact.keys == raw.keys and compact.metadata["tensor_sha256"] == raw.metadata["tensor_sha256"], name
        for key in sorted(raw.keys):
            a, b = compact.tensor(key), raw.tensor(key)
            assert a.dtype == b.dtype and a.shape == b.shape and tensor_bytes(a) == tensor_bytes(b), (name, key)


@pytest.mark.slow
def test_compact_build_passes_its_checks_and_draws_every_figure(workflow_run_compact, workflow_run):
    assert (workflow_run_compact / "results/main/sanity/verdict.txt").read_text().startswith("passed")
    ours = sorted(p.relative_to(workflow_run_compact) for p in (workflow_run_compact / "results/main").rglob("*")
                  if p.is_file() and "runs" not in p.parts and "replica" not in p.parts)
    theirs = sorted(p.relative_to(workflow_run) for p in (workflow_run / "results/main").rglob("*")
                    if p.is_file() and "runs" not in p.parts and "replica" not in p.parts)
    assert ours == theirs
    for table in ("analysis/tied/seed42.tsv", "analysis/untied/seed42.tsv", "analysis/adam/untied/seed42.tsv"):
        assert (workflow_run_compact / "results/main" / table).read_bytes() == (workflow_run / "results/main" / table).read_bytes()


@pytest.mark.slow
def test_export_gives_the_safetensors_run_file(workflow_run_compact, workflow_run, tmp_path):
    copy = tmp_path / "wf"  # the shared build stays as finished (the README's commands run on it)
    shutil.copytree(workflow_run_compact, copy, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    target = "results/main/export/untied/seed42.safetensors"
    snakemake(copy, target, "--cores", "1", "--configfile", "config/test.yaml")
    assert (copy / target).read_bytes() == (workflow_run / "results/main/runs/untied/seed42.safetensors").read_bytes()
