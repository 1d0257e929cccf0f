"""MNIST, Fashion-MNIST and CIFAR-10 as whole uint8 tensors, in torchvision's on-disk layout, checked on load."""

from __future__ import annotations

import builtins
import functools
import importlib
import math
import os
import pickle
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from badnets_utils._io.files import REPO_ROOT, InputError, _missing_ancestors, input_path, open_input

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
    "FashionMNIST": {
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],  # fmt: skip
        "shape": (1, 28, 28),
        "mean": (0.2860,),
        "std": (0.3530,),
    },
}
DATA_ENV = "BADNETS_DATA"
CIFAR_FOLDER = "cifar-10-batches-py"
IDX_DATASETS = ("MNIST", "FashionMNIST")  # torchvision's <root>/<name>/raw/*-ubyte layout
IDX_MAGIC = {"images": 2051, "labels": 2049}  # big-endian: 0x0000, type 0x08 (uint8), number of dimensions


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded."""


class DatasetCorruptError(ValueError):
    """A dataset file is on disk but unreadable or inconsistent."""


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
    """'mnist', 'cifar-10', 'fashion_mnist', 'FashionMNIST' ... -> a key of DATASETS."""
    key = str(name).upper().replace("-", "").replace("_", "").replace(" ", "")
    for canonical in DATASETS:
        if canonical.upper() == key:
            return canonical
    raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)} (any case, '-' or '_' allowed)")


def is_checkout(home: Path = REPO_ROOT) -> bool:
    """True when ``home`` (the folder holding ``badnets_utils``) is a checkout or a classroom copy, not an
    installed package's site-packages."""
    return (home / "notebooks").is_dir() or (home / "student").is_dir() or (home / "pyproject.toml").is_file()


def default_data_root(home: Path = REPO_ROOT) -> Path:
    """``data/`` of the checkout (or classroom copy) this ``badnets_utils`` belongs to, wherever the code runs from:
    the CLI in the repository root and a notebook in ``notebooks/`` share one folder. An installed package (no
    checkout around it) uses ``./data``."""
    return home / "data" if is_checkout(home) else Path("data").absolute()


def default_runs_dir(home: Path = REPO_ROOT) -> Path:
    """``runs/`` of the checkout, found as ``default_data_root`` finds ``data/``: where the CLI's training runs and
    the notebooks write, whichever folder they run from. An installed package uses ``./runs``."""
    return home / "runs" if is_checkout(home) else Path("runs").absolute()


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: the argument, else $BADNETS_DATA, else the checkout's ``data/`` (the one place that decides it)."""
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV) or default_data_root()
    return Path(root).expanduser().absolute()


def dataset_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder holding a dataset's files: <root>/MNIST/raw, <root>/FashionMNIST/raw or <root>/cifar-10-batches-py."""
    name, root = canonical_name(name), resolve_data_root(root)
    return root / CIFAR_FOLDER if name == "CIFAR10" else root / name / "raw"


def _file_names(name: str) -> list[str]:
    """The files of a dataset's folder in torchvision's layout (``dataset_folder``)."""
    if name == "CIFAR10":
        return [*_cifar_files(True), *_cifar_files(False)]
    return [_idx_name(train, kind) for train in (True, False) for kind in IDX_MAGIC]


def _missing(name: str, root: Path, why: str, download_failed: bool = False) -> DatasetNotFoundError:
    """Where the dataset was looked for, why it is not there, and how to get it: the ``download`` command when no
    download was tried; after a failed one (no internet), copying the files by hand."""
    folder = dataset_folder(name, root).resolve()
    inside = dataset_folder(name, root).relative_to(resolve_data_root(root)).as_posix()  # MNIST/raw, cifar-10-…
    by_hand = (f"copy {name}'s files ({', '.join(_file_names(name))}) into {folder} (torchvision's layout), or point "
               f"--data_path / ${DATA_ENV} at a data root with them in {inside}/")  # fmt: skip
    if download_failed:
        return DatasetNotFoundError(f"{name} not found in {folder} and its download failed ({why}). Without "
                                    f"internet, {by_hand}.")  # fmt: skip
    return DatasetNotFoundError(
        f"{name} not found: looked in {folder} ({why}). Get it with `python -m badnets_utils download --dataset "
        f"{name} --data_path {root}` (needs internet), or {by_hand}."
    )


def _corrupt(name: str, path: Path, why: str) -> DatasetCorruptError:
    return DatasetCorruptError(f"{name} file {path} is corrupt: {why} (delete it and download again)")


def _first_line(err: BaseException) -> str:
    """An error in one line; a first line that only announces what follows ("Error downloading x.gz:", as
    torchvision's) gets the last reason below it ("no reason given" when every line below announces too)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if not lines[0].endswith(":"):
        return lines[0]
    reasons = [line for line in lines[1:] if not line.endswith(":")]
    return f"{lines[0]} {reasons[-1] if reasons else 'no reason given'}"


def _download_reason(err: BaseException) -> str:
    """Why a torchvision download failed, in one line: ``train-images-idx3-ubyte.gz: [Errno -2] Name or service not
    known`` (urllib's ``<urlopen error …>`` wrapper and torchvision's "Error downloading" dropped)."""
    line = _first_line(err).removeprefix("Error downloading ")
    return re.sub(r"<urlopen error (.*)>", r"\1", line)


def _fetch(name: str, root: Path, train: bool, needed: list[Path]) -> None:
    """torchvision's download of a split into ``root`` (its mirrors, md5 check, extraction). When it fails and
    ``needed`` files are still missing: the folders it created and left empty are removed (none other), and a
    DatasetNotFoundError gives the reason and how to get the files by hand."""
    created = _missing_ancestors(dataset_folder(name, root).absolute())
    try:
        _torchvision_class(name)(root=str(root), train=train, download=True)
    except Exception as err:  # RuntimeError / URLError / OSError, or a bad file it just fetched
        if all(f.exists() for f in needed):
            return
        for folder in created:  # deepest first; one that holds anything (a partial download) stops the removal
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break
        raise _missing(name, root, _download_reason(err), download_failed=True) from None


# ----------------------------------------------------------------------------- MNIST, Fashion-MNIST (idx files)


def _idx_name(train: bool, kind: str) -> str:
    """torchvision's name of an idx file: train-images-idx3-ubyte, t10k-labels-idx1-ubyte ..."""
    return f"{'train' if train else 't10k'}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"


def _idx_files(name: str, root: Path, train: bool) -> dict[str, Path]:
    folder = dataset_folder(name, root)
    return {kind: folder / _idx_name(train, kind) for kind in IDX_MAGIC}


IDX_LIMITS = {"images": 60_000 * 28 * 28, "labels": 60_000}  # the largest split: nothing bigger is allocated


def _read_idx(path: Path, kind: str, name: str) -> np.ndarray:
    """An idx file's array, read only after its header and exact length are checked (opened by ``open_input``)."""
    dims = check_idx_file(path, kind, name)
    count = math.prod(dims)
    if count > IDX_LIMITS[kind]:
        raise _corrupt(name, path, f"{' × '.join(map(str, dims))} values; allowed: at most {IDX_LIMITS[kind]}")
    try:
        with open_input(path, f"{name} file") as f:
            f.seek(4 + 4 * len(dims))
            raw = f.read(count)
    except OSError as err:
        raise _corrupt(name, path, f"unreadable ({err.strerror or type(err).__name__})") from None
    if len(raw) != count:
        raise _corrupt(name, path, f"{len(raw)} data bytes, expected {count}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def check_idx_file(path: Path, kind: str, name: str = "MNIST") -> tuple[int, ...]:
    """The dimensions in an idx file's header, after checking its magic number and its exact length."""
    with open_input(path, f"{name} file") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
    if len(head) < 4:
        raise _corrupt(name, path, f"{size} bytes, shorter than an idx header")
    magic, want = int.from_bytes(head[:4], "big"), IDX_MAGIC[kind]
    if magic != want:
        raise _corrupt(name, path, f"magic number {magic}, expected {want} for an idx {kind} file")
    ndim = magic & 0xFF
    if len(head) < 4 + 4 * ndim:
        raise _corrupt(name, path, f"{size} bytes, shorter than its {4 + 4 * ndim}-byte header")
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + math.prod(dims)
    if size != expected:
        state = "truncated" if size < expected else "too long"
        raise _corrupt(name, path, f"{state}: {size} bytes, expected {expected} for {' × '.join(map(str, dims))}")
    return dims


def check_split(name: str, images: torch.Tensor, labels: torch.Tensor, files: dict[str, Path]) -> None:
    """Images uint8 ``(N, *shape)``, as many labels as images, every label a class index: else a one-line error."""
    shape, k = tuple(DATASETS[name]["shape"]), len(DATASETS[name]["classes"])
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape:
        raise _corrupt(
            name, files["images"], f"images are {images.dtype} {tuple(images.shape)}, expected uint8 (N, {shape})"
        )
    if labels.dim() != 1 or len(labels) != len(images):
        raise _corrupt(
            name, files["labels"], f"{labels.numel()} labels for {len(images)} images in {files['images'].name}"
        )
    bad = torch.nonzero((labels < 0) | (labels >= k)).flatten()
    if len(bad):
        i = int(bad[0])
        raise _corrupt(name, files["labels"], f"label {int(labels[i])} at index {i} is outside 0..{k - 1}")


def _torchvision_class(name: str):
    import torchvision.datasets

    return getattr(torchvision.datasets, name)


def _load_idx(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    files = _idx_files(name, root, train)
    every = [*_idx_files(name, root, True).values(), *_idx_files(name, root, False).values()]
    if download and not all(f.exists() for f in every):
        _fetch(name, root, train, list(files.values()))
    missing = [f.name for f in files.values() if not input_path(f, f"{name} file", missing_ok=True).exists()]
    if missing:
        raise _missing(name, root, f"missing {', '.join(missing)}")
    # Read the raw files themselves, never torchvision's caches (a legacy processed/*.pt holds what it likes).
    arrays = {kind: _read_idx(path, kind, name) for kind, path in files.items()}
    images = torch.from_numpy(arrays["images"].copy()).unsqueeze(1)
    labels = torch.from_numpy(arrays["labels"].astype(np.int64))
    if arrays["images"].ndim != 3:
        raise _corrupt(name, files["images"], f"{arrays['images'].ndim} dimensions, expected 3 (N, 28, 28)")
    check_split(name, images, labels, files)
    return images, labels


# ----------------------------------------------------------------------------- CIFAR-10 (pickled batches)


def _numpy_global(module: str, name: str):
    try:
        return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")), name)
    except (ImportError, AttributeError):
        return getattr(importlib.import_module(module), name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """The only use of ``_codecs.encode`` in a protocol-2 pickle: bytes written as latin-1 text."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin1")


class _Bounded:
    """Stands for ``numpy.ndarray`` in a pickle: building an array (or bytes) bigger than the file is refused, so
    that a tiny pickle cannot ask for gigabytes of blank memory."""

    limit = 0

    def __call__(self, shape=(), dtype=float, *args):
        _check_size(shape, np.dtype(dtype).itemsize, self.limit)
        return np.ndarray(shape, dtype, *args)


def _check_size(shape, itemsize: int, limit: int) -> None:
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    if not all(isinstance(d, int) and d >= 0 for d in dims) or math.prod(dims) * itemsize > limit:
        raise pickle.UnpicklingError(f"an array of shape {tuple(dims)} is larger than the file ({limit} bytes)")


def _bounded_reconstruct(limit: int):
    def reconstruct(subtype, shape, dtype):
        _check_size(shape, 1, limit)
        return _numpy_global("numpy.core.multiarray", "_reconstruct")(np.ndarray, shape, dtype)

    return reconstruct


def _bounded_bytes(limit: int):
    def make(*args):
        if args and isinstance(args[0], int):
            _check_size((args[0],), 1, limit)
        return bytes(*args)

    return make


_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): _Bounded,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(m, n): (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct",)},
    **{(m, n): (m, n) for m in ("numpy.core.numeric", "numpy._core.numeric") for n in ("_frombuffer",)},
    **{(b, n): (b, n) for b in ("builtins", "__builtin__") for n in ("dict", "list", "str", "bytes", "int")},
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: a pickle can run code, so nothing else is allowed; no array
    or bytes object larger than ``limit`` (the file's size) is built."""

    def __init__(self, file, limit: int, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self.limit = limit

    def find_class(self, module: str, name: str):
        target = _PICKLE_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays and plain data)")
        if target is _Bounded:
            bounded = _Bounded()
            bounded.limit = self.limit
            return bounded
        if name == "_reconstruct":
            return _bounded_reconstruct(self.limit)
        if name == "bytes":
            return _bounded_bytes(self.limit)
        if isinstance(target, tuple):
            mod, attr = target
            return getattr(builtins, attr) if mod in ("builtins", "__builtin__") else _numpy_global(mod, attr)
        return target


def _unpickle(path: Path) -> dict:
    """A CIFAR batch through ``SafeUnpickler``; anything malformed is a one-line DatasetCorruptError."""
    try:
        with open_input(path, "CIFAR10 file") as f:
            entry = SafeUnpickler(f, os.fstat(f.fileno()).st_size, encoding="latin1").load()
    except InputError:
        raise
    except Exception as err:  # UnpicklingError, EOFError, ValueError ... from a damaged or hostile file
        raise _corrupt("CIFAR10", path, f"not a readable batch ({_first_line(err)})") from None
    if not isinstance(entry, dict):
        raise _corrupt("CIFAR10", path, f"holds a {type(entry).__name__}, expected a dict")
    return entry


def _cifar_batch(path: Path) -> tuple[np.ndarray, list]:
    """(images (n, 3, 32, 32) uint8, labels) of one batch, checked."""
    entry = _unpickle(path)
    data, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _corrupt("CIFAR10", path, f"'data' is {got}, expected a uint8 array (n, 3072)")
    if not isinstance(labels, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise _corrupt("CIFAR10", path, "'labels' is missing or not a list of integers")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_files(train: bool) -> list[str]:
    """The CIFAR-10 batch files of a split, in torchvision's layout."""
    return [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]


def _load_cifar10(root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    folder = dataset_folder("CIFAR10", root)
    files = _cifar_files(train)
    if download and not all((folder / f).exists() for f in files):
        _fetch("CIFAR10", root, train, [folder / f for f in files])
    missing = [f for f in files if not input_path(folder / f, "CIFAR10 file", missing_ok=True).exists()]
    if missing:
        raise _missing("CIFAR10", root, f"missing {', '.join(missing)}")
    images, labels = [], []
    for f in files:
        batch_images, batch_labels = _cifar_batch(folder / f)
        check_split("CIFAR10", torch.from_numpy(batch_images), torch.tensor(batch_labels, dtype=torch.long),
                    {"images": folder / f, "labels": folder / f})  # fmt: skip
        images.append(batch_images)
        labels.extend(batch_labels)
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


def load_dataset(
    name: str,
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> ImageData:
    """Load the train or test split of MNIST, Fashion-MNIST or CIFAR-10 as one checked uint8 tensor.

    Raises DatasetNotFoundError (missing, or the download failed) or DatasetCorruptError (a damaged file).
    """
    name = canonical_name(name)
    root = input_path(resolve_data_root(root), "--data_path", folder=True, missing_ok=True)
    loader = _load_cifar10 if name == "CIFAR10" else functools.partial(_load_idx, name)
    images, labels = loader(root, train, download)
    split = "train" if train else "test"
    return ImageData(images, labels, list(DATASETS[name]["classes"]), name=f"{name}-{split}")


def load_splits(
    name: str, root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ImageData, ImageData]:
    """(train, test) for a dataset."""
    return load_dataset(name, True, root, download), load_dataset(name, False, root, download)


def ensure_dataset(name: str, root: str | os.PathLike | None = None) -> tuple[ImageData, ImageData]:
    """(train, test) from disk, downloading them into the data root first when they are missing.

    For notebooks on a fresh runtime. Raises DatasetNotFoundError, saying where it looked and how to get
    the data, when the files are missing and the download fails (no internet, say).
    """
    return load_splits(name, root, download=True)


def download_dataset(name: str, root: str | os.PathLike | None = None) -> Path:
    """Download both splits into the data root (no-op when already there); returns the root."""
    load_splits(name, root, download=True)
    return resolve_data_root(root)


def check_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False) -> None:
    """Before many processes load a dataset (a sweep's pool): its files are there (downloaded once, here, when
    ``download``), each idx file's header and length are right and its training split holds an image; else the
    one-line error that loading it would raise. No image is read."""
    name = canonical_name(name)
    root = input_path(resolve_data_root(root), "--data_path", folder=True, missing_ok=True)
    folder = dataset_folder(name, root)
    files = _file_names(name)
    if download and not all((folder / f).exists() for f in files):
        download_dataset(name, root)
    missing = [f for f in files if not input_path(folder / f, f"{name} file", missing_ok=True).exists()]
    if missing:
        raise _missing(name, root, f"missing {', '.join(missing)}")
    if name in IDX_DATASETS:
        for train in (True, False):
            dims = {kind: check_idx_file(path, kind, name) for kind, path in _idx_files(name, root, train).items()}
            if train and dims["images"][:1] == (0,):
                raise _corrupt(name, _idx_files(name, root, True)["images"], "0 images; allowed: at least one")


def random_subset(data: ImageData, size: int | None, seed: int) -> ImageData:
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
    try:
        key = canonical_name(name)
    except ValueError:  # an ImageData name such as 'FashionMNIST-train-poisoned'
        key = canonical_name(name.split("-")[0])
    info = DATASETS[key]
    return info["mean"], info["std"]
