"""Static checks of every numbered notebook: name, Colab badge, setup cell, asserts, kernelspec,
no machine paths, size, and committed outputs from a full (not quick) run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import MACHINE_PATHS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024
BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/(?P<slug>[\w.-]+/[\w.-]+)/blob/main/notebooks/(?P<file>[^)\s]+)\)"
)


def repo_slug() -> str:
    match = re.search(r"<!-- repo: ([\w.-]+/[\w.-]+) -->", (ROOT / "README.md").read_text())
    assert match, "README.md must name the repository in a `<!-- repo: owner/name -->` comment"
    return match.group(1)


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, [p.name for p in NOTEBOOKS]


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    return path, json.loads(path.read_text(encoding="utf-8"))


def test_name(notebook):
    path, _ = notebook
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name


def test_header_and_colab_badge(notebook):
    path, nb = notebook
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown"
    text = source(first)
    assert re.match(rf"# {path.name[:2]} · \S", text), "the first cell starts with '# NN · Title'"
    match = BADGE.search(text)
    assert match, "the first cell holds an Open In Colab badge"
    assert match.group("slug") == repo_slug()
    assert match.group("file") == path.name
    assert "What you will learn" in text and "quick mode" in text.lower()


def test_setup_cell(notebook):
    _, nb = notebook
    setup = nb["cells"][1]
    assert setup["cell_type"] == "code"
    assert "from badnets_utils.notebook import setup" in source(setup)
    assert "cfg = setup(" in source(setup)


def test_asserts_outcomes(notebook):
    _, nb = notebook
    code = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert re.search(r"^\s*assert\s", code, re.M), "at least one code cell asserts a key outcome"


def test_kernelspec(notebook):
    _, nb = notebook
    spec = nb["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python"


def test_no_machine_paths(notebook):
    path, _ = notebook
    found = MACHINE_PATHS.findall(path.read_text(encoding="utf-8"))
    assert not found, f"machine paths in {path.name}: {sorted(set(found))}"


def test_size(notebook):
    path, _ = notebook
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB"


def test_outputs_from_a_full_run(notebook):
    path, nb = notebook
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code_cells), f"{path.name} is not fully executed"
    setup_output = output_text(nb["cells"][1])
    assert "mode: full" in setup_output, f"{path.name}'s outputs are not from a full run: {setup_output[:80]!r}"
    errors = [o for c in code_cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was saved with an error output"
