from pathlib import Path

import pytest
import torch

from badnets_utils.triggers import (
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


def test_load_resizes_and_matches_channels(tmp_path):
    path = save_trigger(make_trigger("checkerboard", 4), tmp_path / "c.png")
    t = load_trigger(path, size=8, channels=3)
    assert t.shape == (3, 8, 8) and t.dtype == torch.uint8
    assert t[:, 0, 0].tolist() == [255, 255, 255] and t[:, 0, 2].tolist() == [0, 0, 0]


def test_builtin_fallback_when_the_folder_is_absent(tmp_path):
    t = load_trigger(tmp_path / "nowhere" / "trigger_white.png", size=5)
    assert torch.equal(t, make_trigger("white", 5))


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
