"""Progress bars: one factory, so that every bar in the package looks and behaves the same.

``tqdm`` here has tqdm's interface. In a terminal it is tqdm's own text bar (``TextBar``), drawn only when its stream
is a terminal: output redirected to a log file gets no bars and no carriage returns. In a notebook kernel (JupyterLab,
Notebook, Colab, VS Code) it is ``HTMLBar``: a small HTML bar (with a text/plain copy) drawn into one IPython
display and updated in place, at most every ``MIN_INTERVAL_S`` seconds. It uses no ipywidgets, so a notebook saved
and reopened — or rendered by GitHub or a website — shows the last state of the bar, never "Error displaying
widget: model not found".
"""

from __future__ import annotations

import html
import re
import sys
import time
import uuid

from tqdm.std import tqdm as text_tqdm

__all__ = ["HTMLBar", "TextBar", "tqdm"]

MIN_INTERVAL_S = 0.5  # between two redraws of a notebook bar: each redraw is a message to the frontend
BAR_WIDTH_PX = 240


def _shell():
    """The running IPython shell, or None. Never imports IPython: a kernel has loaded it already."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


class _Display:
    """One output of the running kernel, shown once and then replaced in place (what IPython's display_id does)."""

    def __init__(self, bundle: dict) -> None:
        self.pub, self.transient = _shell().display_pub, {"display_id": uuid.uuid4().hex}
        self.pub.publish(data=bundle, metadata={}, transient=self.transient)

    def update(self, bundle: dict, raw: bool = True) -> None:
        self.pub.publish(data=bundle, metadata={}, transient=self.transient, update=True)


def _show(bundle: dict) -> _Display:
    """Display ``bundle`` (mimetype -> content); the returned handle's ``update(bundle)`` replaces it."""
    return _Display(bundle)


class HTMLBar(text_tqdm):
    """tqdm drawn as HTML into one IPython display, updated in place; ``leave=False`` empties it on close."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs = {"mininterval": MIN_INTERVAL_S, **kwargs, "gui": True}  # gui: tqdm itself writes nothing
        kwargs["disable"] = bool(kwargs.get("disable", False))
        super().__init__(*args, **kwargs)
        self._handle, self._drawn_at = None, time.monotonic()
        if not self.disable:
            self._handle = _show(self._bundle())

    def _bundle(self) -> dict:
        """The bar now, as text/html and text/plain."""
        d = self.format_dict
        text = self.format_meter(**{**d, "ncols": 80})
        d["bar_format"] = (d["bar_format"] or "{l_bar}<bar/>{r_bar}").replace("{bar}", "<bar/>")
        left, _, right = self.format_meter(**d).partition("<bar/>")
        left, right = left.rstrip("|"), right.lstrip("|")
        bar = ""
        if self.total:
            bar = (f'<progress value="{min(self.n, self.total)}" max="{self.total}" '
                   f'style="width:{BAR_WIDTH_PX}px;vertical-align:middle"></progress>')  # fmt: skip
        parts = (html.escape(left.strip()), bar, html.escape(right.strip()))
        return {"text/html": f'<div class="badnets-progress">{" ".join(p for p in parts if p)}</div>',
                "text/plain": re.sub(r"\s+$", "", text)}  # fmt: skip

    def display(self, msg=None, pos=None) -> bool:
        """Redraw the bar in place, at most every ``mininterval`` seconds (``set_postfix`` asks for more)."""
        now = time.monotonic()
        if getattr(self, "_handle", None) is not None and now - self._drawn_at >= self.mininterval:
            self._handle.update(self._bundle(), raw=True)
            self._drawn_at = now
        return True

    def close(self) -> None:
        """The final state stays with ``leave=True`` (or when the loop stopped early); else the display empties."""
        if self.disable or getattr(self, "_handle", None) is None:
            return
        super().close()  # marks the bar closed; in gui mode tqdm draws nothing itself
        unfinished = self.total is not None and self.n < self.total
        if self.leave or unfinished:
            self._handle.update(self._bundle(), raw=True)
        else:
            self._handle.update({"text/plain": ""}, raw=True)

    def clear(self, *_, **__) -> None:
        """Nothing to clear: the next redraw replaces the display."""


class TextBar(text_tqdm):
    """tqdm's text bar, drawn only when its stream (``file``, else stderr) is a terminal."""

    def __init__(self, *args, **kwargs) -> None:
        stream = kwargs.get("file") or sys.stderr
        if not getattr(stream, "isatty", lambda: False)():
            kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def in_notebook() -> bool:
    """True in a Jupyter kernel (an IPython shell with a kernel: JupyterLab, Notebook, Colab, VS Code)."""
    shell = _shell()
    return shell is not None and getattr(shell, "kernel", None) is not None


tqdm = HTMLBar if in_notebook() else TextBar
