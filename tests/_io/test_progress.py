"""Progress bars that survive save and reopen: HTML in one display updated in place, never a widget."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from badnets_utils._io import progress

ROOT = Path(__file__).resolve().parents[2]
WIDGET_MIMETYPES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")


class Handle:
    """A stand-in for IPython's DisplayHandle that records what is shown."""

    def __init__(self, bundle: dict) -> None:
        self.shown = [bundle]

    def update(self, bundle: dict, raw: bool = False) -> None:
        assert raw
        self.shown.append(bundle)


@pytest.fixture
def handles(monkeypatch) -> list[Handle]:
    made: list[Handle] = []

    def show(bundle: dict) -> Handle:
        made.append(Handle(bundle))
        return made[-1]

    monkeypatch.setattr(progress, "_show", show)
    return made


def test_a_terminal_gets_tqdms_text_bar():
    assert not progress.in_notebook()  # pytest has no kernel
    assert progress.tqdm is progress.TextBar


def test_a_text_bar_draws_only_on_a_terminal(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        for _ in progress.TextBar(range(3), file=stream, mininterval=0):
            pass
    assert log.getvalue() == "" and "3/3" in terminal.getvalue()  # a log file gets no carriage returns


def test_one_display_updated_in_place_and_rate_limited(handles):
    bar = progress.HTMLBar(range(1000), desc="epoch 1/3 <b>", mininterval=3600)
    for _ in bar:
        bar.set_postfix(loss="0.5")  # asks for a redraw every step
    assert len(handles) == 1, "one display per bar"
    shown = handles[0].shown
    assert len(shown) == 2, f"{len(shown)} redraws: the first and the final one only, within the rate limit"
    final = shown[-1]
    assert set(final) == {"text/html", "text/plain"}
    assert '<progress value="1000" max="1000"' in final["text/html"]
    assert "epoch 1/3 &lt;b&gt;: 100%" in final["text/html"] and "<b>" not in final["text/html"]  # escaped
    assert "1000/1000" in final["text/plain"] and "loss=0.5" in final["text/plain"]


def test_redraws_follow_the_interval(handles, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    bar = progress.HTMLBar(total=10, mininterval=0.5, miniters=1)
    for _ in range(10):
        clock[0] += 0.2
        bar.set_postfix(step=1)
        bar.update()
    shown = len(handles[0].shown)
    assert 3 <= shown <= 6, f"{shown} draws in 2 s at one per 0.5 s"
    bar.close()


def test_leave_false_empties_the_display_on_close(handles):
    bar = progress.HTMLBar(range(5), leave=False)
    for _ in bar:
        pass
    assert handles[0].shown[-1] == {"text/plain": ""}
    bar.close()  # a second close draws nothing more
    assert len(handles[0].shown) == 2


def test_a_bar_that_stopped_early_keeps_its_last_state(handles):
    bar = progress.HTMLBar(total=10, leave=False)
    bar.update(3)
    bar.close()
    assert '<progress value="3" max="10"' in handles[0].shown[-1]["text/html"]


def test_a_disabled_bar_shows_nothing(handles):
    for _ in progress.HTMLBar(range(3), disable=True):
        pass
    assert handles == []


def test_in_a_kernel_without_ipywidgets_the_saved_notebook_holds_no_widget(tmp_path):
    """A tiny notebook run by nbclient (what nbval and Run All do): each bar is one HTML display in the saved
    file, kept or emptied; nothing of a widget is left to fail on reopen."""
    import nbclient  # both in the test extra: never skipped
    import nbformat

    setup = (
        "import sys\n"
        "sys.modules['ipywidgets'] = None  # as if ipywidgets were not installed\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from badnets_utils._io.progress import HTMLBar, tqdm\n"
        "assert tqdm is HTMLBar, tqdm"
    )
    cells = [
        setup,
        "import time\nfor _ in tqdm(range(20), desc='kept', mininterval=0.05):\n    time.sleep(0.01)",
        "bar = tqdm(range(20), desc='gone', leave=False, mininterval=0.05)\n"
        "for _ in bar:\n    time.sleep(0.01)\n    bar.set_postfix(loss=0.1)\nbar.close()\nprint('done')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()  # fmt: skip
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    text = path.read_text(encoding="utf-8")
    assert not any(m in text for m in WIDGET_MIMETYPES), "widget output in the saved notebook"
    saved = nbformat.read(path, as_version=4)
    assert "widgets" not in saved.metadata
    kept, gone = (c.outputs for c in saved.cells[1:])
    assert [o.output_type for o in kept] == ["display_data"], kept
    page = kept[0].data["text/html"]
    assert "kept: 100%" in page and '<progress value="20" max="20"' in page, page
    assert [o.output_type for o in gone] == ["display_data", "stream"], gone
    assert gone[0].data == {"text/plain": ""} and gone[1].text == "done\n"
