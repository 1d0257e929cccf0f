import os
import pickle
import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_cifar_fixture
from mirror import offline_mirror

from badnets_utils.core import data
from badnets_utils.core.data import (
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
    assert resolve_data_root() == Path(__file__).resolve().parents[2] / "data"  # the checkout's, from anywhere
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root() == Path(__file__).resolve().parents[2] / "data"
    monkeypatch.setenv("BADNETS_DATA", str(tmp_path))
    assert resolve_data_root() == tmp_path
    assert resolve_data_root(tmp_path / "x") == tmp_path / "x"


def test_default_data_root_of_a_checkout_a_classroom_copy_and_an_installed_package(tmp_path, monkeypatch):
    from badnets_utils.core.data import default_data_root

    (tmp_path / "copy" / "student").mkdir(parents=True)  # a classroom copy: DIR/badnets_utils beside DIR/student
    assert default_data_root(tmp_path / "copy") == tmp_path / "copy" / "data"
    (tmp_path / "site-packages").mkdir()  # an installed package: no checkout around it, ./data
    monkeypatch.chdir(tmp_path)
    assert default_data_root(tmp_path / "site-packages") == tmp_path / "data"


def test_the_command_line_and_a_notebook_share_one_data_folder():
    """The CLI run from the repository root and a notebook's setup run from notebooks/ (no $BADNETS_DATA) look in
    the same folder: one download serves both."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "BADNETS_DATA"}
    env["PYTHONPATH"] = str(root)
    cli = "from badnets_utils.core.data import resolve_data_root; print(resolve_data_root())"
    notebook = "from badnets_utils.course.notebook import setup; print(setup(verbose=False).data_root)"
    seen = [subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True)
            .stdout.strip() for code, cwd in ((cli, root), (notebook, root / "notebooks"))]  # fmt: skip
    assert seen == [str(root / "data")] * 2


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
    assert random_subset(d, None, seed=0) is d


def test_image_data_rejects_wrong_dtype():
    with pytest.raises(ValueError, match="uint8"):
        ImageData(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), ["a"])


# ----------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_loads_as_whole_uint8_tensors(mnist_root):
    train, test = load_splits("fashion-mnist", mnist_root)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28) and train.name == "FashionMNIST-train"
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[-1] == "Ankle boot"
    mean, std = data.dataset_stats(train.name)
    assert abs(train.images.float().div(255).mean().item() - mean[0]) < 1e-3
    assert abs(train.images.float().div(255).std().item() - std[0]) < 1e-3


@pytest.mark.parametrize(
    "spelling", ["FashionMNIST", "fashion-mnist", "fashion_mnist", "fashionmnist", "Fashion-MNIST"]
)
def test_fashion_mnist_spellings(spelling):
    assert canonical_name(spelling) == "FashionMNIST"


def test_missing_fashion_mnist_names_its_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion_mnist", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg and "--dataset FashionMNIST" in msg
    assert "\n" not in msg


# ----------------------------------------------------------------------------- ensure_dataset: download when missing


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_ensure_dataset_downloads_into_an_empty_root(name, mnist_root, tmp_path):
    root = tmp_path / "fresh"
    with offline_mirror(mnist_root, tmp_path / "mirror", names=(name,)):
        train, test = data.ensure_dataset(name, root)
    assert (root / name / "raw" / "train-images-idx3-ubyte").is_file()
    assert len(train) == 60000 and len(test) == 10000
    again, _ = data.ensure_dataset(name, root)  # from disk now: no mirror needed
    assert torch.equal(again.labels, train.labels)


def test_ensure_dataset_offline_says_where_and_how(tmp_path):
    empty_source = tmp_path / "nothing"
    with offline_mirror(empty_source, tmp_path / "mirror"), pytest.raises(DatasetNotFoundError) as err:
        data.ensure_dataset("fashion-mnist", tmp_path / "root")
    msg = str(err.value)
    folder = tmp_path / "root" / "FashionMNIST" / "raw"
    assert "download failed (train-images-idx3-ubyte.gz: HTTP Error 404: File not found)" in msg
    assert "copy FashionMNIST's files (train-images-idx3-ubyte, " in msg and f"into {folder} (torchvision's" in msg
    assert "$BADNETS_DATA" in msg and "python -m badnets_utils download" not in msg  # it just failed: no use
    assert "\n" not in msg
    assert not (tmp_path / "root").exists()  # the folders the failed download made are gone


# ----------------------------------------------------------------------------- downloads with no network


@pytest.fixture
def unreachable_mirror(monkeypatch):
    """torchvision's MNIST mirror is a closed port of 127.0.0.1: every download is refused, as with no network."""
    import socket

    import torchvision.datasets as tvd

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(tvd.MNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1")


def test_a_failed_download_removes_only_the_empty_folders_it_made(tmp_path, unreachable_mirror):
    with pytest.raises(DatasetNotFoundError, match=r"download failed \(train-images-idx3-ubyte.gz: .*refused\)"):
        data.ensure_dataset("MNIST", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "old" / "MNIST" / "processed"
    kept.mkdir(parents=True)
    (tmp_path / "old" / "MNIST" / "raw").mkdir()  # there before: not the download's to remove
    with pytest.raises(DatasetNotFoundError):
        data.ensure_dataset("MNIST", tmp_path / "old")
    assert kept.is_dir() and (tmp_path / "old" / "MNIST" / "raw").is_dir()


def test_download_command_offline_says_how_to_get_the_files(tmp_path, unreachable_mirror, capsys):
    from badnets_utils.tools.cli import main

    root = tmp_path / "x"
    assert main(["download", "--dataset", "MNIST", "--data_path", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"badnets: error: MNIST not found in {root / 'MNIST' / 'raw'} ")
    assert re.search(r"download failed \(train-images-idx3-ubyte.gz: \[Errno \d+\] Connection refused\)", err)  # why
    assert "badnets_utils download" not in err  # the command that failed is not recommended again
    assert "copy MNIST's files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, " in err
    assert "$BADNETS_DATA" in err and not root.exists()


def test_training_with_download_offline_gives_the_reason(tmp_path, unreachable_mirror, capsys):
    from badnets_utils.tools.cli import main

    root = tmp_path / "y"
    root.mkdir()  # an existing, empty data root is kept; only MNIST/raw, made by the download, goes
    argv = ["--dataset", "MNIST", "--data_path", str(root), "--download", "--output_dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Connection refused" in err and f"into {root / 'MNIST' / 'raw'}" in err
    assert list(root.iterdir()) == []


def test_a_missing_dataset_without_download_points_at_the_command(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("MNIST", root=tmp_path)
    msg = str(err.value)
    assert f"`python -m badnets_utils download --dataset MNIST --data_path {tmp_path}` (needs internet)" in msg
    assert "copy MNIST's files (" in msg and not (tmp_path / "MNIST").exists()


def test_offline_mirror_restores_torchvision(tmp_path):
    import torchvision.datasets as tvd

    before = (list(tvd.MNIST.mirrors), list(tvd.FashionMNIST.resources))
    with offline_mirror(tmp_path / "nowhere", tmp_path / "nowhere-either"):  # in tmp_path: nothing left in the checkout
        assert tvd.MNIST.mirrors[0].startswith("http://127.0.0.1:")
    assert (tvd.MNIST.mirrors, tvd.FashionMNIST.resources) == before


# ----------------------------------------------------------------------------- damaged idx files


def write_idx(path, array: np.ndarray, magic: int | None = None) -> None:
    """An idx file: big-endian magic (0x0000, 0x08 = uint8, number of dimensions), the sizes, the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    magic = 0x0800 + array.ndim if magic is None else magic
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(head + array.astype(np.uint8).tobytes())


def tiny_mnist(root, n=6, labels=None, name="MNIST"):
    """A tiny, valid set of the four idx files; returns the raw folder."""
    raw = root / name / "raw"
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10 if labels is None else np.array(labels))
    return raw


def test_tiny_idx_files_load(tmp_path):
    tiny_mnist(tmp_path)
    d = load_dataset("MNIST", root=tmp_path)
    assert d.images.shape == (6, 1, 28, 28) and d.labels.tolist() == [0, 1, 2, 3, 4, 5]


def damage(raw, how):
    images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    if how == "truncated":
        images.write_bytes(images.read_bytes()[:-100])
        return images, "truncated"
    if how == "too long":
        labels.write_bytes(labels.read_bytes() + b"\0")
        return labels, "too long"
    if how == "wrong magic":
        images.write_bytes((2049).to_bytes(4, "big") + images.read_bytes()[4:])
        return images, "magic number 2049, expected 2051"
    if how == "empty":
        images.write_bytes(b"")
        return images, "shorter than an idx header"
    if how == "count mismatch":
        write_idx(labels, np.arange(5) % 10)
        return labels, "5 labels for 6 images"
    if how == "bad label":
        write_idx(labels, np.array([0, 1, 2, 12, 4, 5]))
        return labels, "label 12 at index 3 is outside 0..9"
    write_idx(images, np.zeros((6, 28, 27)))  # wrong image size
    return images, r"expected uint8 \(N, \(1, 28, 28\)\)"


@pytest.mark.parametrize(
    "how", ["truncated", "too long", "wrong magic", "empty", "count mismatch", "bad label", "shape"]
)
@pytest.mark.parametrize("download", [False, True])
def test_damaged_idx_file_is_corrupt_not_missing(tmp_path, how, download):
    path, why = damage(tiny_mnist(tmp_path), how)
    with pytest.raises(data.DatasetCorruptError, match=why) as err:
        load_dataset("MNIST", root=tmp_path, download=download)
    msg = str(err.value)
    assert msg.startswith(f"MNIST file {path} is corrupt: ") and msg.endswith("(delete it and download again)")
    assert "\n" not in msg and not isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)


def test_damaged_fashion_mnist_names_itself(tmp_path):
    raw = tiny_mnist(tmp_path, name="FashionMNIST")
    damage(raw, "truncated")
    with pytest.raises(data.DatasetCorruptError, match="^FashionMNIST file .*FashionMNIST.raw.train-images"):
        load_dataset("FashionMNIST", root=tmp_path)


# ----------------------------------------------------------------------------- CIFAR-10 pickles, unpickled safely


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_load(tmp_path, protocol):
    write_cifar_fixture(tmp_path)
    folder = tmp_path / data.CIFAR_FOLDER
    for f in folder.glob("*_batch*"):
        with open(f, "rb") as fh:
            entry = pickle.load(fh)
        with open(f, "wb") as fh:
            pickle.dump(entry, fh, protocol=protocol)
    train, test = load_splits("cifar10", tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and len(test) == 30


class _Exploit:
    """Unpickling this would create a file: what a hostile 'dataset' could do with a shell command instead."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar_fixture(tmp_path)
    target = tmp_path / "pwned"
    batch = tmp_path / data.CIFAR_FOLDER / "test_batch"
    with open(batch, "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Exploit(target)}, f)
    with pytest.raises(
        data.DatasetCorruptError, match=r"test_batch is corrupt: .*refusing to load (io|builtins)\.open"
    ):
        load_dataset("CIFAR10", train=False, root=tmp_path)
    assert not target.exists()


@pytest.mark.parametrize(
    "payload, why",
    [
        (b"\x80\x04\x95garbage", "not a readable batch"),
        ([1, 2, 3], "holds a list, expected a dict"),
        ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, r"'data' is uint8 \(2, 100\)"),
        ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "'data' is float32"),
        ({"data": np.zeros((2, 3072), np.uint8)}, "'labels' is missing"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "1 labels for 2 images"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, "label 10 at index 1 is outside 0..9"),
    ],
)
def test_malformed_cifar_batch_is_one_line(tmp_path, payload, why):
    write_cifar_fixture(tmp_path)
    batch = tmp_path / data.CIFAR_FOLDER / "test_batch"
    batch.write_bytes(payload if isinstance(payload, bytes) else pickle.dumps(payload))
    with pytest.raises(data.DatasetCorruptError, match=why) as err:
        load_dataset("CIFAR10", train=False, root=tmp_path)
    assert str(err.value).startswith(f"CIFAR10 file {batch} is corrupt") and "\n" not in str(err.value)


def test_a_download_error_keeps_its_reason():
    from badnets_utils.core.data import _first_line

    torchvision_style = RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://a/, got:\n"
                                     "<urlopen error [Errno -3] Temporary failure in name resolution>\n")  # fmt: skip
    line = _first_line(torchvision_style)
    assert line.startswith("Error downloading train-images-idx3-ubyte.gz:") and "name resolution" in line
    assert _first_line(OSError("disk full")) == "disk full" and _first_line(ValueError()) == "ValueError"
    empty = RuntimeError("Error downloading t10k-labels-idx1-ubyte.gz:\nTried http://a/, got:\n\n")
    assert _first_line(empty) == "Error downloading t10k-labels-idx1-ubyte.gz: no reason given"
