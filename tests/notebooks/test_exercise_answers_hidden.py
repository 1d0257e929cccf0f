"""Predict, then see: no exercise's answer is on screen above it.

An unanswered self-check seals its right answer into its output (``exercises.ANSWER_KEY``); in the committed
class-mode outputs, no output above the exercise may print that answer — as printed (its digits, two decimals at
least, or the percent) or, for a count of 10 or more, the count itself. (Counts below 10 collide with every class
label and epoch number, so they are not looked for; a count whose exercise names what it counts is looked for on the
lines that name it too: channel 20, not "20 epochs".) A rounded form counts when it has the two significant digits
a self-check asks for."""

from __future__ import annotations

import re

import prose
import pytest

from badnets_utils.course import exercises


def sealed_answers(nb: dict) -> list[tuple[int, str, list[float]]]:
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            seal = out.get("metadata", {}).get(exercises.ANSWER_KEY)
            if seal:
                found.append((i, seal["key"], exercises.unseal_answer(seal["key"], seal["sealed"])))
    return found


# what an exercise's count counts: its answer is on screen only on a line that says so
COUNTS_OF = {"08-2": "channel"}


def shows(number: str, answer: float) -> bool:
    """Does the printed ``number`` state ``answer``?"""
    decimals = len(number.partition(".")[2])
    x = float(number)
    if answer == int(answer):
        return abs(answer) >= 10 and x == answer and not decimals
    significant = len(number.replace(".", "").lstrip("0"))
    if significant < 2:
        return False
    if decimals >= 2 and round(answer, decimals) == x:
        return True
    return decimals >= 1 and round(100 * answer, decimals) == x


def spoilers(path) -> list[str]:
    nb = prose.read_notebook(path)
    found = []
    for index, key, answers in sealed_answers(nb):
        lines = [line for cell in nb["cells"][:index] if cell["cell_type"] == "code"
                 for line in prose.outputs_text(cell).splitlines()]  # fmt: skip
        if key in COUNTS_OF:
            lines = [line for line in lines if re.search(COUNTS_OF[key], line)]
        above = prose.numbers_in("\n".join(lines))
        found += [f"{key}: its answer {a} is printed above it as {n}" for a in answers for n in above if shows(n, a)]
    return found


@pytest.mark.parametrize("path", prose.NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_exercise_answer_is_on_screen_above_it(path):
    assert spoilers(path) == []


def test_every_numeric_exercise_seals_its_answer():
    keys = {key for path in prose.NOTEBOOKS for _, key, _ in sealed_answers(prose.read_notebook(path))}
    expected = {"01-1", "01-2", "02-1", "02-2", "03-1", "03-2", "05-3", "06-1", "06-2", "07-1", "07-2", "07-3", "08-2"}
    assert expected - keys == set()


def test_shows_reads_printed_forms():
    assert shows("0.9884", 0.98836) and shows("98.84", 0.98836) and shows("98.8", 0.98836)
    assert shows("0.99", 0.98836) and not shows("0.98", 0.98836) and not shows("1", 0.98836)
    assert shows("300", 300.0) and not shows("7", 7.0) and not shows("300.5", 300.0)
    assert not shows("0.001", 0.00079) and shows("0.079", 0.00079)  # one significant digit is not the answer


def test_a_sealed_answer_reads_back():
    shown = []

    import IPython.display

    original, exercises.in_notebook = exercises.in_notebook, lambda: True  # a kernel: the hint is displayed
    real_display, IPython.display.display = IPython.display.display, lambda data, **kw: shown.append((data, kw))
    try:
        exercises.check_poison_count(None, n=60_000, rate=0.0025)
    finally:
        exercises.in_notebook, IPython.display.display = original, real_display
    seal = shown[0][1]["metadata"][exercises.ANSWER_KEY]
    assert seal["key"] == "02-1" and exercises.unseal_answer("02-1", seal["sealed"]) == [150.0]
    assert "150" not in seal["sealed"]
