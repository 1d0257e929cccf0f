"""The course website built once per session, served on 127.0.0.1 and opened in headless Chromium.

The fixtures ``site``, ``server`` and ``browser`` are session-scoped and shared (``conftest.py`` imports them) by
``test_site.py`` and ``test_playground.py``, so one pytest session builds the site once. The build is the README's
command, run as ``.github/workflows/pages.yml`` runs it (``GITHUB_REPOSITORY=someone/fork``, ``BADNETS_PUBLISH=1``).
Without Sphinx, Chromium or playwright the tests that need them skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from servers import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FORK = "someone/fork"  # the repository the session's site is built in, as GitHub Actions would say


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"the website test cannot run in CI: {reason}")
    pytest.skip(reason)


def _sphinx_command(docs: Path, out: Path) -> list[str]:
    """The README's build command, pointed at ``docs`` and a build folder."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"^python -m sphinx .+ docs build/site$", readme, re.M)
    assert line, "the README's section on the website must hold the build command"
    words = line.group(0).split()[1:]
    words = [str(out / "doctrees") if w == "build/doctrees" else w for w in words]
    return [sys.executable, *words[:-2], str(docs), str(out / "site")]


def _build_env(**variables: str) -> dict[str, str]:
    """This process's environment without the variables that pick the site's repository, plus ``variables``."""
    from badnets_utils.tools.github import PUBLISH_ENV, REPO_ENV  # imported when used: conftest.py imports this module

    env = {k: v for k, v in os.environ.items() if k not in (REPO_ENV, PUBLISH_ENV)}
    return env | variables


def _needs_sphinx() -> None:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"{module} is missing (pip install -e '.[docs]')")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built with the README's command into a temporary folder as pages.yml builds it, in ``FORK``."""
    _needs_sphinx()
    out = tmp_path_factory.mktemp("site")
    from badnets_utils.tools.github import PUBLISH_ENV, REPO_ENV

    env = _build_env(**{REPO_ENV: FORK, PUBLISH_ENV: "1"})
    build = subprocess.run(_sphinx_command(DOCS, out), cwd=ROOT, capture_output=True, text=True, env=env)
    assert build.returncode == 0, f"the site does not build:\n{build.stdout[-2000:]}\n{build.stderr[-4000:]}"
    return out / "site"


@pytest.fixture(scope="session")
def server(site) -> str:
    """The built site on a free port of 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def browser(server):
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is missing (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def _page(browser, width: int = 1280, height: int = 900):
    """A fresh page that records console errors, uncaught exceptions and failed requests in ``page.problems``."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"exception: {e}"))
    # a request the browser cancels because the test moved on (net::ERR_ABORTED: a late favicon under load) is not a
    # failure of the site; a network error or an HTTP error status is
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and page.problems.append(
        f"request failed ({r.failure}): {r.url}"))  # fmt: skip
    page.on("response", lambda r: r.status >= 400 and page.problems.append(f"HTTP {r.status}: {r.url}"))
    try:
        yield page
    finally:
        context.close()
