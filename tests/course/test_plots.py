"""Every figure of badnets_utils.course.plots builds headless (Agg) with titles and axis labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from badnets_utils.core.triggers import apply_trigger, make_trigger  # noqa: E402
from badnets_utils.course import plots  # noqa: E402

CLASSES = [str(i) for i in range(10)]


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8, generator=g)


def _render(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    assert fig.dpi <= 100
    fig.canvas.draw()  # lays out and rasterises: fails on broken artists


def _title(fig: Figure) -> str:
    return fig._suptitle.get_text() if fig._suptitle is not None else ""


def test_image_grid(images):
    fig = plots.image_grid(images[:10], [f"#{i}" for i in range(10)], ncols=4, title="Grid")
    _render(fig)
    assert _title(fig) == "Grid"
    assert [ax.get_title() for ax in fig.axes[:3]] == ["#0", "#1", "#2"]
    assert len(fig.axes) == 12  # 3 rows of 4, the last two blank


def test_image_grid_mixed_sizes_and_colour(images):
    colour = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    _render(plots.image_grid([images[0], images[0][:, -10:, -10:], colour], ["a", "b", "c"]))


def test_class_grid(images):
    labels = torch.arange(20) % 10
    fig = plots.class_grid(images, labels, CLASSES, per_class=3, title="Per class")
    _render(fig)
    assert _title(fig) == "Per class"
    assert fig.axes[0].get_ylabel() == "0"


def test_class_counts():
    fig = plots.class_counts([torch.arange(100) % 10, torch.arange(30) % 10], CLASSES, names=["train", "test"])
    _render(fig)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() == "class" and "images" in ax.get_ylabel()
    assert ax.get_legend() is not None


def test_trigger_comparison(images):
    triggered = apply_trigger(images[:1], make_trigger("white"))[0]
    fig = plots.trigger_comparison(images[0], triggered, title="Compare")
    _render(fig)
    assert [ax.get_title() for ax in fig.axes][:3] == ["clean", "triggered", "difference"]
    assert len(fig.axes) == 4 and _title(fig) == "Compare"
    img = fig.axes[0].images[0]
    assert img.get_interpolation() == "nearest"


def test_history_curves():
    history = [{"epoch": e, "train_loss": 1 / (e + 1), "clean_loss": 0.5, "clean_acc": 0.9, "asr": 0.5 + e / 10}
               for e in range(3)]  # fmt: skip
    fig = plots.history_curves(history, title="History")
    _render(fig)
    loss, acc = fig.axes
    assert loss.get_xlabel() == "epoch" and "loss" in loss.get_ylabel()
    assert "%" in acc.get_ylabel() and acc.get_title()
    assert _title(fig) == "History"


def test_confusion_heatmap_and_pair():
    cm = torch.eye(10, dtype=torch.long) * 9 + 1
    fig = plots.confusion_heatmap(cm, CLASSES, title="CM")
    _render(fig)
    ax = fig.axes[0]
    assert ax.get_title() == "CM" and ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    fig = plots.confusion_pair(cm, cm, CLASSES, title="Pair")
    _render(fig)
    assert _title(fig) == "Pair"
    assert sum(1 for a in fig.axes if a.get_title()) == 2


def test_prediction_grid(images):
    preds = torch.tensor([1, 2, 3, 1])
    true = torch.tensor([0, 2, 4, 5])
    fig = plots.prediction_grid(images[:4], preds, true, CLASSES, target=1, title="Predictions")
    _render(fig)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["0→1", "2→2", "4→3", "5→1"]
    assert fig.axes[0].title.get_color() == plots.BAD and fig.axes[1].title.get_color() == plots.GOOD


def test_asr_vs_rate():
    rates = [0, 0.001, 0.01, 0.1]
    fig = plots.asr_vs_rate(rates, [0.01, 0.2, 0.9, 1.0], [0.98] * 4, [0, 0.1, 0.05, 0], [0.001] * 4,
                            counts=[0, 60, 600, 6000], title="Sweep")  # fmt: skip
    _render(fig)
    left, right = fig.axes
    assert "rate" in left.get_xlabel() and "images" in right.get_xlabel()
    assert left.get_xscale() == "symlog" and "%" in left.get_ylabel()
    assert _title(fig) == "Sweep"
    _render(plots.asr_vs_rate(rates, [0.0] * 4, [0.9] * 4))  # no error bars, no counts


def test_figures_render_as_png_in_notebooks(images):
    png = plots.image_grid(images[:2])._repr_png_()
    assert png.startswith(b"\x89PNG")


def _texts_at_least(fig: Figure, size: float) -> None:
    """Every axes title, suptitle and tick label of ``fig`` is at least ``size`` points."""
    fig.canvas.draw()
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.title, *ax.get_xticklabels(), *ax.get_yticklabels()]
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_text() and t.get_fontsize() < size]
    assert not small, f"text below {size} pt: {small[:5]}"


def _legend_off_the_axes(fig: Figure) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            box, area = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
            assert box.x0 >= area.x1 - 1, "the legend must sit beside the plot, not on the data"


def test_threat_model():
    fig = plots.threat_model()
    _render(fig)
    assert "threat model" in fig.axes[0].get_title()
    _texts_at_least(fig, plots.MIN_FONT)


def test_projector_sizes_one_colour_for_a_fired_backdoor_and_a_clean_baseline():
    from badnets_utils.course import variant_plots
    from badnets_utils.studies import variants

    rows = [{"name": "single pixel", "tca": 0.99, "asr": 0.006, "seconds": 20.0},
            {"name": "5×5 white square", "tca": 0.99, "asr": 1.0, "seconds": 20.0}]  # fmt: skip
    bars = variant_plots.variant_bars(rows, baseline=0.001)
    ablation = variant_plots.ablation_plot(["corner", "centre"], rows, "position", "ASR", baseline=0.001, bars=True)
    lines = variant_plots.ablation_plot([1, 5], rows, "size", "ASR", baseline=0.001)
    before = plots.before_after(["a", "b"], [0.99, 0.98], [1.0, 0.1], "Before and after")
    for fig in (bars, ablation, lines, before):
        _render(fig)
        _texts_at_least(fig, plots.MIN_FONT)
        _legend_off_the_axes(fig)
    labels = [t.get_text() for t in bars.axes[0].get_legend().get_texts()]
    assert any("clean model's ASR: 0.10 %" in t for t in labels) and not any("chance" in t for t in labels)
    asr_bars = [
        p
        for p in bars.axes[0].patches
        if matplotlib.colors.to_hex(p.get_facecolor()) == matplotlib.colors.to_hex(plots.BAD)
    ]
    assert len(asr_bars) == 2  # the ASR bars are the "backdoor fired" red
    assert "table" not in variants.format_table(rows) and "single pixel" in variants.format_table(rows)
