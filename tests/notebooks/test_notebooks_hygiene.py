"""Static checks of every numbered notebook: name, Colab badge, setup cell, asserts, kernelspec,
no machine paths, size, and committed outputs from a full (not quick) run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import MACHINE_PATHS

from badnets_utils.tools.github import KERNELSPEC, LANGUAGE_INFO

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The classroom kit's rules (switches, hints, tagged solutions, endings, clean metadata) cover every notebook.
KIT = NOTEBOOKS
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


@pytest.fixture(params=KIT, ids=[p.name for p in KIT])
def kit_notebook(request):
    path = request.param
    return path, json.loads(path.read_text(encoding="utf-8"))


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


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_switches_then_setup_cell(kit_notebook):
    _, nb = kit_notebook
    params, setup = nb["cells"][1], nb["cells"][2]
    assert params["cell_type"] == "code" and "parameters" in tags(params), "cell 1: the switches, tagged parameters"
    assert re.search(r"^QUICK = None\s+#", source(params), re.M) and re.search(
        r"^RETRAIN = False\s+#", source(params), re.M
    )
    assert setup["cell_type"] == "code" and "setup" in tags(setup)
    assert "from badnets_utils.course.notebook import setup" in source(setup)
    assert "cfg = setup(seed=0, quick=QUICK, retrain=RETRAIN)" in source(setup)
    assert "QUICK" in source(nb["cells"][0]) and "RETRAIN" in source(nb["cells"][0]), "the header says how to switch"


def test_header_time_markers(kit_notebook):
    _, nb = kit_notebook
    assert re.search(r"<!-- time -->.+<!-- /time -->", source(nb["cells"][0])), "the run-time line has time markers"


def test_checks_print_no_stray_value(kit_notebook):
    _, nb = kit_notebook
    for cell in nb["cells"]:
        for line in source(cell).splitlines() if cell["cell_type"] == "code" else []:
            if line.lstrip().startswith("exercises.check_"):
                assert line.rstrip().endswith(";"), f"end the check with ';' (no stray True/False): {line}"


def test_images_travel(notebook):
    path, nb = notebook
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = source(cell)
            assert not re.search(r"!\[[^\]]*\]\(\.\./|<img[^>]+src=[\"']\.\./", text), (
                f"{path.name}: a ../ image path breaks on Colab; use a cell attachment"
            )
            for name in re.findall(r"\(attachment:([^)\s]+)\)", text):
                assert name in cell.get("attachments", {}), f"{path.name}: attachment {name} is missing"


def test_ending_takeaways_references_next(kit_notebook):
    path, nb = kit_notebook
    text = "\n".join(source(c) for c in nb["cells"][-4:] if c["cell_type"] == "markdown")
    assert "## Key takeaways" in text and "## References" in text and "arXiv:1708.06733" in text
    nxt = re.search(r"## Next notebook.*?\]\((\d\d_[a-z0-9_]+\.ipynb)\)", text, re.S)
    assert nxt, f"{path.name} ends with a link to the next notebook"
    last = path == NOTEBOOKS[-1]  # the last one points back into the series
    assert int(nxt.group(1)[:2]) == int(path.name[:2]) + 1 or (last and nxt.group(1) != path.name)


def test_solutions_and_teacher_notes_are_tagged(kit_notebook):
    path, nb = kit_notebook
    for cell in nb["cells"]:
        text = source(cell)
        if "<summary>Solution" in text:
            assert tags(cell) == ["solution"], f"{path.name}: a solution cell must be its own cell, tagged solution"
        if "Answer key (teacher)" in text:
            assert "teacher" in tags(cell)
        if "(open)" in text and cell["cell_type"] == "markdown":
            i = nb["cells"].index(cell)
            assert any("teacher" in tags(c) for c in nb["cells"][i + 1 : i + 3]), (
                f"{path.name}: open exercise without key"
            )


def test_committed_metadata_and_outputs_are_clean(kit_notebook):
    path, nb = kit_notebook
    assert nb["metadata"].get("language_info") == LANGUAGE_INFO
    assert nb["metadata"]["kernelspec"] == KERNELSPEC
    widget_views = [o for c in nb["cells"] for o in c.get("outputs", [])
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]  # fmt: skip
    if not path.name.startswith("05_"):
        assert not widget_views and "widgets" not in nb["metadata"], f"{path.name}: widget outputs (progress bars?)"
    for view in widget_views:
        assert "text/plain" in view["data"]


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
    setup_output = output_text(next(c for c in code_cells if "setup" in tags(c)))
    assert "mode: full" in setup_output, f"{path.name}'s outputs are not from a full run: {setup_output[:80]!r}"
    errors = [o for c in code_cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was saved with an error output"
