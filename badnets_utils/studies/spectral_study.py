"""Spectral signatures as published, on several setups: does the filter find the poisons, and does retraining on
what it keeps remove the backdoor? (Notebook 07, section 2; ``results/spectral_signatures.json`` holds a full run.)

Each setup trains a BadNet, scores every class of its poisoned training set (``defences.spectral_signatures``, with
the defender's bound set to the true number of poisons: the defender's best case), removes each class's top-scoring
samples, retrains from scratch on the rest with the same budget and measures again::

    rows = study()  # every setup in SETUPS, a dict each, in order
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import torch

from badnets_utils import defences as D
from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.data import ImageData
from badnets_utils.core.pipeline import Result, load_data, run
from badnets_utils.studies.pool import Runs, run_all

DEFAULT = Budget()
SETUPS: tuple[tuple[Attack, Budget], ...] = (
    (Attack(dataset="MNIST", target=1, rate=0.05, mode="replace"), DEFAULT),  # notebook 07's patient
    (Attack(dataset="MNIST", target=7, rate=0.05, mode="add"), Budget(epochs=2, train_limit=20_000)),  # a sweep's
    (Attack(dataset="MNIST", target=7, rate=0.01, mode="add"), DEFAULT),
    (Attack(dataset="MNIST", target=7, rate=0.005, mode="add"), DEFAULT),
    (Attack(dataset="FashionMNIST", target=2, rate=0.01, mode="add"), DEFAULT),
)


def label(result: Result) -> str:
    """A setup in words: ``MNIST → 7, 5 % added, 20,000 images, 2 epochs``."""
    a, mode = result.attack, {"add": "added", "replace": "replaced"}[result.attack.mode]
    epochs = f"{result.budget.epochs} epoch{'s' if result.budget.epochs != 1 else ''}"
    return f"{a.dataset} → {a.target}, {100 * a.rate:g} % {mode}, {result.setup.train_size:,} images, {epochs}"


def original_labels(poisoned: ImageData, clean: ImageData) -> torch.Tensor:
    """Each sample's label before the attack: ``clean``'s, at the position it came from (an added copy has its
    original's)."""
    n = len(clean)
    if len(poisoned) == n:  # replaced in place
        return clean.labels.clone()
    copies = poisoned.source_indices[n:]  # where each added copy came from, in clean's own source numbering
    if clean.source_indices is not None:
        position = torch.full((int(clean.source_indices.max()) + 1,), -1, dtype=torch.long)
        position[clean.source_indices] = torch.arange(n)
        copies = position[copies]
    return torch.cat([clean.labels, clean.labels[copies]])


def alignment(top: torch.Tensor, features: torch.Tensor, is_poison: torch.Tensor) -> float:
    """The absolute cosine between ``top``, a class's top singular vector (what the score projects on:
    ``spectral_scores``'s ``direction``), and the direction from its clean samples' mean to its poisons' mean (what it
    should find): 1 when the signature is the top direction. ``features`` and ``is_poison``: the class's samples."""
    shift = features[is_poison].double().mean(0) - features[~is_poison].double().mean(0)
    return abs(float(top.double() @ shift / shift.norm().clamp(min=1e-12)))


def filter_and_retrain(result: Result, data_root: str | os.PathLike | None = None) -> dict:
    """The published procedure on a finished run: score every class, remove, retrain alike, measure. The clean
    training set is read again from ``data_root`` for the labels the poisons had before the attack."""
    attack, budget, train = result.attack, result.budget, result.setup.train
    clean, _ = load_data(attack.dataset, budget, seed=attack.seed, data_root=data_root)
    poisons = train.poison_indices
    flipped = poisons[original_labels(train, clean)[poisons] != train.labels[poisons]]  # the label changed
    features = D.penultimate_features(result.model, train.images)
    spec = D.spectral_signatures(features, train.labels, len(train.classes), poison_bound=len(poisons))
    precision, recall = D.precision_recall(spec["removed"], flipped)
    cleaned = run(attack, budget, setup=replace(result.setup, train=train.subset(spec["kept"])), progress=False)
    caught = int(torch.isin(flipped, spec["removed"]).sum())
    in_target = torch.nonzero(train.labels == attack.target).flatten()
    # a diagnosis that peeks at the answer: is the poisons' shift the direction the score projects on?
    signature = alignment(spec["direction"][attack.target], features[in_target], torch.isin(in_target, flipped))
    return {
        "setup": label(result), "poisons": len(poisons), "flipped": len(flipped), "train_samples": len(train),
        "target_share": len(flipped) / len(in_target), "alignment": signature,
        "removed": len(spec["removed"]), "kept": len(spec["kept"]), "flipped_left": len(flipped) - caught,
        "precision": precision, "recall": recall,
        "tca_before": result.tca, "asr_before": result.asr, "tca_after": cleaned.tca, "asr_after": cleaned.asr,
    }  # fmt: skip


def study(
    setups: Sequence[tuple[Attack, Budget]] = SETUPS, data_root: str | os.PathLike | None = None, progress: bool = True
) -> list[dict]:
    """``filter_and_retrain`` on every setup, rows in ``setups``' order; the setups that share a budget train
    together, one per worker (``pool.run_all``)."""
    by_budget: dict[Budget, list[int]] = {}
    for i, (_, budget) in enumerate(setups):
        by_budget.setdefault(budget, []).append(i)
    rows: dict[int, dict] = {}
    finish = partial(filter_and_retrain, data_root=data_root)
    for budget, which in by_budget.items():
        attacks = [setups[i][0] for i in which]
        done = run_all(Runs(attacks, budget, data_root=data_root, finish=finish), progress=progress)
        rows.update(zip(which, done, strict=True))
    return [rows[i] for i in range(len(setups))]


def table(rows: Sequence[dict]) -> str:
    """``study``'s rows as a Markdown table (notebook 07, docs/results.md)."""
    lines = [
        "| setup | poisons (label flipped) | their share of the target class | alignment | removed | precision "
        "| recall | TCA before → after | ASR before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setup']} | {r['poisons']:,} ({r['flipped']:,}) | {r['target_share']:.1%} | {r['alignment']:.2f} "
            f"| {r['removed']:,} of {r['train_samples']:,} | {r['precision']:.1%} | {r['recall']:.1%} "
            f"| {r['tca_before']:.1%} → {r['tca_after']:.1%} | {r['asr_before']:.1%} → {r['asr_after']:.1%} |"
        )
    return "\n".join(lines)
