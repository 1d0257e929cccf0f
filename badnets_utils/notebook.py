"""Notebook setup: seeds, device, paths and the quick mode, in one call.

Every notebook's setup cell ends with ``cfg = setup()``. ``BADNETS_QUICK=1`` (set by the tests)
shrinks data and epochs so that a notebook runs in about a minute on 2 CPU cores, still on real data.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import resolve_data_root
from .train import select_device

QUICK_ENV = "BADNETS_QUICK"
REPO_ROOT = Path(__file__).resolve().parent.parent


def is_quick() -> bool:
    """True when $BADNETS_QUICK is set to anything but '', 0, false or no."""
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class NotebookConfig:
    quick: bool
    device: torch.device
    seed: int
    repo_root: Path
    data_root: Path  # $BADNETS_DATA, else ./data (data.resolve_data_root: the one rule)
    runs_dir: Path  # where notebooks write (runs/ or runs/quick/), git-ignored
    checkpoint_dir: Path  # the shipped, verified checkpoints
    trigger_dir: Path

    def pick(self, quick, full):
        """``quick`` in quick mode, else ``full``: ``epochs = cfg.pick(3, 10)``."""
        return quick if self.quick else full


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, device: str = "auto", verbose: bool = True) -> NotebookConfig:
    """Seed Python, NumPy and torch; choose the device; resolve paths; report the quick mode."""
    seed_everything(seed)
    quick = is_quick()
    data_root = resolve_data_root()
    runs = REPO_ROOT / "runs" / ("quick" if quick else "")
    runs.mkdir(parents=True, exist_ok=True)
    cfg = NotebookConfig(
        quick=quick,
        device=select_device(device),
        seed=seed,
        repo_root=REPO_ROOT,
        data_root=data_root,
        runs_dir=runs,
        checkpoint_dir=REPO_ROOT / "checkpoints",
        trigger_dir=REPO_ROOT / "triggers",
    )
    if verbose:
        mode = "QUICK (small data, few epochs)" if quick else "full"
        print(f"mode: {mode} | device: {cfg.device} | torch {torch.__version__} | seed {seed}")
    return cfg
