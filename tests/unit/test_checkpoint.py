"""Resumable training: a run stopped by a signal and resumed from its checkpoint ends with the bytes of a run
never stopped, in both containers; the saveable SHA-256 equals hashlib's; a checkpoint from another config
or a damaged one is discarded, never used."""

import hashlib
import logging
import os
import signal

import pytest

from flannel import digest
from flannel.training.checkpoint import Checkpoint, Stopped, read_state
from flannel.training.loop import Run, train_run
from helpers import tiny_config

SUFFIXES = [".safetensors", ".zarr.zip"]


def test_a_saved_digest_state_goes_on_to_hashlibs_digest():
    data = os.urandom(300_001)
    first = digest.Sha256()
    first.update(data[:1234])
    first.update(bytearray(data[1234:70_000]))  # a writable buffer is read in place
    resumed = digest.Sha256(first.state())
    resumed.update(memoryview(bytearray(data[70_000:])))
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    assert first.hexdigest() == hashlib.sha256(data[:70_000]).hexdigest()  # taking a digest spoils no state


class StopAt(logging.Handler):
    """Sends this process `signum` when the loop logs the progress line of `step` (log_every = 1)."""

    def __init__(self, step: int, signum: int):
        super().__init__()
        self.line, self.signum = f"step {step}/", signum

    def emit(self, record):
        if self.line in record.getMessage():
            os.kill(os.getpid(), self.signum)


def train(tiny_data, out, config, stop_at=None, signum=signal.SIGTERM):
    loop_log = logging.getLogger("flannel.training.loop")
    handlers = [StopAt(stop_at, signum)] if stop_at else []
    level = loop_log.level
    for handler in handlers:
        loop_log.addHandler(handler)
        loop_log.setLevel(logging.INFO)
    try:
        return train_run(config, Run("untied", 42), tiny_data["ids"], tiny_data["masks"], out)
    finally:
        for handler in handlers:
            loop_log.removeHandler(handler)
        loop_log.setLevel(level)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("stop_at, signum", [(3, signal.SIGTERM), (10, signal.SIGTERM), (13, signal.SIGINT),
                                             (20, signal.SIGTERM)])
def test_a_stopped_run_resumes_to_the_bytes_of_a_run_never_stopped(tiny_data, tmp_path, caplog, suffix, stop_at,
                                                                 signum):
    """Stopped before the first checkpoint, on one, between two, and after the last record."""
    config = tiny_config(training={"checkpoint_every": 5, "log_every": 1})
    whole = tmp_path / "whole" / f"seed42{suffix}"
    train(tiny_data, whole, tiny_config(training={"checkpoint_every": 0}))
    out = tmp_path / "stopped" / f"seed42{suffix}"
    with pytest.raises(Stopped, match=rf"stopped by {signal.Signals(signum).name} after step {stop_at} of 20"):
        train(tiny_data, out, config, stop_at=stop_at, signum=signum)
    assert not out.exists() and out.with_name(out.name + ".partial").exists()
    assert read_state(out.with_name(out.name + ".checkpoint"))["step"] == stop_at
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flannel"):
        train(tiny_data, out, config)
    assert f"resumed from the checkpoint at step {stop_at}; training steps {stop_at + 1}-20" in caplog.text
    trained = [int(line.split("step ")[1].split("/")[0]) for line in caplog.messages if "/20 loss" in line]
    assert trained == list(range(stop_at + 1, 21))
    assert out.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # checkpoint and .partial removed


def test_checkpoints_reach_no_byte(tiny_data, tmp_path):
    runs = {every: tmp_path / str(every) / "seed42.zarr.zip" for every in (0, 3)}
    for every, out in runs.items():
        train(tiny_data, out, tiny_config(training={"checkpoint_every": every}))
    assert runs[0].read_bytes() == runs[3].read_bytes()


def test_a_checkpoint_of_another_config_or_a_damaged_one_is_discarded(tiny_data, tmp_path, caplog):
    config = tiny_config(training={"checkpoint_every": 5, "log_every": 1})
    out = tmp_path / "seed42.safetensors"
    with pytest.raises(Stopped):
        train(tiny_data, out, config, stop_at=7)
    other = tiny_config(training={"checkpoint_every": 5, "log_every": 1, "learning_rate": 2e-3})
    with caplog.at_level(logging.INFO, logger="flannel"):
        train(tiny_data, out, other)
    assert "checkpoint seed42.safetensors.checkpoint discarded: it is from another config, output or code version; " \
           "training starts at step 1" in caplog.text
    assert "resumed" not in caplog.text
    checkpoint = Checkpoint(out, 5, {})
    checkpoint.path.write_bytes(b"not a checkpoint")
    out.with_name(out.name + ".partial").write_bytes(b"")
    assert checkpoint.load() is None and not checkpoint.path.exists()
    assert "it cannot be read" in caplog.text


def test_a_checkpoint_whose_recording_was_cut_short_is_discarded(tiny_data, tmp_path, caplog):
    config = tiny_config(training={"checkpoint_every": 5, "log_every": 1})
    out = tmp_path / "seed42.zarr.zip"
    with pytest.raises(Stopped):
        train(tiny_data, out, config, stop_at=12)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(partial.read_bytes()[:100])
    with caplog.at_level(logging.INFO, logger="flannel"):
        train(tiny_data, out, config)
    assert "the recording it continues (seed42.zarr.zip.partial) is gone or shorter than it was" in caplog.text
    whole = tmp_path / "whole" / out.name
    train(tiny_data, whole, tiny_config(training={"checkpoint_every": 0}))
    assert out.read_bytes() == whole.read_bytes()


def test_a_run_without_checkpoints_removes_one_left_before(tiny_data, tmp_path):
    out = tmp_path / "seed42.safetensors"
    with pytest.raises(Stopped):
        train(tiny_data, out, tiny_config(training={"checkpoint_every": 5, "log_every": 1}), stop_at=7)
    train(tiny_data, out, tiny_config(training={"checkpoint_every": 0}))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
