"""Notebooks stand alone: run on an EMPTY data root, they download what they need (as on Colab) and run to the end.

No test may use the network, so the download is redirected inside the notebook's kernel: a ``sitecustomize.py``
on the kernel's PYTHONPATH (and nothing else on it: the notebook's setup cell must find ``badnets_utils`` itself)
points torchvision's MNIST / FashionMNIST ``mirrors`` at gzipped copies of the real idx files, served on
127.0.0.1 by ``tests/mirror.py``, with ``resources`` carrying their md5, so torchvision's own download, md5
check and extraction run unchanged. CIFAR-10's URL points at a file the server does not have: notebook 01 must
take its "offline" path for it quickly. Quick mode (``BADNETS_QUICK=1``).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from mirror import MIRRORED, gzip_file, serve_folder

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
# 01 downloads and explores; 07 needs MNIST for training and must get it by itself on a fresh machine.
STANDALONE = ["01_download_and_explore_data.ipynb", "07_detecting_and_removing_backdoors.ipynb"]

SITECUSTOMIZE = textwrap.dedent(
    '''
    """Test only: torchvision downloads from the test's local mirror (see tests/notebooks/test_standalone.py)."""
    import json as _json
    import os as _os

    _cfg = _os.environ.get("BADNETS_TEST_MIRROR")
    if _cfg:
        import torchvision.datasets as _tvd

        _cfg = _json.loads(_cfg)
        for _name, _spec in _cfg["datasets"].items():
            getattr(_tvd, _name).mirrors = [_spec["mirror"]]
            getattr(_tvd, _name).resources = [tuple(r) for r in _spec["resources"]]
        _tvd.CIFAR10.url = _cfg["cifar10_url"]
    '''
)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, mnist_root):
    """Gzipped copies of the real idx files under torchvision's names, served on 127.0.0.1; yields the config."""
    import torchvision.datasets as tvd

    folder = tmp_path_factory.mktemp("mirror")
    datasets = {}
    for name in MIRRORED:
        raw = Path(mnist_root) / name / "raw"
        resources = []
        for gz, md5 in getattr(tvd, name).resources:
            source = raw / gz.removesuffix(".gz")
            resources.append([gz, gzip_file(source, folder / name / gz) if source.is_file() else md5])
        datasets[name] = resources
    with serve_folder(folder) as base:
        yield {
            "datasets": {n: {"mirror": f"{base}{n}/", "resources": r} for n, r in datasets.items()},
            "cifar10_url": f"{base}CIFAR10/not-here/cifar-10-python.tar.gz",
        }


@pytest.mark.parametrize("name", STANDALONE)
def test_notebook_runs_on_an_empty_data_root(name, mirror, tmp_path):
    from nbclient import NotebookClient

    data_root, site = tmp_path / "data", tmp_path / "site"
    data_root.mkdir()
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = dict(os.environ)  # inside serve_folder: no_proxy already names 127.0.0.1
    env.update(
        PYTHONPATH=str(site),
        BADNETS_DATA=str(data_root),
        BADNETS_QUICK="1",
        BADNETS_TEST_MIRROR=json.dumps(mirror),
        MPLBACKEND="agg",
    )

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('print("REACHED THE END")'))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}, allow_errors=False
    )
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start

    last = nb.cells[-1].outputs
    assert any("REACHED THE END" in o.get("text", "") for o in last), f"{name} did not run to the end"
    raw = data_root / "MNIST" / "raw"
    got = sorted(p.name for p in raw.iterdir()) if raw.is_dir() else []
    for _gz, _ in mirror["datasets"]["MNIST"]["resources"]:
        assert _gz.removesuffix(".gz") in got, f"{name} did not download MNIST into the empty root: {got}"
    assert not (data_root / "cifar-10-batches-py").exists()
    print(f"{name}: {seconds:.0f} s on an empty data root", file=sys.stderr)
