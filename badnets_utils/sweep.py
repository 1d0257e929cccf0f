"""Sweep the poisoning rate: train one BadNet per (rate, seed), record TCA and ASR in a CSV.

The data is loaded once; each run poisons its own copy of the training set. Results go to a CSV
keyed by the run's settings, so a sweep that is run again (or interrupted and restarted) only trains
what is missing, and the plot can be redrawn without training at all.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .data import DATASETS, canonical_name, load_splits, random_subset
from .experiment import Setup, final_metrics, run
from .files import atomic_write_text
from .poison import attack_test_set, poison_train_set
from .triggers import make_trigger

FIELDS = ("dataset", "rate", "seed", "poison_count", "train_size", "test_size", "epochs", "batch_size", "lr",
          "trigger_label", "trigger_size", "tca", "asr", "seconds")  # fmt: skip
KEY_FIELDS = FIELDS[:-3]  # what identifies a run; tca, asr and seconds are its results


def _key(row: dict) -> tuple[str, ...]:
    return tuple(_fmt(row[k]) for k in KEY_FIELDS)


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_results(path: str | os.PathLike) -> list[dict]:
    """Rows of a sweep CSV ([] when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints = {"seed", "poison_count", "train_size", "test_size", "epochs", "batch_size", "trigger_label", "trigger_size"}
    out = []
    for row in rows:
        out.append({k: (v if k == "dataset" else int(v) if k in ints else float(v)) for k, v in row.items()})
    return out


def write_results(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write sweep rows as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row[k]) for k in FIELDS})
    return atomic_write_text(path, buf.getvalue())


def rate_sweep(
    rates: Sequence[float],
    seeds: Sequence[int] = (0,),
    csv_path: str | os.PathLike | None = None,
    dataset: str = "MNIST",
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 2e-3,
    trigger_label: int = 1,
    trigger_size: int = 5,
    train_limit: int | None = None,
    test_limit: int | None = None,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    device: str | torch.device = "auto",
    verbose: bool = True,
) -> list[dict]:
    """Train one model per (rate, seed) with a white square trigger, all-to-one to ``trigger_label``.

    Returns one row per run (the keys of ``FIELDS``). With ``csv_path``, runs already in the file
    with the same settings are reused, and each new run is added to the file as soon as it ends.
    """
    name = canonical_name(dataset)
    channels = DATASETS[name]["shape"][0]
    trigger = make_trigger("white", trigger_size, channels)
    done = {_key(r): r for r in read_results(csv_path)} if csv_path else {}
    train_full, test_full = load_splits(name, data_root, download)
    rows = []
    for seed in seeds:
        train = random_subset(train_full, train_limit, seed)
        test = random_subset(test_full, test_limit, seed + 1)
        test_attack = attack_test_set(test, trigger, trigger_label)
        for rate in rates:
            row = {"dataset": name, "rate": float(rate), "seed": int(seed),
                   "poison_count": math.floor(rate * len(train)), "train_size": len(train),
                   "test_size": len(test), "epochs": epochs, "batch_size": batch_size, "lr": float(lr),
                   "trigger_label": trigger_label, "trigger_size": trigger_size}  # fmt: skip
            if _key(row) in done:
                rows.append(done[_key(row)])
                if verbose:
                    r = done[_key(row)]
                    print(f"rate {rate:<7g} seed {seed}: {r['poison_count']:>5} poisoned  "
                          f"TCA {r['tca']:.4f}  ASR {r['asr']:.4f}  (from the CSV)")  # fmt: skip
                continue
            start = time.perf_counter()
            poisoned = poison_train_set(train, trigger, rate, trigger_label, seed=seed)
            setup = Setup(poisoned, test, test_attack, trigger, {"dataset": name, "seed": seed})
            model, _ = run(setup, epochs=epochs, batch_size=batch_size, lr=lr, device=device, progress=False)
            metrics = final_metrics(model, setup)
            row.update(tca=metrics["tca"], asr=metrics["asr"], seconds=time.perf_counter() - start)
            rows.append(row)
            done[_key(row)] = row
            if csv_path:
                write_results(list(done.values()), csv_path)
            if verbose:
                print(f"rate {rate:<7g} seed {seed}: {row['poison_count']:>5} poisoned  "
                      f"TCA {row['tca']:.4f}  ASR {row['asr']:.4f}  ({row['seconds']:.1f} s)")  # fmt: skip
    return rows


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation over seeds, one row per rate (sorted by rate)."""
    by_rate: dict[float, list[dict]] = {}
    for r in rows:
        by_rate.setdefault(float(r["rate"]), []).append(r)
    out = []
    for rate in sorted(by_rate):
        group = by_rate[rate]
        tca = torch.tensor([g["tca"] for g in group], dtype=torch.float64)
        asr = torch.tensor([g["asr"] for g in group], dtype=torch.float64)
        counts = torch.tensor([g["poison_count"] for g in group], dtype=torch.float64)
        std = (lambda t: t.std().item()) if len(group) > 1 else (lambda t: 0.0)
        out.append({
            "rate": rate, "poison_count": counts.mean().item(), "seeds": len(group),
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
