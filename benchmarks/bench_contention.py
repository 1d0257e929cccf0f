"""Thread contention: one training run alone vs three at once, with the automatic thread rule and with torch's default.

    python benchmarks/bench_contention.py [--data_path DIR] [--train_size 20000] [--epochs 2] [--copies 3]
                                          [--repeats 2] [--skip_default_concurrent]

Every run is a fresh process training a BadNet on real MNIST through the pipeline (``pipeline.train``; CPU, no
thread settings from the user). Prints the time of each run (fit only, and the whole process), the loss of a lone
run under the rule against torch's default (target: ``TARGET_LOSS``) and, for ``copies`` runs at once, the ratio of
the slowest to the fair share (target: ``TARGET_FAIR``); records the figures in
benchmarks/results/bench_contention.json, replacing the run recorded there (docs/performance.md shows it).

The fair share is ``copies x (one run alone on one thread) / cores``: the time each run takes when the runs split
the cores among them with no thread waiting for a core, the best a machine of ``cores`` cores can do (their total
work, in core-seconds, over the cores). A lone run on every core is faster than one core's worth of that
(though less than ``cores`` times faster than on one thread), so ``copies x (lone time on every core) / cores`` is
shorter than anything the cores can deliver; it is printed too, as context.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

LABELS = {"auto": "automatic rule", "default": "torch default", "one": "one thread"}  # thread rules, in words
RULES = tuple(LABELS)
TARGET_LOSS = 0.10  # a lone run under the rule at most this much slower than under torch's default
TARGET_FAIR = 1.3  # the slowest of the runs at once at most this many times the fair share
ROOT = Path(__file__).resolve().parent.parent


def worker(data_path: str, train_size: int, epochs: int, rule: str) -> dict:
    """Train once in this process; the fit time and the thread counts it used."""
    import importlib

    import torch

    from badnets_utils.core.config import Attack, Budget
    from badnets_utils.core.pipeline import prepare, train

    train_module = importlib.import_module("badnets_utils.core.training")  # the package's `train` is something else
    used = [torch.get_num_threads()]
    set_threads = torch.set_num_threads

    def record(n: int) -> None:
        used.append(n)
        set_threads(n)

    torch.set_num_threads = record
    if rule == "default":  # torch's own choice: one thread per physical core, whatever else runs
        train_module.choose_threads = torch.get_num_threads
    elif rule == "one":  # one thread, always: the machine's best throughput when runs share it
        train_module.choose_threads = lambda: 1
    budget = Budget(epochs=epochs, train_limit=train_size, test_limit=1000, device="cpu")
    setup = prepare(Attack(), budget, data_root=data_path)
    start = time.perf_counter()
    train(setup, budget, progress=False)  # the pipeline's training (per-epoch evaluation on 1,000 test images)
    return {"fit_s": time.perf_counter() - start, "threads": used}


def launch(args: argparse.Namespace, rule: str, copies: int) -> list[dict]:
    """Start ``copies`` worker processes at once; wait for all; their results with wall times."""
    cmd = [sys.executable, __file__, "--worker", rule, "--train_size", str(args.train_size),
           "--epochs", str(args.epochs), "--data_path", str(args.data_path)]  # fmt: skip
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a worker failed (exit {p.returncode})")
        results.append({**json.loads(out.strip().splitlines()[-1]), "wall_s": time.perf_counter() - start})
    return results


def machine_load() -> str:
    """What else runs now: a benchmark on a busy machine measures that machine, not the rule."""
    import os

    from badnets_utils._io.machine import busy_elsewhere

    return f"load average {os.getloadavg()[0]:.2f}, {busy_elsewhere():.0f} runnable threads elsewhere"


def alone(args: argparse.Namespace, rule: str) -> tuple[float, float]:
    """Median fit and process times of ``args.repeats`` lone runs."""
    runs = [launch(args, rule, 1)[0] for _ in range(args.repeats)]
    return statistics.median(r["fit_s"] for r in runs), statistics.median(r["wall_s"] for r in runs)


def describe(results: list[dict]) -> str:
    return ", ".join(f"{r['fit_s']:.1f} s (process {r['wall_s']:.1f} s, threads {r['threads']})" for r in results)


def figures(args: argparse.Namespace, cores: int, lone: dict[str, float], slowest: float | None = None,
            default_slowest: float | None = None) -> dict:  # fmt: skip
    """What a run measured, with the ratios it prints: its record's figures (None: not measured, or not yet).

    ``lone``: median fit seconds alone, by rule; ``slowest``, ``default_slowest``: the slowest of the copies at once
    under the automatic rule (median of the launches) and under torch's default.
    """

    def rounded(x: float | None, to: float = 1.0, digits: int = 2) -> float | None:
        return None if x is None else round(x / to, digits)

    fair = args.copies * lone["one"] / cores
    return {
        "train_size": args.train_size, "epochs": args.epochs, "copies": args.copies, "repeats": args.repeats,
        "cores": cores, "alone_s": {rule: round(lone[rule], 2) for rule in RULES},
        "lone_loss": round(lone["auto"] / lone["default"] - 1, 4), "target_loss": TARGET_LOSS,
        "fair_s": round(fair, 2), "naive_s": round(args.copies * lone["auto"] / cores, 2),
        "auto_slowest_s": rounded(slowest), "auto_vs_fair": rounded(slowest, fair, 4), "target_fair": TARGET_FAIR,
        "default_slowest_s": rounded(default_slowest), "default_vs_fair": rounded(default_slowest, fair, 4),
    }  # fmt: skip


def save(root: Path, argv: list[str], measured: dict) -> Path:
    """Record ``measured`` (``figures``) in benchmarks/results/bench_contention.json under ``root``; the file."""
    from badnets_utils.tools.benchmark_tables import record

    return record(root, "bench_contention", argv, measured)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_path", default=None)
    p.add_argument("--train_size", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2, help="lone runs per rule (median)")
    p.add_argument("--skip_default_concurrent", action="store_true", help="skip the slow copies-at-once default run")
    p.add_argument("--worker", choices=RULES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from badnets_utils._io.machine import physical_cores
    from badnets_utils.core.data import load_dataset, resolve_data_root

    args.data_path = resolve_data_root(args.data_path)
    if args.worker:
        print(json.dumps(worker(str(args.data_path), args.train_size, args.epochs, args.worker)))
        return
    load_dataset("MNIST", train=True, root=args.data_path)  # fails early when absent; warms the page cache
    cores = physical_cores()
    print(f"{args.train_size} MNIST images, {args.epochs} epochs, {cores} physical cores, {args.copies} copies")
    print(f"before: {machine_load()}", flush=True)
    lone = {rule: alone(args, rule) for rule in RULES}
    for rule, (fit, wall) in lone.items():
        print(f"alone, {LABELS[rule] + ':':16s}fit {fit:.1f} s (process {wall:.1f} s)")
    fit = {rule: lone[rule][0] for rule in RULES}
    f = figures(args, cores, fit)
    print(f"lone-run loss of the rule: {100 * f['lone_loss']:+.1f} % (target <= {100 * TARGET_LOSS:.0f} %)")
    print(f"now: {machine_load()}", flush=True)
    print(f"fair share: {args.copies} x {lone['one'][0]:.1f} s (alone, one thread) / {cores} cores = "
          f"{f['fair_s']:.1f} s (the same with the lone run on every core: {f['naive_s']:.1f} s, shorter than the "
          "cores can deliver)")  # fmt: skip
    worst = []
    for _ in range(args.repeats):
        together = launch(args, "auto", args.copies)
        worst.append(max(r["fit_s"] for r in together))
        print(f"{args.copies} at once, automatic rule: {describe(together)}", flush=True)
    slowest = statistics.median(worst)
    f = figures(args, cores, fit, slowest)
    print(f"automatic rule, slowest of {args.copies} (median of {args.repeats}): {slowest:.1f} s; "
          f"/ fair share = {f['auto_vs_fair']:.2f} (target <= {TARGET_FAIR})")  # fmt: skip
    if not args.skip_default_concurrent:
        crowded = launch(args, "default", args.copies)
        worst_default = max(r["fit_s"] for r in crowded)
        f = figures(args, cores, fit, slowest, worst_default)
        print(f"{args.copies} at once, torch default: {describe(crowded)}")
        print(f"torch default, slowest of {args.copies}: {worst_default:.1f} s; / fair = {f['default_vs_fair']:.2f}")
    print(f"recorded in {save(ROOT, argv, f).relative_to(ROOT).as_posix()}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
