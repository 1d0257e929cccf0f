"""What a student-facing notebook leaves out or rewords: the student edition, an nbgrader release and the website.

Solutions are marked once, by cell tags: ``solution`` (an exercise's solution code) and ``teacher`` (notes and
answer keys for the teacher); ``classroom.py`` and ``grading.py`` both drop those cells and clean the others here.
"""

from __future__ import annotations

import copy

import nbformat

TEACHER_TAG = "teacher"
HIDDEN_TAGS = frozenset({"solution", TEACHER_TAG})
# Sentences of the notebooks that are true only where the solution cells are: the student edition says this instead.
STUDENT_WORDING = {
    "The solutions are in the collapsed cells (not in the student edition).": "Your teacher has the solutions.",
    "The solutions are in the collapsed cells.": "Your teacher has the solutions.",
}


def is_hidden(cell: nbformat.NotebookNode) -> bool:
    """True for cells tagged ``solution`` or ``teacher``."""
    return bool(HIDDEN_TAGS & set(cell.metadata.get("tags", [])))


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
    """True for cells tagged ``teacher`` (notes and answer keys no student edition or website shows)."""
    return TEACHER_TAG in cell.metadata.get("tags", [])


def web_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without teacher cells, everything else kept (outputs, and the solutions in their collapsed cells)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not is_teacher_only(c)]
    return nb
