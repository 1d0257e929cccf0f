import urllib.error

import pytest
import torch

from badnets_utils import data
from badnets_utils.data import (
    DatasetNotFoundError,
    ImageData,
    canonical_name,
    load_dataset,
    load_splits,
    random_subset,
    resolve_data_root,
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_mnist_loads_as_whole_uint8_tensors(mnist_root):
    train, test = load_splits("mnist", mnist_root)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels.dtype == torch.int64
    assert torch.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert train.classes == [str(i) for i in range(10)]
    mean = train.images.float().div(255).mean().item()
    assert abs(mean - 0.1307) < 1e-3


def test_cifar_fixture_goes_through_the_same_loader(cifar_root):
    train, test = load_splits("CIFAR-10", cifar_root)
    assert train.images.shape == (100, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (30, 3, 32, 32)
    assert train.classes[0] == "airplane" and train.num_classes == 10
    assert train.labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_cifar_pixels_keep_torchvision_channel_order(cifar_root):
    import pickle

    import numpy as np

    with open(cifar_root / data.CIFAR_FOLDER / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="latin1")["data"]
    test = load_dataset("cifar10", train=False, root=cifar_root)
    # the row layout is 1024 red, then 1024 green, then 1024 blue values
    assert np.array_equal(test.images[0, 1].numpy().ravel(), raw[0, 1024:2048])


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("BADNETS_DATA", raising=False)
    assert resolve_data_root() == resolve_data_root("./data")
    monkeypatch.setenv("BADNETS_DATA", str(tmp_path))
    assert resolve_data_root() == tmp_path
    assert resolve_data_root(tmp_path / "x") == tmp_path / "x"


def test_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("MNIST", root=tmp_path / "empty")
    msg = str(err.value)
    assert str((tmp_path / "empty" / "MNIST" / "raw").resolve()) in msg
    assert "python -m badnets_utils download" in msg
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_dataset("CIFAR10", root=tmp_path / "empty")


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    for name in ("MNIST", "CIFAR10"):
        with pytest.raises(DatasetNotFoundError, match="download failed"):
            load_dataset(name, root=tmp_path, download=True)


def test_unknown_dataset_names_the_allowed_ones():
    assert canonical_name("cifar_10") == "CIFAR10"
    with pytest.raises(ValueError, match="'svhn'.*MNIST, CIFAR10"):
        canonical_name("svhn")


def test_random_subset_is_seeded_and_tracks_sources():
    d = ImageData(torch.zeros(50, 1, 4, 4, dtype=torch.uint8), torch.arange(50) % 10, list("0123456789"))
    a, b = random_subset(d, 10, seed=3), random_subset(d, 10, seed=3)
    assert torch.equal(a.source_indices, b.source_indices) and len(a) == 10
    assert not torch.equal(a.source_indices, random_subset(d, 10, seed=4).source_indices)
    assert random_subset(d, None) is d


def test_image_data_rejects_wrong_dtype():
    with pytest.raises(ValueError, match="uint8"):
        ImageData(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), ["a"])
