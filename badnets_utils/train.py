"""Training and evaluation on whole tensors: data moves to the device once, batches are slices."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import numbers
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import ImageData
from .files import atomic_write_text
from .metrics import confusion_matrix
from .progress import tqdm

LOSSES = ("cross", "mse")
OPTIMIZERS = ("adam", "sgd")
LR_ALLOWED = "allowed: a finite positive number, e.g. 0.001"
THREADS_RECHECK_S = 2.0  # seconds between two looks at the machine's load while training
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # a user who sets these chooses the thread count
_TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anyone here changes it
HISTORY_FIELDS = ("epoch", "train_loss", "clean_acc", "clean_loss", "asr", "asr_loss", "seconds")


def epoch_label(epoch: int, epochs: int) -> str:
    """An epoch as a person reads it, counted from 1: ``epoch 1/4`` for a history row's ``epoch`` 0 of 4. (The CSV
    logs keep the 0-based ``epoch`` column of the original scripts' logs.)"""
    return f"epoch {epoch + 1}/{epochs}"


def epoch_summary(row: dict, epochs: int) -> str:
    """A history row as printed after its epoch (the CLI, notebook 03):
    ``epoch 1/4  loss 0.4546  clean acc 0.9777  ASR 0.9995  (10.9 s)``; a score without its test set is left out."""
    scores = [f"{label} {row[key]:.4f}" for key, label in (("train_loss", "loss"), ("clean_acc", "clean acc"),
                                                            ("asr", "ASR")) if row.get(key) is not None]  # fmt: skip
    return "  ".join([epoch_label(row["epoch"], epochs), *scores, f"({row['seconds']:.1f} s)"])


class TrainingDivergedError(ValueError):
    """The training loss or the weights became NaN or infinite (the learning rate is too high, usually)."""


def select_device(name: str | None = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; 'cpu', 'cuda', 'cuda:N', 'mps' are checked."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N, mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N, mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but Apple MPS is not available here; use auto or cpu")
    return device


# ----------------------------------------------------------------------------- threads on a shared machine


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int] | None = None) -> int:
    """Physical cores among the logical ``cpus`` this process may use (Linux sysfs), else their count."""
    cpus = _usable_cpus() if cpus is None else cpus
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def _cgroup_cpu_limit() -> int | None:
    """The container's CPU quota in whole cores (cgroup v2 cpu.max), None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def _own_running_threads() -> int:
    """Threads of this process that are running or runnable now (state R in /proc/self/task/*/stat)."""
    running = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            running += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return running


def busy_elsewhere(samples: int = 5) -> float:
    """How many cores other processes keep busy right now.

    Linux: runnable threads system-wide (/proc/loadavg, 4th field) minus this process's own, median of a few
    samples 0.5 ms apart. Elsewhere: the 1-minute load average (which lags, and counts this process too).
    """
    try:
        counts = []
        for i in range(samples):
            if i:
                time.sleep(0.0005)
            total = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            counts.append(max(0, total - _own_running_threads()))
        return float(statistics.median(counts))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return 0.0


def usable_cores() -> int:
    """Physical cores of this process's CPU affinity, capped by a cgroup CPU quota."""
    cores, limit = physical_cores(), _cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def choose_threads() -> int:
    """Intra-op threads for training now: the cores this process may use minus those other processes keep busy.

    The rule: n = max(1, cores - busy), where "cores" are the physical cores of this process's CPU affinity
    (capped by a cgroup CPU quota) and "busy" is ``busy_elsewhere()`` (scaled to the affinity's share of the
    machine's CPUs). A run alone gets every core, as torch's default does; runs started together end up
    sharing the cores instead of each starting one spinning thread per core. ``fit`` re-checks every few seconds,
    so a run speeds up again when the others finish. ``benchmarks/bench_contention.py`` measures the rule against
    torch's default, alone and with several runs at once (its current table: docs/performance.md).
    """
    cpus, cores = _usable_cpus(), usable_cores()
    share = len(cpus) / max(os.cpu_count() or 1, len(cpus))  # the load count is machine-wide: keep our CPUs' part
    return max(1, min(cores, cores - round(busy_elsewhere() * share)))


def threads_set_by_user() -> bool:
    """True when $OMP_NUM_THREADS / $MKL_NUM_THREADS is set or torch's thread count was changed from its default."""
    return any(os.environ.get(v) for v in THREADS_ENV) or torch.get_num_threads() != _TORCH_DEFAULT_THREADS


class ThreadGovernor:
    """Applies ``choose_threads`` during CPU training unless the user chose a thread count; restores it after."""

    def __init__(self, device: torch.device) -> None:
        self.saved = torch.get_num_threads()
        self.active = device.type == "cpu" and not threads_set_by_user()
        self.checked = -math.inf

    def update(self, every: float = 0.0) -> None:
        """Re-apply the rule, at most once per ``every`` seconds."""
        now = time.monotonic()
        if not self.active or now - self.checked < every:
            return
        self.checked = now
        n = choose_threads()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)

    def restore(self) -> None:
        if self.active and torch.get_num_threads() != self.saved:
            torch.set_num_threads(self.saved)


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")
    return name


def compute_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str, reduction: str = "mean") -> torch.Tensor:
    """'cross': cross-entropy on logits; 'mse': squared error between softmax and one-hot."""
    check_loss(loss)
    logits = logits.float()
    if loss == "cross":
        return F.cross_entropy(logits, targets, reduction=reduction)
    onehot = F.one_hot(targets, logits.shape[1]).float()
    per_sample = (logits.softmax(1) - onehot).pow(2).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum()


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    return name


def check_lr(lr: float) -> float:
    """A finite positive learning rate, else a one-line ValueError naming it."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or not lr > 0:
        raise ValueError(f"learning rate {lr!r} is not allowed; {LR_ALLOWED}")
    return float(lr)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """'adam' or 'sgd' (momentum 0.9)."""
    check_optimizer(name)
    check_lr(lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _float32(device: torch.device):
    """Switch autocast off, even inside a caller's autocast block: evaluation is always float32."""
    if device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    images: torch.Tensor,
    batch_size: int = 1000,
    loss: str | None = None,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """Predicted classes for a uint8 batch (on the model's device), and the mean loss if labels are given.

    Always in float32, on every device: mixed precision is for training only. The loss of an empty batch is NaN.
    """
    device = _device_of(model)
    was_training = model.training
    model.eval()
    images = images.to(device)
    preds, total = [], 0.0
    for i in range(0, len(images), batch_size):
        with _float32(device):
            logits = model(images[i : i + batch_size]).float()
        preds.append(logits.argmax(1))
        if labels is not None:
            y = labels[i : i + batch_size].to(device)
            total += compute_loss(logits, y, loss or "cross", reduction="sum").item()
    model.train(was_training)
    out = torch.cat(preds).cpu() if preds else torch.empty(0, dtype=torch.long)
    return out, total / len(images) if len(images) else float("nan")


def evaluate(model: torch.nn.Module, data: ImageData, loss: str = "cross", batch_size: int = 1000) -> dict:
    """accuracy, mean loss, predictions and confusion matrix of ``model`` on ``data``.

    On an empty set acc and loss are NaN, not 0: e.g. the ASR of an all-to-one attack whose test set holds
    only target-class images is undefined (print it with ``metrics.format_rate``).
    """
    preds, mean_loss = predict(model, data.images, batch_size, loss, data.labels)
    acc = (preds == data.labels).float().mean().item() if len(data) else float("nan")
    return {
        "acc": acc,
        "loss": mean_loss,
        "preds": preds,
        "confusion": confusion_matrix(preds, data.labels, data.num_classes),
    }


def fit(
    model: torch.nn.Module,
    train: ImageData,
    test_clean: ImageData | None = None,
    test_attack: ImageData | None = None,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    loss: str = "cross",
    optimizer: str = "adam",
    device: str | torch.device | None = "auto",
    seed: int = 0,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    final: dict | None = None,
) -> list[dict]:
    """Train ``model`` on ``train``; after each epoch measure clean accuracy and ASR.

    Returns one dict per epoch with the keys of ``HISTORY_FIELDS``. Adam uses a one-cycle
    learning-rate schedule peaking at ``lr``; SGD keeps ``lr`` constant. A NaN or infinite loss stops
    training with TrainingDivergedError. On the CPU the intra-op thread count follows ``choose_threads``
    while training (unless the user set it), and is restored afterwards.
    """
    check_loss(loss)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
    device = device if isinstance(device, torch.device) else select_device(device)
    torch.manual_seed(seed)
    model.to(device, memory_format=torch.channels_last)  # the memory layout oneDNN's CPU convolutions prefer
    opt = make_optimizer(optimizer, model.parameters(), lr)
    x, y = train.images.to(device), train.labels.to(device)  # once
    steps = (len(train) + batch_size - 1) // batch_size
    sched = None
    if optimizer == "adam":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    run = _Run(model, x, y, opt, sched, batch_size, loss, lr, torch.Generator().manual_seed(seed), progress)
    run.threads = ThreadGovernor(device)
    history = []
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            row = {"epoch": epoch, "train_loss": _train_epoch(run, epoch, epochs)}
            scores, evaluations = _eval_row(model, test_clean, test_attack, loss)
            row.update(scores)
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
    finally:
        run.threads.restore()
    if final is not None:
        final.update(evaluations)
    return history


@dataclass
class _Run:
    """What one training run's epochs share."""

    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    batch_size: int
    loss: str
    lr: float
    generator: torch.Generator
    progress: bool
    threads: ThreadGovernor | None = None


def _train_epoch(run: _Run, epoch: int, epochs: int) -> float:
    """One shuffled pass over the training tensors; the mean loss. Stops on a non-finite loss."""
    run.threads.update()
    run.model.train()
    perm = torch.randperm(len(run.x), generator=run.generator).to(run.x.device)
    steps = (len(run.x) + run.batch_size - 1) // run.batch_size
    running, seen = torch.zeros((), device=run.x.device), 0
    bar = tqdm(range(steps), desc=epoch_label(epoch, epochs), disable=not run.progress, leave=False)
    for step in bar:
        idx = perm[step * run.batch_size : (step + 1) * run.batch_size]
        with _autocast(run.x.device):
            logits = run.model(run.x[idx])
        batch_loss = compute_loss(logits, run.y[idx], run.loss)
        run.opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        _step(run, epoch)
        if run.sched is not None:
            run.sched.step()
        running += batch_loss.detach() * len(idx)
        seen += len(idx)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{check_finite(running.item() / seen, None, epoch, run.lr):.4f}")
            run.threads.update(every=THREADS_RECHECK_S)
    bar.close()
    return check_finite(running.item() / max(seen, 1), run.model, epoch, run.lr)


def _step(run: _Run, epoch: int) -> None:
    """One optimizer step; a learning rate too large for float32 (torch's overflow error) is a divergence."""
    try:
        run.opt.step()
    except RuntimeError as err:
        if "overflow" not in str(err):
            raise
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}: the update overflows float32; lower --lr (got {run.lr:g}); "
            f"{LR_ALLOWED}"
        ) from None


def check_finite(mean_loss: float, model: torch.nn.Module | None, epoch: int, lr: float) -> float:
    """``mean_loss`` if it (and the model's weights, when given) are finite, else TrainingDivergedError."""
    what = None if math.isfinite(mean_loss) else f"the loss is {mean_loss}"
    if what is None and model is not None and not all(bool(p.isfinite().all()) for p in model.parameters()):
        what = "the weights are no longer finite"
    if what is not None:
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}: {what}; lower --lr (got {lr:g}); {LR_ALLOWED}"
        )
    return mean_loss


def _eval_row(model, test_clean, test_attack, loss) -> tuple[dict, dict]:
    """The history's scores of one epoch, and the whole evaluations they come from (None: no such test set)."""
    row, evaluations = {}, {}
    for key, name, data in (("clean", "clean", test_clean), ("asr", "attack", test_attack)):
        r = evaluate(model, data, loss) if data is not None else None
        evaluations[name] = r
        row[f"{key}_acc" if key == "clean" else key] = r["acc"] if r else float("nan")
        row[f"{key}_loss"] = r["loss"] if r else float("nan")
    return row, evaluations


def save_history(history: list[dict], path: str | os.PathLike, run_id: str | None = None) -> None:
    """Write the per-epoch history as CSV, atomically; ``run_id`` (a column) ties it to its checkpoint."""
    buf = io.StringIO()
    fields = (*HISTORY_FIELDS, "run_id") if run_id else HISTORY_FIELDS
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({**{k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()}, "run_id": run_id})
    atomic_write_text(path, buf.getvalue())


def load_history(path: str | os.PathLike) -> list[dict]:
    """Read a history CSV written by ``save_history``."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    parse = {"epoch": int, "run_id": str}
    return [{k: parse.get(k, float)(v) for k, v in row.items()} for row in rows]
