import os
import pickle

import pytest
import torch

from badnets_utils.checkpoints import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    sha256_file,
    write_manifest,
)
from badnets_utils.models import build_model


def test_round_trip(tmp_path):
    m = build_model("MNIST")
    path = save_checkpoint(m, tmp_path / "c.pth", "MNIST", attack="all-to-one")
    loaded, config = load_checkpoint(path, quiet=True)
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert config["dataset"] == "MNIST" and config["verified"] is False


def test_unlisted_checkpoint_loads_with_a_note(tmp_path, capsys):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "mine.pth", "MNIST")
    load_checkpoint(path)
    err = capsys.readouterr().err
    assert "unverified" in err and len(err.strip().splitlines()) == 1


def test_manifest_verifies_and_refuses_tampered_copy(tmp_path):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "badnet-MNIST.pth", "MNIST")
    write_manifest(tmp_path, {"badnet-MNIST.pth": {"sha256": sha256_file(path)}})
    _, config = load_checkpoint(path)
    assert config["verified"] is True
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="does not match .*MANIFEST.json.*refusing"):
        load_checkpoint(path)


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a valid PyTorch checkpoint"):
        load_checkpoint(bad, quiet=True)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model_state": _Evil()}, f)
    torch.save({"model_state": _Evil()}, path)
    with pytest.raises(CheckpointError, match="not a valid PyTorch checkpoint"):
        load_checkpoint(path, quiet=True)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "c.pth", "MNIST")
    before = path.read_bytes()

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    import badnets_utils.checkpoints as ck

    real = ck.atomic_write
    monkeypatch.setattr(ck, "atomic_write", lambda p, write: real(p, interrupted))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(build_model("MNIST"), path, "MNIST")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pth"]


def test_wrong_dataset(tmp_path):
    path = save_checkpoint(build_model("CIFAR10"), tmp_path / "c.pth", "CIFAR10")
    with pytest.raises(CheckpointError, match="trained on CIFAR10, not MNIST"):
        load_checkpoint(path, "MNIST", quiet=True)
