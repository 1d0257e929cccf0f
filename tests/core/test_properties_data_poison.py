"""Properties of the poisoning arithmetic and of the poisoned / triggered sets, checked with hypothesis."""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from badnets_utils.core.config import Attack
from badnets_utils.core.data import DATASETS, ImageData
from badnets_utils.core.poison import attack_test_set, choose_poison_indices, poison_count, poison_train_set
from badnets_utils.core.triggers import make_trigger

FAST = settings(max_examples=60, deadline=None, database=None)  # no .hypothesis folder in the tree
TRIGGER = make_trigger("white", 3)
# An Attack's target is a class of its dataset (MNIST's 10 by default): the toy sets below have 2 to 12 classes
# (all-to-all counts the data's), and a target is drawn from the classes both have.
CLASSES = len(DATASETS[Attack().dataset]["classes"])

sizes = st.integers(min_value=0, max_value=100_000)
decimal_rates = st.decimals(min_value=0, max_value=1, places=4).map(float)  # rates as people type them
any_rates = st.one_of(decimal_rates, st.floats(min_value=0, max_value=1))


def images(n: int, k: int, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    return ImageData(torch.zeros(n, 1, 8, 8, dtype=torch.uint8), labels, [str(i) for i in range(k)], "prop")


@FAST
@given(n=sizes, rate=any_rates)
def test_poison_count_is_the_floor_of_the_decimal_rate(n, rate):
    assert poison_count(n, rate) == math.floor(Fraction(str(rate)) * n)


@FAST
@given(n=sizes, rate=decimal_rates)
def test_poison_count_is_exact_for_decimal_rates(n, rate):
    k = poison_count(n, rate)
    assert 0 <= k <= n
    assert k <= Fraction(str(rate)) * n < k + 1


@FAST
@given(n=st.integers(0, 5000), rate=decimal_rates, seed=st.integers(0, 2**31 - 1))
def test_chosen_indices_are_exact_sorted_unique_in_range_and_seeded(n, rate, seed):
    idx = choose_poison_indices(n, rate, seed=seed)
    assert len(idx) == poison_count(n, rate)
    assert torch.equal(idx, idx.unique())  # sorted and unique
    assert len(idx) == 0 or (0 <= idx.min() and idx.max() < n)
    assert torch.equal(idx, choose_poison_indices(n, rate, seed=seed))


@FAST
@given(n=st.integers(0, 400), count=st.integers(0, 400), seed=st.integers(0, 1000))
def test_absolute_counts(n, count, seed):
    count = min(count, n)
    idx = choose_poison_indices(n, count=count, seed=seed)
    assert len(idx) == count and len(idx.unique()) == count


@FAST
@given(
    n=st.integers(1, 300),
    k=st.integers(2, 12),
    rate=decimal_rates,
    attack=st.sampled_from(["all-to-one", "all-to-all"]),
    mode=st.sampled_from(["replace", "add"]),
    data=st.data(),
)
def test_poisoned_train_set_sizes_and_labels(n, k, rate, attack, mode, data):
    clean = images(n, k)
    target = data.draw(st.integers(0, min(k, CLASSES) - 1))  # a class of the data and of the attack's dataset
    poisoned = poison_train_set(clean, TRIGGER, Attack(rate=rate, target=target, kind=attack, mode=mode, seed=0))
    chosen = choose_poison_indices(n, rate, seed=0)
    m = len(chosen)
    assert len(poisoned) == (n + m if mode == "add" else n) and len(poisoned.poison_indices) == m
    sources = chosen if mode == "replace" else poisoned.source_indices[poisoned.poison_indices]
    want = torch.full((m,), target) if attack == "all-to-one" else (clean.labels[sources] + 1) % k
    assert torch.equal(poisoned.labels[poisoned.poison_indices], want)
    untouched = torch.ones(len(poisoned), dtype=torch.bool)
    untouched[poisoned.poison_indices] = False
    original = torch.arange(len(poisoned)) if mode == "replace" else poisoned.source_indices
    assert torch.equal(poisoned.labels[untouched], clean.labels[original[untouched]])


@FAST
@given(
    n=st.integers(0, 300), k=st.integers(2, 12), attack=st.sampled_from(["all-to-one", "all-to-all"]), data=st.data()
)
def test_attack_test_set_excludes_the_target_class_in_all_to_one(n, k, attack, data):
    clean = images(n, k, seed=1)
    target = data.draw(st.integers(0, min(k, CLASSES) - 1))  # a class of the data and of the attack's dataset
    triggered = attack_test_set(clean, TRIGGER, Attack(target=target, kind=attack))
    if attack == "all-to-one":
        assert len(triggered) == int((clean.labels != target).sum())
        assert (clean.labels[triggered.source_indices] != target).all() and (triggered.labels == target).all()
    else:
        assert len(triggered) == n and torch.equal(triggered.labels, (clean.labels + 1) % k)
