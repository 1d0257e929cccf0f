"""``set-repo``: one repo.toml drives the README's and the notebooks' Colab badges and setup cells."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from badnets_utils.tools import github as R

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """README.md, pyproject.toml and notebooks/ of this checkout, copied into a temporary root."""
    for name in ("README.md", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_set_repo_rewrites_everything_and_check_agrees(copy: Path):
    written = R.set_repo(copy, "acme/badnets-fork", "v1.0")
    assert copy / "repo.toml" in written and copy / "README.md" in written
    assert R.read_slug(copy) == ("acme/badnets-fork", "v1.0")
    assert R.check_repo(copy) == []
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert "<!-- repo: acme/badnets-fork -->" in readme
    assert R.badge_url("acme/badnets-fork", "v1.0", "01_download_and_explore_data.ipynb") in readme
    for path in sorted((copy / "notebooks").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert "your-org" not in text and R.badge_url("acme/badnets-fork", "v1.0", path.name) in text
        assert text.endswith("}\n") and text.startswith('{\n "cells": [\n  {\n')  # nbformat's 1-space indent
        nb = nbformat.read(path, as_version=4)
        setup = nb.cells[R.find_setup_cell(nb)]
        assert "setup" in setup.metadata["tags"]
        assert setup.source == R.setup_cell_source("acme/badnets-fork", "v1.0", R.colab_extras(copy))


def test_second_run_is_a_no_op(copy: Path):
    R.set_repo(copy, "acme/badnets-fork", "main")
    before = snapshot(copy)
    assert R.set_repo(copy, "acme/badnets-fork", "main") == []
    assert R.main(["acme/badnets-fork", "--root", str(copy)]) == 0
    assert snapshot(copy) == before


def test_other_cells_are_untouched(copy: Path):
    R.set_repo(copy, "acme/badnets-fork", "dev/feature-1")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        old, new = nbformat.read(path, as_version=4), nbformat.read(copy / "notebooks" / path.name, as_version=4)
        assert len(old.cells) == len(new.cells)
        setup = R.find_setup_cell(old)
        for i, (a, b) in enumerate(zip(old.cells, new.cells, strict=True)):
            if i == setup:
                assert a.get("outputs") == b.get("outputs")  # the setup cell keeps its outputs
                continue
            if a.cell_type == "markdown" and "colab.research.google.com/github/" in a.source:
                a.source = R.rewrite_links(a.source, "acme/badnets-fork", "dev/feature-1")
            assert a == b, f"{path.name} cell {i} changed"
        assert old.metadata == new.metadata


def test_only_the_repo_comment_and_badges_change_in_the_readme(copy: Path):
    R.set_repo(copy, "acme/badnets-fork", "main")
    old = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    new = (copy / "README.md").read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert len(old) == len(new)
    assert all("<!-- repo:" in b or "colab.research.google.com/github/acme/badnets-fork/" in b for _, b in changed)


@pytest.mark.parametrize(
    "argv",
    [["not a slug"], ["owner"], ["a/b/c"], ["own er/name"], ["owner/.."], ["acme/x", "--ref", "bad ref"],
     ["acme/x", "--ref", "../main"], ["acme/x", "--ref", "-rf"], [], ["acme/x", "--bogus"]],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(copy: Path, argv, capsys):
    before = snapshot(copy)
    assert R.main([*argv, "--root", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("badnets set-repo: error: ") and err.count("\n") == 1, err
    assert snapshot(copy) == before


def test_check_repo_reports_what_disagrees(copy: Path):
    assert R.check_repo(copy) == [
        "repo.toml: repo.toml is missing: run `python -m badnets_utils set-repo OWNER/NAME` once"
    ]
    R.set_repo(copy, "acme/badnets-fork", "main")
    (copy / "repo.toml").write_text(R.slug_file_text("other/fork", "main"), encoding="utf-8")
    problems = R.check_repo(copy)
    assert any(p.startswith("README.md:") for p in problems)
    assert sum(p.startswith("notebooks/") for p in problems) == len(list((copy / "notebooks").glob("*.ipynb")))
    assert R.main(["--check", "--root", str(copy)]) == 1


def test_ref_defaults_to_repo_toml(copy: Path):
    R.set_repo(copy, "acme/badnets-fork", "v2")
    assert R.main(["acme/other", "--root", str(copy)]) == 0
    assert R.read_slug(copy) == ("acme/other", "v2")


def test_colab_extras_skip_what_colab_has(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = [\n "torch>=2", "numpy", "PyYAML>=6", "scikit-learn",\n]\n', encoding="utf-8"
    )
    assert R.colab_extras(tmp_path) == ["pyyaml", "scikit-learn"]
    cell = R.setup_cell_source("a/b", "main", R.colab_extras(tmp_path))
    assert '"pyyaml": "yaml"' in cell and '"scikit-learn": "sklearn"' in cell
    compile(cell, "setup", "exec")


def test_setup_cell_never_installs_what_colab_has():
    cell = R.setup_cell_source("a/b", "main", R.colab_extras(ROOT))
    compile(cell, "setup", "exec")
    assert cell.splitlines()[1] == 'REPO = "a/b"  # the GitHub repository (owner/name) Colab fetches'
    assert "pip install -q -e" not in cell and 'install", "-q", "-e"' not in cell
    for name in R.COLAB_PREINSTALLED:
        assert f'"{name}"' not in cell


def run_colab_branch(monkeypatch, tmp_path: Path, returncode: int, stderr: str = "") -> list[list[str]]:
    """Execute the setup cell up to the import as on Colab, with /content -> tmp_path and a fake git."""
    calls: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    cell = R.setup_cell_source("acme/badnets-fork", "v1", ()).replace('"/content/"', repr(f"{tmp_path}/"))
    exec(cell.split("from badnets_utils.course.notebook")[0], {})
    return calls


def test_colab_clone_failure_is_one_clear_sentence(monkeypatch, tmp_path: Path):
    with pytest.raises(SystemExit) as exc:
        run_colab_branch(monkeypatch, tmp_path, 128, "Cloning...\nfatal: repository 'x' not found\n")
    message = str(exc.value)
    assert message.startswith("could not fetch github.com/acme/badnets-fork at v1: fatal: repository 'x' not found.")
    assert "Check the repository name in the first cell, or upload the folder" in message and "\n" not in message


def test_colab_clone_is_put_on_sys_path(monkeypatch, tmp_path: Path):
    calls = run_colab_branch(monkeypatch, tmp_path, 0)
    assert calls == [["git", "clone", "-q", "--depth", "1", "--branch", "v1", "https://github.com/acme/badnets-fork",
                      f"{tmp_path}/badnets-fork"]]  # fmt: skip
    assert sys.path[0] == f"{tmp_path}/badnets-fork"
    (tmp_path / "badnets-fork").mkdir()
    assert run_colab_branch(monkeypatch, tmp_path, 0) == []  # already there: no second clone


# Fails until the lead has run, once, in the repository root:
#     python -m badnets_utils set-repo OWNER/NAME        (or: python -m badnets_utils.tools.github OWNER/NAME)
# which writes repo.toml and rewrites the README's and the notebooks' badges and setup cells.
def test_real_repository_agrees_with_repo_toml():
    problems = R.check_repo(ROOT)
    assert problems == [], "run `python -m badnets_utils set-repo OWNER/NAME` once:\n" + "\n".join(problems)


def slug_root(tmp_path: Path, repo: str) -> Path:
    (tmp_path / "repo.toml").write_text(R.slug_file_text(repo, "v1"), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "toml, env, expected",
    [("acme/x", {}, "acme/x"), ("acme/x", {"GITHUB_REPOSITORY": "someone/fork"}, "someone/fork"),
     ("acme/x", {"GITHUB_REPOSITORY": ""}, "acme/x"), (R.PLACEHOLDER_REPO, {}, R.PLACEHOLDER_REPO),
     (R.PLACEHOLDER_REPO, {"BADNETS_PUBLISH": "0"}, R.PLACEHOLDER_REPO),
     (R.PLACEHOLDER_REPO, {"BADNETS_PUBLISH": "1", "GITHUB_REPOSITORY": "someone/fork"}, "someone/fork")],
)  # fmt: skip
def test_site_slug_is_github_repository_else_repo_toml(tmp_path: Path, toml: str, env: dict, expected: str):
    assert R.site_slug(slug_root(tmp_path, toml), env) == (expected, "v1")


@pytest.mark.parametrize(
    "toml, env, message",
    [("acme/x", {"GITHUB_REPOSITORY": "not a slug"},
      "GITHUB_REPOSITORY: 'not a slug' is not a GitHub repository as OWNER/NAME (letters, digits, '-', '.', '_')"),
     ("acme/x", {"GITHUB_REPOSITORY": "a/b/c"}, "GITHUB_REPOSITORY: 'a/b/c' is not a GitHub repository"),
     (R.PLACEHOLDER_REPO, {"BADNETS_PUBLISH": "1"}, "will not publish the website with the placeholder repository "
      "your-org/badnets-notebooks: set GITHUB_REPOSITORY=OWNER/NAME, or run `python -m badnets_utils set-repo"),
     ("acme/x", {"BADNETS_PUBLISH": "true", "GITHUB_REPOSITORY": R.PLACEHOLDER_REPO}, "will not publish")],
)  # fmt: skip
def test_site_slug_refuses_bad_values_and_a_published_placeholder(tmp_path: Path, toml: str, env: dict, message):
    with pytest.raises(R.SlugError) as exc:
        R.site_slug(slug_root(tmp_path, toml), env)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_pointed_at_renames_only_the_repository():
    """The website's copies: badges, repo comments and the setup cell's REPO/REF lines change, nothing else."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        old = R.read_notebook(path)
        new = R.pointed_at(R.read_notebook(path), "someone/fork", "dev")
        text = R.notebook_text(new)
        assert R.PLACEHOLDER_REPO not in text and R.badge_url("someone/fork", "dev", path.name) in text
        setup = new.cells[R.find_setup_cell(new)].source
        assert 'REPO = "someone/fork"  #' in setup and 'REF = "dev"  #' in setup
        restored = R.pointed_at(new, *R.read_slug(ROOT))
        assert restored == old, f"{path.name}: pointed_at changed more than the repository"
