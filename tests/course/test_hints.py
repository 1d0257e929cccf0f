"""Graduated hints never give the solution away.

For every notebook: the code of its ``solution`` cells (each line, whitespace normalised, and the right-hand side of
``answer = ...``) must not appear in any hint of that notebook's exercises — neither the first hint an unanswered
check prints, nor the second one ``exercises.hint(key, level=2)`` prints.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import io
import re
from pathlib import Path

import nbformat
import pytest
import torch

from badnets_utils.course import exercises as ex

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-8]_*.ipynb"))
MIN_CODE = 8  # shorter fragments ("0", "(22, 0)") are too generic to mean a leak
# Solution code is every line of a solution cell's ```python block (or code cell) and every inline `answer = ...`;
# explanatory inline code such as `(row, col)` and bare API names such as `canvas.clear()` are not solutions.


def norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_fragments(nb) -> set[str]:
    """Every code line of the notebook's solution cells (and the expressions assigned to ``answer``)."""
    out = set()
    for cell in nb.cells:
        if "solution" not in cell.metadata.get("tags", []):
            continue
        blocks = re.findall(r"```python\n(.*?)```", cell.source, re.S)
        blocks += [c for c in re.findall(r"`([^`\n]+)`", cell.source) if c.startswith("answer")]
        if cell.cell_type == "code":
            blocks.append(cell.source)
        for block in blocks:
            for line in block.splitlines():
                line = line.split("#")[0].strip()
                if re.fullmatch(r"[\w.]+(\(\))?", line):
                    continue  # a bare name or call without arguments (`canvas.clear()`): an API a hint may name
                for piece in (line, line.split("=", 1)[1] if line.startswith("answer") and "=" in line else ""):
                    if len(norm(piece)) >= MIN_CODE:
                        out.add(norm(piece))
    return out


def solution_blocks(nb) -> list[str]:
    """The code blocks of the notebook's solution cells."""
    out = []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            out += re.findall(r"```python\n(.*?)```", cell.source, re.S)
            out += [cell.source] if cell.cell_type == "code" else []
    return out


def solution_prose(nb) -> list[str]:
    """The explanations of the notebook's solution cells: their markdown without code blocks and tags."""
    out = []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []) and cell.cell_type == "markdown":
            text = re.sub(r"```.*?```", " ", cell.source, flags=re.S)
            out.append(re.sub(r"</?(details|summary)>|Solution", " ", text))
    return out


def ingredients(code: str) -> set[str]:
    """The innermost calls and subscripts of solution code (``cm.sum()``, ``cm[:, TARGET]``): the steps that, all
    spelt out in a hint, are the solution."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    steps = (ast.Call, ast.Subscript)
    return {
        norm(ast.unparse(node))
        for node in ast.walk(tree)
        if isinstance(node, steps) and not any(isinstance(n, steps) for n in ast.walk(node) if n is not node)
    }


MIN_PROSE = 24  # characters (whitespace removed) a hint may share with a solution's explanation


def printed(fn, *args, **kwargs) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(*args, **kwargs)
    return buf.getvalue()


def check_calls() -> dict[str, tuple]:
    """One unanswered call of every check, keyed by exercise."""
    labels = torch.tensor([1, 0, 1, 2])
    images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    return {
        "01-1": (ex.check_class_count, None, labels, 1),
        "01-2": (ex.check_pixel_mean, None, images),
        "01-3": (ex.check_to_float, None),
        "02-1": (ex.check_poison_count, None, 60_000, 0.005),
        "02-2": (ex.check_changed_pixels, None, images[0], images[1]),
        "02-3": (ex.check_top_left_stamp, None, images, torch.full((1, 5, 5), 255, dtype=torch.uint8)),
        "03-1": (ex.check_asr, None, labels, 1),
        "03-2": (ex.check_missed_triggers, None, torch.eye(10), 1),
        "04-1": (ex.check_min_poisons, None, [0, 60], [0.0, 1.0]),
        "04-2": (ex.check_rate_for_count, None, 50, 60_000),
        "05-1": (ex.check_trigger_offset, None, 28, 6, "bottom-left"),
        "05-2": (ex.check_plus_trigger, None),
        "05-3": (ex.check_blended_pixel, None, 200, 255, 0.4),
        "06-1": (ex.check_all_to_all_label, None, 9),
        "06-2": (ex.check_smallest_trigger, None, [1, 5], [0.0, 1.0]),
        "07-1": (ex.check_flag_precision, None, labels, labels),
        "07-2": (ex.check_removed_poisons, None, labels, labels),
        "07-3": (ex.check_anomaly_index, None, torch.arange(10.0), 1),
        "08-1": (ex.check_count_prediction, None, [0, 50], [100.0, 0.0]),
        "08-2": (ex.check_top_channel, None, torch.arange(32.0)),
    }


def test_every_exercise_has_two_hints_and_a_check():
    assert set(check_calls()) == set(ex.HINTS)
    for key, (nudge, api) in ex.HINTS.items():
        assert nudge and api and nudge != api, key


@pytest.mark.parametrize("key", sorted(ex.HINTS))
def test_unanswered_check_prints_the_first_hint_only(key):
    fn, *args = check_calls()[key]
    out = printed(fn, *args)
    assert ex.HINTS[key][0] in out and ex.HINTS[key][1] not in out
    assert f'exercises.hint("{key}", level=2)' in out
    assert ex.HINTS[key][1] in printed(ex.hint, key, level=2)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_hints_do_not_contain_the_solution(path):
    nb = nbformat.read(path, as_version=4)
    fragments = solution_fragments(nb)
    prefix = path.name[:2]
    keys = [k for k in ex.HINTS if k.startswith(prefix + "-")]
    hints = {k: norm(printed(check_calls()[k][0], *check_calls()[k][1:]) + printed(ex.hint, k, level=2)) for k in keys}
    leaks = [(k, f) for k, text in hints.items() for f in fragments if f in text]
    assert not leaks, f"hints that print solution code: {leaks}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_hints_stop_one_step_short_of_the_solution(path):
    """No hint spells out every step of a solution (each of its innermost calls and subscripts), nor repeats a
    formula or sentence of a solution's explanation."""
    nb = nbformat.read(path, as_version=4)
    hints = {k: [norm(h) for h in ex.HINTS[k]] for k in ex.HINTS if k.startswith(path.name[:2] + "-")}
    code = [c.source for c in nb.cells if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])]
    given = set().union(*map(ingredients, code))
    leaks = []
    for block in solution_blocks(nb):
        steps = {s for s in ingredients(block) if s not in given}  # what the exercise's own cell shows is no leak
        if steps and sum(map(len, steps)) >= MIN_CODE:
            leaks += [(k, sorted(steps)) for k, texts in hints.items() for h in texts if all(s in h for s in steps)]
    for prose in map(norm, solution_prose(nb)):
        for k, texts in hints.items():
            for h in texts:
                m = difflib.SequenceMatcher(None, h, prose, autojunk=False).find_longest_match()
                if m.size >= MIN_PROSE:
                    leaks.append((k, h[m.a : m.a + m.size]))
    assert not leaks, f"hints that give the solution away: {leaks}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_code_exercise_has_a_solution_cell(path):
    nb = nbformat.read(path, as_version=4)
    checks = [c for c in nb.cells if c.cell_type == "code" and "exercises.check_" in c.source
              and "check_choice" not in c.source]  # fmt: skip
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= len(checks), f"{path.name}: {len(checks)} code exercises, {len(solutions)} solutions"
    assert not any("<details>" in c.source for c in nb.cells if c not in solutions), "untagged solution"


def test_choice_questions_accept_letters_in_any_form():
    for key, (_, letters) in ex.CHOICES.items():
        (right,) = [k for k in letters if ex._is_right(key, k)]
        for form in (right, right.upper(), f"({right})", f"{right})"):
            assert ex.check_choice(form, key), (key, form)
        wrong = next(k for k in letters if k != right)
        assert not ex.check_choice(wrong, key)
    assert not ex.check_choice(None, "03-predict") and not ex.check_choice("z", "03-predict")


def test_the_08_checks_judge_answers(capsys):
    assert ex.check_count_prediction(60, [0, 50], [100.0, 0.0], count=25) is True  # 50 % measured, within 15
    assert ex.check_count_prediction(10, [0, 50], [100.0, 0.0], count=25) is False
    assert ex.check_count_prediction("x", [0, 50], [100.0, 0.0]) is False
    diff = torch.zeros(32)
    diff[7] = 3.0
    assert ex.check_top_channel(7, diff) is True and ex.check_top_channel(torch.tensor(7), diff) is True
    assert ex.check_top_channel(6, diff) is False and ex.check_top_channel(32, diff) is False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_choice_keys_name_their_own_question(path):
    """A notebook's multiple-choice key exists, and is "<nb>-<N>" only after "**Exercise N" (in the markdown cell
    before it), else "<nb>-predict": a prediction never takes the key of an exercise."""
    nb = nbformat.read(path, as_version=4)
    before = ""
    for cell in nb.cells:
        for key in re.findall(r'check_choice\(answer, "([^"]+)"\)', cell.source):
            assert key in sorted(ex.CHOICES), f"{path.name}: no question {key!r}"
            exercise = re.findall(r"\*\*Exercise (\d+)", before)
            expected = f"{path.name[:2]}-{exercise[-1]}" if exercise else f"{path.name[:2]}-predict"
            assert key == expected, f"{path.name}: the question before {cell.source!r} should be keyed {expected!r}"
        if cell.cell_type == "markdown":
            before = cell.source
