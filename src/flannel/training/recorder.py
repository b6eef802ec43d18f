"""The notebooks' recorder, streamed: what one training run writes into its recording (flannel.recording),
record by record."""

from __future__ import annotations

import torch

from ..errors import RecordingError
from ..compact import CompactWriter, is_compact
from ..recording import FORMAT, StreamingSafetensors, matrix_keys


class RunRecorder:
    """The notebooks' recorder, streamed. Record 0 is the initial state (zero grads and moments, NaN loss,
    zero logits and h_mean); record k follows optimizer step k x record_every: weights and Adam moments after the
    step, grads before it (before clipping), the logits of sequence 0 at its last position, the step's h_mean
    (float32 [n_embd]: flannel.training.model.HMeanHook), the step's loss, and the
    global gradient norm over all parameters before clipping (`grad_norms`, float32; exact, as the norm is
    computed in the grads' dtype, bf16 or fp32), from which a replay gets the clipping factor."""

    def __init__(self, path, *, tied: bool, rows: torch.Tensor, vocab_size: int, n_embd: int, n_records: int,
                 quantities, dtype: torch.dtype, scalars: dict[str, torch.Tensor], metadata: dict[str, str],
                 training: dict | None = None, record_every: int = 1, resume: dict | None = None):
        """A path ending in .zarr.zip writes a compact recording (flannel.compact), whose moments are derived
        where `training` (the run's training config) and every-step records allow; any other, safetensors.
        `resume`: a checkpoint's `checkpoint_state()`, to go on with the `.partial` it left."""
        self.tied, self.rows, self.dtype = tied, rows, dtype
        self.all_rows = rows.numel() == vocab_size and bool(torch.equal(rows, torch.arange(vocab_size)))
        self.keys = matrix_keys(tied, quantities)
        self.with_logits = "logits" in quantities
        self.with_h_mean = "h_mean" in quantities
        specs = {key: (dtype, (n_records, rows.numel(), n_embd)) for key in self.keys}
        specs["losses"] = (torch.float32, (n_records,))
        specs["grad_norms"] = (torch.float32, (n_records,))
        specs["recorded_steps"] = (torch.int64, (n_records,))
        specs["recorded_rows"] = (torch.int64, (rows.numel(),))
        if self.with_logits:
            specs["logits"] = (dtype, (n_records, vocab_size))
        if self.with_h_mean:
            specs["h_mean"] = (torch.float32, (n_records, n_embd))
        for name, value in scalars.items():
            specs[name] = (value.dtype, tuple(value.shape))
        metadata = {**metadata, "format": FORMAT, "complete": "false", "state_sha256_final": "0" * 64}
        if is_compact(path):
            self.file = CompactWriter(path, specs, metadata, training, record_every, background=True,
                                      resume=resume is not None)
        else:
            self.file = StreamingSafetensors(path, specs, metadata, background=True, resume=resume is not None)
        for name, value in scalars.items():
            self.file.write(name, value)
        self.file.write("recorded_rows", rows)
        self.index = 0
        if resume is not None:  # after the static tensors, which a resumed job writes again, alike
            self.file.restore(resume["file"])
            self.index = resume["index"]

    def _rows(self, matrix: torch.Tensor) -> torch.Tensor:
        matrix = matrix.detach()
        return matrix if self.all_rows else matrix[self.rows.to(matrix.device)]

    def snapshot_grads(self, params: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
        """Copies of the recorded grad rows, taken after backward and before clipping."""
        if not any(k.startswith("grads") for k in self.keys):
            return {}
        return {side: self._rows(p.grad if p.grad is not None else torch.zeros_like(p)).to("cpu", self.dtype, copy=True)
                for side, p in params.items()}

    def record(self, step: int, params: dict[str, torch.nn.Parameter], optimizer, grads: dict | None,
               logits_row: torch.Tensor | None, loss: float, grad_norm: float = float("nan"),
               state_of: dict | None = None, h_mean: torch.Tensor | None = None) -> None:
        """`params` maps "E"/"W" to the embedding and unembedding (one entry, "W", when tied); `grad_norm` is
        the step's global gradient norm over every parameter before clipping (NaN at record 0); `state_of`
        maps a parameter to the tensor the optimizer steps for it, where that is not the parameter itself;
        `h_mean` the step's h_mean (None at record 0: zeros)."""
        record = {}
        for side, param in params.items():
            state = optimizer.state.get((state_of or {}).get(param, param), {})
            values = {
                "embeddings": lambda: self._rows(param),
                "grads": lambda: grads[side] if grads else torch.zeros_like(self._rows(param)),
                "momentum": lambda: self._rows(state["exp_avg"]) if "exp_avg" in state else torch.zeros_like(self._rows(param)),
                "variance": lambda: self._rows(state["exp_avg_sq"]) if "exp_avg_sq" in state else torch.zeros_like(self._rows(param)),
            }
            for quantity, value in values.items():
                key = quantity if self.tied else f"{quantity}_{side}"
                if key in self.keys:
                    record[key] = value()
        if self.with_logits:
            record["logits"] = logits_row if logits_row is not None else torch.zeros(self.file.specs["logits"][1][1])
        if self.with_h_mean:
            record["h_mean"] = h_mean if h_mean is not None else torch.zeros(self.file.specs["h_mean"][1][1])
        record["losses"] = torch.tensor(loss, dtype=torch.float32)
        record["grad_norms"] = torch.tensor(grad_norm, dtype=torch.float32)
        record["recorded_steps"] = torch.tensor(step, dtype=torch.int64)
        self.file.write_record(self.index, record)
        self.index += 1

    def finish(self, final_digest: str) -> None:
        expected = self.file.specs["recorded_steps"][1][0]
        if self.index != expected:
            raise RecordingError(f"{self.file.partial}: {self.index} records written, {expected} expected")
        self.file.finish({"complete": "true", "state_sha256_final": final_digest})

    def checkpoint_state(self) -> dict:
        return {"index": self.index, "file": self.file.checkpoint_state()}

    def suspend(self) -> None:
        self.file.suspend()

    def abort(self) -> None:
        self.file.abort()
