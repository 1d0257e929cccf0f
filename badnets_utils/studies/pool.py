"""Many runs at once: ``run_many``, the engine of the sweeps, the variants and the paper's grids.

Three ways to run a list of attacks, with the same results to the last bit:

- ``workers=1``: one after another in this process;
- ``workers=N``: a local pool of N worker processes (``workers=None``: one per usable core), each of which loads
  the data once and keeps it; a worker that dies is reported by the name of the attack it was running, replaced,
  and the other runs go on;
- ``executor=``: any ``concurrent.futures.Executor``, e.g. Dask's ``client.get_executor()`` for a cluster.

Every run trains with one intra-op thread wherever it runs (``RUN_THREADS``): the thread count changes the
weights, so it is part of the result, and the parallelism comes from the workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import numbers
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from typing import Any

import torch

from badnets_utils._io.allocator import repair_trim_only
from badnets_utils._io.machine import THREADS_ENV, select_device, usable_cores
from badnets_utils._io.progress import tqdm
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import ImageData
from badnets_utils.core.pipeline import Result, load_data, run

RUN_THREADS = 1  # intra-op threads of every run of a sweep, wherever it runs
DATA_CACHE_SIZE = 4  # data sets a worker keeps loaded (one per dataset, seed and budget limits)
Data = tuple[ImageData, ImageData]


NO_MAIN_GUARD_EXIT = 86  # a worker's exit status when it finds it was started by a script without the guard
NO_MAIN_GUARD = ("the script that started these runs has no `if __name__ == \"__main__\":` guard: each worker process "
                 "runs it again from the top (multiprocessing's spawn) and would start a pool of its own; put the code "
                 "that starts the runs under `if __name__ == \"__main__\":` (or use workers=1)")  # fmt: skip


class MainGuardError(RuntimeError):
    """A local pool was started by a script without ``if __name__ == "__main__":`` (``NO_MAIN_GUARD``)."""


class RunsFailedError(RuntimeError):
    """Some runs of a sweep failed; ``failures`` maps each one's label to why. The others finished."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        lines = "; ".join(f"{name!r}: {why}" for name, why in failures.items())
        super().__init__(f"{len(failures)} run(s) failed, the others finished: {lines}")


@dataclass(frozen=True)
class Runs:
    """A list of runs for the pool: the attacks, one budget, where their data comes from, and what comes back.

    ``data``: the (train, test) splits, shared by every run (else each worker loads them once with ``load``);
    ``finish``: applied to each ``Result`` in the worker that trained it (e.g. ``sweep.result_row``), its value is
    what comes back; ``run`` / ``load``: the pipeline's (a test may pass others)."""

    attacks: Sequence[Attack]
    budget: Budget
    data: Data | None = None
    data_root: str | os.PathLike | None = None
    download: bool = False
    finish: Callable | None = None
    run: Callable = run
    load: Callable = load_data


@dataclass(frozen=True)
class Job:
    """What a worker needs for one run, besides the data it may already hold."""

    index: int
    attack: Attack
    budget: Budget
    data_root: str | None
    download: bool
    finish: Callable | None  # applied to the Result in the worker (e.g. sweep.result_row): what comes back
    run: Callable  # pipeline.run (or a test's)
    load: Callable  # pipeline.load_data


def auto_workers(budget, n_runs: int) -> int:
    """One worker per usable core on the CPU (never more than runs); one on an accelerator."""
    if select_device(budget.device).type != "cpu":
        return 1
    return max(1, min(usable_cores(), n_runs))


@contextlib.contextmanager
def fixed_threads(n: int = RUN_THREADS) -> Iterator[None]:
    """Train with ``n`` intra-op threads (the thread rule of ``machine.ThreadGovernor`` off); restore afterwards."""
    saved_threads, saved_env = torch.get_num_threads(), {v: os.environ.get(v) for v in THREADS_ENV}
    os.environ.update({v: str(n) for v in THREADS_ENV})
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


_loaded: dict[tuple, Data] = {}  # this process's data, loaded once per key (a worker's memory)


def _data_for(job: Job) -> Data:
    b = job.budget
    key = (job.attack.dataset, job.attack.seed, b.train_limit, b.test_limit, job.data_root)
    if key not in _loaded:
        while len(_loaded) >= DATA_CACHE_SIZE:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = job.load(job.attack.dataset, b, job.attack.seed, job.data_root, job.download)
    return _loaded[key]


def run_name(job: Job, taken: Iterable[str] = ()) -> str:
    """A run's name in a report of failures: its label with its rate (or count) and seed, unique among ``taken``."""
    a = job.attack
    amount = f"count {a.count}" if getattr(a, "count", None) is not None else f"rate {getattr(a, 'rate', '?')}"
    name = f"{getattr(a, 'label', a)}, {amount}, seed {getattr(a, 'seed', '?')}"
    return name if name not in taken else f"{name} (run {job.index + 1})"


def run_job(job: Job, data: Data | None = None) -> Any:
    """One run with ``RUN_THREADS`` threads, on ``data`` or on this process's copy of the job's data."""
    repair_trim_only()  # a Dask worker's trim-only allocator setting slows training down (allocator.py)
    with fixed_threads():  # ``finish`` too: it may train again (spectral_study's retraining)
        result = job.run(job.attack, job.budget, data if data is not None else _data_for(job), progress=False)
        return job.finish(result) if job.finish is not None else result


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def run_many(
    attacks: Iterable[Attack],
    budget: Budget = Budget(),
    *,
    data: Data | None = None,
    data_root: str | os.PathLike | None = None,
    on_result: Callable[[Result], None] | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: bool = True,
) -> list[Result]:
    """One run per attack, results in the attacks' order (a sweep or a table of variants is this call).

    ``workers``: None = one worker process per usable core, 1 = one after another in this process, N = N worker
    processes; ``executor`` (any ``concurrent.futures.Executor`` that runs each task in a process of its own, e.g.
    Dask's ``client.get_executor()`` with one thread per worker) overrides it. Each worker loads the data once (or
    receives ``data``); every run trains with one thread wherever it runs, so all of these give the same models to
    the last bit. ``on_result`` is called in this process as each run finishes; a run that fails (or whose worker
    dies) does not stop the others: ``RunsFailedError`` at the end.
    """
    runs = Runs(list(attacks), budget, data, data_root)
    return run_all(runs, workers=workers, executor=executor, on_result=on_result, progress=progress)


def run_all(
    runs: Runs,
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    on_result: Callable[[Any], None] | None = None,
    progress: bool = True,
) -> list:
    """Every run of ``runs``, results in the attacks' order; ``on_result`` is called here, in this process, as each
    run finishes (in the order they finish). Failed runs do not stop the others: RunsFailedError at the end."""
    root = None if runs.data_root is None else str(runs.data_root)
    jobs = [Job(i, a, runs.budget, root, runs.download, runs.finish, runs.run, runs.load)
            for i, a in enumerate(runs.attacks)]  # fmt: skip
    data = runs.data
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise ValueError(f"workers {workers!r} is not allowed; allowed: a whole number ≥ 1, or None (one per core)")
    if executor is not None:
        check_executor(executor)
    n = int(workers) if workers is not None else auto_workers(runs.budget, len(jobs))
    if executor is None and n > 1 and len(jobs) > 1 and _starting_a_worker():
        os._exit(NO_MAIN_GUARD_EXIT)  # spawn's own error: a traceback per worker, each replaced and dying again
    results: list = [None] * len(jobs)
    failures: dict[str, str] = {}
    bar = tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress or not jobs)
    try:
        if executor is not None:
            outcomes = _on_executor(executor, jobs, data)
        elif n == 1 or len(jobs) <= 1:
            outcomes = _in_process(jobs, data)
        else:
            outcomes = _on_pool(jobs, data, min(n, len(jobs)))
        for index, ok, value in outcomes:
            bar.update(1)
            if not ok:
                failures[run_name(jobs[index], failures)] = value
                continue
            results[index] = value
            if on_result is not None:
                on_result(value)
    finally:
        bar.close()
    if failures:
        raise RunsFailedError(failures)
    return results


Outcome = tuple[int, bool, Any]  # (job index, finished, result or why it failed)


def _in_process(jobs: list[Job], data: Data | None) -> Iterator[Outcome]:
    for job in jobs:
        try:
            yield job.index, True, run_job(job, data)
        except Exception as err:  # noqa: BLE001 — reported by the run's name; the others go on
            yield job.index, False, _why(err)


def check_executor(executor: Executor) -> None:
    """An executor must run one run per process at a time: two runs in one process share its thread setting
    (``fixed_threads`` changes process-wide state), so their models would depend on timing. A thread pool, or a Dask
    worker with more than one thread, is refused in one line."""
    if not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor {executor!r} is not allowed; allowed: a concurrent.futures Executor, or None")
    if isinstance(executor, ThreadPoolExecutor):
        raise ValueError("a ThreadPoolExecutor runs several runs in one process, whose thread settings would race; "
                         "allowed: a process pool (workers=N) or Dask workers with one thread each")  # fmt: skip
    client = getattr(executor, "_client", None)  # Dask's ClientExecutor
    threads = client.nthreads() if client is not None and callable(getattr(client, "nthreads", None)) else {}
    many = {address: n for address, n in threads.items() if n > 1}
    if many:
        address, n = next(iter(many.items()))
        raise ValueError(f"Dask worker {address} has {n} threads: it would run {n} runs at once in one process, whose "
                         "thread settings race; allowed: workers with one thread each (dask worker --nthreads 1, "
                         "LocalCluster(threads_per_worker=1))")  # fmt: skip


def _on_executor(executor: Executor, jobs: list[Job], data: Data | None) -> Iterator[Outcome]:
    """Every job submitted at once (the executor schedules them); outcomes as they complete."""
    futures: dict[Future, int] = {}
    try:
        for job in jobs:
            futures[executor.submit(run_job, job, data)] = job.index
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                try:
                    yield futures[future], True, future.result()
                except Exception as err:  # noqa: BLE001 — e.g. Dask's KilledWorker: reported by name
                    yield futures[future], False, _why(err)
    finally:
        for future in futures:
            future.cancel()


# ----------------------------------------------------------------------------- the local pool


def _send(conn: Connection, obj: Any) -> None:
    """Plain pickles, not torch's shared-memory ones: no file descriptor stays open per tensor received."""
    conn.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _serve(conn: Connection, data: bytes) -> None:
    """A pool worker: run jobs from ``conn`` until it sends None; answer (index, ok, result or why)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool, rows kept
    loaded = pickle.loads(data)
    while (job := pickle.loads(conn.recv_bytes())) is not None:
        try:
            answer = (job.index, True, run_job(job, loaded))
        except Exception as err:  # noqa: BLE001 — sent back, reported by the run's name
            answer = (job.index, False, f"{_why(err)}\n{traceback.format_exc(limit=-3)}")
        _send(conn, answer)


class _Worker:
    def __init__(self, ctx, data: bytes) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, data), daemon=True)
        self.process.start()
        child.close()
        self.job: Job | None = None

    def give(self, job: Job) -> None:
        self.job = job
        _send(self.conn, job)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            _send(self.conn, None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _starting_a_worker() -> bool:
    """Whether this process is a spawned worker still importing the script that started it: a pool started now
    comes from that script's top level, run again because it lacks the ``__main__`` guard."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _on_pool(jobs: list[Job], data: Data | None, n: int) -> Iterator[Outcome]:  # noqa: C901
    """N spawned worker processes, one job each at a time; a dead worker's job fails by name and is replaced (a
    worker that finds the starting script unguarded stops the pool: ``MainGuardError``)."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process whose torch threads already started
    todo, data = list(reversed(jobs)), pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    pool = [_Worker(ctx, data) for _ in range(n)]
    try:
        for worker in pool:
            if todo:
                worker.give(todo.pop())
        while any(w.job is not None for w in pool):
            busy = [w for w in pool if w.job is not None]
            ready = wait_ready([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for i, worker in enumerate(pool):
                if worker.job is None or not (worker.conn in ready or worker.process.sentinel in ready):
                    continue
                try:
                    outcome = pickle.loads(worker.conn.recv_bytes())
                except (EOFError, OSError):  # the process died mid-run
                    worker.process.join()
                    code = worker.process.exitcode
                    if code == NO_MAIN_GUARD_EXIT:
                        raise MainGuardError(NO_MAIN_GUARD) from None
                    outcome = (worker.job.index, False, f"its worker process died (exit code {code})")
                    worker.conn.close()
                    worker = pool[i] = _Worker(ctx, data)
                worker.job = None
                if todo:
                    worker.give(todo.pop())
                yield outcome
    finally:
        for worker in pool:
            if worker.job is not None:
                worker.process.kill()
            worker.stop()
