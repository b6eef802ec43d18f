"""Metrics on one matrix whose rows are token vectors (a cloud of rows, a group's displacement, Adam's step
size, the under-trained-token indicators), computed in float64 so bf16 inputs lose nothing more. The per-run
tables (flannel.analysis.per_step) and the sanity checks (flannel.sanity.checks) both use them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

def rows64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64)


def cloud(x: torch.Tensor) -> dict[str, float]:
    """The two radii of a cloud of rows, named: the norm of the rows' centroid; the mean and max distance of the
    rows from their centroid (`radius_centroid_*`); the mean distance from the origin, i.e. the mean row norm
    (`radius_origin_mean`); and the per-dimension standard deviation sqrt(mean_d var_d) (population variance),
    which is the RMS radius from the centroid over sqrt(D). For rows far from the origin the centroid norm and
    the origin radius grow together while the centroid radius can shrink: one cloud, two different stories."""
    if x.shape[0] == 0:
        return dict.fromkeys(("centroid_norm", "radius_centroid_mean", "radius_centroid_max", "radius_origin_mean",
                              "sd_per_dim"), math.nan)
    x = rows64(x)
    centroid = x.mean(dim=0)
    radii = torch.linalg.vector_norm(x - centroid, dim=1)
    return {"centroid_norm": torch.linalg.vector_norm(centroid).item(), "radius_centroid_mean": radii.mean().item(),
            "radius_centroid_max": radii.max().item(),
            "radius_origin_mean": torch.linalg.vector_norm(x, dim=1).mean().item(),
            "sd_per_dim": x.var(dim=0, correction=0).mean().sqrt().item()}


def radial_fractions(x: torch.Tensor, before: torch.Tensor, centre: torch.Tensor | None = None) -> torch.Tensor:
    """Per row, the signed radial fraction (dw . w_hat) / |dw| of the step before -> x, w_hat the unit vector
    from `centre` (the origin when None) to the row's previous position: +1 straight outward, -1 straight
    inward, 0 tangential. NaN for a row that did not move (or sat exactly on the centre)."""
    dw = rows64(x) - rows64(before)
    return _radial(dw, row_norms(dw), _from_centre(before, centre))[1]


def radial_counts(x: torch.Tensor, before: torch.Tensor, centre: torch.Tensor | None = None) -> dict[str, float]:
    """Fractions of rows whose step moved them outward (dw . w > 0), inward (< 0) or not at all radially (the row
    did not move, or moved exactly tangentially), about `centre` (the origin when None), and the mean signed
    radial fraction of the rows that moved."""
    dw = rows64(x) - rows64(before)
    return radial_counts_of(dw, row_norms(dw), _from_centre(before, centre))


def radial_counts_of(dw: torch.Tensor, step: torch.Tensor, w: torch.Tensor) -> dict[str, float]:
    """radial_counts from the float64 steps `dw`, their row norms `step` and the previous positions `w`
    relative to the centre: a caller that has the steps already computes them once for every centre."""
    if dw.shape[0] == 0:
        return dict.fromkeys(("outward", "inward", "no_radial", "radial_mean"), math.nan)
    dot, fractions = _radial(dw, step, w)
    moved = ~fractions.isnan()
    return {"outward": (dot > 0).double().mean().item(), "inward": (dot < 0).double().mean().item(),
            "no_radial": (dot == 0).double().mean().item(),
            "radial_mean": fractions[moved].mean().item() if moved.any() else math.nan}


def _from_centre(before: torch.Tensor, centre: torch.Tensor | None) -> torch.Tensor:
    return rows64(before) - (0 if centre is None else rows64(centre))


def _radial(dw: torch.Tensor, step: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, dw . w and the signed radial fraction (dw . w) / (|dw| |w|), NaN where |dw| or |w| is 0."""
    dot = (dw * w).sum(dim=1)
    radius = torch.linalg.vector_norm(w, dim=1)
    fraction = dot / (step * radius)
    return dot, torch.where((step > 0) & (radius > 0), fraction, torch.full_like(fraction, math.nan))


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
    # In place on float64 copies: the same operations in the same order as lr * m_hat / (sqrt(v_hat) + eps),
    # with two [rows, D] buffers instead of seven.
    m_hat = momentum.detach().to(torch.float64, copy=True).abs_().div_(1 - beta1**step)
    v_hat = variance.detach().to(torch.float64, copy=True).div_(1 - beta2**step)
    return m_hat.mul_(lr).div_(v_hat.sqrt_().add_(eps))


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
    dead_rows = x[dead]
    total = dead_rows.sum(dim=0)
    reference = (total / n_dead).expand_as(x).clone()
    reference[dead] = (total - dead_rows) / (n_dead - 1)
    return torch.nn.functional.cosine_similarity(x, reference, dim=1)


def indicator_aucs(x: torch.Tensor, dead: torch.Tensor) -> dict[str, float]:
    """How well each under-trained-token indicator separates dead rows from live ones (ROC AUC, 1 = all dead
    rows rank above all live rows, 0.5 = chance). A small row norm and a high cosine to the dead mean both
    point to a dead row."""
    return {"auc_norm": auc(-row_norms(x).numpy(), dead.numpy()),
            "auc_cosine": auc(dead_cosine(x, dead).numpy(), dead.numpy())}
