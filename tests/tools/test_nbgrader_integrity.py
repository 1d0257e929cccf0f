"""Autograding that a submission can neither game nor use against the teacher.

Two exploits of the first nbgrader course: an answer cell that leaves ``answer = None`` and replaces
``exercises.check_…`` scored full marks, and one that copied ``source/`` (the solutions) to the course root and
appended to ``nbgrader_config.py`` (which every later nbgrader command runs as the teacher) succeeded. The hidden
half of each test cell now grades with its own copy of the checks, read from files it hashes; every submission runs
in the kernel ``badnets-sandbox``, in a copy outside the course, as the user ``BADNETS_SANDBOX`` names.

The in-process tests run a test cell's code directly (no kernel, under a second); the round runs what a teacher runs
on a synthetic notebook that needs no data (generate_assignment once, then ``autograde``: about 35 s on two
cores). The separate-user sandbox needs root to switch users (``setpriv``): skipped elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from test_nbgrader import _nbgrader_command, _submit, right_letter, synthetic_notebook

from badnets_utils.course import exercises
from badnets_utils.tools import classroom as C
from badnets_utils.tools import grading as G

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "99_synthetic"


def _test_cell(nb: nbformat.NotebookNode, key: str) -> str:
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"check-{key}")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """An assignment folder as autograde runs it: its own copy of the package, the working folder."""
    C.copy_shipped(ROOT, tmp_path)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("_badnets_graded_")]:
        del sys.modules[name]


def _run(cell: str, answer, **names) -> None:
    """Run a test cell's code as the kernel would, after an answer cell left ``answer`` and ``names``."""
    exec(compile(cell, "<test cell>", "exec"), {"answer": answer, "exercises": exercises, **names})


def test_replacing_a_check_scores_nothing(folder: Path, monkeypatch, capsys):
    nb, _ = G.nbgrader_notebook(synthetic_notebook(), folder / "badnets_utils")
    count, choice = _test_cell(nb, "02-1"), _test_cell(nb, "02-4")
    inputs = {"n": 60_000, "rate": 0.005}
    _run(count, 300, **inputs)  # the right answer passes both halves
    _run(choice, right_letter("02-4"))
    with pytest.raises(AssertionError):
        _run(count, 299, **inputs)
    # the exploit: `exercises.check_poison_count = lambda *a, **k: True`, and the module itself replaced
    monkeypatch.setattr(exercises, "check_poison_count", lambda *a, **k: True)
    monkeypatch.setattr(exercises, "check_choice", lambda *a, **k: True)
    monkeypatch.setitem(sys.modules, "badnets_utils.course.exercises", exercises)
    for cell, names in ((count, inputs), (choice, {})):
        with pytest.raises(AssertionError, match="does not accept this answer"):
            _run(cell, None, **names)
    # a check rewritten on disk (the submission's folder is the kernel's working folder) is refused, not run
    with open(folder / "badnets_utils" / "course" / "exercises.py", "a", encoding="utf-8") as file:
        file.write("\n\ndef check_poison_count(*args, **kwargs):\n    return True\n")
    with pytest.raises(AssertionError, match="not the course's copy"):
        _run(count, None, **inputs)
    capsys.readouterr()


def test_the_hidden_half_loads_every_module_the_checks_import():
    modules, data, packages = G.check_files()
    names = [dotted for dotted, _ in modules]
    assert names[-1] == exercises.__name__.partition(".")[2] and len(set(names)) == len(names)
    for lazy in ("triggers", "cleanse"):  # imported inside check functions
        assert any(n.rpartition(".")[2] == lazy for n in names), lazy
    assert data == [f"badnets_utils/{Path(exercises.TEXTS).relative_to(G._package_dir()).as_posix()}"]
    assert packages[0] == "" and all(Path(p).parts[0] == "badnets_utils" for _, p in modules)


# ----------------------------------------------------------------------------- the round, as a teacher runs it


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The synthetic course with its assignment released (nbgrader's skip or CI failure as in test_nbgrader)."""
    import importlib.util

    if importlib.util.find_spec("nbgrader") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the nbgrader tests cannot run: nbgrader is not installed ({G.INSTALL})")
        pytest.skip(f"nbgrader is not installed ({G.INSTALL})")
    base = tmp_path_factory.mktemp("integrity")
    (base / "notebooks").mkdir()
    nbformat.write(synthetic_notebook(), base / "notebooks" / f"{ASSIGNMENT}.ipynb")
    course, _ = C.build_course(base / "notebooks", base / "course", repo_root=ROOT)
    _nbgrader_command(course, _env(), "generate_assignment", ASSIGNMENT)
    released = (course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text(encoding="utf-8")
    assert "HIDDEN TESTS" not in released and "_badnets_check" not in released  # students see the visible half
    assert "assert exercises.check_poison_count(answer, n=n, rate=rate)" in released
    return course


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BADNETS_SANDBOX", "BADNETS_SANDBOX_PYTHON")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # nbgrader runs alembic
    return {**env, **extra}


def _scores(course: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {g.name: g.score for g in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).grades}


def _outputs(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


RIGHT = {"answer-02-1": "answer = 300", "answer-02-4": f'answer = "{right_letter("02-4")}"'}


def test_a_submission_can_neither_game_its_score_nor_reach_the_course(course: Path):
    config = (course / "nbgrader_config.py").read_bytes()
    # relative to the kernel's folder, autograded/<student>/<assignment>/, the course root is ../../..
    thief = (
        "import pathlib\nprint('ran in', pathlib.Path.cwd())\n"
        f"key = pathlib.Path('../../../source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb')\n"
        "if key.exists():\n    pathlib.Path('../../../stolen.ipynb').write_text(key.read_text())\n"
        "config = pathlib.Path('../../../nbgrader_config.py')\n"
        "if config.exists():\n    config.write_text(config.read_text() + '\\n# appended by a submission\\n')\n"
    )
    submissions = {
        "right": RIGHT,
        "patcher": {
            "answer-02-1": "exercises.check_poison_count = lambda *a, **k: True",
            "answer-02-4": "exercises.check_choice = lambda *a, **k: True",
        },
        "rewriter": {  # a check rewritten in its own folder and reloaded; a fake module in place of exercises
            "answer-02-1": "import importlib\nwith open('badnets_utils/exercises.py', 'a') as f:\n"
            "    f.write('\\ndef check_poison_count(*a, **k):\\n    return True\\n')\n"
            "exercises = importlib.reload(exercises)",
            "answer-02-4": "import types\nexercises = types.SimpleNamespace(check_choice=lambda *a, **k: True)",
        },
        "thief": {"answer-02-1": thief + RIGHT["answer-02-1"], "answer-02-4": RIGHT["answer-02-4"]},
    }
    for student, answers in submissions.items():
        _submit(course, student, ASSIGNMENT, answers)
    _nbgrader_command(course, _env(), "autograde", ASSIGNMENT)
    full = {"check-02-1": G.POINTS, "check-02-4": G.POINTS}
    assert _scores(course, "right") == full
    assert _scores(course, "patcher") == {"check-02-1": 0, "check-02-4": 0}
    assert _scores(course, "rewriter") == {"check-02-1": 0, "check-02-4": 0}
    assert _scores(course, "thief") == full  # graded as usual ...
    assert (course / "nbgrader_config.py").read_bytes() == config  # ... and the course untouched
    assert not (course / "stolen.ipynb").exists()
    ran_in = Path(_outputs(course, "thief").split("ran in ", 1)[1].split("\n", 1)[0])
    assert course.resolve() not in ran_in.resolve().parents and ran_in.name.startswith("badnets-sandbox-")
    assert not ran_in.exists()  # the kernel's copy is removed when it exits
    # docs/teaching.md's first screen of the answer cells finds the two that reach for the checks, and no other
    screen = re.search(r'`grep -l -E "([^"]+)" submitted/\*/\*/\*\.ipynb`', (ROOT / "docs" / "teaching.md").read_text())
    flagged = {p.parts[-3] for p in course.glob("submitted/*/*/*.ipynb") if re.search(screen.group(1), p.read_text())}
    assert flagged == {"patcher", "rewriter"}


def test_a_separate_user_sandbox_keeps_the_course_out_of_reach(course: Path):
    """The recipe of docs/teaching.md, "Autograding in a sandbox", with `setpriv` as the user switch (needs root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("switching to another user needs root and setpriv (util-linux)")
    course.chmod(0o700)  # the recipe's first step: the course is the teacher's alone
    config = (course / "nbgrader_config.py").read_bytes()
    lines = ["import os, pathlib", "print('uid', os.getuid())"]
    for name in (f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", "nbgrader_config.py", "gradebook.db"):
        lines += ["try:", f"    open({str(course / name)!r}, 'a').close()", "    print('reached', " + repr(name) + ")",
                  "except OSError as err:", "    print('refused', type(err).__name__)"]  # fmt: skip
    _submit(course, "outsider", ASSIGNMENT, {**RIGHT, "answer-02-1": "\n".join(lines) + "\n" + RIGHT["answer-02-1"]})
    sandbox = "setpriv --reuid=65534 --regid=65534 --clear-groups"
    _nbgrader_command(course, _env(BADNETS_SANDBOX=sandbox), "autograde", ASSIGNMENT, "--student", "outsider")
    said = _outputs(course, "outsider")
    assert "uid 65534" in said and "reached" not in said and said.count("refused PermissionError") == 3, said
    assert _scores(course, "outsider") == {"check-02-1": G.POINTS, "check-02-4": G.POINTS}
    assert (course / "nbgrader_config.py").read_bytes() == config


# ----------------------------------------------------------------------------- text that nbgrader reads as markers


def _need_nbgrader() -> None:
    import importlib.util

    if importlib.util.find_spec("nbgrader") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the nbgrader tests cannot run: nbgrader is not installed ({G.INSTALL})")
        pytest.skip(f"nbgrader is not installed ({G.INSTALL})")


def test_a_solution_holding_a_marker_is_refused(tmp_path: Path, capsys):
    """nbgrader ends a solution at the first line holding "END SOLUTION": the lines after it would be released."""
    _need_nbgrader()
    src = tmp_path / "notebooks"
    src.mkdir()
    leaky = synthetic_notebook()
    leaky.cells[3].source = leaky.cells[3].source.replace(
        "answer = int(n * rate)   # 300", 'print("### END SOLUTION")\nanswer = int(n * rate)   # 300'
    )
    nbformat.write(leaky, src / f"{ASSIGNMENT}.ipynb")
    visible = synthetic_notebook()
    visible.cells[0].source += "\n\nWrite your code between BEGIN SOLUTION and END SOLUTION."
    for nb, said in ((leaky, "exercise 02-1's solution contains 'END SOLUTION'"), (visible, "cell 1 (id ")):
        nbformat.write(nb, src / f"{ASSIGNMENT}.ipynb")
        assert C.main([str(tmp_path / "course"), "--notebooks", str(src), "--nbgrader"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{ASSIGNMENT}.ipynb: " in err and said in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks"]  # nothing written
