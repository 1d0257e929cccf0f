"""Notebook 03's "load instead of train" path, run for real against the shipped, verified checkpoint."""

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_train_backdoored_cnn.ipynb"


def test_notebook_03_loads_the_shipped_checkpoint(mnist_root, monkeypatch):
    nb = nbformat.reads(NOTEBOOK.read_text(), as_version=4)
    switched = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and "LOAD_LOCAL = False" in cell.source:
            cell.source = cell.source.replace("LOAD_LOCAL = False", "LOAD_LOCAL = True")
            switched += 1
    assert switched == 1, "notebook 03 must have one LOAD_LOCAL switch"
    monkeypatch.setenv("BADNETS_QUICK", "1")
    monkeypatch.setenv("BADNETS_DATA", str(mnist_root))
    where = {"metadata": {"path": str(NOTEBOOK.parent)}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=where).execute()
    text = json.dumps([o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])])
    assert "loaded checkpoints/badnet-MNIST.pth (verified against the manifest: True)" in text
    assert "no training history to plot" in text and "epoch 1/" not in text
    assert "nothing new to save" in text
