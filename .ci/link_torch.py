"""Let the Colab-like venv import the main venv's torch and torchvision without installing them a second time.

Run with the MAIN venv's python:  python .ci/link_torch.py LINK_DIR COLAB_SITE_PACKAGES

Why: torch here is a 5.5 GB CUDA build taken from this machine's disk; a second install costs about 2 minutes and
5.5 GB of disk, for the very same files. Why not a .pth line naming the main venv's site-packages: it would also
expose everything else installed there (ipywidgets 8, jupyterlab, ...) to the "Colab" kernel, and any package
missing from the Colab venv would silently come from the main one. Why not --system-site-packages: the main venv
is not the system.

So: LINK_DIR gets a symlink for each top-level file or folder (and the .dist-info) of torch, torchvision and
their requirements, transitively — except the distributions the Colab venv already has (numpy, pillow, jinja2,
... keep the Colab venv's own, pinned versions) — and COLAB_SITE_PACKAGES gets ``main-venv-torch.pth`` naming
LINK_DIR, after the venv's own entries on sys.path. Run it after the last ``pip install`` into the Colab venv:
pip must never see (and uninstall through) these links.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

ROOTS = ("torch", "torchvision")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots, skip: set[str]) -> list[metadata.Distribution]:
    """torch, torchvision and what they require (markers honoured), minus ``skip``."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = _norm(todo.pop())
        if name in seen or name in skip:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement this platform does not install
        seen[name] = dist
        from packaging.requirements import Requirement

        for req in dist.requires or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return list(seen.values())


def main(link_dir: str, colab_site: str) -> int:
    link_dir, colab_site = Path(link_dir).resolve(), Path(colab_site).resolve()
    skip = {_norm(d.metadata["Name"]) for d in metadata.distributions(path=[str(colab_site)])}
    link_dir.mkdir(parents=True, exist_ok=True)
    linked = []
    for dist in closure(ROOTS, skip):
        base = Path(dist.locate_file("")).resolve()
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops):
            src, dst = base / top, link_dir / top
            if top.endswith(".pth") or top == "__pycache__" or not src.exists() or dst.is_symlink():
                continue
            dst.symlink_to(src, target_is_directory=src.is_dir())
        linked.append(f"{dist.metadata['Name']} {dist.version}")
    (colab_site / "main-venv-torch.pth").write_text(f"{link_dir}\n", encoding="utf-8")
    print("linked from the main venv:", ", ".join(sorted(linked)))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
