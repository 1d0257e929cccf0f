"""Sweeps: a loop of attacks through the one pipeline, cached in a CSV, summarised over seeds."""

from __future__ import annotations

import pytest

from badnets_utils.core.config import Attack, Budget
from badnets_utils.studies.sweep import (
    FIELDS,
    format_summary,
    rate_sweep,
    read_results,
    run_sweep,
    summarize,
    write_results,
)


def _row(rate, seed, asr, tca=0.98):
    row = {**Attack(rate=rate, seed=seed).describe(), **Budget(epochs=1).describe()}
    row.update(poisoned=int(rate * 1000), train_size=1000, test_size=100, tca=tca, asr=asr, seconds=1.0)
    return row


def test_csv_roundtrip_and_summary(tmp_path):
    rows = [_row(0.1, 0, 0.9), _row(0.1, 1, 1.0), _row(0.0, 0, 0.01)]
    path = write_results(rows, tmp_path / "s.csv")
    assert path.read_text().splitlines()[0] == ",".join(FIELDS)
    back = read_results(path)
    assert [(r["poisoning_rate"], r["seed"], r["asr"]) for r in back] == [(0.1, 0, 0.9), (0.1, 1, 1.0), (0.0, 0, 0.01)]
    assert isinstance(back[0]["poisoned"], int) and back[0]["dataset"] == "MNIST" and back[0]["train_limit"] is None
    summary = summarize(back)
    assert [s["rate"] for s in summary] == [0.0, 0.1]
    assert summary[1]["asr_mean"] == pytest.approx(0.95) and summary[1]["asr_std"] == pytest.approx(0.0707, abs=1e-3)
    assert summary[0]["asr_std"] == 0.0 and summary[1]["seeds"] == 2
    assert "rate" in format_summary(summary).splitlines()[0]
    assert read_results(tmp_path / "missing.csv") == []


def test_rate_sweep_reuses_the_csv(mnist_root, tmp_path, capsys):
    path = tmp_path / "sweep.csv"
    budget = Budget(epochs=1, batch_size=64, train_limit=400, test_limit=100, device="cpu")
    rows = rate_sweep([0, 0.05], [0], Attack(), budget, csv_path=path, data_root=mnist_root)
    assert [r["poisoned"] for r in rows] == [0, 20]
    assert all(0 <= r["asr"] <= 1 and 0 <= r["tca"] <= 1 for r in rows)
    assert len(read_results(path)) == 2
    capsys.readouterr()
    again = rate_sweep([0, 0.05], [0], Attack(), budget, csv_path=path, data_root=mnist_root)  # nothing to train
    assert capsys.readouterr().out.count("from the CSV") == 2
    assert [r["asr"] for r in again] == pytest.approx([r["asr"] for r in rows], abs=1e-6)
    rate_sweep([0.05], [0], Attack(), budget.replace(epochs=2), csv_path=path, data_root=mnist_root)
    assert len(read_results(path)) == 3  # other settings: a new row beside the old ones


def test_any_attack_field_can_be_swept(mnist_root, tmp_path):
    budget = Budget(epochs=1, batch_size=64, train_limit=300, test_limit=100, device="cpu")
    attacks = [Attack(position="random", alpha=0.5, mode="add"), Attack(trigger="checkerboard", trigger_size=3)]
    rows = run_sweep(attacks, budget, tmp_path / "v.csv", data_root=mnist_root, verbose=False)
    assert [r["position"] for r in rows] == ["random", "bottom-right"] and rows[0]["poisoned"] == 30
    assert rows[0]["poison_mode"] == "add" and rows[1]["trigger"] == "checkerboard"
