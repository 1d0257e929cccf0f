"""The notebooks' exercise checks: right answers pass, wrong ones fail, unanswered ones only hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from badnets_utils import exercises as ex
from badnets_utils.triggers import apply_trigger, make_trigger


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 200, (6, 1, 28, 28), dtype=torch.uint8, generator=g)


def test_report_and_hint(capsys):
    assert ex._report(True, "fine") is True
    assert ex._report(False, "wrong") is False
    assert ex._hint("01-1") is False
    out = capsys.readouterr().out
    assert "✅ fine" in out and "❌ wrong" in out and "Hint: " + ex.HINTS["01-1"][0] in out
    assert 'exercises.hint("01-1", level=2)' in out and ex.HINTS["01-1"][1] not in out  # the second hint on request
    ex.hint("01-1", level=2)
    out = capsys.readouterr().out
    assert ex.HINTS["01-1"][0] in out and ex.HINTS["01-1"][1] in out
    with pytest.raises(KeyError):
        ex.hint("99-9")
    with pytest.raises(ValueError):
        ex.hint("01-1", level=3)  # no third level: the solution is in the solution cell


def test_class_count(capsys):
    labels = torch.tensor([1, 1, 0, 2, 1, 3])
    assert ex.check_class_count(3, labels, 1)
    assert ex.check_class_count(torch.tensor(3), labels, 1)
    assert not ex.check_class_count(2, labels, 1)
    assert not ex.check_class_count("three", labels, 1)
    assert not ex.check_class_count(None, labels, 1)
    assert "Hint" in capsys.readouterr().out


def test_pixel_mean(images):
    right = images.float().div(255).mean().item()
    assert ex.check_pixel_mean(right, images)
    assert not ex.check_pixel_mean(right * 255, images)
    assert not ex.check_pixel_mean(right + 0.01, images)
    assert not ex.check_pixel_mean(None, images)


def test_to_float():
    assert ex.check_to_float(lambda x: x.float() / 255)
    assert not ex.check_to_float(lambda x: x.float())  # not scaled
    assert not ex.check_to_float(lambda x: x.double() / 255)  # wrong dtype
    assert not ex.check_to_float(lambda x: (x.float() / 255).flatten())  # wrong shape
    assert not ex.check_to_float(lambda x: 1 / 0)  # raises: reported, not re-raised
    assert not ex.check_to_float(42)
    assert not ex.check_to_float(None)


def test_poison_count():
    assert ex.check_poison_count(300, 60_000, 0.005)
    assert ex.check_poison_count(3, 1001, 0.003)  # floor(3.003)
    assert not ex.check_poison_count(4, 1001, 0.0035)  # ceil(3.5) is rounded the wrong way
    assert not ex.check_poison_count(301, 60_000, 0.005)
    assert not ex.check_poison_count(None, 60_000, 0.005)


def test_changed_pixels(images):
    trig = apply_trigger(images[:1], make_trigger("white"))[0]
    right = int((images[0] != trig).sum())
    assert ex.check_changed_pixels(right, images[0], trig)
    assert not ex.check_changed_pixels(right + 1, images[0], trig)
    assert not ex.check_changed_pixels(None, images[0], trig)


def test_top_left_stamp(images):
    trigger = make_trigger("checkerboard")
    assert ex.check_top_left_stamp(apply_trigger(images, trigger, position="top-left"), images, trigger)
    assert not ex.check_top_left_stamp(apply_trigger(images, trigger), images, trigger)  # bottom-right
    assert not ex.check_top_left_stamp(images, images, trigger)
    assert not ex.check_top_left_stamp(images[:2], images, trigger)
    assert not ex.check_top_left_stamp([1, 2], images, trigger)
    assert not ex.check_top_left_stamp(None, images, trigger)


def test_asr():
    preds = torch.tensor([1, 1, 1, 0])
    assert ex.check_asr(0.75, preds, 1)
    assert ex.check_asr(75.0, preds, 1)  # a percentage is an equivalent answer
    assert ex.check_asr(torch.tensor(0.75), preds, 1) and ex.check_asr(np.float32(0.75), preds, 1)
    assert not ex.check_asr(0.25, preds, 1)
    assert not ex.check_asr(None, preds, 1)


def test_missed_triggers():
    cm = torch.zeros(3, 3, dtype=torch.long)
    cm[1] = torch.tensor([2, 90, 8])  # all-to-one: every row is the target's
    assert ex.check_missed_triggers(10, cm, 1)
    assert not ex.check_missed_triggers(90, cm, 1)
    assert not ex.check_missed_triggers(11, cm, 1)
    assert not ex.check_missed_triggers(None, cm, 1)


def test_min_poisons():
    counts, asr = [0, 30, 60, 120, 600], [0.01, 0.2, 0.85, 0.95, 0.99]
    assert ex.check_min_poisons(120, counts, asr, 0.9)
    assert ex.check_min_poisons(120.0, list(reversed(counts)), list(reversed(asr)), 0.9)  # order does not matter
    assert not ex.check_min_poisons(60, counts, asr, 0.9)
    assert not ex.check_min_poisons(600, counts, asr, 0.9)
    assert not ex.check_min_poisons(None, counts, asr, 0.9)
    assert ex.check_min_poisons("never", [0, 10], [0.0, 0.1], 0.9)
    assert not ex.check_min_poisons(10, [0, 10], [0.0, 0.1], 0.9)


def test_rate_for_count():
    assert ex.check_rate_for_count(50 / 60_000, 50, 60_000)
    assert ex.check_rate_for_count(0.00084, 50, 60_000)
    assert not ex.check_rate_for_count(0.0008, 50, 60_000)  # 48 images
    assert not ex.check_rate_for_count(1.5, 50, 60_000)
    assert not ex.check_rate_for_count(None, 50, 60_000)
