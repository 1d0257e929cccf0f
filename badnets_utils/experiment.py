"""The one experiment pipeline: load → poison → train → evaluate → (save).

An experiment is two small, frozen descriptions:

- ``Attack``: what the attacker does (dataset, trigger and where/how it is stamped, target, how many
  training images are poisoned and how);
- ``Budget``: how the victim trains (epochs, batch size, learning rate, optimiser, loss, device,
  and the optional train/test subset sizes of a quick run).

Every default of a run is written once, in these two classes. The CLI, the notebooks, the poisoning-rate
sweep, the attack variants, the trigger painter, the defences notebook and ``results --retrain`` all call
the functions below; this is the only module that starts training (``train.fit``)::

    attack = Attack(trigger="white", target=1, rate=0.1)
    result = run(attack, Budget(epochs=4))
    result.tca, result.asr
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoints import CheckpointError, checkpoint_name, read_config, run_tag, save_checkpoint
from .data import DATASETS, ImageData, canonical_name, load_splits, random_subset
from .files import check_output_dir, input_path, shown
from .metrics import format_rate
from .models import BadNet, build_model
from .parallel import run_all
from .poison import (
    attack_test_set,
    check_attack,
    check_poison_mode,
    check_target,
    poison_count,
    poison_train_set,
)
from .train import check_loss, check_optimizer, evaluate, fit, load_history, save_history, select_device
from .triggers import BUILTIN_TRIGGERS, load_trigger, make_trigger, random_positions, trigger_position

RANDOM = "random"  # Attack.position: one random place per image


@dataclass(frozen=True)
class Attack:
    """What the attacker does.

    - trigger: a built-in kind (``white``, ``checkerboard``, ``pixel``, ``l_shape``), the path of an image
      file, or a uint8 tensor (C, h, w) — ``trigger_size`` resizes the first two, not a tensor.
    - position: a corner (``bottom-right`` …), a (row, col) offset, or ``"random"`` (one place per image).
    - alpha / mask: pixels become ``(1 - a)·image + a·trigger`` with ``a = alpha·mask``.
    - kind: ``all-to-one`` (every triggered image → ``target``) or ``all-to-all`` (y → y + 1).
    - source: with all-to-one, only images of this class are poisoned and attacked (the paper's single-target
      attack: digit i → j); rate and count then refer to that class's images.
    - rate / count: the share of training images poisoned, or an exact number (count wins when given).
    - mode: ``add`` (the default) appends triggered copies and keeps every clean image, as the paper does (§4.1);
      ``replace`` stamps the chosen images in place, as the popular reimplementations do.
    - name: a label for tables and plots.
    """

    dataset: str = "MNIST"
    trigger: str | Path | torch.Tensor = "white"
    trigger_size: int = 5
    position: str | tuple[int, int] = "bottom-right"
    alpha: float = 1.0
    mask: torch.Tensor | None = field(default=None, compare=False)
    target: int = 1
    kind: str = "all-to-one"
    source: int | None = None
    rate: float | None = 0.1
    count: int | None = None
    mode: str = "add"
    seed: int = 0
    name: str = ""

    def replace(self, **changes) -> Attack:
        """A copy with some fields changed: ``attack.replace(rate=0.01)``."""
        return dataclasses.replace(self, **changes)

    @property
    def label(self) -> str:
        """``name``, or a short description."""
        return self.name or f"{trigger_label(self.trigger)} {self.trigger_size}×{self.trigger_size} → {self.target}"

    def describe(self) -> dict:
        """The settings as plain values (for CSV rows, checkpoints and manifests)."""
        return {
            "dataset": canonical_name(self.dataset), "trigger": trigger_label(self.trigger),
            "trigger_size": self.trigger_size, "position": _position_text(self.position), "alpha": float(self.alpha),
            "trigger_label": self.target, "attack": self.kind, "source": self.source, "poisoning_rate": self.rate,
            "poison_count": self.count, "poison_mode": self.mode, "seed": self.seed,
        }  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """How the victim trains. ``train_limit`` / ``test_limit``: seeded random subsets (quick runs)."""

    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: str = "adam"
    loss: str = "cross"
    device: str = "auto"
    train_limit: int | None = None
    test_limit: int | None = None

    def replace(self, **changes) -> Budget:
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "device"}


@dataclass
class Setup:
    """What one experiment trains and tests on."""

    attack: Attack
    train: ImageData  # the poisoned training set (``poison_indices`` set)
    test: ImageData  # the untouched test set: clean accuracy (TCA)
    test_attack: ImageData  # triggered test images of the non-target classes: attack success rate (ASR)
    trigger: torch.Tensor  # uint8 (C, h, w), as stamped
    train_size: int  # clean training images the poisoned set was built from (copies of ``add`` not counted)

    @property
    def settings(self) -> dict:
        """The attack's settings with the resolved sizes (for reports and checkpoints)."""
        return {**self.attack.describe(), "poison_count": len(self.train.poison_indices),
                "trigger_size": int(self.trigger.shape[-1]), "train_size": self.train_size,
                "test_size": len(self.test)}  # fmt: skip


@dataclass
class Result:
    """A trained model and its scores."""

    attack: Attack
    budget: Budget
    model: BadNet
    history: list[dict]
    tca: float
    asr: float
    clean: dict  # train.evaluate on the clean test set: acc, loss, preds, confusion
    triggered: dict  # the same on the triggered test set
    seconds: float
    setup: Setup

    def row(self) -> dict:
        """Plain values for a table or a CSV: settings, sizes, budget, TCA, ASR, seconds."""
        return {"name": self.attack.label, **self.setup.settings, **self.budget.describe(),
                "tca": self.tca, "asr": self.asr, "seconds": self.seconds}  # fmt: skip


# ----------------------------------------------------------------------------- checks


def trigger_label(trigger) -> str:
    """A short name for a trigger: the kind, the file's stem without ``trigger_``, or ``custom``."""
    if isinstance(trigger, torch.Tensor):
        return "custom"
    return Path(str(trigger)).stem.replace("trigger_", "")


def _position_text(position) -> str:
    return position if isinstance(position, str) else f"({position[0]}, {position[1]})"


def whole(value, what: str):
    """The one rule for whole-number settings: any integer type (NumPy's too), never a bool or a fraction."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value  # left as it is: the caller's range check names it


def _real(value):
    """Any real number type (NumPy's too) as a float; anything else is left for the caller's check. A NumPy float
    is read as the decimal it prints as (``np.float32(0.29)`` is 0.29, as ``poison_count`` reads it), and -0.0 is 0.0
    (one cache key for one run)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(str(value) if isinstance(value, np.floating) else value) + 0.0
    return value


def _check_tensor_trigger(trigger: torch.Tensor, name: str) -> None:
    """A tensor trigger is uint8 (h, w) or (C, h, w), C 1 or the dataset's channels, 1 ≤ h, w ≤ the image's."""
    c, h, w = DATASETS[name]["shape"]
    shape = tuple(trigger.shape)
    ok = trigger.dtype == torch.uint8 and trigger.dim() in (2, 3)
    if ok:
        th, tw = shape[-2:]
        ok = (trigger.dim() == 2 or shape[0] in (1, c)) and 1 <= th <= h and 1 <= tw <= w
    if not ok:
        channels = f"{'1 or ' if c == 3 else ''}{c}"
        raise ValueError(f"trigger tensor {trigger.dtype} {shape} does not fit a {h}×{w} {name} image; allowed: "
                         f"uint8 (h, w) or ({channels}, h, w) with 1 ≤ h ≤ {h}, 1 ≤ w ≤ {w}")  # fmt: skip


def check_attack_settings(attack: Attack) -> Attack:
    """Every field checked before data is loaded; returns the attack with the canonical dataset name (and NumPy
    numbers as Python's)."""
    attack = attack.replace(**{k: whole(getattr(attack, k), k) for k in ("target", "source", "count", "seed",
                                                                           "trigger_size")},
                            alpha=_real(attack.alpha), rate=_real(attack.rate))  # fmt: skip
    if isinstance(attack.position, tuple):
        position = tuple(whole(v, "position") for v in attack.position)
        if len(position) != 2 or not all(isinstance(v, int) for v in position):
            raise ValueError(f"trigger position {attack.position!r}; allowed: a corner name, 'random' or a (row, col) "
                             "pair of whole numbers")  # fmt: skip
        attack = attack.replace(position=position)
    name = canonical_name(attack.dataset)
    k = len(DATASETS[name]["classes"])
    check_attack(attack.kind)
    check_target(attack.target, k)
    check_poison_mode(attack.mode)
    if attack.source is not None:
        check_target(attack.source, k)
        if attack.kind != "all-to-one" or attack.source == attack.target:
            raise ValueError(f"source class {attack.source!r} needs the all-to-one attack and another target class")
    if attack.count is None:
        poison_count(1, attack.rate)  # a rate outside [0, 1] is refused here
    elif isinstance(attack.count, bool) or not isinstance(attack.count, int) or attack.count < 0:
        raise ValueError(f"poison count {attack.count!r} must be a whole number ≥ 0")
    if not 0.0 <= float(attack.alpha) <= 1.0:
        raise ValueError(f"alpha {attack.alpha!r} is outside [0, 1]")
    if isinstance(attack.seed, bool) or not isinstance(attack.seed, int) or not 0 <= attack.seed < 2**63:
        raise ValueError(f"--seed {attack.seed!r} is outside the seeds a generator takes; allowed: 0..{2**63 - 1}")
    _, h, w = DATASETS[name]["shape"]
    if isinstance(attack.trigger, torch.Tensor):
        _check_tensor_trigger(attack.trigger, name)
    else:
        if not (isinstance(attack.trigger, str) and attack.trigger in BUILTIN_TRIGGERS):
            input_path(attack.trigger, "trigger file", missing_ok=True)  # a missing one: load_trigger's message
        size = attack.trigger_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
            raise ValueError(f"trigger size {size!r} does not fit a {h}×{w} {name} image; allowed: 1..{min(h, w)}")
    return attack.replace(dataset=name)


def check_budget(budget: Budget) -> Budget:
    """Every field checked before data is loaded; returns the budget with NumPy numbers as Python's."""
    budget = budget.replace(
        lr=_real(budget.lr),
        **{k: whole(getattr(budget, k), k) for k in ("epochs", "batch_size", "train_limit", "test_limit")},
    )
    for key in ("epochs", "batch_size"):
        v = getattr(budget, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} {v!r} must be a whole number ≥ 1")
    if not isinstance(budget.lr, (int, float)) or not 0 < budget.lr < float("inf"):
        raise ValueError(f"learning rate {budget.lr!r} must be a finite positive number, e.g. 0.001")
    check_loss(budget.loss)
    check_optimizer(budget.optimizer)
    for key in ("train_limit", "test_limit"):
        v = getattr(budget, key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{key} {v!r} must be a whole number ≥ 1 (or None for the whole set)")
    select_device(budget.device)
    return budget


# ----------------------------------------------------------------------------- load and poison


def build_trigger(attack: Attack) -> torch.Tensor:
    """The attack's trigger as uint8 (C, h, w) for its dataset."""
    channels = DATASETS[canonical_name(attack.dataset)]["shape"][0]
    t = attack.trigger
    if isinstance(t, torch.Tensor):
        if t.dim() == 2:
            t = t[None]
        if t.shape[0] == 1 and channels == 3:
            t = t.expand(3, -1, -1).clone()
        return t
    if isinstance(t, str) and t in BUILTIN_TRIGGERS:
        return make_trigger(t, attack.trigger_size, channels)
    return load_trigger(t, attack.trigger_size, channels)


def load_data(
    dataset: str,
    budget: Budget = Budget(),
    seed: int = 0,
    data_root: str | Path | None = None,
    download: bool = False,
) -> tuple[ImageData, ImageData]:
    """The (train, test) splits, cut to the budget's limits with seeded subsets (load once, reuse for many runs)."""
    train, test = load_splits(canonical_name(dataset), data_root, download)
    return random_subset(train, budget.train_limit, seed), random_subset(test, budget.test_limit, seed + 1)


def _positions(attack: Attack, trigger: torch.Tensor, data: ImageData, seed: int):
    if isinstance(attack.position, str) and attack.position == RANDOM:
        return random_positions(len(data), data.images.shape[-2:], trigger.shape[-2:], seed)
    return attack.position


def prepare(
    attack: Attack = Attack(),
    budget: Budget = Budget(),
    data: tuple[ImageData, ImageData] | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
) -> Setup:
    """Check the settings, load the data (unless ``data`` gives it), build the trigger and the poisoned sets."""
    attack = check_attack_settings(attack)
    budget = check_budget(budget)
    trigger = build_trigger(attack)
    _, h, w = DATASETS[attack.dataset]["shape"]
    if attack.position != RANDOM:
        trigger_position((h, w), tuple(trigger.shape[-2:]), attack.position)  # fails before loading data
    train, test = data if data is not None else load_data(attack.dataset, budget, attack.seed, data_root, download)
    poisoned = poison_train_set(
        train, trigger, attack.rate, attack.target, attack.kind, attack.seed, attack.count,
        _positions(attack, trigger, train, attack.seed), attack.alpha, attack.mask, mode=attack.mode,
        source=attack.source,
    )  # fmt: skip
    triggered = attack_test_set(
        test, trigger, attack.target, attack.kind, _positions(attack, trigger, test, attack.seed + 1),
        attack.alpha, attack.mask, source=attack.source,
    )  # fmt: skip
    return Setup(attack, poisoned, test, triggered, trigger, len(train))


# ----------------------------------------------------------------------------- train and evaluate


def train(
    setup: Setup,
    budget: Budget = Budget(),
    model: BadNet | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    final: dict | None = None,
) -> tuple[BadNet, list[dict]]:
    """Train a fresh BadNet (seeded by the attack's seed), or go on training ``model``; returns (model, history).
    ``final``: as in ``train.fit`` (the last epoch's whole evaluations)."""
    check_budget(budget)
    seed = setup.attack.seed
    if model is None:
        torch.manual_seed(seed)
        model = build_model(setup.attack.dataset, setup.train.num_classes)
    return model, _fit(model, setup.train, budget, seed, progress, setup.test, setup.test_attack, on_epoch, final)


def _fit(model, data, budget: Budget, seed: int, progress: bool, test=None, test_attack=None, on_epoch=None,
         final=None):  # fmt: skip
    """The one call of ``train.fit``: every training in the package goes through here."""
    return fit(
        model, data, test, test_attack, epochs=budget.epochs, batch_size=budget.batch_size, lr=budget.lr,
        loss=budget.loss, optimizer=budget.optimizer, device=select_device(budget.device), seed=seed,
        progress=progress, on_epoch=on_epoch, final=final,
    )  # fmt: skip


def fine_tune(
    model: BadNet, data: ImageData, budget: Budget, seed: int = 0, progress: bool = False
) -> tuple[BadNet, list[dict]]:
    """Go on training ``model`` on clean ``data`` (a defender's fine-tuning); returns (model, history)."""
    check_budget(budget)
    return model, _fit(model, data, budget, seed, progress)


def transfer(
    model: BadNet, setup: Setup, budget: Budget, seed: int = 0, progress: bool = False
) -> tuple[BadNet, list[dict]]:
    """Transfer learning as a user adapting a downloaded model does: a copy of ``model`` keeps its convolutional
    layers (frozen); its fully connected layers start afresh (seeded) and train on ``setup.train``."""
    check_budget(budget)
    new = copy.deepcopy(model)
    for p in [*new.conv1.parameters(), *new.conv2.parameters()]:
        p.requires_grad_(False)
    torch.manual_seed(seed)
    for layer in (new.fc1[0], new.fc2):
        layer.reset_parameters()
    return new, _fit(new, setup.train, budget, seed, progress, setup.test, setup.test_attack)


def final_metrics(model: BadNet, setup: Setup, loss: str = "cross") -> dict:
    """TCA and ASR with predictions and confusion matrices on both test sets."""
    clean = evaluate(model, setup.test, loss)
    triggered = evaluate(model, setup.test_attack, loss)
    return {"tca": clean["acc"], "asr": triggered["acc"], "clean": clean, "attack": triggered}


def run(
    attack: Attack = Attack(),
    budget: Budget = Budget(),
    data: tuple[ImageData, ImageData] | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    setup: Setup | None = None,
) -> Result:
    """The whole pipeline: prepare (unless ``setup`` is given), train a fresh BadNet, evaluate."""
    start = time.perf_counter()
    setup = setup or prepare(attack, budget, data, data_root, download)
    last: dict = {}  # the last epoch's evaluations: the finished model's, not computed twice
    model, history = train(setup, budget, progress=progress, on_epoch=on_epoch, final=last)
    clean, attacked = last["clean"], last["attack"]
    seconds = time.perf_counter() - start
    return Result(setup.attack, budget, model, history, clean["acc"], attacked["acc"], clean, attacked, seconds, setup)


def run_many(
    attacks: Iterable[Attack],
    budget: Budget = Budget(),
    data: tuple[ImageData, ImageData] | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
    on_result: Callable[[Result], None] | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: bool = True,
) -> list[Result]:
    """One run per attack, results in the attacks' order (a sweep or a table of variants is this call).

    ``workers``: None = one worker process per usable core, 1 = one after another in this process, N = N worker
    processes; ``executor`` (any ``concurrent.futures.Executor``, e.g. Dask's ``client.get_executor()``) overrides
    it. Each worker loads the data once (or receives ``data``); every run trains with one thread wherever it runs,
    so all of these give the same models to the last bit. ``on_result`` is called in this process as each run
    finishes; a run that fails (or whose worker dies) does not stop the others: ``parallel.RunsFailedError`` at the end.
    """
    attacks = [check_attack_settings(a) for a in attacks]
    check_budget(budget)
    return run_all(run, load_data, attacks, budget, data, data_root, download, on_result, workers, executor,
                   progress=progress)  # fmt: skip


# ----------------------------------------------------------------------------- save


def output_paths(attack: Attack, output_dir: str | Path, name: str | None = None) -> tuple[Path, Path]:
    """(checkpoint, log) paths of a run under ``output_dir``: checkpoints/<name>.pth and logs/<dataset>_<tag>.csv
    (``name`` overrides the checkpoint's file name; its log is then logs/<name without .pth>.csv)."""
    out = Path(output_dir)
    dataset = canonical_name(attack.dataset)
    rate = attack.rate if attack.count is None else attack.count
    if name is not None:
        return out / "checkpoints" / name, out / "logs" / f"{Path(name).stem}.csv"
    ckpt = out / "checkpoints" / checkpoint_name(dataset, attack.kind, rate)
    log = out / "logs" / f"{dataset}_{run_tag(attack.kind, attack.target, rate)}.csv"
    return ckpt, log


def check_output(attack: Attack, output_dir: str | Path) -> tuple[Path, Path]:
    """Before training: the output folder is usable and the run would not overwrite a shipped file."""
    ckpt, log = output_paths(attack, output_dir)
    check_output_dir(output_dir, targets=[ckpt.relative_to(output_dir), log.relative_to(output_dir)])
    return ckpt, log


def saved_model_note(path: str | Path) -> str | None:
    """What a save to ``path`` would replace, in words, for the notice before it is replaced (the CLI, notebook 03):
    ``a model saved 2026-12-07 14:03 (TCA 0.9929, ASR 1.0000, 4 epochs)``; None when nothing is there. Only the
    checkpoint's config is read (``checkpoints.read_config``: bounded, no weights loaded)."""
    path = Path(path)
    try:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"a file that cannot be read ({err.strerror or type(err).__name__})"
    try:
        config = read_config(path)
    except CheckpointError:
        return f"a file saved {saved} that is not a readable checkpoint"
    facts = [f"{label} {format_rate(config[key])}" for key, label in (("tca", "TCA"), ("asr", "ASR"))
             if isinstance(config.get(key), (int, float)) and not isinstance(config[key], bool)]  # fmt: skip
    if isinstance(config.get("epochs"), int) and not isinstance(config["epochs"], bool):
        facts.append(f"{config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}")
    return f"a model saved {saved}" + (f" ({', '.join(facts)})" if facts else "")


class SaveError(ValueError):
    """A trained run could not be written at the end: the message names where its model was kept."""


def _keep_model(result: Result, ckpt: Path, run_id: str, info: dict) -> str:
    """Save the model where a failed save can still put it: the temporary folder; returns where (or why not)."""
    fallback = Path(tempfile.gettempdir()) / f"badnets-{run_id}-{ckpt.name}"
    try:
        return str(save_checkpoint(result.model, fallback, result.attack.dataset, **info))
    except (OSError, ValueError) as err:
        return f"nowhere: {shown(fallback)} failed too ({getattr(err, 'strerror', None) or err})"


def save_run(result: Result, output_dir: str | Path, name: str | None = None) -> tuple[Path, Path]:
    """Write the checkpoint (its settings, budget, scores, epoch history, its own name and a run id), then the epoch
    log with the same run id; returns both paths. A log left from an earlier run (a kill between the two writes) is
    rewritten from its checkpoint by ``repair_logs``, which every save runs first.

    Both or neither: when a write fails (a full or read-only disk...), what this call wrote is removed, the model is
    kept in the temporary folder and a one-line SaveError says where."""
    ckpt, log = output_paths(result.attack, output_dir, name)
    repair_logs(output_dir)
    run_id = uuid.uuid4().hex[:12]
    info = {k: v for k, v in result.setup.settings.items() if k != "dataset"}
    info.update(epochs=int(result.budget.epochs), tca=round(result.tca, 6), asr=round(result.asr, 6), run_id=run_id,
                log=log.name, checkpoint=ckpt.name,
                history=[{k: float(v) for k, v in row.items()} for row in result.history])  # fmt: skip
    target = ckpt
    try:
        save_checkpoint(result.model, ckpt, result.attack.dataset, **info)
        target = log
        save_history(result.history, log, run_id)
    except OSError as err:
        if target == log:
            _remove_if_ours(ckpt, run_id)
        kept = _keep_model(result, ckpt, run_id, info)
        reason = err.strerror or type(err).__name__
        raise SaveError(f"cannot write {shown(target)} ({reason}): nothing of this run is left in {shown(output_dir)};"
                        f" the trained model is kept in {kept}") from None  # fmt: skip
    return ckpt, log


def _remove_if_ours(path: Path, run_id: str) -> None:
    """Delete ``path`` only when it is the checkpoint this run wrote (its run id), never another file."""
    try:
        if read_config(path).get("run_id") == run_id:
            os.unlink(path)
    except (OSError, CheckpointError):
        pass


def repair_logs(output_dir: str | Path) -> list[Path]:
    """Rewrite a log under ``output_dir/logs`` that does not belong to its checkpoint (by run id) from the history
    stored in the checkpoint; returns the logs rewritten.

    Only a pair a run wrote is repaired: a checkpoint that records its own file name (a renamed or backup copy does
    not) and a run id. Checkpoints are read through ``checkpoints.read_config``: within its memory bound, no weights
    loaded."""
    fixed = []
    for ckpt in sorted((Path(output_dir) / "checkpoints").glob("*.pth")):
        try:
            config = read_config(ckpt)
        except CheckpointError:  # not ours, or unreadable: nothing to repair
            continue
        run_id, history, log_name = config.get("run_id"), config.get("history"), config.get("log")
        if not run_id or not isinstance(history, list) or config.get("checkpoint") != ckpt.name:
            continue
        if not isinstance(log_name, str) or Path(log_name).name != log_name:
            continue
        log = ckpt.parent.parent / "logs" / log_name
        try:
            current = load_history(log)
        except (OSError, ValueError, KeyError):
            current = []
        if not current or current[0].get("run_id") != run_id:
            try:
                save_history([{**row, "epoch": int(row["epoch"])} for row in history], log, run_id)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # best effort: this run's own save reports its own failures
            fixed.append(log)
    return fixed
