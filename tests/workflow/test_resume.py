"""A training job killed (SIGKILL) or stopped (SIGTERM) at exact points of its run, then run again through
Snakemake: it goes on from its last checkpoint, trains exactly the steps after it, and writes the bytes of a
run never interrupted. The job stops itself at the point (FLANNEL_PAUSE_AT, flannel.training.checkpoint's
pause_point) and the test delivers the real signal there."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from flannel.training.checkpoint import read_state
from helpers import copy_repo, snakemake

TARGET = "results/main/runs/tied/seed42.safetensors"
LOG = "logs/main/train/tied/seed42.log"
ARGS = ["--cores", "1", "--configfile", "config/test.yaml", "--config", "training={checkpoint_every: 5, log_every: 1}"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A repository copy with the data stage built, and the run built once without interruption."""
    workdir = copy_repo(tmp_path_factory.mktemp("resume") / "repo")
    snakemake(workdir, "results/data/token_stats.json", "results/data/live_dead_tokens.safetensors", *ARGS)
    whole = workdir.parent / "whole.safetensors"
    snakemake(workdir, TARGET, *ARGS)
    shutil.move(workdir / TARGET, whole)
    return workdir, whole.read_bytes()


def training_process(group: int) -> int:
    pids = subprocess.run(["pgrep", "-g", str(group), "-f", r"\.train\.py"], capture_output=True, text=True).stdout.split()
    return int(pids[0]) if len(pids) == 1 else 0


def wait_until_paused(job: subprocess.Popen) -> int:
    """The training job's pid once it has stopped itself at the pause point."""
    deadline = time.monotonic() + 300
    while True:
        assert job.poll() is None and time.monotonic() < deadline, "the job never reached its pause point"
        pid = training_process(job.pid)
        if pid and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
            return pid
        time.sleep(0.1)


def trained_steps(log: str) -> list[int]:
    return [int(step) for step in re.findall(r"step (\d+)/20 loss", log)]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("point, last_checkpoint", [
    ("step:3", {signal.SIGKILL: None, signal.SIGTERM: 3}),  # before the first checkpoint
    ("step:12", {signal.SIGKILL: 10, signal.SIGTERM: 12}),  # between two
    ("checkpoint-write:10", {signal.SIGKILL: 5, signal.SIGTERM: 10}),  # its file written, not yet in place
    ("step:20", {signal.SIGKILL: 15, signal.SIGTERM: 20}),  # after the last record, before the file is finished
])
def test_an_interrupted_job_resumes_to_the_same_bytes(prepared, tmp_path, signum, point, last_checkpoint):
    workdir = tmp_path / "repo"
    shutil.copytree(prepared[0], workdir, symlinks=True)
    env = {**os.environ, "PYTHONPATH": str(workdir / "src"), "FLANNEL_PAUSE_AT": point}
    job = subprocess.Popen(["snakemake", TARGET, *ARGS], cwd=workdir, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = wait_until_paused(job)
    os.kill(pid, signum)
    os.kill(pid, signal.SIGCONT)  # a SIGTERM waits for the stopped job to go on
    assert job.wait(timeout=120) != 0
    checkpoint = workdir / (TARGET + ".checkpoint")
    expected = last_checkpoint[signum]
    assert not (workdir / TARGET).exists() and (workdir / (TARGET + ".partial")).exists()
    if expected is None:
        assert not checkpoint.exists()
    else:
        assert read_state(checkpoint)["step"] == expected
    if signum == signal.SIGTERM:
        step = point.split(":")[1]
        assert re.search(rf"ERROR tied seed 42: stopped by SIGTERM after step {step} of 20, checkpoint saved",
                         (workdir / LOG).read_text())
    snakemake(workdir, TARGET, *ARGS, "--rerun-incomplete")
    log = (workdir / LOG).read_text()
    start = expected or 0
    assert ("resumed from the checkpoint at step" in log) == (expected is not None)
    if expected is not None:
        assert f"resumed from the checkpoint at step {start}; training steps {start + 1}-20" in log
    assert trained_steps(log) == list(range(start + 1, 21))
    assert (workdir / TARGET).read_bytes() == prepared[1]
    assert sorted(p.name for p in (workdir / TARGET).parent.iterdir()) == ["seed42.moved.tsv", "seed42.safetensors"]
