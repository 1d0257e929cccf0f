"""Poisoning: pick exactly the requested samples with a seeded generator, stamp, relabel."""

from __future__ import annotations

import math
import numbers
from decimal import Decimal
from fractions import Fraction

import numpy as np
import torch

from .data import ImageData
from .triggers import apply_trigger

ATTACKS = ("all-to-one", "all-to-all")
# replace: the chosen samples are stamped and relabelled in place (the popular reimplementations);
# add: triggered, relabelled copies are appended and the clean originals stay (the BadNets paper, sec. 3.1.2).
POISON_MODES = ("replace", "add")


def check_attack(attack: str) -> str:
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; allowed: {', '.join(ATTACKS)}")
    return attack


def check_target(target_label: int, num_classes: int) -> int:
    if isinstance(target_label, bool) or int(target_label) != target_label or not 0 <= target_label < num_classes:
        raise ValueError(f"trigger label {target_label!r} is not a class; allowed: 0..{num_classes - 1}")
    return int(target_label)


def check_poison_mode(mode: str) -> str:
    if mode not in POISON_MODES:
        raise ValueError(f"unknown poison mode {mode!r}; allowed: {', '.join(POISON_MODES)}")
    return mode


def exact_rate(rate: float) -> Fraction:
    """A poisoning rate as an exact fraction of its decimal spelling: 0.29 -> 29/100, not 0.28999…

    Accepts int, float, numpy numbers, Fraction and Decimal in [0, 1]; refuses bool, NaN, inf and anything else.
    """
    allowed = "allowed: a number in [0, 1], e.g. 0.1"
    if isinstance(rate, bool) or not isinstance(rate, (numbers.Real, Decimal)):
        raise ValueError(f"poisoning rate {rate!r} is not a number; {allowed}")
    if isinstance(rate, (float, np.floating, Decimal)) and not math.isfinite(rate):
        raise ValueError(f"poisoning rate {rate!r} is outside [0, 1] (not a finite number); {allowed}")
    if isinstance(rate, (float, np.floating)):
        exact = Fraction(str(rate))  # the shortest decimal that reads back as this float: what the user typed
    else:
        exact = Fraction(int(rate)) if isinstance(rate, np.integer) else Fraction(rate)
    if not 0 <= exact <= 1:
        raise ValueError(f"poisoning rate {rate!r} is outside [0, 1]; {allowed}")
    return exact


def poison_count(n: int, rate: float | None = None, count: int | None = None) -> int:
    """floor(rate × n) with the rate read as the decimal it is written as, or an absolute ``count`` (one of the two)."""
    if (rate is None) == (count is None):
        raise ValueError("give exactly one of a poisoning rate or a poison count")
    if count is not None:
        if isinstance(count, bool) or int(count) != count or not 0 <= count <= n:
            raise ValueError(f"poison count {count!r} is outside 0..{n} (the number of samples)")
        return int(count)
    return math.floor(exact_rate(rate) * int(n))


def choose_poison_indices(n: int, rate: float | None = None, count: int | None = None, seed: int = 0) -> torch.Tensor:
    """Sorted indices of exactly ``poison_count(n, rate, count)`` samples; same seed, same indices."""
    k = poison_count(n, rate, count)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[:k].sort().values


def attack_labels(labels: torch.Tensor, attack: str, target_label: int, num_classes: int) -> torch.Tensor:
    """The labels the attacker wants: all-to-one -> target; all-to-all -> (y + 1) mod K."""
    check_attack(attack)
    if attack == "all-to-one":
        return torch.full_like(labels, check_target(target_label, num_classes))
    return (labels + 1) % num_classes


def poison_train_set(
    data: ImageData,
    trigger: torch.Tensor,
    rate: float | None = 0.1,
    target_label: int = 1,
    attack: str = "all-to-one",
    seed: int = 0,
    count: int | None = None,
    position: str | tuple[int, int] | torch.Tensor = "bottom-right",
    alpha: float = 1.0,
    mask: torch.Tensor | None = None,
    mode: str = "replace",
    source: int | None = None,
) -> ImageData:
    """A copy of ``data`` where the chosen samples carry the trigger and the attacker's label.

    ``source``: poison only images of this class (the paper's single-target attack, digit i → j); the rate or
    count is then a share or number of that class's images.
    ``mode`` "replace" stamps the chosen samples in place (N samples in all); "add" keeps every clean
    sample and appends the triggered copies (N + k samples, as in the BadNets paper).
    ``position`` may also be an (N, 2) tensor with one position per sample of ``data``.
    The result's ``poison_indices`` says which of its samples carry the trigger; in "add" mode its
    ``source_indices`` maps each sample, appended copies included, back into ``data``.
    """
    check_attack(attack)
    check_target(target_label, data.num_classes)
    check_poison_mode(mode)
    if count is not None:
        rate = None
    candidates = torch.arange(len(data)) if source is None else class_indices(data, source, attack, target_label)
    idx = candidates[choose_poison_indices(len(candidates), rate, count, seed)]
    pos = position[idx] if isinstance(position, torch.Tensor) else position
    stamped = apply_trigger(data.images[idx], trigger, pos, alpha, mask) if len(idx) else data.images[idx]
    flipped = attack_labels(data.labels[idx], attack, target_label, data.num_classes)
    name = data.name + "-poisoned"
    if mode == "add":
        n = len(data)
        sources = data.source_indices if data.source_indices is not None else torch.arange(n)
        return ImageData(
            torch.cat([data.images, stamped]), torch.cat([data.labels, flipped]), data.classes, name,
            torch.arange(n, n + len(idx)), torch.cat([sources, sources[idx]]),
        )  # fmt: skip
    images, labels = data.images.clone(), data.labels.clone()
    images[idx], labels[idx] = stamped, flipped
    return ImageData(images, labels, data.classes, name, idx, data.source_indices)


def class_indices(data: ImageData, source: int, attack: str, target_label: int) -> torch.Tensor:
    """Indices of the images of class ``source`` (a single-target attack's victims), checked."""
    check_target(source, data.num_classes)
    if attack != "all-to-one":
        raise ValueError(f"a source class ({source}) goes with the all-to-one attack, not {attack!r}")
    if source == target_label:
        raise ValueError(f"source class {source} is the target class: nothing to misclassify")
    return torch.nonzero(data.labels == source).flatten()


def attack_test_set(
    data: ImageData,
    trigger: torch.Tensor,
    target_label: int = 1,
    attack: str = "all-to-one",
    position: str | tuple[int, int] | torch.Tensor = "bottom-right",
    alpha: float = 1.0,
    mask: torch.Tensor | None = None,
    source: int | None = None,
) -> ImageData:
    """Triggered test images with the attacker's labels, for the attack success rate.

    all-to-one keeps only images whose true label is not the target (a target-class image
    "succeeding" says nothing about the backdoor); all-to-all keeps every image, label y + 1;
    with ``source``, only the images of that class. ``source_indices`` points back into ``data``.
    """
    check_attack(attack)
    check_target(target_label, data.num_classes)
    if source is not None:
        keep = class_indices(data, source, attack, target_label)
    elif attack == "all-to-one":
        keep = torch.nonzero(data.labels != target_label).flatten()
    else:
        keep = torch.arange(len(data))
    src = data.subset(keep)
    pos = position[keep] if isinstance(position, torch.Tensor) else position
    images = apply_trigger(src.images, trigger, pos, alpha, mask)
    labels = attack_labels(src.labels, attack, target_label, data.num_classes)
    return ImageData(
        images, labels, data.classes, data.name + "-triggered", torch.arange(len(keep)), src.source_indices
    )
