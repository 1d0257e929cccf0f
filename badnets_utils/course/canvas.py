"""A trigger you paint cell by cell: the painter's state and logic, usable from plain Python.

``TriggerCanvas`` holds an N×N uint8 trigger (C, N, N), where it goes and how strongly it is blended.
It imports neither ipywidgets nor matplotlib: the widget in ``painter.py`` is a thin view over it, and
everything a student can click can also be done, and tested, from code::

    canvas = TriggerCanvas("MNIST", size=5)
    canvas.toggle(0, 0)                    # what a click on the top-left cell does
    canvas.apply_preset("checkerboard")
    attack = canvas.attack(target=7)       # an Attack with this trigger, place and alpha

The whole N×N patch is stamped on the image, as the CLI does: unpainted (black) cells are part of the
trigger too. ``canvas.mask`` tells which cells are painted (not black).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from badnets_utils.core.config import Attack
from badnets_utils.core.data import DATASETS, canonical_name
from badnets_utils.core.triggers import (
    BUILTIN_TRIGGERS,
    POSITIONS,
    TRIGGER_DIR,
    load_trigger,
    make_trigger,
    save_trigger,
    trigger_position,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PRESETS = {"white": "White square", "checkerboard": "Checkerboard", "pixel": "Single pixel", "l_shape": "L shape"}
SAVE_DIR = TRIGGER_DIR.parent / "runs" / "triggers"  # painted triggers go here, never into the shipped triggers/


def check_name(name: str) -> str:
    """A trigger name for ``<save_dir>/<name>.png``: 1 to 64 letters, digits, '_' or '-', not a shipped trigger's."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid trigger name {name!r}: use 1 to 64 letters, digits, '_' or '-' (no dots, slashes or spaces)"
        )
    if name in BUILTIN_TRIGGERS.values() or (TRIGGER_DIR / f"{name}.png").exists():
        raise ValueError(f"trigger name {name!r} is a shipped trigger's; choose another name")
    return name


def shown_path(path: Path) -> str:
    """A file's name as the status line shows it: relative to the repository (``runs/triggers/x.png``) or to the
    working folder when it lies below one of them, else in full."""
    path = Path(path).resolve()
    for base in (TRIGGER_DIR.parent, Path.cwd()):
        if path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix()
    return path.as_posix()


def hex_color(values: tuple[int, ...]) -> str:
    """'#rrggbb' of a grey level (1 value) or an RGB colour (3 values)."""
    rgb = values * 3 if len(values) == 1 else values
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class TriggerCanvas:
    """An N×N trigger with its place and blend factor.

    dataset: ``"MNIST"``/``"FashionMNIST"`` (grey brush) or ``"CIFAR10"`` (colour brush).
    size: the trigger side N, 1..min(image height, width).
    save_dir: where ``save(name)`` writes ``<name>.png`` (default: ``runs/triggers/``).
    on_change: called with a short message after every change (the widget redraws itself there).
    """

    def __init__(
        self,
        dataset: str = "MNIST",
        size: int = 5,
        position: str | tuple[int, int] = "bottom-right",
        alpha: float = 1.0,
        brush=255,
        preset: str | None = None,
        save_dir: str | os.PathLike | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.dataset = canonical_name(dataset)
        self.channels, height, width = DATASETS[self.dataset]["shape"]
        self.image_hw = (height, width)
        self.max_size = min(height, width)
        self.save_dir = Path(save_dir) if save_dir is not None else SAVE_DIR
        self.on_change = None
        self._pixels = torch.zeros(self.channels, self._check_size(size), size, dtype=torch.uint8)
        self._position: str | tuple[int, int] = "bottom-right"
        self._alpha = 1.0
        self._brush = self._color(brush)
        self.position = position
        self.alpha = alpha
        if preset is not None:
            self._pixels = self._preset_tensor(preset, size)
        self.on_change = on_change

    def _changed(self, message: str) -> None:
        if self.on_change is not None:
            self.on_change(message)

    # ------------------------------------------------------------------ state

    @property
    def size(self) -> int:
        """The trigger side N."""
        return self._pixels.shape[-1]

    @property
    def trigger(self) -> torch.Tensor:
        """The painted trigger, uint8 (C, N, N) — a copy."""
        return self._pixels.clone()

    def to_tensor(self) -> torch.Tensor:
        """The painted trigger, uint8 (C, N, N) — a copy (the same as ``trigger``)."""
        return self.trigger

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
        """The paint: a grey level 0..255 (one channel) or an (r, g, b) colour (three)."""
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
        """Put a uint8 (C, n, n) or (n, n) pattern into the grid (the grid becomes n×n)."""
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
        self._changed(f"saved as {shown_path(path)}")
        return path

    def resolve(self, path) -> Path:
        """A name in ``save_dir`` (or in the shipped triggers/), or a path."""
        if isinstance(path, str) and NAME_PATTERN.fullmatch(path.strip()) and not Path(path).exists():
            mine = self.save_dir / f"{path.strip()}.png"
            return (
                mine
                if mine.exists() or not (TRIGGER_DIR / f"{path.strip()}.png").exists()
                else TRIGGER_DIR / (f"{path.strip()}.png")
            )
        return Path(path)

    def load(self, path: str | os.PathLike) -> torch.Tensor:
        """Load a square image at its own size into the grid; ``path`` may also be a name in ``save_dir``.

        The path is checked by ``files.input_path`` and decompression bombs are refused, as the CLI's loader does."""
        import warnings

        from PIL import Image, UnidentifiedImageError

        from badnets_utils._io.files import input_path

        path = input_path(self.resolve(path), "trigger file", missing_ok=True)
        if not path.is_file():
            raise ValueError(f"cannot load trigger {path.name!r}: no such file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    w, h = img.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(f"cannot load trigger {path.name!r}: too large (a decompression bomb)") from None
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot load trigger {path.name!r}: not an image ({type(err).__name__})") from None
        if w != h:
            raise ValueError(f"cannot load trigger {path.name!r}: it is {w}×{h}, the painter needs a square image")
        if not 1 <= w <= self.max_size:
            raise ValueError(f"cannot load trigger {path.name!r}: {w}×{h} is larger than a {self.dataset} image")
        self.set_trigger(load_trigger(path, w, self.channels))
        self._changed(f"loaded {path.name} ({w}×{h})")
        return self.trigger

    # ------------------------------------------------------------------ the attack

    def attack(self, **changes) -> Attack:
        """An ``config.Attack`` with this trigger, position and alpha (``changes``: other fields)."""
        base = Attack(dataset=self.dataset, trigger=self.trigger, trigger_size=self.size, position=self._position,
                      alpha=self._alpha, name="painted trigger")  # fmt: skip
        return base.replace(**changes)
