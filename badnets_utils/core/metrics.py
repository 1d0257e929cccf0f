"""Confusion matrix, a per-class precision / recall / F1 report, in torch, and rates as text."""

from __future__ import annotations

import math

import torch

ASR_UNDEFINED = "undefined (no test image outside the target class)"


def format_rate(x: float, digits: int = 4, percent: bool = False, undefined: str = "undefined") -> str:
    """A rate such as TCA or ASR as text: '0.9731' (or '97.31 %'), and ``undefined`` for NaN (an empty test set).

    For an ASR pass ``undefined=ASR_UNDEFINED``: an all-to-one attack with no test image outside the target class
    has no ASR, which is not the same as an ASR of 0.
    """
    if x is None or math.isnan(x):
        return undefined
    return f"{100 * x:.{max(digits - 2, 0)}f} %" if percent else f"{x:.{digits}f}"


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: row = true label, column = prediction."""
    idx = labels.cpu().long() * num_classes + preds.cpu().long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_scores(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """precision, recall, f1 and support per class from a confusion matrix (0 where undefined)."""
    cm = cm.double()
    tp = cm.diag()
    predicted, support = cm.sum(0), cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp))
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.long()}


def classification_report(cm: torch.Tensor, class_names: list[str] | None = None, digits: int = 4) -> str:
    """A text table like scikit-learn's classification_report, from a confusion matrix."""
    k = cm.shape[0]
    names = class_names or [str(i) for i in range(k)]
    s = per_class_scores(cm)
    total = int(s["support"].sum())
    width = max(12, *(len(n) for n in names))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for i, name in enumerate(names):
        lines.append(
            f"{name:>{width}} {s['precision'][i]:>9.{digits}f} {s['recall'][i]:>9.{digits}f} "
            f"{s['f1'][i]:>9.{digits}f} {int(s['support'][i]):>9d}"
        )
    acc = cm.diag().sum().item() / max(total, 1)
    lines += ["", f"{'accuracy':>{width}} {'':>9} {'':>9} {acc:>9.{digits}f} {total:>9d}"]
    w = s["support"].double() / max(total, 1)
    for label, agg in (("macro avg", lambda v: v.mean()), ("weighted avg", lambda v: (v * w).sum())):
        lines.append(
            f"{label:>{width}} {agg(s['precision']):>9.{digits}f} {agg(s['recall']):>9.{digits}f} "
            f"{agg(s['f1']):>9.{digits}f} {total:>9d}"
        )
    return "\n".join(lines)
