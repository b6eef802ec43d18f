"""One training run: build, train, record. A nanoGPT-style loop with the Trainer's defaults made explicit;
and the replica, a run trained after another one in the same process.

Same config + same seed gives the same bytes, alone or after other runs in the process: every random
source is seeded from the run's own seeds right where it is used (the model init inside build_model, the
batch order in its own generator), and the intra-op thread count comes from the config, not the scheduler.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import platform
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup
from transformers.loss.loss_utils import ForCausalLMLoss

from .. import __version__
from ..config import data_seed, init_seed, training_json
from ..data.tokens import check_windows, window_count
from ..errors import ConfigError, TrainingError
from ..outputs import write_tsv
from . import numerics
from .model import DTYPES, HMeanHook, build_model, embedding_E, state_sha256, unembedding_W
from .checkpoint import Checkpoint, Stopped, pause_point, remove_checkpoint, rng_state, set_rng_state
from .checkpoint import unavailable as checkpoint_unavailable
from .recorder import RunRecorder

log = logging.getLogger("flannel.training.loop")
IGNORE = -100

@dataclass(frozen=True)
class Run:
    tying: str
    seed: int

    @property
    def tied(self) -> bool:
        return self.tying == "tied"


def pick_device(name: str) -> torch.device:
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if name == "auto":
        name = next(device for device, present in available.items() if present)
    if not available[name]:
        raise ConfigError(f"config key 'training.device': {name} is not available on this machine")
    return torch.device(name)


def make_deterministic(training: dict) -> None:
    """Process-wide settings that fix the bytes: deterministic algorithms, no TF32, the configured thread
    count, and (portable_numerics) the CPU kernels every x86-64 CPU runs alike (flannel.training.numerics)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(training["threads"])
    numerics.apply(training["portable_numerics"])


def provenance(training: dict, device: torch.device) -> dict[str, str]:
    """Header entries for what decides the bytes besides the config: the numerics settings, and the hardware
    where it matters (in the portable mode on a CPU it does not, and naming the CPU would change the bytes)."""
    settings = numerics.settings(training["portable_numerics"], device)
    found = numerics.hardware(device)
    log.info("hardware: %s; numerics: %s", json.dumps(found), json.dumps(settings, sort_keys=True))
    if settings["portable"]:
        found = {"machine": found["machine"], "cpu": "any x86-64 CPU with AVX2, Intel or AMD (portable numerics)"}
    return {"numerics": json.dumps(settings, sort_keys=True), "hardware": json.dumps(found, sort_keys=True)}


class StateDtype:
    """The tensors the optimizer steps: the parameters themselves, or (Adam state in a wider dtype than the
    weights) copies of that dtype, refreshed from the weights before each step and rounded back into them
    once after it, so no wider master copy of the weights survives between steps."""

    def __init__(self, params: list[torch.nn.Parameter], dtype: torch.dtype):
        self.weights = params
        self.params = params if all(p.dtype == dtype for p in params) else [
            torch.nn.Parameter(p.detach().to(dtype)) for p in params]

    def step(self, optimizer) -> None:
        if self.params is self.weights:
            optimizer.step()
            return
        with torch.no_grad():
            for copy_, weight in zip(self.params, self.weights):
                copy_.copy_(weight)
                copy_.grad = None if weight.grad is None else weight.grad.to(copy_.dtype)
            optimizer.step()
            for copy_, weight in zip(self.params, self.weights):
                weight.copy_(copy_)
                weight.grad = None


def window_batches(n_tokens: int, seq_len: int, batch_size: int, seed: int, windows: str = "every_offset"):
    """Start offsets of windows of seq_len + 1 tokens (one per offset, or disjoint: every seq_len + 1-th
    offset), drawn without replacement in batches from a generator that nothing else touches; a new
    permutation when the windows run out, the last partial batch dropped."""
    generator = torch.Generator().manual_seed(seed)
    n_windows, stride = window_count(n_tokens, seq_len, windows), seq_len + 1 if windows == "disjoint" else 1
    while True:
        order = torch.randperm(n_windows, generator=generator) * stride
        for begin in range(0, n_windows - batch_size + 1, batch_size):
            yield order[begin : begin + batch_size]


def targets_for(window: torch.Tensor, objective: str) -> torch.Tensor:
    """Already-shifted labels for the model's input window[:, :-1]."""
    if objective == "next_token":
        return window[:, 1:].contiguous()
    # skip_one: the notebooks' labels window[:, 1:], shifted once more by ForCausalLMLoss.
    return torch.nn.functional.pad(window[:, 2:], (0, 1), value=IGNORE)


def lr_scheduler(optimizer, training: dict):
    if training["lr_schedule"] == "linear":
        return get_linear_schedule_with_warmup(optimizer, training["warmup_steps"], training["steps"])
    return get_constant_schedule_with_warmup(optimizer, training["warmup_steps"])


def recorded_rows(config: dict, dead_mask: torch.Tensor, seed: int) -> torch.Tensor:
    """All rows, or the dead rows plus a seeded sample of live rows, sorted."""
    recording, vocab_size = config["recording"], config["model"]["vocab_size"]
    if recording["rows"] == "all":
        return torch.arange(vocab_size)
    live = torch.nonzero(~dead_mask).flatten()
    pick = torch.randperm(live.numel(), generator=torch.Generator().manual_seed(seed))[: recording["live_sample"]]
    rows = torch.sort(torch.cat([torch.nonzero(dead_mask).flatten(), live[pick]])).values
    if not rows.numel():  # called before the recorder opens its file, so nothing is left behind
        raise ConfigError(f"config key 'recording.live_sample': {recording['live_sample']} live rows and no dead token "
                          "record no row (raise it, or set recording.rows: all)")
    return rows


def versions() -> dict[str, str]:
    import numpy
    import safetensors
    import tokenizers
    import transformers

    return {"flannel": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__, "numpy": numpy.__version__}


class WorkingCopy:
    """The fast path's precision bookkeeping: a working copy of the model in compute_dtype (fp32) computes the
    gradients, while the weights and Adam state stay in param_dtype. Without it (compute_dtype == param_dtype)
    the model computes its own gradients and both methods do nothing."""

    def __init__(self, model, compute_dtype: torch.dtype, param_dtype: torch.dtype):
        self.model, self.param_dtype = model, param_dtype
        self.worker = copy.deepcopy(model).to(compute_dtype) if compute_dtype != param_dtype else model
        self.params, self.worker_params = list(model.parameters()), list(self.worker.parameters())

    def load_weights(self) -> None:
        """The current weights into the working copy, before its forward pass."""
        if self.worker is not self.model:
            with torch.no_grad():
                for work, param in zip(self.worker_params, self.params):
                    work.copy_(param)

    def hand_back_grads(self) -> None:
        """The working copy's gradients onto the weights, rounded to param_dtype once."""
        if self.worker is not self.model:
            for work, param in zip(self.worker_params, self.params):
                param.grad, work.grad = work.grad.to(self.param_dtype), None


class VarianceWatch:
    """Which Adam second-moment elements ever decrease (bf16 v x beta2 can round back to v, so in the
    notebooks' regime they never do): each step's v compared with the one before it."""

    def __init__(self, model, optimizer, state_of: dict):
        self.named, self.optimizer, self.state_of = list(model.named_parameters()), optimizer, state_of
        self.decreased = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in self.named}

    def before_step(self) -> dict[str, torch.Tensor]:
        state = self.optimizer.state
        return {name: state[self.state_of[p]]["exp_avg_sq"].clone()
                for name, p in self.named if self.state_of[p] in state}

    def after_step(self, previous: dict[str, torch.Tensor]) -> None:
        for name, p in self.named:
            if name in previous:
                self.decreased[name] |= self.optimizer.state[self.state_of[p]]["exp_avg_sq"] < previous[name]


def adamw(params: list[torch.nn.Parameter], training: dict):
    betas = (training["adam_beta1"], training["adam_beta2"])
    return torch.optim.AdamW(params, lr=training["learning_rate"], betas=betas, eps=training["adam_epsilon"],
                             weight_decay=training["weight_decay"], foreach=False)


def pre_clip_norm(params: list[torch.nn.Parameter], max_grad_norm: float | None, is_record: bool):
    """Clip the gradients (when configured) and return their global norm before clipping, in the grads' dtype:
    with it a replay rebuilds the clipping factor. Without clipping it is computed for a record only."""
    if max_grad_norm is not None:
        return torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    return torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]) if is_record else None


def open_recorder(config: dict, run: Run, masks: dict, device: torch.device, out_path, *, token_ids_sha256: str,
                  initial_digest: str, resume: dict | None = None) -> RunRecorder:
    """The run's recording, opened before step 1: its shapes, the scalars the notebooks stored and the header
    (the run config, seeds, versions, what decides the bytes, the token ids' and the initial state's digests)."""
    model_cfg, training, recording = config["model"], config["training"], config["recording"]
    as_float = {key: torch.tensor(value, dtype=torch.float32) for key, value in (
        ("init_scale", model_cfg["init_scale"]), ("learning_rate", training["learning_rate"]),
        ("weight_decay", training["weight_decay"]), ("adam_beta1", training["adam_beta1"]),
        ("adam_beta2", training["adam_beta2"]))}
    return RunRecorder(
        out_path, tied=run.tied, rows=recorded_rows(config, masks["dead_mask"], run.seed),
        vocab_size=model_cfg["vocab_size"], n_embd=model_cfg["n_embd"],
        n_records=training["steps"] // recording["record_every"] + 1, quantities=recording["quantities"],
        dtype=DTYPES[recording["dtype"]],
        scalars={
            **as_float,
            "n_live": torch.tensor(int(masks["live_mask"].sum()), dtype=torch.int64),
            "n_dead": torch.tensor(int(masks["dead_mask"].sum()), dtype=torch.int64),
            "tied_weights": torch.tensor(run.tied, dtype=torch.bool),
            "dead_indices": masks["dead_indices"].to(torch.int64),
        },
        metadata={
            "config": training_json(config),
            "tying": run.tying, "seed": str(run.seed), "init_seed": str(init_seed(config, run.seed)),
            "data_seed": str(data_seed(config, run.seed)),
            "device": device.type, "versions": json.dumps(versions(), sort_keys=True), **provenance(training, device),
            "token_ids_sha256": token_ids_sha256, "state_sha256_initial": initial_digest,
        },
        training=training, record_every=recording["record_every"], resume=resume,
    )


def open_checkpoint(config: dict, run: Run, out_path, token_ids_sha256: str) -> Checkpoint | None:
    """The run's checkpoint (flannel.training.checkpoint), None where training.checkpoint_every is 0."""
    every = config["training"]["checkpoint_every"]
    if not every:
        # One left by an earlier attempt with checkpoints on would not match the .partial this run writes.
        remove_checkpoint(out_path)
        return None
    if (reason := checkpoint_unavailable()) is not None:
        log.warning("checkpoints off: %s", reason)
        return None
    identity = {"config": training_json(config), "run": [run.tying, run.seed], "versions": versions(),
                "token_ids_sha256": token_ids_sha256}
    return Checkpoint(out_path, every, identity)


def train_run(config: dict, run: Run, token_ids: torch.Tensor, masks: dict[str, torch.Tensor], out_path,
              moved_path=None, *, token_ids_sha256: str = "", batches=None) -> dict:
    """Train one run and stream its recording to `out_path`, going on from its checkpoint where one is left.
    `batches` (an iterator of window start offsets) replaces the seeded sampler; the parity test uses it to
    replay another trainer's order (such a run keeps no checkpoint: its order cannot be replayed)."""
    training, steps, seq_len = config["training"], config["training"]["steps"], config["training"]["seq_len"]
    check_windows(token_ids.numel(), training["batch_size"], seq_len, "token ids", training["windows"])
    make_deterministic(training)
    device = pick_device(training["device"])
    param_dtype, compute_dtype = DTYPES[training["param_dtype"]], DTYPES[training["compute_dtype"]]
    model = build_model(config["model"], run.tied, init_seed(config, run.seed), param_dtype).to(device)
    working = WorkingCopy(model, compute_dtype, param_dtype)
    h_mean = HMeanHook(working.worker)
    stepped = StateDtype(working.params, DTYPES[training["optimizer_state_dtype"] or training["param_dtype"]])
    optimizer = adamw(stepped.params, training)
    scheduler = lr_scheduler(optimizer, training)
    recorded = {"W": unembedding_W(model)} if run.tied else {"E": embedding_E(model), "W": unembedding_W(model)}
    initial_digest = state_sha256(model)
    initial_state = {name: p.detach().clone() for name, p in model.named_parameters()}
    state_of = dict(zip(working.params, stepped.params))  # the optimizer's tensor of each model parameter
    variance = VarianceWatch(model, optimizer, state_of)
    checkpoint = open_checkpoint(config, run, out_path, token_ids_sha256) if batches is None else None
    resume = checkpoint.load() if checkpoint is not None else None
    recorder = open_recorder(config, run, masks, device, out_path, token_ids_sha256=token_ids_sha256,
                             initial_digest=initial_digest, resume=resume and resume["recorder"])
    handlers = checkpoint.catch_stop_signals() if checkpoint is not None else {}
    try:
        start = 0
        if resume is not None:
            start = restore_training(resume, model, optimizer, scheduler, variance)
            log.info("%s seed %d: resumed from the checkpoint at step %d; training steps %d-%d", run.tying, run.seed,
                     start, start + 1, steps)
        else:
            recorder.record(0, recorded, optimizer, None, None, float("nan"), state_of=state_of)
        if batches is None:
            batches = window_batches(token_ids.numel(), seq_len, training["batch_size"], data_seed(config, run.seed),
                                     training["windows"])
            for _ in range(start):  # the data position: the seeded order, replayed to the checkpoint's step
                next(batches)
        offsets, tokens, started = torch.arange(seq_len + 1), token_ids.to(device), time.perf_counter()
        for step in range(start + 1, steps + 1):
            window = tokens[next(batches).to(device)[:, None] + offsets.to(device)]
            working.load_weights()
            with numerics.gradient_kernels(training, device, compute_dtype):
                logits = working.worker(input_ids=window[:, :-1]).logits
                loss = ForCausalLMLoss(logits, None, config["model"]["vocab_size"],
                                       shift_labels=targets_for(window, training["objective"]))
                if not torch.isfinite(loss):
                    raise TrainingError(f"{run.tying} seed {run.seed}: loss is {loss.item()} at step {step}")
                loss.backward()
            working.hand_back_grads()
            is_record = step % config["recording"]["record_every"] == 0
            grads = recorder.snapshot_grads(recorded) if is_record else None  # before clipping
            grad_norm = pre_clip_norm(working.params, training["max_grad_norm"], is_record)
            previous_variance = variance.before_step()
            with numerics.optimizer_kernels(device):
                stepped.step(optimizer)
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            variance.after_step(previous_variance)
            if is_record:
                recorder.record(step, recorded, optimizer, grads, logits[0, -1].detach(), loss.item(), grad_norm.item(),
                                state_of=state_of, h_mean=h_mean.value)
            if step % training["log_every"] == 0 or step == steps:
                _log_progress(run, step, steps, step - start, loss.item(), time.perf_counter() - started)
            pause_point(f"step:{step}")
            if checkpoint is not None and (checkpoint.stop_requested or (checkpoint.due(step) and step < steps)):
                checkpoint.save(step, training_state(model, optimizer, scheduler, variance, recorder))
                if checkpoint.stop_requested:
                    raise Stopped(f"{run.tying} seed {run.seed}: stopped by {checkpoint.stop_requested} after step "
                                  f"{step} of {steps}, checkpoint saved; run the job again to go on from there")
        final_digest = state_sha256(model)
        recorder.finish(final_digest)
    except Stopped:
        recorder.suspend()
        raise
    except BaseException:
        recorder.abort()
        if checkpoint is not None:
            checkpoint.remove()
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if checkpoint is not None:
        checkpoint.remove()
    moved = moved_table(model, initial_state, variance.decreased)
    if moved_path is not None:
        write_tsv(moved_path, moved)
    return {"state_sha256_initial": initial_digest, "state_sha256_final": final_digest, "moved": moved}


def training_state(model, optimizer, scheduler, variance: VarianceWatch, recorder: RunRecorder) -> dict:
    """Everything a checkpoint holds besides the step (which also fixes the data position)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "variance_decreased": variance.decreased, "recorder": recorder.checkpoint_state()}


def restore_training(state: dict, model, optimizer, scheduler, variance: VarianceWatch) -> int:
    """A checkpoint's state into the freshly built run; returns its step."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    variance.decreased = state["variance_decreased"]
    return state["step"]


def _log_progress(run: Run, step: int, steps: int, trained: int, loss: float, elapsed: float) -> None:
    """`trained`: steps this job has trained (fewer than `step` after a resume), for the rate."""
    rate = trained / elapsed if elapsed > 0 else math.inf
    log.info("%s seed %d: step %d/%d loss %.4f %.2f steps/s ETA %.0f s", run.tying, run.seed, step, steps, loss,
             rate, (steps - step) / rate if rate else math.inf)


def moved_table(model, initial_state: dict, variance_decreased: dict) -> list[dict]:
    """Per parameter tensor: the fraction of elements that changed between init and the end, the largest
    change, and the fraction of Adam second-moment elements that ever decreased (bf16 v x beta2 can round
    back to v, so in the notebooks' regime it never does)."""
    rows = []
    for name, param in model.named_parameters():
        before, after = initial_state[name], param.detach()
        rows.append({
            "parameter": name, "numel": param.numel(), "dtype": str(param.dtype).replace("torch.", ""),
            "fraction_changed": (after != before).float().mean().item(),
            "max_abs_change": (after.float() - before.float()).abs().max().item(),
            "fraction_variance_ever_decreased": variance_decreased[name].float().mean().item(),
        })
    return rows


def warmup_config(config: dict) -> dict:
    """The replica's warm-up: the run's config cut to two recording intervals (at most the run's steps). Every
    code path a run takes runs in it at least once (the model's build and init, the first record, an optimizer
    step creating Adam's state, an unrecorded step where record_every > 1, a recorded one, the recording's
    finish), so whatever a run leaves behind in the process, the warm-up leaves too; more steps of the same
    paths leave nothing new, and a whole warm-up run doubled the replica's cost."""
    short = copy.deepcopy(config)
    short["training"]["steps"] = min(config["training"]["steps"], 2 * config["recording"]["record_every"])
    short["training"]["checkpoint_every"] = 0  # discarded anyway: a resumed replica runs its warm-up again
    return short


def train_replica(config: dict, run: Run, token_ids: torch.Tensor, masks: dict, out_path, *, warmup_seed: int,
                  token_ids_sha256: str = "") -> dict:
    """Train a few steps of `warmup_seed` (warmup_config; discarded), then `run` into `out_path`, in this one
    process: anything that leaks from one run into the next (RNG state, caches, allocator) makes the replica
    differ from the run's own job. The warm-up goes next to the output, not to /tmp, which may be small on a
    cluster node."""
    if warmup_seed == run.seed:
        raise ConfigError(f"config key 'sanity.replica_warmup_seed': {warmup_seed} is the replica's own seed")
    out_path = Path(out_path)
    # A fixed name, cleared first: a warm-up killed mid-run (its file reserved at full size) is not left behind.
    scratch = out_path.with_name(f".warmup-{out_path.stem}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        train_run(warmup_config(config), Run(run.tying, warmup_seed), token_ids, masks, scratch / "warmup.safetensors",
                  token_ids_sha256=token_ids_sha256)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return train_run(config, run, token_ids, masks, out_path, token_ids_sha256=token_ids_sha256)
