"""Adam's hop condition per (element, step): the update the closed form predicts from the recorded moments,
judged by the exact bf16 hop rule (flannel.analysis.hop_rule), against the hop the recording shows.

For optimizer step t, from the recorded state after it (m_t, v_t) and the weight before it (W_(t-1)):
  u = -lr_t wd W_(t-1) - lr_t m_hat / (sqrt(v_hat) + eps),  m_hat = m_t / (1 - beta1^t), v_hat = v_t / (1 - beta2^t)
in float64 (flannel.analysis.adam.exact_update), lr_t the config's schedule. Predicted hop: the rule says
W_(t-1) + u rounds away from W_(t-1). Observed hop: the recorded W_t differs from W_(t-1). The predictor is
the closed form, not the replay: torch computes sqrt(v_hat) + eps and the quotient in the moments' dtype, so
the two part where that rounding crosses a threshold (the Adam replay, flannel.analysis.adam, closes bitwise).
Precision and recall are taken over the pairs where a hop was predicted or observed, not over all elements,
which the frozen ones dominate.

Step table (one row per record; counts 0 and values NaN where the previous record is not the previous step):
`step`, `lr`, then per matrix M and group G: M_G_predicted, M_G_observed, M_G_both (element counts),
M_G_adam_term_median (median over the rows of |m_hat / (sqrt(v_hat) + eps)|_2, about sqrt(D) at step 1, where
m_hat = g and v_hat = g^2), M_G_ulp_ratio_median and M_G_ulp_ratio_p90 (over the elements, |u| / ulp(W_(t-1)):
a hop needs it above 1/2, 1/4 toward zero from a power of two).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..recording import Recording
from .adam import exact_update
from .hop_rule import moves
from .lattice import bf16_ulp
from .rows import dead_rows, group_masks, scheduled_lr, sides

COUNTS = ("predicted", "observed", "both")


def why_not(recording: Recording, grads: bool = False) -> str | None:
    """Why the hop condition cannot be evaluated on this recording (a sentence), or None."""
    training = recording.config.get("training", {})
    if training.get("param_dtype", "bfloat16") != "bfloat16":
        return f"the weights are {training['param_dtype']}, not bf16: no bf16 lattice to hop on"
    wanted = ("embeddings", "momentum", "variance") + (("grads",) if grads else ())
    absent = [q for q in wanted if recording.matrix(q, sides(recording)[0]) not in recording.keys]
    if absent:
        return f"recording.quantities lacks {', '.join(absent)}"
    if recording.config.get("recording", {}).get("record_every", 1) != 1:
        return "the run is not recorded every step"
    return None


def adam_steps(recording: Recording, side: str):
    """Per record after the first: (index, step, W_(t-1) and W_t as bf16, m_t and v_t as float64), or None in
    place of the tensors where the previous record is not the previous step. One record of each at a time."""
    steps = recording.steps()
    key = {q: recording.matrix(q, side) for q in ("embeddings", "momentum", "variance")}
    before = recording.record(key["embeddings"], 0).to(torch.bfloat16)
    for index in range(1, len(steps)):
        weights = recording.record(key["embeddings"], index).to(torch.bfloat16)
        if steps[index] != steps[index - 1] + 1:
            yield index, steps[index], None
        else:
            yield index, steps[index], (before, weights, recording.record(key["momentum"], index).double(),
                                        recording.record(key["variance"], index).double())
        before = weights


def update(w: torch.Tensor, m: torch.Tensor, v: torch.Tensor, *, lr: float, step: int, training: dict) -> torch.Tensor:
    """u of the module docstring: decoupled weight decay and Adam's step, exact in float64."""
    adam = exact_update(m, v, lr=lr, step=step, beta1=training["adam_beta1"], beta2=training["adam_beta2"],
                        eps=training["adam_epsilon"])
    return adam - lr * training.get("weight_decay", 0.0) * w.double()


def adam_term(m: torch.Tensor, v: torch.Tensor, *, step: int, training: dict) -> torch.Tensor:
    """Per row, |m_hat / (sqrt(v_hat) + eps)|_2: Adam's step in units of the LR."""
    m_hat = m / (1 - training["adam_beta1"] ** step)
    v_hat = v / (1 - training["adam_beta2"] ** step)
    return torch.linalg.vector_norm(m_hat / (v_hat.sqrt() + training["adam_epsilon"]), dim=1)


def _columns(prefix: str, predicted, observed, term, ratio) -> dict:
    if predicted is None or not predicted.numel():
        return {**{f"{prefix}_{name}": 0 for name in COUNTS},
                **{f"{prefix}_{name}": math.nan for name in ("adam_term_median", "ulp_ratio_median", "ulp_ratio_p90")}}
    return {f"{prefix}_predicted": int(predicted.sum()), f"{prefix}_observed": int(observed.sum()),
            f"{prefix}_both": int((predicted & observed).sum()),
            f"{prefix}_adam_term_median": float(np.median(term.numpy())),
            **dict(zip((f"{prefix}_ulp_ratio_median", f"{prefix}_ulp_ratio_p90"),
                       np.percentile(ratio.numpy(), (50, 90)).tolist()))}


def hop_table(path: str | Path) -> pd.DataFrame:
    """The step table of one recording (module docstring); counts 0 and values NaN throughout where `why_not`
    gives a reason."""
    recording = Recording(path)
    training = recording.config["training"]
    steps = recording.steps()
    table = pd.DataFrame({"step": steps, "lr": [scheduled_lr(s, training) if s > 0 else math.nan for s in steps]})
    dead = dead_rows(recording)
    reason = why_not(recording)
    for side in sides(recording):
        found = {}
        for index, step, state in adam_steps(recording, side) if reason is None else ():
            if state is None:
                continue
            before, weights, m, v = state
            u = update(before, m, v, lr=table.loc[index, "lr"], step=step, training=training)
            predicted, observed = moves(before, u), weights != before
            term, ratio = adam_term(m, v, step=step, training=training), u.abs() / bf16_ulp(before)
            found[index] = {k: v for group, mask in group_masks(dead)
                            for k, v in _columns(f"{side}_{group}", predicted[mask], observed[mask], term[mask],
                                                 ratio[mask]).items()}
        empty = {k: v for group, _ in group_masks(dead) for k, v in _columns(f"{side}_{group}", None, None, None, None).items()}
        per_step = pd.DataFrame([found.get(index, empty) for index in range(len(steps))])
        table = pd.concat([table, per_step], axis=1)
    return table


def precision_recall(table: pd.DataFrame, prefix: str) -> dict[str, float]:
    """Over a run's steps: precision (hops predicted that happened) and recall (hops that happened that were
    predicted), and the counts they come from; NaN where nothing was predicted (or observed)."""
    predicted, observed, both = (int(table[f"{prefix}_{name}"].sum()) for name in COUNTS)
    return {"predicted": predicted, "observed": observed, "both": both,
            "precision": both / predicted if predicted else math.nan,
            "recall": both / observed if observed else math.nan}


def phase_space(recording: Recording, side: str, index: int) -> dict[str, torch.Tensor]:
    """The dead rows' elements at record `index` (after an optimizer step): |m_hat|, sqrt(v_hat) + eps, and
    whether each hopped at that step (for the (m, v) phase-space figure)."""
    training = recording.config["training"]
    dead = dead_rows(recording)
    step = recording.steps()[index]
    key = {q: recording.matrix(q, side) for q in ("embeddings", "momentum", "variance")}
    m = recording.record(key["momentum"], index)[dead].double() / (1 - training["adam_beta1"] ** step)
    v = recording.record(key["variance"], index)[dead].double() / (1 - training["adam_beta2"] ** step)
    hopped = recording.record(key["embeddings"], index)[dead] != recording.record(key["embeddings"], index - 1)[dead]
    return {"m_hat": m.abs().flatten(), "denominator": (v.sqrt() + training["adam_epsilon"]).flatten(),
            "hopped": hopped.flatten()}
