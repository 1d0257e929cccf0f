import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch

from badnets_utils.core.config import Attack
from badnets_utils.core.data import ImageData
from badnets_utils.core.poison import attack_test_set, choose_poison_indices, poison_count, poison_train_set
from badnets_utils.core.triggers import make_trigger

CLASSES = [str(i) for i in range(10)]


def toy(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 200, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 10, CLASSES, "toy")


@pytest.mark.parametrize("n, rate", [(60000, 0.1), (1000, 0.0), (1000, 1.0), (999, 0.333), (7, 0.5), (60000, 0.0005)])
def test_exact_counts(n, rate):
    assert len(choose_poison_indices(n, rate, seed=0)) == math.floor(Fraction(str(rate)) * n)


def test_absolute_count_and_uniqueness():
    idx = choose_poison_indices(500, count=37, seed=5)
    assert len(idx) == 37 and len(idx.unique()) == 37 and idx.max() < 500


def test_same_seed_same_indices_other_seed_other_indices():
    a, b = choose_poison_indices(60000, 0.1, seed=42), choose_poison_indices(60000, 0.1, seed=42)
    assert torch.equal(a, b)
    assert not torch.equal(a, choose_poison_indices(60000, 0.1, seed=43))


def test_all_to_one_poisons_exactly_the_chosen_samples():
    d = toy()
    p = poison_train_set(d, make_trigger("white", 5), Attack(rate=0.1, target=3, seed=1, mode="replace"))
    idx = p.poison_indices
    assert len(idx) == 100 and torch.equal(idx, choose_poison_indices(1000, 0.1, seed=1))
    assert (p.labels[idx] == 3).all()
    changed = (p.images != d.images).flatten(1).any(1)
    assert set(torch.nonzero(changed).flatten().tolist()) <= set(idx.tolist())
    assert (p.images[idx][:, :, 23:, 23:] == 255).all()
    rest = torch.ones(1000, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(p.labels[rest], d.labels[rest]) and torch.equal(p.images[rest], d.images[rest])
    assert torch.equal(d.labels, torch.arange(1000) % 10)  # the input is untouched


def test_all_to_all_shifts_labels():
    d = toy()
    p = poison_train_set(d, make_trigger("white", 5), Attack(rate=0.2, kind="all-to-all", seed=0, mode="replace"))
    idx = p.poison_indices
    assert torch.equal(p.labels[idx], (d.labels[idx] + 1) % 10)


def test_attack_test_set_excludes_the_target_class():
    d = toy(500)
    t = attack_test_set(d, make_trigger("white", 5), Attack(target=2))
    assert len(t) == 450
    assert (d.labels[t.source_indices] != 2).all()
    assert (t.labels == 2).all() and (t.images[:, :, 23:, 23:] == 255).all()


def test_all_to_all_test_set_keeps_every_image():
    d = toy(500)
    t = attack_test_set(d, make_trigger("white", 5), Attack(kind="all-to-all"))
    assert len(t) == 500 and torch.equal(t.labels, (d.labels + 1) % 10)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), float("inf"), -float("inf"), np.float64("nan")])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=r"poisoning rate .* outside \[0, 1\].*; allowed: a number in \[0, 1\]"):
        poison_count(100, rate)


@pytest.mark.parametrize("rate", [True, False, "0.1", [0.1], 1j])
def test_rate_that_is_not_a_number(rate):
    with pytest.raises(ValueError, match=r"poisoning rate .* is not a number; allowed: a number in \[0, 1\]"):
        poison_count(100, rate)


@pytest.mark.parametrize(
    "n, rate, expected",
    [(100, 0.29, 29), (100, 0.57, 57), (1000, 0.001, 1), (60000, 0.1, 6000), (10, 1, 10), (10, 0, 0), (7, 0.5, 3)],
)
def test_poison_count_reads_rates_as_decimals(n, rate, expected):
    assert poison_count(n, rate) == expected
    assert poison_count(n, np.float64(rate)) == poison_count(n, np.float32(rate)) == expected
    assert poison_count(n, Decimal(str(rate))) == poison_count(n, Fraction(str(rate))) == expected


def test_float_arithmetic_would_lose_one():
    assert 0.29 * 100 < 29  # the bug this guards against
    assert len(choose_poison_indices(100, 0.29, seed=0)) == 29


@pytest.mark.parametrize("label", [-1, 10, 2.5])
def test_bad_target(label):
    with pytest.raises(ValueError, match=r"trigger label .* allowed: 0..9"):
        poison_train_set(toy(20), make_trigger("white", 5), Attack(rate=0.1, target=label, mode="replace"))


def test_bad_attack_and_count():
    with pytest.raises(ValueError, match="unknown attack 'some-to-one'"):
        poison_train_set(toy(20), make_trigger("white", 5), Attack(kind="some-to-one", mode="replace"))
    with pytest.raises(ValueError, match="outside 0..20"):
        poison_count(20, count=21)


def test_add_mode_appends_triggered_copies_and_keeps_the_originals():
    d = toy()
    trigger = make_trigger("white", 5)
    replaced = poison_train_set(d, trigger, Attack(rate=0.1, target=3, seed=1, mode="replace"))
    added = poison_train_set(d, trigger, Attack(rate=0.1, target=3, seed=1, mode="add"))
    chosen = choose_poison_indices(1000, 0.1, seed=1)
    assert len(added) == 1100 and torch.equal(added.poison_indices, torch.arange(1000, 1100))
    assert torch.equal(added.images[:1000], d.images) and torch.equal(added.labels[:1000], d.labels)
    assert torch.equal(added.images[1000:], replaced.images[chosen])  # the same stamped images as in place
    assert (added.labels[1000:] == 3).all()
    assert torch.equal(added.source_indices, torch.cat([torch.arange(1000), chosen]))
    assert torch.equal(d.images, toy().images)  # the input is untouched


def test_bad_poison_mode():
    with pytest.raises(ValueError, match=r"unknown poison mode 'sideways'; allowed: replace, add"):
        poison_train_set(toy(), make_trigger("white", 5), Attack(rate=0.1, mode="sideways"))
