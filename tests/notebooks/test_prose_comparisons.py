"""A sentence that compares ("as accurate as", "hardly moves", "cannot beat", "within 0.1 points", "doubles") has an
``assert`` in a code cell before it, in the same section, that holds the comparison with the tolerance the sentence
implies; a notebook's closing takeaways restate what its sections asserted."""

from __future__ import annotations

import re

import prose
import pytest

COMPARATIVE = re.compile(
    r"\b(equally|as accurate as|as good as|cannot beat|hardly (?:moves|dents|changes)|"
    r"barely (?:above|below|dents|moves|notices|changes)|within (?:a tenth of a |one |a |[\d.]+ )points?|doubles|"
    r"tripled|halves (?:the|its|their)|more reliably|far more|far less|almost coincide|the same as)\b",
    re.I,
)
EXEMPT = ("## Try it yourself", "**Answer key (teacher).**", "**Exercise", "**Predict", "**Going further", "<details>")


def unasserted(path) -> list[str]:
    nb = prose.read_notebook(path)
    found, asserted, ever = [], False, False
    for i, cell in enumerate(nb["cells"]):
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            asserted = asserted or bool(re.search(r"^\s*assert\b", src, re.M))
            ever = ever or asserted
            continue
        if re.match(r"#+ ", src):  # a new section needs its own asserts; the takeaways restate the sections'
            asserted = ever if src.startswith("## Key takeaways") else False
        if src.lstrip().startswith(EXEMPT):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", prose.prose_of(src)):
            m = COMPARATIVE.search(sentence)
            if m and not asserted:
                found.append(f"{path.name[:2]} cell {i}: {m.group(0)!r} in: {' '.join(sentence.split())[:140]}")
    return found


@pytest.mark.parametrize("path", prose.NOTEBOOKS, ids=lambda p: p.name[:2])
def test_comparisons_are_asserted_before_they_are_stated(path):
    assert unasserted(path) == []


if __name__ == "__main__":
    for p in prose.NOTEBOOKS:
        print("\n".join(unasserted(p)))
