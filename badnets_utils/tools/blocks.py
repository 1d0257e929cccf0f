"""Generated blocks: the figures of a page written from the files that hold them, between two markers.

A page holds ``<!-- name -->`` … ``<!-- /name -->``; whatever lies between is replaced by the rendered block, so a
figure is typed once (in a results file, a benchmark's JSON, the manifest or a notebook's committed output) and every
page that shows it is rewritten from there. ``python -m badnets_utils pages`` writes the course pages' blocks,
``--check`` lists the stale ones (a test runs it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from badnets_utils._io.files import atomic_write_text


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def _pattern(name: str) -> re.Pattern:
    start, end = markers(name)
    return re.compile(re.escape(start) + r"\n?(.*?)\n?" + re.escape(end), re.S)


def read_block(text: str, name: str) -> str | None:
    """What ``text`` holds between the markers of ``name``; None if it has none."""
    m = _pattern(name).search(text)
    return m.group(1) if m else None


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` replaced by ``body``; a page without the markers is an error.

    A block whose start marker begins a line is written on lines of its own (a table); one inside a line stays
    inside it (a phrase in a sentence: a comment at the start of a line would end the Markdown paragraph)."""
    start, end = markers(name)
    if read_block(text, name) is None:
        raise ValueError(f"no block {name!r}: the page needs {start} … {end}")
    at = text.index(start)
    inline = at > 0 and text[at - 1] != "\n"
    body = " ".join(body.split()) if inline else f"\n{body.strip()}\n"
    return _pattern(name).sub(lambda _: f"{start}{body}{end}", text, count=1)


def planned(pages: Mapping[Path, Mapping[str, str]]) -> dict[Path, str]:
    """The pages whose blocks differ from their rendering, with their new text."""
    plan = {}
    for path, blocks in pages.items():
        old = path.read_text(encoding="utf-8")
        new = old
        for name, body in blocks.items():
            new = replace_block(new, name, body)
        if new != old:
            plan[path] = new
    return plan


def write_pages(pages: Mapping[Path, Mapping[str, str]]) -> list[Path]:
    """Write every page whose blocks changed (atomically); return those written."""
    plan = planned(pages)
    for path, text in plan.items():
        atomic_write_text(path, text)
    return list(plan)
