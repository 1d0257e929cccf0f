"""BadNets Notebooks: a correct, fast BadNets backdoor baseline on MNIST, Fashion-MNIST and CIFAR-10.

Each folder is one reader's room (docs/architecture.md):

- ``core/``: the BadNets baseline; read this, in this order:
  ``config`` (Attack and Budget: every default and every check, once) → ``data`` → ``triggers`` (the pattern) →
  ``poison`` (which training images carry it and what label they get) → ``models`` → ``training`` →
  ``metrics`` → ``pipeline`` (prepare → train → evaluate → Result, and saving a run);
- ``defences/``: activation clustering, spectral signatures, fine-pruning, Neural Cleanse;
- ``studies/``: many runs at once (``pool``), the sweeps of notebook 04, the variants of 06, the paper's grids of 08;
- ``course/``: what the notebooks use beyond the core: the setup cell, exercises, figures, the trigger painter;
- ``tools/``: the commands (``python -m badnets_utils …``): training, releases, classroom, grading, the site;
- ``_io/``: private plumbing: safe files, checkpoints on disk, the machine's threads, progress bars.

The names below are the ones the notebooks use: ``from badnets_utils import Attack, Budget, run``.
"""

from badnets_utils._io.checkpoint_files import CheckpointError
from badnets_utils._io.machine import select_device
from badnets_utils.core.checkpoints import load_checkpoint, save_checkpoint
from badnets_utils.core.config import Attack, Budget, trigger_name
from badnets_utils.core.data import DATASETS, DatasetNotFoundError, ImageData, load_dataset, load_splits, random_subset
from badnets_utils.core.metrics import classification_report, confusion_matrix
from badnets_utils.core.models import BadNet, build_model
from badnets_utils.core.pipeline import (
    Prepared,
    Result,
    build_trigger,
    final_metrics,
    fine_tune,
    load_data,
    prepare,
    run,
    saved_model_note,
    train,
    transfer,
)
from badnets_utils.core.poison import attack_test_set, choose_poison_indices, poison_count, poison_train_set
from badnets_utils.core.training import epoch_summary, evaluate
from badnets_utils.core.triggers import apply_trigger, load_trigger, make_trigger, save_trigger
from badnets_utils.studies.pool import run_many

__version__ = "0.1.0"
__all__ = [
    "Attack", "BadNet", "Budget", "CheckpointError", "DATASETS", "DatasetNotFoundError", "ImageData", "Prepared",
    "Result", "apply_trigger", "attack_test_set", "build_model", "build_trigger", "choose_poison_indices",
    "classification_report", "confusion_matrix", "epoch_summary", "evaluate", "final_metrics", "fine_tune",
    "load_checkpoint", "load_data", "load_dataset", "load_splits", "load_trigger", "make_trigger", "poison_count",
    "poison_train_set", "prepare", "random_subset", "run", "run_many", "save_checkpoint", "save_trigger",
    "saved_model_note", "select_device", "train", "transfer", "trigger_name",
]  # fmt: skip
