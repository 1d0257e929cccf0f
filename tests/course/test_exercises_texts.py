"""The exercises' texts are data beside their module: badnets_utils/course/exercise_texts.json.

Every exercise key the notebooks use has its entry there and no entry is unused; the file is read once on import
and checked, so that a teacher's slip in an entry (or a missing one) is one line naming the key.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from badnets_utils.course import exercises as ex
from badnets_utils.tools import grading

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-8]_*.ipynb"))
TEXTS = ROOT / "badnets_utils" / "course" / "exercise_texts.json"


def entries() -> dict:
    """The file's entries by exercise key (without its ``_about`` note)."""
    data = json.loads(TEXTS.read_text(encoding="utf-8"))
    return {key: entry for key, entry in data.items() if key != "_about"}


def notebook_keys() -> dict[str, set[str]]:
    """The exercise keys each notebook uses: its checks' (as grading.py reads them), the keys its text passes to
    ``exercises.hint`` and the keys of the answers its outputs seal (``grep -o '"0[1-8]-[0-9]"' notebooks/*``)."""
    found = {}
    for path in NOTEBOOKS:
        keys = set(re.findall(r'"(0[1-8]-[0-9])"', path.read_text(encoding="utf-8")))
        for cell in nbformat.read(path, as_version=4).cells:
            keys |= set(re.findall(r'exercises\.hint\(\s*"([^"]+)"', cell.source))
            if cell.cell_type == "code":
                lines = [line.rstrip() for line in cell.source.splitlines()]
                keys |= {grading.exercise_key(line.rstrip(";")) for line in lines if grading.CHECK_LINE.fullmatch(line)}
        found[path.name] = keys
    return found


def test_every_key_the_notebooks_use_has_an_entry_and_every_entry_is_used():
    used = notebook_keys()
    keys = set(entries())
    missing = {name: sorted(k - keys) for name, k in used.items() if k - keys}
    assert not missing, f"keys the notebooks use without an entry in {TEXTS.name}: {missing}"
    unused = keys - set().union(*used.values())
    assert not unused, f"entries of {TEXTS.name} no notebook uses: {sorted(unused)}"
    for name, k in used.items():
        assert k and all(key[:2] == name[:2] for key in k), (name, sorted(k))  # a notebook's own keys


def test_the_module_holds_what_the_file_says():
    assert (ex.HINTS, ex.MESSAGES, ex.CHOICES) == ex._load_texts()
    assert set(ex.HINTS) | set(ex.CHOICES) == set(entries()) and not set(ex.HINTS) & set(ex.CHOICES)
    assert set(ex.MESSAGES) == {"04-1", "06-2"} <= set(ex.HINTS)  # the sweep exercises (_check_first_reaching)
    assert ex._missing_texts(Path(ex.__file__).read_text(encoding="utf-8"), ex.HINTS, ex.MESSAGES) is None


def test_the_texts_are_readable_and_the_answers_are_not():
    text = TEXTS.read_text(encoding="utf-8")
    for key, entry in entries().items():
        for hint in entry.get("hints", []):  # a teacher finds each hint as the student reads it
            assert json.dumps(hint, ensure_ascii=False) in text, key
        for letter in entry.get("sealed", {}):
            explanation = ex._explanation(key, letter)
            assert explanation[:20] not in text and explanation[-20:] not in text, (key, letter)
    assert not re.search(r'"right[^"]*":\s*"\(?[a-e]\)?"', text), "a right letter in plain text"


def test_a_sealed_entry_round_trips(tmp_path: Path):
    path = tmp_path / TEXTS.name
    entry = ex.choice_entry("09-1", "b", {"a": "no: (a) is the clean accuracy", "b": "yes: the ASR"})
    path.write_text(json.dumps({"09-1": entry}), encoding="utf-8")
    hints, messages, choices = ex._load_texts(path)
    assert hints == messages == {} and choices == {"09-1": (entry["right_digest"], entry["sealed"])}
    assert entry["right_digest"] == ex._digest("09-1", "b") and "yes: the ASR" not in path.read_text()


def _broken(key: str, change) -> dict:
    data = copy.deepcopy(json.loads(TEXTS.read_text(encoding="utf-8")))
    change(data, data[key] if key in data else None)
    return data


BROKEN = {  # (the key the error must name, how the entry is broken)
    "hints not a list": ("01-1", lambda d, e: e.update(hints="a nudge")),
    "one hint": ("01-2", lambda d, e: e["hints"].pop()),
    "an empty hint": ("02-1", lambda d, e: e["hints"].__setitem__(1, " ")),
    "the same hint twice": ("03-1", lambda d, e: e["hints"].__setitem__(1, e["hints"][0])),
    "an unknown field": ("03-2", lambda d, e: e.update(solution="42")),
    "no fields": ("05-1", lambda d, e: e.clear()),
    "not an object": ("05-2", lambda d, e: d.__setitem__("05-2", ["a", "b"])),
    "a message missing": ("04-1", lambda d, e: e["messages"].pop("above")),
    "a bad placeholder": ("06-2", lambda d, e: e["messages"].update(right="right: {y}")),
    "messages of a choice": ("04-3", lambda d, e: e.update(messages={})),
    "a sealed text that is not base64": ("01-4", lambda d, e: e["sealed"].update(a="not base64!")),
    "a sealed text of another key": ("02-4", lambda d, e: e["sealed"].update(a=d["07-4"]["sealed"]["a"])),
    "one letter": ("03-predict", lambda d, e: e.update(sealed={"a": e["sealed"]["a"]})),
    "a digest no letter has": ("06-predict", lambda d, e: e.update(right_digest="0" * 32)),
    "a right letter in plain text": ("07-4", lambda d, e: e.update(right_digest="b")),
    "a key that is no exercise": ("1-1", lambda d, e: d.__setitem__("1-1", d["01-1"])),
    "a malformed note": ("_about", lambda d, e: d.__setitem__("_about", 3)),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_malformed_entry_is_one_line_naming_its_key(case, tmp_path: Path):
    key, change = BROKEN[case]
    path = tmp_path / TEXTS.name
    path.write_text(json.dumps(_broken(key, change), ensure_ascii=False, indent=2), encoding="utf-8")
    with pytest.raises(ex.ExerciseTextsError) as err:
        ex._load_texts(path)
    message = str(err.value)
    assert f"{TEXTS.name}: entry {key!r}: " in message and "\n" not in message, message


def test_a_key_given_twice_is_one_line_naming_it(tmp_path: Path):
    path = tmp_path / TEXTS.name
    text = TEXTS.read_text(encoding="utf-8")
    path.write_text(text.replace('  "02-1": {', '  "01-1": {"hints": ["a", "b"]},\n  "02-1": {', 1), encoding="utf-8")
    with pytest.raises(ex.ExerciseTextsError, match=f"^{re.escape(TEXTS.name)}: '01-1' appears twice in one object$"):
        ex._load_texts(path)


@pytest.mark.parametrize("text", ['{"01-1": {"hints": ["a", "b"],}}', "[]", ""])
def test_a_file_that_is_not_a_json_object_is_one_line(text, tmp_path: Path):
    path = tmp_path / TEXTS.name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ex.ExerciseTextsError, match=f"^{re.escape(TEXTS.name)}: ") as err:
        ex._load_texts(path)
    assert "\n" not in str(err.value)


def test_a_missing_entry_is_one_line_naming_its_key():
    source = Path(ex.__file__).read_text(encoding="utf-8")
    for key, name in [("05-3", "check_blended_pixel"), ("07-1", "check_flag_precision"), ("08-1", "check_count_")]:
        hints = {k: v for k, v in ex.HINTS.items() if k != key}
        assert ex._missing_texts(source, hints, ex.MESSAGES).startswith(f"{TEXTS.name}: no entry {key!r}: "), key
        assert f"exercises.{name}" in ex._missing_texts(source, hints, ex.MESSAGES)
    without = {k: v for k, v in ex.MESSAGES.items() if k != "06-2"}
    assert "'06-2'" in ex._missing_texts(source, ex.HINTS, without) and "check_smallest_trigger" in ex._missing_texts(
        source, ex.HINTS, without
    )


def test_importing_with_an_entry_missing_fails_in_one_line(tmp_path: Path):
    """A teacher's copy of the package (as classroom.py ships it) whose file lacks an entry does not import."""
    package = tmp_path / "badnets_utils"
    shutil.copytree(ROOT / "badnets_utils", package, ignore=shutil.ignore_patterns("__pycache__"))
    data = json.loads(TEXTS.read_text(encoding="utf-8"))
    del data["05-3"]
    (package / "course" / TEXTS.name).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", "import badnets_utils.course.exercises"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == (
        f"badnets_utils.course.exercises.ExerciseTextsError: {TEXTS.name}: no entry '05-3': "
        "exercises.check_blended_pixel shows its hints"
    )
