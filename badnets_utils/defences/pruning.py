"""Fine-pruning (Liu et al., 2018): switch off the last convolution's channels that stay dormant on clean data,
then fine-tune on clean data (the fine-tuning is ``pipeline.fine_tune``)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from badnets_utils.core.training import predict


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

    activity = channel_activity(model, clean_images)
    accs, asrs = [], []
    for f in fractions.tolist():
        pruned, _ = prune_dormant_channels(model, activity, f)
        accs.append((predict(pruned, test_images)[0] == test_labels).float().mean().item())
        asrs.append((predict(pruned, attack_images)[0] == attack_labels).float().mean().item())
    return {"fractions": fractions.float(), "clean_acc": torch.tensor(accs), "asr": torch.tensor(asrs),
            "order": activity.argsort()}  # fmt: skip
