"""files.py: shipped files are never overwritten, output folders are checked, killed writes leave no trace."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import badnets_utils._io.files as files
from badnets_utils._io.checkpoint_files import write_manifest
from badnets_utils._io.files import (
    atomic_write,
    atomic_write_text,
    check_output_dir,
    guard_shipped,
    remove_stale_temps,
    sha256_file,
    shipped_files,
)
from badnets_utils.core.checkpoints import load_checkpoint, save_checkpoint
from badnets_utils.core.models import build_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fake repository root shipping checkpoints/badnet-MNIST.pth and triggers/t.png."""
    (tmp_path / "checkpoints").mkdir()
    ckpt = save_checkpoint(build_model("MNIST"), tmp_path / "checkpoints" / "badnet-MNIST.pth", "MNIST")
    trigger = tmp_path / "triggers" / "t.png"
    atomic_write(trigger, lambda f: f.write(b"png"))
    write_manifest(tmp_path / "checkpoints", {ckpt.name: {"sha256": sha256_file(ckpt)}},
                   files={"triggers/t.png": sha256_file(trigger)})  # fmt: skip
    monkeypatch.setattr(files, "PROJECT_MANIFEST", tmp_path / "checkpoints" / "MANIFEST.json")  # shipped from now on
    return tmp_path


def test_every_real_shipped_file_is_guarded():
    listed = shipped_files()
    assert listed and all(path.is_absolute() for path in listed)
    for path in listed:
        with pytest.raises(ValueError, match=r"^refusing to write .*: it is a file the project ships"):
            guard_shipped(path)
    guard_shipped(ROOT / "runs" / "checkpoints" / "badnet-MNIST.pth")  # elsewhere: fine


def test_no_write_through_the_package_overwrites_a_shipped_file(project, tmp_path, monkeypatch):
    ckpt, trigger = project / "checkpoints" / "badnet-MNIST.pth", project / "triggers" / "t.png"
    before = {p: p.read_bytes() for p in (ckpt, trigger)}
    with pytest.raises(ValueError, match=r"refusing to write .*badnet-MNIST.pth: .*choose another --output_dir"):
        save_checkpoint(build_model("MNIST"), ckpt, "MNIST")
    with pytest.raises(ValueError, match=r"refusing to write .*t.png"):
        atomic_write_text(trigger, "x")
    monkeypatch.chdir(project)  # restored after the test: a later test's relative paths mean the repository's
    with pytest.raises(ValueError, match=r"refusing to write triggers/../triggers/t.png"):
        atomic_write_text("triggers/../triggers/t.png", "x")
    link = tmp_path / "elsewhere.png"
    link.symlink_to(trigger)
    with pytest.raises(ValueError, match="refusing to write"):
        atomic_write_text(link, "x")
    assert {p: p.read_bytes() for p in before} == before
    assert not [p for p in project.rglob("*.tmp")]
    atomic_write_text(project / "checkpoints" / "mine.pth", "ok")


def test_broken_project_manifest_refuses_writes_in_one_line(project):
    (project / "checkpoints" / "MANIFEST.json").write_text('{"files": {"a": "nothex"}}')
    with pytest.raises(ValueError, match=r"MANIFEST.json: files entry 'a' has sha256 'nothex'") as info:
        atomic_write_text(project / "out.txt", "x")
    assert "\n" not in str(info.value) and not (project / "out.txt").exists()


# ----------------------------------------------------------------------------- check_output_dir


def test_output_dir_is_created_and_returned(tmp_path):
    assert check_output_dir(tmp_path / "runs" / "a") == tmp_path / "runs" / "a"
    assert (tmp_path / "runs" / "a").is_dir() and list((tmp_path / "runs" / "a").iterdir()) == []


@pytest.mark.parametrize("empty", ["", "  "])
def test_empty_output_dir(empty):
    with pytest.raises(ValueError, match=r"^empty --output_dir; give a folder, e.g. runs$"):
        check_output_dir(empty)


def test_output_dir_that_is_a_file_or_cannot_be_created(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"--output_dir .*f is a file, not a folder"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(ValueError, match=r"cannot create --output_dir .*f/sub \("):
        check_output_dir(tmp_path / "f" / "sub")


def test_unwritable_output_dir_is_refused_and_left_as_found(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    with pytest.raises(ValueError, match=r"--output_dir .*new/deep is not writable \(Permission denied\)"):
        check_output_dir(tmp_path / "new" / "deep")
    assert list(tmp_path.iterdir()) == []  # the folders it made are gone again


def test_full_disk_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: _Usage(10 * 2**20))
    with pytest.raises(ValueError, match=r"has only 10 MB free; allowed: a folder with at least 50 MB free"):
        check_output_dir(tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


class _Usage:
    def __init__(self, free: int) -> None:
        self.total, self.used, self.free = free, 0, free


def test_output_dir_targets_must_not_be_shipped(project):
    with pytest.raises(ValueError, match="refusing to write .*badnet-MNIST.pth"):
        check_output_dir(project, targets=["checkpoints/badnet-MNIST.pth", "logs/MNIST_trigger1.csv"])
    assert check_output_dir(project / "runs", targets=["checkpoints/badnet-MNIST.pth"]) == project / "runs"


# ----------------------------------------------------------------------------- stale temporary files


def _age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_remove_stale_temps_only_touches_old_files_of_our_pattern(tmp_path):
    old = tmp_path / ".c.pth.badnets-0123456789ab-1-ab_12xyz.tmp"
    old.write_bytes(b"half")
    _age(old, 7200)
    fresh = tmp_path / ".c.pth.badnets-0123456789ab-1-zz99zz99.tmp"
    fresh.write_bytes(b"writing")
    others = [tmp_path / n for n in ("notes.tmp", ".x.tmp", "c.pth", ".c.pth.short.tmp", ".notes.20240101.tmp",
                                     ".c.pth.123-ab_12xyz.tmp")]  # fmt: skip
    for p in others:
        p.write_bytes(b"keep")
        _age(p, 7200)
    assert remove_stale_temps(tmp_path) == [old]
    assert fresh.exists() and all(p.exists() for p in others)
    assert remove_stale_temps(tmp_path, max_age_s=0) == [fresh]


def test_atomic_write_sweeps_its_folder(tmp_path):
    stale = tmp_path / ".log.csv.badnets-0123456789ab-7-a1b2c3d4.tmp"
    stale.write_bytes(b"half")
    _age(stale, 4000)
    atomic_write_text(tmp_path / "other.csv", "x")
    assert not stale.exists() and (tmp_path / "other.csv").read_text() == "x"


WRITER = textwrap.dedent(
    """
    # Imports torch once, then for each line on stdin forks a writer that saves a checkpoint and a
    # slowly written log in a loop, with atomic writes, until the test kills it (SIGKILL).
    import os, sys, time
    import torch
    from badnets_utils.core.checkpoints import save_checkpoint
    from badnets_utils._io.files import atomic_write
    from badnets_utils.core.models import build_model

    def write_forever(folder):
        model, i = build_model("MNIST"), 0

        def slow_log(f):
            for line in range(40):
                f.write(f"{i},{line}\\n".encode())
                f.flush()
                time.sleep(0.002)
            f.write(b"END\\n")

        while True:
            with torch.no_grad():
                model.fc2.bias.fill_(i)
            save_checkpoint(model, f"{folder}/c.pth", "MNIST", step=i)
            atomic_write(f"{folder}/log.csv", slow_log)
            if i == 0:
                print(os.getpid(), flush=True)
            i += 1

    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            write_forever(sys.argv[1])
        os.waitpid(pid, 0)
    """
)


def _check_complete(folder: Path) -> None:
    model, config = load_checkpoint(folder / "c.pth", quiet=True)
    assert torch.all(model.fc2.bias == config["step"])
    lines = (folder / "log.csv").read_text().splitlines()
    assert lines[-1] == "END" and len(lines) == 41 and len({line.split(",")[0] for line in lines[:-1]}) == 1


def test_killed_writers_leave_complete_files_and_sweepable_temps(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(0)
    orphans = 0
    supervisor = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        for _ in range(6):
            supervisor.stdin.write(b"go\n")
            supervisor.stdin.flush()
            writer = int(supervisor.stdout.readline())
            time.sleep(rng.uniform(0.02, 0.3))
            os.kill(writer, signal.SIGKILL)
            time.sleep(0.05)  # the supervisor reaps it
            _check_complete(tmp_path)
            orphans += len(list(tmp_path.glob(".*.tmp")))
    finally:
        supervisor.stdin.close()
        supervisor.wait(timeout=30)
        supervisor.stdout.close()
    assert orphans > 0, "no kill hit a write: the test did not exercise an interrupted write"
    atomic_write_text(tmp_path / "log.csv", "\n".join(["0,0"] * 40 + ["END"]) + "\n", stale_after_s=0)
    assert list(tmp_path.glob(".*.tmp")) == []
    _check_complete(tmp_path)
