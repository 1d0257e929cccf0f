"""BadNets Notebooks: a correct, fast BadNets backdoor baseline on MNIST and CIFAR-10."""

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .data import DATASETS, DatasetNotFoundError, ImageData, load_dataset, load_splits, random_subset
from .experiment import Setup, final_metrics, prepare, run
from .metrics import accuracy, classification_report, confusion_matrix
from .models import BadNet, build_model
from .poison import attack_test_set, choose_poison_indices, poison_count, poison_train_set
from .train import evaluate, fit, select_device
from .triggers import apply_trigger, load_trigger, make_trigger, save_trigger

__version__ = "0.1.0"
__all__ = [
    "BadNet", "CheckpointError", "DATASETS", "DatasetNotFoundError", "ImageData", "Setup",
    "accuracy", "apply_trigger", "attack_test_set", "build_model", "choose_poison_indices",
    "classification_report", "confusion_matrix", "evaluate", "final_metrics", "fit", "load_checkpoint",
    "load_dataset", "load_splits", "load_trigger", "make_trigger", "poison_count", "poison_train_set",
    "prepare", "random_subset", "run", "save_checkpoint", "save_trigger", "select_device",
]  # fmt: skip
