"""Speed bar: the default CLI run on full MNIST vs a per-sample PIL + DataLoader pipeline of the seed's design.

    python benchmarks/bench_pipeline.py [--data_path DIR] [--seed_epochs N] [--num_workers N]

Prints wall time, TCA and ASR of the default run, samples per second of both pipelines and their ratio, and
records them in benchmarks/results/bench_pipeline.json, replacing the run recorded there (docs/performance.md's
table is rendered from it).
The per-sample pipeline: PIL image per sample, Python-list membership test for poisoned indices,
trigger pasted with PIL, ToTensor + Normalize, DataLoader (batch 64), softmax fed into cross-entropy,
plain SGD lr 0.01 — the same BadNet architecture.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from badnets_utils.core.data import resolve_data_root
from badnets_utils.core.models import BadNet
from badnets_utils.tools.benchmark_tables import record
from badnets_utils.tools.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent


class SeedStylePoisonedMNIST(Dataset):
    """Per-sample pipeline in the style of the popular reimplementations."""

    def __init__(self, root, rate=0.1, target=1, size=5):
        self.base = datasets.MNIST(root, train=True, download=False)
        n = len(self.base)
        self.poi_indices = random.sample(list(range(n)), k=int(n * rate))  # a Python list
        self.trigger = Image.new("L", (size, size), 255)
        self.size, self.target = size, target
        self.tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        img, label = self.base[i]  # PIL image
        if i in self.poi_indices:  # O(n) list membership, as in the seed
            img = img.copy()
            img.paste(self.trigger, (28 - self.size, 28 - self.size))
            label = self.target
        return self.tf(img), label


class SoftmaxBadNet(BadNet):
    def forward(self, x):
        return super().forward(x).softmax(1)  # the seed's bug: softmax fed into cross-entropy


def time_seed_pipeline(root, epochs, workers):
    random.seed(0)
    torch.manual_seed(0)
    ds = SeedStylePoisonedMNIST(str(root))
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers)
    model = SoftmaxBadNet(1, 10, 28, (0.0,), (1.0,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    start, seen = time.perf_counter(), 0
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            seen += len(y)
    return seen / (time.perf_counter() - start)


def save(root: Path, argv: list[str], *, epochs: int, wall_s: float, tca: float, asr: float, tensor_sps: float,
         seed_sps: float, seed_epochs: int) -> Path:  # fmt: skip
    """Record one run's figures as benchmarks/results/bench_pipeline.json under ``root``; return the file."""
    figures = {"epochs": epochs, "wall_s": round(wall_s, 2), "tca": tca, "asr": asr,
               "tensor_sps": round(tensor_sps), "seed_sps": round(seed_sps), "seed_epochs": seed_epochs,
               "speedup": round(tensor_sps / seed_sps, 4)}  # fmt: skip
    return record(root, "bench_pipeline", argv, figures)


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=None)
    p.add_argument("--seed_epochs", type=int, default=None, help="epochs of the per-sample pipeline (default: same)")
    p.add_argument("--num_workers", type=int, default=0, help="DataLoader workers of the per-sample pipeline")
    args = p.parse_args(argv)
    root = resolve_data_root(args.data_path)

    buf = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = cli_main(["--data_path", str(root), "--output_dir", "runs/bench", "--no_progress"])
    wall = time.perf_counter() - start
    out = buf.getvalue()
    assert code == 0, out
    epochs = len(re.findall(r"^epoch \d+/\d+ ", out, flags=re.M))
    tca = float(re.search(r"TCA\): ([\d.]+)", out).group(1))
    asr = float(re.search(r"ASR\): ([\d.]+)", out).group(1))
    epoch_seconds = [float(s) for s in re.findall(r"\(([\d.]+) s\)", out)]
    # per-epoch seconds include the evaluation; training throughput counts training samples only
    tensor_sps = 60000 * epochs / sum(epoch_seconds)
    print(f"default CLI run: {epochs} epochs, wall {wall:.1f} s (data loading, training, evaluation), "
          f"TCA {tca:.4f}, ASR {asr:.4f}")  # fmt: skip
    print(f"tensor pipeline: {tensor_sps:,.0f} samples/s (training + per-epoch evaluation)")
    seed_epochs = args.seed_epochs or epochs
    seed_sps = time_seed_pipeline(root, seed_epochs, args.num_workers)
    print(f"per-sample PIL + DataLoader pipeline: {seed_sps:,.0f} samples/s ({seed_epochs} epochs)")
    print(f"ratio: {tensor_sps / seed_sps:.1f}x")
    print(f"threads: {torch.get_num_threads()}, torch {torch.__version__}")
    path = save(ROOT, argv, epochs=epochs, wall_s=wall, tca=tca, asr=asr, tensor_sps=tensor_sps, seed_sps=seed_sps,
                seed_epochs=seed_epochs)  # fmt: skip
    print(f"recorded in {path.relative_to(ROOT).as_posix()}")


if __name__ == "__main__":
    main()
