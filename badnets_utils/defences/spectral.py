"""Spectral signatures (Tran et al., 2018): per class, score each sample by its squared projection on the top
singular vector of the centred representations; poisoned samples score highest, and every class gives up its
top-scoring 1.5 × (the defender's bound on the poisons)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def spectral_scores(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Tran et al.'s outlier scores: per class, the squared projection of each centred representation
    on the top right singular vector.

    Returns ``scores`` (N,), ``direction`` (K, D): each class's top singular vector, and ``concentration`` (K,):
    the share of the class's variance along it (a class holding a backdoor has one dominant direction, so a high
    share).
    """
    scores = torch.zeros(len(labels))
    direction = torch.zeros(num_classes, features.shape[1], dtype=torch.float64)
    concentration = torch.zeros(num_classes)
    for k in range(num_classes):
        idx = torch.nonzero(labels == k).flatten()
        if len(idx) < 2:
            continue
        r = features[idx].double()
        r = r - r.mean(0, keepdim=True)
        _, s, vh = torch.linalg.svd(r, full_matrices=False)
        scores[idx] = ((r @ vh[0]) ** 2).float()
        direction[k] = vh[0]
        concentration[k] = (s[0] ** 2 / (s**2).sum().clamp(min=1e-12)).float()
    return {"scores": scores, "direction": direction, "concentration": concentration}


def spectral_signatures(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, poison_bound: int, factor: float = 1.5
) -> dict:
    """Tran et al.'s procedure (2018, Algorithm 1): score *every* class with ``spectral_scores`` and remove from
    each class its ``ceil(factor * poison_bound)`` top-scoring samples (all of a smaller class); then retrain on
    what is kept. The defender does not know the target class, so nothing here depends on it.

    ``poison_bound``: the defender's upper bound on the number of poisoned samples in any one class (ε in the
    paper; for an all-to-one attack, on the number of poisons). Returns ``spectral_scores``'s dict plus ``removed``
    and ``kept`` (sorted indices) and ``removed_per_class`` (K,).
    """
    out = spectral_scores(features, labels, num_classes)
    remove = math.ceil(factor * poison_bound)
    order = out["scores"].argsort(descending=True, stable=True)
    ranked = labels[order]  # labels in score order: a sample's rank within its class is how often its label came before
    one_hot = F.one_hot(ranked, num_classes)
    rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1
    removed = order[rank < remove].sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[removed] = False
    per_class = torch.bincount(labels[removed], minlength=num_classes)
    return {**out, "removed": removed, "kept": torch.nonzero(keep).flatten(), "removed_per_class": per_class}
