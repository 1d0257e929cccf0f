"""Poisoning: pick exactly the requested samples with a seeded generator, stamp, relabel.

This is where the attack happens (with ``triggers``, which draws the pattern): ``poison_train_set`` chooses which
training images carry the trigger and gives them the attacker's label; ``attack_test_set`` builds the triggered
test images the attack success rate is measured on. Both read the attack's settings from an ``Attack``.
"""

from __future__ import annotations

import math

import torch

from badnets_utils.core.config import RANDOM, Attack, exact_rate
from badnets_utils.core.data import ImageData
from badnets_utils.core.triggers import apply_trigger, random_positions

Positions = str | tuple[int, int] | torch.Tensor  # a corner, a (row, col), or one (row, col) per image


def poison_count(n: int, rate: float | None = None, count: int | None = None) -> int:
    """floor(rate × n) with the rate read as the decimal it is written as, or an absolute ``count`` (one of the two)."""
    if (rate is None) == (count is None):
        raise ValueError("give exactly one of a poisoning rate or a poison count")
    if count is not None:
        if isinstance(count, bool) or int(count) != count or not 0 <= count <= n:
            raise ValueError(f"poison count {count!r} is outside 0..{n} (the number of samples)")
        return int(count)
    return math.floor(exact_rate(rate) * int(n))


def choose_poison_indices(n: int, rate: float | None = None, count: int | None = None, *, seed: int) -> torch.Tensor:
    """Sorted indices of exactly ``poison_count(n, rate, count)`` samples; same seed, same indices."""
    k = poison_count(n, rate, count)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[:k].sort().values


def attack_labels(labels: torch.Tensor, attack: Attack, num_classes: int) -> torch.Tensor:
    """The labels the attacker wants: all-to-one -> the target; all-to-all -> (y + 1) mod K."""
    if attack.kind == "all-to-one":
        return torch.full_like(labels, attack.target)
    return (labels + 1) % num_classes


def victims(data: ImageData, attack: Attack) -> torch.Tensor:
    """Indices of the images the attack may poison or is measured on: every image, or (a single-target attack,
    ``attack.source``) the images of that class."""
    if attack.source is None:
        return torch.arange(len(data))
    return torch.nonzero(data.labels == attack.source).flatten()


def _where(data: ImageData, trigger: torch.Tensor, attack: Attack, positions: Positions | None, seed: int):
    """Where the trigger goes on each image of ``data``: ``positions``, else the attack's (``random``: one seeded
    place per image)."""
    if positions is not None:
        return positions
    if isinstance(attack.position, str) and attack.position == RANDOM:
        return random_positions(len(data), data.images.shape[-2:], trigger.shape[-2:], seed)
    return attack.position


def poison_train_set(
    data: ImageData, trigger: torch.Tensor, attack: Attack, positions: Positions | None = None
) -> ImageData:
    """A copy of ``data`` where exactly ``attack.rate`` (or ``attack.count``) of the images carry ``trigger`` and the
    attacker's label (``attack.target``, or y + 1 for all-to-all), chosen with ``attack.seed``.

    ``attack.mode`` "replace" stamps the chosen samples in place (N samples in all); "add" keeps every clean sample
    and appends the triggered copies (N + k samples, as in the BadNets paper). With ``attack.source`` the rate or
    count is a share or number of that class's images. ``positions`` overrides ``attack.position``, e.g. with an
    (N, 2) tensor of one position per sample of ``data``; ``random`` positions are drawn with ``attack.seed`` (the
    test set's with ``attack.seed + 1``). The result's ``poison_indices`` says which of its samples carry the
    trigger; in "add" mode its ``source_indices`` maps each sample, appended copies included, back into ``data``.
    """
    candidates = victims(data, attack)
    rate = attack.rate if attack.count is None else None
    idx = candidates[choose_poison_indices(len(candidates), rate, attack.count, seed=attack.seed)]
    pos = _where(data, trigger, attack, positions, attack.seed)
    pos = pos[idx] if isinstance(pos, torch.Tensor) else pos
    stamped = apply_trigger(data.images[idx], trigger, pos, attack.alpha, attack.mask) if len(idx) else data.images[idx]
    flipped = attack_labels(data.labels[idx], attack, data.num_classes)
    name = data.name + "-poisoned"
    if attack.mode == "add":
        n = len(data)
        sources = data.source_indices if data.source_indices is not None else torch.arange(n)
        return ImageData(
            torch.cat([data.images, stamped]), torch.cat([data.labels, flipped]), data.classes, name,
            torch.arange(n, n + len(idx)), torch.cat([sources, sources[idx]]),
        )  # fmt: skip
    images, labels = data.images.clone(), data.labels.clone()
    images[idx], labels[idx] = stamped, flipped
    return ImageData(images, labels, data.classes, name, idx, data.source_indices)


def attack_test_set(
    data: ImageData, trigger: torch.Tensor, attack: Attack, positions: Positions | None = None
) -> ImageData:
    """Triggered test images with the attacker's labels, for the attack success rate.

    all-to-one keeps only images whose true label is not the target (a target-class image "succeeding" says
    nothing about the backdoor); all-to-all keeps every image, label y + 1; with ``attack.source``, only the images
    of that class. ``source_indices`` points back into ``data``.
    """
    if attack.source is None and attack.kind == "all-to-one":
        keep = torch.nonzero(data.labels != attack.target).flatten()
    else:
        keep = victims(data, attack)
    src = data.subset(keep)
    pos = _where(data, trigger, attack, positions, attack.seed + 1)
    pos = pos[keep] if isinstance(pos, torch.Tensor) else pos
    images = apply_trigger(src.images, trigger, pos, attack.alpha, attack.mask)
    labels = attack_labels(src.labels, attack, data.num_classes)
    return ImageData(
        images, labels, data.classes, data.name + "-triggered", torch.arange(len(keep)), src.source_indices
    )
