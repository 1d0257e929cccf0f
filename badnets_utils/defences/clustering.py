"""Activation clustering (Chen et al., 2018): per class, project penultimate activations on a few principal
components and split them in two with 2-means; a backdoored class splits into "clean" and "poisoned", far apart
(high silhouette), the poisoned cluster being the smaller one."""

from __future__ import annotations

import torch

from badnets_utils.defences.features import pca, silhouette, two_means


def activation_clustering(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, dims: int = 10, seed: int = 0
) -> dict:
    """Chen et al.'s activation clustering on (N, D) ``features`` with the (N,) training ``labels``.

    Returns a dict of tensors: ``cluster`` (N,) 0/1 (1 = the smaller cluster of the sample's class),
    ``projection`` (N, dims) each class's PCA coordinates, ``relative_size`` (K,) the smaller cluster's
    share of its class, ``silhouette`` (K,), ``suspect`` the class with the best-separated split and
    ``flagged`` the indices in the suspect class's smaller cluster.
    """
    n = len(labels)
    cluster = torch.zeros(n, dtype=torch.long)
    projection = torch.zeros(n, dims)
    rel = torch.zeros(num_classes)
    sil = torch.zeros(num_classes)
    for k in range(num_classes):
        idx = torch.nonzero(labels == k).flatten()
        if len(idx) < 4:
            continue
        z = pca(features[idx], dims)
        projection[idx, : z.shape[1]] = z
        c = two_means(z, seed)
        cluster[idx] = c
        rel[k] = c.float().mean()
        sil[k] = silhouette(z, c, seed=seed)
    suspect = int(sil.argmax())
    flagged = torch.nonzero((labels == suspect) & (cluster == 1)).flatten()
    return {"cluster": cluster, "projection": projection, "relative_size": rel, "silhouette": sil,
            "suspect": suspect, "flagged": flagged}  # fmt: skip
