"""Every `snakemake` command the READMEs show (README.md, config/README.md, the docs/ pages), run as a dry run on
a copy of the finished test workflow, does what its comment says. (The SLURM commands run for real in tests/slurm/;
`--report` in the report tests.)"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, job_counts, snakemake

READMES = (ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md")))
COMMANDS = [line.split("  #")[0].strip() for readme in READMES for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), re.S)
            for line in block.splitlines() if line.startswith("snakemake ")]


@pytest.fixture(scope="module")
def finished(workflow_run_compact, tmp_path_factory):
    """The README's commands are for the default container, compact."""
    copy = tmp_path_factory.mktemp("readme") / "wf"
    shutil.copytree(workflow_run_compact, copy, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return copy


def dry_run(workdir, command: str):
    """The command with the test config and -n put first: later flags such as --forcerun take lists."""
    words = shlex.split(command)
    assert words[0] == "snakemake"
    return snakemake(workdir, "--configfile", "config/test.yaml", "-n", *words[1:])


def test_the_readme_shows_the_commands_tested_here():
    shown = {c for c in COMMANDS if not any(flag in c for flag in ("--profile", "--report", "--list-changes", "--summary"))}
    assert shown == set(EXPECTED), sorted(shown ^ set(EXPECTED))


EXPECTED = {
    "snakemake --cores 1 results/main/runs/untied/seed42.zarr.zip": "nothing to do",
    "snakemake --cores 1 results/main/runs/tied/seed43.zarr.zip --forcerun train": {"train": 1},
    "snakemake --cores 1 results/main/export/untied/seed42.safetensors": {"export_safetensors": 1},
    "snakemake -n": "nothing to do",
    "snakemake --cores 2 --config training='{steps: 100}' runs='{tied: [42, 43], untied: [42], reference_seed: 42}'":
        "retrains",
    "snakemake --cores 1 --config figures='{dpi: 200}'": {"figures": 1, "experiments_summary": 1, "all": 1},
    "snakemake --cores 1 --config training='{log_every: 10}'": "nothing to do",
    "snakemake --cores 2 --configfile config/flannel.yaml --config data='{corpus: my/corpus.txt, tokenizer: my/tokenizer.json}'":
        "notebook scale",
    "snakemake --cores 2 --configfile config/sweeps.yaml": "sweeps",
    "snakemake --cores 2 --configfile config/test.yaml config/sweeps.yaml": "sweeps",
    "snakemake --cores 2 --configfile config/long.yaml": "long runs",
    "snakemake --cores 2 --configfile config/long.yaml config/long_test.yaml": "long runs",
    "snakemake --cores 2 --configfile data/notebook_scale/config.yaml": "real text",
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_each_readme_command_does_what_it_says(finished, command):
    expected = EXPECTED[command]
    if expected == "notebook scale":
        for name in ("corpus.txt", "tokenizer.json"):
            (finished / "my").mkdir(exist_ok=True)
            (finished / "my" / name).write_text("{}")
    if expected == "real text":  # the README runs the tool first
        subprocess.run([sys.executable, "tools/notebook_scale_corpus.py", "data/notebook_scale"], cwd=finished,
                       check=True, capture_output=True)
    result = dry_run(finished, command)
    jobs = job_counts(result.stdout)
    if expected == "nothing to do":
        assert jobs == {}, jobs
    elif expected == "retrains":
        assert jobs["train"] == 3 and jobs["replica"] == 2, jobs
    elif expected == "sweeps":  # seven experiments: eleven runs, a replica each, one summary
        assert jobs["train"] == 11 and jobs["replica"] == 7 and jobs["experiments_summary"] == 1, jobs
    elif expected == "long runs":  # Thimble 7, 8, 9, Crucible 1, Marble 1: one tied run and its replica each
        assert jobs["train"] == 5 and jobs["replica"] == 5 and jobs["experiments_summary"] == 1, jobs
    elif expected == "notebook scale":
        assert jobs["train"] == 11 and "train_tokenizer" not in jobs, jobs  # Flannel 3's ten seeds and Flannel 2
    elif expected == "real text":  # a BPE trained on the new text, one tied and one untied run with replicas
        assert jobs["train_tokenizer"] == 1 and jobs["train"] == 2 and jobs["replica"] == 2, jobs
    else:
        assert jobs == expected, jobs


@pytest.mark.slow
def test_list_changes_code_lists_nothing_on_a_finished_run(finished):
    result = snakemake(finished, "--configfile", "config/test.yaml", "--list-changes", "code")
    assert not [line for line in result.stdout.splitlines() if line.startswith("results/")]
