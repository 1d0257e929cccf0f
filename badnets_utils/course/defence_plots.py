"""Figures of the four defences (notebook 07). Each returns a ``matplotlib.figure.Figure`` (not managed by pyplot)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from badnets_utils.course.plots import BAD, new_figure


def clustering_projection(
    projection: torch.Tensor, cluster: torch.Tensor, is_poison: torch.Tensor, cls: int, max_points: int = 3000
) -> Figure:
    """Class ``cls``'s activations on their first two principal components, coloured by 2-means cluster
    (left) and by the ground truth (right)."""
    idx = torch.arange(len(projection))
    if len(idx) > max_points:
        idx = torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))[:max_points]
    z, c, p = projection[idx, :2].numpy(), cluster[idx].numpy(), is_poison[idx].numpy()
    fig = new_figure(8.0, 3.4)
    left, right = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, values, names, colors, title in (
        (left, c, ("larger cluster", "smaller cluster (flagged)"), ("tab:blue", "tab:orange"), "2-means clusters"),
        (right, p, ("clean", "poisoned"), ("tab:green", BAD), "ground truth"),
    ):
        for k in (0, 1):
            ax.scatter(z[values == k, 0], z[values == k, 1], s=4, alpha=0.5, c=colors[k], label=names[k])
        ax.set_xlabel("principal component 1")
        ax.set_title(f"class {cls}: {title}")
        ax.legend(fontsize=11, markerscale=3)
    left.set_ylabel("principal component 2")
    return fig


def per_class_bars(values: torch.Tensor, ylabel: str, title: str, highlight: int | None = None) -> Figure:
    """One bar per class, the ``highlight`` class in red."""
    fig = new_figure(5.0, 2.6)
    ax = fig.subplots()
    v = values.numpy()
    colors = [BAD if k == highlight else "tab:gray" for k in range(len(v))]
    ax.bar(np.arange(len(v)), v, color=colors)
    ax.set_xticks(np.arange(len(v)))
    ax.set_xlabel("class (training label)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def score_histogram(scores: torch.Tensor, is_poison: torch.Tensor, cutoff: float | None, cls: int) -> Figure:
    """Spectral outlier scores of class ``cls``: clean and poisoned samples, and the removal cutoff."""
    fig = new_figure(5.5, 3.0)
    ax = fig.subplots()
    s = scores.numpy()
    p = is_poison.numpy()
    bins = np.linspace(0, float(s.max()) * 1.01 + 1e-9, 50)
    ax.hist(s[~p], bins=bins, color="tab:green", alpha=0.7, label="clean")
    ax.hist(s[p], bins=bins, color=BAD, alpha=0.7, label="poisoned")
    if cutoff is not None:
        ax.axvline(cutoff, color="black", ls="--", lw=1, label="removal cutoff")
    ax.set_yscale("log")
    ax.set_xlabel("outlier score (squared projection on the top singular vector)")
    ax.set_ylabel("samples (log scale)")
    ax.set_title(f"Spectral signature of class {cls}")
    ax.legend(fontsize=11)
    return fig


def pruning_plot(curve: dict, tuned: dict | None = None) -> Figure:
    """Clean accuracy and ASR (%) against the fraction of ``conv2`` channels pruned; fine-tuned points as stars.

    ``tuned``: {fraction: (clean_acc, asr)} after fine-tuning.
    """
    fig = new_figure(8.5, 3.6)
    ax = fig.subplots()
    f = 100 * curve["fractions"].numpy()
    ax.plot(f, 100 * curve["clean_acc"].numpy(), "o-", color="tab:blue", label="clean accuracy, pruned")
    ax.plot(f, 100 * curve["asr"].numpy(), "s-", color=BAD, label="ASR, pruned")
    for i, (fraction, (acc, asr)) in enumerate((tuned or {}).items()):
        ax.plot(100 * fraction, 100 * acc, "*", ms=13, color="tab:blue", mec="black",
                label="clean accuracy, pruned + fine-tuned" if i == 0 else None)  # fmt: skip
        ax.plot(100 * fraction, 100 * asr, "*", ms=13, color=BAD, mec="black",
                label="ASR, pruned + fine-tuned" if i == 0 else None)  # fmt: skip
    ax.set_xlabel("dormant conv2 channels pruned (%)")
    ax.set_ylabel("percent of test images")
    ax.set_ylim(-2, 105)
    ax.set_title("Fine-pruning")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def reversed_triggers(
    masks: torch.Tensor, patterns: torch.Tensor, l1: torch.Tensor, index: torch.Tensor, real: torch.Tensor
) -> Figure:
    """Top: each class's reverse-engineered trigger (mask × pattern) with its mask norm and anomaly index;
    bottom-right: the real trigger stamped on a blank image."""
    k = len(masks)
    fig = new_figure(1.2 * (k + 1), 1.9)
    axes = fig.subplots(1, k + 1)
    for t in range(k):
        img = (masks[t] * patterns[t]).mean(0).numpy()
        axes[t].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[t].set_title(f"class {t}\n|m|₁={l1[t]:.0f}\nAI={index[t]:.1f}", fontsize=11,
                          color=BAD if index[t] > 2 else "black")  # fmt: skip
    r = real.float().div(255).mean(0).numpy() if real.dtype == torch.uint8 else real.mean(0).numpy()
    axes[k].imshow(r, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[k].set_title("real\ntrigger", fontsize=11)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Neural Cleanse: smallest trigger found for each class (mask × pattern)", fontsize=11)
    return fig
