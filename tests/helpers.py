"""Helpers shared by the unit and the workflow tests (importable as `helpers`: pyproject.toml's pytest
`pythonpath` puts tests/ on the path): the tiny config, training a tiny run, a run's payload digest, copies of the
repository and Snakemake calls, and planted damage to recordings."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from flannel import config as flannel_config
from flannel.recording import StreamingSafetensors
from flannel.training.loop import Run, train_run

ROOT = Path(__file__).resolve().parents[1]


def python_env() -> dict[str, str]:
    """The environment of a Python subprocess: this checkout's package and test helpers first (never whatever
    checkout an editable install points at)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}


def tiny_config(**overrides) -> dict:
    """config/test.yaml, validated, with section-level overrides: tiny_config(training={"steps": 4})."""
    config = flannel_config.load(ROOT / "config" / "test.yaml")
    for section, values in overrides.items():
        config[section].update(values)
    return flannel_config.validate(config)


def train_tiny(tiny_data, folder: Path, tying: str, seed: int, config: dict | None = None,
               suffix: str = ".safetensors") -> Path:
    """A run trained in-process; the suffix picks the format (".zarr.zip": compact)."""
    out = folder / tying / f"seed{seed}{suffix}"
    train_run(config or tiny_data["config"], Run(tying, seed), tiny_data["ids"], tiny_data["masks"], out,
              folder / tying / f"seed{seed}.moved.tsv")
    return out


def tensor_bytes(tensor) -> bytes:
    """A tensor's bytes, of any dtype (bf16 and bool included) and shape (0-dim included)."""
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def payload_sha256(path) -> str:
    """SHA-256 of every byte after the safetensors header: all tensors (the header names package versions)."""
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + header_size)
        return hashlib.sha256(handle.read()).hexdigest()


def copy_repo(destination: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, as a fresh clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    result = subprocess.run(["snakemake", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """Job name -> count from the job stats table Snakemake prints; {} when there is nothing to be done."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE)}


def dry_run_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Job name -> count of `snakemake -n` in `workdir`."""
    return job_counts(snakemake(workdir, "-n", "--cores", "1", *args).stdout)


def flip_byte(path, key: str, record: int) -> None:
    """Flip the lowest bit of one element of record `record` of tensor `key`, in place."""
    with open(path, "r+b") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        entry = json.loads(handle.read(size))[key]
        begin, end = entry["data_offsets"]
        offset = 8 + size + begin + record * (end - begin) // entry["shape"][0] + 2
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 1]))


def with_metadata(source, destination, **changes) -> None:
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    save_file(load_file(str(source)), str(destination), metadata={**metadata, **changes})


def legacy_files(folder, *, T=11, extra=1, V=60, n_dead=24, D=8, runs=3, scale=0.02, diverge=True):
    """A 1.20a file (embeddings [T, V, D], n_dead) and a 1.20c file (embeddings [runs, T + extra, n_dead, D])
    whose run 0 starts from the same dead rows as the 1.20a file and, with `diverge`, parts from it at step 1."""
    g = torch.Generator().manual_seed(0)
    dead = torch.sort(torch.randperm(V, generator=g)[:n_dead]).values
    drift = torch.randn(T + extra, V, D, generator=g).cumsum(0) * 1e-3
    drift[0] = 0
    f1 = torch.randn(V, D, generator=g) * scale + drift[:T]
    f3 = torch.randn(runs, T + extra, n_dead, D, generator=g) * scale
    f3[0] = f1[0, dead] + drift[:, dead]
    if diverge:
        f3[0, 1:] += torch.randn(T + extra - 1, n_dead, D, generator=g) * 1e-2
    paths = {"flannel1": folder / "1.20a_flannel_1.safetensors", "flannel3": folder / "1.20c_flannel_3.safetensors",
             "masks": folder / "legacy_masks.safetensors"}
    save_file({"embeddings": f1.to(torch.bfloat16), "n_dead": torch.tensor(n_dead)}, str(paths["flannel1"]))
    save_file({"embeddings": f3.to(torch.bfloat16), "dead_indices": dead, "n_dead": torch.tensor(n_dead),
               "n_runs": torch.tensor(runs), "base_seed": torch.tensor(42)}, str(paths["flannel3"]))
    mask = torch.zeros(V, dtype=torch.bool)
    mask[dead] = True
    save_file({"dead_mask": mask, "live_mask": ~mask, "dead_indices": dead, "live_indices": torch.nonzero(~mask).flatten()},
              str(paths["masks"]))
    return paths


TRAINING = {"learning_rate": 0.1, "lr_schedule": "linear", "warmup_steps": 0, "steps": 2, "adam_beta1": 0.9,
            "adam_beta2": 0.99, "adam_epsilon": 1e-8}


def write_recording(path, matrices: dict[str, torch.Tensor], *, tied: bool, dead_indices, vocab_size: int,
                    losses=(math.nan, 2.0, 1.5), steps=(0, 1, 2), rows=None, training=None, extra=None):
    """A finished recording in the workflow's format, with the given [T, rows, D] matrices (and `extra`
    tensors, such as grad_norms); `training` replaces the config's training section."""
    n_rows = next(iter(matrices.values())).shape[1]
    tensors = {**matrices, "losses": torch.tensor(losses, dtype=torch.float32), "recorded_steps": torch.tensor(steps),
               "recorded_rows": torch.arange(n_rows) if rows is None else torch.tensor(rows),
               "dead_indices": torch.tensor(dead_indices, dtype=torch.int64),
               "tied_weights": torch.tensor(tied), **(extra or {})}
    config = {"model": {"vocab_size": vocab_size}, "training": training or TRAINING}
    writer = StreamingSafetensors(path, {k: (v.dtype, tuple(v.shape)) for k, v in tensors.items()},
                                  {"format": "flannel-recording/1", "complete": "false", "config": json.dumps(config)})
    for name, tensor in tensors.items():
        writer.write(name, tensor)
    writer.finish({"complete": "true"})
    return path
