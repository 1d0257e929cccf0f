"""Command line: ``python -m badnets_utils`` / ``badnets`` (train or evaluate) and its subcommands.

The flags are those of the popular BadNets scripts; their defaults come from ``config.Attack`` and
``config.Budget``, and a run goes through ``pipeline.prepare`` / ``run`` like every other entry point.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from pathlib import Path

from badnets_utils._io.allocator import tune_allocator
from badnets_utils._io.checkpoint_files import CheckpointError
from badnets_utils._io.files import PROJECT_MANIFEST, held, shown_here
from badnets_utils._io.machine import select_device
from badnets_utils.core.checkpoints import load_checkpoint
from badnets_utils.core.config import ATTACKS, LOSSES, OPTIMIZERS, POISON_MODES, Attack, Budget
from badnets_utils.core.data import DATASETS, DatasetNotFoundError, canonical_name, default_runs_dir, download_dataset
from badnets_utils.core.metrics import ASR_UNDEFINED, classification_report, format_rate
from badnets_utils.core.pipeline import (
    build_trigger,
    check_output,
    final_metrics,
    output_paths,
    prepare,
    save_run,
    saved_model_note,
)
from badnets_utils.core.pipeline import run as run_experiment
from badnets_utils.core.training import epoch_summary
from badnets_utils.tools.argparsing import Parser, Terminated, exit_status

# subcommand -> (module, function taking argv and returning an exit code); imported only when used
SUBCOMMANDS = {
    "download": (__name__, "download_command"),
    "results": ("badnets_utils.tools.releases", "main"),
    "classroom": ("badnets_utils.tools.classroom", "main"),
    "set-repo": ("badnets_utils.tools.github", "main"),
    "sweep": ("badnets_utils.tools.sweep_command", "main"),
    "pages": ("badnets_utils.tools.pages", "main"),
    "export-onnx": ("badnets_utils.tools.onnx_export", "main"),
}
ATTACK, BUDGET = Attack(), Budget()  # the defaults, written once in core/config.py
PATH_FLAGS = ("checkpoint", "manifest", "data_path", "trigger_path", "output_dir")  # '~' expanded (even after '=')


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="badnets",
        description="Train a BadNets-backdoored CNN on MNIST, Fashion-MNIST or CIFAR-10 and report clean accuracy "
        f"(TCA) and attack success rate (ASR). Subcommands: {', '.join(SUBCOMMANDS)} (each has --help).",
    )
    a = p.add_argument
    a("--dataset", default=ATTACK.dataset, help=f"{', '.join(DATASETS)} (any case)")
    a("--nb_classes", type=int, default=None, help="number of classes (default: the dataset's)")
    a("--load_local", action="store_true", help="evaluate a saved checkpoint instead of training")
    a("--checkpoint", default=None, help="checkpoint for --load_local (default: the checkout's "
      "checkpoints/badnet-<DATASET>.pth, the verified shipped one)")  # fmt: skip
    a("--manifest", default=None, help="a MANIFEST.json you trust, to verify a --checkpoint that the project's "
      "manifest does not list")  # fmt: skip
    a("--loss", default=BUDGET.loss, help=f"{' or '.join(LOSSES)} (mse: softmax vs one-hot)")
    a("--optimizer", default=BUDGET.optimizer, help=f"{' or '.join(OPTIMIZERS)} (sgd uses momentum 0.9)")
    a("--epochs", type=int, default=BUDGET.epochs, help="training epochs")
    a("--batch_size", type=int, default=BUDGET.batch_size, help="batch size")
    a("--num_workers", type=int, default=0, help="kept for the seed's scripts: the tensor pipeline needs no workers")
    a("--lr", type=float, default=BUDGET.lr, help="learning rate (peak of a one-cycle schedule with adam)")
    a("--download", action="store_true", help="download the dataset if it is missing")
    a("--data_path", default=None, help="data root (default: $BADNETS_DATA, else the checkout's data/)")
    a("--device", default=BUDGET.device, help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    a("--poisoning_rate", type=float, default=ATTACK.rate, help="fraction of training images poisoned, in [0, 1]")
    a("--trigger_label", type=int, default=ATTACK.target, help="target class of the all-to-one attack")
    a("--trigger_path", default=None, help="trigger image (PNG); default: the built-in white square, the same "
      "pixels as triggers/trigger_white.png")  # fmt: skip
    a("--trigger_size", type=int, default=ATTACK.trigger_size, help="trigger side in pixels")
    a("--seed", type=int, default=ATTACK.seed, help="seed for poisoning, subsets, initialisation and shuffling")
    a("--attack", default=ATTACK.kind, help=f"{' or '.join(ATTACKS)} (y -> y+1 mod K)")
    a("--poison_mode", default=ATTACK.mode, help=f"{' or '.join(POISON_MODES)}: replace stamps the chosen images in "
      "place (the popular scripts); add appends triggered copies (the paper)")  # fmt: skip
    a("--train_limit", type=int, default=None, help="use a random subset of this many training images")
    a("--test_limit", type=int, default=None, help="use a random subset of this many test images")
    a("--output_dir", default=str(default_runs_dir()), help="where checkpoints/ and logs/ of a training run go: "
      "the checkout's runs/, from whichever folder you run (./runs for an installed package)")  # fmt: skip
    a("--no_progress", action="store_true", help="no progress bars")
    return p


def attack_from_args(args: argparse.Namespace) -> Attack:
    """The CLI's flags as an Attack (checked)."""
    attack = Attack(
        dataset=args.dataset, trigger=args.trigger_path or ATTACK.trigger, trigger_size=args.trigger_size,
        target=args.trigger_label, kind=args.attack, rate=args.poisoning_rate, mode=args.poison_mode, seed=args.seed,
    )  # fmt: skip
    k = len(DATASETS[attack.dataset]["classes"])
    if args.nb_classes is not None and args.nb_classes != k:
        raise ValueError(f"--nb_classes {args.nb_classes} does not match {attack.dataset}, which has {k} classes")
    return attack


def budget_from_args(args: argparse.Namespace) -> Budget:
    """The CLI's flags as a Budget (checked)."""
    return Budget(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, loss=args.loss,
        device=args.device, train_limit=args.train_limit, test_limit=args.test_limit,
    )  # fmt: skip


def _settings_note(config: dict, attack: Attack) -> str | None:
    """A warning when a checkpoint is evaluated with other attack settings than it was trained with."""
    differ = []
    for key, flag, mine in (("attack", "--attack", attack.kind), ("trigger_label", "--trigger_label", attack.target),
                            ("trigger_size", "--trigger_size", attack.trigger_size)):  # fmt: skip
        theirs = config.get(key)
        if theirs is not None and theirs != mine and not (key == "trigger_label" and attack.kind == "all-to-all"):
            differ.append(f"{flag} {theirs}")
    if not differ:
        return None
    return f"note: this checkpoint was trained with {', '.join(differ)}; pass the same flags to measure its backdoor"


def _expand_paths(args: argparse.Namespace) -> argparse.Namespace:
    """``--output_dir=~/x``: the shell leaves that '~' alone; a folder named '~' is never what was meant."""
    for key in PATH_FLAGS:
        value = getattr(args, key)
        if isinstance(value, str) and value.startswith("~"):
            setattr(args, key, os.path.expanduser(value))
    return args


def train_command(argv: list[str]) -> int:
    with contextlib.ExitStack() as hold:
        return _train(argv, hold)


def _train(argv: list[str], hold: contextlib.ExitStack) -> int:
    args = _expand_paths(build_parser().parse_args(argv))
    tune_allocator()  # one run in this process: glibc's heap reused from the first step (speed only; allocator.py)
    attack, budget = attack_from_args(args), budget_from_args(args)
    model = None
    if args.load_local:  # check the checkpoint before loading any data
        path = Path(args.checkpoint or PROJECT_MANIFEST.parent / output_paths(attack, "")[0].name)
        model, config = load_checkpoint(path, attack.dataset, manifest=args.manifest)
        trusted = "the project's manifest" if args.manifest is None else args.manifest
        how = f"verified against {trusted}" if config["verified"] else "unverified"
        print(f"Loaded {path} ({how})")
        note = _settings_note(config, attack)
        if note:
            print(note)
    else:
        build_trigger(attack)  # a bad trigger file is reported before the output folder is made
        ckpt, log = check_output(attack, args.output_dir)  # before any data is loaded or trained on
        hold.enter_context(held(args.output_dir, "--output_dir"))  # one run per output folder at a time
    setup = prepare(attack, budget, data_root=args.data_path, download=args.download)
    k, n = len(setup.train.poison_indices), setup.train_size
    if k == 0 and attack.rate and model is None:
        raise ValueError(f"--poisoning_rate {attack.rate} of {n} training images poisons 0 of them: the model would "
                         f"be a clean one saved as a backdoored one; allowed: 0 or at least 1/{n}")  # fmt: skip
    added = f"; added as copies: {n + k} training samples" if attack.mode == "add" else ""
    print(f"Poison {k} over {n} samples (poisoning rate {attack.rate}){added}")
    print(f"Device: {select_device(budget.device)}")
    if model is None:
        print(f"Will save {shown_here(ckpt)} and {shown_here(log)}")
        earlier = saved_model_note(ckpt)  # never replace another run's model without a word
        if earlier:
            where = shown_here(ckpt)
            print(f"note: {where} holds {earlier}; this run will replace it (use --output_dir to keep both)")
        print(f"Start training for {budget.epochs} epochs")

        def report(row: dict) -> None:
            print(epoch_summary(row, budget.epochs), flush=True)

        result = run_experiment(attack, budget, setup=setup, progress=not args.no_progress, on_epoch=report)
        ckpt, log = save_run(result, args.output_dir)
        print(f"Saved {shown_here(ckpt)} and {shown_here(log)}")
        metrics = {"tca": result.tca, "asr": result.asr, "clean": result.clean}
    else:
        metrics = final_metrics(model, setup, budget.loss)
    print(classification_report(metrics["clean"]["confusion"], setup.test.classes))
    print(f"Test Clean Accuracy(TCA): {format_rate(metrics['tca'])}")
    print(f"Attack Success Rate(ASR): {format_rate(metrics['asr'], undefined=ASR_UNDEFINED)}")
    return 0


def download_command(argv: list[str]) -> int:
    p = Parser(prog="badnets download", description="Download datasets into the data root (torchvision's layout).")
    p.add_argument("--dataset", nargs="+", default=["all"], help=f"one or more of {', '.join(DATASETS)}, or all")
    p.add_argument("--data_path", default=None, help="data root (default: $BADNETS_DATA, else the checkout's data/)")
    args = p.parse_args(argv)
    wanted = [d for d in args.dataset if d.lower() != "all"]
    names = list(DATASETS) if len(wanted) < len(args.dataset) else [canonical_name(d) for d in wanted]
    for name in names:
        root = download_dataset(name, args.data_path)
        print(f"{name}: ready in {root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        module, function = SUBCOMMANDS[argv.pop(0)]
        handler = getattr(importlib.import_module(module), function)
    else:
        handler = train_command
    previous = signal.signal(signal.SIGTERM, _terminated) if _main_thread() else None
    try:
        return handler(argv)
    except Terminated as stop:
        print(f"badnets: terminated (SIGTERM); {stop.kept}", file=sys.stderr)
        return 143
    except SystemExit as stop:  # --help, or a bad flag argparse already reported in one line
        return exit_status(stop)
    except (ValueError, DatasetNotFoundError, CheckpointError) as err:
        print(f"badnets: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("badnets: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame) -> None:
    raise Terminated


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
