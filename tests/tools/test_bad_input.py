"""Bad input refused in one line before it does harm: output paths that cannot be written, input paths
that are not regular files, repairs that would touch others' files, checkpoints and data checked before they are
believed, set-repo and classroom input, the project's manifest, and settings given through the API. One test (or a
few) per class of failure; each failed on the code before it."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import badnets_utils._io.files as files
from badnets_utils._io.checkpoint_files import CheckpointError, write_manifest
from badnets_utils._io.files import atomic_write_text, remove_stale_temps, temp_prefix
from badnets_utils.core.checkpoints import load_checkpoint, save_checkpoint
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import DATASETS, load_dataset
from badnets_utils.core.models import build_model
from badnets_utils.core.pipeline import SaveError, check_output, prepare, repair_logs, save_run
from badnets_utils.core.training import load_history
from badnets_utils.course.canvas import TriggerCanvas
from badnets_utils.tools import cli
from tests.core.test_run_faults import fake_result

ROOT = Path(__file__).resolve().parents[2]
LONG = "x" * 300


def _one_line_exit_2(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = "".join(line for line in capsys.readouterr().err.splitlines(True) if not line.startswith("note: "))
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- 1. a run lost at its last step


@pytest.mark.parametrize("blocker", ["logs", "checkpoints/badnet-MNIST.pth"])
def test_output_paths_that_cannot_be_written_are_refused_before_training(tmp_path, blocker):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    if blocker == "logs":
        (out / "logs").write_text("a file where a folder goes")
    else:
        (out / blocker).mkdir()  # a folder where the checkpoint goes
    with pytest.raises(ValueError, match=r"cannot write .*(logs|badnet-MNIST.pth)"):
        check_output(Attack(), out)


def test_read_only_subfolder_is_refused_before_training(tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    real = files.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if Path(dir).name == "checkpoints":
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    with pytest.raises(ValueError, match=r"badnet-MNIST.pth: its folder .*checkpoints is not writable"):
        check_output(Attack(), out)


def test_a_write_failing_at_the_end_keeps_the_model_and_no_half_pair(tmp_path, monkeypatch):
    import badnets_utils.core.pipeline as pipeline

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "save_history", disk_full)
    monkeypatch.setattr(pipeline.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(
        SaveError, match=r"cannot write .*MNIST_trigger1.csv \(No space left on device\).*kept in "
    ) as e:
        save_run(fake_result(3), tmp_path / "out")
    assert "\n" not in str(e.value)
    assert list((tmp_path / "out" / "checkpoints").glob("*.pth")) == []  # never half a pair
    [kept] = (tmp_path / "tmp").glob("badnets-*-badnet-MNIST.pth")
    assert str(kept) in str(e.value)
    model, config = load_checkpoint(kept, quiet=True)
    assert config["history"][0]["train_loss"] == 3.0


# ----------------------------------------------------------------------------- 2. OSErrors on input paths


@pytest.mark.parametrize("flag", ["--trigger_path", "--checkpoint", "--output_dir", "--data_path"])
def test_a_300_character_path_is_one_line(flag, capsys):
    argv = [flag, LONG, "--train_limit", "10", "--test_limit", "10", "--epochs", "1", "--no_progress"]
    argv += ["--load_local"] if flag == "--checkpoint" else []
    err = _one_line_exit_2(argv, capsys)
    assert "File name too long" in err or "x" * 40 in err


def _mnist_copy(tmp_path: Path, mnist_root) -> Path:
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in Path(mnist_root, "MNIST", "raw").glob("t10k-*-ubyte"):
        os.symlink(f, raw / f.name)
    return tmp_path / "data"


def test_an_idx_file_that_is_a_fifo_or_a_folder_is_refused_without_hanging(tmp_path, mnist_root):
    code = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from badnets_utils.core.data import load_dataset
        raw = Path({str(tmp_path)!r}) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        os.mkfifo(raw / "t10k-images-idx3-ubyte")
        (raw / "t10k-labels-idx1-ubyte").mkdir()
        try:
            load_dataset("MNIST", train=False, root={str(tmp_path)!r})
        except ValueError as err:
            print(err)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "is a FIFO (named pipe); allowed: a regular file" in done.stdout, done.stderr


def test_an_idx_path_that_is_a_folder_is_one_line(tmp_path, mnist_root):
    root = _mnist_copy(tmp_path, mnist_root)
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").mkdir()
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: is a folder; allowed: a regular file"):
        load_dataset("MNIST", train=False, root=root)


# ----------------------------------------------------------------------------- 3. repairs touch only their own


def test_a_backup_checkpoint_never_rewrites_the_current_log(tmp_path):
    ckpt, log = save_run(fake_result(1), tmp_path)
    shutil.copy(ckpt, ckpt.with_name("badnet-MNIST.backup.pth"))  # an older run's checkpoint, kept by the user
    save_run(fake_result(2), tmp_path)
    current = log.read_text()
    assert repair_logs(tmp_path) == [] and log.read_text() == current
    assert load_history(log)[0]["train_loss"] == 2.0


def test_cleanup_keeps_user_files_and_foreign_writers_temps(tmp_path):
    notes = tmp_path / ".notes.20240101.tmp"
    foreign = tmp_path / ".c.pth.badnets-0123456789ab-999999-abcdefgh.tmp"  # another PID namespace, pid 'dead' here
    for p in (notes, foreign):
        p.write_text("keep")
        old = os.path.getmtime(p) - 100
        os.utime(p, (old, old))
    assert remove_stale_temps(tmp_path) == []
    assert notes.exists() and foreign.exists()
    dead = tmp_path / (temp_prefix(tmp_path / "c.pth").rsplit("-", 2)[0] + "-999999-abcdefgh.tmp")
    dead.write_text("ours, its writer gone")
    if not files._alive(999999):
        assert remove_stale_temps(tmp_path) == [dead]


# ----------------------------------------------------------------------------- 4. checkpoints checked first


def _deflated_bomb(path: Path) -> Path:
    """A small checkpoint whose weights carry an extra 100 MB tensor of zeros, deflated to ~100 kB (the issue's
    case: 4 GB in a 4.9 MB file)."""
    model = build_model("MNIST")
    buf = io.BytesIO()
    torch.save({"model_state": {**model.state_dict(), "extra": torch.zeros(25 * 2**20)}, "config": {}}, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return path


def test_a_deflated_bomb_is_refused_before_anything_is_allocated(tmp_path):
    good = save_checkpoint(build_model("MNIST"), tmp_path / "good.pth", "MNIST")
    bomb = _deflated_bomb(tmp_path / "bomb.pth")
    assert bomb.stat().st_size < 2 * good.stat().st_size
    with pytest.raises(CheckpointError, match=r"unpacks to \d+ bytes; allowed: at most"):
        load_checkpoint(bomb, quiet=True)
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(bomb, tmp_path / "checkpoints" / "foreign.pth")
    assert repair_logs(tmp_path) == []


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["fc1.0.weight"].fill_(float("nan")), r"fc1.0.weight holds NaN or infinite values"),
        (lambda s: s["conv1.0.bias"].fill_(float("inf")), r"conv1.0.bias holds NaN or infinite"),
        (lambda s: s["std"].fill_(0.0), r"normalisation std \[0.0\] is outside"),
        (lambda s: s["mean"].fill_(1e30), r"normalisation mean .* is outside"),
    ],
)
def test_non_finite_weights_and_absurd_buffers_are_refused(tmp_path, change, message):
    model = build_model("MNIST")
    with torch.no_grad():
        change(dict(model.state_dict()))
    path = save_checkpoint(model, tmp_path / "m.pth", "MNIST")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, quiet=True)


@pytest.mark.parametrize("k", [2, 20])
def test_a_classifier_with_the_wrong_class_count_is_one_line_in_the_cli(tmp_path, k, capsys):
    path = save_checkpoint(build_model("MNIST", num_classes=k), tmp_path / "m.pth", "MNIST")
    err = _one_line_exit_2(["--load_local", "--checkpoint", str(path), "--test_limit", "10"], capsys)
    assert f"{k} classes" in err


MEASURE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from badnets_utils.core.checkpoints import load_checkpoint
    from badnets_utils._io.checkpoint_files import CheckpointError

    def status(key):  # kB, from Linux's /proc/self/status
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))

    open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current resident size
    before = status("VmRSS:")
    try:
        load_checkpoint({path!r}, quiet=True)
    except CheckpointError:
        pass
    print((status("VmHWM:") - before) // 1024)
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak memory is read from Linux's /proc")
def test_loading_any_checkpoint_stays_within_the_memory_bound(tmp_path):
    good = save_checkpoint(build_model("MNIST"), tmp_path / "good.pth", "MNIST")
    bomb = _deflated_bomb(tmp_path / "bomb.pth")
    for path in (good, bomb):
        done = subprocess.run([sys.executable, "-c", MEASURE.format(root=str(ROOT), path=str(path))],
                              capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        assert int(done.stdout) < 64, f"{path.name}: peak memory grew by {done.stdout.strip()} MB"


# ----------------------------------------------------------------------------- 5. data the checks never see


def test_a_legacy_processed_cache_is_never_read(tmp_path, mnist_root):
    root = _mnist_copy(tmp_path, mnist_root)
    (root / "MNIST" / "processed").mkdir()
    fake = (torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.long))
    for name in ("training.pt", "test.pt"):
        torch.save(fake, root / "MNIST" / "processed" / name)
    assert len(load_dataset("MNIST", train=False, root=root)) == 10_000


def test_a_cifar_pickle_asking_for_a_huge_blank_array_is_refused(tmp_path, cifar_root):
    class Huge:
        def __reduce__(self):
            return (np.ndarray, ((1_200_000, 3072), np.dtype("u1")))

    batch = Path(cifar_root) / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({"data": Huge(), "labels": [0] * 10}, protocol=2))
    with pytest.raises(ValueError, match=r"larger than the file"):
        load_dataset("CIFAR10", train=False, root=cifar_root)


# ----------------------------------------------------------------------------- 6, 7. set-repo and classroom


def test_set_repo_refuses_a_trailing_newline_and_check_compiles_setup_cells(tmp_path, capsys):
    from badnets_utils.tools import github as repo

    with pytest.raises(repo.SlugError):
        repo.check_slug("evil/x\n", "main")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.png", ".*"))
    shutil.copy(ROOT / repo.SLUG_FILE, tmp_path / repo.SLUG_FILE)
    path = sorted((tmp_path / "notebooks").glob("*.ipynb"))[0]
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "setup" in c["metadata"].get("tags", []))
    cell["source"] = "".join(cell["source"]).replace('REPO = "', 'REPO = "\n', 1)
    path.write_text(json.dumps(nb))
    assert any("setup cell does not compile" in p for p in repo.check_repo(tmp_path))
    assert cli.main(["set-repo", "--root", str(tmp_path / "none"), "a/b"]) == 2
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("content", ["{}", "[1, 2]", '{"cells": 3}'])
def test_classroom_on_notebooks_of_the_wrong_shape_is_one_line(tmp_path, content, capsys):
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "a.ipynb").write_text(content)
    assert cli.main(["classroom", str(tmp_path / "out"), "--notebooks", str(tmp_path / "nb")]) == 2
    err = capsys.readouterr().err
    assert "a.ipynb is not a valid notebook" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- 8, 9. the manifest


def test_the_project_manifest_cannot_be_rewritten_through_the_package():
    before = files.PROJECT_MANIFEST.read_bytes()
    with pytest.raises(ValueError, match="refusing to write .*MANIFEST.json"):
        write_manifest(files.PROJECT_MANIFEST.parent, {})
    with pytest.raises(ValueError, match="refusing to write"):
        atomic_write_text(files.PROJECT_MANIFEST, "{}")
    assert files.PROJECT_MANIFEST.read_bytes() == before


def test_results_on_a_manifest_with_only_sha256_is_one_line(tmp_path, capsys):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "m.pth", "MNIST")
    write_manifest(tmp_path, {"m.pth": {"sha256": files.sha256_file(path)}})
    err = _one_line_exit_2(["results", "--checkpoints", str(tmp_path)], capsys)
    assert "entry 'm.pth': dataset is missing" in err


# ----------------------------------------------------------------------------- 10. API paths with the CLI's checks


def test_canvas_load_of_a_decompression_bomb_is_one_line(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("L", (20_000, 20_000)).save(bomb, optimize=True)
    with pytest.raises(ValueError, match="too large"):
        TriggerCanvas().load(bomb)


@pytest.mark.parametrize("trigger", [torch.zeros(1, 0, 0, dtype=torch.uint8), torch.zeros(1, 40, 40, dtype=torch.uint8),
                                     torch.zeros(1, 3, 3), torch.zeros(2, 3, 3, dtype=torch.uint8)])  # fmt: skip
def test_a_tensor_trigger_is_checked_like_a_file(trigger):
    with pytest.raises(ValueError, match="trigger tensor .* does not fit"):
        Attack(trigger=trigger)  # checked when the attack is made


# ----------------------------------------------------------------------------- also


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    attack = Attack(seed=np.int64(3), target=np.int32(2), rate=np.float32(0.25))  # normalised when made
    assert type(attack.seed) is int and type(attack.target) is int and type(attack.rate) is float
    budget = Budget(lr=np.float32(0.01), epochs=np.int64(2))
    assert type(budget.lr) is float and type(budget.epochs) is int


def test_a_fractional_trigger_position_is_refused():
    with pytest.raises(ValueError, match=r"trigger position \(1.5, 2\)"):
        Attack(position=(1.5, 2))


def test_a_missing_manifest_is_not_silently_ignored(tmp_path):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "m.pth", "MNIST")
    with pytest.raises(CheckpointError, match=r"--manifest .*none.json: no such file"):
        load_checkpoint(path, manifest=tmp_path / "none.json")


def test_a_rate_that_poisons_nothing_is_refused_in_the_cli(tmp_path, capsys, mnist_root):
    argv = ["--poisoning_rate", "1e-320", "--train_limit", "20", "--test_limit", "20", "--output_dir",
            str(tmp_path / "o"), "--data_path", str(mnist_root)]  # fmt: skip
    assert "poisons 0 of them" in _one_line_exit_2(argv, capsys)


def test_tilde_after_equals_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = cli._expand_paths(cli.build_parser().parse_args(["--output_dir=~/x"]))
    assert args.output_dir == str(tmp_path / "x")


def test_a_clean_tiny_run_still_saves_a_pair(tmp_path):
    images = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    from badnets_utils.core.data import ImageData

    data = ImageData(images, torch.arange(20) % 10, list(DATASETS["MNIST"]["classes"]))
    prepare(Attack(), data=(data, data))
    ckpt, log = save_run(fake_result(5), tmp_path)
    assert load_checkpoint(ckpt, quiet=True)[1]["run_id"] == load_history(log)[0]["run_id"]
