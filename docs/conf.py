"""Sphinx configuration of the course website: the notebooks as committed (never executed), the guides, the API.

Build it (offline, warnings are errors) with::

    python -m sphinx -E -W --keep-going -b html -d build/doctrees docs build/site   # the README's command

The repository the site links to (Colab, the repository button, the notebooks' badges and ``REPO`` lines) is
``badnets_utils.tools.github.site_slug``'s: ``$GITHUB_REPOSITORY`` if set, else ``repo.toml``'s. With
``BADNETS_PUBLISH=1`` (``.github/workflows/pages.yml``) the placeholder repository fails the build.

On ``builder-inited`` every notebook of ``notebooks/`` is copied into ``docs/_notebooks/`` (git-ignored) as the
website shows it: teacher cells left out (``editions.web_edition``), badges and the setup cell's ``REPO`` line
pointed at that repository (``repo.pointed_at``; the committed notebooks are never touched), the Colab badge image
(a remote SVG) replaced by plain "Open in Colab" and "Download .ipynb" links, and the painter's live widget replaced
by a note. The first figure of each notebook is saved to ``docs/_notebooks/figures/`` for the landing page.

Notebooks come from pull requests, so what they carry is checked first and the pages are sanitised
(``docs/_ext/sanitise.py``, loaded as an extension): a markdown or raw cell or an attachment that could run script
fails the build in one line naming the notebook and the cell; outputs that could are left out or cleaned.

The extension ``docs/_ext/playground.py`` builds the Playground page (docs/playground.md): it exports the shipped
MNIST models to ONNX, inlines their SHA-256 and the trigger presets into the page, and copies the models,
onnxruntime-web's WebAssembly build (``npm ci`` installs it from package-lock.json) and the page's script into
``_playground/`` of the built site.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))  # playground.py: the Playground page's models, runtime and presets

from sanitise import Refused, attachment, attachment_link, check_notebook, page_copy  # noqa: E402

from badnets_utils.tools.editions import web_edition  # noqa: E402
from badnets_utils.tools.github import (  # noqa: E402
    PLACEHOLDER_REPO,
    SlugError,
    badge_url,
    notebook_text,
    pointed_at,
    read_notebook,
    site_slug,
    write_notebook,
)


def _fail(message: str) -> NoReturn:
    """End the build with ``message`` as its one line of error (exit status 2).

    Sphinx 9 wraps any exception raised here in a page of debugging context, traceback and a request to report
    the error to Sphinx; a wrong repository is the user's to fix, so the message is all that is printed.
    """
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


try:
    REPO, REF = site_slug(ROOT)
except SlugError as err:
    _fail(str(err))

PAGES = DOCS / "_notebooks"  # the notebook pages, rebuilt from notebooks/ at every build
DOWNLOADS = PAGES / "download"  # what "Download .ipynb" gives: the notebook without its teacher cells
FIGURES = PAGES / "figures"  # the first figure of each notebook (landing page) and markdown cells' attachments
# Which image output of a notebook the landing page shows (default: its first), by the notebook's number.
LANDING_FIGURE = {"02": 1, "06": 1, "07": 2, "08": 3}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    "*Here the notebook shows the interactive painter (in JupyterLab, Jupyter Notebook or Colab), which a static "
    "page cannot run; the next cell draws a picture of it, and a screenshot is further down this page.*"
)
_BADGE_IMAGE = re.compile(
    r"\[!\[[^\]]*\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\([^)]*\)\n*"
)
_NOTEBOOK_LINK = re.compile(r"\]\(\.\./notebooks/([A-Za-z0-9._-]+\.ipynb)")
_DOCS_LINK = re.compile(r"\]\(\.\./docs/([A-Za-z0-9._-]+\.md)")  # a notebook's link to a page of docs/

project = "BadNets Notebooks"
author = "the BadNets Notebooks authors"
copyright = "the BadNets Notebooks authors, MIT licence"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "playground"]
exclude_patterns = ["_build", "_notebooks/download", "**/.ipynb_checkpoints"]
nitpicky = False

# The committed outputs (class mode) are the content: nothing runs, nothing is fetched.
nb_execution_mode = "off"
nb_render_markdown_format = "gfm"  # a notebook's Markdown output (07's and 08's tables) renders as a table
nb_ipywidgets_js: dict = {}  # no require.js / widget manager from a CDN: the one widget output becomes a note
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["mystnb.unknown_mime_type"]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "sphinx_book_theme"
html_title = "BadNets Notebooks"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_favicon = "_static/favicon.svg"  # a 5×5 white trigger in the corner of a "1"; without one, Chromium logs a 404
html_context = {"default_mode": "light"}  # the theme logs an error on a first visit without a stored mode
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": REF,
    "path_to_docs": "docs",
    "use_repository_button": True,
    "use_download_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}


def page_links(name: str) -> str:
    """The markdown line at the top of every notebook page: Colab (``REPO``, ``REF``) and the download."""
    return (
        f'<span class="nb-links">[Open in Colab]({badge_url(REPO, REF, name)}) '
        f"{{download}}`Download .ipynb <download/{name}>`</span>"
    )


def notebook_page(nb, name: str):
    """``nb`` (a web edition) as its page shows it: links instead of the badge image, no live widget.

    Markdown cells' attachments (which myst-nb does not show) are written to ``FIGURES`` and linked from there.
    """
    stem = Path(name).stem
    for cell in nb.cells:
        for key, bundle in cell.pop("attachments", {}).items():
            file, data = attachment(stem, key, bundle)  # a PNG, JPEG, GIF or checked SVG (check_notebook)
            _write_bytes(FIGURES / file, data)
            cell.source = attachment_link(cell.source, key, f"figures/{file}")
    first = nb.cells[0]
    title, _, rest = first.source.partition("\n")
    first.source = f"{title}\n\n{page_links(name)}\n\n{_BADGE_IMAGE.sub('', rest).lstrip()}"
    for cell in nb.cells:
        if cell.cell_type == "markdown":  # ../docs/PAGE.md (right in the repository) is ../PAGE.md on the site
            cell.source = _DOCS_LINK.sub(r"](../\1", cell.source)
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                out["data"] = {"text/markdown": WIDGET_NOTE}
    nb.metadata.pop("widgets", None)
    return nb


def landing_figure(nb, name: str) -> bytes | None:
    """The PNG of the image output ``LANDING_FIGURE`` picks for notebook ``name`` (else its first), or None."""
    pngs = [
        out["data"]["image/png"] for c in nb.cells for out in c.get("outputs", []) if "image/png" in out.get("data", {})
    ]
    index = LANDING_FIGURE.get(name[:2], 0)
    return base64.b64decode(pngs[index]) if len(pngs) > index else None


def _write_bytes(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)


def _refuse_placeholder(name: str, *copies) -> None:
    """Fail the build if a copy of notebook ``name`` still names the placeholder repository the site does not use."""
    if REPO != PLACEHOLDER_REPO and any(PLACEHOLDER_REPO in notebook_text(nb) for nb in copies):
        _fail(f"notebooks/{name} names {PLACEHOLDER_REPO} where the site's copy must name {REPO}")


def write_pages(app=None) -> list[Path]:
    """Write the notebook pages, downloads and landing-page figures; remove those of notebooks that are gone."""
    for folder in (PAGES, DOWNLOADS, FIGURES):
        folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    wanted = set()
    log = logging.getLogger(__name__)
    for path in sources:
        committed = read_notebook(path)
        try:
            check_notebook(committed, path.name, myst_enable_extensions)
        except Refused as err:
            _fail(str(err))
        nb = pointed_at(web_edition(committed), REPO, REF)
        page = page_copy(notebook_page(copy.deepcopy(nb), path.name), path.name, log.info)
        _refuse_placeholder(path.name, nb, page)
        write_notebook(DOWNLOADS / path.name, nb)
        write_notebook(PAGES / path.name, page)
        png = landing_figure(nb, path.name)
        if png is not None:
            _write_bytes(FIGURES / f"{path.stem}.png", png)
        wanted |= {PAGES / path.name, DOWNLOADS / path.name, FIGURES / f"{path.stem}.png"}
        for cell in nb.cells:
            wanted |= {FIGURES / attachment(path.stem, k, b)[0] for k, b in cell.get("attachments", {}).items()}
    for folder in (PAGES, DOWNLOADS, FIGURES):
        for stale in folder.iterdir():
            if stale.is_file() and stale not in wanted:
                stale.unlink()
    return sources


def notebook_links(app, docname: str, source: list[str]) -> None:
    """In the guides, ``../notebooks/NAME.ipynb`` (right on GitHub) becomes the notebook's page on the website."""
    if not docname.startswith("_notebooks/"):
        prefix = "../" * docname.count("/")
        source[0] = _NOTEBOOK_LINK.sub(lambda m: f"]({prefix}_notebooks/{m.group(1)}", source[0])


def setup(app):
    app.setup_extension("sanitise")  # the backstop on the pages written from notebooks (docs/_ext/sanitise.py)
    app.connect("builder-inited", write_pages)
    app.connect("source-read", notebook_links)
    return {"parallel_read_safe": True}
