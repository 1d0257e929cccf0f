"""Property-based tests (hypothesis) of apply_trigger, load_trigger/save_trigger and load_checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from badnets_utils._io.checkpoint_files import CheckpointError
from badnets_utils.core.checkpoints import load_checkpoint
from badnets_utils.core.models import BadNet, build_model
from badnets_utils.core.triggers import POSITIONS, apply_trigger, load_trigger, save_trigger

FAST = settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def stamping(draw) -> dict:
    """A uint8 batch, a trigger that fits it, and where to stamp it."""
    n, c, side = draw(st.integers(1, 3)), draw(st.sampled_from([1, 3])), draw(st.integers(4, 12))
    h = draw(st.integers(1, side))
    images = torch.from_numpy(draw(arrays(np.uint8, (n, c, side, side))))
    trigger = torch.from_numpy(draw(arrays(np.uint8, (draw(st.sampled_from([1, c])), h, h))))
    position = draw(
        st.one_of(st.sampled_from(POSITIONS), st.tuples(st.integers(0, side - h), st.integers(0, side - h)))
    )
    return {"images": images, "trigger": trigger, "position": position}


def _window(case: dict) -> tuple[slice, slice]:
    side, h = case["images"].shape[-1], case["trigger"].shape[-1]
    named = {"bottom-right": (side - h,) * 2, "bottom-left": (side - h, 0), "top-right": (0, side - h),
             "top-left": (0, 0), "center": ((side - h) // 2,) * 2}  # fmt: skip
    r, c = named[case["position"]] if isinstance(case["position"], str) else case["position"]
    return slice(r, r + h), slice(c, c + h)


masks = st.one_of(st.none(), st.floats(0, 1))


@FAST
@given(case=stamping(), alpha=st.floats(0, 1), mask_value=masks)
def test_only_the_window_changes_and_the_result_is_uint8(case, alpha, mask_value):
    h = case["trigger"].shape[-1]
    mask = None if mask_value is None else torch.full((h, h), mask_value)
    before = case["images"].clone()
    out = apply_trigger(case["images"], case["trigger"], case["position"], alpha=alpha, mask=mask)
    assert out.dtype == torch.uint8 and out.shape == before.shape and torch.equal(case["images"], before)
    rows, cols = _window(case)
    outside = torch.ones_like(out, dtype=torch.bool)
    outside[:, :, rows, cols] = False
    assert torch.equal(out[outside], before[outside])


@FAST
@given(case=stamping(), mask_value=masks)
def test_alpha_zero_is_identity(case, mask_value):
    h = case["trigger"].shape[-1]
    mask = None if mask_value is None else torch.full((h, h), mask_value)
    assert torch.equal(apply_trigger(case["images"], case["trigger"], case["position"], alpha=0.0, mask=mask),
                       case["images"])  # fmt: skip


@FAST
@given(case=stamping())
def test_alpha_one_without_mask_pastes_exactly(case):
    out = apply_trigger(case["images"], case["trigger"], case["position"])
    rows, cols = _window(case)
    assert torch.equal(out[:, :, rows, cols], case["trigger"].expand_as(out[:, :, rows, cols]))


@FAST
@given(
    trigger=st.integers(1, 12).flatmap(
        lambda s: st.sampled_from([1, 3]).flatmap(lambda c: arrays(np.uint8, (c, s, s)).map(torch.from_numpy))
    ),
    grow=st.integers(0, 4),
)
def test_save_then_load_round_trips(tmp_path_factory, trigger, grow):
    path = save_trigger(trigger, tmp_path_factory.mktemp("t") / "mine.png")
    c, s = trigger.shape[0], trigger.shape[-1]
    assert torch.equal(load_trigger(path, s, c), trigger)
    if c == 1:
        assert torch.equal(load_trigger(path, s, 3), trigger.expand(3, s, s))
    padded = load_trigger(path, s + grow, c)  # a smaller image is padded, never upscaled
    assert torch.equal(padded[:, grow:, grow:], trigger) and int(padded.sum()) == int(trigger.sum())


# ----------------------------------------------------------------------------- checkpoints

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=8),
    st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype),
              st.lists(st.integers(0, 4), max_size=3).map(tuple),
              st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool, torch.complex64])),
)  # fmt: skip
junk = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)  # fmt: skip
config_values = st.one_of(junk, st.integers(-5, 2000), st.sampled_from(["MNIST", "CIFAR10", "mnist", "svhn", ""]))
REFERENCE = build_model("MNIST").state_dict()
config_keys = st.sampled_from(["dataset", "num_classes", "in_channels", "image_size", "verified", "attack"])


@st.composite
def crafted(draw) -> object:
    """Junk, or a real MNIST checkpoint with a few keys dropped, replaced or reshaped and a random config."""
    if draw(st.booleans()):
        return draw(junk)
    state = {k: v.clone() for k, v in REFERENCE.items()}
    for key in draw(st.lists(st.sampled_from(sorted(state)), max_size=3)):
        change = draw(st.sampled_from(["drop", "junk", "reshape", "retype"]))
        if change == "drop":
            state.pop(key, None)
        elif change == "junk":
            state[key] = draw(junk)
        elif change == "reshape":
            state[key] = torch.zeros(draw(st.lists(st.integers(0, 5), max_size=3)))
        else:
            state[key] = torch.zeros_like(REFERENCE[key], dtype=draw(st.sampled_from([torch.int64, torch.float64])))
    config = draw(st.one_of(st.dictionaries(config_keys, config_values, max_size=4), junk))
    return draw(st.sampled_from([{"model_state": state, "config": config}, state, {"model_state": state}]))


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=crafted())
def test_crafted_checkpoints_load_or_fail_in_one_line(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("c") / "crafted.pth"
    torch.save(blob, path)
    try:
        model, config = load_checkpoint(path, quiet=True)
    except CheckpointError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert isinstance(model, BadNet) and config["verified"] is False and config["verified_by"] is None
    assert 2 <= config["num_classes"] <= 1000


@pytest.mark.parametrize(
    "config",
    [{"dataset": torch.tensor([])}, {"dataset": torch.zeros(3, 3)}, {"dataset": 0}, {"dataset": ["MNIST"]},
     {"num_classes": torch.zeros(2, 2)}, {"in_channels": torch.tensor(1)}, {"image_size": "28\n28"}],
)  # fmt: skip
def test_config_values_of_any_type_fail_in_one_line(tmp_path, config):
    """Found by the property test above: an empty tensor as the dataset name crashed the truth test."""
    path = tmp_path / "c.pth"
    torch.save({"model_state": REFERENCE, "config": config}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, quiet=True)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("payload", [b"", b"\x80\x04K\x01.", b"PK\x03\x04" + bytes(100)])
def test_non_checkpoint_bytes_fail_in_one_line(tmp_path, payload):
    path = tmp_path / "x.pth"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match="not a valid PyTorch checkpoint|holds no BadNet weights"):
        load_checkpoint(path, quiet=True)
