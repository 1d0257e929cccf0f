"""The poisoning-rate sweep: rows, CSV cache, summary."""

from __future__ import annotations

import pytest

from badnets_utils.sweep import format_summary, rate_sweep, read_results, summarize, write_results


def _row(rate, seed, asr, tca=0.98):
    return {"dataset": "MNIST", "rate": rate, "seed": seed, "poison_count": int(rate * 1000), "train_size": 1000,
            "test_size": 100, "epochs": 1, "batch_size": 64, "lr": 0.002, "trigger_label": 1, "trigger_size": 5,
            "tca": tca, "asr": asr, "seconds": 1.0}  # fmt: skip


def test_csv_roundtrip_and_summary(tmp_path):
    rows = [_row(0.1, 0, 0.9), _row(0.1, 1, 1.0), _row(0.0, 0, 0.01)]
    path = write_results(rows, tmp_path / "s.csv")
    back = read_results(path)
    assert [(r["rate"], r["seed"], r["asr"]) for r in back] == [(0.1, 0, 0.9), (0.1, 1, 1.0), (0.0, 0, 0.01)]
    assert isinstance(back[0]["poison_count"], int) and back[0]["dataset"] == "MNIST"
    summary = summarize(back)
    assert [s["rate"] for s in summary] == [0.0, 0.1]
    assert summary[1]["asr_mean"] == pytest.approx(0.95) and summary[1]["asr_std"] == pytest.approx(0.0707, abs=1e-3)
    assert summary[0]["asr_std"] == 0.0 and summary[1]["seeds"] == 2
    assert "rate" in format_summary(summary).splitlines()[0]
    assert read_results(tmp_path / "missing.csv") == []


def test_rate_sweep_reuses_the_csv(mnist_root, tmp_path, capsys):
    path = tmp_path / "sweep.csv"
    kwargs = dict(csv_path=path, epochs=1, batch_size=64, train_limit=400, test_limit=100, data_root=mnist_root,
                  device="cpu")  # fmt: skip
    rows = rate_sweep([0, 0.05], [0], **kwargs)
    assert [r["poison_count"] for r in rows] == [0, 20]
    assert all(0 <= r["asr"] <= 1 and 0 <= r["tca"] <= 1 for r in rows)
    assert len(read_results(path)) == 2
    capsys.readouterr()
    again = rate_sweep([0, 0.05], [0], **kwargs)  # nothing to train
    assert "from the CSV" in capsys.readouterr().out
    assert [r["asr"] for r in again] == pytest.approx([r["asr"] for r in rows], abs=1e-6)
    rate_sweep([0.05], [0], **{**kwargs, "epochs": 2})  # other settings: a new row beside the old ones
    assert len(read_results(path)) == 3
