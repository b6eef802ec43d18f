"""Adam accounting: every recorded step replayed from the recording alone with torch's single-tensor AdamW
arithmetic, in the parameter dtype, and the updates that bf16 rounding lost.

The replay of optimizer step t (torch.optim.AdamW, foreach=False, the training loop's optimizer; the moments
by flannel.moments, which computes them as torch's FMA kernels do, in numpy, so on any CPU):
  g   = grad_t x clip                     clip = min(max_norm / (|g|_pre-clip + 1e-6), 1), in the grads' dtype
  m_t = m_(t-1).lerp(g, 1 - beta1)
  v_t = v_(t-1).mul(beta2).addcmul(g, g, value=1 - beta2)
  W_t = W_(t-1) [.mul(1 - lr wd)] .addcdiv(m_t, sqrt(v_t) / sqrt(1 - beta2^t) + eps, value=-lr / (1 - beta1^t))
(sqrt is the IEEE one on both sides, flannel.kernels.ieee_sqrt: training steps the optimizer inside
flannel.kernels.PortableKernels, since MKL's float32 sqrt rounds by its code path, which the training process
pins and this one need not)
every operation on tensors of the moments' dtype (training.optimizer_state_dtype, by default the weights'), so
each intermediate rounds as it did in training, and W_t rounded once into the weights' dtype. W_t is
rebuilt from the recorded m_t and v_t (so a wrong moment shows at its own step); m_t and v_t from the recorded
previous moments, the recorded pre-clip grad and the recorded pre-clip global norm (`grad_norms`). lr is the
config's schedule (flannel.analysis.rows.scheduled_lr). The replay closes bitwise only where consecutive steps were
recorded in a dtype that holds the optimizer state exactly; elsewhere its columns are NaN. A compact
recording's derived moment records are this replay already (flannel.compact), each checked against the
optimizer's bytes as it was recorded and stored where they differed: they count as rebuilt without a second
replay, which would repeat the decoding's arithmetic on the same inputs (half the accounting's time).

Lost updates: the exact update -lr/(1 - beta1^t) m_t / (sqrt(v_t / (1 - beta2^t)) + eps), computed in float64
from the recorded moments, is nonzero while the recorded weight did not change (the bf16 rounding ate it).
A second moment "cannot decrease" at step t where v_(t-1) > 0 and v_(t-1) x beta2 rounds back to v_(t-1) in
the parameter dtype: the decay is lost, and adding g^2 >= 0 cannot make it smaller.

Table columns (one row per record; NaN at record 0): `step`, `lr`, `grad_norm` (pre-clip, global), `clip`
(the factor applied), then per matrix M (tied: W; untied: E and W):
  M_weights_bitwise, M_momentum_bitwise, M_variance_bitwise   fraction of M's recorded elements rebuilt bitwise
and per group G (dead, live):
  M_G_update_nonzero     fraction of elements whose exact float64 update is nonzero
  M_G_lost_update        fraction of elements whose exact update is nonzero while the weight did not change
  M_G_v_cannot_decrease  fraction of elements (of those with v_(t-1) > 0) whose v could not decrease
  M_G_v_decreased        fraction of elements (of those with v_(t-1) > 0) whose v did decrease
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from ..recording import Recording
from ..kernels import ieee_sqrt
from ..moments import MomentRule, clip_factor
from ..training.model import DTYPES
from .rows import dead_rows, group_masks, scheduled_lr, sides

QUANTITIES = ("momentum", "variance", "weights")  # the order within a step in which a replay can fail


# ---- torch's arithmetic ------------------------------------------------------------------------------------


def replay_moments(m_prev: torch.Tensor, v_prev: torch.Tensor, grad: torch.Tensor, *, beta1: float, beta2: float,
                   clip: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """m_t and v_t from the previous moments and the pre-clip grad: clipped in the grad's (the weights') dtype,
    then in the moments' dtype, by flannel.moments (torch's arithmetic, bit for bit on any CPU)."""
    rule = MomentRule(beta1, beta2, None, m_prev.dtype == torch.bfloat16, grad.dtype == torch.bfloat16)
    g = (grad if clip is None else grad.mul(clip)).float().numpy()
    m = rule.momentum(m_prev.float().numpy(), g)
    v = rule.variance(v_prev.float().numpy(), g)
    return torch.from_numpy(m).to(m_prev.dtype), torch.from_numpy(v).to(v_prev.dtype)


def replay_weights(w_prev: torch.Tensor, m: torch.Tensor, v: torch.Tensor, *, lr: float, step: int, beta1: float,
                   beta2: float, eps: float, weight_decay: float = 0.0) -> torch.Tensor:
    """W_t from W_(t-1) and the step's moments, computed in the moments' dtype and rounded once into the
    weights' (torch's non-capturable branch: the bias corrections are Python floats of the float step count)."""
    w = w_prev.to(m.dtype, copy=True)
    if weight_decay != 0:
        w.mul_(1 - lr * weight_decay)
    t = float(step)
    step_size = lr / (1 - beta1**t)
    denom = (ieee_sqrt(v) / (1 - beta2**t) ** 0.5).add_(eps)
    return w.addcdiv_(m, denom, value=-step_size).to(w_prev.dtype)


def exact_update(m: torch.Tensor, v: torch.Tensor, *, lr: float, step: int, beta1: float, beta2: float,
                 eps: float) -> torch.Tensor:
    """The update Adam meant to make, in float64 from the recorded moments (no rounding of the result)."""
    # In place on float64 copies: the operations and order of -lr/(1 - beta1^t) m / (sqrt(v / (1 - beta2^t)) + eps).
    denominator = v.to(torch.float64, copy=True).div_(1 - beta2**step).sqrt_().add_(eps)
    return m.to(torch.float64, copy=True).mul_(-lr / (1 - beta1**step)).div_(denominator)


# Integer views of a dtype's bits: equal views, identical bits.
BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bitwise_fraction(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of elements with identical bits (same dtype; NaN equals NaN, +0 differs from -0)."""
    bits = BITS[a.element_size()]
    return _share(int(torch.count_nonzero(a.contiguous().view(bits) == b.contiguous().view(bits))), a.numel())


def _share(count: int, total: int) -> float:
    """count / total, NaN of nothing: the mean of 0/1 indicators to the bit (the count is exact), done in
    integers rather than by averaging a float64 copy."""
    return count / total if total else math.nan


# ---- one recording ------------------------------------------------------------------------------------------


def replayable(recording: Recording) -> str | None:
    """Why this recording cannot be replayed bitwise (a sentence), or None if it can."""
    config = recording.config
    training, record = config.get("training", {}), config.get("recording", {})
    wanted = {recording.matrix(q, s) for q in ("embeddings", "momentum", "variance") for s in sides(recording)}
    if not wanted <= recording.keys:
        return "weights and both Adam moments must be recorded"
    if record.get("record_every", 1) != 1:
        return f"recorded every {record['record_every']} steps; the replay needs every step"
    state = state_dtype(training)
    recorded = recording.record(recording.matrix("embeddings", sides(recording)[0]), 0).dtype
    if recorded not in (state, torch.float32):
        return f"recorded in {_name(recorded)}, the optimizer state is {_name(state)}"
    return None


def state_dtype(training: dict) -> torch.dtype:
    """The dtype of Adam's moments (training.optimizer_state_dtype, else the weights')."""
    return DTYPES[training.get("optimizer_state_dtype") or training.get("param_dtype", "bfloat16")]


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _moments_replayable(recording: Recording) -> bool:
    needs_norm = recording.config["training"].get("max_grad_norm") is not None
    grads = {recording.matrix("grads", s) for s in sides(recording)}
    return grads <= recording.keys and (not needs_norm or "grad_norms" in recording.keys)


def accounting_rows(recording: Recording):
    """One dict per record (see the module's table columns), reading one record of each tensor at a time."""
    training = recording.config["training"]
    hyper = {"beta1": training["adam_beta1"], "beta2": training["adam_beta2"]}
    eps, weight_decay = training["adam_epsilon"], training.get("weight_decay", 0.0)
    why_not = replayable(recording)
    moments = why_not is None and _moments_replayable(recording)
    dtype = DTYPES[training.get("param_dtype", "bfloat16")]
    # Recorded values held in the dtypes training computed in (exact where the replay is possible).
    held = {"weights": dtype, "momentum": state_dtype(training), "variance": state_dtype(training)}
    dead = dead_rows(recording)
    norms = recording.tensor("grad_norms").tolist() if "grad_norms" in recording.keys else None
    replayed = {side: recording.replayed_records(recording.matrix("momentum", side)) &
                recording.replayed_records(recording.matrix("variance", side)) for side in sides(recording)} \
        if moments else {}
    previous, previous_step = None, None
    for index, step in enumerate(recording.steps()):
        current = {side: {q: recording.record(recording.matrix(k, side), index).to(held[q]) for q, k in
                          (("weights", "embeddings"), ("momentum", "momentum"), ("variance", "variance"))
                          if recording.matrix(k, side) in recording.keys} for side in sides(recording)}
        lr = scheduled_lr(step, training) if step > 0 else math.nan
        grad_norm = norms[index] if norms is not None and step > 0 else math.nan
        clip = None if step == 0 or math.isnan(grad_norm) else clip_factor(grad_norm, training.get("max_grad_norm"), dtype)
        row = {"step": step, "lr": lr, "grad_norm": grad_norm, "clip": math.nan if clip is None else clip.item()}
        consecutive = previous is not None and step == previous_step + 1
        for side, now in current.items():
            before = previous[side] if consecutive else None
            fractions = dict.fromkeys(QUANTITIES, math.nan)
            if why_not is None and before is not None:
                if moments and index in replayed[side]:
                    fractions["momentum"] = fractions["variance"] = 1.0
                elif moments:
                    grad = recording.record(recording.matrix("grads", side), index).to(dtype)
                    m, v = replay_moments(before["momentum"], before["variance"], grad, clip=clip, **hyper)
                    fractions["momentum"] = bitwise_fraction(m, now["momentum"])
                    fractions["variance"] = bitwise_fraction(v, now["variance"])
                w = replay_weights(before["weights"], now["momentum"], now["variance"], lr=lr, step=step, eps=eps,
                                   weight_decay=weight_decay, **hyper)
                fractions["weights"] = bitwise_fraction(w, now["weights"])
            row.update({f"{side}_{q}_bitwise": fractions[q] for q in QUANTITIES})
            row.update(_lost(side, now, before, dead, lr=lr, step=step, eps=eps, **hyper))
        yield row
        previous, previous_step = current, step


def _lost(side: str, now: dict, before: dict | None, dead: torch.Tensor, *, lr: float, step: int, beta1: float,
          beta2: float, eps: float) -> dict:
    columns = {}
    have = before is not None and {"momentum", "variance"} <= set(now)
    if have:
        update = exact_update(now["momentum"], now["variance"], lr=lr, step=step, beta1=beta1, beta2=beta2, eps=eps) != 0
        # Compared as float32 (exact for bf16, and the same answers), where torch compares much faster.
        still = now["weights"].float() == before["weights"].float()
        v_prev = before["variance"].float()
        positive = v_prev > 0
        # Per row, how many elements count: summed over a group's rows, the exact counts of its elements.
        per_row = {name: torch.count_nonzero(mask, dim=1) for name, mask in (
            ("update", update), ("lost", update & still), ("positive", positive),
            ("stuck", (before["variance"].mul(beta2).float() == v_prev) & positive),
            ("decreased", (now["variance"].float() < v_prev) & positive))}
    for group, mask in group_masks(dead):
        if not have:
            values = dict.fromkeys(("update_nonzero", "lost_update", "v_cannot_decrease", "v_decreased"), math.nan)
        else:
            count = {name: int(rows[mask].sum()) for name, rows in per_row.items()}
            elements = int(mask.sum()) * update.shape[1]
            values = {"update_nonzero": _share(count["update"], elements), "lost_update": _share(count["lost"], elements),
                      "v_cannot_decrease": _share(count["stuck"], count["positive"]),
                      "v_decreased": _share(count["decreased"], count["positive"])}
        columns.update({f"{side}_{group}_{name}": value for name, value in values.items()})
    return columns


def adam_accounting(path: str | Path) -> pd.DataFrame:
    """The accounting table of one recording (see the module docstring)."""
    return pd.DataFrame(list(accounting_rows(Recording(path))))


def first_failure(row: dict, tied: bool) -> tuple[str, float] | None:
    """(recorded tensor, fraction) of the first quantity of a table row not rebuilt bitwise, in the order a
    step computes them."""
    for side in ("W",) if tied else ("E", "W"):
        for quantity in QUANTITIES:
            value = row.get(f"{side}_{quantity}_bitwise", math.nan)
            if not math.isnan(value) and value < 1.0:
                key = "embeddings" if quantity == "weights" else quantity
                return (key if tied else f"{key}_{side}"), value
    return None
