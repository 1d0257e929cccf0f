"""``classroom``: student and teacher editions from cell tags, in a self-contained folder."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from toy_notebooks import toy_notebook

from badnets_utils.tools import classroom as C
from badnets_utils.tools.github import find_setup_cell

ROOT = Path(__file__).resolve().parents[2]


def synthetic_notebook() -> nbformat.NotebookNode:
    """A markdown cell, a code cell with output, a solution cell (hidden), a teacher note and widget state."""
    solution = new_code_cell("answer = 42", metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}})
    solution.outputs = [new_output("stream", name="stdout", text="42\n")]
    code = new_code_cell("answer = None\nprint(answer)", execution_count=3)
    code.outputs = [new_output("stream", name="stdout", text="None\n")]
    code.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    return toy_notebook(
        [
            new_markdown_cell("# 99 · Synthetic\n\nExercise: what is the answer?"),
            code,
            solution,
            new_markdown_cell("Answer key: 42.", metadata={"tags": ["teacher"], "jupyter": {"source_hidden": True}}),
            new_markdown_cell("## What's next", metadata={"tags": ["other"]}),
        ]
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A notebooks/ folder with two synthetic notebooks (the package comes from this checkout)."""
    folder = tmp_path / "src" / "notebooks"
    folder.mkdir(parents=True)
    for name in ("01_first.ipynb", "02_second.ipynb"):
        nbformat.write(synthetic_notebook(), folder / name)
    return folder


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_student_edition_has_no_solutions_or_outputs(source: Path, tmp_path: Path):
    out = C.build_editions(source, tmp_path / "class")
    nb = read(out / "student" / "01_first.ipynb")
    assert [c.source.splitlines()[0] for c in nb.cells] == ["# 99 · Synthetic", "answer = None", "## What's next"]
    assert all(not C.is_hidden(c) for c in nb.cells)
    code = nb.cells[1]
    assert code.outputs == [] and code.execution_count is None and "execution" not in code.metadata
    assert "widgets" not in nb.metadata and nb.metadata.kernelspec.name == "python3"
    assert nb.cells[2].metadata.tags == ["other"]
    nbformat.validate(nb)


def test_teacher_edition_has_everything_visible(source: Path, tmp_path: Path):
    out = C.build_editions(source, tmp_path / "class")
    original, nb = synthetic_notebook(), read(out / "teacher" / "02_second.ipynb")
    assert [c.source for c in nb.cells] == [c.source for c in original.cells]
    assert nb.cells[1].outputs == original.cells[1].outputs and nb.cells[2].outputs[0].text == "42\n"
    assert all("source_hidden" not in c.metadata.get("jupyter", {}) for c in nb.cells)
    assert nb.cells[2].metadata.tags == ["solution"] and "widgets" in nb.metadata
    nbformat.validate(nb)


def test_folder_is_self_contained(source: Path, tmp_path: Path):
    out = C.build_editions(source, tmp_path / "class")
    assert (out / "badnets_utils" / "__init__.py").is_file()
    assert (out / "badnets_utils" / "tools" / "classroom.py").is_file()
    assert not list(out.rglob("__pycache__"))
    for name in ("triggers", "checkpoints", "logs"):
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(p.name for p in (ROOT / name).iterdir())
    assert (out / C.MARKER).is_file()
    assert sorted(p.name for p in (out / "student").iterdir()) == ["01_first.ipynb", "02_second.ipynb"]
    assert not [p for p in (tmp_path / "class").parent.iterdir() if p.name.startswith(".class.")]  # no leftovers


def test_rebuild_replaces_an_earlier_edition(source: Path, tmp_path: Path):
    out = C.build_editions(source, tmp_path / "class")
    (out / "student" / "stale.ipynb").write_text("{}")
    (source / "02_second.ipynb").unlink()
    assert C.main([str(out), "--notebooks", str(source)]) == 0
    assert sorted(p.name for p in (out / "student").iterdir()) == ["01_first.ipynb"]


def test_empty_existing_folder_is_accepted(source: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    assert C.main([str(tmp_path / "empty"), "--notebooks", str(source)]) == 0
    assert (tmp_path / "empty" / C.MARKER).is_file()


def refused(argv: list[str], capsys) -> str:
    assert C.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("badnets classroom: error: ") and err.count("\n") == 1, err
    return err


def test_refuses_a_foreign_non_empty_folder(source: Path, tmp_path: Path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    assert "was not written by this command" in refused([str(mine), "--notebooks", str(source)], capsys)
    assert [p.name for p in mine.iterdir()] == ["chapter1.tex"]


def test_refuses_project_folders(tmp_path: Path, capsys):
    before = sorted(p.name for p in ROOT.iterdir())
    refused([str(ROOT)], capsys)
    refused([str(ROOT.parent)], capsys)
    refused([str(ROOT / "notebooks" / "class")], capsys)
    refused([str(ROOT / "badnets_utils" / "class")], capsys)
    refused([str(ROOT / "triggers")], capsys)
    assert sorted(p.name for p in ROOT.iterdir()) == before
    assert not (ROOT / "notebooks" / "class").exists() and not (ROOT / "badnets_utils" / "class").exists()


def test_refuses_a_file_and_missing_notebooks(source: Path, tmp_path: Path, capsys):
    (tmp_path / "file").write_text("x")
    refused([str(tmp_path / "file"), "--notebooks", str(source)], capsys)
    refused([str(tmp_path / "out"), "--notebooks", str(tmp_path / "nowhere")], capsys)
    refused([], capsys)
    assert not (tmp_path / "out").exists()


# The one slow test here (about 30 s): a real student edition runs top to bottom from its own folder.
def test_student_edition_of_notebook_01_runs(tmp_path: Path, monkeypatch, mnist_root):
    from nbclient import NotebookClient

    src = tmp_path / "notebooks"
    src.mkdir()
    shutil.copy2(ROOT / "notebooks" / "01_download_and_explore_data.ipynb", src)
    out = C.build_editions(src, tmp_path / "class", repo_root=ROOT)
    path = out / "student" / "01_download_and_explore_data.ipynb"
    nb = read(path)
    nb.cells.append(new_code_cell("import badnets_utils\nprint(badnets_utils.__file__)"))
    monkeypatch.setenv("BADNETS_QUICK", "1")
    monkeypatch.setenv("BADNETS_DATA", str(mnist_root))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    used = Path(nb.cells[-1].outputs[0].text.strip()).resolve()
    assert used == (out / "badnets_utils" / "__init__.py").resolve()  # the copy, not this checkout
    setup_output = "".join(o.get("text", "") for o in nb.cells[find_setup_cell(nb)].outputs)
    assert "mode: QUICK" in setup_output
    # every sentence of the student edition is true there: it has no solution cells, so none points at one
    said = "".join(c.source for c in nb.cells) + "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
    )
    assert "Your teacher has the solutions." in said
    for false_there in ("collapsed cell", "hidden cell", "solution cell"):
        assert false_there not in said, false_there


def test_an_edition_folder_keeps_the_users_umask(tmp_path):
    """A shared JupyterHub: the teaching assistants (group) read what the teacher built, as after a plain mkdir."""
    from badnets_utils.tools.classroom import build_beside

    old = os.umask(0o022)
    try:
        build_beside(tmp_path / "course", lambda folder: (folder / "x.txt").write_text("x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "course").stat().st_mode) == 0o755


# ----------------------------------------------------------------------------- tags and destinations that leak

FLAVOURS = [[], *([["--nbgrader"]] if importlib.util.find_spec("nbgrader") else [])]  # the editions, the course


@pytest.mark.parametrize(
    "tag", ["Solution", "solution ", "SOLUTION", "solutions", "soluton", "Teacher", "teacher-notes"]
)
def test_a_mistyped_hiding_tag_is_refused(tag: str, tmp_path: Path, capsys):
    """A cell tagged almost ``solution`` or ``teacher`` would reach students: one line naming the notebook and the
    cell, nothing written (plain editions and the nbgrader course alike)."""
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = synthetic_notebook()
    nb.cells[2].metadata["tags"] = [tag]
    nbformat.write(nb, src / "01_first.ipynb")
    for extra in FLAVOURS:
        err = refused([str(tmp_path / "class"), "--notebooks", str(src), *extra], capsys)
        assert f"01_first.ipynb, cell 3 (id {nb.cells[2].id}): tag {tag!r}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks"]


def test_a_case_or_space_variant_still_hides_the_cell():
    """Where nothing refuses it (the website's teacher cells), ``Solution `` hides as ``solution`` does."""
    for tag in ("Solution ", " TEACHER"):
        cell = new_markdown_cell("secret", metadata={"tags": [tag]})
        assert C.is_hidden(cell)
    assert C.student_edition(toy_notebook([new_markdown_cell("x", metadata={"tags": ["Solution "]})])).cells == []


def test_an_untagged_solution_block_is_refused(tmp_path: Path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = synthetic_notebook()
    nb.cells.append(new_markdown_cell("<details><summary>Solution</summary>\n\n`answer = 42`\n\n</details>"))
    nbformat.write(nb, src / "01_first.ipynb")
    err = refused([str(tmp_path / "class"), "--notebooks", str(src)], capsys)
    assert "01_first.ipynb, cell 6" in err and "looks like a solution" in err, err
    assert not (tmp_path / "class").exists()


def test_refuses_a_folder_inside_the_repository(source: Path, capsys):
    """The teacher edition inside the work tree: pytest would collect it and git would offer to track it."""
    for folder in (ROOT / f"classroom-{os.getpid()}", ROOT / "tests" / f"classroom-{os.getpid()}"):
        try:
            for extra in FLAVOURS:
                err = refused([str(folder), "--notebooks", str(source), *extra], capsys)
                assert "inside the repository" in err, err
            assert not folder.exists()
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # what the old code wrote there
