"""The GitHub repository the notebooks point to, kept in one place: ``repo.toml`` at the repository root.

Colab badges (README and notebooks) and every notebook's setup cell name the repository (``owner/name``) and a
git ref. ``set-repo`` writes ``repo.toml`` and rewrites all of them; ``check_repo`` lists what disagrees::

    python -m badnets_utils set-repo OWNER/NAME [--ref REF]   # after forking: badges and setup cells follow
    python -m badnets_utils set-repo --check                  # list what disagrees with repo.toml (exit 1 if any)

The website uses ``site_slug``: ``$GITHUB_REPOSITORY`` (set by GitHub Actions) if set, else repo.toml's repository;
a publishing build (``BADNETS_PUBLISH=1``, as in ``.github/workflows/pages.yml``) refuses the placeholder.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import nbformat

from badnets_utils._io.files import REPO_ROOT, InputError, atomic_write_text, input_path, open_input
from badnets_utils.tools.argparsing import Parser, RawDefaultsFormatter, run_command

SLUG_FILE = "repo.toml"
DEFAULT_REF = "main"
SLUG_RE = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
REF_RE = re.compile(r"^[A-Za-z0-9._/-]+$")
SETUP_TAG = "setup"
PLACEHOLDER_REPO = "your-org/badnets-notebooks"  # the template's repo.toml: no such repository exists
REPO_ENV = "GITHUB_REPOSITORY"  # the repository a GitHub Actions run belongs to (OWNER/NAME)
PUBLISH_ENV = "BADNETS_PUBLISH"  # "1" in the workflow that publishes the website
# Runtime dependencies Colab already has: the setup cell never pip-installs them.
COLAB_PREINSTALLED = frozenset({"torch", "torchvision", "numpy", "matplotlib", "pillow", "tqdm", "ipywidgets"})
IMPORT_NAMES = {"pillow": "PIL", "pyyaml": "yaml", "scikit-learn": "sklearn", "opencv-python": "cv2"}

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)\"']+/[^/\s)\"']+/blob/[^\s)\"']+?/notebooks/"
                    r"([A-Za-z0-9._-]+\.ipynb)")  # fmt: skip
_REPO_COMMENT = re.compile(r"<!-- repo: \S* -->")
_SETUP_LINE = re.compile(r'^(REPO|REF) = "[^"\n]*"', re.M)
_TOML_VALUE = r'^\s*{key}\s*=\s*"([^"]*)"\s*(?:#.*)?$'


class SlugError(ValueError):
    """A bad ``owner/name`` or ref, or a missing ``repo.toml``."""


def check_slug(repo: str, ref: str) -> None:
    """Raise a one-line SlugError unless ``repo`` is ``owner/name`` and ``ref`` a plain git ref."""
    if not isinstance(repo, str) or not SLUG_RE.fullmatch(repo) or repo.split("/")[1] in (".", ".."):
        raise SlugError(f"{repo!r} is not a GitHub repository as OWNER/NAME (letters, digits, '-', '.', '_')")
    plain = isinstance(ref, str) and REF_RE.fullmatch(ref) and ".." not in ref
    if not plain or ref.startswith(("/", "-")) or ref.endswith("/"):
        raise SlugError(f"{ref!r} is not a branch or tag name (letters, digits, '.', '_', '-', '/')")


def read_slug(root: str | Path = REPO_ROOT) -> tuple[str, str]:
    """``(repo, ref)`` from ``<root>/repo.toml`` (ref defaults to main)."""
    path = Path(root) / SLUG_FILE
    if not path.is_file():
        raise SlugError(f"{SLUG_FILE} is missing: run `python -m badnets_utils set-repo OWNER/NAME` once")
    text = path.read_text(encoding="utf-8")
    repo = re.search(_TOML_VALUE.format(key="repo"), text, re.M)
    ref = re.search(_TOML_VALUE.format(key="ref"), text, re.M)
    if repo is None:
        raise SlugError(f'{SLUG_FILE} has no line repo = "OWNER/NAME"')
    result = repo.group(1), ref.group(1) if ref else DEFAULT_REF
    check_slug(*result)
    return result


def site_slug(root: str | Path = REPO_ROOT, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(repo, ref)`` the website links to: ``$GITHUB_REPOSITORY`` if set, else repo.toml's (ref: repo.toml's).

    Raises a one-line SlugError for a malformed ``$GITHUB_REPOSITORY``, and for the placeholder repository when
    ``$BADNETS_PUBLISH`` is 1 (or true, yes: a build to publish).
    """
    env = os.environ if environ is None else environ
    repo, ref = read_slug(root)
    if env.get(REPO_ENV):
        repo = env[REPO_ENV]
        try:
            check_slug(repo, ref)
        except SlugError as err:
            raise SlugError(f"{REPO_ENV}: {err}") from None
    if env.get(PUBLISH_ENV, "").strip().lower() in ("1", "true", "yes") and repo == PLACEHOLDER_REPO:
        raise SlugError(
            f"will not publish the website with the placeholder repository {PLACEHOLDER_REPO}: set {REPO_ENV}="
            "OWNER/NAME, or run `python -m badnets_utils set-repo OWNER/NAME` and commit the result"
        )
    return repo, ref


def slug_file_text(repo: str, ref: str) -> str:
    """The contents of ``repo.toml``."""
    return (
        "# The GitHub repository that the Colab badges and the notebooks' setup cells point to.\n"
        "# Change it with `python -m badnets_utils set-repo OWNER/NAME [--ref REF]`, never by hand.\n"
        f'repo = "{repo}"\n'
        f'ref = "{ref}"\n'
    )


def badge_url(repo: str, ref: str, notebook_filename: str) -> str:
    """The "Open in Colab" link of a notebook under notebooks/."""
    return f"https://colab.research.google.com/github/{repo}/blob/{ref}/notebooks/{Path(notebook_filename).name}"


def colab_extras(root: str | Path = REPO_ROOT) -> list[str]:
    """Runtime dependencies from pyproject.toml that Colab may lack (pip names), sorted."""
    path = Path(root) / "pyproject.toml"
    if not path.is_file():
        return []
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", path.read_text(encoding="utf-8"), re.M | re.S)
    names = re.findall(r"[\"']\s*([A-Za-z0-9._-]+)", block.group(1)) if block else []
    return sorted({n.lower() for n in names} - COLAB_PREINSTALLED)


# The notebook metadata JupyterLab 4 writes itself: with anything else it marks a notebook modified on open.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
    "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3", "version": "3.11.7",
}  # fmt: skip


def setup_cell_source(repo: str, ref: str, extras: list[str] | tuple[str, ...] = ()) -> str:
    """The canonical setup cell of every notebook (``extras``: pip packages Colab may lack).

    It follows the notebook's ``parameters`` cell, which sets the switches ``QUICK`` and ``RETRAIN``.
    """
    check_slug(repo, ref)
    lines = [
        "# Setup: finds badnets_utils in this repository or a classroom copy; on Colab it fetches the repository.",
        f'REPO = "{repo}"  # the GitHub repository (owner/name) Colab fetches',
        f'REF = "{ref}"  # its branch or tag',
        "import os, subprocess, sys",
        'if "google.colab" in sys.modules:',
        '    CLONE = "/content/" + REPO.split("/")[1]',
        "    if not os.path.isdir(CLONE):",
        '        git = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", REF,',
        '                              "https://github.com/" + REPO, CLONE], capture_output=True, text=True)',
        "        if git.returncode != 0:",
        '            reason = (git.stderr.strip().splitlines() or ["git failed"])[-1]',
        '            raise SystemExit(f"could not fetch github.com/{REPO} at {REF}: {reason}. Check the repository "',
        '                             f"name in the first cell, or upload the folder to {CLONE}.")',
        "    sys.path.insert(0, CLONE)  # no `pip install -e`: Colab would need a runtime restart",
    ]
    if extras:
        pairs = ", ".join(f'"{p}": "{IMPORT_NAMES.get(p, p.replace("-", "_"))}"' for p in extras)
        lines += [
            "    import importlib.util",
            f"    missing = [p for p, m in {{{pairs}}}.items() if importlib.util.find_spec(m) is None]",
            "    if missing:  # Colab has torch, torchvision, numpy, matplotlib, pillow, tqdm and ipywidgets",
            '        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)',
        ]
    lines += [
        'elif os.path.isdir("../badnets_utils"):',
        "    sys.path.insert(0, os.path.abspath(\"..\"))  # this checkout's (or classroom copy's) badnets_utils",
        "",
        "from badnets_utils.course.notebook import setup",
        "cfg = setup(seed=0, quick=QUICK, retrain=RETRAIN)  # QUICK and RETRAIN: the switches in the cell above",
    ]
    return "\n".join(lines)


def rewrite_links(text: str, repo: str, ref: str) -> str:
    """``text`` with every Colab badge link and ``<!-- repo: ... -->`` comment pointing at ``repo``/``ref``."""
    text = _BADGE.sub(lambda m: badge_url(repo, ref, m.group(1)), text)
    return _REPO_COMMENT.sub(f"<!-- repo: {repo} -->", text)


def rewrite_setup_lines(source: str, repo: str, ref: str) -> str:
    """A setup cell's ``source`` with its ``REPO = "..."`` and ``REF = "..."`` lines naming ``repo``/``ref``."""
    return _SETUP_LINE.sub(lambda m: f'{m.group(1)} = "{repo if m.group(1) == "REPO" else ref}"', source)


def pointed_at(nb: nbformat.NotebookNode, repo: str, ref: str) -> nbformat.NotebookNode:
    """``nb`` (modified in place) with its badges, repo comments and setup cell's REPO/REF lines naming ``repo``.

    Unlike ``updated_notebook`` nothing else changes: the website's copies of the notebooks go through it.
    """
    check_slug(repo, ref)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, repo, ref)
    i = find_setup_cell(nb)
    if i is not None:
        nb.cells[i].source = rewrite_setup_lines(nb.cells[i].source, repo, ref)
    return nb


def find_setup_cell(nb: nbformat.NotebookNode) -> int | None:
    """Index of the cell tagged ``setup``, else of the first code cell (None: no code cell)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = [i for i in code if SETUP_TAG in nb.cells[i].metadata.get("tags", [])]
    return (tagged or code or [None])[0]


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """A notebook file, checked: JSON of a notebook's shape (cells of known types), else one-line InputError."""
    with open_input(path, "notebook") as f:
        raw = f.read()
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # JSON, shape and nbformat's own validation errors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:100]
        raise InputError(f"notebook {path} is not a valid notebook ({first})") from None
    return nb


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """A notebook serialised as this repository's files are (nbformat's 1-space indent, trailing newline)."""
    return nbformat.writes(nb) + "\n"


def write_notebook(path: str | Path, nb: nbformat.NotebookNode) -> bool:
    """Write ``nb`` atomically in the repository's format unless the file already holds it; True if written."""
    path, text = Path(path), notebook_text(nb)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(path, text)
    return True


def updated_notebook(nb: nbformat.NotebookNode, repo: str, ref: str, extras: list[str]) -> nbformat.NotebookNode:
    """``nb`` (modified in place) with its badges and setup cell pointing at ``repo``/``ref``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            new = rewrite_links(cell.source, repo, ref)
            if new != cell.source:
                cell.source = new
    i = find_setup_cell(nb)
    if i is not None:
        cell = nb.cells[i]
        cell.source = setup_cell_source(repo, ref, extras)
        tags = cell.metadata.get("tags", [])
        if SETUP_TAG not in tags:
            cell.metadata["tags"] = [*tags, SETUP_TAG]
    return nb


def planned_files(root: str | Path, repo: str, ref: str) -> dict[Path, str]:
    """Every file ``set_repo`` would write, with its new text (files already right are left out)."""
    root = Path(root)
    extras = colab_extras(root)
    out: dict[Path, str] = {}
    slug = root / SLUG_FILE
    out[slug] = slug_file_text(repo, ref)
    readme = root / "README.md"
    if readme.is_file():
        out[readme] = rewrite_links(readme.read_text(encoding="utf-8"), repo, ref)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        out[path] = notebook_text(updated_notebook(read_notebook(path), repo, ref, extras))
    return {p: t for p, t in out.items() if not p.is_file() or p.read_text(encoding="utf-8") != t}


def set_repo(root: str | Path, repo: str, ref: str = DEFAULT_REF) -> list[Path]:
    """Point repo.toml, README badges and every notebook's badges and setup cell at ``repo``/``ref``.

    Validates first and computes every new file before writing any; each file is replaced atomically and
    only if it changes. Returns the files written.
    """
    check_slug(repo, ref)
    plan = planned_files(root, repo, ref)
    for path, text in plan.items():
        atomic_write_text(path, text)
    return list(plan)


def check_repo(root: str | Path = REPO_ROOT) -> list[str]:
    """Every place (file and what) that disagrees with repo.toml; empty when all agree."""
    root = Path(root)
    try:
        repo, ref = read_slug(root)
    except SlugError as err:
        return [f"{SLUG_FILE}: {err}"]
    problems = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = read_notebook(path)
        i = find_setup_cell(nb)
        try:
            compile(nb.cells[i].source if i is not None else "", str(path), "exec")
        except SyntaxError as err:
            problems.append(f"{path.relative_to(root).as_posix()}: setup cell does not compile ({err.msg}, "
                            f"line {err.lineno})")  # fmt: skip
    for path in planned_files(root, repo, ref):
        if path.name != SLUG_FILE:
            what = "setup cell or Colab badge" if path.suffix == ".ipynb" else "Colab badge or repo comment"
            problems.append(f"{path.relative_to(root).as_posix()}: {what} disagrees with {SLUG_FILE} ({repo}@{ref})")
    return problems


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="badnets set-repo", description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("repo", nargs="?", help="the GitHub repository as OWNER/NAME (your fork)")
    p.add_argument("--ref", default=None, help="branch or tag for badges and Colab (default: repo.toml's, else main)")
    p.add_argument("--check", action="store_true", help="only list the places that disagree with repo.toml")
    p.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this checkout)")
    return p


def _run(args: argparse.Namespace) -> int:
    input_path(args.root, "--root", folder=True)  # never created
    if args.check:
        problems = check_repo(args.root)
        print("\n".join(problems) if problems else f"everything agrees with {SLUG_FILE}")
        return 1 if problems else 0
    if args.repo is None:
        raise SlugError("give the repository as OWNER/NAME (or --check)")
    ref = args.ref
    if ref is None:
        ref = read_slug(args.root)[1] if (Path(args.root) / SLUG_FILE).is_file() else DEFAULT_REF
    written = set_repo(args.root, args.repo, ref)
    names = ", ".join(p.name for p in written) or "nothing (already up to date)"
    print(f"{args.repo} at {ref}: rewrote {names}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``badnets set-repo OWNER/NAME [--ref REF]`` / ``--check``; errors: one line on stderr, exit 2."""
    return run_command(build_parser(), argv, _run, (SlugError, OSError))


if __name__ == "__main__":
    sys.exit(main())
