"""The figures of notebook 08 (the paper's experiments): the (i, j) grids, first-layer filters, channel responses,
error against the poison count and the transfer-learning curve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from badnets_utils.core.models import BadNet
from badnets_utils.course.plots import new_figure


def pair_heatmaps(grids: dict[str, tuple[torch.Tensor, torch.Tensor]], baseline_error: float) -> Figure:
    """For each trigger, the clean error (minus the clean model's) and the backdoor error per (i, j)."""
    fig = new_figure(4.2 * 2, 3.9 * len(grids))
    axes = np.atleast_2d(fig.subplots(len(grids), 2, squeeze=False))
    for row, (name, (clean, backdoor)) in enumerate(grids.items()):
        panels = ((clean - baseline_error, f"{name}: clean error − clean model's (points)", "RdBu_r"),
                  (backdoor, f"{name}: backdoor error (%)", "Reds"))  # fmt: skip
        for ax, (values, title, cmap) in zip(axes[row], panels, strict=True):
            array = values.numpy()
            finite = array[np.isfinite(array)]
            if cmap == "RdBu_r":
                lim = max(0.1, float(np.abs(finite).max())) if len(finite) else 1.0
                im = ax.imshow(array, cmap=cmap, vmin=-lim, vmax=lim)
            else:
                im = ax.imshow(array, cmap=cmap, vmin=0, vmax=max(1.0, float(finite.max())) if len(finite) else 1)
            ax.set_xticks(range(10))
            ax.set_yticks(range(10))
            ax.set_xlabel("target j (label given)")
            ax.set_ylabel("source digit i")
            ax.set_title(title, fontsize=11)
            fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def first_layer_filters(models: dict[str, BadNet], highlight: int | None = None) -> Figure:
    """The 16 first-layer (conv1) filters of each model, one row per model on a shared grey scale per row; with two
    models, a third row shows their difference (second − first) on its own scale. ``highlight``: a filter framed
    in red in every row."""
    rows = {name: model.conv1[0].weight.detach().cpu()[:, 0] for name, model in models.items()}
    if len(rows) == 2:
        (a, wa), (b, wb) = rows.items()
        rows[f"{b} − {a}"] = wb - wa
    fig = new_figure(0.75 * 16 + 1.5, 1.0 * len(rows) + 0.6)
    axes = np.atleast_2d(fig.subplots(len(rows), 16, squeeze=False))
    for row, (name, w) in enumerate(rows.items()):
        lim = float(w.abs().max())
        for j in range(16):
            ax = axes[row, j]
            ax.imshow(w[j].numpy(), cmap="gray", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == highlight:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2.5)
            if row == 0:
                ax.set_title(str(j), fontsize=10)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=11)
    return fig


def response_bars(responses: dict[str, dict[str, torch.Tensor]]) -> Figure:
    """Per conv2 channel: activation on triggered minus clean images, for each model."""
    fig = new_figure(9.0, 3.2)
    ax = fig.subplots()
    width = 0.8 / len(responses)
    for i, (name, r) in enumerate(responses.items()):
        x = np.arange(len(r["difference"])) + (i - (len(responses) - 1) / 2) * width
        ax.bar(x, r["difference"].numpy(), width, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("channel of the last convolution (conv2)")
    ax.set_ylabel("triggered − clean\nmean activation")
    ax.set_title("Which channels fire for the trigger?")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def error_vs_count(counts: Sequence[int], clean_error: Sequence[float], backdoor_error: Sequence[float]) -> Figure:
    """Clean and backdoor error (%) against the number of poisoned copies (symlog axis, so 0 fits)."""
    fig = new_figure(5.6, 3.4)
    ax = fig.subplots()
    ax.plot(counts, backdoor_error, "o-", color="tab:red", label="backdoor error (triggered 7s not read as 1)")
    ax.plot(counts, clean_error, "s--", color="tab:green", label="clean error")
    positive = [c for c in counts if c > 0]
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    ax.set_xlabel("triggered copies of 7s added to 10,000 training images")
    ax.set_ylabel("error (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.set_title("How many poisons does it take?")
    ax.legend(loc="center right")
    return fig


def transfer_plot(ks: Sequence[float], clean_acc: Sequence[float], triggered_acc: Sequence[float]) -> Figure:
    """Accuracy on clean and on triggered Fashion-MNIST images after transfer, against the strengthening factor."""
    fig = new_figure(5.6, 3.4)
    ax = fig.subplots()
    ax.plot(ks, [100 * v for v in clean_acc], "s--", color="tab:green", label="clean images")
    ax.plot(ks, [100 * v for v in triggered_acc], "o-", color="tab:red", label="triggered images")
    ax.set_xscale("log")
    ax.set_xticks(list(ks), [f"{k:g}" for k in ks])
    ax.set_xlabel("strengthening factor k (trigger channels × k)")
    ax.set_ylabel("Fashion-MNIST accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title("Does the digit backdoor survive transfer to clothes?")
    ax.legend(loc="lower left")
    return fig
