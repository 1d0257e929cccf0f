"""Properties of the self-checks' one number-reading rule (exercises module docstring), checked with hypothesis:
every form a student would type for a right answer is accepted, and wrong, coarse, ambiguous or non-numeric
answers are refused."""

from __future__ import annotations

import contextlib
import io
import math
from decimal import Decimal

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from badnets_utils.course import exercises as ex
from badnets_utils.defences.cleanse import anomaly_index

FAST = settings(max_examples=80, deadline=None, database=None)  # no .hypothesis folder in the tree

# A share hits / n, as an ASR or a defence's precision is.
shares = st.integers(min_value=1, max_value=5_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


def share_checks(hits: int, n: int) -> list:
    """The checks of a share (ASR, flag precision), each a function of the answer alone, for the share hits / n."""
    preds = (torch.arange(n) < hits).long()
    flagged, poisons = torch.arange(n), torch.arange(hits)
    return [lambda a: ex.check_asr(a, preds, 1), lambda a: ex.check_flag_precision(a, flagged, poisons)]


def quietly(check, answer) -> tuple[bool, str]:
    """A check's verdict and the line it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = check(answer)
    return ok, out.getvalue()


def forms(x: float) -> list:
    """The same number as a student may hold it: Python, NumPy (also 0-d) and 0-d torch; float32 and float64 for a
    float, int64 (and int32 or uint8) for an int."""
    if isinstance(x, int):
        return [x, np.int64(x), np.int32(x), np.array(x), torch.tensor(x), torch.tensor(x, dtype=torch.int32)]
    return [x, np.float32(x), np.float64(x), np.array(x), torch.tensor(x), torch.tensor(x, dtype=torch.float64)]


def significant(x: float) -> int:
    """Significant digits of the decimal a number prints as (0.10 prints as 0.1: one)."""
    return len(f"{Decimal(repr(x)):f}".lstrip("-").replace(".", "").lstrip("0"))


def unit(x: float) -> float:
    """A unit of the last decimal ``x`` prints with: 0.01 for 0.97 (even if printed as 0.970), 1 for 97."""
    return 10.0 ** Decimal(repr(x)).as_tuple().exponent


def printed(x: float, k: int) -> float | int:
    """``x`` rounded to ``k`` decimals as a notebook prints it (f"{x:.4f}", f"{x:.0f}"), read back as a number."""
    return float(f"{x:.{k}f}") if k else int(f"{x:.0f}")


@FAST
@given(share=shares)
def test_a_share_at_full_precision_is_right_in_every_form(share):
    t = share[0] / share[1]
    for check in share_checks(*share):
        for answer in forms(t) + forms(100 * t) + [float(np.float32(t))]:
            assert quietly(check, answer)[0], (t, answer)


@FAST
@given(share=shares, k=st.integers(min_value=2, max_value=5), percent=st.booleans())
def test_a_share_rounded_as_printed_is_right_in_every_form(share, k, percent):
    t = share[0] / share[1]
    value = printed(100 * t if percent else t, k - 2 if percent else k)  # 0.9884 and 98.84 (%) alike
    assume(significant(value) >= 2)
    for check in share_checks(*share):
        for answer in forms(value):
            ok, out = quietly(check, answer)
            assert ok, (t, answer, out)
            assert ("read as" in out) == (percent and value <= 1), out  # 0.53 (%) for 0.0053: the note says so


@FAST
@given(
    share=shares,
    k=st.integers(min_value=2, max_value=5),
    percent=st.booleans(),
    units=st.integers(min_value=2, max_value=400).flatmap(lambda u: st.sampled_from([u, -u])),
)
def test_a_share_off_by_more_than_its_printed_precision_is_wrong(share, k, percent, units):
    t = share[0] / share[1]
    scale, decimals = (100, k - 2) if percent else (1, k)
    value = printed(scale * t + units * 10.0**-decimals, decimals)
    assume(abs(value - scale * t) > unit(value))  # off by more than a unit of its last printed decimal
    other = 100 * t if scale == 1 else t
    assume(not 0 <= value <= 1 or abs(value - other) > unit(value))  # also read the other way
    for check in share_checks(*share):
        for answer in forms(value):
            assert not quietly(check, answer)[0], (t, answer)


@FAST
@given(share=shares.filter(lambda s: 0.5 < s[0] / s[1] < 1))
def test_the_whole_number_one_is_ambiguous_for_a_share_below_one(share):
    for check in share_checks(*share):
        for answer in (1, np.int64(1), np.array(1), torch.tensor(1), torch.tensor(1, dtype=torch.uint8)):
            ok, out = quietly(check, answer)
            assert not ok and "ambiguous" in out, (share, answer)


@FAST
@given(share=shares)
def test_bools_and_non_numbers_are_refused_in_one_line(share):
    t = share[0] / share[1]
    for check in share_checks(*share):
        for answer in (True, False, np.True_, torch.tensor(True), np.array(False), str(t), [t], torch.tensor([t]),
                       np.array([t]), float("nan"), float("inf"), -math.inf, complex(t, 0)):  # fmt: skip
            ok, out = quietly(check, answer)
            assert not ok and out.startswith("❌ expected") and out.count("\n") == 1, (answer, out)


@FAST
@given(count=st.integers(min_value=0, max_value=5_000), extra=st.integers(min_value=0, max_value=100))
def test_a_count_is_right_as_any_whole_number_and_wrong_otherwise(count, extra):
    removed, poisons = torch.arange(count + extra), torch.arange(count)
    labels = (torch.arange(count + extra) < count).long()
    checks = [lambda a: ex.check_removed_poisons(a, removed, poisons), lambda a: ex.check_class_count(a, labels, 1)]
    rights = (count, float(count), np.int64(count), np.int32(count), np.float64(count), np.array(count),
              torch.tensor(count), torch.tensor(float(count)), torch.tensor(count, dtype=torch.int32))  # fmt: skip
    wrongs = (count + 0.5, count - 0.5, count + 1, count - 1, torch.tensor(count + 0.5), str(count), True, False)
    for check in checks:
        assert all(quietly(check, a)[0] for a in rights), count
        assert not any(quietly(check, a)[0] for a in wrongs), count


norms_lists = st.lists(st.floats(min_value=1, max_value=100, allow_nan=False), min_size=10, max_size=10)


@FAST
@given(norms=norms_lists, cls=st.integers(min_value=0, max_value=9), k=st.integers(min_value=1, max_value=4))
def test_the_anomaly_index_is_right_as_printed_and_wrong_off_its_precision(norms, cls, k):
    norms = torch.tensor(norms)
    x = float(anomaly_index(norms)[cls])
    v = norms.double().numpy()
    mad = np.median(np.abs(v - np.median(v)))
    assume(math.isfinite(x) and mad > 1e-3 and abs(x) < 1e4)
    textbook = float((np.median(v) - v[cls]) / (1.4826 * mad))
    value = printed(x, k)
    if significant(value) >= 2:
        assert all(quietly(lambda a: ex.check_anomaly_index(a, norms, cls), a)[0] for a in forms(value)), (x, value)
    wrong = printed(x + 3 * 10.0**-k, k)
    assume(min(abs(wrong - x), abs(wrong - textbook)) > max(unit(wrong), 2e-6 * abs(x)))  # past float32 error too
    assert not any(quietly(lambda a: ex.check_anomaly_index(a, norms, cls), a)[0] for a in forms(wrong)), (x, wrong)
