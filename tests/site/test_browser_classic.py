"""The trigger painter in a real browser under ipywidgets 7 (Colab's): Jupyter Notebook 6 + headless Chromium.

Colab ships ipywidgets 7.7.1 and cannot be reached from CI; the closest frontend that can be driven here is the
classic Notebook 6, whose widgets extension (widgetsnbextension 3) serves ipywidgets 7. This test runs in the
Colab-like venv that ``.ci/run`` builds (ipywidgets 7.7.1, notebook 6.5.7, the project NOT installed): a
notebook in a temporary folder puts the repository on ``sys.path`` as the notebooks' setup cell does, displays a
painter, and the test clicks grid cells, types a name, clicks Save and checks the PNG on disk pixel by pixel.

In the main venv (ipywidgets 8, no Notebook 6) it is skipped with its reason; with ``BADNETS_COLAB_VENV=1``
(set by ``.ci/run``) or in CI with ipywidgets 7, anything missing is a failure, never a skip.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, saved_trigger_pixels, stop, wait_for_server, write_notebook

ROOT = Path(__file__).resolve().parents[2]
SIZE = 5
CLICKS = [(0, 4), (2, 2), (4, 0), (1, 1), (3, 2), (1, 1)]  # (1, 1) twice: painted, then erased
EXPECTED = {(0, 4), (2, 2), (4, 0), (3, 2)}
NAME = "classic_trigger"
ALL_CELLS_CLICKABLE = """(n) => {
  const cells = [...document.querySelectorAll('.painter-grid > *')];
  return cells.length === n && cells.every(c => {
    const b = c.getBoundingClientRect();
    if (b.width < 4 || b.height < 4) return false;
    c.scrollIntoView({block: 'nearest'});
    const r = c.getBoundingClientRect();
    return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === c;
  });
}"""
# ipywidgets 7's classic frontend, once connected to a fresh kernel, asks it for the widgets it already holds. Its
# control comm is refused (ipywidgets is not imported yet), so it falls back to a comm_info request; widgets a cell
# creates while that request is in flight get a second model in the frontend, and the kernel's updates then go to
# the model no view shows (seen here as a click whose cell never changes colour, on a cold machine). The race is
# ipywidgets 7's, not the painter's, and only a Run All within moments of opening meets it: the test waits for that
# round trip first.
WIDGETS_FALLBACK = 'Failed to fetch ipywidgets through the "jupyter.widget.control" comm channel'
COMM_INFO_ROUND_TRIP = """() => new Promise(done => Jupyter.notebook.kernel.send_shell_message(
  'comm_info_request', {target_name: 'jupyter.widget'}, {shell: {reply: () => done(true)}}))"""
KERNEL_READY = (
    "() => !!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected())"
)


def _colab_venv() -> bool:
    return os.environ.get("BADNETS_COLAB_VENV") == "1"


def _unavailable(reason: str):
    if _colab_venv() or os.environ.get("CI") == "true":
        pytest.fail(f"the classic-Notebook browser test cannot run: {reason}")
    pytest.skip(reason)


def _ipywidgets_major() -> int | None:
    try:
        import ipywidgets
    except ImportError:
        return None
    return int(ipywidgets.__version__.split(".")[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(folder: Path, save_dir: Path) -> Path:
    # What the notebooks' setup cell does outside Colab: put the repository on sys.path (it is not installed).
    setup = (
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport ipywidgets\nprint('ipywidgets', ipywidgets.__version__)"
    )
    painter = (
        "import torch\n"
        "from badnets_utils.core.data import DATASETS, ImageData\n"
        "from badnets_utils.course.painter import TriggerPainter\n"
        "imgs = torch.zeros((8, 1, 28, 28), dtype=torch.uint8)\n"
        "imgs[:, :, 6:22, 12:16] = 200  # a grey bar: something to stamp the trigger on\n"
        "samples = ImageData(imgs, torch.arange(8), list(DATASETS['MNIST']['classes']), name='synthetic')\n"
        f"painter = TriggerPainter('MNIST', samples=samples, size={SIZE}, save_dir={str(save_dir)!r})\n"
        "painter.widget"
    )

    return write_notebook(folder, [setup, painter])


def _env(tmp: Path) -> dict:
    """Isolated Jupyter folders; no PYTHONPATH, as on Colab: the kernel finds the project through the notebook."""
    env = dict(os.environ)
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = tmp / "jupyter" / key.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[key] = str(folder)
    env.pop("PYTHONPATH", None)
    env.pop("JUPYTER_PATH", None)
    env.pop("BADNETS_QUICK", None)
    return env


def test_paint_and_save_in_classic_notebook_with_ipywidgets7(tmp_path):
    major = _ipywidgets_major()
    if major != 7:
        if _colab_venv():
            pytest.fail(f"BADNETS_COLAB_VENV=1 but ipywidgets {major} is installed, not 7.7.1")
        pytest.skip(f"needs the Colab-like venv (ipywidgets 7, notebook 6) of .ci/run; here ipywidgets {major}")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is missing")
    try:
        import notebook

        if int(notebook.__version__.split(".")[0]) != 6:
            _unavailable(f"needs Jupyter Notebook 6 (it serves ipywidgets 7), found {notebook.__version__}")
    except ImportError:
        _unavailable("Jupyter Notebook 6 is missing (pip install notebook==6.5.7)")

    work, save_dir = tmp_path / "classic", tmp_path / "saved"
    work.mkdir()
    _write_notebook(work, save_dir)
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp_path / "notebook.log"
    cmd = [
        sys.executable, "-m", "notebook", "--no-browser", "--allow-root", "--ip", "127.0.0.1", f"--port={port}",
        f"--NotebookApp.token={token}", f"--notebook-dir={work}", "--NotebookApp.port_retries=0",
    ]  # fmt: skip
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=log_file, stderr=subprocess.STDOUT, cwd=work)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(f"{base}/api/status?token={token}", proc, log, "Notebook")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                console = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.goto(f"{base}/notebooks/painter.ipynb?token={token}")
                page.wait_for_function(KERNEL_READY, timeout=60_000)
                _wait_for_widget_restore(page, console)
                page.evaluate("Jupyter.notebook.execute_all_cells()")
                expect(page.locator(".output_area").get_by_text("ipywidgets 7.7.1")).to_be_visible(timeout=60_000)

                grid = page.locator(".painter-grid")
                expect(grid).to_be_visible(timeout=60_000)
                cells = grid.locator(":scope > *")
                expect(cells).to_have_count(SIZE * SIZE, timeout=10_000)
                # Laid out: each cell is what the browser finds at its own centre (nothing overlaps it).
                page.wait_for_function(ALL_CELLS_CLICKABLE, arg=SIZE * SIZE, timeout=30_000)

                painted = set()
                for r, c in CLICKS:
                    cells.nth(r * SIZE + c).click()
                    painted ^= {(r, c)}
                    expect(page.locator(".painter-grid .painter-on")).to_have_count(len(painted), timeout=10_000)
                assert painted == EXPECTED
                for r, c in EXPECTED:  # the kernel's state came back to the right cells
                    expect(cells.nth(r * SIZE + c)).to_have_class(_class_re(r, c), timeout=10_000)

                page.locator(".painter-name input").fill(NAME)
                page.locator(".painter-name input").press("Enter")
                page.locator(".painter-save").click()
                expect(page.locator(".painter-status")).to_contain_text(f"{NAME}.png", timeout=15_000)

                SCREENSHOTS.mkdir(exist_ok=True)
                page.locator(".painter-root").screenshot(path=str(SCREENSHOTS / "painter_classic_ipywidgets7.png"))
            except Exception:
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / "painter_classic_failure.png"))
                print("browser console:", *console[-60:], sep="\n  ")
                raise
            finally:
                browser.close()
    finally:
        stop(proc)

    saved = save_dir / f"{NAME}.png"
    saved_trigger_pixels(saved, SIZE, EXPECTED, f":\n{log.read_text()[-2000:]}")
    assert [p.name for p in save_dir.iterdir()] == [saved.name], "stray files beside the PNG"


def _wait_for_widget_restore(page, console: list[str], timeout_s: float = 30.0) -> None:
    """Until ipywidgets 7's frontend has asked the fresh kernel for its widgets (see WIDGETS_FALLBACK) and had the
    answer: the kernel answers shell requests in order, so once our own comm_info request is answered, so is its."""
    deadline = time.monotonic() + timeout_s
    while not any(WIDGETS_FALLBACK in line for line in console):
        if time.monotonic() > deadline:
            pytest.fail(f"ipywidgets 7's frontend never asked the kernel for its widgets; console:\n{console}")
        page.wait_for_timeout(100)
    page.evaluate(COMM_INFO_ROUND_TRIP)


def _class_re(r: int, c: int) -> re.Pattern:
    """Cell (r, c) is painted: it carries both its own class and painter-on."""
    return re.compile(rf"\bpainter-cell-r{r}-c{c}\b.*\bpainter-on\b|\bpainter-on\b.*\bpainter-cell-r{r}-c{c}\b")
