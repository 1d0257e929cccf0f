"""Every setting of a run, once: ``Attack`` (what the attacker does) and ``Budget`` (how the victim trains).

Each default is a field here, and each field is checked here, once, when the object is made: a bad value is a
one-line ``ValueError`` naming it and what is allowed, before any data is loaded. Everything below (poison,
training, the pipeline) takes these objects and trusts them. NumPy numbers become Python's, the dataset's name
its canonical spelling, and -0.0 is 0.0, so that one run has one description (and one cache key).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from badnets_utils._io.files import input_path
from badnets_utils._io.machine import select_device
from badnets_utils.core.data import DATASETS, canonical_name

ATTACKS = ("all-to-one", "all-to-all")
# replace: the chosen samples are stamped and relabelled in place (the popular reimplementations);
# add: triggered, relabelled copies are appended and the clean originals stay (the BadNets paper, sec. 3.1.2).
POISON_MODES = ("replace", "add")


# the built-in triggers (triggers.make_trigger draws them) and the PNG each is shipped as, in triggers/
BUILTIN_TRIGGERS = {"white": "trigger_white", "checkerboard": "trigger_checkerboard",
                    "pixel": "trigger_pixel", "l_shape": "trigger_l_shape"}  # fmt: skip
LOSSES = ("cross", "mse")
OPTIMIZERS = ("adam", "sgd")
LR_ALLOWED = "allowed: a finite positive number, e.g. 0.001"
# Upper bounds of a budget: a typo (an extra zero or three) is one line, not a run that never ends or fills the
# memory (docs/reliability.md). The course trains 1 to 20 epochs; 1000 is fifty times that. A step's memory grows
# with its batch (a batch larger than the training set is all of it at once): 8192 images stay near 1.4 GB on any
# device, and MNIST is then under 8 steps an epoch.
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 8192


def _one_of(value, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


def _class(value, num_classes: int, what: str = "trigger label") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_classes:
        raise ValueError(f"{what} {value!r} is not a class; allowed: 0..{num_classes - 1}")


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


RANDOM = "random"  # Attack.position: one random place per image


@dataclass(frozen=True)
class Attack:
    """What the attacker does.

    - trigger: a built-in kind (``white``, ``checkerboard``, ``pixel``, ``l_shape``), the path of an image
      file, or a uint8 tensor (C, h, w) — ``trigger_size`` resizes the first two, not a tensor.
    - position: a corner (``bottom-right`` …), a (row, col) offset, or ``"random"`` (one place per image).
    - alpha / mask: pixels become ``(1 - a)·image + a·trigger`` with ``a = alpha·mask``.
    - kind: ``all-to-one`` (every triggered image → ``target``) or ``all-to-all`` (y → y + 1).
    - source: with all-to-one, only images of this class are poisoned and attacked (the paper's single-target
      attack: digit i → j); rate and count then refer to that class's images.
    - rate / count: the share of training images poisoned, or an exact number (count wins when given).
    - mode: ``add`` (the default) appends triggered copies and keeps every clean image, as the paper does (§4.1);
      ``replace`` stamps the chosen images in place, as the popular reimplementations do.
    - name: a label for tables and plots.
    """

    dataset: str = "MNIST"
    trigger: str | Path | torch.Tensor = "white"
    trigger_size: int = 5
    position: str | tuple[int, int] = "bottom-right"
    alpha: float = 1.0
    mask: torch.Tensor | None = field(default=None, compare=False)
    target: int = 1
    kind: str = "all-to-one"
    source: int | None = None
    rate: float | None = 0.1
    count: int | None = None
    mode: str = "add"
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        _check_attack(self)

    def replace(self, **changes) -> Attack:
        """A copy with some fields changed: ``attack.replace(rate=0.01)``."""
        return dataclasses.replace(self, **changes)

    @property
    def label(self) -> str:
        """``name``, or a short description."""
        return self.name or f"{trigger_name(self.trigger)} {self.trigger_size}×{self.trigger_size} → {self.target}"

    def describe(self) -> dict:
        """The settings as plain values (for CSV rows, checkpoints and manifests)."""
        return {
            "dataset": self.dataset, "trigger": trigger_name(self.trigger),
            "trigger_size": self.trigger_size, "position": _position_text(self.position), "alpha": float(self.alpha),
            "trigger_label": self.target, "attack": self.kind, "source": self.source, "poisoning_rate": self.rate,
            "poison_count": self.count, "poison_mode": self.mode, "seed": self.seed,
        }  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """How the victim trains. ``train_limit`` / ``test_limit``: seeded random subsets (quick runs)."""

    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: str = "adam"
    loss: str = "cross"
    device: str = "auto"
    train_limit: int | None = None
    test_limit: int | None = None

    def __post_init__(self) -> None:
        _check_budget(self)

    def replace(self, **changes) -> Budget:
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "device"}


# ----------------------------------------------------------------------------- checks


def trigger_name(trigger) -> str:
    """A short name for a trigger: the kind, the file's stem without ``trigger_``, or ``custom``."""
    if isinstance(trigger, torch.Tensor):
        return "custom"
    return Path(str(trigger)).stem.replace("trigger_", "")


def _position_text(position) -> str:
    return position if isinstance(position, str) else f"({position[0]}, {position[1]})"


def whole(value, what: str):
    """The one rule for whole-number settings: any integer type (NumPy's too), never a bool or a fraction."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value  # left as it is: the caller's range check names it


def _real(value):
    """Any real number type (NumPy's too) as a float; anything else is left for the caller's check. A NumPy float
    is read as the decimal it prints as (``np.float32(0.29)`` is 0.29, as ``poison_count`` reads it), and -0.0 is 0.0
    (one cache key for one run)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(str(value) if isinstance(value, np.floating) else value) + 0.0
    return value


def _check_tensor_trigger(trigger: torch.Tensor, name: str) -> None:
    """A tensor trigger is uint8 (h, w) or (C, h, w), C 1 or the dataset's channels, 1 ≤ h, w ≤ the image's."""
    c, h, w = DATASETS[name]["shape"]
    shape = tuple(trigger.shape)
    ok = trigger.dtype == torch.uint8 and trigger.dim() in (2, 3)
    if ok:
        th, tw = shape[-2:]
        ok = (trigger.dim() == 2 or shape[0] in (1, c)) and 1 <= th <= h and 1 <= tw <= w
    if not ok:
        channels = f"{'1 or ' if c == 3 else ''}{c}"
        raise ValueError(f"trigger tensor {trigger.dtype} {shape} does not fit a {h}×{w} {name} image; allowed: "
                         f"uint8 (h, w) or ({channels}, h, w) with 1 ≤ h ≤ {h}, 1 ≤ w ≤ {w}")  # fmt: skip


def _set(config, **fields) -> None:
    """Normalise fields of a frozen config while it is being made."""
    for key, value in fields.items():
        object.__setattr__(config, key, value)


def _check_numbers(attack: Attack) -> None:
    """Whole numbers and reals of any type (NumPy's too) become Python's; a wrong type is named."""
    _set(attack, **{k: whole(getattr(attack, k), k) for k in ("target", "source", "count", "seed", "trigger_size")},
         alpha=_real(attack.alpha), rate=_real(attack.rate))  # fmt: skip
    if isinstance(attack.position, tuple):
        position = tuple(whole(v, "position") for v in attack.position)
        if len(position) != 2 or not all(isinstance(v, int) for v in position):
            raise ValueError(f"trigger position {attack.position!r}; allowed: a corner name, 'random' or a (row, col) "
                             "pair of whole numbers")  # fmt: skip
        _set(attack, position=position)
    if isinstance(attack.alpha, bool) or not isinstance(attack.alpha, float) or not 0.0 <= attack.alpha <= 1.0:
        raise ValueError(f"alpha {attack.alpha!r} is not allowed; allowed: a number in [0, 1]")
    if isinstance(attack.seed, bool) or not isinstance(attack.seed, int) or not 0 <= attack.seed < 2**63:
        raise ValueError(f"--seed {attack.seed!r} is outside the seeds a generator takes; allowed: 0..{2**63 - 1}")
    if attack.count is None:
        exact_rate(attack.rate)
    elif isinstance(attack.count, bool) or not isinstance(attack.count, int) or attack.count < 0:
        raise ValueError(f"poison count {attack.count!r} must be a whole number ≥ 0")


def _check_attack(attack: Attack) -> None:
    """Every field of an attack, before any data is loaded (``Attack.__post_init__``)."""
    _check_numbers(attack)
    name = canonical_name(attack.dataset)
    _set(attack, dataset=name)
    k = len(DATASETS[name]["classes"])
    _one_of(attack.kind, ATTACKS, "attack")
    _class(attack.target, k)
    _one_of(attack.mode, POISON_MODES, "poison mode")
    if attack.source is not None:
        _class(attack.source, k, "source class")
        if attack.kind != "all-to-one" or attack.source == attack.target:
            raise ValueError(f"source class {attack.source!r} needs the all-to-one attack and another target class")
    _, h, w = DATASETS[name]["shape"]
    if isinstance(attack.trigger, torch.Tensor):
        _check_tensor_trigger(attack.trigger, name)
    else:
        if not (isinstance(attack.trigger, str) and attack.trigger in BUILTIN_TRIGGERS):
            input_path(attack.trigger, "trigger file", missing_ok=True)  # a missing one: load_trigger's message
        size = attack.trigger_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
            raise ValueError(f"trigger size {size!r} does not fit a {h}×{w} {name} image; allowed: 1..{min(h, w)}")


def check_lr(lr) -> float:
    """A finite positive learning rate, else a one-line ValueError naming it."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or not lr > 0:
        raise ValueError(f"learning rate {lr!r} is not allowed; {LR_ALLOWED}")
    return float(lr)


def _check_budget(budget: Budget) -> None:
    """Every field of a budget, before any data is loaded (``Budget.__post_init__``)."""
    wholes = ("epochs", "batch_size", "train_limit", "test_limit")
    _set(budget, lr=check_lr(_real(budget.lr)), **{k: whole(getattr(budget, k), k) for k in wholes})
    for key, top in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
        v = getattr(budget, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} {v!r} must be a whole number ≥ 1")
        if v > top:
            raise ValueError(f"{key} {v} is too large; allowed: a whole number in 1..{top}")
    _one_of(budget.loss, LOSSES, "loss")
    _one_of(budget.optimizer, OPTIMIZERS, "optimizer")
    for key in ("train_limit", "test_limit"):
        v = getattr(budget, key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{key} {v!r} must be a whole number ≥ 1 (or None for the whole set)")
    select_device(budget.device)
