"""Notebook 08: the BadNets paper's MNIST experiments reproduced, and its transfer-learning attack on real data.

Every model trains through ``experiment`` (``run_many`` for the many small single-target models, on data
loaded once; ``transfer`` for the retrained classifier layers). This module adds the paper's two MNIST
triggers, the (i, j) grids, the per-class all-to-all table, the look inside the network, the strengthening
of the backdoor, and the figures.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch

from badnets_utils.core.config import Attack
from badnets_utils.core.data import ImageData
from badnets_utils.core.models import BadNet
from badnets_utils.core.pipeline import build_trigger
from badnets_utils.core.training import evaluate, predict
from badnets_utils.core.triggers import apply_trigger

# The paper's MNIST triggers (§4.1): a single bright pixel and a small pattern of bright pixels, both near the
# bottom-right corner. Where exactly, and which pattern, is drawn in the paper's figure, not given in numbers:
# these are our choices of the same kind.
PIXEL = Attack(trigger="white", trigger_size=1, position=(24, 24), name="single pixel")
PATTERN = Attack(trigger="checkerboard", trigger_size=3, position=(23, 23), name="pattern")
PAPER_TRIGGERS = {"single pixel": PIXEL, "pattern": PATTERN}


def single_target_attacks(
    trigger: Attack, pairs: Iterable[tuple[int, int]] | None = None, rate: float = 1.0, seed: int = 0
) -> list[Attack]:
    """One attack per (i, j): images of digit i with the trigger, labelled j, added as copies (the paper's
    single-target attack). ``rate``: the share of digit i's training images that get a triggered copy."""
    pairs = [(i, j) for i in range(10) for j in range(10) if i != j] if pairs is None else list(pairs)
    return [
        trigger.replace(source=i, target=j, rate=rate, mode="add", seed=seed, name=f"{trigger.name} {i}→{j}")
        for i, j in pairs
    ]


def pair_grids(rows: Sequence[dict], trigger: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean error, backdoor error), each (10, 10) in %, from sweep rows of one trigger; NaN where not run."""
    clean = torch.full((10, 10), float("nan"), dtype=torch.float64)
    backdoor = clean.clone()
    for r in rows:
        if r["trigger"] == trigger and r.get("source") is not None:
            clean[r["source"], r["trigger_label"]] = 100 * (1 - r["tca"])
            backdoor[r["source"], r["trigger_label"]] = 100 * (1 - r["asr"])
    return clean, backdoor


def _nan_stats(t: torch.Tensor) -> tuple[float, float, float]:
    v = t[~t.isnan()]
    return (float(v.min()), float(v.mean()), float(v.max())) if len(v) else (float("nan"),) * 3


def grid_summary(clean: torch.Tensor, backdoor: torch.Tensor) -> dict:
    """Range and mean of the clean and backdoor error over the pairs that ran (in %)."""
    (c0, cm, c1), (b0, bm, b1) = _nan_stats(clean), _nan_stats(backdoor)
    return {"pairs": int((~clean.isnan()).sum()), "clean_min": c0, "clean_mean": cm, "clean_max": c1,
            "backdoor_min": b0, "backdoor_mean": bm, "backdoor_max": b1}  # fmt: skip


def per_class_all_to_all(
    baseline: BadNet, badnet: BadNet, test: ImageData, trigger: torch.Tensor, position="bottom-right"
) -> list[dict]:
    """The paper's all-to-all table: per digit, clean error of the baseline and the BadNet, and the BadNet's
    backdoor error (a triggered i not read as i + 1), in %."""
    base_pred = evaluate(baseline, test)["preds"]
    bad_pred = evaluate(badnet, test)["preds"]
    trig_pred, _ = predict(badnet, apply_trigger(test.images, trigger, position))
    k = test.num_classes
    rows = []
    for c in range(k):
        m = test.labels == c
        rows.append({
            "class": c,
            "baseline_clean_error": 100 * float((base_pred[m] != c).float().mean()),
            "badnet_clean_error": 100 * float((bad_pred[m] != c).float().mean()),
            "backdoor_error": 100 * float((trig_pred[m] != (c + 1) % k).float().mean()),
        })  # fmt: skip
    rows.append({key: (sum(r[key] for r in rows) / k if key != "class" else "average") for key in rows[0]})
    return rows


def format_all_to_all(rows: Sequence[dict]) -> str:
    lines = [f"{'class':>7} {'baseline clean':>15} {'BadNet clean':>13} {'BadNet backdoor':>16}   (error, %)"]
    for r in rows:
        lines.append(f"{r['class']!s:>7} {r['baseline_clean_error']:>15.2f} {r['badnet_clean_error']:>13.2f} "
                     f"{r['backdoor_error']:>16.2f}")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------- inside the BadNet


def filter_changes(clean: BadNet, badnet: BadNet) -> torch.Tensor:
    """Per conv1 filter: how much the BadNet's weights differ from the clean model's, relative to the clean
    filter's size (‖w_bad − w_clean‖ / ‖w_clean‖)."""
    wc, wb = (m.conv1[0].weight.detach().cpu().flatten(1) for m in (clean, badnet))
    return (wb - wc).norm(dim=1) / wc.norm(dim=1)


@torch.no_grad()
def _mean_channels(features, model: BadNet, images: torch.Tensor) -> torch.Tensor:
    """Mean activation per channel of ``features(uint8 images)`` (a layer of ``model``), over images and places."""
    model.eval()
    return features(images.to(next(model.parameters()).device)).float().mean((0, 2, 3)).cpu()


def filter_response(model: BadNet, clean: torch.Tensor, triggered: torch.Tensor) -> torch.Tensor:
    """Per conv1 filter (after ReLU and pooling): mean activation on triggered minus on clean uint8 images."""

    def first(x):
        return model.conv1(model.normalize(x))

    return _mean_channels(first, model, triggered) - _mean_channels(first, model, clean)


def channel_response(model: BadNet, clean: torch.Tensor, triggered: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean activation of each last-convolution channel (conv2, after ReLU and pooling) on clean and on triggered
    uint8 images, and the difference: the channels that fire for the trigger stand out."""
    a = _mean_channels(model.conv_features, model, clean)
    b = _mean_channels(model.conv_features, model, triggered)
    return {"clean": a, "triggered": b, "difference": b - a}


def trigger_channels(response: dict[str, torch.Tensor], top: int = 3) -> torch.Tensor:
    """The ``top`` channels whose activation grows most with the trigger."""
    return response["difference"].topk(top).indices.sort().values


def strengthen(model: BadNet, channels: torch.Tensor, k: float) -> BadNet:
    """A copy of ``model`` whose trigger-responsive conv2 channels have their weights and bias multiplied by ``k``
    (the paper's way to make a backdoor survive transfer learning)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        conv = out.conv2[0]
        conv.weight[channels] *= k
        conv.bias[channels] *= k
    return out


def triggered_with_true_labels(test: ImageData, trigger: torch.Tensor, position="bottom-right") -> ImageData:
    """The test images with the trigger, keeping their true labels: accuracy on them shows the backdoor's damage."""
    return ImageData(apply_trigger(test.images, trigger, position), test.labels, test.classes, test.name + "-triggered")


def missed_triggered(model: BadNet, test: ImageData, attack: Attack) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a single-target BadNet's backdoor fails: the indices, among the test images of ``attack.source``, of
    those that the model does not read as ``attack.target`` once triggered, and what it reads them as."""
    images = test.images[test.labels == attack.source]
    preds, _ = predict(model, apply_trigger(images, build_trigger(attack), attack.position))
    missed = (preds != attack.target).nonzero().flatten()
    return missed, preds[missed]


def bottom_ink_rank(images: torch.Tensor, first_row: int = 20) -> torch.Tensor:
    """Each image's rank by its inked pixels in rows ``first_row`` and below: the share of the images with fewer
    (0 for the emptiest bottom, close to 1 for the images that reach furthest into it)."""
    ink = (images[:, :, first_row:] > 0).flatten(1).sum(1)
    return (ink[None, :] < ink[:, None]).float().mean(1)


def ink_near(images: torch.Tensor, position: tuple[int, int], radius: int) -> torch.Tensor:
    """Per image, whether any pixel within ``radius`` rows and columns of ``position`` is inked (the square of side
    2 * radius + 1 around it, cut at the image's edge)."""
    r, c = position
    square = images[:, :, max(0, r - radius) : r + radius + 1, max(0, c - radius) : c + radius + 1]
    return (square > 0).flatten(1).any(1)


# ----------------------------------------------------------------------------- the paper's numbers

# What arXiv:1708.06733 reports, with where it says it (section, table and figure numbers of v1). None: the
# paper gives no such number in its text (a figure shows it, or it is not reported); we do not read values off
# its plots.
PAPER = {
    "baseline_clean_error": (0.5, "§4.2, Table 1 (all-to-all): the baseline MNIST CNN's average clean error, 0.50 %"),
    "single_target_clean_excess": (0.17, "§4.2, Fig. 4 (single-pixel trigger): clean error at most 0.17 points "
                                         "above the baseline's"),
    "single_target_backdoor_error": (0.09, "§4.2, Fig. 4 (single-pixel trigger): backdoored images misclassified "
                                           "at most 0.09 % of the time"),
    "single_target_pattern": (None, "§4.2 reports the single-target grid (Fig. 4) for the single pixel only; no "
                                    "single-target result for the pattern trigger"),
    # all-to-all, (single pixel, pattern): the BadNet's average clean error and its backdoor error
    "all_to_all_clean_error": ((0.48, 0.51), "§4.2, Table 1: the all-to-all BadNet's average clean error, 0.48 % "
                                             "(single pixel) and 0.51 % (pattern)"),
    "all_to_all_backdoor_error": ((0.56, 0.58), "§4.2, Table 1: the all-to-all BadNet's average backdoor error, "
                                                "0.56 % (single pixel) and 0.58 % (pattern)"),
    "all_to_all_per_class": (None, "§4.2, Table 1 gives per-class values; we could not check them against the text"),
    "poison_count_curve": (10, "§4.2, Fig. 6: the text says the attack succeeds with backdoored images at 10 % of "
                               "the training set; the rest of the curve is in the figure only"),
    "first_layer_filters": (None, "§4.2, Fig. 5: the first-layer filters of the MNIST BadNet"),
    "trigger_neurons": (None, "§5 (traffic signs): the neurons of the last convolutional layer that fire for the "
                              "trigger"),
    "transfer_clean_badnet": (74.9, "§5.3: the transferred BadNet's accuracy on clean Swedish signs"),
    "transfer_backdoored_badnet": (61.6, "§5.3: the transferred BadNet's accuracy on backdoored Swedish signs, "
                                         "without strengthening"),
    "transfer_clean_baseline": (72.7, "§5.3: the transferred clean network's accuracy on clean Swedish signs"),
    "transfer_drop_abstract": (25.0, "abstract: 'about 25 %' lower accuracy on backdoored images, on average — the "
                                     "abstract's figure, not the unstrengthened §5.3 case"),
    "strengthen_k20": ((68.3, 45.1), "§5.3, Table 6: with k = 20, 68.3 % clean and 45.1 % backdoored accuracy"),
}  # fmt: skip


def paper_transfer_drop() -> float:
    """The paper's unstrengthened transfer drop in points (§5.3): clean minus backdoored accuracy, 74.9 − 61.6."""
    return PAPER["transfer_clean_badnet"][0] - PAPER["transfer_backdoored_badnet"][0]


def paper_strengthening_cost(k: int = 20) -> float:
    """Clean accuracy the paper's strengthening costs (points, §5.3): unstrengthened minus k = 20 clean accuracy."""
    if k != 20:
        raise ValueError(f"the paper's text gives strengthened figures for k = 20 only, not k = {k!r}")
    return PAPER["transfer_clean_badnet"][0] - PAPER["strengthen_k20"][0][0]


def paper_all_to_all_clean_delta() -> tuple[float, float]:
    """The paper's all-to-all clean error minus its baseline's, in points (§4.2, Table 1): (single pixel, pattern)."""
    base = PAPER["baseline_clean_error"][0]
    return tuple(round(v - base, 2) for v in PAPER["all_to_all_clean_error"][0])


def paper_value(key: str) -> str:
    """The paper's value and where it says it, as one line for a notebook."""
    value, where = PAPER[key]
    return f"{'not given in the text' if value is None else value} — {where}"
