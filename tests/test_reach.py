"""Receptive-field counts of notebook 06 (variants.reach): what a one-pixel trigger can be seen through."""

import torch

from badnets_utils.models import BadNet
from badnets_utils.variants import reach, reach_figure


def test_reach_counts_the_windows_that_see_a_pixel():
    conv1, conv2 = reach(BadNet())
    assert conv1.shape == conv2.shape == (28, 28)
    assert int(conv1.sum()) == 24 * 24 * 25  # every 5×5 window of the 24×24 output covers 25 pixels
    assert int(conv1[27, 27]) == 1 and int(conv1[24, 24]) == 16 and int(conv1[14, 14]) == 25
    assert int(conv2[27, 27]) == 1  # the corner: one window in each layer
    assert int(conv2[14, 14]) == 8 * 8 - 15  # the centre reaches most of conv2's 8×8 positions
    assert torch.equal(conv1, conv1.flip(0).flip(1))  # the geometry is symmetric


def test_reach_follows_the_model_geometry():
    big = BadNet(image_size=32)
    conv1, _ = reach(big, (32, 32))
    assert int(conv1.sum()) == 28 * 28 * 25


def test_reach_figure_marks_the_positions():
    fig = reach_figure(BadNet(), [(27, 27), (24, 24)])
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert labels[:2] == ["(27, 27): 1 · (24, 24): 16", "(27, 27): 1 · (24, 24): 4"]
