"""Save checkpoints atomically; load them safely (weights only) after checking their SHA-256.

A checkpoint is *verified* when the project's manifest (``checkpoints/MANIFEST.json`` of the
repository) lists it, or a manifest the caller names explicitly does; a manifest that merely sits
beside a file verifies nothing. A listed file whose SHA-256 differs is refused.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import torch

from . import files as filemod
from .data import DATASETS, canonical_name
from .files import MANIFEST_NAME, ManifestError, atomic_write, atomic_write_text, sha256_file, shipped_files
from .models import BadNet, build_model

__all__ = [
    "MANIFEST_NAME", "CheckpointError", "checkpoint_name", "load_checkpoint", "read_manifest", "run_tag",
    "save_checkpoint", "sha256_file", "shipped_files", "verify_checkpoint", "write_manifest",
]  # fmt: skip
MAX_CLASSES = 1000


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match the manifest; or a manifest is malformed."""


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


def save_checkpoint(model: BadNet, path: str | os.PathLike, dataset: str, **info) -> Path:
    """Write {'model_state', 'config'} atomically; ``info`` (plain values) joins the config."""
    config = {"dataset": dataset, **model.config, **info}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"model_state": state, "config": config}, buf)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


# ----------------------------------------------------------------------------- manifests


def _load_manifest(path: Path) -> dict:
    """``files.load_manifest``, with its errors as CheckpointError."""
    try:
        return filemod.load_manifest(path)
    except ManifestError as err:
        raise CheckpointError(str(err)) from None


def read_manifest(folder: str | os.PathLike) -> dict:
    """The ``checkpoints`` mapping of ``folder/MANIFEST.json`` ({} when there is none)."""
    return _load_manifest(Path(folder) / MANIFEST_NAME)["checkpoints"]


def write_manifest(folder: str | os.PathLike, entries: dict, files: dict | None = None) -> Path:
    """Write ``folder/MANIFEST.json`` atomically: ``{"checkpoints": entries, "files": files}``.

    ``entries``: checkpoint name → {"sha256": ..., ...}; ``files`` (optional): path relative to the
    repository root → SHA-256, for every other file the project ships (triggers, logs...).
    """
    path = Path(folder) / MANIFEST_NAME
    data: dict = {"checkpoints": dict(entries)}
    if files is not None:
        data["files"] = {Path(k).as_posix(): v for k, v in files.items()}
    try:
        filemod.check_manifest(path, data)
    except ManifestError as err:
        raise CheckpointError(f"not writing {err}") from None
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _lookup(path: Path, manifest: Path) -> dict | None:
    """The entry ``manifest`` has for ``path`` (checkpoints by name, ``files`` by repo-relative path)."""
    target = path.resolve()
    data = _load_manifest(manifest)
    for name, entry in data["checkpoints"].items():
        if (manifest.parent / name).resolve() == target:
            return entry
    for rel, sha in data["files"].items():
        if (manifest.parent.parent / rel).resolve() == target:
            return {"sha256": sha}
    return None


def verify_checkpoint(path: str | os.PathLike, manifest: str | os.PathLike | None = None) -> dict | None:
    """Check ``path`` against the project's manifest, then against ``manifest`` when one is given.

    Returns the manifest entry plus ``verified_by`` (the manifest's path) when the SHA-256 matches,
    None when no such manifest lists the file; raises CheckpointError when it is missing or does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path} (train one first, or give --checkpoint the path of a .pth file)"
        )
    manifests = [Path(filemod.PROJECT_MANIFEST)]
    if manifest is not None and Path(manifest).resolve() != manifests[0].resolve():
        manifests.append(Path(manifest))
    for source in manifests:
        entry = _lookup(path, source)
        if entry is None:
            continue
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise CheckpointError(
                f"checkpoint {path} does not match {source}: its SHA-256 is {digest[:16]}…, the manifest says "
                f"{entry['sha256'][:16]}…; the file was modified, corrupted or overwritten, refusing to load it "
                "(restore it with git, or point --checkpoint at your own file, which loads as unverified)"
            )
        return {**entry, "verified_by": str(source)}
    return None


# ----------------------------------------------------------------------------- loading


def _unpack(blob: object, path: Path) -> tuple[dict, dict]:
    """(state, config) of a loaded checkpoint: {'model_state', 'config'} or a bare state_dict."""
    if isinstance(blob, dict) and "model_state" in blob:
        state, config = blob["model_state"], blob.get("config", {})
    elif isinstance(blob, dict) and "fc2.weight" in blob:
        state, config = blob, {}
    else:
        raise CheckpointError(f"cannot load {path}: it holds no BadNet weights ('model_state' is missing)")
    if not isinstance(config, dict):
        raise CheckpointError(f"cannot load {path}: its config is a {type(config).__name__}; allowed: a dict")
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"cannot load {path}: its model_state is a {type(state).__name__}; allowed: a dict")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
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
    fc2 = state.get("fc2.weight")
    inferred = fc2.shape[0] if isinstance(fc2, torch.Tensor) and fc2.dim() == 2 else len(DATASETS[name]["classes"])
    return name, _check_int(path, config, "num_classes", range(2, MAX_CLASSES + 1), inferred)


def _check_weights(path: Path, state: dict, model: BadNet, name: str) -> None:
    """Every key of the model, with its shape and a floating dtype; nothing else."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
        raise CheckpointError(f"cannot load {path}: weights do not fit the {name} BadNet ({what})")
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape or not got.is_floating_point() or got.layout != torch.strided:
            raise CheckpointError(
                f"cannot load {path}: weights do not fit the {name} BadNet ({key} is {got.dtype} "
                f"{tuple(got.shape)}, allowed: float {tuple(want.shape)})"
            )


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
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot load {path}: not a valid PyTorch checkpoint ({type(err).__name__})") from None
    state, config = _unpack(blob, path)
    name, num_classes = _check_config(path, config, state, dataset)
    model = build_model(name, num_classes)
    _check_weights(path, state, model, name)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"cannot load {path}: weights do not fit the {name} BadNet ({first})") from None
    config.update(dataset=name, num_classes=num_classes, verified=entry is not None)
    config["verified_by"] = entry["verified_by"] if entry else None
    return model.eval(), config
