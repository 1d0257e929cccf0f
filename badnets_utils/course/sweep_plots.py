"""The figure of a sweep: ASR and TCA against the poisoning rate, one panel per setting (notebook 04, the sweep
command's PNG beside its CSV)."""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from badnets_utils._io.files import atomic_write
from badnets_utils.course import plots
from badnets_utils.studies.sweep import _varying, _words, by_setting, summarize

MAX_PANELS = 6  # settings (trigger, target...) a sweep's plot draws, one panel each
PLOT_SIZE, PLOT_DPI = (8.0, 5.0), 150  # one panel: 1200 × 750 pixels


def sweep_figure(rows: Sequence[dict], title: str | None = None) -> Figure:
    """ASR and TCA (mean ± standard deviation over seeds) against the poisoning rate, one panel per setting of the
    sweep (at most ``MAX_PANELS``); ``title`` defaults to the settings all rows share."""

    if any(r["poison_count"] is not None for r in rows):
        raise ValueError("rows with a poison_count have no rate to plot; allowed: the rows of a rate sweep")
    groups = by_setting(rows)
    if not 1 <= len(groups) <= MAX_PANELS:
        raise ValueError(f"{len(groups)} settings besides rate and seed to plot; allowed: 1..{MAX_PANELS} (one panel "
                         "each): plot a selection of the rows")  # fmt: skip
    seeds = len({r["seed"] for r in rows})
    varying = _varying(groups)
    if title is None:
        shared = ", ".join(_words(rows[0], varying, shared=True))
        spread = f"mean ± standard deviation over {seeds} seeds" if seeds > 1 else "one seed"
        title = "; ".join(t for t in (shared, spread) if t)
    cols = min(len(groups), 3)
    nrows = math.ceil(len(groups) / cols)
    width, height = PLOT_SIZE if len(groups) == 1 else (5.5 * cols, 0.6 + 4.4 * nrows)
    line = int(width * 10)  # about 10 characters of the 14-point title an inch
    if len(title) > line and "; " in title:
        title = title.replace("; ", "\n", 1)
    title = "\n".join(textwrap.fill(part, line) for part in title.split("\n"))
    fig = plots.new_figure(width, height)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, group in zip(axes, groups.values(), strict=False):
        s = summarize(group)
        col = lambda key, s=s: [x[key] for x in s]  # noqa: E731
        panel = ", ".join(_words(group[0], varying, shared=False))
        plots.asr_vs_rate(col("rate"), col("asr_mean"), col("tca_mean"), col("asr_std"), col("tca_std"),
                          title=panel, ax=ax)  # fmt: skip
    for ax in axes[len(groups) :]:
        ax.axis("off")
    fig.suptitle(title)
    return fig


def save_plot(rows: Sequence[dict], path: str | os.PathLike, title: str | None = None) -> Path:
    """``sweep_figure(rows, title)`` written to ``path`` as a PNG (atomically), ``PLOT_DPI`` dots per inch: a
    sweep of one setting is 1200 × 750 pixels."""
    fig = sweep_figure(rows, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
