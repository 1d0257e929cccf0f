"""The course website runs no script a notebook brings (docs/_ext/sanitise.py; the rule is in docs/reliability.md).

A small copy of docs/ (conf.py, _ext/, _static/ and an index of one page) is built with the README's command from one
deliberately hostile notebook. What code produced is sanitised: an HTML output with a ``<script>``, an ``onerror=``
handler and a ``javascript:`` link, a JavaScript output and an SVG output with a ``<script>`` reach no page or file
of the site, while what is legitimate (bold text, the progress bar, a clean SVG, ``<details>`` solutions, JPEG and GIF
attachments, math) is kept. What the author writes fails the build in one line naming the notebook and the cell: a
markdown ``<script>`` in a real build, the other cases through the check itself. An SVG file or an HTML download
that a notebook's Markdown points at fails the build too. Every hostile string carries ``pwned``.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import shutil
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from test_site import DOCS, NOTEBOOKS, ROOT, _build_env, _needs_sphinx, _sphinx_command

_spec = importlib.util.spec_from_file_location("sanitise", DOCS / "_ext" / "sanitise.py")
sanitise = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sanitise)

NAME = "99_hostile.ipynb"
SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
SCRIPT_SVG = f'{SVG_OPEN}<script>alert("pwned-svg")</script><rect width="5" height="5"/></svg>'
CLEAN_SVG = f'{SVG_OPEN}<rect width="10" height="10" fill="#c33"/></svg>'


def _image(fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, fmt)
    return buf.getvalue()


def _with_attachment(source: str, key: str, mime: str, data: str):
    cell = new_markdown_cell(source)
    cell["attachments"] = {key: {mime: data}}
    return cell


def _display(data: dict):
    return new_code_cell("show()", outputs=[new_output("display_data", data=data)])


def _sanitised_cells() -> list:
    """Outputs a build keeps only in part, and the legitimate content around them."""
    return [
        _display(
            {
                "text/html": '<b>kept bold</b><script>alert("pwned-html")</script><img src="x" '
                "onerror=\"alert('pwned-onerror')\"><a href=\"javascript:alert('pwned-href')\">l</a>"
                '<div class="badnets-progress">runs: <progress value="1" max="2" '
                'style="width:240px"></progress></div>',
                "text/plain": "<HTML>",
            }
        ),
        _display({"application/javascript": 'alert("pwned-js")', "text/plain": "kept-js-text-form"}),
        _display({"image/svg+xml": SCRIPT_SVG, "text/plain": "kept-svg-text-form"}),
        _display({"image/svg+xml": CLEAN_SVG, "text/plain": "clean svg"}),
        new_markdown_cell("<details>\n<summary>Solution</summary>\n\nkept solution text\n\n</details>"),
        _with_attachment(
            "![a photo](attachment:photo.jpg)", "photo.jpg", "image/jpeg", base64.b64encode(_image("JPEG")).decode()
        ),
        _with_attachment(
            "![a gif](attachment:anim.gif)", "anim.gif", "image/gif", base64.b64encode(_image("GIF")).decode()
        ),
        new_markdown_cell("Some math: {math}`x^2`."),
    ]


def _hostile_notebook(cells: list):
    nb = new_notebook(cells=[new_markdown_cell("# Hostile\n\nA notebook sent in a pull request."), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["mystnb"] = {"execution_mode": "force"}  # would run the notebook at build time: dropped
    return nb


def _small_docs(tmp_path, cells: list, files: dict[str, str] | None = None):
    """A copy of docs/ that builds one page, from a notebook of ``cells``, in ``tmp_path``."""
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("_notebooks", "__pycache__", "*.md"))
    (tmp_path / "docs" / "index.md").write_text(f"# Test\n\n```{{toctree}}\n_notebooks/{NAME[:-6]}\n```\n")
    for name, text in (files or {}).items():
        (tmp_path / "docs" / name).write_text(text)
    shutil.copy(ROOT / "repo.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    nbformat.write(_hostile_notebook(cells), tmp_path / "notebooks" / NAME)


def _build(tmp_path) -> subprocess.CompletedProcess:
    env = _build_env(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run(_sphinx_command(tmp_path / "docs", tmp_path / "out"), cwd=tmp_path, capture_output=True,
                          text=True, env=env)  # fmt: skip


def test_outputs_that_could_run_script_reach_no_page_and_the_rest_is_kept(tmp_path):
    _needs_sphinx()
    _small_docs(tmp_path, _sanitised_cells())
    build = _build(tmp_path)
    assert build.returncode == 0, f"{build.stdout[-2000:]}\n{build.stderr[-3000:]}"
    site = tmp_path / "out" / "site"
    served = [p for p in site.rglob("*") if p.suffix in {".html", ".svg", ".js"} and "_static" not in p.parts]
    hostile = [p.relative_to(site).as_posix() for p in served if "pwned" in p.read_text(errors="replace")]
    assert not hostile, f"hostile content is served in {hostile}"
    page = (site / "_notebooks" / f"{NAME[:-6]}.html").read_text(encoding="utf-8")
    body = page[page.index('<article class="bd-article">') : page.index("</article>")]
    assert "<script" not in body and "javascript:" not in page and not re.search(r"\son\w+=", body), body
    # what is legitimate is kept
    assert "<b>kept bold</b>" in body and '<progress value="1" max="2" style="width:240px">' in body
    assert "kept-js-text-form" in body and "kept-svg-text-form" in body
    assert "<details>" in body and "<summary>Solution</summary>" in body and "kept solution text" in body
    for file, fmt in (("99_hostile-photo.jpg", "JPEG"), ("99_hostile-anim.gif", "GIF")):
        assert f'src="../_images/{file}"' in body, file
        assert (site / "_images" / file).read_bytes() == _image(fmt), file
    svgs = list((site / "_images").glob("*.svg"))
    assert [p.read_text() for p in svgs] == [CLEAN_SVG], svgs
    assert 'window.MathJax = {"loader": {"load": ["ui/safe"]}}' in page
    for mime in ("application/javascript", "image/svg+xml"):
        assert f"notebooks/{NAME}: its page leaves out a {mime} output" in build.stdout, build.stdout[-3000:]


@pytest.mark.parametrize(
    "cells, files, error",
    [
        ([new_markdown_cell('Look: <script>alert("pwned")</script>')], {},
         f"error: notebooks/{NAME}, cell 2 (markdown): a <script> element ("),
        ([new_markdown_cell("![chart](../chart.svg)")], {"chart.svg": SCRIPT_SVG},
         f"error: notebooks/{NAME} shows chart.svg, an SVG with a <script> element;"),
        ([new_markdown_cell("[the answers](../answers.html)")], {"answers.html": "<script>alert('pwned')</script>"},
         f"error: notebooks/{NAME} links ../answers.html as a download;"),
    ],
    ids=["markdown-script", "svg-file-shown", "html-file-downloaded"],
)  # fmt: skip
def test_what_the_author_writes_fails_the_build_in_one_line(tmp_path, cells, files, error):
    _needs_sphinx()
    _small_docs(tmp_path, cells, files)
    build = _build(tmp_path)
    assert build.returncode == 2 and build.stderr.startswith(error), build.stderr[-3000:]
    assert build.stderr.count("\n") == 1, build.stderr


def _refusal(*cells) -> str:
    with pytest.raises(sanitise.Refused) as err:
        sanitise.check_notebook(_hostile_notebook(list(cells)), NAME)
    return str(err.value)


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n....").decode()


@pytest.mark.parametrize(
    "cell, problem",
    [
        (new_markdown_cell("<script>alert('pwned')</script>"), "cell 2 (markdown): a <script> element"),
        (new_markdown_cell('<img src="x" onerror="alert(\'pwned\')">'), "an event handler onerror= on <img>"),
        (new_markdown_cell('<a href="javascript:alert(1)">x</a>'), "a javascript: URL in href= of <a>"),
        (new_markdown_cell('<a href="jav&#x09;ascript&colon;alert(1)">x</a>'), "a javascript: URL in href= of <a>"),
        (new_markdown_cell("<!--x--!><img src=x onerror=alert(1)>-->"), "an event handler onerror= on <img>"),
        (new_markdown_cell("<svg><script>alert(1)</script></svg>"), "<svg> element"),
        (new_markdown_cell("```{raw} html\n<script>alert(1)</script>\n```"), "the {raw} directive"),
        (new_markdown_cell(":::{eval-rst}\n.. raw:: html\n:::"), "the {eval-rst} directive"),
        (new_markdown_cell("```{note}\n<iframe src=x></iframe>\n```"), "an <iframe> element, in a {note} directive"),
        (new_markdown_cell("{download}`answers <../answers.html>`"), "the {download} role"),
        (new_markdown_cell("## Title <img src=x>"), "HTML in a heading"),
        (new_raw_cell("<script>alert(1)</script>", metadata={"format": "text/html"}), "cell 2 (raw): a <script>"),
        (new_raw_cell("alert(1)", metadata={"format": "application/javascript"}), "a raw cell of format application/"),
        (_with_attachment("![x](attachment:s.svg)", "s.svg", "image/svg+xml", SCRIPT_SVG),
         "attachment 's.svg' is an SVG with a <script> element"),
        (_with_attachment("![x](attachment:x.bmp)", "x.bmp", "image/bmp", "Qk0="),
         "attachment 'x.bmp' is image/bmp; the site shows PNG, JPEG, GIF and SVG attachments"),
        (_with_attachment("![x](attachment:x.png)", "x.png", "image/png", base64.b64encode(b"<html>").decode()),
         "attachment 'x.png' is not the image/png it says it is"),
        (_with_attachment("![x](attachment:x.png)", "x.png", "image/png", "not base64!"),
         "attachment 'x.png' (image/png) is not base64 data"),
    ],
)  # fmt: skip
def test_the_check_names_the_cell_and_what_it_found(cell, problem):
    message = _refusal(cell)
    assert message.startswith(f"notebooks/{NAME}, cell 2 (") and problem in message, message
    assert "\n" not in message and "docs/_ext/sanitise.py" in message


@pytest.mark.parametrize(
    "cell",
    [
        new_markdown_cell("<details>\n<summary>Hint</summary>\n\n`<script>` in code is text\n\n</details>"),
        new_markdown_cell("<!-- time -->4 s<!-- /time --> and <span class='x' style='color: red'>red</span>"),
        new_markdown_cell("```html\n<script>alert(1)</script>\n```\n\n[site](https://example.org) {math}`x`"),
        new_markdown_cell("```{note}\nA **note**.\n```"),
        new_raw_cell("\\frac{1}{2}", metadata={"format": "text/latex"}),
        _with_attachment("![x](attachment:x.png)", "x.png", "image/png", PNG),
        _with_attachment("![x](attachment:c.svg)", "c.svg", "image/svg+xml", CLEAN_SVG),
    ],
    ids=["details", "comments-and-span", "code-link-math", "note", "latex", "png", "clean-svg"],
)
def test_the_check_passes_what_notebooks_legitimately_use(cell):
    sanitise.check_notebook(_hostile_notebook([cell]), NAME)


def test_the_committed_notebooks_pass_the_check():
    for path in NOTEBOOKS:
        sanitise.check_notebook(nbformat.read(path, as_version=4), path.name)


def test_svg_outputs_are_checked_as_a_browser_reads_them():
    assert sanitise.svg_problem(CLEAN_SVG) is None
    for svg, problem in [
        (f'{SVG_OPEN[:-1]} onload="alert(1)"/>', "an event handler onload= on <svg>"),
        (f"{SVG_OPEN}<foreignObject/></svg>", "a <foreignObject> element"),
        (f'{SVG_OPEN}<use xmlns:x="http://www.w3.org/1999/xlink" x:href="javascript:1"/></svg>', "links"),
        (f'{SVG_OPEN}<h:script xmlns:h="http://www.w3.org/1999/xhtml">1</h:script></svg>', "a <script> element"),
        (f'<?xml-stylesheet href="x.xsl" type="text/xsl"?>{CLEAN_SVG}', "a processing instruction"),
        (f"{SVG_OPEN}<rect>", "not well-formed"),
    ]:
        assert problem in (sanitise.svg_problem(svg) or ""), svg


def test_the_backstop_keeps_no_heading_html(monkeypatch):
    """Raw HTML in a title would reach every page's navigation: the doctree of a notebook page loses it."""
    from types import SimpleNamespace

    from docutils import nodes

    section = nodes.section("", nodes.title("", "Title ", nodes.raw("", "<img src=x onerror=alert(1)>", format="html")))
    doctree = nodes.document(None, None)
    doctree += section
    sanitise._notebook_doctree(SimpleNamespace(env=SimpleNamespace(docname="_notebooks/99_hostile")), doctree)
    assert not list(doctree.findall(nodes.raw)) and section[0].astext() == "Title "
