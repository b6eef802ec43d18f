"""Why each row froze: counterfactuals of the hop condition (flannel.analysis.hop_condition) from the recorded
state at the row's freeze step, one cause changed at a time.

A row is frozen when it moved at least once and then never again within the run; its freeze step s is the
first step after its last move. At s the recording holds W_(s-1), m_s and v_s; the closed-form update u
(hop_condition.update) with one input replaced says whether the row (any of its elements, by the exact hop rule)
would still have hopped at s:

  schedule   the LR held at its step-1 value instead of the decayed lr_s
  variance   v_hat from a float32 second moment, replayed from the recorded grads (clipped as training clipped
             them) with torch's AdamW arithmetic (flannel.analysis.adam.replay_moments): it can decrease, where
             the bf16 v cannot once v x beta2 rounds back to v (on a float32_moments run the two agree)
  signal     m_hat of step 1 (= the step-1 gradient) instead of m_hat at s: the gradient's signal as strong as
             at the start (with the LR, each counterfactual puts one input back where it began)

`as_recorded` is the closed form with nothing replaced: it should say "no hop" (where it says "hop", the
closed form and torch's bf16 arithmetic part at s; see hop_condition's precision). A cause is one whose
counterfactual revives the row; a row can have several or none.

Graded, the same question becomes a sum: an element's hop margin |u| / t (t the hop rule's threshold) is
lr |m_hat| / (sqrt(v_hat) + eps) / t, so from step 1 to s its log2 splits exactly into the factors each input
contributed: `log2_schedule` (lr_s / lr_1), `log2_signal` (|m_hat_s| / |m_hat_1|), `log2_variance`
((sqrt(v_hat_1) + eps) / (sqrt(v_hat_s) + eps)) and `log2_lattice` (t_1 / t_s: the weight moved into a coarser
binade), taken at the row's element closest to hopping at s (Adam's term only: exact while weight decay is 0).
Negative is what shrank the margin. `log2_bf16_v` is the share of the variance factor the bf16 rounding added:
(sqrt(v_hat_f32) + eps) / (sqrt(v_hat_s) + eps) at s, with the float32 v above.

Row table (one row per recorded row of each matrix): `matrix`, `token`, `dead`, `status` (frozen, moving: it
moved at the last step, never_moved), `last_move`, `frozen_from` (NaN unless frozen), and for frozen rows
`as_recorded`, `schedule`, `variance`, `signal` (1: it would hop at s; 0: not), `cause` (the one cause,
`several`, or `none`) and the log2 factors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import AnalysisError
from ..recording import Recording
from .adam import clip_factor, replay_moments
from .hop_condition import adam_steps, update, why_not
from .hop_rule import moves, threshold
from .rows import dead_rows, scheduled_lr, sides

CAUSES = ("schedule", "variance", "signal")
VERDICTS = ("as_recorded",) + CAUSES
FACTORS = tuple(f"log2_{name}" for name in ("schedule", "signal", "variance", "lattice", "bf16_v"))


class FreezeWatch:
    """One matrix's rows through the run: whether each moved at the previous step, m_hat of step 1, the float32
    moments, and the counterfactuals at the first still step after each move (overwritten when the row moves
    again, so at the end they are those of its freeze step)."""

    def __init__(self, v0: torch.Tensor, training: dict):
        self.training = training
        n_rows = v0.shape[0]
        self.v32 = v0.float()
        self.m32 = torch.zeros_like(self.v32)
        self.moved_before = torch.zeros(n_rows, dtype=torch.bool)
        self.last_move = torch.full((n_rows,), -1, dtype=torch.int64)
        self.m_hat_1, self.start = None, None
        self.verdicts = torch.zeros((n_rows, len(VERDICTS)), dtype=torch.bool)
        self.factors = torch.full((n_rows, len(FACTORS)), math.nan, dtype=torch.float64)
        self.frozen_from = torch.full((n_rows,), -1, dtype=torch.int64)

    def step(self, step: int, state, grad: torch.Tensor, clip) -> None:
        before, weights, m, v = state
        hyper = {"beta1": self.training["adam_beta1"], "beta2": self.training["adam_beta2"]}
        self.m32, self.v32 = replay_moments(self.m32, self.v32, grad, clip=clip, **hyper)
        if self.m_hat_1 is None:
            self.m_hat_1 = m / (1 - hyper["beta1"] ** step)
            self.start = self._margin_parts(step, before, m, v)
        moved = (weights != before).any(dim=1)
        frozen_now = self.moved_before & ~moved
        if frozen_now.any():
            self.verdicts[frozen_now] = self._counterfactuals(step, before, m, v)[frozen_now]
            self.factors[frozen_now] = self._factors(step, before, m, v)[frozen_now]
            self.frozen_from[frozen_now] = step
        self.last_move[moved] = step
        self.moved_before = moved

    def _counterfactuals(self, step: int, w: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """[rows, verdicts]: whether any element of each row hops at `step` with each input replaced."""
        training = self.training
        lr = scheduled_lr(step, training)
        signal_m = self.m_hat_1 * (1 - training["adam_beta1"] ** step)  # `update` divides by it again
        inputs = {"as_recorded": (m, v, lr), "schedule": (m, v, scheduled_lr(1, training)),
                  "variance": (m, self.v32.double(), lr), "signal": (signal_m, v, lr)}
        return torch.stack([moves(w, update(w, mm, vv, lr=rate, step=step, training=training)).any(dim=1)
                            for mm, vv, rate in (inputs[name] for name in VERDICTS)], dim=1)


    def _margin_parts(self, step: int, w: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> dict:
        """The factors of each element's hop margin at `step`: lr, |m_hat|, sqrt(v_hat) + eps, the threshold."""
        training = self.training
        lr = scheduled_lr(step, training)
        return {"lr": lr, "m_hat": m.abs() / (1 - training["adam_beta1"] ** step),
                "denominator": denominator(v, step, training),
                "threshold": threshold(w, update(w, m, v, lr=lr, step=step, training=training))}

    def _factors(self, step: int, w: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """[rows, FACTORS]: the log2 factors of the module docstring at each row's element closest to hopping."""
        now, start = self._margin_parts(step, w, m, v), self.start
        closest = (now["lr"] * now["m_hat"] / now["denominator"] / now["threshold"]).argmax(dim=1, keepdim=True)
        ratios = (now["lr"] / start["lr"] * torch.ones_like(now["m_hat"]), now["m_hat"] / start["m_hat"],
                  start["denominator"] / now["denominator"], start["threshold"] / now["threshold"],
                  denominator(self.v32.double(), step, self.training) / now["denominator"])
        return torch.cat([ratio.gather(1, closest).log2() for ratio in ratios], dim=1)


def denominator(v: torch.Tensor, step: int, training: dict) -> torch.Tensor:
    """Adam's sqrt(v_hat) + eps in float64."""
    return (v.double() / (1 - training["adam_beta2"] ** step)).sqrt() + training["adam_epsilon"]


def _clips(recording: Recording, training: dict) -> list:
    """Per record, the clip factor training applied (None without clipping)."""
    if training.get("max_grad_norm") is None:
        return [None] * recording.n_records
    if "grad_norms" not in recording.keys:
        raise AnalysisError(f"{recording.path}: no grad_norms recorded; the float32 second moment needs the clip factor")
    return [clip_factor(norm, training["max_grad_norm"], torch.bfloat16) for norm in recording.tensor("grad_norms").tolist()]


def cause_rows(path: str | Path) -> pd.DataFrame:
    """The row table of one recording (module docstring); empty where hop_condition.why_not gives a reason."""
    recording = Recording(path)
    training = recording.config["training"]
    columns = ["matrix", "token", "dead", "status", "last_move", "frozen_from", *VERDICTS, "cause", *FACTORS]
    if why_not(recording, grads=True) is not None:
        return pd.DataFrame(columns=columns)
    clips, dead = _clips(recording, training), dead_rows(recording)
    tokens = recording.tensor("recorded_rows").tolist()
    found = []
    for side in sides(recording):
        watch = FreezeWatch(recording.record(recording.matrix("variance", side), 0), training)
        for index, step, state in adam_steps(recording, side):
            if state is None:
                raise AnalysisError(f"{recording.path}: record {index} is not the step after the previous one")
            grad = recording.record(recording.matrix("grads", side), index).to(torch.bfloat16)
            watch.step(step, state, grad, clips[index])
        found.append(_table(side, tokens, dead, watch))
    return pd.concat(found, ignore_index=True)[columns]


def _table(side: str, tokens: list[int], dead: torch.Tensor, watch: FreezeWatch) -> pd.DataFrame:
    frozen = (watch.last_move >= 0) & ~watch.moved_before
    status = np.where(watch.last_move < 0, "never_moved", np.where(frozen, "frozen", "moving"))
    verdicts = watch.verdicts.numpy().astype(float)
    verdicts[~frozen.numpy()] = math.nan
    table = pd.DataFrame({"matrix": side, "token": tokens, "dead": dead.numpy(), "status": status,
                          "last_move": np.where(watch.last_move >= 0, watch.last_move.numpy(), math.nan),
                          "frozen_from": np.where(frozen, watch.frozen_from.numpy(), math.nan),
                          **{name: verdicts[:, i] for i, name in enumerate(VERDICTS)},
                          **{name: watch.factors[:, i].numpy() for i, name in enumerate(FACTORS)}})
    table["cause"] = [_cause(row) if row["status"] == "frozen" else "" for _, row in table.iterrows()]
    return table


def _cause(row) -> str:
    revived = [name for name in CAUSES if row[name] == 1]
    return revived[0] if len(revived) == 1 else "several" if revived else "none"


def shares(rows: pd.DataFrame, matrix: str) -> dict[str, float]:
    """Over one matrix's frozen dead rows: how many, the share each counterfactual revives, the share of each
    single cause, of `several` and of `none`, the share the closed form predicted a hop for as recorded, and the
    median of each log2 factor."""
    frozen = rows[(rows["matrix"] == matrix) & rows["dead"].astype(bool) & (rows["status"] == "frozen")]
    n = len(frozen)
    share = (lambda mask: float(mask.sum()) / n) if n else (lambda mask: math.nan)
    found = {"frozen_dead": n, **{f"revived_by_{name}": share(frozen[name] == 1) for name in CAUSES},
             "hop_as_recorded": share(frozen["as_recorded"] == 1)}
    found.update({f"cause_{name}": share(frozen["cause"] == name) for name in CAUSES + ("several", "none")})
    found.update({f"median_{name}": float(frozen[name].median()) if n else math.nan for name in FACTORS})
    return found
