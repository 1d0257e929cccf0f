"""The trigger painter, driven through its Python API and through its own buttons' callbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from badnets_utils.core.config import Budget
from badnets_utils.core.data import DATASETS, ImageData
from badnets_utils.core.triggers import load_trigger, make_trigger
from badnets_utils.course import exercises
from badnets_utils.course.canvas import PRESETS, check_name
from badnets_utils.course.painter import TriggerPainter


def synthetic(dataset: str = "MNIST", n: int = 8, value: int = 0) -> ImageData:
    shape = DATASETS[dataset]["shape"]
    images = torch.full((n, *shape), value, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 10, list(DATASETS[dataset]["classes"]), name="synthetic")


@pytest.fixture
def painter(tmp_path):
    return TriggerPainter("MNIST", samples=synthetic(), size=5, save_dir=tmp_path / "triggers")


@pytest.fixture
def cifar(tmp_path):
    return TriggerPainter("CIFAR10", samples=synthetic("CIFAR10"), size=4, save_dir=tmp_path / "triggers")


def button(painter, cls):
    """The painter's widget carrying DOM class ``cls`` (what the browser test clicks)."""
    found = []

    def walk(w):
        if cls in getattr(w, "_dom_classes", ()):
            found.append(w)
        for child in getattr(w, "children", ()):
            walk(child)

    walk(painter.widget)
    assert len(found) == 1, f"{len(found)} widgets with class {cls}"
    return found[0]


def expected_pattern(size, cells, value=255):
    t = torch.zeros(1, size, size, dtype=torch.uint8)
    for r, c in cells:
        t[0, r, c] = value
    return t


# ---------------------------------------------------------------------------- the grid


def test_initial_state(painter):
    t = painter.canvas.trigger
    assert t.dtype == torch.uint8 and t.shape == (1, 5, 5) and not t.any()
    assert (
        painter.canvas.mask.shape == (5, 5)
        and painter.canvas.mask.dtype == torch.bool
        and not painter.canvas.mask.any()
    )
    assert painter.canvas.position == "bottom-right" and painter.canvas.alpha == 1.0 and painter.canvas.brush == 255
    grid = button(painter, "painter-grid")
    assert len(grid.children) == 25
    assert grid.children[2 * 5 + 3] is painter.cell(2, 3)
    assert painter.cell(2, 3).tooltip == "r2c3"
    assert "painter-cell-r2-c3" in painter.cell(2, 3)._dom_classes
    assert painter.canvas.save_dir.name == "triggers"
    assert TriggerPainter("MNIST", samples=synthetic()).canvas.save_dir.parent.name == "runs"  # never triggers/
    assert painter.preview_png().startswith(b"\x89PNG")


def test_trigger_is_a_copy(painter):
    painter.canvas.trigger[0, 0, 0] = 255
    assert not painter.canvas.trigger.any()


def test_click_paints_and_click_again_erases(painter):
    cell = painter.cell(2, 3)
    cell.click()
    assert torch.equal(painter.canvas.trigger, expected_pattern(5, [(2, 3)]))
    assert painter.canvas.mask[2, 3] and int(painter.canvas.mask.sum()) == 1
    assert "painter-on" in cell._dom_classes and cell.style.button_color == "#ffffff"
    assert painter.status == "painted r2c3"
    cell.click()
    assert not painter.canvas.trigger.any()
    assert "painter-on" not in cell._dom_classes and cell.style.button_color == "#000000"
    assert painter.status == "erased r2c3"


def test_api_toggle_and_set_pixel(painter):
    assert painter.canvas.toggle(0, 0) is True
    assert painter.canvas.toggle(0, 0) is False
    painter.canvas.set_pixel(1, 1, 128)
    painter.canvas.set_pixel(4, 4)
    painter.canvas.set_pixel(0, 4, "#ffffff")
    assert (
        painter.canvas.trigger[0, 1, 1] == 128
        and painter.canvas.trigger[0, 4, 4] == 255
        and painter.canvas.trigger[0, 0, 4] == 255
    )
    assert painter.cell(1, 1).style.button_color == "#808080"
    painter.canvas.erase(4, 4)
    assert painter.canvas.trigger[0, 4, 4] == 0
    painter.canvas.set_pixel(1, 1, 0)
    assert painter.canvas.trigger[0, 1, 1] == 0 and not painter.canvas.mask[1, 1]


@pytest.mark.parametrize("rc", [(5, 0), (0, 5), (-1, 0), (0, 1.5), (True, 0)])
def test_cells_outside_the_grid_are_refused(painter, rc):
    with pytest.raises(ValueError, match="outside the 5×5 grid"):
        painter.canvas.set_pixel(*rc)


@pytest.mark.parametrize("value", [256, -1, 1.5, True, "white", "#12345", [1, 2], None])
def test_bad_pixel_values_are_refused(painter, value):
    with pytest.raises(ValueError):
        if value is None:
            painter.canvas.brush = value
        else:
            painter.canvas.set_pixel(0, 0, value)
    assert not painter.canvas.trigger.any()


def test_brush_slider_sets_the_paint(painter):
    button(painter, "painter-brush").value = 100
    assert painter.canvas.brush == 100
    painter.cell(0, 0).click()
    assert painter.canvas.trigger[0, 0, 0] == 100
    painter.canvas.brush = 200
    assert button(painter, "painter-brush").value == 200


def test_colour_brush_on_cifar(cifar):
    button(cifar, "painter-brush").value = "#12ab34"
    assert cifar.canvas.brush == (0x12, 0xAB, 0x34)
    cifar.cell(1, 2).click()
    assert cifar.canvas.trigger.shape == (3, 4, 4)
    assert cifar.canvas.trigger[:, 1, 2].tolist() == [0x12, 0xAB, 0x34]
    assert cifar.cell(1, 2).style.button_color == "#12ab34"
    cifar.canvas.set_pixel(0, 0, (1, 2, 3))
    assert cifar.canvas.trigger[:, 0, 0].tolist() == [1, 2, 3]
    cifar.canvas.set_pixel(0, 1, 7)  # a grey level on a colour image: all channels
    assert cifar.canvas.trigger[:, 0, 1].tolist() == [7, 7, 7]


# ---------------------------------------------------------------------------- tools and presets


def test_clear_invert_fill_buttons(painter):
    painter.canvas.set_pixel(0, 0, 255)
    painter.canvas.set_pixel(1, 1, 100)
    button(painter, "painter-invert").click()
    expected = torch.full((1, 5, 5), 255, dtype=torch.uint8)
    expected[0, 0, 0], expected[0, 1, 1] = 0, 155
    assert torch.equal(painter.canvas.trigger, expected)
    button(painter, "painter-clear").click()
    assert not painter.canvas.trigger.any()
    painter.canvas.brush = 77
    button(painter, "painter-fill").click()
    assert torch.equal(painter.canvas.trigger, torch.full((1, 5, 5), 77, dtype=torch.uint8))
    painter.canvas.fill(3)
    assert (painter.canvas.trigger == 3).all()
    painter.canvas.clear()
    painter.canvas.invert()
    assert (painter.canvas.trigger == 255).all() and painter.canvas.mask.all()


@pytest.mark.parametrize("kind", list(PRESETS))
def test_presets_reuse_make_trigger(painter, kind):
    button(painter, f"painter-preset-{kind}").click()
    assert torch.equal(painter.canvas.trigger, make_trigger(kind, 5, 1))
    painter.canvas.clear()
    painter.canvas.apply_preset(PRESETS[kind])  # the button's label works too
    assert torch.equal(painter.canvas.trigger, make_trigger(kind, 5, 1))


def test_presets_on_cifar_and_at_other_sizes(cifar):
    cifar.canvas.resize(7)
    cifar.canvas.apply_preset("checkerboard")
    assert torch.equal(cifar.canvas.trigger, make_trigger("checkerboard", 7, 3))
    on = int(cifar.canvas.mask.sum())
    assert on == 25 and sum("painter-on" in cifar.cell(r, c)._dom_classes for r in range(7) for c in range(7)) == on


def test_unknown_preset(painter):
    with pytest.raises(ValueError, match="unknown preset 'stripes'"):
        painter.canvas.apply_preset("stripes")


# ---------------------------------------------------------------------------- where and how strongly


def test_alpha_blends_the_preview(painter):
    painter.canvas.apply_preset("white")
    button(painter, "painter-alpha").value = 0.5
    assert painter.canvas.alpha == 0.5
    stamped = painter.stamped()
    assert stamped.shape == (8, 1, 28, 28)
    assert (stamped[:, :, 23:, 23:] == 128).all() and not stamped[:, :, :23].any()
    painter.canvas.alpha = 0
    assert not painter.stamped().any()
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(ValueError, match="alpha"):
            painter.canvas.alpha = bad
    assert painter.canvas.alpha == 0


def test_corner_positions_and_custom_offset(painter):
    painter.canvas.apply_preset("white")
    dropdown = button(painter, "painter-position")
    for name, (r, c) in {"top-left": (0, 0), "top-right": (0, 23), "bottom-left": (23, 0), "center": (11, 11)}.items():
        dropdown.value = name
        assert painter.canvas.position == name and painter.canvas.offset == (r, c)
        stamped = painter.stamped()
        assert (stamped[:, :, r : r + 5, c : c + 5] == 255).all() and int(stamped[0].sum()) == 25 * 255
    painter.canvas.position = (3, 4)
    assert dropdown.value.startswith("custom") and painter.canvas.offset == (3, 4)
    assert (painter.stamped()[:, :, 3:8, 4:9] == 255).all()
    # the row/col boxes of the widget move a custom position
    painter._row_w.value = 10
    assert painter.canvas.position == (10, 4)


@pytest.mark.parametrize("bad", [(24, 0), (0, -1), "middle", (1, 2, 3), "ab"])
def test_bad_positions(painter, bad):
    with pytest.raises(ValueError):
        painter.canvas.position = bad
    assert painter.canvas.position == "bottom-right"


def test_bad_position_from_the_ui_goes_to_the_status_line(painter):
    painter.canvas.position = (20, 20)
    painter._row_w.value = 27  # a 5×5 trigger cannot start on row 27
    assert painter.canvas.position == (20, 20)
    assert "outside the 28×28 image" in painter.status
    assert "⚠" in painter._status_w.value
    assert painter._row_w.value == 20  # the control shows the state again


def test_preview_follows_every_change(painter):
    seen = {bytes(painter._preview_w.value)}
    canvas = painter.canvas
    for action in (lambda: canvas.toggle(4, 4), lambda: canvas.apply_preset("l_shape"),
                   lambda: setattr(canvas, "alpha", 0.3), lambda: setattr(canvas, "position", "top-left"),
                   lambda: canvas.resize(3)):  # fmt: skip
        action()
        assert painter._preview_w.value == painter.preview_png()
        seen.add(bytes(painter._preview_w.value))
    assert len(seen) == 6
    assert Image.open(__import__("io").BytesIO(painter.preview_png())).size == (4 * 28 * 4 + 12, 2 * 28 * 4 + 4)


# ---------------------------------------------------------------------------- resize


def test_resize_keeps_the_top_left_painting(painter):
    painter.canvas.set_pixel(0, 0)
    painter.canvas.set_pixel(4, 4)
    button(painter, "painter-size").value = 10
    assert painter.canvas.size == 10 and painter.canvas.trigger.shape == (1, 10, 10)
    assert len(button(painter, "painter-grid").children) == 100
    assert torch.equal(painter.canvas.trigger, expected_pattern(10, [(0, 0), (4, 4)]))
    painter.canvas.resize(3)
    assert torch.equal(painter.canvas.trigger, expected_pattern(3, [(0, 0)]))
    assert len(button(painter, "painter-grid").children) == 9
    painter.canvas.resize(1)
    painter.canvas.resize(28)
    assert painter.canvas.trigger.shape == (1, 28, 28) and painter.canvas.offset == (0, 0)


@pytest.mark.parametrize("bad", [0, -3, 29, 2.5, "5", True])
def test_bad_sizes(painter, bad):
    with pytest.raises(ValueError, match="from 1 to 28"):
        painter.canvas.resize(bad)
    assert painter.canvas.size == 5
    with pytest.raises(ValueError, match="from 1 to 28"):
        TriggerPainter("MNIST", samples=synthetic(), size=bad)


def test_cifar_sizes_go_to_32(cifar):
    cifar.canvas.resize(32)
    with pytest.raises(ValueError, match="from 1 to 32"):
        cifar.canvas.resize(33)


def test_custom_position_is_kept_inside_after_resize(painter):
    painter.canvas.position = (23, 20)
    painter.canvas.resize(8)
    assert painter.canvas.position == (20, 20) and painter.canvas.offset == (20, 20)


# ---------------------------------------------------------------------------- save and load


def test_save_load_round_trip_is_pixel_exact(painter, tmp_path):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, size=(5, 5))
    for r in range(5):
        for c in range(5):
            painter.canvas.set_pixel(r, c, int(values[r, c]))
    path = painter.canvas.save("my_trigger-1")
    assert path == tmp_path / "triggers" / "my_trigger-1.png" and path.is_file()
    assert painter.status == f"saved as {path.as_posix()}"  # the true place: not below the repository here
    with Image.open(path) as img:
        assert img.size == (5, 5) and img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), values)
    assert torch.equal(load_trigger(path, 5), painter.canvas.trigger)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # atomic: no temporary file left

    other = TriggerPainter("MNIST", samples=synthetic(), size=9, save_dir=tmp_path / "triggers")
    assert torch.equal(other.canvas.load(path), painter.canvas.trigger)
    assert other.canvas.size == 5 and torch.equal(other.canvas.trigger, painter.canvas.trigger)
    other.canvas.clear()
    other.canvas.load("my_trigger-1")  # a name in the save folder
    assert torch.equal(other.canvas.trigger, painter.canvas.trigger)


def test_save_and_load_buttons(painter, tmp_path):
    painter.canvas.apply_preset("l_shape")
    painter._name_w.value = "from_button"
    button(painter, "painter-save").click()
    path = tmp_path / "triggers" / "from_button.png"
    assert torch.equal(load_trigger(path, 5), make_trigger("l_shape", 5, 1))
    painter.canvas.clear()
    painter.canvas.resize(2)
    painter._load_path_w.value = str(path)
    button(painter, "painter-load").click()
    assert torch.equal(painter.canvas.trigger, make_trigger("l_shape", 5, 1))
    assert painter.status == "loaded from_button.png (5×5)"


def test_cifar_round_trip(cifar, tmp_path):
    colours = ["#ff0000", "#00ff00", "#0000ff", "#123456"]
    for i, colour in enumerate(colours):
        cifar.canvas.brush = colour
        cifar.canvas.set_pixel(i, 3 - i)
    path = cifar.canvas.save("colours")
    with Image.open(path) as img:
        assert img.mode == "RGB" and img.size == (4, 4)
    other = TriggerPainter("CIFAR10", samples=synthetic("CIFAR10"), save_dir=tmp_path / "triggers")
    other.canvas.load("colours")
    assert torch.equal(other.canvas.trigger, cifar.canvas.trigger)


@pytest.mark.parametrize("name", ["", "with space", "a/b", "../escape", "x.png", "é", "a" * 65, None, 7])
def test_bad_names_are_refused(painter, tmp_path, name):
    with pytest.raises(ValueError, match="invalid trigger name"):
        painter.canvas.save(name)
    with pytest.raises(ValueError):
        check_name(name)
    assert not (tmp_path / "triggers").exists()


def test_bad_name_from_the_ui_goes_to_the_status_line(painter, tmp_path):
    painter._name_w.value = "../escape"
    button(painter, "painter-save").click()
    assert "invalid trigger name '../escape'" in painter.status and "⚠" in painter._status_w.value
    assert not (tmp_path / "triggers").exists() and not (tmp_path / "escape.png").exists()
    assert check_name("a" * 64) == "a" * 64


def test_bad_files_are_refused_and_shown(painter, tmp_path):
    painter.canvas.apply_preset("pixel")
    before = painter.canvas.trigger
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.png").write_text("not an image")
    Image.new("L", (5, 4)).save(bad / "oblong.png")
    Image.new("L", (29, 29)).save(bad / "huge.png")
    cases = {
        "text.png": "not an image",
        "oblong.png": "it is 5×4, the painter needs a square image",
        "huge.png": "29×29 is larger than a MNIST image",
        "missing.png": "no such file",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            painter.canvas.load(bad / name)
        painter._load_path_w.value = str(bad / name)
        button(painter, "painter-load").click()
        assert message in painter.status and "⚠" in painter._status_w.value
        assert torch.equal(painter.canvas.trigger, before)


def test_bad_samples(tmp_path):
    with pytest.raises(ValueError, match="MNIST images of shape"):
        TriggerPainter("MNIST", samples=synthetic("CIFAR10"))
    with pytest.raises(ValueError, match="ImageData"):
        TriggerPainter("MNIST", samples=torch.zeros(8, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unknown dataset"):
        TriggerPainter("SVHN", samples=synthetic())


def test_sample_images_from_the_data_root(mnist_root):
    p = TriggerPainter("MNIST", data_root=mnist_root)
    assert p.samples.shape == (8, 1, 28, 28) and p.samples.float().mean() > 10


# ---------------------------------------------------------------------------- training


def test_train_button_trains_with_the_painted_trigger(mnist_root, tmp_path):
    p = TriggerPainter(
        "MNIST",
        samples=synthetic(),
        save_dir=tmp_path,
        data_root=mnist_root,
        budget=Budget(train_limit=1000, test_limit=300, epochs=2, device="cpu"),
    )
    p.canvas.apply_preset("white")
    button(p, "painter-train").click()
    result = p.last_result
    assert result is not None, p.status
    assert 0.0 <= result.tca <= 1.0 and 0.0 <= result.asr <= 1.0
    # (whether the backdoor is learnt is the notebook's check: it trains on 10,000 images)
    s = result.setup.settings
    assert s["poison_count"] == 100 and s["train_size"] == 1000 and s["trigger_size"] == 5
    assert len(result.history) == 2
    examples = result.setup.test_attack.images[:8]
    assert examples.shape == (8, 1, 28, 28) and (examples[:, :, 23:, 23:] == 255).all()
    assert torch.equal(result.attack.trigger, p.canvas.trigger)
    assert p._progress_w.value == p._progress_w.max and p._progress_w.bar_style == "success"
    assert "Attack success rate (ASR)" in p._result_w.value and bytes(p._result_img_w.value).startswith(b"\x89PNG")
    assert not p._train_w.disabled and p.status.startswith("trained: TCA")


def test_train_api_uses_position_and_alpha(mnist_root):
    p = TriggerPainter("MNIST", samples=synthetic(), data_root=mnist_root, size=3, position=(2, 5), alpha=0.5)
    p.canvas.fill(255)
    result = p.train(train_limit=200, test_limit=100, epochs=1, device="cpu")
    s = result.setup.settings
    assert s["position"] == "(2, 5)" and s["alpha"] == 0.5 and s["trigger_size"] == 3
    assert result.attack.position == (2, 5)
    assert (result.setup.test_attack.images[:8, :, 2:5, 5:8] >= 128).all()


def test_train_errors_go_to_the_status_line(tmp_path):
    p = TriggerPainter("MNIST", samples=synthetic(), data_root=tmp_path / "empty")
    p._train_w.click()
    assert "MNIST not found" in p.status and p._progress_w.bar_style == "danger" and not p._train_w.disabled
    with pytest.raises(ValueError, match="unknown setting"):
        p.train(epoch=3)


# ---------------------------------------------------------------------------- exercises of notebook 05


def test_exercise_checks(capsys):
    assert exercises.check_trigger_offset(None, 28, 6, "bottom-left") is False
    assert "Not answered" in capsys.readouterr().out
    assert exercises.check_trigger_offset((22, 0), 28, 6, "bottom-left") is True
    assert exercises.check_trigger_offset((0, 22), 28, 6, "bottom-left") is False
    assert exercises.check_trigger_offset("x", 28, 6, "bottom-left") is False

    p = TriggerPainter("MNIST", samples=synthetic(), size=5)
    assert exercises.check_plus_trigger(None) is False
    for i in range(5):
        p.canvas.set_pixel(2, i)
        p.canvas.set_pixel(i, 2)
    assert exercises.check_plus_trigger(p.canvas.trigger) is True
    p.canvas.erase(0, 2)
    assert exercises.check_plus_trigger(p.canvas.trigger) is False
    assert exercises.check_plus_trigger(p.canvas.trigger.float()) is False
    assert exercises.check_plus_trigger([1, 2]) is False

    assert exercises.check_blended_pixel(None, 0, 255, 0.5) is False
    assert exercises.check_blended_pixel(128, 0, 255, 0.5) is True
    assert exercises.check_blended_pixel(127.5, 0, 255, 0.5) is True
    assert exercises.check_blended_pixel(150, 200, 0, 0.75) is False
    assert exercises.check_blended_pixel("x", 200, 0, 0.75) is False
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out


# ---------------------------------------------------------------------------- what the status and results say


def test_save_names_the_true_folder(tmp_path, monkeypatch):
    from badnets_utils.course.canvas import SAVE_DIR, shown_path

    assert shown_path(SAVE_DIR / "x.png") == "runs/triggers/x.png"  # the repository's runs/, not "triggers/"
    monkeypatch.chdir(tmp_path)
    p = TriggerPainter("MNIST", samples=synthetic(), save_dir="runs/quick/triggers")
    p.canvas.apply_preset("white")
    p.canvas.save("mine")
    assert p.status == "saved as runs/quick/triggers/mine.png" and (tmp_path / "runs/quick/triggers/mine.png").is_file()


def test_show_says_when_nothing_is_painted(painter, monkeypatch):
    titles = []
    monkeypatch.setattr(
        "badnets_utils.course.plots.trigger_strip", lambda trigger, stamped, title: titles.append(title)
    )
    painter.show()
    painter.canvas.apply_preset("white")
    painter.show()
    assert "nothing painted yet" in titles[0] and "nothing painted" not in titles[1]
    started = TriggerPainter("MNIST", samples=synthetic(), preset="white")  # what notebook 05 shows on Run All
    assert torch.equal(started.canvas.trigger, make_trigger("white", 5, 1))


def test_results_are_marked_stale_when_the_trigger_changes(painter, monkeypatch):
    from types import SimpleNamespace

    import badnets_utils.course.painter as widgets

    def fake_run(attack, budget, **kwargs):
        setup = SimpleNamespace(settings={"poison_count": 10, "train_size": 100})
        return SimpleNamespace(tca=0.98, asr=0.97, history=[{}], attack=attack, setup=setup)

    monkeypatch.setattr(widgets, "run", fake_run)
    monkeypatch.setattr(widgets.TriggerPainter, "results_figure", lambda self: None)
    monkeypatch.setattr(widgets.plots, "figure_png", lambda fig: b"\x89PNG")
    painter.canvas.apply_preset("white")
    painter.train()
    fresh = painter._result_w.value
    assert "0.9700" in fresh and not painter.results_stale and painter._result_img_w.layout.display == ""
    painter.canvas.brush = 100  # the paint, not the trigger: still fresh
    assert not painter.results_stale and painter._result_w.value == fresh
    for change in (lambda c: c.toggle(0, 0), lambda c: setattr(c, "alpha", 0.5), lambda c: c.resize(4),
                   lambda c: setattr(c, "position", "top-left")):  # fmt: skip
        painter.canvas.apply_preset("white")
        painter.canvas.alpha, painter.canvas.position = 1.0, "bottom-right"
        painter.canvas.resize(5)
        painter.canvas.apply_preset("white")
        assert not painter.results_stale and painter._result_w.value == fresh
        change(painter.canvas)
        assert painter.results_stale
        assert (
            "Train with this trigger" in painter._result_w.value and "painter-stale" in painter._result_w._dom_classes
        )
        assert painter._result_img_w.layout.display == "none"
