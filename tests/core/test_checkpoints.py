import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from badnets_utils._io.checkpoint_files import CheckpointError, read_manifest, write_manifest
from badnets_utils._io.files import PROJECT_MANIFEST, sha256_file, shipped_files
from badnets_utils.core.checkpoints import load_checkpoint, save_checkpoint
from badnets_utils.core.models import build_model


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


def test_named_manifest_verifies_and_refuses_tampered_copy(tmp_path):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "badnet-MNIST.pth", "MNIST")
    manifest = write_manifest(tmp_path, {"badnet-MNIST.pth": {"sha256": sha256_file(path)}})
    _, config = load_checkpoint(path, manifest=manifest)
    assert config["verified"] is True and config["verified_by"] == str(manifest)
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="does not match .*MANIFEST.json.*refusing"):
        load_checkpoint(path, manifest=manifest)


def test_a_manifest_beside_the_file_verifies_nothing(tmp_path):
    path = save_checkpoint(build_model("MNIST"), tmp_path / "badnet-MNIST.pth", "MNIST")
    write_manifest(tmp_path, {"badnet-MNIST.pth": {"sha256": sha256_file(path)}})
    _, config = load_checkpoint(path, quiet=True)
    assert config["verified"] is False and config["verified_by"] is None


def test_crafted_config_cannot_claim_verified(tmp_path):
    state = {k: v.clone() for k, v in build_model("MNIST").state_dict().items()}
    path = tmp_path / "c.pth"
    torch.save({"model_state": state, "config": {"verified": True, "verified_by": "checkpoints/MANIFEST.json"}}, path)
    _, config = load_checkpoint(path, quiet=True)
    assert config["verified"] is False and config["verified_by"] is None


def test_shipped_checkpoints_are_verified_by_the_project_manifest():
    entries = read_manifest(PROJECT_MANIFEST.parent)
    assert entries, "the project ships checkpoints"
    for name in entries:
        _, config = load_checkpoint(PROJECT_MANIFEST.parent / name)
        assert config["verified"] is True and config["verified_by"] == str(PROJECT_MANIFEST)
    assert set(entries) <= {p.name for p in shipped_files()}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fake repository root whose checkpoints/MANIFEST.json is 'the project's manifest'."""
    import badnets_utils._io.files as files

    (tmp_path / "checkpoints").mkdir()
    monkeypatch.setattr(files, "PROJECT_MANIFEST", tmp_path / "checkpoints" / "MANIFEST.json")
    return tmp_path


def test_project_manifest_checkpoints_and_files(project, monkeypatch):
    import badnets_utils._io.files as files

    monkeypatch.setattr(files, "PROJECT_MANIFEST", project / "elsewhere.json")  # written as a maintainer does
    ckpt = save_checkpoint(build_model("MNIST"), project / "checkpoints" / "badnet-MNIST.pth", "MNIST")
    other = save_checkpoint(build_model("MNIST"), project / "extra" / "old.pth", "MNIST")
    log = project / "logs" / "MNIST_trigger1.csv"
    log.parent.mkdir()
    log.write_text("epoch,tca\n")
    manifest = write_manifest(
        project / "checkpoints",
        {"badnet-MNIST.pth": {"sha256": sha256_file(ckpt), "tca": 0.99}},
        files={"extra/old.pth": sha256_file(other), "logs/MNIST_trigger1.csv": sha256_file(log)},
    )
    monkeypatch.setattr(files, "PROJECT_MANIFEST", manifest)
    assert json.loads(manifest.read_text())["files"]["logs/MNIST_trigger1.csv"] == sha256_file(log)
    assert read_manifest(project / "checkpoints") == {"badnet-MNIST.pth": {"sha256": sha256_file(ckpt), "tca": 0.99}}
    assert set(shipped_files()) == {ckpt.absolute(), other.absolute(), log.absolute()}
    for path in (ckpt, other):
        _, config = load_checkpoint(path)
        assert config["verified"] is True and config["verified_by"] == str(manifest)
    other.write_bytes(ckpt.read_bytes())  # a listed file whose SHA-256 differs
    with pytest.raises(CheckpointError, match=r"old.pth does not match .*MANIFEST.json"):
        load_checkpoint(other)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", r"the manifest must be a JSON object, got list"),
        ("{not json", r"cannot read .*MANIFEST.json"),
        ('{"checkpoints": []}', r"'checkpoints' must be a JSON object"),
        ('{"checkpoints": {"a.pth": 3}}', r"checkpoints entry 'a.pth' must be an object"),
        ('{"checkpoints": {"a.pth": {"tca": 1}}}', r"checkpoints entry 'a.pth' has no sha256"),
        ('{"checkpoints": {"a.pth": {"sha256": "abc"}}}', r"entry 'a.pth' has sha256 'abc'; allowed: 64"),
        ('{"files": {"t.png": 5}}', r"files entry 't.png' has sha256 5"),
        ('{"files": {"../x.png": "' + "0" * 64 + '"}}', r"files entry '../x.png' is not a relative path"),
    ],
)
def test_malformed_project_manifest_is_one_line(project, content, message):
    path = save_checkpoint(build_model("MNIST"), project / "checkpoints" / "a.pth", "MNIST")
    (project / "checkpoints" / "MANIFEST.json").write_text(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path, quiet=True)
    assert "MANIFEST.json" in str(info.value) and "\n" not in str(info.value)


def test_write_manifest_refuses_bad_entries_and_writes_nothing(tmp_path):
    with pytest.raises(CheckpointError, match=r"not writing .*entry 'a.pth' has no sha256"):
        write_manifest(tmp_path, {"a.pth": {}})
    with pytest.raises(CheckpointError, match=r"files entry 't.png' has sha256 'x'"):
        write_manifest(tmp_path, {}, files={"t.png": "x"})
    assert list(tmp_path.iterdir()) == []


def _crafted(tmp_path, blob) -> Path:
    path = tmp_path / "crafted.pth"
    torch.save(blob, path)
    return path


def _mnist_state() -> dict:
    return {k: v.clone() for k, v in build_model("MNIST").state_dict().items()}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: {"model_state": s, "config": [1, 2]}, r"config is a list; allowed: a dict"),
        (lambda s: {"model_state": [1], "config": {}}, r"model_state is a list; allowed: a dict"),
        (lambda s: {"model_state": {"fc2.weight": 3}}, r"model_state entry 'fc2.weight' is a int"),
        (lambda s: {"model_state": s, "config": {"num_classes": 10**9}}, r"num_classes 1000000000 .*allowed: \[10\]"),
        (lambda s: {"model_state": s, "config": {"num_classes": "10"}}, r"num_classes '10' is not allowed"),
        (lambda s: {"model_state": s, "config": {"num_classes": True}}, r"num_classes True is not allowed"),
        (lambda s: {"model_state": s, "config": {"num_classes": 1}}, r"num_classes 1 is not allowed"),
        (
            lambda s: {"model_state": s, "config": {"in_channels": 2}},
            r"in_channels 2 is not allowed; allowed: \[1, 3\]",
        ),
        (lambda s: {"model_state": s, "config": {"in_channels": 3}}, r"in_channels 3 does not match MNIST \(1\)"),
        (lambda s: {"model_state": s, "config": {"image_size": 10**6}}, r"image_size 1000000 is not allowed"),
        (lambda s: {"model_state": s, "config": {"dataset": "SVHN"}}, r"config dataset 'SVHN' is unknown; allowed:"),
        (lambda s: {"model_state": s, "config": {"dataset": 7}}, r"config dataset 7 is unknown"),
        (lambda s: {"model_state": {k: v for k, v in s.items() if k != "fc1.0.bias"}}, r"missing fc1.0.bias"),
        (lambda s: {"model_state": {**s, "extra": torch.zeros(1)}}, r"unexpected extra"),
        (lambda s: {"model_state": {**s, "fc2.weight": torch.zeros(10, 7)}}, r"fc2.weight is torch.float32 \(10, 7\)"),
        (lambda s: {"model_state": {**s, "fc2.bias": torch.zeros(10, dtype=torch.long)}}, r"fc2.bias is torch.int64"),
        (lambda s: [1, 2, 3], r"holds no BadNet weights"),
        (lambda s: {"weights": s}, r"holds no BadNet weights"),
    ],
)
def test_crafted_checkpoints_give_one_line_errors(tmp_path, make, message):
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(_crafted(tmp_path, make(_mnist_state())), quiet=True)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("k", [2, 20, 43])
def test_a_classifier_of_another_class_count_than_the_data_is_refused(tmp_path, k):
    model = build_model("MNIST", num_classes=k)
    with pytest.raises(CheckpointError, match=rf"its classifier has {k} classes, MNIST has 10$"):
        load_checkpoint(_crafted(tmp_path, model.state_dict()), quiet=True)


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

    import badnets_utils.core.checkpoints as ck

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
