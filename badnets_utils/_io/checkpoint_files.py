"""Checkpoint files before any model is built: the manifest that verifies them, and a bounded look inside.

A checkpoint is *verified* when the project's manifest (``checkpoints/MANIFEST.json`` of the repository) lists it,
or a manifest the caller names explicitly does; a manifest that merely sits beside a file verifies nothing. A
listed file whose SHA-256 differs is refused.

Nothing in a checkpoint is believed before it is checked: ``inspect_checkpoint`` reads the zip archive's directory
(member count, sizes, no compression) and runs the pickle through an unpickler that builds nothing but plain values
and tensor *descriptions* (dtype, shape, storage size), all bounded by ``MAX_CHECKPOINT_BYTES``, before
``torch.load`` allocates anything (``core.checkpoints.load_checkpoint``).
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from badnets_utils._io import files as filemod
from badnets_utils._io.files import MANIFEST_NAME, InputError, ManifestError, atomic_write_text, open_input, sha256_file

# The bound on what a checkpoint may make us allocate: the sum of its archive members' sizes (a BadNet for
# CIFAR-10 with its history is under 2 MB; the shipped ones are 1.1 MB). Checked before torch.load.
MAX_CHECKPOINT_BYTES = 16 * 2**20


MAX_MEMBERS = 256


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match the manifest; or a manifest is malformed."""


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
