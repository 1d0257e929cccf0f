"""Self-checks for the notebooks' "Try it yourself" exercises.

Each check takes the student's ``answer`` (plus whatever it needs to know the right one), prints
✅ or ❌ with a short explanation and returns True or False. An unanswered exercise (``answer is
None``) prints a hint and returns False without raising, so a notebook runs top to bottom before
anyone has solved anything.

Hints are graduated and never give the solution away: an unanswered check prints the first hint (a conceptual
nudge); ``exercises.hint("03-1", level=2)`` prints the second (which tool or API to use). The solution itself is
only in the notebook's hidden solution cell (tagged ``solution``; the student edition leaves it out).

Concept and prediction questions ("what will the ASR be if…?") are multiple choice: ``check_choice(answer,
"03-predict")`` accepts ``"b"``, ``"B"``, ``"(b)"`` or ``"b)"``. Their keys never clash with an exercise's
(``"<notebook>-predict"`` for a prediction before a cell, ``"<notebook>-<exercise>"`` for a concept exercise),
and their answers are stored sealed (see ``seal_choice``).

The texts are data, not code: the hints, the sweep exercises' messages and the sealed answers live in
``exercise_texts.json`` beside this module, read once on import into ``HINTS``, ``MESSAGES`` and ``CHOICES``; this
module holds the logic (reading and judging answers, unsealing).

Conventions for new checks: name them ``check_<what>``, add the exercise's two hints to ``exercise_texts.json``
under ``"<notebook>-<exercise>"``, compute the right answer, then ``if answer is None: return _hint(key, expected)``
(the hint seals ``expected`` into the notebook's output, so that a test can check that no output above the
exercise shows it; a share takes ``_check_share``), finish with ``_report``. In a
notebook, end the check line with ``;`` so that nothing but the message is shown.

Numeric answers, one rule for every check (``_read``, ``_read_whole``, ``_judge``):

* A number is a Python int or float, a NumPy number (``np.float32``, ``np.int64``, a 0-d array) or a 0-d torch
  tensor. Bools, text, lists, tensors or arrays with a dimension (even of one element), NaN and inf are refused
  with one line saying what was received and what is expected.
* A count is a whole number: ``300``, ``300.0``, ``np.int64(300)`` and ``torch.tensor(300)`` are 300; ``300.5`` is
  refused.
* Digits: a float counts with the digits it prints in its own precision (``np.float32(0.9999)`` and
  ``torch.tensor(0.9999)`` are 0.9999). It is right when it is the true value rounded to that many decimals (within
  half a unit of its last decimal, so 0.13 for 0.1307 but not 0.14 nor 0.1306), or the true value itself up to
  float32 error (a relative 1e-6). A rounded answer needs two significant digits: 0.1 for 0.1307 is too coarse.
* Fraction or percent: a share (ASR, precision, mean pixel, a rate) may be given as a fraction (0.9884) or as a
  percent (98.84). A number above 1 can only be a percent. A number in [0, 1] is read in the unit the check asks
  for (a fraction; a percent for ``check_count_prediction``); only when that reading is wrong and the other one
  right is it read the other way, and the message says so ("read as 0.7 %": 0.7 for an ASR of 0.007). A whole 1
  is never read the other way and never rounded: ``1`` for an ASR of 0.9999 is refused as ambiguous (100 % rounded
  to a whole, 1 %, or the target class 1), asking for the fraction's digits or the percent; ``1.0`` is 100 % to
  one decimal, and ``1`` is right only for an ASR of exactly 1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from badnets_utils._io.progress import in_notebook


def _report(ok: bool, message: str) -> bool:
    """Print ✅/❌ and ``message``; return ``ok``."""
    ok = bool(ok)
    print(("✅ " if ok else "❌ ") + message)
    return ok


# ----------------------------------------------------------------------------- the texts (exercise_texts.json)

# The data of the exercises lives beside this module in exercise_texts.json, one entry per exercise key: the two
# hints of a self-check ("hints": [a conceptual nudge, the tool or API to use], never the solution code), the
# 'right'/'below'/'above' lines of a sweep exercise ("messages"), and a multiple-choice question's answer, sealed
# ("right_digest": a salted hash of the right letter; "sealed": each letter's explanation, XORed with a keystream
# of its key and letter), so that the copy a student edition ships does not give the answers away. The file is read
# and checked once, on import (``_load_texts``; a bad entry is one line naming its key). To add or change a
# question: ``print(json.dumps(choice_entry("09-1", "b", {"a": "why (a) is wrong", "b": "why (b) is right", ...}),
# indent=2))`` and paste the result as the entry of "09-1"; the question itself goes in the notebook.
TEXTS = Path(__file__).with_name("exercise_texts.json")
EXERCISE_KEY = re.compile(r"\d\d-(\d+|predict)")  # "03-1", or "03-predict" for a prediction before a cell
OUTCOMES = ("right", "below", "above")  # a sweep exercise's messages (``_check_first_reaching``)
# How a check names its exercise, for the texts it needs (``_missing_texts``) and the key grading.py grades it under.
HINT_CALL = re.compile(r'(?:_hint|_check_share)\((?:answer, )?"([^"]+)"')
CHOICE_SALT = "badnets-notebooks/choices/v1"


def _digest(key: str, letter: str) -> str:
    return hashlib.sha256(f"{CHOICE_SALT}|{key}|right|{letter}".encode()).hexdigest()[:32]


def _keystream(key: str, letter: str, n: int) -> bytes:
    blocks = (hashlib.sha256(f"{CHOICE_SALT}|{key}|{letter}|{i}".encode()).digest() for i in range(n // 32 + 1))
    return b"".join(blocks)[:n]


def _xor(data: bytes, key: str, letter: str) -> bytes:
    return bytes(a ^ b for a, b in zip(data, _keystream(key, letter, len(data)), strict=True))


def seal_choice(key: str, right: str, why: dict[str, str]) -> tuple[str, dict[str, str]]:
    """For maintainers: ``(right_digest, sealed)`` of a question whose ``right`` letter and explanations are given."""
    if right not in why:
        raise ValueError(f"the right letter {right!r} must be one of the explained letters {sorted(why)}")
    sealed = {k: base64.b64encode(_xor(text.encode(), key, k)).decode() for k, text in why.items()}
    return _digest(key, right), sealed


def choice_entry(key: str, right: str, why: dict[str, str]) -> dict:
    """For maintainers: the exercise_texts.json entry of question ``key``, sealed (see ``seal_choice``)."""
    digest, sealed = seal_choice(key, right, why)
    return {"right_digest": digest, "sealed": sealed}


class ExerciseTextsError(ValueError):
    """exercise_texts.json cannot be read, or an entry is missing or malformed (one line, naming the key)."""


def _entry_error(key: str, problem: str) -> ExerciseTextsError:
    return ExerciseTextsError(f"{TEXTS.name}: entry {key!r}: {problem}")


def _texts(value: object, n: int | None = None) -> bool:
    """Is ``value`` a list of non-empty texts (of ``n`` of them when given)?"""
    ok = isinstance(value, list) and all(isinstance(t, str) and t.strip() for t in value)
    return ok and (n is None or len(value) == n)


def _hints_entry(key: str, entry: dict) -> tuple[tuple[str, str], dict[str, str] | None]:
    """The hints (and a sweep exercise's messages) of an entry, checked."""
    hints = entry["hints"]
    if not _texts(hints, 2) or hints[0] == hints[1]:
        raise _entry_error(key, '"hints" must be a list of two different texts: a nudge, then the tool to use')
    messages = entry.get("messages")
    if messages is None:
        return (hints[0], hints[1]), None
    if not isinstance(messages, dict) or sorted(messages) != sorted(OUTCOMES) or not _texts(list(messages.values())):
        raise _entry_error(key, '"messages" must hold the texts "right", "below" and "above"')
    try:
        for text in messages.values():
            text.format(x=1.0, v=2, t=0.9)  # as _check_first_reaching fills them in
    except (KeyError, IndexError, ValueError) as err:
        raise _entry_error(key, f"a message has a bad placeholder ({err}): it may use {{x}}, {{v}} and {{t}}") from None
    return (hints[0], hints[1]), dict(messages)


def _choice_entry(key: str, entry: dict) -> tuple[str, dict[str, str]]:
    """The sealed answer of a multiple-choice entry, checked: every explanation unseals, one letter is right."""
    digest, sealed = entry["right_digest"], entry["sealed"]
    if not isinstance(sealed, dict) or len(sealed) < 2 or not all(re.fullmatch("[a-z]", k) for k in sealed):
        raise _entry_error(key, '"sealed" must map two or more letters ("a", "b", ...) to sealed explanations')
    for letter, text in sealed.items():
        try:
            _xor(base64.b64decode(text, validate=True), key, letter).decode()
        except (TypeError, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise _entry_error(key, f"the explanation of ({letter}) does not unseal: write the entry with "
                               "choice_entry") from None  # fmt: skip
    if not isinstance(digest, str) or [_digest(key, letter) == digest for letter in sealed].count(True) != 1:
        raise _entry_error(key, '"right_digest" matches none of its letters: write the entry with choice_entry')
    return digest, dict(sealed)


def _unique(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are all different (json would silently keep the last of two)."""
    found = {}
    for key, value in pairs:
        if key in found:
            raise ExerciseTextsError(f"{TEXTS.name}: {key!r} appears twice in one object")
        found[key] = value
    return found


def _load_texts(path: Path = TEXTS) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, str]], dict]:
    """``(hints, messages, choices)`` of the exercise texts at ``path``, each entry checked (module comment above);
    a file that cannot be read, or an entry that is malformed, raises ExerciseTextsError in one line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique)
    except ExerciseTextsError:
        raise
    except (OSError, ValueError) as err:
        raise ExerciseTextsError(f"{path.name}: cannot read the exercise texts: {err}") from None
    if not isinstance(data, dict):
        raise ExerciseTextsError(f'{path.name}: expected a JSON object keyed by exercise ("01-1": {{"hints": ...}})')
    hints, messages, choices = {}, {}, {}
    for key, entry in data.items():
        if key == "_about":  # a note for whoever edits the file
            if not _texts(entry):
                raise _entry_error(key, "must be a list of lines of text")
            continue
        if not EXERCISE_KEY.fullmatch(key):
            raise _entry_error(key, 'not an exercise key: "<notebook>-<exercise>" ("03-1") or "<notebook>-predict"')
        fields = sorted(entry) if isinstance(entry, dict) else None
        if fields in (["hints"], ["hints", "messages"]):
            hints[key], found = _hints_entry(key, entry)
            if found:
                messages[key] = found
        elif fields == ["right_digest", "sealed"]:
            choices[key] = _choice_entry(key, entry)
        else:
            got = fields if fields is not None else f"{entry!r:.40}"
            raise _entry_error(key, 'expected an object with "hints" (and "messages" for a sweep exercise), or with '
                               f'"right_digest" and "sealed" for a multiple-choice question; got {got}')  # fmt: skip
    return hints, messages, choices


# key: (the nudge, the tool to use) · key: {outcome: its message} · key: (the salted hash of the right letter,
# {letter: its sealed explanation})
HINTS, MESSAGES, CHOICES = _load_texts()

# No word on where the solution is: the student edition has none (classroom.py), the others a collapsed cell.
MORE = '  (More help: exercises.hint("{key}", level=2).)'


def hint(key: str, level: int = 1) -> None:
    """Print the hints of exercise ``key`` ("03-1") up to ``level`` (1: a nudge, 2: which tool to use)."""
    if key in CHOICES:
        print(f"💡 {key} is a multiple-choice question: it has no hints. Decide, then run its cell: it explains "
              "why your letter is right or wrong.")  # fmt: skip
        return
    same_notebook = sorted(k for k in HINTS if k[:3] == str(key)[:3])
    if key not in HINTS and re.fullmatch(r"\d\d-\d+", str(key)) and same_notebook:
        print(f"💡 {key} has no hints: it is an open exercise (or not one of this notebook's). Hints exist for "
              f"{', '.join(same_notebook)}.")  # fmt: skip
        return
    if key not in HINTS:
        raise KeyError(f"no exercise {key!r}; exercises with hints: {', '.join(sorted(HINTS))}")
    if level not in (1, 2):
        raise ValueError("level is 1 (a nudge) or 2 (which tool to use); the solution is in the solution cell")
    for i in range(level):
        print(f"💡 Hint {i + 1}: {HINTS[key][i]}")


ANSWER_KEY = "badnets_sealed_answer"  # an unanswered check's output metadata: its right answer, sealed


def _hint(key: str, *answers: float) -> bool:
    """An exercise not answered yet: show its first hint (and how to get the second), return False.

    In a notebook the hint's output also carries the right ``answers``, sealed (``unseal_answer``), so that a test
    can check that no output above the exercise shows them: the student predicts, then sees."""
    line = f"✏️  Not answered yet (answer is None). Hint: {HINTS[key][0]}" + MORE.format(key=key)
    if not answers or not in_notebook():
        print(line)
        return False
    from IPython.display import display

    sealed = base64.b64encode(_xor(repr([float(a) for a in answers]).encode(), key, "answer")).decode()
    display({"text/plain": line}, raw=True, metadata={ANSWER_KEY: {"key": key, "sealed": sealed}})
    return False


def unseal_answer(key: str, sealed: str) -> list[float]:
    """The right answers an unanswered check sealed into its output (for the tests)."""
    return [float(v) for v in _xor(base64.b64decode(sealed), key, "answer").decode().strip("[]").split(",")]


# ----------------------------------------------------------------------------- reading numbers (see the docstring)


@dataclass(frozen=True)
class _Number:
    """A numeric answer: its value, the decimal it prints as in its own precision, whether it is an integer."""

    value: float
    text: str  # the shortest decimal that reads back as the answer: np.float32(0.9999) -> "0.9999"
    whole: bool  # an int, a NumPy or a torch integer

    @property
    def decimals(self) -> int:
        return len(self.text.partition(".")[2])

    @property
    def significant(self) -> int:
        return len(self.text.lstrip("-").replace(".", "").lstrip("0"))


@dataclass(frozen=True)
class _Verdict:
    """How an answer compares with the right value: ``status`` is "right", "coarse" (rounded right, but to fewer
    than two significant digits), "ambiguous" (a whole 1 for a share) or "wrong"; ``shown`` is how it was read
    ("0.97", "97 %"; as typed when ``note`` says it was read in the check's other unit: " (read as 0.7 %)")."""

    status: str
    shown: str
    note: str = ""


def _scalar(answer: object) -> int | float | np.integer | np.floating | None:
    """A Python, NumPy (also 0-d array) or 0-d torch number that is not a bool, else None."""
    if isinstance(answer, torch.Tensor):
        if answer.dim() != 0 or answer.dtype == torch.bool or answer.is_complex():
            return None
        tensor = answer.detach().cpu()
        answer = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()[()]
    if isinstance(answer, np.ndarray) and answer.ndim == 0:
        answer = answer[()]
    if isinstance(answer, bool | np.bool_) or not isinstance(answer, int | float | np.integer | np.floating):
        return None
    return answer


def _received(answer: object) -> str:
    """A refused answer in a few words."""
    if isinstance(answer, bool | np.bool_):
        return f"{answer} (a bool, not a number)"
    if isinstance(answer, str):
        return f"the text {answer!r} (write the number without quotes)"
    if isinstance(answer, torch.Tensor | np.ndarray):
        kind = "tensor" if isinstance(answer, torch.Tensor) else "array"
        if answer.dtype in (torch.bool, np.bool_):
            return f"a bool {kind}"
        if answer.ndim == 0:
            return f"a 0-d {kind} of {answer.dtype}"
        single = " (take the number out with .item())" if np.prod(answer.shape) == 1 else ""
        return f"{'a' if kind == 'tensor' else 'an'} {kind} of shape {tuple(answer.shape)}{single}"
    if isinstance(answer, list | tuple | set | dict):
        return f"a {type(answer).__name__} of {len(answer)} item(s)"
    return f"{answer!r:.40} (a {type(answer).__name__})"


def _read(answer: object, expected: str) -> _Number | str:
    """``answer`` as a number, or a one-line message saying what was received and that ``expected`` was."""
    x = _scalar(answer)
    try:
        value = None if x is None else float(x)
    except OverflowError:
        value = math.inf
    if value is None:
        return f"expected {expected}, got {_received(answer)}."
    if not math.isfinite(value):
        return f"expected {expected}, got {value} (not a finite number)."
    whole = isinstance(x, int | np.integer)
    text = str(int(x)) if whole else np.format_float_positional(x, unique=True, trim="0")
    return _Number(float(text), text, whole)  # the decimal it prints as: np.float32(0.062) is 0.062


def _read_whole(answer: object, expected: str) -> int | str:
    """``answer`` as a whole number (300, 300.0, np.int64(300), torch.tensor(300)), or a one-line refusal."""
    number = _read(answer, expected)
    if isinstance(number, str):
        return number
    if number.value != int(number.value):
        return f"expected {expected}, got {number.text}, which is not a whole number."
    return int(number.value)


def _fits(number: _Number, truth: float, scale: float, tolerance: float | None) -> str:
    """How ``number`` read as ``truth × scale`` fits: "exact" (up to float32 error), "rounded" (to the decimals
    typed: within half a unit of the last one), "coarse" (so, but with one significant digit) or ""."""
    gap = abs(number.value - truth * scale)
    if tolerance is not None:
        return "exact" if gap <= tolerance * scale else ""
    if gap <= 1e-6 * scale * abs(truth) + 1e-12:
        return "exact"
    if gap <= 0.5 * 10.0**-number.decimals * (1 + 1e-9):
        return "rounded" if number.significant >= 2 else "coarse"
    return ""


def _readings(number: _Number, unit: str) -> list[tuple[float, str]]:
    """(scale, how it reads) of ``number``: for a share ``unit`` ("fraction" or "percent", the unit the check asks
    for) a number in [0, 1] reads in that unit first, then in the other; a number above 1 only as a percent."""
    percent, fraction = (100.0, f"{number.text} %"), (1.0, number.text)
    if not unit:
        return [fraction]
    if not 0 <= number.value <= 1:
        return [percent if number.value > 1 or unit == "percent" else fraction]
    return [fraction, percent] if unit == "fraction" else [percent, fraction]


def _judge(number: _Number, truths: list[float], unit: str = "", tolerance: float | None = None) -> _Verdict:
    """Compare ``number`` with any of ``truths`` (shares when ``unit`` is given) by the module docstring's rule;
    within ``tolerance`` (a share) instead of the digits typed when given."""
    readings, coarse = _readings(number, unit), None
    for i, (scale, shown) in enumerate(readings):
        fits = [_fits(number, truth, scale, tolerance) for truth in truths if math.isfinite(truth)]
        if "exact" in fits or "rounded" in fits:
            if i and number.whole and number.value == 1:
                return _Verdict("ambiguous", shown)
            other = f"read as {shown}" if scale == 100 else f"read as the fraction {shown} = {100 * number.value:g} %"
            return _Verdict("right", number.text, f" ({other})") if i else _Verdict("right", shown)
        if coarse is None and "coarse" in fits:
            coarse = shown
    if coarse:
        return _Verdict("ambiguous" if number.whole and number.value == 1 and unit else "coarse", coarse)
    return _Verdict("wrong", readings[0][1])


def _unclear(verdict: _Verdict, number: _Number, unit: str = "fraction") -> str:
    """The refusal of a coarse or ambiguous answer."""
    if verdict.status == "coarse":
        return f"{verdict.shown} is too coarse to judge: give at least two significant digits."
    if unit == "percent":
        ask = "write 100 for 100 %, or 1.0 for 1 %"
    else:
        ask = "write the fraction with its digits (like 0.9876) or the percent (like 98.76)"
    return (f"{number.text} is ambiguous: as a fraction it means 100 %, as a percent 1 % (and 1 may be a class "
            f"number); {ask}.")  # fmt: skip


# ----------------------------------------------------------------------------- 01 · data


def _check_share(answer, key: str, expected: float, right: str, wrong: Callable) -> bool:
    """The path every check of a share takes: the hint (with the sealed answer), reading, judging, reporting.
    ``right``: the message's start when right; ``wrong(number, shown)``: the message when wrong."""
    if answer is None:
        return _hint(key, expected)
    number = _read(answer, "a share such as 0.97 or a percent such as 97")
    if isinstance(number, str):
        return _report(False, number)
    verdict = _judge(number, [expected], "fraction")
    if verdict.status == "right":
        return _report(True, f"{right}; you gave {verdict.shown}{verdict.note}.")
    if verdict.status != "wrong":
        return _report(False, _unclear(verdict, number))
    return _report(False, wrong(number, verdict.shown))


def check_class_count(answer, labels: torch.Tensor, cls: int) -> bool:
    """01 · How many images of class ``cls`` are in the set with these ``labels``?"""
    expected = int((labels == cls).sum())
    if answer is None:
        return _hint("01-1", expected)
    value = _read_whole(answer, "a whole number of images")
    if isinstance(value, str):
        return _report(False, value)
    if value == expected:
        return _report(True, f"right: {expected} images of class {cls}.")
    return _report(
        False, f"{value} is not it; count the labels equal to {cls} (not the predictions, not the test set)."
    )


def check_pixel_mean(answer, images: torch.Tensor) -> bool:
    """01 · The mean pixel value of ``images`` after scaling uint8 to [0, 1]."""
    expected = images.double().div(255).mean().item()

    def wrong(number, shown):
        if _judge(number, [expected * 255]).status == "right":
            return f"{number.text} is on the 0-255 scale; divide by 255 first."
        return f"{shown} is not it; scale to [0, 1] first and average over every pixel."

    right = f"right: {expected:.4f}, the mean of every pixel of these images on the [0, 1] scale"
    return _check_share(answer, "01-2", expected, right, wrong)


def check_to_float(answer: Callable[[torch.Tensor], torch.Tensor] | None) -> bool:
    """01 · A function turning a uint8 batch (N, C, H, W) into float32 in [0, 1] with the same shape."""
    if answer is None:
        return _hint("01-3")
    if not callable(answer):
        return _report(False, "the answer should be a function that takes a uint8 batch.")
    x = torch.tensor([0, 1, 128, 255], dtype=torch.uint8).repeat(2, 1, 4, 1)
    try:
        y = answer(x.clone())
    except Exception as err:  # a student's function may fail in any way
        return _report(False, f"your function raised {type(err).__name__}: {err}")
    if not isinstance(y, torch.Tensor):
        return _report(False, f"your function returned {type(y).__name__}, not a tensor.")
    if y.shape != x.shape:
        return _report(False, f"the shape changed from {tuple(x.shape)} to {tuple(y.shape)}.")
    if y.dtype != torch.float32:
        return _report(False, f"the dtype is {y.dtype}; expected torch.float32.")
    if not torch.allclose(y, x.float() / 255):
        return _report(False, "the values are off: 0 must map to 0.0 and 255 to 1.0.")
    return _report(True, "right: float32, same shape, 0 → 0.0 and 255 → 1.0.")


# ----------------------------------------------------------------------------- 02 · triggers


def check_poison_count(answer, n: int, rate: float) -> bool:
    """02 · How many of ``n`` training images does a poisoning ``rate`` poison? (floor(rate × n))"""
    expected = math.floor(rate * n)
    if answer is None:
        return _hint("02-1", expected)
    value = _read_whole(answer, "a whole number of images")
    if isinstance(value, str):
        return _report(False, value)
    if value == expected:
        return _report(True, f"right: {expected} of {n} images ({100 * rate:g} %).")
    if value == math.ceil(rate * n) or value == round(rate * n):
        return _report(False, f"{value} is rounded the wrong way; the poisoning takes floor(rate × n).")
    return _report(False, f"{value} is not it; multiply the rate by the number of training images.")


def check_changed_pixels(answer, clean: torch.Tensor, triggered: torch.Tensor) -> bool:
    """02 · How many pixels differ between one clean image and its triggered copy?"""
    expected = int((clean != triggered).sum())
    if answer is None:
        return _hint("02-2", expected)
    value = _read_whole(answer, "a whole number of pixels")
    if isinstance(value, str):
        return _report(False, value)
    if value == expected:
        return _report(True, f"right: {expected} pixels change — the rest of the image is untouched.")
    changed = clean != triggered
    from_black = int((changed & (clean == 0)).sum())
    if value == from_black < expected:
        return _report(False, f"{value} counts only the black pixels under the trigger; the digit's "
                       f"{expected - from_black} grey stroke pixel(s) there change too.")  # fmt: skip
    kept = int(((clean == triggered) & (triggered != 0)).sum())
    return _report(False, f"{value} is not it; count every pixel where the two images differ"
                   + (" (pixels that already had the trigger's value do not change)." if kept else "."))  # fmt: skip


def check_top_left_stamp(answer, images: torch.Tensor, trigger: torch.Tensor) -> bool:
    """02 · ``images`` with ``trigger`` stamped in the top-left corner."""
    if answer is None:
        return _hint("02-3")
    from badnets_utils.core.triggers import apply_trigger

    if not isinstance(answer, torch.Tensor):
        return _report(False, f"expected a tensor of images, got {type(answer).__name__}.")
    expected = apply_trigger(images, trigger, position="top-left")
    if answer.shape != expected.shape:
        return _report(False, f"shape {tuple(answer.shape)}; expected {tuple(expected.shape)}.")
    if torch.equal(answer.to(expected.dtype), expected):
        return _report(True, "right: the patch now sits in the top-left corner.")
    if torch.equal(answer.to(expected.dtype), apply_trigger(images, trigger)):
        return _report(False, "that is the default bottom-right corner; ask for the top-left one.")
    return _report(False, "not the expected images; stamp the same trigger, only in the top-left corner.")


# ----------------------------------------------------------------------------- 03 · training


def check_asr(answer, preds: torch.Tensor, target: int) -> bool:
    """03 · The ASR from predictions on triggered non-target test images: the fraction equal to ``target``."""
    preds = torch.as_tensor(preds)
    expected = int((preds == target).sum()) / max(preds.numel(), 1)
    return _check_share(answer, "03-1", expected, f"right: ASR = {expected:.4f} ({100 * expected:.2f} %)",
                        lambda number, shown: f"{shown} is not it; count predictions equal to the target {target}, "
                        "over all of them.")  # fmt: skip


def check_missed_triggers(answer, attack_cm: torch.Tensor, target: int) -> bool:
    """03 · How many triggered test images were *not* classified as the target (the backdoor's misses)?"""
    expected = int(attack_cm.sum() - attack_cm[:, target].sum())
    if answer is None:
        return _hint("03-2", expected)
    value = _read_whole(answer, "a whole number of images")
    if isinstance(value, str):
        return _report(False, value)
    if value == expected:
        return _report(True, f"right: the trigger failed on {expected} of {int(attack_cm.sum())} images.")
    if value == int(attack_cm[:, target].sum()):
        return _report(False, "that is the number of images the backdoor *did* send to the target.")
    return _report(False, f"{value} is not it; columns are predictions — look at column {target}.")


# ----------------------------------------------------------------------------- 04 · sweep


def _says_never(answer: object) -> bool:
    """The sweep exercises' answer for "no x reaches the threshold": "never" or infinity."""
    if isinstance(answer, str):
        return answer.strip().strip("'\"").lower() == "never"
    x = _scalar(answer)
    return x is not None and math.isinf(x) and x > 0


def _reaching(xs, asr, threshold: float) -> list[float]:
    """The xs whose ASR reaches ``threshold``, smallest first."""
    return [x for x, a in sorted(zip((float(x) for x in xs), (float(a) for a in asr), strict=True)) if a >= threshold]


def _check_first_reaching(answer, xs, asr, threshold: float, what: str, key: str) -> bool:
    """Shared by the sweep exercises: the smallest x whose ASR reaches ``threshold``.

    ``MESSAGES[key]`` holds 'right', 'below' and 'above' templates with {x} (expected), {v} (the answer) and {t}.
    """
    reached = _reaching(xs, asr, threshold)
    if not reached:
        return _report(_says_never(answer), f"no {what} of this run reaches an ASR of {threshold}: answer 'never'.")
    if _says_never(answer):
        return _report(False, f"this run does reach an ASR of {threshold}: find the smallest {what} that does.")
    value = _read_whole(answer, f"a whole {what}")
    if isinstance(value, str):
        return _report(False, value)
    outcome = "right" if value == reached[0] else "below" if value < reached[0] else "above"
    return _report(outcome == "right", MESSAGES[key][outcome].format(x=reached[0], v=value, t=threshold))


def check_min_poisons(answer, counts, asr, threshold: float = 0.9) -> bool:
    """04 · The smallest number of poisoned images whose (mean) ASR reaches ``threshold`` in the sweep."""
    if answer is None:
        return _hint("04-1")
    return _check_first_reaching(answer, counts, asr, threshold, "number of images", "04-1")


def check_rate_for_count(answer, count: int, n: int) -> bool:
    """04 · A poisoning rate that poisons exactly ``count`` of ``n`` images (as a fraction, or a percent)."""
    if answer is None:
        return _hint("04-2")
    number = _read(answer, "a rate between 0 and 1 (or a percent)")
    if isinstance(number, str) or not 0 <= number.value <= 100:
        return _report(False, number if isinstance(number, str) else
                       f"expected a rate between 0 and 1 (or a percent), got {number.text}.")  # fmt: skip
    readings = _readings(number, "fraction")
    images = [Fraction(number.text) / Fraction(scale) * n for scale, _ in readings]  # the rate as typed, exactly
    for i, ((_, shown), exact) in enumerate(zip(readings, images, strict=True)):
        if math.floor(exact) != count:
            continue
        if i and number.whole:  # 1 read as 1 %: never the other way (module docstring)
            return _report(False, _unclear(_Verdict("ambiguous", shown), number))
        note = f" (read as {shown})" if i else ""
        return _report(True, f"right: a rate of {number.text if i else shown} poisons {count} of {n:,} images{note}.")
    shown, exact = readings[0][1], float(images[0])
    got = math.floor(images[0])
    if got < count:
        return _report(False, f"{shown} × {n:,} = {exact:.6g} images, and the poisoning rounds down: "
                       f"⌊{exact:.6g}⌋ = {got}. The rate must be at least {count}/{n:,} = {count / n:.6g}."
                       )  # fmt: skip
    return _report(False, f"a rate of {shown} poisons {got} images, not {count}.")


# ----------------------------------------------------------------------------- 05 · trigger painter


def check_trigger_offset(answer, image_size: int, trigger_size: int, position: str) -> bool:
    """05 · The (row, col) of the top-left pixel of a ``trigger_size`` trigger placed at ``position``."""
    if answer is None:
        return _hint("05-1")
    from badnets_utils.core.triggers import trigger_position

    expected = trigger_position((image_size, image_size), (trigger_size, trigger_size), position)
    try:
        value = tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        return _report(False, f"expected a (row, col) pair of whole numbers, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: the trigger's top-left pixel is at row {expected[0]}, column {expected[1]}.")
    if value == (expected[1], expected[0]):
        return _report(False, f"{value} has row and column swapped: rows count down, columns across.")
    if value == tuple(v + trigger_size for v in expected):
        return _report(False, f"{value} is one past the trigger's far corner; index rows from 0.")
    return _report(False, f"{value} is not it; the whole {trigger_size}×{trigger_size} trigger must fit inside.")


def check_plus_trigger(answer, size: int = 5) -> bool:
    """05 · A ``size``×``size`` plus sign: white (255) middle row and middle column, the rest black."""
    if answer is None:
        return _hint("05-2")
    expected = torch.zeros(size, size, dtype=torch.uint8)
    expected[size // 2, :] = 255
    expected[:, size // 2] = 255
    try:
        value = torch.as_tensor(np.asarray(answer) if not isinstance(answer, torch.Tensor) else answer)
    except (TypeError, ValueError, RuntimeError):
        return _report(False, f"expected a tensor of shape (1, {size}, {size}), got {type(answer).__name__}.")
    if value.dim() == 3 and value.shape[0] == 1:
        value = value[0]
    if tuple(value.shape) != (size, size):
        return _report(False, f"expected shape (1, {size}, {size}), got {tuple(value.shape)}.")
    if value.dtype == torch.bool or value.is_complex():
        return _report(False, f"a trigger holds pixel values 0..255, got a {value.dtype} tensor.")
    dtype, value = value.dtype, value.double()
    if torch.equal(value, expected.double()):
        note = "" if dtype == torch.uint8 else f" (your {dtype} values are right; a trigger is stored as uint8)"
        return _report(True, f"right: a {size}×{size} plus sign of {int((expected > 0).sum())} white pixels{note}.")
    if value.max() <= 1 and torch.equal(value * 255, expected.double()):
        return _report(False, "the right shape on the 0..1 scale; a trigger's white is 255, not 1.")
    wrong = int((value != expected.double()).sum())
    return _report(False, f"{wrong} pixel(s) differ from a plus sign: the middle row and column white, the rest 0.")


def check_blended_pixel(answer, background: int, value: int, alpha: float) -> bool:
    """05 · The pixel an image ``background`` becomes under a trigger pixel ``value`` blended with ``alpha``."""
    from badnets_utils.core.triggers import apply_trigger

    image = torch.full((1, 1, 1, 1), background, dtype=torch.uint8)
    expected = int(apply_trigger(image, torch.full((1, 1, 1), value, dtype=torch.uint8), "top-left", alpha).item())
    if answer is None:
        return _hint("05-3", expected)
    exact = (1 - alpha) * background + alpha * value
    number = _read(answer, "a pixel value from 0 to 255")
    if isinstance(number, str):
        return _report(False, number)
    if number.value == expected:
        return _report(True, f"right: {expected} (exactly {exact:g}, rounded to uint8).")
    if _judge(number, [exact]).status == "right":
        return _report(True, f"right: {exact:g}; stored as a uint8 it becomes {expected}.")
    if _judge(number, [alpha * background + (1 - alpha) * value]).status == "right":
        return _report(False, f"{number.text} swaps the weights: alpha weighs the trigger, 1 - alpha the image.")
    return _report(False, f"{number.text} is not it; alpha = {alpha:g} weighs the trigger, 1 - alpha the image.")


# ----------------------------------------------------------------------------- 06 · attack variants


def check_all_to_all_label(answer, label: int, num_classes: int = 10) -> bool:
    """06 · The label an all-to-all attacker wants for a triggered image of class ``label``."""
    expected = (int(label) + 1) % num_classes
    if answer is None:
        return _hint("06-1", expected)
    value = _read_whole(answer, "a class number")
    if isinstance(value, str):
        return _report(False, value)
    if value == expected:
        return _report(True, f"right: a triggered {label} should be read as {expected}.")
    if value == label + 1:
        return _report(False, f"{value} is not a class: the shift wraps around (mod {num_classes}).")
    return _report(False, f"{value} is not it; the attacker's label is (y + 1) mod {num_classes}.")


def check_smallest_trigger(answer, sizes, asr, threshold: float = 0.9) -> bool:
    """06 · The smallest trigger side (pixels) of the size ablation whose ASR reaches ``threshold``."""
    if answer is None:
        return _hint("06-2", *_reaching(sizes, asr, threshold)[:1])
    return _check_first_reaching(answer, sizes, asr, threshold, "size in pixels", "06-2")


# ----------------------------------------------------------------------------- 07 · defences


def check_flag_precision(answer, flagged: torch.Tensor, poison_indices: torch.Tensor) -> bool:
    """07 · The precision of a defence's ``flagged`` indices: the share of them that are really poisoned."""
    flagged = torch.as_tensor(flagged).flatten().long().unique()
    hits = int(torch.isin(flagged, torch.as_tensor(poison_indices).long()).sum())
    expected = hits / max(len(flagged), 1)

    def wrong(number, shown):
        recall = hits / max(len(torch.as_tensor(poison_indices)), 1)
        if _judge(number, [recall], "fraction").status == "right":
            return f"{shown} is the recall (hits / poisoned); precision divides by the flagged count."
        if number.value == hits:
            return f"{number.text} is the number of hits; divide it by the {len(flagged)} flagged samples."
        return f"{shown} is not it; precision = flagged and poisoned / flagged."

    right = f"right: {hits} of the {len(flagged)} flagged samples are poisoned ({expected:.1%})"
    return _check_share(answer, "07-1", expected, right, wrong)


def check_removed_poisons(answer, removed: torch.Tensor, poison_indices: torch.Tensor) -> bool:
    """07 · How many of the samples the spectral filter ``removed`` are poisoned."""
    expected = int(torch.isin(torch.as_tensor(removed).long(), torch.as_tensor(poison_indices).long()).sum())
    if answer is None:
        return _hint("07-2", expected)
    value = _read_whole(answer, "a count of samples")
    if isinstance(value, str):
        return _report(False, value)
    if value == expected:
        return _report(True, f"right: {expected} of the {len(removed)} removed samples were poisoned.")
    return _report(False, f"{value} is not it; count the removed indices that are also poisoned.")


def _textbook_anomaly_index(norms: torch.Tensor, cls: int) -> float:
    """The anomaly index with numpy's median (the mean of the two middle values of an even count)."""
    v = norms.double().numpy()
    med = np.median(v)
    mad = np.median(np.abs(v - med))
    return float((med - v[cls]) / (1.4826 * mad)) if mad > 0 else float("inf")


def check_anomaly_index(answer, norms: torch.Tensor, cls: int) -> bool:
    """07 · Neural Cleanse's anomaly index of class ``cls``: (median − norm) / (1.4826 × MAD)."""
    from badnets_utils.defences.cleanse import anomaly_index

    norms = torch.as_tensor(norms, dtype=torch.float64)
    expected = float(anomaly_index(norms.float())[cls])  # torch's median: the lower of the two middle values
    if answer is None:
        return _hint("07-3", expected)
    textbook = _textbook_anomaly_index(norms, cls)  # numpy's median: the mean of the two middle values
    number = _read(answer, "a number (the anomaly index)")
    if isinstance(number, str):
        return _report(False, number)
    verdict = _judge(number, [expected, textbook])
    if verdict.status == "right":
        return _report(True, f"right: class {cls}'s anomaly index is {number.value:.2f} (flagged when above 2). "
                       f"torch's median (lower middle value) gives {expected:.2f}, numpy's (mean of the two "
                       f"middle values) {textbook:.2f}.")  # fmt: skip
    if verdict.status != "wrong":
        return _report(False, _unclear(verdict, number, ""))
    if _judge(number, [-expected, -textbook]).status == "right":
        return _report(False, "right size, wrong sign: small masks are the suspicious ones, so use median − norm.")
    if _judge(number, [1.4826 * expected, 1.4826 * textbook]).status == "right":
        return _report(False, "almost: scale the MAD by 1.4826 (so it estimates a standard deviation).")
    return _report(False, f"{number.text} is not it; divide (median − norm) by 1.4826 × the median absolute "
                   "deviation.")  # fmt: skip


# ----------------------------------------------------------------------------- concept and prediction questions
# Their right letters and explanations are sealed in exercise_texts.json (see "the texts" above).


def _explanation(key: str, letter: str) -> str:
    return _xor(base64.b64decode(CHOICES[key][1][letter]), key, letter).decode()


def _is_right(key: str, letter: str) -> bool:
    return hmac.compare_digest(_digest(key, letter), CHOICES[key][0])


def check_choice(answer, key: str) -> bool:
    """A multiple-choice concept or prediction question ``key``; ``answer`` is a letter ("b", "(b)", "B)")."""
    if key not in CHOICES:
        raise KeyError(f"no multiple-choice question {key!r}; known: {', '.join(sorted(CHOICES))}")
    letters = CHOICES[key][1]
    if answer is None:
        print(
            f"✏️  Not answered yet (answer is None): set answer to one of {', '.join(repr(k) for k in letters)}; "
            "decide first, then run the cell to see why."
        )
        return False
    letter = str(answer).strip().strip("()").strip(" .)").lower()
    if letter not in letters:
        return _report(False, f"answer with one of the letters {', '.join(repr(k) for k in letters)}, got {answer!r}.")
    right = _is_right(key, letter)
    return _report(right, ("right: " if right else f"not ({letter}): ") + _explanation(key, letter))


# ----------------------------------------------------------------------------- 08 · reproducing the paper


def check_count_prediction(answer, counts, backdoor_error, count: int = 25, tolerance: float = 15.0) -> bool:
    """08 · A prediction: the backdoor error (%) with ``count`` poisoned copies, judged against part 3's curve
    (interpolated between the measured counts); within ``tolerance`` points counts as right."""
    if answer is None:
        return _hint("08-1")
    number = _read(answer, "a percentage between 0 and 100")
    if isinstance(number, str) or not 0 <= number.value <= 100:
        return _report(False, number if isinstance(number, str) else
                       f"give a percentage between 0 and 100, got {number.text}.")  # fmt: skip
    measured = float(np.interp(count, list(counts), list(backdoor_error)))
    verdict = _judge(number, [measured / 100], "percent", tolerance / 100)
    if verdict.status == "ambiguous":
        return _report(False, _unclear(verdict, number, "percent"))
    ok = verdict.status == "right"
    return _report(ok, f"the curve gives about {measured:.0f} % at {count} copies; you said {verdict.shown}"
                       f"{verdict.note}"
                       + (" — close enough." if ok else ": look again at how fast the curve falls."))  # fmt: skip


def check_top_channel(answer, difference: torch.Tensor) -> bool:
    """08 · The index of the last-convolution channel whose activation rises most with the trigger."""
    if answer is None:
        return _hint("08-2", int(torch.as_tensor(difference).argmax()))
    value = _read_whole(answer, f"a channel index from 0 to {len(difference) - 1}")
    if isinstance(value, str) or not 0 <= value < len(difference):
        return _report(False, value if isinstance(value, str) else
                       f"expected a channel index from 0 to {len(difference) - 1}, got {value}.")  # fmt: skip
    best = int(difference.argmax())
    if value == best:
        return _report(True, f"right: channel {best} rises by {float(difference[best]):.2f}, the most of all 32.")
    return _report(False, f"channel {value} rises by {float(difference[value]):.2f}; another rises more.")


# ----------------------------------------------------------------------------- every check has its texts


def _missing_texts(source: str, hints: dict, messages: dict) -> str | None:
    """One line naming the first exercise whose texts a ``check_…`` function of ``source`` needs but ``hints`` (for
    ``_hint(key…)`` or ``_check_share(answer, key…)``, the calls grading.py reads keys from) or ``messages`` (for
    ``_check_first_reaching(…, key)``) lack; None when none is missing."""
    for name, body in re.findall(r"\ndef (check_\w+)\((.*?)(?=\ndef |\Z)", source, re.S):
        for key in HINT_CALL.findall(body):
            if key not in hints:
                return f"{TEXTS.name}: no entry {key!r}: exercises.{name} shows its hints"
        for key in re.findall(r'_check_first_reaching\([^)]*"([^"]+)"\)', body):
            if key not in messages:
                return f'{TEXTS.name}: entry {key!r}: no "messages", which exercises.{name} reports with'
    return None


if _missing := _missing_texts(Path(__file__).read_text(encoding="utf-8"), HINTS, MESSAGES):
    raise ExerciseTextsError(_missing)
