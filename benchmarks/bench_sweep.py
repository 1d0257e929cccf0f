"""A sweep three ways: one run after another (the thread rule's threads), the local pool, a Dask LocalCluster.

    python benchmarks/bench_sweep.py [--data_path DIR] [--models 8] [--train_size 20000] [--epochs 2]
                                     [--workers N] [--skip_dask]

The same ``models`` small BadNets (targets 0, 1, 2, …, real MNIST, ``train_size`` training images, the full test
set) are trained:

1. as ``run_many`` did before the pool: one after another in this process, each run on the threads of
   ``train.choose_threads`` (run it without $OMP_NUM_THREADS);
2. on the local pool: ``run_many(workers=N)``, N worker processes of one thread each (default: one per core);
3. on ``dask.distributed.LocalCluster(n_workers=N, threads_per_worker=1)`` through ``client.get_executor()``.

Prints the wall time of each (start of the sweep to its last result, worker start-up included), the ratios
against their targets (``TARGET_POOL``, ``TARGET_DASK``), the pool's ceiling on this machine (N workers / how much
longer a run takes on one thread than on the loop's threads: two threads that scale well leave a pool of one-thread
workers little to win), and whether the pool and Dask gave identical rows (TCA, ASR, sizes: they must; the
one-by-one loop trains with another thread count, so its rows may differ in the last digits). The figures are
recorded in benchmarks/results/bench_sweep.json: the run replaces the earlier run of the same command, and the runs
of other commands stay beside it while they were measured on this machine (a run on another machine replaces them
all). docs/performance.md shows them as the columns of one table, docs/sweeps.md as its rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from badnets_utils import Attack, Budget, load_data, run, run_many  # noqa: E402
from badnets_utils._io.machine import threads_set_by_user, usable_cores  # noqa: E402
from badnets_utils.studies.sweep import result_row  # noqa: E402
from badnets_utils.tools.benchmark_tables import record  # noqa: E402

TARGET_POOL = 1.3  # the pool at least this many times faster than the one-by-one loop
TARGET_DASK = 1.15  # Dask's time at most this many times the pool's


def _rows(results) -> list[dict]:
    return [{k: v for k, v in result_row(r).items() if k != "seconds"} for r in results]


def figures(args: argparse.Namespace, workers: int, times: dict[str, float], one_thread_slowdown: float,
            dask_rows_identical: bool | None) -> dict:  # fmt: skip
    """What a run measured, with the ratios it prints: the contents of its record."""
    base, pool, dask = times["one by one (thread rule)"], times["local pool"], times.get("Dask LocalCluster")
    ceiling = workers / one_thread_slowdown
    return {
        "models": args.models, "train_size": args.train_size, "epochs": args.epochs, "workers": workers,
        "one_by_one_s": round(base, 2), "pool_s": round(pool, 2), "dask_s": None if dask is None else round(dask, 2),
        "pool_speedup": round(base / pool, 4), "target_pool": TARGET_POOL,
        "dask_vs_pool": None if dask is None else round(dask / pool, 4), "target_dask": TARGET_DASK,
        "dask_rows_identical": dask_rows_identical, "one_thread_slowdown": round(one_thread_slowdown, 4),
        "ceiling": round(ceiling, 4), "share_of_ceiling": round(base / pool / ceiling, 4),
    }  # fmt: skip


def save(root: Path, argv: list[str], measured: dict) -> Path:
    """Record ``measured`` (``figures``) in benchmarks/results/bench_sweep.json under ``root``, beside this
    machine's runs of other commands; return the file."""
    return record(root, "bench_sweep", argv, measured, keep_other_commands=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=None)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--train_size", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="pool and Dask workers (default: one per core)")
    p.add_argument("--skip_dask", action="store_true")
    args = p.parse_args(argv)
    if threads_set_by_user():
        p.error("unset $OMP_NUM_THREADS / $MKL_NUM_THREADS: the one-by-one loop must use the thread rule")
    workers = args.workers or usable_cores()
    budget = Budget(epochs=args.epochs, train_limit=args.train_size, device="cpu")
    attacks = [Attack(target=t % 10) for t in range(args.models)]
    print(f"{args.models} models, {args.train_size:,} images, {args.epochs} epochs; {workers} workers; "
          f"{os.cpu_count()} CPUs, {usable_cores()} usable cores", flush=True)  # fmt: skip

    start = time.perf_counter()
    data = load_data("MNIST", budget, 0, args.data_path)
    loop = [run(a, budget, data, progress=False) for a in attacks]
    times = {"one by one (thread rule)": time.perf_counter() - start}
    print(f"one by one: {times['one by one (thread rule)']:.1f} s", flush=True)

    start = time.perf_counter()
    pooled = run_many(attacks, budget, data_root=args.data_path, workers=workers, progress=False)
    times["local pool"] = time.perf_counter() - start
    print(f"local pool: {times['local pool']:.1f} s", flush=True)

    same = None
    if not args.skip_dask:
        from dask.distributed import Client, LocalCluster

        start = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            with Client(c) as client:
                remote = run_many(attacks, budget, data_root=args.data_path, executor=client.get_executor(),
                                  progress=False)  # fmt: skip
        times["Dask LocalCluster"] = time.perf_counter() - start
        print(f"Dask LocalCluster (cluster start included): {times['Dask LocalCluster']:.1f} s", flush=True)
        same = _rows(pooled) == _rows(remote)

    # The most a pool can win: N one-thread runs side by side against one run on the loop's threads at a time.
    # A run on one thread takes `slowdown` times as long as on the loop's threads; N workers then finish N runs in
    # that time, so N / slowdown is the pool's ceiling (no start-up, no warm-up, no idle worker at the end).
    slowdown = mean(r.seconds for r in pooled) / mean(r.seconds for r in loop)
    f = figures(args, workers, times, slowdown, same)
    print(f"\npool vs one by one: {f['pool_speedup']:.2f}x faster (target >= {TARGET_POOL}x)")
    print(
        f"a run on one thread (pool) / on the loop's threads: {f['one_thread_slowdown']:.2f}x as long; so {workers} "
        f"one-thread workers can be at most {f['ceiling']:.2f}x faster than the loop; measured "
        f"{f['pool_speedup']:.2f}x ({100 * f['share_of_ceiling']:.0f} % of that ceiling; the rest: start-up, "
        "first runs)"
    )
    if same is not None:
        print(f"Dask vs pool: {f['dask_vs_pool']:.2f}x the pool's time (target <= {TARGET_DASK})")
        print(f"pool and Dask rows identical: {same}")
    print(f"one-by-one rows equal to the pool's: {_rows(loop) == _rows(pooled)} (other thread count)")
    print(f"recorded in {save(ROOT, argv, f).relative_to(ROOT).as_posix()}")
    return 0 if same in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
