"""Attack variants for notebook 06: other triggers, blended triggers, all-to-all, trigger size and position.

A ``Variant`` names a trigger and how it is applied; ``run_variant`` poisons a training set with it,
trains a fresh BadNet and measures clean accuracy and attack success rate; the figure helpers draw
the comparison and the ablations (matplotlib ``Figure`` objects, not managed by pyplot).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from .data import ImageData, dataset_stats
from .models import BadNet
from .plots import new_figure, to_display
from .poison import attack_test_set, poison_train_set
from .train import evaluate, fit
from .triggers import apply_trigger, random_positions


@dataclass
class Variant:
    """A trigger and how it is stamped. ``position="random"`` draws one position per image."""

    name: str
    trigger: torch.Tensor  # uint8 (C, h, w)
    position: str | tuple[int, int] = "bottom-right"
    alpha: float = 1.0
    attack: str = "all-to-one"
    rate: float = 0.1


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


def _positions(variant: Variant, data: ImageData, seed: int):
    if variant.position != "random":
        return variant.position
    return random_positions(len(data), data.images.shape[-2:], variant.trigger.shape[-2:], seed)


def variant_sets(
    train: ImageData, test: ImageData, variant: Variant, target: int = 1, seed: int = 0
) -> tuple[ImageData, ImageData]:
    """(poisoned training set, triggered test set) for ``variant``; random positions differ per image."""
    poisoned = poison_train_set(
        train, variant.trigger, variant.rate, target, variant.attack, seed,
        position=_positions(variant, train, seed), alpha=variant.alpha,
    )  # fmt: skip
    attacked = attack_test_set(
        test, variant.trigger, target, variant.attack, position=_positions(variant, test, seed + 1), alpha=variant.alpha
    )
    return poisoned, attacked


def run_variant(
    train: ImageData,
    test: ImageData,
    variant: Variant,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 2e-3,
    target: int = 1,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> dict:
    """Poison, train a fresh BadNet, measure. Returns name, tca, asr, seconds and the model."""
    poisoned, attacked = variant_sets(train, test, variant, target, seed)
    torch.manual_seed(seed)
    c, h, _ = train.image_shape
    mean, std = dataset_stats(train.name)
    model = BadNet(c, train.num_classes, h, mean, std)
    start = time.perf_counter()
    fit(model, poisoned, epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    return {
        "name": variant.name,
        "tca": evaluate(model, test)["acc"],
        "asr": evaluate(model, attacked)["acc"],
        "seconds": seconds,
        "model": model,
    }


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table of name, clean accuracy, ASR and training time."""
    lines = [f"{'variant':<28} {'clean acc':>9} {'ASR':>7} {'train s':>8}"]
    for r in rows:
        lines.append(f"{r['name']:<28} {r['tca']:>9.2%} {r['asr']:>7.2%} {r['seconds']:>8.1f}")
    return "\n".join(lines)


def variant_examples(variants: Sequence[Variant], images: torch.Tensor, seed: int = 0) -> Figure:
    """One row per variant: the trigger stamped on the same few clean uint8 ``images`` (N, C, H, W)."""
    n = len(images)
    fig = new_figure(1.1 * n + 1.8, 1.15 * len(variants))
    axes = np.atleast_2d(fig.subplots(len(variants), n, squeeze=False))
    for i, v in enumerate(variants):
        position = v.position
        if position == "random":
            position = random_positions(n, images.shape[-2:], v.trigger.shape[-2:], seed)
        stamped = apply_trigger(images, v.trigger, position, v.alpha)
        for j in range(n):
            axes[i, j].imshow(to_display(stamped[j]), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(v.name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("The same test digits with each variant's trigger")
    return fig


def variant_bars(rows: Sequence[dict], chance: float = 0.1) -> Figure:
    """Grouped bars: clean accuracy and ASR (%) of each variant, with the chance level."""
    fig = new_figure(7.5, 3.2)
    ax = fig.subplots()
    x = np.arange(len(rows))
    tca = [100 * r["tca"] for r in rows]
    asr = [100 * r["asr"] for r in rows]
    ax.bar(x - 0.2, tca, 0.4, label="clean accuracy (TCA)", color="tab:blue")
    ax.bar(x + 0.2, asr, 0.4, label="attack success rate (ASR)", color="tab:red")
    for xi, a in zip(x, asr, strict=True):
        ax.text(xi + 0.2, a + 1, f"{a:.0f}", ha="center", fontsize=7)
    ax.axhline(100 * chance, color="gray", ls="--", lw=1, label="chance (10 %)")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("percent of test images")
    ax.set_ylim(0, 125)  # room for the legend above the bars, clear of the small ones
    ax.set_title("Attack variants: clean accuracy and attack success rate")
    ax.legend(fontsize=7, loc="upper center", ncols=3)
    return fig


def ablation_plot(
    labels: Sequence, rows: Sequence[dict], xlabel: str, title: str, chance: float = 0.1, bars: bool = False
) -> Figure:
    """Clean accuracy and ASR (%) against one setting (lines over numbers, or bars over names)."""
    fig = new_figure(5.0, 3.0)
    ax = fig.subplots()
    tca = [100 * r["tca"] for r in rows]
    asr = [100 * r["asr"] for r in rows]
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
