from pathlib import Path

import numpy as np
import pytest
import torch

from badnets_utils.core.triggers import (
    BUILTIN_TRIGGERS,
    TRIGGER_DIR,
    apply_trigger,
    load_trigger,
    make_trigger,
    random_positions,
    save_trigger,
)


def batch(n=4, c=1, s=28, value=0):
    return torch.full((n, c, s, s), value, dtype=torch.uint8)


def test_shipped_pngs_are_the_builtin_patterns():
    for kind, stem in BUILTIN_TRIGGERS.items():
        path = TRIGGER_DIR / f"{stem}.png"
        assert path.is_file(), path
        loaded = load_trigger(path, size=5)
        assert torch.equal(loaded, load_trigger(path, size=5))
        if kind != "pixel":
            assert torch.equal(loaded, make_trigger(kind, 5))


def test_white_square_stamped_bottom_right_only():
    out = apply_trigger(batch(), make_trigger("white", 5))
    assert (out[:, :, 23:, 23:] == 255).all()
    assert out.sum().item() == 4 * 25 * 255


def test_stamp_does_not_change_its_input_and_keeps_dtype():
    imgs = batch(value=7)
    out = apply_trigger(imgs, make_trigger("white", 3), position=(2, 4))
    assert (imgs == 7).all() and out.dtype == torch.uint8
    assert (out[:, :, 2:5, 4:7] == 255).all() and out.sum() == imgs.sum() + 4 * 9 * (255 - 7)


def test_named_positions_and_grey_trigger_on_rgb():
    out = apply_trigger(batch(c=3, s=32), make_trigger("white", 4), position="top-left")
    assert (out[:, :, :4, :4] == 255).all() and out[:, :, 4:, :].sum() == 0
    out = apply_trigger(batch(c=3, s=32), make_trigger("white", 4), position="center")
    assert (out[:, :, 14:18, 14:18] == 255).all()


def test_alpha_blends_and_mask_selects():
    out = apply_trigger(batch(value=100), make_trigger("white", 2), alpha=0.5)
    assert out[0, 0, -1, -1].item() == round(0.5 * 100 + 0.5 * 255)
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = apply_trigger(batch(value=0), make_trigger("white", 2), mask=mask)
    assert out[0, 0, -2:, -2:].tolist() == [[255, 0], [0, 255]]


def test_per_image_positions():
    pos = torch.tensor([[0, 0], [10, 20], [25, 25]])
    out = apply_trigger(batch(n=3), make_trigger("white", 3), position=pos)
    for i, (r, c) in enumerate(pos.tolist()):
        assert (out[i, 0, r : r + 3, c : c + 3] == 255).all()
        assert out[i].sum().item() == 9 * 255
    pos = random_positions(100, (28, 28), (5, 5), seed=1)
    assert pos.min() >= 0 and pos.max() <= 23 and torch.equal(pos, random_positions(100, (28, 28), (5, 5), seed=1))


def test_load_pads_smaller_images_and_matches_channels(tmp_path):
    path = save_trigger(make_trigger("checkerboard", 4), tmp_path / "c.png")
    t = load_trigger(path, size=8, channels=3)
    assert t.shape == (3, 8, 8) and t.dtype == torch.uint8
    assert t[:, :4, :].sum() == 0 and t[:, :, :4].sum() == 0  # padded with black, not upscaled
    assert torch.equal(t[:, 4:, 4:], make_trigger("checkerboard", 4, 3))


def test_load_downscales_larger_images(tmp_path):
    big = make_trigger("white", 8)
    big[:, :4, :] = 0  # top half black
    t = load_trigger(save_trigger(big, tmp_path / "half.png"), size=4)
    assert t[0, :2].sum() == 0 and (t[0, 2:] == 255).all()


def test_builtin_fallback_only_at_the_default_location(tmp_path, monkeypatch):
    import badnets_utils.core.triggers as tr

    monkeypatch.setattr(tr, "TRIGGER_DIR", tmp_path / "triggers")  # an install without the folder
    t = load_trigger(tmp_path / "triggers" / "trigger_white.png", size=5)
    assert torch.equal(t, make_trigger("white", 5))
    for wrong in ("triggerz/trigger_checkerboard.png", "nowhere/trigger_white.png"):
        with pytest.raises(ValueError, match=r"trigger file not found: .*shipped triggers: triggers/trigger_white.png"):
            load_trigger(tmp_path / wrong, size=5)


def test_no_fallback_when_the_shipped_folder_exists_but_lacks_the_file(tmp_path, monkeypatch):
    import badnets_utils.core.triggers as tr

    (tmp_path / "triggers").mkdir()
    monkeypatch.setattr(tr, "TRIGGER_DIR", tmp_path / "triggers")
    with pytest.raises(ValueError, match="trigger file not found"):
        load_trigger(tmp_path / "triggers" / "trigger_white.png", size=5)


def test_trigger_larger_than_image():
    with pytest.raises(ValueError, match=r"30×30 trigger does not fit in a 28×28 image"):
        apply_trigger(batch(), make_trigger("white", 30))


def test_bad_position():
    with pytest.raises(ValueError, match=r"position \(25, 0\).*allowed rows 0..23"):
        apply_trigger(batch(), make_trigger("white", 5), position=(25, 0))
    with pytest.raises(ValueError, match="unknown trigger position 'middle'"):
        apply_trigger(batch(), make_trigger("white", 5), position="middle")


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read trigger image"):
        load_trigger(bad)
    (tmp_path / "triggers").mkdir()
    with pytest.raises(ValueError, match="trigger file not found"):
        load_trigger(tmp_path / "triggers" / "nope.png")


def test_bad_alpha_and_unknown_kind():
    with pytest.raises(ValueError, match="alpha must be in"):
        apply_trigger(batch(), make_trigger("white", 3), alpha=1.5)
    with pytest.raises(ValueError, match="unknown trigger kind"):
        make_trigger("star")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = save_trigger(make_trigger("white", 3), tmp_path / "t.png")
    before = Path(path).read_bytes()
    from PIL import Image

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError):
        save_trigger(make_trigger("checkerboard", 3), path)
    assert Path(path).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]


@pytest.mark.parametrize("size", [3, 5, 7])
@pytest.mark.parametrize("kind", sorted(BUILTIN_TRIGGERS))
def test_shipped_triggers_keep_their_meaning_at_every_size(kind, size):
    for channels in (1, 3):
        t = load_trigger(TRIGGER_DIR / f"{BUILTIN_TRIGGERS[kind]}.png", size, channels)
        assert t.shape == (channels, size, size)
        assert torch.equal(t, make_trigger(kind, size, channels))
    t = load_trigger(TRIGGER_DIR / f"{BUILTIN_TRIGGERS[kind]}.png", size)
    if kind == "pixel":
        assert int((t > 0).sum()) == 1 and t[0, -1, -1] == 255
    if kind == "white":
        assert (t == 255).all()


def test_the_release_trigger_is_a_five_by_five_white_square():
    t = load_trigger(TRIGGER_DIR / "trigger_white.png", 5)
    assert t.shape == (1, 5, 5) and (t == 255).all()


def test_a_renamed_or_edited_builtin_is_an_ordinary_image(tmp_path):
    edited = make_trigger("pixel", 3)
    edited[0, 0, 0] = 255
    t = load_trigger(save_trigger(edited, tmp_path / "trigger_pixel.png"), 5)
    assert torch.equal(t[:, 2:, 2:], edited) and t[:, :2].sum() == 0
    copy = load_trigger(save_trigger(make_trigger("pixel", 3), tmp_path / "mine.png"), 7)
    assert int((copy > 0).sum()) == 1 and copy[0, -1, -1] == 255  # padding keeps the single pixel


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    wide = np.array([[0, 257, 1000], [32768, 65535, 128], [65000, 12345, 255]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "t16.png")
    t = load_trigger(tmp_path / "t16.png", 3)
    assert t[0].numpy().tolist() == np.rint(wide.astype(float) * 255 / 65535).astype(np.uint8).tolist()


def test_transparent_pixels_are_black(tmp_path):
    from PIL import Image

    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = [[255, 0], [128, 0]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    t = load_trigger(tmp_path / "a.png", 2, 3)
    assert t[:, 0, 0].tolist() == [255] * 3 and t[:, 0, 1].tolist() == [0] * 3 and t[:, 1, 1].sum() == 0
    assert t[0, 1, 0] == 128
    la = np.stack([np.full((2, 2), 200, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert load_trigger(tmp_path / "la.png", 2)[0].tolist() == [[0, 200], [200, 0]]


def test_non_square_image_is_refused(tmp_path):
    from PIL import Image

    Image.new("L", (4, 3), 255).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match=r"^trigger image 4x3 is not square; allowed: square images"):
        load_trigger(tmp_path / "wide.png", 3)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height grey pixels (with almost no data)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [100_000, 20_000, 2_000])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(side, side))
    with pytest.raises(ValueError, match="too large; allowed: at most 1024") as info:
        load_trigger(path, 5)
    assert "\n" not in str(info.value)


def test_apply_refuses_float_triggers_and_bad_masks():
    with pytest.raises(ValueError, match=r"^trigger must be uint8 0..255, got float32; multiply by 255"):
        apply_trigger(batch(), torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match=r"got int64; convert with"):
        apply_trigger(batch(), torch.ones(1, 3, 3, dtype=torch.long))
    for mask in (torch.full((3, 3), 2.0), torch.full((3, 3), -0.5), torch.full((3, 3), float("nan"))):
        with pytest.raises(ValueError, match=r"mask values must be in \[0, 1\]"):
            apply_trigger(batch(), make_trigger("white", 3), mask=mask)
    with pytest.raises(ValueError, match="mask of shape"):
        apply_trigger(batch(c=3), make_trigger("white", 3), mask=torch.ones(2, 3, 3))
