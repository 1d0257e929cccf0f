"""Attack variants for notebook 06: other triggers, blended triggers, all-to-all, trigger size and position.

A variant is an ``config.Attack`` with a ``name``; a table of variants is ``run_many`` over
them. This module adds the full-image blend patterns and the figures that compare variants (matplotlib
``Figure`` objects, not managed by pyplot).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from badnets_utils.core.models import BadNet
from badnets_utils.core.pipeline import Result


def blend_pattern(kind: str = "noise", shape: tuple[int, int, int] = (1, 28, 28), seed: int = 0) -> torch.Tensor:
    """A full-image uint8 pattern for a blended trigger: ``noise`` (fixed uniform noise) or ``stripes``."""
    c, h, w = shape
    if kind == "noise":
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (c, h, w), generator=g, dtype=torch.uint8)
    if kind == "stripes":
        pattern = torch.zeros(c, h, w, dtype=torch.uint8)
        pattern[:, :, ::4] = 255
        return pattern
    raise ValueError(f"unknown blend pattern {kind!r}; allowed: noise, stripes")


Row = Result | dict  # a finished run, or its plain values {"name", "tca", "asr", "seconds"} (shipped results)


def _values(r: Row) -> tuple[str, float, float, float]:
    """(name, tca, asr, seconds) of a Result or of a plain row."""
    if isinstance(r, dict):
        return r["name"], float(r["tca"]), float(r["asr"]), float(r.get("seconds", float("nan")))
    return r.attack.label, r.tca, r.asr, r.seconds


def as_row(result: Result, **extra) -> dict:
    """A Result's plain values, as the shipped results store them: name, tca, asr, seconds (and ``extra``)."""
    return {"name": result.attack.label, "tca": result.tca, "asr": result.asr, "seconds": round(result.seconds, 1),
            **extra}  # fmt: skip


def format_table(results: Sequence[Row]) -> str:
    """A plain-text table of name, clean accuracy, ASR and run time."""
    lines = [f"{'variant':<28} {'clean acc':>9} {'ASR':>7} {'run s':>8}"]
    for r in results:
        name, tca, asr, seconds = _values(r)
        lines.append(f"{name:<28} {tca:>9.2%} {asr:>7.2%} {seconds:>8.1f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- what the convolutions see


def reach(model: BadNet, image_size: tuple[int, int] = (28, 28)) -> tuple[torch.Tensor, torch.Tensor]:
    """For every input pixel: how many output positions of conv1, and of conv2, have it in their window.

    Pure geometry of the model's layers (kernel sizes, padding, pooling; not the weights): the same layers with
    all-ones kernels and no ReLU are a positive linear map, so an output position depends on a pixel exactly
    where its gradient is positive. Returns two (H, W) integer tensors (the receptive-field figure of notebook 06).
    """
    c1, pool, c2 = model.conv1[0], model.conv1[2], model.conv2[0]
    x = torch.ones(1, 1, *image_size, requires_grad=True)
    first = F.conv2d(x, torch.ones(1, 1, *c1.kernel_size), padding=c1.padding)
    second = F.conv2d(F.avg_pool2d(first, pool.kernel_size), torch.ones(1, 1, *c2.kernel_size), padding=c2.padding)
    (conv1,) = torch.autograd.grad(first.sum(), x, retain_graph=True)  # all-ones kernel: windows per pixel
    conv2 = torch.zeros(image_size, dtype=torch.long)
    for value in second.flatten():
        (g,) = torch.autograd.grad(value, x, retain_graph=True)
        conv2 += (g[0, 0] > 0).long()
    return conv1[0, 0].round().long(), conv2
