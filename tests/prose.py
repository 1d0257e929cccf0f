"""The figures a student reads, and where each comes from (for ``test_prose_figures.py``).

A *figure* is a number the prose states: a percentage, a difference in points, a decimal, a count of images,
models, epochs, poisons…, a time in seconds or minutes, or "N of M". A figure is *backed* when it is found

* among the notebook's printed outputs — as printed, as the fraction that prints it (98.84 % ← 0.9884), or
  rounded to the digits the prose gives (74.0 % ← 74.01 %);
* in its code, as a literal (a parameter);
* in a results file the notebook reads (``results/…``), or in the manifest's figures;
* in ``paper.PAPER``, with a citation (§, Table, Fig.) in the same sentence;
* in the allowlist below, with its reason.

Docs pages are held to the same rule with every committed notebook's outputs as their evidence; their generated
blocks (between ``<!-- name -->`` markers) and glued figures are written from the source, so they are skipped here
and checked for freshness by ``test_doc_blocks.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# Round numbers that are deliberately rhetorical, or definitions rather than results: (where, text, reason).
ALLOWLIST: list[tuple[str, str, str]] = [
    ("*", "100 %", "the ceiling of a rate: 'close to 100 %', 'jumps to nearly 100 %'"),
    ("*", "0 %", "the floor of a rate: 'close to 0 %'"),
    ("*", "10 %", "chance level for ten classes, and the paper's 10 % poisoning (§4.2, Fig. 6)"),
    ("*", "50 %", "a coin flip, the halfway mark of a threshold"),
    ("*", "2 CPU cores", "the machine class the course is written for"),
    ("*", "2 minutes", "the class-mode promise: every notebook in about two minutes"),
    ("*", "10,000 images", "quick mode's training subset (notebook.setup)"),
    ("*", "2,000 images", "quick mode's test subset (notebook.setup)"),
    ("*", "60,000 images", "MNIST's training set (printed by 01)"),
    ("*", "10,000 test images", "MNIST's test set (printed by 01)"),
    ("05", "0.5", "an example value of alpha (half and half), not a result"),
    ("docs/colab.md", "3.12", "a Python version, not a figure"),
    ("docs/sweeps.md", "750 pixels", "a design constant: the sweep plot's size, checked by test_sweep_outputs"),
    ("docs/reliability.md", "an hour", "a design constant: how old a dead writer's temporary file must be"),
]

_SKIP_BLOCK = re.compile(r"<!-- ([a-z0-9-]+) -->.*?<!-- /\1 -->", re.S)
_FENCE = re.compile(r"```.*?```", re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK_URL = re.compile(r"\]\([^)]*\)")
_GLUE = re.compile(r"\{glue[^}]*\}`[^`]*`")
_DETAILS = re.compile(r"<details>.*?</details>", re.S)
_REFERENCES = re.compile(r"^#+ References.*?(?=^#+ |\Z)", re.S | re.M)
_CITE = re.compile(r"§\s?\d|Table \d|Fig\. ?\d|Figure \d")

NUM = r"(?<![\w.×(,/-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
COUNT_NOUNS = (
    r"(?:images?|test images|training images|models?|BadNets|epochs?|poisons?|poisoned(?: images)?|pairs?|"
    r"trainings?|copies|channels|runs?|digits|test digits|9s|7s|1s|seeds?|rates|filters|points?|"
    r"px|pixels|inked pixels|gradient steps|steps)"
)
PATTERNS = {
    "percent": re.compile(NUM + r"\s?%"),
    "points": re.compile(NUM + r"\s?points?\b"),
    "count": re.compile(NUM + r"\s(?:triggered |relabelled |clean |flipped-label |missed )?" + COUNT_NOUNS + r"\b"),
    "of": re.compile(NUM + r" of (?:the |all |its |our |MNIST's )?" + NUM),
    "decimal": re.compile(r"(?<![\w.×(,/§-])(?<!§ )(\d+)\.(\d+)(?![\d.])"),
}
WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "a quarter of an": 0.25,
    "half an": 0.5,
}
# a duration in words or digits, with how it is bounded: "about five minutes", "under a minute", "13 min"
DURATION = re.compile(
    r"\b(about|under|within|less than|over|more than|nearly|almost|)\s*("
    + "|".join(sorted(WORDS, key=len)[::-1])
    + r"|\d+(?:\.\d+)?)\s+(seconds|s|minutes?|min|hours?|h)\b",
    re.I,
)
UNIT_S = {
    "s": 1,
    "second": 1,
    "seconds": 1,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
}


@dataclass(frozen=True)
class Figure:
    where: str  # "03 cell 15" or "docs/results.md"
    text: str  # as written: "98.84 %"
    value: float
    decimals: int
    sentence: str
    bound: str = ""  # durations only (value in seconds): "about", "under", "over" or ""


def prose_of(text: str) -> str:
    """Markdown without what is not prose: generated blocks, code, link targets, solutions, references."""
    for pattern in (_SKIP_BLOCK, _FENCE, _DETAILS, _REFERENCES, _GLUE, _CODE_SPAN, _LINK_URL):
        text = pattern.sub(" ", text)
    return re.sub(r"<!--.*?-->", " ", text, flags=re.S)


def _number(whole: str, frac: str | None) -> tuple[float, int]:
    return float(whole.replace(",", "") + ("." + frac if frac else "")), len(frac or "")


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(])|\n\s*\n|\n[*-] |\n\|", text) if s.strip()]


def figures(text: str, where: str) -> list[Figure]:
    """Every figure the prose of ``text`` states."""
    found: list[Figure] = []
    for sentence in _sentences(prose_of(text)):
        flat = " ".join(sentence.split())
        taken: set[int] = set()
        for kind, pattern in PATTERNS.items():
            for m in pattern.finditer(flat):
                if m.start() in taken:
                    continue
                if kind == "of":
                    for g in ((1, 2), (3, 4)):
                        value, decimals = _number(m.group(g[0]), m.group(g[1]))
                        found.append(Figure(where, m.group(0), value, decimals, flat))
                    taken.add(m.start())
                    continue
                value, decimals = _number(m.group(1), m.group(2))
                if kind == "count" and value < 2 and not decimals:
                    continue
                if kind == "decimal" and value >= 1000:
                    continue
                taken.add(m.start())
                found.append(Figure(where, m.group(0), value, decimals, flat))
        found += [d for d in durations(flat, where) if not any(d.text.endswith(f.text) for f in found)]
    return found


def durations(flat: str, where: str) -> list[Figure]:
    out = []
    for m in DURATION.finditer(flat):
        if m.start() and flat[m.start() - 1] in "–-":  # a schedule's "10–20 min", not a measurement
            continue
        bound = {"under": "under", "within": "under", "less than": "under", "over": "over", "more than": "over",
                 "nearly": "about", "almost": "about"}.get(m.group(1).lower(), "about")  # fmt: skip
        amount = WORDS.get(m.group(2).lower()) or float(m.group(2))
        out.append(Figure(where, m.group(0).strip(), amount * UNIT_S[m.group(3).lower()], 0, flat, bound))
    return out


def durations_in(text: str) -> set[float]:
    """Every duration printed in ``text``, in seconds ("1 min 47 s", "6.4 s", "13 min", "[01:29<00:00")."""
    found = {60 * int(m) + int(s) for m, s in re.findall(r"(\d+) min (\d+) s", text)}
    found |= {float(v) * UNIT_S[u] for v, u in re.findall(r"(\d+(?:\.\d+)?) ?(s|min)\b", text)}
    found |= {60 * int(m) + int(s) for m, s in re.findall(r"\[(\d\d):(\d\d)<", text)}
    return found


# ----------------------------------------------------------------------------- evidence


def numbers_in(text: str) -> set[str]:
    """Every number in ``text``, normalised (no thousands separators)."""
    return {m.replace(",", "") for m in re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", text)}


def outputs_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append("".join(out["text"]))
        for mime in ("text/plain", "text/markdown", "text/html"):
            if mime in out.get("data", {}):
                parts.append("".join(out["data"][mime]))
    return "\n".join(parts)


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def evidence_of_notebook(nb: dict) -> tuple[set[str], set[str]]:
    """(numbers printed by the notebook, literals of its code)."""
    printed, code = set(), set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            printed |= numbers_in(outputs_text(cell))
            code |= numbers_in("".join(cell["source"]))
    return printed, code


def results_files_read_by(nb: dict) -> list[Path]:
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return [p for p in sorted((ROOT / "results").iterdir()) if p.name in source]


def evidence_of_files(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for p in paths:
        found |= numbers_in(p.read_text(encoding="utf-8"))
    return found


def paper_values() -> set[float]:
    from badnets_utils.studies.paper import PAPER

    values: set[float] = set()
    for value, _ in PAPER.values():
        for v in value if isinstance(value, tuple) else (value,):
            if v is not None:
                values.add(float(v))
    return values


def _matches(figure: Figure, number: str) -> bool:
    """``number`` (as printed) states ``figure``: equal, or equal once rounded to the figure's digits, or the
    fraction whose percentage it is."""
    x = float(number)
    scale = 10**figure.decimals
    for candidate in (x, 100 * x):
        if round(candidate * scale) == round(figure.value * scale):
            # a coarser statement of a printed figure is true; a finer one is not
            printed_decimals = len(number.split(".")[1]) if "." in number else 0
            if candidate == x and printed_decimals < figure.decimals:
                continue
            return True
    return False


def duration_backed(figure: Figure, seconds: set[float]) -> bool:
    if figure.bound == "under":
        return any(0 < e <= figure.value for e in seconds)
    if figure.bound == "over":
        return any(e >= figure.value for e in seconds)
    return any(0.7 * e <= figure.value <= 1.3 * e for e in seconds)


def backed(figure: Figure, evidence: set[str], paper: set[float], seconds: set[float] = frozenset()) -> bool:
    if figure.bound:
        return any(figure.text == text for _, text, _ in ALLOWLIST) or duration_backed(figure, seconds)
    if any(figure.text == text and where in ("*", figure.where.split()[0]) for where, text, _ in ALLOWLIST):
        return True
    if _CITE.search(figure.sentence) and any(abs(v - figure.value) < 1e-9 for v in paper):
        return True
    return any(_matches(figure, n) for n in evidence)
