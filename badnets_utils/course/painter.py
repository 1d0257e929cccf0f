"""The trigger painter widget: a thin ipywidgets view over ``canvas.TriggerCanvas``.

The canvas holds the trigger and all the painting logic; this view draws it as an N×N grid of clickable cells
with a live preview on sample images, save/load, and a "Train with this trigger" button that runs
``pipeline.run`` with the canvas's attack. Every control calls a canvas method, so what a student clicks can
be done from code too (``painter.canvas.toggle(0, 0)``). It uses only the ipywidgets API that versions 7
(Colab) and 8 share; messages go to the status line, never to a bare ``print``::

    painter = TriggerPainter("MNIST", size=5)
    painter.widget          # display it in JupyterLab, Notebook or Colab
"""

from __future__ import annotations

import html
import os
import time

import torch

from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import DATASETS, ImageData, canonical_name, load_dataset
from badnets_utils.core.pipeline import Result, run
from badnets_utils.core.training import epoch_label
from badnets_utils.core.triggers import POSITIONS, apply_trigger
from badnets_utils.course import plots
from badnets_utils.course.canvas import PRESETS, TriggerCanvas, hex_color

CUSTOM = "custom (row, col)"
N_SAMPLES = 8
QUICK_BUDGET = Budget(epochs=3, batch_size=64, train_limit=10_000, test_limit=2_000)  # 05's header: its time


def sample_images(dataset: str, data_root=None, download: bool = False, n: int = N_SAMPLES) -> torch.Tensor:
    """The first test image of each of the classes 0..n-1, uint8 (n, C, H, W)."""
    test = load_dataset(dataset, train=False, root=data_root, download=download)
    firsts = [int(torch.nonzero(test.labels == k)[0]) for k in range(n) if (test.labels == k).any()]
    return test.images[firsts].clone()


class TriggerPainter:
    """Paint an N×N trigger, see it stamped on sample images, save it, and train a BadNet with it.

    - dataset: ``"MNIST"``, ``"FashionMNIST"`` (grey brush) or ``"CIFAR10"`` (colour brush).
    - samples: ImageData to preview the trigger on (the first 8 are used); None loads one test image of each
      of the classes 0..7 from ``data_root``.
    - budget / attack: the training budget and the attack settings (target, rate, ...) of the "Train" button;
      the trigger, its position and alpha come from the canvas.

    Other arguments go to ``TriggerCanvas`` (size, position, alpha, brush, preset, save_dir).
    """

    def __init__(
        self,
        dataset: str = "MNIST",
        samples: ImageData | None = None,
        data_root: str | os.PathLike | None = None,
        download: bool = False,
        budget: Budget = QUICK_BUDGET,
        attack: Attack = Attack(),
        **canvas_options,
    ) -> None:
        self.dataset = canonical_name(dataset)
        self.data_root, self.download = data_root, download
        self.samples = self._pick_samples(samples)
        self.budget, self.attack = budget, attack
        self.last_result: Result | None = None
        self._trained: tuple | None = None  # the canvas state last_result was trained with
        self._result_html = ""
        self.status = ""
        self._syncing = False
        self._cells: dict[tuple[int, int], object] = {}
        self._shown: dict[tuple[int, int], str] = {}
        self.canvas = TriggerCanvas(self.dataset, **canvas_options)
        self._build_ui()
        self.canvas.on_change = self._changed
        self._changed("click the cells to paint a trigger")

    def _pick_samples(self, samples: ImageData | None) -> torch.Tensor:
        shape = DATASETS[self.dataset]["shape"]
        if samples is None:
            return sample_images(self.dataset, self.data_root, self.download)
        if not isinstance(samples, ImageData):
            raise ValueError(f"samples must be an ImageData, got {type(samples).__name__}")
        if samples.image_shape != shape or len(samples) == 0:
            raise ValueError(f"samples must be {self.dataset} images of shape {shape}, got {samples.image_shape}")
        return samples.images[:N_SAMPLES].clone()

    # ------------------------------------------------------------------ pictures

    def stamped(self) -> torch.Tensor:
        """The sample images with the canvas's trigger stamped where and as strongly as it says."""
        c = self.canvas
        return apply_trigger(self.samples, c.trigger, c.position, c.alpha)

    def preview_png(self) -> bytes:
        """The stamped samples, enlarged, with a red frame around the trigger's place, as PNG bytes."""
        return plots.stamped_preview_png(self.stamped(), self.canvas.offset, self.canvas.size)

    def show(self):
        """A static picture of the trigger and the preview (a figure: it stays in a notebook saved with outputs)."""
        c = self.canvas
        pos = c.position if isinstance(c.position, str) else f"row {c.position[0]}, col {c.position[1]}"
        blank = "" if c.mask.any() else " (nothing painted yet: an all-black trigger)"
        return plots.trigger_strip(c.trigger, self.stamped(), f"stamped at {pos}, alpha {c.alpha:g}{blank}")

    def _state(self) -> tuple:
        """What a training depends on: the trigger's pixels, its place and its alpha."""
        c = self.canvas
        return c.trigger.numpy().tobytes(), tuple(c.trigger.shape), c.offset, c.alpha

    @property
    def results_stale(self) -> bool:
        """True when the trigger, its place or alpha changed since the last training."""
        return self._trained is not None and self._state() != self._trained

    # ------------------------------------------------------------------ training

    def train(self, **changes) -> Result:
        """Train a backdoored model with the painted trigger: ``pipeline.run(canvas.attack(...), budget)``.

        ``changes``: Attack fields (target, kind, rate, seed, ...) or Budget fields (epochs, train_limit, ...).
        """
        budget_keys = set(Budget().describe()) | {"device"}
        attack_keys = {"target", "kind", "rate", "count", "mode", "seed"}
        unknown = sorted(set(changes) - budget_keys - attack_keys)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; allowed: {', '.join(sorted(budget_keys | attack_keys))}")
        budget = self.budget.replace(**{k: v for k, v in changes.items() if k in budget_keys})
        attack_changes = {k: v for k, v in changes.items() if k not in budget_keys}
        base = {k: getattr(self.attack, k) for k in attack_keys}
        attack, state = self.canvas.attack(**{**base, **attack_changes}), self._state()
        epochs = budget.epochs
        self._progress(0, epochs + 1, "loading the data and poisoning it ...")

        def on_epoch(row: dict) -> None:
            self._progress(row["epoch"] + 1, epochs + 1, f"{epoch_label(row['epoch'], epochs)}: clean accuracy "
                                                         f"{row['clean_acc']:.3f}, ASR {row['asr']:.3f}")  # fmt: skip

        start = time.perf_counter()
        result = run(attack, budget, data_root=self.data_root, download=self.download, progress=False,
                     on_epoch=on_epoch)  # fmt: skip
        result.seconds = time.perf_counter() - start
        self.last_result, self._trained = result, state
        self._progress(epochs + 1, epochs + 1, "done")
        self._show_result(result)
        return result

    def results_figure(self, n: int = N_SAMPLES):
        """The last training's first triggered test images with their predictions (red: the backdoor fired)."""
        if self.last_result is None:
            raise ValueError("no training yet: call painter.train() or click 'Train with this trigger'")
        r = self.last_result
        k = min(n, len(r.setup.test_attack))
        target = r.attack.target if r.attack.kind == "all-to-one" else None
        true = r.setup.test.labels if target is None else r.setup.test.labels[r.setup.test.labels != target]
        return plots.prediction_grid(r.setup.test_attack.images[:k], r.triggered["preds"][:k],
                                     true[:k], r.setup.test.classes, target=target,
                                     title="triggered test images: true → predicted")  # fmt: skip

    # ------------------------------------------------------------------ the widget

    @property
    def widget(self):
        """The ipywidgets container to display."""
        return self._root

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._root)

    def _build_ui(self) -> None:
        tools, presets = self._paint_controls()
        self._place_controls()
        self._file_and_train_controls()
        self._wire_controls()
        self._lay_out(tools, presets)
        self._ui_built = True

    def _paint_controls(self) -> tuple[list, list]:
        """The grid, its size and brush, and the tool and preset buttons."""
        import ipywidgets as W

        wide = {"description_width": "90px"}
        self._grid = W.GridBox(layout=self._grid_layout(), _dom_classes=["painter-grid"])
        self._size_w = W.IntSlider(
            value=self.canvas.size,
            min=1,
            max=self.canvas.max_size,
            description="size N",
            continuous_update=False,
            style=wide,
        )
        if self.canvas.channels == 1:
            self._brush_w = W.IntSlider(
                value=self.canvas.brush, min=0, max=255, description="brush (grey)", continuous_update=False, style=wide
            )
        else:
            self._brush_w = W.ColorPicker(value=hex_color(self.canvas.brush), description="brush colour", style=wide)
        self._brush_w.add_class("painter-brush")
        self._size_w.add_class("painter-size")
        tools = []
        for label, action, cls in (
            ("Clear", self.canvas.clear, "painter-clear"),
            ("Invert", self.canvas.invert, "painter-invert"),
            ("Fill", self.canvas.fill, "painter-fill"),
        ):
            b = W.Button(description=label, layout=W.Layout(width="auto"), tooltip=f"{label} the grid")
            b.add_class(cls)
            b.on_click(lambda _b, action=action: self._ui(action))
            tools.append(b)
        presets = []
        for kind, label in PRESETS.items():
            b = W.Button(description=label, layout=W.Layout(width="auto"), tooltip=f"preset: {label}")
            b.add_class(f"painter-preset-{kind}")
            b.on_click(lambda _b, kind=kind: self._ui(self.canvas.apply_preset, kind))
            presets.append(b)
        return tools, presets

    def _place_controls(self) -> None:
        """Where the trigger goes (position, row, col), how strongly (alpha), and the preview."""
        import ipywidgets as W

        self._pos_w = W.Dropdown(options=[*POSITIONS, CUSTOM], description="position")
        self._row_w = W.BoundedIntText(
            min=0, max=self.canvas.image_hw[0] - 1, description="row", layout=W.Layout(width="150px")
        )
        self._col_w = W.BoundedIntText(
            min=0, max=self.canvas.image_hw[1] - 1, description="col", layout=W.Layout(width="150px")
        )
        self._alpha_w = W.FloatSlider(
            value=self.canvas.alpha, min=0.0, max=1.0, step=0.05, description="alpha", continuous_update=False
        )
        self._pos_w.add_class("painter-position")
        self._alpha_w.add_class("painter-alpha")
        self._preview_w = W.Image(format="png")
        self._preview_w.add_class("painter-preview")

    def _file_and_train_controls(self) -> None:
        """Save and load a trigger, the status line, and training with it."""
        import ipywidgets as W

        self._name_w = W.Text(placeholder="name", description="save as", layout=W.Layout(width="260px"))
        self._name_w.add_class("painter-name")
        self._save_w = W.Button(description="Save", icon="save", button_style="primary", layout=W.Layout(width="auto"))
        self._save_w.add_class("painter-save")
        self._load_path_w = W.Text(
            placeholder="name or path of a PNG", description="load", layout=W.Layout(width="300px")
        )
        self._load_path_w.add_class("painter-load-path")
        self._load_w = W.Button(description="Load", icon="folder-open", layout=W.Layout(width="auto"))
        self._load_w.add_class("painter-load")
        self._status_w = W.HTML()
        self._status_w.add_class("painter-status")
        self._train_w = W.Button(
            description="Train with this trigger", icon="play", button_style="warning", layout=W.Layout(width="auto")
        )
        self._train_w.add_class("painter-train")
        self._progress_w = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="300px"))
        self._progress_label_w = W.HTML()
        self._result_w = W.HTML()
        self._result_w.add_class("painter-result")
        self._result_img_w = W.Image(format="png", layout=W.Layout(display="none"))

    def _wire_controls(self) -> None:
        """What each control does."""
        self._size_w.observe(lambda ch: self._ui(self.canvas.resize, ch["new"]), names="value")
        self._brush_w.observe(lambda ch: self._ui(setattr, self.canvas, "brush", ch["new"]), names="value")
        self._pos_w.observe(lambda ch: self._ui(self._position_from_ui), names="value")
        self._row_w.observe(lambda ch: self._ui(self._position_from_ui), names="value")
        self._col_w.observe(lambda ch: self._ui(self._position_from_ui), names="value")
        self._alpha_w.observe(lambda ch: self._ui(setattr, self.canvas, "alpha", ch["new"]), names="value")
        self._save_w.on_click(lambda _b: self._ui(self.canvas.save, self._name_w.value.strip()))
        self._load_w.on_click(lambda _b: self._ui(self.canvas.load, self._load_path_w.value.strip()))
        self._train_w.on_click(lambda _b: self._on_train())

    def _lay_out(self, tools: list, presets: list) -> None:
        import ipywidgets as W

        left = W.VBox(
            [
                W.HTML("<b>Paint</b> (click a cell to paint it, click again to erase)"),
                self._grid,
                self._size_w,
                self._brush_w,
                W.HBox(tools),
                W.HBox(presets),
            ],
            layout=W.Layout(margin="0 24px 0 0"),
        )
        right = W.VBox(
            [
                W.HTML("<b>Where</b> the trigger goes, and how strongly"),
                self._pos_w,
                W.HBox([self._row_w, self._col_w]),
                self._alpha_w,
                W.HTML("<b>Preview</b> (red frame: the trigger's place, not part of the image)"),
                self._preview_w,
            ]
        )
        self._root = W.VBox(
            [
                W.HBox([left, right]),
                W.HBox([self._name_w, self._save_w, self._load_path_w, self._load_w]),
                self._status_w,
                W.HBox([self._train_w, self._progress_w, self._progress_label_w]),
                self._result_w,
                self._result_img_w,
            ]
        )
        self._root.add_class("painter-root")

    def _cell(self, r: int, c: int):
        import ipywidgets as W

        if (r, c) not in self._cells:
            # Every cell is born with its final size, colour and classes: state sent in separate updates right after
            # a widget's creation can reach a slow (ipywidgets 7) frontend out of step, leaving cells unsized.
            px = f"{self._cell_px()}px"
            color, on = self._cell_look(r, c)
            cell = W.Button(
                description="",
                tooltip=f"r{r}c{c}",
                layout=W.Layout(padding="0", margin="0", border="1px solid #9e9e9e", width=px, height=px),
                style=W.ButtonStyle(button_color=color),
                _dom_classes=["painter-cell", f"painter-cell-r{r}-c{c}", *(["painter-on"] if on else [])],
            )
            self._shown[(r, c)] = f"{color}{on}"
            cell.on_click(lambda _b, r=r, c=c: self._ui(self.canvas.toggle, r, c))
            self._cells[(r, c)] = cell
        return self._cells[(r, c)]

    def _cell_px(self) -> int:
        """The side of one grid cell on screen, in pixels: smaller cells for bigger triggers."""
        return max(12, min(28, 300 // self.canvas.size))

    def _grid_layout(self):
        import ipywidgets as W

        n, px = self.canvas.size, self._cell_px()
        return W.Layout(grid_gap="1px", width="max-content", grid_template_columns=f"repeat({n}, {px}px)")

    def _cell_look(self, r: int, c: int) -> tuple[str, bool]:
        """Cell (r, c)'s colour (``#rrggbb``) and whether it is painted."""
        return hex_color(tuple(self.canvas.trigger[:, r, c].tolist())), bool(self.canvas.mask[r, c])

    def cell(self, r: int, c: int):
        """The grid's button for cell (r, c) (``.click()`` it to click it)."""
        return self._cells[self.canvas._check_cell(r, c)]

    def _ui(self, fn, *args):
        """Run what a control asked for; a problem goes to the status line instead of a traceback."""
        if self._syncing:
            return None
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001 — shown to the student, not swallowed silently
            kind = "" if isinstance(err, ValueError) else f"{type(err).__name__}: "
            self._status(f"{kind}{err}", error=True)
            self._sync_controls()
            return None

    def _position_from_ui(self) -> None:
        choice = self._pos_w.value
        self.canvas.position = (self._row_w.value, self._col_w.value) if choice == CUSTOM else choice

    def _status(self, message: str, error: bool = False) -> None:
        self.status = message
        if getattr(self, "_ui_built", False):
            color = "#b00020" if error else "#1b5e20"
            icon = "⚠ " if error else ""
            self._status_w.value = f'<span style="color:{color}">{icon}{html.escape(message)}</span>'

    def _changed(self, message: str) -> None:
        if not getattr(self, "_ui_built", False):
            return
        self._sync_cells()
        self._sync_controls()
        self._preview_w.value = self.preview_png()
        self._status(message)
        self._mark_results()

    def _mark_results(self) -> None:
        """The last training's numbers and images, or — once the trigger has changed — a note that they are stale."""
        if self.last_result is None:
            return
        stale = self.results_stale
        if stale:
            self._result_w.value = (
                '<div style="color:#8a4b00">⚠ Results of the trigger trained before your last change: press '
                "<i>Train with this trigger</i> again.</div>"
                f'<div style="color:#9e9e9e;text-decoration:line-through">{self._result_html}</div>'
            )
            self._result_w.add_class("painter-stale")
        else:
            self._result_w.value = self._result_html
            self._result_w.remove_class("painter-stale")
        self._result_img_w.layout.display = "none" if stale else ""

    def _sync_cells(self) -> None:

        n, px = self.canvas.size, self._cell_px()
        cells = [self._cell(r, c) for r in range(n) for c in range(n)]
        if list(self._grid.children) != cells:
            for cell in cells:
                if cell.layout.width != f"{px}px":
                    cell.layout.width = cell.layout.height = f"{px}px"
            self._grid.layout = self._grid_layout()
            self._grid.children = cells
        for r in range(n):
            for c in range(n):
                color, on = self._cell_look(r, c)
                key = f"{color}{on}"
                if self._shown.get((r, c)) == key:
                    continue
                cell = self._cells[(r, c)]
                cell.style.button_color = color
                if on:
                    cell.add_class("painter-on")
                else:
                    cell.remove_class("painter-on")
                self._shown[(r, c)] = key

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            self._size_w.value = self.canvas.size
            brush = self.canvas.brush
            self._brush_w.value = brush if isinstance(brush, int) else hex_color(brush)
            position = self.canvas.position
            custom = not isinstance(position, str)
            self._pos_w.value = CUSTOM if custom else position
            self._row_w.value, self._col_w.value = self.canvas.offset
            self._row_w.disabled = self._col_w.disabled = not custom
            self._alpha_w.value = self.canvas.alpha
        finally:
            self._syncing = False

    def _progress(self, value: int, maximum: int, message: str) -> None:
        self._progress_w.max = maximum
        self._progress_w.value = value
        self._progress_label_w.value = html.escape(message)

    def _on_train(self) -> None:
        self._train_w.disabled = True
        self._progress_w.bar_style = "info"
        self._status("training ...")
        try:
            result = self._ui(self.train)
            self._progress_w.bar_style = "success" if result is not None else "danger"
        finally:
            self._train_w.disabled = False

    def _show_result(self, result: Result) -> None:
        s = result.setup.settings
        target = DATASETS[self.dataset]["classes"][result.attack.target]
        self._result_html = (
            f"<b>Clean accuracy (TCA): {result.tca:.4f}</b> &nbsp; "
            f"<b>Attack success rate (ASR): {result.asr:.4f}</b><br>"
            f"{s['poison_count']:,} of {s['train_size']:,} training images poisoned, target "
            f"{html.escape(target)}, {len(result.history)} epoch(s), {result.seconds:.0f} s"
        )
        self._result_img_w.value = plots.figure_png(self.results_figure())
        self._mark_results()
        self._status(f"trained: TCA {result.tca:.4f}, ASR {result.asr:.4f}")
