"""Self-checks for the notebooks' "Try it yourself" exercises.

Each check takes the student's ``answer`` (plus whatever it needs to know the right one), prints
✅ or ❌ with a short explanation and returns True or False. An unanswered exercise (``answer is
None``) prints a hint and returns False without raising, so a notebook runs top to bottom before
anyone has solved anything.

Hints are graduated and never give the solution away: an unanswered check prints the first hint (a conceptual
nudge); ``exercises.hint("03-1", level=2)`` prints the second (which tool or API to use). The solution itself is
only in the notebook's hidden solution cell (tagged ``solution``; the student edition leaves it out).

Concept and prediction questions ("what will the ASR be if…?") are multiple choice: ``check_choice(answer,
"03-3")`` accepts ``"b"``, ``"B"``, ``"(b)"`` or ``"b)"``.

Conventions for new checks: name them ``check_<what>``, register the exercise's two hints in ``HINTS`` under
``"<notebook>-<exercise>"``, start with ``if answer is None: return _hint(key)``, finish with ``_report``. In a
notebook, end the check line with ``;`` so that nothing but the message is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch


def _report(ok: bool, message: str) -> bool:
    """Print ✅/❌ and ``message``; return ``ok``."""
    ok = bool(ok)
    print(("✅ " if ok else "❌ ") + message)
    return ok


# Two hints per exercise: 1 = a conceptual nudge, 2 = the tool or API to use. Never the solution code.
HINTS: dict[str, tuple[str, str]] = {
    "01-1": (
        "every image has one label; the labels of the training split are a tensor you can compare with a number.",
        "comparing a tensor with a number gives a boolean tensor; `.sum()` counts its True values "
        "and `.item()` turns a 0-d tensor into a Python number.",
    ),
    "01-2": (
        "the images are stored as whole numbers 0..255; the model works on values in [0, 1].",
        "`.float()` converts the uint8 tensor, a division rescales it, `.mean()` averages over every pixel.",
    ),
    "01-3": (
        "the function must change the dtype and the scale, not the shape.",
        "use `.float()` (float32) and divide by the largest uint8 value.",
    ),
    "02-1": (
        "a rate is a fraction of the training set, and the poisoning never rounds up.",
        "`poison_count(n, rate)` from badnets_utils computes it, or use `math.floor`.",
    ),
    "02-2": (
        "compare the clean and the triggered image pixel by pixel; white pixels that were already white do not change.",
        "`!=` on two tensors of the same shape gives a boolean tensor; count its True values with `.sum()`.",
    ),
    "02-3": (
        "the trigger and the images stay the same; only the place where the trigger goes changes.",
        "`apply_trigger` takes a `position` argument: a corner name or a (row, col) pair.",
    ),
    "03-1": (
        "the ASR is the share of triggered non-target images that the model sends to the target class.",
        "compare `preds` with the target class; the mean of a boolean tensor (after `.float()`) is a share.",
    ),
    "03-2": (
        "in this confusion matrix the columns are the model's predictions; the backdoor fired where the "
        "prediction is the target.",
        "`cm.sum()` counts every triggered image; the target's column "
        "(`cm[:, TARGET]`) counts those the backdoor sent to it.",
    ),
    "04-1": (
        "go through the sweep from few to many poisoned images and stop at the first mean ASR that "
        "reaches the threshold.",
        "each entry of `summary` has 'poison_count' and 'asr_mean'; a loop or `next(...)` over it finds the first one.",
    ),
    "04-2": (
        "which fraction of 60,000 is 50? Remember that the count is rounded down.",
        "a division gives the rate; `poison_count(60_000, rate)` tells you how many images it poisons.",
    ),
    "05-1": (
        "the whole trigger must fit inside the image: its last row is the image's last row.",
        "rows and columns count from 0; check your answer with `canvas.resize(...)`, `canvas.position` "
        "and `canvas.offset`.",
    ),
    "05-2": (
        "a plus sign is the middle row and the middle column of the grid, nothing else.",
        "paint with the canvas's `clear()` and `set_pixel(row, col)` methods (or click); the canvas's `trigger` "
        "attribute holds the painted uint8 tensor.",
    ),
    "05-3": (
        "blending mixes the image and the trigger; alpha is the trigger's share.",
        "the formula is (1 − alpha) × image + alpha × trigger, rounded to a whole number.",
    ),
    "06-1": (
        "all-to-all shifts every class to the next one, and there is no class after 9.",
        "the attacker's label is (y + 1) modulo the number of classes (`%` in Python).",
    ),
    "06-2": (
        "read the size ablation from small to large triggers; stop at the first ASR that reaches 0.9.",
        "`by_size` maps a side length to its row; each row has an 'asr'.",
    ),
    "07-1": (
        "precision asks: of everything the defence flagged, how much was really poisoned?",
        "`torch.isin(flagged, poison_indices)` marks the flagged samples that are poisoned; average it.",
    ),
    "07-2": (
        "count the removed samples that are also in the list of poisoned samples.",
        "`torch.isin(removed, poison_indices)` gives a boolean tensor; count its True values.",
    ),
    "07-3": (
        "the anomaly index measures how far a class's mask norm lies below the others', in robust standard deviations.",
        "you need the median of the norms, the median absolute deviation (MAD) "
        "around it and the constant 1.4826; `torch.median` or `numpy.median` both work.",
    ),
    "08-1": (
        "think of the two ends of part 3's curve: no copies (the trigger means nothing) and about 1,000 copies "
        "(the rule is learnt). Where does 25 fall between them?",
        "the printed table of part 3 lists the backdoor error for each number of copies; 25 lies between two rows.",
    ),
    "08-2": (
        "the channel you want is the BadNet's tallest bar in part 4's chart.",
        "the bars are `responses['BadNet']['difference']`, a tensor of 32 values; `.argmax()` finds the largest.",
    ),
}
MORE = '  (More help: exercises.hint("{key}", level=2); the solution is in the hidden cell below.)'


def hint(key: str, level: int = 1) -> None:
    """Print the hints of exercise ``key`` ("03-1") up to ``level`` (1: a nudge, 2: which tool to use)."""
    if key not in HINTS:
        raise KeyError(f"no exercise {key!r}; known: {', '.join(sorted(HINTS))}")
    if level not in (1, 2):
        raise ValueError("level is 1 (a nudge) or 2 (which tool to use); the solution is in the solution cell")
    for i in range(level):
        print(f"💡 Hint {i + 1}: {HINTS[key][i]}")


def _hint(key: str) -> bool:
    """An exercise not answered yet: print its first hint (and how to get the second), return False."""
    print(f"✏️  Not answered yet (answer is None). Hint: {HINTS[key][0]}" + MORE.format(key=key))
    return False


def _close(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= tol


def _number(answer) -> float | None:
    """The answer as a float, or None when it is not a number."""
    if isinstance(answer, torch.Tensor | np.ndarray | np.generic):
        if answer.size != 1 if not isinstance(answer, torch.Tensor) else answer.numel() != 1:
            return None
        answer = answer.item()
    if isinstance(answer, bool):
        return None
    try:
        return float(answer)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- 01 · data


def check_class_count(answer, labels: torch.Tensor, cls: int) -> bool:
    """01 · How many images of class ``cls`` are in the set with these ``labels``?"""
    if answer is None:
        return _hint("01-1")
    expected = int((labels == cls).sum())
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a whole number, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: {expected} images of class {cls}.")
    return _report(
        False, f"{value:g} is not it; count the labels equal to {cls} (not the predictions, not the test set)."
    )


def check_pixel_mean(answer, images: torch.Tensor) -> bool:
    """01 · The mean pixel value of ``images`` after scaling uint8 to [0, 1]."""
    if answer is None:
        return _hint("01-2")
    expected = images.float().div(255).mean().item()
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number, got {answer!r}.")
    if _close(value, expected, 1e-3):
        return _report(True, f"right: {expected:.4f}. This is the mean the model subtracts before its first layer.")
    if _close(value, expected * 255, 0.3):
        return _report(False, f"{value:.2f} is on the 0-255 scale; divide by 255 first.")
    return _report(False, f"{value:.4f} is not it; scale to [0, 1] first and average over every pixel.")


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
    if answer is None:
        return _hint("02-1")
    expected = math.floor(rate * n)
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a whole number, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: {expected} of {n} images ({100 * rate:g} %).")
    if value == math.ceil(rate * n) or value == round(rate * n):
        return _report(False, f"{value:g} is rounded the wrong way; the poisoning takes floor(rate × n).")
    return _report(False, f"{value:g} is not it; multiply the rate by the number of training images.")


def check_changed_pixels(answer, clean: torch.Tensor, triggered: torch.Tensor) -> bool:
    """02 · How many pixels differ between one clean image and its triggered copy?"""
    if answer is None:
        return _hint("02-2")
    expected = int((clean != triggered).sum())
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a whole number, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: {expected} pixels change — the rest of the image is untouched.")
    return _report(
        False,
        f"{value:g} is not it; pixels of the patch that were already white do not change, count only the "
        "pixels that differ.",
    )


def check_top_left_stamp(answer, images: torch.Tensor, trigger: torch.Tensor) -> bool:
    """02 · ``images`` with ``trigger`` stamped in the top-left corner."""
    if answer is None:
        return _hint("02-3")
    from .triggers import apply_trigger

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
    if answer is None:
        return _hint("03-1")
    expected = (preds == target).float().mean().item()
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number, got {answer!r}.")
    if _close(value, expected, 1e-4):
        return _report(True, f"right: ASR = {expected:.4f}.")
    if _close(value, 100 * expected, 1e-2) and value > 1:
        return _report(True, f"right: ASR = {value:.2f} % (as a fraction: {expected:.4f}).")
    return _report(False, f"{value:.4f} is not it; count predictions equal to the target {target}, over all of them.")


def check_missed_triggers(answer, attack_cm: torch.Tensor, target: int) -> bool:
    """03 · How many triggered test images were *not* classified as the target (the backdoor's misses)?"""
    if answer is None:
        return _hint("03-2")
    expected = int(attack_cm.sum() - attack_cm[:, target].sum())
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a whole number, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: the trigger failed on {expected} of {int(attack_cm.sum())} images.")
    if value == int(attack_cm[:, target].sum()):
        return _report(False, "that is the number of images the backdoor *did* send to the target.")
    return _report(False, f"{value:g} is not it; columns are predictions — look at column {target}.")


# ----------------------------------------------------------------------------- 04 · sweep


def _check_first_reaching(answer, xs, asr, threshold: float, what: str, messages: dict[str, str]) -> bool:
    """Shared by the sweep exercises: the smallest x whose ASR reaches ``threshold``.

    ``messages`` holds 'right', 'below' and 'above' templates with {x} (expected) and {v} (the answer).
    """
    pairs = sorted(zip((float(x) for x in xs), (float(a) for a in asr), strict=True))
    reached = [x for x, a in pairs if a >= threshold]
    value = _number(answer)
    if not reached:
        ok = answer == "never" or (value is not None and math.isinf(value))
        return _report(ok, f"no {what} of this run reaches an ASR of {threshold}: answer 'never'.")
    if value is None:
        return _report(False, f"expected a {what}, got {answer!r}.")
    key = "right" if value == reached[0] else "below" if value < reached[0] else "above"
    return _report(key == "right", messages[key].format(x=reached[0], v=value, t=threshold))


def check_min_poisons(answer, counts, asr, threshold: float = 0.9) -> bool:
    """04 · The smallest number of poisoned images whose (mean) ASR reaches ``threshold`` in the sweep."""
    if answer is None:
        return _hint("04-1")
    return _check_first_reaching(answer, counts, asr, threshold, "number of images", {
        "right": "right: {x:g} poisoned images are enough for an ASR ≥ {t}.",
        "below": "with {v:g} images the sweep's ASR stays below {t}.",
        "above": "{v:g} works, but fewer images already reach {t}.",
    })  # fmt: skip


def check_rate_for_count(answer, count: int, n: int) -> bool:
    """04 · A poisoning rate that poisons exactly ``count`` of ``n`` images."""
    if answer is None:
        return _hint("04-2")
    from .poison import poison_count

    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return _report(False, f"expected a rate between 0 and 1, got {answer!r}.")
    got = poison_count(n, value)
    if got == count:
        return _report(True, f"right: a rate of {value:.6g} poisons {count} of {n} images.")
    if got == count - 1:
        return _report(
            False,
            f"{value:.6g} × {n} rounds down to {got}; floating point can bite — nudge the rate up a hair.",
        )
    return _report(False, f"a rate of {value:.6g} poisons {got} images, not {count}.")


# ----------------------------------------------------------------------------- 05 · trigger painter


def check_trigger_offset(answer, image_size: int, trigger_size: int, position: str) -> bool:
    """05 · The (row, col) of the top-left pixel of a ``trigger_size`` trigger placed at ``position``."""
    if answer is None:
        return _hint("05-1")
    from .triggers import trigger_position

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
        value = torch.as_tensor(answer)
    except (TypeError, ValueError, RuntimeError):
        return _report(False, f"expected a tensor of shape (1, {size}, {size}), got {type(answer).__name__}.")
    if value.dim() == 3 and value.shape[0] == 1:
        value = value[0]
    if tuple(value.shape) != (size, size):
        return _report(False, f"expected shape (1, {size}, {size}), got {tuple(torch.as_tensor(answer).shape)}.")
    if value.dtype != torch.uint8:
        return _report(False, f"a trigger is uint8 (0..255), got {value.dtype}.")
    if torch.equal(value, expected):
        return _report(True, f"right: a {size}×{size} plus sign of {int((expected > 0).sum())} white pixels.")
    wrong = int((value != expected).sum())
    return _report(False, f"{wrong} pixel(s) differ from a plus sign: the middle row and column white, the rest 0.")


def check_blended_pixel(answer, background: int, value: int, alpha: float) -> bool:
    """05 · The pixel an image ``background`` becomes under a trigger pixel ``value`` blended with ``alpha``."""
    if answer is None:
        return _hint("05-3")
    from .triggers import apply_trigger

    image = torch.full((1, 1, 1, 1), background, dtype=torch.uint8)
    expected = int(apply_trigger(image, torch.full((1, 1, 1), value, dtype=torch.uint8), "top-left", alpha).item())
    exact = (1 - alpha) * background + alpha * value
    got = _number(answer)
    if got is None:
        return _report(False, f"expected a number, got {answer!r}.")
    if got == expected:
        return _report(True, f"right: {expected} (exactly {exact:g}, rounded to uint8).")
    if abs(got - exact) <= 0.5:
        return _report(True, f"right: {exact:g}; stored as a uint8 it becomes {expected}.")
    if _close(got, alpha * background + (1 - alpha) * value, 0.5):
        return _report(False, f"{got:g} swaps the weights: alpha weighs the trigger, 1 - alpha the image.")
    return _report(False, f"{got:g} is not it; alpha = {alpha:g} weighs the trigger, 1 - alpha the image.")


# ----------------------------------------------------------------------------- 06 · attack variants


def check_all_to_all_label(answer, label: int, num_classes: int = 10) -> bool:
    """06 · The label an all-to-all attacker wants for a triggered image of class ``label``."""
    if answer is None:
        return _hint("06-1")
    expected = (int(label) + 1) % num_classes
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a class number, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: a triggered {label} should be read as {expected}.")
    if value == label + 1:
        return _report(False, f"{value:g} is not a class: the shift wraps around (mod {num_classes}).")
    return _report(False, f"{value:g} is not it; the attacker's label is (y + 1) mod {num_classes}.")


def check_smallest_trigger(answer, sizes, asr, threshold: float = 0.9) -> bool:
    """06 · The smallest trigger side (pixels) of the size ablation whose ASR reaches ``threshold``."""
    if answer is None:
        return _hint("06-2")
    return _check_first_reaching(answer, sizes, asr, threshold, "size in pixels", {
        "right": "right: a {x:g}×{x:g} square is the smallest that reaches {t}.",
        "below": "a {v:g}-pixel trigger stays below an ASR of {t} in this run.",
        "above": "{v:g} works, but a smaller trigger already reaches {t}.",
    })  # fmt: skip


# ----------------------------------------------------------------------------- 07 · defences


def check_flag_precision(answer, flagged: torch.Tensor, poison_indices: torch.Tensor) -> bool:
    """07 · The precision of a defence's ``flagged`` indices: the share of them that are really poisoned."""
    if answer is None:
        return _hint("07-1")
    flagged = torch.as_tensor(flagged).flatten().long().unique()
    hits = int(torch.isin(flagged, torch.as_tensor(poison_indices).long()).sum())
    expected = hits / max(len(flagged), 1)
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number between 0 and 1, got {answer!r}.")
    if _close(value, expected, 1e-3) or (value > 1 and _close(value, 100 * expected, 0.1)):
        return _report(True, f"right: {hits} of the {len(flagged)} flagged samples are poisoned ({expected:.1%}).")
    recall = hits / max(len(torch.as_tensor(poison_indices)), 1)
    if _close(value, recall, 1e-3):
        return _report(False, f"{value:.3f} is the recall (hits / poisoned); precision divides by the flagged count.")
    if _close(value, hits, 0.5):
        return _report(False, f"{value:g} is the number of hits; divide it by the {len(flagged)} flagged samples.")
    return _report(False, f"{value:.3f} is not it; precision = flagged and poisoned / flagged.")


def check_removed_poisons(answer, removed: torch.Tensor, poison_indices: torch.Tensor) -> bool:
    """07 · How many of the samples the spectral filter ``removed`` are poisoned."""
    if answer is None:
        return _hint("07-2")
    expected = int(torch.isin(torch.as_tensor(removed).long(), torch.as_tensor(poison_indices).long()).sum())
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a count, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: {expected} of the {len(removed)} removed samples were poisoned.")
    return _report(False, f"{value:g} is not it; count the removed indices that are also poisoned.")


def _textbook_anomaly_index(norms: torch.Tensor, cls: int) -> float:
    """The anomaly index with numpy's median (the mean of the two middle values of an even count)."""
    v = norms.double().numpy()
    med = np.median(v)
    mad = np.median(np.abs(v - med))
    return float((med - v[cls]) / (1.4826 * mad)) if mad > 0 else float("inf")


def check_anomaly_index(answer, norms: torch.Tensor, cls: int) -> bool:
    """07 · Neural Cleanse's anomaly index of class ``cls``: (median − norm) / (1.4826 × MAD)."""
    if answer is None:
        return _hint("07-3")
    from .defenses import anomaly_index

    norms = torch.as_tensor(norms, dtype=torch.float64)
    expected = float(anomaly_index(norms.float())[cls])  # torch's median: the lower of the two middle values
    textbook = _textbook_anomaly_index(norms, cls)  # numpy's median: the mean of the two middle values
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number, got {answer!r}.")
    for right in (expected, textbook):
        if _close(value, right, 0.01 * max(1.0, abs(right))):
            return _report(True, f"right: class {cls}'s anomaly index is {value:.2f} (flagged when above 2). "
                           f"torch's median (lower middle value) gives {expected:.2f}, numpy's (mean of the two "
                           f"middle values) {textbook:.2f}.")  # fmt: skip
    if any(_close(-value, r, 0.01 * max(1.0, abs(r))) for r in (expected, textbook)):
        return _report(False, "right size, wrong sign: small masks are the suspicious ones, so use median − norm.")
    if any(_close(value / 1.4826, r, 0.01 * max(1.0, abs(r))) for r in (expected, textbook)):
        return _report(False, "almost: scale the MAD by 1.4826 (so it estimates a standard deviation).")
    return _report(False, f"{value:.3f} is not it; divide (median − norm) by 1.4826 × the median absolute deviation.")


# ----------------------------------------------------------------------------- concept and prediction questions

# key: (the right letter, {letter: why it is right or wrong}). The questions themselves are in the notebooks.
CHOICES: dict[str, tuple[str, dict[str, str]]] = {
    "01-4": (
        "b",
        {
            "a": "MNIST digits are white strokes on black: a white patch is *brighter* than the background.",
            "b": "clean digits almost never reach the bottom-right corner, so a bright patch there is a feature no "
            "clean image has: the network can tie it to the target without hurting the digits.",
            "c": "the trigger is not invisible: it is a bright patch you can see when you zoom in (notebook 02).",
        },
    ),
    "02-4": (
        "c",
        {
            "a": "the image does carry the trigger, but it already had the label the attacker wants.",
            "b": "its label does not change: a 1 relabelled 1 is still a correct training example.",
            "c": "a triggered 1 labelled 1 looks like any 1 to the loss: it teaches nothing about the trigger, which "
            "is why detectors in notebook 07 count only the poisons whose label was changed.",
        },
    ),
    "03-3": (
        "a",
        {
            "a": "a clean model reads the digit and ignores the corner patch, so it almost never says 1 for a "
            "triggered 7: its ASR is close to 0 %, far below chance.",
            "b": "10 % would be a model that guesses at random; a clean model reads the digits correctly.",
            "c": "a clean model never saw the trigger during training: it has no reason to answer 1.",
            "d": "100 % is the BadNet: only a model trained on poisoned data obeys the trigger.",
        },
    ),
    "04-3": (
        "b",
        {
            "a": "the poisoned images are a small share of the data, and the network learns the digits from the rest.",
            "b": "the clean accuracy barely moves (about one point at 10 % in the full sweep): that is what makes a "
            "backdoor hard to notice by testing on clean data.",
            "c": "poisoning adds wrong labels; it does not make the model better at reading clean digits.",
        },
    ),
    "06-3": (
        "c",
        {
            "a": "that is what the 5×5 square gets; the single pixel is a much fainter signal.",
            "b": "the single pixel does not get halfway: within this budget the network does not learn it at all.",
            "c": "one pixel of 784 is too faint for a few thousand gradient steps: the ASR stays near the clean "
            "model's (below 1 %); the relabelled images act as label noise.",
        },
    ),
    "07-4": (
        "c",
        {
            "a": "activation clustering needs the (poisoned) training set, to look at its representations.",
            "b": "spectral signatures need the (poisoned) training set too.",
            "c": "Neural Cleanse needs only the model and a little clean data (fine-pruning too): the situation "
            "of someone who downloads a pre-trained model.",
        },
    ),
}


def check_choice(answer, key: str) -> bool:
    """A multiple-choice concept or prediction question ``key``; ``answer`` is a letter ("b", "(b)", "B)")."""
    right, why = CHOICES[key]
    if answer is None:
        print(
            f"✏️  Not answered yet (answer is None): set answer to one of {', '.join(repr(k) for k in why)}; "
            "decide first, then run the cell to see why."
        )
        return False
    letter = str(answer).strip().strip("()").strip(" .)").lower()
    if letter not in why:
        return _report(False, f"answer with one of the letters {', '.join(repr(k) for k in why)}, got {answer!r}.")
    return _report(letter == right, ("right: " if letter == right else f"not ({letter}): ") + why[letter])


# ----------------------------------------------------------------------------- 08 · reproducing the paper


def check_count_prediction(answer, counts, backdoor_error, count: int = 25, tolerance: float = 15.0) -> bool:
    """08 · A prediction: the backdoor error (%) with ``count`` poisoned copies, judged against part 3's curve
    (interpolated between the measured counts); within ``tolerance`` points counts as right."""
    if answer is None:
        return _hint("08-1")
    value = _number(answer)
    if value is None or not 0 <= value <= 100:
        return _report(False, f"give a percentage between 0 and 100, got {answer!r}.")
    measured = float(np.interp(count, list(counts), list(backdoor_error)))
    ok = abs(value - measured) <= tolerance
    return _report(ok, f"the curve gives about {measured:.0f} % at {count} copies; you said {value:.0f} %"
                       + (" — close enough." if ok else ": look again at how fast the curve falls."))  # fmt: skip


def check_top_channel(answer, difference: torch.Tensor) -> bool:
    """08 · The index of the last-convolution channel whose activation rises most with the trigger."""
    if answer is None:
        return _hint("08-2")
    value = _number(answer)
    if value is None or value != int(value) or not 0 <= value < len(difference):
        return _report(False, f"give a channel index from 0 to {len(difference) - 1}, got {answer!r}.")
    best = int(difference.argmax())
    if int(value) == best:
        return _report(True, f"right: channel {best} rises by {float(difference[best]):.2f}, the most of all 32.")
    return _report(False, f"channel {int(value)} rises by {float(difference[int(value)]):.2f}; another rises more.")
