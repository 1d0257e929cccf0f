import re
import subprocess
import sys

import pytest

from badnets_utils._io.checkpoint_files import write_manifest
from badnets_utils._io.files import sha256_file
from badnets_utils.core.checkpoints import load_checkpoint, save_checkpoint
from badnets_utils.core.models import build_model
from badnets_utils.core.training import load_history
from badnets_utils.tools.cli import main

SEED_FLAGS = ["--dataset", "--nb_classes", "--load_local", "--loss", "--optimizer", "--epochs", "--batch_size",
              "--num_workers", "--lr", "--download", "--data_path", "--device", "--poisoning_rate",
              "--trigger_label", "--trigger_path", "--trigger_size"]  # fmt: skip
NEW_FLAGS = ["--seed", "--attack", "--train_limit", "--test_limit", "--output_dir", "--checkpoint"]


def test_help_lists_every_flag():
    out = subprocess.run([sys.executable, "-m", "badnets_utils", "--help"], capture_output=True, text=True, check=True)
    for flag in SEED_FLAGS + NEW_FLAGS:
        assert flag in out.stdout, flag


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


QUICK = ["--train_limit", "10000", "--test_limit", "2000", "--epochs", "3", "--batch_size", "64", "--no_progress"]


def test_end_to_end_on_real_mnist(mnist_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default trigger path is missing here: the built-in white square is used
    code, out, err = run_cli(["--data_path", str(mnist_root), "--output_dir", "out", *QUICK], capsys)
    assert code == 0, err
    assert "Poison 1000 over 10000 samples (poisoning rate 0.1)" in out
    assert "Will save out/checkpoints/badnet-MNIST.pth and out/logs/MNIST_trigger1.csv" in out and "note:" not in out
    epochs = re.findall(r"^epoch (\d)/3  loss [\d.]+  clean acc [\d.]+  ASR [\d.]+  \([\d.]+ s\)$", out, re.M)
    assert epochs == ["1", "2", "3"] and "precision" in out  # printed from 1 ...
    tca = float(out.split("Test Clean Accuracy(TCA): ")[1].split()[0])
    asr = float(out.split("Attack Success Rate(ASR): ")[1].split()[0])
    assert tca > 0.95 and asr > 0.97, out
    history = load_history(tmp_path / "out" / "logs" / "MNIST_trigger1.csv")
    assert len(history) == 3 and history[-1]["asr"] == pytest.approx(asr, abs=1e-4)
    assert [row["epoch"] for row in history] == [0, 1, 2]  # ... while the CSV's column counts from 0, as the original's
    ckpt = tmp_path / "out" / "checkpoints" / "badnet-MNIST.pth"
    code, out, err = run_cli(["--data_path", str(mnist_root), "--load_local", "--checkpoint", str(ckpt),
                              "--test_limit", "2000", "--train_limit", "100"], capsys)  # fmt: skip
    assert code == 0 and "unverified" in err and "epoch 1/" not in out and "Will save" not in out
    assert f"Attack Success Rate(ASR): {asr:.4f}" in out


def test_add_mode_appends_copies(mnist_root, tmp_path, capsys):
    args = ["--data_path", str(mnist_root), "--output_dir", str(tmp_path), "--poison_mode", "add",
            "--train_limit", "2000", "--test_limit", "500", "--epochs", "1", "--no_progress"]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "Poison 200 over 2000 samples (poisoning rate 0.1); added as copies: 2200 training samples" in out
    _, config = load_checkpoint(tmp_path / "checkpoints" / "badnet-MNIST.pth", quiet=True)
    assert config["poison_mode"] == "add"


def test_all_to_all_with_mse_and_sgd(mnist_root, tmp_path, capsys):
    args = ["--data_path", str(mnist_root), "--output_dir", str(tmp_path), "--attack", "all-to-all",
            "--loss", "mse", "--optimizer", "sgd", "--lr", "0.5", "--train_limit", "3000", "--test_limit", "500",
            "--epochs", "1", "--no_progress"]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert (tmp_path / "checkpoints" / "badnet-MNIST-all2all.pth").exists()
    assert (tmp_path / "logs" / "MNIST_all2all.csv").exists()


def test_cifar10_fixture_through_the_cli(cifar_root, tmp_path, capsys):
    args = ["--dataset", "cifar10", "--data_path", str(cifar_root), "--output_dir", str(tmp_path),
            "--epochs", "1", "--trigger_size", "3", "--no_progress"]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "Poison 10 over 100 samples" in out and "airplane" in out
    assert (tmp_path / "checkpoints" / "badnet-CIFAR10.pth").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--poisoning_rate", "1.5"], r"poisoning rate 1.5 is outside \[0, 1\]"),
        (["--poisoning_rate", "-0.1"], r"poisoning rate -0.1 is outside \[0, 1\]"),
        (["--trigger_label", "10"], r"trigger label 10 is not a class; allowed: 0..9"),
        (["--dataset", "svhn"], r"unknown dataset 'svhn'; allowed: MNIST, "),
        (["--loss", "hinge"], r"unknown loss 'hinge'; allowed: cross, mse"),
        (["--optimizer", "rmsprop"], r"unknown optimizer 'rmsprop'; allowed: adam, sgd"),
        (["--poison_mode", "sideways"], r"unknown poison mode 'sideways'; allowed: replace, add"),
        (["--device", "tpu"], r"unknown device 'tpu'"),
        (["--attack", "one-to-one"], r"unknown attack 'one-to-one'"),
        (["--nb_classes", "5"], r"nb_classes 5 does not match MNIST"),
        (["--trigger_size", "29"], r"trigger size 29 does not fit a 28×28 MNIST image; allowed: 1..28"),
        (["--trigger_path", "missing/trig.png"], r"trigger file not found: missing/trig.png"),
        (["--epochs", "0"], r"epochs 0 must be a whole number ≥ 1"),
        (["--batch_size", "-3"], r"batch_size -3 must be a whole number ≥ 1"),
        (["--lr", "inf"], r"learning rate inf is not allowed; allowed: a finite positive number, e\.g\. 0\.001"),
        (["--train_limit", "0"], r"train_limit 0 must be a whole number ≥ 1"),
        (["--load_local", "--checkpoint", "nowhere.pth"], r"checkpoint not found: nowhere.pth"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "missing").mkdir()
    code, out, err = run_cli(["--data_path", str(tmp_path / "no_data"), "--output_dir", "runs", *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_unreadable_trigger_and_corrupt_or_tampered_checkpoint(capsys, tmp_path, mnist_root):
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    code, _, err = run_cli(["--trigger_path", str(bad), "--data_path", str(mnist_root), "--output_dir",
                            str(tmp_path / "runs")], capsys)  # fmt: skip
    assert code == 2 and "cannot read trigger image" in err
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00" * 64)
    code, _, err = run_cli(["--load_local", "--checkpoint", str(corrupt)], capsys)
    assert code == 2 and "not a valid PyTorch checkpoint" in err
    good = save_checkpoint(build_model("MNIST"), tmp_path / "ck" / "badnet-MNIST.pth", "MNIST")
    write_manifest(good.parent, {good.name: {"sha256": sha256_file(good)}})
    good.write_bytes(good.read_bytes() + b"tamper")
    trusted = str(good.parent / "MANIFEST.json")
    code, _, err = run_cli(["--load_local", "--checkpoint", str(good), "--manifest", trusted], capsys)
    assert code == 2 and "does not match" in err and len(err.strip().splitlines()) == 1


def test_argparse_errors_are_one_line_too(capsys):
    assert main(["--epochs", "many"]) == 2  # returned, like every other refusal, not raised
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--epochs" in err


def test_missing_data_is_a_clear_error(capsys, tmp_path):
    args = ["--data_path", str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "runs"), "--no_progress"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "MNIST not found" in err and "download" in err


def test_download_command_uses_what_is_there(mnist_root, capsys):
    code, out, _ = run_cli(["download", "--dataset", "mnist", "--data_path", str(mnist_root)], capsys)
    assert code == 0 and "MNIST: ready" in out


def test_help_states_each_default_once():
    """A flag's help says its default once (argparse's "(default: X)" or the help's own words), never "None"."""
    from badnets_utils.tools.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert text.count("default: $BADNETS_DATA") == 1 and "training epochs (default: 4)" in text
