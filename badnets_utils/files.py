"""Safe file writes and the project's manifest of shipped files.

- ``atomic_write``: a reader never sees a half-written file, and no write through the package can
  overwrite a file the project ships (one listed in ``checkpoints/MANIFEST.json``).
- ``check_output_dir``: a run's output folder is usable, checked before any training.
- ``load_manifest`` / ``manifest_files`` / ``shipped_files``: the manifest primitive that
  ``checkpoints`` builds on (it lives here so that this module imports nothing of the package).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_NAME = "MANIFEST.json"
PROJECT_MANIFEST = REPO_ROOT / "checkpoints" / MANIFEST_NAME
STALE_TEMP_AGE_S = 3600.0  # a temporary file of an atomic write older than this was left by a killed process
MIN_FREE_BYTES = 50 * 1024 * 1024
# tempfile.mkstemp(prefix=".<name>.<pid>-", suffix=".tmp"): the pid tells whether the writer is still alive
_TEMP_PATTERN = re.compile(r"\..+\.(?:(\d+)-)?[a-z0-9_]{8}\.tmp")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest is not valid JSON of the expected shape."""


# ----------------------------------------------------------------------------- manifest


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as 64 lowercase hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_key(manifest: Path, section: str, key: object) -> str:
    """A manifest key must be a relative path inside its folder (no '..', not absolute)."""
    if not isinstance(key, str) or not key or Path(key).is_absolute() or ".." in Path(key).parts:
        raise ManifestError(f"{manifest}: {section} entry {key!r} is not a relative path inside the repository")
    return key


def _check_sha(manifest: Path, section: str, key: str, sha: object) -> str:
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise ManifestError(f"{manifest}: {section} entry {key!r} has sha256 {sha!r}; allowed: 64 lowercase hex digits")
    return sha


def check_manifest(path: str | os.PathLike, data: object) -> dict:
    """Check the parsed JSON of manifest ``path``; returns ``{"checkpoints": {...}, "files": {...}}``."""
    path = Path(path)
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: the manifest must be a JSON object, got {type(data).__name__}")
    checkpoints, files = data.get("checkpoints", {}), data.get("files", {})
    for section, value in (("checkpoints", checkpoints), ("files", files)):
        if not isinstance(value, dict):
            raise ManifestError(f"{path}: {section!r} must be a JSON object, got {type(value).__name__}")
    for key, entry in checkpoints.items():
        _check_key(path, "checkpoints", key)
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}: checkpoints entry {key!r} must be an object, got {type(entry).__name__}")
        if "sha256" not in entry:
            raise ManifestError(f"{path}: checkpoints entry {key!r} has no sha256")
        _check_sha(path, "checkpoints", key, entry["sha256"])
    for key, sha in files.items():
        _check_sha(path, "files", _check_key(path, "files", key), sha)
    return {"checkpoints": checkpoints, "files": files}


def load_manifest(path: str | os.PathLike) -> dict:
    """Read and check a manifest: ``{"checkpoints": {name: {"sha256": ..., ...}}, "files": {relpath: sha256}}``.

    Checkpoint names are relative to the manifest's folder; ``files`` paths are relative to the
    repository root (the folder above the manifest's). A missing manifest reads as empty.
    """
    path = Path(path)
    if not path.exists():
        return {"checkpoints": {}, "files": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
    return check_manifest(path, data)


def manifest_files(path: str | os.PathLike) -> dict[Path, str]:
    """Every file a manifest lists, as absolute path → SHA-256 (checkpoints first, then ``files``)."""
    path = Path(path).absolute()
    manifest = load_manifest(path)
    listed = {(path.parent / name).absolute(): e["sha256"] for name, e in manifest["checkpoints"].items()}
    listed.update({(path.parent.parent / rel).absolute(): sha for rel, sha in manifest["files"].items()})
    return listed


def shipped_files() -> dict[Path, str]:
    """Every file the project ships: absolute path → SHA-256, from ``checkpoints/MANIFEST.json``."""
    return manifest_files(PROJECT_MANIFEST)


def guard_shipped(path: str | os.PathLike) -> None:
    """Raise ValueError when ``path`` (symlinks followed) is a file the project ships."""
    target = Path(path).resolve()
    if any(target == shipped.resolve() for shipped in shipped_files()):
        raise ValueError(
            f"refusing to write {path}: it is a file the project ships (listed in checkpoints/{MANIFEST_NAME}); "
            "choose another --output_dir / name"
        )


# ----------------------------------------------------------------------------- writes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove ``.<name>.<pid>-XXXXXXXX.tmp`` files left by killed atomic writes: at once when their writer's process
    is gone, else when older than ``max_age_s`` (a writer on another machine sharing the folder).

    Only that pattern is touched; returns the removed paths. Errors are ignored (best effort).
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_PATTERN.fullmatch(entry.name)
        if not match:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime >= max_age_s
            orphan = pid is not None and pid != os.getpid() and not _alive(pid)
            if entry.is_file(follow_symlinks=False) and (old or orphan):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], object], stale_after_s: float = STALE_TEMP_AGE_S
) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it onto ``path``.

    Refuses (ValueError) a file the project ships. If ``write`` raises, the temporary file is removed
    and ``path`` is left as it was. Temporary files of killed writes older than ``stale_after_s`` go.
    """
    path = Path(path)
    guard_shipped(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, stale_after_s)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, stale_after_s: float = STALE_TEMP_AGE_S) -> Path:
    """Write text atomically (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")), stale_after_s)


# ----------------------------------------------------------------------------- output folders


def _missing_ancestors(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this process created (deepest first), as long as they are empty."""
    for made in folders:
        try:
            made.rmdir()
        except OSError:
            return


def _probe_folder(folder: Path) -> None:
    """Raise ValueError unless ``folder`` takes a new file and has room for checkpoints and logs."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".badnets-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"--output_dir {folder} is not writable ({reason}); give a folder you can write to") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"--output_dir {folder} has only {free // 2**20} MB free; allowed: a folder with at least "
            f"{MIN_FREE_BYTES // 2**20} MB free"
        )


def check_output_dir(path: str | os.PathLike, targets: Iterable[str | os.PathLike] = ()) -> Path:
    """Check, before training, that ``path`` is a usable output folder (created if needed); returns it.

    ``targets``: files the run will write (relative to ``path``, or absolute); each must not be shipped.
    On failure a one-line ValueError, and a folder this call created is removed again.
    """
    if str(path).strip() == "":
        raise ValueError("empty --output_dir; give a folder, e.g. runs")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output_dir {folder} is a file, not a folder; give a folder, e.g. runs")
    for target in targets:
        guard_shipped(folder / target)
    created = _missing_ancestors(folder.absolute())
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise ValueError(
                f"cannot create --output_dir {folder} ({reason}); give a folder you can write to"
            ) from None
        _probe_folder(folder)
    except ValueError:
        _remove_empty(created)
        raise
    return folder
