"""A small causal temporal convolutional network (Bai, Kolter & Koltun, 2018) for one series.

``TCN(in_channels, steps)`` maps (batch, in_channels, length) to (batch, steps): residual
blocks of two dilated *causal* 1-D convolutions (left padding only, so no output sees a
later epoch), ReLU, then a linear head on the last epoch's features. Used per pixel by
the ``tcn`` baseline (:mod:`insar_raster.evaluate.sequence_baselines`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left only: output ``t`` reads inputs ``<= t``."""

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, in_channels, channels, dilation, kernel=3):
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, channels, kernel, dilation)
        self.conv2 = CausalConv1d(channels, channels, kernel, dilation)
        self.skip = nn.Conv1d(in_channels, channels, 1) if in_channels != channels else nn.Identity()

    def forward(self, x):
        y = F.relu(self.conv1(x))
        y = F.relu(self.conv2(y))
        return F.relu(y + self.skip(x))


class TCN(nn.Module):
    """Causal TCN: (batch, in_channels, length) -> (batch, steps)."""

    def __init__(
        self, in_channels: int = 2, steps: int = 6, channels: int = 24, dilations=(1, 2, 4, 8), kernel: int = 3
    ):
        super().__init__()
        layers, c = [], in_channels
        for d in dilations:
            layers.append(TemporalBlock(c, channels, int(d), kernel))
            c = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels, steps)
        nn.init.zeros_(self.head.weight)  # start from persistence (zero change)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.body(x)[:, :, -1])
