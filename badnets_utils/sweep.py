"""Sweeps: a list of attacks run with one budget through the engine of ``experiment.run_many``, each result kept in
a CSV.

A row of the CSV holds an attack's settings, the budget, and the run's results. A sweep that is run again (or
interrupted and restarted) only trains what is missing, and its plots can be redrawn without training::

    attacks = [Attack(rate=r, seed=s) for s in (0, 1, 2) for r in (0, 0.001, 0.01, 0.1)]
    rows = run_sweep(attacks, Budget(epochs=2), csv_path="runs/sweeps/rates.csv")
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path

import torch

from .experiment import Attack, Budget, Result, check_attack_settings, check_budget, load_data, run
from .files import atomic_write_text
from .parallel import RunsFailedError, auto_workers, run_all

KEY_FIELDS = (*Attack().describe(), *Budget().describe())  # what identifies a run
RESULT_FIELDS = ("poisoned", "train_size", "test_size", "tca", "asr", "seconds")  # what it measured
FIELDS = (*KEY_FIELDS, *RESULT_FIELDS)
_INTS = {"trigger_size", "trigger_label", "source", "poison_count", "seed", "epochs", "batch_size", "train_limit",
         "test_limit", "poisoned", "train_size", "test_size"}  # fmt: skip
_FLOATS = {"alpha", "poisoning_rate", "lr", "tca", "asr", "seconds"}


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _parse(key: str, text: str):
    if text == "":
        return None
    return int(text) if key in _INTS else float(text) if key in _FLOATS else text


def run_key(attack: Attack, budget: Budget) -> tuple[str, ...]:
    """The CSV key of a run: its settings, as text."""
    settings = {**check_attack_settings(attack).describe(), **budget.describe()}
    return tuple(_fmt(settings[k]) for k in KEY_FIELDS)


def _row_key(row: dict) -> tuple[str, ...]:
    return tuple(_fmt(row[k]) for k in KEY_FIELDS)


def read_results(path: str | os.PathLike) -> list[dict]:
    """Rows of a sweep CSV ([] when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: _parse(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_results(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write sweep rows as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in FIELDS})
    return atomic_write_text(path, buf.getvalue())


def result_row(result: Result) -> dict:
    """A finished run as a CSV row."""
    row = {**result.attack.describe(), **result.budget.describe()}
    row.update(poisoned=len(result.setup.train.poison_indices), train_size=result.setup.train_size,
               test_size=len(result.setup.test), tca=result.tca, asr=result.asr, seconds=result.seconds)  # fmt: skip
    return row


def _line(row: dict, cached: bool) -> str:
    where = "(from the CSV)" if cached else f"({row['seconds']:.1f} s)"
    rate = row.get("poisoning_rate")
    what = f"rate {rate:<7g}" if rate is not None else f"count {row['poison_count']}"
    return (f"{what} seed {row['seed']}: {row['poisoned']:>5} poisoned  "
            f"TCA {row['tca']:.4f}  ASR {row['asr']:.4f}  {where}")  # fmt: skip


def run_sweep(
    attacks: Sequence[Attack],
    budget: Budget = Budget(),
    csv_path: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    verbose: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
) -> list[dict]:
    """One row per attack, in order; runs already in ``csv_path`` are reused, each new one is added to it (an
    atomic rewrite, by this process only) as soon as it finishes, so an interrupted sweep resumes where it stopped.
    ``workers`` / ``executor``: where the runs train, as in ``experiment.run_many`` (the rows do not depend on it).
    """
    attacks = [check_attack_settings(a) for a in attacks]
    check_budget(budget)
    done = {_row_key(r): r for r in read_results(csv_path)} if csv_path else {}
    keys = [run_key(a, budget) for a in attacks]
    todo = [a for a, k in zip(attacks, keys, strict=True) if k not in done]
    todo = list({run_key(a, budget): a for a in todo}.values())  # the same run asked for twice trains once
    if verbose:
        for k in keys:
            if k in done:
                print(_line(done[k], cached=True))

    def keep(row: dict) -> None:
        done[_row_key(row)] = row
        if csv_path:
            write_results(list(done.values()), csv_path)
        if verbose:
            print(_line(row, cached=False), flush=True)

    run_all(run, load_data, todo, budget, None, data_root, download, keep, workers, executor, finish=result_row)
    return [done[k] for k in keys]


def rate_sweep(
    rates: Sequence[float],
    seeds: Sequence[int] = (0,),
    attack: Attack = Attack(),
    budget: Budget = Budget(),
    csv_path: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    verbose: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
) -> list[dict]:
    """``attack`` at every poisoning rate and seed (seed-major, so each seed's data subset is loaded once)."""
    attacks = [attack.replace(rate=float(r), count=None, seed=int(s)) for s in seeds for r in rates]
    return run_sweep(attacks, budget, csv_path, data_root, download, verbose, workers, executor)


def summarize(rows: Sequence[dict], by: str = "poisoning_rate") -> list[dict]:
    """Mean and standard deviation over seeds, one row per value of ``by`` (sorted)."""
    groups: dict[float, list[dict]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    out = []
    for value in sorted(groups):
        group = groups[value]
        tca = torch.tensor([g["tca"] for g in group], dtype=torch.float64)
        asr = torch.tensor([g["asr"] for g in group], dtype=torch.float64)
        counts = torch.tensor([g["poisoned"] for g in group], dtype=torch.float64)
        std = (lambda t: t.std().item()) if len(group) > 1 else (lambda t: 0.0)
        out.append({
            "rate": value, "poison_count": counts.mean().item(), "seeds": len(group),
            "tca_mean": tca.mean().item(), "tca_std": std(tca),
            "asr_mean": asr.mean().item(), "asr_std": std(asr),
        })  # fmt: skip
    return out


def format_summary(summary: Sequence[dict]) -> str:
    """A text table of ``summarize``'s rows."""
    lines = [f"{'rate':>8} {'poisoned':>9} {'seeds':>5} {'TCA (%)':>14} {'ASR (%)':>14}"]
    for s in summary:
        lines.append(
            f"{s['rate']:>8g} {s['poison_count']:>9.0f} {s['seeds']:>5d} "
            f"{100 * s['tca_mean']:>7.2f} ± {100 * s['tca_std']:<4.2f} "
            f"{100 * s['asr_mean']:>7.2f} ± {100 * s['asr_std']:<4.2f}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line

SCHEDULER_ENV = "BADNETS_SCHEDULER"  # the Dask scheduler a sweep uses when --scheduler is not given
DASK_MISSING = 'Dask is not installed here: pip install "dask[distributed]" (or pip install -e ".[cluster]")'


def _pair(text: str) -> tuple[int, int]:
    source, sep, target = text.partition(":")
    if not sep or not source.strip().isdigit() or not target.strip().isdigit():
        raise ValueError(f"pair {text!r} is not SOURCE:TARGET; allowed: two class numbers, e.g. 7:1")
    return int(source), int(target)


def sweep_attacks(args) -> list[Attack]:
    """The sweep command's attacks: every seed × trigger × pair (or target) × rate, seed-major."""
    pairs = [_pair(p) for p in args.pairs] if args.pairs else [(None, t) for t in args.targets]
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
    except (OSError, TimeoutError) as err:
        raise ValueError(f"cannot reach the Dask scheduler at {address!r}: {err}") from None


def main(argv: list[str]) -> int:
    """``python -m badnets_utils sweep``: train a grid of attacks, each row kept in --csv as it finishes."""
    from .argparsing import Parser

    a, b = Attack(), Budget()
    p = Parser(prog="badnets sweep", description="Train a grid of attacks (every seed × trigger × pair or target × "
               "rate) on a local pool or a Dask cluster; each finished run is a row of --csv, so a sweep that is "
               "started again only trains what is missing.")  # fmt: skip
    add = p.add_argument
    add("--rates", type=float, nargs="+", default=[a.rate], help="poisoning rates, in [0, 1]")
    add("--seeds", type=int, nargs="+", default=[a.seed], help="seeds")
    add("--triggers", nargs="+", default=[a.trigger], help="built-in trigger kinds or image files")
    add("--targets", type=int, nargs="+", default=[a.target], help="target classes (all-to-one)")
    add("--pairs", nargs="+", default=None, metavar="SOURCE:TARGET", help="single-target pairs, e.g. 7:1 (instead "
        "of --targets)")  # fmt: skip
    add("--dataset", default=a.dataset, help="MNIST, FashionMNIST or CIFAR10")
    add("--trigger_size", type=int, default=a.trigger_size, help="trigger side in pixels")
    add("--poison_mode", default=a.mode, help="add or replace")
    add("--epochs", type=int, default=b.epochs, help="training epochs")
    add("--batch_size", type=int, default=b.batch_size, help="batch size")
    add("--lr", type=float, default=b.lr, help="learning rate")
    add("--device", default=b.device, help="auto, cpu, cuda, cuda:N or mps (one worker on an accelerator)")
    add("--train_limit", type=int, default=None, help="a random subset of this many training images")
    add("--test_limit", type=int, default=None, help="a random subset of this many test images")
    add("--data_path", default=None, help="data root of every worker (default: each one's $BADNETS_DATA, else ./data)")
    add("--download", action="store_true", help="download the dataset if it is missing")
    add("--csv", default="runs/sweeps/sweep.csv", help="the sweep's CSV: rows already there are reused")
    add("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    add("--scheduler", default=os.environ.get(SCHEDULER_ENV) or None, metavar="ADDRESS",
        help=f"a Dask scheduler, e.g. tcp://host:8786 (default: ${SCHEDULER_ENV}); overrides --workers")  # fmt: skip
    args = p.parse_args(argv)
    budget = check_budget(Budget(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                                 train_limit=args.train_limit, test_limit=args.test_limit))  # fmt: skip
    attacks = [check_attack_settings(x) for x in sweep_attacks(args)]
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} is not allowed; allowed: a whole number ≥ 1")
    executor = dask_executor(args.scheduler) if args.scheduler else None
    n = args.workers or auto_workers(budget, len(attacks))
    where = f"Dask scheduler {args.scheduler}" if executor else f"{n} local worker{'s' if n > 1 else ''}"
    print(f"{len(attacks)} runs on {where}; rows in {args.csv}", flush=True)
    try:
        rows = run_sweep(attacks, budget, args.csv, args.data_path, args.download, True, args.workers, executor)
    except RunsFailedError as err:
        for name, why in err.failures.items():
            print(f"badnets sweep: run {name!r} failed: {why.splitlines()[0]}", file=sys.stderr)
        print(
            f"the {len(attacks) - len(err.failures)} other runs are in {args.csv}; run again to retry", file=sys.stderr
        )
        return 1
    if len(args.rates) > 1:
        print(format_summary(summarize(rows)))
    return 0
