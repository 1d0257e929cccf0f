"""The course website (docs/, Sphinx + myst-nb): it builds offline with warnings as errors, and reads right.

The site is built once per session (``site_build.py``, whose fixtures ``conftest.py`` shares with
``test_playground.py``) into a temporary folder with the README's command, as
``.github/workflows/pages.yml`` builds it (``GITHUB_REPOSITORY=someone/fork``, ``BADNETS_PUBLISH=1``): it names
someone/fork and never repo.toml's placeholder. It is served on 127.0.0.1 and opened in headless Chromium (Debian's,
through playwright; never ``playwright install``): every page loads without a console error; every notebook page
shows each figure its committed outputs hold, no teacher cell, collapsed solutions, a Colab link to that notebook
(in someone/fork) and a download; "next" walks 01 → 08; search finds a notebook. Screenshots of two pages at two
widths go to screenshots/. A second, deliberately broken copy of docs/ must fail the build, and so must a bad
``GITHUB_REPOSITORY`` or a publishing build of the placeholder, each with one line of error. Without Sphinx, Chromium
or playwright the browser tests skip, except in CI (CI=true).

The README is checked here too: at most 12 KB, and every section it had before the site took them over still has a
heading on a page of the site.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from servers import SCREENSHOTS
from site_build import DOCS, FORK, ROOT, _build_env, _needs_sphinx, _page, _sphinx_command

from badnets_utils.tools.github import PLACEHOLDER_REPO, PUBLISH_ENV, REPO_ENV, badge_url, read_slug

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
README_LIMIT = 12 * 1024
PAGES_YML = ROOT / ".github" / "workflows" / "pages.yml"
# Every section of the README before the site took them over: the page (under docs/, or the README itself) that
# holds it now, and its heading there.
MOVED_SECTIONS = {
    "Quick start": ("../README.md", "Quick start"),
    "Notebooks": ("../README.md", "Notebooks"),
    "Colab, JupyterLab and classic Notebook": ("colab.md", "Colab, JupyterLab and classic Notebook"),
    "Usage": ("usage.md", "Usage"),
    "From Python": ("usage.md", "From Python"),
    "Flags": ("usage.md", "Flags"),
    "Results": ("results.md", "Results"),
    "Compared with the paper": ("results.md", "Compared with the paper"),
    "Paint your own trigger": ("usage.md", "Paint your own trigger"),
    "Detecting and removing backdoors": ("results.md", "Detecting and removing backdoors"),
    "Performance": ("performance.md", "Performance"),
    "Running sweeps: on one machine and on a cluster": (
        "sweeps.md",
        "Many runs at once: sweeps on one machine and on a cluster",
    ),
    "Reliability": ("reliability.md", "Reliability"),
    "Layout": ("architecture.md", "Layout"),
    "Citation": ("../README.md", "Citation"),
}


def _headings(path: Path) -> set[str]:
    """The Markdown headings of a file, outside fenced code."""
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text(encoding="utf-8"))
    return {m.group(1).strip() for m in re.finditer(r"(?m)^#{1,6} (.+)$", text)}


def _toctree_docs() -> set[str]:
    """The documents the landing page's toctrees list."""
    blocks = re.findall(r"```\{toctree\}\n(.*?)```", (DOCS / "index.md").read_text(encoding="utf-8"), re.S)
    return {line.strip() for b in blocks for line in b.splitlines() if line.strip() and not line.startswith(":")}


def test_readme_is_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail to a page under docs/ (limit {README_LIMIT})"


def test_every_old_readme_section_is_on_the_site():
    pages = _toctree_docs()
    for old, (page, heading) in MOVED_SECTIONS.items():
        assert heading in _headings(DOCS / page), f"README section {old!r}: no heading {heading!r} in {page}"
        assert page.startswith("../") or Path(page).stem in pages, f"{page} (README section {old!r}) is not in the site"


def test_readme_links_into_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in {p for p, _ in MOVED_SECTIONS.values() if not p.startswith("../")}:
        assert f"(docs/{page}" in readme, f"the README does not link to docs/{page}"
    assert "python -m sphinx -E -W --keep-going -b html" in readme


def test_broken_docs_fail_the_build(tmp_path):
    """A dead link, a missing image, a notebook left out of the toctree and a bad docstring each fail the build."""
    _needs_sphinx()
    for name in ("docs", "notebooks", "badnets_utils"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("_notebooks", "__pycache__"))
    shutil.copy(ROOT / "repo.toml", tmp_path)
    shutil.copy(NOTEBOOKS[0], tmp_path / "notebooks" / "09_left_out.ipynb")
    (tmp_path / "badnets_utils" / "broken_doc.py").write_text('"""A docstring\n  that *does not render."""\n')
    (tmp_path / "docs" / "api.md").write_text("# API\n\n```{eval-rst}\n.. automodule:: badnets_utils.broken_doc\n```\n")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[dead](no_such_page.md)\n\n![missing](no_such_image.png)\n")
    build = subprocess.run(_sphinx_command(tmp_path / "docs", tmp_path / "out"), cwd=tmp_path, capture_output=True,
                           text=True, env=_build_env())  # fmt: skip
    log = build.stderr
    assert build.returncode != 0, log
    assert "no_such_page" in log, log
    assert "no_such_image.png" in log, log
    assert "09_left_out" in log and "toctree" in log, log
    assert "broken_doc" in log, log


@pytest.mark.parametrize(
    "env, error",
    [({REPO_ENV: "not a slug"}, f"error: {REPO_ENV}: 'not a slug' is not a GitHub repository as OWNER/NAME ("),
     ({REPO_ENV: PLACEHOLDER_REPO, PUBLISH_ENV: "1"},
      f"error: will not publish the website with the placeholder repository {PLACEHOLDER_REPO}: set {REPO_ENV}=")],
)  # fmt: skip
def test_bad_or_placeholder_repository_fails_the_build_in_one_line(tmp_path, env, error):
    """Checked when conf.py loads, before any page is read: a few seconds each."""
    _needs_sphinx()
    build = subprocess.run(_sphinx_command(DOCS, tmp_path), cwd=ROOT, capture_output=True, text=True,
                           env=_build_env(**env))  # fmt: skip
    assert build.returncode != 0 and build.stderr.startswith(error), build.stderr
    assert build.stderr.count("\n") == 1 and not (tmp_path / "site" / "index.html").exists(), build.stderr


def test_pages_workflow_builds_in_its_own_repository_with_the_readme_command():
    workflow = PAGES_YML.read_text(encoding="utf-8")
    step = workflow[workflow.index("- name: Build the site") :].split("\n      - ")[0]
    assert f"{REPO_ENV}: ${{{{ github.repository }}}}" in step and f'{PUBLISH_ENV}: "1"' in step, step
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^python -m sphinx .+ docs build/site$", readme, re.M).group(0)
    assert f"run: {command}\n" in step + "\n", step
    assert "python -m badnets_utils set-repo OWNER/NAME" in readme


def test_site_names_the_repository_it_is_built_in(site):
    """No file of the site names the placeholder; every GitHub and Colab link names ``FORK``."""
    files = [f for f in site.rglob("*") if f.is_file() and f.suffix in {".html", ".ipynb", ".txt", ".js"}]
    named = [f.relative_to(site).as_posix() for f in files if PLACEHOLDER_REPO in f.read_text(errors="ignore")]
    assert not named, f"{PLACEHOLDER_REPO} is in {named}"
    html = "".join(f.read_text(encoding="utf-8") for f in site.glob("_notebooks/*.html"))
    repos = re.findall(r"(?:colab\.research\.google\.com/github|https://github\.com)/([\w.-]+/[\w.-]+)", html)
    assert repos and set(repos) == {FORK}, set(repos)
    assert f'<span class="s2">"{FORK}"</span>' in html  # the setup cell's REPO line
    assert f'href="https://github.com/{FORK}"' in (site / "index.html").read_text(encoding="utf-8")


def _notebook_page(name: str) -> str:
    return f"_notebooks/{Path(name).stem}.html"


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def _shown_cells(path: Path) -> list:
    """The cells of a committed notebook that the site shows: all but those tagged teacher."""
    return [c for c in nbformat.read(path, as_version=4).cells if "teacher" not in _tags(c)]


def _plain(text: str) -> str:
    """Markdown or page text reduced to words: no markup characters, straight quotes, single spaces."""
    text = text.translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\""))
    return " ".join(re.sub(r"[\[\]()|]", " ", re.sub(r"[*_`#>]", "", text)).split())


def test_every_page_loads_without_console_errors(site, server, browser):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts)
    assert len(pages) >= len(NOTEBOOKS) + 5, pages
    with _page(browser) as page:
        for name in pages:
            page.goto(f"{server}/{name}", wait_until="load")
            page.wait_for_load_state("networkidle")
            assert not page.problems, f"{name}: {page.problems}"
            assert page.title(), name


def test_notebook_pages_show_the_committed_notebooks(site, server, browser):
    ref = read_slug(ROOT)[1]
    with _page(browser) as page:
        for path in NOTEBOOKS:
            cells = _shown_cells(path)
            figures = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
            solutions = sum("solution" in _tags(c) for c in cells)
            page.goto(f"{server}/{_notebook_page(path.name)}", wait_until="load")
            images = page.locator("div.cell_output img")
            assert images.count() == figures, (path.name, images.count(), figures)
            loaded = images.evaluate_all("imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
            assert loaded == figures, (path.name, "images that did not load", figures - loaded)
            colab = page.locator("article a", has_text="Open in Colab")
            assert colab.count() >= 1 and colab.first.get_attribute("href") == badge_url(FORK, ref, path.name)
            download = page.locator("article a", has_text="Download .ipynb").first
            href = download.get_attribute("href")
            assert href.endswith("/" + path.name), href
            got = nbformat.reads((site / _notebook_page(path.name)).parent.joinpath(href).read_text(), as_version=4)
            assert len(got.cells) == len(cells) and not any("teacher" in _tags(c) for c in got.cells), path.name
            details = page.locator("article details")
            assert details.count() == solutions, (path.name, details.count(), solutions)
            assert not details.evaluate_all("ds => ds.some(d => d.open)"), f"{path.name}: a solution is open"


def test_no_teacher_cell_reaches_the_site(site, server, browser):
    teacher = {p.name: [c for c in nbformat.read(p, as_version=4).cells if "teacher" in _tags(c)] for p in NOTEBOOKS}
    assert sum(map(len, teacher.values())) >= 1, "no teacher cell to check: the test would prove nothing"
    with _page(browser) as page:
        for path in NOTEBOOKS:
            page.goto(f"{server}/{_notebook_page(path.name)}", wait_until="load")
            text = _plain(page.locator("article").inner_text())
            shown = next(c for c in _shown_cells(path)[1:] if c.cell_type == "markdown" and len(_plain(c.source)) > 80
                         and not re.search(r"[<$]|\]\(", c.source))  # fmt: skip
            assert _plain(shown.source)[20:70] in text, f"{path.name}: the check cannot find a shown cell's text"
            for cell in teacher[path.name]:
                assert _plain(cell.source)[20:70] not in text, f"{path.name}: a teacher cell is on the page"
    files = [f for f in site.rglob("*") if f.is_file() and f.suffix in {".html", ".ipynb", ".txt", ".js"}]
    every = _plain(" ".join(f.read_text(errors="ignore") for f in files).replace("\\n", " ").replace('\\"', '"'))
    for cells in teacher.values():
        for cell in cells:
            assert _plain(cell.source)[20:70] not in every, "a teacher cell is in a file of the site"


def test_next_links_walk_the_notebooks_in_order(server, browser):
    with _page(browser) as page:
        page.goto(f"{server}/index.html", wait_until="load")
        walked = []
        for _ in NOTEBOOKS:
            page.locator(".prev-next-area a.right-next").click()
            page.wait_for_load_state("load")
            walked.append(page.url.rsplit("/", 1)[1])
    assert walked == [Path(_notebook_page(p.name)).name for p in NOTEBOOKS]


def test_search_finds_a_notebook(server, browser):
    with _page(browser) as page:
        page.goto(f"{server}/index.html", wait_until="load")
        page.locator("button.search-button__button:visible").first.click()
        box = page.locator("#pst-search-dialog input[type=search]")
        box.fill("spectral signatures")
        box.press("Enter")
        page.wait_for_url(re.compile(r"search\.html\?q="))
        page.wait_for_function("document.querySelectorAll('#search-results ul.search li').length > 0", timeout=20_000)
        hrefs = page.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")
        assert not page.problems, page.problems
    assert any("07_detecting_and_removing_backdoors.html" in h for h in hrefs), hrefs


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_screenshots(server, browser, width, height):
    SCREENSHOTS.mkdir(exist_ok=True)
    shots = {"landing": "index.html", "notebook": _notebook_page("03_train_backdoored_cnn.ipynb")}
    with _page(browser, width, height) as page:
        for label, name in shots.items():
            page.goto(f"{server}/{name}", wait_until="load")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / f"site_{label}_{width}.png"))
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} at {width} px scrolls sideways by {overflow} px"
            assert not page.problems, page.problems


def test_search_index_lists_every_notebook(site):
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    docnames = set(index["docnames"])
    assert {f"_notebooks/{p.stem}" for p in NOTEBOOKS} <= docnames, docnames


def test_every_link_and_image_of_the_site_resolves(site):
    """Relative href/src of every page point at a file of the site (Sphinx's -W checks the sources; this the output)."""
    dead = []
    for page in site.rglob("*.html"):
        if "_static" in page.parts:
            continue
        for target in re.findall(r'(?:href|src)="([^"#?]+)', page.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+:|//", target) and not (page.parent / target).exists():
                dead.append(f"{page.relative_to(site)} -> {target}")
    assert not dead, dead


def test_guides_link_to_the_notebook_pages(site):
    """``../notebooks/NAME.ipynb`` in docs/*.md (right on GitHub) becomes a link to the notebook's page."""
    linked = 0
    for md in DOCS.glob("*.md"):
        for name in re.findall(r"\]\(\.\./notebooks/([\w.-]+)\.ipynb\)", md.read_text(encoding="utf-8")):
            assert f'href="_notebooks/{name}.html"' in (site / f"{md.stem}.html").read_text(encoding="utf-8"), name
            linked += 1
    assert linked >= 1, "no guide links to a notebook: the check proves nothing"


def test_classroom_editions_leave_the_site_copies_out(tmp_path):
    """docs/_notebooks (the site's copies, solutions in them) never reaches a classroom folder."""
    from badnets_utils.tools.classroom import build_editions

    root = tmp_path / "repo"
    (root / "badnets_utils").mkdir(parents=True)
    (root / "badnets_utils" / "__init__.py").write_text("")
    (root / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS[0], root / "notebooks")
    (root / "docs" / "_notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOKS[0], root / "docs" / "_notebooks")
    (root / "docs" / "teaching.md").write_text("# Teaching\n")
    out = build_editions(root / "notebooks", tmp_path / "class", repo_root=root)
    assert (out / "docs" / "teaching.md").is_file()
    assert not (out / "docs" / "_notebooks").exists()


def test_a_notebooks_markdown_table_is_a_table_on_its_page(site):
    """07's summary and 08's side-by-side table are Markdown outputs (``show_table``): the page shows them as tables,
    not as a paragraph of pipes."""
    for page, cell in (("07_detecting_and_removing_backdoors", "activation clustering"),
                       ("08_reproducing_the_paper", "all-to-all: backdoor error")):  # fmt: skip
        html_text = (site / "_notebooks" / f"{page}.html").read_text(encoding="utf-8")
        tables = re.findall(r"<table.*?</table>", html_text, re.S)
        assert any(cell in t for t in tables), page
        paragraphs = re.findall(r"<p>(.*?)</p>", html_text, re.S)
        assert not [p for p in paragraphs if "|---|" in p or "| defence |" in p or "| result |" in p], page
