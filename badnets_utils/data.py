"""MNIST and CIFAR-10 as whole uint8 tensors, loaded through torchvision's on-disk layout."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

DATASETS: dict[str, dict] = {
    "MNIST": {
        "classes": [str(i) for i in range(10)],
        "shape": (1, 28, 28),
        "mean": (0.1307,),
        "std": (0.3081,),
    },
    "CIFAR10": {
        "classes": [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],  # fmt: skip
        "shape": (3, 32, 32),
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
}
DEFAULT_DATA_ROOT = "./data"
DATA_ENV = "BADNETS_DATA"
CIFAR_FOLDER = "cifar-10-batches-py"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded."""


@dataclass
class ImageData:
    """A labelled image set: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).

    ``poison_indices`` lists the samples that carry a trigger (None for a clean set);
    ``source_indices`` maps each sample back to the set it was built from (None if it is that set).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str = ""
    poison_indices: torch.Tensor | None = None
    source_indices: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, H, W), got {self.images.dtype} "
                f"of shape {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, indices: torch.Tensor) -> ImageData:
        """The samples at ``indices``, remembering where they came from."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        source = indices if self.source_indices is None else self.source_indices[indices]
        poison = None
        if self.poison_indices is not None:
            is_poisoned = torch.zeros(len(self), dtype=torch.bool)
            is_poisoned[self.poison_indices] = True
            poison = torch.nonzero(is_poisoned[indices]).flatten()
        return replace(
            self,
            images=self.images[indices],
            labels=self.labels[indices],
            poison_indices=poison,
            source_indices=source,
        )


def canonical_name(name: str) -> str:
    """'mnist', 'cifar-10', 'CIFAR10' ... -> 'MNIST' or 'CIFAR10'."""
    key = str(name).upper().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)} (any case)")
    return key


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: the argument, else $BADNETS_DATA, else ./data."""
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT
    return Path(root).expanduser().absolute()


def _missing(name: str, root: Path, why: str) -> DatasetNotFoundError:
    where = root / ("MNIST/raw" if name == "MNIST" else CIFAR_FOLDER)
    return DatasetNotFoundError(
        f"{name} not found: looked in {where.resolve()} ({why}). "
        f"Get it with `python -m badnets_utils download --dataset {name} --data_path {root}` "
        f"(needs internet), or point --data_path / ${DATA_ENV} at a folder holding "
        f"torchvision's {name} layout."
    )


def _load_mnist(root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(root=str(root), train=train, download=download)
    except Exception as err:  # torchvision raises RuntimeError / URLError / OSError
        why = "download failed: " + str(err).splitlines()[0] if download else "no files there"
        raise _missing("MNIST", root, why) from None
    return ds.data.unsqueeze(1).contiguous(), ds.targets.long()


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _load_cifar10(root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    folder = root / CIFAR_FOLDER
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    if download and not all((folder / f).exists() for f in files):
        from torchvision.datasets import CIFAR10

        try:  # torchvision downloads, checks the md5 and extracts
            CIFAR10(root=str(root), train=train, download=True)
        except Exception as err:
            raise _missing("CIFAR10", root, "download failed: " + str(err).splitlines()[0]) from None
    missing = [f for f in files if not (folder / f).exists()]
    if missing:
        raise _missing("CIFAR10", root, f"missing {', '.join(missing)}")
    images, labels = [], []
    for f in files:
        entry = _unpickle(folder / f)
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


def load_dataset(
    name: str,
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> ImageData:
    """Load the train or test split of MNIST or CIFAR-10 as one uint8 tensor."""
    name = canonical_name(name)
    root = resolve_data_root(root)
    loader = _load_mnist if name == "MNIST" else _load_cifar10
    images, labels = loader(root, train, download)
    split = "train" if train else "test"
    return ImageData(images, labels, list(DATASETS[name]["classes"]), name=f"{name}-{split}")


def load_splits(
    name: str, root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ImageData, ImageData]:
    """(train, test) for a dataset."""
    return load_dataset(name, True, root, download), load_dataset(name, False, root, download)


def download_dataset(name: str, root: str | os.PathLike | None = None) -> Path:
    """Download both splits into the data root (no-op when already there); returns the root."""
    load_splits(name, root, download=True)
    return resolve_data_root(root)


def random_subset(data: ImageData, size: int | None, seed: int = 0) -> ImageData:
    """A seeded random subset of ``size`` samples (the whole set when size is None or too big)."""
    if size is None or size >= len(data):
        return data
    if size < 1:
        raise ValueError(f"subset size must be at least 1, got {size}")
    g = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(data), generator=g)[:size].sort().values
    return data.subset(indices)


def dataset_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of the training set, for normalisation."""
    info = DATASETS[canonical_name(name.split("-")[0])]
    return info["mean"], info["std"]
