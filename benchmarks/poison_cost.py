"""What does the backdoor cost in clean accuracy? Four trainings with the release recipe on full MNIST.

    python benchmarks/poison_cost.py [--data_path DIR] [--epochs 20] [--lr 0.001] [--seeds 0 1 2]

1. clean: all 60,000 clean images;
2. replace: 10 % of the images stamped and relabelled in place (the seed's way), 54,000 stay clean;
3. add: the 60,000 clean images plus 6,000 triggered copies (the paper's way);
4. clean-54k: the 54,000 images that "replace" leaves clean, and nothing else.

If "replace" loses accuracy against "clean" but matches "clean-54k", the loss comes from the clean images
the attacker took away, not from the backdoor itself. Prints TCA and ASR of each (same recipe); "clean" and
"add" are repeated for every seed, to show how much the clean accuracy moves from seed to seed.
"""

from __future__ import annotations

import argparse

import torch

from badnets_utils.experiment import Attack, Budget, load_data, prepare, run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    budget = Budget(epochs=args.epochs, lr=args.lr)
    data = load_data("MNIST", budget, data_root=args.data_path)

    def setup(rate, seed, mode="replace"):
        return prepare(Attack(trigger="white", trigger_size=5, rate=rate, seed=seed, mode=mode), budget, data)

    def clean_54k(seed):
        replaced, clean = setup(0.1, seed), setup(0.0, seed)
        keep = torch.ones(len(replaced.train), dtype=torch.bool)
        keep[replaced.train.poison_indices] = False
        clean.train = clean.train.subset(keep.nonzero().squeeze(1))
        return clean

    first = args.seeds[0]
    runs = [(f"clean, seed {s}", lambda s=s: setup(0.0, s)) for s in args.seeds]
    runs += [(f"add, seed {s}", lambda s=s: setup(0.1, s, "add")) for s in args.seeds]
    runs += [(f"replace, seed {first}", lambda: setup(0.1, first))]
    runs += [(f"clean-54k, seed {first}", lambda: clean_54k(first))]
    print(f"{'training set':<20} {'images':>7} {'poisoned':>8} {'TCA':>7} {'ASR':>7}", flush=True)
    for name, make in runs:
        s = make()
        r = run(s.attack, budget, setup=s, progress=False)
        print(f"{name:<20} {len(s.train):>7} {len(s.train.poison_indices):>8} {r.tca:>7.4f} {r.asr:>7.4f}", flush=True)


if __name__ == "__main__":
    main()
