"""Student and teacher editions of the notebooks, in a self-contained folder::

    python -m badnets_utils classroom DIR
    python -m badnets_utils classroom DIR --nbgrader

writes ``DIR/student/`` (solutions and teacher notes removed, outputs cleared) and ``DIR/teacher/`` (everything,
with outputs, solutions shown), next to copies of ``badnets_utils/``, ``triggers/``, ``checkpoints/``, ``logs/``
and the other folders the notebooks read, so that both editions run as they are. Solutions are marked once, by
cell tags: ``solution`` (an exercise's solution code) and ``teacher`` (notes and answer keys for the teacher).
``DIR`` must be new, empty or an earlier edition (it holds a ``.badnets-classroom`` marker); it is replaced whole.

With ``--nbgrader`` (needs ``pip install -e ".[grading]"``), ``DIR`` becomes an nbgrader course instead:
``DIR/source/<notebook stem>/`` (one assignment per notebook, its exercises autograded, the package and data
folders beside it), ``DIR/nbgrader_config.py`` and ``DIR/kernels/badnets-sandbox/``, the kernel submissions are
graded in (grading.py; docs/teaching.md, "Grading with nbgrader"). Rebuilding an earlier course replaces only
``DIR/source/`` and ``DIR/kernels/``: the gradebook, releases and submissions stay. ``DIR`` may not lie inside the
repository, and a tag that is almost ``solution`` or ``teacher`` is refused (editions.check_tags).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat

from badnets_utils._io.files import REPO_ROOT, current_umask
from badnets_utils.tools import grading
from badnets_utils.tools.argparsing import Parser, RawDefaultsFormatter, run_command
from badnets_utils.tools.editions import EditionError, check_tags, clean_cell, is_hidden
from badnets_utils.tools.github import read_notebook, write_notebook
from badnets_utils.tools.grading import Exercise, GradingError

MARKER = ".badnets-classroom"
COURSE = "nbgrader course"  # how the marker of an nbgrader course begins
# Folders the notebooks read through ``cfg`` or relative links (``../docs/painter.png``), copied when present.
SHIPPED = ("badnets_utils", "triggers", "checkpoints", "logs", "results", "docs")
# docs/_notebooks: the website's copies of the notebooks (solutions in them), written by docs/conf.py.
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.tmp", "_notebooks")


class ClassroomError(ValueError):
    """A destination the classroom command refuses to write."""


def copy_shipped(source_root: Path, folder: Path) -> None:
    """Copy the folders the notebooks read (``SHIPPED``, where present) from ``source_root`` into ``folder``."""
    for name in SHIPPED:
        if (source_root / name).is_dir():
            shutil.copytree(source_root / name, folder / name, ignore=IGNORE)


def student_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without solution/teacher cells, outputs, execution counts, run timings and widget state."""
    nb = copy.deepcopy(nb)
    nb.cells = [clean_cell(c) for c in nb.cells if not is_hidden(c)]
    nb.metadata.pop("widgets", None)
    return nb


def teacher_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy with every cell and output, the solution and teacher cells made visible."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        jupyter = cell.metadata.get("jupyter")
        if is_hidden(cell) and isinstance(jupyter, dict):
            jupyter.pop("source_hidden", None)
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                del cell.metadata["jupyter"]
    return nb


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_destination(out_dir: Path, src_notebooks_dir: Path, source_root: Path) -> None:
    """Raise ClassroomError unless ``out_dir`` is safe to (re)write: never project files."""
    out, root = out_dir.resolve(), source_root.resolve()
    if out == root or out in root.parents:
        raise ClassroomError(f"{out_dir} is the repository root or holds it; choose a new folder")
    for repository in dict.fromkeys((root, REPO_ROOT.resolve())):
        if _inside(out, repository):  # the teacher edition would be collected by pytest and tracked by git
            raise ClassroomError(f"{out_dir} is inside the repository {repository}, where git and pytest would pick "
                                 "up the solutions; choose a folder outside it")  # fmt: skip
    for folder in (src_notebooks_dir.resolve(), root / "notebooks", *(root / name for name in SHIPPED)):
        if _inside(out, folder):
            raise ClassroomError(f"{out_dir} is inside {folder.name}/, which the editions are made from")
    if out.exists() and not out.is_dir():
        raise ClassroomError(f"{out_dir} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ClassroomError(f"{out_dir} is not empty and was not written by this command ({MARKER} is missing)")


def _source_root(repo_root: Path) -> Path:
    """Where the package and data folders are copied from: the repository, else this package's checkout."""
    return repo_root if (repo_root / "badnets_utils" / "__init__.py").is_file() else REPO_ROOT


def _write_tree(build: Path, notebooks: list[Path], source_root: Path) -> None:
    """Fill the empty folder ``build`` with both editions, the shipped folders and the marker."""
    for path in notebooks:
        nb = read_notebook(path)
        check_tags(nb, path.name)
        write_notebook(build / "student" / path.name, student_edition(nb))
        write_notebook(build / "teacher" / path.name, teacher_edition(nb))
    copy_shipped(source_root, build)
    (build / "README.md").write_text(
        "# BadNets notebooks: classroom editions\n\n"
        "* `student/`: the notebooks without solutions or teacher notes, outputs cleared; hand these out.\n"
        "* `teacher/`: every cell, with outputs and solutions.\n\n"
        "Both run in place (`badnets_utils/` and the data folders sit next to them). Regenerate with\n"
        "`python -m badnets_utils classroom DIR`; that replaces this whole folder.\n",
        encoding="utf-8",
    )
    (build / MARKER).write_text("written by `python -m badnets_utils classroom`; rebuilding replaces it\n")


def _swap_in(build: Path, out: Path) -> None:
    """Put the finished ``build`` folder at ``out``, replacing an earlier edition there."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        os.replace(out, old)
    os.replace(build, out)
    if old is not None:
        shutil.rmtree(old)


def is_course(out_dir: Path) -> bool:
    """True for a folder that ``classroom --nbgrader`` wrote (its marker says so)."""
    marker = out_dir / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").startswith(COURSE)


def notebooks_in(src_notebooks_dir: Path) -> list[Path]:
    """The notebooks to convert, sorted; ClassroomError when there are none."""
    notebooks = sorted(src_notebooks_dir.glob("*.ipynb"))
    if not notebooks:
        raise ClassroomError(f"no notebooks in {src_notebooks_dir}")
    return notebooks


def _as_made_by_mkdir(folder: Path) -> None:
    """Give ``folder`` the permissions a plain ``mkdir`` would: 0777 less the user's umask."""
    folder.chmod(0o777 & ~current_umask())


def build_beside(out: Path, fill: Callable[[Path], object]) -> None:
    """Call ``fill`` on a new temporary folder beside ``out``, then put that folder at ``out``.

    A failure leaves ``out`` as it was and removes the temporary folder.
    """
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _as_made_by_mkdir(build)  # mkdtemp makes it 0700: a teaching assistant on a shared hub could not read it
        fill(build)
        _swap_in(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def build_editions(src_notebooks_dir: str | Path, out_dir: str | Path, repo_root: str | Path | None = None) -> Path:
    """Write ``out_dir/student/``, ``out_dir/teacher/`` and the folders they need; return ``out_dir``.

    ``repo_root`` (default: the parent of ``src_notebooks_dir``) is where ``badnets_utils/`` and the data folders
    come from; without a package there, this package's own checkout is used. The tree is built in a temporary
    folder beside ``out_dir`` and moved into place at the end, so a failure leaves ``out_dir`` as it was.
    """
    src, out = Path(src_notebooks_dir), Path(out_dir)
    notebooks = notebooks_in(src)
    source_root = _source_root(Path(repo_root) if repo_root is not None else src.resolve().parent)
    check_destination(out, src, source_root)
    if is_course(out):
        raise ClassroomError(f"{out_dir} is an nbgrader course (gradebook, submissions): rebuild it with --nbgrader, "
                             "or write the editions to another folder")  # fmt: skip
    build_beside(out, lambda build: _write_tree(build, notebooks, source_root))
    return out


def write_sources(source: Path, notebooks: list[Path], source_root: Path) -> dict[str, list[Exercise]]:
    """Fill the empty folder ``source`` with one nbgrader assignment per notebook, each with its own copies of the
    package and the data folders; return each assignment's exercises."""
    written = {}
    for path in notebooks:
        original = read_notebook(path)
        check_tags(original, path.name)
        copy_shipped(source_root, source / path.stem)  # first: the hidden tests hash this copy of the checks
        try:
            nb, found = grading.nbgrader_notebook(original, source / path.stem / "badnets_utils")
        except GradingError as err:
            raise GradingError(f"{path.name}: {err}") from None
        write_notebook(source / path.stem / path.name, nb)
        written[path.stem] = found
    return written


def _write_course(build: Path, notebooks: list[Path], source_root: Path) -> dict[str, list[Exercise]]:
    """Fill the empty folder ``build`` with a whole course: source/, the config, a README and the marker."""
    written = write_sources(build / "source", notebooks, source_root)
    (build / "nbgrader_config.py").write_text(grading.nbgrader_config(), encoding="utf-8")
    grading.write_sandbox_kernel(build)
    (build / "README.md").write_text(grading.README, encoding="utf-8")
    (build / MARKER).write_text(f"{COURSE} written by `python -m badnets_utils classroom --nbgrader`; rebuilding "
                                "replaces source/ only\n", encoding="utf-8")  # fmt: skip
    return written


def build_course(
    src_notebooks_dir: str | Path, out_dir: str | Path, repo_root: str | Path | None = None
) -> tuple[Path, dict[str, list[Exercise]]]:
    """Write the nbgrader course ``out_dir`` (or replace the ``source/`` of an earlier one); return it and the
    exercises of each assignment. Nothing is written when nbgrader is missing or ``out_dir`` is refused."""
    grading.require_nbgrader()
    src, out = Path(src_notebooks_dir), Path(out_dir)
    notebooks = notebooks_in(src)
    source_root = _source_root(Path(repo_root) if repo_root is not None else src.resolve().parent)
    check_destination(out, src, source_root)
    written: dict[str, list[Exercise]] = {}
    if is_course(out):  # keep the gradebook, releases, submissions and the teacher's config
        build_beside(out / "source", lambda build: written.update(write_sources(build, notebooks, source_root)))
        if not (out / "nbgrader_config.py").is_file():
            (out / "nbgrader_config.py").write_text(grading.nbgrader_config(), encoding="utf-8")
        grading.write_sandbox_kernel(out)  # this package's launcher, for a config that selects it
    else:
        build_beside(out, lambda build: written.update(_write_course(build, notebooks, source_root)))
    return out, written


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="badnets classroom", description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("dir", help="output folder: new, empty, or an earlier classroom edition (or course)")
    p.add_argument("--notebooks", default=str(REPO_ROOT / "notebooks"), help="source notebooks (default: ours)")
    p.add_argument("--nbgrader", action="store_true", help="write an nbgrader course (DIR/source/<notebook>/, "
                   "nbgrader_config.py) with autograded exercises instead of the two editions")  # fmt: skip
    return p


def _run(args: argparse.Namespace) -> int:
    if args.nbgrader:
        print(grading.report(*build_course(args.notebooks, args.dir)))
        return 0
    out = build_editions(args.notebooks, args.dir)
    count = len(list((out / "student").glob("*.ipynb")))
    print(f"wrote {count} notebooks to {out / 'student'} and {out / 'teacher'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``badnets classroom DIR``; errors: one line on stderr, exit 2."""
    return run_command(build_parser(), argv, _run, (ClassroomError, GradingError, EditionError, OSError))


if __name__ == "__main__":
    sys.exit(main())
