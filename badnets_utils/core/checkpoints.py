"""A model to and from a file: saved atomically, loaded with ``torch.load(weights_only=True)`` only after the file
is verified against the manifest and looked inside (``_io.checkpoint_files``). After loading, every weight must be
finite and the normalisation buffers sane, and the classifier must have as many classes as the dataset."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import torch

from badnets_utils._io.checkpoint_files import CheckpointError, TensorInfo, inspect_checkpoint, verify_checkpoint
from badnets_utils._io.files import MANIFEST_NAME, atomic_write
from badnets_utils.core.data import DATASETS, canonical_name
from badnets_utils.core.models import BadNet, build_model

MEAN_RANGE, STD_RANGE = (0.0, 1.0), (1e-3, 1.0)  # the normalisation buffers of images scaled to [0, 1]
PARALLEL_PREFIX = "module."  # torch.nn.DataParallel's prefix of every key of the model it wraps


def run_tag(attack: str, trigger_label: int, poisoning_rate: float) -> str:
    """'trigger1' (all-to-one), 'all2all' or 'clean' (nothing poisoned): names a run's log."""
    if poisoning_rate == 0:
        return "clean"
    return "all2all" if attack == "all-to-all" else f"trigger{trigger_label}"


def checkpoint_name(dataset: str, attack: str, poisoning_rate: float) -> str:
    """badnet-MNIST.pth (all-to-one), badnet-MNIST-all2all.pth (all-to-all), clean-MNIST.pth (rate 0)."""
    if poisoning_rate == 0:
        return f"clean-{dataset}.pth"
    return f"badnet-{dataset}{'-all2all' if attack == 'all-to-all' else ''}.pth"


def save_checkpoint(model: BadNet, path: str | os.PathLike, dataset: str, **info) -> Path:
    """Write {'model_state', 'config'} atomically; ``info`` (plain values) joins the config."""
    config = {"dataset": dataset, **model.config, **info}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"model_state": state, "config": config}, buf)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


# ----------------------------------------------------------------------------- loading


def _unpack(blob: object, path: Path) -> tuple[dict, dict]:
    """(state, config) of a loaded checkpoint: {'model_state', 'config'} or a bare state_dict."""
    if isinstance(blob, dict) and "model_state" in blob:
        state, config = blob["model_state"], blob.get("config", {})
    elif isinstance(blob, dict) and ("fc2.weight" in blob or f"{PARALLEL_PREFIX}fc2.weight" in blob):
        state, config = blob, {}
    else:
        raise CheckpointError(f"cannot load {path}: it holds no BadNet weights ('model_state' is missing)")
    if not isinstance(config, dict):
        raise CheckpointError(f"cannot load {path}: its config is a {type(config).__name__}; allowed: a dict")
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"cannot load {path}: its model_state is a {type(state).__name__}; allowed: a dict")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, (torch.Tensor, TensorInfo)):
            raise CheckpointError(
                f"cannot load {path}: model_state entry {key!r} is a {type(value).__name__}; allowed: str → tensor"
            )
    return state, dict(config)


def _brief(value: object) -> str:
    """A one-line, short repr of a config value (tensors and containers by their type)."""
    if isinstance(value, (str, int, float)) or value is None:
        return repr(value)[:40]
    return f"a {type(value).__name__}"


def _check_int(path: Path, config: dict, key: str, allowed: list[int] | range, default: int) -> int:
    """``config[key]`` (``default`` when absent) as an int in ``allowed``, else a one-line error."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        shown = f"{allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else allowed
        raise CheckpointError(f"cannot load {path}: config {key} {_brief(value)} is not allowed; allowed: {shown}")
    return value


def _check_config(path: Path, config: dict, state: dict, dataset: str | None) -> tuple[str, int]:
    """Validate the config before any model is built; returns (dataset name, num_classes)."""
    wanted = canonical_name(dataset) if dataset is not None else None  # a bad argument: its own one-line error
    raw = config.get("dataset")
    if raw is None or (isinstance(raw, str) and not raw):  # absent: the argument's, else MNIST
        raw = wanted or "MNIST"
    try:
        name = canonical_name(raw) if isinstance(raw, str) else None
    except ValueError:
        name = None
    if name is None:
        raise CheckpointError(
            f"cannot load {path}: config dataset {_brief(raw)} is unknown; allowed: {', '.join(DATASETS)}"
        )
    if wanted is not None and name != wanted:
        raise CheckpointError(f"checkpoint {path} was trained on {name}, not {dataset}")
    channels, size, _ = DATASETS[name]["shape"]
    _check_int(path, config, "in_channels", [1, 3], channels)
    _check_int(path, config, "image_size", sorted({d["shape"][1] for d in DATASETS.values()}), size)
    for key, want in (("in_channels", channels), ("image_size", size)):
        if config.get(key, want) != want:
            raise CheckpointError(f"cannot load {path}: config {key} {config[key]} does not match {name} ({want})")
    k = len(DATASETS[name]["classes"])
    fc2 = state.get("fc2.weight")
    inferred = fc2.shape[0] if fc2 is not None and len(fc2.shape) == 2 else k
    if inferred != k:
        raise CheckpointError(f"cannot load {path}: its classifier has {inferred} classes, {name} has {k}")
    return name, _check_int(path, config, "num_classes", [k], k)


def _parallel_hint(state: dict) -> str:
    """What to do with weights saved from ``torch.nn.DataParallel`` (every key under ``module.``); "" otherwise."""
    if state and all(isinstance(k, str) and k.startswith(PARALLEL_PREFIX) for k in state):
        return (f"; they were saved from a DataParallel model: strip the {PARALLEL_PREFIX!r} prefix from every key "
                f"(k.removeprefix({PARALLEL_PREFIX!r})) and save them again")  # fmt: skip
    return ""


def _check_weights(path: Path, state: dict, model: BadNet, name: str) -> None:
    """Every key of the model, with its shape and a floating dtype; nothing else."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
        raise CheckpointError(
            f"cannot load {path}: weights do not fit the {name} BadNet ({what}){_parallel_hint(state)}"
        )
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape) or not got.dtype.is_floating_point:
            raise CheckpointError(
                f"cannot load {path}: weights do not fit the {name} BadNet ({key} is {got.dtype} "
                f"{tuple(got.shape)}, allowed: float {tuple(want.shape)})"
            )


def _check_values(path: Path, state: dict) -> None:
    """Every weight finite; the normalisation buffers within MEAN_RANGE / STD_RANGE (images are in [0, 1])."""
    for key, value in state.items():
        if not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"cannot load {path}: {key} holds NaN or infinite values")
    for key, (low, high) in (("mean", MEAN_RANGE), ("std", STD_RANGE)):
        value = state[key]
        if bool((value < low).any() or (value > high).any()):
            raise CheckpointError(f"cannot load {path}: normalisation {key} {value.flatten().tolist()} is outside "
                                  f"[{low}, {high}]")  # fmt: skip


def load_checkpoint(
    path: str | os.PathLike, dataset: str | None = None, quiet: bool = False, manifest: str | os.PathLike | None = None
) -> tuple[BadNet, dict]:
    """Verify, then load with ``torch.load(weights_only=True)``; returns (model, config).

    ``config["verified"]`` says whether the project's manifest (or ``manifest``, when given) lists the
    file, ``config["verified_by"]`` which one (None when unverified). A file listed nowhere still loads,
    with a one-line note. ``dataset`` (optional) must match the checkpoint's. Every problem is a
    one-line CheckpointError.
    """
    path = Path(path)
    entry = verify_checkpoint(path, manifest)
    if entry is None and not quiet:
        print(f"note: {path} is not listed in the project's {MANIFEST_NAME}: loading it unverified", file=sys.stderr)
    state, config = _unpack(inspect_checkpoint(path), path)  # checked before anything is allocated
    name, num_classes = _check_config(path, config, state, dataset)
    model = build_model(name, num_classes)
    _check_weights(path, state, model, name)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot load {path}: not a valid PyTorch checkpoint ({type(err).__name__})") from None
    state, config = _unpack(blob, path)
    _check_weights(path, state, model, name)
    _check_values(path, state)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"cannot load {path}: weights do not fit the {name} BadNet ({first})") from None
    config.update(dataset=name, num_classes=num_classes, verified=entry is not None)
    config["verified_by"] = entry["verified_by"] if entry else None
    return model.eval(), config
