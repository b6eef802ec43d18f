"""Metrics on one matrix whose rows are token vectors (a cloud of rows, a group's displacement, Adam's step
size, the under-trained-token indicators), computed in float64 so bf16 inputs lose nothing more. The per-run
tables (flannel.analysis) and the sanity checks (flannel.checks) both use them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

def rows64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64)


def cloud(x: torch.Tensor) -> dict[str, float]:
    """Norm of the rows' centroid, mean and max distance of the rows from it."""
    if x.shape[0] == 0:
        return {"centroid_norm": math.nan, "radius_mean": math.nan, "radius_max": math.nan}
    x = rows64(x)
    centroid = x.mean(dim=0)
    radii = torch.linalg.vector_norm(x - centroid, dim=1)
    return {"centroid_norm": torch.linalg.vector_norm(centroid).item(), "radius_mean": radii.mean().item(),
            "radius_max": radii.max().item()}


def row_norms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(rows64(x), dim=1)


def mean_row_norm(x: torch.Tensor) -> float:
    """Mean over rows of each row's L2 norm (NaN for no rows): comparable between groups of any size."""
    return row_norms(x).mean().item() if x.shape[0] else math.nan


def fraction_moved(x: torch.Tensor, before: torch.Tensor) -> float:
    """Fraction of rows with at least one element different (exact comparison: a bf16 update that rounds
    away leaves its row bit-identical)."""
    return (x != before).any(dim=1).double().mean().item() if x.shape[0] else math.nan


def adam_step(momentum: torch.Tensor, variance: torch.Tensor, *, lr: float, step: int, beta1: float, beta2: float,
              eps: float) -> torch.Tensor:
    """Per element, the size of the update Adam made at optimizer step `step` (1-based):
    lr * |m_hat| / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^step), v_hat = v / (1 - beta2^step)
    (torch.optim.Adam's arithmetic; AdamW's decoupled weight decay is not part of it)."""
    m_hat = rows64(momentum).abs() / (1 - beta1**step)
    v_hat = rows64(variance) / (1 - beta2**step)
    return lr * m_hat / (v_hat.sqrt() + eps)


def mean_or_nan(x: torch.Tensor) -> float:
    return x.mean().item() if x.numel() else math.nan


def auc(scores, positive) -> float:
    """ROC AUC of `scores` for telling `positive` from the rest: the probability that a random positive
    outscores a random negative, ties counting one half (Mann-Whitney rank formula, average ranks for ties)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    ranks = (last_rank - (counts - 1) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def principal_axes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows (float64), their mean, and the eigenvalues and eigenvectors (ascending) of the centred rows'
    scatter matrix: the principal directions are the last columns."""
    x = rows64(x)
    mean = x.mean(dim=0)
    centred = x - mean
    values, vectors = torch.linalg.eigh(centred.T @ centred)
    return x, mean, values, vectors


def remove_first_component(x: torch.Tensor) -> torch.Tensor:
    """The rows with their component along the matrix's first principal direction (of the centred rows)
    removed: Land & Bartolo's correction for the constant component every unembedding row shares."""
    x, _, _, vectors = principal_axes(x)
    first = vectors[:, -1]
    return x - torch.outer(x @ first, first)


def dead_cosine(x: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
    """Per row, the cosine similarity to the mean dead row after removing the first principal component
    (1 - Land & Bartolo's cosine distance; higher = more dead-like). A dead row is compared with the mean of
    the other dead rows, so that it does not score high merely by being part of the mean."""
    n_dead = int(dead.sum())
    if n_dead < 2:
        return torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    x = remove_first_component(x)
    total = x[dead].sum(dim=0)
    reference = (total / n_dead).expand_as(x).clone()
    reference[dead] = (total - x[dead]) / (n_dead - 1)
    return torch.nn.functional.cosine_similarity(x, reference, dim=1)


def indicator_aucs(x: torch.Tensor, dead: torch.Tensor) -> dict[str, float]:
    """How well each under-trained-token indicator separates dead rows from live ones (ROC AUC, 1 = all dead
    rows rank above all live rows, 0.5 = chance). A small row norm and a high cosine to the dead mean both
    point to a dead row."""
    return {"auc_norm": auc(-row_norms(x).numpy(), dead.numpy()),
            "auc_cosine": auc(dead_cosine(x, dead).numpy(), dead.numpy())}
