"""The one experiment pipeline: load → poison → train → evaluate → (save).

An experiment is two small, frozen descriptions:

- ``Attack``: what the attacker does (dataset, trigger and where/how it is stamped, target, how many
  training images are poisoned and how);
- ``Budget``: how the victim trains (epochs, batch size, learning rate, optimiser, loss, device,
  and the optional train/test subset sizes of a quick run).

Every default of a run is written once, in these two classes. The CLI, the notebooks, the poisoning-rate
sweep, the attack variants, the trigger painter, the defences notebook and ``results --retrain`` all call
the functions below; this is the only module that starts training (``training.fit``)::

    attack = Attack(trigger="white", target=1, rate=0.1)
    result = run(attack, Budget(epochs=4))
    result.tca, result.asr
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from badnets_utils._io.checkpoint_files import CheckpointError, read_config
from badnets_utils._io.files import check_output_dir, shown
from badnets_utils.core.checkpoints import checkpoint_name, run_tag, save_checkpoint
from badnets_utils.core.config import RANDOM, Attack, Budget
from badnets_utils.core.data import DATASETS, ImageData, canonical_name, load_splits, random_subset
from badnets_utils.core.metrics import format_rate
from badnets_utils.core.models import BadNet, build_model
from badnets_utils.core.poison import attack_test_set, poison_train_set
from badnets_utils.core.training import evaluate, fit, load_history, save_history
from badnets_utils.core.triggers import BUILTIN_TRIGGERS, load_trigger, make_trigger, stamp_sha256, trigger_position


@dataclass
class Prepared:
    """What one experiment trains and tests on: what ``prepare`` returns."""

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
    setup: Prepared

    def row(self) -> dict:
        """Plain values for a table or a CSV: settings, sizes, budget, TCA, ASR, seconds."""
        return {"name": self.attack.label, **self.setup.settings, **self.budget.describe(),
                "tca": self.tca, "asr": self.asr, "seconds": self.seconds}  # fmt: skip


# ----------------------------------------------------------------------------- load and poison


def build_trigger(attack: Attack) -> torch.Tensor:
    """The attack's trigger as uint8 (C, h, w) for its dataset."""
    channels = DATASETS[attack.dataset]["shape"][0]
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


def placed_trigger(attack: Attack) -> torch.Tensor:
    """``build_trigger``, checked to fit where the attack stamps it (a bad file or place: one line, no data loaded)."""
    trigger = build_trigger(attack)
    _, h, w = DATASETS[attack.dataset]["shape"]
    if attack.position != RANDOM:
        trigger_position((h, w), tuple(trigger.shape[-2:]), attack.position)
    return trigger


def trigger_sha256(attack: Attack) -> str:
    """The SHA-256 of the attack's trigger as stamped (``triggers.stamp_sha256``: its pixels, and its mask): what
    a sweep keys a run's trigger on (beside its name), so that two files of one name are two triggers."""
    return stamp_sha256(placed_trigger(attack), attack.mask)


def check_trainable(train: ImageData) -> None:
    """A training set holds at least one image (an empty one is refused in one line, before a model is built)."""
    if len(train) == 0:
        named = f" {train.name}" if train.name else ""
        raise ValueError(f"the training set{named} holds no images; allowed: at least one image (are the dataset's "
                         "files empty?)")  # fmt: skip


def load_data(
    dataset: str,
    budget: Budget = Budget(),
    seed: int = Attack.seed,
    data_root: str | Path | None = None,
    download: bool = False,
) -> tuple[ImageData, ImageData]:
    """The (train, test) splits, cut to the budget's limits with seeded subsets (load once, reuse for many runs)."""
    train, test = load_splits(canonical_name(dataset), data_root, download)
    return random_subset(train, budget.train_limit, seed), random_subset(test, budget.test_limit, seed + 1)


def prepare(
    attack: Attack = Attack(),
    budget: Budget = Budget(),
    data: tuple[ImageData, ImageData] | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
) -> Prepared:
    """Check the settings, load the data (unless ``data`` gives it), build the trigger and the poisoned sets."""
    trigger = placed_trigger(attack)  # fails before loading data
    train, test = data if data is not None else load_data(attack.dataset, budget, attack.seed, data_root, download)
    check_trainable(train)
    poisoned = poison_train_set(train, trigger, attack)
    triggered = attack_test_set(test, trigger, attack)
    return Prepared(attack, poisoned, test, triggered, trigger, len(train))


# ----------------------------------------------------------------------------- train and evaluate


def train(
    setup: Prepared,
    budget: Budget = Budget(),
    model: BadNet | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    final: dict | None = None,
) -> tuple[BadNet, list[dict]]:
    """Train a fresh BadNet (seeded by the attack's seed), or go on training ``model``; returns (model, history).
    ``final``: as in ``training.fit`` (the last epoch's whole evaluations)."""
    seed = setup.attack.seed
    if model is None:
        torch.manual_seed(seed)
        model = build_model(setup.attack.dataset, setup.train.num_classes)
    tests = (setup.test, setup.test_attack)
    return model, _fit(model, setup.train, budget, seed, tests, progress=progress, on_epoch=on_epoch, final=final)


def _fit(model, data, budget: Budget, seed: int, tests=(None, None), **hooks):
    """The one call of ``training.fit``: every training in the package goes through here."""
    check_trainable(data)
    return fit(model, data, budget, seed=seed, tests=tests, **hooks)


def fine_tune(
    model: BadNet, data: ImageData, budget: Budget, seed: int = Attack.seed, progress: bool = False
) -> tuple[BadNet, list[dict]]:
    """Go on training ``model`` on clean ``data`` (a defender's fine-tuning); returns (model, history)."""
    return model, _fit(model, data, budget, seed, progress=progress)


def transfer(
    model: BadNet, setup: Prepared, budget: Budget, seed: int = Attack.seed, progress: bool = False
) -> tuple[BadNet, list[dict]]:
    """Transfer learning as a user adapting a downloaded model does: a copy of ``model`` keeps its convolutional
    layers (frozen); its fully connected layers start afresh (seeded) and train on ``setup.train``."""
    new = copy.deepcopy(model)
    for p in [*new.conv1.parameters(), *new.conv2.parameters()]:
        p.requires_grad_(False)
    torch.manual_seed(seed)
    for layer in (new.fc1[0], new.fc2):
        layer.reset_parameters()
    return new, _fit(new, setup.train, budget, seed, (setup.test, setup.test_attack), progress=progress)


def final_metrics(model: BadNet, setup: Prepared, loss: str = Budget.loss) -> dict:
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
    setup: Prepared | None = None,
) -> Result:
    """The whole pipeline: prepare (unless ``setup`` is given), train a fresh BadNet, evaluate."""
    start = time.perf_counter()
    setup = setup or prepare(attack, budget, data, data_root, download)
    last: dict = {}  # the last epoch's evaluations: the finished model's, not computed twice
    model, history = train(setup, budget, progress=progress, on_epoch=on_epoch, final=last)
    clean, attacked = last["clean"], last["attack"]
    seconds = time.perf_counter() - start
    return Result(setup.attack, budget, model, history, clean["acc"], attacked["acc"], clean, attacked, seconds, setup)


# ----------------------------------------------------------------------------- save


def output_paths(attack: Attack, output_dir: str | Path, name: str | None = None) -> tuple[Path, Path]:
    """(checkpoint, log) paths of a run under ``output_dir``: checkpoints/<name>.pth and logs/<dataset>_<tag>.csv
    (``name`` overrides the checkpoint's file name; its log is then logs/<name without .pth>.csv)."""
    out = Path(output_dir)
    dataset = attack.dataset  # canonical: the Attack made it so
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
