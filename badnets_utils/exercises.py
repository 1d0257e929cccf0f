"""Self-checks for the notebooks' "Try it yourself" exercises.

Each check takes the student's ``answer`` (plus whatever it needs to know the right one), prints
✅ or ❌ with a short explanation and returns True or False. An unanswered exercise (``answer is
None``) prints a hint and returns False without raising, so a notebook runs top to bottom before
anyone has solved anything.

Conventions for new checks (notebooks 05 and later append theirs at the end of this file): name
them ``check_<what>``, start with ``if answer is None: return _hint(...)``, finish with ``_report``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _report(ok: bool, message: str) -> bool:
    """Print ✅/❌ and ``message``; return ``ok``."""
    ok = bool(ok)
    print(("✅ " if ok else "❌ ") + message)
    return ok


def _hint(message: str) -> bool:
    """An exercise not answered yet: print a hint, return False."""
    print("✏️  Not answered yet (answer is None). Hint: " + message)
    return False


def _close(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= tol


def _number(answer) -> float | None:
    """The answer as a float, or None when it is not a number."""
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
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
        return _hint(f"compare the labels with {cls} and count the matches: `(labels == {cls}).sum().item()`.")
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
        return _hint("convert to float, divide by 255, then take the mean: `images.float().div(255).mean().item()`.")
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
        return _hint("define `def answer(x): return ...`, using `.float()` and a division by 255.")
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
        return _hint(f"multiply and round down: floor({rate} × {n}), or `poison_count({n}, {rate})`.")
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
        return _hint("compare the two uint8 tensors: `(clean != triggered).sum().item()`.")
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
        return _hint('`apply_trigger(images, trigger, position="top-left")`, or write into `x[:, :, :5, :5]`.')
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
        return _hint(f"the fraction of predictions equal to the target: `(preds == {target}).float().mean().item()`.")
    expected = (preds == target).float().mean().item()
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number, got {answer!r}.")
    if _close(value, expected, 1e-4):
        return _report(True, f"right: ASR = {expected:.4f}.")
    if _close(value, 100 * expected, 1e-2):
        return _report(False, f"{value:.2f} is a percentage; give the fraction (between 0 and 1).")
    return _report(False, f"{value:.4f} is not it; count predictions equal to the target {target}, over all of them.")


def check_missed_triggers(answer, attack_cm: torch.Tensor, target: int) -> bool:
    """03 · How many triggered test images were *not* classified as the target (the backdoor's misses)?"""
    if answer is None:
        return _hint(f"all triggered images minus those predicted {target}: `cm.sum() - cm[:, {target}].sum()`.")
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
        return _hint(f"go through the sweep from few to many poisoned images; stop at the first ASR ≥ {threshold}.")
    return _check_first_reaching(answer, counts, asr, threshold, "number of images", {
        "right": "right: {x:g} poisoned images are enough for an ASR ≥ {t}.",
        "below": "with {v:g} images the sweep's ASR stays below {t}.",
        "above": "{v:g} works, but fewer images already reach {t}.",
    })  # fmt: skip


def check_rate_for_count(answer, count: int, n: int) -> bool:
    """04 · A poisoning rate that poisons exactly ``count`` of ``n`` images."""
    if answer is None:
        return _hint(f"divide: {count} / {n}.")
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
        return _hint(
            f"a {trigger_size}×{trigger_size} trigger at '{position}' of a {image_size}×{image_size} image: the last "
            f"row it can start on is {image_size} - {trigger_size}; check with `painter.offset`."
        )
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
        return _hint(f"paint with `painter.set_pixel(r, c)` for r or c = {size // 2}, then `answer = painter.trigger`.")
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
        return _hint("blending mixes the two: (1 - alpha) × background + alpha × trigger, rounded to a whole number.")
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
        return _hint(f"all-to-all shifts every class by one: (y + 1) mod {num_classes}.")
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
        return _hint(f"read the size ablation from small to large and stop at the first ASR ≥ {threshold}.")
    return _check_first_reaching(answer, sizes, asr, threshold, "size in pixels", {
        "right": "right: a {x:g}×{x:g} square is the smallest that reaches {t}.",
        "below": "a {v:g}-pixel trigger stays below an ASR of {t} in this run.",
        "above": "{v:g} works, but a smaller trigger already reaches {t}.",
    })  # fmt: skip


# ----------------------------------------------------------------------------- 07 · defences


def check_flag_precision(answer, flagged: torch.Tensor, poison_indices: torch.Tensor) -> bool:
    """07 · The precision of a defence's ``flagged`` indices: the share of them that are really poisoned."""
    if answer is None:
        return _hint("count the flagged indices that are in poison_indices (`torch.isin`), divide by len(flagged).")
    flagged = torch.as_tensor(flagged).flatten().long().unique()
    hits = int(torch.isin(flagged, torch.as_tensor(poison_indices).long()).sum())
    expected = hits / max(len(flagged), 1)
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number between 0 and 1, got {answer!r}.")
    if _close(value, expected, 1e-3):
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
        return _hint("`torch.isin(removed, poison_indices).sum().item()`.")
    expected = int(torch.isin(torch.as_tensor(removed).long(), torch.as_tensor(poison_indices).long()).sum())
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a count, got {answer!r}.")
    if value == expected:
        return _report(True, f"right: {expected} of the {len(removed)} removed samples were poisoned.")
    return _report(False, f"{value:g} is not it; count the removed indices that are also poisoned.")


def check_anomaly_index(answer, norms: torch.Tensor, cls: int) -> bool:
    """07 · Neural Cleanse's anomaly index of class ``cls``: (median − norm) / (1.4826 × MAD)."""
    if answer is None:
        return _hint(
            "med = norms.median(); mad = (norms - med).abs().median(); answer = (med - norms[cls]) / (1.4826 * mad)."
        )
    from .defenses import anomaly_index

    expected = float(anomaly_index(torch.as_tensor(norms, dtype=torch.float32))[cls])
    value = _number(answer)
    if value is None:
        return _report(False, f"expected a number, got {answer!r}.")
    if _close(value, expected, 0.01 * max(1.0, abs(expected))):
        return _report(True, f"right: class {cls}'s anomaly index is {expected:.2f} (flagged when above 2).")
    if _close(value, -expected, 0.01 * max(1.0, abs(expected))):
        return _report(False, "right size, wrong sign: small masks are the suspicious ones, so use median − norm.")
    if _close(value / 1.4826, expected, 0.01 * max(1.0, abs(expected))):
        return _report(False, "almost: scale the MAD by 1.4826 (so it estimates a standard deviation).")
    return _report(False, f"{value:.3f} is not it; divide (median − norm) by 1.4826 × the median absolute deviation.")
