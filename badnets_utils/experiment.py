"""One BadNets experiment end to end: data, trigger, poison, train or load, evaluate.

The CLI, the notebooks and the trigger painter all go through ``prepare`` and ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import DATASETS, ImageData, canonical_name, load_splits, random_subset
from .models import BadNet, build_model
from .poison import attack_test_set, check_attack, check_poison_mode, check_target, poison_train_set
from .train import check_loss, evaluate, fit, select_device
from .triggers import load_trigger, make_trigger, trigger_position


@dataclass
class Setup:
    """What an experiment trains and tests on."""

    train: ImageData  # poisoned training set (``poison_indices`` set)
    test: ImageData  # clean test set
    test_attack: ImageData  # triggered test set for the ASR
    trigger: torch.Tensor
    settings: dict = field(default_factory=dict)


def check_settings(
    dataset: str, trigger_label: int = 1, attack: str = "all-to-one", nb_classes: int | None = None
) -> str:
    """Validate the dataset name, class count, target label and attack; returns the canonical name."""
    name = canonical_name(dataset)
    k = len(DATASETS[name]["classes"])
    if nb_classes is not None and nb_classes != k:
        raise ValueError(f"nb_classes {nb_classes} does not match {name}, which has {k} classes")
    check_attack(attack)
    check_target(trigger_label, k)
    return name


def prepare(
    dataset: str = "MNIST",
    trigger: torch.Tensor | str | Path | None = None,
    trigger_size: int = 5,
    poisoning_rate: float | None = 0.1,
    poison_count: int | None = None,
    trigger_label: int = 1,
    attack: str = "all-to-one",
    position: str | tuple[int, int] = "bottom-right",
    alpha: float = 1.0,
    seed: int = 0,
    train_limit: int | None = None,
    test_limit: int | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
    nb_classes: int | None = None,
    poison_mode: str = "replace",
) -> Setup:
    """Validate the settings, load the data, build the trigger and the poisoned sets.

    ``trigger``: a uint8 tensor, a PNG path, or None for the white square. ``poison_mode``: "replace"
    (stamp samples in place, the seed's way) or "add" (append triggered copies, the paper's way).
    """
    name = check_settings(dataset, trigger_label, attack, nb_classes)
    check_poison_mode(poison_mode)
    channels, height, width = DATASETS[name]["shape"]
    if trigger is None:
        trigger = make_trigger("white", trigger_size, channels)
    elif not isinstance(trigger, torch.Tensor):
        if not 1 <= trigger_size <= min(height, width):
            raise ValueError(
                f"trigger_size {trigger_size} does not fit a {height}×{width} {name} image; "
                f"allowed: 1..{min(height, width)}"
            )
        trigger = load_trigger(trigger, trigger_size, channels)
    trigger_position((height, width), tuple(trigger.shape[-2:]), position)  # fails early if it does not fit
    train, test = load_splits(name, data_root, download)
    train = random_subset(train, train_limit, seed)
    test = random_subset(test, test_limit, seed + 1)
    poisoned = poison_train_set(
        train, trigger, poisoning_rate, trigger_label, attack, seed, poison_count, position, alpha, mode=poison_mode
    )
    attack_set = attack_test_set(test, trigger, trigger_label, attack, position, alpha)
    settings = {
        "dataset": name, "attack": attack, "trigger_label": trigger_label, "poisoning_rate": poisoning_rate,
        "poison_count": len(poisoned.poison_indices), "trigger_size": int(trigger.shape[-1]),
        "position": position, "alpha": alpha, "seed": seed, "poison_mode": poison_mode,
        "train_size": len(train), "test_size": len(test),
    }  # fmt: skip
    return Setup(poisoned, test, attack_set, trigger, settings)


def run(
    setup: Setup,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 2e-3,
    loss: str = "cross",
    optimizer: str = "adam",
    device: str | torch.device = "auto",
    model: BadNet | None = None,
    progress: bool = True,
    on_epoch=None,
) -> tuple[BadNet, list[dict]]:
    """Train a fresh BadNet (or ``model``) on the poisoned set; returns (model, history)."""
    check_loss(loss)
    device = select_device(device) if not isinstance(device, torch.device) else device
    if model is None:
        torch.manual_seed(setup.settings.get("seed", 0))
        model = build_model(setup.settings["dataset"], setup.train.num_classes)
    history = fit(
        model, setup.train, setup.test, setup.test_attack, epochs, batch_size, lr, loss, optimizer,
        device, setup.settings.get("seed", 0), progress, on_epoch,
    )  # fmt: skip
    return model, history


def final_metrics(model: BadNet, setup: Setup, loss: str = "cross") -> dict:
    """TCA and ASR with predictions and confusion matrices on both test sets."""
    clean = evaluate(model, setup.test, loss)
    triggered = evaluate(model, setup.test_attack, loss)
    return {"tca": clean["acc"], "asr": triggered["acc"], "clean": clean, "attack": triggered}
