"""Spectral signatures as published, on the study's setups: the shipped results and a real rerun of one setup."""

from __future__ import annotations

import json
import math

import torch

from badnets_utils import defences as D
from badnets_utils.core.config import Attack
from badnets_utils.core.data import ImageData
from badnets_utils.core.poison import poison_train_set
from badnets_utils.core.triggers import make_trigger
from badnets_utils.course.notebook import shipped_result
from badnets_utils.studies.spectral_study import SETUPS, alignment, original_labels, study

RESULTS = "spectral_signatures.json"


def _digits(n: int, offset: int = 0) -> ImageData:
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    return ImageData(images, (torch.arange(n) + offset) % 10, [str(k) for k in range(10)])


def test_original_labels_in_both_modes_and_on_a_subset():
    clean = _digits(50).subset(torch.arange(10, 50))  # a subset: its source indices are not its positions
    trigger = make_trigger("white", 3)
    for mode in ("add", "replace"):
        poisoned = poison_train_set(clean, trigger, Attack(rate=0.2, target=7, seed=0, mode=mode))
        before = original_labels(poisoned, clean)
        assert len(before) == len(poisoned)
        copied = poisoned.source_indices if mode == "add" else clean.source_indices
        assert torch.equal(before, (copied % 10))  # each sample's label is its source digit's
        assert (poisoned.labels[poisoned.poison_indices] == 7).all()


def test_alignment_is_one_along_the_poisons_and_small_across():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 6, generator=g)
    poison = torch.arange(4000) < 400
    along = x.clone()
    along[poison, 0] += 20  # the poisons' shift is the dominant direction
    assert _alignment(along, poison) > 0.95
    across = x * torch.tensor([1.0, 30, 1, 1, 1, 1])  # a clean direction dominates
    across[poison, 0] += 10  # separated, but adding less variance than the clean direction
    assert _alignment(across, poison) < 0.3


def _alignment(features: torch.Tensor, is_poison: torch.Tensor) -> float:
    """``alignment`` of one class, on the top singular vector ``spectral_scores`` scores it with."""
    top = D.spectral_scores(features, torch.zeros(len(features), dtype=torch.long), 1)["direction"][0]
    return alignment(top, features, is_poison)


def test_the_shipped_study_covers_the_setups_and_adds_up():
    rows = json.loads(shipped_result(RESULTS).read_text(encoding="utf-8"))
    assert len(rows) == len(SETUPS) >= 3
    assert len({(a.dataset, a.target) for a, _ in SETUPS}) >= 3  # datasets and targets vary
    assert len({a.rate for a, _ in SETUPS}) >= 3 and len({b.epochs for _, b in SETUPS}) >= 2  # rates, lengths
    for (attack, _), row in zip(SETUPS, rows, strict=True):
        assert row["setup"].startswith(f"{attack.dataset} → {attack.target}, {100 * attack.rate:g} %")
        assert row["removed"] + row["kept"] == row["train_samples"]
        assert row["removed"] <= 10 * math.ceil(1.5 * row["poisons"])  # 1.5 ε from each of ten classes at most
        assert 0 <= row["flipped_left"] <= row["flipped"] <= row["poisons"]
        assert math.isclose(row["recall"], 1 - row["flipped_left"] / row["flipped"])


def test_a_rerun_of_the_researchers_setup_gives_the_shipped_row(mnist_root):
    """The setup a researcher ran from the docs (MNIST → 7, 5 % added, 20,000 images, 2 epochs), trained again here:
    the poisoning is exact, the training and the filter agree with the shipped row within a few points."""
    (setup,) = [(a, b) for a, b in SETUPS if b.train_limit == 20_000]
    shipped = json.loads(shipped_result(RESULTS).read_text(encoding="utf-8"))[SETUPS.index(setup)]
    (row,) = study([setup], data_root=mnist_root, progress=False)
    for key in ("setup", "poisons", "flipped", "train_samples", "removed", "kept"):
        assert row[key] == shipped[key], key
    for key in ("recall", "target_share", "alignment"):
        assert abs(row[key] - shipped[key]) < 0.05, (key, row[key], shipped[key])
    for key in ("tca_before", "asr_before", "tca_after", "asr_after"):  # the leftover poisons make ASR after sensitive
        assert abs(row[key] - shipped[key]) < 0.1, (key, row[key], shipped[key])
