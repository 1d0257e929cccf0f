"""The BadNets CNN of the paper, returning logits, with input normalisation inside."""

from __future__ import annotations

import torch
from torch import nn

from badnets_utils.core.data import DATASETS, canonical_name


class BadNet(nn.Module):
    """conv 16@5×5, ReLU, avg-pool 2; conv 32@5×5, ReLU, avg-pool 2; FC 512, ReLU; FC K.

    Takes uint8 images (N, C, H, W) — or floats in [0, 1] — and normalises them on their device.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        self.config = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
        mean = mean or (0.5,) * in_channels
        std = std or (0.5,) * in_channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 16, 5), nn.ReLU(), nn.AvgPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 5), nn.ReLU(), nn.AvgPool2d(2))
        side = ((image_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Sequential(nn.Linear(32 * side * side, 512), nn.ReLU())
        self.fc2 = nn.Linear(512, num_classes)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return (x - self.mean) / self.std

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last convolution block (N, 32, s, s)."""
        return self.conv2(self.conv1(self.normalize(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, 512)."""
        return self.fc1(self.conv_features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def build_model(dataset: str, num_classes: int | None = None) -> BadNet:
    """The BadNet for MNIST (1×28×28) or CIFAR-10 (3×32×32) with that dataset's normalisation."""
    info = DATASETS[canonical_name(dataset)]
    c, h, _ = info["shape"]
    k = num_classes or len(info["classes"])
    return BadNet(c, k, h, info["mean"], info["std"])
