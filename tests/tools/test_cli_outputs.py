"""Where a training run saves: one runs/ per checkout for the CLI and the notebooks, said before training, and a
model already there is never replaced without a word. Printed epochs count from 1."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from badnets_utils.core.checkpoints import save_checkpoint
from badnets_utils.core.data import default_runs_dir
from badnets_utils.core.models import build_model
from badnets_utils.core.pipeline import saved_model_note
from badnets_utils.core.training import epoch_label, epoch_summary
from badnets_utils.tools.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--train_limit", "300", "--test_limit", "100", "--epochs", "1", "--batch_size", "64", "--no_progress"]


def test_the_cli_and_the_notebooks_default_to_the_checkouts_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository root: the default does not follow the working folder
    assert build_parser().parse_args([]).output_dir == str(ROOT / "runs") == str(default_runs_dir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BADNETS_QUICK", None)
    code = "from badnets_utils.course.notebook import setup; print(setup(verbose=False, quick=False).runs_dir)"
    seen = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", env=env, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert seen == str(ROOT / "runs")


def test_an_installed_package_and_a_classroom_copy_find_their_runs(tmp_path, monkeypatch):
    (tmp_path / "copy" / "student").mkdir(parents=True)
    assert default_runs_dir(tmp_path / "copy") == tmp_path / "copy" / "runs"
    (tmp_path / "site-packages").mkdir()
    monkeypatch.chdir(tmp_path)
    assert default_runs_dir(tmp_path / "site-packages") == tmp_path / "runs"


def test_help_shows_the_default_output_folder():
    text = "".join(build_parser().format_help().split())  # argparse wraps lines, even inside a path at a '-'
    expected = f"runs/, from whichever folder you run (./runs for an installed package) (default: {ROOT}/runs)"
    assert "".join(expected.split()) in text


def test_saved_model_note_describes_what_is_there(tmp_path):
    path = tmp_path / "badnet-MNIST.pth"
    assert saved_model_note(path) is None
    save_checkpoint(build_model("MNIST"), path, "MNIST", tca=0.9876, asr=0.9999, epochs=4)
    stamp = time.mktime((2026, 3, 4, 5, 6, 0, 0, 0, -1))
    os.utime(path, (stamp, stamp))
    assert saved_model_note(path) == "a model saved 2026-03-04 05:06 (TCA 0.9876, ASR 0.9999, 4 epochs)"
    save_checkpoint(build_model("MNIST"), path, "MNIST")  # no scores recorded
    assert re.fullmatch(r"a model saved \d{4}-\d\d-\d\d \d\d:\d\d", saved_model_note(path))
    path.write_bytes(b"not a checkpoint")
    assert saved_model_note(path).endswith("that is not a readable checkpoint")


def test_the_cli_says_where_it_saves_and_what_it_replaces(mnist_root, tmp_path, capsys):
    out = tmp_path / "out"
    earlier = save_checkpoint(build_model("MNIST"), out / "checkpoints" / "badnet-MNIST.pth", "MNIST", tca=0.5,
                              asr=0.25, epochs=2)  # fmt: skip
    assert main(["--data_path", str(mnist_root), "--output_dir", str(out), *TINY]) == 0
    lines = capsys.readouterr().out.splitlines()
    will = lines.index(f"Will save {earlier} and {out / 'logs' / 'MNIST_trigger1.csv'}")
    note = lines[will + 1]
    assert note.startswith(f"note: {earlier} holds a model saved ") and "(TCA 0.5000, ASR 0.2500, 2 epochs)" in note
    assert note.endswith("this run will replace it (use --output_dir to keep both)")
    assert lines[will + 2] == "Start training for 1 epochs" and lines[will + 3].startswith("epoch 1/1  loss ")


def test_one_epoch_numbering_for_people():
    row = {"epoch": 0, "train_loss": 0.45461, "clean_acc": 0.97771, "asr": 0.99949, "seconds": 10.94}
    assert epoch_label(0, 4) == "epoch 1/4"
    assert epoch_summary(row, 4) == "epoch 1/4  loss 0.4546  clean acc 0.9777  ASR 0.9995  (10.9 s)"
    assert epoch_summary({**row, "asr": None}, 4) == "epoch 1/4  loss 0.4546  clean acc 0.9777  (10.9 s)"


def test_saved_paths_are_shown_as_they_can_be_typed(tmp_path, monkeypatch):
    from badnets_utils._io.files import shown_here

    path = tmp_path / "runs" / "checkpoints" / "badnet-MNIST.pth"
    monkeypatch.chdir(tmp_path)
    assert shown_here(path) == "runs/checkpoints/badnet-MNIST.pth"  # below the working folder: relative
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert shown_here(path) == str(path)  # elsewhere: in full
