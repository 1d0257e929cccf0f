"""``python -m badnets_utils sweep``: the command line of a poisoning-rate sweep (``studies.sweep``)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from badnets_utils._io.files import shown_here
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import default_runs_dir
from badnets_utils.course.sweep_plots import MAX_PANELS, save_plot
from badnets_utils.studies.pool import RunsFailedError, auto_workers
from badnets_utils.studies.sweep import (
    MODELS_SUFFIX,
    _varying,
    _words,
    by_setting,
    check_inputs,
    check_outputs,
    format_summary,
    models_dir,
    read_results,
    run_sweep,
    summarize,
)
from badnets_utils.tools.argparsing import Parser, Terminated

SCHEDULER_ENV = "BADNETS_SCHEDULER"  # the Dask scheduler a sweep uses when --scheduler is not given
# One command's runs at most: its attacks are all made before the first one starts, and its CSV is rewritten after
# each run (a million runs took most of a gigabyte before training began). 10,000 runs of even the shortest useful
# training take a day or more on one machine: a larger grid is several commands on one --csv.
MAX_RUNS = 10_000


DASK_MISSING = 'Dask is not installed here: pip install "dask[distributed]" (or pip install -e ".[cluster]")'


def _pair(text: str) -> tuple[int, int]:
    source, sep, target = text.partition(":")
    digits = [t.strip() for t in (source, target)]
    if not sep or not text.isascii() or not all(d.isdigit() for d in digits):
        raise ValueError(f"pair {text!r} is not SOURCE:TARGET; allowed: two class numbers, e.g. 7:1")
    return int(source), int(target)


def sweep_attacks(args) -> list[Attack]:
    """The sweep command's attacks: every seed × trigger × pair (or target) × rate, seed-major."""
    if args.pairs and args.targets is not None:
        raise ValueError("--pairs and --targets both given; allowed: one of them (a pair names its own target)")
    grid = {"--seeds": args.seeds, "--triggers": args.triggers, "--pairs" if args.pairs else "--targets":
            args.pairs or args.targets or [None], "--rates": args.rates}  # fmt: skip
    if math.prod(len(v) for v in grid.values()) > MAX_RUNS:
        sizes = " × ".join(f"{len(v)} {flag}" for flag, v in grid.items())
        raise ValueError(f"{sizes} = {math.prod(len(v) for v in grid.values()):,} runs; allowed: at most {MAX_RUNS:,} "
                         "in one command (run a larger grid as several commands on the same --csv)")  # fmt: skip
    pairs = [_pair(p) for p in args.pairs] if args.pairs else [(None, t) for t in args.targets or [Attack().target]]
    mode = args.poison_mode
    return [
        Attack(dataset=args.dataset, trigger=trigger, trigger_size=args.trigger_size, source=source, target=target,
               rate=float(rate), mode=mode, seed=seed)
        for seed in args.seeds for trigger in args.triggers for source, target in pairs for rate in args.rates
    ]  # fmt: skip


def dask_executor(address: str):
    """``concurrent.futures`` executor of the Dask scheduler at ``address`` (ValueError in one line if unusable)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ValueError(f"--scheduler {address}: {DASK_MISSING}") from None
    try:
        return Client(address, timeout="10s").get_executor()
    except (OSError, TimeoutError, TypeError, ValueError, RuntimeError, AssertionError) as err:
        # unreachable, malformed, TLS without a context; on a loaded machine Dask's IO loop may not start within its
        # own 10 s (an AssertionError inside distributed): each is this one line, never a traceback
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"--scheduler / ${SCHEDULER_ENV} {address!r}: cannot use this Dask scheduler ({first}); "
                         "allowed: a reachable address such as tcp://host:8786") from None  # fmt: skip


def build_parser() -> Parser:
    """The sweep's flags; their defaults are ``Attack``'s and ``Budget``'s."""
    a, b, csv = Attack(), Budget(), default_runs_dir() / "sweeps" / "sweep.csv"
    p = Parser(prog="badnets sweep", description="Train a grid of attacks (every seed × trigger × pair or target × "
               "rate) on a local pool or a Dask cluster; each finished run is a row of --csv, so a sweep that is "
               "started again only trains what is missing.")  # fmt: skip
    add = p.add_argument
    add("--rates", type=float, nargs="+", default=[a.rate], help="poisoning rates, in [0, 1]")
    add("--seeds", type=int, nargs="+", default=[a.seed], help="seeds")
    add("--triggers", nargs="+", default=[a.trigger], help="built-in trigger kinds or image files")
    add("--targets", type=int, nargs="+", default=None, help=f"target classes (all-to-one; default: {a.target})")
    add("--pairs", nargs="+", default=None, metavar="SOURCE:TARGET", help="single-target pairs, e.g. 7:1 (instead "
        "of --targets)")  # fmt: skip
    add("--dataset", default=a.dataset, help="MNIST, FashionMNIST or CIFAR10")
    add("--trigger_size", type=int, default=a.trigger_size, help="trigger side in pixels")
    add("--poison_mode", default=a.mode, help="add or replace")
    add("--epochs", type=int, default=b.epochs, help="training epochs")
    add("--batch_size", type=int, default=b.batch_size, help="batch size")
    add("--lr", type=float, default=b.lr, help="learning rate")
    add("--device", default=b.device, help="auto, cpu, cuda, cuda:N or mps (one worker on an accelerator)")
    add("--train_limit", type=int, default=None, help="a random subset of this many clean training images (add mode "
        "trains on them plus the poisoned copies: the CSV's train_size and trained_on)")  # fmt: skip
    add("--test_limit", type=int, default=None, help="a random subset of this many test images")
    add("--data_path", default=None, help="data root of every worker (default: each one's $BADNETS_DATA, else its "
        "checkout's data/)")  # fmt: skip
    add("--download", action="store_true", help="download the dataset if it is missing")
    add("--csv", default=csv, help="the sweep's CSV: rows already there are reused; with more "
        "than one rate, its plot (ASR and TCA against the rate, mean ± std over seeds) is drawn beside it, as "
        "<csv stem>.png")  # fmt: skip
    add("--keep_models", action="store_true", help="keep each run's model as a checkpoint in <csv stem>"
        f"{MODELS_SUFFIX}/ beside the CSV ({models_dir(csv).as_posix()}/ for the default --csv), its path from the "
        "CSV's folder in the row's 'model' column; a run already in the CSV without its model file is trained again "
        "and its row replaced")  # fmt: skip
    add("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    add("--scheduler", default=os.environ.get(SCHEDULER_ENV) or None, metavar="ADDRESS",
        help=f"a Dask scheduler, e.g. tcp://host:8786 (default: ${SCHEDULER_ENV}); overrides --workers")  # fmt: skip
    add("--no_progress", action="store_true", help="no progress bar of the runs")
    return p


def main(argv: list[str]) -> int:
    """``python -m badnets_utils sweep``: train a grid of attacks, each row kept in --csv as it finishes."""
    args = build_parser().parse_args(argv)
    budget = Budget(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                    train_limit=args.train_limit, test_limit=args.test_limit)  # fmt: skip
    attacks = sweep_attacks(args)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} is not allowed; allowed: a whole number ≥ 1")
    executor = dask_executor(args.scheduler) if args.scheduler else None
    n = args.workers or auto_workers(budget, len(attacks))
    where = f"Dask scheduler {args.scheduler}" if executor else f"{n} local worker{'s' if n > 1 else ''}"
    check_outputs(args.csv, args.keep_models, plot=len(set(args.rates)) > 1)  # before anything is printed or trained
    check_inputs(attacks, args.data_path, download=args.download, local=executor is None)  # triggers, dataset
    kept = f", models in {shown_here(models_dir(args.csv))}/" if args.keep_models else ""
    print(f"{len(attacks)} runs on {where}; rows in {shown_here(args.csv)}{kept}", flush=True)
    try:
        pool = {"executor": executor} if executor else {"workers": args.workers}
        rows = run_sweep(attacks, budget, args.csv, args.data_path, download=args.download,
                         keep_models=args.keep_models, progress=not args.no_progress, **pool)  # fmt: skip
    except Terminated as stop:
        stop.kept = kept_rows(args.csv)
        raise
    except RunsFailedError as err:
        for name, why in err.failures.items():
            print(f"badnets sweep: run {name!r} failed: {why.splitlines()[0]}", file=sys.stderr)
        finished = len(attacks) - len(err.failures)
        where = f"are in {shown_here(args.csv)}" if finished and os.path.exists(args.csv) else "finished: none"
        print(f"the {finished} other run(s) {where}; run the same command again to retry the failed ones",
              file=sys.stderr)  # fmt: skip
        return 1
    if len(set(args.rates)) > 1:
        report(rows, Path(args.csv).with_suffix(".png"))
    return 0


def kept_rows(csv: str | os.PathLike) -> str:
    """What an interrupted sweep leaves, in words: its CSV keeps every run that finished (each written as it did)."""
    try:
        n = len(read_results(csv))
    except (OSError, ValueError):
        n = 0
    if not n:
        return "no run had finished: nothing of this sweep was saved"
    return (f"every run that finished is kept in {shown_here(csv)} ({n} row{'s' if n != 1 else ''} in all); run the "
            "same command again to train the rest")  # fmt: skip


def report(rows: Sequence[dict], png: str | os.PathLike) -> None:
    """Print the summary of each setting of a rate sweep and draw its plot to ``png`` (or say why not)."""
    groups = by_setting(rows)
    varying = _varying(groups)
    for group in groups.values():
        if varying:
            print(f"\n{', '.join(_words(group[0], varying, shared=False))}:")
        print(format_summary(summarize(group)))
    if len(groups) > MAX_PANELS:
        print(f"no plot: {len(groups)} settings besides the rate, at most {MAX_PANELS} fit in one figure; draw a "
              "selection of the rows with sweep_plots.save_plot (docs/sweeps.md)")  # fmt: skip
        return
    print(f"plot: {shown_here(save_plot(rows, png))}")
