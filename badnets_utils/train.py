"""Training and evaluation on whole tensors: data moves to the device once, batches are slices."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import ImageData
from .files import atomic_write_text
from .metrics import confusion_matrix

LOSSES = ("cross", "mse")
OPTIMIZERS = ("adam", "sgd")
HISTORY_FIELDS = ("epoch", "train_loss", "clean_acc", "clean_loss", "asr", "asr_loss", "seconds")


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


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """'adam' or 'sgd' (momentum 0.9)."""
    check_optimizer(name)
    if not lr > 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
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
    """Predicted classes for a uint8 batch (on the model's device), and the mean loss if labels are given."""
    device = _device_of(model)
    was_training = model.training
    model.eval()
    images = images.to(device)
    preds, total = [], 0.0
    for i in range(0, len(images), batch_size):
        with _autocast(device):
            logits = model(images[i : i + batch_size])
        preds.append(logits.argmax(1))
        if labels is not None:
            y = labels[i : i + batch_size].to(device)
            total += compute_loss(logits, y, loss or "cross", reduction="sum").item()
    model.train(was_training)
    out = torch.cat(preds).cpu() if preds else torch.empty(0, dtype=torch.long)
    return out, total / max(len(images), 1)


def evaluate(model: torch.nn.Module, data: ImageData, loss: str = "cross", batch_size: int = 1000) -> dict:
    """accuracy, mean loss, predictions and confusion matrix of ``model`` on ``data``."""
    preds, mean_loss = predict(model, data.images, batch_size, loss, data.labels)
    acc = (preds == data.labels).float().mean().item() if len(data) else 0.0
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
) -> list[dict]:
    """Train ``model`` on ``train``; after each epoch measure clean accuracy and ASR.

    Returns one dict per epoch with the keys of ``HISTORY_FIELDS``. Adam uses a one-cycle
    learning-rate schedule peaking at ``lr``; SGD keeps ``lr`` constant.
    """
    check_loss(loss)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
    device = device if isinstance(device, torch.device) else select_device(device)
    torch.manual_seed(seed)
    model.to(device, memory_format=torch.channels_last)  # about 10 % faster convolutions on CPU
    opt = make_optimizer(optimizer, model.parameters(), lr)
    x, y = train.images.to(device), train.labels.to(device)  # once
    steps = (len(train) + batch_size - 1) // batch_size
    sched = None
    if optimizer == "adam":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(len(train), generator=g).to(device)
        running, seen = torch.zeros((), device=device), 0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for step in bar:
            idx = perm[step * batch_size : (step + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            with _autocast(device):
                logits = model(xb)
            batch_loss = compute_loss(logits, yb, loss)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            running += batch_loss.detach() * len(idx)
            seen += len(idx)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{running.item() / seen:.4f}")
        bar.close()
        row = {"epoch": epoch, "train_loss": running.item() / max(seen, 1)}
        row.update(_eval_row(model, test_clean, test_attack, loss))
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return history


def _eval_row(model, test_clean, test_attack, loss) -> dict:
    row = {}
    for key, data in (("clean", test_clean), ("asr", test_attack)):
        if data is None:
            row.update({f"{key}_acc" if key == "clean" else key: float("nan"), f"{key}_loss": float("nan")})
            continue
        r = evaluate(model, data, loss)
        row[f"{key}_acc" if key == "clean" else key] = r["acc"]
        row[f"{key}_loss"] = r["loss"]
    return row


def attack_success_rate(model: torch.nn.Module, test_attack: ImageData, batch_size: int = 1000) -> float:
    """Fraction of triggered test images classified as the attacker wants."""
    return evaluate(model, test_attack, batch_size=batch_size)["acc"]


def save_history(history: list[dict], path: str | os.PathLike) -> None:
    """Write the per-epoch history as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def load_history(path: str | os.PathLike) -> list[dict]:
    """Read a history CSV written by ``save_history``."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
