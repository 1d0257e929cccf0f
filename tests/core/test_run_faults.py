"""Runs killed while saving: a checkpoint and its log always belong to the same run after the next save,
and no temporary file survives it."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import torch

from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import DATASETS, ImageData
from badnets_utils.core.models import build_model
from badnets_utils.core.pipeline import Result, prepare, repair_logs, save_run
from badnets_utils.core.training import load_history

CHILD = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {root!r})
    from tests.core.test_run_faults import fake_result
    from badnets_utils.core.pipeline import save_run
    i = 0
    while True:
        save_run(fake_result(i), {out!r})
        i += 1
    """
)


def fake_result(i: int) -> Result:
    """A trained-looking run without training: a fresh model and a made-up history (what save_run writes)."""
    images = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    data = ImageData(images, torch.arange(20) % 10, list(DATASETS["MNIST"]["classes"]))
    setup = prepare(Attack(), data=(data, data))
    torch.manual_seed(i)
    history = [{"epoch": e, "train_loss": float(i), "clean_acc": 0.5, "clean_loss": 1.0, "asr": 0.5, "asr_loss": 1.0,
                "seconds": 0.1} for e in range(3)]  # fmt: skip
    empty = {"acc": 0.5, "loss": 1.0, "preds": torch.zeros(0), "confusion": torch.zeros(10, 10)}
    return Result(setup.attack, Budget(), build_model("MNIST"), history, 0.5, 0.5, empty, empty, 0.0, setup)


def _pairs(out):
    for ckpt in (out / "checkpoints").glob("*.pth"):
        run_id = torch.load(ckpt, weights_only=True)["config"]["run_id"]
        log = out / "logs" / "MNIST_trigger1.csv"
        yield run_id, load_history(log)[0]["run_id"]


def test_kills_during_saving_never_leave_a_mismatched_pair(tmp_path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    out = tmp_path / "runs"
    rng = random.Random(0)
    for _ in range(6):
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=root, out=str(out))])
        time.sleep(2.0 + rng.random() * 1.5)  # torch import, then a few saves: the kill lands anywhere
        child.send_signal(signal.SIGKILL)
        child.wait()
        save_run(fake_result(1000), out)  # the next run
        for ckpt_id, log_id in _pairs(out):
            assert ckpt_id == log_id
        assert not list(out.rglob("*.tmp")), list(out.rglob("*.tmp"))


def test_repair_rewrites_a_stale_log_from_the_checkpoint(tmp_path):
    ckpt, log = save_run(fake_result(1), tmp_path)
    first = load_history(log)
    save_run(fake_result(2), tmp_path)
    log.write_text(log.read_text().replace(load_history(log)[0]["run_id"], "stale0000000"))
    assert repair_logs(tmp_path) == [log]
    again = load_history(log)
    assert again[0]["run_id"] == torch.load(ckpt, weights_only=True)["config"]["run_id"] != first[0]["run_id"]
    assert again[0]["train_loss"] == 2.0 and repair_logs(tmp_path) == []
