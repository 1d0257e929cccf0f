"""Small hand-built notebooks for the classroom and nbgrader tests."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_notebook


def toy_notebook(cells: list) -> nbformat.NotebookNode:
    """A notebook of ``cells`` with the metadata the real notebooks carry (kernelspec, widget state) and stable ids."""
    nb = new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}},
    )  # fmt: skip
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nb
