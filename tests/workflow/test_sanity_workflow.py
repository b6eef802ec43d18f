"""The sanity rules end to end: the replica and check jobs of the session's workflow run on config/test.yaml,
and copies of that run with a planted divergence or with the notebooks' layouts named in the config."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from helpers import flip_byte, legacy_files, snakemake
from flannel.outputs import sha256_file
from flannel.sanity import checks


TARGET = "results/main/sanity/verdict.txt"


def copy_of_run(workflow_run, destination):
    """The finished workflow, results and Snakemake metadata included (copy2 keeps the mtimes)."""
    shutil.copytree(workflow_run, destination, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return destination


@pytest.mark.slow
def test_every_check_passes_on_the_test_config(workflow_run):
    sanity = workflow_run / "results" / "main" / "sanity"
    report = json.loads((sanity / "report.json").read_text())
    assert report["passed"] is True and report["reproducibility"]["passed"] is True
    assert sorted(entry["number"] for entry in report["checks"].values()) == list(range(1, 10))
    assert {name: entry["passed"] for name, entry in report["checks"].items()} == dict.fromkeys(checks.CHECKS, True)
    assert "legacy" not in report
    runs = ["results/main/runs/tied/seed42.safetensors", "results/main/runs/tied/seed43.safetensors",
            "results/main/runs/untied/seed42.safetensors", "results/main/sanity/replica/tied/seed42.safetensors",
            "results/main/sanity/replica/untied/seed42.safetensors"]
    lines = (sanity / "manifest.tsv").read_text().splitlines()
    assert lines[0] == "path\tbytes\tsha256"
    assert [line.split("\t") for line in lines[1:]] == [
        [path, str((workflow_run / path).stat().st_size), sha256_file(workflow_run / path)] for path in sorted(runs)]
    assert (sanity / "verdict.txt").read_text() == "passed\n"
    md = (sanity / "report.md").read_text()
    assert "**PASSED**" in md and "### ✓ 7. Replica vs original" in md
    for name in ("report.json", "report.md", "manifest.tsv"):
        assert str(workflow_run) not in (sanity / name).read_text()
    assert not list((sanity / "replica").rglob(".warmup-*"))  # the warm-up run is discarded


@pytest.mark.slow
def test_a_planted_divergence_fails_the_workflow_and_keeps_the_report(workflow_run, tmp_path):
    workdir = copy_of_run(workflow_run, tmp_path / "wf")
    flip_byte(workdir / "results/main/sanity/replica/tied/seed42.safetensors", "embeddings", 3)
    result = snakemake(workdir, TARGET, "--cores", "1", "--configfile", "config/test.yaml", check=False)
    assert result.returncode != 0
    message = ("sanity check 7 (tied seed 42): their headers name the same numerics settings and hardware; "
               "results/main/runs/tied/seed42.safetensors and "
               "results/main/sanity/replica/tied/seed42.safetensors first differ in tensor 'embeddings' at step 3")
    assert message in result.stderr
    assert message in (workdir / "logs/main/sanity/sanity_verdict.log").read_text()
    # The check job succeeded, so its report stays for reading.
    report = json.loads((workdir / "results/main/sanity/report.json").read_text())
    assert report["passed"] is False and report["reproducibility"]["failures"][0].startswith(message)
    assert not (workdir / TARGET).exists()


@pytest.mark.slow
def test_the_notebooks_files_are_checked_when_the_config_names_them(workflow_run, tmp_path):
    workdir = copy_of_run(workflow_run, tmp_path / "wf")
    (workdir / "legacy").mkdir()
    paths = legacy_files(workdir / "legacy")
    config = yaml.safe_load((workdir / "config/test.yaml").read_text())
    config["sanity"].update({f"legacy_{k}": str(p.relative_to(workdir)) for k, p in paths.items()})
    (workdir / "config/legacy.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, TARGET, "--cores", "1", "--configfile", "config/legacy.yaml")
    report = json.loads((workdir / "results/main/sanity/report.json").read_text())
    legacy = report["legacy"]
    assert (legacy["flannel1"], legacy["flannel3"]) == ("legacy/1.20a_flannel_1.safetensors", "legacy/1.20c_flannel_3.safetensors")
    assert legacy["checks"]["record_counts"]["passed"] is False  # the extra record: reported, not a crash
    assert legacy["checks"]["initial_state"]["passed"] is True
    # Only reproducibility failures fail the workflow; the record count shows in the report and the verdict.
    assert report["passed"] is False and report["reproducibility"]["passed"] is True
    assert "other checks failed" in (workdir / TARGET).read_text()
    manifest = (workdir / "results/main/sanity/manifest.tsv").read_text()
    assert "legacy/1.20c_flannel_3.safetensors\t" in manifest
