"""Shipped checkpoints: what each release is, re-evaluating them, and the README's results table.

    python -m badnets_utils results            # re-evaluate every manifest entry, print the table, check it
    python -m badnets_utils results --retrain  # maintainers: retrain every release into runs/release/

Each release is an (Attack, Budget) pair trained by ``pipeline.run``, the same path as the CLI; the CLI
command that trains the same model is recorded beside it. Retraining writes to a folder of its own, never over
the shipped files: a maintainer reviews the new figures and copies the files in with git.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import torch

from badnets_utils._io.checkpoint_files import read_manifest, write_manifest
from badnets_utils._io.files import MANIFEST_NAME, REPO_ROOT, atomic_write_text, check_output_dir, sha256_file
from badnets_utils.core.checkpoints import load_checkpoint
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.pipeline import final_metrics, load_data, output_paths, prepare, save_run
from badnets_utils.studies.pool import run_many
from badnets_utils.tools.argparsing import Parser, RawDefaultsFormatter

REGISTRY = Path(__file__).with_name("releases.json")  # the shipped checkpoints' attacks and budgets: data, not code


def _registry() -> tuple[dict[str, tuple[Attack, Budget]], tuple[Attack, Budget], str]:
    """The releases of ``releases.json`` as (attack, budget) pairs, and CIFAR-10's (not shipped) with its time."""
    data = json.loads(REGISTRY.read_text(encoding="utf-8"))
    pair = lambda e: (Attack(**e["attack"]), Budget(**e["budget"]))  # noqa: E731
    return {name: pair(e) for name, e in data["releases"].items()}, pair(data["cifar10"]), data["cifar10"]["time"]


RELEASES, CIFAR, CIFAR_TIMES = _registry()
TABLE_START, TABLE_END = "<!-- results-table -->", "<!-- /results-table -->"


def cli_args(attack: Attack, budget: Budget) -> list[str]:
    """The CLI flags that train the same model as ``pipeline.run(attack, budget)``."""
    args = ["--dataset", attack.dataset]
    if attack.trigger != Attack().trigger:
        args += ["--trigger_path", str(attack.trigger)]
    a0, b0 = Attack(), Budget()
    flags = (("--trigger_size", attack.trigger_size, a0.trigger_size), ("--seed", attack.seed, a0.seed),
             ("--optimizer", budget.optimizer, b0.optimizer), ("--lr", budget.lr, b0.lr),
             ("--epochs", budget.epochs, None), ("--attack", attack.kind, None),
             ("--poisoning_rate", attack.rate, None), ("--poison_mode", attack.mode, a0.mode))  # fmt: skip
    for flag, value, default in flags:
        if value != default:
            args += [flag, str(value)]
    if attack.kind == "all-to-one" and attack.rate:
        args += ["--trigger_label", str(attack.target)]
    return args


def command(attack: Attack, budget: Budget, extra: str = "") -> str:
    return "python -m badnets_utils " + shlex.join(cli_args(attack, budget)) + extra


def release_entry(attack: Attack, budget: Budget) -> dict:
    """A release's settings as the manifest records them."""
    return {
        "dataset": attack.dataset, "attack": "none" if attack.rate == 0 else attack.kind,
        "trigger_label": attack.target, "poisoning_rate": attack.rate, "poison_mode": attack.mode,
        "trigger": str(attack.trigger), "trigger_size": attack.trigger_size, "seed": attack.seed,
        "epochs": budget.epochs, "lr": budget.lr, "command": command(attack, budget),
    }  # fmt: skip


ENTRY_KEYS = {"dataset": str, "attack": str, "trigger_label": int, "poisoning_rate": (int, float), "trigger": str,
              "trigger_size": int, "epochs": int, "tca": (int, float), "asr": (int, float)}  # fmt: skip


def check_entry(name: str, entry: dict) -> dict:
    """A release entry of the manifest has every field the table and the re-evaluation read: else one line."""
    for key, kind in ENTRY_KEYS.items():
        if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
            got = "missing" if key not in entry else f"{entry[key]!r:.40}"
            raise ValueError(f"{MANIFEST_NAME} entry {name!r}: {key} is {got}; a release entry needs "
                             f"{', '.join(ENTRY_KEYS)}")  # fmt: skip
    if entry["attack"] not in ("all-to-one", "all-to-all", "none"):
        raise ValueError(f"{MANIFEST_NAME} entry {name!r}: attack {entry['attack']!r}; allowed: all-to-one, "
                         "all-to-all, none")  # fmt: skip
    return entry


def entry_attack(entry: dict) -> Attack:
    """The attack a manifest entry's ASR is measured with (a clean model: the headline all-to-one trigger)."""
    kind = "all-to-one" if entry["attack"] == "none" else entry["attack"]
    return Attack(dataset=entry["dataset"], trigger=REPO_ROOT / entry["trigger"], trigger_size=entry["trigger_size"],
                  target=entry["trigger_label"], kind=kind, rate=0.0, seed=entry.get("seed", 0))  # fmt: skip


def evaluate_entry(path: Path, entry: dict, data_root=None) -> dict:
    """TCA and ASR of a (verified) checkpoint on the full real test set."""
    model, _ = load_checkpoint(path, entry["dataset"], quiet=True, manifest=path.parent / MANIFEST_NAME)
    attack = entry_attack(entry)
    _, test = load_data(attack.dataset, Budget(train_limit=1), data_root=data_root)
    setup = prepare(attack, data=(test.subset(torch.arange(1)), test))
    m = final_metrics(model, setup)
    return {"tca": round(m["tca"], 6), "asr": round(m["asr"], 6), "test_size": len(setup.test),
            "attack_test_size": len(setup.test_attack)}  # fmt: skip


def _describe(e: dict) -> str:
    """The attack, trigger, poisoned and epochs cells of a table row, from a manifest entry."""
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
    cifar = release_entry(*CIFAR)
    note = "not trained here: CIFAR-10 cannot be downloaded on the project's machines"
    rows.append(f"| train it yourself: `{command(*CIFAR, ' --download')}` ({CIFAR_TIMES}) | CIFAR10 | "
                f"{_describe(cifar)} | {note} | |")  # fmt: skip
    return "\n".join(rows)


def readme_table(readme: str) -> str:
    m = re.search(re.escape(TABLE_START) + r"\n(.*?)\n?" + re.escape(TABLE_END), readme, re.S)
    return m.group(1).strip() if m else ""


def write_readme_table(readme_path: Path, entries: dict) -> None:
    text = readme_path.read_text()
    new = f"{TABLE_START}\n{render_table(entries)}\n{TABLE_END}"
    text = re.sub(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), lambda _: new, text, flags=re.S)
    atomic_write_text(readme_path, text)


def retrain(
    out: Path, data_root=None, only: list[str] | None = None, workers: int | None = None, executor=None
) -> dict:
    """Train every release (or ``only`` these) into ``out`` (checkpoints/, logs/, MANIFEST.json); returns entries.
    ``workers`` / ``executor``: where they train, as in ``run_many`` (releases of one budget together)."""
    unknown = sorted(set(only or ()) - set(RELEASES))
    if unknown:
        raise ValueError(f"unknown release(s) {unknown}; allowed: {', '.join(RELEASES)}")
    folder = out / "checkpoints"
    chosen = {name: release for name, release in RELEASES.items() if not only or name in only}
    targets = [Path("checkpoints") / MANIFEST_NAME]
    for name, (attack, _) in chosen.items():
        targets += [p.relative_to(out) for p in output_paths(attack, out, name)]
    check_output_dir(out, targets)  # before any training: never over the shipped files
    trained = {}
    for budget in dict.fromkeys(b for _, b in chosen.values()):
        names = [name for name, (_, b) in chosen.items() if b == budget]
        for name in names:
            print(f"training {name}: {command(*chosen[name])}", flush=True)
        attacks = [chosen[name][0].replace(trigger=REPO_ROOT / chosen[name][0].trigger) for name in names]
        results = run_many(attacks, budget, data_root=data_root, workers=workers, executor=executor)
        trained.update(zip(names, results, strict=True))
    entries = {}
    for name, (attack, budget) in chosen.items():
        result = trained[name]
        ckpt, _ = save_run(result, out, name)
        entry = {**release_entry(attack, budget), "torch": torch.__version__.split("+")[0]}
        entry["sha256"] = sha256_file(ckpt)
        entry.update(tca=round(result.tca, 6), asr=round(result.asr, 6), test_size=len(result.setup.test),
                     attack_test_size=len(result.setup.test_attack))  # fmt: skip
        entries[name] = entry
        print(f"  TCA {entry['tca']:.4f}  ASR {entry['asr']:.4f}", flush=True)
    write_manifest(folder, entries, files=listed_files(out))
    return entries


def listed_files(root: Path) -> dict[str, str]:
    """SHA-256 of the trigger images, epoch logs and notebooks' results under ``root`` (listed with the models)."""
    found = [*(root / "triggers").glob("*.png"), *(root / "logs").glob("*.csv"), *(root / "results").glob("*.*")]
    paths = sorted(found)
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in paths}


def main(argv: list[str]) -> int:
    p = Parser(prog="badnets results", description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("--checkpoints", default="checkpoints", help="folder holding the checkpoints and MANIFEST.json")
    p.add_argument("--data_path", default=None, help="data root (default: $BADNETS_DATA, else the checkout's data/)")
    p.add_argument("--retrain", action="store_true", help="retrain every release into --out (maintainers)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="with --retrain: only these releases")
    p.add_argument("--workers", type=int, default=None, help="with --retrain: worker processes (default: one per core)")
    p.add_argument("--out", default="runs/release", help="where --retrain writes checkpoints/, logs/ and the manifest")
    p.add_argument("--update-readme", metavar="README", default=None,
                   help="after a check without mismatch, write the table into this README")  # fmt: skip
    args = p.parse_args(argv)
    if args.retrain:
        entries = retrain(Path(args.out), args.data_path, args.only, args.workers)
        print(render_table(entries))
        print(f"\nreview, then copy {args.out}/checkpoints and {args.out}/logs into the repository and run "
              "`python -m badnets_utils results --update-readme README.md` to refresh the README's table")  # fmt: skip
        return 0
    folder = Path(args.checkpoints)
    entries = read_manifest(folder)
    if not entries:
        raise ValueError(f"no {MANIFEST_NAME} with checkpoints in {folder}")
    fresh, drift = {}, []
    for name, entry in entries.items():
        check_entry(name, entry)
    for name, entry in entries.items():
        got = evaluate_entry(folder / name, entry, args.data_path)
        fresh[name] = {**entry, **got}
        for key in ("tca", "asr"):
            if f"{got[key]:.4f}" != f"{entry[key]:.4f}":
                drift.append(f"{name}: {key} {got[key]:.4f} here, {entry[key]:.4f} in the manifest")
    print(render_table(fresh))
    for line in drift:
        print(f"MISMATCH {line}")
    if args.update_readme and not drift:
        write_readme_table(Path(args.update_readme), entries)
    return 1 if drift else 0
