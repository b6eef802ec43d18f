"""The notebooks' training code (1.20a tied, 1.20b untied), the oracle of the parity tests: nothing here
comes from flannel.

Kept as the notebooks wrote it: the seeding of their imports cell, their GPT2Config arguments (and nothing
else: no attention implementation, so transformers' default), GPT2LMHeadModel(config) cast to bf16, their
bf16-native init cell, their TokenDataset (labels pre-shifted, so GPT2LMHeadModel's own shift makes the
objective "skip one"), their in-RAM recorder (lists of bf16 copies, torch.stack at the end), their
InstrumentedTrainer on transformers.Trainer and their TrainingArguments. What changed, and why:
  - one recorder class for both tyings (1.20a and 1.20b differ only in which matrices they keep and the key
    names), with the storage dtype a parameter (the notebooks: bf16) so the fp32 parity case can compare fp32;
  - the model's dtype is a parameter for the same reason (the notebooks: bf16);
  - `use_cpu` is set on a machine without an accelerator: transformers 5.x refuses `bf16=True` on CPU otherwise;
  - prints are off unless `verbose`, the hook counts its calls so the off-by-one can be observed, and callers
    may pass Trainer callbacks (the benchmark's clock).
Used by tests/unit/test_parity.py and tools/benchmark.py.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments


def notebook_model(vocab_size, n_positions, n_embd, n_layer, n_head, *, tied, seed, init_scale=0.02,
                   dtype=torch.bfloat16, device="cpu"):
    """The imports, model and initialisation cells of 1.20a/b, in their order."""
    torch.manual_seed(seed)
    np.random.seed(seed)

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=tied,
    )
    model = GPT2LMHeadModel(config)
    model = model.to(dtype).to(device)

    torch.manual_seed(seed)
    init_f32 = torch.randn(vocab_size, n_embd, dtype=torch.float32, device=device) * init_scale
    init_bf16 = init_f32.to(dtype)
    with torch.no_grad():
        model.transformer.wte.weight[:] = init_bf16  # E
        model.lm_head.weight[:] = init_bf16  # W (the same tensor when tied)
    return model


class TokenDataset(Dataset):
    """The notebooks' dataset: a window at every offset, labels already shifted by one."""

    def __init__(self, corpus_tensor, max_seq_len):
        self.corpus = corpus_tensor
        self.max_seq_len = max_seq_len

    def __len__(self):
        return max(0, len(self.corpus) - self.max_seq_len)

    def __getitem__(self, idx):
        chunk = self.corpus[idx : idx + self.max_seq_len + 1]
        return {
            'input_ids': chunk[:-1],
            'labels': chunk[1:]
        }


class NotebookRecorder:
    """The notebooks' recorder (1.20b UntiedRecorder; tied=True gives 1.20a's keys), logic unchanged."""

    def __init__(self, vocab_size, hidden_dim, record_every_n, tied=False, dtype=torch.bfloat16, verbose=False):
        self.vocab_size = vocab_size
        self.hidden_dim = hidden_dim
        self.record_every_n = record_every_n
        self.tied = tied
        self.dtype = dtype
        self.verbose = verbose
        self.sides = ("",) if tied else ("_E", "_W")

        # Storage (lists of tensors, keep in RAM)
        self.recorded_steps = []
        self.store = {f"{q}{s}": [] for q in ("embeddings", "grads", "momentum", "variance") for s in self.sides}
        self.logits = []
        self.losses = []

        # Temporary storage
        self.current_step = 0
        self.recorded_initial = False
        self.grad_before = None
        self.loss_value = None
        self.logits_sample = None

    def _matrices(self, model):
        # Tied: wte.weight is lm_head.weight, recorded once under the unsuffixed keys.
        if self.tied:
            return {"": model.transformer.wte.weight}
        return {"_E": model.transformer.wte.weight, "_W": model.lm_head.weight}

    def record_initial_state(self, model, optimizer):
        """Record step 0: initial state before training."""
        if not self.recorded_initial:
            self.recorded_steps.append(0)
            for side, param in self._matrices(model).items():
                X = param.data.clone().cpu().to(self.dtype)
                # Step 0: no gradients, no optimizer state yet (zeros)
                self.store[f"embeddings{side}"].append(X)
                self.store[f"grads{side}"].append(torch.zeros_like(X))
                self.store[f"momentum{side}"].append(torch.zeros_like(X))
                self.store[f"variance{side}"].append(torch.zeros_like(X))
            self.logits.append(torch.zeros(self.vocab_size, dtype=self.dtype))
            self.losses.append(torch.tensor(float('nan'), dtype=self.dtype))
            self.recorded_initial = True
            self.current_step = 1
            if self.verbose:
                print("✓ Recorded initial state (step 0)")

    def record_before_step(self, model, loss, logits):
        """Call after forward/backward, before optimizer step."""
        if self.current_step % self.record_every_n == 0:
            self.grad_before = {}
            for side, param in self._matrices(model).items():
                if param.grad is not None:
                    self.grad_before[side] = param.grad.clone().cpu().to(self.dtype)
                else:
                    self.grad_before[side] = torch.zeros(self.vocab_size, self.hidden_dim, dtype=self.dtype)
            self.loss_value = loss.item()
            # Logits from first sequence, last position
            self.logits_sample = logits[0, -1, :].detach().cpu().to(self.dtype)

    def record_after_step(self, model, optimizer):
        """Call after optimizer step."""
        if self.current_step % self.record_every_n == 0:
            if self.grad_before is not None and self.loss_value is not None:
                self.recorded_steps.append(self.current_step)
                for side, param in self._matrices(model).items():
                    X = param.data.clone().cpu().to(self.dtype)
                    if param in optimizer.state:
                        state = optimizer.state[param]
                        mom = state.get('exp_avg', torch.zeros_like(X)).clone().cpu().to(self.dtype)
                        var = state.get('exp_avg_sq', torch.zeros_like(X)).clone().cpu().to(self.dtype)
                    else:
                        mom = torch.zeros_like(X)
                        var = torch.zeros_like(X)
                    self.store[f"embeddings{side}"].append(X)
                    self.store[f"grads{side}"].append(self.grad_before[side])
                    self.store[f"momentum{side}"].append(mom)
                    self.store[f"variance{side}"].append(var)
                self.logits.append(self.logits_sample)
                self.losses.append(torch.tensor(self.loss_value, dtype=self.dtype))

                # Clear temp storage: this is why the extra end-of-epoch hook call appends nothing.
                self.grad_before = None
                self.loss_value = None
                self.logits_sample = None
                if self.verbose and self.current_step % 50 == 0:
                    print(f"  Recorded step {self.current_step}")

        self.current_step += 1

    def get_data(self):
        """Return recorded data as stacked tensors (the step that needs a second copy of everything in RAM)."""
        data = {'recorded_steps': torch.tensor(self.recorded_steps, dtype=torch.long)}
        for key, values in self.store.items():
            data[key] = torch.stack(values) if values else torch.tensor([])
        data['logits'] = torch.stack(self.logits) if self.logits else torch.tensor([])
        data['losses'] = torch.stack(self.losses) if self.losses else torch.tensor([])
        return data


class InstrumentedTrainer(Trainer):
    def __init__(self, recorder, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorder = recorder
        self.last_logits = None
        self.hook_calls = 0
        self.grad_norms = []  # pre-clip norms the Trainer passes to the hook; shows whether clipping acted

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Override to capture logits. Drops num_items_in_batch, as the notebooks did: the loss is the mean
        over the labelled positions of this batch."""
        outputs = model(**inputs)
        loss = outputs.loss
        self.last_logits = outputs.logits
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        """Override to inject recording."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Record BEFORE optimizer step (grads before clipping)
        self.recorder.record_before_step(model, loss, self.last_logits)
        return loss

    # The notebooks' signature still fits transformers 5.23, which passes learning_rate as a keyword (into **kwargs).
    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, start_time=None, **kwargs):
        """Override to record AFTER optimizer step. Transformers also calls it once at the end of every epoch."""
        self.hook_calls += 1
        self.grad_norms.append(None if grad_norm is None else float(grad_norm))
        self.recorder.record_after_step(model, self.optimizer)
        super()._maybe_log_save_evaluate(tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, start_time, **kwargs)


def training_arguments(output_dir, *, steps, batch_size, learning_rate=1e-3, weight_decay=0.0, adam_beta1=0.9,
                       adam_beta2=0.999, adam_epsilon=1e-8, bf16=True, seed=42, use_cpu=None):
    """The notebooks' TrainingArguments; max_grad_norm and lr_scheduler_type stay at the Trainer defaults
    (1.0, linear), as in the notebooks."""
    if use_cpu is None:
        use_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        adam_beta1=adam_beta1,
        adam_beta2=adam_beta2,
        adam_epsilon=adam_epsilon,
        optim="adamw_torch",
        logging_steps=50,
        save_steps=steps + 1,  # Don't save checkpoints
        save_total_limit=0,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        bf16=bf16,
        seed=seed,
        report_to="none",
        disable_tqdm=True,
        use_cpu=use_cpu,
    )


def run_notebook(model, corpus_tensor, *, seq_len, steps, batch_size, output_dir, tied=False, bf16=True,
                 record_every=1, record_dtype=torch.bfloat16, dataset=None, seed=42, callbacks=(), **optimizer):
    """Train `model` the notebooks' way; returns (trainer, recorder)."""
    config = model.config
    recorder = NotebookRecorder(config.vocab_size, config.n_embd, record_every, tied=tied, dtype=record_dtype)
    trainer = InstrumentedTrainer(
        recorder=recorder,
        model=model,
        args=training_arguments(output_dir, steps=steps, batch_size=batch_size, bf16=bf16, seed=seed, **optimizer),
        train_dataset=dataset if dataset is not None else TokenDataset(corpus_tensor, seq_len),
        callbacks=list(callbacks),
    )
    recorder.record_initial_state(model, trainer.optimizer)
    trainer.train()
    return trainer, recorder
