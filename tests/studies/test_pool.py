"""Many runs at once: in this process, on the local pool and on Dask, the same models to the last bit."""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import Executor, Future

import pytest
import torch

from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.pipeline import load_data, run
from badnets_utils.studies.pool import Runs, RunsFailedError, auto_workers, run_all, run_many
from badnets_utils.studies.sweep import read_results, result_row, run_sweep
from badnets_utils.tools import cli

BUDGET = Budget(epochs=1, batch_size=128, train_limit=2000, test_limit=1000, device="cpu")
ATTACKS = [Attack(target=1), Attack(target=7, rate=0.05), Attack(target=3, seed=1)]  # two seeds: two data sets


def _same_models(a, b) -> None:
    assert [r.attack for r in a] == [r.attack for r in b]
    for x, y in zip(a, b, strict=True):
        sa, sb = x.model.state_dict(), y.model.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), x.attack.label
        assert (x.tca, x.asr) == (y.tca, y.asr)


@pytest.fixture(scope="module")
def in_process(mnist_root):
    return run_many(ATTACKS, BUDGET, data_root=mnist_root, workers=1, progress=False)


def test_pool_gives_the_same_models_in_order(in_process, mnist_root):
    finished = []
    pooled = run_many(ATTACKS, BUDGET, data_root=mnist_root, workers=2, on_result=finished.append, progress=False)
    _same_models(in_process, pooled)
    assert sorted(r.attack.target for r in finished) == [1, 3, 7]


def test_threads_and_environment_are_restored(mnist_root, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = torch.get_num_threads()
    run_many(ATTACKS[:1], BUDGET.replace(train_limit=300, test_limit=100), data_root=mnist_root, workers=1)
    assert torch.get_num_threads() == threads and "OMP_NUM_THREADS" not in os.environ


def test_auto_workers_and_bad_values():
    assert 1 <= auto_workers(BUDGET, 8) <= max(1, os.cpu_count() or 1) and auto_workers(BUDGET, 1) == 1
    with pytest.raises(ValueError, match="workers 0 is not allowed"):
        run_many(ATTACKS, BUDGET, workers=0)


def _dask():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail('CI needs dask: pip install -e ".[cluster]"')
        pytest.skip('dask is not installed (pip install -e ".[cluster]")')
    return Client, LocalCluster


def test_dask_local_cluster_gives_the_same_models_and_rows(in_process, mnist_root, tmp_path):
    Client, LocalCluster = _dask()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            remote = run_many(ATTACKS, BUDGET, data_root=mnist_root, executor=client.get_executor(), progress=False)
            rows = run_sweep(ATTACKS, BUDGET, tmp_path / "d.csv", mnist_root, verbose=False,
                             executor=client.get_executor())  # fmt: skip
    _same_models(in_process, remote)
    local = [result_row(r) for r in in_process]
    without_time = [[{k: v for k, v in r.items() if k != "seconds"} for r in rs] for rs in (rows, local)]
    assert without_time[0] == without_time[1]


def die_on_doomed(result):
    """Runs in a pool worker: the worker running the attack named 'doomed' is killed mid-run."""
    if result.attack.name == "doomed":
        os.kill(os.getpid(), signal.SIGKILL)
    return result_row(result)


def test_a_dead_worker_is_reported_by_name_and_the_others_go_on(mnist_root):
    small = BUDGET.replace(train_limit=300, test_limit=100)
    attacks = [Attack(target=2), Attack(target=4, name="doomed"), Attack(target=5), Attack(target=6)]
    rows = []
    with pytest.raises(RunsFailedError, match="'doomed, rate 0.1, seed 0': its worker process died") as failed:
        run_all(Runs(attacks, small, data_root=mnist_root, finish=die_on_doomed, run=run, load=load_data),
                workers=2, on_result=rows.append)  # fmt: skip
    assert list(failed.value.failures) == ["doomed, rate 0.1, seed 0"]
    assert sorted(r["trigger_label"] for r in rows) == [2, 5, 6]


def test_failed_runs_are_reported_one_by_one():
    """Three failed runs of one label (other rates, seeds, or the very same settings) are three failures."""
    attacks = [Attack(name="doomed", rate=0.1), Attack(name="doomed", rate=0.2), Attack(name="doomed", seed=1),
               Attack(name="doomed", rate=0.1)]  # fmt: skip
    with pytest.raises(RunsFailedError) as failed:
        run_all(Runs(attacks, BUDGET, data=({}, {}), run=_fail, load=load_data), workers=1, progress=False)
    assert list(failed.value.failures) == ["doomed, rate 0.1, seed 0", "doomed, rate 0.2, seed 0",
                                           "doomed, rate 0.1, seed 1", "doomed, rate 0.1, seed 0 (run 4)"]  # fmt: skip


def _fail(attack, budget, data, progress=False):
    raise RuntimeError(f"no data for {attack.label}")


class InterruptAfter(Executor):
    """Runs the first ``k`` jobs here; then it is as if Ctrl-C came while the others were running."""

    def __init__(self, k: int) -> None:
        self.k, self.submitted = k, 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self.submitted += 1
        if self.submitted > self.k:
            future.set_exception(KeyboardInterrupt())
        else:
            future.set_result(fn(*args, **kwargs))
        return future


def test_an_interrupted_sweep_keeps_its_rows_and_resumes(mnist_root, tmp_path):
    small = BUDGET.replace(train_limit=300, test_limit=100)
    attacks = [Attack(target=t) for t in (1, 2, 3, 4)]
    path = tmp_path / "sweep.csv"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(attacks, small, path, mnist_root, verbose=False, executor=InterruptAfter(2))
    kept = read_results(path)
    assert [r["trigger_label"] for r in kept] == [1, 2]
    rows = run_sweep(attacks, small, path, mnist_root, verbose=False, workers=1)
    assert [r["trigger_label"] for r in rows] == [1, 2, 3, 4]
    again = read_results(path)
    assert sorted(r["trigger_label"] for r in again) == [1, 2, 3, 4]  # no row lost, none twice
    assert [r["seconds"] for r in again[:2]] == [r["seconds"] for r in kept]  # the finished ones were not retrained


def test_sweep_command_trains_then_reuses_its_csv(mnist_root, tmp_path, capsys):
    path = tmp_path / "cli.csv"
    argv = ["sweep", "--rates", "0", "0.1", "--epochs", "1", "--train_limit", "300", "--test_limit", "100",
            "--csv", str(path), "--workers", "1", "--data_path", str(mnist_root), "--device", "cpu"]  # fmt: skip
    assert cli.main(argv) == 0
    assert [r["poisoning_rate"] for r in read_results(path)] == [0.0, 0.1]
    capsys.readouterr()
    assert cli.main(argv) == 0 and capsys.readouterr().out.count("from the CSV") == 2


def test_scheduler_without_dask_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if dask were not installed
    assert cli.main(["sweep", "--scheduler", "tcp://127.0.0.1:8786", "--csv", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "dask[distributed]"' in err
    assert not (tmp_path / "s.csv").exists()


def test_data_given_by_the_caller_reaches_the_pool(mnist_root):
    small = BUDGET.replace(train_limit=300, test_limit=100)
    data = load_data("MNIST", small, 0, mnist_root)
    attacks = [Attack(target=2), Attack(target=4, position="random")]
    here = run_many(attacks, small, data=data, workers=1, progress=False)
    _same_models(here, run_many(attacks, small, data=data, workers=2, progress=False))


def _threads_seen(result) -> int:
    return torch.get_num_threads()


def test_what_a_run_does_after_training_has_the_runs_threads(mnist_root):
    """``finish`` (a sweep's row, spectral_study's retraining) runs with the run's fixed thread count, so what it
    trains is the same bits wherever it runs."""
    from badnets_utils.studies.pool import RUN_THREADS

    small = BUDGET.replace(train_limit=300, test_limit=100)
    runs = Runs(ATTACKS[:1], small, data_root=mnist_root, finish=_threads_seen, run=run, load=load_data)
    seen = run_all(runs, workers=1, progress=False)
    assert seen == [RUN_THREADS]
