"""benchmarks/notebook_times.py: timing in each mode, rendering between markers, check_times."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from badnets_utils.tools.github import KERNELSPEC, LANGUAGE_INFO

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("notebook_times", ROOT / "benchmarks" / "notebook_times.py")
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)

PROBE = "import os\nopen('ran-' + os.environ.get('BADNETS_QUICK', '-') + os.environ.get('BADNETS_RETRAIN', '-'), 'w')"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A tiny repository: one notebook with a time note, one without, a README and docs/teaching.md."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs").mkdir()
    header = new_markdown_cell("# 01 · Tiny\n\n**Run time.** <!-- time -->unknown<!-- /time -->")
    nbformat.write(new_notebook(cells=[header, new_code_cell(PROBE)]), tmp_path / "notebooks" / "01_tiny.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 02 · Bare")]), tmp_path / "notebooks" / "02_bare.ipynb")
    (tmp_path / "README.md").write_text("# R\n\n<!-- notebook-times -->\nold\n<!-- /notebook-times -->\nend\n")
    (tmp_path / "docs" / "teaching.md").write_text("no markers here\n")
    return tmp_path


def test_measure_runs_each_mode_in_notebooks_folder(root: Path, monkeypatch):
    monkeypatch.setenv("BADNETS_QUICK", "1")  # class mode must unset it
    assert T.main(["--root", str(root), "--notebooks", "01", "--modes", "class", "quick", "retrain"]) == 0
    assert sorted(p.name for p in (root / "notebooks").glob("ran-*")) == sorted(
        ["ran---", "ran-1-", "ran--1"]
    )  # class, quick, retrain
    data = json.loads((root / "benchmarks" / "notebook_times.json").read_text())
    assert set(data["notebooks"]) == {"01_tiny"} and set(data["notebooks"]["01_tiny"]) == {"class", "quick", "retrain"}
    readme = (root / "README.md").read_text()
    assert "| 01 · tiny |" in readme and "old" not in readme and readme.endswith("<!-- /notebook-times -->\nend\n")
    header = nbformat.read(root / "notebooks" / "01_tiny.ipynb", as_version=4).cells[0].source
    assert "<!-- time -->class mode: " in header and " · quick mode: " in header and "unknown" not in header
    assert (root / "docs" / "teaching.md").read_text() == "no markers here\n"
    assert T.check_times(root) == []


def test_render_only_and_check_times(root: Path):
    before = (root / "notebooks" / "02_bare.ipynb").read_bytes()
    (root / "benchmarks").mkdir()
    box, other = {"machine": "test box", "date": "2026-01-01"}, {"machine": "other box", "date": "2025-12-31"}
    data = {"measured": {"class": box, "quick": box, "retrain": other},
            "notebooks": {"01_tiny": {"class": 75.0, "quick": 7.2}}}  # fmt: skip
    (root / "benchmarks" / "notebook_times.json").write_text(json.dumps(data))
    assert sorted(T.check_times(root)) == ["README.md: times differ from benchmarks/notebook_times.json (run "
                                          "--render-only)", "notebooks/01_tiny.ipynb: times differ from "
                                          "benchmarks/notebook_times.json (run --render-only)"]  # fmt: skip
    assert T.main(["--root", str(root), "--render-only"]) == 0
    assert T.check_times(root) == []
    assert "| 01 · tiny | 1 min 15 s | 7 s | — |" in (root / "README.md").read_text()
    header = nbformat.read(root / "notebooks" / "01_tiny.ipynb", as_version=4).cells[0].source
    note = "class mode: 1 min 15 s · quick mode: 7 s (measured: class mode and quick mode on test box)"
    assert (
        "class mode and quick mode on test box (2026-01-01); full retrain on other box (2025-12-31)"
        in (root / "README.md").read_text()
    )  # each mode says where and when it was measured
    assert header == f"# 01 · Tiny\n\n**Run time.** <!-- time -->{note}<!-- /time -->"
    assert (root / "notebooks" / "02_bare.ipynb").read_bytes() == before
    written = T.render(root, T.load(root))
    assert written == []  # idempotent


@pytest.mark.parametrize(("seconds", "text"), [(None, "—"), (4.4, "4 s"), (60, "1 min"), (201, "3 min 21 s"),
                                               (1500, "25 min")])  # fmt: skip
def test_duration(seconds, text):
    assert T.duration(seconds) == text


def test_repository_times_agree_with_json():
    assert T.check_times(ROOT) == []


def test_clean_outputs_drops_progress_bars_and_foreign_widget_state():
    nb = nbformat.v4.new_notebook()
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "aa", "version_major": 2, "version_minor": 0}}
    bar = {"application/vnd.jupyter.widget-view+json": {"model_id": "bb", "version_major": 2, "version_minor": 0},
           "text/plain": " 50%|█████     | 2/4 [00:01<00:01,  2.00it/s]"}  # fmt: skip
    cell = new_code_cell("x", execution_count=3, metadata={"execution": {"iopub.status.busy": "t"}})
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={**view, "text/plain": "VBox()"}),
        nbformat.v4.new_output("display_data", data=bar),
        nbformat.v4.new_output("stream", name="stderr", text="100%|██████████| 4/4 [00:02<00:00, 1.9it/s]\n"),
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1: loss 0.1\n"),
    ]
    nb.cells = [cell]
    state = {"aa": {"state": {"children": ["IPY_MODEL_cc"]}}, "cc": {"state": {}}, "bb": {"state": {}}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state, "version_major": 2}}
    nb.metadata["language_info"] = {"name": "ipython", "version": "3.12"}
    T.clean_outputs(nb)
    assert [o.get("name", o.get("output_type")) for o in cell.outputs] == ["display_data", "stdout"]
    assert cell.execution_count == 3 and "execution" not in cell.metadata
    assert set(nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]) == {"aa", "cc"}
    assert nb.metadata["kernelspec"] == KERNELSPEC and nb.metadata["language_info"] == LANGUAGE_INFO
    cell.outputs = cell.outputs[1:]  # no widget left: no widget state
    assert "widgets" not in T.clean_outputs(nb).metadata


def test_write_outputs_needs_class_mode(root: Path):
    with pytest.raises(SystemExit):
        T.main(["--root", str(root), "--modes", "quick", "--write-outputs"])
