"""Save checkpoints atomically; load them safely (weights only) after checking their SHA-256."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from pathlib import Path

import torch

from .files import atomic_write, atomic_write_text
from .models import BadNet, build_model

MANIFEST_NAME = "MANIFEST.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match its manifest."""


def run_tag(attack: str = "all-to-one", trigger_label: int = 1, poisoning_rate: float = 0.1) -> str:
    """'trigger1' (all-to-one), 'all2all' or 'clean' (nothing poisoned): names a run's log."""
    if poisoning_rate == 0:
        return "clean"
    return "all2all" if attack == "all-to-all" else f"trigger{trigger_label}"


def checkpoint_name(dataset: str, attack: str = "all-to-one", poisoning_rate: float = 0.1) -> str:
    """badnet-MNIST.pth (all-to-one), badnet-MNIST-all2all.pth (all-to-all), clean-MNIST.pth (rate 0)."""
    if poisoning_rate == 0:
        return f"clean-{dataset}.pth"
    return f"badnet-{dataset}{'-all2all' if attack == 'all-to-all' else ''}.pth"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(model: BadNet, path: str | os.PathLike, dataset: str, **info) -> Path:
    """Write {'model_state', 'config'} atomically; ``info`` (plain values) joins the config."""
    config = {"dataset": dataset, **model.config, **info}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"model_state": state, "config": config}, buf)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def read_manifest(folder: str | os.PathLike) -> dict:
    """The ``checkpoints`` mapping of ``folder/MANIFEST.json`` ({} when there is none)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())["checkpoints"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None


def write_manifest(folder: str | os.PathLike, entries: dict) -> Path:
    text = json.dumps({"checkpoints": entries}, indent=2, sort_keys=True) + "\n"
    return atomic_write_text(Path(folder) / MANIFEST_NAME, text)


def verify_checkpoint(path: str | os.PathLike) -> dict | None:
    """Check ``path`` against the manifest of its folder.

    Returns the manifest entry when the SHA-256 matches, None when the file is not listed;
    raises CheckpointError when it is missing or does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path} (train one first, or give --checkpoint the path of a .pth file)"
        )
    entry = read_manifest(path.parent).get(path.name)
    if entry is None:
        return None
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} does not match {path.parent / MANIFEST_NAME}: its SHA-256 is "
            f"{digest[:16]}…, the manifest says {entry['sha256'][:16]}…; the file was modified, corrupted or "
            "overwritten by another training run, refusing to load it (restore it with git, or point "
            "--checkpoint at your own file, which loads as unverified)"
        )
    return entry


def load_checkpoint(path: str | os.PathLike, dataset: str | None = None, quiet: bool = False) -> tuple[BadNet, dict]:
    """Verify, then load with ``torch.load(weights_only=True)``; returns (model, config).

    A file not listed in a manifest still loads, with a one-line note that it is unverified.
    ``dataset`` (optional) must match the checkpoint's.
    """
    path = Path(path)
    entry = verify_checkpoint(path)
    if entry is None and not quiet:
        print(f"note: {path} is not in a {MANIFEST_NAME}: loading it unverified", file=sys.stderr)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot load {path}: not a valid PyTorch checkpoint ({type(err).__name__})") from None
    if isinstance(blob, dict) and "model_state" in blob:
        state, config = blob["model_state"], dict(blob.get("config", {}))
    elif isinstance(blob, dict) and "fc2.weight" in blob:  # a bare state_dict
        state, config = blob, {}
    else:
        raise CheckpointError(f"cannot load {path}: it holds no BadNet weights")
    name = config.get("dataset") or dataset or "MNIST"
    if dataset is not None and name != dataset:
        raise CheckpointError(f"checkpoint {path} was trained on {name}, not {dataset}")
    model = build_model(name, config.get("num_classes"))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"cannot load {path}: weights do not fit the {name} BadNet ({first})") from None
    config["dataset"] = name
    config["verified"] = entry is not None
    return model.eval(), config
