"""``python -m badnets_utils export-onnx``: onnxruntime gives PyTorch's logits; bad input is one line, exit 2.

Every shipped checkpoint (the Playground's three MNIST models among them) is exported through the command (in this
process, as ``cli.main``) and run by onnxruntime on the whole test set of its dataset, in batches, against PyTorch on
the same uint8 pixels. Bad input —
missing, corrupt, modified or hostile checkpoints, unusable output paths, missing packages — exits 2 with one line
on stderr and leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from badnets_utils import load_checkpoint, load_dataset
from badnets_utils._io.files import sha256_file
from badnets_utils.tools import cli, onnx_export

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "checkpoints"
SHIPPED = json.loads((CHECKPOINTS / "MANIFEST.json").read_text(encoding="utf-8"))["checkpoints"]  # name -> entry
TOLERANCE = 1e-4
BATCH = 2500

pytestmark = pytest.mark.skipif(bool(onnx_export.missing_packages()), reason="needs the docs extra (onnx, onnxruntime)")


@pytest.fixture(scope="module")
def test_sets(mnist_root):
    """Each dataset's test set, loaded once (the data root that holds MNIST; CI downloads Fashion-MNIST beside it)."""
    loaded = {}
    return lambda name: loaded.setdefault(name, load_dataset(name, train=False, root=mnist_root))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_exported_logits_equal_pytorch_on_the_whole_test_set(name, test_sets, tmp_path, capsys):
    """Every shipped checkpoint (the Playground's three among them), on every image of its dataset's test set."""
    test = test_sets(SHIPPED[name]["dataset"])
    out = tmp_path / "sub" / f"{Path(name).stem}.onnx"  # a missing folder is made once the file is checked
    assert cli.main(["export-onnx", str(CHECKPOINTS / name), str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and printed.out.count("\n") == 1, printed
    assert f"SHA-256 {sha256_file(out)}" in printed.out and "(verified)" in printed.out
    assert "input: uint8 pixels 0..255" in printed.out
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary file left

    model, _ = load_checkpoint(CHECKPOINTS / name, quiet=True)
    session = onnx_export.session(out.read_bytes())
    assert [i.name for i in session.get_inputs()] == ["pixels"] and session.get_inputs()[0].type == "tensor(uint8)"
    worst_logit = worst_probability = 0.0
    with torch.no_grad():
        for start in range(0, len(test), BATCH):
            images = test.images[start : start + BATCH]
            logits, probabilities = session.run(None, {"pixels": images.numpy()})
            expected = model(images)
            worst_logit = max(worst_logit, float((torch.from_numpy(logits) - expected).abs().max()))
            worst_probability = max(worst_probability, float(
                (torch.from_numpy(probabilities) - expected.softmax(1)).abs().max()))  # fmt: skip
            assert torch.equal(torch.from_numpy(logits).argmax(1), expected.argmax(1)), (name, start)
    assert worst_logit <= TOLERANCE and worst_probability <= TOLERANCE, (name, worst_logit, worst_probability)


def _tampered(tmp_path: Path) -> list[str]:
    """A copy of clean-MNIST.pth with one byte changed, and a manifest that lists the original's SHA-256 for it."""
    copy = tmp_path / "in" / "clean-MNIST.pth"
    copy.parent.mkdir()
    data = bytearray((CHECKPOINTS / "clean-MNIST.pth").read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    sha = json.loads((CHECKPOINTS / "MANIFEST.json").read_text())["checkpoints"]["clean-MNIST.pth"]["sha256"]
    (copy.parent / "MANIFEST.json").write_text(json.dumps({"checkpoints": {"clean-MNIST.pth": {"sha256": sha}}}))
    return [str(copy), "OUT", "--manifest", str(copy.parent / "MANIFEST.json")]


def _hostile(tmp_path: Path) -> list[str]:
    """A checkpoint whose pickle names a global that weights never need (weights_only loading refuses it)."""
    path = tmp_path / "in" / "hostile.pth"
    path.parent.mkdir()
    model, _ = load_checkpoint(CHECKPOINTS / "clean-MNIST.pth", quiet=True)
    torch.save({"model_state": model.state_dict(), "config": {"dataset": "MNIST", "extra": Path("x")}}, path)
    return [str(path), "OUT"]


def _text_file(tmp_path: Path) -> list[str]:
    path = tmp_path / "in" / "notes.pth"
    path.parent.mkdir()
    path.write_text("not a checkpoint\n")
    return [str(path), "OUT"]


BAD = {
    "missing checkpoint": (lambda t: [str(t / "no-such.pth"), "OUT"], "checkpoint not found"),
    "not a checkpoint": (_text_file, "not a valid PyTorch checkpoint"),
    "modified checkpoint": (_tampered, "does not match"),
    "hostile pickle": (_hostile, "cannot load"),
    "output not .onnx": (lambda t: [str(CHECKPOINTS / "clean-MNIST.pth"), str(t / "out" / "model.pth")],
                         "must be a file name ending in .onnx"),
    "output is a folder": (lambda t: [str(CHECKPOINTS / "clean-MNIST.pth"), str(t / "out" / "folder.onnx")],
                           "it is a folder"),
    "output under a file": (lambda t: [str(CHECKPOINTS / "clean-MNIST.pth"), str(ROOT / "README.md" / "x.onnx")],
                            "cannot write"),
    "no arguments": (lambda t: [], "the following arguments are required"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    make, message = BAD[case]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "folder.onnx").mkdir()
    args = [str(tmp_path / "out" / "model.onnx") if a == "OUT" else a for a in make(tmp_path)]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert cli.main(["export-onnx", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("badnets export-onnx: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_missing_onnx_packages_are_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(onnx_export, "missing_packages", lambda: ["onnxscript"])
    out = tmp_path / "model.onnx"
    assert cli.main(["export-onnx", str(CHECKPOINTS / "clean-MNIST.pth"), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs onnxscript" in err and "pip install" in err, err
    assert not out.exists()


def test_a_graph_that_differs_from_pytorch_is_not_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(onnx_export, "largest_difference", lambda *a: 0.5)
    out = tmp_path / "model.onnx"
    assert cli.main(["export-onnx", str(CHECKPOINTS / "clean-MNIST.pth"), str(out)]) == 2
    err = capsys.readouterr().err
    assert "differs from PyTorch by 0.5" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_process_exits_2_in_one_line(tmp_path):
    """The real process, as a user runs it (``python -m badnets_utils``), with a checkpoint that is not there."""
    shutil.copy(CHECKPOINTS / "clean-MNIST.pth", tmp_path / "kept.pth")
    run = subprocess.run([sys.executable, "-m", "badnets_utils", "export-onnx", str(tmp_path / "gone.pth"),
                          str(tmp_path / "x.onnx")], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 2 and run.stdout == "" and run.stderr.count("\n") == 1, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.pth"]
