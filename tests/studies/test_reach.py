"""Receptive-field counts of notebook 06 (variants.reach) and where a single-pixel backdoor misses (paper)."""

import torch

from badnets_utils.core.models import BadNet
from badnets_utils.course.variant_plots import reach_figure
from badnets_utils.studies.variants import reach


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


def test_bottom_ink_rank_orders_images_by_ink_in_the_bottom_rows():
    from badnets_utils.studies.paper import bottom_ink_rank

    images = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    images[1, 0, 25, :3] = 255  # 3 inked pixels low down
    images[2, 0, 21:27, 10] = 80  # 6
    images[3, 0, :20] = 255  # all its ink above row 20: counts as none
    assert bottom_ink_rank(images).tolist() == [0.0, 0.5, 0.75, 0.0]


def test_missed_triggered_lists_the_source_images_the_backdoor_does_not_move():
    from badnets_utils import Attack, ImageData
    from badnets_utils.studies.paper import missed_triggered

    class ReadsCorner(torch.nn.Module):  # "5" when pixel (24, 24) is bright, else "9"
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))  # predict() finds the device through a parameter

        def forward(self, x):
            bright = x[:, 0, 24, 24].float() > 127
            logits = torch.zeros(len(x), 10)
            logits[bright, 5] = 1.0
            logits[~bright, 9] = 1.0
            return logits

    images = torch.zeros(5, 1, 28, 28, dtype=torch.uint8)
    labels = torch.tensor([9, 3, 9, 9, 1])
    test = ImageData(images, labels, [str(d) for d in range(10)], name="toy")
    hit = Attack(trigger="white", trigger_size=1, position=(24, 24), source=9, target=5)
    missed, preds = missed_triggered(ReadsCorner(), test, hit)
    assert missed.tolist() == [] and preds.tolist() == []
    elsewhere = hit.replace(position=(10, 10))  # the model looks at (24, 24): every triggered 9 stays a 9
    missed, preds = missed_triggered(ReadsCorner(), test, elsewhere)
    assert missed.tolist() == [0, 1, 2] and preds.tolist() == [9, 9, 9]


def test_ink_near_looks_at_the_square_around_the_position_only():
    from badnets_utils.studies.paper import ink_near

    images = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    images[1, 0, 22, 22] = 1  # two rows and columns from (24, 24): inside radius 2, outside radius 1
    images[2, 0, 21, 24] = 255  # three rows away: outside both
    images[3, 0, 27, 27] = 9  # at the corner: inside radius 3 of (24, 24), and a square cut at the edge
    assert ink_near(images, (24, 24), 1).tolist() == [False, False, False, False]
    assert ink_near(images, (24, 24), 2).tolist() == [False, True, False, False]
    assert ink_near(images, (24, 24), 3).tolist() == [False, True, True, True]
    assert ink_near(images, (27, 27), 0).tolist() == [False, False, False, True]
