"""An nbgrader course from the notebooks' exercises: ``python -m badnets_utils classroom DIR --nbgrader``.

Each notebook becomes one assignment, ``DIR/source/<notebook stem>/<notebook>.ipynb``, which ``classroom.py`` writes
next to its own copies of ``badnets_utils/`` and the shipped folders (nbgrader copies the whole assignment folder to
``release/`` and ``submitted/``; the kernel imports the package from the notebook's folder). This module turns a
notebook into nbgrader's source version. In each notebook

* an exercise's answer cell (``answer = None   # …`` followed by ``exercises.check_…(answer, …)``) becomes an
  autograded *solution* cell: the ``answer = None`` line, then the solution between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (the code of the exercise's ``solution`` cell; for a multiple-choice question the right
  letter, which only the sealed ``exercises.CHOICES`` knows);
* its self-check becomes a separate, locked *test* cell worth ``POINTS``: ``assert exercises.check_…(answer, …)``;
  code that came before ``answer = None`` in the same cell becomes a locked cell of its own;
* the cells tagged ``solution`` or ``teacher`` are left out (they are in the teacher edition of plain ``classroom``),
  and every other cell is locked.

``nbgrader generate_assignment`` then removes the solution regions: the released answer cell is the student
edition's ``answer = None   # …`` line. Nothing here imports nbgrader; the teacher needs it to grade.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from badnets_utils.course import exercises
from badnets_utils.tools.editions import clean_cell, is_hidden

POINTS = 1  # per exercise
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
COURSE_ID = "badnets-notebooks"
CELL_TIMEOUT_S = 1800  # per cell during autograding: a RETRAIN run of notebook 04 trains for about half an hour
INSTALL = 'pip install -e ".[grading]"'
ANSWER_LINE = re.compile(r"answer = None\b.*")
CHECK_LINE = re.compile(r"exercises\.(check_\w+)\(answer\b.*\);?")
NO_SOLUTION = "answer = None  # the notebook's solution has no code: write the right answer here before grading"


class GradingError(ValueError):
    """A notebook whose exercises cannot be turned into autograded cells, or nbgrader missing."""


@dataclass(frozen=True)
class Exercise:
    """One autograded exercise of a notebook."""

    key: str  # "01-2", as in exercises.HINTS / CHOICES
    given: str  # code before ``answer = None`` in the answer cell (may be empty)
    answer_line: str  # ``answer = None   # …``
    check: str  # ``exercises.check_…(answer, …)`` without the trailing ``;``
    solution: str | None  # the solution code; None when the notebook gives none


def require_nbgrader() -> None:
    """Raise GradingError (one line: what to install) unless nbgrader can be imported."""
    import importlib.util

    if importlib.util.find_spec("nbgrader") is None:
        raise GradingError(f"--nbgrader needs nbgrader, which is not installed: {INSTALL}")


def parse_answer_cell(source: str) -> tuple[str, str, str] | None:
    """``(given, answer_line, check)`` of an exercise's answer cell, None for any other cell.

    A cell with an ``answer = None`` line and an ``exercises.check_…(answer, …)`` line in another layout than
    "given code, the answer line, the check line last" is refused: it would otherwise go ungraded unnoticed.
    """
    lines = source.rstrip().split("\n")
    answers = [i for i, line in enumerate(lines) if ANSWER_LINE.fullmatch(line.rstrip())]
    checks = [i for i, line in enumerate(lines) if CHECK_LINE.fullmatch(line.rstrip())]
    if not answers and not checks:
        return None
    if len(answers) != 1 or checks != [len(lines) - 1] or answers[0] != len(lines) - 2:
        raise GradingError(
            "an exercise cell must end with one `answer = None ...` line and then one `exercises.check_...(answer, "
            f"...)` line; got: {source[:80]!r}"
        )
    given = "\n".join(lines[: answers[0]]).strip("\n")
    return given, lines[answers[0]].rstrip(), lines[-1].rstrip().rstrip(";")


def exercise_key(check: str) -> str:
    """The exercise's key: a multiple-choice question's argument, else the hint key its check function uses."""
    name = CHECK_LINE.fullmatch(check).group(1)
    if name == "check_choice":
        found = re.match(r'exercises\.check_choice\(answer,\s*"([^"]+)"', check)
        if found is None or found.group(1) not in exercises.CHOICES:
            raise GradingError(f"{check!r} does not name a known multiple-choice question")
        return found.group(1)
    function = getattr(exercises, name, None)
    if function is None:
        raise GradingError(f"{check!r} calls exercises.{name}, which does not exist")
    found = exercises.HINT_CALL.search(inspect.getsource(function))
    if found is None:
        raise GradingError(
            f"exercises.{name} names its exercise in neither `_hint(key…)` nor `_check_share(answer, key…)`"
        )
    return found.group(1)


def choice_solution(key: str) -> str:
    """``answer = "<letter>"`` for multiple-choice question ``key``: the one letter the sealed key accepts."""
    right = [letter for letter in exercises.CHOICES[key][1] if exercises._is_right(key, letter)]
    if len(right) != 1:
        raise GradingError(f"question {key} has {len(right)} right letters in exercises.CHOICES; expected one")
    return f'answer = "{right[0]}"'


def solution_code(markdown: str) -> str | None:
    """The code of a ``solution`` cell: its ```python blocks, else an inline `answer = …`; None without either."""
    blocks = re.findall(r"```python\n(.*?)```", markdown, re.S)
    if blocks:
        return "\n".join(block.strip("\n") for block in blocks)
    inline = re.findall(r"`(answer\s*=[^`]+)`", markdown)
    return inline[0].strip() if inline else None


def _meta(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id}
    meta["schema_version"] = SCHEMA_VERSION
    if grade:
        meta["points"] = POINTS
    return meta


def _grade_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def find_exercises(nb: nbformat.NotebookNode) -> dict[int, Exercise]:
    """The notebook's exercises by the index of their answer cell, each with its solution."""
    found: dict[int, Exercise] = {}
    for i, cell in enumerate(nb.cells):
        parsed = parse_answer_cell(cell.source) if cell.cell_type == "code" and not is_hidden(cell) else None
        if parsed is None:
            continue
        given, answer_line, check = parsed
        key = exercise_key(check)
        if key in exercises.CHOICES:
            solution = choice_solution(key)
        else:  # the first solution cell after the answer cell, before the next code cell that is not one
            following = []
            for later in nb.cells[i + 1 :]:
                if not is_hidden(later):
                    if later.cell_type == "code":
                        break
                    continue
                if "solution" in later.metadata.get("tags", []):
                    following.append(later)
            solution = solution_code(following[0].source) if following else None
        if key in {e.key for e in found.values()}:
            raise GradingError(f"exercise {key} appears twice in one notebook")
        found[i] = Exercise(key, given, answer_line, check, solution)
    return found


def nbgrader_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[Exercise]]:
    """The nbgrader source version of a notebook and its autograded exercises (see the module docstring)."""
    found = find_exercises(nb)
    cells = []
    for i, cell in enumerate(nb.cells):
        if is_hidden(cell):
            continue
        cell = clean_cell(cell)
        ex = found.get(i)
        if ex is None:
            cell.metadata["nbgrader"] = _meta(_grade_id(f"cell-{cell.id}"), locked=True)
            cells.append(cell)
            continue
        if ex.given:
            given = new_code_cell(ex.given, metadata={"nbgrader": _meta(_grade_id(f"given-{ex.key}"), locked=True)})
            given.id = f"{cell.id}-given"
            cells.append(given)
        solution = ex.solution or NO_SOLUTION
        cell.source = f"{ex.answer_line}\n{BEGIN}\n{solution}\n{END}"
        cell.metadata["nbgrader"] = _meta(_grade_id(f"answer-{ex.key}"), solution=True)
        test = new_code_cell(
            f"# Autograded ({POINTS} point{'s' if POINTS != 1 else ''}): exercise {ex.key}'s self-check must pass.\n"
            f"assert {ex.check}",
            metadata={"nbgrader": _meta(_grade_id(f"check-{ex.key}"), grade=True, locked=True)},
        )
        test.id = f"{cell.id}-check"
        cells += [cell, test]
    out = nbformat.from_dict({**nb, "cells": cells})
    out.metadata.pop("widgets", None)
    return out, list(found.values())


def nbgrader_config() -> str:
    """``nbgrader_config.py`` for a course folder: everything relative to the file's own folder."""
    return (
        '"""nbgrader settings of this course, written by `python -m badnets_utils classroom DIR --nbgrader`."""\n\n'
        "import os\n\n"
        "c = get_config()  # noqa: F821 (nbgrader provides it)\n"
        "HERE = os.path.dirname(os.path.abspath(__file__))\n"
        "c.CourseDirectory.root = HERE\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        'c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")\n'
        "# Per cell while autograding (nbgrader's default, 30 s, is too short for a notebook's training cells).\n"
        f"c.Execute.timeout = {CELL_TIMEOUT_S}\n"
        "# A released answer cell keeps only its `answer = None   # ...` line, as in the student edition.\n"
        'c.ClearSolutions.code_stub = {"python": ""}\n'
    )


def untested(written: dict[str, list[Exercise]]) -> list[str]:
    """The exercises whose notebook gives no solution code (the teacher writes one in source/ before grading)."""
    return [f"{name}: {ex.key}" for name, found in written.items() for ex in found if ex.solution is None]


README = """# BadNets notebooks: nbgrader course

* `source/<assignment>/`: one assignment per notebook, with the solutions (teacher only); next to each notebook
  the copies of `badnets_utils/` and the data folders it reads, which nbgrader hands out with it.
* `nbgrader_config.py`: the course settings (gradebook `gradebook.db` in this folder).

From this folder: `nbgrader generate_assignment ASSIGNMENT`, collect the submissions into
`submitted/<student>/ASSIGNMENT/`, `nbgrader autograde ASSIGNMENT`, `nbgrader generate_feedback ASSIGNMENT`.
Rebuilding with `python -m badnets_utils classroom DIR --nbgrader` replaces `source/` only: the gradebook,
releases, submissions and feedback stay (docs/teaching.md, "Grading with nbgrader").
"""


def report(out: Path, written: dict[str, list[Exercise]]) -> str:
    """What ``classroom --nbgrader`` prints: what it wrote, the next command, exercises lacking a solution."""
    count = sum(len(found) for found in written.values())
    lines = [
        f"wrote {len(written)} assignments ({count} autograded exercises, {POINTS} point each) to {out / 'source'}",
        f"next, in {out}: nbgrader generate_assignment ASSIGNMENT (one of: {', '.join(written)})",
    ]
    lines += [f"note: {item} has no solution code in its notebook; write one in source/ before grading"
              for item in untested(written)]  # fmt: skip
    return "\n".join(lines)
