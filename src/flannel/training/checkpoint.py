"""Resumable training: a job's checkpoint, beside its `.partial` recording.

Every `training.checkpoint_every` steps, and when the job is told to stop (SIGTERM, as SLURM and Snakemake
send it, or Ctrl-C), the loop saves what decides the rest of the run: the weights, Adam's state, the LR
schedule, the RNG state, the step (the batch order is its own seeded generator, replayed to that step), what
the run has seen of v decreasing, and the recorder's progress, with every record so far on disk. A rerun of
the job finds it and goes on from that step; the run file ends with the same bytes as a run never stopped.

A checkpoint holds a fingerprint of the run config, the output's name, the package versions and the code
training runs: one from anything else is discarded with a line in the log and the job starts over. It is a
safetensors file: the tensors and arrays by path, and everything else as JSON in its metadata, where each
tensor, array, byte string, tuple and dict is marked (dicts keep their keys' types, as Adam's state needs its
integer keys), so reading one back runs no code from the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .. import digest
from ..codedigest import module_digest
from ..errors import TrainingError

log = logging.getLogger("flannel.training.checkpoint")
PACKAGE = Path(__file__).resolve().parents[1]
_PAUSED = set()
PAUSE_GRACE_SECONDS = 0.5


class Stopped(TrainingError):
    """The job was told to stop and saved a checkpoint; a rerun goes on from it."""


def code_version() -> str:
    """The digest of the code training runs (the loop and every flannel module it reaches; comments and
    docstrings aside, as the rules' code params), so a checkpoint from other training code is never used."""
    return module_digest("training.loop", PACKAGE)


def checkpoint_path(out_path) -> Path:
    return Path(out_path).with_name(Path(out_path).name + ".checkpoint")


def _scratch(path: Path) -> Path:
    """Where a checkpoint is written before it is renamed into place."""
    return path.with_name(path.name + ".tmp")


def remove_checkpoint(out_path) -> None:
    """Remove the checkpoint of the run written to `out_path`, and a half-written one."""
    path = checkpoint_path(out_path)
    path.unlink(missing_ok=True)
    _scratch(path).unlink(missing_ok=True)


class Checkpoint:
    """The checkpoint file of the run written to `out_path` (`<name>.checkpoint`, next to `<name>.partial`)."""

    def __init__(self, out_path, every: int, identity: dict):
        out_path = Path(out_path)
        self.out_path, self.path = out_path, checkpoint_path(out_path)
        self.partial = out_path.with_name(out_path.name + ".partial")
        self.every = every
        self.fingerprint = hashlib.sha256(json.dumps(
            {**identity, "output": out_path.name, "code": code_version()}, sort_keys=True).encode()).hexdigest()
        self.stop_requested = None

    def load(self) -> dict | None:
        """The saved state to resume from, or None (no checkpoint, or one that cannot be used: said in the log,
        and removed)."""
        if not self.path.exists():
            return None
        try:
            state = read_state(self.path)
            reason = None if state.get("fingerprint") == self.fingerprint else \
                "it is from another config, output or code version"
        except Exception as error:  # a checkpoint cut short or damaged: starting over is always safe
            state, reason = None, f"it cannot be read ({' '.join(str(error).split())[:120]})"
        if reason is None and (not self.partial.exists() or self.partial.stat().st_size < state["partial_bytes"]):
            reason = f"the recording it continues ({self.partial.name}) is gone or shorter than it was"
        if reason is not None:
            log.warning("checkpoint %s discarded: %s; training starts at step 1", self.path.name, reason)
            self.remove()
            return None
        return state

    def save(self, step: int, state: dict) -> None:
        """Write atomically: a job killed mid-write leaves the previous checkpoint, which still matches the
        recording (records after it are written again on resume)."""
        scratch = _scratch(self.path)
        write_state(scratch, {**state, "fingerprint": self.fingerprint, "step": step,
                              "partial_bytes": self.partial.stat().st_size})
        with open(scratch, "rb") as handle:
            os.fsync(handle.fileno())
        pause_point(f"checkpoint-write:{step}")
        os.replace(scratch, self.path)
        log.info("checkpoint at step %d", step)

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def remove(self) -> None:
        remove_checkpoint(self.out_path)

    def catch_stop_signals(self):
        """SIGTERM and Ctrl-C, from here on, ask the loop to save a checkpoint and stop after the current step;
        returns the handlers to put back. (Only the main thread can set handlers; elsewhere nothing changes.)"""
        def requested(signum, frame):
            self.stop_requested = signal.Signals(signum).name

        try:
            return {sig: signal.signal(sig, requested) for sig in (signal.SIGTERM, signal.SIGINT)}
        except ValueError:
            return {}


def pause_point(name: str) -> None:
    """Fault injection for the tests: with FLANNEL_PAUSE_AT=<name> the job stops itself here (SIGSTOP), so a
    test delivers a real SIGKILL or SIGTERM at an exact point of the run rather than wherever a timer lands.
    Once per process: the checkpoint a SIGTERM asks for passes the same point again."""
    if os.environ.get("FLANNEL_PAUSE_AT") == name and name not in _PAUSED:
        _PAUSED.add(name)
        os.kill(os.getpid(), signal.SIGSTOP)
        # A signal sent during the pause may be delivered to another thread (the recording's writer, zarr's),
        # whose handler sets the stop flag a moment after this thread goes on: the grace lets it land before
        # the loop looks at the flag, so the test's signal counts at this point, not one step later.
        time.sleep(PAUSE_GRACE_SECONDS)


def rng_state() -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def unavailable() -> str | None:
    """Why checkpoints cannot be written here, or None."""
    return digest.available()


def write_state(path, state: dict) -> None:
    tensors = {}
    meta = json.dumps(_encode(state, "", tensors))
    save_file(tensors, path, metadata={"state": meta})


def read_state(path) -> dict:
    with safe_open(path, framework="pt") as file:
        meta = json.loads(file.metadata()["state"])
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    return _decode(meta, tensors)


def _encode(value, path: str, tensors: dict):
    """`value` as JSON, its tensors and arrays moved into `tensors` under their path."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().to("cpu").clone().contiguous()  # a copy: safetensors refuses shared storage
        return {"tensor": path}
    if isinstance(value, np.ndarray):  # unsigned bits go as the signed type of their width (same bytes)
        tensors[path] = torch.from_numpy(np.ascontiguousarray(value).view(value.dtype.str.replace("<u", "<i"))).clone()
        return {"array": path, "dtype": value.dtype.str}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, (list, tuple)):
        items = [_encode(item, f"{path}/{index}", tensors) for index, item in enumerate(value)]
        return {"tuple": items} if isinstance(value, tuple) else {"list": items}
    if isinstance(value, dict):
        return {"dict": [[key, _encode(item, f"{path}/{key}", tensors)] for key, item in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint state at '{path}': {type(value).__name__} cannot be saved")


def _decode(value, tensors: dict):
    if not isinstance(value, dict):
        return value
    kind, content = next(iter(value.items()))
    if kind == "tensor":
        return tensors[content]
    if kind == "array":
        return tensors[content].numpy().view(np.dtype(value["dtype"]))
    if kind == "bytes":
        return bytes.fromhex(content)
    if kind in ("list", "tuple"):
        items = [_decode(item, tensors) for item in content]
        return tuple(items) if kind == "tuple" else items
    return {key: _decode(item, tensors) for key, item in content}
