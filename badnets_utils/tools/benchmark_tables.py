"""The benchmarks' results files, and the tables the docs show from them.

Each script in ``benchmarks/`` ends a run by recording what it measured in ``benchmarks/results/<script>.json``
(``record``)::

    {"script": "bench_sweep.py",
     "runs": [{"command": "python benchmarks/bench_sweep.py",
               "date": "2026-12-03",
               "machine": {"cores": 2, "cpu": "Intel(R) Xeon(R) ...", "gpu": "no GPU"},
               "torch": "2.14.1",
               "figures": {...what the script printed, by name...}}]}

A results file holds the present, and git the past: a run replaces the file, so it holds the script's latest run
and the docs show that one, with the machine and the date it ran on. Only a script that records with
``keep_other_commands`` (bench_sweep: the small sweep and the one on the full training set are two columns of one
table) keeps its runs of other commands beside the new one, as long as they were measured on the same machine; a run
on another machine replaces them all. Runs are sorted by command (``--data_path`` left out: where the data lies is not
part of the measurement); ``cpu`` and ``torch`` are null where unknown.
The functions below turn those files into the Markdown of the docs' generated blocks (``blocks``), so a measured
figure is typed once: by the script that measured it. A missing file is a one-line ``MissingResultsError``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shlex
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from badnets_utils._io.files import atomic_write_text

RESULTS = Path("benchmarks") / "results"


class MissingResultsError(FileNotFoundError):
    """A benchmark's results file is absent: the message names it and the script that writes it."""


# ----------------------------------------------------------------------------- writing


def cpu_model() -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``, else ``platform.processor()``); None if unreadable."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip() or None
    return platform.processor() or None


def gpu_name() -> str:
    """The first CUDA device's name, "Apple MPS", or "no GPU"."""
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        if torch.backends.mps.is_available():
            return "Apple MPS"
    return "no GPU"


def this_machine() -> dict:
    """This machine, as a results file records it: logical CPU cores, CPU model, GPU."""
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "gpu": gpu_name()}


def machine_text(m: Mapping) -> str:
    """The machine in words, e.g. "Intel(R) Xeon(R) Processor, 2 CPU cores, no GPU" (the CPU model if known)."""
    return ", ".join(part for part in (m.get("cpu"), f"{m['cores']} CPU cores", m["gpu"]) if part)


def command(script: str, argv: Sequence[str]) -> str:
    """The command line of a run, from the repository root, without ``--data_path`` and its value."""
    kept, args = [], iter(argv)
    for arg in args:
        if arg == "--data_path":
            next(args, None)  # and its value
        elif not arg.startswith("--data_path="):
            kept.append(arg)
    return shlex.join(["python", f"benchmarks/{script}.py", *kept])


def results_path(root: Path, script: str) -> Path:
    return Path(root) / RESULTS / f"{script}.json"


def record(root: Path, script: str, argv: Sequence[str], figures: Mapping, date: str | None = None, *,
           keep_other_commands: bool = False) -> Path:  # fmt: skip
    """Write one run of ``benchmarks/<script>.py`` (atomically) as its results file's present.

    The run replaces the file; with ``keep_other_commands``, the file's runs of other commands measured on this
    machine stay beside it (those of the same command, and any from another machine, go: they are in git).
    ``figures``: what the run measured, JSON-serialisable; ``date`` defaults to today. Returns the file written.
    """
    import torch

    path = results_path(root, script)
    run = {"command": command(script, argv), "date": date or datetime.date.today().isoformat(),
           "machine": this_machine(), "torch": torch.__version__, "figures": dict(figures)}  # fmt: skip
    kept = json.loads(path.read_text(encoding="utf-8"))["runs"] if keep_other_commands and path.is_file() else []
    kept = [r for r in kept if r["command"] != run["command"] and r["machine"] == run["machine"]]
    runs = sorted([*kept, run], key=lambda r: r["command"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps({"script": f"{script}.py", "runs": runs}, indent=1) + "\n")


# ----------------------------------------------------------------------------- reading


def runs(root: Path, script: str) -> list[dict]:
    """The recorded runs of ``benchmarks/<script>.py``; ``MissingResultsError`` when it has no results file."""
    path = results_path(root, script)
    if not path.is_file():
        raise MissingResultsError(
            f"{RESULTS.as_posix()}/{script}.json is missing: `python benchmarks/{script}.py` writes it"
        )
    return json.loads(path.read_text(encoding="utf-8"))["runs"]


def caption(chosen: Sequence[Mapping], detail: str = "") -> str:
    """The runs' caption, a sentence per machine and date:

    "Measured on <machine>, <date>, with `<command>` and `<command>` (<detail>; torch <version>)."
    """
    groups: dict[tuple, list[str]] = {}
    for run in chosen:
        key = (machine_text(run["machine"]), run["date"], run["torch"])
        groups.setdefault(key, []).append(f"`{run['command']}`")
    sentences = []
    for (where, date, torch), commands in groups.items():
        notes = "; ".join(note for note in (detail, torch and f"torch {torch}") if note)
        notes = f" ({notes})" if notes else ""
        sentences.append(f"Measured on {where}, {date}, with {' and '.join(commands)}{notes}.")
    return " ".join(sentences)


def newest(recorded: Sequence[Mapping]) -> Mapping:
    """The run measured last (the first of those measured on the newest date)."""
    return max(recorded, key=lambda r: r["date"])


def default_command_run(recorded: Sequence[Mapping], script: str) -> Mapping:
    """The run of ``script`` without arguments if one is recorded, else the first."""
    plain = command(script, [])
    return next((r for r in recorded if r["command"] == plain), recorded[0])


def seconds(s: float) -> str:
    return f"{s:.1f} s"


def times(x: float) -> str:
    return f"{x:.2f}×"


def target(x: float) -> str:
    """A target as the script states it: 1.3 -> "1.3×"."""
    return f"{x:g}×"


def share(x: float) -> str:
    return f"{100 * x:.0f} %"


def percent(x: float) -> str:
    """A fraction as a percentage with two decimals: 0.9928 -> "99.28 %"."""
    return f"{100 * x:.2f} %"


def table(rows: Sequence[tuple[str, str]], header: tuple[str, str] = ("what", "measured")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return "\n".join(lines + [f"| {what} | {value} |" for what, value in rows])


def count(n: int) -> str:
    return f"{n:,}"


# ----------------------------------------------------------------------------- docs/performance.md


def pipeline_table(run: Mapping) -> str:
    """bench_pipeline: the default CLI run, and both pipelines' throughput."""
    f = run["figures"]
    return table([
        (f"default CLI run (`python -m badnets_utils`): full MNIST, {f['epochs']} epochs, load → poison → train → "
         "evaluate", f"**{seconds(f['wall_s'])}** wall; TCA {percent(f['tca'])}, ASR {percent(f['asr'])}"),
        ("tensor pipeline (this project): training + per-epoch evaluation", f"{f['tensor_sps']:,.0f} samples/s"),
        (f"per-sample PIL + DataLoader pipeline of the reference script's design, same model, {f['seed_epochs']} "
         "epochs", f"{f['seed_sps']:,.0f} samples/s"),
        ("speed-up of the tensor pipeline", f"**{f['speedup']:.1f}×**"),
    ])  # fmt: skip


def sweep_table(chosen: Sequence[Mapping]) -> str:
    """bench_sweep: one table, a column per recorded run (a sweep's size): the three ways' wall times, the ratios
    against their targets, the pool's ceiling."""
    figs = [r["figures"] for r in chosen]
    head = [f"{f['models']} models, {count(f['train_size'])} images, {f['epochs']} epochs, {f['workers']} workers"
            for f in figs]  # fmt: skip
    rows = [
        ("one after another, on the thread rule's threads", [seconds(f["one_by_one_s"]) for f in figs]),
        ("the local pool of one-thread workers",
         [f"{seconds(f['pool_s'])}: **{times(f['pool_speedup'])}** faster (target ≥ {target(f['target_pool'])})"
          for f in figs]),
    ]  # fmt: skip
    if any(f.get("dask_s") is not None for f in figs):
        cells = []
        for f in figs:
            if f.get("dask_s") is None:
                cells.append("not run (`--skip_dask`)")
                continue
            same = "the same rows as the pool" if f["dask_rows_identical"] else "rows **different** from the pool's"
            cells.append(f"{seconds(f['dask_s'])}: **{times(f['dask_vs_pool'])}** the pool's time (target ≤ "
                         f"{target(f['target_dask'])}); {same}")  # fmt: skip
        rows.append(("a Dask `LocalCluster` of as many one-thread workers, start-up included", cells))
    rows.append(("the pool's ceiling: workers ÷ how much longer a run takes on one thread",
                 [f"**{times(f['ceiling'])}** (a run on one thread: {times(f['one_thread_slowdown'])} as long); the "
                  f"pool reached {share(f['share_of_ceiling'])} of it" for f in figs]))  # fmt: skip
    lines = ["| sweep | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    return "\n".join(lines + [f"| {what} | " + " | ".join(cells) + " |" for what, cells in rows])


def contention_table(run: Mapping) -> str:
    """bench_contention: a lone run under each thread rule, then several at once against the fair share."""
    f = run["figures"]
    alone, n = f["alone_s"], f["copies"]
    rows = [
        (f"one run alone ({count(f['train_size'])} images, {f['epochs']} epochs): automatic rule / torch's "
         "default / one thread", f"{' / '.join(seconds(alone[k]) for k in ('auto', 'default', 'one'))}; the "
         f"rule's loss against the default: {100 * f['lone_loss']:+.1f} % (target ≤ {share(f['target_loss'])})"),
        (f"fair share of {n} runs on {f['cores']} cores: {n} × (alone, one thread) / {f['cores']}",
         seconds(f["fair_s"])),
        (f"{n} × (alone, automatic rule) / {f['cores']}: shorter than the cores can deliver", seconds(f["naive_s"])),
        (f"{n} at once, automatic rule: the slowest (median of {f['repeats']} launches)",
         f"{seconds(f['auto_slowest_s'])} = **{times(f['auto_vs_fair'])}** the fair share (target ≤ "
         f"{target(f['target_fair'])})"),
    ]  # fmt: skip
    if f.get("default_slowest_s") is not None:
        default = f"{seconds(f['default_slowest_s'])} = **{times(f['default_vs_fair'])}** the fair share"
        rows.append((f"{n} at once, torch's default: the slowest", default))
    return table(rows)


def current(root: Path, script: str, render: Callable[[Mapping], str]) -> str:
    """The table of the script's newest run, and its caption (machine, date, command, torch)."""
    run = newest(runs(root, script))
    return f"{render(run)}\n\n{caption([run])}"


def performance_blocks(root: Path) -> dict[str, str]:
    """docs/performance.md's blocks, one table each: ``bench-pipeline``, ``bench-sweep``, ``bench-contention``."""
    blocks = {"bench-pipeline": current(root, "bench_pipeline", pipeline_table)}
    sweeps = runs(root, "bench_sweep")
    blocks["bench-sweep"] = f"{sweep_table(sweeps)}\n\n{caption(sweeps)}"
    blocks["bench-contention"] = current(root, "bench_contention", contention_table)
    return blocks


# ----------------------------------------------------------------------------- docs/sweeps.md, results, README


def sweeps_blocks(root: Path) -> dict[str, str]:
    """docs/sweeps.md's blocks: ``sweep-ceiling`` (the pool against its ceiling), ``sweep-dask`` (Dask's time)."""
    recorded = runs(root, "bench_sweep")
    rows = [(f"{f['models']} runs of {count(f['train_size'])} images, {f['epochs']} epochs, {f['workers']} workers",
             f"{times(f['one_thread_slowdown'])} as long", times(f["ceiling"]), times(f["pool_speedup"]),
             share(f["share_of_ceiling"])) for f in (r["figures"] for r in recorded)]  # fmt: skip
    head = ("sweep", "a run on one thread, against the loop's threads", "the pool's ceiling", "the pool, measured",
            "share of the ceiling")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|", *("| " + " | ".join(r) + " |" for r in rows)]
    with_dask = [r for r in recorded if r["figures"].get("dask_s") is not None]
    dask = " ".join(
        f"Dask's {f['models']} runs took {seconds(f['dask_s'])} (cluster start-up included) against the local "
        f"pool's {seconds(f['pool_s'])}: {times(f['dask_vs_pool'])} the pool's time, with "
        f"{'the same' if f['dask_rows_identical'] else '**different**'} rows."
        for f in (r["figures"] for r in with_dask)
    )
    if not with_dask:
        dask = "No run of `python benchmarks/bench_sweep.py` with Dask is on record (it runs Dask unless given "
        dask += "`--skip_dask`)."
    return {
        "sweep-ceiling": "\n".join(lines) + "\n\n" + caption(recorded),
        "sweep-dask": f"{dask} {caption(with_dask)}",
    }


def poison_cost_block(root: Path) -> str:
    """The ``poison-cost`` block (docs/results.md): TCA and ASR of each training set of poison_cost.py."""
    run = default_command_run(runs(root, "poison_cost"), "poison_cost")
    f = run["figures"]
    rate = f"{100 * f['rate']:g} %"
    names = {"clean": "clean", "add": f"clean + {rate} triggered copies (`--poison_mode add`)",
             "replace": f"{rate} replaced in place (the reference script's way)",
             "kept-clean": "only the {images} images that stay clean"}  # fmt: skip
    seeds = " / ".join(str(s) for s in f["seeds"])
    lines = [f"| training set | images | poisoned | clean accuracy, seeds {seeds} | ASR |", "|---|---|---|---|---|"]
    for row in f["rows"]:
        name = names[row["set"]].format(images=count(row["images"]))
        if len(row["seeds"]) == 1:
            name, tca = f"{name}, seed {row['seeds'][0]}", percent(row["tca"][0])
        else:
            each = " / ".join(f"{100 * t:.2f}" for t in row["tca"])
            tca = f"{each} % (mean {percent(statistics.mean(row['tca']))})"
        low, high = (f"{100 * a:.2f}" for a in row["asr"])
        asr = f"{low} %" if low == high else f"{low}–{high} %"
        lines.append(f"| {name} | {count(row['images'])} | {count(row['poisoned'])} | {tca} | {asr} |")
    optimizer = {"adam": "Adam", "sgd": "SGD"}.get(f["optimizer"], f["optimizer"])
    recipe = f"{f['epochs']} epochs, {optimizer}, peak lr {f['lr']:g}, full MNIST"
    return "\n".join(lines) + "\n\n" + caption([run], recipe)


def default_run_block(root: Path) -> str:
    """A phrase like "about 27 s on 2 CPU cores": bench_pipeline's default CLI run (README, landing page)."""
    run = default_command_run(runs(root, "bench_pipeline"), "bench_pipeline")
    gpu = run["machine"]["gpu"]
    where = f"{run['machine']['cores']} CPU cores" + ("" if gpu == "no GPU" else f" and {gpu}")
    return f"about {round(run['figures']['wall_s'])} s on {where}"
