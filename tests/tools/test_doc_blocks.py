"""Docs pages take their figures from the source: every generated block is what ``python -m badnets_utils pages``
renders from the manifest, results/, the benchmarks' JSON and the notebooks' committed outputs."""

from __future__ import annotations

import json

import pytest

from badnets_utils.tools import blocks, pages


def test_every_generated_block_is_current(capsys):
    assert pages.main(["--check"]) == 0, capsys.readouterr().out


def test_every_page_has_the_markers_of_its_blocks():
    for path, rendered in pages.rendered().items():
        text = path.read_text(encoding="utf-8")
        assert [name for name in rendered if blocks.read_block(text, name) is None] == [], path.name


def test_a_figure_edited_by_hand_is_stale(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("before\n<!-- t -->\n| a | 1 |\n<!-- /t -->\nafter\n", encoding="utf-8")
    assert blocks.planned({page: {"t": "| a | 1 |"}}) == {}
    page.write_text(page.read_text().replace("| a | 1 |", "| a | 2 |"), encoding="utf-8")
    assert blocks.planned({page: {"t": "| a | 1 |"}}) == {page: "before\n<!-- t -->\n| a | 1 |\n<!-- /t -->\nafter\n"}
    assert blocks.write_pages({page: {"t": "| a | 1 |"}}) == [page] and blocks.planned({page: {"t": "| a | 1 |"}}) == {}


def test_a_page_without_its_markers_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no block 'x'"):
        blocks.replace_block("no markers here", "x", "body")


def test_a_notebook_table_is_read_from_its_tagged_output(tmp_path):
    (tmp_path / "notebooks").mkdir()
    out = {"output_type": "display_data", "data": {"text/markdown": "| a |\n|---|"}, "metadata": {"badnets_block": "t"}}
    nb = {"cells": [{"cell_type": "code", "source": "", "outputs": [out], "metadata": {}}]}
    (tmp_path / "notebooks" / "nb.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    assert pages.notebook_table(tmp_path, "nb.ipynb", "t") == "| a |\n|---|"
    with pytest.raises(ValueError, match="no output tagged 'other'"):
        pages.notebook_table(tmp_path, "nb.ipynb", "other")


def test_release_recipes_are_the_manifests(tmp_path):
    table = pages.release_recipes(pages.ROOT)
    manifest = json.loads((pages.ROOT / "checkpoints" / "MANIFEST.json").read_text())["checkpoints"]
    for name, entry in manifest.items():
        row = next(line for line in table.splitlines() if f"`{name}`" in line)
        assert f"| {entry['epochs']} |" in row and f"{100 * entry['tca']:.2f} %" in row


def test_a_block_inside_a_sentence_stays_inside_it():
    text = "a run takes <!-- t -->old<!-- /t -->, measured.\n<!-- u -->\nold\n<!-- /u -->\n"
    new = blocks.replace_block(blocks.replace_block(text, "t", "about\n37 s\n"), "u", "| a |")
    assert new == "a run takes <!-- t -->about 37 s<!-- /t -->, measured.\n<!-- u -->\n| a |\n<!-- /u -->\n"


def test_no_docs_line_starts_with_a_percent_sign():
    """MyST reads a line that starts with % as a comment: a wrapped "99 %\\n% of…" would vanish from the site."""
    found = []
    for page in sorted((pages.ROOT / "docs").glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        found += [f"{page.name}:{i}" for i, line in enumerate(lines, 1) if line.startswith("%")]
    assert found == []
