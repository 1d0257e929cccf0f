"""The trigger canvas on its own: plain Python, no ipywidgets, no matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from badnets_utils.core.config import Attack
from badnets_utils.core.pipeline import prepare
from badnets_utils.core.triggers import TRIGGER_DIR, load_trigger, make_trigger
from badnets_utils.course.canvas import SAVE_DIR, TriggerCanvas, check_name


def test_imports_no_ui_library():
    code = (
        "import sys, badnets_utils.course.canvas; "
        "print(sorted(m for m in ('ipywidgets', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_paint_from_plain_python():
    c = TriggerCanvas("MNIST", size=3)
    assert c.toggle(0, 0) is True and c.toggle(0, 0) is False
    c.set_pixel(1, 1)
    c.set_pixel(2, 2, 100)
    expected = torch.zeros(1, 3, 3, dtype=torch.uint8)
    expected[0, 1, 1], expected[0, 2, 2] = 255, 100
    assert torch.equal(c.to_tensor(), expected) and c.mask.sum() == 2
    c.invert()
    assert torch.equal(c.trigger, 255 - expected)
    c.fill(7)
    assert (c.trigger == 7).all()
    c.clear()
    assert not c.trigger.any()
    c.apply_preset("Checkerboard")
    assert torch.equal(c.trigger, make_trigger("checkerboard", 3))


def test_changes_are_reported_to_the_view():
    seen = []
    c = TriggerCanvas("MNIST", size=4, on_change=seen.append)
    c.toggle(0, 1)
    c.resize(6)
    c.position = (1, 2)
    c.alpha = 0.25
    assert seen == ["painted r0c1", "size 6×6", "position: row 1, col 2", "alpha: 0.25"]
    assert c.trigger[0, 0, 1] == 255 and c.size == 6 and c.offset == (1, 2)


def test_resize_keeps_a_custom_position_inside():
    c = TriggerCanvas("MNIST", size=3, position=(25, 25))
    c.resize(10)
    assert c.position == (18, 18) and c.offset == (18, 18)
    with pytest.raises(ValueError, match="outside"):
        c.position = (27, 0)


@pytest.mark.parametrize("bad", [0, 29, 2.5, True, "5"])
def test_sizes_are_checked(bad):
    with pytest.raises(ValueError, match="trigger size must be an integer from 1 to 28"):
        TriggerCanvas("MNIST", size=bad)


def test_colour_canvas_for_cifar():
    c = TriggerCanvas("CIFAR10", size=2, brush="#ff8000")
    c.set_pixel(0, 0)
    assert c.trigger[:, 0, 0].tolist() == [255, 128, 0] and c.trigger.shape == (3, 2, 2)


def test_save_and_load_round_trip(tmp_path):
    c = TriggerCanvas("MNIST", size=4, save_dir=tmp_path)
    c.set_pixel(0, 3, 200)
    path = c.save("mine")
    assert path == tmp_path / "mine.png"
    assert torch.equal(load_trigger(path, 4), c.trigger)
    other = TriggerCanvas("MNIST", size=2, save_dir=tmp_path)
    other.load("mine")
    assert torch.equal(other.trigger, c.trigger) and other.size == 4


def test_painted_triggers_never_go_into_the_shipped_folder():
    assert SAVE_DIR.name == "triggers" and SAVE_DIR.parent.name == "runs" and SAVE_DIR != TRIGGER_DIR
    for shipped in ("trigger_white", "trigger_pixel", "trigger_checkerboard", "trigger_l_shape"):
        with pytest.raises(ValueError, match="shipped trigger"):
            check_name(shipped)
    for bad in ("../x", "a.png", "", "x" * 65, "a b"):
        with pytest.raises(ValueError, match="invalid trigger name"):
            check_name(bad)


def test_the_canvas_gives_an_attack_the_pipeline_takes():
    c = TriggerCanvas("MNIST", size=3, position=(0, 0), alpha=0.5)
    c.fill(255)
    attack = c.attack(target=7, rate=0.5)
    assert isinstance(attack, Attack) and attack.position == (0, 0) and attack.alpha == 0.5 and attack.target == 7
    images = torch.zeros(10, 1, 28, 28, dtype=torch.uint8)
    from badnets_utils.core.data import DATASETS, ImageData

    data = ImageData(images, torch.arange(10), list(DATASETS["MNIST"]["classes"]))
    setup = prepare(attack, data=(data, data))
    assert len(setup.train.poison_indices) == 5
    assert (setup.train.images[setup.train.poison_indices, :, :3, :3] == 128).all()
    assert (setup.train.labels[setup.train.poison_indices] == 7).all()
