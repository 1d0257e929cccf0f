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
(targets: pool >= 1.3x the one-by-one loop, Dask within 15 % of the pool), the pool's ceiling on this machine
(N workers / how much longer a run takes on one thread than on the loop's threads: two threads that scale well
leave a pool of one-thread workers little to win), and whether the pool and Dask gave
identical rows (TCA, ASR, sizes: they must; the one-by-one loop trains with another thread count, so its rows may
differ in the last digits).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from badnets_utils.experiment import Attack, Budget, load_data, run, run_many  # noqa: E402
from badnets_utils.sweep import result_row  # noqa: E402
from badnets_utils.train import threads_set_by_user, usable_cores  # noqa: E402


def _rows(results) -> list[dict]:
    return [{k: v for k, v in result_row(r).items() if k != "seconds"} for r in results]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=None)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--train_size", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="pool and Dask workers (default: one per core)")
    p.add_argument("--skip_dask", action="store_true")
    args = p.parse_args()
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

    base, pool = times["one by one (thread rule)"], times["local pool"]
    print(f"\npool vs one by one: {base / pool:.2f}x faster (target >= 1.3x)")
    # The most a pool can win: N one-thread runs side by side against one run on the loop's threads at a time.
    # A run on one thread takes `scaling` times as long as on the loop's threads; N workers then finish N runs in
    # that time, so N / scaling is the pool's ceiling (no start-up, no warm-up, no idle worker at the end).
    scaling = mean(r.seconds for r in pooled) / mean(r.seconds for r in loop)
    print(
        f"a run on one thread (pool) / on the loop's threads: {scaling:.2f}x as long; so {workers} one-thread "
        f"workers can be at most {workers / scaling:.2f}x faster than the loop; measured {base / pool:.2f}x "
        f"({100 * base / pool / (workers / scaling):.0f} % of that ceiling; the rest: start-up, first runs)"
    )
    if same is not None:
        print(f"Dask vs pool: {times['Dask LocalCluster'] / pool:.2f}x the pool's time (target <= 1.15)")
        print(f"pool and Dask rows identical: {same}")
    print(f"one-by-one rows equal to the pool's: {_rows(loop) == _rows(pooled)} (other thread count)")
    return 0 if same in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
