"""What a student-facing notebook leaves out or rewords: the student edition, an nbgrader release and the website.

Solutions are marked once, by cell tags: ``solution`` (an exercise's solution code) and ``teacher`` (notes and
answer keys for the teacher); ``classroom.py`` and ``grading.py`` both drop those cells and clean the others here.
"""

from __future__ import annotations

import copy
import difflib
import re

import nbformat

TEACHER_TAG = "teacher"
HIDDEN_TAGS = frozenset({"solution", TEACHER_TAG})
# Sentences of the notebooks that are true only where the solution cells are: the student edition says this instead.
STUDENT_WORDING = {
    "The solutions are in the collapsed cells (not in the student edition).": "Your teacher has the solutions.",
    "The solutions are in the collapsed cells.": "Your teacher has the solutions.",
}


# An untagged cell that still looks like a solution (a collapsed "Solution" or "Answer key" block).
LOOKS_HIDDEN = re.compile(r"<summary>\s*(solution|answer key)", re.I)


class EditionError(ValueError):
    """A notebook whose tags cannot be trusted to keep its solutions out of the student edition (one line)."""


def _tags(cell: nbformat.NotebookNode) -> set[str]:
    """The cell's tags, each stripped and lower-cased: ``Solution`` and ``solution `` count as ``solution``."""
    return {str(tag).strip().casefold() for tag in cell.metadata.get("tags", [])}


def is_hidden(cell: nbformat.NotebookNode) -> bool:
    """True for cells tagged ``solution`` or ``teacher`` (in any case, with stray spaces)."""
    return bool(HIDDEN_TAGS & _tags(cell))


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """True for cells tagged ``solution`` (in any case, with stray spaces)."""
    return "solution" in _tags(cell)


def _meant(tag: str) -> str | None:
    """The hidden tag that ``tag`` is a variant or near miss of (``Solution``, ``solutions``, ``teacher-notes``),
    None for one that is exact or unrelated."""
    if tag in HIDDEN_TAGS:
        return None
    plain = tag.strip().casefold()
    for hidden in sorted(HIDDEN_TAGS):
        if hidden in plain or difflib.SequenceMatcher(None, plain, hidden).ratio() >= 0.75:
            return hidden
    return None


def check_tags(nb: nbformat.NotebookNode, name: str) -> None:
    """Raise EditionError, one line naming the notebook and the cell, for a tag that is almost ``solution`` or
    ``teacher`` (another case, a stray space, a typo: the cell would reach students were it not caught), and for an
    untagged cell that looks like a solution (a ``<summary>Solution`` block)."""
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i + 1} (id {cell.get('id', '?')})"
        for tag in cell.metadata.get("tags", []):
            meant = _meant(str(tag))
            if meant is not None:
                raise EditionError(f"{where}: tag {tag!r} is not {meant!r}; write it exactly so (cells tagged "
                                   f"{meant!r} are left out of the student edition)")  # fmt: skip
        if not is_hidden(cell) and LOOKS_HIDDEN.search(cell.source):
            raise EditionError(f"{where} looks like a solution but has no 'solution' or 'teacher' tag; tag it, or "
                               "the student edition would show it")  # fmt: skip


def clean_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a cell as students get it: no outputs, execution count or run timings; the student wording."""
    cell = copy.deepcopy(cell)
    cell.metadata.pop("execution", None)
    if cell.cell_type == "markdown":
        for old, new in STUDENT_WORDING.items():
            cell.source = cell.source.replace(old, new)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def is_teacher_only(cell: nbformat.NotebookNode) -> bool:
    """True for cells tagged ``teacher`` (notes and answer keys no student edition or website shows; any case)."""
    return TEACHER_TAG in _tags(cell)


def web_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without teacher cells, everything else kept (outputs, and the solutions in their collapsed cells)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not is_teacher_only(c)]
    return nb
