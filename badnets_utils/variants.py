"""Attack variants for notebook 06: other triggers, blended triggers, all-to-all, trigger size and position.

A variant is an ``experiment.Attack`` with a ``name``; a table of variants is ``experiment.run_many`` over
them. This module adds the full-image blend patterns and the figures that compare variants (matplotlib
``Figure`` objects, not managed by pyplot).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .experiment import RANDOM, Attack, Result, build_trigger
from .plots import new_figure, to_display
from .triggers import apply_trigger, random_positions


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


def format_table(results: Sequence[Result]) -> str:
    """A plain-text table of name, clean accuracy, ASR and run time."""
    lines = [f"{'variant':<28} {'clean acc':>9} {'ASR':>7} {'run s':>8}"]
    for r in results:
        lines.append(f"{r.attack.label:<28} {r.tca:>9.2%} {r.asr:>7.2%} {r.seconds:>8.1f}")
    return "\n".join(lines)


def variant_examples(variants: Sequence[Attack], images: torch.Tensor, seed: int = 0) -> Figure:
    """One row per variant: the trigger stamped on the same few clean uint8 ``images`` (N, C, H, W)."""
    n = len(images)
    fig = new_figure(1.1 * n + 1.8, 1.15 * len(variants))
    axes = np.atleast_2d(fig.subplots(len(variants), n, squeeze=False))
    for i, v in enumerate(variants):
        trigger, position = build_trigger(v), v.position
        if position == RANDOM:
            position = random_positions(n, images.shape[-2:], trigger.shape[-2:], seed)
        stamped = apply_trigger(images, trigger, position, v.alpha, v.mask)
        for j in range(n):
            axes[i, j].imshow(to_display(stamped[j]), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(v.label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("The same test digits with each variant's trigger")
    return fig


def variant_bars(rows: Sequence[Result], chance: float = 0.1) -> Figure:
    """Grouped bars: clean accuracy and ASR (%) of each variant, with the chance level."""
    fig = new_figure(7.5, 3.2)
    ax = fig.subplots()
    x = np.arange(len(rows))
    tca = [100 * r.tca for r in rows]
    asr = [100 * r.asr for r in rows]
    ax.bar(x - 0.2, tca, 0.4, label="clean accuracy (TCA)", color="tab:blue")
    ax.bar(x + 0.2, asr, 0.4, label="attack success rate (ASR)", color="tab:red")
    for xi, a in zip(x, asr, strict=True):
        ax.text(xi + 0.2, a + 1, f"{a:.0f}", ha="center", fontsize=7)
    ax.axhline(100 * chance, color="gray", ls="--", lw=1, label="chance (10 %)")
    ax.set_xticks(x, [r.attack.label for r in rows], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("percent of test images")
    ax.set_ylim(0, 125)  # room for the legend above the bars, clear of the small ones
    ax.set_title("Attack variants: clean accuracy and attack success rate")
    ax.legend(fontsize=7, loc="upper center", ncols=3)
    return fig


def ablation_plot(
    labels: Sequence, rows: Sequence[Result], xlabel: str, title: str, chance: float = 0.1, bars: bool = False
) -> Figure:
    """Clean accuracy and ASR (%) against one setting (lines over numbers, or bars over names)."""
    fig = new_figure(5.0, 3.0)
    ax = fig.subplots()
    tca = [100 * r.tca for r in rows]
    asr = [100 * r.asr for r in rows]
    if bars:
        x = np.arange(len(labels))
        ax.bar(x - 0.2, tca, 0.4, label="clean accuracy", color="tab:blue")
        ax.bar(x + 0.2, asr, 0.4, label="ASR", color="tab:red")
        ax.set_xticks(x, [str(v) for v in labels])
    else:
        ax.plot(labels, tca, "o-", label="clean accuracy", color="tab:blue")
        ax.plot(labels, asr, "s-", label="ASR", color="tab:red")
        ax.set_xticks(list(labels))
    ax.axhline(100 * chance, color="gray", ls="--", lw=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("percent of test images")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return fig
