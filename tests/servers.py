"""Starting and stopping the Jupyter servers of the real-browser tests (JupyterLab 4 and classic Notebook 6)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

# Debian's Chromium, headless, without the background networking an offline machine refuses.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, name: str, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{name} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not stop within 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def write_notebook(folder: Path, sources: list[str]) -> Path:
    """``folder/painter.ipynb`` holding one code cell per source, unexecuted (what the browser tests open)."""
    cells = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s} for s in sources
    ]
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = folder / "painter.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def saved_trigger_pixels(saved: Path, size: int, cells, log: str = ""):
    """The pixels of a trigger the painter saved: a ``size``×``size`` greyscale PNG holding white exactly at
    ``cells`` ((row, col) pairs) and black elsewhere (the assertion names the file; ``log``: what to show if it is
    missing). Returns the expected array, for further checks."""
    import numpy as np
    from PIL import Image

    assert saved.is_file(), f"Save did not write {saved.name}{log}"
    with Image.open(saved) as img:
        assert img.size == (size, size) and img.mode == "L", (img.size, img.mode)
        pixels = np.asarray(img)
    expected = np.zeros((size, size), dtype=np.uint8)
    for r, c in cells:
        expected[r, c] = 255
    np.testing.assert_array_equal(pixels, expected)
    return expected
