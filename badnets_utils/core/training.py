"""Training and evaluation on whole tensors: data moves to the device once, batches are slices."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from badnets_utils._io.files import atomic_write_text
from badnets_utils._io.machine import THREADS_RECHECK_S, ThreadGovernor, select_device
from badnets_utils._io.progress import tqdm
from badnets_utils.core.config import LR_ALLOWED, Budget
from badnets_utils.core.data import ImageData
from badnets_utils.core.metrics import confusion_matrix

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


def compute_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str, reduction: str = "mean") -> torch.Tensor:
    """'cross': cross-entropy on logits; 'mse': squared error between softmax and one-hot."""
    logits = logits.float()
    if loss == "cross":
        return F.cross_entropy(logits, targets, reduction=reduction)
    onehot = F.one_hot(targets, logits.shape[1]).float()
    per_sample = (logits.softmax(1) - onehot).pow(2).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum()


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """'adam' or 'sgd' (momentum 0.9)."""
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
    chunk: int = 1000,
    loss: str | None = None,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """Predicted classes for a uint8 batch (on the model's device, ``chunk`` images at a time), and the mean loss if
    labels are given.

    Always in float32, on every device: mixed precision is for training only. The loss of an empty batch is NaN.
    """
    device = _device_of(model)
    was_training = model.training
    model.eval()
    images = images.to(device)
    preds, total = [], 0.0
    for i in range(0, len(images), chunk):
        with _float32(device):
            logits = model(images[i : i + chunk]).float()
        preds.append(logits.argmax(1))
        if labels is not None:
            y = labels[i : i + chunk].to(device)
            total += compute_loss(logits, y, loss or Budget.loss, reduction="sum").item()
    model.train(was_training)
    out = torch.cat(preds).cpu() if preds else torch.empty(0, dtype=torch.long)
    return out, total / len(images) if len(images) else float("nan")


def evaluate(model: torch.nn.Module, data: ImageData, loss: str = Budget.loss, chunk: int = 1000) -> dict:
    """accuracy, mean loss, predictions and confusion matrix of ``model`` on ``data``.

    On an empty set acc and loss are NaN, not 0: e.g. the ASR of an all-to-one attack whose test set holds
    only target-class images is undefined (print it with ``metrics.format_rate``).
    """
    preds, mean_loss = predict(model, data.images, chunk, loss, data.labels)
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
    budget: Budget,
    *,
    seed: int,
    tests: tuple[ImageData | None, ImageData | None] = (None, None),
    progress: bool,
    on_epoch: Callable[[dict], None] | None = None,
    final: dict | None = None,
) -> list[dict]:
    """Train ``model`` on ``train`` as ``budget`` says; after each epoch measure clean accuracy and ASR on ``tests``
    (the clean and the triggered test set, either may be None).

    Returns one dict per epoch with the keys of ``HISTORY_FIELDS``; ``final`` (a dict) receives the last epoch's
    whole evaluations. Adam uses a one-cycle learning-rate schedule peaking at ``budget.lr``; SGD keeps it
    constant. A NaN or infinite loss stops training with TrainingDivergedError. On the CPU the intra-op thread
    count follows ``machine.choose_threads`` while training (unless the user set it), and is restored afterwards.
    """
    epochs, batch_size, lr, loss, optimizer = budget.epochs, budget.batch_size, budget.lr, budget.loss, budget.optimizer
    test_clean, test_attack = tests
    device = select_device(budget.device)
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
