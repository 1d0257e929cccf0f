"""Self-checks of notebooks 06 and 07: right answers pass, wrong ones fail, unanswered ones only hint."""

from __future__ import annotations

import numpy as np
import torch

from badnets_utils.course import exercises as ex
from badnets_utils.defences.cleanse import anomaly_index


def test_all_to_all_label(capsys):
    assert ex.check_all_to_all_label(0, 9)
    assert ex.check_all_to_all_label(4, 3)
    assert not ex.check_all_to_all_label(10, 9)
    assert not ex.check_all_to_all_label("x", 9)
    assert not ex.check_all_to_all_label(None, 9)
    out = capsys.readouterr().out
    assert "wraps around" in out and "Hint" in out


def test_smallest_trigger():
    sizes, asr = [1, 3, 5, 7], [0.02, 0.4, 0.99, 1.0]
    assert ex.check_smallest_trigger(5, sizes, asr)
    assert not ex.check_smallest_trigger(3, sizes, asr)
    assert not ex.check_smallest_trigger(7, sizes, asr)
    assert not ex.check_smallest_trigger(None, sizes, asr)
    assert ex.check_smallest_trigger("never", [1, 3], [0.1, 0.2])


def test_flag_precision(capsys):
    flagged, poisons = torch.tensor([1, 2, 3, 4]), torch.tensor([2, 4, 6, 8, 10])
    assert ex.check_flag_precision(0.5, flagged, poisons)
    assert not ex.check_flag_precision(0.4, flagged, poisons)  # the recall
    assert not ex.check_flag_precision(2, flagged, poisons)
    assert not ex.check_flag_precision(None, flagged, poisons)
    assert "recall" in capsys.readouterr().out


def test_removed_poisons():
    removed, poisons = torch.tensor([1, 2, 3, 4]), torch.tensor([2, 4, 6])
    assert ex.check_removed_poisons(2, removed, poisons)
    assert not ex.check_removed_poisons(3, removed, poisons)
    assert not ex.check_removed_poisons(None, removed, poisons)


def test_anomaly_index_accepts_the_textbook_median():
    norms = torch.tensor([10.0, 50, 52, 55, 60, 61, 62, 70, 80, 90])  # an even count: two conventions differ
    v = norms.double().numpy()
    med = np.median(v)  # numpy (and Neural Cleanse's code): the mean of the two middle values
    textbook = float((med - v[0]) / (1.4826 * np.median(np.abs(v - med))))
    assert abs(textbook - float(anomaly_index(norms)[0])) > 0.1  # really different from torch's lower median
    assert ex.check_anomaly_index(textbook, norms, 0)
    assert ex.check_anomaly_index(torch.tensor(textbook), norms, 0)  # a 0-d tensor
    assert ex.check_anomaly_index(float(anomaly_index(norms)[0]), norms, 0)
    assert not ex.check_anomaly_index(-textbook, norms, 0)


def test_anomaly_index_check(capsys):
    norms = torch.tensor([100.0, 25, 90, 110, 95, 105, 98, 120, 85, 102])
    expected = float(anomaly_index(norms)[1])
    med = norms.median()
    assert abs(expected - float((med - norms[1]) / (1.4826 * (norms - med).abs().median()))) < 1e-4
    assert ex.check_anomaly_index(expected, norms, 1)
    assert not ex.check_anomaly_index(-expected, norms, 1)
    assert not ex.check_anomaly_index(expected * 1.4826, norms, 1)
    assert not ex.check_anomaly_index(None, norms, 1)
    out = capsys.readouterr().out
    assert "wrong sign" in out and "1.4826" in out


def test_flag_precision_accepts_the_printed_digits_as_a_fraction_or_a_percent(capsys):
    flagged, poisons = torch.arange(10_000), torch.arange(9712)  # precision 0.9712
    for right in (0.97, 97, 97.1, 0.9712, 97.12, np.float32(0.97), torch.tensor(97.1), np.int64(97)):
        assert ex.check_flag_precision(right, flagged, poisons), right
    for wrong in (0.98, 96, 0.9713, 97.2, 97.0, 1):  # 97.0 claims a decimal: 97.1
        assert not ex.check_flag_precision(wrong, flagged, poisons), wrong
    assert not ex.check_flag_precision(9712, flagged, poisons)
    assert "number of hits" in capsys.readouterr().out


def test_anomaly_index_accepts_the_printed_digits_and_refuses_a_coarse_one(capsys):
    norms = torch.tensor([100.0, 25, 90, 110, 95, 105, 98, 120, 85, 102])
    expected = float(anomaly_index(norms)[1])
    printed = round(expected, 2)
    assert ex.check_anomaly_index(printed, norms, 1) and ex.check_anomaly_index(np.float32(printed), norms, 1)
    assert ex.check_anomaly_index(round(expected, 1), norms, 1)
    assert not ex.check_anomaly_index(round(expected, 2) + 0.02, norms, 1)
    capsys.readouterr()
    assert not ex.check_anomaly_index(round(expected), norms, 1)  # 7: one significant digit
    assert "two significant digits" in capsys.readouterr().out
    assert not ex.check_anomaly_index("7.7", norms, 1)
    assert "the text '7.7'" in capsys.readouterr().out
