"""The figures of notebook 06: stamped examples of each variant, their scores as bars, the ablations and the
trigger's reach."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from badnets_utils.core.config import RANDOM, Attack
from badnets_utils.core.models import BadNet
from badnets_utils.core.pipeline import build_trigger
from badnets_utils.core.triggers import apply_trigger, random_positions
from badnets_utils.course.plots import BAD, new_figure, to_display
from badnets_utils.studies.variants import Row, _values, reach


def _baseline_line(ax, baseline: float | None) -> None:
    """The clean model's ASR as a reference line (what the trigger does to a model without a backdoor), labelled
    on the plot too: near 0 % the line itself lies on the x-axis."""
    if baseline is not None:
        text = f"clean model's ASR: {100 * baseline:.2f} %"
        ax.axhline(100 * baseline, color="gray", ls="--", lw=1.2, label=text)
        ax.annotate(
            f"◀ {text}",
            (1.0, 100 * baseline),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=10,
            color="dimgray",
            va="center",
            annotation_clip=False,
        )


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
        axes[i, 0].set_ylabel(v.label, rotation=0, ha="right", va="center", fontsize=11)
    fig.suptitle("The same test digits with each variant's trigger")
    return fig


def variant_bars(rows: Sequence[Row], baseline: float | None = None) -> Figure:
    """Grouped bars: clean accuracy and ASR (%) of each variant, with the clean model's ASR (``baseline``)."""
    fig = new_figure(9.0, 4.0)
    ax = fig.subplots()
    x = np.arange(len(rows))
    values = [_values(r) for r in rows]
    tca = [100 * v[1] for v in values]
    asr = [100 * v[2] for v in values]
    ax.bar(x - 0.2, tca, 0.4, label="clean accuracy (TCA)", color="tab:blue")
    ax.bar(x + 0.2, asr, 0.4, label="attack success rate (ASR)", color=BAD)
    for xi, a in zip(x, asr, strict=True):
        ax.text(xi + 0.2, a + 1, f"{a:.1f}" if a < 10 else f"{a:.0f}", ha="center", fontsize=11)
    _baseline_line(ax, baseline)
    ax.set_xticks(x, [v[0] for v in values], rotation=15, ha="right", fontsize=11)
    ax.set_ylabel("percent of test images")
    ax.set_ylim(0, 108)
    ax.set_title("Attack variants: clean accuracy and attack success rate")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never on them
    return fig


def ablation_plot(
    labels: Sequence, rows: Sequence[Row], xlabel: str, title: str, baseline: float | None = None, bars: bool = False
) -> Figure:
    """Clean accuracy and ASR (%) against one setting (lines over numbers, or bars over names); ``baseline``:
    the clean model's ASR, drawn as a reference line."""
    fig = new_figure(7.5, 3.6)
    ax = fig.subplots()
    values = [_values(r) for r in rows]
    tca = [100 * v[1] for v in values]
    asr = [100 * v[2] for v in values]
    if bars:
        x = np.arange(len(labels))
        ax.bar(x - 0.2, tca, 0.4, label="clean accuracy", color="tab:blue")
        ax.bar(x + 0.2, asr, 0.4, label="ASR", color=BAD)
        ax.set_xticks(x, [str(v) for v in labels])
    else:
        ax.plot(labels, tca, "o-", label="clean accuracy", color="tab:blue")
        ax.plot(labels, asr, "s-", label="ASR", color=BAD)
        ax.set_xticks(list(labels))
    _baseline_line(ax, baseline)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("percent of test images")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, never on the data
    return fig


def reach_figure(model: BadNet, positions: Sequence[tuple[int, int]], image: torch.Tensor | None = None) -> Figure:
    """How many conv1 and conv2 windows see each pixel (``reach``), with the tested trigger ``positions`` marked;
    ``image``: a digit drawn faintly underneath for scale."""
    counts = reach(model)
    fig = new_figure(9.4, 4.0)
    axes = fig.subplots(1, 2)
    for ax, values, name in zip(axes, counts, ("conv1 (5×5 windows on the image)", "conv2 (after pooling)"),
                                strict=True):  # fmt: skip
        im = ax.imshow(values.numpy(), cmap="viridis", vmin=0)
        if image is not None:
            ax.imshow(to_display(image), cmap="gray", alpha=0.25, vmin=0, vmax=255)
        for r, c in positions:
            ax.plot(c, r, "s", ms=7, mfc="none", mec="red", mew=1.8, clip_on=False)
        labels = [f"({r}, {c}): {int(values[r, c])}" for r, c in positions]
        ax.set_xlabel(
            " · ".join(labels[:3]) + ("\n" + " · ".join(labels[3:]) if labels[3:] else ""), fontsize=10, color="red"
        )
        ax.set_xticks([0, 7, 14, 21, 27])
        ax.set_yticks([0, 7, 14, 21, 27])
        ax.set_title(f"output positions of {name}\nthat see each pixel", fontsize=11)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("Where a one-pixel trigger can be seen (red: the positions tested)")
    return fig
