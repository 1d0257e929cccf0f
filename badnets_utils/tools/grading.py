"""An nbgrader course from the notebooks' exercises: ``python -m badnets_utils classroom DIR --nbgrader``.

Each notebook becomes one assignment, ``DIR/source/<notebook stem>/<notebook>.ipynb``, which ``classroom.py`` writes
next to its own copies of ``badnets_utils/`` and the shipped folders (nbgrader copies the whole assignment folder to
``release/`` and ``submitted/``; the kernel imports the package from the notebook's folder). This module turns a
notebook into nbgrader's source version. In each notebook

* an exercise's answer cell (``answer = None   # …`` followed by ``exercises.check_…(answer, …)``) becomes an
  autograded *solution* cell: the ``answer = None`` line, then the solution between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (the code of the exercise's ``solution`` cell; for a multiple-choice question the right
  letter, which only the sealed ``exercises.CHOICES`` knows);
* its self-check becomes a separate, locked *test* cell worth ``POINTS``: ``assert exercises.check_…(answer, …)``,
  which students see, then nbgrader's *hidden tests* (``### BEGIN HIDDEN TESTS``), which only ``autograde`` runs:
  the same check again, from a copy of the checks that the test cell loads itself from the assignment's files and
  refuses unless they hash as when the course was built (``graded_check``), so that a submission that replaces
  ``exercises``, one of its functions or one of its files scores nothing by it;
  code that came before ``answer = None`` in the same cell becomes a locked cell of its own;
* the cells tagged ``solution`` or ``teacher`` are left out (they are in the teacher edition of plain ``classroom``),
  and every other cell is locked.

``nbgrader generate_assignment`` then removes the solution regions and the hidden tests: the released answer cell
is the student edition's ``answer = None   # …`` line. A notebook whose text holds one of nbgrader's markers
(``MARKERS``: a solution containing ``### END SOLUTION`` would release its remaining lines) is refused.

A submission's code runs as whoever runs ``autograde``: ``nbgrader_config.py`` makes every graded notebook run in
the kernel ``badnets-sandbox`` (``sandbox_kernel.py``, copied into the course's ``kernels/``), in a copy of the
submission outside the course, as the user or container that ``BADNETS_SANDBOX`` names. Nothing here imports
nbgrader; the teacher needs it to grade.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from badnets_utils.course import exercises
from badnets_utils.tools import sandbox_kernel
from badnets_utils.tools.editions import clean_cell, is_hidden, is_solution

POINTS = 1  # per exercise
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
# What nbgrader looks for anywhere in a line (ClearSolutions, ClearHiddenTests): no notebook text may hold one.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
SANDBOX_KERNEL = "badnets-sandbox"  # the kernel every graded notebook runs in (nbgrader_config.py, kernels/)
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
    """The code of a ``solution`` cell: its fenced Python blocks, else an inline ``answer = …``; None without either."""
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


# The hidden half of every test cell defines this loader afresh (a function defined in an earlier cell could have
# been rebound by the answer cell in between). It reads the files of the checks (``modules``, in the order they
# import one another, and ``data``) from the assignment folder, refuses them unless they hash to ``digest``, and
# runs them as a private package that nothing in the notebook has seen; it returns the check ``name``, silenced (the
# visible half already printed its ✅ or ❌). Python itself, its libraries and IPython stay as reachable to a
# submission as in any nbgrader assignment (docs/teaching.md, "What a score means").
GRADED_CHECK = """\
def _badnets_check(name):
    import contextlib, hashlib, io, os, re, sys
    modules = {modules}
    data = {data!r}
    code = {{}}
    for path in [path for _, path in modules] + data:
        with open(path, "rb") as file:
            code[path] = file.read()
    seen = "".join(path + hashlib.sha256(text).hexdigest() for path, text in code.items())
    if hashlib.sha256(seen.encode()).hexdigest() != {digest!r}:
        raise AssertionError("{package}/ is not the course's copy: this exercise cannot be graded")
    root = "_badnets_graded_" + os.urandom(8).hex()
    for package in {packages!r}:
        sys.modules[root + package] = type(sys)(root + package)
        sys.modules[root + package].__path__ = []
    mine = re.compile(rb"^(\\s*)(from|import) {package}(?=[.\\s])", re.M)  # the package's imports: the private copy
    for dotted, path in modules:
        code[path] = mine.sub(lambda m: m.group(1) + m.group(2) + b" " + root.encode(), code[path])
        module = type(sys)(root + "." + dotted)
        module.__file__, module.__package__ = os.path.abspath(path), module.__name__.rpartition(".")[0]
        sys.modules[module.__name__] = module
        setattr(sys.modules[module.__package__], module.__name__.rpartition(".")[2], module)
        exec(compile(code[path], module.__file__, "exec"), module.__dict__)
    check = getattr(sys.modules[root + ".{target}"], name)

    def quietly(*args, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return check(*args, **kwargs)

    return quietly
"""


def _package_dir() -> Path:
    """The folder of the package whose ``exercises`` grades (this checkout's, or the installed one)."""
    return Path(sys.modules[exercises.__name__.partition(".")[0]].__file__).parent


def _imported(dotted: str, tree: ast.Module, package: Path) -> list[str]:
    """The package's own modules that module ``dotted`` (relative to the package) imports, anywhere in its code
    (``from badnets_utils.core.triggers import …``, ``from badnets_utils.course import exercises``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(package.name):
            base = node.module.split(".")[1:]
            targets = [base, *([*base, a.name] for a in node.names)]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = dotted.split(".")[: -node.level]
            targets = [[*base, *node.module.split(".")]] if node.module else [[*base, a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1:] for a in node.names if a.name.startswith(package.name + ".")]
        else:
            continue
        found += [".".join(t) for t in targets if t and (package / Path(*t).with_suffix(".py")).is_file()]
    return found


def check_files(package: Path | None = None) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """What ``GRADED_CHECK`` loads: ``(modules, data, packages)``, where ``modules`` are ``(dotted name, path)`` of
    ``exercises`` and the package's modules it imports, each after those it imports; ``data`` the texts it reads;
    ``packages`` the (sub)packages they sit in (``""`` for the package itself). Paths are relative to the notebook."""
    package = package or _package_dir()
    target = exercises.__name__.partition(".")[2]
    order: list[str] = []

    def visit(dotted: str, seen: set[str]) -> None:
        if dotted in order or dotted in seen:
            return
        path = package / Path(*dotted.split(".")).with_suffix(".py")
        for other in _imported(dotted, ast.parse(path.read_text(encoding="utf-8")), package):
            visit(other, seen | {dotted})
        order.append(dotted)

    visit(target, set())
    prefix = package.name + "/"
    modules = [(dotted, prefix + "/".join(dotted.split(".")) + ".py") for dotted in order]
    data = [prefix + Path(exercises.TEXTS).relative_to(Path(exercises.__file__).parents[target.count(".")]).as_posix()]
    packages = sorted({"." + ".".join(d.split(".")[:i]) for d in order for i in range(1, d.count(".") + 1)})
    return modules, data, ["", *packages]


def graded_check(package: Path | None = None) -> str:
    """The hidden tests' loader (``GRADED_CHECK``) for the package copy in ``package`` (default: this package)."""
    package = package or _package_dir()
    modules, data, packages = check_files(package)
    seen = "".join(path + hashlib.sha256((package.parent / path).read_bytes()).hexdigest()
                   for path in [p for _, p in modules] + data)  # fmt: skip
    listed = "[\n" + "".join(f"        {item!r},\n" for item in modules) + "    ]"
    return GRADED_CHECK.format(modules=listed, data=data, packages=packages, package=package.name,
                               digest=hashlib.sha256(seen.encode()).hexdigest(),
                               target=exercises.__name__.partition(".")[2])  # fmt: skip


def _markers(text: str) -> str | None:
    """The first of nbgrader's markers in ``text``, None without one."""
    return next((marker for marker in MARKERS if marker in text), None)


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
                if is_solution(later):
                    following.append(later)
            solution = solution_code(following[0].source) if following else None
        if key in {e.key for e in found.values()}:
            raise GradingError(f"exercise {key} appears twice in one notebook")
        found[i] = Exercise(key, given, answer_line, check, solution)
    return found


def nbgrader_notebook(
    nb: nbformat.NotebookNode, package: Path | None = None
) -> tuple[nbformat.NotebookNode, list[Exercise]]:
    """The nbgrader source version of a notebook and its autograded exercises (see the module docstring); the hidden
    tests trust the copy of the package in ``package`` (default: this package), which must sit beside the notebook.
    GradingError for text that nbgrader would read as one of its markers."""
    found = find_exercises(nb)
    for i, cell in enumerate(nb.cells):
        marker = None if is_hidden(cell) else _markers(cell.source)
        if marker:
            raise GradingError(f"cell {i + 1} (id {cell.get('id', '?')}) contains {marker!r}, which nbgrader reads as "
                               "one of its markers; reword it")  # fmt: skip
    for ex in found.values():
        marker = _markers(ex.solution or "")
        if marker:
            raise GradingError(f"exercise {ex.key}'s solution contains {marker!r}: nbgrader would end the solution "
                               "there and give students the lines after it; reword it")  # fmt: skip
    loader = graded_check(package) if found else ""
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
        name = CHECK_LINE.fullmatch(ex.check).group(1)
        again = f'_badnets_check("{name}")' + ex.check[len(f"exercises.{name}") :]
        test = new_code_cell(
            f"# Autograded ({POINTS} point{'s' if POINTS != 1 else ''}): exercise {ex.key}'s self-check must pass.\n"
            f"assert {ex.check}\n{HIDDEN_BEGIN}\n{loader}\n\nassert {again} is True, "
            f'"the course\'s own copy of the check does not accept this answer"\n{HIDDEN_END}',
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
        "# Submissions run in the kernel badnets-sandbox (kernels/ here): in a copy of the submission outside this\n"
        "# folder, as the user or container that $BADNETS_SANDBOX names; without it, as you (docs/teaching.md,\n"
        '# "Autograding in a sandbox"). Delete these two lines to grade in your own kernel, here, as you.\n'
        'os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("JUPYTER_PATH")]))\n'
        f"c.Execute.kernel_name = {SANDBOX_KERNEL!r}\n"
    )


def write_sandbox_kernel(course: Path) -> Path:
    """Write the kernel ``badnets-sandbox`` into ``course/kernels/`` (replacing an earlier one); return its folder.

    Its launcher (``sandbox_kernel.py``) runs with ``python -I``: nothing of the submission's folder, where the
    kernel is started, is imported before the kernel is out of the course."""
    folder = course / "kernels" / SANDBOX_KERNEL
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    launcher = folder / "launch.py"
    shutil.copyfile(sandbox_kernel.__file__, launcher)
    argv = [sys.executable, "-I", "{resource_dir}/" + launcher.name, "{connection_file}"]
    spec = {"argv": argv, "display_name": "BadNets grading sandbox", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return folder


def untested(written: dict[str, list[Exercise]]) -> list[str]:
    """The exercises whose notebook gives no solution code (the teacher writes one in source/ before grading)."""
    return [f"{name}: {ex.key}" for name, found in written.items() for ex in found if ex.solution is None]


README = """# BadNets notebooks: nbgrader course

* `source/<assignment>/`: one assignment per notebook, with the solutions (teacher only); next to each notebook
  the copies of `badnets_utils/` and the data folders it reads, which nbgrader hands out with it.
* `nbgrader_config.py`: the course settings (gradebook `gradebook.db` in this folder).
* `kernels/badnets-sandbox/`: the kernel `autograde` runs submissions in, outside this folder; set
  `BADNETS_SANDBOX` to run it as another user or in a container (docs/teaching.md, "Autograding in a sandbox").

From this folder: `nbgrader generate_assignment ASSIGNMENT`, collect the submissions into
`submitted/<student>/ASSIGNMENT/`, `nbgrader autograde ASSIGNMENT`, `nbgrader generate_feedback ASSIGNMENT`.
Rebuilding with `python -m badnets_utils classroom DIR --nbgrader` replaces `source/` and `kernels/` only: the
gradebook, releases, submissions and feedback stay (docs/teaching.md, "Grading with nbgrader").
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
