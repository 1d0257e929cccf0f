"""Command line: ``python -m badnets_utils`` / ``badnets`` (train or evaluate), ``download``, ``results``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoints import CheckpointError, checkpoint_name, load_checkpoint, run_tag, save_checkpoint
from .data import DATASETS, DatasetNotFoundError, canonical_name, download_dataset
from .experiment import check_settings, final_metrics, prepare, run
from .metrics import classification_report
from .poison import ATTACKS, check_poison_mode, poison_count
from .train import LOSSES, OPTIMIZERS, check_loss, check_optimizer, save_history, select_device

COMMANDS = ("train", "download", "results")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="badnets",
        description="Train a BadNets-backdoored CNN on MNIST or CIFAR-10 and report clean accuracy "
        "(TCA) and attack success rate (ASR). Subcommands: `download` fetches datasets, `results` "
        "re-evaluates the shipped checkpoints.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--dataset", default="MNIST", help="MNIST or CIFAR10 (any case)")
    a("--nb_classes", type=int, default=None, help="number of classes (default: the dataset's)")
    a("--load_local", action="store_true", help="evaluate a saved checkpoint instead of training")
    a("--checkpoint", default=None, help="checkpoint for --load_local (default: checkpoints/badnet-<DATASET>.pth, "
      "the verified shipped one)")  # fmt: skip
    a("--loss", default="cross", help=f"{' or '.join(LOSSES)} (mse: softmax vs one-hot)")
    a("--optimizer", default="adam", help=f"{' or '.join(OPTIMIZERS)} (sgd uses momentum 0.9)")
    a("--epochs", type=int, default=4, help="training epochs")
    a("--batch_size", type=int, default=128, help="batch size")
    a(
        "--num_workers",
        type=int,
        default=0,
        help="kept for the seed's scripts: the tensor pipeline needs no loader workers",
    )
    a("--lr", type=float, default=2e-3, help="learning rate (peak of a one-cycle schedule with adam)")
    a("--download", action="store_true", help="download the dataset if it is missing")
    a("--data_path", default=None, help="data root (default: $BADNETS_DATA, else ./data)")
    a("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    a("--poisoning_rate", type=float, default=0.1, help="fraction of training images poisoned, in [0, 1]")
    a("--trigger_label", type=int, default=1, help="target class of the all-to-one attack")
    a("--trigger_path", default="./triggers/trigger_white.png", help="trigger image (PNG)")
    a("--trigger_size", type=int, default=5, help="trigger side in pixels")
    a("--seed", type=int, default=0, help="seed for poisoning, subsets, initialisation and shuffling")
    a("--attack", default="all-to-one", help=f"{' or '.join(ATTACKS)} (y -> y+1 mod K)")
    a(
        "--poison_mode",
        default="replace",
        help="replace: stamp the chosen images in place (the seed); add: append triggered copies (the paper)",
    )
    a("--train_limit", type=int, default=None, help="use a random subset of this many training images")
    a("--test_limit", type=int, default=None, help="use a random subset of this many test images")
    a("--output_dir", default="runs", help="where checkpoints/ and logs/ of a training run go")
    a("--no_progress", action="store_true", help="no progress bars")
    return p


def _validate(args: argparse.Namespace) -> None:
    """Every value checked before any data, checkpoint or file is touched."""
    args.dataset = check_settings(args.dataset, args.trigger_label, args.attack, args.nb_classes)
    check_loss(args.loss)
    check_optimizer(args.optimizer)
    poison_count(1, args.poisoning_rate)  # a rate outside [0, 1] is refused here
    check_poison_mode(args.poison_mode)
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise ValueError("--epochs and --batch_size must be at least 1 and --lr positive, got "
                         f"{args.epochs}, {args.batch_size} and {args.lr}")  # fmt: skip
    for name in ("train_limit", "test_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    args.device = select_device(args.device)


def train_command(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    _validate(args)
    model = None
    if args.load_local:  # check the checkpoint before loading any data
        path = Path(
            args.checkpoint or Path("checkpoints") / checkpoint_name(args.dataset, args.attack, args.poisoning_rate)
        )
        model, config = load_checkpoint(path, args.dataset)
        print(f"Loaded {path} ({'verified against the manifest' if config['verified'] else 'unverified'})")
    setup = prepare(
        args.dataset, args.trigger_path, args.trigger_size, args.poisoning_rate, None, args.trigger_label,
        args.attack, seed=args.seed, train_limit=args.train_limit, test_limit=args.test_limit,
        data_root=args.data_path, download=args.download, nb_classes=args.nb_classes, poison_mode=args.poison_mode,
    )  # fmt: skip
    k, n = len(setup.train.poison_indices), setup.settings["train_size"]
    added = f"; added as copies: {n + k} training samples" if args.poison_mode == "add" else ""
    print(f"Poison {k} over {n} samples (poisoning rate {args.poisoning_rate}){added}")
    print(f"Device: {args.device}")
    if model is None:
        print(f"Start training for {args.epochs} epochs")

        def report(row: dict) -> None:
            print(f"# EPOCH {row['epoch']}   loss: {row['train_loss']:.4f} Test Acc: {row['clean_acc']:.4f}, "
                  f"ASR: {row['asr']:.4f}  ({row['seconds']:.1f} s)", flush=True)  # fmt: skip

        model, history = run(
            setup, args.epochs, args.batch_size, args.lr, args.loss, args.optimizer, args.device,
            progress=not args.no_progress, on_epoch=report,
        )  # fmt: skip
        out = Path(args.output_dir)
        tag = run_tag(args.attack, args.trigger_label, args.poisoning_rate)
        log_path = out / "logs" / f"{args.dataset}_{tag}.csv"
        ckpt_path = out / "checkpoints" / checkpoint_name(args.dataset, args.attack, args.poisoning_rate)
        save_history(history, log_path)
        save_checkpoint(
            model, ckpt_path, args.dataset, attack=args.attack, trigger_label=args.trigger_label,
            poisoning_rate=args.poisoning_rate, trigger_size=args.trigger_size, seed=args.seed,
            poison_mode=args.poison_mode,
        )  # fmt: skip
        print(f"Saved {ckpt_path} and {log_path}")
    else:
        model.to(args.device)
    metrics = final_metrics(model, setup, args.loss)
    print(classification_report(metrics["clean"]["confusion"], setup.test.classes))
    print(f"Test Clean Accuracy(TCA): {metrics['tca']:.4f}")
    print(f"Attack Success Rate(ASR): {metrics['asr']:.4f}")
    return 0


def download_command(argv: list[str]) -> int:
    p = _Parser(prog="badnets download", description="Download datasets into the data root (torchvision's layout).")
    p.add_argument("--dataset", default="all", help="MNIST, CIFAR10 or all")
    p.add_argument("--data_path", default=None, help="data root (default: $BADNETS_DATA, else ./data)")
    args = p.parse_args(argv)
    names = list(DATASETS) if args.dataset.lower() == "all" else [canonical_name(args.dataset)]
    for name in names:
        root = download_dataset(name, args.data_path)
        print(f"{name}: ready in {root}")
    return 0


def results_command(argv: list[str]) -> int:
    from .results import results_main

    return results_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "train"
    handler = {"train": train_command, "download": download_command, "results": results_command}[command]
    try:
        return handler(argv)
    except (ValueError, DatasetNotFoundError, CheckpointError) as err:
        print(f"badnets: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("badnets: interrupted", file=sys.stderr)
        return 130
