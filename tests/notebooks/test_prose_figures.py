"""Every figure the notebooks' and the docs' prose states is backed by what the code printed or read (prose.py)."""

from __future__ import annotations

import json

import prose
import pytest

PAPER = prose.paper_values()
MANIFEST = prose.ROOT / "checkpoints" / "MANIFEST.json"


TIMES = prose.ROOT / "benchmarks" / "notebook_times.json"


def notebook_seconds(path, nb) -> set[float]:
    """The durations a notebook prints, and its own measured run times (its header, notebook_times.json)."""
    seconds = set()
    for cell in nb["cells"]:
        seconds |= prose.durations_in(prose.outputs_text(cell) if cell["cell_type"] == "code" else "")
    times = json.loads(TIMES.read_text(encoding="utf-8"))["notebooks"].get(path.stem, {})
    return seconds | set(times.values())


def unbacked_in_notebook(path) -> list[str]:
    nb = prose.read_notebook(path)
    printed, code = prose.evidence_of_notebook(nb)
    evidence = printed | code | prose.evidence_of_files([*prose.results_files_read_by(nb), MANIFEST])
    seconds = notebook_seconds(path, nb)
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            found += prose.figures("".join(cell["source"]), f"{path.name[:2]} cell {i}")
    return [f"{f.where}: {f.text!r} in: {f.sentence[:160]}" for f in found
            if not prose.backed(f, evidence, PAPER, seconds)]  # fmt: skip


def all_notebook_evidence() -> set[str]:
    evidence = prose.evidence_of_files([*sorted((prose.ROOT / "results").iterdir()), MANIFEST,
                                        *sorted((prose.ROOT / "benchmarks").glob("*.json"))])  # fmt: skip
    for path in prose.NOTEBOOKS:
        printed, _ = prose.evidence_of_notebook(prose.read_notebook(path))
        evidence |= printed
    return evidence


def all_seconds() -> set[float]:
    seconds = set()
    for path in prose.NOTEBOOKS:
        seconds |= notebook_seconds(path, prose.read_notebook(path))
    return seconds


def unbacked_in_doc(path, evidence, seconds=frozenset()) -> list[str]:
    rel = path.relative_to(prose.ROOT).as_posix()
    return [f"{rel}: {f.text!r} in: {f.sentence[:160]}" for f in prose.figures(path.read_text(encoding="utf-8"), rel)
            if not prose.backed(f, evidence, PAPER, seconds)]  # fmt: skip


@pytest.mark.parametrize("path", prose.NOTEBOOKS, ids=lambda p: p.name[:2])
def test_notebook_prose_states_only_backed_figures(path):
    assert unbacked_in_notebook(path) == []


def test_docs_state_only_backed_figures():
    evidence, seconds = all_notebook_evidence(), all_seconds()
    assert [line for path in prose.DOCS for line in unbacked_in_doc(path, evidence, seconds)] == []


if __name__ == "__main__":  # list what is not backed
    for path in prose.NOTEBOOKS:
        print("\n".join(unbacked_in_notebook(path)))
    ev, sec = all_notebook_evidence(), all_seconds()
    for path in prose.DOCS:
        print("\n".join(unbacked_in_doc(path, ev, sec)))
