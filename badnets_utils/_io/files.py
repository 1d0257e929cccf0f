"""Safe file writes and the project's manifest of shipped files.

- ``atomic_write``: a reader never sees a half-written file, and no write through the package can
  overwrite a file the project ships (one listed in ``checkpoints/MANIFEST.json``).
- ``check_output_dir``: a run's output folder is usable, checked before any training.
- ``load_manifest`` / ``manifest_files`` / ``shipped_files``: the manifest primitive that
  ``checkpoints`` builds on (it lives here so that this module imports nothing of the package).
- ``input_path`` / ``open_input``: every path a user names is checked (and every input file opened) here, so
  that a long name, a missing permission, a folder, a FIFO or a device is one line naming the path, never a
  traceback or a hang.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds this badnets_utils (a checkout's root)
MANIFEST_NAME = "MANIFEST.json"
PROJECT_MANIFEST = REPO_ROOT / "checkpoints" / MANIFEST_NAME
STALE_TEMP_AGE_S = 3600.0  # a temporary file of an atomic write older than this was left by a killed process
MIN_FREE_BYTES = 50 * 1024 * 1024
# The temporary file of an atomic write: tempfile.mkstemp(prefix=".<name>.badnets-<host>-<pid>-", suffix=".tmp").
# <host> names this host's PID namespace (and boot): only there does a dead <pid> prove that the writer is gone.
_TEMP_PATTERN = re.compile(r"\..+\.badnets-([0-9a-f]{12})-(\d+)-[a-z0-9_]{8}\.tmp")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest is not valid JSON of the expected shape."""


class InputError(OSError, ValueError):
    """A path the user named cannot be used: one line naming it (an OSError and a ValueError, so that every
    command's error handler reports it in one line)."""


# ----------------------------------------------------------------------------- input paths

_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFLNK: "a symbolic link"}  # fmt: skip


def shown(path: str | os.PathLike, limit: int = 100) -> str:
    """A path for a one-line message: control characters escaped, a very long one cut in the middle."""
    text = str(path).encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else f"{text[: limit - 30]}…{text[-29:]} ({len(text)} characters)"


def shown_here(path: str | os.PathLike) -> str:
    """``shown``, as the path can be typed from here: relative to the working folder when below it, else in full."""
    path, here = Path(path).absolute(), Path.cwd()
    return shown(path.relative_to(here) if path.is_relative_to(here) else path)


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _refuse(what: str, path: str | os.PathLike, reason: str) -> InputError:
    return InputError(f"{what} {shown(path)}: {reason}")


def input_path(path: str | os.PathLike, what: str, folder: bool = False, missing_ok: bool = False) -> Path:
    """``path`` checked as an existing regular file (``folder``: an existing folder) that can be read.

    ``what`` names it in the message (a flag such as ``--trigger_path``). A missing path is returned as it is
    when ``missing_ok`` (the caller has its own message, or a fallback). Raises InputError (one line).
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if missing_ok:
            return path
        raise _refuse(what, path, "no such file or folder") from None
    except OSError as err:
        raise _refuse(what, path, f"cannot be used ({err.strerror or type(err).__name__})") from None
    if folder and not stat.S_ISDIR(info.st_mode):
        raise _refuse(what, path, f"is {_kind(info.st_mode)}, not a folder")
    if not folder and not stat.S_ISREG(info.st_mode):
        raise _refuse(what, path, f"is {_kind(info.st_mode)}; allowed: a regular file")
    if folder:
        try:
            with os.scandir(path):
                pass
        except OSError as err:
            raise _refuse(what, path, f"cannot be read ({err.strerror or type(err).__name__})") from None
    else:
        open_input(path, what).close()
    return path


def open_input(path: str | os.PathLike, what: str) -> IO[bytes]:
    """Open an input file for reading, in binary; only a regular file is opened (a FIFO never blocks: it is
    opened non-blocking and refused). Raises InputError (one line naming the path)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _refuse(what, path, "no such file") from None
    except OSError as err:
        raise _refuse(what, path, f"cannot be read ({err.strerror or type(err).__name__})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(what, path, f"is {_kind(mode)}; allowed: a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: str | os.PathLike, what: str, limit: int) -> bytes:
    """The bytes of an input file of at most ``limit`` bytes (checked before reading); InputError otherwise."""
    with open_input(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise _refuse(what, path, f"is {size} bytes; allowed: at most {limit}")
        try:
            return f.read(limit + 1)[:limit]
        except OSError as err:
            raise _refuse(what, path, f"cannot be read ({err.strerror or type(err).__name__})") from None


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
    """Raise ValueError when ``path`` (symlinks followed) is a file the project ships.

    The project's manifest is itself shipped: the list of protected files is never writable through the package
    (a new manifest is written elsewhere, e.g. by ``results --retrain``, and copied in with git).
    """
    target = Path(path).resolve()
    protected = [Path(PROJECT_MANIFEST), *shipped_files()]
    if any(target == shipped.resolve() for shipped in protected):
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


@functools.lru_cache(maxsize=1)
def _host_token() -> str:
    """12 hex digits naming this host, boot and PID namespace: where a writer's pid can be checked."""
    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(source) if source.endswith("/pid") else Path(source).read_text().strip())
        except OSError:
            parts.append("")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def temp_prefix(path: Path) -> str:
    """The prefix of ``path``'s temporary file: its name, this host's token and the writer's pid."""
    return f".{path.name}.badnets-{_host_token()}-{os.getpid()}-"


def remove_stale_temps(folder: str | os.PathLike, max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the temporary files of killed atomic writes (``temp_prefix`` + 8 characters + ``.tmp``, nothing else):
    at once when their writer ran on this host (same boot and PID namespace) and its process is gone, else only
    when older than ``max_age_s`` (a writer in another container or on another machine sharing the folder).

    Returns the removed paths. Errors are ignored (best effort).
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
        host, pid = match.group(1), int(match.group(2))
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime >= max_age_s
            orphan = host == _host_token() and pid != os.getpid() and not _alive(pid)
            if entry.is_file(follow_symlinks=False) and (old or orphan):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def current_umask() -> int:
    """The process's umask (reading it means setting it: it is put back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


LOCK_NAME = ".badnets.lock"  # in an output folder; a file's lock is ".<name>.lock" beside it


@contextlib.contextmanager
def held(path: str | os.PathLike, what: str) -> Iterator[None]:
    """One writer at a time for an output folder or a file (a sweep's CSV): an exclusive ``flock`` on a lock file
    beside it, held for the block. The kernel releases it when its holder dies, so a crash leaves nothing stuck; a
    second writer gets one line naming the process that holds it."""
    path = Path(path)
    lock = path / LOCK_NAME if path.is_dir() else path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise ValueError(f"{what} {shown(path)} is in use by process {holder} (another run writes there); wait "
                             f"for it to finish, or give another {what}") from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}".encode("ascii", "replace"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], object], stale_after_s: float = STALE_TEMP_AGE_S
) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it onto ``path``.

    Refuses (ValueError) a file the project ships and anything but a regular file (``refuse_non_file``). If
    ``write`` raises, the temporary file is removed and ``path`` is left as it was. Temporary files of killed writes
    older than ``stale_after_s`` go.
    """
    path = Path(path)
    refuse_non_file(path, follow=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, stale_after_s)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
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


def _probe_folder(folder: Path, shown_as: Path | None = None) -> None:
    """Raise ValueError unless ``folder`` takes a new file and has room for checkpoints and logs."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".badnets-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        where = f"{shown(shown_as)}: its folder {shown(folder)}" if shown_as else f"--output_dir {shown(folder)}"
        raise ValueError(f"{where} is not writable ({reason}); give a folder you can write to") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"--output_dir {folder} has only {free // 2**20} MB free; allowed: a folder with at least "
            f"{MIN_FREE_BYTES // 2**20} MB free"
        )


def refuse_non_file(target: str | os.PathLike, follow: bool = False) -> None:
    """The one output-path rule: a file the project writes is a regular file or absent, never a folder, device,
    FIFO or socket (a write renamed over ``/dev/null`` would replace it), and never a shipped file. ``follow``:
    judge what a symbolic link points to (a write replaces the link itself)."""
    guard_shipped(target)
    try:
        info = os.stat(target) if follow else os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as err:
        raise ValueError(f"cannot write {shown(target)} ({err.strerror or type(err).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"cannot write {shown(target)}: it is {_kind(info.st_mode)}; allowed: a file or nothing")


def check_writable(folder: Path, target: Path) -> None:
    """Before training: ``target`` (a file the run will write) can be written: not shipped, not a folder or other
    non-file, and every part of its path that exists is a folder, the deepest of them writable. Nothing is made."""
    refuse_non_file(target)
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot write {shown(target)}: {shown(parent)} is a file, not a folder")
    _probe_folder(parent, target)


def check_output_dir(path: str | os.PathLike, targets: Iterable[str | os.PathLike] = ()) -> Path:
    """Check, before training, that ``path`` is a usable output folder (created if needed); returns it.

    ``targets``: files the run will write (relative to ``path``, or absolute); each is checked by ``check_writable``.
    On failure a one-line ValueError, and a folder this call created is removed again.
    """
    if str(path).strip() == "":
        raise ValueError("empty --output_dir; give a folder, e.g. runs")
    folder = Path(path)
    try:
        os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):  # checked below, with their own messages
        pass
    except OSError as err:  # a name too long, a loop of links, no permission on a parent...
        raise _refuse("--output_dir", folder, f"cannot be used ({err.strerror or type(err).__name__})") from None
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output_dir {folder} is a file, not a folder; give a folder, e.g. runs")
    targets = [folder / target for target in targets]
    for target in targets:
        guard_shipped(target)
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
        for target in targets:
            check_writable(folder, target)
    except ValueError:
        _remove_empty(created)
        raise
    return folder
