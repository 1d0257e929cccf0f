"""Notebook setup: seeds, device, paths and the quick mode, in one call.

Every notebook's setup cell ends with ``cfg = setup()``. ``BADNETS_QUICK=1`` (set by the tests)
shrinks data and epochs so that a notebook runs in about a minute on 2 CPU cores, still on real data.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from badnets_utils._io.checkpoint_files import read_manifest
from badnets_utils._io.files import PROJECT_MANIFEST, REPO_ROOT, atomic_write_text, sha256_file, shipped_files
from badnets_utils._io.machine import select_device
from badnets_utils.core.data import default_runs_dir, resolve_data_root

QUICK_ENV, RETRAIN_ENV = "BADNETS_QUICK", "BADNETS_RETRAIN"
RESULTS_DIR = REPO_ROOT / "results"  # shipped results of full runs, listed in checkpoints/MANIFEST.json


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def is_quick() -> bool:
    """True when $BADNETS_QUICK is set to anything but '', 0, false or no."""
    return _env_flag(QUICK_ENV)


def shipped_result(name: str) -> Path:
    """``results/<name>``, checked against the project's manifest (its SHA-256 must match); a one-line error if not."""
    path = RESULTS_DIR / name
    listed = shipped_files().get(path.resolve())
    if listed is None:
        raise ValueError(
            f"results/{name} is not a shipped result (not in checkpoints/MANIFEST.json); set RETRAIN = True"
        )
    if not path.is_file() or sha256_file(path) != listed:
        raise ValueError(f"results/{name} is missing or modified (its SHA-256 differs from the manifest's); "
                         "restore it with git, or set RETRAIN = True")  # fmt: skip
    return path


def shipped_json(name: str):
    """``results/<name>`` read as JSON, checked against the manifest first (``shipped_result``)."""
    return json.loads(shipped_result(name).read_text(encoding="utf-8"))


def save_json(path: str | os.PathLike, data) -> Path:
    """``data`` as indented JSON at ``path`` (a notebook's full-run result under runs/), written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def shipped_models() -> dict:
    """The shipped checkpoints: how each was trained and what it scores (``checkpoints/MANIFEST.json``, checked)."""
    return read_manifest(PROJECT_MANIFEST.parent)


@dataclass
class NotebookConfig:
    quick: bool  # small data and few epochs (CI, a first try)
    retrain: bool  # train what is long instead of loading the shipped full-run results
    device: torch.device
    seed: int
    repo_root: Path
    data_root: Path  # $BADNETS_DATA, else the checkout's data/ (data.resolve_data_root: the one rule)
    runs_dir: Path  # where notebooks write: the checkout's runs/ (data.default_runs_dir) or runs/quick/
    checkpoint_dir: Path  # the shipped, verified checkpoints
    trigger_dir: Path

    def pick(self, quick, full):
        """``quick`` in quick mode, else ``full``: ``epochs = cfg.pick(3, 10)``."""
        return quick if self.quick else full


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(
    seed: int = 0, quick: bool | None = None, retrain: bool = False, device: str = "auto", verbose: bool = True
) -> NotebookConfig:
    """Seed Python, NumPy and torch; choose the device; resolve paths; report the mode.

    quick: None follows $BADNETS_QUICK. retrain: a notebook's RETRAIN switch ($BADNETS_RETRAIN=1 forces it).
    Class mode is the default: quick off, retrain off — long experiments load the results that ship.
    """
    seed_everything(seed)
    quick = is_quick() if quick is None else bool(quick)
    retrain = bool(retrain) or _env_flag(RETRAIN_ENV)
    data_root = resolve_data_root()
    runs = default_runs_dir() / ("quick" if quick else "")  # the CLI's default --output_dir: one runs/ per checkout
    runs.mkdir(parents=True, exist_ok=True)
    cfg = NotebookConfig(
        quick=quick,
        retrain=retrain,
        device=select_device(device),
        seed=seed,
        repo_root=REPO_ROOT,
        data_root=data_root,
        runs_dir=runs,
        checkpoint_dir=REPO_ROOT / "checkpoints",
        trigger_dir=REPO_ROOT / "triggers",
    )
    if verbose:
        mode = "QUICK (small data, few epochs)" if quick else "full data"
        long_runs = "retrain" if retrain else "load shipped results"
        print(f"mode: {mode}, {long_runs} | device: {cfg.device} | torch {torch.__version__} | seed {seed}")
    return cfg


BLOCK_KEY = "badnets_block"  # an output's metadata key: the docs block written from it (badnets_utils.tools.pages)


def show_table(markdown: str, block: str) -> None:
    """Display a Markdown table in the notebook, tagged ``block``: the docs page that shows the same table is
    written from this output as committed (``python -m badnets_utils pages``), so its figures are typed once."""
    from IPython.display import Markdown, display

    display(Markdown(markdown), metadata={BLOCK_KEY: block})
