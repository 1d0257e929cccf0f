"""An offline stand-in for torchvision's download mirrors, for tests: gzipped local idx files served on 127.0.0.1.

    with offline_mirror(real_data_root, tmp_path / "mirror"):
        ensure_dataset("MNIST", tmp_path / "empty")  # torchvision downloads, checks the md5 and unzips

Reusable by any test (a notebook test, say) that must see the download path work without internet.
(A file:// mirror does not work: torchvision's downloader reads ``response.length``, which file URLs lack.)
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

MIRRORED = ("MNIST", "FashionMNIST")
_MISSING = object()


def gzip_file(src: Path, dst: Path) -> str:
    """Write ``src`` gzipped (fast, reproducible) to ``dst``; its md5."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    return hashlib.md5(dst.read_bytes(), usedforsecurity=False).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


@contextlib.contextmanager
def _no_proxy_for_localhost() -> Iterator[None]:
    saved = {v: os.environ.get(v) for v in ("no_proxy", "NO_PROXY")}
    for var, value in saved.items():
        os.environ[var] = ",".join(filter(None, [value, "127.0.0.1"]))
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """An HTTP server for ``folder`` on a free port of 127.0.0.1, in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with _no_proxy_for_localhost():
            yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _patch(cls: type, **attrs) -> tuple:
    saved = (cls, {a: cls.__dict__.get(a, _MISSING) for a in attrs})
    for attr, value in attrs.items():
        setattr(cls, attr, value)
    return saved


def _restore(saved: list[tuple]) -> None:
    for cls, attrs in saved:
        for attr, value in attrs.items():
            if value is _MISSING:
                delattr(cls, attr)
            else:
                setattr(cls, attr, value)


@contextlib.contextmanager
def offline_mirror(src_root: str | Path, tmp_dir: str | Path, names: tuple[str, ...] = MIRRORED) -> Iterator[Path]:
    """While active, torchvision's MNIST / FashionMNIST download from ``tmp_dir``, served on 127.0.0.1.

    ``tmp_dir/<name>/`` gets gzipped copies of ``src_root/<name>/raw/*-ubyte`` under torchvision's file names;
    each class's ``mirrors`` points there and its ``resources`` carries the md5 of those copies, so torchvision's
    own download, md5 check and extraction run unchanged. A dataset absent from ``src_root`` gets an empty
    mirror (its download fails, as offline). Everything is restored on exit.
    """
    import torchvision.datasets as tvd

    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    saved: list[tuple] = []
    with serve_folder(tmp_dir) as base:
        try:
            for name in names:
                cls, mirror, raw = getattr(tvd, name), tmp_dir / name, Path(src_root) / name / "raw"
                mirror.mkdir(exist_ok=True)
                resources = []
                for gz, md5 in cls.resources:
                    source = raw / gz.removesuffix(".gz")
                    resources.append((gz, gzip_file(source, mirror / gz) if source.is_file() else md5))
                saved.append(_patch(cls, mirrors=[f"{base}{name}/"], resources=resources))
            yield tmp_dir
        finally:
            _restore(saved)
