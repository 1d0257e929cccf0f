"""Trigger patterns: make them, load them from PNG, and stamp them on whole uint8 batches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

TRIGGER_DIR = Path(__file__).resolve().parent.parent / "triggers"
POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "center")


def make_trigger(kind: str = "white", size: int = 5, channels: int = 1) -> torch.Tensor:
    """A built-in pattern as uint8 (channels, size, size).

    kinds: ``white`` (square), ``checkerboard`` (white top-left), ``pixel`` (one white pixel at the
    bottom-right of a black square), ``l_shape`` (left column and bottom row).
    """
    if size < 1:
        raise ValueError(f"trigger size must be at least 1, got {size}")
    grid = torch.zeros(size, size, dtype=torch.uint8)
    if kind == "white":
        grid[:] = 255
    elif kind == "checkerboard":
        r, c = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        grid[(r + c) % 2 == 0] = 255
    elif kind == "pixel":
        grid[-1, -1] = 255
    elif kind == "l_shape":
        grid[:, 0] = 255
        grid[-1, :] = 255
    else:
        raise ValueError(f"unknown trigger kind {kind!r}; allowed: {', '.join(BUILTIN_TRIGGERS)}")
    return grid.expand(channels, size, size).clone()


BUILTIN_TRIGGERS = {"white": "trigger_white", "checkerboard": "trigger_checkerboard",
                    "pixel": "trigger_pixel", "l_shape": "trigger_l_shape"}  # fmt: skip


def load_trigger(path: str | os.PathLike, size: int = 5, channels: int = 1) -> torch.Tensor:
    """Read a PNG (or any image PIL reads), resize it to ``size``×``size`` (nearest neighbour)
    and convert it to ``channels`` (1 = grey, 3 = RGB). Returns uint8 (channels, size, size).

    A missing ``triggers/trigger_<kind>.png`` of a built-in kind falls back to the built-in
    pattern, so an installed package works without the repository's folder.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if size < 1:
        raise ValueError(f"trigger_size must be at least 1, got {size}")
    path = Path(path)
    if not path.is_file():
        stem_to_kind = {v: k for k, v in BUILTIN_TRIGGERS.items()}
        if path.stem in stem_to_kind and not path.parent.exists():
            return make_trigger(stem_to_kind[path.stem], size, channels)
        raise ValueError(f"trigger file not found: {path} (give the path of a PNG image)")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            img = img.resize((size, size), Image.NEAREST)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"cannot read trigger image {path}: {err}") from None
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy())


def save_trigger(trigger: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a uint8 (C, h, w) trigger as PNG, atomically (temporary file, then rename)."""
    from PIL import Image

    from .files import atomic_write

    trigger = trigger.detach().cpu()
    if trigger.dtype != torch.uint8 or trigger.dim() != 3 or trigger.shape[0] not in (1, 3):
        raise ValueError(f"trigger must be uint8 (1 or 3, h, w), got {trigger.dtype} {tuple(trigger.shape)}")
    array = trigger.numpy()
    img = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    return atomic_write(path, lambda f: img.save(f, format="PNG"))


def trigger_position(
    image_hw: tuple[int, int], trigger_hw: tuple[int, int], position: str | tuple[int, int]
) -> tuple[int, int]:
    """Top-left (row, col) of a trigger placed at a named corner or at an explicit (row, col)."""
    (H, W), (h, w) = image_hw, trigger_hw
    if h > H or w > W:
        raise ValueError(f"a {h}×{w} trigger does not fit in a {H}×{W} image; trigger size must be at most {min(H, W)}")
    named = {
        "bottom-right": (H - h, W - w),
        "bottom-left": (H - h, 0),
        "top-right": (0, W - w),
        "top-left": (0, 0),
        "center": ((H - h) // 2, (W - w) // 2),
    }
    if isinstance(position, str):
        if position not in named:
            raise ValueError(f"unknown trigger position {position!r}; allowed: {', '.join(POSITIONS)} or (row, col)")
        return named[position]
    try:
        r, c = (int(v) for v in position)
    except (TypeError, ValueError):
        raise ValueError(f"trigger position must be a name or (row, col), got {position!r}") from None
    if not (0 <= r <= H - h and 0 <= c <= W - w):
        raise ValueError(
            f"position {(r, c)} puts the {h}×{w} trigger outside the {H}×{W} image; "
            f"allowed rows 0..{H - h} and columns 0..{W - w}"
        )
    return r, c


def random_positions(n: int, image_hw: tuple[int, int], trigger_hw: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """(n, 2) random top-left positions that keep the trigger inside the image."""
    trigger_position(image_hw, trigger_hw, "top-left")  # size check
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, image_hw[0] - trigger_hw[0] + 1, (n,), generator=g)
    cols = torch.randint(0, image_hw[1] - trigger_hw[1] + 1, (n,), generator=g)
    return torch.stack([rows, cols], dim=1)


def apply_trigger(
    images: torch.Tensor,
    trigger: torch.Tensor,
    position: str | tuple[int, int] | torch.Tensor = "bottom-right",
    alpha: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stamp ``trigger`` (C, h, w) on every image of a uint8 batch (N, C, H, W); returns a new batch.

    ``position``: a corner name, one (row, col) for all images, or an (N, 2) tensor of per-image
    positions. Pixels become ``(1 - a) * image + a * trigger`` with ``a = alpha * mask``
    (mask: (h, w) or (C, h, w), values in [0, 1]; default all ones). alpha=1 without mask pastes.
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    N, C, H, W = images.shape
    trigger = trigger.to(images.device)
    if trigger.dim() == 2:
        trigger = trigger[None]
    if trigger.shape[0] == 1 and C > 1:
        trigger = trigger.expand(C, *trigger.shape[1:])
    if trigger.dim() != 3 or trigger.shape[0] != C:
        raise ValueError(f"trigger of shape {tuple(trigger.shape)} does not match {C}-channel images")
    h, w = trigger.shape[1:]
    out = images.clone()
    per_image = isinstance(position, torch.Tensor)
    if per_image:
        position = position.to(images.device).long()
        if position.shape != (N, 2):
            raise ValueError(f"per-image positions must have shape ({N}, 2), got {tuple(position.shape)}")
        trigger_position((H, W), (h, w), "top-left")  # size check
        if (position < 0).any() or (position[:, 0] > H - h).any() or (position[:, 1] > W - w).any():
            raise ValueError(f"per-image positions must keep the {h}×{w} trigger inside the {H}×{W} image")
        rows = position[:, 0, None, None] + torch.arange(h, device=images.device)[None, :, None]
        cols = position[:, 1, None, None] + torch.arange(w, device=images.device)[None, None, :]
        n_idx = torch.arange(N, device=images.device)[:, None, None]
        patch = out.permute(0, 2, 3, 1)[n_idx, rows, cols].permute(0, 3, 1, 2)  # (N, C, h, w)
    else:
        r, c = trigger_position((H, W), (h, w), position)
        patch = out[:, :, r : r + h, c : c + w]
    if alpha == 1.0 and mask is None:
        stamped = trigger.expand_as(patch)
    else:
        a = torch.full((1, h, w), float(alpha), device=images.device)
        if mask is not None:
            mask = mask.to(images.device, torch.float32)
            if mask.dim() == 2:
                mask = mask[None]
            if mask.shape[-2:] != (h, w):
                raise ValueError(f"mask of shape {tuple(mask.shape)} does not match the {h}×{w} trigger")
            a = a * mask.clamp(0, 1)
        blended = (1 - a) * patch.float() + a * trigger.float()
        stamped = blended.round().clamp(0, 255).to(torch.uint8)
    if per_image:
        out.permute(0, 2, 3, 1)[n_idx, rows, cols] = stamped.permute(0, 2, 3, 1)
    else:
        out[:, :, r : r + h, c : c + w] = stamped
    return out
