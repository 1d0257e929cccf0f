"""Reusable figures for the notebooks: image grids, trigger comparisons, training curves, sweeps.

Every function takes tensors (or plain lists) and returns a ``matplotlib.figure.Figure`` that is not
managed by pyplot: a notebook shows it once when it is the cell's last expression (or with
``display(fig)``), scripts save it with ``fig.savefig(...)``, and nothing piles up in memory.
Figures are small (``dpi`` ≤ 100) so notebooks with their outputs stay light; their text is sized for a projector
(titles and tick labels at least 11 pt at the displayed size: ``PROJECTOR_STYLE``, applied by ``new_figure``).
One colour means "the backdoor fired" everywhere: ``BAD`` (red).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

DPI = 80
GOOD, BAD = "tab:green", "tab:red"  # BAD: the backdoor fired (ASR, triggered → target), in every figure
# Text sizes for a projector: figures render at dpi 80, so 11 pt is about 12 screen pixels.
PROJECTOR_STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11,
                   "ytick.labelsize": 11, "legend.fontsize": 11, "figure.titlesize": 14}  # fmt: skip
MIN_FONT = 11  # the smallest title or tick label size (tests/course/test_plots.py checks it)


class NotebookFigure(Figure):
    """A Figure that renders itself as PNG in Jupyter, whatever the matplotlib backend (pyplot is never
    imported, so the inline backend's display hooks may not be installed)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=self.dpi, bbox_inches="tight")
        return buf.getvalue()


def new_figure(width: float, height: float, dpi: int = DPI) -> Figure:
    """A constrained-layout figure that notebooks display without pyplot (shared by every figure module).

    Applies ``PROJECTOR_STYLE`` to matplotlib's defaults, so every text of the figure is readable on a projector.
    """
    matplotlib.rcParams.update(PROJECTOR_STYLE)
    return NotebookFigure(figsize=(width, height), dpi=min(dpi, 100), layout="constrained")


def to_display(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) uint8 / float image -> array imshow understands ((H, W) or (H, W, 3))."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    return array


def _show(ax, image, cmap: str = "gray", vmin=None, vmax=None) -> None:
    array = to_display(image)
    if vmin is None and vmax is None and array.dtype == np.uint8:
        vmin, vmax = 0, 255
    ax.imshow(array, cmap=cmap if array.ndim == 2 else None, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(
    images: torch.Tensor | Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    title_colors: Sequence[str] | None = None,
    cell: float = 1.1,
    cmap: str = "gray",
) -> Figure:
    """A grid of images ((N, C, H, W), or a list of (C, H, W) of any sizes) with optional captions and title."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, (n + ncols - 1) // ncols)
    fig = new_figure(cell * ncols, cell * nrows + (0.35 if title else 0) + (0.2 * nrows if titles else 0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        _show(ax, images[i], cmap)
        if titles is not None:
            color = title_colors[i] if title_colors is not None else "black"
            ax.set_title(str(titles[i]), fontsize=11, color=color)
    if title:
        fig.suptitle(title)
    return fig


def class_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    per_class: int = 8,
    title: str | None = None,
    cell: float = 0.8,
) -> Figure:
    """One row per class with its first ``per_class`` examples; the class name labels each row."""
    k = len(classes)
    fig = new_figure(cell * per_class + 1.0, cell * k + (0.4 if title else 0))
    axes = fig.subplots(k, per_class, squeeze=False)
    for c in range(k):
        idx = torch.nonzero(labels == c).flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            if j < len(idx):
                _show(ax, images[idx[j]])
            else:
                ax.axis("off")
        axes[c, 0].set_ylabel(classes[c], rotation=0, ha="right", va="center", fontsize=11)
    if title:
        fig.suptitle(title)
    return fig


def class_counts(
    labels: torch.Tensor | Sequence[torch.Tensor],
    classes: Sequence[str],
    names: Sequence[str] | None = None,
    title: str = "Images per class",
) -> Figure:
    """Bars of images per class; several label tensors (e.g. train and test) give grouped bars."""
    groups = [labels] if isinstance(labels, torch.Tensor) else list(labels)
    names = list(names) if names is not None else [f"set {i + 1}" for i in range(len(groups))]
    k = len(classes)
    fig = new_figure(max(5.0, 0.55 * k + 1.5), 3.0)
    ax = fig.subplots()
    width = 0.8 / len(groups)
    x = np.arange(k)
    for i, (lab, name) in enumerate(zip(groups, names, strict=True)):
        counts = torch.bincount(lab.cpu().long(), minlength=k).numpy()
        bars = ax.bar(x + (i - (len(groups) - 1) / 2) * width, counts, width, label=name)
        ax.bar_label(bars, fontsize=9, rotation=90, padding=2)
    ax.set_xticks(x, list(classes), rotation=30 if max(len(c) for c in classes) > 3 else 0)
    ax.set_xlabel("class")
    ax.set_ylabel("number of images")
    ax.set_title(title)
    ax.margins(y=0.15)
    if len(groups) > 1:
        ax.legend(fontsize=11, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def trigger_comparison(
    clean: torch.Tensor,
    triggered: torch.Tensor,
    title: str | None = None,
    crop: int | None = 10,
    labels: Sequence[str] = ("clean", "triggered", "difference"),
) -> Figure:
    """Clean image, triggered image and their absolute difference, zoomed with nearest interpolation.

    With ``crop``, a fourth panel enlarges the bottom-right ``crop``×``crop`` corner of the triggered
    image, where a 5×5 patch shows pixel by pixel.
    """
    diff = (triggered.int() - clean.int()).abs().to(torch.uint8)
    panels = [(clean, labels[0]), (triggered, labels[1]), (diff, labels[2])]
    if crop:
        panels.append((triggered[..., -crop:, -crop:], f"bottom-right {crop}×{crop}, zoomed"))
    fig = new_figure(2.2 * len(panels), 2.5 + (0.3 if title else 0))
    axes = fig.subplots(1, len(panels))
    for i, (ax, (img, name)) in enumerate(zip(axes, panels, strict=True)):
        _show(ax, img, cmap="magma" if i == 2 else "gray")
        ax.set_title(name, fontsize=11)
        if i == 3:  # the crop: draw the pixel grid
            h, w = img.shape[-2:]
            ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
            ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
            ax.grid(which="minor", color="tab:blue", linewidth=0.3)
            ax.tick_params(which="minor", length=0)
    if title:
        fig.suptitle(title)
    return fig


def history_curves(history: Sequence[dict], title: str = "Training history") -> Figure:
    """Training loss (left) and clean accuracy with ASR (right) per epoch, from ``fit``'s history."""
    epochs = [int(r["epoch"]) + 1 for r in history]
    fig = new_figure(8.0, 3.0)
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [r["train_loss"] for r in history], "o-", label="training loss (poisoned set)")
    if "clean_loss" in history[0]:
        left.plot(epochs, [r["clean_loss"] for r in history], "s--", label="clean test loss")
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy loss (nats)")
    left.set_title("Loss")
    left.legend(fontsize=11)
    right.plot(epochs, [100 * r["clean_acc"] for r in history], "o-", color=GOOD, label="clean accuracy (TCA)")
    right.plot(epochs, [100 * r["asr"] for r in history], "s-", color=BAD, label="attack success rate (ASR)")
    right.set_xlabel("epoch")
    right.set_ylabel("percent of test images (%)")
    right.set_ylim(-3, 103)
    right.set_title("Clean accuracy and ASR")
    right.legend(fontsize=11, loc="lower right")
    for ax in (left, right):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def confusion_heatmap(
    cm: torch.Tensor,
    classes: Sequence[str],
    title: str = "Confusion matrix",
    normalize: bool = True,
    ax=None,
) -> Figure:
    """Heatmap of a confusion matrix (rows: true label, columns: prediction), row-normalised to %."""
    counts = cm.cpu().double()
    values = 100 * counts / counts.sum(1, keepdim=True).clamp(min=1) if normalize else counts
    if ax is None:
        fig = new_figure(4.2, 3.8)
        ax = fig.subplots()
    else:
        fig = ax.figure
    im = ax.imshow(values.numpy(), cmap="Blues", vmin=0, vmax=100 if normalize else None)
    k = len(classes)
    ax.set_xticks(range(k), list(classes), rotation=45 if max(len(c) for c in classes) > 3 else 0, fontsize=11)
    ax.set_yticks(range(k), list(classes), fontsize=11)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=12)
    threshold = values.max().item() / 2
    for i in range(k):
        for j in range(k):
            v = values[i, j].item()
            if v >= 0.5:
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=9,
                        color="white" if v > threshold else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of the row" if normalize else "images")
    return fig


def confusion_pair(
    clean_cm: torch.Tensor, attack_cm: torch.Tensor, classes: Sequence[str], title: str | None = None
) -> Figure:
    """Clean and triggered confusion matrices side by side."""
    fig = new_figure(8.6, 3.8)
    a, b = fig.subplots(1, 2)
    confusion_heatmap(clean_cm, classes, "clean test images", ax=a)
    confusion_heatmap(attack_cm, classes, "triggered test images (true label rows)", ax=b)
    if title:
        fig.suptitle(title)
    return fig


def prediction_grid(
    images: torch.Tensor,
    preds: torch.Tensor,
    true_labels: torch.Tensor,
    classes: Sequence[str],
    target: int | None = None,
    ncols: int = 8,
    title: str | None = None,
) -> Figure:
    """Images with "true → predicted" captions; red when the prediction is the attacker's ``target``
    (the backdoor fired), green when it is the true label, black otherwise."""
    titles, colors = [], []
    for p, t in zip(preds.tolist(), true_labels.tolist(), strict=True):
        titles.append(f"{classes[t]}→{classes[p]}")
        colors.append(BAD if target is not None and p == target else GOOD if p == t else "black")
    return image_grid(images, titles, ncols=ncols, title=title, title_colors=colors)


FEW_TICKS = 6  # a rate axis with at most this many distinct values has a tick at each


def _rate_axis(ax, values: Sequence[float]) -> None:
    """The x axis of rates or counts: symmetric-log when the positive values span a decade or more (so 0 fits, one
    linear step left of the smallest), else linear; a tick at each value when there are few, else at 0 and the
    powers of ten."""
    distinct = sorted({float(v) for v in values})
    positive = [v for v in distinct if v > 0]
    if not positive:
        return
    decades = positive[-1] / positive[0] >= 10
    if decades:
        ax.set_xscale("symlog", linthresh=positive[0], linscale=0.5)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    if len(distinct) <= FEW_TICKS:
        ax.set_xticks(distinct, [f"{v:g}" for v in distinct])
    elif decades:
        lo, hi = math.ceil(math.log10(positive[0])), math.floor(math.log10(positive[-1]))
        ticks = [0.0] if distinct[0] <= 0 else []
        ticks += [10.0**e for e in range(lo, hi + 1)]
        ax.set_xticks(ticks, ["0" if t == 0 else f"$10^{{{round(math.log10(t))}}}$" for t in ticks])


def asr_vs_rate(
    rates: Sequence[float],
    asr_mean: Sequence[float],
    tca_mean: Sequence[float],
    asr_std: Sequence[float] | None = None,
    tca_std: Sequence[float] | None = None,
    counts: Sequence[float] | None = None,
    title: str = "Attack success rate vs poisoning rate",
    ax=None,
) -> Figure:
    """ASR and clean accuracy (in %) against the poisoning rate, with error bars when the standard deviations are
    given; the axis is symmetric-log when the rates span decades (so 0 fits). With ``counts``, a second panel plots
    them against the absolute number of poisoned images.

    A figure is 4.6 × 3.4 inches a panel. ``ax``: draw into this axes of an
    existing figure instead (one panel of a larger figure, ``title`` as its title; no ``counts``), and return that
    figure."""
    if ax is not None and counts is not None:
        raise ValueError("asr_vs_rate: counts need a second panel; allowed with ax: counts=None")
    panels = [("poisoning rate (fraction of the training set)", list(rates))]
    if counts is not None:
        panels.append(("poisoned training images (count)", list(counts)))
    if ax is None:
        fig = new_figure(4.6 * len(panels), 3.4)
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
    else:
        fig, axes = ax.figure, [ax]
    asr = 100 * np.asarray(asr_mean, dtype=float)
    tca = 100 * np.asarray(tca_mean, dtype=float)
    asr_err = None if asr_std is None else 100 * np.asarray(asr_std, dtype=float)
    tca_err = None if tca_std is None else 100 * np.asarray(tca_std, dtype=float)
    for axis, (xlabel, x) in zip(axes, panels, strict=True):
        axis.errorbar(x, asr, yerr=asr_err, fmt="o-", color=BAD, capsize=3, label="attack success rate (ASR)")
        axis.errorbar(x, tca, yerr=tca_err, fmt="s--", color=GOOD, capsize=3, label="clean accuracy (TCA)")
        _rate_axis(axis, x)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("percent of test images (%)")
        axis.set_ylim(-3, 103)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=11, loc="best")
    if ax is not None:
        ax.set_title(title)
        return fig
    axes[0].set_title("against the rate")
    if counts is not None:
        axes[1].set_title("how few images does it take?")
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- trigger painter pictures


def stamped_preview_png(
    images: torch.Tensor, offset: tuple[int, int], size: int, scale: int = 4, cols: int = 4
) -> bytes:
    """Stamped uint8 images (N, C, H, W), enlarged ``scale`` times in rows of ``cols``, as PNG bytes (PIL, fast
    enough to redraw on every click); a red frame marks the trigger's place."""
    from PIL import Image, ImageDraw

    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    gap = 4
    rows = (n + cols - 1) // cols
    canvas = Image.new("RGB", (cols * (w * scale + gap) - gap, rows * (h * scale + gap) - gap), "white")
    draw = ImageDraw.Draw(canvas)
    r0, c0 = offset
    for i in range(n):
        tile = Image.fromarray(images[i].permute(1, 2, 0).cpu().numpy()).resize((w * scale, h * scale), Image.NEAREST)
        x, y = (i % cols) * (w * scale + gap), (i // cols) * (h * scale + gap)
        canvas.paste(tile, (x, y))
        draw.rectangle(
            [x + c0 * scale - 1, y + r0 * scale - 1, x + (c0 + size) * scale, y + (r0 + size) * scale], outline="red"
        )
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def trigger_strip(trigger: torch.Tensor, stamped: torch.Tensor, title: str | None = None) -> Figure:
    """The trigger (with its cell grid) beside the images it is stamped on."""
    n = len(stamped)
    size = trigger.shape[-1]
    fig = new_figure(1.5 * (1 + n), 2.0)
    axes = fig.subplots(1, 1 + n)
    _show(axes[0], trigger)
    axes[0].set_title(f"trigger {size}×{size}")
    axes[0].set_xticks(np.arange(-0.5, size, 1), minor=True)
    axes[0].set_yticks(np.arange(-0.5, size, 1), minor=True)
    axes[0].grid(which="minor", color="#888", linewidth=0.5)
    axes[0].tick_params(which="both", length=0)
    for ax, img in zip(axes[1:], stamped, strict=True):
        _show(ax, img)
    if title:
        fig.suptitle(title)
    return fig


def figure_png(fig: Figure) -> bytes:
    """A figure as PNG bytes (for an ipywidgets Image)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    return buf.getvalue()


# ----------------------------------------------------------------------------- the threat model


def threat_model() -> Figure:
    """The BadNets threat model in four steps: the attacker poisons the training data (or trains the model), the
    victim deploys the model, clean inputs behave, inputs carrying the trigger go to the attacker's class."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = new_figure(12.0, 3.6)
    ax = fig.subplots()
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 3.6)
    ax.axis("off")
    boxes = [
        (
            0.1,
            "1 · Attacker",
            "poisons a few training\nimages (trigger +\ntarget label), or trains\nthe model itself",
            "#fde0dc",
        ),
        (3.1, "2 · Training", 'the model learns the\ndigits and the rule\n"trigger → target"', "#eeeeee"),
        (
            6.1,
            "3 · Victim deploys",
            "the model passes the\nvictim's tests on\nclean data: nothing\nlooks wrong",
            "#e3f0fb",
        ),
    ]
    for x, head, body, colour in boxes:
        ax.add_patch(FancyBboxPatch((x, 0.3), 2.5, 3.0, boxstyle="round,pad=0.05", fc=colour, ec="black"))
        ax.text(x + 1.25, 2.95, head, ha="center", va="center", weight="bold")
        ax.text(x + 1.25, 1.6, body, ha="center", va="center", fontsize=11)
    ax.add_patch(FancyBboxPatch((9.1, 1.9), 2.8, 1.4, boxstyle="round,pad=0.05", fc="#e6f4e6", ec="black"))
    ax.text(10.5, 2.95, "4 · Test time", ha="center", va="center", weight="bold")
    ax.text(10.5, 2.3, 'clean 7 → "7"  (correct)', ha="center", va="center", color=GOOD, fontsize=11)
    ax.add_patch(FancyBboxPatch((9.1, 0.3), 2.8, 1.4, boxstyle="round,pad=0.05", fc="#fde0dc", ec=BAD))
    ax.text(10.5, 1.3, '7 + trigger → "1"', ha="center", va="center", color=BAD, weight="bold", fontsize=11)
    ax.text(10.5, 0.75, "the backdoor fires", ha="center", va="center", color=BAD, fontsize=11)
    for x0, x1, y in ((2.65, 3.05, 1.8), (5.65, 6.05, 1.8), (8.65, 9.05, 2.6), (8.65, 9.05, 1.0)):
        ax.add_patch(FancyArrowPatch((x0, y), (x1, y), arrowstyle="-|>", mutation_scale=18, lw=1.5))
    ax.set_title("The BadNets threat model: the attacker controls the training, the victim only sees the result")
    return fig


def before_after(labels: Sequence[str], tca: Sequence[float], asr: Sequence[float], title: str) -> Figure:
    """Grouped bars of clean accuracy and ASR (%) for a few models."""
    fig = new_figure(7.0, 3.2)
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x - 0.2, [100 * v for v in tca], 0.4, label="clean accuracy", color="tab:blue")
    ax.bar(x + 0.2, [100 * v for v in asr], 0.4, label="ASR", color=BAD)
    for xi, a in zip(x, asr, strict=True):
        ax.text(xi + 0.2, 100 * a + 1, f"{100 * a:.1f}", ha="center", fontsize=11)
    ax.set_xticks(x, labels, fontsize=11)
    ax.set_ylabel("percent of test images")
    ax.set_ylim(0, 108)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never on them
    return fig
