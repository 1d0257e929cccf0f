"""What does the backdoor cost in clean accuracy? Four trainings with the release recipe on full MNIST.

    python benchmarks/poison_cost.py [--data_path DIR] [--epochs 20] [--lr 0.001] [--seeds 0 1 2]

1. clean: all 60,000 clean images;
2. replace: 10 % of the images stamped and relabelled in place (the seed's way), 54,000 stay clean;
3. add: the 60,000 clean images plus 6,000 triggered copies (the paper's way);
4. clean-54k: the 54,000 images that "replace" leaves clean, and nothing else.

If "replace" loses accuracy against "clean" but matches "clean-54k", the loss comes from the clean images
the attacker took away, not from the backdoor itself. Prints TCA and ASR of each (same recipe); "clean" and
"add" are repeated for every seed, to show how much the clean accuracy moves from seed to seed. The figures are
recorded in benchmarks/results/poison_cost.json, replacing the run recorded there (docs/results.md shows them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.pipeline import load_data, prepare, run
from badnets_utils.tools.benchmark_tables import record

ROOT = Path(__file__).resolve().parent.parent
RATE = 0.1  # the poisoning rate of "add" and "replace"


def add_result(rows: dict[str, dict], key: str, seed: int, images: int, poisoned: int, tca: float, asr: float) -> None:
    """Add one training's figures to its training set's row: TCA per seed, ASR as [lowest, highest] over the seeds."""
    row = rows.setdefault(key, {"set": key, "seeds": [], "images": images, "poisoned": poisoned, "tca": [], "asr": []})
    row["seeds"].append(seed)
    row["tca"].append(tca)
    low, high = row["asr"] or (asr, asr)
    row["asr"] = [min(low, asr), max(high, asr)]


def save(root: Path, argv: list[str], budget: Budget, seeds: list[int], rows: dict[str, dict]) -> Path:
    """Record the rows (``add_result``) in benchmarks/results/poison_cost.json under ``root``; return the file."""
    figures = {"epochs": budget.epochs, "lr": budget.lr, "optimizer": budget.optimizer, "rate": RATE,
               "seeds": list(seeds), "rows": list(rows.values())}  # fmt: skip
    return record(root, "poison_cost", argv, figures)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    budget = Budget(epochs=args.epochs, lr=args.lr)
    data = load_data("MNIST", budget, data_root=args.data_path)

    def setup(rate, seed, mode="replace"):
        return prepare(Attack(trigger="white", trigger_size=5, rate=rate, seed=seed, mode=mode), budget, data)

    def clean_54k(seed):
        replaced, clean = setup(RATE, seed), setup(0.0, seed)
        keep = torch.ones(len(replaced.train), dtype=torch.bool)
        keep[replaced.train.poison_indices] = False
        clean.train = clean.train.subset(keep.nonzero().squeeze(1))
        return clean

    first = args.seeds[0]
    runs = [("clean", "clean", s, lambda s=s: setup(0.0, s)) for s in args.seeds]
    runs += [("add", "add", s, lambda s=s: setup(RATE, s, "add")) for s in args.seeds]
    runs += [("replace", "replace", first, lambda: setup(RATE, first))]
    runs += [("kept-clean", "clean-54k", first, lambda: clean_54k(first))]
    print(f"{'training set':<20} {'images':>7} {'poisoned':>8} {'TCA':>7} {'ASR':>7}", flush=True)
    rows: dict[str, dict] = {}
    for key, label, seed, make in runs:
        s = make()
        r = run(s.attack, budget, setup=s, progress=False)
        name, images, poisoned = f"{label}, seed {seed}", len(s.train), len(s.train.poison_indices)
        print(f"{name:<20} {images:>7} {poisoned:>8} {r.tca:>7.4f} {r.asr:>7.4f}", flush=True)
        add_result(rows, key, seed, images, poisoned, r.tca, r.asr)
    print(f"recorded in {save(ROOT, argv, budget, args.seeds, rows).relative_to(ROOT).as_posix()}")


if __name__ == "__main__":
    main()
