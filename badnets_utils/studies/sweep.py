"""Sweeps: a list of attacks run with one budget through the engine of ``run_many``, each result kept in
a CSV.

A row of the CSV holds an attack's settings, the budget, and the run's results. A sweep that is run again (or
interrupted and restarted) only trains what is missing, and its plots can be redrawn without training. With
``keep_models``, each run's model is a checkpoint in the folder beside the CSV (``models_dir``), named in its row::

    attacks = [Attack(rate=r, seed=s) for s in (0, 1, 2) for r in (0, 0.001, 0.01, 0.1)]
    rows = run_sweep(attacks, Budget(epochs=2), csv_path="runs/sweeps/rates.csv", keep_models=True)
    save_plot(rows, "runs/sweeps/rates.png")
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from badnets_utils._io.files import atomic_write_text, check_writable, held, read_input, shown
from badnets_utils.core.checkpoints import save_checkpoint
from badnets_utils.core.config import BUILTIN_TRIGGERS, Attack, Budget
from badnets_utils.core.data import DATASETS, check_dataset
from badnets_utils.core.pipeline import Result, trigger_sha256
from badnets_utils.core.triggers import make_trigger, stamp_sha256
from badnets_utils.studies.pool import Runs, run_all

if TYPE_CHECKING:
    pass

# what identifies a run: its settings, and the SHA-256 of its trigger as stamped (two files of one name differ)
KEY_FIELDS = (*Attack().describe(), *Budget().describe(), "trigger_sha256")
RESULT_FIELDS = ("poisoned", "train_size", "trained_on", "test_size", "tca", "asr", "seconds", "model")  # its outcome
FIELDS = (*KEY_FIELDS, *RESULT_FIELDS)
_INTS = {"trigger_size", "trigger_label", "source", "poison_count", "seed", "epochs", "batch_size", "train_limit",
         "test_limit", "poisoned", "train_size", "trained_on", "test_size"}  # fmt: skip
_EXACT = {"alpha", "poisoning_rate", "lr"}  # settings: written exactly (0.001 and 0.0009999996 are two runs)
_FLOATS = {*_EXACT, "tca", "asr", "seconds"}  # outcomes: to 6 significant digits
MAX_CSV_BYTES = 64 * 2**20  # a sweep CSV larger than this is not one this package wrote
MODELS_SUFFIX = "_models"  # runs/sweeps/rates.csv keeps its models in runs/sweeps/rates_models/
GROUP_FIELDS = tuple(k for k in KEY_FIELDS if k not in ("poisoning_rate", "poison_count", "seed"))  # one curve each


def _fmt(value, exact: bool = False) -> str:
    """A value as the CSV writes it: a float to 6 significant digits, or (``exact``) as the shortest text that reads
    back as the same float (``1`` for 1.0)."""
    if value is None:
        return ""
    if not isinstance(value, float):
        return str(value)
    if not exact:
        return f"{value:.6g}"
    text = repr(value)
    return text.removesuffix(".0")


def _text(key: str, value) -> str:
    """The CSV's text of one column's value: a setting exactly, an outcome to 6 significant digits."""
    return _fmt(value, exact=key in _EXACT)


def _parse(key: str, text: str):
    if text == "":
        return None
    return int(text) if key in _INTS else float(text) if key in _FLOATS else text


def run_key(attack: Attack, budget: Budget, digest: str | None = None) -> tuple[str, ...]:
    """The CSV key of a run: its settings as text, numbers exactly, and its trigger's ``trigger_sha256`` (``digest``,
    when already computed; else the trigger is built here)."""
    settings = {**attack.describe(), **budget.describe(), "trigger_sha256": digest or trigger_sha256(attack)}
    return tuple(_text(k, settings[k]) for k in KEY_FIELDS)


def _row_key(row: dict) -> tuple[str, ...]:
    """A row's key; a row whose trigger is unknown (an older CSV's file trigger) has "" there, which no run has."""
    return tuple(_text(k, row.get(k)) for k in KEY_FIELDS)


def _stored(row: dict) -> dict:
    """``row`` as the CSV stores it (outcomes to 6 significant digits): a row in memory equals the row read back."""
    return {k: _parse(k, _text(k, v)) if k in _INTS or k in _FLOATS else v for k, v in row.items()}


@functools.lru_cache(maxsize=64)
def _builtin_sha256(dataset: object, kind: object, size: object) -> str | None:
    """The ``trigger_sha256`` of a built-in trigger at a size on a dataset; None for anything else."""
    if kind not in BUILTIN_TRIGGERS or dataset not in DATASETS or isinstance(size, bool) or not isinstance(size, int):
        return None
    channels, h, w = DATASETS[dataset]["shape"]
    return stamp_sha256(make_trigger(kind, size, channels)) if 1 <= size <= min(h, w) else None


def _known_trigger(row: dict) -> str | None:
    """A row's ``trigger_sha256``. An older CSV has none: there a built-in trigger's name is read as that pattern
    (the name of a kind, or of its shipped PNG, which loads as the same pixels), and any other trigger (a file's
    stem, ``custom``) stays unknown (None): the row is read for plots and summaries, and never reused for a run."""
    if row.get("trigger_sha256") is not None:
        return row["trigger_sha256"]
    return _builtin_sha256(row.get("dataset"), row.get("trigger"), row.get("trigger_size"))


def _header(path: Path, names: list[str] | None) -> None:
    """A sweep CSV's header names every key and result column once (an older CSV may lack the newer columns)."""
    names = names or []
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{shown(path)} is not a sweep CSV: column {twice[0]!r} appears twice; allowed: each once")
    missing = [k for k in (*KEY_FIELDS, "tca", "asr") if k not in names and k != "trigger_sha256"]  # newer than some
    if missing:
        raise ValueError(f"{shown(path)} is not a sweep CSV: no {missing[0]!r} column (its header: "
                         f"{shown(','.join(names), 80)}); give a new --csv, or fix its header")  # fmt: skip


def _row(path: Path, line: int, row: dict) -> dict:
    if None in row or any(v is None for v in row.values()):
        raise ValueError(f"{shown(path)}, line {line}: {len(row.get(None) or [])} field(s) too many or too few; "
                         "allowed: one per column (a truncated or hand-edited row?)")  # fmt: skip
    try:
        parsed = {k: _parse(k, v) for k, v in row.items()}
    except ValueError as err:
        raise ValueError(f"{shown(path)}, line {line}: {err}") from None
    for key in ("tca", "asr"):
        value = parsed[key]
        if value is None or not math.isfinite(value) or not 0 <= value <= 1:
            raise ValueError(f"{shown(path)}, line {line}: {key} {row[key]!r}; allowed: a number in [0, 1]")
    return parsed


def read_results(path: str | os.PathLike) -> list[dict]:
    """Rows of a sweep CSV ([] when the file does not exist); a column an older CSV lacks (``trained_on``,
    ``model``) is None, and its ``trigger_sha256`` is a built-in trigger's (see ``_known_trigger``) or None
    (unknown). A column of the user's own is kept, as text, after the package's. Only a regular file is read (a
    folder, FIFO or device is refused in one line, before any training); a malformed header or row is one line
    naming the file and the line."""
    path = Path(path)
    if not os.path.lexists(path):
        return []
    text = read_input(path, "--csv", MAX_CSV_BYTES).decode("utf-8-sig", errors="replace")  # a spreadsheet's BOM
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _header(path, reader.fieldnames)
        rows = [_row(path, reader.line_num, row) for row in reader]
    except csv.Error as err:
        raise ValueError(f"{shown(path)}, line {reader.line_num}: not CSV ({err})") from None
    rows = [{**row, "trigger_sha256": _known_trigger(row)} for row in rows]
    keys = [_row_key(r) for r in rows]
    if len(set(keys)) < len(keys):
        line = next(i + 2 for i, k in enumerate(keys) if k in keys[:i])  # the repeat (line 1 is the header)
        raise ValueError(f"{shown(path)}, line {line}: the same run twice; allowed: one row per run")
    return [{**dict.fromkeys(FIELDS), **row} for row in rows]


def write_results(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write sweep rows as CSV, atomically: the package's columns, then any other column a row has (one a user
    added to the CSV: kept, empty in the rows that lack it), in the order first seen."""
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in FIELDS and isinstance(k, str)))
    names = [*FIELDS, *extra]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _text(k, row.get(k)) for k in names})
    return atomic_write_text(path, buf.getvalue())


def result_row(result: Result) -> dict:
    """A finished run as a CSV row, with the values the CSV stores (so a summary is the same before and after a
    reread). ``train_size``: clean training images drawn; ``trained_on``: what the model trained on (in ``add``
    mode, the clean images plus the poisoned copies)."""
    row = {**result.attack.describe(), **result.budget.describe()}
    row.update(poisoned=len(result.setup.train.poison_indices), train_size=result.setup.train_size,
               trained_on=len(result.setup.train), test_size=len(result.setup.test), tca=result.tca, asr=result.asr,
               seconds=result.seconds, model=None, trigger_sha256=_stamped_sha256(result))  # fmt: skip
    return _stored(row)


def _stamped_sha256(result: Result) -> str:
    """The ``trigger_sha256`` of the trigger the run stamped (its setup's; built again for a hand-made Result)."""
    trigger = getattr(result.setup, "trigger", None)
    return trigger_sha256(result.attack) if trigger is None else stamp_sha256(trigger, result.attack.mask)


def models_dir(csv_path: str | os.PathLike) -> Path:
    """The folder of a sweep's kept models: beside its CSV, named after it (rates.csv: rates_models/)."""
    path = Path(csv_path)
    return path.with_name(path.stem + MODELS_SUFFIX)


def _safe(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(text)).strip("-") or "x"


def model_name(row: dict) -> str:
    """A kept model's file name: the run's main settings, readable, then 8 hex digits of all its settings (so two
    runs never share a name), e.g. ``MNIST_white5_to7_rate0.05_add_seed0_e2_n20000_1a2b3c4d.pth``."""
    if row["attack"] == "all-to-all":
        pair = "all2all"
    else:
        pair = f"{'' if row['source'] is None else row['source']}to{row['trigger_label']}"
    amount = f"rate{row['poisoning_rate']:g}" if row["poison_count"] is None else f"count{row['poison_count']}"
    parts = [row["dataset"], f"{row['trigger']}{row['trigger_size']}", pair, amount, row["poison_mode"],
             f"seed{row['seed']}", f"e{row['epochs']}"]  # fmt: skip
    if row["train_limit"] is not None:
        parts.append(f"n{row['train_limit']}")
    digest = hashlib.sha256("|".join(_row_key(row)).encode()).hexdigest()[:8]
    return "_".join(_safe(p) for p in parts) + f"_{digest}.pth"


def keep_model(result: Result, folder: str, prefix: str) -> dict:
    """``result_row`` of a run whose model is saved, where it trained, as ``folder/model_name(row)``; the row's
    ``model`` is ``prefix/<name>`` (the path from the CSV's folder)."""
    row = result_row(result)
    name = model_name(row)
    info = {**{k: v for k, v in row.items() if k not in ("dataset", "model")}, **result.setup.settings}
    info.update(checkpoint=name, history=[{k: float(v) for k, v in r.items()} for r in result.history])
    info.pop("dataset")
    save_checkpoint(result.model, Path(folder) / name, result.attack.dataset, **info)
    return {**row, "model": f"{prefix}/{name}"}


def has_model(row: dict, csv_path: str | os.PathLike) -> bool:
    """Whether the row names a kept model that is there (its path is relative to the CSV's folder)."""
    return bool(row.get("model")) and (Path(csv_path).parent / row["model"]).is_file()


def _line(row: dict, cached: bool) -> str:
    where = "(from the CSV)" if cached else f"({row['seconds']:.1f} s)"
    count = row.get("poison_count")
    what = f"rate {_text('poisoning_rate', row['poisoning_rate']):<7}" if count is None else f"count {count:<6}"
    attack = ", ".join(_words(row, {"trigger", "trigger_label"}, shared=False))
    return (f"{attack}  {what} seed {row['seed']}: {row['poisoned']:>5} poisoned  "
            f"TCA {row['tca']:.4f}  ASR {row['asr']:.4f}  {where}")  # fmt: skip


def check_outputs(csv_path: str | os.PathLike, keep_models: bool = False, plot: bool = False) -> None:
    """Before anything trains: the CSV (and the plot and the models folder, when asked for) can be written."""
    csv_path = Path(csv_path)
    targets = [csv_path, *([csv_path.with_suffix(".png")] if plot else [])]
    targets += [models_dir(csv_path) / "model.pth"] if keep_models else []
    for target in targets:
        check_writable(target.parent, target)


def check_inputs(
    attacks: Sequence[Attack], data_root: str | os.PathLike | None = None, *, download: bool = False, local: bool = True
) -> list[str]:
    """Before any run starts: each distinct trigger is built once (a bad file, mask or place is one line here, not a
    failure in every run) and, when the runs train on this machine (``local``: not a Dask cluster, whose workers have
    their own data), each dataset's files are there (downloaded once, here, with ``download``). Returns each
    attack's ``trigger_sha256``."""
    digests, seen = [], {}
    for a in attacks:
        spec = (a.dataset, a.trigger_size, a.position, _identity(a.trigger), _identity(a.mask))
        if spec not in seen:
            seen[spec] = trigger_sha256(a)
        digests.append(seen[spec])
    if local:
        for name in dict.fromkeys(a.dataset for a in attacks):
            check_dataset(name, data_root, download)
    return digests


def _identity(value: object) -> tuple:
    """A trigger or mask as a cache key: a tensor by its identity, a name or path by its type and text."""
    return (type(value).__name__, id(value) if isinstance(value, torch.Tensor) else str(value))


def _keeper(done: dict, csv_path: str | os.PathLike | None, verbose: bool):
    """What ``run_sweep`` does with each row as its run finishes: into ``done`` and the CSV, and said."""

    def keep(row: dict) -> None:
        done[_row_key(row)] = row
        if csv_path:
            write_results(list(done.values()), csv_path)
        if verbose:
            print(_line(row, cached=False), flush=True)
        if row.get("model") and not has_model(row, csv_path):
            print(f"warning: {row['model']} is not beside {shown(csv_path)}: its worker saved it on its own "
                  "machine (a Dask worker elsewhere?); the next run with keep_models trains it again",
                  file=sys.stderr)  # fmt: skip

    return keep


def run_sweep(
    attacks: Sequence[Attack],
    budget: Budget = Budget(),
    csv_path: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    verbose: bool = True,
    keep_models: bool = False,
    **pool,
) -> list[dict]:
    """One row per attack, in order; runs already in ``csv_path`` are reused, each new one is added to it (an
    atomic rewrite, by this process only) as soon as it finishes, so an interrupted sweep resumes where it stopped.
    A run is the same run when its settings, its numbers exactly and its trigger as stamped (``trigger_sha256``) are.
    ``pool`` (``workers=`` / ``executor=`` / ``progress=``): where the runs train, as in ``run_many`` (the rows do not
    depend on it). The triggers, and the datasets of a local pool, are checked before any run starts
    (``check_inputs``).

    ``keep_models``: each run's model is saved as a checkpoint in ``models_dir(csv_path)`` by the process that trained
    it, and its row's ``model`` column gives its path from the CSV's folder. A run of the CSV without its model (not
    kept, or the file is gone) is trained again, so that every row returned has one.
    """
    attacks = list(attacks)
    if keep_models and csv_path is None:
        raise ValueError("keep_models=True needs a csv_path, not None: the models are kept in a folder beside the CSV")
    if csv_path is not None:
        check_outputs(csv_path, keep_models)
    digests = check_inputs(attacks, data_root, download=download, local=pool.get("executor") is None)
    if csv_path is not None:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    # one sweep per CSV at a time: two would each rewrite it without the other's rows
    with held(csv_path, "--csv") if csv_path is not None else contextlib.nullcontext():
        done = {_row_key(r): r for r in read_results(csv_path)} if csv_path else {}
        keys = [run_key(a, budget, d) for a, d in zip(attacks, digests, strict=True)]
        reuse = {k for k in keys if k in done and (not keep_models or has_model(done[k], csv_path))}
        todo = {k: a for a, k in zip(attacks, keys, strict=True) if k not in reuse}  # each run once
        finish = result_row
        if keep_models:
            folder = models_dir(csv_path)
            finish = functools.partial(keep_model, folder=str(folder.absolute()), prefix=folder.name)
        if verbose:
            for k in keys:
                if k in reuse:
                    print(_line(done[k], cached=True))
            again = len({k for k in keys if k in done and k not in reuse})
            if again:
                print(f"{again} run(s) of the CSV without a kept model: trained again to keep the model")
        runs = Runs(list(todo.values()), budget, data_root=data_root, download=download, finish=finish)
        fresh = dict(zip(todo, run_all(runs, on_result=_keeper(done, csv_path, verbose), **pool), strict=True))
        return [fresh[k] if k in fresh else done[k] for k in keys]


def rate_sweep(
    rates: Sequence[float],
    seeds: Sequence[int] = (0,),
    attack: Attack = Attack(),
    budget: Budget = Budget(),
    csv_path: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    **options,
) -> list[dict]:
    """``attack`` at every poisoning rate and seed (seed-major, so each seed's data subset is loaded once);
    ``options``: ``run_sweep``'s (download, verbose, keep_models, workers, executor)."""
    attacks = [attack.replace(rate=float(r), count=None, seed=int(s)) for s in seeds for r in rates]
    return run_sweep(attacks, budget, csv_path, data_root, **options)


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


# ----------------------------------------------------------------------------- plot


def _group_key(row: dict) -> tuple[str, ...]:
    return tuple(_text(k, row.get(k)) for k in GROUP_FIELDS)  # a row made by hand may lack trigger_sha256


def by_setting(rows: Sequence[dict]) -> dict[tuple[str, ...], list[dict]]:
    """The rows grouped by every setting but the rate, count and seed (one curve of a rate sweep each), in order."""
    groups: dict[tuple[str, ...], list[dict]] = {}
    for r in rows:
        groups.setdefault(_group_key(r), []).append(r)
    return groups


# ----------------------------------------------------------------------------- command line


def _varying(groups: dict[tuple[str, ...], list[dict]]) -> set[str]:
    """The settings that differ between the groups; the triggers' digests only where their names do not tell them
    apart (two files of one name)."""
    varying = {k for i, k in enumerate(GROUP_FIELDS) if len({key[i] for key in groups}) > 1}
    named = [GROUP_FIELDS.index(k) for k in ("dataset", "trigger", "trigger_size")]
    digests: dict[tuple[str, ...], set[str]] = {}
    for key in groups:
        digests.setdefault(tuple(key[i] for i in named), set()).add(key[GROUP_FIELDS.index("trigger_sha256")])
    if all(len(d) == 1 for d in digests.values()):
        varying.discard("trigger_sha256")
    return varying


def _words(row: dict, varying: set[str], shared: bool) -> list[str]:
    """A setting in words: the ones no group differs in (``shared``: a figure's title), or the ones that vary (a
    panel's title, any other setting by name); dataset, trigger, target, mode and budget first."""
    out, named = [], set()

    def say(keys: tuple[str, ...], text: str) -> None:
        named.update(keys)
        if bool(varying & set(keys)) != shared:
            out.append(text)

    say(("dataset",), row["dataset"])
    trigger = f"{row['trigger']} {row['trigger_size']}×{row['trigger_size']}"
    if "trigger_sha256" in varying:  # two triggers of one name: told apart by their pixels' digest
        trigger += f" (sha256 {row['trigger_sha256'][:12]})" if row.get("trigger_sha256") else " (sha256 unknown)"
    say(("trigger", "trigger_size", "trigger_sha256"), trigger)
    pair = (
        f"{row['source']} → {row['trigger_label']}" if row["source"] is not None else f"target {row['trigger_label']}"
    )
    say(("attack", "trigger_label", "source"), "all-to-all" if row["attack"] == "all-to-all" else pair)
    say(("poison_mode",), f"{row['poison_mode']} mode")
    say(("epochs",), f"{row['epochs']} epoch{'s' if row['epochs'] != 1 else ''}")
    say(("train_limit",), f"{row['train_size']:,} clean training images")
    if not shared:
        out += [f"{k} {_text(k, row[k]) or 'none'}" for k in GROUP_FIELDS if k in varying and k not in named]
    return out
