"""Parity: the notebooks' Trainer-based run and flannel's loop record the same run.

Both sides start from the same model (flannel.model.build_model, same seed), see the same batches (the indices
the Trainer's sampler drew, replayed through train_run's `batches=`), use the notebooks' objective (skip_one),
fp32 weights and compute on the CPU under the same thread count and deterministic settings. Every recorded
tensor is compared bitwise: the two sides run the same kernels in the same order (ForCausalLMLoss on the same
labels, clip_grad_norm_ over the same parameters, single-tensor AdamW, the linear LambdaLR), so any
difference is a real divergence of the loops, not rounding noise.
"""

from __future__ import annotations

import sys

import pytest
import torch

from conftest import ROOT, tiny_config

sys.path.insert(0, str(ROOT / "tools"))

from notebook_trainer import TokenDataset, run_notebook  # noqa: E402

from flannel.model import build_model  # noqa: E402
from flannel.recording import Recording  # noqa: E402
from flannel.training import Run, make_deterministic, train_run  # noqa: E402

STEPS, BATCH, SEQ_LEN, SEED = 8, 4, 16, 42


class LoggedTokenDataset(TokenDataset):
    """The notebooks' dataset, noting every index the Trainer's sampler asks for, in order."""

    def __init__(self, corpus_tensor, max_seq_len):
        super().__init__(corpus_tensor, max_seq_len)
        self.asked = []

    def __getitem__(self, idx):
        self.asked.append(int(idx))
        return super().__getitem__(idx)


def parity_config(vocab_size: int, tying: str) -> dict:
    return tiny_config(
        model={"vocab_size": vocab_size, "n_positions": SEQ_LEN, "n_embd": 16, "n_layer": 1, "n_head": 2},
        training={"steps": STEPS, "batch_size": BATCH, "seq_len": SEQ_LEN, "objective": "skip_one",
                  "param_dtype": "float32", "compute_dtype": "float32", "device": "cpu", "max_grad_norm": 1.0,
                  "lr_schedule": "linear", "warmup_steps": 0, "weight_decay": 0.0, "threads": 1,
                  "log_every": STEPS},
        recording={"record_every": 1, "rows": "all", "dtype": "float32",
                   "quantities": ["embeddings", "grads", "momentum", "variance", "logits"]},
        runs={"tied": [SEED], "untied": [SEED], "reference_seed": SEED},
    )


@pytest.fixture(scope="module", params=["untied", "tied"])
def both_runs(request, tiny_data, tmp_path_factory):
    tying = request.param
    config = parity_config(tiny_data["config"]["model"]["vocab_size"], tying)
    folder = tmp_path_factory.mktemp(f"parity_{tying}")
    # The same process-wide settings train_run applies, so both sides use the same kernels and thread count.
    make_deterministic(config["training"]["threads"])

    model = build_model(config["model"], tying == "tied", SEED, torch.float32)
    dataset = LoggedTokenDataset(tiny_data["ids"], SEQ_LEN)
    trainer, recorder, _ = run_notebook(
        model, tiny_data["ids"], seq_len=SEQ_LEN, steps=STEPS, batch_size=BATCH, output_dir=folder / "trainer",
        tied=tying == "tied", bf16=False, record_dtype=torch.float32, dataset=dataset, seed=SEED, use_cpu=True)

    # accelerate's DataLoaderShard fetches one batch ahead, so more indices than used may have been asked for.
    assert len(dataset.asked) >= STEPS * BATCH
    order = torch.tensor(dataset.asked[: STEPS * BATCH], dtype=torch.int64).view(STEPS, BATCH)
    out = folder / "flannel.safetensors"
    train_run(config, Run(tying, SEED), tiny_data["ids"], tiny_data["masks"], out, batches=iter(order))
    return {"tying": tying, "trainer": trainer, "recorder": recorder, "data": recorder.get_data(),
            "recording": Recording(out), "order": order}


def test_trainer_batches_are_random_windows(both_runs):
    """A sanity check on the replayed order: the sampler shuffled, so the parity is not a trivial one."""
    order = both_runs["order"]
    assert order.unique().numel() == order.numel()
    assert not torch.equal(order.flatten(), torch.arange(order.numel()) + order.flatten()[0])


def test_clipping_acted(both_runs):
    """Clipping changes the run only when the pre-clip norm exceeds max_grad_norm (1.0); at these dims the norm
    hovers around 1, so it acts at some steps (the second among them), enough for the parity to cover it."""
    norms = both_runs["trainer"].grad_norms[:STEPS]
    assert sum(norm > 1.0 for norm in norms) >= 2, norms


def test_same_steps_and_keys(both_runs):
    data, recording = both_runs["data"], both_runs["recording"]
    assert data["recorded_steps"].tolist() == recording.steps() == list(range(STEPS + 1))
    matrices = {k for k in data if k not in ("recorded_steps", "logits", "losses")}
    assert matrices == ({"embeddings", "grads", "momentum", "variance"} if both_runs["tying"] == "tied" else
                        {f"{q}_{s}" for q in ("embeddings", "grads", "momentum", "variance") for s in "EW"})
    assert matrices <= recording.keys


@pytest.mark.parametrize("quantity", ["embeddings", "grads", "momentum", "variance"])
def test_matrices_bitwise_equal_at_every_step(both_runs, quantity):
    data, recording = both_runs["data"], both_runs["recording"]
    keys = [quantity] if both_runs["tying"] == "tied" else [f"{quantity}_E", f"{quantity}_W"]
    for key in keys:
        ours = recording.tensor(key)
        assert ours.dtype == data[key].dtype == torch.float32
        for step in range(STEPS + 1):
            theirs = data[key][step]
            differ = ours[step] != theirs
            assert not differ.any(), (
                f"{key} step {step}: {int(differ.sum())} elements differ, "
                f"max |diff| {(ours[step] - theirs).abs().max().item():.3e}")
        if quantity != "grads" or key != "grads_E":
            # Nothing is trivially equal: the recorded matrix changes from step to step.
            assert not torch.equal(ours[1], ours[STEPS])


def test_losses_and_logits_bitwise_equal(both_runs):
    data, recording = both_runs["data"], both_runs["recording"]
    ours, theirs = recording.tensor("losses"), data["losses"]
    assert torch.isnan(ours[0]) and torch.isnan(theirs[0])
    assert torch.equal(ours[1:], theirs[1:]), f"losses: ours {ours[1:].tolist()} theirs {theirs[1:].tolist()}"
    assert ours[STEPS] < ours[1]  # it trained
    assert torch.equal(recording.tensor("logits"), data["logits"])


def test_notebook_hook_runs_steps_plus_one_times(both_runs):
    """Observed fact about the notebooks' code under transformers 5.23: `_maybe_log_save_evaluate` runs once
    per optimizer step and once more at the end of the (single) epoch. The recorder cleared its per-step
    buffers after step `steps`, so the extra call appends nothing: steps + 1 records (record 0 included),
    as 1.20b's 1001 for 1000 steps, and its step counter ends one past."""
    trainer, recorder = both_runs["trainer"], both_runs["recorder"]
    assert trainer.state.epoch <= 1.0  # one epoch: a run over several epochs would add one call per epoch
    assert trainer.hook_calls == STEPS + 1
    assert len(recorder.recorded_steps) == STEPS + 1
    assert recorder.current_step == STEPS + 2
