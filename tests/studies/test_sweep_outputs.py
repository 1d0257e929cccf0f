"""What a sweep leaves beside its CSV: kept models (``keep_models``), its plot, rows that read back as they were."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from badnets_utils.core.checkpoints import load_checkpoint
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.pipeline import final_metrics, load_data, prepare
from badnets_utils.course import plots
from badnets_utils.course.sweep_plots import PLOT_DPI, PLOT_SIZE, save_plot, sweep_figure
from badnets_utils.studies.sweep import (
    FIELDS,
    format_summary,
    has_model,
    models_dir,
    rate_sweep,
    read_results,
    result_row,
    summarize,
    write_results,
)
from badnets_utils.tools import cli

BUDGET = Budget(epochs=1, train_limit=300, test_limit=200, device="cpu")


def test_kept_models_load_and_give_the_tca_of_their_rows(mnist_root, tmp_path, capsys):
    path = tmp_path / "sweeps" / "rates.csv"
    rows = rate_sweep([0, 0.05], [0], Attack(target=7), BUDGET, path, mnist_root, workers=1, keep_models=True)
    assert rows == read_results(path)  # the rows in memory are the rows of the CSV, to the last digit
    data = load_data("MNIST", BUDGET, 0, mnist_root)
    for row in rows:
        assert row["model"].startswith(f"{models_dir(path).name}/") and has_model(row, path)
        model, config = load_checkpoint(path.parent / row["model"], quiet=True)
        setup = prepare(Attack(target=7, rate=row["poisoning_rate"]), BUDGET, data)
        measured = final_metrics(model, setup)
        assert (measured["tca"], measured["asr"]) == pytest.approx((row["tca"], row["asr"]), abs=1e-6)
        assert config["tca"] == pytest.approx(row["tca"], abs=1e-6) and config["poison_count"] == row["poisoned"]
        assert row["trained_on"] == row["train_size"] + row["poisoned"] == len(setup.train)  # add mode: + the copies
    assert rows[1]["trained_on"] == 300 + 15
    moved = tmp_path / "moved"
    shutil.copytree(path.parent, moved)  # the paths are relative to the CSV's folder: the folder can move
    assert all(has_model(r, moved / "rates.csv") for r in read_results(moved / "rates.csv"))
    capsys.readouterr()
    rate_sweep([0, 0.05], [0], Attack(target=7), BUDGET, path, mnist_root, workers=1, keep_models=True)
    assert capsys.readouterr().out.count("from the CSV") == 2  # kept: nothing trains again


def test_runs_without_a_kept_model_are_trained_again(mnist_root, tmp_path, capsys):
    path = tmp_path / "s.csv"
    first = rate_sweep([0.05], [0], Attack(), BUDGET, path, mnist_root, workers=1)
    assert first[0]["model"] is None and not models_dir(path).exists()
    capsys.readouterr()
    again = rate_sweep([0.05], [0], Attack(), BUDGET, path, mnist_root, workers=1, keep_models=True)
    out = capsys.readouterr().out
    assert "1 run(s) of the CSV without a kept model: trained again" in out and "from the CSV" not in out
    assert has_model(again[0], path) and len(read_results(path)) == 1  # the row is replaced, not doubled
    assert {k: v for k, v in again[0].items() if k not in ("seconds", "model")} == {
        k: v for k, v in first[0].items() if k not in ("seconds", "model")
    }  # the same run: the same figures
    with pytest.raises(ValueError, match="keep_models=True needs a csv_path, not None"):
        rate_sweep([0.05], [0], Attack(), BUDGET, None, mnist_root, keep_models=True)


def test_a_csv_without_the_new_columns_is_read_and_rewritten(tmp_path):
    path = tmp_path / "old.csv"
    old_fields = [f for f in FIELDS if f not in ("trained_on", "model")]
    row = {**Attack(rate=0.01).describe(), **Budget(epochs=2).describe()}
    row.update(poisoned=600, train_size=60000, test_size=10000, tca=0.99, asr=0.98, seconds=60.0)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old_fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in old_fields})
    (back,) = read_results(path)
    assert back["trained_on"] is None and back["model"] is None and back["asr"] == 0.98 and back["poisoned"] == 600
    write_results([back], path)
    assert read_results(path) == [back] and path.read_text().splitlines()[0] == ",".join(FIELDS)


def _result(asr: float, tca: float, seed: int) -> SimpleNamespace:
    """What ``result_row`` reads of a finished run, without training one."""
    train = type("Train", (list,), {})(range(1050))
    train.poison_indices = list(range(50))
    setup = SimpleNamespace(train=train, train_size=1000, test=list(range(10_000)))
    return SimpleNamespace(attack=Attack(rate=0.05, seed=seed), budget=Budget(epochs=2), setup=setup, tca=tca, asr=asr,
                           seconds=12.345678912)  # fmt: skip


def test_a_summary_is_the_same_before_and_after_the_csv(tmp_path):
    # unrounded, these means print 97.87; the CSV's 6 significant digits (0.97875) used to print 97.88 after a reread
    rows = [result_row(_result(0.978749512, 0.978749512, s)) for s in (0, 1)]
    assert rows[0]["asr"] == 0.97875 and rows[0]["trained_on"] == 1050 and rows[0]["seconds"] == 12.3457
    back = read_results(write_results(rows, tmp_path / "s.csv"))
    assert back == rows
    assert format_summary(summarize(back)) == format_summary(summarize(rows))


def _rows(targets=(7,), rates=(0, 0.001, 0.005, 0.01, 0.05), seeds=(0, 1)) -> list[dict]:
    rows, budget = [], Budget(epochs=2, train_limit=20_000)
    for t in targets:
        for s in seeds:
            for r in rates:
                row = {**Attack(target=t, rate=r, seed=s).describe(), **budget.describe()}
                n = int(r * 20_000)
                row.update(poisoned=n, train_size=20_000, trained_on=20_000 + n, test_size=10_000,
                           tca=0.98 + 0.001 * s, asr=min(1.0, 20 * r) + 0.01 * s, seconds=1.0)  # fmt: skip
                rows.append(row)
    return rows


def test_the_plot_is_large_with_error_bars_and_a_log_axis(tmp_path):
    png = save_plot(_rows(), tmp_path / "sweep.png")
    assert Image.open(png).size == (PLOT_SIZE[0] * PLOT_DPI, PLOT_SIZE[1] * PLOT_DPI) == (1200, 750)
    fig = sweep_figure(_rows())
    (ax,) = fig.axes
    assert ax.get_xscale() == "symlog" and [t.get_text() for t in ax.get_xticklabels()][:2] == ["0", "0.001"]
    assert len(ax.containers) == 2 and all(c.has_yerr for c in ax.containers)  # ASR and TCA, mean ± std
    title = " ".join(fig._suptitle.get_text().split())
    assert "MNIST, white 5×5, target 7, add mode, 2 epochs, 20,000 clean training images" in title
    assert "mean ± standard deviation over 2 seeds" in title
    two = sweep_figure(_rows(targets=(1, 7)))
    assert [a.get_title() for a in two.axes] == ["target 1", "target 7"]
    assert "target" not in two._suptitle.get_text()
    with pytest.raises(ValueError, match="8 settings besides rate and seed to plot; allowed: 1..6"):
        sweep_figure(_rows(targets=range(8)))
    narrow = sweep_figure(_rows(rates=(0.05, 0.1, 0.2)))  # less than a decade: a linear axis
    assert narrow.axes[0].get_xscale() == "linear"


def test_asr_vs_rate_draws_into_a_given_axes():
    fig = plots.new_figure(4, 3)
    ax = fig.subplots()
    assert plots.asr_vs_rate([0, 0.1], [0, 1], [0.9, 0.9], title="panel", ax=ax) is fig and ax.get_title() == "panel"
    with pytest.raises(ValueError, match="counts need a second panel"):
        plots.asr_vs_rate([0, 0.1], [0, 1], [0.9, 0.9], counts=[0, 6000], ax=ax)


def test_help_says_what_is_kept_and_where(capsys):
    assert cli.main(["sweep", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--keep_models" in out and "runs/sweeps/sweep_models/" in out and "'model' column" in out
    assert "<csv stem>.png" in out and "trained again" in out


def test_the_command_keeps_models_and_draws_its_plot(mnist_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--rates", "0", "0.05", "--targets", "7", "--epochs", "1", "--train_limit", "300",
            "--test_limit", "200", "--device", "cpu", "--workers", "2", "--data_path", str(mnist_root),
            "--keep_models", "--csv", "runs/sweeps/sweep.csv"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "rows in runs/sweeps/sweep.csv, models in runs/sweeps/sweep_models/" in out
    assert "plot: runs/sweeps/sweep.png" in out and "TCA (%)" in out
    rows = read_results("runs/sweeps/sweep.csv")
    assert len(rows) == 2 and all(has_model(r, "runs/sweeps/sweep.csv") for r in rows)  # saved by the workers
    assert sorted(p.name for p in (tmp_path / "runs" / "sweeps" / "sweep_models").iterdir()) == sorted(
        r["model"].split("/")[1] for r in rows
    )
    assert Image.open("runs/sweeps/sweep.png").size == (1200, 750)


def test_the_python_example_of_the_sweeps_page_runs(mnist_root, tmp_path, monkeypatch, capsys):
    page = (Path(__file__).parents[2] / "docs" / "sweeps.md").read_text(encoding="utf-8")
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "keep_models=True" in b]
    small = 'Budget(epochs=1, train_limit=300, test_limit=200, device="cpu")'
    assert "Budget(epochs=2, train_limit=20_000)" in code
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BADNETS_DATA", str(mnist_root))
    exec(compile(code.replace("Budget(epochs=2, train_limit=20_000)", small), "docs/sweeps.md", "exec"), {})
    out = capsys.readouterr().out
    tca = re.search(r"TCA (\S+) \(row: (\S+)\)", out)
    assert tca and tca.group(1) == tca.group(2)  # the kept model gives the TCA of its row
    assert "plot: runs/sweeps/mnist7.png" in out and "ASR, pruning 0, 4" in out
    assert len(list((tmp_path / "runs" / "sweeps" / "mnist7_models").glob("*.pth"))) == 8
