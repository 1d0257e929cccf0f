"""An offline stand-in for torchvision's download mirrors, for tests: file:// URLs of gzipped local idx files.

    with offline_mirror(real_data_root, tmp_path / "mirror"):
        ensure_dataset("MNIST", tmp_path / "empty")  # torchvision downloads, checks the md5 and unzips

Reusable by any test (a notebook test, say) that must see the download path work without internet.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

MIRRORED = ("MNIST", "FashionMNIST")


def gzip_file(src: Path, dst: Path) -> str:
    """Write ``src`` gzipped (fast, reproducible) to ``dst``; its md5."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    return hashlib.md5(dst.read_bytes(), usedforsecurity=False).hexdigest()


def _own(cls: type, attr: str):
    return cls.__dict__.get(attr, _MISSING)


_MISSING = object()


@contextlib.contextmanager
def offline_mirror(src_root: str | Path, tmp_dir: str | Path, names: tuple[str, ...] = MIRRORED) -> Iterator[Path]:
    """While active, torchvision's MNIST / FashionMNIST download from ``tmp_dir``.

    ``tmp_dir/<name>/`` gets gzipped copies of ``src_root/<name>/raw/*-ubyte`` under torchvision's file names;
    each class's ``mirrors`` points there and its ``resources`` carries the md5 of those copies, so torchvision's
    own download, md5 check and extraction run unchanged. A dataset absent from ``src_root`` gets an empty
    mirror (its download fails, as offline). Everything is restored on exit.
    """
    import torchvision.datasets as tvd

    saved = []
    try:
        for name in names:
            cls = getattr(tvd, name)
            saved.append((cls, _own(cls, "mirrors"), _own(cls, "resources")))
            mirror, raw = Path(tmp_dir) / name, Path(src_root) / name / "raw"
            mirror.mkdir(parents=True, exist_ok=True)
            resources = []
            for gz, md5 in cls.resources:
                source = raw / gz.removesuffix(".gz")
                resources.append((gz, gzip_file(source, mirror / gz) if source.is_file() else md5))
            cls.mirrors, cls.resources = [mirror.as_uri() + "/"], resources
        yield Path(tmp_dir)
    finally:
        for cls, mirrors, resources in saved:
            for attr, value in (("mirrors", mirrors), ("resources", resources)):
                if value is _MISSING:
                    delattr(cls, attr)
                else:
                    setattr(cls, attr, value)
