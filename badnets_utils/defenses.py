"""Four backdoor defences in torch: activation clustering, spectral signatures, fine-pruning, Neural Cleanse.

Every function takes tensors (or a model and tensors) and returns tensors or a dict of them:

- activation clustering (Chen et al., 2018): per class, project penultimate activations on a few
  principal components, split them in two with 2-means; a backdoored class splits into "clean"
  and "poisoned", far apart (high silhouette), the poisoned cluster being the smaller one;
- spectral signatures (Tran et al., 2018): per class, score each sample by its squared projection
  on the top singular vector of the centred representations; poisoned samples score highest, and every
  class gives up its top-scoring 1.5 × (the defender's bound on the poisons);
- fine-pruning (Liu et al., 2018): switch off the last convolution's channels that stay dormant on
  clean data, then fine-tune on clean data;
- Neural Cleanse (Wang et al., 2019): for every class, find the smallest mask and pattern that send
  clean images to it; the backdoor's target needs a far smaller mask than the others.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

# ----------------------------------------------------------------------------- shared


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


# ----------------------------------------------------------------------------- activation clustering


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


# ----------------------------------------------------------------------------- spectral signatures


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


# ----------------------------------------------------------------------------- fine-pruning


@torch.no_grad()
def channel_activity(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Mean activation of each channel of the last convolution block (``model.conv2``) on ``images``: (C,)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, n = None, 0
    for i in range(0, len(images), batch_size):
        a = model.conv_features(images[i : i + batch_size].to(device)).float()
        s = a.sum((0, 2, 3)).cpu()
        total = s if total is None else total + s
        n += a.shape[0] * a.shape[2] * a.shape[3]
    model.train(was_training)
    return total / max(n, 1)


def prune_dormant_channels(model: nn.Module, activity: torch.Tensor, fraction: float) -> tuple[nn.Module, torch.Tensor]:
    """A copy of ``model`` whose ``round(fraction × C)`` least active ``conv2`` channels are switched off
    for good (weights and bias masked with ``torch.nn.utils.prune``, so fine-tuning cannot revive them).

    Returns (pruned copy, indices of the pruned channels, least active first).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    pruned = copy.deepcopy(model)
    conv = pruned.conv2[0]
    k = round(fraction * conv.out_channels)
    channels = activity.argsort()[:k]
    keep = torch.ones(conv.out_channels, device=conv.weight.device)
    keep[channels.to(conv.weight.device)] = 0
    prune.custom_from_mask(conv, "weight", keep.view(-1, 1, 1, 1).expand_as(conv.weight).clone())
    prune.custom_from_mask(conv, "bias", keep.clone())
    return pruned, channels


def pruning_curve(
    model: nn.Module,
    clean_images: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    attack_images: torch.Tensor,
    attack_labels: torch.Tensor,
    fractions: torch.Tensor,
) -> dict:
    """Clean accuracy and ASR after pruning each fraction of dormant ``conv2`` channels (no fine-tuning).

    Dormancy is measured on ``clean_images`` (the defender's clean data). Returns ``fractions``,
    ``clean_acc``, ``asr`` (tensors of the same length) and ``order`` (channels, least active first).
    """
    from .train import predict

    activity = channel_activity(model, clean_images)
    accs, asrs = [], []
    for f in fractions.tolist():
        pruned, _ = prune_dormant_channels(model, activity, f)
        accs.append((predict(pruned, test_images)[0] == test_labels).float().mean().item())
        asrs.append((predict(pruned, attack_images)[0] == attack_labels).float().mean().item())
    return {"fractions": fractions.float(), "clean_acc": torch.tensor(accs), "asr": torch.tensor(asrs),
            "order": activity.argsort()}  # fmt: skip


# ----------------------------------------------------------------------------- Neural Cleanse


def reverse_engineer_triggers(
    model: nn.Module,
    images: torch.Tensor,
    num_classes: int,
    steps: int = 200,
    batch_size: int = 64,
    lam: float = 0.01,
    lr: float = 0.1,
    seed: int = 0,
) -> dict:
    """Neural Cleanse's optimisation, for all classes at once.

    For each class t find a mask m = sigmoid(a) (1, H, W) and a pattern p = sigmoid(b) (C, H, W) such
    that ``(1 - m) x + m p`` is classified t for clean uint8 ``images`` x, minimising
    cross-entropy + ``lam`` × ``|m|₁``. Returns ``masks`` (K, 1, H, W) and ``patterns`` (K, C, H, W) in
    [0, 1], ``l1`` (K,) the mask norms and ``success`` (K,) the fraction of ``images`` sent to t.
    """
    device = next(model.parameters()).device
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _, c, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    mask_logit = torch.full((num_classes, 1, h, w), -2.0, device=device, requires_grad=True)
    pattern_logit = (torch.randn(num_classes, c, h, w, generator=g) * 0.1).to(device).requires_grad_(True)
    opt = torch.optim.Adam([mask_logit, pattern_logit], lr=lr)
    targets = torch.arange(num_classes, device=device)
    x_all = images.to(device)
    try:
        for _ in range(steps):
            idx = torch.randint(len(images), (batch_size,), generator=g).to(device)
            x = x_all[idx].float().div(255)  # (B, C, H, W)
            m, p = torch.sigmoid(mask_logit), torch.sigmoid(pattern_logit)
            xs = (1 - m[:, None]) * x[None] + (m * p)[:, None]  # (K, B, C, H, W)
            logits = model(xs.flatten(0, 1))
            y = targets.repeat_interleave(batch_size)
            loss = F.cross_entropy(logits, y) + lam * m.sum((1, 2, 3)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            m, p = torch.sigmoid(mask_logit), torch.sigmoid(pattern_logit)
            x = x_all[: min(len(images), 500)].float().div(255)
            success = torch.stack(
                [(model((1 - m[t]) * x + m[t] * p[t]).argmax(1) == t).float().mean() for t in range(num_classes)]
            )  # fmt: skip
    finally:
        for p_ in model.parameters():
            p_.requires_grad_(True)
    return {"masks": m.cpu(), "patterns": p.cpu(), "l1": m.sum((1, 2, 3)).cpu(), "success": success.cpu()}


def anomaly_index(norms: torch.Tensor) -> torch.Tensor:
    """Neural Cleanse's anomaly index of each norm: (median − norm) / (1.4826 × MAD).

    Positive for norms below the median; a class above 2 is flagged as a backdoor target.
    """
    norms = norms.double()
    med = norms.median()
    mad = (norms - med).abs().median() * 1.4826
    return ((med - norms) / mad.clamp(min=1e-12)).float()
