"""The workflow imported as a Snakemake module by a host workflow in another folder, the way snakedeploy deploys
catalog workflows: `module flannel: snakefile: ...; config: config; prefix: "flannel"`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import ROOT, dry_run_jobs, snakemake

from flannel.report import figures


def host_workflow(folder: Path, configfile: Path | None) -> Path:
    """A host Snakefile that imports every rule of this workflow under the prefix `flannel/`."""
    lines = [f'configfile: "{configfile}"'] if configfile else []
    lines += [
        "module flannel:",
        f'    snakefile: "{ROOT / "Snakefile"}"',
        "    config: config",
        '    prefix: "flannel"',
        "use rule * from flannel as flannel_*",
        "rule all:",
        "    default_target: True",
        "    input: rules.flannel_all.input",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text("\n".join(lines) + "\n")
    return folder


def test_a_host_with_no_config_plans_the_embedded_default(tmp_path):
    # A module skips the workflow's `configfile:`; the schema defaults are config/config.yaml.
    jobs = dry_run_jobs(host_workflow(tmp_path / "host", None))
    assert jobs["flannel_train"] == 6 and jobs["flannel_replica"] == 2 and jobs["flannel_figures"] == 1, jobs


@pytest.mark.slow
def test_a_host_runs_the_test_scale_with_outputs_under_the_prefix(tmp_path):
    host = host_workflow(tmp_path / "host", ROOT / "config" / "test.yaml")
    snakemake(host, "--cores", "2")
    results = host / "flannel" / "results" / "main"
    assert (results / "sanity" / "verdict.txt").read_text() == "passed\n"
    assert json.loads((results / "sanity" / "report.json").read_text())["passed"] is True
    for run in ("tied/seed42", "tied/seed43", "untied/seed42"):
        assert (results / "runs" / f"{run}.safetensors").is_file(), run
    assert sorted(path.stem for path in (results / "figures").glob("*.png")) == sorted(figures.FIGURES)
    assert not (host / "results").exists()  # nothing outside the prefix
    assert dry_run_jobs(host) == {}
