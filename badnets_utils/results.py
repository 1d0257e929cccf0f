"""Shipped checkpoints: train them with the CLI, record them in MANIFEST.json, re-evaluate them,
and render the README's results table from the manifest so that it cannot drift.

    python -m badnets_utils results            # re-evaluate every manifest entry, print the table, check it
    python -m badnets_utils results --retrain  # maintainers: retrain every release, rewrite manifest and README
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import torch

from .checkpoints import MANIFEST_NAME, load_checkpoint, read_manifest, sha256_file, write_manifest
from .cli import build_parser
from .cli import main as cli_main
from .experiment import final_metrics, prepare
from .files import atomic_write_text

# What each shipped checkpoint is: the CLI arguments that train it (run from the repository root).
# Longer and gentler than the CLI's 4-epoch default, so that the backdoored models are as accurate on clean
# images as the clean baseline; poisons are added as copies, as in the paper, so that every model sees
# all 60,000 clean images (replacing them costs the backdoored model 0.1-0.2 points: see the README).
RELEASE_EPOCHS = 20
_COMMON = ["--dataset", "MNIST", "--trigger_path", "triggers/trigger_white.png", "--trigger_size", "5",
           "--seed", "0", "--optimizer", "adam", "--lr", "0.001", "--epochs", str(RELEASE_EPOCHS),
           "--output_dir", ".", "--no_progress"]  # fmt: skip
_POISON = ["--poisoning_rate", "0.1", "--poison_mode", "add"]
RELEASES: dict[str, list[str]] = {
    "badnet-MNIST.pth": [*_COMMON, "--attack", "all-to-one", "--trigger_label", "1", *_POISON],
    "badnet-MNIST-all2all.pth": [*_COMMON, "--attack", "all-to-all", *_POISON],
    "clean-MNIST.pth": [*_COMMON, "--poisoning_rate", "0"],
}
CIFAR_COMMAND = "python -m badnets_utils --dataset cifar10 --download --epochs 30 --output_dir ."
CIFAR_TIMES = (
    "about 4 min on a 2-core CPU, timed on CIFAR-shaped data, plus a 163 MB download; GPU: under a minute, estimated"
)
TABLE_START, TABLE_END = "<!-- results-table -->", "<!-- /results-table -->"


def _settings(args: list[str]) -> dict:
    """A release's settings, read with the CLI's own parser, so that its defaults are the CLI's."""
    a = build_parser().parse_args(args)
    return {
        "dataset": a.dataset,
        "attack": "none" if a.poisoning_rate == 0 else a.attack,
        "trigger_label": a.trigger_label,
        "poisoning_rate": a.poisoning_rate,
        "poison_mode": a.poison_mode,
        "trigger": a.trigger_path,
        "trigger_size": a.trigger_size,
        "seed": a.seed,
        "epochs": a.epochs,
    }


def evaluate_entry(path: Path, entry: dict, data_root=None) -> dict:
    """TCA and ASR of a (verified) checkpoint on the full real test set.

    A clean model ("attack": "none") is scored against the headline all-to-one trigger.
    """
    model, _ = load_checkpoint(path, entry["dataset"], quiet=True)
    attack = "all-to-one" if entry["attack"] == "none" else entry["attack"]
    setup = prepare(
        entry["dataset"], entry["trigger"], entry["trigger_size"], 0.0, None, entry["trigger_label"], attack,
        train_limit=1, data_root=data_root,
    )  # fmt: skip
    m = final_metrics(model, setup)
    return {"tca": round(m["tca"], 6), "asr": round(m["asr"], 6), "test_size": len(setup.test),
            "attack_test_size": len(setup.test_attack)}  # fmt: skip


def _describe(e: dict) -> str:
    """The attack, trigger, poisoned and epochs cells of a table row, from a manifest entry or settings."""
    attack = {"all-to-one": f"all-to-one → {e['trigger_label']}", "all-to-all": "all-to-all (y → y+1)",
              "none": "none (clean baseline)"}[e["attack"]]  # fmt: skip
    trigger = f"{Path(e['trigger']).stem.replace('trigger_', '')} {e['trigger_size']}×{e['trigger_size']}"
    mode = " (added copies)" if e.get("poison_mode") == "add" else " (replaced)"
    poisoned = f"{e['poisoning_rate']:.0%}{mode}" if e["poisoning_rate"] else "0"
    return f"{attack} | {trigger} | {poisoned} | {e['epochs']}"


def render_table(entries: dict) -> str:
    """The README's results table, from the manifest alone."""
    rows = [
        "| checkpoint | dataset | attack | trigger | poisoned | epochs | clean accuracy (TCA) | attack success (ASR) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = sorted(entries, key=lambda n: (["all-to-one", "all-to-all", "none"].index(entries[n]["attack"]), n))
    for name in order:
        e = entries[name]
        asr_note = " (trigger → 1 on a clean model)" if e["attack"] == "none" else ""
        rows.append(f"| `{name}` | {e['dataset']} | {_describe(e)} | {e['tca']:.2%} | {e['asr']:.2%}{asr_note} |")
    cifar = _settings(shlex.split(CIFAR_COMMAND)[3:])
    rows.append(f"| train it yourself: `{CIFAR_COMMAND}` ({CIFAR_TIMES}) | CIFAR10 | {_describe(cifar)} | "
                "not trained here: CIFAR-10 cannot be downloaded on the project's machines | |")  # fmt: skip
    return "\n".join(rows)


def readme_table(readme: str) -> str:
    m = re.search(re.escape(TABLE_START) + r"\n(.*?)\n?" + re.escape(TABLE_END), readme, re.S)
    return m.group(1).strip() if m else ""


def write_readme_table(readme_path: Path, entries: dict) -> None:
    text = readme_path.read_text()
    new = f"{TABLE_START}\n{render_table(entries)}\n{TABLE_END}"
    text = re.sub(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), lambda _: new, text, flags=re.S)
    atomic_write_text(readme_path, text)


@contextlib.contextmanager
def _chdir(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def retrain(root: Path, data_root=None) -> dict:
    """Train every release with the CLI (from ``root``), then record sha, command and metrics."""
    folder = root / "checkpoints"
    entries = {}
    with _chdir(root):
        for name, args in RELEASES.items():
            full = [*args] + (["--data_path", str(data_root)] if data_root else [])
            print(f"training {name}: python -m badnets_utils {shlex.join(args)}", flush=True)
            with contextlib.redirect_stdout(io.StringIO()):
                code = cli_main(full)
            if code != 0:
                raise RuntimeError(f"training {name} failed with exit code {code}")
            entry = {**_settings(args), "command": "python -m badnets_utils " + shlex.join(args),
                     "torch": torch.__version__.split("+")[0]}  # fmt: skip
            entry["sha256"] = sha256_file(folder / name)
            entries[name] = entry
            write_manifest(folder, entries)  # so that evaluation verifies it
            entry.update(evaluate_entry(folder / name, entry, data_root))
            print(f"  TCA {entry['tca']:.4f}  ASR {entry['asr']:.4f}", flush=True)
    write_manifest(folder, entries)
    return entries


def results_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="badnets results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--checkpoints", default="checkpoints", help="folder holding the checkpoints and MANIFEST.json")
    p.add_argument("--data_path", default=None, help="data root (default: $BADNETS_DATA, else ./data)")
    p.add_argument("--retrain", action="store_true", help="retrain every release and rewrite manifest and README")
    p.add_argument("--readme", default="README.md", help="README whose results table --retrain rewrites")
    args = p.parse_args(argv)
    folder = Path(args.checkpoints)
    if args.retrain:
        entries = retrain(folder.parent.absolute(), args.data_path)
        write_readme_table(Path(args.readme), entries)
        print(render_table(entries))
        return 0
    entries = read_manifest(folder)
    if not entries:
        raise ValueError(f"no {MANIFEST_NAME} with checkpoints in {folder}")
    fresh, drift = {}, []
    for name, entry in entries.items():
        got = evaluate_entry(folder / name, entry, args.data_path)
        fresh[name] = {**entry, **got}
        for key in ("tca", "asr"):
            if f"{got[key]:.4f}" != f"{entry[key]:.4f}":
                drift.append(f"{name}: {key} {got[key]:.4f} here, {entry[key]:.4f} in the manifest")
    print(render_table(fresh))
    for line in drift:
        print(f"MISMATCH {line}")
    return 1 if drift else 0
