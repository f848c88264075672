"""``tau``: a SimVP/TAU-style spatio-temporal forecaster (no recurrence).

SimVP (Gao et al., CVPR 2022) and its Temporal Attention Unit (TAU; Tan et al., CVPR
2023) forecast video with three parts: a convolutional encoder applied to every frame, a
*translator* that sees all the window's frames at once, stacked along the channels, and
a convolutional decoder. TAU's translator blocks split attention into a *statical*
(intra-frame) part, a large receptive field built from a depth-wise 5 x 5 convolution, a
depth-wise dilated 7 x 7 convolution (dilation 3) and a 1 x 1 convolution, and a
*dynamical* (inter-frame) part, squeeze-and-excitation over the stacked channels, which
mix the frames. OpenSTL reports TAU matching PredRNN/MIM at about a tenth of their
compute (TaxiBJ 4 -> 4).

Here the encoder, the full-resolution skip and the velocity decoder are those of
:mod:`insar_raster.models.convlstm` (so the history prior, its learned spatial filter,
the time-gap channels and leads, and the "kept only if it helps on validation" rule all
apply unchanged); only the core differs. Why it suits InSAR fronts: a trough advancing
at 2-5 km/yr reaches a cell 3-10 cells after the neighbours upstream have started to
move; each translator block sees about 23 half-resolution cells (46 cells, 4.6 km at
100 m) of every input epoch at once, so a cell's forecast can read its neighbours'
recent motion, which no per-pixel fit can.
"""

from __future__ import annotations

import torch
from torch import nn

from insar_raster.models.convlstm import _EncoderDecoder


class TemporalAttention(nn.Module):
    """TAU attention: statical (large-kernel, depth-wise) x dynamical (channel SE)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.local = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.wide = nn.Conv2d(channels, channels, 7, padding=9, dilation=3, groups=channels)
        self.mix = nn.Conv2d(channels, channels, 1)
        hidden = max(4, channels // reduction)
        self.squeeze = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x):
        statical = self.mix(self.wide(self.local(x)))
        dynamical = self.squeeze(x.mean(dim=(2, 3)))[:, :, None, None]
        return statical * dynamical * x


class TAUBlock(nn.Module):
    """Pre-norm residual block: attention, then a depth-wise convolutional MLP."""

    def __init__(self, channels: int, expansion: int = 2):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, channels)
        self.attn = TemporalAttention(channels)
        self.norm2 = nn.GroupNorm(1, channels)
        wide = channels * expansion
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, wide, 1),
            nn.Conv2d(wide, wide, 3, padding=1, groups=wide),
            nn.GELU(),
            nn.Conv2d(wide, channels, 1),
        )

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TAUForecaster(_EncoderDecoder):
    """Conv encoder -> TAU translator over the stacked epochs -> velocity decoder.

    Parameters
    ----------
    in_channels : int
        Channels per input epoch.
    steps : int
        Forecast epochs emitted at once.
    window : int
        Input epochs (fixed: the translator stacks them as channels).
    hidden : int
        Half-resolution feature channels per epoch (and of the translator's output).
    features : int
        Full-resolution feature channels (stem and decoder).
    translator : int
        Channels inside the translator.
    blocks : int
        TAU blocks.
    advection : int
        See :class:`~insar_raster.models.convlstm.ConvLSTMForecaster`.
    """

    def __init__(
        self,
        in_channels: int = 6,
        steps: int = 6,
        window: int = 12,
        hidden: int = 16,
        features: int = 16,
        translator: int = 48,
        blocks: int = 2,
        advection: int = 0,
    ):
        super().__init__(in_channels, steps, hidden, features, advection)
        self.window = int(window)
        self.inp = nn.Conv2d(self.window * hidden, translator, 1)
        self.blocks = nn.Sequential(*[TAUBlock(translator) for _ in range(int(blocks))])
        self.outp = nn.Sequential(nn.Conv2d(translator, hidden, 1), nn.ReLU(inplace=True))

    def _core(self, half: torch.Tensor) -> torch.Tensor:
        batch, window, channels, h, w = half.shape
        if window != self.window:
            raise ValueError(f"tau model was built for window={self.window}, got {window} epochs")
        return self.outp(self.blocks(self.inp(half.reshape(batch, window * channels, h, w))))
