"""What the defences share: penultimate-layer features, PCA, 2-means, the silhouette, precision and recall."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def penultimate_features(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``model.features`` (the 512-d penultimate activations) of a uint8 batch, float32 on the CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [
        model.features(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 512)


def pca(x: torch.Tensor, dims: int = 10) -> torch.Tensor:
    """Project the rows of ``x`` (N, D) on their ``dims`` top principal components: (N, dims)."""
    x = x.double() - x.double().mean(0, keepdim=True)
    dims = min(dims, *x.shape)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return (x @ vh[:dims].T).float()


def two_means(x: torch.Tensor, seed: int = 0, iters: int = 100, restarts: int = 5) -> torch.Tensor:
    """Split the rows of ``x`` (N, D) in two clusters with k-means (k-means++ start, best of ``restarts``).

    Returns (N,) labels in {0, 1}, 1 for the smaller cluster.
    """
    n = x.shape[0]
    if n < 2:
        return torch.zeros(n, dtype=torch.long)
    x = x.double()
    g = torch.Generator().manual_seed(seed)
    best, best_inertia = None, math.inf
    for _ in range(restarts):
        first = x[torch.randint(n, (1,), generator=g)]
        d2 = ((x - first) ** 2).sum(1)
        if d2.sum() <= 0:
            return torch.zeros(n, dtype=torch.long)
        second = x[torch.multinomial(d2 / d2.sum(), 1, generator=g)]
        centres = torch.cat([first, second])
        for _ in range(iters):
            assign = torch.cdist(x, centres).argmin(1)
            new = torch.stack(
                [x[assign == k].mean(0) if (assign == k).any() else centres[k] for k in range(2)]
            )  # fmt: skip
            if torch.allclose(new, centres):
                break
            centres = new
        inertia = ((x - centres[assign]) ** 2).sum().item()
        if inertia < best_inertia:
            best, best_inertia = assign, inertia
    if (best == 1).sum() > (best == 0).sum():
        best = 1 - best
    return best


def silhouette(x: torch.Tensor, labels: torch.Tensor, max_points: int = 1000, seed: int = 0) -> float:
    """Mean silhouette score of a two-cluster split (on at most ``max_points`` random rows); 0 if one cluster."""
    if labels.unique().numel() < 2:
        return 0.0
    if len(x) > max_points:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_points]
        x, labels = x[idx], labels[idx]
    d = torch.cdist(x.double(), x.double())
    scores = torch.zeros(len(x), dtype=torch.float64)
    for k in (0, 1):
        own, other = labels == k, labels != k
        if own.sum() < 2:
            continue
        a = d[own][:, own].sum(1) / (own.sum() - 1)
        b = d[own][:, other].mean(1)
        scores[own] = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
    return scores.mean().item()


def precision_recall(flagged: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """Precision and recall of the ``flagged`` indices against the ``truth`` (the known poisoned indices)."""
    flagged, truth = flagged.flatten().long().unique(), truth.flatten().long().unique()
    hits = torch.isin(flagged, truth).sum().item()
    precision = hits / len(flagged) if len(flagged) else 0.0
    recall = hits / len(truth) if len(truth) else 0.0
    return precision, recall
