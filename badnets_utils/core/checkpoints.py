"""Save checkpoints atomically; load them safely (weights only) after checking their SHA-256.

A checkpoint is *verified* when the project's manifest (``checkpoints/MANIFEST.json`` of the
repository) lists it, or a manifest the caller names explicitly does; a manifest that merely sits
beside a file verifies nothing. A listed file whose SHA-256 differs is refused.

Nothing in a checkpoint is believed before it is checked: ``inspect_checkpoint`` reads the zip archive's
directory (member count, sizes, no compression) and runs the pickle through an unpickler that builds nothing but
plain values and tensor *descriptions* (dtype, shape, storage size), all bounded by ``MAX_CHECKPOINT_BYTES``,
before ``torch.load`` allocates anything. After loading, every weight must be finite and the normalisation
buffers sane, and the classifier must have as many classes as the dataset.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from badnets_utils._io import files as filemod
from badnets_utils._io.files import (
    MANIFEST_NAME,
    InputError,
    ManifestError,
    atomic_write,
    atomic_write_text,
    open_input,
    sha256_file,
    shipped_files,
)
from badnets_utils.core.data import DATASETS, canonical_name
from badnets_utils.core.models import BadNet, build_model

__all__ = [
    "MANIFEST_NAME", "CheckpointError", "checkpoint_name", "inspect_checkpoint", "load_checkpoint", "read_manifest",
    "run_tag", "save_checkpoint", "sha256_file", "shipped_files", "verify_checkpoint", "write_manifest",
]  # fmt: skip
# The bound on what a checkpoint may make us allocate: the sum of its archive members' sizes (a BadNet for
# CIFAR-10 with its history is under 2 MB; the shipped ones are 1.1 MB). Checked before torch.load.
MAX_CHECKPOINT_BYTES = 16 * 2**20
MAX_MEMBERS = 256
MEAN_RANGE, STD_RANGE = (0.0, 1.0), (1e-3, 1.0)  # the normalisation buffers of images scaled to [0, 1]


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
    try:
        if not filemod.input_path(path, "checkpoint", missing_ok=True).exists():
            raise CheckpointError(
                f"checkpoint not found: {path} (train one first, or give --checkpoint the path of a .pth file)"
            )
        if manifest is not None:
            filemod.input_path(manifest, "--manifest")  # a missing or unusable one is never silently ignored
    except InputError as err:
        raise CheckpointError(str(err)) from None
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


# ----------------------------------------------------------------------------- inspection (before torch.load)


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as the checkpoint describes it, before any of it is loaded."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    storage_key: str
    storage_numel: int


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: torch.dtype
    numel: int


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}  # fmt: skip


def _rebuild_tensor(storage, offset, size, stride, *rest) -> TensorInfo:
    if not isinstance(storage, _StorageRef) or not all(isinstance(v, int) and v >= 0 for v in (offset, *size)):
        raise pickle.UnpicklingError("a tensor without a valid storage, offset or size")
    need = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=False)) + 1 if math.prod(size) else 0
    if need > storage.numel:
        raise pickle.UnpicklingError(f"a tensor of shape {tuple(size)} reads past its storage of {storage.numel}")
    return TensorInfo(storage.dtype, tuple(size), storage.key, storage.numel)


def _rebuild_parameter(data, requires_grad=False, hooks=None) -> TensorInfo:
    if not isinstance(data, TensorInfo):
        raise pickle.UnpicklingError("a parameter without a tensor")
    return data


class _Dict(dict):
    """An OrderedDict's stand-in: a state_dict carries ``_metadata`` as an attribute."""


def _ordered_dict(*args) -> dict:
    return _Dict(*args)


class _Describer(pickle.Unpickler):
    """Runs a checkpoint's pickle building only plain values and TensorInfo (what torch.save writes for weights
    and a config); every other global is refused, so the pickle can allocate no more than its own size."""

    _GLOBALS = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
                ("collections", "OrderedDict"): _ordered_dict}  # fmt: skip

    def find_class(self, module: str, name: str):
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[module, name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a checkpoint of weights does not need")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):  # fmt: skip
            raise pickle.UnpicklingError(f"an unknown persistent id {str(pid)[:40]}")
        return _StorageRef(pid[2], pid[1], pid[4])


def inspect_checkpoint(path: str | os.PathLike) -> object:
    """What ``torch.load`` would return, with every tensor as a TensorInfo, read without loading any tensor.

    Checks the archive first: at most ``MAX_MEMBERS`` members, none compressed, their sizes together at most
    ``MAX_CHECKPOINT_BYTES``, every storage exactly as large as its member. Raises CheckpointError (one line).
    """
    path = Path(path)
    try:
        with open_input(path, "checkpoint") as f, zipfile.ZipFile(f) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise CheckpointError(f"cannot load {path}: {len(members)} archive members; allowed: {MAX_MEMBERS}")
            total = sum(m.file_size for m in members)
            if total > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"cannot load {path}: it unpacks to {total} bytes; allowed: at most "
                                      f"{MAX_CHECKPOINT_BYTES} (a BadNet needs about 1 MB)")  # fmt: skip
            packed = [m.filename for m in members if m.compress_type != zipfile.ZIP_STORED]
            if packed:
                raise CheckpointError(f"cannot load {path}: member {packed[0]} is compressed (torch.save never does)")
            pickles = [m for m in members if m.filename.endswith("/data.pkl") and m.filename.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointError(f"cannot load {path}: not a PyTorch checkpoint (no single data.pkl)")
            prefix = pickles[0].filename[: -len("data.pkl")]
            sizes = {m.filename: m.file_size for m in members}
            blob = _Describer(io.BytesIO(archive.read(pickles[0])), encoding="utf-8").load()
    except CheckpointError:
        raise
    except InputError as err:
        raise CheckpointError(str(err)) from None
    except Exception as err:  # BadZipFile, UnpicklingError, EOFError... from a damaged or hostile file
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise CheckpointError(f"cannot load {path}: not a valid PyTorch checkpoint ({first})") from None
    for info in _tensors(blob):
        member = f"{prefix}data/{info.storage_key}"
        want = info.storage_numel * info.dtype.itemsize
        if sizes.get(member) != want:
            raise CheckpointError(f"cannot load {path}: storage {info.storage_key} should be {want} bytes, the "
                                  f"archive holds {sizes.get(member, 'none')}")  # fmt: skip
    return blob


def _tensors(value: object, depth: int = 0):
    """Every TensorInfo inside ``value`` (nested dicts, lists, tuples)."""
    if depth > 32:
        raise CheckpointError("a checkpoint nested deeper than 32 levels")
    if isinstance(value, TensorInfo):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v, depth + 1)


def read_config(path: str | os.PathLike) -> dict:
    """The config a checkpoint stores, read without loading its weights ({} for a bare state_dict)."""
    blob = inspect_checkpoint(path)
    config = blob.get("config", {}) if isinstance(blob, dict) else {}
    return config if isinstance(config, dict) and not any(True for _ in _tensors(config)) else {}


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
