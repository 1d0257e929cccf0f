"""Paint your own trigger: an ipywidgets painter with a live preview, save/load and one-click training.

``TriggerPainter`` keeps the trigger as a uint8 tensor (C, N, N) and shows it as an N×N grid of
clickable cells. Every button and slider of the widget calls the painter's Python API
(``toggle``, ``set_pixel``, ``apply_preset``, ``invert``, ``fill``, ``clear``, ``resize``, ``save``,
``load``, ``train``), so whatever a student can click can also be done, and tested, from code::

    painter = TriggerPainter("MNIST", size=5)
    painter.widget                     # display it in JupyterLab / Colab
    painter.toggle(0, 0)               # the same as clicking the top-left cell

The whole N×N patch is stamped on the image, as the CLI does: unpainted (black) cells are part of the
trigger too. ``painter.mask`` tells which cells are painted (not black).
"""

from __future__ import annotations

import html
import io
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from .data import DATASETS, ImageData, canonical_name, load_dataset
from .triggers import POSITIONS, TRIGGER_DIR, apply_trigger, load_trigger, make_trigger, save_trigger, trigger_position

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PRESETS = {"white": "White square", "checkerboard": "Checkerboard", "pixel": "Single pixel", "l_shape": "L shape"}
CUSTOM = "custom (row, col)"
N_SAMPLES = 8
PREVIEW_SCALE = 4
QUICK_TRAINING = {
    "train_limit": 10_000,
    "test_limit": 2_000,
    "epochs": 3,
    "batch_size": 64,
    "lr": 2e-3,
    "poisoning_rate": 0.1,
    "trigger_label": 1,
    "attack": "all-to-one",
    "seed": 0,
    "device": "auto",
}


def check_name(name: str) -> str:
    """A trigger name for ``triggers/<name>.png``: 1 to 64 letters, digits, '_' or '-'."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid trigger name {name!r}: use 1 to 64 letters, digits, '_' or '-' (no dots, slashes or spaces)"
        )
    return name


def _hex(values: tuple[int, ...]) -> str:
    rgb = values * 3 if len(values) == 1 else values
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class TriggerPainter:
    """Paint an N×N trigger, see it stamped on sample images, save it, and train a BadNet with it.

    dataset: ``"MNIST"`` (grey brush) or ``"CIFAR10"`` (colour brush).
    samples: ImageData with images to preview the trigger on (the first 8 are used); None loads one
        test image of each of the classes 0..7 from ``data_root``.
    size: the trigger side N, 1..min(image height, width).
    save_dir: where ``save(name)`` writes ``<name>.png`` (default: the repository's ``triggers/``).
    data_root: data for the sample images and for ``train`` ($BADNETS_DATA or ./data when None).
    train_settings: overrides of ``QUICK_TRAINING`` used by the "Train with this trigger" button.
    """

    def __init__(
        self,
        dataset: str = "MNIST",
        samples: ImageData | None = None,
        size: int = 5,
        save_dir: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None,
        position: str | tuple[int, int] = "bottom-right",
        alpha: float = 1.0,
        brush=255,
        preset: str | None = None,
        train_settings: dict | None = None,
        download: bool = False,
    ) -> None:
        self.dataset = canonical_name(dataset)
        self.channels, height, width = DATASETS[self.dataset]["shape"]
        self.image_hw = (height, width)
        self.max_size = min(height, width)
        self.save_dir = Path(save_dir) if save_dir is not None else TRIGGER_DIR
        self.data_root = data_root
        self.download = download
        self.samples = self._pick_samples(samples)
        self._pixels = torch.zeros(self.channels, self._check_size(size), size, dtype=torch.uint8)
        self._position: str | tuple[int, int] = "bottom-right"
        self._alpha = 1.0
        self._brush = self._color(brush)
        self.train_settings: dict = dict(QUICK_TRAINING)
        self.train_settings.update(self._check_train_settings(train_settings or {}))
        self.last_result: dict | None = None
        self._syncing = False
        self._ui_built = False
        self._cells: dict[tuple[int, int], object] = {}
        self._shown: dict[tuple[int, int], str] = {}
        self.position = position
        self.alpha = alpha
        if preset is not None:
            self._pixels = self._preset_tensor(preset, size)
        self._build_ui()
        self._changed("click the cells to paint a trigger")

    # ------------------------------------------------------------------ state

    @property
    def size(self) -> int:
        """The trigger side N."""
        return self._pixels.shape[-1]

    @property
    def trigger(self) -> torch.Tensor:
        """The painted trigger, uint8 (C, N, N) — a copy."""
        return self._pixels.clone()

    @property
    def mask(self) -> torch.Tensor:
        """bool (N, N): the painted cells (those that are not black)."""
        return self._pixels.amax(0) > 0

    @property
    def position(self) -> str | tuple[int, int]:
        """Where the trigger goes: a corner name (see ``triggers.POSITIONS``) or a (row, col) offset."""
        return self._position

    @position.setter
    def position(self, value) -> None:
        if not isinstance(value, str):
            try:
                value = tuple(int(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"position must be one of {', '.join(POSITIONS)} or (row, col), got {value!r}"
                ) from None
            if len(value) != 2:
                raise ValueError(f"position must be (row, col), got {value!r}")
        trigger_position(self.image_hw, (self.size, self.size), value)  # raises a clear ValueError
        self._position = value
        self._changed(f"position: {value if isinstance(value, str) else f'row {value[0]}, col {value[1]}'}")

    @property
    def offset(self) -> tuple[int, int]:
        """The top-left (row, col) of the trigger in the image, whatever ``position`` is."""
        return trigger_position(self.image_hw, (self.size, self.size), self._position)

    @property
    def alpha(self) -> float:
        """Blend factor: 1 pastes the trigger, 0.5 mixes it half and half with the image."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"alpha must be a number in [0, 1], got {value!r}") from None
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {value}")
        self._alpha = value
        self._changed(f"alpha: {value:g}")

    @property
    def brush(self) -> int | tuple[int, int, int]:
        """The paint: a grey level 0..255 (MNIST) or an (r, g, b) colour (CIFAR-10)."""
        return self._brush[0] if self.channels == 1 else self._brush

    @brush.setter
    def brush(self, value) -> None:
        self._brush = self._color(value)
        self._changed(f"brush: {self.brush}")

    def _color(self, value) -> tuple[int, ...]:
        """A paint value as one uint8 per channel: an int (grey), '#rrggbb', or a per-channel sequence."""
        if isinstance(value, str):
            m = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", value.strip())
            if not m:
                raise ValueError(f"colour {value!r} is not of the form '#rrggbb'")
            digits = m.group(1) if len(m.group(1)) == 6 else "".join(ch * 2 for ch in m.group(1))
            rgb = tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
            if self.channels == 1:
                return (round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]),)
            return rgb
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        if isinstance(value, (list, tuple, np.ndarray)):
            values = list(value)
            if len(values) == 1:
                values = values * self.channels
            if len(values) != self.channels:
                raise ValueError(f"a {self.dataset} pixel has {self.channels} channel(s), got {value!r}")
        else:
            values = [value] * self.channels
        out = []
        for v in values:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"pixel values must be integers 0..255, got {value!r}")
            if v != int(v) or not 0 <= v <= 255:
                raise ValueError(f"pixel values must be integers 0..255, got {value!r}")
            out.append(int(v))
        return tuple(out)

    def _check_size(self, n) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= self.max_size:
            raise ValueError(f"trigger size must be an integer from 1 to {self.max_size} for {self.dataset}, got {n!r}")
        return int(n)

    def _check_cell(self, r, c) -> tuple[int, int]:
        n = self.size
        for v in (r, c):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
                raise ValueError(f"cell ({r}, {c}) is outside the {n}×{n} grid; rows and columns are 0..{n - 1}")
        return int(r), int(c)

    def _check_train_settings(self, settings: dict) -> dict:
        unknown = set(settings) - set(QUICK_TRAINING)
        if unknown:
            raise ValueError(f"unknown training setting(s) {sorted(unknown)}; allowed: {', '.join(QUICK_TRAINING)}")
        return settings

    # ------------------------------------------------------------------ painting

    def set_pixel(self, r: int, c: int, value=None) -> None:
        """Paint cell (r, c) with ``value`` (the brush when None); 0 erases it."""
        r, c = self._check_cell(r, c)
        color = self._brush if value is None else self._color(value)
        self._pixels[:, r, c] = torch.tensor(color, dtype=torch.uint8)
        self._changed(f"{'erased' if max(color) == 0 else 'painted'} r{r}c{c}")

    def erase(self, r: int, c: int) -> None:
        """Make cell (r, c) black."""
        self.set_pixel(r, c, 0)

    def toggle(self, r: int, c: int) -> bool:
        """What a click does: paint an unpainted cell with the brush, erase a painted one. Returns the new state."""
        r, c = self._check_cell(r, c)
        if self.mask[r, c]:
            self.erase(r, c)
        else:
            self.set_pixel(r, c)
        return bool(self.mask[r, c])

    def clear(self) -> None:
        """All cells black."""
        self._pixels.zero_()
        self._changed("cleared")

    def fill(self, value=None) -> None:
        """All cells ``value`` (the brush when None)."""
        color = self._brush if value is None else self._color(value)
        self._pixels[:] = torch.tensor(color, dtype=torch.uint8)[:, None, None]
        self._changed(f"filled with {color[0] if self.channels == 1 else color}")

    def invert(self) -> None:
        """Every value v becomes 255 - v: painted cells turn black and black ones white."""
        self._pixels = 255 - self._pixels
        self._changed("inverted")

    def _preset_tensor(self, name: str, size: int) -> torch.Tensor:
        key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
        aliases = {label.lower().replace(" ", "_"): kind for kind, label in PRESETS.items()}
        kind = key if key in PRESETS else aliases.get(key)
        if kind is None:
            raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
        return make_trigger(kind, size, self.channels)

    def apply_preset(self, name: str) -> None:
        """A built-in pattern at the current size: white, checkerboard, pixel or l_shape (or their labels)."""
        self._pixels = self._preset_tensor(name, self.size)
        self._changed(f"preset: {name}")

    def set_trigger(self, trigger: torch.Tensor) -> None:
        """Put a uint8 (C, n, n) or (n, n) pattern into the grid (resizing it to n)."""
        if not isinstance(trigger, torch.Tensor) or trigger.dtype != torch.uint8:
            raise ValueError("a trigger must be a uint8 tensor (C, n, n)")
        if trigger.dim() == 2:
            trigger = trigger[None]
        if trigger.dim() != 3 or trigger.shape[-1] != trigger.shape[-2]:
            raise ValueError(f"a trigger must be square (C, n, n), got shape {tuple(trigger.shape)}")
        if trigger.shape[0] == 1 and self.channels == 3:
            trigger = trigger.expand(3, -1, -1)
        if trigger.shape[0] != self.channels:
            raise ValueError(f"a {self.dataset} trigger has {self.channels} channel(s), got {trigger.shape[0]}")
        n = self._check_size(trigger.shape[-1])
        self._pixels = trigger.clone().contiguous()
        self._fit_position(n)
        self._changed(f"{n}×{n} trigger loaded")

    def resize(self, n: int) -> None:
        """Change the grid to n×n (1..image size), keeping the top-left part of the painting."""
        n = self._check_size(n)
        new = torch.zeros(self.channels, n, n, dtype=torch.uint8)
        k = min(n, self.size)
        new[:, :k, :k] = self._pixels[:, :k, :k]
        self._pixels = new
        self._fit_position(n)
        self._changed(f"size {n}×{n}")

    def _fit_position(self, n: int) -> None:
        """Keep a custom (row, col) offset inside the image after a size change."""
        if not isinstance(self._position, str):
            h, w = self.image_hw
            self._position = (min(self._position[0], h - n), min(self._position[1], w - n))

    # ------------------------------------------------------------------ files

    def save(self, name: str) -> Path:
        """Write the trigger to ``<save_dir>/<name>.png`` atomically; returns the path."""
        path = self.save_dir / f"{check_name(name)}.png"
        save_trigger(self._pixels, path)
        self._status(f"saved {self.save_dir.name}/{path.name}")
        return path

    def _resolve(self, path) -> Path:
        if isinstance(path, str) and NAME_PATTERN.fullmatch(path.strip()) and not Path(path).exists():
            return self.save_dir / f"{path.strip()}.png"
        return Path(path)

    def load(self, path: str | os.PathLike) -> torch.Tensor:
        """Load a square PNG at its own size into the grid; ``path`` may also be a name in ``save_dir``."""
        from PIL import Image, UnidentifiedImageError

        path = self._resolve(path)
        if not path.is_file():
            raise ValueError(f"cannot load trigger {path.name!r}: no such file")
        try:
            with Image.open(path) as img:
                w, h = img.size
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot load trigger {path.name!r}: not an image ({type(err).__name__})") from None
        if w != h:
            raise ValueError(f"cannot load trigger {path.name!r}: it is {w}×{h}, the painter needs a square image")
        if not 1 <= w <= self.max_size:
            raise ValueError(f"cannot load trigger {path.name!r}: {w}×{h} is larger than a {self.dataset} image")
        self.set_trigger(load_trigger(path, w, self.channels))
        self._status(f"loaded {path.name} ({w}×{h})")
        return self.trigger

    # ------------------------------------------------------------------ preview

    def _pick_samples(self, samples: ImageData | None) -> torch.Tensor:
        shape = DATASETS[self.dataset]["shape"]
        if samples is None:
            test = load_dataset(self.dataset, train=False, root=self.data_root, download=self.download)
            firsts = [int(torch.nonzero(test.labels == k)[0]) for k in range(N_SAMPLES) if (test.labels == k).any()]
            return test.images[firsts].clone()
        if not isinstance(samples, ImageData):
            raise ValueError(f"samples must be an ImageData, got {type(samples).__name__}")
        if samples.image_shape != shape or len(samples) == 0:
            raise ValueError(f"samples must be {self.dataset} images of shape {shape}, got {samples.image_shape}")
        return samples.images[:N_SAMPLES].clone()

    def stamped(self) -> torch.Tensor:
        """The sample images with the trigger stamped (where and how strongly the painter says)."""
        return apply_trigger(self.samples, self._pixels, self._position, self._alpha)

    def preview_png(self, outline: bool = True) -> bytes:
        """The stamped samples, enlarged, in two rows, as PNG bytes; a red frame marks the trigger."""
        from PIL import Image, ImageDraw

        images = self.stamped()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        n, _, h, w = images.shape
        s, gap, cols = PREVIEW_SCALE, 4, 4
        rows = (n + cols - 1) // cols
        canvas = Image.new("RGB", (cols * (w * s + gap) - gap, rows * (h * s + gap) - gap), "white")
        draw = ImageDraw.Draw(canvas)
        r0, c0 = self.offset
        k = self.size
        for i in range(n):
            tile = Image.fromarray(images[i].permute(1, 2, 0).numpy()).resize((w * s, h * s), Image.NEAREST)
            x, y = (i % cols) * (w * s + gap), (i // cols) * (h * s + gap)
            canvas.paste(tile, (x, y))
            if outline:
                draw.rectangle([x + c0 * s - 1, y + r0 * s - 1, x + (c0 + k) * s, y + (r0 + k) * s], outline="red")
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        return buf.getvalue()

    def show(self) -> None:
        """A static (matplotlib) picture of the trigger and the preview, for notebooks saved with outputs."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 1 + len(self.samples), figsize=(1.5 * (1 + len(self.samples)), 1.9))
        axes[0].imshow(self._rgb(self._pixels), vmin=0, vmax=255, interpolation="nearest")
        axes[0].set_title(f"trigger {self.size}×{self.size}", fontsize=9)
        axes[0].set_xticks(np.arange(-0.5, self.size, 1), minor=True)
        axes[0].set_yticks(np.arange(-0.5, self.size, 1), minor=True)
        axes[0].grid(which="minor", color="#888", linewidth=0.5)
        axes[0].tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        for ax, img in zip(axes[1:], self.stamped(), strict=True):
            ax.imshow(self._rgb(img), vmin=0, vmax=255, interpolation="nearest")
            ax.set_axis_off()
        pos = self._position if isinstance(self._position, str) else f"row {self._position[0]}, col {self._position[1]}"
        fig.suptitle(f"stamped at {pos}, alpha {self._alpha:g}", fontsize=10)
        fig.tight_layout()
        plt.show()

    @staticmethod
    def _rgb(img: torch.Tensor) -> np.ndarray:
        array = img.numpy()
        return np.repeat(array[0][..., None], 3, axis=2) if array.shape[0] == 1 else array.transpose(1, 2, 0)

    # ------------------------------------------------------------------ training

    def train(self, **overrides) -> dict:
        """Train a backdoored model with the painted trigger (experiment.prepare/run/final_metrics).

        Settings: ``train_settings`` updated with ``overrides`` (train_limit, test_limit, epochs,
        batch_size, lr, poisoning_rate, trigger_label, attack, seed, device). Returns a dict with
        ``tca``, ``asr``, ``history``, ``settings``, ``model``, ``seconds`` and 8 triggered test images
        (``examples``) with their predictions (``example_preds``) and the attacker's labels (``example_targets``).
        """
        from .experiment import final_metrics, prepare, run

        s = {**self.train_settings, **self._check_train_settings(overrides)}
        epochs = int(s["epochs"])
        start = time.perf_counter()
        self._progress(0, epochs + 2, "loading the data and poisoning it ...")
        setup = prepare(
            self.dataset, trigger=self.trigger, poisoning_rate=s["poisoning_rate"], trigger_label=s["trigger_label"],
            attack=s["attack"], position=self._position, alpha=self._alpha, seed=s["seed"],
            train_limit=s["train_limit"], test_limit=s["test_limit"], data_root=self.data_root, download=self.download,
        )  # fmt: skip
        self._progress(1, epochs + 2, f"training epoch 1/{epochs} ...")

        def on_epoch(row: dict) -> None:
            done = row["epoch"] + 1
            self._progress(
                1 + done,
                epochs + 2,
                f"epoch {done}/{epochs}: clean accuracy {row['clean_acc']:.3f}, ASR {row['asr']:.3f}",
            )

        model, history = run(
            setup, epochs=epochs, batch_size=s["batch_size"], lr=s["lr"], device=s["device"], progress=False,
            on_epoch=on_epoch,
        )  # fmt: skip
        metrics = final_metrics(model, setup)
        k = min(N_SAMPLES, len(setup.test_attack))
        result = {
            "tca": metrics["tca"],
            "asr": metrics["asr"],
            "history": history,
            "settings": setup.settings,
            "model": model,
            "seconds": time.perf_counter() - start,
            "examples": setup.test_attack.images[:k].clone(),
            "example_preds": metrics["attack"]["preds"][:k].clone(),
            "example_targets": setup.test_attack.labels[:k].clone(),
        }
        self.last_result = result
        self._progress(epochs + 2, epochs + 2, "done")
        self._show_result(result)
        return result

    def _examples_png(self, result: dict) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        images = result["examples"]
        fig = Figure(figsize=(1.3 * max(len(images), 1), 1.6))
        FigureCanvasAgg(fig)
        for i, (img, pred, target) in enumerate(
            zip(images, result["example_preds"], result["example_targets"], strict=True)
        ):
            ax = fig.add_subplot(1, len(images), i + 1)
            ax.imshow(self._rgb(img), vmin=0, vmax=255, interpolation="nearest")
            ok = int(pred) == int(target)
            ax.set_title(f"pred {self._label(int(pred))}", fontsize=9, color="green" if ok else "red")
            ax.set_axis_off()
        fig.suptitle("triggered test images (green: the backdoor fired)", fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        return buf.getvalue()

    def _label(self, k: int) -> str:
        return DATASETS[self.dataset]["classes"][k]

    def show_results(self) -> None:
        """A static picture of the last training's triggered test images and their predictions."""
        if self.last_result is None:
            raise ValueError("no training yet: call painter.train() or click 'Train with this trigger'")
        from IPython.display import Image, display

        display(Image(data=self._examples_png(self.last_result)))

    # ------------------------------------------------------------------ the widget

    @property
    def widget(self):
        """The ipywidgets container to display."""
        return self._root

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._root)

    def _build_ui(self) -> None:
        import ipywidgets as W

        wide = {"description_width": "90px"}
        self._grid = W.GridBox(layout=W.Layout(grid_gap="1px", width="max-content"))
        self._grid.add_class("painter-grid")
        self._size_w = W.IntSlider(
            value=self.size, min=1, max=self.max_size, description="size N", continuous_update=False, style=wide
        )
        if self.channels == 1:
            self._brush_w = W.IntSlider(
                value=self._brush[0], min=0, max=255, description="brush (grey)", continuous_update=False, style=wide
            )
        else:
            self._brush_w = W.ColorPicker(value=_hex(self._brush), description="brush colour", style=wide)
        self._brush_w.add_class("painter-brush")
        self._size_w.add_class("painter-size")
        tools = []
        for label, action, cls in (
            ("Clear", self.clear, "painter-clear"),
            ("Invert", self.invert, "painter-invert"),
            ("Fill", self.fill, "painter-fill"),
        ):
            b = W.Button(description=label, layout=W.Layout(width="auto"), tooltip=f"{label} the grid")
            b.add_class(cls)
            b.on_click(lambda _b, action=action: self._ui(action))
            tools.append(b)
        presets = []
        for kind, label in PRESETS.items():
            b = W.Button(description=label, layout=W.Layout(width="auto"), tooltip=f"preset: {label}")
            b.add_class(f"painter-preset-{kind}")
            b.on_click(lambda _b, kind=kind: self._ui(self.apply_preset, kind))
            presets.append(b)
        self._pos_w = W.Dropdown(options=[*POSITIONS, CUSTOM], description="position")
        self._row_w = W.BoundedIntText(
            min=0, max=self.image_hw[0] - 1, description="row", layout=W.Layout(width="150px")
        )
        self._col_w = W.BoundedIntText(
            min=0, max=self.image_hw[1] - 1, description="col", layout=W.Layout(width="150px")
        )
        self._alpha_w = W.FloatSlider(
            value=self._alpha, min=0.0, max=1.0, step=0.05, description="alpha", continuous_update=False
        )
        self._pos_w.add_class("painter-position")
        self._alpha_w.add_class("painter-alpha")
        self._preview_w = W.Image(format="png")
        self._preview_w.add_class("painter-preview")
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

        self._size_w.observe(lambda ch: self._ui(self.resize, ch["new"]), names="value")
        self._brush_w.observe(lambda ch: self._ui(setattr, self, "brush", ch["new"]), names="value")
        self._pos_w.observe(lambda ch: self._ui(self._position_from_ui), names="value")
        self._row_w.observe(lambda ch: self._ui(self._position_from_ui), names="value")
        self._col_w.observe(lambda ch: self._ui(self._position_from_ui), names="value")
        self._alpha_w.observe(lambda ch: self._ui(setattr, self, "alpha", ch["new"]), names="value")
        self._save_w.on_click(lambda _b: self._ui(self.save, self._name_w.value.strip()))
        self._load_w.on_click(lambda _b: self._ui(self.load, self._load_path_w.value.strip()))
        self._train_w.on_click(lambda _b: self._on_train())

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
        self._ui_built = True

    def _cell(self, r: int, c: int):
        import ipywidgets as W

        if (r, c) not in self._cells:
            layout = W.Layout(padding="0", margin="0", border="1px solid #9e9e9e")
            cell = W.Button(description="", tooltip=f"r{r}c{c}", layout=layout)
            cell.add_class("painter-cell")
            cell.add_class(f"painter-cell-r{r}-c{c}")
            cell.on_click(lambda _b, r=r, c=c: self._ui(self.toggle, r, c))
            self._cells[(r, c)] = cell
        return self._cells[(r, c)]

    def cell(self, r: int, c: int):
        """The grid's button for cell (r, c) (``.click()`` it to click it)."""
        return self._cells[self._check_cell(r, c)]

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
        self.position = (self._row_w.value, self._col_w.value) if choice == CUSTOM else choice

    def _status(self, message: str, error: bool = False) -> None:
        self.status = message
        if self._ui_built:
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

    def _sync_cells(self) -> None:
        import ipywidgets as W

        n = self.size
        px = max(12, min(28, 300 // n))
        cells = [self._cell(r, c) for r in range(n) for c in range(n)]
        if list(self._grid.children) != cells:
            for cell in cells:
                cell.layout.width = cell.layout.height = f"{px}px"
            self._grid.layout = W.Layout(
                grid_gap="1px", width="max-content", grid_template_columns=f"repeat({n}, {px}px)"
            )
            self._grid.children = cells
        mask = self.mask
        for r in range(n):
            for c in range(n):
                color = _hex(tuple(self._pixels[:, r, c].tolist()))
                on = bool(mask[r, c])
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
            self._size_w.value = self.size
            if self.channels == 1:
                self._brush_w.value = self._brush[0]
            else:
                self._brush_w.value = _hex(self._brush)
            custom = not isinstance(self._position, str)
            self._pos_w.value = CUSTOM if custom else self._position
            r, c = self.offset
            self._row_w.value, self._col_w.value = r, c
            self._row_w.disabled = self._col_w.disabled = not custom
            self._alpha_w.value = self._alpha
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

    def _show_result(self, result: dict) -> None:
        s = result["settings"]
        self._result_w.value = (
            f"<b>Clean accuracy (TCA): {result['tca']:.4f}</b> &nbsp; "
            f"<b>Attack success rate (ASR): {result['asr']:.4f}</b><br>"
            f"{s['poison_count']:,} of {s['train_size']:,} training images poisoned, target "
            f"{html.escape(self._label(s['trigger_label']))}, {len(result['history'])} epoch(s), "
            f"{result['seconds']:.0f} s"
        )
        self._result_img_w.value = self._examples_png(result)
        self._result_img_w.layout.display = ""
        self._status(f"trained: TCA {result['tca']:.4f}, ASR {result['asr']:.4f}")
