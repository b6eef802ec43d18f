"""Parity: the notebooks' own code (tests/notebook.py: their model and init cells, dataset, recorder, Trainer
and TrainingArguments; nothing from flannel) and flannel's `train_run` record the same run, bitwise.

The flannel side replays the batch order the Trainer's sampler drew (train_run's `batches=`) and uses the
notebooks' objective (skip_one). Two precisions:
  - bf16, the faithful path against the notebooks as written (`bf16=True`): this is what "faithful" means;
  - fp32, both sides' weights and compute in fp32 (the notebook model cast to fp32 instead of bf16), the
    notebook side under the float32 kernels flannel's portable mode uses (flannel.kernels).
Why bitwise holds on any CPU: both sides run in this one process, after the same process-wide settings
(flannel.training.loop.make_deterministic: one thread, deterministic algorithms, the pinned portable kernels),
and run the same aten ops on operands of the same shapes and memory layouts in the same order (GPT-2 with
SDPA attention and no KV cache, ForCausalLMLoss on the same labels, clip_grad_norm_ over the same
parameters, single-tensor AdamW, the linear LambdaLR). So whatever kernels a CPU picks, it picks the same
ones for both sides. The one layout trap, found on an AVX2 CPU: with GPT-2's KV cache on (the config
default; the Trainer turns it off), K and V become contiguous copies and the attention backward hands MKL
a transposed operand of another layout, which sums in another order; flannel's model has no cache.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from helpers import tiny_config
from notebook import TokenDataset, notebook_model, run_notebook

from flannel.recording import Recording
from flannel.training.loop import make_deterministic, Run, train_run
from flannel.training.numerics import gradient_kernels

STEPS, BATCH, SEQ_LEN, SEED = 8, 4, 16, 42
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
QUANTITIES = ("embeddings", "grads", "momentum", "variance")


class LoggedTokenDataset(TokenDataset):
    """The notebooks' dataset, noting every index the Trainer's sampler asks for, in order."""

    def __init__(self, corpus_tensor, max_seq_len):
        super().__init__(corpus_tensor, max_seq_len)
        self.asked = []

    def __getitem__(self, idx):
        self.asked.append(int(idx))
        return super().__getitem__(idx)


def parity_config(vocab_size: int, precision: str, attention: str = "sdpa") -> dict:
    dtype = "bfloat16" if precision == "bf16" else "float32"
    return tiny_config(
        model={"vocab_size": vocab_size, "n_positions": SEQ_LEN, "n_embd": 16, "n_layer": 1, "n_head": 2,
               "attention": attention},
        training={"steps": STEPS, "batch_size": BATCH, "seq_len": SEQ_LEN, "objective": "skip_one",
                  "param_dtype": dtype, "compute_dtype": dtype, "device": "cpu", "max_grad_norm": 1.0,
                  "lr_schedule": "linear", "warmup_steps": 0, "weight_decay": 0.0, "threads": 1, "log_every": STEPS},
        recording={"record_every": 1, "rows": "all", "dtype": dtype, "quantities": [*QUANTITIES, "logits"]},
        runs={"tied": [SEED], "untied": [SEED], "reference_seed": SEED},
    )


def keys_of(tying: str, quantity: str) -> list[str]:
    return [quantity] if tying == "tied" else [f"{quantity}_E", f"{quantity}_W"]


def first_mismatch(recording: Recording, data: dict, tying: str) -> tuple[str, int] | None:
    """The first (tensor, step) where the two sides differ, in the order a step computes them."""
    for step in range(STEPS + 1):
        for key in ["logits"] + [k for q in ("grads", "momentum", "variance", "embeddings") for k in keys_of(tying, q)]:
            if not torch.equal(recording.record(key, step), data[key][step]):
                return key, step
    return None


@pytest.fixture(scope="module")
def notebook_runs(tiny_data, tmp_path_factory):
    """The notebook code's run for each (precision, tying), with the batch order its sampler drew."""
    made = {}
    for precision in DTYPES:
        for tying in ("untied", "tied"):
            config = parity_config(tiny_data["config"]["model"]["vocab_size"], precision)
            make_deterministic(config["training"])  # the settings train_run applies, applied to both sides
            folder = tmp_path_factory.mktemp(f"notebook_{precision}_{tying}")
            model = notebook_model(config["model"]["vocab_size"], SEQ_LEN, 16, 1, 2, tied=tying == "tied", seed=SEED,
                                   dtype=DTYPES[precision])
            dataset = LoggedTokenDataset(tiny_data["ids"], SEQ_LEN)
            # In fp32 flannel's portable mode computes the step's float32 work with flannel.kernels (no MKL);
            # the notebook side runs under the same kernels. The bf16 notebook runs as written: no kernel of
            # its step is replaced (this test shows it).
            kernels = gradient_kernels(config["training"], torch.device("cpu"), DTYPES[precision])
            with kernels if precision == "fp32" else contextlib.nullcontext():
                trainer, recorder = run_notebook(model, tiny_data["ids"], seq_len=SEQ_LEN, steps=STEPS, batch_size=BATCH,
                                                 output_dir=folder, tied=tying == "tied", bf16=precision == "bf16",
                                                 record_dtype=DTYPES[precision], dataset=dataset, seed=SEED,
                                                 use_cpu=True)
            # accelerate's DataLoaderShard fetches one batch ahead, so more indices than used may have been asked for.
            assert len(dataset.asked) >= STEPS * BATCH
            order = torch.tensor(dataset.asked[: STEPS * BATCH], dtype=torch.int64).view(STEPS, BATCH)
            made[precision, tying] = {"trainer": trainer, "recorder": recorder, "data": recorder.get_data(), "order": order}
    return made


def flannel_run(tiny_data, notebook_runs, folder, precision: str, tying: str, attention: str = "sdpa") -> Recording:
    config = parity_config(tiny_data["config"]["model"]["vocab_size"], precision, attention)
    out = folder / f"{precision}_{tying}_{attention}.safetensors"
    train_run(config, Run(tying, SEED), tiny_data["ids"], tiny_data["masks"], out,
              batches=iter(notebook_runs[precision, tying]["order"]))
    return Recording(out)


@pytest.fixture(scope="module", params=[(p, t) for p in DTYPES for t in ("untied", "tied")],
                ids=[f"{p}-{t}" for p in DTYPES for t in ("untied", "tied")])
def both_runs(request, tiny_data, notebook_runs, tmp_path_factory):
    precision, tying = request.param
    recording = flannel_run(tiny_data, notebook_runs, tmp_path_factory.mktemp("flannel"), precision, tying)
    return {"precision": precision, "tying": tying, "recording": recording, **notebook_runs[precision, tying]}


def test_trainer_batches_are_random_windows(both_runs):
    """A sanity check on the replayed order: the sampler shuffled, so the parity is not a trivial one."""
    order = both_runs["order"]
    assert order.unique().numel() == order.numel()
    assert not torch.equal(order.flatten(), torch.arange(order.numel()) + order.flatten()[0])


def test_clipping_acted(both_runs):
    """Clipping changes the run only when the pre-clip norm exceeds max_grad_norm (1.0); at these dims the norm
    hovers around 1, so it acts at some steps, enough for the parity to cover it."""
    norms = both_runs["trainer"].grad_norms[:STEPS]
    assert sum(norm > 1.0 for norm in norms) >= 2, norms


def test_same_steps_and_keys(both_runs):
    data, recording = both_runs["data"], both_runs["recording"]
    assert data["recorded_steps"].tolist() == recording.steps() == list(range(STEPS + 1))
    matrices = {k for k in data if k not in ("recorded_steps", "logits", "losses")}
    assert matrices == {k for q in QUANTITIES for k in keys_of(both_runs["tying"], q)}
    assert matrices <= recording.keys


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_matrices_bitwise_equal_at_every_step(both_runs, quantity):
    data, recording = both_runs["data"], both_runs["recording"]
    for key in keys_of(both_runs["tying"], quantity):
        ours = recording.tensor(key)
        assert ours.dtype == data[key].dtype == DTYPES[both_runs["precision"]]
        for step in range(STEPS + 1):
            theirs = data[key][step]
            differ = ours[step] != theirs
            assert not differ.any(), (
                f"{key} step {step}: {int(differ.sum())} elements differ, "
                f"max |diff| {(ours[step].float() - theirs.float()).abs().max().item():.3e}")
        if key != "grads_E":
            # Nothing is trivially equal: the recorded matrix changes from step to step.
            assert not torch.equal(ours[1], ours[STEPS])


def test_losses_and_logits_bitwise_equal(both_runs):
    """The notebooks kept each loss as a tensor of the record dtype; flannel keeps float32, so compare after
    rounding ours to theirs (exact for fp32)."""
    data, recording = both_runs["data"], both_runs["recording"]
    ours, theirs = recording.tensor("losses").to(data["losses"].dtype), data["losses"]
    assert torch.isnan(ours[0]) and torch.isnan(theirs[0])
    assert torch.equal(ours[1:], theirs[1:]), f"losses: ours {ours[1:].tolist()} theirs {theirs[1:].tolist()}"
    assert ours[STEPS] < ours[1]  # it trained
    assert torch.equal(recording.tensor("logits"), data["logits"])


def test_eager_attention_is_not_the_notebooks_arithmetic(tiny_data, notebook_runs, tmp_path):
    """The notebooks' GPT2Config names no attention implementation, so transformers runs SDPA; eager attention
    rounds differently in bf16 and parts from the notebook at the first step."""
    for tying in ("untied", "tied"):
        recording = flannel_run(tiny_data, notebook_runs, tmp_path, "bf16", tying, attention="eager")
        assert first_mismatch(recording, notebook_runs["bf16", tying]["data"], tying) == ("logits", 1), tying


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
