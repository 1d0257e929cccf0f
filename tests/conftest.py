"""Shared fixtures: the real MNIST root, a tiny CIFAR-10 in torchvision's on-disk layout, and the website built,
served and opened in Chromium once per session (site_build.py: test_site.py and test_playground.py use it)."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from site_build import browser, server, site  # noqa: F401  the built site, shared: one build per session

from badnets_utils.core.data import CIFAR_FOLDER, DatasetNotFoundError, load_dataset, resolve_data_root

# Property tests: the suite (CI) replays the same examples every run, so a red CI always reproduces; the
# "explore" profile draws fresh ones (`pytest tests/test_properties_*.py --hypothesis-profile=explore`), which is how
# new bugs are found before they land (docs/architecture.md, "Tests").
try:  # the Colab-like CI environment runs only the painter's tests, without Hypothesis
    from hypothesis import settings
except ImportError:
    pass
else:
    settings.register_profile("repeatable", derandomize=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile("repeatable")

# Paths of a developer's or CI machine, which no committed file may contain (split so this file passes too).
MACHINE_PATHS = re.compile("|".join(["/wo" + "rk/", "/ro" + "ot/", r"/home/[A-Za-z0-9_.-]+", "/tmp/py" + "test"]))


@pytest.fixture(scope="session")
def mnist_root():
    """The data root holding real MNIST ($BADNETS_DATA or ./data); a clear failure if it is absent."""
    root = resolve_data_root()
    try:
        load_dataset("MNIST", train=False, root=root)
    except DatasetNotFoundError as err:
        pytest.fail(f"these tests need real MNIST: {err}")
    return root


def write_cifar_fixture(root, n_train_per_batch: int = 20, n_test: int = 30, seed: int = 0):
    """Write a tiny CIFAR-10 in torchvision's `cifar-10-batches-py` layout (pickled batches + meta)."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n, label):
        labels = [int(i % 10) for i in range(n)]
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        return {"batch_label": label, "labels": labels, "data": data, "filenames": [f"img{i}.png" for i in range(n)]}

    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(n_train_per_batch, f"training batch {i} of 5"), f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch(n_test, "testing batch 1 of 1"), f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": n_train_per_batch, "num_vis": 3072}, f)
    return root


@pytest.fixture
def cifar_root(tmp_path):
    return write_cifar_fixture(tmp_path / "cifar_data")
