"""The four defences on a small backdoored MNIST model trained once for this module."""

from __future__ import annotations

import pytest
import torch

from badnets_utils import defences as D
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import load_splits, random_subset
from badnets_utils.core.models import build_model
from badnets_utils.core.poison import attack_test_set, poison_train_set
from badnets_utils.core.training import evaluate, fit
from badnets_utils.core.triggers import make_trigger

TARGET = 1


@pytest.fixture(scope="module")
def backdoored(mnist_root):
    train, test = load_splits("MNIST", mnist_root)
    train = random_subset(train, 10_000, seed=0)
    test = random_subset(test, 1000, seed=1)
    trigger = make_trigger("white", 5)
    poisoned = poison_train_set(train, trigger, Attack(rate=0.05, target=TARGET, seed=0, mode="replace"))
    attack = attack_test_set(test, trigger, Attack(target=TARGET))
    torch.manual_seed(0)
    model = build_model("MNIST")
    fit(model, poisoned, Budget(epochs=3, batch_size=64, lr=2e-3, device="cpu"), seed=0, progress=False)
    assert evaluate(model, attack)["acc"] > 0.9, "the fixture's backdoor was not planted"
    # the poisons that matter: images whose label the attacker actually changed
    effective = poisoned.poison_indices[train.labels[poisoned.poison_indices] != TARGET]
    return {"model": model, "train": poisoned, "test": test, "attack": attack, "trigger": trigger,
            "effective": effective, "features": D.penultimate_features(model, poisoned.images)}  # fmt: skip


def test_pca_and_two_means_on_obvious_clusters():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(90, 20, generator=g), torch.randn(10, 20, generator=g) + 8])
    z = D.pca(x, 3)
    assert z.shape == (100, 3)
    labels = D.two_means(z, seed=0)
    assert labels.shape == (100,) and labels[90:].eq(1).all() and labels[:90].eq(0).all()  # 1 = smaller
    assert D.silhouette(z, labels) > 0.5
    assert D.precision_recall(torch.tensor([1, 2, 3, 4]), torch.tensor([2, 4, 6])) == (0.5, 2 / 3)


def test_activation_clustering_finds_the_poisons(backdoored):
    b = backdoored
    ac = D.activation_clustering(b["features"], b["train"].labels, 10, dims=10, seed=0)
    assert ac["suspect"] == TARGET
    assert ac["cluster"].shape == b["train"].labels.shape
    precision, recall = D.precision_recall(ac["flagged"], b["effective"])
    assert recall > 0.8 and precision > 0.8, (precision, recall)


def test_spectral_signatures_follow_the_published_procedure():
    """Every class gives up its ceil(1.5 * bound) top-scoring samples (all of a smaller class), whatever the target."""
    g = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.full((50,), k) for k in range(3)] + [torch.full((3,), 3)])
    features = torch.randn(len(labels), 8, generator=g)
    features[labels == 2] *= torch.linspace(0.1, 3, 8)  # class 2 has one dominant direction
    out = D.spectral_signatures(features, labels, num_classes=4, poison_bound=4)
    assert out["removed_per_class"].tolist() == [6, 6, 6, 3]
    assert len(out["removed"]) + len(out["kept"]) == len(labels)
    assert not torch.isin(out["removed"], out["kept"]).any()
    for k in range(4):  # in each class, everything removed outscores everything kept
        removed = out["removed"][labels[out["removed"]] == k]
        kept = out["kept"][labels[out["kept"]] == k]
        if len(kept):
            assert out["scores"][removed].min() >= out["scores"][kept].max()


def test_spectral_signatures_rank_poisons_high(backdoored):
    b = backdoored
    n_poison = len(b["train"].poison_indices)
    ss = D.spectral_signatures(b["features"], b["train"].labels, 10, poison_bound=n_poison)
    assert ss["removed_per_class"].tolist() == [min(int(1.5 * n_poison), int((b["train"].labels == k).sum()))
                                               for k in range(10)]  # fmt: skip
    _, recall = D.precision_recall(ss["removed"], b["effective"])
    assert recall > 0.8, recall
    # within the target class, poisons score higher than clean samples on average
    in_class = torch.nonzero(b["train"].labels == TARGET).flatten()
    is_poison = torch.isin(in_class, b["effective"])
    assert ss["scores"][in_class][is_poison].mean() > 2 * ss["scores"][in_class][~is_poison].mean()


def test_fine_pruning_curve_and_pruned_model(backdoored):
    b = backdoored
    fractions = torch.linspace(0, 0.9, 4)
    curve = D.pruning_curve(
        b["model"], b["test"].images[:500], b["test"].images, b["test"].labels,
        b["attack"].images, b["attack"].labels, fractions,
    )  # fmt: skip
    assert curve["clean_acc"].shape == curve["asr"].shape == (4,)
    assert curve["asr"][0] > 0.9 and curve["clean_acc"][0] > 0.9  # nothing pruned: the backdoored model
    assert sorted(curve["order"].tolist()) == list(range(32))
    activity = D.channel_activity(b["model"], b["test"].images[:500])
    pruned, channels = D.prune_dormant_channels(b["model"], activity, 0.25)
    assert len(channels) == 8
    with torch.no_grad():
        out = pruned.conv_features(b["test"].images[:50])
    assert out[:, channels].abs().max() == 0  # pruned channels are silent
    # fine-tuning keeps them silent
    fine = Budget(epochs=1, batch_size=50, lr=1e-3, device="cpu")
    fit(pruned, b["test"].subset(torch.arange(200)), fine, seed=0, progress=False)
    with torch.no_grad():
        assert pruned.conv_features(b["test"].images[:50])[:, channels].abs().max() == 0
    with pytest.raises(ValueError):
        D.prune_dormant_channels(b["model"], activity, 1.5)


def test_neural_cleanse_flags_the_target(backdoored):
    b = backdoored
    nc = D.reverse_engineer_triggers(b["model"], b["test"].images[:500], 10, steps=60, batch_size=24, seed=0)
    assert nc["masks"].shape == (10, 1, 28, 28) and nc["patterns"].shape == (10, 1, 28, 28)
    index = D.anomaly_index(nc["l1"])
    assert int(index.argmax()) == TARGET and index[TARGET] > 2, index
    # the model's weights are trainable again afterwards
    assert all(p.requires_grad for p in b["model"].parameters())


def test_anomaly_index():
    norms = torch.tensor([100.0, 110, 90, 105, 95, 20])
    index = D.anomaly_index(norms)
    assert int(index.argmax()) == 5 and index[5] > 2
