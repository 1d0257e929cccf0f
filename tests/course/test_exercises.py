"""The notebooks' exercise checks: right answers pass, wrong ones fail, unanswered ones only hint."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from badnets_utils.core.triggers import apply_trigger, make_trigger
from badnets_utils.course import exercises as ex

ROOT = Path(__file__).resolve().parents[2]


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


# ----------------------------------------------------------------------------- right answers in any honest form


def test_asr_accepts_a_rounded_share_or_percentage(capsys):
    preds = torch.ones(8865, dtype=torch.long)
    preds[0] = 0  # one miss: ASR 0.99989
    asr = (preds == 1).float().mean().item()
    for right in (asr, 8864 / 8865, round(asr, 3), round(asr, 4), 100.0, 99.99, round(100 * asr, 2)):
        assert ex.check_asr(right, preds, 1), right
    for wrong in (0.99, 99.9, 99.0, 1 - asr, 8864 / 10_000):
        assert not ex.check_asr(wrong, preds, 1), wrong
    assert "99.99 %" in capsys.readouterr().out


def test_plus_trigger_of_any_numeric_dtype_with_the_right_values(capsys):
    plus = torch.zeros(5, 5)
    plus[2], plus[:, 2] = 255, 255
    assert ex.check_plus_trigger(plus.to(torch.uint8)[None])
    assert ex.check_plus_trigger(plus)  # float32, the right values
    assert ex.check_plus_trigger(plus.long().numpy())
    assert "float32" in capsys.readouterr().out
    assert not ex.check_plus_trigger(plus / 255)  # the 0..1 scale
    assert "0..1" in capsys.readouterr().out
    assert not ex.check_plus_trigger(plus > 0)  # a mask, not a trigger
    assert not ex.check_plus_trigger(torch.zeros(5, 5))


def test_rate_for_count_explains_the_rounding_truthfully(capsys):
    assert not ex.check_rate_for_count(0.00083, 50, 60_000)
    out = capsys.readouterr().out
    assert "49.8" in out and "⌊49.8⌋ = 49" in out and "floating point" not in out


def test_changed_pixels_where_the_digit_reaches_the_corner(capsys):
    clean = torch.zeros(1, 28, 28, dtype=torch.uint8)
    clean[0, 24:26, 23] = torch.tensor([42, 78], dtype=torch.uint8)  # grey stroke pixels under the trigger
    trig = apply_trigger(clean[None], make_trigger("white"))[0]
    assert ex.check_changed_pixels(25, clean, trig)
    assert not ex.check_changed_pixels(23, clean, trig)  # only the black ones
    out = capsys.readouterr().out
    assert "grey stroke" in out and "already white" not in out and "already had" not in out
    clean[0, 27, 27] = 255  # now one pixel already has the trigger's value
    trig = apply_trigger(clean[None], make_trigger("white"))[0]
    assert ex.check_changed_pixels(24, clean, trig) and not ex.check_changed_pixels(25, clean, trig)
    assert "already had the trigger's value" in capsys.readouterr().out


# ----------------------------------------------------------------------------- keys and sealed answers


def test_prediction_keys_do_not_clash_with_exercises(capsys):
    assert "03-3" not in ex.CHOICES and "06-3" not in ex.CHOICES
    assert {"03-predict", "06-predict"} <= set(ex.CHOICES)
    ex.hint("03-3", level=2)  # the open exercise 3: a line, not a KeyError
    assert "open exercise" in capsys.readouterr().out
    ex.hint("03-predict")
    assert "multiple-choice" in capsys.readouterr().out
    with pytest.raises(KeyError):
        ex.check_choice("a", "03-3")


def test_choice_answers_are_not_in_the_source_as_plain_text():
    source = Path(ex.__file__).read_text(encoding="utf-8") + ex.TEXTS.read_text(encoding="utf-8")  # code and data
    for key, (digest, letters) in ex.CHOICES.items():
        assert sum(ex._is_right(key, k) for k in letters) == 1, key
        assert digest not in {k for k in letters} and len(digest) >= 32
        for letter in letters:
            explanation = ex._explanation(key, letter)
            assert len(explanation) > 20 and explanation[:20] not in source, (key, letter)
    assert not re.search(r'"\d\d-\w+": \(\s*"[a-e]"', source), "a right letter in plain text"


def test_sealing_round_trips_and_refuses_an_unexplained_letter():
    digest, sealed = ex.seal_choice("99-1", "b", {"a": "no", "b": "yes"})
    assert digest == ex._digest("99-1", "b") != ex._digest("99-1", "a")
    assert "yes" not in sealed.values()
    with pytest.raises(ValueError):
        ex.seal_choice("99-1", "c", {"a": "no", "b": "yes"})


def test_the_08_hint_matches_the_table_it_points_to():
    nb = nbformat.read(ROOT / "notebooks" / "08_reproducing_the_paper.ipynb", as_version=4)
    counts = next(c.source for c in nb.cells if c.cell_type == "code" and c.source.startswith("COUNTS"))
    full_run = re.search(r"cfg\.pick\(\[[^\]]*\], \[([^\]]*)\]", counts).group(1)
    hints = " ".join(ex.HINTS["08-1"])
    if "25" in [c.strip() for c in full_run.split(",")]:  # part 3 measures 25 copies: its table has that row
        assert "between two rows" not in hints and "one of the rows" in hints
    else:
        assert "one of the rows" not in hints


# ----------------------------------------------------------------------------- one rule for every numeric answer


def asr_preds(hits: int, n: int) -> torch.Tensor:
    """Predictions whose ASR for target 1 is hits / n."""
    return (torch.arange(n) < hits).long()


def mean_images(mean_255: float, n: int = 10_000) -> torch.Tensor:
    """n uint8 pixels whose mean is ``mean_255`` (on the 0-255 scale; its decimals times n must be whole)."""
    low = math.floor(mean_255)
    images = torch.full((1, 1, 1, n), low, dtype=torch.uint8)
    images[..., : round((mean_255 - low) * n)] += 1
    return images


def test_asr_refuses_the_target_for_an_asr_just_below_one(capsys):
    preds = asr_preds(9999, 10_000)  # ASR 0.9999
    for slip in (1, np.int64(1), torch.tensor(1), np.array(1)):
        assert not ex.check_asr(slip, preds, 1), slip
        out = capsys.readouterr().out
        assert "ambiguous" in out and "digits" in out and "0.9999" not in out  # the refusal gives nothing away
    assert ex.check_asr(1, asr_preds(10, 10), 1)  # exactly 1: right in any form
    for right in (0.9999, 99.99, 100, 100.0, 1.0, np.float32(0.9999), torch.tensor(0.9999), torch.tensor(99.99)):
        assert ex.check_asr(right, preds, 1), right


def test_asr_reads_a_small_number_as_a_percent_only_when_the_fraction_is_wrong(capsys):
    preds = asr_preds(7, 1000)  # ASR 0.007 = 0.7 %
    assert ex.check_asr(0.7, preds, 1)
    assert "read as 0.7 %" in capsys.readouterr().out
    assert ex.check_asr(0.007, preds, 1) and "read as" not in capsys.readouterr().out
    assert not ex.check_asr(70, preds, 1)  # 0.7 is not 70 %
    assert ex.check_asr(0.7, asr_preds(700, 1000), 1)  # an ASR of 0.7: the fraction
    assert "read as" not in capsys.readouterr().out


def test_asr_accepts_float32_numbers_from_numpy_and_torch():
    preds = asr_preds(8864, 8865)  # 0.99989
    for right in (np.float32(0.9999), torch.tensor(0.9999), torch.tensor(0.9999, dtype=torch.float64)):
        assert ex.check_asr(right, preds, 1), right
    assert ex.check_asr((preds == 1).float().mean(), preds, 1)  # the 0-d tensor itself, without .item()
    assert ex.check_asr(np.float16(0.9999), preds, 1)  # float16 prints 1.0


def test_pixel_mean_accepts_the_printed_digits():
    images = mean_images(0.1307 * 255)  # mean 0.1307
    assert abs(images.double().div(255).mean().item() - 0.1307) < 1e-12
    for right in (0.13, 0.131, 0.1307, 13, 13.07, np.float32(0.13), torch.tensor(0.1307)):
        assert ex.check_pixel_mean(right, images), right
    for wrong in (0.14, 0.1306, 0.132, 14, 33.3285 * 2):
        assert not ex.check_pixel_mean(wrong, images), wrong


def test_pixel_mean_refuses_one_significant_digit(capsys):
    images = mean_images(0.1307 * 255)
    assert not ex.check_pixel_mean(0.1, images)
    assert "two significant digits" in capsys.readouterr().out
    assert not ex.check_pixel_mean(33.33, images)  # the 0-255 scale
    assert "0-255" in capsys.readouterr().out


def test_counts_accept_whole_numbers_in_any_type_and_refuse_fractions(capsys):
    for right in (300, 300.0, np.int64(300), np.float32(300), torch.tensor(300), torch.tensor(300.0), np.array(300)):
        assert ex.check_poison_count(right, 60_000, 0.005), right
    assert not ex.check_poison_count(300.5, 60_000, 0.005)
    assert "300.5, which is not a whole number" in capsys.readouterr().out
    labels = torch.tensor([1, 1, 0])
    assert ex.check_class_count(np.int32(2), labels, 1) and not ex.check_class_count(2.5, labels, 1)
    assert ex.check_all_to_all_label(torch.tensor(0), 9) and not ex.check_all_to_all_label(True, 9)


@pytest.mark.parametrize(
    ("answer", "received"),
    [
        (True, "True (a bool"),
        ("0.75", "the text '0.75'"),
        ([0.75], "a list of 1 item"),
        (torch.tensor([0.75]), "a tensor of shape (1,) (take the number out with .item())"),
        (np.array([0.75, 0.25]), "an array of shape (2,)"),
        (float("nan"), "got nan"),
        (float("inf"), "got inf"),
        (torch.tensor(True), "a bool tensor"),
        (np.bool_(True), "True (a bool"),
    ],
)
def test_non_numbers_are_refused_naming_what_was_received(capsys, answer, received):
    preds = torch.tensor([1, 1, 1, 0])
    assert not ex.check_asr(answer, preds, 1)
    out = capsys.readouterr().out
    assert out.startswith("❌ expected a share") and received in out and out.count("\n") == 1


def test_rate_for_count_reads_a_percent(capsys):
    assert ex.check_rate_for_count(0.084, 50, 60_000)  # 0.084 % of 60,000 = 50.4 images
    assert "read as 0.084 %" in capsys.readouterr().out
    assert ex.check_rate_for_count(np.float32(0.00084), 50, 60_000)
    assert ex.check_rate_for_count(torch.tensor(50 / 60_000, dtype=torch.float64), 50, 60_000)
    assert not ex.check_rate_for_count(True, 50, 60_000) and not ex.check_rate_for_count(-0.1, 50, 60_000)


def test_sweep_answers_never_and_whole_numbers(capsys):
    counts, asr = [0, 30, 60], [0.0, 0.5, 0.95]
    assert ex.check_min_poisons(np.int64(60), counts, asr) and ex.check_min_poisons(torch.tensor(60.0), counts, asr)
    assert not ex.check_min_poisons("never", counts, asr)
    assert "does reach" in capsys.readouterr().out
    assert ex.check_min_poisons(float("inf"), [0, 30], [0.0, 0.5]) and ex.check_min_poisons("Never", [0], [0.0])
    assert not ex.check_min_poisons(60.5, counts, asr)


def test_count_prediction_reads_a_percent_first():
    counts, error = [0, 50], [100.0, 0.0]  # 90 % at 5 copies
    assert ex.check_count_prediction(90, counts, error, count=5)
    assert ex.check_count_prediction(np.float32(0.9), counts, error, count=5)  # a fraction: read as 90 %
    assert not ex.check_count_prediction(1, counts, error, count=5)  # 1 %, or 100 % written as a fraction?
    assert not ex.check_count_prediction(False, counts, error, count=5)
    assert not ex.check_count_prediction(150, counts, error, count=5)
