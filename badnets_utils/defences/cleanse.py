"""Neural Cleanse (Wang et al., 2019): for every class, find the smallest mask and pattern that send clean images to
it; the backdoor's target needs a far smaller mask than the others."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
