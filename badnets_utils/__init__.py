"""BadNets Notebooks: a correct, fast BadNets backdoor baseline on MNIST, Fashion-MNIST and CIFAR-10.

Where the attack happens: ``triggers`` (the pattern), ``poison`` (which training images carry it and what
label they get), ``experiment`` (the one pipeline: load → poison → train → evaluate). See docs/architecture.md.
"""

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .data import DATASETS, DatasetNotFoundError, ImageData, load_dataset, load_splits, random_subset
from .experiment import Attack, Budget, Result, Setup, final_metrics, load_data, prepare, run, run_many, train
from .metrics import classification_report, confusion_matrix
from .models import BadNet, build_model
from .poison import attack_test_set, choose_poison_indices, poison_count, poison_train_set
from .train import evaluate, select_device
from .triggers import apply_trigger, load_trigger, make_trigger, save_trigger

__version__ = "0.1.0"
__all__ = [
    "Attack", "BadNet", "Budget", "CheckpointError", "DATASETS", "DatasetNotFoundError", "ImageData", "Result",
    "Setup", "apply_trigger", "attack_test_set", "build_model", "choose_poison_indices", "classification_report",
    "confusion_matrix", "evaluate", "final_metrics", "load_checkpoint", "load_data", "load_dataset", "load_splits",
    "load_trigger", "make_trigger", "poison_count", "poison_train_set", "prepare", "random_subset", "run",
    "run_many", "save_checkpoint", "save_trigger", "select_device", "train",
]  # fmt: skip
