"""badnets_utils.tools.benchmark_tables: the benchmarks' results files, and the docs' tables generated from them."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from badnets_utils.core.config import Budget
from badnets_utils.tools import benchmark_tables as B
from badnets_utils.tools import blocks, pages

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("bench_pipeline", "bench_sweep", "bench_contention", "poison_cost", "notebook_times")


def script(name: str):
    """benchmarks/<name>.py as a module (its main() not run)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_pages_show_the_committed_results():
    """A figure edited by hand in a page (or a results file without its page) fails here."""
    stale = blocks.planned({ROOT / page: pages.PAGES[page](ROOT) for page in ("docs/performance.md", "docs/sweeps.md")})
    assert not stale, f"stale blocks in {sorted(p.relative_to(ROOT).as_posix() for p in stale)}: run " + (
        "`python -m badnets_utils pages`"
    )


def test_every_benchmark_has_a_committed_results_file():
    for name in ("bench_pipeline", "bench_sweep", "bench_contention", "poison_cost"):
        assert B.runs(ROOT, name), name
    assert B.poison_cost_block(ROOT).startswith("| training set |")
    assert B.default_run_block(ROOT).startswith("about ")


def test_scripts_records_render(tmp_path: Path):
    """Each benchmark's recording function writes what the tables read, from figures of a run not made."""
    script("bench_pipeline").save(tmp_path, ["--seed_epochs", "1"], epochs=4, wall_s=26.43, tca=0.9931, asr=0.9999,
                                  tensor_sps=9876.5, seed_sps=1234.5, seed_epochs=1)  # fmt: skip
    sweep = script("bench_sweep")
    args = argparse.Namespace(models=8, train_size=20_000, epochs=2)
    times = {"one by one (thread rule)": 80.0, "local pool": 64.0, "Dask LocalCluster": 70.4}
    sweep.save(tmp_path, [], sweep.figures(args, 2, times, one_thread_slowdown=1.6, dask_rows_identical=True))
    contention = script("bench_contention")
    args = argparse.Namespace(train_size=20_000, epochs=2, copies=3, repeats=2)
    lone = {"auto": 10.0, "default": 9.5, "one": 13.0}
    contention.save(tmp_path, ["--data_path", "/data"], contention.figures(args, 2, lone, 21.0, None))
    cost = script("poison_cost")
    rows: dict[str, dict] = {}
    for key, seed, images, poisoned, tca, asr in [("clean", 0, 60000, 0, 0.9938, 0.0006),
                                                  ("clean", 1, 60000, 0, 0.9944, 0.0005),
                                                  ("add", 0, 66000, 6000, 0.9932, 0.9999),
                                                  ("add", 1, 66000, 6000, 0.9928, 1.0)]:  # fmt: skip
        cost.add_result(rows, key, seed, images, poisoned, tca, asr)
    cost.save(tmp_path, ["--seeds", "0", "1"], Budget(epochs=20, lr=1e-3), [0, 1], rows)

    tables = B.performance_blocks(tmp_path)
    where = B.machine_text(B.this_machine())
    assert "**26.4 s** wall; TCA 99.31 %, ASR 99.99 %" in tables["bench-pipeline"]
    assert "9,876 samples/s" in tables["bench-pipeline"] and "**8.0×**" in tables["bench-pipeline"]
    assert f"Measured on {where}, " in tables["bench-pipeline"]
    assert "`python benchmarks/bench_pipeline.py --seed_epochs 1` (torch " in tables["bench-pipeline"]
    assert "64.0 s: **1.25×** faster (target ≥ 1.3×)" in tables["bench-sweep"]
    assert (
        "70.4 s: **1.10×** the pool's time" in tables["bench-sweep"] and "reached 100 % of it" in tables["bench-sweep"]
    )
    assert "1.03× the fair share" not in tables["bench-contention"]
    assert (
        "21.0 s = **1.08×** the fair share" in tables["bench-contention"]
        and "torch's default: the slowest" not in (tables["bench-contention"])
    )
    assert "`python benchmarks/bench_contention.py`" in tables["bench-contention"]  # no --data_path: no machine path
    assert "| 1.60× as long | 1.25× | 1.25× | 100 % |" in B.sweeps_blocks(tmp_path)["sweep-ceiling"]
    cost_table = B.poison_cost_block(tmp_path)
    assert "| clean | 60,000 | 0 | 99.38 / 99.44 % (mean 99.41 %) | 0.05–0.06 % |" in cost_table
    assert "| 99.32 / 99.28 % (mean 99.30 %) | 99.99–100.00 % |" in cost_table
    assert "(20 epochs, Adam, peak lr 0.001, full MNIST; torch " in cost_table
    assert B.default_run_block(tmp_path).startswith("about 26 s on ")


def test_a_run_replaces_its_results_file(tmp_path: Path):
    """The file holds the present: the latest run, whatever its command (earlier runs are in git)."""
    B.record(tmp_path, "bench_pipeline", ["--seed_epochs", "1"], {"x": 1}, date="2026-01-01")
    B.record(tmp_path, "bench_pipeline", ["--data_path=/elsewhere"], {"x": 2}, date="2026-01-02")
    data = json.loads((tmp_path / "benchmarks" / "results" / "bench_pipeline.json").read_text())
    assert data["script"] == "bench_pipeline.py"
    assert [(r["command"], r["figures"]["x"]) for r in data["runs"]] == [("python benchmarks/bench_pipeline.py", 2)]
    run = data["runs"][0]
    assert set(run) == {"command", "date", "machine", "torch", "figures"}
    assert set(run["machine"]) == {"cores", "cpu", "gpu"}
    assert (
        B.command("bench_sweep", ["--data_path", "/d", "--models", "2"])
        == "python benchmarks/bench_sweep.py --models 2"
    )


def test_keep_other_commands_keeps_only_this_machines_runs(tmp_path: Path, monkeypatch):
    here = {"cores": 2, "cpu": "CPU A", "gpu": "no GPU"}
    monkeypatch.setattr(B, "this_machine", lambda: dict(here))
    B.record(tmp_path, "bench_sweep", ["--skip_dask"], {"x": 1}, date="2026-01-01", keep_other_commands=True)
    B.record(tmp_path, "bench_sweep", [], {"x": 2}, date="2026-01-02", keep_other_commands=True)
    B.record(tmp_path, "bench_sweep", ["--skip_dask"], {"x": 3}, date="2026-01-03", keep_other_commands=True)
    path = tmp_path / "benchmarks" / "results" / "bench_sweep.json"
    commands = [(r["command"], r["figures"]["x"]) for r in json.loads(path.read_text())["runs"]]
    assert commands == [("python benchmarks/bench_sweep.py", 2), ("python benchmarks/bench_sweep.py --skip_dask", 3)]
    here["cpu"] = "CPU B"  # another machine: its run replaces them all
    B.record(tmp_path, "bench_sweep", ["--skip_dask"], {"x": 4}, date="2026-01-04", keep_other_commands=True)
    runs = json.loads(path.read_text())["runs"]
    assert [(r["command"], r["machine"]["cpu"]) for r in runs] == [("python benchmarks/bench_sweep.py --skip_dask",
                                                                    "CPU B")]  # fmt: skip


def test_one_table_per_benchmark_with_its_newest_run(tmp_path: Path):
    """performance.md shows one table per benchmark: the newest run, or for bench_sweep a column per command."""
    for date, wall in (("2026-01-02", 30.0), ("2026-01-01", 60.0)):  # an older run left by hand in the file
        figures = {"epochs": 4, "wall_s": wall, "tca": 0.99, "asr": 1.0, "tensor_sps": 9000, "seed_sps": 3000,
                   "seed_epochs": 4, "speedup": 3.0}  # fmt: skip
        path = B.results_path(tmp_path, "bench_pipeline")
        old = json.loads(path.read_text())["runs"] if path.is_file() else []
        run = {"command": f"python benchmarks/bench_pipeline.py --x {date}", "date": date, "machine": B.this_machine(),
               "torch": None, "figures": figures}  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"script": "bench_pipeline.py", "runs": [*old, run]}))
    sweep = script("bench_sweep")
    for argv, size, dask in (([], 20_000, 70.4), (["--train_size", "60000", "--skip_dask"], 60_000, None)):
        times = {"one by one (thread rule)": 80.0, "local pool": 64.0}
        if dask:
            times["Dask LocalCluster"] = dask
        args = argparse.Namespace(models=8, train_size=size, epochs=2)
        same = True if dask else None
        sweep.save(tmp_path, argv, sweep.figures(args, 2, times, one_thread_slowdown=1.6, dask_rows_identical=same))
    contention = script("bench_contention")
    args = argparse.Namespace(train_size=20_000, epochs=2, copies=3, repeats=2)
    contention.save(tmp_path, [], contention.figures(args, 2, {"auto": 10.0, "default": 9.5, "one": 13.0}, 21.0, 90.0))

    tables = B.performance_blocks(tmp_path)
    for name, body in tables.items():
        assert sum(line.startswith("|---") for line in body.splitlines()) == 1, name
        assert body.count("Measured on ") == 1, name
    assert "**30.0 s** wall" in tables["bench-pipeline"] and "60.0 s" not in tables["bench-pipeline"]
    head = tables["bench-sweep"].splitlines()[0]
    assert (
        head
        == "| sweep | 8 models, 20,000 images, 2 epochs, 2 workers | 8 models, 60,000 images, 2 epochs, 2 workers |"
    )
    assert "; the same rows as the pool | not run (`--skip_dask`) |" in tables["bench-sweep"]
    assert (
        "`python benchmarks/bench_sweep.py` and `python benchmarks/bench_sweep.py --train_size 60000 --skip_dask`"
        in (tables["bench-sweep"])
    )
    assert "90.0 s = **4.62×** the fair share" in tables["bench-contention"]


def test_committed_results_are_in_the_recorded_format():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["script"] == path.stem + ".py" and data["runs"], path.name
        assert [r["command"] for r in data["runs"]] == sorted(r["command"] for r in data["runs"])
        for run in data["runs"]:
            assert list(run) == ["command", "date", "machine", "torch", "figures"], path.name
            assert run["command"].startswith(f"python benchmarks/{path.stem}.py"), path.name
        # the present only: one run (bench_sweep: one per command), all on one machine
        assert len(data["runs"]) == 1 or path.stem == "bench_sweep", path.name
        assert all(r["machine"] == data["runs"][0]["machine"] for r in data["runs"]), path.name


def test_missing_results_file_is_one_line(tmp_path: Path):
    with pytest.raises(B.MissingResultsError) as err:
        B.performance_blocks(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "benchmarks/results/bench_pipeline.json" in message and "python benchmarks/bench_pipeline.py" in message
    with pytest.raises(FileNotFoundError, match="poison_cost.json is missing"):
        B.poison_cost_block(tmp_path)


def test_machine_text():
    assert B.machine_text({"cores": 2, "cpu": None, "gpu": "no GPU"}) == "2 CPU cores, no GPU"
    assert B.machine_text({"cores": 8, "cpu": "AMD EPYC 7B13", "gpu": "NVIDIA H100"}) == (
        "AMD EPYC 7B13, 8 CPU cores, NVIDIA H100"
    )


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help(name: str):
    done = subprocess.run([sys.executable, f"benchmarks/{name}.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")
