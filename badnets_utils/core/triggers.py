"""Trigger patterns: make them, load them from PNG, and stamp them on whole uint8 batches."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from badnets_utils._io.files import REPO_ROOT
from badnets_utils.core.config import BUILTIN_TRIGGERS, Attack

TRIGGER_DIR = REPO_ROOT / "triggers"
POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "center")


def make_trigger(kind: str, size: int = Attack.trigger_size, channels: int = 1) -> torch.Tensor:
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


SHIPPED_TRIGGERS = ", ".join(f"triggers/{stem}.png" for stem in BUILTIN_TRIGGERS.values())
MAX_TRIGGER_SIDE = 1024  # larger images are refused before they are decoded
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_trigger(path: str | os.PathLike, size: int = 5, channels: int = 1) -> torch.Tensor:
    """Read a square PNG (or any image PIL reads) as uint8 (channels, size, size); 1 = grey, 3 = RGB.

    Sizing keeps pixel identity:

    - a file named like a built-in (``trigger_pixel.png``...) whose pixels are exactly that pattern
      at its own size is the pattern, drawn anew at ``size`` (``make_trigger``): the shipped
      ``trigger_pixel.png`` is one bright pixel, ``trigger_white.png`` a full square, at every size;
    - any other image smaller than ``size`` is padded: placed at the bottom-right of a black
      ``size``×``size`` square, never upscaled; a larger one is downscaled (nearest neighbour).

    16-bit grey images are scaled to 8 bit (``round(v * 255 / 65535)``; PIL reduces 16-bit colour
    images to their high byte). Transparent pixels count as black, i.e. no trigger ink (images with
    alpha are composited onto black). Non-square images and images above
    ``MAX_TRIGGER_SIDE``×``MAX_TRIGGER_SIDE`` are refused. Only a missing file at the default
    location ``TRIGGER_DIR/trigger_<kind>.png``, when the package is installed without the
    repository's ``triggers/`` folder, falls back to the built-in pattern.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_TRIGGER_SIDE:
        raise ValueError(f"trigger_size must be a whole number in 1..{MAX_TRIGGER_SIDE}, got {size!r}")
    path = Path(path)
    if not path.is_file():
        return _default_fallback(path, size, channels)
    array = _read_image(path, channels)
    kind = _builtin_kind(path, array)
    if kind is not None:
        return make_trigger(kind, size, channels)
    return torch.from_numpy(np.array(_fit(array, size), dtype=np.uint8, copy=True))


def _default_fallback(path: Path, size: int, channels: int) -> torch.Tensor:
    """The built-in pattern for a missing ``TRIGGER_DIR/trigger_<kind>.png`` when that folder is absent."""
    stem_to_kind = {v: k for k, v in BUILTIN_TRIGGERS.items()}
    default = TRIGGER_DIR / path.name
    if path.suffix == ".png" and path.stem in stem_to_kind and not TRIGGER_DIR.is_dir():
        if path.resolve() == default.resolve():
            return make_trigger(stem_to_kind[path.stem], size, channels)
    raise ValueError(
        f"trigger file not found: {path} (give the path of a PNG image; shipped triggers: {SHIPPED_TRIGGERS})"
    )


def _read_image(path: Path, channels: int) -> np.ndarray:
    """The image's pixels as uint8 (channels, w, w), after the size and squareness checks."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    too_large = f"trigger image {path} is too large; allowed: at most {MAX_TRIGGER_SIDE}×{MAX_TRIGGER_SIDE} pixels"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(too_large) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
            raise ValueError(f"cannot read trigger image {path}: {_first_line(err)}") from None
        with img:
            w, h = img.size
            if w > MAX_TRIGGER_SIDE or h > MAX_TRIGGER_SIDE:
                raise ValueError(f"trigger image {path} is {w}x{h}: too large; allowed: at most "
                                 f"{MAX_TRIGGER_SIDE}x{MAX_TRIGGER_SIDE}")  # fmt: skip
            if w != h:
                raise ValueError(f"trigger image {w}x{h} is not square; allowed: square images ({path})")
            try:
                return _pixels(img, channels)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise ValueError(too_large) from None
            except (OSError, ValueError, SyntaxError, EOFError) as err:
                raise ValueError(f"cannot read trigger image {path}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def _pixels(img, channels: int) -> np.ndarray:
    """uint8 (channels, h, w) of a PIL image: 16-bit scaled, transparency composited onto black."""
    from PIL import Image

    if img.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img).astype(np.float64)
        grey = np.clip(np.rint(wide * 255 / 65535), 0, 255).astype(np.uint8)
        key = img.info.get("transparency")
        if isinstance(key, int):
            grey[wide == key] = 0
        return np.repeat(grey[None], channels, axis=0)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        black = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, img.convert("RGBA"))
    array = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _builtin_kind(path: Path, array: np.ndarray) -> str | None:
    """The built-in kind when ``path`` is named like one and holds exactly that pattern."""
    kind = {v: k for k, v in BUILTIN_TRIGGERS.items()}.get(path.stem)
    if kind is None:
        return None
    c, w = array.shape[0], array.shape[-1]
    return kind if np.array_equal(array, make_trigger(kind, w, c).numpy()) else None


def _fit(array: np.ndarray, size: int) -> np.ndarray:
    """(C, w, w) to (C, size, size): pad a smaller image at the bottom-right, downscale a larger one."""
    c, w = array.shape[0], array.shape[-1]
    if w == size:
        return array
    if w < size:
        out = np.zeros((c, size, size), dtype=np.uint8)
        out[:, size - w :, size - w :] = array
        return out
    index = ((np.arange(size) + 0.5) * w / size).astype(np.int64)
    return array[:, index][:, :, index]


def save_trigger(trigger: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a uint8 (C, h, w) trigger as PNG, atomically (temporary file, then rename)."""
    from PIL import Image

    from badnets_utils._io.files import atomic_write

    trigger = trigger.detach().cpu()
    if trigger.dtype != torch.uint8 or trigger.dim() != 3 or trigger.shape[0] not in (1, 3):
        raise ValueError(f"trigger must be uint8 (1 or 3, h, w), got {trigger.dtype} {tuple(trigger.shape)}")
    array = trigger.numpy()
    img = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    return atomic_write(path, lambda f: img.save(f, format="PNG"))


def stamp_sha256(trigger: torch.Tensor, mask: torch.Tensor | None = None) -> str:
    """The SHA-256 of a trigger as it is stamped: its uint8 (C, h, w) pixels with their shape, and the blending mask
    (as float32 (1 or C, h, w)) when there is one. Two attacks with the same digest stamp the same pattern, whatever
    the file or name it came from; a sweep's CSV keys its rows on it (``trigger_sha256``)."""
    trigger = trigger.detach().to("cpu").contiguous()
    if trigger.dim() == 2:
        trigger = trigger[None]
    digest = hashlib.sha256(f"uint8 {tuple(trigger.shape)}\n".encode() + trigger.numpy().tobytes())
    if mask is not None:
        c, h, w = trigger.shape
        checked = _check_mask(mask, c, h, w).contiguous()
        digest.update(f"mask float32 {tuple(checked.shape)}\n".encode() + checked.numpy().tobytes())
    return digest.hexdigest()


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


def random_positions(n: int, image_hw: tuple[int, int], trigger_hw: tuple[int, int], seed: int) -> torch.Tensor:
    """(n, 2) random top-left positions that keep the trigger inside the image."""
    trigger_position(image_hw, trigger_hw, "top-left")  # size check
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, image_hw[0] - trigger_hw[0] + 1, (n,), generator=g)
    cols = torch.randint(0, image_hw[1] - trigger_hw[1] + 1, (n,), generator=g)
    return torch.stack([rows, cols], dim=1)


def apply_trigger(
    images: torch.Tensor,
    trigger: torch.Tensor,
    position: str | tuple[int, int] | torch.Tensor = Attack.position,
    alpha: float = Attack.alpha,
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
    _check_trigger_dtype(trigger)
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
            a = a * _check_mask(mask, C, h, w).to(images.device)
        blended = (1 - a) * patch.float() + a * trigger.float()
        stamped = blended.round().clamp(0, 255).to(torch.uint8)
    if per_image:
        out.permute(0, 2, 3, 1)[n_idx, rows, cols] = stamped.permute(0, 2, 3, 1)
    else:
        out[:, :, r : r + h, c : c + w] = stamped
    return out


def _check_trigger_dtype(trigger: torch.Tensor) -> None:
    """A trigger is uint8 0..255; say how to convert anything else."""
    if not isinstance(trigger, torch.Tensor):
        raise ValueError(f"trigger must be a uint8 tensor (C, h, w), got {type(trigger).__name__}")
    if trigger.dtype == torch.uint8:
        return
    name = str(trigger.dtype).removeprefix("torch.")
    hint = (
        "multiply by 255 and convert with .to(torch.uint8)"
        if trigger.is_floating_point()
        else "convert with .to(torch.uint8)"
    )
    raise ValueError(f"trigger must be uint8 0..255, got {name}; {hint}")


def _check_mask(mask: torch.Tensor, channels: int, h: int, w: int) -> torch.Tensor:
    """The mask as float (1 or C, h, w) with values in [0, 1], or a one-line error."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a tensor (h, w) or (C, h, w) of values in [0, 1], got {type(mask).__name__}")
    mask = mask.detach().to("cpu", torch.float32)
    if mask.dim() == 2:
        mask = mask[None]
    if mask.dim() != 3 or mask.shape[-2:] != (h, w) or mask.shape[0] not in (1, channels):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not match the {h}×{w} trigger; allowed: "
                         f"({h}, {w}) or (1 or {channels}, {h}, {w})")  # fmt: skip
    if mask.numel() and not ((mask >= 0) & (mask <= 1)).all():
        raise ValueError(f"mask values must be in [0, 1], got {mask.min().item():g}..{mask.max().item():g}")
    return mask
