"""``classroom --nbgrader``: an nbgrader course whose exercises grade themselves.

The conversion is checked cell by cell on synthetic and real notebooks; one slow test (about 1.5 min on two cores)
runs what a teacher runs on notebooks 01 and 02 in quick mode: generate_assignment, two submissions (the solutions
and wrong answers), autograde, generate_feedback, and reads the scores from the gradebook. Without nbgrader the
tests that need it are skipped with the reason, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from toy_notebooks import toy_notebook

from badnets_utils.course import exercises
from badnets_utils.tools import classroom as C
from badnets_utils.tools import grading as G
from badnets_utils.tools import sandbox_kernel

ROOT = Path(__file__).resolve().parents[2]
CHEAP = ("01_download_and_explore_data", "02_visualize_triggered_images")  # about 20 s each in quick mode


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"the nbgrader tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture
def nbgrader():
    """nbgrader's package, or a skip (a failure in CI)."""
    if importlib.util.find_spec("nbgrader") is None:
        _unavailable(f"nbgrader is not installed ({G.INSTALL})")
    import nbgrader as package

    return package


def synthetic_notebook() -> nbformat.NotebookNode:
    """Prose, a setup line, a numeric exercise with given code and a solution, a multiple-choice question, a note."""
    hidden = {"jupyter": {"source_hidden": True}}
    return toy_notebook(
        [
            new_markdown_cell("# 99 · Synthetic\n\nThe solutions are in the collapsed cells."),
            new_code_cell("from badnets_utils.course import exercises\nn = 60_000", outputs=[], execution_count=1),
            new_code_cell(
                "rate = 0.005\nanswer = None   # your answer here\n"
                "exercises.check_poison_count(answer, n=n, rate=rate);"
            ),  # fmt: skip
            new_markdown_cell(
                "<details><summary>Solution</summary>\n\n```python\nanswer = int(n * rate)   # 300\n```\n\n</details>",
                metadata={"tags": ["solution"], **hidden},
            ),  # fmt: skip
            new_code_cell('answer = None   # "a", "b" or "c"\nexercises.check_choice(answer, "02-4");'),
            new_markdown_cell("Answer key: see the text.", metadata={"tags": ["teacher"], **hidden}),
        ]
    )


def right_letter(key: str) -> str:
    return next(letter for letter in exercises.CHOICES[key][1] if exercises._is_right(key, letter))


def grading(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_exercise_becomes_solution_and_test_cells():
    nb, found = G.nbgrader_notebook(synthetic_notebook())
    assert [ex.key for ex in found] == ["02-1", "02-4"]
    ids = [grading(c)["grade_id"] for c in nb.cells]
    assert ids == ["cell-cell-0", "cell-cell-1", "given-02-1", "answer-02-1", "check-02-1", "answer-02-4", "check-02-4"]
    given, answer, check, choice, choice_check = nb.cells[2:]
    assert given.source == "rate = 0.005" and grading(given)["locked"]
    assert answer.source == f"answer = None   # your answer here\n{G.BEGIN}\nanswer = int(n * rate)   # 300\n{G.END}"
    assert choice.source == f'answer = None   # "a", "b" or "c"\n{G.BEGIN}\nanswer = "{right_letter("02-4")}"\n{G.END}'
    # what students see, then the hidden half: the same check, from the course's own copy of the checks
    visible = [c.source.split(f"\n{G.HIDDEN_BEGIN}\n")[0] for c in (check, choice_check)]
    assert visible[0].endswith("\nassert exercises.check_poison_count(answer, n=n, rate=rate)")
    assert visible[1].endswith('\nassert exercises.check_choice(answer, "02-4")')
    assert check.source.endswith(
        '\nassert _badnets_check("check_poison_count")(answer, n=n, rate=rate) is True, '
        f'"the course\'s own copy of the check does not accept this answer"\n{G.HIDDEN_END}'
    )
    for cell in (answer, choice):
        meta = grading(cell)
        assert meta == {"grade": False, "solution": True, "locked": False, "grade_id": meta["grade_id"],
                        "schema_version": 3}  # fmt: skip
    for cell in (check, choice_check):
        assert grading(cell)["grade"] and grading(cell)["locked"] and not grading(cell)["solution"]
        assert grading(cell)["points"] == G.POINTS == 1
    for cell in nb.cells[:3]:
        assert grading(cell)["locked"] and not grading(cell)["grade"] and not grading(cell)["solution"]
    assert "Your teacher has the solutions." in nb.cells[0].source  # the student edition's wording
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None and "widgets" not in nb.metadata
    assert not any(C.is_hidden(c) for c in nb.cells)
    assert len(set(c.id for c in nb.cells)) == len(nb.cells)
    nbformat.validate(nb)


def test_the_right_letter_is_the_one_the_check_accepts(capsys):
    for key in exercises.CHOICES:
        letter = re.fullmatch(r'answer = "([a-z])"', G.choice_solution(key)).group(1)
        assert exercises.check_choice(letter, key)
        assert not any(exercises.check_choice(other, key) for other in exercises.CHOICES[key][1] if other != letter)


def test_solution_code_from_blocks_and_inline_code():
    assert G.solution_code("text\n```python\na = 1\n```\nmore\n```python\nanswer = a\n```") == "a = 1\nanswer = a"
    assert G.solution_code("`answer = 0`: the shift wraps around, `x = 1`.") == "answer = 0"
    assert G.solution_code("Read it off the curve.") is None


def test_exercise_cells_in_another_layout_are_refused():
    for source in (
        "answer = None\nprint(answer)\nexercises.check_asr(answer, p, 1)",  # a line between
        "answer = None\nexercises.check_asr(answer, p, 1)\nprint(1)",  # a line after
        "exercises.check_asr(answer, p, 1)",  # no answer line
    ):
        with pytest.raises(G.GradingError, match="must end with one"):
            G.parse_answer_cell(source)
    with pytest.raises(G.GradingError, match="does not exist"):
        G.exercise_key("exercises.check_nothing(answer)")
    with pytest.raises(G.GradingError, match="multiple-choice"):
        G.exercise_key('exercises.check_choice(answer, "99-9")')
    assert G.parse_answer_cell("print('answer is None')") is None


def test_every_exercise_of_the_notebooks_is_graded():
    total = 0
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        original = nbformat.read(path, as_version=4)
        nb, found = G.nbgrader_notebook(original)
        asked = sum(bool(re.search(r"^answer = None", c.source, re.M)) for c in original.cells if c.cell_type == "code")
        solutions = [c for c in nb.cells if grading(c).get("solution")]
        tests = [c for c in nb.cells if grading(c).get("grade")]
        assert len(found) == len(solutions) == len(tests) == asked > 0, path.name
        assert all(grading(c)["locked"] for c in nb.cells if not grading(c)["solution"]), path.name
        assert sum(grading(c)["points"] for c in tests) == G.POINTS * asked
        assert len({grading(c)["grade_id"] for c in nb.cells}) == len(nb.cells), path.name
        assert not any(C.is_hidden(c) for c in nb.cells) and "Answer key (teacher)" not in str(nb)
        for cell in solutions:
            assert G.BEGIN in cell.source and cell.source.endswith(G.END), cell.source
        total += asked
        nbformat.validate(nb)
    assert total >= 25
    # only the one prediction without solution code lacks a solution; the command names it
    assert [ex.key for ex in G.find_exercises(nbformat.read(next((ROOT / "notebooks").glob("08_*.ipynb")), 4)).values()
            if ex.solution is None] == ["08-1"]  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "notebooks"
    folder.mkdir(parents=True)
    nbformat.write(synthetic_notebook(), folder / "99_synthetic.ipynb")
    return folder


def test_course_folder_layout(nbgrader, source: Path, tmp_path: Path, capsys):
    assert C.main([str(tmp_path / "course"), "--notebooks", str(source), "--nbgrader"]) == 0
    out = capsys.readouterr().out
    assert "wrote 1 assignments (2 autograded exercises, 1 point each)" in out
    course = tmp_path / "course"
    folder = course / "source" / "99_synthetic"
    assert (folder / "99_synthetic.ipynb").is_file()
    assert (folder / "badnets_utils" / "course" / "exercises.py").is_file()
    for name in C.SHIPPED:
        assert (folder / name).is_dir() == (ROOT / name).is_dir(), name
    assert not list(course.rglob("__pycache__"))
    config = (course / "nbgrader_config.py").read_text()
    for setting in ("c.CourseDirectory.root = HERE", "c.CourseDirectory.course_id", "gradebook.db",
                    f"c.Execute.timeout = {G.CELL_TIMEOUT_S}", "c.ClearSolutions.code_stub"):  # fmt: skip
        assert setting in config, setting
    compile(config, "nbgrader_config.py", "exec")
    assert f"c.Execute.kernel_name = {G.SANDBOX_KERNEL!r}" in config  # submissions run in the sandbox kernel
    spec = json.loads((course / "kernels" / G.SANDBOX_KERNEL / "kernel.json").read_text())
    assert spec["argv"][1:] == ["-I", "{resource_dir}/launch.py", "{connection_file}"]
    launcher = course / "kernels" / G.SANDBOX_KERNEL / "launch.py"
    assert launcher.read_text() == Path(sandbox_kernel.__file__).read_text()
    assert C.is_course(course) and not (course / "student").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course", "src"]  # no temporary folders left


def test_rebuild_replaces_source_only(nbgrader, source: Path, tmp_path: Path, capsys):
    course = tmp_path / "course"
    C.build_course(source, course)
    for kept in ("gradebook.db", "submitted/ada/99_synthetic/99_synthetic.ipynb", "release/99_synthetic/x.ipynb"):
        (course / kept).parent.mkdir(parents=True, exist_ok=True)
        (course / kept).write_text("keep me")
    (course / "nbgrader_config.py").write_text("c = get_config()  # the teacher's own\n")
    (course / "source" / "99_synthetic" / "stale.txt").write_text("old")
    C.build_course(source, course)
    assert not (course / "source" / "99_synthetic" / "stale.txt").exists()
    assert (course / "source" / "99_synthetic" / "99_synthetic.ipynb").is_file()
    for kept in ("gradebook.db", "submitted/ada/99_synthetic/99_synthetic.ipynb", "release/99_synthetic/x.ipynb"):
        assert (course / kept).read_text() == "keep me", kept
    assert "the teacher's own" in (course / "nbgrader_config.py").read_text()
    assert not [p for p in course.iterdir() if p.name.startswith(".source.")]
    # the plain editions would replace the whole folder, gradebook included: refused
    assert C.main([str(course), "--notebooks", str(source)]) == 2
    assert "is an nbgrader course" in capsys.readouterr().err
    assert (course / "gradebook.db").read_text() == "keep me"


def test_an_earlier_plain_edition_becomes_a_course(nbgrader, source: Path, tmp_path: Path):
    C.build_editions(source, tmp_path / "class")
    C.build_course(source, tmp_path / "class")
    assert C.is_course(tmp_path / "class") and not (tmp_path / "class" / "student").exists()


def test_without_nbgrader_one_line_and_nothing_written(source: Path, tmp_path: Path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nbgrader" else real(name, *a))
    assert C.main([str(tmp_path / "course"), "--notebooks", str(source), "--nbgrader"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("badnets classroom: error: ") and G.INSTALL in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_bad_input_is_refused_in_one_line(nbgrader, source: Path, tmp_path: Path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    nowhere = ["--notebooks", str(tmp_path / "nowhere")]
    for argv in ([str(mine)], [str(ROOT)], [str(ROOT / "notebooks" / "c")], [str(tmp_path / "c"), *nowhere]):
        argv = argv if "--notebooks" in argv else [*argv, "--notebooks", str(source)]
        assert C.main([*argv, "--nbgrader"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("badnets classroom: error: ") and err.count("\n") == 1, err
    assert [p.name for p in mine.iterdir()] == ["chapter1.tex"] and not (tmp_path / "c").exists()
    assert not (ROOT / "notebooks" / "c").exists()


# ----------------------------------------------------------------------------- the whole round, as a teacher runs it


def _nbgrader_command(course: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _submit(course: Path, student: str, assignment: str, answers: dict[str, str]) -> None:
    """Copy the release to submitted/<student>/ (as nbgrader's exchange does) with ``answers`` by grade_id."""
    folder = course / "submitted" / student / assignment
    shutil.copytree(course / "release" / assignment, folder)
    path = folder / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = cell.source.rstrip("\n") + "\n" + answers[cell.metadata.nbgrader.grade_id]
    nb.cells.append(new_code_cell("import badnets_utils\nprint(badnets_utils.__file__)"))
    nbformat.write(nb, path)
    (folder / "timestamp.txt").write_text("2026-01-01 12:00:00.000000 UTC")


def test_teacher_round_scores_right_and_wrong_submissions(nbgrader, tmp_path: Path, mnist_root):
    from nbgrader.api import Gradebook

    src = tmp_path / "notebooks"
    src.mkdir()
    for name in CHEAP:
        shutil.copy2(ROOT / "notebooks" / f"{name}.ipynb", src)
    course, written = C.build_course(src, tmp_path / "course", repo_root=ROOT)
    env = {**os.environ, "BADNETS_QUICK": "1", "BADNETS_DATA": str(mnist_root)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # nbgrader runs alembic
    for name in CHEAP:
        _nbgrader_command(course, env, "generate_assignment", name)
        released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
        text = "".join(c.source for c in released.cells)
        assert "BEGIN SOLUTION" not in text and "Solution</summary>" not in text and "Answer key" not in text
        for ex in written[name]:
            assert ex.solution not in text and ex.answer_line in text, ex.key
        assert not any(C.is_hidden(c) for c in released.cells)
        tests = [c for c in released.cells if c.metadata.nbgrader.get("grade")]
        assert len(tests) == len(written[name]) and all(c.metadata.get("editable") is False for c in tests)
        right = {f"answer-{ex.key}": ex.solution for ex in written[name]}
        wrong = {f"answer-{ex.key}": ("answer = 'z'" if ex.key in exercises.CHOICES else "answer = -1")
                 for ex in written[name]}  # fmt: skip
        _submit(course, "right", name, right)
        _submit(course, "wrong", name, wrong)
        _nbgrader_command(course, env, "autograde", name)
        _nbgrader_command(course, env, "generate_feedback", name)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in CHEAP:
            count = len(written[name])
            for student, expected in (("right", G.POINTS), ("wrong", 0)):
                graded = gb.find_submission_notebook(name, name, student)
                scores = {g.name: (g.score, g.max_score) for g in graded.grades}
                assert scores == {f"check-{ex.key}": (expected, G.POINTS) for ex in written[name]}, (student, scores)
                submission = gb.find_submission(name, student)
                assert (submission.score, submission.max_score) == (expected * count, G.POINTS * count)
                feedback = course / "feedback" / student / name / f"{name}.html"
                assert ("✅ right" in feedback.read_text(encoding="utf-8")) == (expected > 0), feedback
    # the kernel used the assignment's own copy of the package, in the sandbox's copy of the submission outside the
    # course (badnets-sandbox), and ran in quick mode (the BADNETS_* settings reach it)
    autograded = nbformat.read(course / "autograded" / "right" / CHEAP[0] / f"{CHEAP[0]}.ipynb", as_version=4)
    used = Path(autograded.cells[-1].outputs[0].text.strip())
    assert used.parts[-2:] == ("badnets_utils", "__init__.py") and used.parts[-3].startswith("badnets-sandbox-")
    assert course.resolve() not in used.parents and ROOT not in used.parents
    assert "mode: QUICK" in str(autograded)
